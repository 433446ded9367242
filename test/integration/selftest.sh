#!/bin/bash
# test/integration/selftest.sh: checks the runner itself (run.sh) against the
# fake cryo programs in fake-cryo/ (no engine needed): that it passes
# correct runs in every mode and catches broken ones (lost output, missing
# image paths, a restart from too early, a hung program), and that it
# leaves no process behind. Run it after changing run.sh:
#   test/integration/selftest.sh        (needs `make test-apps`; migration
#                                        cases need root for gdb)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
RUN=test/integration/run.sh
APPS=build/test/apps
export CRYO_BIN=$ROOT/test/integration/fake-cryo
export FAKECRYO_TAG=$$$RANDOM
export FAKECRYO_REG=$(mktemp -d "${TMPDIR:-/tmp}/fakecryo-reg.XXXXXX")
export CRYO_TEST_TIMEOUT=120
pass=0 failed=0

[ -x "$APPS/counter" ] || { echo "selftest: run make test-apps first" >&2; exit 1; }

# leftovers: processes still carrying this selftest's tag in their environment.
leftovers() {
	local f
	for f in /proc/[0-9]*/environ; do
		[ "${f#/proc/}" = "$$/environ" ] && continue
		{ tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qx "FAKECRYO_TAG=$FAKECRYO_TAG" &&
			echo "${f//[^0-9]/}"
	done
}

# expect pass|fail PATTERN NAME [ENV=VAL...] -- RUN-ARGS...
expect() {
	local want=$1 pattern=$2 name=$3 envs=() out rc left
	shift 3
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(env "${envs[@]}" timeout -k 5 300 "$RUN" "$@" 2>&1)
	rc=$?
	left=$(leftovers)
	if [ -n "$left" ]; then
		echo "FAIL selftest/$name: processes left behind: $left"
		failed=$((failed + 1))
	elif { [ "$want" = pass ] && [ "$rc" = 0 ]; } ||
		{ [ "$want" = fail ] && [ "$rc" = 1 ] && grep -q -- "$pattern" <<<"$out"; }; then
		echo "PASS selftest/$name ($(tail -n 1 <<<"$out"))"
		pass=$((pass + 1))
		[ "$want" = fail ] && rm -rf "$(sed -n 's/^logs kept in //p' <<<"$out")"
	else
		echo "FAIL selftest/$name: wanted $want${pattern:+ with '$pattern'}, run.sh exited $rc:"
		sed 's/^/    /' <<<"$out" | tail -n 40
		failed=$((failed + 1))
	fi
}

expect pass '' restart-counter -- counter -- "$APPS/counter"
expect pass '' restart-signals -- signals -- "$APPS/signals"
expect pass '' restart-filemap -- filemap -- "$APPS/filemap"
expect pass '' count-python FAKECRYO_EXEC=1 -- --count 100 python -- /usr/bin/python3 test/apps/count.py 100
expect pass '' count-perl FAKECRYO_EXEC=1 -- --count 100 perl -- /usr/bin/perl test/apps/count.pl 100
expect pass '' one-cycle -- --cycles 1 counter -- "$APPS/counter" 10
if [ "$(id -u)" = 0 ] && command -v gdb >/dev/null; then
	expect pass '' migrate-counter -- --mode migrate counter -- "$APPS/counter"
	expect pass '' migrate-python FAKECRYO_EXEC=1 -- --mode migrate --count 100 python \
		-- /usr/bin/python3 test/apps/count.py 100
else
	echo "SKIP selftest/migrate-*: the fake migration needs root (gdb)"
fi
expect fail 'output differs' lost-line FAKECRYO_BREAK=dropline -- counter -- "$APPS/counter"
expect fail 'printed no image path' no-paths FAKECRYO_BREAK=nopaths -- counter -- "$APPS/counter"
expect fail 'was printed before checkpoint' count-from-zero FAKECRYO_BREAK=fromzero \
	FAKECRYO_EXEC=1 -- --count 100 python -- /usr/bin/python3 test/apps/count.py 100
expect fail 'not restored 3 s after' hung-restart FAKECRYO_BREAK=norestore \
	CRYO_TEST_STEP_TIMEOUT=3 -- counter -- "$APPS/counter"
expect fail 'still running after 3 s' hung-reference -- --timeout 3 hang -- sleep 60
expect fail 'exited with status 1' failing-program -- --reference-only false -- /bin/false
expect fail 'not deterministic' nondeterministic -- --reference-only --cycles 0 random -- \
	/bin/sh -c 'echo $$'
rm -rf "$FAKECRYO_REG"
echo "$pass passed, $failed failed"
[ "$failed" = 0 ]
