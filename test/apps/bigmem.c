/* bigmem: a 1 GiB anonymous MAP_NORESERVE mapping with a quarter of its
 * pages (every 4th) written before the first checkpoint, and more pages
 * written, or rewritten, after each restart. After every restart each of
 * the 262144 pages is checked: written pages hold their pattern (which
 * depends on the page index and the generation that wrote it), all others
 * read as zero. Usage: bigmem [MiB] */
#include "../lib/harness.h"
#include <sys/mman.h>

#define PAGE 4096ul
#define WORDS (PAGE / 8)
#define MAGIC 0x6372796f62696700ull

static uint8_t *gen;		/* generation that last wrote each page, 0 = never */
static uint64_t *map;
static size_t npages;

static void write_page(size_t i, uint8_t g)
{
	uint64_t *w = map + i * WORDS;

	w[0] = MAGIC ^ (i << 8) ^ g;
	w[1 + i % (WORDS - 2)] = (i + 1) * 0x9e3779b97f4a7c15ull + g;
	w[WORDS - 1] = ~(uint64_t)i;
	gen[i] = g;
}

/* Checks every page; returns a checksum of the generations. */
static uint64_t verify(const char *when)
{
	size_t written = 0, zero = 0;
	uint64_t h = T_HASH_INIT;

	for (size_t i = 0; i < npages; i++) {
		const uint64_t *w = map + i * WORDS;
		size_t mid = 1 + i % (WORDS - 2);
		uint8_t g = gen[i];

		for (size_t j = 0; j < WORDS; j++) {
			uint64_t want = 0;

			if (g && j == 0)
				want = MAGIC ^ (i << 8) ^ g;
			else if (g && j == mid)
				want = (i + 1) * 0x9e3779b97f4a7c15ull + g;
			else if (g && j == WORDS - 1)
				want = ~(uint64_t)i;
			if (w[j] != want)
				t_fail("%s: page %zu (generation %u) word %zu is %#llx, want %#llx", when,
				       i, g, j, (unsigned long long)w[j], (unsigned long long)want);
		}
		if (g)
			written++;
		else
			zero++;
		h = t_hash(h, &g, 1);
	}
	printf("%s: %zu written pages and %zu zero pages verified, checksum %016llx\n", when,
	       written, zero, (unsigned long long)h);
	return h;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 1024;
	char when[64];

	t_init(argc, argv);
	npages = mib * 1024 * 1024 / PAGE;
	T_CHECK(npages >= 256, "size");
	gen = calloc(npages, 1);
	T_CHECK(gen != NULL, "calloc");
	map = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	T_CHECK(map != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	for (size_t i = 0; i < npages; i += 4)
		write_page(i, 1);
	printf("mapped %zu MiB, wrote every 4th page\n", mib);

	for (int k = 1; k <= 3; k++) {
		t_ready(k);
		snprintf(when, sizeof(when), "after READY %d", k);
		verify(when);
		/* new pages next to old ones, and some old ones rewritten */
		for (size_t i = 0; i < npages; i++)
			if (i % 64 == (size_t)k || i % 256 == 0)
				write_page(i, k + 1);
	}
	verify("at the end");
	munmap(map, npages * PAGE);
	t_pass();
}
