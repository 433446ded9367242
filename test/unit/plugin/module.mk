# Unit tests of plugin/.
UNIT_TESTS += plugin/fd
unit_plugin_fd_OBJS := build/plugin/fd/fd.o
