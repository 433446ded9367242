#!/bin/bash
# test/integration/fork.sh: children join the computation. A program forks
# a child and, through system(), a shell; every one of them must be a
# process of the computation, and a checkpoint must write one verified image
# for each, the child's naming its parent. (Restarting a process tree comes
# with issue #3's restart work; this checks the checkpoint side.)
#
#   test/integration/fork.sh [--keep]       prints PASS fork / FAIL fork: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
NAME=fork
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CRYO_BIN:-$ROOT/build/bin}
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-fork.XXXXXX") || exit 1
COORD_PID= APP_PID= FAILED=0

cleanup() {
	[ -n "$COORD_PID" ] && [ -n "${PORT:-}" ] &&
		"$BIN/cryo_command" --coord "127.0.0.1:$PORT" --kill >/dev/null 2>&1
	[ -n "$APP_PID" ] && kill -9 "$APP_PID" 2>/dev/null
	[ -n "$COORD_PID" ] && kill "$COORD_PID" 2>/dev/null
	wait 2>/dev/null
	if [ "$FAILED" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$T"; else echo "(kept $T)"; fi
}
trap cleanup EXIT
fail() {
	FAILED=1
	echo "FAIL $NAME: $*"
	exit 1
}

mkdir -p "$T/ckpt"
"$BIN/cryo_coordinator" --port 0 --port-file "$T/port" --ckptdir "$T/ckpt" >"$T/coord.log" 2>&1 &
COORD_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
[ -s "$T/port" ] || fail "the coordinator did not start: $(cat "$T/coord.log")"
PORT=$(cat "$T/port")
C="--coord 127.0.0.1:$PORT"
"$BIN/cryo_launch" $C "$ROOT/build/test/apps/forktree" >"$T/app.out" 2>"$T/app.err" &
APP_PID=$!
for _ in $(seq 200); do grep -q '^@@READY 1$' "$T/app.out" && break; sleep 0.05; done
grep -q '^@@READY 1$' "$T/app.out" || fail "the program did not start: $(cat "$T/app.err")"
# The shell started by system() joins from exec: give it a moment.
for _ in $(seq 100); do
	n=$("$BIN/cryo_command" $C --list | wc -l)
	[ "$n" -ge 4 ] && break
	sleep 0.05
done
"$BIN/cryo_command" $C --list >"$T/list"
n=$(wc -l <"$T/list")
[ "$n" -ge 4 ] || fail "$n processes in the computation, expected the parent, two children and the shell's command: $(cat "$T/list")"
timeout 60 "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "the checkpoint failed"
[ "$(wc -l <"$T/images")" = "$n" ] || fail "$(wc -l <"$T/images") images for $n processes"
while read -r img; do
	"$BIN/cryo_image" verify "$img" >/dev/null 2>"$T/verify.err" || fail "$img: $(cat "$T/verify.err")"
done <"$T/images"
# The first child's image names the parent as its parent.
ppids=$(while read -r img; do "$BIN/cryo_image" info --json "$img"; done <"$T/images" |
	grep -o '"ppid": *[0-9]*' | sed 's/.*: *//')
echo "$ppids" | grep -qx "$APP_PID" || fail "no image names the parent $APP_PID as its parent (ppids: $ppids)"
kill -0 "$APP_PID" 2>/dev/null || fail "the parent died"
echo "PASS $NAME ($n processes, $n images)"
