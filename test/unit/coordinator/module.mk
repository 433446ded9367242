# Unit tests of coordinator/: the barrier engine, the wire protocol, and the
# real cryo_coordinator and cryo_command driven by fake processes.
UNIT_TESTS += coordinator/barrier coordinator/protocol
unit_coordinator_barrier_OBJS := build/coordinator/barrier.o
