#!/bin/bash
# test/integration/fork.sh: children join the computation. A program forks
# a child and, through system(), a shell; every one of them must be a
# process of the computation, and a checkpoint must write one verified image
# for each, the child's naming its parent. (Restarting a process tree comes
# with issue #3's restart work; this checks the checkpoint side.)
#
#   test/integration/fork.sh [--keep]       prints PASS fork / FAIL fork: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=fork
. "$(dirname "$0")/lib.sh"

start_coordinator
launch "$ROOT/build/test/apps/forktree"
wait_line "$T/app.out" "@@READY 1" "$APP_PID"
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
