/* cowtick: runs while its image is written (test/integration/cow.sh). It
 * fills MiB of pseudo-random memory, prints "@@READY 1" on stdout, then
 * every millisecond writes tick N into memory (a word of another page each
 * time) and appends "tick N" to FILE (O_APPEND: one write per line). With
 * CRYO_LOG_FILE=FILE the library's own lines land in the same file, so the
 * file tells in which order the threads were released, the program ran and
 * the image was complete. At SIGUSR1 it checks that its memory is the fill
 * plus exactly the ticks its counter says it made (an image holding a page
 * written after the checkpoint fails this), prints "@@PASS" and exits 0.
 * Usage: cowtick MiB FILE */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/mman.h>

static uint64_t *mem;
static size_t words;
static unsigned long n;	/* ticks made */

static void fill(uint64_t *p)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < words; i++) {	/* xorshift64 */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
}

/* Tick k writes one word of page k (mod the pages). */
static size_t tick_at(unsigned long k)
{
	return (k * 512 + k % 512) % words;
}

static uint64_t tick_val(unsigned long k)
{
	return k * 0xff51afd7ed558ccdull + 1;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 64;
	struct timespec slice = { 0, 1000000 };
	uint64_t *want;
	sigset_t set;
	char line[64];
	int fd, r, len;

	t_init(argc, argv);
	T_CHECK(argc > 2, "usage: cowtick MiB FILE");
	fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	T_CHECK(fd >= 0, "open %s: %s", argv[2], strerror(errno));
	words = mib * 1024 * 1024 / 8;
	T_CHECK(words > 0, "MiB must be at least 1");
	mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(mem != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	fill(mem);
	printf("@@READY 1\n");
	fflush(stdout);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		r = sigtimedwait(&set, NULL, &slice);
		if (r == SIGUSR1)
			break;
		mem[tick_at(n)] = tick_val(n);
		len = snprintf(line, sizeof(line), "tick %lu\n", n++);
		T_CHECK(write(fd, line, (size_t)len) == len, "write %s: %s", argv[2], strerror(errno));
	}
	want = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	T_CHECK(want != MAP_FAILED, "mmap %zu MiB: %s", mib, strerror(errno));
	fill(want);
	for (unsigned long k = 0; k < n; k++)
		want[tick_at(k)] = tick_val(k);
	for (size_t i = 0; i < words; i++)
		T_CHECK(mem[i] == want[i], "word %zu is not what %lu ticks left there", i, n);
	printf("%lu ticks, memory as they left it\n", n);
	t_pass();
}
