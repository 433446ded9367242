#!/bin/bash
# test/bench/multiproc.sh: checkpoint and restart times of multi-process
# computations (issue #3's "Measure"), run by `make bench` at the end of
# test/bench/run.sh, or on its own. RUNS times (default 5) for each
# workload, with a private coordinator:
#   bash-pipeline  bash -c 'seq 1 1000000000 | awk ... | cat': bash and
#                  three commands joined by two pipes with data in flight;
#                  awk prints a line every 20000 numbers (a few ms)
#   python-pool    test/apps/pool.py: /usr/bin/python3 with a
#                  multiprocessing.Pool(2), a line per batch (about 15 ms)
# Each run: launch it under cryo_launch, let it print for a while, then
#   checkpoint  wall time of `cryo_command --bcheckpoint`
#   restart     kill -9 of the whole computation, then from starting
#               `cryo_restart IMAGE...` to the first line the restarted
#               program prints (read through a FIFO, no polling): the
#               program is running again
#   image       total bytes of the images, and how many processes
# Prints a table of medians and writes build/bench/multiproc.json.
#
# Environment: CRYO_BENCH_RUNS (5), CRYO_BENCH_DIR (where images go; default
# a temporary directory under $TMPDIR), CRYO_BIN, and the usual
# CRYO_COMPRESS and CRYO_LOG for cryo.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
RUNS=${CRYO_BENCH_RUNS:-5}
OUT=$ROOT/build/bench/multiproc.json
PY=/usr/bin/python3
STEP=120	# seconds allowed for any one step
APP= COORD_PID= COORD=

die() { echo "bench multiproc: $*" >&8; exit 1; }
exec 8>&2	# our messages; bash's notices of the jobs we kill go to $WORK/shell.err
now_us() { REPLY=${EPOCHREALTIME/./}; }

cleanup() {
	[ -n "$COORD" ] && timeout 10 "$BIN/cryo_command" --coord "$COORD" --kill >/dev/null 2>&1
	[ -n "$APP" ] && kill -KILL -- -"$APP" 2>/dev/null && { wait "$APP"; } 2>/dev/null
	[ -n "$COORD_PID" ] && kill -TERM "$COORD_PID" 2>/dev/null && wait "$COORD_PID" 2>/dev/null
	exec 7<&- 2>/dev/null
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for b in cryo_coordinator cryo_launch cryo_command cryo_restart; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing (run make)"
done
[ -x "$PY" ] || die "$PY is missing"
if [ -n "${CRYO_BENCH_DIR:-}" ]; then
	mkdir -p "$CRYO_BENCH_DIR" || die "cannot create $CRYO_BENCH_DIR"
	WORK=$(mktemp -d "$CRYO_BENCH_DIR/cryo-bench-mp.XXXXXX")
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/cryo-bench-mp.XXXXXX")
fi
[ -d "$WORK" ] || die "mktemp"
exec 2>>"$WORK/shell.err"
mkfifo "$WORK/out" || die "mkfifo"
exec 7<>"$WORK/out"	# our read end: the program's stdout, before and after the restart

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
	read -r port <"$WORK/port" || die "no port from the coordinator"
	COORD=127.0.0.1:$port
}

stop_coordinator() {
	timeout 10 "$BIN/cryo_command" --coord "$COORD" --kill >/dev/null 2>&1
	kill -TERM "$COORD_PID" 2>/dev/null && wait "$COORD_PID" 2>/dev/null
	COORD_PID= COORD=
	rm -rf "$WORK/ckpt"
}

# read_lines N: reads N lines of the program's output (STEP seconds each).
read_lines() {
	local i line
	for ((i = 0; i < $1; i++)); do
		IFS= read -r -t "$STEP" line <&7 || die "$KIND printed nothing for $STEP s: $(tail -n 3 "$WORK/err")"
	done
}

# drain: whatever the FIFO holds now.
drain() {
	local line
	while IFS= read -r -t 0.05 line <&7; do :; done
}

# gone PID...: until none of them exists (10 s).
gone() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < 200; i++)); do
			[ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null || break
			sleep 0.05
		done
	done
}

# one_run: one checkpoint + restart of KIND; sets R_CKPT R_RESTART (µs),
# R_BYTES, R_NPROC.
one_run() {
	local t0 t1 images img pids
	start_coordinator
	drain
	case $KIND in
	bash-pipeline)
		setsid "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" bash -c \
			'seq 1 1000000000 | awk "NR % 20000 == 0 { print; fflush() }" | cat' \
			>"$WORK/out" 2>"$WORK/err" </dev/null &
		;;
	python-pool)
		setsid "$BIN/cryo_launch" --coord "$COORD" --ckptdir "$WORK/ckpt" \
			"$PY" "$ROOT/test/apps/pool.py" 1000000 >"$WORK/out" 2>"$WORK/err" </dev/null &
		;;
	esac
	APP=$!
	read_lines 20	# running, every process started
	pids=$("$BIN/cryo_command" --coord "$COORD" --list | awk '{ print $3 }')
	now_us; t0=$REPLY
	images=$(timeout "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint 2>"$WORK/ckpt.err") ||
		die "checkpoint of $KIND failed: $(cat "$WORK/ckpt.err")"
	now_us; t1=$REPLY
	kill -KILL -- -"$APP" 2>/dev/null
	R_CKPT=$((t1 - t0))
	R_BYTES=0 R_NPROC=0
	for img in $images; do
		R_BYTES=$((R_BYTES + $(stat -c %s "$img")))
		R_NPROC=$((R_NPROC + 1))
	done
	timeout 10 "$BIN/cryo_command" --coord "$COORD" --kill >/dev/null 2>&1
	{ wait "$APP"; } 2>/dev/null
	# shellcheck disable=SC2086
	gone $pids
	drain

	now_us; t0=$REPLY
	# shellcheck disable=SC2086
	"$BIN/cryo_restart" --coord "$COORD" $images >"$WORK/out" 2>"$WORK/err" </dev/null &
	APP=$!
	read_lines 1
	now_us; t1=$REPLY
	R_RESTART=$((t1 - t0))
	read_lines 3	# and it goes on
	kill -KILL -- -"$APP" 2>/dev/null
	{ wait "$APP"; } 2>/dev/null
	APP=
	stop_coordinator
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
ms() { printf '%d.%01d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

ROWS=()
printf '\n%-16s %10s %10s %12s %12s\n' "multi-process" processes "image MiB" "ckpt ms" "restart ms"
for KIND in bash-pipeline python-pool; do
	ck=() rs=() by=() np=()
	for ((r = 1; r <= RUNS; r++)); do
		one_run
		ck+=("$R_CKPT") rs+=("$R_RESTART") by+=("$R_BYTES") np+=("$R_NPROC")
	done
	c=$(median "${ck[@]}") s=$(median "${rs[@]}") b=$(median "${by[@]}") n=$(median "${np[@]}")
	printf '%-16s %10s %10s %12s %12s\n' "$KIND" "$n" \
		"$((b / 1048576)).$(((b % 1048576) * 10 / 1048576))" "$(ms "$c")" "$(ms "$s")"
	ROWS+=("$(printf '{"name":"%s","runs":%d,"processes":%d,"checkpoint_ms":%s,"restart_ms":%s,"image_bytes":%d,"samples":{"checkpoint_us":[%s],"restart_us":[%s],"image_bytes":[%s],"processes":[%s]}}' \
		"$KIND" "$RUNS" "$n" "$(ms "$c")" "$(ms "$s")" "$b" \
		"$(IFS=,; echo "${ck[*]}")" "$(IFS=,; echo "${rs[*]}")" "$(IFS=,; echo "${by[*]}")" \
		"$(IFS=,; echo "${np[*]}")")")
done

mkdir -p "$(dirname "$OUT")"
{
	printf '{"date":"%s","commit":"%s","kernel":"%s","cpus":%d,"compress":"%s","image_dir":"%s",\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(uname -r)" "$(nproc)" "${CRYO_COMPRESS:-default}" "$(dirname "$WORK")"
	printf ' "results":[\n  %s\n ]}\n' "$(IFS=$'\n'; echo "${ROWS[*]}" | sed '2,$s/^/  /' | sed '$!s/$/,/')"
} >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo
echo "medians of $RUNS runs (restart: until the program prints again); written to ${OUT#"$ROOT"/}"
