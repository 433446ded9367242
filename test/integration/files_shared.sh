#!/bin/bash
# test/integration/files_shared.sh: open file descriptions shared by a
# parent and its child come back as one description after a restart.
# build/test/apps/fileshare (see there: a file, a deleted file, /dev/null
# and a directory opened before fork, taken in turns through one offset)
# goes through three checkpoint / kill / restart cycles: `cryo_restart
# --keep-stdio IMAGE...` (the output goes on in the first stdout, a file
# both processes share), the restart script from another directory, and
# `cryo_restart IMAGE...`. The output must equal an uninterrupted run's,
# and the log must show that one process received each shared description
# from its owner, the other, rather than reopening it on its own.
#
#   test/integration/files_shared.sh [--keep]   prints PASS files_shared / FAIL files_shared: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=files_shared
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/fileshare

# The reference: no cryo.
mkdir -p "$T/refwork" "$T/work" "$T/elsewhere"
"$APP" "$T/refwork" >"$T/ref.out" 2>"$T/ref.txt" &
APP_PID=$!
for k in 1 2 3; do wait_line "$T/ref.out" "@@READY $k" "$APP_PID"; kill -USR1 "$APP_PID"; done
wait "$APP_PID" || fail "the reference run failed: $(cat "$T/ref.txt")"
APP_PID=

export CRYO_LOG=debug CRYO_LOG_FILE=$T/cryo.log
start_coordinator
LAUNCH_OUT=seg1 launch "$APP" "$T/work"
out=$T/seg1.out
for k in 1 2 3; do
	wait_line "$out" "@@READY $k" "$APP_PID"
	# Once, a checkpoint the computation resumes from: the election's
	# F_SETOWN marks must be undone (the next checkpoint would take them
	# for the program's own, and the program checks them after restarts).
	if [ "$k" = 1 ]; then
		timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >/dev/null || fail "checkpoint 0 failed"
	fi
	timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
	n=$(wc -l <"$T/images")
	[ "$n" = 2 ] || fail "checkpoint $k: $n images, expected 2 (parent and child)"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	alive "$APP_PID" && fail "the processes survived --kill"
	wait "$APP_PID" 2>/dev/null
	s=$((k + 1))
	out=$T/seg$s.out
	if [ "$k" = 1 ]; then
		# The original stdout (seg1.out, shared by both processes) is
		# kept: its owner reopens it and sends it to the other.
		# shellcheck disable=SC2046
		"$BIN/cryo_restart" $C --keep-stdio $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" &
		out=$T/seg1.out
	elif [ "$k" = 3 ]; then
		# shellcheck disable=SC2046
		"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	else
		(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	fi
	APP_PID=$!
	# Restored once it maps no cryo_restart and both processes rejoined.
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
[ -s "$T/seg2.out" ] && fail "--keep-stdio: output in the restarting side's stdout: $(cat "$T/seg2.out")"
cat "$T"/seg[1-4].out >"$T/cryo.out"
diff "$T/ref.out" "$T/cryo.out" >"$T/diff" || fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T/seg4.err")"
# Each restart: the owner of each shared description (parent or child,
# whoever the election chose) made it again and the other received it,
# never reopening it on its own. The deleted file shows it best: made once
# (action 3) and received once (action 4) per restart.
grep -q "on its own" "$T/cryo.log" && fail "a shared description was reopened on its own: $(grep 'on its own' "$T/cryo.log" | head -3)"
made=$(grep -c 'fd: fd [0-9]*: .*shared-deleted (deleted), kind 4, action 3' "$T/cryo.log")
got=$(grep -c 'fd: fd [0-9]*: .*shared-deleted (deleted), kind 4, action 4' "$T/cryo.log")
[ "$made/$got" = 3/3 ] || fail "in 3 restarts the deleted file was made $made times and received $got times, expected 3 and 3"
made=$(grep -c 'fd: fd 1: .*/seg1.out, kind 1, action 3' "$T/cryo.log")
got=$(grep -c 'fd: fd 1: .*/seg1.out, kind 1, action 4' "$T/cryo.log")
[ "$made/$got" = 1/1 ] || fail "with --keep-stdio the shared stdout was reopened $made times and received $got times, expected once each"
echo "PASS $NAME (2 processes, 3 cycles, shared descriptions received from their owner)"
