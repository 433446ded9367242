#!/bin/bash
# test/integration/run.sh: runs one test program uninterrupted (the
# reference) and then under cryo, checkpointing, killing and restarting it
# (or migrating it over loopback) at each "@@READY k" it prints, and compares
# the two: same stdout, same exit status. test/run-all.sh calls it once per
# test; it can be run by hand too:
#
#   test/integration/run.sh [OPTIONS] NAME -- CMD [ARGS...]
#
#   --cycles N         checkpoint at the first N markers (default 3); later
#                      markers just get the continue signal
#   --mode restart     checkpoint, SIGKILL, restart (default); restarts
#                      alternate between `cryo_restart IMAGE...` and the
#                      generated cryo_restart_script.sh run from another dir
#   --mode migrate     stream the process to a `LM_DEST_PORT=P cryo_restart`
#                      on loopback; the first cycle uses LM_DEST_IP/PORT and
#                      `cryo_launch --exit-after-ckpt` + --bcheckpoint, later
#                      ones `cryo_command --migrate`; the source must exit
#   --count N          for programs without markers that print 0..N-1 one
#                      per line (test/apps/count.py, count.pl): checkpoint
#                      at random moments, then check the segments
#   --timeout S        whole-run limit per run in seconds (default 300)
#   --reference-only   run the reference twice and check it is deterministic
#                      (no cryo needed)
#   --seed N           seed for the random moments of --count
#   --keep             keep the temporary directory even on success
#   -v                 print progress lines
#
# The protocol with the program (see test/lib/harness.h): it prints
# "@@READY k" and waits for SIGUSR1. In the reference run SIGUSR1 is sent at
# once. In the cryo run: `cryo_command --bcheckpoint` (it must print the image
# paths, and `cryo_image verify` must accept each), SIGKILL, wait until the
# process is gone, restart with stdout to the next segment file, wait until
# the restored process is really the program again (SIGUSR1 blocked, no
# cryo_restart left in its maps), then SIGUSR1.
#
# Environment: CRYO_BIN (default build/bin), TMPDIR, CRYO_TEST_TIMEOUT,
# CRYO_TEST_STEP_TIMEOUT (one checkpoint, restart, migration; default 120),
# CRYO_TEST_LOG (level for the cryo run; default debug),
# CRYO_TEST_REFERENCE_ONLY=1 (same as --reference-only).
# Exit status: 0 pass, 1 fail, 2 usage. The last line is "PASS NAME ..." or
# "FAIL NAME: reason"; on failure the temporary directory with every log
# (cryo.log, segN.out/err, ...) is kept and its path printed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CRYO_BIN:-$ROOT/build/bin}

CYCLES=3
MODE=restart
COUNT=0
TIMEOUT=${CRYO_TEST_TIMEOUT:-300}
STEP_TIMEOUT=${CRYO_TEST_STEP_TIMEOUT:-120}
REF_ONLY=${CRYO_TEST_REFERENCE_ONLY:-0}
LOGLEVEL=${CRYO_TEST_LOG:-debug}
SEED=
KEEP=0
VERBOSE=0

usage() {
	sed -n '2,/^\[ -n/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--cycles) CYCLES=${2:?}; shift 2 ;;
	--mode) MODE=${2:?}; shift 2 ;;
	--count) COUNT=${2:?}; shift 2 ;;
	--timeout) TIMEOUT=${2:?}; shift 2 ;;
	--seed) SEED=${2:?}; shift 2 ;;
	--reference-only) REF_ONLY=1; shift ;;
	--keep) KEEP=1; shift ;;
	-v) VERBOSE=1; shift ;;
	-h | --help) usage ;;
	--) shift; break ;;
	-*) echo "run.sh: unknown option $1" >&2; usage ;;
	*)
		[ -z "${NAME:-}" ] || { echo "run.sh: two test names: $NAME, $1" >&2; usage; }
		NAME=$1; shift ;;
	esac
done
[ -n "${NAME:-}" ] && [ $# -gt 0 ] || usage
case $MODE in restart | migrate) ;; *) echo "run.sh: --mode restart|migrate" >&2; exit 2 ;; esac
[[ $CYCLES =~ ^[0-9]+$ && $COUNT =~ ^[0-9]+$ && $TIMEOUT =~ ^[0-9]+$ ]] ||
	{ echo "run.sh: --cycles, --count and --timeout take numbers" >&2; exit 2; }
CMD=("$@")
[ -n "$SEED" ] || SEED=$(( (${EPOCHREALTIME/./} + $$) % 1000000 ))
RANDOM=$SEED

T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-test-$NAME.XXXXXX") || { echo "FAIL $NAME: mktemp -d"; exit 1; }
# Our own messages go to stdout; bash's job notices ("Killed ...") and any
# stray errors go to a file shown on failure.
exec 2>>"$T/shell.err"
RESULT=
RESULT_DETAIL=
TRACKED=()		# every process this run started (apps, restarts, helpers)
SEEN_BEFORE=()		# count mode: largest number out before checkpoint c
COORD_PID=
START_MS=0

# ---------------------------------------------------------------- helpers

now_ms() { local t=${EPOCHREALTIME/./}; REPLY=$((t / 1000)); }

log() {
	now_ms
	printf '%6d.%03d %s\n' $(((REPLY - START_MS) / 1000)) $(((REPLY - START_MS) % 1000)) "$*" >>"$T/run.log"
	[ "$VERBOSE" = 1 ] && echo "  [$NAME] $*"
	return 0
}

# Shows the last lines of a file, indented, if it has any.
show() {
	[ -s "$1" ] || return 0
	echo "---- ${1#"$T"/} (last ${2:-20} lines)"
	tail -n "${2:-20}" "$1" | sed 's/^/  | /'
}

# fail REASON: print what helps, keep the directory, exit 1 (on_exit cleans up).
fail() {
	RESULT="FAIL $NAME: $*"
	log "FAIL: $*"
	{
		echo "==== $NAME failed: $*"
		show "$T/run.log" 40
		local f
		for f in "$T"/ref*.err "$T"/seg*.err "$T"/ckpt*.err "$T"/coord.err "$T"/verify*.log \
			"$T"/shell.err; do
			[ -e "$f" ] && show "$f" 15
		done
		show "$T/cryo.log" 40
	} 2>/dev/null
	exit 1
}

# alive PID: the process exists and is not a zombie (PID 1 here reaps
# orphans late, so a zombie counts as gone).
alive() {
	local s
	[ -n "$1" ] || return 1
	read -r s 2>/dev/null </proc/"$1"/stat || return 1
	s=${s##*) }
	s=${s%% *}
	[ "$s" != Z ] && [ "$s" != X ]
}

# wait_gone PID SECONDS: 0 once PID is gone, 1 on timeout. The caller reaps
# its own children with `wait PID` (once: a second wait finds no child).
wait_gone() {
	local end
	now_ms; end=$((REPLY + $2 * 1000))
	while alive "$1"; do
		now_ms; [ "$REPLY" -lt "$end" ] || return 1
		sleep 0.02
	done
	return 0
}

# descendants PID...: the given pids and all their descendants, parents first.
descendants() {
	local -A kids=()
	local f line pid ppid rest queue=("$@") out=()
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		pid=${f#/proc/}; pid=${pid%/stat}
		line=${line##*) }
		read -r _ ppid rest <<<"$line"
		kids[$ppid]+=" $pid"
	done
	while [ ${#queue[@]} -gt 0 ]; do
		pid=${queue[0]}; queue=("${queue[@]:1}")
		[ -n "$pid" ] || continue
		out+=("$pid")
		# shellcheck disable=SC2206
		[ -n "${kids[$pid]:-}" ] && queue+=(${kids[$pid]})
	done
	echo "${out[@]}"
}

# elapsed: seconds since the start, one decimal.
elapsed() {
	local d
	now_ms; d=$((REPLY - START_MS))
	echo "$((d / 1000)).$(((d % 1000) / 100)) s"
}

check_deadline() {
	now_ms
	[ "$REPLY" -lt "$DEADLINE" ] || fail "timed out after $TIMEOUT s ($*)"
}

track() { TRACKED+=("$1"); }

# reap_last: waits (bounded) for the last process started for the program
# (cryo_launch, cryo_restart or the restart script) and puts its exit status
# in REPLY.
reap_last() {
	wait_gone "$LAST_CHILD" 20 || fail "pid $LAST_CHILD ($*) still running 20 s after the program ended"
	wait "$LAST_CHILD" 2>/dev/null
	REPLY=$?
}

# kill_tracked: SIGKILL every process this run started, and their
# descendants, by pid; the coordinator gets SIGTERM first.
kill_tracked() {
	local p pids
	pids=$(descendants "${TRACKED[@]}")
	for p in $pids; do
		alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	for p in $pids; do
		wait_gone "$p" 5 || echo "run.sh: process $p did not die" >&2
		wait "$p" 2>/dev/null
	done
	TRACKED=()
	if [ -n "$COORD_PID" ] && alive "$COORD_PID"; then
		kill -TERM "$COORD_PID" 2>/dev/null
		wait_gone "$COORD_PID" 5 || { kill -KILL "$COORD_PID" 2>/dev/null; wait_gone "$COORD_PID" 5; }
		wait "$COORD_PID" 2>/dev/null
	fi
	COORD_PID=
}

on_exit() {
	trap - EXIT INT TERM HUP
	kill_tracked
	[ -n "$RESULT" ] || RESULT="FAIL $NAME: runner stopped unexpectedly (see $T/run.log)"
	if [ "${RESULT%% *}" = PASS ] && [ "$KEEP" = 0 ]; then
		rm -rf "$T"
	else
		echo "logs kept in $T"
	fi
	echo "$RESULT${RESULT_DETAIL:+ ($RESULT_DETAIL)}"
	[ "${RESULT%% *}" = PASS ]
}
trap on_exit EXIT
trap 'RESULT="FAIL $NAME: interrupted"; exit 1' INT TERM HUP

# has_marker K FILE...: a whole line "@@READY K" is in one of the files.
has_marker() {
	local k=$1; shift
	cat "$@" 2>/dev/null | grep -qx "@@READY $k"
}

# max_seen FILE...: largest number on the last line of the files (count mode).
max_seen() {
	local f v m=-1
	for f in "$@"; do
		[ -s "$f" ] || continue
		v=$(tail -n 1 "$f")
		[[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$m" ] && m=$v
	done
	REPLY=$m
}

# tcp_listening PORT: something listens on PORT (loopback or any address).
tcp_listening() {
	local hex
	hex=$(printf ':%04X ' "$1")
	grep -qE "^ *[0-9]+: [0-9A-F]+${hex}[0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: a TCP port nobody listens on, in REPLY. Taken below the
# kernel's ephemeral range, so no outgoing connection can hold it by the
# time cryo_restart binds it.
free_port() {
	local i p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
	[ "$lo" -gt 11000 ] 2>/dev/null || lo=32768
	for i in $(seq 1 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		tcp_listening "$p" || { REPLY=$p; return 0; }
	done
	fail "no free TCP port found"
}

# ---------------------------------------------------------- the reference

# reference OUT ERR WORKDIR: runs CMD without cryo, answering every marker
# at once. Sets REF_STATUS.
reference() {
	local out=$1 err=$2 work=$3 pid k=1 end
	mkdir -p "$work"
	TMPDIR=$work "${CMD[@]}" >"$out" 2>"$err" </dev/null &
	pid=$!
	track "$pid"
	now_ms; end=$((REPLY + TIMEOUT * 1000))
	while :; do
		if has_marker "$k" "$out"; then
			log "reference: READY $k"
			kill -USR1 "$pid" 2>/dev/null || fail "reference: cannot signal pid $pid after READY $k"
			k=$((k + 1))
			continue
		fi
		alive "$pid" || break
		now_ms
		[ "$REPLY" -lt "$end" ] || fail "reference run of ${CMD[*]} still running after $TIMEOUT s"
		sleep 0.02
	done
	wait "$pid"
	REF_STATUS=$?
	TRACKED=()
	log "reference: exit status $REF_STATUS, $((k - 1)) markers"
	[ "$REF_STATUS" = 0 ] || fail "reference run (no cryo) exited with status $REF_STATUS: ${CMD[*]}"
	if [ "$COUNT" -gt 0 ]; then
		seq 0 $((COUNT - 1)) | cmp -s - "$out" ||
			fail "reference run did not print exactly 0..$((COUNT - 1))"
	else
		[ "$k" -gt 1 ] || [ "$CYCLES" = 0 ] || fail "reference run printed no @@READY marker"
	fi
	REF_MARKERS=$((k - 1))
}

# --------------------------------------------------------------- cryo run

start_coordinator() {
	local i
	"$BIN/cryo_coordinator" --port 0 --port-file "$T/port" --ckptdir "$CK" \
		>"$T/coord.out" 2>"$T/coord.err" </dev/null &
	COORD_PID=$!
	for i in $(seq 1 500); do
		[ -s "$T/port" ] && read -r PORT <"$T/port" && [[ $PORT =~ ^[0-9]+$ ]] && break
		alive "$COORD_PID" || fail "cryo_coordinator exited at start"
		sleep 0.02
	done
	[[ ${PORT:-} =~ ^[0-9]+$ ]] || fail "cryo_coordinator wrote no port to $T/port in 10 s"
	COORD=127.0.0.1:$PORT
	log "coordinator pid $COORD_PID on $COORD"
}

# cryo_cmd ARGS...: cryo_command against our coordinator, with a time limit.
cryo_cmd() {
	timeout -k 5 "$STEP_TIMEOUT" "$BIN/cryo_command" --coord "$COORD" "$@" </dev/null
}

# checkpoint K: --bcheckpoint, then verify each printed image. Sets IMAGES.
checkpoint() {
	local k=$1 out rc line t0
	now_ms; t0=$REPLY
	out=$(cryo_cmd --bcheckpoint 2>"$T/ckpt$k.err")
	rc=$?
	now_ms
	log "checkpoint $k: rc $rc in $((REPLY - t0)) ms"
	printf '%s\n' "$out" >"$T/ckpt$k.out"
	[ "$rc" = 0 ] || fail "checkpoint $k: cryo_command --bcheckpoint exited with status $rc"
	IMAGES=()
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		[ -f "$line" ] || fail "checkpoint $k: --bcheckpoint printed '$line', which is not an image file"
		IMAGES+=("$line")
	done <<<"$out"
	[ ${#IMAGES[@]} -gt 0 ] || fail "checkpoint $k: --bcheckpoint printed no image path"
	for line in "${IMAGES[@]}"; do
		timeout -k 5 "$STEP_TIMEOUT" "$BIN/cryo_image" verify "$line" >"$T/verify$k.log" 2>&1 </dev/null ||
			fail "checkpoint $k: cryo_image verify rejects $line"
		log "checkpoint $k: image $line ($(stat -c %s "$line") bytes) verified"
	done
}

# is_shell PID: the process is a shell or env (a restart script's wrapper).
is_shell() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	case ${exe##*/} in sh | dash | bash | env) return 0 ;; esac
	return 1
}

# waits_for_usr1 PID: SIGUSR1 is blocked in the main thread, or the main
# thread sits in sigtimedwait (which unblocks what it waits for, so SigBlk
# does not show it meanwhile): either way SIGUSR1 will not kill it.
waits_for_usr1() {
	local blk sc wchan
	blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
	[ -n "$blk" ] && (((0x$blk >> 9) & 1)) && return 0
	read -r wchan 2>/dev/null <"/proc/$1/wchan"
	[[ ${wchan:-} == *sigtimedwait* ]] && return 0
	read -r sc _ 2>/dev/null <"/proc/$1/syscall"
	[ "${sc:-}" = 128 ]	# rt_sigtimedwait
}

# wait_restored ROOTPID NEED_SIGBLK: finds the restored program among ROOTPID
# and its descendants (a restart script may run cryo_restart as a child) and
# waits until it is the program again: no cryo_restart mapping left and, for
# marker tests, waits_for_usr1, so the continue signal cannot hit
# cryo_restart's default disposition. Sets APP_PID.
wait_restored() {
	local root=$1 need=$2 end p cand prev=
	now_ms; end=$((REPLY + STEP_TIMEOUT * 1000))
	while :; do
		cand=
		for p in $(descendants "$root"); do
			alive "$p" && ! is_shell "$p" && { cand=$p; break; }
		done
		if [ -n "$cand" ] && ! grep -qF "$RESTART_EXE" "/proc/$cand/maps" 2>/dev/null &&
			{ [ "$need" = 0 ] || waits_for_usr1 "$cand"; }; then
			# the same process twice in a row: not a passing helper
			[ "$cand" = "$prev" ] && alive "$cand" && { APP_PID=$cand; return 0; }
			prev=$cand
		else
			prev=
		fi
		alive "$root" || fail "restart process $root exited before the program was restored"
		now_ms
		[ "$REPLY" -lt "$end" ] || fail "program not restored $STEP_TIMEOUT s after starting the restart (pid $root)"
		sleep 0.02
	done
}

# restart K: kill the checkpointed process, restart it into segment K+1.
restart() {
	local k=$1 seg=$(($1 + 1)) t0 rpid script
	kill -KILL "$APP_PID" 2>/dev/null
	wait_gone "$APP_PID" 10 || fail "cycle $k: pid $APP_PID still alive 10 s after SIGKILL"
	reap_last "killed in cycle $k"
	log "cycle $k: killed pid $APP_PID"
	now_ms; t0=$REPLY
	if [ $((k % 2)) = 1 ]; then
		"$BIN/cryo_restart" --coord "$COORD" "${IMAGES[@]}" \
			>"$T/seg$seg.out" 2>"$T/seg$seg.err" </dev/null &
		rpid=$!
		log "cycle $k: cryo_restart ${IMAGES[*]} (pid $rpid)"
	else
		script=$CK/cryo_restart_script.sh
		[ -f "$script" ] || fail "cycle $k: the coordinator wrote no $script"
		[ -x "$script" ] || fail "cycle $k: $script is not executable"
		mkdir -p "$T/elsewhere"
		(cd "$T/elsewhere" && exec "$script") >"$T/seg$seg.out" 2>"$T/seg$seg.err" </dev/null &
		rpid=$!
		log "cycle $k: $script from $T/elsewhere (pid $rpid)"
	fi
	track "$rpid"
	LAST_CHILD=$rpid
	wait_restored "$rpid" "$NEED_SIGBLK"
	now_ms
	log "cycle $k: restored as pid $APP_PID ($(readlink "/proc/$APP_PID/exe" 2>/dev/null)) in $((REPLY - t0)) ms"
	NSEG=$seg
}

# migrate K: stream the process to a fresh cryo_restart on loopback.
migrate() {
	local k=$1 seg=$(($1 + 1)) t0 dpid port src=$APP_PID i rc
	if [ "$k" = 1 ]; then port=$LM_PORT; else free_port; port=$REPLY; fi
	now_ms; t0=$REPLY
	LM_DEST_PORT=$port "$BIN/cryo_restart" --coord "$COORD" \
		>"$T/seg$seg.out" 2>"$T/seg$seg.err" </dev/null &
	dpid=$!
	track "$dpid"
	for i in $(seq 1 500); do
		tcp_listening "$port" && break
		alive "$dpid" || fail "cycle $k: LM_DEST_PORT=$port cryo_restart exited at start"
		sleep 0.02
	done
	tcp_listening "$port" || fail "cycle $k: LM_DEST_PORT=$port cryo_restart does not listen after 10 s"
	log "cycle $k: destination pid $dpid listens on $port"
	if [ "$k" = 1 ]; then
		cryo_cmd --bcheckpoint >"$T/ckpt$k.out" 2>"$T/ckpt$k.err"
		rc=$?
		[ "$rc" = 0 ] || fail "cycle $k: --bcheckpoint to LM_DEST_PORT=$port exited with status $rc"
	else
		cryo_cmd --migrate "127.0.0.1:$port" >"$T/ckpt$k.out" 2>"$T/ckpt$k.err"
		rc=$?
		[ "$rc" = 0 ] || fail "cycle $k: cryo_command --migrate 127.0.0.1:$port exited with status $rc"
	fi
	wait_gone "$src" "$STEP_TIMEOUT" || fail "cycle $k: the source pid $src did not exit after migrating"
	reap_last "migration source"
	rc=$REPLY
	log "cycle $k: source pid $src exited with status $rc"
	[ "$rc" -lt 128 ] || fail "cycle $k: the source was killed by signal $((rc - 128)) after migrating"
	LAST_CHILD=$dpid
	wait_restored "$dpid" "$NEED_SIGBLK"
	now_ms
	log "cycle $k: migrated to pid $APP_PID ($(readlink "/proc/$APP_PID/exe" 2>/dev/null)) in $((REPLY - t0)) ms"
	NSEG=$seg
}

cycle() {
	if [ "$MODE" = migrate ]; then
		migrate "$1"
	else
		checkpoint "$1"
		restart "$1"
	fi
}

launch() {
	local extra=()
	mkdir -p "$T/work"
	if [ "$MODE" = migrate ] && [ "$CYCLES" -gt 0 ]; then
		free_port; LM_PORT=$REPLY
		extra=(--exit-after-ckpt)
		TMPDIR=$T/work LM_DEST_IP=127.0.0.1 LM_DEST_PORT=$LM_PORT \
			"$BIN/cryo_launch" --coord "$COORD" --ckptdir "$CK" "${extra[@]}" "${CMD[@]}" \
			>"$T/seg1.out" 2>"$T/seg1.err" </dev/null &
	else
		TMPDIR=$T/work "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$CK" "${CMD[@]}" \
			>"$T/seg1.out" 2>"$T/seg1.err" </dev/null &
	fi
	APP_PID=$!
	LAST_CHILD=$APP_PID
	track "$APP_PID"
	NSEG=1
	log "launched pid $APP_PID: cryo_launch ${extra[*]} ${CMD[*]}"
}

segments() {
	local i
	for ((i = 1; i <= NSEG; i++)); do echo "$T/seg$i.out"; done
}

# run_markers: the cryo run of a program that prints @@READY markers.
run_markers() {
	local k=1 segs
	launch
	while :; do
		check_deadline "waiting for READY $k or the end"
		mapfile -t segs < <(segments)
		if has_marker "$k" "${segs[@]}"; then
			log "READY $k"
			[ "$k" -le "$CYCLES" ] && cycle "$k"
			alive "$APP_PID" || fail "pid $APP_PID gone before the continue signal $k"
			kill -USR1 "$APP_PID" || fail "cannot send SIGUSR1 to pid $APP_PID"
			k=$((k + 1))
			continue
		fi
		alive "$APP_PID" || break
		sleep 0.02
	done
	reap_last "program"
	CRYO_STATUS=$REPLY
	log "program exited with status $CRYO_STATUS after $((k - 1)) markers"
	[ $((k - 1)) -ge "$REF_MARKERS" ] || [ "$CRYO_STATUS" != 0 ] ||
		fail "only $((k - 1)) of $REF_MARKERS markers seen"
}

# run_count: the cryo run of a counting script: cycles at random moments.
run_count() {
	local c target room budget last=0 segs
	launch
	budget=$(((COUNT - 20) / (CYCLES + 1)))
	[ "$budget" -ge 2 ] || fail "--count $COUNT is too small for $CYCLES cycles"
	for ((c = 1; c <= CYCLES; c++)); do
		target=$((last + 3 + RANDOM % (budget - 1)))
		log "cycle $c: waiting for line $target"
		while :; do
			check_deadline "waiting for line $target"
			mapfile -t segs < <(segments)
			max_seen "${segs[@]}"
			[ "$REPLY" -ge "$target" ] && break
			alive "$APP_PID" || fail "the program exited before cycle $c (at $REPLY of $COUNT)"
			sleep 0.01
		done
		mapfile -t segs < <(segments)
		max_seen "${segs[@]}"
		SEEN_BEFORE[$c]=$REPLY	# printed before the image: never again
		cycle "$c"
		mapfile -t segs < <(segments)
		max_seen "${segs[@]}"
		last=$REPLY
	done
	while alive "$APP_PID"; do
		check_deadline "waiting for the end"
		sleep 0.02
	done
	reap_last "program"
	CRYO_STATUS=$REPLY
	log "program exited with status $CRYO_STATUS"
}

# check_count_segments: each segment consecutive integers, each restart
# resuming at or before the previous last + 1 (no gap) but after what was
# printed before its checkpoint began, union exactly 0..COUNT-1.
check_count_segments() {
	local i f line n first last prev_first=-1 prev_last=-1 lineno
	for ((i = 1; i <= NSEG; i++)); do
		f=$T/seg$i.out
		first=-1 last=-1 lineno=0
		while IFS= read -r line || [ -n "$line" ]; do
			lineno=$((lineno + 1))
			[[ $line =~ ^[0-9]+$ ]] || fail "segment $i line $lineno is not a number: '$line'"
			n=$((10#$line))
			if [ "$first" = -1 ]; then
				first=$n
			elif [ "$n" != $((last + 1)) ]; then
				fail "segment $i: $n follows $last"
			fi
			last=$n
		done <"$f"
		if [ "$first" = -1 ]; then
			log "segment $i is empty"
			continue
		fi
		if [ "$prev_last" = -1 ]; then
			[ "$first" = 0 ] || fail "segment $i starts at $first, not 0"
		else
			[ "$first" -le $((prev_last + 1)) ] ||
				fail "gap: segment $i starts at $first after $prev_last"
			[ "$first" -ge "$prev_first" ] ||
				fail "segment $i starts at $first, before the previous segment's start $prev_first"
			[ "$first" -gt "${SEEN_BEFORE[$((i - 1))]:--1}" ] ||
				fail "segment $i starts at $first, but ${SEEN_BEFORE[$((i - 1))]} was printed before checkpoint $((i - 1))"
		fi
		log "segment $i: $first..$last"
		prev_first=$first
		prev_last=$last
	done
	[ "$prev_last" = $((COUNT - 1)) ] || fail "the output ends at $prev_last, not $((COUNT - 1))"
}

# ------------------------------------------------------------------- main

now_ms; START_MS=$REPLY
log "test $NAME: ${CMD[*]} (mode $MODE, cycles $CYCLES, count $COUNT, seed $SEED)"
DEADLINE=$((START_MS + TIMEOUT * 1000))
reference "$T/ref.out" "$T/ref.err" "$T/work-ref"

if [ "$REF_ONLY" = 1 ]; then
	now_ms; DEADLINE=$((REPLY + TIMEOUT * 1000))
	reference "$T/ref2.out" "$T/ref2.err" "$T/work-ref2"
	if ! cmp -s "$T/ref.out" "$T/ref2.out"; then
		diff -u "$T/ref.out" "$T/ref2.out" | head -n 60
		fail "two uninterrupted runs differ: the output is not deterministic"
	fi
	now_ms
	RESULT="PASS $NAME"
	RESULT_DETAIL="reference only, deterministic, $REF_MARKERS markers, $(elapsed)"
	exit 0
fi

for b in cryo_coordinator cryo_launch cryo_command cryo_restart cryo_image; do
	[ -x "$BIN/$b" ] || fail "$BIN/$b is missing: run make first"
done
RESTART_EXE=$(readlink -f "$BIN/cryo_restart")
CK=$T/ckpt
mkdir -p "$CK"
export CRYO_LOG=$LOGLEVEL CRYO_LOG_FILE=$T/cryo.log
now_ms; DEADLINE=$((REPLY + TIMEOUT * 1000))
start_coordinator
if [ "$COUNT" -gt 0 ]; then
	NEED_SIGBLK=0
	run_count
else
	NEED_SIGBLK=1
	run_markers
fi

mapfile -t SEGS < <(segments)
cat "${SEGS[@]}" >"$T/cryo.out"
if [ "$COUNT" -gt 0 ]; then
	[ "$CRYO_STATUS" = "$REF_STATUS" ] ||
		fail "exit status $CRYO_STATUS under cryo, $REF_STATUS without"
	check_count_segments
elif ! cmp -s "$T/ref.out" "$T/cryo.out" || [ "$CRYO_STATUS" != "$REF_STATUS" ]; then
	echo "---- diff reference (-) vs cryo run (+), segments: ${SEGS[*]##*/}"
	diff -u "$T/ref.out" "$T/cryo.out" | head -n 60
	[ "$CRYO_STATUS" = "$REF_STATUS" ] ||
		fail "exit status $CRYO_STATUS under cryo, $REF_STATUS without"
	fail "output differs from the uninterrupted run"
fi
now_ms
RESULT="PASS $NAME"
RESULT_DETAIL="$MODE, $CYCLES cycles, $(elapsed)"
exit 0
