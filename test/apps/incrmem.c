/* incrmem: memory that changes a little between checkpoints, for the
 * incremental images test (test/integration/incremental.sh) and benchmark.
 *
 *   incrmem [MiB [DIR [READY-POINTS [PERCENT]]]]
 *
 * A buffer of MiB (default 64) filled with pseudo-random bytes (so that
 * images cannot compress it away) before the first "@@READY 1". After each
 * "@@READY k" the program checks everything it wrote, then changes a
 * little (PERCENT of the pages, default 1), in every way an incremental
 * image must follow: pages rewritten, pages written to zero, pages
 * discarded with MADV_DONTNEED (they must read as zero again), a new
 * mapping and one gone, a mapping moved with mremap, a page written in a
 * private mapping of a file in DIR (default $TMPDIR), a brk-grown heap.
 * It stops after READY-POINTS (default 9) points, checks once more and
 * prints "@@PASS". The output depends only on the arguments. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/mman.h>

#define PAGE 4096ul
#define WORDS (PAGE / 8)
#define NSIDE 3
#define SIDE_PAGES 256		/* 1 MiB */
#define MOVE_PAGES 64		/* 256 KiB */
#define FILE_PAGES 8

static uint64_t *buf;
static uint32_t *ver;		/* version of each page of buf; 0: zero */
static size_t npages;
static unsigned percent = 1;

static uint64_t *side[NSIDE];
static uint32_t side_ver[NSIDE];
static uint64_t *moved;
static uint32_t moved_ver;
static uint8_t *fmap;
static uint32_t fver[FILE_PAGES];	/* 0: the file's own bytes */

static void fill(uint64_t *p, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;

	for (size_t j = 0; j < WORDS; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[j] = x;
	}
}

static uint64_t check(const uint64_t *p, uint64_t seed, uint32_t v, const char *what, size_t i)
{
	uint64_t want[WORDS];

	if (v)
		fill(want, seed);
	else
		memset(want, 0, sizeof(want));
	if (memcmp(p, want, PAGE))
		t_fail("%s page %zu (version %u) differs", what, i, v);
	return t_hash(T_HASH_INIT, p, 64);
}

static uint64_t seed_of(uint64_t area, size_t i, uint32_t v)
{
	return (area << 40) ^ ((uint64_t)i << 12) ^ v;
}

static void verify(int k)
{
	uint64_t h = T_HASH_INIT;
	size_t written = 0, i;
	int s;

	for (i = 0; i < npages; i++) {
		uint64_t c = check(buf + i * WORDS, seed_of(1, i, ver[i]), ver[i], "buffer", i);

		h = t_hash(h, &c, sizeof(c));
		written += ver[i] != 0;
	}
	for (s = 0; s < NSIDE; s++)
		for (i = 0; side[s] && i < SIDE_PAGES; i++)
			check(side[s] + i * WORDS, seed_of(2 + s, i, side_ver[s]), side_ver[s], "side", i);
	for (i = 0; i < MOVE_PAGES; i++)
		check(moved + i * WORDS, seed_of(9, i, moved_ver), moved_ver, "moved", i);
	for (i = 0; i < FILE_PAGES; i++) {
		uint8_t want[PAGE];

		if (fver[i])
			fill((uint64_t *)want, seed_of(10, i, fver[i]));
		else
			memset(want, 'a' + (int)i, PAGE);
		if (memcmp(fmap + i * PAGE, want, PAGE))
			t_fail("file page %zu (version %u) differs", i, fver[i]);
	}
	printf("point %d: %zu of %zu pages written, checksum %016llx\n", k, written, npages,
	       (unsigned long long)h);
}

/* The changes after point k (version v = k + 1). */
static void change(int k)
{
	uint32_t v = (uint32_t)k + 1;
	size_t i, changed = 0;
	uint64_t *to;
	void *p;
	int s = k % NSIDE;

	for (i = 0; i < npages; i++) {
		uint64_t r = (i * 2654435761ull + v * 40503ull) % 1000;

		if (r < percent * 10) {
			fill(buf + i * WORDS, seed_of(1, i, v));
			ver[i] = v;
			changed++;
		} else if (r == 999 && i % 3 == 0) {
			memset(buf + i * WORDS, 0, PAGE);
			ver[i] = 0;
		} else if (r == 998 && i % 3 == 0) {
			T_CHECK(madvise(buf + i * WORDS, PAGE, MADV_DONTNEED) == 0, "madvise: %s",
				strerror(errno));
			ver[i] = 0;
		}
	}
	/* one mapping goes, a new one comes (often at the same address) */
	if (side[s])
		munmap(side[s], SIDE_PAGES * PAGE);
	side[s] = mmap(NULL, SIDE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(side[s] != MAP_FAILED, "mmap: %s", strerror(errno));
	side_ver[s] = v;
	for (i = 0; i < SIDE_PAGES; i++)
		fill(side[s] + i * WORDS, seed_of(2 + s, i, v));
	/* moved elsewhere, bytes unchanged; between two guard pages, since
	 * the kernel drops the write tracking of a neighbour it merges with */
	p = mmap(NULL, (MOVE_PAGES + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
	to = mremap(moved, MOVE_PAGES * PAGE, MOVE_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED,
		    (char *)p + PAGE);
	T_CHECK(to != MAP_FAILED, "mremap: %s", strerror(errno));
	moved = to;
	/* a page of the file mapping, and the heap */
	fill((uint64_t *)(fmap + (size_t)(k % FILE_PAGES) * PAGE), seed_of(10, (size_t)(k % FILE_PAGES), v));
	fver[k % FILE_PAGES] = v;
	p = malloc(64 * 1024);
	T_CHECK(p != NULL, "malloc");
	memset(p, k, 64 * 1024);
	(void)changed;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	const char *dir = t_workdir(argc, argv, 2);
	int points = argc > 3 ? atoi(argv[3]) : 9, k, fd;
	char path[4096];
	uint8_t page[PAGE];
	size_t i;

	t_init(argc, argv);
	if (argc > 4)
		percent = (unsigned)atoi(argv[4]);
	T_CHECK(percent >= 1 && percent <= 100 && points >= 1, "usage: incrmem [MiB [DIR [POINTS [PERCENT]]]]");
	npages = mib * 1024 * 1024 / PAGE;
	T_CHECK(npages >= 1024, "at least 4 MiB");
	ver = calloc(npages, sizeof(*ver));
	T_CHECK(ver != NULL, "calloc");
	buf = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(buf != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	for (i = 0; i < npages; i++) {
		fill(buf + i * WORDS, seed_of(1, i, 1));
		ver[i] = 1;
	}
	moved = mmap(NULL, MOVE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(moved != MAP_FAILED, "mmap: %s", strerror(errno));
	moved_ver = 1;
	for (i = 0; i < MOVE_PAGES; i++)
		fill(moved + i * WORDS, seed_of(9, i, 1));
	snprintf(path, sizeof(path), "%s/incrmem.%d.data", dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	T_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	for (i = 0; i < FILE_PAGES; i++) {
		memset(page, 'a' + (int)i, PAGE);
		T_CHECK(write(fd, page, PAGE) == (ssize_t)PAGE, "write %s", path);
	}
	fmap = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	T_CHECK(fmap != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	close(fd);
	printf("incrmem: %zu MiB, %u%% changed per point\n", mib, percent);
	for (k = 1; k <= points; k++) {
		t_ready(k);
		verify(k);
		change(k);
	}
	verify(points + 1);
	unlink(path);
	t_pass();
}
