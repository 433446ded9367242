#!/bin/bash
# test/bench/cow.sh: full-stop against copy-on-write checkpoints (doc/cow.md).
# For each size of touched memory (build/test/apps/membench, random bytes)
# and each mode, RUNS times with a private coordinator:
#   stall        from SUSPEND until the program's threads run again, as the
#                library logs it ("threads released: stall_ms=...")
#   capture      copy-on-write only: WRITE until the writer child holds its
#                copy (the fork; "state captured in N ms"), whole ms
#   checkpoint   the coordinator's time for the checkpoint, SUSPEND to the
#                last COMMIT (`cryo_command --bcheckpoint --json`, "ms")
#   image        bytes
# Prints a table of medians and writes build/bench/cow.json. make bench
# runs it; by hand:
#   test/bench/cow.sh                      # 64, 512 and 2048 MiB, 3 runs
#   CRYO_BENCH_COW_SIZES="64" CRYO_BENCH_RUNS=1 test/bench/cow.sh
# Environment: CRYO_BENCH_RUNS (3), CRYO_BENCH_COW_SIZES ("64 512 2048",
# MiB), CRYO_BENCH_DIR (where images go; default under $TMPDIR), CRYO_BIN,
# CRYO_COMPRESS (the library's default when unset).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
RUNS=${CRYO_BENCH_RUNS:-3}
SIZES=${CRYO_BENCH_COW_SIZES:-64 512 2048}
OUT=$ROOT/build/bench/cow.json
STEP=300
APP= COORD_PID=

die() { echo "bench-cow: $*" >&2; exit 1; }

cleanup() {
	local p
	for p in $APP $COORD_PID; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

make -s -j2 all >/dev/null || die "the build failed"
for b in cryo_coordinator cryo_launch cryo_command; do
	[ -x "$BIN/$b" ] || die "$BIN/$b is missing"
done
[ -x build/test/apps/membench ] || die "build/test/apps/membench is missing"
if [ -n "${CRYO_BENCH_DIR:-}" ]; then
	mkdir -p "$CRYO_BENCH_DIR" || die "cannot create $CRYO_BENCH_DIR"
	WORK=$(mktemp -d "$CRYO_BENCH_DIR/cryo-bench-cow.XXXXXX")
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/cryo-bench-cow.XXXXXX")
fi
[ -d "$WORK" ] || die "mktemp"

wait_line() {
	local end=$((SECONDS + STEP))
	until grep -qx "$2" "$1" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || die "no '$2' in $1 after $STEP s"
		kill -0 "$APP" 2>/dev/null || die "membench exited: $(cat "$WORK/app.err")"
		sleep 0.01
	done
}

# one_run MODE MIB: sets R_STALL (ms, 3 decimals), R_CAPTURE (ms or -),
# R_CKPT (ms), R_BYTES.
one_run() {
	local mode=$1 mib=$2 json
	rm -rf "$WORK/ckpt" "$WORK/port" "$WORK/lib.log"
	"$BIN/cryo_coordinator" --port 0 --port-file "$WORK/port" --ckptdir "$WORK/ckpt" \
		>/dev/null 2>"$WORK/coord.err" </dev/null &
	COORD_PID=$!
	for _ in $(seq 1 500); do
		[ -s "$WORK/port" ] && break
		sleep 0.01
	done
	read -r PORT <"$WORK/port" || die "no port from the coordinator: $(cat "$WORK/coord.err")"
	CRYO_CKPT_MODE=$mode CRYO_LOG=info CRYO_LOG_FILE=$WORK/lib.log \
		"$BIN/cryo_launch" --join --coord "127.0.0.1:$PORT" --ckptdir "$WORK/ckpt" \
		"$ROOT/build/test/apps/membench" "$mib" 100000 >"$WORK/app.out" 2>"$WORK/app.err" </dev/null &
	APP=$!
	wait_line "$WORK/app.out" "@@READY 1"
	for _ in $(seq 1 500); do	# registered (a loaded machine may be slow)
		"$BIN/cryo_command" --coord "127.0.0.1:$PORT" --list 2>/dev/null | grep -q running && break
		sleep 0.01
	done
	json=$(timeout "$STEP" "$BIN/cryo_command" --coord "127.0.0.1:$PORT" --json --bcheckpoint \
		2>"$WORK/ckpt.err") || die "$mode checkpoint of $mib MiB failed: $(cat "$WORK/ckpt.err")"
	R_CKPT=$(grep -o '"ms": *[0-9]*' <<<"$json" | grep -o '[0-9]*$')
	R_BYTES=$(grep -o '"bytes": *[0-9]*' <<<"$json" | grep -o '[0-9]*$')
	# RESUME is not waited for: the release line comes a moment later
	for _ in $(seq 1 500); do
		grep -q 'stall_ms=' "$WORK/lib.log" 2>/dev/null && break
		sleep 0.01
	done
	R_STALL=$(grep -o 'stall_ms=[0-9.]*' "$WORK/lib.log" | tail -n 1 | cut -d= -f2)
	[ -n "$R_STALL" ] || die "no stall_ms line in the library's log"
	R_CAPTURE=$(sed -n 's/.*state captured in \([0-9]*\) ms.*/\1/p' "$WORK/lib.log" | tail -n 1)
	[ "$mode" = cow ] && [ -z "$R_CAPTURE" ] && die "the cow checkpoint was not written by a child"
	R_CAPTURE=${R_CAPTURE:--}
	kill -KILL "$APP"
	wait "$APP" 2>/dev/null
	kill -TERM "$COORD_PID" 2>/dev/null && wait "$COORD_PID" 2>/dev/null
	APP= COORD_PID=
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

mkdir -p "$(dirname "$OUT")"
rows=()
printf '%-6s %-5s %11s %11s %14s %12s\n' MiB mode "stall ms" "capture ms" "checkpoint ms" "image MiB"
for mib in $SIZES; do
	for mode in full cow; do
		st=() ca=() ck=() by=()
		for _ in $(seq "$RUNS"); do
			one_run "$mode" "$mib"
			st+=("$R_STALL") ca+=("$R_CAPTURE") ck+=("$R_CKPT") by+=("$R_BYTES")
		done
		s=$(median "${st[@]}") c=$(median "${ck[@]}") b=$(median "${by[@]}")
		a=-
		[ "$mode" = cow ] && a=$(median "${ca[@]}")
		printf '%-6s %-5s %11s %11s %14s %12s\n' "$mib" "$mode" "$s" "$a" "$c" $((b / 1048576))
		rows+=("{\"mib\":$mib,\"mode\":\"$mode\",\"runs\":$RUNS,\"stall_ms\":$s,\"capture_ms\":${a/-/null},\"checkpoint_ms\":$c,\"image_bytes\":$b,\"stall_ms_all\":[$(IFS=,; echo "${st[*]}")],\"checkpoint_ms_all\":[$(IFS=,; echo "${ck[*]}")]}")
	done
done
{
	printf '{"bench":"cow","host":"%s","kernel":"%s","results":[\n' "$(hostname)" "$(uname -r)"
	(IFS=$'\n'; echo "${rows[*]}") | sed '$!s/$/,/'
	printf ']}\n'
} >"$OUT"
echo "bench-cow: wrote $OUT"
