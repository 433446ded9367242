# plugin: the plugin registry and the built-in plugins of libcryo.so.
libcryo_SRCS += plugin/registry.c plugin/share.c plugin/owner.c plugin/fdscan.c
libcryo_SRCS += plugin/fd/fd.c plugin/fd/fdinfo.c plugin/fd/reopen.c plugin/fd/stdio.c
libcryo_SRCS += plugin/pipe/pipe.c plugin/pty/pty.c plugin/pty/kind.c
libcryo_SRCS += plugin/shm/shm.c plugin/pid/pid.c plugin/pid/proc_path.c
libcryo_SRCS += plugin/event/event.c plugin/event/fdinfo.c plugin/event/inotify.c
libcryo_SRCS += plugin/timer/timer.c plugin/timer/timer_parse.c
libcryo_SRCS += plugin/socket/socket.c plugin/socket/diag.c
libcryo_SRCS += plugin/zombie/zombie.c
