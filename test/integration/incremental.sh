#!/bin/bash
# test/integration/incremental.sh: incremental images (doc/incremental.md)
# through three checkpoint / kill / restart cycles.
#
# build/test/apps/incrmem (64 MiB of random bytes, 1% of its pages changed
# between points, plus pages zeroed, discarded, a mapping gone and a new
# one, a mapping moved, a private file page written) runs with
# CRYO_INCREMENTAL=1 CRYO_INCREMENTAL_FULL=3 and is checkpointed at each of
# its nine "@@READY k": generation k. In each cycle of three points the
# first image is full and the next two incremental (much smaller: checked
# as a size relation); after the third the process is killed and restarted
# from the newest image, i.e. from a chain of three:
#   cycle 1  cryo_restart of the chain;
#   cycle 2  first refused clearly with the middle image missing, then with
#            the full one damaged, and with a wrong (older) parent in its
#            place; then restarted;
#   cycle 3  `cryo_image merge` flattens the chain, `cryo_image rm` refuses
#            to remove a parent still needed, and the restart is from the
#            merged image.
# The program checks all of its memory at every point; its output must
# equal an uninterrupted run's. Last, the fallback: with CRYO_DIRTY=
# soft-dirty where the kernel has no soft-dirty bits, one clear warning and
# full images (incremental ones where it has them).
#
#   test/integration/incremental.sh [--keep]   prints PASS incremental / FAIL incremental: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=incremental
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/incrmem
MIB=64

# The reference: no cryo.
mkdir -p "$T/refdir" "$T/work"
"$APP" $MIB "$T/refdir" 9 >"$T/ref.out" 2>"$T/ref.txt" &
APP_PID=$!
for k in $(seq 1 9); do wait_line "$T/ref.out" "@@READY $k" "$APP_PID"; kill -USR1 "$APP_PID"; done
wait "$APP_PID" || fail "the reference run failed: $(cat "$T/ref.txt")"
APP_PID=

export CRYO_LOG=info CRYO_LOG_FILE=$T/cryo.log CRYO_INCREMENTAL=1 CRYO_INCREMENTAL_FULL=3
start_coordinator

# restored PID: wait until PID runs the program again (no cryo_restart
# mapped) and the coordinator counts it as running.
restored() {
	local i
	for i in $(seq $((STEP * 20))); do
		if alive "$1" && ! grep -q cryo_restart /proc/"$1"/maps 2>/dev/null &&
			"$BIN/cryo_command" $C --status --json | grep -q '"state": *"running"'; then
			return 0
		fi
		alive "$1" || fail "the restart exited: $(tail -3 "$T/seg$seg.err")"
		sleep 0.05
	done
	fail "no restart after $STEP s"
}

# expect_refusal WHAT PATTERN IMAGE: cryo_restart IMAGE must fail at once,
# with one line matching PATTERN, leaving no process.
expect_refusal() {
	local rc
	CRYO_LOG=warn CRYO_LOG_FILE= timeout "$STEP" "$BIN/cryo_restart" $C "$3" >"$T/refused.out" 2>"$T/refused.err"
	rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$1: cryo_restart did not refuse (exit $rc)"
	grep -q -- "$2" "$T/refused.err" ||
		fail "$1: no line matching '$2': $(cat "$T/refused.err")"
	[ "$(grep -c . "$T/refused.err")" = 1 ] || fail "$1: more than one line: $(cat "$T/refused.err")"
}

size() { stat -c %s "$1"; }
# cryo_image with its messages on stderr, not in cryo.log
image() { CRYO_LOG=warn CRYO_LOG_FILE= "$BIN/cryo_image" "$@"; }
seg=1
LAUNCH_OUT=seg1 launch "$APP" $MIB "$T/work" 9
for k in $(seq 1 9); do
	wait_line "$T/seg$seg.out" "@@READY $k" "$APP_PID"
	timeout $((STEP * 2)) "$BIN/cryo_command" $C --bcheckpoint >"$T/images.$k" ||
		fail "checkpoint $k failed: $(cat "$T/images.$k")"
	img=$(cat "$T/images.$k")
	case $img in *.g$k.cryo) ;; *) fail "checkpoint $k: image $img is not named by its generation" ;; esac
	IMG[$k]=$img
	SIZE[$k]=$(size "$img")
	image info "$img" >"$T/info.$k" || fail "cryo_image info $img"
	if [ $((k % 3)) = 1 ]; then
		grep -q '^parent:' "$T/info.$k" && fail "checkpoint $k should be a full image"
	else
		grep -q "^parent: *$(basename "${IMG[$((k - 1))]}") (generation $((k - 1))," "$T/info.$k" ||
			fail "checkpoint $k does not name ${IMG[$((k - 1))]} as its parent: $(grep parent "$T/info.$k")"
		[ $((SIZE[k] * 5)) -lt "${SIZE[$((k - $(((k - 1) % 3))))]}" ] ||
			fail "incremental image $k has ${SIZE[$k]} bytes, not much smaller than the full one"
	fi
	if [ $((k % 3)) != 0 ]; then
		kill -USR1 "$APP_PID"
		continue
	fi
	image verify "$img" >"$T/verify.$k" 2>&1 || fail "cryo_image verify $img: $(cat "$T/verify.$k")"
	grep -q "chain of 2 parents" "$T/verify.$k" || fail "verify did not check the chain: $(cat "$T/verify.$k")"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	alive "$APP_PID" && fail "the process survived --kill"
	wait "$APP_PID" 2>/dev/null
	APP_PID=
	from=$img
	case $k in
	6)
		mid=${IMG[5]} full=${IMG[4]}
		mv "$mid" "$T/aside"
		expect_refusal "missing parent" "its parent $mid is missing" "$img"
		image verify "$img" >/dev/null 2>"$T/verify.err" &&
			fail "cryo_image verify passed with a parent missing"
		mv "$T/aside" "$mid"
		cp "$full" "$T/aside"
		printf '\x5a' | dd of="$full" bs=1 seek=$((SIZE[4] / 2)) conv=notrunc status=none
		expect_refusal "damaged parent" "$(basename "$full") is corrupt" "$img"
		cp "$T/aside" "$full"
		# an older full image of the same process in the middle one's place
		mv "$mid" "$T/aside.mid"
		cp "${IMG[1]}" "$mid"
		expect_refusal "wrong parent" "its parent $mid is generation 1" "$img"
		mv "$T/aside.mid" "$mid"
		;;
	9)
		image rm "${IMG[8]}" 2>"$T/rm.err" && fail "cryo_image rm removed a parent still needed"
		grep -q "is the parent of" "$T/rm.err" || fail "cryo_image rm: $(cat "$T/rm.err")"
		[ -e "${IMG[8]}" ] || fail "cryo_image rm removed ${IMG[8]} though it refused"
		image merge "$img" -o "$T/merged.cryo" >"$T/merge.out" 2>&1 ||
			fail "cryo_image merge: $(cat "$T/merge.out")"
		image info "$T/merged.cryo" >"$T/info.merged" || fail "cryo_image info of the merged image"
		grep -q '^parent:' "$T/info.merged" && fail "the merged image still names a parent"
		# the chain is not needed any more: remove it (the newest first)
		image rm "${IMG[9]}" "${IMG[8]}" "${IMG[7]}" ||
			fail "cryo_image rm of a whole chain failed"
		from=$T/merged.cryo
		;;
	esac
	seg=$((seg + 1))
	"$BIN/cryo_restart" $C "$from" >"$T/seg$seg.out" 2>"$T/seg$seg.err" &
	APP_PID=$!
	restored "$APP_PID"
	kill -USR1 "$APP_PID"
done
for _ in $(seq 400); do alive "$APP_PID" || break; sleep 0.05; done
wait "$APP_PID"
rc=$?
APP_PID=
cat "$T"/seg[1-4].out >"$T/cryo.out"
diff "$T/ref.out" "$T/cryo.out" >"$T/diff" || fail "output differs from the uninterrupted run: $(head -20 "$T/diff")"
[ "$rc" = 0 ] || fail "exit status $rc: $(cat "$T/seg$seg.err")"
grep -q "dirty pages tracked with userfaultfd write protection" "$T/cryo.log" ||
	fail "no line saying which dirty tracking is used"

# The fallback: soft-dirty asked for.
"$BIN/cryo_command" $C --kill >/dev/null 2>&1
CRYO_DIRTY=soft-dirty LAUNCH_OUT=soft launch "$APP" 8 "$T/work" 2
for k in 1 2; do
	wait_line "$T/soft.out" "@@READY $k" "$APP_PID"
	timeout $((STEP * 2)) "$BIN/cryo_command" $C --bcheckpoint >"$T/soft.$k" || fail "soft-dirty checkpoint $k failed"
	kill -USR1 "$APP_PID"
done
wait "$APP_PID" || fail "the soft-dirty run failed: $(cat "$T/soft.err")"
APP_PID=
image info "$(cat "$T/soft.2")" >"$T/info.soft" || fail "cryo_image info (soft-dirty)"
if grep -q "tracked with soft-dirty bits" "$T/cryo.log"; then
	grep -q '^parent:' "$T/info.soft" || fail "soft-dirty tracking, but the second image is full"
	how="soft-dirty tracking"
else
	grep -q "no dirty tracking on this kernel (userfaultfd write protection: not tried; soft-dirty: " "$T/cryo.log" ||
		fail "no clear warning for the missing soft-dirty bits"
	grep -q '^parent:' "$T/info.soft" && fail "no soft-dirty bits, yet an incremental image"
	how="no soft-dirty here: full images"
fi
echo "PASS $NAME (3 cycles, chains of 3: $((SIZE[1] / 1024)) KiB full, $((SIZE[2] / 1024)) and $((SIZE[3] / 1024)) KiB incremental; $how)"
