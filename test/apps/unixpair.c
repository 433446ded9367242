/* unixpair: AF_UNIX socket pairs between a parent and its child, across
 * checkpoints.
 *
 * - A SOCK_SEQPACKET pair: before each checkpoint the child sends five
 *   messages of different lengths (1, 10, 100, 1000, 5000 bytes) that the
 *   parent has not read; after it, the parent reads them one by one and
 *   checks each length and content: boundaries and order kept.
 * - A SOCK_STREAM pair with 100 KB in flight from parent to child at each
 *   checkpoint (the child reads it only when told, after the checkpoint);
 *   the child checks every byte and answers with a sum.
 * - A SOCK_DGRAM pair with three datagrams in flight from the child.
 * The child exits 9 when told; the parent checks its status. */
#include "../lib/harness.h"
#include <sys/socket.h>
#include <sys/wait.h>

static const size_t lens[] = { 1, 10, 100, 1000, 5000 };
#define STREAM_BYTES 100000

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

static void read_all(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			t_fail("read: %zd %s", r, strerror(errno));
		p += r;
		n -= (size_t)r;
	}
}

static unsigned char pat(int k, size_t i)
{
	return (unsigned char)(k * 31 + i * 7);
}

static void child(int seq, int str, int dg)
{
	static unsigned char buf[STREAM_BYTES];

	for (int k = 1; k <= 4; k++) {
		char cmd;
		unsigned long sum = 0;

		for (size_t m = 0; m < 5; m++) {
			unsigned char msg[5000];

			for (size_t i = 0; i < lens[m]; i++)
				msg[i] = pat(k + (int)m, i);
			if (send(seq, msg, lens[m], 0) != (ssize_t)lens[m])
				_exit(20);
		}
		for (int d = 0; d < 3; d++) {
			char dgm[32];
			int n = snprintf(dgm, sizeof(dgm), "dgram %d.%d", k, d);

			if (send(dg, dgm, (size_t)n, 0) != n)
				_exit(21);
		}
		write_all(str, "r", 1);	/* everything above is queued */
		if (recv(seq, &cmd, 1, 0) != 1 || cmd != 'g')	/* the stream is full now */
			_exit(24);
		read_all(str, buf, sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i++) {
			if (buf[i] != pat(k, i))
				_exit(22);
			sum += buf[i];
		}
		write_all(str, &sum, sizeof(sum));
		read_all(str, &cmd, 1);
		if (cmd == 'q')
			_exit(9);
	}
	_exit(23);
}

int main(int argc, char **argv)
{
	static unsigned char buf[STREAM_BYTES];
	int seq[2], str[2], dg[2], status;
	pid_t c;

	t_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, str) < 0 ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) < 0)
		t_fail("socketpair: %s", strerror(errno));
	c = fork();
	if (c < 0)
		t_fail("fork");
	if (c == 0) {
		close(seq[0]);
		close(str[0]);
		close(dg[0]);
		child(seq[1], str[1], dg[1]);
	}
	close(seq[1]);
	close(str[1]);
	close(dg[1]);
	for (int k = 1; k <= 4; k++) {
		unsigned long sum = 0, want = 0;
		char r;

		read_all(str[0], &r, 1);	/* the child's messages are all queued */
		for (size_t i = 0; i < sizeof(buf); i++) {
			buf[i] = pat(k, i);
			want += buf[i];
		}
		write_all(str[0], buf, sizeof(buf));	/* unread until 'g' */
		printf("phase %d\n", k);
		if (k < 4) {
			fflush(stdout);
			t_ready(k);
		}
		for (size_t m = 0; m < 5; m++) {
			unsigned char msg[8192];
			ssize_t r = recv(seq[0], msg, sizeof(msg), 0);

			if (r != (ssize_t)lens[m])
				t_fail("phase %d: message %zu is %zd bytes, not %zu", k, m, r, lens[m]);
			for (size_t i = 0; i < lens[m]; i++)
				if (msg[i] != pat(k + (int)m, i))
					t_fail("phase %d: message %zu byte %zu differs", k, m, i);
		}
		printf("  5 messages, boundaries kept\n");
		for (int d = 0; d < 3; d++) {
			char dgm[64], exp[32];
			ssize_t r = recv(dg[0], dgm, sizeof(dgm) - 1, 0);

			snprintf(exp, sizeof(exp), "dgram %d.%d", k, d);
			if (r < 0)
				t_fail("phase %d: datagram %d: %s", k, d, strerror(errno));
			dgm[r] = '\0';
			if (strcmp(dgm, exp))
				t_fail("phase %d: datagram %d is '%s'", k, d, dgm);
		}
		printf("  3 datagrams\n");
		if (send(seq[0], "g", 1, 0) != 1)
			t_fail("send g");
		read_all(str[0], &sum, sizeof(sum));
		if (sum != want)
			t_fail("phase %d: the child summed %lu, not %lu", k, sum, want);
		printf("  stream ok\n");
		write_all(str[0], k == 4 ? "q" : "c", 1);
	}
	if (waitpid(c, &status, 0) != c || !WIFEXITED(status) || WEXITSTATUS(status) != 9)
		t_fail("child status %#x", status);
	printf("child ok\n");
	t_pass();
}
