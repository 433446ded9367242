#!/bin/bash
# test/bench/run.sh: benchmarks (`make bench`). For each workload, RUNS
# times (default 3), with a private coordinator, and medians printed:
#   ckpt ms      wall time of `cryo_command --bcheckpoint`
#   stall ms     how long the application was frozen (SUSPEND to RESUME,
#                full-stop mode), as membench sees it: the longest gap in
#                its 1 ms wait loop after the checkpoint began ("<3" when
#                none was 3 ms or more)
#   restart ms   from starting `cryo_restart IMAGE` to the program running
#                again: membench prints "@@RESUMED" at once (read through a
#                pipe, so no polling delay); for the idle interpreter, until
#                python's executable is mapped again and cryo_restart is not
#                (2 ms polls)
#   image MiB    total bytes of the images
#   dd ms        the same number of bytes written to the same directory with
#                dd (buffered, no sync): what any writer pays; and the
#                ratio ckpt / dd. Fresh memory is 3-5 times dearer than
#                memory freed a moment ago on this machine (free page
#                reporting: the host takes freed pages back), so both write
#                into memory just freed: before the checkpoint, dd writes
#                and deletes a file as big as the memory (not timed); the
#                timed dd runs right after the images are deleted.
#   cat ms       the image read back with cat to /dev/null (page cache, as
#                the restart reads it)
# Workloads: membench (test/apps/membench.c) with SIZES MiB of random
# (incompressible) or heap-like (compressible, about 5x) memory, each stored
# uncompressed (CRYO_COMPRESS=0) and compressed (cryo's default level, or
# CRYO_COMPRESS if set); every restart checks that every byte came back.
# Then an idle /usr/bin/python3 -c 'import time; time.sleep(1e6)'.
# Then the issue #5 targets against what was measured, the figures of a peer
# checkpointer (dmtcp_launch, or a criu that passes `criu check`) when one
# is installed, else the reference figures measured here before (issue #5),
# and the wrappers' overhead: test/apps/pidloop's getpid loop and
# fork+exec+wait loop, without cryo and under cryo_launch, as a ratio.
# Writes build/bench/results.json. Then, each with its own table and JSON
# in build/bench/: test/bench/multiproc.sh (a bash pipeline and a Python
# pool), cow.sh (the stall, full-stop against copy-on-write) and
# incremental.sh (incremental checkpoints after 1% of the memory changed).
#
# Time: about 3 minutes on this 2-core machine when it is quiet, 2 of them
# for the 2 GiB rows (CRYO_BENCH_SIZES="64 512" leaves them out); the
# machine needs about 7 GiB free for them.
#
# Environment: CRYO_BENCH_RUNS (3), CRYO_BENCH_SIZES ("64 512 2048", MiB),
# CRYO_BENCH_PATTERNS ("random heap"), CRYO_BENCH_MODES ("raw zstd": the
# membench rows uncompressed, compressed), CRYO_BENCH_PYTHON (1: the idle
# python3 row), CRYO_BENCH_OVERHEAD (1: the wrappers' overhead),
# CRYO_BENCH_DIR (where images go;
# default a temporary directory under $TMPDIR), CRYO_BIN, and the usual
# CRYO_COMPRESS, CRYO_THREADS and CRYO_LOG for cryo.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
RUNS=${CRYO_BENCH_RUNS:-3}
SIZES=${CRYO_BENCH_SIZES:-64 512 2048}
PATTERNS=${CRYO_BENCH_PATTERNS:-random heap}
MODES=${CRYO_BENCH_MODES:-raw zstd}
COMPRESSED_LEVEL=${CRYO_COMPRESS:-}	# empty: the library's default
unset CRYO_COMPRESS
OUT=$ROOT/build/bench/results.json
STEP=300	# seconds allowed for any one step
GAP_MS=3	# membench reports freezes of this many ms or more
PIDS=()
COORD_PID=

die() { echo "bench: $*" >&2; exit 1; }
now_us() { REPLY=${EPOCHREALTIME/./}; }

cleanup() {
	local p
	for p in "${PIDS[@]}" $COORD_PID; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	exec 7<&- 2>/dev/null
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building"
make -s -j2 all >/dev/null || die "the build failed"
for b in cryo_coordinator cryo_launch cryo_command cryo_restart; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing"
done
[ -x build/test/apps/membench ] || die "build/test/apps/membench is missing"
RESTART_EXE=$(readlink -f "$BIN/cryo_restart")
PY_EXE=$(readlink -f /usr/bin/python3)
if [ -n "${CRYO_BENCH_DIR:-}" ]; then
	mkdir -p "$CRYO_BENCH_DIR" || die "cannot create $CRYO_BENCH_DIR"
	WORK=$(mktemp -d "$CRYO_BENCH_DIR/cryo-bench.XXXXXX")
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/cryo-bench.XXXXXX")
fi
[ -d "$WORK" ] || die "mktemp"
mkfifo "$WORK/pipe" || die "mkfifo"
exec 7<>"$WORK/pipe"	# read end kept open by us; the restart writes into it

start_coordinator() {
	rm -f "$WORK/port"
	"$BIN/cryo_coordinator" --port 0 --port-file "$WORK/port" --ckptdir "$WORK/ckpt" \
		>/dev/null 2>"$WORK/coord.err" </dev/null &
	COORD_PID=$!
	for _ in $(seq 1 500); do
		[ -s "$WORK/port" ] && break
		kill -0 "$COORD_PID" 2>/dev/null || die "the coordinator exited: $(cat "$WORK/coord.err")"
		sleep 0.01
	done
	read -r PORT <"$WORK/port" || die "no port from the coordinator"
	COORD=127.0.0.1:$PORT
}

stop_coordinator() {
	kill -TERM "$COORD_PID" 2>/dev/null && wait "$COORD_PID" 2>/dev/null
	COORD_PID=
	rm -rf "$WORK/ckpt"
}

# wait_line FILE PATTERN: until a line of FILE matches (STEP seconds).
wait_line() {
	local end=$((SECONDS + STEP))
	until grep -qx "$2" "$1" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || die "no '$2' in $1 after $STEP s"
		sleep 0.01
	done
}

# stall_after FILE LINES: the longest @@GAP (µs) membench printed after its
# first LINES lines, waiting up to 2 s for one; -1 if none came.
stall_after() {
	local end=$((SECONDS + 2)) g
	while :; do
		g=$(tail -n +"$(($2 + 1))" "$1" | sed -n 's/^@@GAP //p' | sort -n | tail -n 1)
		[ -n "$g" ] && { REPLY=$g; return; }
		[ "$SECONDS" -lt "$end" ] || { REPLY=-1; return; }
		sleep 0.05
	done
}

# one_run KIND MIB PATTERN LEVEL: one checkpoint + restart. Sets R_CKPT
# R_STALL R_RESTART R_BYTES R_DD R_CAT (µs, bytes; R_STALL -1: under GAP_MS).
one_run() {
	local kind=$1 mib=$2 pattern=$3 level=$4 app t0 t1 images img line maps end mibs nl
	local -a env=()
	[ -n "$level" ] && env=("CRYO_COMPRESS=$level")
	start_coordinator
	if [ "$kind" = membench ]; then
		env "${env[@]}" "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" \
			"$ROOT/build/test/apps/membench" "$mib" "$GAP_MS" "$pattern" \
			>"$WORK/app.out" 2>"$WORK/app.err" </dev/null &
		app=$!
		PIDS=("$app")
		wait_line "$WORK/app.out" "@@READY 1"
		sleep 0.2	# let a page-fault storm of the fill settle
	else
		env "${env[@]}" "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" \
			/usr/bin/python3 -c 'import time; time.sleep(1e6)' >"$WORK/app.out" 2>"$WORK/app.err" </dev/null &
		app=$!
		PIDS=("$app")
		sleep 1	# let the interpreter start and settle
	fi
	kill -0 "$app" 2>/dev/null || die "$kind exited: $(cat "$WORK/app.err")"
	dd if=/dev/zero of="$WORK/warm" bs=1M count=$((mib + 1)) status=none || die "dd failed"
	rm -f "$WORK/warm"

	nl=$(wc -l <"$WORK/app.out")
	now_us; t0=$REPLY
	images=$(timeout "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint 2>"$WORK/ckpt.err") ||
		die "checkpoint of $kind failed: $(cat "$WORK/ckpt.err")"
	now_us; t1=$REPLY
	R_CKPT=$((t1 - t0))
	R_STALL=-1
	[ "$kind" = membench ] && { stall_after "$WORK/app.out" "$nl"; R_STALL=$REPLY; }
	R_BYTES=0
	for img in $images; do
		R_BYTES=$((R_BYTES + $(stat -c %s "$img")))
	done
	kill -KILL "$app"
	wait "$app" 2>/dev/null

	now_us; t0=$REPLY
	# shellcheck disable=SC2086
	"$BIN/cryo_restart" --coord "$COORD" $images >"$WORK/pipe" 2>"$WORK/restart.err" </dev/null &
	app=$!
	PIDS=("$app")
	if [ "$kind" = membench ]; then
		while :; do
			IFS= read -r -t "$STEP" line <&7 || die "membench did not resume: $(cat "$WORK/restart.err")"
			[ "$line" = "@@RESUMED" ] && break
		done
		now_us; t1=$REPLY
		kill -USR1 "$app"
		while :; do
			IFS= read -r -t "$STEP" line <&7 || die "membench did not finish after the restart"
			case $line in
			@@PASS) break ;;
			@@FAIL*) die "membench after restart: $line" ;;
			esac
		done
		wait "$app" || die "membench after restart exited with status $?: $(cat "$WORK/restart.err")"
	else
		end=$((SECONDS + STEP))
		while :; do
			kill -0 "$app" 2>/dev/null || die "python3 did not survive the restart: $(cat "$WORK/restart.err")"
			mapfile -t maps <"/proc/$app/maps" 2>/dev/null
			# python's own text mapped again and cryo_restart gone (a
			# child not yet exec'd shows neither)
			if [[ "${maps[*]}" == *"$PY_EXE"* && "${maps[*]}" != *"$RESTART_EXE"* ]]; then
				break
			fi
			[ "$SECONDS" -lt "$end" ] || die "python3 not restored after $STEP s"
			sleep 0.002
		done
		now_us; t1=$REPLY
		kill -KILL "$app"
		wait "$app" 2>/dev/null
	fi
	R_RESTART=$((t1 - t0))
	PIDS=()

	now_us; t0=$REPLY
	# shellcheck disable=SC2086
	cat $images >/dev/null || die "cat of the images failed"
	now_us; t1=$REPLY
	R_CAT=$((t1 - t0))
	stop_coordinator

	mibs=$(((R_BYTES + 1048575) / 1048576))
	now_us; t0=$REPLY
	dd if=/dev/zero of="$WORK/plain" bs=1M count="$mibs" status=none || die "dd failed"
	now_us; t1=$REPLY
	R_DD=$((t1 - t0))
	rm -f "$WORK/plain"
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
ms() { printf '%d.%01d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
ratio() { printf '%d.%02d' $(($2 / $1)) $(((($2 % $1) * 100) / $1)); }
stall_ms() { if [ "$1" -lt 0 ]; then echo "<$GAP_MS"; else ms "$1"; fi; }
json_list() { local IFS=,; echo "$*"; }

# Workloads: kind:MiB:pattern:level (level "" = cryo's default, or
# CRYO_COMPRESS as given to the bench).
WORKLOADS=()
for s in $SIZES; do
	for p in $PATTERNS; do
		[[ " $MODES " == *" raw "* ]] && WORKLOADS+=("membench:$s:$p:0")
		[[ " $MODES " == *" zstd "* ]] && WORKLOADS+=("membench:$s:$p:${COMPRESSED_LEVEL:-default}")
	done
done
[ "${CRYO_BENCH_PYTHON:-1}" = 1 ] && WORKLOADS+=("python-idle:0:-:${COMPRESSED_LEVEL:-default}")

declare -A ROW	# name -> "ckpt stall restart bytes dd cat" medians (µs, bytes)
JSON_ROWS=()
echo "bench: $RUNS runs of each; images in $(dirname "$WORK")"
printf '\n%-24s %9s %9s %8s %10s %9s %8s %9s %8s\n' workload "image MiB" "ckpt ms" "stall ms" "restart ms" \
	"dd ms" "ckpt/dd" "cat ms" "rst/cat"
for wl in "${WORKLOADS[@]}"; do
	IFS=: read -r kind mib pattern level <<<"$wl"
	lv=$level
	[ "$lv" = default ] && lv=
	ck=() st=() rs=() by=() dd=() ca=()
	for ((r = 1; r <= RUNS; r++)); do
		one_run "$kind" "$mib" "$pattern" "$lv"
		ck+=("$R_CKPT") st+=("$R_STALL") rs+=("$R_RESTART") by+=("$R_BYTES") dd+=("$R_DD") ca+=("$R_CAT")
	done
	if [ "$kind" = membench ]; then
		name="$pattern-${mib}M-$([ "$level" = 0 ] && echo raw || echo "zstd${lv:+$lv}")"
	else
		name="python3-idle-zstd${lv:+$lv}"
	fi
	c=$(median "${ck[@]}") s=$(median "${st[@]}") r=$(median "${rs[@]}") b=$(median "${by[@]}")
	d=$(median "${dd[@]}") a=$(median "${ca[@]}")
	ROW[$name]="$c $s $r $b $d $a"
	printf '%-24s %9s %9s %8s %10s %9s %8s %9s %8s\n' "$name" \
		"$((b / 1048576)).$(((b % 1048576) * 10 / 1048576))" "$(ms "$c")" \
		"$([ "$kind" = membench ] && stall_ms "$s" || echo -)" "$(ms "$r")" "$(ms "$d")" \
		"$(ratio "$d" "$c")" "$(ms "$a")" "$(ratio "$a" "$r")"
	JSON_ROWS+=("$(printf '{"name":"%s","kind":"%s","pattern":"%s","memory_mib":%d,"compress":"%s","runs":%d,"checkpoint_ms":%s,"stall_ms":%s,"restart_ms":%s,"image_bytes":%d,"dd_write_ms":%s,"cat_read_ms":%s,"samples":{"checkpoint_us":[%s],"stall_us":[%s],"restart_us":[%s],"image_bytes":[%s],"dd_write_us":[%s],"cat_read_us":[%s]}}' \
		"$name" "$kind" "$pattern" "$mib" "$level" "$RUNS" "$(ms "$c")" \
		"$([ "$s" -lt 0 ] && echo null || ms "$s")" "$(ms "$r")" "$b" "$(ms "$d")" "$(ms "$a")" \
		"$(json_list "${ck[@]}")" "$(json_list "${st[@]}")" "$(json_list "${rs[@]}")" \
		"$(json_list "${by[@]}")" "$(json_list "${dd[@]}")" "$(json_list "${ca[@]}")")")
done

# The targets of issue #5, against the largest size measured (2 GiB when
# CRYO_BENCH_SIZES has 2048).
big=0
for s in $SIZES; do [ "$s" -gt "$big" ] && big=$s; done
TARGET_ROWS=()
target() {	# target TEXT MEASURED LIMIT VERDICT-EXPR-RESULT
	printf '  %-52s %-22s %s\n' "$1" "$2" "$3"
	TARGET_ROWS+=("$(printf '{"target":"%s","measured":"%s","verdict":"%s"}' "$1" "$2" "$3")")
}
verdict() { if [ "$1" -le "$2" ]; then echo met; else echo "missed ($(ratio "$2" "$1")x the limit)"; fi; }
echo
echo "issue #5 targets (at $big MiB$([ "$big" -lt 2048 ] && echo '; the targets are for 2 GiB: CRYO_BENCH_SIZES="64 512 2048"'))"
dflt=zstd${COMPRESSED_LEVEL}
if [ -n "${ROW[random-${big}M-raw]:-}" ]; then
	read -r c s r b d a <<<"${ROW[random-${big}M-raw]}"
	target "random, uncompressed: checkpoint within 1.1x dd" "$(ratio "$d" "$c")x dd" "$(verdict "$c" $((d * 11 / 10)))"
	target "restart within 0.5 s (random, uncompressed)" "$(ms "$r") ms" "$(verdict "$r" 500000)"
fi
if [ -n "${ROW[random-${big}M-$dflt]:-}" ]; then
	read -r c s r b d a <<<"${ROW[random-${big}M-$dflt]}"
	target "random, compressed: checkpoint within 1.3x dd" "$(ratio "$d" "$c")x dd" "$(verdict "$c" $((d * 13 / 10)))"
fi
if [ -n "${ROW[heap-${big}M-$dflt]:-}" ]; then
	read -r c s r b d a <<<"${ROW[heap-${big}M-$dflt]}"
	target "compressible: checkpoint under 1.5 s (scaled to ${big} MiB)" "$(ms "$c") ms" \
		"$(verdict "$c" $((1500000 * big / 2048)))"
fi
worst=-1
for n in "${!ROW[@]}"; do
	[[ $n == python3* ]] && continue
	read -r c s r b d a <<<"${ROW[$n]}"
	[ "$s" -gt "$worst" ] && worst=$s
done
[ "$worst" -ge 0 ] && target "application stall under 50 ms at every size" "$(stall_ms "$worst") ms (worst)" \
	"$(verdict "$worst" 50000)"
[ "$worst" -lt 0 ] && target "application stall under 50 ms at every size" "<$GAP_MS ms" met
if [ -n "${ROW[python3-idle-$dflt]:-}" ]; then
	read -r c s r b d a <<<"${ROW[python3-idle-$dflt]}"
	target "idle python3: checkpoint under 50 ms" "$(ms "$c") ms" "$(verdict "$c" 50000)"
	target "idle python3: image under 3 MB" "$((b / 1000)) kB" "$(verdict "$b" 3000000)"
fi

# A peer checkpointer in the same run, or the figures measured here before.
PEER_JSON='"peer":null'
echo
if command -v dmtcp_launch >/dev/null 2>&1; then
	echo "peer: dmtcp_launch is installed ($(command -v dmtcp_launch)); not driven by this script yet"
	PEER_JSON='"peer":"dmtcp installed, not run"'
elif command -v criu >/dev/null 2>&1 && criu check >/dev/null 2>&1; then
	echo "peer: criu passes 'criu check' ($(command -v criu)); not driven by this script yet"
	PEER_JSON='"peer":"criu installed, not run"'
else
	echo "peer: no dmtcp_launch, no working criu here; reference figures measured on this machine (issue #5):"
	printf '  %-46s %s\n' \
		"CRIU 4.2, 2 GiB touched, dump / restore" "3.9-4.8 s / 2.75 s (no compression)" \
		"DMTCP, 2 GiB random, uncompressed" "8.4 s (2.3x dd)" \
		"DMTCP, 2 GiB random, default gzip" "84 s" \
		"DMTCP, 2 GiB compressible" "17.5 s" \
		"DMTCP, restart of 2 GiB (page cache)" "1.85 s" \
		"DMTCP, fixed cost per process" "0.5 s, 20 MiB" \
		"DMTCP, idle python3" "0.9 s, 7.6 MB"
	PEER_JSON='"peer":{"source":"issue #5 reference","criu_2g_dump_s":[3.9,4.8],"criu_2g_restore_s":2.75,"dmtcp_2g_random_raw_s":8.4,"dmtcp_2g_random_gzip_s":84,"dmtcp_2g_compressible_s":17.5,"dmtcp_2g_restart_s":1.85,"dmtcp_fixed_s":0.5,"dmtcp_fixed_mib":20,"dmtcp_python_idle_s":0.9,"dmtcp_python_idle_mb":7.6}'
fi

# Wrapper overhead: the same loops with and without cryo (issue #3's
# getpid-heavy and fork/exec/wait-heavy runs), medians of RUNS runs.
overhead() {	# overhead TEST N: sets O_BARE O_CRYO (ns per operation)
	local b=() c=() r v
	start_coordinator
	for ((r = 1; r <= RUNS; r++)); do
		v=$("$ROOT/build/test/apps/pidloop" "$1" "$2") || die "pidloop $1 failed"
		b+=("${v#ns_per_op }")
		v=$("$BIN/cryo_launch" --coord "$COORD" "$ROOT/build/test/apps/pidloop" "$1" "$2") ||
			die "pidloop $1 under cryo failed"
		c+=("${v#ns_per_op }")
	done
	stop_coordinator
	O_BARE=$(median "${b[@]}") O_CRYO=$(median "${c[@]}")
}
OVER_ROWS=()
[ "${CRYO_BENCH_OVERHEAD:-1}" = 1 ] &&
	printf '\n%-24s %14s %14s %8s\n' "wrapped calls" "without ns/op" "with cryo ns/op" "ratio"
for t in "getpid:2000000" "spawn:300"; do
	[ "${CRYO_BENCH_OVERHEAD:-1}" = 1 ] || break
	overhead "${t%%:*}" "${t#*:}"
	label=$([ "${t%%:*}" = getpid ] && echo "getpid+getppid" || echo "fork+exec+wait")
	printf '%-24s %14d %14d %8s\n' "$label" "$O_BARE" "$O_CRYO" "$(ratio "$O_BARE" "$O_CRYO")"
	OVER_ROWS+=("$(printf '{"name":"%s","bare_ns":%d,"cryo_ns":%d,"ratio":%s}' "$label" "$O_BARE" "$O_CRYO" \
		"$(ratio "$O_BARE" "$O_CRYO")")")
done

mkdir -p "$(dirname "$OUT")"
{
	printf '{"date":"%s","commit":"%s","kernel":"%s","cpus":%d,"cpu":"%s","compress":"%s","threads":"%s","image_dir":"%s",\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(uname -r)" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 | tr -d '"\\')" \
		"${COMPRESSED_LEVEL:-default}" "${CRYO_THREADS:-default}" "$(dirname "$WORK")"
	printf ' "results":[\n  %s\n ],\n' "$(IFS=$'\n'; echo "${JSON_ROWS[*]}" | sed '2,$s/^/  /' | sed '$!s/$/,/')"
	printf ' "targets":[%s],\n' "$(IFS=,; echo "${TARGET_ROWS[*]}")"
	printf ' %s,\n' "$PEER_JSON"
	printf ' "overhead":[%s]}\n' "$(IFS=,; echo "${OVER_ROWS[*]}")"
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo
echo "medians of $RUNS runs; written to ${OUT#"$ROOT"/}"
bash "$ROOT/test/bench/multiproc.sh" || die "the multi-process benchmark failed"
bash "$ROOT/test/bench/cow.sh" || die "the copy-on-write benchmark failed"
bash "$ROOT/test/bench/incremental.sh" || die "the incremental benchmark failed"
