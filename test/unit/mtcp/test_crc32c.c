/* Unit tests of mtcp/crc32c.c: the published CRC-32C check values, chaining,
 * and the SSE4.2 and table-driven implementations agreeing on random
 * buffers of every length class (below 8 bytes, the short and long
 * three-stream loops and their edges) at every alignment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "mtcp/image.h"
#include "mtcp/image-priv.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn crc)
{
	uint8_t buf[32];
	int i;

	assert_int_equal(crc(0, "", 0), 0);
	assert_int_equal(crc(0, "a", 1), 0xc1d04330u);
	assert_int_equal(crc(0, "123456789", 9), 0xe3069283u);
	/* RFC 3720 (iSCSI), B.4 */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc(0, buf, sizeof(buf)), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc(0, buf, sizeof(buf)), 0x62a8ab43u);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc(0, buf, sizeof(buf)), 0x46dd794eu);
	for (i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc(0, buf, sizeof(buf)), 0x113fdb5cu);
	/* Chaining: the CRC of a whole equals the CRC continued over its parts. */
	assert_int_equal(crc(crc(0, "1234", 4), "56789", 5), 0xe3069283u);
	assert_int_equal(crc(crc(crc(0, "1", 1), "", 0), "23456789", 8), 0xe3069283u);
}

static void known_vectors(void **state)
{
	(void)state;
	check_vectors(image_crc32c);
	check_vectors(image_crc32c_sw);
	if (image_crc32c_hw_ok())
		check_vectors(image_crc32c_hw);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define BIG (3 * 8192 * 4 + 4096)

static void hw_matches_sw(void **state)
{
	static const size_t edges[] = { 0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 255, 256, 767, 768, 769,
					775, 776, 1535, 1536, 4096, 24575, 24576, 24577, 24583,
					24584, 25343, 25344, 49152, 49159, 65536 + 13, BIG - 64 };
	uint8_t *buf = malloc(BIG + 64);
	size_t i, k;

	(void)state;
	if (!image_crc32c_hw_ok())
		skip();
	assert_non_null(buf);
	for (i = 0; i < BIG + 64; i++)
		buf[i] = (uint8_t)next_rand();
	for (k = 0; k < sizeof(edges) / sizeof(edges[0]); k++)
		for (i = 0; i < 9; i++) {
			uint32_t seed = (uint32_t)next_rand();

			assert_int_equal(image_crc32c_hw(seed, buf + i, edges[k]),
					 image_crc32c_sw(seed, buf + i, edges[k]));
		}
	for (k = 0; k < 3000; k++) {
		size_t off = next_rand() % 64, len = next_rand() % (k < 1500 ? 2000 : BIG);
		uint32_t seed = (uint32_t)next_rand();

		assert_int_equal(image_crc32c_hw(seed, buf + off, len),
				 image_crc32c_sw(seed, buf + off, len));
	}
	free(buf);
}

/* The chained CRC of random splits equals the one-shot CRC, on both paths. */
static void chaining_random_splits(void **state)
{
	uint8_t *buf = malloc(BIG);
	uint32_t whole;
	size_t i, k;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < BIG; i++)
		buf[i] = (uint8_t)next_rand();
	whole = image_crc32c_sw(0, buf, BIG);
	assert_int_equal(image_crc32c(0, buf, BIG), whole);
	for (k = 0; k < 200; k++) {
		uint32_t crc = 0;
		size_t at = 0;

		while (at < BIG) {
			size_t n = next_rand() % 30000;

			if (n > BIG - at)
				n = BIG - at;
			crc = image_crc32c(crc, buf + at, n);
			at += n;
		}
		assert_int_equal(crc, whole);
	}
	free(buf);
}

/* A single flipped bit anywhere changes the CRC. */
static void detects_single_bit_flips(void **state)
{
	uint8_t buf[1000];
	uint32_t good;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)next_rand();
	good = image_crc32c(0, buf, sizeof(buf));
	for (i = 0; i < sizeof(buf) * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(image_crc32c(0, buf, sizeof(buf)), good);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_vectors),
		cmocka_unit_test(hw_matches_sw),
		cmocka_unit_test(chaining_random_splits),
		cmocka_unit_test(detects_single_bit_flips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
