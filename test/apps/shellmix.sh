# shellmix.sh: a shell script that forks in every way a script does, for
# test/integration/programs-bash.sh and programs-dash.sh, which run it as
# `bash -c "$(cat shellmix.sh)" shellmix ITERATIONS` (and the same with
# dash) and checkpoint it at random lines. POSIX sh, so both shells run it;
# under bash a few bash-only forms are added.
#
# Each iteration runs a three-command pipeline inside a command
# substitution, a subshell (its own cwd and variables), a background job
# (a subshell running sleep and a pipeline, writing a file in the current
# directory) while the shell itself works, then waits for the job and
# checks its status. Every line printed is "N text", N counting 1, 2, 3...
# in the main shell, so the runner can tell where each restart took over.
# The output depends only on ITERATIONS.
n=0
say() {
	n=$((n + 1))
	echo "$n $*"
}

# bash only (dash would not parse it): an array, process substitution.
if [ -n "${BASH_VERSION:-}" ]; then
	eval 'bashonly() {
		local arr=($(seq 1 3))
		say "iter $i bash $((a + b)) ${#arr[@]} $(paste -sd+ <(seq 1 "$i"))"
	}'
fi

iters=${1:-40}
top=$(pwd)
i=1
while [ "$i" -le "$iters" ]; do
	s=$(seq 1 $((i * 40)) | awk '{ s += $1 * $1 } END { print s }' | tr 0-9 a-j)
	say "iter $i pipeline $s"

	t=$(cd / && x=$i && for j in 1 2 3; do x=$((x * 3 + j)); done && echo "$x $(pwd)")
	[ "$(pwd)" = "$top" ] && c=kept || c=changed
	say "iter $i subshell $t, cwd $c"

	(sleep 0.02; seq 1 $((i * 7)) | cksum) >bg.out &
	bg=$!
	u=$(echo "$i" | awk '{ print $1 * 7 }')
	wait "$bg"
	st=$?
	say "iter $i background status $st: $(cat bg.out) $u"

	if [ -n "${BASH_VERSION:-}" ]; then
		read -r a b <<-EOF
			$((i * 2)) $((i * 3))
		EOF
		bashonly
	fi
	i=$((i + 1))
done
rm -f bg.out
say "done after $iters iterations"
