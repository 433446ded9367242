#!/bin/bash
# test/integration/tree.sh: a parent and its child through three
# checkpoint / kill / restart cycles (cycles.sh): build/test/apps/forkwait
# checks after each restart that the child is still its parent's, with the
# same pids, and reaps it with status 42. The output must equal an
# uninterrupted run's.
#
#   test/integration/tree.sh [--keep]        prints PASS tree / FAIL tree: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=tree
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cycles.sh"
run_cycles 2 "$ROOT/build/test/apps/forkwait"
echo "PASS $NAME (2 processes, 3 cycles)"
