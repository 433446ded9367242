# Unit tests of coordinator/: the barrier engine, the wire protocol, and the
# real cryo_coordinator and cryo_command driven by fake processes.
UNIT_TESTS += coordinator/barrier coordinator/protocol coordinator/daemon
unit_coordinator_barrier_OBJS := build/coordinator/barrier.o
# test_daemon runs the programs themselves, found next to it in build/bin
# (CRYO_TEST_WRAPPER="valgrind ..." runs the coordinator under a wrapper).
build/test/unit/coordinator/daemon: | build/bin/cryo_coordinator build/bin/cryo_command
