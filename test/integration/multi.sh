#!/bin/bash
# test/integration/multi.sh: a computation of several processes through
# three checkpoint / kill / restart cycles, for any test program that speaks
# the harness protocol (test/lib/harness.h) from its first process: the
# cycles of cycles.sh (run_cycles: the reference run, NPROCS verified images
# per checkpoint, restarts by `cryo_restart IMAGE...` and by the restart
# script from another directory, output compared), and then no fd may have
# been left unrestored ("not restored" / "stays closed" in the log).
#
#   test/integration/multi.sh [--keep] NAME NPROCS PROGRAM [ARG]...
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
KEEP_ARG=
[ "${1:-}" = --keep ] && { KEEP_ARG=--keep; shift; }
NAME=${1:?usage: multi.sh [--keep] NAME NPROCS PROGRAM [ARG]...}
NPROCS=${2:?}
shift 2
set -- $KEEP_ARG "$@"
. "$(dirname "$0")/lib.sh"
[ "${1:-}" = --keep ] && shift
. "$(dirname "$0")/cycles.sh"
export CRYO_LOG=${CRYO_TEST_LOG:-info}
run_cycles "$NPROCS" "$@"
grep -q 'not restored\|stays closed' "$T/cryo.log" &&
	fail "cryo left fds unrestored: $(grep 'not restored\|stays closed' "$T/cryo.log" | head -3)"
echo "PASS $NAME ($NPROCS processes, 3 cycles)"
