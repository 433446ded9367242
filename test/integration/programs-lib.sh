# test/integration/programs-lib.sh: what the real-program tests share
# (programs-bash.sh, programs-dash.sh, programs-make.sh,
# programs-python.sh). Sourced after lib.sh:
#
#   NAME=programs-bash
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/programs-lib.sh"
#
# A real program cannot be paused at a marker, so these tests checkpoint it
# wherever it is when it reaches a point of its work chosen at random
# (PROGRESS, a function the test defines, says how far it is: a line
# count, a number of objects built), kill the whole computation at once
# and restart it, three times, and compare the result with an
# uninterrupted run's. Each program runs in a session of its own (setsid),
# so one kill(-pgid) stops all of it the moment the checkpoint is
# complete, before it has done much more.
#
#   prog_reference DIR CMD...
#       runs CMD in DIR (created) without cryo, stdout $T/ref.out, stderr
#       $T/ref.err, within STEP * 3 seconds; fails unless it exits 0.
#   prog_cycles DIR CMD...
#       runs CMD in DIR under cryo, stdout $T/segN.out (N = 1..4, one per
#       run: the first, then each restart), stderr $T/segN.err. Cycle k
#       (1..3) calls `target k` (the test's: sets TARGET, a PROGRESS value
#       beyond the last one seen), waits until `progress` (sets REPLY)
#       reaches it, waits a random 0-40 ms more so the image lands anywhere
#       in the work, then: cryo_command --bcheckpoint, kill -KILL of the
#       process group, cryo_command --kill for anything left, every
#       process of the computation gone, and a restart (cryo_restart
#       IMAGE... for k = 1, 3; the restart script from another directory
#       for k = 2) with stdout to the next segment, until the coordinator
#       sees the computation running again. Then waits for the end; sets
#       CRYO_STATUS and NSEG. SEEN[k] is the progress seen before
#       checkpoint k started.
#   prog_lines_progress
#       a PROGRESS for programs whose every line of stdout is "N text"
#       with N = 1, 2, 3...: the largest N up to TOTAL (the reference's
#       line count, set by the test) in the current segment.
#   prog_check_lines
#       for such programs: each segment numbers its lines consecutively;
#       segment k+1 starts after what was printed before checkpoint k
#       (SEEN[k]) and no later than one past segment k's last line (no
#       gap); lines printed twice (after a checkpoint, before the kill)
#       are the same both times; and the lines merged in order (each
#       segment up to where the next one starts) are exactly $T/ref.out.
#       A line cut short by the kill is dropped.
#   prog_status_match
#       CRYO_STATUS must equal the reference's exit status (0).
#   prog_spread K TOTAL
#       a TARGET for cycle K of 3 when the work goes to TOTAL: in the K-th
#       quarter of it (give or take half a quarter), beyond SEEN[K-1] + 1.
#
# Environment: CRYO_TEST_SEED (seed for the random points, printed on
# failure), and lib.sh's.
SEED=${CRYO_TEST_SEED:-$(((${EPOCHREALTIME/./} + $$) % 1000000))}
RANDOM=$SEED
REF_STATUS= CRYO_STATUS= NSEG=0
SEEN=()
RESTART_EXE=$(readlink -f "$BIN/cryo_restart")
SHOW+=(run.log)

plog() {
	local t=${EPOCHREALTIME/./}
	echo "$(((t / 1000 - P_START) / 1000)).$(printf '%03d' $(((t / 1000 - P_START) % 1000))) $*" \
		>>"$T/run.log"
}
P_START=$((${EPOCHREALTIME/./} / 1000))
plog "seed $SEED"

# prog_wait_exit PID SECONDS: waits for our child PID to end; its exit
# status in REPLY. Fails after SECONDS.
prog_wait_exit() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		alive "$1" || break
		sleep 0.05
	done
	alive "$1" && fail "pid $1 still running after $2 s"
	wait "$1"
	REPLY=$?
}

prog_reference() {
	local dir=$1
	shift
	mkdir -p "$dir"
	(cd "$dir" && exec setsid "$@") >"$T/ref.out" 2>"$T/ref.err" </dev/null &
	APP_PID=$!
	prog_wait_exit "$APP_PID" $((STEP * 3))
	REF_STATUS=$REPLY
	APP_PID=
	plog "reference: exit status $REF_STATUS"
	SHOW+=(ref.err)
	[ "$REF_STATUS" = 0 ] || fail "the uninterrupted run exited with status $REF_STATUS"
}

prog_lines_progress() {
	REPLY=$(awk -v max="$TOTAL" '$1 ~ /^[0-9]+$/ && $1 + 0 > m && $1 + 0 <= max { m = $1 + 0 }
		END { print m + 0 }' "$T/seg$NSEG.out" 2>/dev/null)
	[ -n "$REPLY" ] || REPLY=0
}

# The computation's processes as "REAL_PID" lines (cryo_command --list).
prog_pids() {
	"$BIN/cryo_command" $C --list 2>/dev/null | awk '{ print $3 }'
}

# Restarted: the restart process maps no cryo_restart any more and the
# coordinator's computation is running.
prog_wait_running() {
	local i st
	for i in $(seq 1 $((STEP * 20))); do
		alive "$APP_PID" || fail "cycle $1: the restart exited: $(tail -n 5 "$T/seg$NSEG.err")"
		if ! grep -qF "$RESTART_EXE" "/proc/$APP_PID/maps" 2>/dev/null; then
			st=$("$BIN/cryo_command" $C --status --json 2>/dev/null |
				grep -o '"state": *"[a-z]*"')
			case $st in *'"running"') return 0 ;; esac
		fi
		sleep 0.05
	done
	fail "cycle $1: the computation is not running $STEP s after the restart"
}

prog_cycles() {
	local dir=$1 k i p pids t0 t1 rest
	shift
	mkdir -p "$dir" "$T/elsewhere"
	export CRYO_LOG=${CRYO_TEST_LOG:-info} CRYO_LOG_FILE=$T/cryo.log
	start_coordinator
	NSEG=1
	(cd "$dir" && exec setsid "$BIN/cryo_launch" --coord "$COORD" "$@") \
		>"$T/seg1.out" 2>"$T/seg1.err" </dev/null &
	APP_PID=$!
	SHOW+=(seg1.err)
	p="$*"
	p=${p//$'\n'/ }
	plog "launched pid $APP_PID: ${p:0:200}"
	for k in 1 2 3; do
		target "$k"
		plog "cycle $k: waiting for progress $TARGET"
		for i in $(seq 1 $((STEP * 50))); do
			progress
			[ "$REPLY" -ge "$TARGET" ] && break
			alive "$APP_PID" || fail "cycle $k: the program ended before progress $TARGET (at $REPLY)"
			sleep 0.02
		done
		[ "$REPLY" -ge "$TARGET" ] || fail "cycle $k: progress $REPLY after $STEP s, waiting for $TARGET"
		sleep "0.0$(printf '%02d' $((RANDOM % 40)))"
		progress
		SEEN[$k]=$REPLY
		pids=$(prog_pids)
		t0=${EPOCHREALTIME/./}
		timeout $((STEP * 2)) "$BIN/cryo_command" $C --bcheckpoint >"$T/images$k" 2>"$T/ckpt$k.err" ||
			fail "checkpoint $k failed (at progress ${SEEN[$k]}): $(cat "$T/ckpt$k.err")"
		kill -KILL -- -"$APP_PID" 2>/dev/null
		t1=${EPOCHREALTIME/./}
		plog "cycle $k: at progress ${SEEN[$k]}, $(wc -l <"$T/images$k") images in $(((t1 - t0) / 1000)) ms"
		"$BIN/cryo_command" $C --kill >/dev/null 2>&1
		prog_wait_exit "$APP_PID" 10
		for p in $pids $(prog_pids); do
			for i in $(seq 1 100); do
				alive "$p" || break
				sleep 0.05
			done
			alive "$p" && fail "cycle $k: process $p of the computation survived the kill"
		done
		NSEG=$((k + 1))
		SHOW+=("seg$NSEG.err")
		t0=${EPOCHREALTIME/./}
		if [ "$k" = 2 ]; then
			(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") \
				>"$T/seg$NSEG.out" 2>"$T/seg$NSEG.err" </dev/null &
		else
			# shellcheck disable=SC2046
			"$BIN/cryo_restart" $C $(cat "$T/images$k") \
				>"$T/seg$NSEG.out" 2>"$T/seg$NSEG.err" </dev/null &
		fi
		APP_PID=$!
		prog_wait_running "$k"
		t1=${EPOCHREALTIME/./}
		plog "cycle $k: restarted as pid $APP_PID, running again in $(((t1 - t0) / 1000)) ms"
	done
	prog_wait_exit "$APP_PID" $((STEP * 3))
	CRYO_STATUS=$REPLY
	APP_PID=
	rest=$(prog_pids)
	[ -z "$rest" ] || fail "processes left after the end: $rest"
	plog "exit status $CRYO_STATUS"
}

prog_spread() {
	local k=$1 q=$(($2 / 4)) lo hi
	[ "$q" -ge 2 ] || q=2
	lo=$((k * q - q / 2))
	hi=$((k * q + q / 2))
	[ "$k" -gt 1 ] && [ "$lo" -le $((${SEEN[$((k - 1))]} + 1)) ] && lo=$((${SEEN[$((k - 1))]} + 2))
	[ "$hi" -ge "$lo" ] || hi=$lo
	TARGET=$((lo + RANDOM % (hi - lo + 1)))
}

prog_status_match() {
	[ "$CRYO_STATUS" = "$REF_STATUS" ] ||
		fail "exit status $CRYO_STATUS under cryo, $REF_STATUS without (seed $SEED)"
}

prog_check_lines() {
	local s f segs=()
	for ((s = 1; s <= NSEG; s++)); do
		f=$T/seg$s.out
		# A last line without its newline was cut by the checkpoint:
		# either it is printed again whole after the restart, or (when
		# one process printed its start and another its end, as with
		# `printf "$n "; (cmd)`) the rest of it opens the next segment.
		: >"$T/seg$s.cut"
		if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then
			sed '$d' "$f" >"$T/seg$s.lines"
			tail -n 1 "$f" >"$T/seg$s.cut"
		else
			cp "$f" "$T/seg$s.lines" 2>/dev/null || : >"$T/seg$s.lines"
		fi
		segs+=("$T/seg$s.lines")
	done
	awk -v seen="${SEEN[*]}" -v out="$T/merged.out" -v cutdir="$T" '
		function bad(msg) { print msg; failed = 1; exit 1 }
		BEGIN { split(seen, before, " ") }
		FNR == 1 {
			seg++
			cut = ""
			if (seg > 1) {
				f = cutdir "/seg" (seg - 1) ".cut"
				if ((getline cut < f) <= 0) cut = ""
				close(f)
			}
			if (cut != "" && $1 !~ /^[0-9]+$/) $0 = cut $0
		}
		{
			if ($1 !~ /^[0-9]+$/) bad("segment " seg " line " FNR " is not numbered: " $0)
			n = $1 + 0
			if (FNR == 1) {
				first[seg] = n
				if (seg == 1 && n != 1) bad("the output starts at line " n ", not 1")
				if (seg > 1 && n <= before[seg - 1])
					bad("segment " seg " starts at line " n ", printed before checkpoint " seg - 1 " (up to " before[seg - 1] ")")
				if (seg > 1 && n > top + 1) bad("lines " top + 1 ".." n - 1 " are missing before segment " seg)
			} else if (n != prev + 1) {
				bad("segment " seg ": line " n " follows line " prev)
			}
			if (n in line && line[n] != $0) bad("line " n " differs when printed again: \"" line[n] "\" then \"" $0 "\"")
			line[n] = $0
			prev = n
			if (n > top) top = n
		}
		END {
			if (failed) exit 1
			for (i = 1; i <= top; i++) print line[i] > out
		}' "${segs[@]}" >"$T/check.txt" || fail "$(cat "$T/check.txt") (seed $SEED)"
	cmp -s "$T/ref.out" "$T/merged.out" || {
		diff "$T/ref.out" "$T/merged.out" | head -n 20 >"$T/diff"
		fail "the output differs from the uninterrupted run (seed $SEED): $(cat "$T/diff")"
	}
}
