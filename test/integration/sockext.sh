#!/bin/bash
# test/integration/sockext.sh: a program connected to a server outside the
# computation (a Python echo server this test starts, and stops by pid).
# Without cryo the connection works after the pause; under cryo, after a
# checkpoint, kill and restart, the program must see it closed (a reset or
# end of file), keep running and exit 0, and cryo must log one line naming
# the connection.
#
#   test/integration/sockext.sh [--keep]      prints PASS sockext / FAIL sockext: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=sockext
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SERVER_PID=
stop_server() { [ -n "$SERVER_PID" ] && stop "$SERVER_PID" TERM; SERVER_PID=; }
trap 'stop_server; cleanup' EXIT

"$PY" -c '
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(8)
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
def serve(c):
    while True:
        d = c.recv(100)
        if not d: return
        c.sendall(d)
while True:
    c, _ = srv.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$T/sport" >"$T/server.out" 2>"$T/server.err" &
SERVER_PID=$!
for _ in $(seq 200); do [ -s "$T/sport" ] && break; sleep 0.05; done
SPORT=$(cat "$T/sport") || fail "the echo server did not start"

# The reference: the connection still works after the pause.
touch "$T/flag-ref"
"$PY" "$ROOT/test/apps/sockext.py" "$SPORT" "$T/flag-ref" >"$T/ref.out" 2>"$T/ref.err" </dev/null ||
	fail "the reference run failed"
grep -qx open "$T/ref.out" || fail "reference: the connection is not open: $(cat "$T/ref.out")"

export CRYO_LOG=info CRYO_LOG_FILE=$T/cryo.log
start_coordinator
LAUNCH_OUT=seg1 launch "$PY" "$ROOT/test/apps/sockext.py" "$SPORT" "$T/flag"
wait_line "$T/seg1.out" READY "$APP_PID"
timeout "$STEP" "$BIN/cryo_command" $C --bcheckpoint >"$T/images" || fail "checkpoint failed"
"$BIN/cryo_command" $C --kill >/dev/null || fail "cryo_command --kill"
for _ in $(seq 200); do alive "$APP_PID" || break; sleep 0.05; done
wait "$APP_PID" 2>/dev/null
# shellcheck disable=SC2046
"$BIN/cryo_restart" $C $(cat "$T/images") >"$T/seg2.out" 2>"$T/seg2.err" </dev/null &
APP_PID=$!
for _ in $(seq $((STEP * 20))); do
	[ "$("$BIN/cryo_command" $C --status --json | grep -o '"state": *"[a-z]*"' | grep -c running)" = 1 ] && break
	alive "$APP_PID" || fail "the restart exited: $(cat "$T/seg2.err")"
	sleep 0.05
done
touch "$T/flag"
for _ in $(seq $((STEP * 20))); do alive "$APP_PID" || break; sleep 0.05; done
wait "$APP_PID"
rc=$?
APP_PID=
[ "$rc" = 0 ] || fail "exit status $rc after the restart"
grep -qx closed "$T/seg2.out" || fail "after the restart the connection is not seen closed: $(cat "$T/seg2.out")"
grep -qx alive "$T/seg2.out" || fail "the program did not run on"
n=$(grep -c "127.0.0.1:$SPORT" "$T/cryo.log")
[ "$n" -ge 1 ] || fail "no log line names the connection to 127.0.0.1:$SPORT"
stop_server
echo "PASS $NAME (an outside peer: seen closed after the restart, the program runs on)"
