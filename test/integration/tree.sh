#!/bin/bash
# test/integration/tree.sh: a computation of several processes through three
# checkpoint / kill / restart cycles. build/test/apps/forkwait (a parent and
# its child, see there) is checkpointed at each "@@READY k", every process
# is killed (cryo_command --kill), and `cryo_restart IMAGE...` (or the
# restart script, from another directory) brings the tree back: the child
# as the parent's child, both with their old pids. The output must equal an
# uninterrupted run's.
#
#   test/integration/tree.sh [--keep]        prints PASS tree / FAIL tree: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
NAME=tree
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CRYO_BIN:-$ROOT/build/bin}
APP=$ROOT/build/test/apps/forkwait
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-tree.XXXXXX") || exit 1
COORD_PID= PID= FAILED=0

cleanup() {
	[ -n "${PORT:-}" ] && "$BIN/cryo_command" --coord "127.0.0.1:$PORT" --kill >/dev/null 2>&1
	[ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
	[ -n "$COORD_PID" ] && kill "$COORD_PID" 2>/dev/null
	wait 2>/dev/null
	if [ "$FAILED" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$T"; else echo "(kept $T)"; fi
}
trap cleanup EXIT
fail() {
	FAILED=1
	echo "FAIL $NAME: $*"
	for f in "$T"/seg*.err "$T/cryo.log"; do [ -s "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
	exit 1
}
alive() {	# not a zombie (PID 1 here reaps late)
	local s
	read -r s 2>/dev/null </proc/"$1"/stat || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}
wait_marker() {	# wait_marker FILE K
	for _ in $(seq 400); do grep -q "^@@READY $2\$" "$1" && return 0; sleep 0.05; done
	fail "no @@READY $2 in $1"
}

# The reference: no cryo.
"$APP" >"$T/ref.out" 2>"$T/ref.err" &
PID=$!
for k in 1 2 3; do wait_marker "$T/ref.out" "$k"; kill -USR1 "$PID"; done
wait "$PID" || fail "the reference run failed: $(cat "$T/ref.err")"
PID=

mkdir -p "$T/ckpt" "$T/elsewhere"
export CRYO_LOG=info CRYO_LOG_FILE=$T/cryo.log
"$BIN/cryo_coordinator" --port 0 --port-file "$T/port" --ckptdir "$T/ckpt" >/dev/null 2>&1 &
COORD_PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
[ -s "$T/port" ] || fail "the coordinator did not start"
PORT=$(cat "$T/port")
C="--coord 127.0.0.1:$PORT"
"$BIN/cryo_launch" $C "$APP" >"$T/seg1.out" 2>"$T/seg1.err" &
PID=$!
for k in 1 2 3; do
	wait_marker "$T/seg$k.out" "$k"
	timeout 60 "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint $k failed"
	n=$(wc -l <"$T/images")
	[ "$n" = 2 ] || fail "checkpoint $k: $n images, expected 2 (parent and child)"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$PID" || break; sleep 0.05; done
	alive "$PID" && fail "the processes survived --kill"
	wait "$PID" 2>/dev/null
	s=$((k + 1))
	if [ $((k % 2)) = 1 ]; then
		# shellcheck disable=SC2046
		"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	else
		(cd "$T/elsewhere" && exec "$T/ckpt/cryo_restart_script.sh") >"$T/seg$s.out" 2>"$T/seg$s.err" &
	fi
	PID=$!
	# Restored once it maps no cryo_restart and both processes rejoined.
	for _ in $(seq 400); do
		if alive "$PID" && ! grep -q cryo_restart /proc/"$PID"/maps 2>/dev/null &&
			[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ]; then
			break
		fi
		alive "$PID" || fail "cycle $k: the restart exited: $(cat "$T/seg$s.err")"
		sleep 0.05
	done
	kill -USR1 "$PID"
done
for _ in $(seq 400); do alive "$PID" || break; sleep 0.05; done
wait "$PID"
rc=$?
cat "$T"/seg[1-4].out >"$T/cryo.out"
diff "$T/ref.out" "$T/cryo.out" >"$T/diff" || fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T/seg4.err")"
echo "PASS $NAME (2 processes, 3 cycles)"
