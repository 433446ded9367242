# test/integration/lib.sh: what the script tests (errors.sh, fork.sh,
# tree.sh, export_core.sh, encrypt.sh) share. Sourced after NAME is set:
#
#   NAME=tree
#   . "$(dirname "$0")/lib.sh"
#
# It sets ROOT, BIN (CRYO_BIN or build/bin), STEP (CRYO_TEST_STEP_TIMEOUT,
# seconds per step, default 60), KEEP (--keep given), T (a temporary
# directory, removed at exit unless the test failed or --keep), and sends
# bash's own notices ("Killed ...") to $T/shell.err. It gives:
#   alive PID            exists and is not a zombie (PID 1 here reaps late)
#   stop PID SIGNAL      signal, wait up to 5 s, SIGKILL, reap
#   fail MESSAGE...      shows the logs ($T/*.err, $T/cryo.log, the files in
#                        SHOW), prints "FAIL NAME: MESSAGE", exits 1
#   start_coordinator    a coordinator of our own on a free port, checkpoint
#                        directory $T/ckpt; sets COORD_PID, PORT, COORD, C
#                        (the "--coord 127.0.0.1:PORT" argument)
#   launch CMD...        cryo_launch --coord ... CMD, stdout $T/OUT.out,
#                        stderr $T/OUT.err (OUT: $LAUNCH_OUT, default app);
#                        sets APP_PID
#   wait_line FILE LINE PID   until FILE has the line LINE, while PID lives
# At exit every process of the computation is killed through the
# coordinator, then APP_PID and the coordinator are stopped, by pid.
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CRYO_BIN:-$ROOT/build/bin}
STEP=${CRYO_TEST_STEP_TIMEOUT:-60}
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1
T=$(mktemp -d "${TMPDIR:-/tmp}/cryo-test-$NAME.XXXXXX") || { echo "FAIL $NAME: mktemp -d"; exit 1; }
exec 2>>"$T/shell.err"
APP_PID= COORD_PID= PORT= COORD= C= FAILED=0
SHOW=()

alive() {
	local s
	[ -n "$1" ] || return 1
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	s=${s##*) }
	s=${s%% *}
	[ "$s" != Z ] && [ "$s" != X ]
}

stop() {
	local i
	kill -"$2" "$1" 2>/dev/null
	for i in $(seq 1 100); do
		alive "$1" || break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	[ -n "$COORD" ] && timeout 10 "$BIN/cryo_command" --coord "$COORD" --kill >/dev/null 2>&1
	[ -n "$APP_PID" ] && stop "$APP_PID" KILL
	[ -n "$COORD_PID" ] && stop "$COORD_PID" TERM
	APP_PID= COORD_PID=
	[ "$FAILED" = 1 ] || [ "$KEEP" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM HUP

show() {
	[ -s "$1" ] || return 0
	echo "---- ${1#"$T"/} (last ${2:-20} lines)"
	tail -n "${2:-20}" "$1" | sed 's/^/  | /'
}

fail() {
	local f
	FAILED=1
	for f in "$T"/*.err "$T/cryo.log" "${SHOW[@]/#/$T/}"; do
		show "$f" 30
	done
	echo "(files kept in $T)"
	echo "FAIL $NAME: $*"
	exit 1
}

start_coordinator() {
	local i
	mkdir -p "$T/ckpt"
	rm -f "$T/port"	# a second coordinator of one test: never read the first one's port
	"$BIN/cryo_coordinator" --port 0 --port-file "$T/port" --ckptdir "$T/ckpt" \
		>"$T/coord.out" 2>"$T/coord.err" </dev/null &
	COORD_PID=$!
	for i in $(seq 1 500); do
		[ -s "$T/port" ] && read -r PORT <"$T/port" && [[ $PORT =~ ^[0-9]+$ ]] && break
		PORT=
		alive "$COORD_PID" || fail "cryo_coordinator exited at start"
		sleep 0.02
	done
	[ -n "$PORT" ] || fail "cryo_coordinator wrote no port to $T/port in 10 s"
	COORD=127.0.0.1:$PORT
	C="--coord $COORD"
}

launch() {
	CRYO_TEST_READY_TIMEOUT=$((STEP * 3)) "$BIN/cryo_launch" --coord "$COORD" "$@" \
		>"$T/${LAUNCH_OUT:-app}.out" 2>"$T/${LAUNCH_OUT:-app}.err" </dev/null &
	APP_PID=$!
}

wait_line() {
	local i
	for i in $(seq 1 $((STEP * 20))); do
		grep -qx "$2" "$1" 2>/dev/null && return 0
		alive "$3" || fail "pid $3 exited before printing $2 in ${1#"$T"/}"
		sleep 0.05
	done
	fail "no '$2' in ${1#"$T"/} after $STEP s"
}
