/* Pure address-space planning over range arrays, shared by the hosted loader
 * (where to stage memory and load the restorer) and the freestanding
 * restorer (what to unmap). No syscalls, no libc: unit-tested on the host. */
#ifndef CRYO_RESTART_PLAN_H
#define CRYO_RESTART_PLAN_H
#include <stddef.h>
#include <stdint.h>

struct plan_range {
	uint64_t start, end;	/* end exclusive */
};

/* Sorts by start (insertion sort: n is small and this must be freestanding). */
void plan_sort(struct plan_range *r, size_t n);
/* Merges overlapping or touching ranges of a sorted array in place; returns
 * the new count. */
size_t plan_merge(struct plan_range *r, size_t n);
/* The complement of the sorted, merged keep[] within [lo, hi): writes at most
 * max gaps and returns how many there are (may exceed max: the caller checks). */
size_t plan_gaps(const struct plan_range *keep, size_t n, uint64_t lo, uint64_t hi,
		 struct plan_range *gaps, size_t max);
/* The highest address a with [a - guard, a + len + guard) inside [lo, hi) and
 * clear of every busy range (sorted, merged). 0 if none. len and guard are
 * page multiples. */
uint64_t plan_find_hole(const struct plan_range *busy, size_t n, uint64_t len, uint64_t guard,
			uint64_t lo, uint64_t hi);
/* 1 if [start, end) overlaps any of the n ranges (any order). */
int plan_overlaps(const struct plan_range *r, size_t n, uint64_t start, uint64_t end);

#endif /* CRYO_RESTART_PLAN_H */
