#!/bin/bash
# test/integration/pgroup.sh: process groups with several members
# (build/test/apps/pgroup: members whose leader is not their parent, and a
# group whose leader is gone, its members orphans) through three
# checkpoint / kill / restart cycles; after the last restart kill(-pgid)
# and killpg must reach every member. The output must equal an
# uninterrupted run's.
#
#   test/integration/pgroup.sh [--keep]   prints PASS pgroup / FAIL pgroup: why
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=pgroup
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cycles.sh"
run_cycles 6 "$ROOT/build/test/apps/pgroup"
echo "PASS $NAME (2 groups of 3 and 2 members, 3 cycles)"
