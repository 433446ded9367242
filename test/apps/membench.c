/* membench: the program test/bench/run.sh checkpoints. It fills N MiB with
 * pseudo-random (incompressible) bytes, prints "@@READY 1" and then waits
 * for SIGUSR1 in 1 ms slices. When one slice ends much later than it should
 * (the process was frozen, or killed and restarted from an image), it
 * prints "@@RESUMED" at once, which is how the benchmark times a restart
 * without a round trip. On SIGUSR1 it verifies the checksum of the memory
 * and passes. Output is not deterministic (a slow slice prints @@RESUMED),
 * so it is not an integration test. Usage: membench MiB [GAP_MS] */
#include "../lib/harness.h"
#include <sys/mman.h>

static uint64_t sum(const uint64_t *p, size_t words)
{
	uint64_t h = 0;

	for (size_t i = 0; i < words; i++)
		h = (h ^ p[i]) * 0x100000001b3ull + i;
	return h;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	uint64_t gap_ns = (argc > 2 ? (uint64_t)atol(argv[2]) : 30) * 1000000;
	size_t words = mib * 1024 * 1024 / 8;
	struct timespec slice = { 0, 1000000 };
	uint64_t x = 0x9e3779b97f4a7c15ull, h, last;
	uint64_t *mem;
	sigset_t set;
	int resumed = 0, r;

	t_init(argc, argv);
	mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(mem != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	for (size_t i = 0; i < words; i++) {	/* xorshift64: zstd cannot shrink it */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
	h = sum(mem, words);
	printf("filled %zu MiB\n@@READY 1\n", mib);
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
		if (!resumed && t_now_ns() - last > gap_ns) {
			printf("@@RESUMED\n");
			fflush(stdout);
			resumed = 1;
		}
		last = t_now_ns();
	}
	T_CHECK(sum(mem, words) == h, "memory changed");
	printf("verified %zu MiB\n", mib);
	t_pass();
}
