/* zeropages: a large sparse anonymous mapping (512 MiB, MAP_NORESERVE)
 * whose pages are in four states: written with data, written with zeros
 * (allocated but all-zero), only read (the shared zero page) and never
 * touched. Between cycles some data pages are zeroed again and some zero
 * pages get data, so a checkpoint that skips zero pages or keeps stale ones
 * shows. Every page is checked after each restart. Usage: zeropages [MiB] */
#include "../lib/harness.h"
#include <sys/mman.h>

#define PAGE 4096ul
#define WORDS (PAGE / 8)

static uint64_t *map;
static uint16_t *tag;		/* 0: page must read as zero, else its data tag */
static size_t npages;

static void put(size_t i, uint16_t t)
{
	uint64_t *w = map + i * WORDS;

	if (!t) {
		memset(w, 0, PAGE);
	} else {
		for (size_t j = 0; j < WORDS; j += 64)
			w[j] = ((uint64_t)i << 20) ^ ((uint64_t)t << 4) ^ j;
	}
	tag[i] = t;
}

static void verify(const char *when)
{
	size_t data = 0, zero = 0;
	uint64_t h = T_HASH_INIT;

	for (size_t i = 0; i < npages; i++) {
		const uint64_t *w = map + i * WORDS;
		uint16_t t = tag[i];

		for (size_t j = 0; j < WORDS; j++) {
			uint64_t want = t && j % 64 == 0 ? ((uint64_t)i << 20) ^ ((uint64_t)t << 4) ^ j : 0;

			if (w[j] != want)
				t_fail("%s: page %zu (tag %u) word %zu: %#llx, want %#llx", when, i, t, j,
				       (unsigned long long)w[j], (unsigned long long)want);
		}
		t ? data++ : zero++;
		h = t_hash(h, &t, sizeof(t));
	}
	printf("%s: %zu data pages, %zu zero pages, checksum %016llx\n", when, data, zero,
	       (unsigned long long)h);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 512;
	volatile uint64_t sink = 0;
	char when[64];

	t_init(argc, argv);
	npages = mib * 1024 * 1024 / PAGE;
	tag = calloc(npages, sizeof(*tag));
	map = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	T_CHECK(tag && map != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	for (size_t i = 0; i < npages; i++) {
		switch (i % 4) {
		case 0: put(i, 1); break;			/* data */
		case 1: put(i, 0); break;			/* written zeros */
		case 2: sink += map[i * WORDS]; break;		/* read only */
		case 3: break;					/* untouched */
		}
	}
	printf("%zu MiB: data, written-zero, read-only and untouched pages\n", mib);
	for (int k = 1; k <= 3; k++) {
		t_ready(k);
		snprintf(when, sizeof(when), "after READY %d", k);
		verify(when);
		for (size_t i = 0; i < npages; i++) {
			if (i % 32 == (size_t)(8 * (k - 1)))	/* data pages become zero */
				put(i, 0);
			else if (i % 32 == (size_t)(4 * k + 1))	/* zero pages get data */
				put(i, k + 1);
		}
	}
	verify("at the end");
	t_pass();
}
