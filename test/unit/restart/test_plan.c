/* Unit tests for restart/plan.c: the address-space decisions the loader and
 * the restorer make (what to unmap, where a staging arena fits). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "restart/plan.h"

static void sort_and_merge(void **state)
{
	struct plan_range r[] = { { 50, 60 }, { 10, 20 }, { 15, 30 }, { 30, 40 }, { 70, 70 }, { 5, 6 } };
	size_t n = sizeof(r) / sizeof(r[0]);

	(void)state;
	plan_sort(r, n);
	for (size_t i = 1; i < n; i++)
		assert_true(r[i - 1].start <= r[i].start);
	n = plan_merge(r, n);
	assert_int_equal(n, 3);	/* empty [70,70) dropped, [10,40) merged */
	assert_int_equal(r[0].start, 5);
	assert_int_equal(r[0].end, 6);
	assert_int_equal(r[1].start, 10);
	assert_int_equal(r[1].end, 40);
	assert_int_equal(r[2].start, 50);
	assert_int_equal(r[2].end, 60);
}

static void gaps_are_the_complement(void **state)
{
	struct plan_range keep[] = { { 0x1000, 0x2000 }, { 0x5000, 0x8000 } }, gaps[4];
	size_t n;

	(void)state;
	n = plan_gaps(keep, 2, 0, 0x10000, gaps, 4);
	assert_int_equal(n, 3);
	assert_int_equal(gaps[0].start, 0);
	assert_int_equal(gaps[0].end, 0x1000);
	assert_int_equal(gaps[1].start, 0x2000);
	assert_int_equal(gaps[1].end, 0x5000);
	assert_int_equal(gaps[2].start, 0x8000);
	assert_int_equal(gaps[2].end, 0x10000);
	/* A keep range at the very top leaves no gap above it. */
	keep[1].end = 0x10000;
	n = plan_gaps(keep, 2, 0, 0x10000, gaps, 4);
	assert_int_equal(n, 2);
	/* Too many gaps for the array: the count says so. */
	n = plan_gaps(keep, 2, 0, 0x10000, gaps, 1);
	assert_int_equal(n, 2);
	/* Nothing kept: one gap, everything. */
	n = plan_gaps(keep, 0, 0, 0x10000, gaps, 4);
	assert_int_equal(n, 1);
	assert_int_equal(gaps[0].end, 0x10000);
}

static void hole_is_highest_that_fits_with_guards(void **state)
{
	struct plan_range busy[] = { { 0x10000, 0x20000 }, { 0x30000, 0x38000 }, { 0x40000, 0x50000 } };
	uint64_t a;

	(void)state;
	/* Above the last range: at the top, under a guard. */
	a = plan_find_hole(busy, 3, 0x1000, 0x1000, 0x10000, 0x60000);
	assert_int_equal(a, 0x60000 - 0x1000 - 0x1000);
	/* Too big for the top gap (0x10000) with guards: the next gap down
	 * [0x38000, 0x40000) is 0x8000, also too small; then [0x20000, 0x30000). */
	a = plan_find_hole(busy, 3, 0xe000, 0x1000, 0x10000, 0x5f000);
	assert_int_equal(a, 0x30000 - 0x1000 - 0xe000);
	assert_false(plan_overlaps(busy, 3, a - 0x1000, a + 0xe000 + 0x1000));
	/* Nothing fits. */
	assert_int_equal(plan_find_hole(busy, 3, 0x100000, 0, 0x10000, 0x60000), 0);
}

static void overlaps(void **state)
{
	struct plan_range r[] = { { 100, 200 }, { 300, 400 } };

	(void)state;
	assert_true(plan_overlaps(r, 2, 150, 160));
	assert_true(plan_overlaps(r, 2, 50, 101));
	assert_true(plan_overlaps(r, 2, 399, 500));
	assert_false(plan_overlaps(r, 2, 200, 300));	/* touching is not overlapping */
	assert_false(plan_overlaps(r, 2, 0, 100));
	assert_false(plan_overlaps(r, 0, 0, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sort_and_merge),
		cmocka_unit_test(gaps_are_the_complement),
		cmocka_unit_test(hole_is_highest_that_fits_with_guards),
		cmocka_unit_test(overlaps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
