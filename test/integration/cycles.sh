# test/integration/cycles.sh: three checkpoint / kill / restart cycles of a
# computation of several processes, for the script tests of issue #3
# (tree.sh, multi.sh, pidchain.sh, spawntree.sh, pgroup.sh). Sourced after
# lib.sh:
#
#   NAME=pidchain
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/cycles.sh"
#   run_cycles 3 "$ROOT/build/test/apps/pidchain"
#
# run_cycles NPROCS CMD...: runs CMD once without cryo (the reference),
# then under cryo_launch; at each "@@READY k" it checkpoints (which must
# write NPROCS images, each verified), kills every process through the
# coordinator, and restarts them all with `cryo_restart IMAGE...` (odd
# cycles) or the restart script from another directory (even cycles),
# then sends SIGUSR1 to the restarted root. The output must equal the
# reference's, and the exit status be 0. Sets IMAGES (the last list).
run_cycles() {
	local nprocs=$1 k n s rc
	shift
	# The reference: no cryo.
	"$@" >"$T/ref.out" 2>"$T/ref.txt" &
	APP_PID=$!
	for k in 1 2 3; do wait_line "$T/ref.out" "@@READY $k" "$APP_PID"; kill -USR1 "$APP_PID"; done
	wait "$APP_PID" || fail "the reference run failed: $(cat "$T/ref.txt")"
	APP_PID=

	mkdir -p "$T/elsewhere"
	export CRYO_LOG=${CRYO_LOG:-info} CRYO_LOG_FILE=$T/cryo.log
	start_coordinator
	LAUNCH_OUT=seg1 launch "$@"
	for k in 1 2 3; do
		wait_line "$T/seg$k.out" "@@READY $k" "$APP_PID"
		timeout 60 "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
		n=$(wc -l <"$T/images")
		[ "$n" = "$nprocs" ] || fail "checkpoint $k: $n images, expected $nprocs: $(cat "$T/images")"
		while read -r img; do
			"$BIN/cryo_image" verify "$img" >/dev/null 2>"$T/verify.err" ||
				fail "$img: $(cat "$T/verify.err")"
		done <"$T/images"
		IMAGES=$(cat "$T/images")
		"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
		for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
		alive "$APP_PID" && fail "the processes survived --kill"
		wait "$APP_PID" 2>/dev/null
		s=$((k + 1))
		if [ $((k % 2)) = 1 ]; then
			# shellcheck disable=SC2046
			"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" &
		else
			(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") >"$T/seg$s.out" \
				2>"$T/seg$s.err" &
		fi
		APP_PID=$!
		# Restored once it maps no cryo_restart and every process rejoined.
		for _ in $(seq 400); do
			if alive "$APP_PID" && ! grep -q cryo_restart /proc/"$APP_PID"/maps 2>/dev/null &&
				[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' |
					grep -c running)" = 1 ]; then
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
	diff "$T/ref.out" "$T/cryo.out" >"$T/diff" ||
		fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
	[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T"/seg*.err)"
}
