#!/bin/bash
# test/bench/incremental.sh: what incremental images cost and save
# (doc/incremental.md). For each size (default 512 MiB and 2 GiB of
# random, incompressible memory, build/test/apps/dirtybench), RUNS times
# (default 3), with a private coordinator and CRYO_INCREMENTAL=1:
#   full          `cryo_command --bcheckpoint` wall time and image size of
#                 the first (full) image
#   incremental   the same after 1% of the pages were written: the next two
#                 images (median of both), and the time the library itself
#                 reports for writing one ("image ...: N bytes in M ms")
#   restart       from starting `cryo_restart NEWEST` on the chain of three
#                 images to the program running again ("@@RESUMED")
#   write 1%      the program's own time to write one word in 1% of its
#                 pages after a checkpoint, with write tracking (each first
#                 write is a write-protection fault) and without
#                 (CRYO_INCREMENTAL unset), and their ratio
# Prints a table of medians and writes build/bench/incremental.json.
#
# Environment: CRYO_BENCH_RUNS (3), CRYO_BENCH_INCR_SIZES ("512 2048", MiB),
# CRYO_BENCH_DIR (where images go; default $TMPDIR), CRYO_BIN, CRYO_COMPRESS.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
RUNS=${CRYO_BENCH_RUNS:-3}
SIZES=${CRYO_BENCH_INCR_SIZES:-512 2048}
OUT=$ROOT/build/bench/incremental.json
APP=$ROOT/build/test/apps/dirtybench
STEP=300
PIDS=()
COORD_PID=

die() { echo "bench-incremental: $*" >&2; exit 1; }
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

make -s -j2 all >/dev/null || die "the build failed"
[ -x "$APP" ] || die "$APP is missing"
WORK=$(mktemp -d "${CRYO_BENCH_DIR:-${TMPDIR:-/tmp}}/cryo-bench-incr.XXXXXX") || die "mktemp"
mkfifo "$WORK/pipe" || die "mkfifo"
exec 7<>"$WORK/pipe"
export CRYO_LOG=info CRYO_LOG_FILE=$WORK/cryo.log

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

# next_line PREFIX: the next line from the program (fd 7) starting with PREFIX.
next_line() {
	local line
	while :; do
		IFS= read -r -t "$STEP" line <&7 || die "no '$1' from dirtybench: $(tail -3 "$WORK/app.err")"
		case $line in
		"$1"*) REPLY=$line; return ;;
		@@FAIL*) die "dirtybench: $line" ;;
		esac
	done
}

# checkpoint: wall time (µs) in R_T, the image in R_IMG, its size in R_SIZE,
# the library's own write time (ms) in R_LIB.
checkpoint() {
	local t0 t1
	now_us; t0=$REPLY
	R_IMG=$(timeout "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint 2>"$WORK/ckpt.err") ||
		die "checkpoint failed: $(cat "$WORK/ckpt.err")"
	now_us; t1=$REPLY
	R_T=$((t1 - t0))
	R_SIZE=$(stat -c %s "$R_IMG")
	R_LIB=$(grep -F "image $R_IMG:" "$WORK/cryo.log" | tail -1 | sed -n 's/.* in \([0-9]*\) ms$/\1/p')
}

change() {
	kill -USR1 "$1"
	next_line "@@CHANGED"
	set -- $REPLY
	R_CHANGE=$2
}

# one_run MIB: sets the R_* results of one run.
one_run() {
	local mib=$1 app t0 t1
	start_coordinator
	CRYO_INCREMENTAL=1 "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" "$APP" "$mib" 1 \
		>"$WORK/pipe" 2>"$WORK/app.err" </dev/null &
	app=$!
	PIDS=("$app")
	next_line "@@READY"
	checkpoint
	F_T=$R_T F_SIZE=$R_SIZE F_LIB=$R_LIB
	change "$app"
	W_TRACKED=$R_CHANGE
	checkpoint
	I1_T=$R_T I1_SIZE=$R_SIZE I1_LIB=$R_LIB
	change "$app"
	checkpoint
	I2_T=$R_T I2_SIZE=$R_SIZE I2_LIB=$R_LIB
	grep -q "^parent:" <("$BIN/cryo_image" info "$R_IMG") || die "the third image is not incremental"
	kill -KILL "$app"
	wait "$app" 2>/dev/null
	# a "@@RESUMED" the checkpoints' freezes made is no restart
	while IFS= read -r -t 0.2 _ <&7; do :; done
	sync
	now_us; t0=$REPLY
	"$BIN/cryo_restart" --coord "$COORD" "$R_IMG" >"$WORK/pipe" 2>"$WORK/restart.err" </dev/null &
	app=$!
	PIDS=("$app")
	next_line "@@RESUMED"
	now_us; t1=$REPLY
	R_RESTART=$((t1 - t0))
	kill -USR2 "$app"
	next_line "@@PASS"
	wait "$app" || die "dirtybench after the restart failed: $(cat "$WORK/restart.err")"
	stop_coordinator

	# the same writes without tracking
	start_coordinator
	"$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" "$APP" "$mib" 1 \
		>"$WORK/pipe" 2>"$WORK/app.err" </dev/null &
	app=$!
	PIDS=("$app")
	next_line "@@READY"
	checkpoint
	change "$app"
	W_PLAIN=$R_CHANGE
	kill -USR2 "$app"
	next_line "@@PASS"
	wait "$app"
	PIDS=()
	stop_coordinator
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
ms() { printf '%d.%01d' $(($1 / 1000)) $((($1 % 1000) / 100)); }
mib() { printf '%d.%01d' $(($1 / 1048576)) $((($1 % 1048576) * 10 / 1048576)); }

ROWS=()
printf '\n%-8s %8s %9s %8s %9s %9s %8s %10s %10s %10s %7s\n' memory "full ms" "full MiB" "incr ms" \
	"incr lib" "incr MiB" "restart" "write 1%" "untracked" "per page" slower
for s in $SIZES; do
	fts=() fsz=() its=() ilb=() isz=() rst=() wtr=() wpl=()
	for ((r = 1; r <= RUNS; r++)); do
		one_run "$s"
		fts+=("$F_T") fsz+=("$F_SIZE") its+=("$I1_T" "$I2_T") ilb+=("$I1_LIB" "$I2_LIB")
		isz+=("$I1_SIZE" "$I2_SIZE") rst+=("$R_RESTART") wtr+=("$W_TRACKED") wpl+=("$W_PLAIN")
	done
	ft=$(median "${fts[@]}") fs=$(median "${fsz[@]}") it=$(median "${its[@]}") il=$(median "${ilb[@]}")
	is=$(median "${isz[@]}") rs=$(median "${rst[@]}") wt=$(median "${wtr[@]}") wp=$(median "${wpl[@]}")
	pages=$((s * 256 / 100))
	per=$(((wt - wp) * 1000 / pages))	# ns per page, the fault's cost
	ratio=$((wp > 0 ? wt * 10 / wp : 0))
	ratio=$((ratio / 10)).$((ratio % 10))
	printf '%-8s %8s %9s %8s %9s %9s %8s %10s %10s %10s %7s\n' "${s} MiB" "$(ms "$ft")" "$(mib "$fs")" \
		"$(ms "$it")" "$il" "$(mib "$is")" "$(ms "$rs")" "${wt} us" "${wp} us" "${per} ns" "${ratio}x"
	ROWS+=("$(printf '{"memory_mib":%d,"runs":%d,"changed_pages":%d,"full_checkpoint_ms":%s,"full_image_bytes":%d,"incremental_checkpoint_ms":%s,"incremental_write_ms_library":%s,"incremental_image_bytes":%d,"restart_chain3_ms":%s,"write_1pct_tracked_us":%d,"write_1pct_untracked_us":%d,"fault_ns_per_page":%d,"write_slowdown":%s,"samples":{"full_us":[%s],"incremental_us":[%s],"incremental_bytes":[%s],"restart_us":[%s],"tracked_us":[%s],"untracked_us":[%s]}}' \
		"$s" "$RUNS" "$pages" "$(ms "$ft")" "$fs" "$(ms "$it")" "${il:-0}" "$is" "$(ms "$rs")" "$wt" "$wp" \
		"$per" "$ratio" "$(IFS=,; echo "${fts[*]}")" "$(IFS=,; echo "${its[*]}")" \
		"$(IFS=,; echo "${isz[*]}")" "$(IFS=,; echo "${rst[*]}")" "$(IFS=,; echo "${wtr[*]}")" \
		"$(IFS=,; echo "${wpl[*]}")")")
done
mode=$(grep -o 'incremental images: [^;]*' "$WORK/cryo.log" | head -1)
echo
echo "($mode; compression level ${CRYO_COMPRESS:-1}; full and incr ms: cryo_command --bcheckpoint wall time;"
echo " incr lib: the library's own write time; restart: from cryo_restart on a chain of 3 to the program running)"
mkdir -p "$(dirname "$OUT")"
{
	printf '{"benchmark":"incremental","kernel":"%s","tracking":"%s","compress":%d,"rows":[\n' \
		"$(uname -r)" "${mode//\"/}" "${CRYO_COMPRESS:-1}"
	(IFS=$'\n'; echo "${ROWS[*]}") | sed '$!s/$/,/'
	echo ']}'
} >"$OUT"
echo "wrote $OUT"
