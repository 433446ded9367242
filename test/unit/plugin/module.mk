# Unit tests of plugin/.
UNIT_TESTS += plugin/fd
unit_plugin_fd_OBJS := build/plugin/fd/fdinfo.o build/plugin/fd/stdio.o
UNIT_TESTS += plugin/event
unit_plugin_event_OBJS := build/plugin/event/fdinfo.o build/plugin/timer/timer_parse.o
