#!/bin/bash
# test/bench/run.sh: benchmarks (`make bench`). For each workload, RUNS
# times (default 3), with a private coordinator:
#   checkpoint   wall time of `cryo_command --bcheckpoint`
#   restart      from starting `cryo_restart IMAGE` to the program running
#                again: membench prints "@@RESUMED" at once (read through a
#                pipe, so no polling delay); for the idle interpreter, until
#                python's executable is mapped again and cryo_restart is not
#                (2 ms polls)
#   image        total bytes of the images
#   plain write  the same number of bytes written to the same directory with
#                dd (buffered, no sync): what any writer would pay
# Workloads: membench with 64 MiB and 1 GiB of random (incompressible)
# memory, which then checks that every byte came back; and an idle
# /usr/bin/python3 -c 'import time; time.sleep(1e6)'.
# Then the wrappers' overhead: test/apps/pidloop's getpid loop and
# fork+exec+wait loop, without cryo and under cryo_launch, as a ratio.
# Prints a table of medians and writes build/bench/results.json.
#
# Environment: CRYO_BENCH_RUNS (3), CRYO_BENCH_SIZES ("64 1024", MiB),
# CRYO_BENCH_DIR (where images go; default a temporary directory under
# $TMPDIR), CRYO_BIN, and the usual CRYO_COMPRESS and CRYO_LOG for cryo.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
RUNS=${CRYO_BENCH_RUNS:-3}
SIZES=${CRYO_BENCH_SIZES:-64 1024}
OUT=$ROOT/build/bench/results.json
STEP=300	# seconds allowed for any one step
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

# one_run KIND MIB: one checkpoint + restart; sets R_CKPT R_RESTART R_BYTES R_DD (µs, bytes).
one_run() {
	local kind=$1 mib=$2 app t0 t1 images img line maps end mibs
	start_coordinator
	if [ "$kind" = membench ]; then
		"$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" \
			"$ROOT/build/test/apps/membench" "$mib" >"$WORK/app.out" 2>"$WORK/app.err" </dev/null &
		app=$!
		PIDS=("$app")
		wait_line "$WORK/app.out" "@@READY 1"
	else
		"$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" \
			/usr/bin/python3 -c 'import time; time.sleep(1e6)' >"$WORK/app.out" 2>"$WORK/app.err" </dev/null &
		app=$!
		PIDS=("$app")
		sleep 1	# let the interpreter start and settle
	fi
	kill -0 "$app" 2>/dev/null || die "$kind exited: $(cat "$WORK/app.err")"

	now_us; t0=$REPLY
	images=$(timeout "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint 2>"$WORK/ckpt.err") ||
		die "checkpoint of $kind failed: $(cat "$WORK/ckpt.err")"
	now_us; t1=$REPLY
	R_CKPT=$((t1 - t0))
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

WORKLOADS=()
for s in $SIZES; do WORKLOADS+=("membench:$s"); done
WORKLOADS+=("python-idle:0")

JSON_ROWS=()
printf '\n%-16s %10s %12s %10s %12s %16s\n' workload "memory" "image MiB" "ckpt ms" "restart ms" "plain write ms"
for w in "${WORKLOADS[@]}"; do
	kind=${w%%:*}
	mib=${w#*:}
	ck=() rs=() by=() dd=()
	for ((r = 1; r <= RUNS; r++)); do
		one_run "$kind" "$mib"
		ck+=("$R_CKPT") rs+=("$R_RESTART") by+=("$R_BYTES") dd+=("$R_DD")
	done
	name=$kind
	[ "$kind" = membench ] && name="membench-${mib}M"
	c=$(median "${ck[@]}") r=$(median "${rs[@]}") b=$(median "${by[@]}") d=$(median "${dd[@]}")
	printf '%-16s %10s %12s %10s %12s %16s\n' "$name" "$([ "$mib" = 0 ] && echo idle || echo "${mib} MiB")" \
		"$((b / 1048576)).$(((b % 1048576) * 10 / 1048576))" "$(ms "$c")" "$(ms "$r")" "$(ms "$d")"
	JSON_ROWS+=("$(printf '{"name":"%s","memory_mib":%d,"runs":%d,"checkpoint_ms":%s,"restart_ms":%s,"image_bytes":%d,"plain_write_ms":%s,"samples":{"checkpoint_us":[%s],"restart_us":[%s],"image_bytes":[%s],"plain_write_us":[%s]}}' \
		"$name" "$mib" "$RUNS" "$(ms "$c")" "$(ms "$r")" "$b" "$(ms "$d")" \
		"$(IFS=,; echo "${ck[*]}")" "$(IFS=,; echo "${rs[*]}")" "$(IFS=,; echo "${by[*]}")" "$(IFS=,; echo "${dd[*]}")")")
done

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
ratio() { printf '%d.%02d' $(($2 / $1)) $(((($2 % $1) * 100) / $1)); }
printf '\n%-24s %14s %14s %8s\n' "wrapped calls" "without ns/op" "with cryo ns/op" "ratio"
OVER_ROWS=()
for t in "getpid:2000000" "spawn:300"; do
	overhead "${t%%:*}" "${t#*:}"
	label=$([ "${t%%:*}" = getpid ] && echo "getpid+getppid" || echo "fork+exec+wait")
	printf '%-24s %14d %14d %8s\n' "$label" "$O_BARE" "$O_CRYO" "$(ratio "$O_BARE" "$O_CRYO")"
	OVER_ROWS+=("$(printf '{"name":"%s","bare_ns":%d,"cryo_ns":%d,"ratio":%s}' "$label" "$O_BARE" "$O_CRYO" \
		"$(ratio "$O_BARE" "$O_CRYO")")")
done

mkdir -p "$(dirname "$OUT")"
{
	printf '{"date":"%s","commit":"%s","kernel":"%s","cpus":%d,"cpu":"%s","compress":"%s","image_dir":"%s",\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(uname -r)" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 | tr -d '"\\')" \
		"${CRYO_COMPRESS:-default}" "$(dirname "$WORK")"
	printf ' "results":[\n  %s\n ],\n' "$(IFS=$'\n'; echo "${JSON_ROWS[*]}" | sed '2,$s/^/  /' | sed '$!s/$/,/')"
	printf ' "overhead":[%s]}\n' "$(IFS=,; echo "${OVER_ROWS[*]}")"
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo
echo "medians of $RUNS runs; written to ${OUT#"$ROOT"/}"
bash "$ROOT/test/bench/multiproc.sh" || die "the multi-process benchmark failed"
