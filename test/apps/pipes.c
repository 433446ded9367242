/* pipes: pipes and FIFOs across checkpoints, in three processes.
 *
 * - A 1 MiB pipe from a writer child to the parent, which reads 2 MiB per
 *   phase of an 8 MiB numbered stream: at every checkpoint the pipe is full
 *   and the writer blocked. Every word is checked: no byte lost, doubled or
 *   reordered.
 * - A FIFO (mkfifo in $TMPDIR) opened read-write by the parent, and a pipe
 *   of the parent's own, each with bytes in flight at the checkpoint.
 * - A pipe whose reading description the parent shares with a second child
 *   (inherited over fork): the child sets O_NONBLOCK on it, and after each
 *   restart the parent must see the flag on its own fd (one description),
 *   then tells the child to read one message and answer on another pipe.
 * The child exits 7 when told; the parent checks both children's status. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define TOTAL (8u << 20)
#define PHASE (2u << 20)

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			t_fail("write: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

static size_t read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		t_fail("read: %s", strerror(errno));
	return (size_t)r;
}

static void writer(int fd)
{
	static uint32_t block[4096];
	uint32_t next = 0;

	for (uint32_t sent = 0; sent < TOTAL; sent += sizeof(block)) {
		for (size_t i = 0; i < 4096; i++)
			block[i] = next++;
		write_all(fd, block, sizeof(block));
	}
	_exit(0);
}

static void sharer(int in, int out)
{
	char c;

	/* Make the shared description non-blocking, then say so. */
	if (fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK) < 0)
		t_fail("F_SETFL");
	write_all(out, "n", 1);
	for (;;) {
		ssize_t r = read(in, &c, 1);

		if (r < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (r != 1)
			t_fail("sharer read: %zd", r);
		if (c == 'q')
			_exit(7);
		write_all(out, &c, 1);
	}
}

int main(int argc, char **argv)
{
	int s[2], sh[2], back[2], self[2], fifo;
	uint32_t expect = 0, buf[8192];
	char path[4096], got[64];
	const char *tmp = getenv("TMPDIR");
	pid_t w, c;
	int status;
	size_t have = 0;

	t_init(argc, argv);
	if (pipe(s) < 0 || pipe(sh) < 0 || pipe(back) < 0 || pipe(self) < 0)
		t_fail("pipe");
	if (fcntl(s[1], F_SETPIPE_SZ, 1 << 20) < 0)
		t_fail("F_SETPIPE_SZ: %s", strerror(errno));
	w = fork();
	if (w == 0) {
		close(s[0]);
		writer(s[1]);
	}
	close(s[1]);
	c = fork();
	if (c == 0) {
		close(back[0]);
		sharer(sh[0], back[1]);
	}
	close(back[1]);
	if (read_some(back[0], got, 1) != 1 || got[0] != 'n')
		t_fail("the sharer did not start");
	snprintf(path, sizeof(path), "%s/pipes-fifo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(path))
		t_fail("mkdtemp");
	strcat(path, "/fifo");
	if (mkfifo(path, 0600) < 0 || (fifo = open(path, O_RDWR)) < 0)
		t_fail("fifo %s: %s", path, strerror(errno));

	for (int k = 1; k <= 4; k++) {
		size_t want = k == 4 ? TOTAL : (size_t)k * PHASE;
		char msg[32];
		int n;

		while (have < want) {
			size_t r = read_some(s[0], buf, sizeof(buf) < want - have ? sizeof(buf) : want - have);

			if (r == 0 || r % 4)
				t_fail("stream: read %zu at %zu", r, have);
			for (size_t i = 0; i < r / 4; i++)
				if (buf[i] != expect++)
					t_fail("stream: word %u is %u", expect - 1, buf[i]);
			have += r;
		}
		printf("phase %d: %zu bytes in order\n", k, have);
		if (!(fcntl(sh[0], F_GETFL) & O_NONBLOCK))
			t_fail("phase %d: the shared description lost O_NONBLOCK", k);
		/* Bytes in flight in the FIFO and in the parent's own pipe. */
		n = snprintf(msg, sizeof(msg), "fifo %d", k);
		write_all(fifo, msg, (size_t)n);
		n = snprintf(msg, sizeof(msg), "self %d", k);
		write_all(self[1], msg, (size_t)n);
		fflush(stdout);
		if (k < 4)
			t_ready(k);
		n = (int)read_some(fifo, got, sizeof(got) - 1);
		got[n] = '\0';
		printf("  %s\n", got);
		n = (int)read_some(self[0], got, sizeof(got) - 1);
		got[n] = '\0';
		printf("  %s\n", got);
		/* The sharer echoes one byte through the shared pipe. */
		write_all(sh[1], "a", 1);
		if (read_some(back[0], got, 1) != 1 || got[0] != 'a')
			t_fail("phase %d: no echo from the sharer", k);
		printf("  echo ok\n");
	}
	if (read_some(s[0], buf, 4) != 0)
		t_fail("stream: more than %u bytes", TOTAL);
	write_all(sh[1], "q", 1);
	if (waitpid(w, &status, 0) != w || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		t_fail("writer status %#x", status);
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 7)
		t_fail("sharer status %#x", status);
	printf("children ok\n");
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
	t_pass();
}
