/* pipeline: megabytes in flight in pipes at every checkpoint. Three
 * processes joined by two pipes, each grown to 1 MiB with F_SETPIPE_SZ:
 *
 *   writer --pipe A--> relay --pipe B--> reader (the parent)
 *
 * The writer sends TOTAL bytes of a deterministic pattern (a function of
 * the byte's offset) in 64 KiB writes; the relay copies A to B through a
 * 48 KiB buffer; the reader checks every byte against the pattern as it
 * arrives and keeps a checksum. Before each "@@READY k" the reader stops
 * reading, at a different offset each time, and waits until both pipes are
 * full (the writer and the relay block in write(2)): about 2 MiB are then
 * in the pipes, plus a buffer in the relay, when the image is taken. The
 * reader keeps a second descriptor of pipe A's read end (inherited by the
 * relay too) to see its fill level, so pipe A is also a pipe shared by two
 * processes. After each restart it checks both pipes are still 1 MiB.
 *
 * A byte lost, duplicated or out of order fails the check at its offset;
 * at the end the reader checks it got exactly TOTAL bytes and reaps both
 * children, which exit 0 only if their own writes all succeeded. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#define PIPE_SIZE (1 << 20)
#define TOTAL (8u * 1024 * 1024 + 12345)
#define WCHUNK 65536
#define RELAY_BUF 49152
#define RCHUNK 4093	/* odd: reads straddle the writer's chunks */

/* The byte at offset off: a mix of the offset, cheap and never periodic
 * on a page or chunk boundary. */
static unsigned char pattern(uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (unsigned char)(x >> 32);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int writer_main(int out)
{
	static unsigned char buf[WCHUNK];
	uint64_t off = 0;

	while (off < TOTAL) {
		size_t n = TOTAL - off < WCHUNK ? TOTAL - off : WCHUNK;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		if (write_all(out, buf, n) < 0) {
			fprintf(stderr, "@@FAIL pipeline writer: write at %llu: %s\n",
				(unsigned long long)off, strerror(errno));
			return 1;
		}
		off += n;
	}
	return close(out) == 0 ? 0 : 1;
}

static int relay_main(int in, int out)
{
	static unsigned char buf[RELAY_BUF];
	uint64_t moved = 0;

	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "@@FAIL pipeline relay: read at %llu: %s\n",
				(unsigned long long)moved, strerror(errno));
			return 1;
		}
		if (r == 0)
			break;
		if (write_all(out, buf, (size_t)r) < 0) {
			fprintf(stderr, "@@FAIL pipeline relay: write at %llu: %s\n",
				(unsigned long long)moved, strerror(errno));
			return 1;
		}
		moved += (uint64_t)r;
	}
	if (moved != TOTAL) {
		fprintf(stderr, "@@FAIL pipeline relay: moved %llu bytes, expected %u\n",
			(unsigned long long)moved, TOTAL);
		return 1;
	}
	return close(out) == 0 ? 0 : 1;
}

static int in_pipe(int fd)
{
	int n = -1;

	T_CHECK(ioctl(fd, FIONREAD, &n) == 0, "FIONREAD: %s", strerror(errno));
	return n;
}

/* Both pipes full: more than 255 pages of data means every one of the 256
 * slots of a 1 MiB pipe is taken, so the writer and the relay are blocked. */
static void wait_full(int a_peek, int b_read, int k)
{
	const int full = PIPE_SIZE - 4096;
	uint64_t t0 = t_now_ns();

	while (in_pipe(a_peek) <= full || in_pipe(b_read) <= full) {
		T_CHECK(t_now_ns() - t0 < 120000000000ull,
			"pipes not full before READY %d: A %d, B %d bytes", k, in_pipe(a_peek),
			in_pipe(b_read));
		usleep(2000);
	}
}

static void set_size(int fd)
{
	int got;

	T_CHECK(fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE) >= 0, "F_SETPIPE_SZ %d: %s", PIPE_SIZE,
		strerror(errno));
	got = fcntl(fd, F_GETPIPE_SZ);
	T_CHECK(got == PIPE_SIZE, "pipe size %d after F_SETPIPE_SZ %d", got, PIPE_SIZE);
}

static pid_t spawn(int (*fn)(int, int), int a, int b, int *closefds, int nclose)
{
	pid_t pid = fork();

	T_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		for (int i = 0; i < nclose; i++)
			close(closefds[i]);
		_exit(fn(a, b));
	}
	return pid;
}

static int writer_fn(int out, int unused)
{
	(void)unused;
	return writer_main(out);
}

int main(int argc, char **argv)
{
	static unsigned char buf[RCHUNK];
	int a[2], b[2], st, k = 1;
	uint64_t off = 0, sum = 0xcbf29ce484222325ull;
	pid_t writer, relay;

	t_init(argc, argv);
	T_CHECK(pipe(a) == 0 && pipe(b) == 0, "pipe: %s", strerror(errno));
	set_size(a[1]);
	set_size(b[1]);
	writer = spawn(writer_fn, a[1], 0, (int[]){ a[0], b[0], b[1] }, 3);
	relay = spawn(relay_main, a[0], b[1], (int[]){ a[1], b[0] }, 2);
	close(a[1]);
	close(b[1]);
	printf("pipeline: %u bytes through two pipes of %d bytes\n", TOTAL, PIPE_SIZE);

	for (;;) {
		/* stop at about 2.1, 3.0 and 4.0 MiB (plus odd bytes) for READY 1..3 */
		uint64_t stop = k <= 3 ? (uint64_t)(300 + 240 * k) * 4096 + 333 * k : TOTAL + 1;
		size_t want = RCHUNK;
		ssize_t r;

		if (off == stop) {
			wait_full(a[0], b[0], k);
			printf("phase %d: %llu bytes checked, checksum %016llx, both pipes full\n", k,
			       (unsigned long long)off, (unsigned long long)sum);
			t_ready(k);
			T_CHECK(fcntl(b[0], F_GETPIPE_SZ) == PIPE_SIZE, "pipe B is %d bytes after READY %d",
				fcntl(b[0], F_GETPIPE_SZ), k);
			T_CHECK(fcntl(a[0], F_GETPIPE_SZ) == PIPE_SIZE, "pipe A is %d bytes after READY %d",
				fcntl(a[0], F_GETPIPE_SZ), k);
			k++;
			continue;
		}
		if (stop - off < want)
			want = (size_t)(stop - off);
		r = read(b[0], buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		T_CHECK(r >= 0, "read at %llu: %s", (unsigned long long)off, strerror(errno));
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != pattern(off + (uint64_t)i))
				t_fail("byte %llu is %#x, expected %#x (lost or duplicated data)",
				       (unsigned long long)(off + (uint64_t)i), buf[i],
				       pattern(off + (uint64_t)i));
			sum = (sum ^ buf[i]) * 0x100000001b3ull;
		}
		off += (uint64_t)r;
	}
	T_CHECK(off == TOTAL, "got %llu bytes, expected %u", (unsigned long long)off, TOTAL);
	T_CHECK(k == 4, "reached only READY %d", k - 1);
	printf("end: %llu bytes checked, checksum %016llx\n", (unsigned long long)off,
	       (unsigned long long)sum);
	T_CHECK(waitpid(writer, &st, 0) == writer, "waitpid(writer): %s", strerror(errno));
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer status %#x", st);
	T_CHECK(waitpid(relay, &st, 0) == relay, "waitpid(relay): %s", strerror(errno));
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay status %#x", st);
	printf("writer and relay exited 0\n");
	t_pass();
}
