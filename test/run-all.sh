#!/bin/bash
# test/run-all.sh: every test of cryo, as `make check` runs it.
#
#   test/run-all.sh [--unit-only | --integration-only] [--reference-only]
#                   [--no-user] [NAME...]
#
# 1. Unit tests: every binary under build/test/unit/ (cmocka), by name
#    unit/<dir>/<stem>.
# 2. Integration tests: each program of test/apps through
#    test/integration/run.sh (three checkpoint/kill/restart cycles compared
#    with an uninterrupted run), the python3 and perl counting scripts at
#    random moments, migration of counter and python3 over loopback, and
#    the script tests test/integration/export_core.sh (gdb reads an exported
#    core) and errors.sh (bad input: one clear line, a non-zero exit).
# 3. As root: the same integration list again as the unprivileged user
#    cryotest (created with `useradd -m` if missing), through
#    `setpriv --reuid=cryotest --regid=cryotest --init-groups`, names
#    prefixed "cryotest:". Not run when the caller is not root (the first
#    pass was unprivileged already) or with --no-user.
#
# NAME arguments keep only the tests whose name contains one of them
# (e.g. `test/run-all.sh signals python`). --reference-only runs the
# integration programs without cryo, twice, to check that they pass and are
# deterministic. One line per test, then the summary line "N passed, N failed";
# the exit status is non-zero if anything failed. A failing test's output
# (diff, logs, the kept temporary directory) is printed below its line.
#
# Environment: CRYO_TEST_TIMEOUT (seconds per run of a program, default 90),
# CRYO_TEST_STEP_TIMEOUT (one checkpoint, restart or migration, default 30),
# CRYO_TEST_LOG, CRYO_BIN: passed on to run.sh. CRYO_TEST_UNSTABLE=1 adds the
# bash, dash and make real-program tests, which still fail intermittently.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
APPS=$ROOT/build/test/apps
PY=/usr/bin/python3	# not a pyenv shim: the unprivileged user must run it
PERL=/usr/bin/perl
TEST_USER=cryotest
export CRYO_TEST_TIMEOUT=${CRYO_TEST_TIMEOUT:-90}
export CRYO_TEST_STEP_TIMEOUT=${CRYO_TEST_STEP_TIMEOUT:-30}

do_unit=1 do_integ=1 do_user=1 ref_only=0 filters=()
while [ $# -gt 0 ]; do
	case $1 in
	--unit-only) do_integ=0; shift ;;
	--integration-only) do_unit=0; shift ;;
	--reference-only) ref_only=1; shift ;;
	--no-user) do_user=0; shift ;;
	-h | --help) sed -n '2,/^\[ -n/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*) filters+=("$1"); shift ;;
	esac
done

passed=0 failed=0
START=$SECONDS
CUR=
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/cryo-run-all.XXXXXX") || exit 1
trap 'rm -rf "$LOGDIR"' EXIT
# Stopping run-all stops the test in progress (its timeout forwards the
# signal; run.sh then kills what it started, by pid).
exec 3>&1	# the trap's message goes here, not into a test's log
trap 'echo "run-all: interrupted" >&3; [ -n "$CUR" ] && kill -TERM "$CUR" 2>/dev/null && wait "$CUR"; exit 130' INT TERM HUP

# bg CMD...: runs CMD in the background and waits, so that a signal to
# run-all is handled at once; exit status in REPLY.
bg() {
	"$@" 3>&- &
	CUR=$!
	wait "$CUR"
	REPLY=$?
	CUR=
}

wanted() {
	local f
	[ ${#filters[@]} = 0 ] && return 0
	for f in "${filters[@]}"; do
		[[ $1 == *"$f"* ]] && return 0
	done
	return 1
}

# report NAME STATUS LOG [LINE]: one line per test; the log under a failure.
report() {
	local name=$1 rc=$2 log=$3 line=${4:-}
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "${line:-PASS $name}"
	else
		failed=$((failed + 1))
		echo "${line:-FAIL $name (exit status $rc)}"
		[ -s "$log" ] && tail -n 100 "$log" | sed 's/^/    /'
	fi
}

# ------------------------------------------------------------- unit tests

run_units() {
	local bin name rc n=0
	[ -d build/test/unit ] || { echo "(no unit tests built: run make unit)"; return; }
	while IFS= read -r bin; do
		name=unit/${bin#build/test/unit/}
		wanted "$name" || continue
		n=$((n + 1))
		bg timeout -k 10 300 "$bin" >"$LOGDIR/unit.log" 2>&1 </dev/null
		rc=$REPLY
		[ "$rc" = 124 ] && echo "(timed out after 300 s)" >>"$LOGDIR/unit.log"
		report "$name" "$rc" "$LOGDIR/unit.log"
	done < <(find build/test/unit -type f -perm -u+x ! -name '*.*' | sort)
	[ "$n" -gt 0 ] || [ ${#filters[@]} -gt 0 ] || echo "(no unit test binaries under build/test/unit)"
}

# ------------------------------------------------------ integration tests

# The list: NAME then run.sh's arguments after the name, for the tree at $1
# (the repository, or the copy the unprivileged user runs from).
build_tests() {
	local root=$1 apps=$1/build/test/apps app script
	RUN=$root/test/integration/run.sh
	TESTS=()
	for app in counter threads signals bigmem filemap recursion tls zeropages mremap \
		gettimeofday clock dlopen stdio eventfds epoll inotify ptimer fileappend filedeleted filedev \
		filestdio; do
		TESTS+=("$app|-- $apps/$app")
	done
	TESTS+=("ptimer-fallback|-- $apps/ptimer fallback")	# without PR_TIMER_CREATE_RESTORE_IDS
	TESTS+=("python|--count 150 -- $PY $root/test/apps/count.py 150")
	TESTS+=("perl|--count 150 -- $PERL $root/test/apps/count.pl 150")
	TESTS+=("migrate-counter|--mode migrate -- $apps/counter")
	TESTS+=("migrate-python|--mode migrate --count 150 -- $PY $root/test/apps/count.py 150")
	# Tests that are scripts of their own (test/integration/NAME.sh), not run.sh.
	for script in export_core errors fork tree encrypt pidchain spawntree pgroup files files_shared incremental cow; do
		TESTS+=("$script|script $root/test/integration/$script.sh")
	done
	# Multi-process test programs through test/integration/multi.sh:
	# NAME, the number of images per checkpoint, the program.
	TESTS+=("pipes|script $root/test/integration/multi.sh pipes 3 $apps/pipes")
	TESTS+=("shmem|script $root/test/integration/multi.sh shmem 2 $apps/shmem")
	TESTS+=("ptyshell|script $root/test/integration/multi.sh ptyshell 2 $apps/ptyshell")
	TESTS+=("eventshare|script $root/test/integration/multi.sh eventshare 2 $apps/eventshare")
	TESTS+=("tcpflow|script $root/test/integration/multi.sh tcpflow 2 $apps/tcpflow")
	TESTS+=("unixpair|script $root/test/integration/multi.sh unixpair 2 $apps/unixpair")
	TESTS+=("sockext|script $root/test/integration/sockext.sh")
	TESTS+=("tcpflow6|script $root/test/integration/multi.sh tcpflow6 2 $apps/tcpflow 6")
	TESTS+=("script|script $root/test/integration/script.sh")
	TESTS+=("pipeline|script $root/test/integration/multi.sh pipeline 3 $apps/pipeline")
	TESTS+=("popen|script $root/test/integration/multi.sh popen 5 $apps/popen")
	TESTS+=("waitblock|script $root/test/integration/multi.sh waitblock 4 $apps/waitblock")
	TESTS+=("zombies|script $root/test/integration/multi.sh zombies 1 $apps/zombies")
	# Real programs checkpointed at random points (test/integration/programs-lib.sh).
	TESTS+=("programs-python|script $root/test/integration/programs-python.sh")
	# Still failing intermittently (issue #3, open): bash and dash running
	# shellmix.sh (a command substitution's output comes back misplaced
	# after some restarts), make -j2 (a compiler child dies of SIGSEGV about
	# one run in five under load). They run with CRYO_TEST_UNSTABLE=1.
	if [ "${CRYO_TEST_UNSTABLE:-0}" = 1 ]; then
		for script in programs-bash programs-dash programs-make; do
			TESTS+=("$script|script $root/test/integration/$script.sh")
		done
	fi
}
build_tests "$ROOT"

# run_integration PREFIX CMD-PREFIX...: the list, each through run.sh.
run_integration() {
	local prefix=$1 entry name args rc last
	shift
	for entry in "${TESTS[@]}"; do
		name=${entry%%|*}
		args=${entry#*|}
		wanted "$prefix$name" || continue
		local opts=() rest=()
		if [ "${args%% *}" = script ]; then
			[ "$ref_only" = 1 ] && continue	# no reference mode: it needs cryo
			read -r -a rest <<<"${args#script }"
			bg timeout -k 10 $((3 * CRYO_TEST_TIMEOUT + 120)) "$@" bash "${rest[@]}" \
				>"$LOGDIR/integ.log" 2>&1 </dev/null
		else
			# split "OPTS -- CMD" (no argument contains spaces)
			read -r -a rest <<<"$args"
			while [ "${rest[0]}" != -- ]; do opts+=("${rest[0]}"); rest=("${rest[@]:1}"); done
			[ "$ref_only" = 1 ] && opts+=(--reference-only)
			bg timeout -k 10 $((3 * CRYO_TEST_TIMEOUT + 120)) "$@" bash "$RUN" "${opts[@]}" \
				"$prefix$name" "${rest[@]}" >"$LOGDIR/integ.log" 2>&1 </dev/null
		fi
		rc=$REPLY
		last=$(tail -n 1 "$LOGDIR/integ.log")
		case $last in PASS* | FAIL*) ;; *) last= ;; esac
		# a script names itself: add the pass's prefix (cryotest:)
		case $last in "PASS $name"* | "FAIL $name"*) last="${last%% *} $prefix${last#* }" ;; esac
		[ "$rc" = 124 ] && last="FAIL $prefix$name (run.sh itself timed out)"
		[ "$rc" != 0 ] && [ "${last%% *}" = PASS ] && last="FAIL $prefix$name (run.sh exited $rc)"
		report "$prefix$name" "$rc" "$LOGDIR/integ.log" "$last"
	done
}

# The unprivileged pass: same list as $TEST_USER.
run_as_user() {
	local home utmp utree= f missing=
	[ ${#filters[@]} -gt 0 ] && ! wanted_any_user && return
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		useradd -m "$TEST_USER" >"$LOGDIR/useradd.log" 2>&1 ||
			{ report "$TEST_USER:setup" 1 "$LOGDIR/useradd.log" \
				"FAIL $TEST_USER:setup (useradd -m $TEST_USER failed)"; return; }
	fi
	home=$(getent passwd "$TEST_USER" | cut -d: -f6)
	for f in "$RUN" "$ROOT/build/bin/cryo_launch" "$ROOT/build/bin/cryo_restart" \
		"$ROOT/build/lib/libcryo.so" "$APPS/counter" "$ROOT/test/apps/count.py"; do
		[ -e "$f" ] || continue
		setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --init-groups test -r "$f" ||
			missing="$missing $f"
	done
	if [ -n "$missing" ]; then
		# The clone is not readable by others (a 0700 temporary directory,
		# a home directory): the user runs a copy of the built tree.
		utree=$(mktemp -d /tmp/cryo-tree.XXXXXX) || return
		chmod 755 "$utree"
		cp -a "$ROOT/build" "$ROOT/test" "$utree/" && chmod -R o+rX "$utree" || {
			echo "cannot copy the build to $utree for $TEST_USER (it cannot read:$missing)" \
				>"$LOGDIR/access.log"
			report "$TEST_USER:access" 1 "$LOGDIR/access.log" \
				"FAIL $TEST_USER:access (the unprivileged user cannot read the build)"
			rm -rf "$utree"
			return
		}
		echo "($TEST_USER cannot read $ROOT: running its pass from a copy in $utree)"
		build_tests "$utree"
	fi
	utmp=$(mktemp -d /tmp/cryo-user.XXXXXX) || return
	chown "$TEST_USER:" "$utmp"
	chmod 700 "$utmp"
	local before=$failed
	run_integration "$TEST_USER:" setpriv --reuid="$TEST_USER" --regid="$TEST_USER" \
		--init-groups env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
		USER="$TEST_USER" LOGNAME="$TEST_USER" TMPDIR="$utmp" LC_ALL=C \
		CRYO_TEST_TIMEOUT="$CRYO_TEST_TIMEOUT" CRYO_TEST_STEP_TIMEOUT="$CRYO_TEST_STEP_TIMEOUT" \
		${CRYO_TEST_LOG:+CRYO_TEST_LOG=$CRYO_TEST_LOG} ${CRYO_BIN:+CRYO_BIN=$CRYO_BIN}
	if [ "$failed" = "$before" ]; then
		rm -rf "$utmp"
	else
		echo "(logs of the $TEST_USER runs kept under $utmp)"
	fi
	if [ -n "${utree:-}" ]; then
		rm -rf "$utree"
		build_tests "$ROOT"
	fi
}

# With filters, the user pass runs if any filter names a user test.
wanted_any_user() {
	local entry
	for entry in "${TESTS[@]}"; do
		wanted "$TEST_USER:${entry%%|*}" && return 0
	done
	return 1
}

[ "$do_unit" = 1 ] && run_units
if [ "$do_integ" = 1 ]; then
	if [ "$ref_only" = 0 ] && [ ! -x build/bin/cryo_launch ]; then
		echo "FAIL integration: build/bin/cryo_launch is missing (run make)"
		failed=$((failed + 1))
	else
		run_integration ""
		if [ "$do_user" = 1 ] && [ "$(id -u)" = 0 ]; then
			run_as_user
		elif [ "$do_user" = 1 ]; then
			echo "(not root: this run was the unprivileged one)"
		fi
	fi
fi
echo "(run-all: $((SECONDS - START)) s)"
if [ $((passed + failed)) = 0 ]; then
	echo "no test matched${filters[*]:+ ${filters[*]}}"
	failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
