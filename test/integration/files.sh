#!/bin/bash
# test/integration/files.sh: the file policies of doc/files.md, with
# build/test/apps/filevanish (three files read line by line, "@@READY k"
# three times) and build/test/apps/filedeleted.
#
# 1. stdio: launched with stdout to out.out, restarted with --keep-stdio
#    (output goes on in out.out, after what was there, and not to the
#    restarting side's stdout), then without it (output goes to the new
#    stdout, r2.out), then with CRYO_KEEP_STDIO=1 (the original is now
#    r2.out: output goes on there). Each file must hold exactly its part.
# 2. A file vanished and one shortened since the checkpoint: --strict-files
#    and CRYO_STRICT_FILES=1 refuse the restart with one line naming the
#    vanished file, non-zero, before the program prints anything; without
#    them the restart warns about both, the vanished file's fd is left
#    closed (the program reads EBADF) and it runs to its end.
# 3. A file deleted while open, larger than CRYO_DELETED_MAX: the
#    checkpoint is refused with one line, the program runs on, no image is
#    left half-written.
# 4. --keep-stdio with the user's terminal (a pseudo-terminal of script(1)):
#    reopened by path, the output reaches it again.
#
#   test/integration/files.sh [--keep]        prints PASS files / FAIL files: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=files
. "$(dirname "$0")/lib.sh"
# The programs start (and are restored) in $T: the unprivileged pass may
# not be able to enter the directory the tree was cloned to.
cd "$T" || fail "cd $T"
APP=$ROOT/build/test/apps/filevanish

# make_files DIR: keep.txt, gone.txt, short.txt of ten lines each.
make_files() {
	mkdir -p "$1"
	for f in keep gone short; do
		for i in $(seq 0 9); do echo "$f line $i"; done >"$1/$f.txt"
	done
}

# checkpoint_kill: a verified checkpoint of the computation into $T/images,
# then every process killed.
checkpoint_kill() {
	timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" 2>"$T/ckpt.err" ||
		fail "checkpoint failed: $(cat "$T/ckpt.err")"
	"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
	for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
	alive "$APP_PID" && fail "the program survived --kill"
	wait "$APP_PID" 2>/dev/null
	APP_PID=
}

# restored PID: waits until the restarted process is the program again.
restored() {
	for _ in $(seq $((STEP * 20))); do
		if alive "$1" && ! grep -q cryo_restart /proc/"$1"/maps 2>/dev/null &&
			"$BIN/cryo_command" $C --status --json | grep -q '"state": *"running"'; then
			return 0
		fi
		alive "$1" || fail "the restart exited: $(cat "$T"/r*.err)"
		sleep 0.05
	done
	fail "not restored after $STEP s"
}

# expect FILE: FILE holds exactly the lines on stdin.
expect() {
	diff - "$1" >"$T/diff" || fail "${1#"$T"/} is not as expected: $(cat "$T/diff")"
}

export CRYO_LOG=warn
start_coordinator

# ---- 1. the stdio policy and --keep-stdio
make_files "$T/a"
# At info level the program's checkpoints log into out.err (its stderr,
# kept too): a file that grows by cryo's own lines is not warned about.
CRYO_LOG=info LAUNCH_OUT=out launch "$APP" "$T/a"
wait_line "$T/out.out" "@@READY 1" "$APP_PID"
checkpoint_kill
# shellcheck disable=SC2046
"$BIN/cryo_restart" $C --keep-stdio $(cat "$T/images") >"$T/r1.out" 2>"$T/r1.err" &
APP_PID=$!
restored "$APP_PID"
kill -USR1 "$APP_PID"
wait_line "$T/out.out" "@@READY 2" "$APP_PID"
[ -s "$T/r1.out" ] && fail "--keep-stdio: output went to the restarting side's stdout: $(cat "$T/r1.out")"
checkpoint_kill
# shellcheck disable=SC2046
"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/r2.out" 2>"$T/r2.err" &
APP_PID=$!
restored "$APP_PID"
kill -USR1 "$APP_PID"
wait_line "$T/r2.out" "@@READY 3" "$APP_PID"
checkpoint_kill
# shellcheck disable=SC2046
CRYO_KEEP_STDIO=1 "$BIN/cryo_restart" $C $(cat "$T/images") >"$T/r3.out" 2>"$T/r3.err" &
APP_PID=$!
restored "$APP_PID"
kill -USR1 "$APP_PID"
wait_line "$T/r2.out" "done" "$APP_PID"
wait "$APP_PID" || fail "the program exited with status $?: $(cat "$T"/r3.err)"
APP_PID=
expect "$T/out.out" <<EOF
keep: keep line 0
keep: keep line 1
keep: keep line 2
gone: gone line 0
gone: gone line 1
gone: gone line 2
short: short line 0
short: short line 1
short: short line 2
@@READY 1
after READY 1:
keep: keep line 3
gone: gone line 3
short: short line 3
@@READY 2
EOF
expect "$T/r2.out" <<EOF
after READY 2:
keep: keep line 4
gone: gone line 4
short: short line 4
@@READY 3
after READY 3:
keep: keep line 5
gone: gone line 5
short: short line 5
done
EOF
[ -s "$T/r1.out" ] || [ -s "$T/r3.out" ] && fail "output in the restarting side's stdout despite keeping the original"
for f in r1 r2 r3; do
	[ -s "$T/$f.err" ] && fail "warnings in the restart $f: $(cat "$T/$f.err")"
done

# ---- 2. a vanished file and a changed one
make_files "$T/b"
LAUNCH_OUT=b launch "$APP" "$T/b"
wait_line "$T/b.out" "@@READY 1" "$APP_PID"
checkpoint_kill
rm "$T/b/gone.txt"
printf 'short\n' >"$T/b/short.txt"
for how in flag env; do
	if [ $how = flag ]; then
		# shellcheck disable=SC2046
		timeout "$STEP" "$BIN/cryo_restart" $C --strict-files $(cat "$T/images") >"$T/s.out" 2>"$T/s.err"
	else
		# shellcheck disable=SC2046
		CRYO_STRICT_FILES=1 timeout "$STEP" "$BIN/cryo_restart" $C $(cat "$T/images") >"$T/s.out" 2>"$T/s.err"
	fi
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 124 ] && fail "strict ($how): the restart exited with status $rc"
	[ -s "$T/s.out" ] && fail "strict ($how): the program ran: $(cat "$T/s.out")"
	[ "$(grep -c 'restart refused' "$T/s.err")" = 1 ] && grep -q "gone.txt (fd 4).*vanished" "$T/s.err" ||
		fail "strict ($how): no single line naming gone.txt: $(cat "$T/s.err")"
	[ "$(wc -l <"$T/s.err")" = 1 ] || fail "strict ($how): more than one line: $(cat "$T/s.err")"
done
# shellcheck disable=SC2046
"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/v.out" 2>"$T/v.err" &
APP_PID=$!
restored "$APP_PID"
for k in 1 2 3; do
	[ "$k" = 1 ] || wait_line "$T/v.out" "@@READY $k" "$APP_PID"
	kill -USR1 "$APP_PID"
done
wait_line "$T/v.out" "done" "$APP_PID"
wait "$APP_PID" || fail "the program exited with status $? after the warnings"
APP_PID=
grep -q "fd 4: .*/b/gone.txt vanished since the checkpoint; the fd is left closed" "$T/v.err" ||
	fail "no warning about the vanished gone.txt: $(cat "$T/v.err")"
grep -q "fd 5: .*/b/short.txt changed since the checkpoint (130 bytes then, 6 now); it is now shorter than the saved offset" "$T/v.err" ||
	fail "no warning about the shortened short.txt: $(cat "$T/v.err")"
[ "$(wc -l <"$T/v.err")" = 2 ] || fail "other warnings than the two expected: $(cat "$T/v.err")"
expect "$T/v.out" <<EOF
after READY 1:
keep: keep line 3
gone: Bad file descriptor
short: EOF
@@READY 2
after READY 2:
keep: keep line 4
gone: Bad file descriptor
short: EOF
@@READY 3
after READY 3:
keep: keep line 5
gone: Bad file descriptor
short: EOF
done
EOF

# ---- 3. a deleted file over CRYO_DELETED_MAX
mkdir -p "$T/c"
export CRYO_DELETED_MAX=100K
LAUNCH_OUT=c launch "$ROOT/build/test/apps/filedeleted" "$T/c"
unset CRYO_DELETED_MAX
wait_line "$T/c.out" "@@READY 1" "$APP_PID"
timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" 2>"$T/ckpt.err" &&
	fail "a checkpoint with a deleted file over CRYO_DELETED_MAX succeeded"
n=$(grep -c 'more than CRYO_DELETED_MAX (102400): checkpoint refused' "$T/c.err")
[ "$n" = 1 ] || fail "$n lines saying the deleted file is too large: $(cat "$T/c.err")"
grep -q "del-a (deleted) is 307200 bytes" "$T/c.err" || fail "the refusal does not name del-a: $(cat "$T/c.err")"
ls "$T"/ckpt/*.tmp >/dev/null 2>&1 && fail "a temporary image was left: $(ls "$T"/ckpt/*.tmp)"
alive "$APP_PID" || fail "the program died with the refused checkpoint"
kill -USR1 "$APP_PID"
wait_line "$T/c.out" "@@READY 2" "$APP_PID"
"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
stop "$APP_PID" KILL
APP_PID=

# ---- 4. --keep-stdio with a terminal: launched inside script(1), whose
# pseudo-terminal is the outer stdio and outlives the program (a sleep
# holds it); restarted from here with --keep-stdio, the program reopens
# that terminal and its output reaches the typescript again.
if [ -x /usr/bin/script ]; then
	mkdir -p "$T/d"
	make_files "$T/d"
	{
		echo "CRYO_TEST_READY_TIMEOUT=$((STEP * 3)) '$BIN/cryo_launch' --coord '$COORD' '$APP' '$T/d'"
		echo 'echo "launch exited $?"'
		echo "sleep $((STEP * 2))"
	} >"$T/d.sh"
	/usr/bin/script -qfc "sh $T/d.sh" "$T/typescript" >/dev/null 2>"$T/script.err" </dev/null &
	SCRIPT_PID=$!
	for _ in $(seq $((STEP * 20))); do grep -q "@@READY 1" "$T/typescript" 2>/dev/null && break; sleep 0.05; done
	grep -q "@@READY 1" "$T/typescript" || fail "no @@READY 1 in the typescript: $(cat "$T/typescript" "$T/script.err")"
	checkpoint_kill
	for _ in $(seq 100); do grep -q "launch exited" "$T/typescript" && break; sleep 0.05; done
	# shellcheck disable=SC2046
	"$BIN/cryo_restart" $C --keep-stdio $(cat "$T/images") >"$T/r4.out" 2>"$T/r4.err" &
	APP_PID=$!
	restored "$APP_PID"
	kill -USR1 "$APP_PID"
	for _ in $(seq $((STEP * 20))); do grep -q "@@READY 2" "$T/typescript" && break; sleep 0.05; done
	grep -q "keep: keep line 3" "$T/typescript" && grep -q "@@READY 2" "$T/typescript" ||
		fail "--keep-stdio: the output did not reach the original terminal: $(tr -d '\r' <"$T/typescript" | tail -5; cat "$T/r4.err")"
	[ -s "$T/r4.out" ] && fail "--keep-stdio: output went to the restarting side's stdout: $(cat "$T/r4.out")"
	for k in 2 3; do
		kill -USR1 "$APP_PID"
		[ "$k" = 3 ] || for _ in $(seq $((STEP * 20))); do grep -q "@@READY 3" "$T/typescript" && break; sleep 0.05; done
	done
	for _ in $(seq $((STEP * 20))); do alive "$APP_PID" || break; sleep 0.05; done
	wait "$APP_PID" || fail "the program on the kept terminal exited with status $?"
	APP_PID=
	# script(1) copies the terminal's output to the typescript a moment later
	for _ in $(seq $((STEP * 20))); do tr -d '\r' <"$T/typescript" | grep -qx "done" && break; sleep 0.05; done
	tr -d '\r' <"$T/typescript" | grep -qx "done" || fail "no 'done' on the kept terminal"
	stop "$SCRIPT_PID" TERM
	tty=" (files and a terminal)"
fi

echo "PASS $NAME (stdio kept${tty:-} and not, vanished and changed files, strict refusals, deleted-file limit)"
