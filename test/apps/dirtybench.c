/* dirtybench: the program test/bench/incremental.sh checkpoints. It fills
 * MiB of memory with pseudo-random bytes and prints "@@READY". Then, on
 * each SIGUSR1, it rewrites PERCENT of its pages (one word in each, so the
 * cost is the page faults: with incremental images, the first write to a
 * page after a checkpoint is a write-protection fault) and prints
 * "@@CHANGED <microseconds>"; on SIGUSR2 it checks all its memory and
 * prints "@@PASS". Like membench, a wait slice that ends much too late
 * (the process was frozen or restarted) prints "@@RESUMED" at once, which
 * times a restart. Not an integration test: the output has timings.
 * Usage: dirtybench MiB [PERCENT] */
#include "../lib/harness.h"
#include <sys/mman.h>

#define PAGE 4096ul
#define WORDS (PAGE / 8)

static uint64_t *mem;
static uint32_t *ver;
static size_t npages;

static uint64_t word(size_t i, uint32_t v)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ v;

	x ^= x << 13;
	x ^= x >> 7;
	return x ^ (x << 17);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 512;
	unsigned percent = argc > 2 ? (unsigned)atoi(argv[2]) : 1, round = 0;
	struct timespec slice = { 0, 1000000 };
	uint64_t last, x = 0x632be59bd9b4e019ull;
	sigset_t set;
	int r;

	t_init(argc, argv);
	T_CHECK(percent >= 1 && percent <= 100, "usage: dirtybench MiB [PERCENT]");
	npages = mib * 1024 * 1024 / PAGE;
	ver = calloc(npages, sizeof(*ver));
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(ver && mem != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	for (size_t i = 0; i < npages * WORDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
	for (size_t i = 0; i < npages; i++)
		mem[i * WORDS] = word(i, 0);
	printf("@@READY\n");
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	last = t_now_ns();
	for (;;) {
		r = sigtimedwait(&set, NULL, &slice);
		if (r < 0) {
			uint64_t now = t_now_ns();

			if (now - last > 30000000ull) {
				printf("@@RESUMED\n");
				fflush(stdout);
			}
			last = now;
			continue;
		}
		if (r == SIGUSR2)
			break;
		round++;
		{
			uint64_t t0 = t_now_ns(), t1;
			size_t n = 0;

			/* a different 1% each round, spread over the whole buffer */
			for (size_t i = round % 100; i < npages; i += 100 / percent) {
				ver[i] = round;
				mem[i * WORDS] = word(i, round);
				n++;
			}
			t1 = t_now_ns();
			printf("@@CHANGED %llu %zu\n", (unsigned long long)((t1 - t0) / 1000), n);
			fflush(stdout);
		}
		last = t_now_ns();
	}
	for (size_t i = 0; i < npages; i++)
		T_CHECK(mem[i * WORDS] == word(i, ver[i]), "page %zu (round %u) lost its bytes", i, ver[i]);
	t_pass();
}
