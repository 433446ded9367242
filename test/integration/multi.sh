#!/bin/bash
# test/integration/multi.sh: a computation of several processes through
# three checkpoint / kill / restart cycles, as tree.sh but for any test
# program that speaks the harness protocol (test/lib/harness.h) from its
# first process: it is checkpointed at each "@@READY k", every process is
# killed (cryo_command --kill), and `cryo_restart IMAGE...` (odd cycles) or
# the restart script run from another directory (even cycles) brings the
# whole tree back. The output must equal an uninterrupted run's.
#
#   test/integration/multi.sh [--keep] NAME NPROCS PROGRAM [ARG]...
#
# NPROCS is the number of images each checkpoint must produce.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
KEEP_ARG=
[ "${1:-}" = --keep ] && { KEEP_ARG=--keep; shift; }
NAME=${1:?usage: multi.sh [--keep] NAME NPROCS PROGRAM [ARG]...}
NPROCS=${2:?}
shift 2
set -- $KEEP_ARG "$@"
. "$(dirname "$0")/lib.sh"
[ "${1:-}" = --keep ] && shift

# The reference: no cryo.
"$@" >"$T/ref.out" 2>"$T/ref.txt" </dev/null &
APP_PID=$!
for k in 1 2 3; do wait_line "$T/ref.out" "@@READY $k" "$APP_PID"; kill -USR1 "$APP_PID"; done
wait "$APP_PID" || fail "the reference run failed: $(cat "$T/ref.txt")"
APP_PID=

mkdir -p "$T/elsewhere"
export CRYO_LOG=${CRYO_TEST_LOG:-info} CRYO_LOG_FILE=$T/cryo.log
start_coordinator
LAUNCH_OUT=seg1 launch "$@"
for k in 1 2 3; do
	wait_line "$T/seg$k.out" "@@READY $k" "$APP_PID"
	timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
	n=$(wc -l <"$T/images")
	[ "$n" = "$NPROCS" ] || fail "checkpoint $k: $n images, expected $NPROCS"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	alive "$APP_PID" && fail "the processes survived --kill"
	wait "$APP_PID" 2>/dev/null
	s=$((k + 1))
	if [ $((k % 2)) = 1 ]; then
		# shellcheck disable=SC2046
		"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" </dev/null &
	else
		(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") >"$T/seg$s.out" 2>"$T/seg$s.err" </dev/null &
	fi
	APP_PID=$!
	# Restored once it maps no cryo_restart and the computation runs.
	for _ in $(seq $((STEP * 20))); do
		if alive "$APP_PID" && ! grep -q cryo_restart /proc/"$APP_PID"/maps 2>/dev/null &&
			[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ]; then
			break
		fi
		alive "$APP_PID" || fail "cycle $k: the restart exited: $(cat "$T/seg$s.err")"
		sleep 0.05
	done
	kill -USR1 "$APP_PID"
done
for _ in $(seq $((STEP * 20))); do alive "$APP_PID" || break; sleep 0.05; done
wait "$APP_PID"
rc=$?
APP_PID=
cat "$T"/seg[1-4].out >"$T/cryo.out"
diff "$T/ref.out" "$T/cryo.out" >"$T/diff" || fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T/seg4.err")"
grep -q 'not restored\|stays closed' "$T/cryo.log" && fail "cryo left fds unrestored: $(grep 'not restored\|stays closed' "$T/cryo.log" | head -3)"
echo "PASS $NAME ($NPROCS processes, 3 cycles)"
