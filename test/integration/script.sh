#!/bin/bash
# test/integration/script.sh: script(1) running a shell on a pty through
# three checkpoint / kill / restart cycles. script blocks every signal and
# reads them with signalfd, so an EINTR from its poll() would end it: the
# checkpoint must be invisible to it. The shell prints "line 0".."line 44"
# (and waits at lines 8, 20 and 32 until the test lets it go on), then
# "tty ok" if its stdin is still a terminal. Each cycle checkpoints while the
# shell waits, kills everything, restarts from the images and lets the
# shell go on. The check: within each segment the lines go up by one, each
# segment starts right after the previous one's last line, all of 0..44
# appear, then "tty ok", exit status 0.
#
#   test/integration/script.sh [--keep]       prints PASS script / FAIL script: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=script
. "$(dirname "$0")/lib.sh"
command -v script >/dev/null || fail "script(1) is not installed (util-linux)"

export CRYO_LOG=info CRYO_LOG_FILE=$T/cryo.log
start_coordinator
# The shell stops at lines 8, 20 and 32 until the test creates $T/contN:
# each checkpoint is taken there, however slow the machine.
# shellcheck disable=SC2016
CMD='i=0; while [ $i -lt 45 ]; do echo line $i; case $i in 8|20|32) while [ ! -e '"$T"'/cont$i ]; do sleep 0.05; done;; esac; i=$((i+1)); sleep 0.01; done; tty >/dev/null && echo tty ok'
LAUNCH_OUT=seg1 launch script -qfc "sh -c '$CMD'" /dev/null
k=0
for at in 8 20 32; do
	k=$((k + 1))
	for _ in $(seq $((STEP * 20))); do
		tr -d '\r' <"$T/seg$k.out" | grep -qx "line $at" && break
		alive "$APP_PID" || fail "cycle $k: script exited before line $at"
		sleep 0.05
	done
	timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	wait "$APP_PID" 2>/dev/null
	# shellcheck disable=SC2046
	"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$((k + 1)).out" 2>"$T/seg$((k + 1)).err" </dev/null &
	APP_PID=$!
	for _ in $(seq $((STEP * 20))); do
		[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ] && break
		alive "$APP_PID" || fail "cycle $k: the restart exited: $(cat "$T/seg$((k + 1)).err")"
		sleep 0.05
	done
	touch "$T/cont$at"
done
for _ in $(seq $((STEP * 20))); do alive "$APP_PID" || break; sleep 0.05; done
alive "$APP_PID" && fail "script did not finish"
wait "$APP_PID"
rc=$?
APP_PID=
[ "$rc" = 0 ] || fail "exit status $rc"
prev=-1
for s in 1 2 3 4; do
	first=
	last=
	while read -r w n; do
		[ "$w" = line ] || continue
		[ -z "$first" ] && first=$n
		[ -n "$last" ] && [ "$n" != $((last + 1)) ] && fail "segment $s: line $n after line $last"
		last=$n
	done < <(tr -d '\r' <"$T/seg$s.out")
	[ -n "$first" ] || fail "segment $s printed no line"
	[ "$first" = $((prev + 1)) ] || fail "segment $s starts at line $first, after line $prev"
	prev=$last
done
[ "$prev" = 44 ] || fail "the last line is $prev, not 44"
tr -d '\r' <"$T/seg4.out" | tail -n 1 | grep -qx 'tty ok' || fail "no 'tty ok' at the end: the shell lost its terminal"
echo "PASS $NAME (script(1) on a pty, 3 cycles)"
