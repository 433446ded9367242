#!/bin/bash
# test/integration/spawntree.sh: children made by vfork + exec, posix_spawn
# and system() (build/test/apps/spawntree, which also reads a line from a
# popen()ed one) join the computation: every checkpoint writes an image for
# each of the five processes, they come back through three checkpoint /
# kill / restart cycles with their pids, and the output equals an
# uninterrupted run's. Each child and the popen()ed program must run under
# cryo, with this test's coordinator, yet see no CRYO_* variable.
#
#   test/integration/spawntree.sh [--keep]   prints PASS spawntree / FAIL spawntree: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=spawntree
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cycles.sh"
run_cycles 5 "$ROOT/build/test/apps/spawntree"
# The cryo run's children said how they ran (the reference run had no probe file).
export SPAWN_PROBE_FILE=$T/probe
rm -f "$T/probe"
"$BIN/cryo_command" $C --quit >/dev/null 2>&1
stop "$COORD_PID" TERM
COORD_PID=
start_coordinator
LAUNCH_OUT=probe launch "$ROOT/build/test/apps/spawntree"
wait_line "$T/probe.out" "@@READY 1" "$APP_PID"
for who in popen A B C; do
	grep -qx "$who libcryo=1 port=$PORT" "$T/probe" ||
		fail "the $who child did not run under cryo with port $PORT: $(cat "$T/probe")"
done
echo "PASS $NAME (vfork, posix_spawn, system, popen; 5 processes, 3 cycles)"
