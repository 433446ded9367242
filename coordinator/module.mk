# coordinator: the daemon, its barrier engine, the wire protocol and cryo_command.
common_SRCS += coordinator/protocol.c
coordinator_SRCS += coordinator/coordinator.c coordinator/loop.c coordinator/barrier.c
command_SRCS += coordinator/command.c
