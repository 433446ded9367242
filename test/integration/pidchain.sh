#!/bin/bash
# test/integration/pidchain.sh: a fork / exec / waitpid chain three levels
# deep (build/test/apps/pidchain: each level checks its pid, its parent's,
# its child's, syscall(SYS_getpid), /proc/<pid>/status and an environment
# without CRYO_*; level 1 execs itself after the second restart and stays
# the same process) through three checkpoint / kill / restart cycles, with
# the output of an uninterrupted run.
#
#   test/integration/pidchain.sh [--keep]   prints PASS pidchain / FAIL pidchain: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=pidchain
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cycles.sh"
run_cycles 3 "$ROOT/build/test/apps/pidchain"
echo "PASS $NAME (3 levels, exec after a restart, 3 cycles)"
