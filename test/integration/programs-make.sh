#!/bin/bash
# test/integration/programs-make.sh: `make -j2` building a small C project
# through three checkpoint / kill / restart cycles.
#
# The project is generated here: NFILES C files (each a few functions with
# loops and a large switch, so that gcc -O2 takes a while on each), a
# header, a static library of two of the objects (ar, deterministic), a
# program linked from them, and a last step that runs the program into
# result.txt. It is built once without cryo, and once under cryo in a copy
# at the same relative paths, checkpointed each time when a random number
# of objects (in a different quarter of the build each time) exist and a
# random few milliseconds later, so that compilers, assemblers and the
# linker are caught mid-way; the whole computation is killed at once and
# restarted. Every output file (each object, the library, the program,
# result.txt) must be identical (cmp) to the uninterrupted build's, make
# must exit 0 and print nothing (-s) on stdout, and no "make:" complaint
# may appear on stderr (jobserver, clock skew, a lost child).
#
#   test/integration/programs-make.sh [--keep]   prints PASS/FAIL programs-make
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
NAME=programs-make
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/programs-lib.sh"
NFILES=20

# gen DIR: the project, the same bytes every time.
gen() {
	local d=$1 i j objs=
	mkdir -p "$d/src" || fail "mkdir $d/src"
	cat >"$d/src/common.h" <<-'EOF'
		#ifndef COMMON_H
		#define COMMON_H
		unsigned mix(unsigned x, unsigned k);
	EOF
	for i in $(seq -w 1 "$NFILES"); do
		echo "unsigned f$i(unsigned x);" >>"$d/src/common.h"
		{
			echo '#include "common.h"'
			echo "static unsigned tab$i[64] = {"
			for j in $(seq 0 63); do printf '%u, ' $(((j * 2654435761 + 10#$i * 97) % 4294967296)); done
			echo '};'
			for j in 1 2 3 4; do
				echo "static unsigned g${i}_$j(unsigned x)"
				echo '{'
				echo '	unsigned s = x;'
				echo "	for (unsigned i = 0; i < $((j * 8 + 10#$i)); i++) {"
				echo '		switch ((s ^ i) & 31) {'
				for k in $(seq 0 31); do
					echo "		case $k: s = mix(s + tab$i[($k + i) & 63], $((k * j + 10#$i))u); break;"
				done
				echo '		}'
				echo '	}'
				echo '	return s;'
				echo '}'
			done
			echo "unsigned f$i(unsigned x)"
			echo '{'
			echo "	return g${i}_1(x) ^ g${i}_2(x + 1) ^ g${i}_3(x + 2) ^ g${i}_4(x + 3);"
			echo '}'
		} >"$d/src/f$i.c"
		objs="$objs obj/f$i.o"
	done
	echo '#endif' >>"$d/src/common.h"
	cat >"$d/src/mix.c" <<-'EOF'
		#include "common.h"
		unsigned mix(unsigned x, unsigned k)
		{
			x ^= x >> 16;
			x *= 0x7feb352du + k;
			x ^= x >> 15;
			return x;
		}
	EOF
	{
		echo '#include <stdio.h>'
		echo '#include "common.h"'
		echo 'int main(void)'
		echo '{'
		echo '	unsigned s = 1;'
		for i in $(seq -w 1 "$NFILES"); do
			echo "	s = f$i(s);"
			echo "	printf(\"f$i %u\\n\", s);"
		done
		echo '	return 0;'
		echo '}'
	} >"$d/src/main.c"
	{
		echo 'CC = gcc'
		echo 'CFLAGS = -O2 -Wall'
		echo "OBJS =$objs obj/main.o"
		echo 'all: prog result.txt'
		echo 'prog: $(OBJS) libmix.a'
		printf '\t$(CC) -o $@ $(OBJS) libmix.a\n'
		echo 'libmix.a: obj/mix.o'
		printf '\tar rcD $@ obj/mix.o\n'
		echo 'obj/%.o: src/%.c src/common.h | obj'
		printf '\t$(CC) $(CFLAGS) -c -o $@ $<\n'
		echo 'obj:'
		printf '\tmkdir -p obj\n'
		echo 'result.txt: prog'
		printf '\t./prog >result.txt\n'
	} >"$d/Makefile"
}

gen "$T/ref" 
cp -a "$T/ref" "$T/run" || fail "cp"
prog_reference "$T/ref" make -s -j2
OUTS=$(cd "$T/ref" && ls obj/*.o libmix.a prog result.txt) || fail "the reference build made no outputs"
[ "$(echo "$OUTS" | wc -l)" = $((NFILES + 5)) ] || fail "the reference build made $(echo "$OUTS" | wc -l) outputs"
# make the two builds' outputs reproducible: built twice, the same bytes
mv "$T/ref.out" "$T/ref1.out"
mkdir -p "$T/again" && cp -a "$T/run/." "$T/again/"
prog_reference "$T/again" make -s -j2
for f in $OUTS; do
	cmp -s "$T/ref/$f" "$T/again/$f" || fail "two uninterrupted builds differ in $f: the build is not reproducible"
done
rm -rf "$T/again"

TOTAL=$NFILES
progress() { REPLY=$(find "$T/run/obj" -name '*.o' 2>/dev/null | wc -l); }
target() { prog_spread "$1" "$TOTAL"; }
prog_cycles "$T/run" make -s -j2
prog_status_match
cat "$T"/seg*.out >"$T/cryo.out"
[ -s "$T/cryo.out" ] && fail "make -s printed on stdout under cryo: $(head -c 300 "$T/cryo.out")"
grep -h 'make' "$T"/seg*.err >"$T/make-complaints" && fail "make complained: $(head -n 5 "$T/make-complaints")"
for f in $OUTS; do
	[ -e "$T/run/$f" ] || fail "$f was not built under cryo"
	cmp "$T/ref/$f" "$T/run/$f" >"$T/cmp" 2>&1 || fail "$f differs from the uninterrupted build's: $(cat "$T/cmp")"
done
echo "PASS $NAME ($NFILES files, $(echo "$OUTS" | wc -l) outputs identical, 3 cycles at ${SEEN[*]} objects)"
