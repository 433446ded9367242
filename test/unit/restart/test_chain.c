/* Unit tests of restart/chain.c: composing a chain of incremental images,
 * newest first (which image's bytes each page of the arena takes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "restart/chain.h"

#define P 4096ull

/* Two staged areas of the newest image: A at 0x10000 (16 pages, arena
 * pages 0-15) and B at 0x40000 (4 pages, arena pages 16-19). */
static const struct chain_area areas[] = {
	{ 0x10000, 0x20000, 0 },
	{ 0x40000, 0x44000, 16 * P },
};

static void pages_map_to_the_arena(void **state)
{
	struct chain c;

	(void)state;
	assert_int_equal(chain_init(&c, areas, 2, 20 * P), 0);
	assert_int_equal(chain_page(&c, 0x10000), 0);
	assert_int_equal(chain_page(&c, 0x1f000), 15);
	assert_int_equal(chain_page(&c, 0x1fffff), -1);
	assert_int_equal(chain_page(&c, 0x20000), -1);	/* end is exclusive */
	assert_int_equal(chain_page(&c, 0x40000), 16);
	assert_int_equal(chain_page(&c, 0x43fff), 19);
	assert_int_equal(chain_page(&c, 0x5000), -1);
	chain_free(&c);
}

/* The newest image stores A0 and keeps A1-A3 and B0; its parent stores A0
 * (older: ignored), A1 and B0, keeps A2 and B1 (not kept by the newest:
 * ignored); the full image stores A1 (already known), A2, A3 (not kept by
 * the parent: zero) and B1. */
static void newest_page_wins(void **state)
{
	struct chain c;

	(void)state;
	assert_int_equal(chain_init(&c, areas, 2, 20 * P), 0);
	/* level 0 */
	assert_int_equal(chain_kept(&c, 0x11000, 3), 0);
	assert_int_equal(chain_kept(&c, 0x40000, 1), 0);
	assert_int_equal(chain_stored(&c, 0x10000), 1);
	assert_int_equal(chain_next_level(&c), 4);
	/* level 1 */
	assert_int_equal(chain_kept(&c, 0x12000, 1), 0);
	assert_int_equal(chain_kept(&c, 0x41000, 1), 0);
	assert_int_equal(chain_stored(&c, 0x10000), 0);
	assert_int_equal(chain_stored(&c, 0x11000), 1);
	assert_int_equal(chain_stored(&c, 0x40000), 1);
	assert_int_equal(chain_stored(&c, 0x90000), 0);	/* no longer mapped */
	assert_int_equal(chain_next_level(&c), 1);
	/* level 2: the full image */
	assert_int_equal(chain_stored(&c, 0x11000), 0);
	assert_int_equal(chain_stored(&c, 0x12000), 1);
	assert_int_equal(chain_stored(&c, 0x13000), 0);
	assert_int_equal(chain_stored(&c, 0x41000), 0);
	assert_int_equal(chain_next_level(&c), 0);

	assert_true(chain_has(&c, 0));
	assert_true(chain_has(&c, 1));
	assert_true(chain_has(&c, 2));
	assert_false(chain_has(&c, 3));	/* zero: the parent dropped it */
	assert_false(chain_has(&c, 4));
	assert_true(chain_has(&c, 16));
	assert_false(chain_has(&c, 17));
	assert_false(chain_has(&c, 20));	/* past the arena */
	chain_free(&c);
}

/* A page discarded since the parent (absent, so neither stored nor kept by
 * the newest) must not come back from the parent. */
static void dropped_pages_stay_zero(void **state)
{
	struct chain c;

	(void)state;
	assert_int_equal(chain_init(&c, areas, 2, 20 * P), 0);
	assert_int_equal(chain_kept(&c, 0x10000, 1), 0);
	assert_int_equal(chain_next_level(&c), 1);
	assert_int_equal(chain_stored(&c, 0x10000), 1);
	assert_int_equal(chain_stored(&c, 0x11000), 0);
	assert_true(chain_has(&c, 0));
	assert_false(chain_has(&c, 1));
	chain_free(&c);
}

static void kept_and_stored_is_corrupt(void **state)
{
	struct chain c;

	(void)state;
	assert_int_equal(chain_init(&c, areas, 2, 20 * P), 0);
	assert_int_equal(chain_kept(&c, 0x10000, 2), 0);
	assert_int_equal(chain_stored(&c, 0x11000), -1);
	chain_next_level(&c);
	assert_int_equal(chain_kept(&c, 0x10000, 1), 0);
	assert_int_equal(chain_stored(&c, 0x10000), -1);
	chain_free(&c);
}

static void an_empty_arena_works(void **state)
{
	struct chain c;

	(void)state;
	assert_int_equal(chain_init(&c, NULL, 0, 0), 0);
	assert_int_equal(chain_page(&c, 0x10000), -1);
	assert_int_equal(chain_kept(&c, 0x10000, 4), 0);
	assert_int_equal(chain_stored(&c, 0x10000), 0);
	assert_int_equal(chain_next_level(&c), 0);
	chain_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pages_map_to_the_arena),
		cmocka_unit_test(newest_page_wins),
		cmocka_unit_test(dropped_pages_stay_zero),
		cmocka_unit_test(kept_and_stored_is_corrupt),
		cmocka_unit_test(an_empty_arena_works),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
