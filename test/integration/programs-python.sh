#!/bin/bash
# test/integration/programs-python.sh: python3 with multiprocessing.Pool(2)
# through three checkpoint / kill / restart cycles. test/apps/pool.py maps
# a function over a list per batch with a pool of two forked workers (the
# pool's pipes, its locks, its three handler threads) and prints one
# numbered line per batch; it is checkpointed each time at a random line
# of a different quarter of its output and a random few milliseconds
# later, so the image catches tasks and results in flight. The merged
# output of the four runs must equal an uninterrupted run's, line for
# line, the workers must end with status 0 and the interpreter too (see
# programs-lib.sh). /usr/bin/python3, not a pyenv shim: the unprivileged
# user runs it too.
#
#   test/integration/programs-python.sh [--keep]  prints PASS/FAIL programs-python
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=programs-python
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/programs-lib.sh"
PY=/usr/bin/python3
BATCHES=60

prog_reference "$T/ref" "$PY" "$ROOT/test/apps/pool.py" "$BATCHES"
TOTAL=$(wc -l <"$T/ref.out")
progress() { prog_lines_progress; }
target() { prog_spread "$1" "$TOTAL"; }
prog_cycles "$T/run" "$PY" "$ROOT/test/apps/pool.py" "$BATCHES"
prog_status_match
prog_check_lines
echo "PASS $NAME ($TOTAL lines, 3 cycles at lines ${SEEN[*]})"
