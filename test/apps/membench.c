/* membench: the program test/bench/run.sh checkpoints. It fills N MiB of
 * anonymous memory with one of two patterns, prints "@@READY 1" and then
 * waits for SIGUSR1 in 1 ms slices. When one slice ends much later than it
 * should (GAP_MS, default 30: the process was frozen, or killed and
 * restarted from an image), it prints "@@RESUMED" and "@@GAP <µs>" at once
 * (how long it was frozen: after a checkpoint, the application's stall, to
 * within the 1 ms slice), every time; the first after a restart is how
 * the benchmark times the restart without a round trip. On SIGUSR1 it verifies the checksum of the memory
 * and passes. Output is not deterministic (a slow slice prints @@RESUMED),
 * so it is not an integration test.
 *
 * Patterns:
 *   random  xorshift64 bytes: zstd cannot shrink them (ratio 1.00);
 *   heap    64-byte objects as a heap of small records looks: a pointer to
 *           a neighbour, a type tag, a counter, a double from a small set,
 *           a short name from a vocabulary, a 32-bit hash, zero padding.
 *           zstd level 1 makes it about 5x smaller at about 0.35 GB/s per
 *           core here; a real python3 heap (a big dict) shrinks 7-8x at
 *           0.6-0.7 GB/s, so this is the harder case (doc/performance.md).
 *
 * Usage: membench MiB [GAP_MS] [random|heap] */
#include "../lib/harness.h"
#include <sys/mman.h>

static uint64_t sum(const uint64_t *p, size_t words)
{
	uint64_t h = 0;

	for (size_t i = 0; i < words; i++)
		h = (h ^ p[i]) * 0x100000001b3ull + i;
	return h;
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fill_random(uint64_t *mem, size_t words)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < words; i++)
		mem[i] = xorshift(&x);
}

struct obj {
	uint64_t next;		/* a pointer to an object nearby */
	uint32_t type, refs;	/* a tag from a few, a small count */
	uint64_t serial;	/* increasing */
	double value;		/* one of a small set */
	char name[16];		/* a word and a number */
	uint32_t hash;		/* random */
	uint32_t pad[3];	/* zero */
};
_Static_assert(sizeof(struct obj) == 64, "64-byte objects");

static void fill_heap(uint64_t *mem, size_t words)
{
	static const char *const vocab[] = { "alpha", "beta", "gamma", "delta", "key", "value",
					     "node", "list", "dict", "str", "int", "float",
					     "tuple", "frame", "code", "func" };
	static const double values[] = { 0.0, 1.0, 0.5, 2.0, 3.14159, -1.0, 100.0, 1e-3 };
	struct obj *o = (struct obj *)mem;
	size_t n = words * 8 / sizeof(*o);
	uint64_t x = 0x2545f4914f6cdd1dull, base = (uint64_t)(uintptr_t)mem;

	for (size_t i = 0; i < n; i++) {
		uint64_t r = xorshift(&x);

		memset(&o[i], 0, sizeof(o[i]));
		o[i].next = base + ((i + (r & 15)) % n) * sizeof(*o);
		o[i].type = (uint32_t)(r >> 8) & 7;
		o[i].refs = 1 + ((uint32_t)(r >> 11) & 3);
		o[i].serial = i;
		o[i].value = values[(r >> 13) & 7];
		snprintf(o[i].name, sizeof(o[i].name), "%s%u", vocab[(r >> 16) & 15],
			 (unsigned)((r >> 20) & 31));
		if (i % 4 == 0)	/* a cached hash in every fourth */
			o[i].hash = (uint32_t)(r >> 32);
	}
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	uint64_t gap_ns = (argc > 2 ? (uint64_t)atol(argv[2]) : 30) * 1000000;
	const char *pattern = argc > 3 ? argv[3] : "random";
	size_t words = mib * 1024 * 1024 / 8;
	struct timespec slice = { 0, 1000000 };
	uint64_t h, last, now;
	uint64_t *mem;
	sigset_t set;
	int r;

	t_init(argc, argv);
	T_CHECK(!strcmp(pattern, "random") || !strcmp(pattern, "heap"),
		"pattern %s: want random or heap", pattern);
	mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(mem != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	if (!strcmp(pattern, "heap"))
		fill_heap(mem, words);
	else
		fill_random(mem, words);
	h = sum(mem, words);
	printf("filled %zu MiB (%s)\n@@READY 1\n", mib, pattern);
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	last = t_now_ns();
	for (;;) {
		r = sigtimedwait(&set, NULL, &slice);
		if (r == SIGUSR1)
			break;
		T_CHECK(r < 0 && (errno == EAGAIN || errno == EINTR), "sigtimedwait: %s",
			strerror(errno));
		now = t_now_ns();
		if (now - last > gap_ns) {
			printf("@@RESUMED\n@@GAP %llu\n", (unsigned long long)(now - last) / 1000);
			fflush(stdout);
		}
		last = now;
	}
	T_CHECK(sum(mem, words) == h, "memory changed");
	printf("verified %zu MiB\n", mib);
	t_pass();
}
