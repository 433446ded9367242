#!/bin/bash
# test/integration/export_core.sh: `cryo_image export-core` read back by gdb.
#
#   test/integration/export_core.sh [--keep]
#
# Starts a private coordinator (port 0, its own checkpoint directory in a
# temporary directory), launches build/test/apps/corethreads under cryo,
# waits for "@@READY 1" (three workers blocked in worker_alpha/beta/gamma,
# the main thread in main_waiting), checkpoints it with
# `cryo_command --bcheckpoint`, exports the image as an ELF core and runs
# gdb in batch mode on the program and the core. Checked:
#   - export-core exits 0 and leaves exactly the core, mode 0600;
#   - gdb shows 5 threads, the leader (LWP = the program's pid) first;
#   - the backtraces reach worker_alpha, worker_beta, worker_gamma,
#     main_waiting, and checkpoint_write for libcryo's checkpoint thread;
#   - in those frames alpha_local, beta_local, gamma_local and main_local
#     print 4242, 5353, 6464 and 7575;
#   - a damaged copy of the image is refused (exit 1, one error line, no
#     core), and usage errors exit 2.
# Then it kills the program and stops the coordinator, by pid.
#
# Runs as root or as any user: everything it writes is in the temporary
# directory it makes (under $TMPDIR, else /tmp). Environment: CRYO_BIN
# (default build/bin), CRYO_TEST_STEP_TIMEOUT (seconds per step, default 60).
# The last line is "PASS export_core" (exit 0) or "FAIL export_core: reason"
# (exit 1, the temporary directory with every log kept and named).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=export_core
. "$(dirname "$0")/lib.sh"
APP=$ROOT/build/test/apps/corethreads
SHOW=(export.out gdb.out)

for f in "$BIN/cryo_coordinator" "$BIN/cryo_launch" "$BIN/cryo_command" "$BIN/cryo_image" "$APP"; do
	[ -x "$f" ] || fail "$f is missing (run make)"
done
command -v gdb >/dev/null || fail "gdb is not installed (scripts/deps.sh installs it)"

# ---- a coordinator of our own, the program under cryo, one checkpoint

start_coordinator
launch "$APP"
wait_line "$T/app.out" "@@READY 1" "$APP_PID"

IMAGE=$(timeout -k 5 "$STEP" "$BIN/cryo_command" --coord "$COORD" --bcheckpoint \
	2>"$T/ckpt.err" </dev/null) || fail "cryo_command --bcheckpoint failed"
IMAGE=$(printf '%s\n' "$IMAGE" | grep -m1 .)
[ -f "$IMAGE" ] || fail "--bcheckpoint printed '$IMAGE', not an image file"

# ---- export-core

CORE=$T/out/core
mkdir "$T/out" || fail "mkdir $T/out"
timeout -k 5 "$STEP" "$BIN/cryo_image" export-core "$IMAGE" -o "$CORE" \
	>"$T/export.out" 2>"$T/export.err" </dev/null
rc=$?
[ "$rc" = 0 ] || fail "cryo_image export-core exited with status $rc"
[ -f "$CORE" ] || fail "export-core wrote no $CORE"
[ "$(stat -c %a "$CORE")" = 600 ] || fail "the core has mode $(stat -c %a "$CORE"), not 600"
[ "$(ls -A "$T/out")" = core ] ||
	fail "export-core left other files: $(ls -A "$T/out" | tr '\n' ' ')"
grep -q "^$CORE: 5 threads" "$T/export.out" ||
	fail "export-core said '$(cat "$T/export.out")', not '$CORE: 5 threads, ...'"

# ---- gdb

locals=(worker_alpha:alpha_local:4242 worker_beta:beta_local:5353 worker_gamma:gamma_local:6464
	main_waiting:main_local:7575)
GDB_ARGS=(-batch -nx -iex 'set debuginfod enabled off' -ex 'echo @@SECTION bt\n'
	-ex 'thread apply all bt')
for l in "${locals[@]}"; do
	IFS=: read -r fn var want <<<"$l"
	# Every frame of every thread where the variable is in scope: only its own.
	GDB_ARGS+=(-ex "echo @@SECTION $var\\n"
		-ex "thread apply all -s frame apply all -s print $var")
done
timeout -k 5 "$STEP" gdb "${GDB_ARGS[@]}" "$APP" "$CORE" >"$T/gdb.out" 2>&1 </dev/null
rc=$?
[ "$rc" = 0 ] || fail "gdb exited with status $rc"

# section NAME: the gdb output after "@@SECTION NAME", up to the next one.
section() {
	awk -v s="@@SECTION $1" '$0 == s { on = 1; next } /^@@SECTION / { on = 0 } on' "$T/gdb.out"
}

section bt >"$T/gdb.bt"
n=$(grep -Ec '^Thread [0-9]+ ' "$T/gdb.bt")
[ "$n" = 5 ] ||
	fail "gdb shows $n threads, not 5 (the main thread, 3 workers, the checkpoint thread)"
grep -Eq "^\[Current thread is 1 \(.*LWP $APP_PID\)\)\]" "$T/gdb.out" ||
	fail "gdb's current thread is not thread 1 with LWP $APP_PID (the main thread first)"
for fn in worker_alpha worker_beta worker_gamma main_waiting checkpoint_write; do
	grep -Eq "^#[0-9]+ +(0x[0-9a-f]+ in )?$fn \(" "$T/gdb.bt" ||
		fail "no frame of $fn in gdb's backtraces"
done
for l in "${locals[@]}"; do
	IFS=: read -r fn var want <<<"$l"
	# The value printed right after the frame line of fn.
	got=$(section "$var" | awk -v re="^#[0-9]+ +(0x[0-9a-f]+ in )?$fn \\\\(" '
		found && /^\$[0-9]+ = / { print $3; exit }
		$0 ~ re { found = 1 }')
	[ -n "$got" ] || fail "gdb printed no $var in a frame of $fn"
	[ "$got" = "$want" ] || fail "in $fn, gdb prints $var = $got, not $want"
done

# ---- refusals

BAD=$T/bad.cryo
cp "$IMAGE" "$BAD" || fail "cp $IMAGE"
size=$(stat -c %s "$BAD")
printf '\336\255\276\357\336\255\276\357' |
	dd of="$BAD" bs=1 seek=$((size / 2)) conv=notrunc status=none || fail "dd into $BAD"
timeout -k 5 "$STEP" "$BIN/cryo_image" export-core "$BAD" -o "$T/out/bad" \
	>"$T/bad.out" 2>"$T/bad.err" </dev/null
rc=$?
[ "$rc" = 1 ] || fail "export-core of a damaged image exited with status $rc, not 1"
[ "$(wc -l <"$T/bad.err")" = 1 ] && grep -q "is corrupt" "$T/bad.err" ||
	fail "export-core of a damaged image said: $(cat "$T/bad.err")"
[ "$(ls -A "$T/out")" = core ] ||
	fail "a refused export left files: $(ls -A "$T/out" | tr '\n' ' ')"
"$BIN/cryo_image" export-core >/dev/null 2>&1 </dev/null
rc=$?
[ "$rc" = 2 ] || fail "export-core without an image exited with status $rc, not 2"
"$BIN/cryo_image" export-core - <"$IMAGE" >/dev/null 2>&1
rc=$?
[ "$rc" = 2 ] || fail "export-core of standard input exited with status $rc, not 2"
"$BIN/cryo_image" export-core "$IMAGE" -o >/dev/null 2>&1 </dev/null
rc=$?
[ "$rc" = 2 ] || fail "export-core -o without a file exited with status $rc, not 2"

[ "$KEEP" = 1 ] && echo "(files kept in $T)"
echo "PASS $NAME"
exit 0
