#!/bin/bash
# test/integration/encrypt.sh: encrypted checkpoint images (CRYO_KEY_FILE).
#
#   test/integration/encrypt.sh [--keep]
#
# Starts a private coordinator (port 0, its own checkpoint directory in a
# temporary directory), launches build/test/apps/counter under cryo with
# CRYO_KEY_FILE naming a fresh 0600 key file, waits for "@@READY 1" and
# checkpoints it with `cryo_command --bcheckpoint`. Checked:
#   - the image holds neither the key (raw or hex) nor the counter's known
#     plaintext ("counter state" in .data, "step " lines in its stdio
#     buffer), which the core exported with the key does hold;
#   - `cryo_image info` without the key shows the clear header as
#     "encrypted" and fails; verify without the key fails with the
#     "is encrypted" line, with a wrong key with "wrong key", with the key
#     passes; a key file readable by others is refused;
#   - the key is not in the program's environment nor in any log;
#   - after kill -9, `cryo_restart --key-file` restores it; a second
#     checkpoint of the restored process (the library re-reads the key) is
#     encrypted as well; SIGUSR1 twice more and the counter ends "@@PASS";
#   - a sealed migration stream: a destination with the wrong key refuses
#     it in one line and the source runs on; with the right key the
#     process moves over (the source exits) and carries on.
# Then it stops the coordinator, by pid. Environment: CRYO_BIN (default
# build/bin), CRYO_TEST_STEP_TIMEOUT (seconds per step, default 60). The
# last line is "PASS encrypt" (exit 0) or "FAIL encrypt: reason" (exit 1,
# the temporary directory with every log kept and named).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=encrypt
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/counter

# checkpoint: sets IMAGE to the new image's path.
checkpoint() {
	timeout -k 5 "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint \
		>"$T/ckpt.out" 2>>"$T/ckpt.err" </dev/null || fail "cryo_command --bcheckpoint failed"
	IMAGE=$(grep -m1 . "$T/ckpt.out")
	[ -f "$IMAGE" ] || fail "--bcheckpoint printed '$IMAGE', not an image file"
}

# image_checks IMAGE: sealed, key and plaintext absent, refusals right.
image_checks() {
	local img=$1 n
	n=$(grep -caP "$KEY_RE" "$img")
	[ "$n" = 0 ] || fail "$img holds the raw key ($n matches)"
	n=$(grep -caF "$KEY_HEX" "$img")
	[ "$n" = 0 ] || fail "$img holds the key in hex"
	for s in "counter state" "step 1 local" "@@READY"; do
		n=$(grep -caF "$s" "$img")
		[ "$n" = 0 ] || fail "$img holds the plaintext '$s' ($n matches)"
	done
	env -u CRYO_KEY_FILE "$BIN/cryo_image" verify "$img" >"$T/v.out" 2>"$T/v.err"
	[ $? = 1 ] || fail "verify without a key did not fail"
	[ "$(wc -l <"$T/v.err")" = 1 ] &&
		grep -q "is encrypted: give the key with --key-file or CRYO_KEY_FILE" "$T/v.err" ||
		fail "verify without a key said: $(cat "$T/v.err")"
	env -u CRYO_KEY_FILE "$BIN/cryo_image" info "$img" >"$T/i.out" 2>"$T/i.err"
	[ $? = 1 ] || fail "info without a key did not fail"
	grep -q '^flags: .*encrypted' "$T/i.out" || fail "info does not say encrypted: $(cat "$T/i.out")"
	"$BIN/cryo_image" verify --key-file "$T/wrong.key" "$img" >"$T/v.out" 2>"$T/v.err"
	[ $? = 1 ] || fail "verify with a wrong key did not fail"
	[ "$(wc -l <"$T/v.err")" = 1 ] && grep -q ": wrong key" "$T/v.err" ||
		fail "verify with a wrong key said: $(cat "$T/v.err")"
	"$BIN/cryo_image" verify --key-file "$T/open.key" "$img" >"$T/v.out" 2>"$T/v.err"
	[ $? = 1 ] && grep -q "accessible by group or others" "$T/v.err" ||
		fail "a key file of mode 644 was not refused: $(cat "$T/v.err")"
	CRYO_KEY_FILE=$T/k.key "$BIN/cryo_image" verify "$img" >"$T/v.out" 2>"$T/verify.err" ||
		fail "verify with the key (CRYO_KEY_FILE) failed"
	grep -q ": ok (" "$T/v.out" || fail "verify said: $(cat "$T/v.out")"
}

for f in "$BIN/cryo_coordinator" "$BIN/cryo_launch" "$BIN/cryo_command" "$BIN/cryo_image" \
	"$BIN/cryo_restart" "$APP"; do
	[ -x "$f" ] || fail "$f is missing (run make)"
done

# ---- keys: the real one (hex), a wrong one (raw), one others can read
KEY_HEX=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
[ ${#KEY_HEX} = 64 ] || fail "no random key"
(umask 077 && printf '%s\n' "$KEY_HEX" >"$T/k.key") || fail "write $T/k.key"
(umask 077 && head -c 32 /dev/urandom >"$T/wrong.key") || fail "write $T/wrong.key"
cp "$T/k.key" "$T/open.key" && chmod 644 "$T/open.key" || fail "write $T/open.key"
KEY_RE=$(printf '%s' "$KEY_HEX" | sed 's/../\\x&/g')

start_coordinator
CRYO_KEY_FILE=$T/k.key launch "$APP"
wait_line "$T/app.out" '@@READY 1' "$APP_PID"
tr '\0' '\n' <"/proc/$APP_PID/environ" | grep -q "^CRYO_KEY_FILE=$T/k.key\$" ||
	fail "CRYO_KEY_FILE is not in the program's environment"
tr '\0' '\n' <"/proc/$APP_PID/environ" | grep -qF "$KEY_HEX" && fail "the key is in the program's environment"

checkpoint
image_checks "$IMAGE"
# The plaintext the image hides is in the process: the exported core shows it.
"$BIN/cryo_image" export-core --key-file "$T/k.key" "$IMAGE" -o "$T/core" >"$T/core.out" 2>"$T/core.err" ||
	fail "export-core with the key failed"
grep -qaF "counter state" "$T/core" || fail "the exported core lacks 'counter state'"
rm -f "$T/core"

# ---- kill -9, restart with --key-file, a second (encrypted) checkpoint
stop "$APP_PID" KILL
APP_PID=
env -u CRYO_KEY_FILE "$BIN/cryo_restart" --key-file "$T/k.key" --coord "$COORD" "$IMAGE" \
	>"$T/app2.out" 2>"$T/restart.err" </dev/null &
APP_PID=$!
for i in $(seq 1 $((STEP * 50))); do
	alive "$APP_PID" || fail "cryo_restart exited: $(cat "$T/restart.err")"
	if ! grep -q cryo_restart "/proc/$APP_PID/maps" 2>/dev/null; then
		blk=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$APP_PID/status" 2>/dev/null)
		[ -n "$blk" ] && (((0x$blk >> 9) & 1)) && break
	fi
	sleep 0.02
done
kill -USR1 "$APP_PID" || fail "cannot signal the restored counter"
wait_line "$T/app2.out" '@@READY 2' "$APP_PID"
checkpoint
image_checks "$IMAGE"
kill -USR1 "$APP_PID"
wait_line "$T/app2.out" '@@READY 3' "$APP_PID"
kill -USR1 "$APP_PID"
wait_line "$T/app2.out" '@@PASS' "$APP_PID"
wait "$APP_PID" 2>/dev/null
APP_PID=

# ---- a sealed migration stream: a destination with the wrong key refuses
# it in one line and the source runs on; the right key takes it over.
# listen PORT KEY OUT: a destination cryo_restart; sets DST_PID.
listen() {
	rm -f "$T/ready"
	CRYO_KEY_FILE=$2 LM_DEST_PORT=$1 "$BIN/cryo_restart" --coord "$COORD" --ready-file "$T/ready" \
		--timeout "$STEP" >"$T/$3.out" 2>"$T/$3.err" </dev/null &
	DST_PID=$!
	for i in $(seq 1 $((STEP * 50))); do
		[ -e "$T/ready" ] && return 0
		alive "$DST_PID" || fail "the destination cryo_restart exited: $(cat "$T/$3.err")"
		sleep 0.02
	done
	fail "the destination cryo_restart does not listen"
}
CRYO_KEY_FILE=$T/k.key LAUNCH_OUT=src launch "$APP"
wait_line "$T/src.out" '@@READY 1' "$APP_PID"
LMPORT=$((10000 + RANDOM % 20000))
listen "$LMPORT" "$T/wrong.key" dst-wrong
timeout -k 5 "$STEP" "$BIN/cryo_command" --coord "$COORD" --migrate "127.0.0.1:$LMPORT" \
	>/dev/null 2>"$T/migrate1.txt" && fail "a migration to a destination with the wrong key succeeded"
wait "$DST_PID" 2>/dev/null
[ "$(grep -c . "$T/dst-wrong.err")" = 1 ] && grep -q "wrong key" "$T/dst-wrong.err" ||
	fail "the wrong-key destination did not say so in one line: $(cat "$T/dst-wrong.err")"
alive "$APP_PID" || fail "the source died after the refused migration"
listen "$((LMPORT + 1))" "$T/k.key" dst
timeout -k 5 "$STEP" "$BIN/cryo_command" --coord "$COORD" --migrate "127.0.0.1:$((LMPORT + 1))" \
	>"$T/migrate2.txt" 2>"$T/migrate2.txt.err" || fail "the sealed migration failed: $(cat "$T/migrate2.txt.err")"
for i in $(seq 1 100); do alive "$APP_PID" || break; sleep 0.05; done
alive "$APP_PID" && fail "the source still runs after its migration"
wait "$APP_PID" 2>/dev/null
APP_PID=$DST_PID
for i in $(seq 1 $((STEP * 50))); do
	! grep -q cryo_restart "/proc/$APP_PID/maps" 2>/dev/null && break
	alive "$APP_PID" || fail "the migrated counter exited: $(cat "$T/dst.err")"
	sleep 0.02
done
sleep 0.2
kill -USR1 "$APP_PID"
wait_line "$T/dst.out" '@@READY 2' "$APP_PID"

for f in "$T"/*.err "$T"/*.out "$T"/*.txt; do
	grep -qaF "$KEY_HEX" "$f" && fail "the key is in ${f#"$T"/}"
done
echo "PASS $NAME"
