#!/bin/bash
# scripts/demo.sh: cryo's main job end to end, with narration (`make demo`).
# Builds, starts a private coordinator, launches a small program under cryo
# (build/test/apps/ticker: prints "tick N" every 0.2 s), checkpoints it,
# kills it, restarts it from the image and shows it carrying on from where
# the image was taken. Everything it starts is stopped by pid at the end;
# exit status 0 when the restarted program did carry on.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
BIN=${CRYO_BIN:-$ROOT/build/bin}
PIDS=()
COORD_PID=
T=

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\n==> FAILED: %s\n' "$*"
	[ -n "$T" ] && for f in "$T"/*.err "$T"/cryo.log; do
		[ -s "$f" ] && { echo "---- ${f##*/}"; tail -n 15 "$f"; }
	done
	exit 1
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ -n "$COORD_PID" ]; then
		kill -TERM "$COORD_PID" 2>/dev/null && wait "$COORD_PID" 2>/dev/null
	fi
	[ -n "$T" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# follow FILE SECONDS: shows the lines FILE gets during SECONDS.
follow() {
	local file=$1 end=$((SECONDS + $2)) shown=${3:-0} n
	while [ "$SECONDS" -lt "$end" ]; do
		n=$(wc -l <"$file" 2>/dev/null || echo 0)
		if [ "$n" -gt "$shown" ]; then
			sed -n "$((shown + 1)),${n}p" "$file" | sed 's/^/      | /'
			shown=$n
		fi
		sleep 0.1
	done
	FOLLOWED=$shown
}

# last_tick FILE: the N of the last "tick N" line.
last_tick() { sed -n 's/^tick \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }

say "Building cryo (make -j2)"
make -j2 -s >/dev/null 2>"${TMPDIR:-/tmp}/cryo-demo-make.$$" ||
	{ cat "${TMPDIR:-/tmp}/cryo-demo-make.$$"; rm -f "${TMPDIR:-/tmp}/cryo-demo-make.$$"; die "the build failed"; }
rm -f "${TMPDIR:-/tmp}/cryo-demo-make.$$"
for b in cryo_coordinator cryo_launch cryo_command cryo_restart cryo_image; do
	[ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done
echo "    built build/bin/cryo_* and build/lib/libcryo.so"

T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-demo.XXXXXX") || die "mktemp"
export CRYO_LOG=${CRYO_LOG:-warn} CRYO_LOG_FILE=$T/cryo.log

say "Starting a private coordinator (checkpoints go to $T/ckpt)"
"$BIN/cryo_coordinator" --port 0 --port-file "$T/port" --ckptdir "$T/ckpt" \
	>/dev/null 2>"$T/coordinator.err" </dev/null &
COORD_PID=$!
for _ in $(seq 1 250); do
	[ -s "$T/port" ] && break
	kill -0 "$COORD_PID" 2>/dev/null || die "the coordinator exited"
	sleep 0.02
done
read -r PORT <"$T/port" 2>/dev/null || die "the coordinator wrote no port"
COORD=127.0.0.1:$PORT
echo "    cryo_coordinator --port 0 --ckptdir $T/ckpt   (pid $COORD_PID, port $PORT)"

say "Launching the ticker under cryo: cryo_launch build/test/apps/ticker"
"$BIN/cryo_launch" --coord "$COORD" --ckptdir "$T/ckpt" "$ROOT/build/test/apps/ticker" \
	>"$T/run1.out" 2>"$T/run1.err" </dev/null &
APP=$!
PIDS+=("$APP")
echo "    pid $APP; its output:"
follow "$T/run1.out" 2
kill -0 "$APP" 2>/dev/null || die "the ticker did not keep running under cryo"
[ -n "$(last_tick "$T/run1.out")" ] || die "the ticker printed nothing"

say "Checkpointing it: cryo_command --bcheckpoint"
BEFORE=$(last_tick "$T/run1.out")
IMAGES=$(timeout 120 "$BIN/cryo_command" --coord "$COORD" --bcheckpoint 2>"$T/ckpt.err") ||
	die "cryo_command --bcheckpoint failed"
[ -n "$IMAGES" ] || die "the checkpoint printed no image"
echo "    the image, taken after tick $BEFORE:"
for img in $IMAGES; do
	echo "      $img ($(stat -c %s "$img") bytes)"
done
IMG1=${IMAGES%%$'\n'*}
"$BIN/cryo_image" info "$IMG1" 2>&1 | head -n 12 | sed 's/^/      : /'
[ -f "$T/ckpt/cryo_restart_script.sh" ] && echo "    restart script: $T/ckpt/cryo_restart_script.sh"
follow "$T/run1.out" 1 "$FOLLOWED"

say "Killing the ticker (kill -9 $APP)"
kill -KILL "$APP"
wait "$APP" 2>/dev/null
PIDS=()
LAST=$(last_tick "$T/run1.out")
echo "    gone; its last line was tick $LAST"
sleep 1

say "Restarting it from the image: cryo_restart $IMG1"
# shellcheck disable=SC2086
"$BIN/cryo_restart" --coord "$COORD" $IMAGES >"$T/run2.out" 2>"$T/run2.err" </dev/null &
APP2=$!
PIDS+=("$APP2")
echo "    pid $APP2; its output:"
follow "$T/run2.out" 2
kill -0 "$APP2" 2>/dev/null || die "the restarted ticker is not running"
FIRST=$(sed -n 's/^tick \([0-9]*\) .*/\1/p' "$T/run2.out" | head -n 1)
[ -n "$FIRST" ] || die "the restarted ticker printed nothing"
if [ "$FIRST" -le "$BEFORE" ] || [ "$FIRST" -gt $((LAST + 1)) ]; then
	die "the restarted ticker began at tick $FIRST; the image was taken after tick $BEFORE"
fi
grep -q "^tick $FIRST (sum of squares $(((FIRST * (FIRST + 1) * (2 * FIRST + 1)) / 6)))\$" \
	"$T/run2.out" || die "the restarted ticker's sum is wrong: its memory did not come back"

say "The restarted ticker carried on at tick $FIRST with its sum intact (the image was taken after tick $BEFORE)"
echo "    stopping it and the coordinator"
exit 0
