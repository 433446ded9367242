#!/bin/bash
# test/integration/programs-dash.sh: a dash script through three
# checkpoint / kill / restart cycles. `dash -c SCRIPT` runs
# test/apps/shellmix.sh (a loop of pipelines, subshells, background jobs
# waited for and here-documents, every output line
# numbered), checkpointed each time at a random line of a different
# quarter of its output and a random few milliseconds later, so the image
# catches it in the middle of whatever it was running. The merged output
# of the four runs must equal an uninterrupted run's, line for line, and
# the exit status too (see programs-lib.sh).
#
#   test/integration/programs-dash.sh [--keep]   prints PASS/FAIL programs-dash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=programs-dash
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/programs-lib.sh"
SCRIPT=$(cat "$ROOT/test/apps/shellmix.sh") || fail "cannot read test/apps/shellmix.sh"
ITER=40

prog_reference "$T/ref" dash -c "$SCRIPT" shellmix "$ITER"
TOTAL=$(wc -l <"$T/ref.out")
progress() { prog_lines_progress; }
target() { prog_spread "$1" "$TOTAL"; }
prog_cycles "$T/run" dash -c "$SCRIPT" shellmix "$ITER"
prog_status_match
prog_check_lines
echo "PASS $NAME ($TOTAL lines, 3 cycles at lines ${SEEN[*]})"
