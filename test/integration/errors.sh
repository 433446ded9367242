#!/bin/bash
# test/integration/errors.sh: bad input to every program gets one clear
# line on stderr and a non-zero exit (never a crash, a hang or a stack of
# messages), and a failed checkpoint loses nothing: the previous image stays
# whole and the program runs on.
#
#   test/integration/errors.sh [--keep]
#
# Prints "PASS errors" or "FAIL errors: reason" last; exit 0 or 1. Runs as
# any user; everything it starts (a coordinator, a counter) it stops by pid.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=errors
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/counter

# expect WHAT CODE PATTERN -- CMD...: CMD exits with CODE (or any non-zero
# code below 128 when CODE is "nz"), prints exactly one line on stderr
# matching PATTERN, within 20 s.
expect() {
	local what=$1 code=$2 pat=$3 rc lines
	shift 4
	timeout 20 "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ "$rc" = 124 ]; then fail "$what: hung (killed after 20 s)"; fi
	if [ "$code" = nz ]; then
		{ [ "$rc" -gt 0 ] && [ "$rc" -lt 128 ]; } || fail "$what: exit $rc, expected an error exit"
	elif [ "$rc" != "$code" ]; then
		fail "$what: exit $rc, expected $code; stderr: $(head -c 300 "$T/err")"
	fi
	[ "$lines" = 1 ] || fail "$what: $lines lines on stderr, expected one: $(head -c 500 "$T/err")"
	grep -qE "$pat" "$T/err" || fail "$what: stderr does not match /$pat/: $(cat "$T/err")"
	echo "  ok: $what: $(cat "$T/err")"
}

# A port nothing listens on.
FREE=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo 1)

# ---- cryo_launch
expect "launch: unknown option" 2 "unknown|unrecognized" -- "$BIN/cryo_launch" --bogus true
expect "launch: no such program" 127 "no such program" -- "$BIN/cryo_launch" /no/such/program
expect "launch: --join with no coordinator" nz "coordinator" -- \
	"$BIN/cryo_launch" --join --coord "127.0.0.1:$FREE" true
expect "launch: bad coordinator address" 2 "address|port" -- "$BIN/cryo_launch" --coord "127.0.0.1:99999" true

# ---- cryo_command
expect "command: unknown option" 2 "unknown" -- "$BIN/cryo_command" --bogus
expect "command: no coordinator" 3 "no coordinator" -- "$BIN/cryo_command" --coord "127.0.0.1:$FREE" --status
expect "command: no command" 2 "no command" -- "$BIN/cryo_command"
expect "command: unresolvable migration target" 2 "resolve" -- \
	"$BIN/cryo_command" --coord "127.0.0.1:$FREE" --migrate no-such-host.invalid:5555

# ---- cryo_coordinator
expect "coordinator: bad port" 2 "port" -- "$BIN/cryo_coordinator" --port 70000
expect "coordinator: unknown option" 2 "unknown|unrecognized" -- "$BIN/cryo_coordinator" --bogus

# ---- a real image to damage
start_coordinator
launch "$APP"
wait_line "$T/app.out" "@@READY 1" "$APP_PID"
IMG=$(timeout 30 "$BIN/cryo_command" $C --bcheckpoint) || fail "first checkpoint failed"
[ -f "$IMG" ] || fail "no image at '$IMG'"
SIZE=$(stat -c %s "$IMG")
SUM=$(sha256sum <"$IMG")

# ---- cryo_restart and cryo_image on bad images
expect "restart: no image" 2 "no image" -- env -u LM_DEST_PORT "$BIN/cryo_restart" $C
expect "restart: missing image" 1 "No such file" -- "$BIN/cryo_restart" $C "$T/none.cryo"
expect "restart: a directory" 1 "." -- "$BIN/cryo_restart" $C "$T"
: >"$T/empty.cryo"
expect "restart: empty file" 1 "truncated|not a cryo image" -- "$BIN/cryo_restart" $C "$T/empty.cryo"
head -c 4096 /dev/urandom >"$T/random.cryo"
expect "restart: not an image" 1 "not a cryo image|corrupt" -- "$BIN/cryo_restart" $C "$T/random.cryo"
for cut in 10 16 200 $((SIZE / 2)) $((SIZE - 70)) $((SIZE - 1)); do
	head -c "$cut" "$IMG" >"$T/cut.cryo"
	expect "restart: image cut at byte $cut" 1 "truncated" -- "$BIN/cryo_restart" $C "$T/cut.cryo"
	expect "image verify: image cut at byte $cut" 1 "truncated" -- "$BIN/cryo_image" verify "$T/cut.cryo"
done
for off in 3 20 400 $((SIZE / 3)) $((SIZE / 2 + 17)) $((SIZE - 40)); do
	cp "$IMG" "$T/flip.cryo"
	printf "$(printf '\\%03o' $(( $(od -An -tu1 -j "$off" -N1 "$IMG") ^ 16 )))" |
		dd of="$T/flip.cryo" bs=1 seek="$off" conv=notrunc status=none
	cmp -s "$IMG" "$T/flip.cryo" && fail "the bit flip at $off did not change the copy"
	expect "restart: bit flipped at byte $off" 1 "corrupt|not a cryo image|version|checksum" -- \
		"$BIN/cryo_restart" $C "$T/flip.cryo"
done
expect "image: unknown command" 2 "." -- "$BIN/cryo_image" frobnicate "$IMG"

# ---- a restart while the original runs is refused, and the original is untouched
expect "restart while the original runs" 1 "still running|already running" -- "$BIN/cryo_restart" $C "$IMG"
kill -0 "$APP_PID" 2>/dev/null || fail "the original died when its restart was refused"

# ---- a migration to nowhere fails in one line; the source runs on and can still be checkpointed
expect "migrate to an unreachable destination" 1 "unreachable|migration" -- \
	"$BIN/cryo_command" $C --migrate "127.0.0.1:$FREE"
sleep 0.2
kill -0 "$APP_PID" 2>/dev/null || fail "the source died after a failed migration"
grep -q "cannot reach the migration destination" "$T/app.err" || fail "the source did not say why the migration failed: $(cat "$T/app.err")"

# ---- a checkpoint that cannot be written fails, keeps the last image, and the program runs on
mkdir "$IMG.tmp"	# the temporary name is taken by a directory: open() fails even for root
expect "checkpoint into an unwritable name" 1 "failed" -- "$BIN/cryo_command" $C --bcheckpoint
rmdir "$IMG.tmp"
[ "$(sha256sum <"$IMG")" = "$SUM" ] || fail "the previous image changed after a failed checkpoint"
"$BIN/cryo_image" verify "$IMG" >/dev/null 2>&1 || fail "the previous image no longer verifies"
kill -0 "$APP_PID" 2>/dev/null || fail "the program died after a failed checkpoint"
IMG2=$(timeout 30 "$BIN/cryo_command" $C --bcheckpoint) || fail "a checkpoint after the failed one failed"
[ "$IMG2" = "$IMG" ] || fail "the next checkpoint went to '$IMG2'"
ls "$T/ckpt" | grep -q '\.tmp$' && fail "a temporary image was left behind: $(ls "$T/ckpt")"

echo "PASS $NAME"
