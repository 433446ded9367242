#!/bin/bash
# test/integration/cow.sh: copy-on-write checkpoints (doc/cow.md).
#
# 1. counter, threads, bigmem, cowwait and python's count.py through
#    run.sh, and pipes and shmem through multi.sh, with
#    CRYO_CKPT_MODE=cow: three checkpoint/kill/restart cycles each, output
#    compared with an uninterrupted run, and every image of every cycle
#    must have been written by a writer child (the library's log says
#    "(copy-on-write)"; a silent fall back to full-stop fails). cowwait
#    reaps children and counts SIGCHLD all the time: the writer must stay
#    invisible to it.
# 2. The program runs while its image is written: cowtick appends a tick
#    line to the library's log file every millisecond and writes each tick
#    into its memory; `cryo_command --bcheckpoint --cow` (the coordinator's
#    flag, CRYO_CKPT_MODE unset). In the log, tick lines must come after
#    "threads released" and before the image's "(copy-on-write)" line (an
#    order, not a time). Then the program is killed and restarted from that
#    image: its memory must hold exactly the ticks its restored counter
#    says it made (a page written after the capture and found in the image
#    fails it).
#
#   test/integration/cow.sh [--keep]
NAME=cow
. "$(dirname "$0")/lib.sh"
APPS=$ROOT/build/test/apps
PY=/usr/bin/python3
SUB=$T/sub
mkdir -p "$SUB"

# cowed NAME DIR NIMAGES: the logs under DIR say NIMAGES images were
# written by a writer child.
cowed() {
	local n
	n=$(cat "$2"/cryo.log 2>/dev/null | grep -c 'bytes in .*(copy-on-write)')
	[ "$n" -ge "$3" ] || fail "$1: $n images written copy-on-write, expected $3 (see $2/cryo.log)"
}

# 1. Programs through three cycles in cow mode.
runsh() {
	local name=$1 dir
	shift
	CRYO_CKPT_MODE=cow TMPDIR=$SUB bash "$ROOT/test/integration/run.sh" --keep "cow-$name" "$@" \
		>"$T/$name.log" 2>&1 || { SHOW+=("$name.log"); fail "$name in cow mode: $(tail -n 1 "$T/$name.log")"; }
	dir=$(sed -n 's/^logs kept in //p' "$T/$name.log" | tail -n 1)
	[ -d "$dir" ] || fail "$name: run.sh kept no logs"
	cowed "$name" "$dir" 3
}
runsh counter -- "$APPS/counter"
runsh threads -- "$APPS/threads"
runsh bigmem -- "$APPS/bigmem"
runsh cowwait -- "$APPS/cowwait"
runsh python --count 150 -- "$PY" "$ROOT/test/apps/count.py" 150

multi() {
	local name=$1 n=$2 dir
	shift 2
	# multi.sh reads CRYO_CKPT_MODE only in the programs it launches: its
	# reference run has no cryo (the variable is harmless there).
	CRYO_CKPT_MODE=cow TMPDIR=$SUB bash "$ROOT/test/integration/multi.sh" --keep "cow-$name" "$n" "$@" \
		>"$T/$name.log" 2>&1 || { SHOW+=("$name.log"); fail "$name in cow mode: $(tail -n 1 "$T/$name.log")"; }
	dir=$(ls -d "$SUB"/cryo-test-cow-"$name".* | tail -n 1)
	cowed "$name" "$dir" $((3 * n))
}
multi pipes 3 "$APPS/pipes"
multi shmem 2 "$APPS/shmem"

# 2. The program runs while the image is written; the image is the capture.
LOG=$T/tick.log
start_coordinator
CRYO_LOG=info CRYO_LOG_FILE=$LOG CRYO_COMPRESS=0 LAUNCH_OUT=tick launch "$APPS/cowtick" 256 "$LOG"
wait_line "$T/tick.out" "@@READY 1" "$APP_PID"
timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint --cow >"$T/images" 2>"$T/bc.err" ||
	fail "cryo_command --bcheckpoint --cow failed: $(cat "$T/bc.err")"
[ "$(wc -l <"$T/images")" = 1 ] || fail "expected one image, got: $(cat "$T/images")"
"$BIN/cryo_image" verify "$(cat "$T/images")" >"$T/verify.out" 2>&1 ||
	fail "cryo_image verify: $(tail -n 3 "$T/verify.out")"
ticks=$(awk '/threads released: stall_ms=/ { r = 1; next }
	r && /^tick / { t++ }
	r && /bytes in .*\(copy-on-write\)/ { print t + 0; done = 1; exit }
	END { if (!done) print "none" }' "$LOG")
SHOW+=(tick.log)
[ "$ticks" = none ] && fail "no 'threads released' then '(copy-on-write)' image line in tick.log"
[ "$ticks" -gt 0 ] || fail "the program made no tick between its release and the complete image"
"$BIN/cryo_command" $C --kill >/dev/null
for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
alive "$APP_PID" && fail "cowtick survived --kill"
wait "$APP_PID" 2>/dev/null
"$BIN/cryo_restart" $C "$(cat "$T/images")" >"$T/restart.out" 2>"$T/restart.err" </dev/null &
APP_PID=$!
for _ in $(seq $((STEP * 20))); do
	if alive "$APP_PID" && ! grep -q cryo_restart /proc/"$APP_PID"/maps 2>/dev/null &&
		[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ]; then
		break
	fi
	alive "$APP_PID" || fail "the restart exited: $(cat "$T/restart.err")"
	sleep 0.05
done
kill -USR1 "$APP_PID"
wait "$APP_PID"
rc=$?
APP_PID=
SHOW+=(restart.out)
[ "$rc" = 0 ] && grep -q '^@@PASS' "$T/restart.out" ||
	fail "restarted cowtick failed (status $rc): $(cat "$T/restart.err")"
echo "PASS $NAME (7 programs in 3 cycles; $ticks ticks while the image was written)"
