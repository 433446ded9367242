#!/bin/bash
# test/integration/eventshare.sh: event fds shared by a parent and its
# child across three checkpoint / kill / restart cycles.
# build/test/apps/eventshare (see there: eventfds, an epoll and a timerfd
# inherited at fork, requests one way and answers the other) is
# checkpointed at each "@@READY k", every process is killed
# (cryo_command --kill), and `cryo_restart IMAGE...` (or the restart
# script, from another directory) brings both back. Each shared object must
# come back as one object of both processes (one owner creates it and
# sends it to the other), else a request is never seen and the run stalls.
# The output must equal an uninterrupted run's.
#
#   test/integration/eventshare.sh [--keep]   prints PASS eventshare / FAIL eventshare: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=eventshare
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/eventshare

"$APP" >"$T/ref.out" 2>"$T/ref.txt" &
APP_PID=$!
for k in 1 2 3; do wait_line "$T/ref.out" "@@READY $k" "$APP_PID"; kill -USR1 "$APP_PID"; done
wait "$APP_PID" || fail "the reference run failed: $(cat "$T/ref.txt")"
APP_PID=

mkdir -p "$T/elsewhere"
export CRYO_LOG=info CRYO_LOG_FILE=$T/cryo.log
start_coordinator
LAUNCH_OUT=seg1 launch "$APP"
for k in 1 2 3; do
	wait_line "$T/seg$k.out" "@@READY $k" "$APP_PID"
	timeout 60 "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
	n=$(wc -l <"$T/images")
	[ "$n" = 2 ] || fail "checkpoint $k: $n images, expected 2 (parent and child)"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	alive "$APP_PID" && fail "the processes survived --kill"
	wait "$APP_PID" 2>/dev/null
	s=$((k + 1))
	if [ $((k % 2)) = 1 ]; then
		# shellcheck disable=SC2046
		"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	else
		(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	fi
	APP_PID=$!
	# Restored once it maps no cryo_restart and both processes rejoined.
	for _ in $(seq 400); do
		if alive "$APP_PID" && ! grep -q cryo_restart /proc/"$APP_PID"/maps 2>/dev/null &&
			[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ]; then
			break
		fi
		alive "$APP_PID" || fail "cycle $k: the restart exited: $(cat "$T/seg$s.err")"
		sleep 0.05
	done
	kill -USR1 "$APP_PID"
done
for _ in $(seq 600); do alive "$APP_PID" || break; sleep 0.05; done
wait "$APP_PID"
rc=$?
APP_PID=
cat "$T"/seg[1-4].out >"$T/cryo.out"
diff "$T/ref.out" "$T/cryo.out" >"$T/diff" || fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T/seg4.err")"
echo "PASS $NAME (2 processes, 3 cycles)"
