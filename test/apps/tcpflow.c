/* tcpflow: a TCP client and server (two processes) with megabytes in
 * flight both ways at every checkpoint.
 *
 * The parent listens on loopback (IPv4, or IPv6 with argument "6"), forks
 * a client and accepts it. Each side has a writer thread sending a
 * numbered stream of TOTAL bytes; each side's reader checks every word.
 * The parent reads PHASE bytes per phase, then t_ready(k); the child reads
 * PHASE bytes, then waits for the parent's go on a pipe: at each
 * checkpoint both writers are blocked with the socket buffers full both
 * ways. Buffer sizes and TCP_NODELAY are set and checked after each
 * restart. Argument "big" raises the buffers to 4 MiB (the benchmark). */
#include "../lib/harness.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define TOTAL (48u << 20)
#define PHASE (12u << 20)

static int bufsz = 1 << 20;

static void *writer(void *arg)
{
	static uint32_t block[8192];
	int fd = (int)(intptr_t)arg;
	uint32_t next = 0;

	for (uint32_t sent = 0; sent < TOTAL; sent += sizeof(block)) {
		for (size_t i = 0; i < 8192; i++)
			block[i] = next++ * 2654435761u;
		for (size_t off = 0; off < sizeof(block);) {
			ssize_t w = send(fd, (char *)block + off, sizeof(block) - off, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				t_fail("send: %s", strerror(errno));
			off += (size_t)w;
		}
	}
	return NULL;
}

/* Reads n bytes of the stream, checking each word. */
static void read_check(int fd, uint32_t *word, size_t n)
{
	static unsigned char buf[65536];
	static size_t have;	/* bytes of a partial word */

	while (n) {
		size_t want = n < sizeof(buf) - have ? n : sizeof(buf) - have;
		ssize_t r = recv(fd, buf + have, want, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			t_fail("recv: %s", r ? strerror(errno) : "end of stream");
		n -= (size_t)r;
		have += (size_t)r;
		size_t words = have / 4;
		for (size_t i = 0; i < words; i++) {
			uint32_t v;

			memcpy(&v, buf + 4 * i, 4);
			if (v != *word * 2654435761u)
				t_fail("word %u: got %08x, expected %08x", *word, v, *word * 2654435761u);
			(*word)++;
		}
		memmove(buf, buf + 4 * words, have - 4 * words);
		have -= 4 * words;
	}
}

static void opts(int fd)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void check_opts(int fd, const char *who)
{
	int v = 0, nd = 0;
	socklen_t l = sizeof(v);

	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l);
	if (v != 2 * bufsz)
		t_fail("%s: SO_SNDBUF %d, expected %d", who, v, 2 * bufsz);
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l);
	if (v != 2 * bufsz)
		t_fail("%s: SO_RCVBUF %d, expected %d", who, v, 2 * bufsz);
	l = sizeof(nd);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, &l);
	if (!nd)
		t_fail("%s: TCP_NODELAY lost", who);
}

int main(int argc, char **argv)
{
	int v6 = argc > 1 && !strcmp(argv[1], "6"), go[2], lsn, fd, status;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	uint32_t word = 0;
	pthread_t th;
	pid_t child;

	if (argc > 1 && !strcmp(argv[argc - 1], "big"))
		bufsz = 4 << 20;
	t_init(argc, argv);
	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *a = (void *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
	} else {
		struct sockaddr_in *a = (void *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	lsn = socket(ss.ss_family, SOCK_STREAM, 0);
	if (lsn < 0 || bind(lsn, (void *)&ss, sizeof(ss)) < 0 || listen(lsn, 4) < 0 ||
	    getsockname(lsn, (void *)&ss, &sl) < 0 || pipe(go) < 0)
		t_fail("listen: %s", strerror(errno));
	child = fork();
	if (child == 0) {
		char c;

		close(lsn);
		close(go[1]);
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		opts(fd);
		if (connect(fd, (void *)&ss, sl) < 0)
			t_fail("connect: %s", strerror(errno));
		pthread_create(&th, NULL, writer, (void *)(intptr_t)fd);
		for (int k = 1; k <= 3; k++) {
			read_check(fd, &word, PHASE);
			if (read(go[0], &c, 1) != 1)
				t_fail("child: go pipe");
			check_opts(fd, "client");
		}
		read_check(fd, &word, TOTAL - 3 * PHASE);
		pthread_join(th, NULL);
		_exit(0);
	}
	close(go[0]);
	opts(lsn);
	fd = accept(lsn, NULL, NULL);
	if (fd < 0)
		t_fail("accept: %s", strerror(errno));
	opts(fd);
	pthread_create(&th, NULL, writer, (void *)(intptr_t)fd);
	for (int k = 1; k <= 3; k++) {
		read_check(fd, &word, PHASE);
		usleep(300000);	/* the client's writer fills the buffers */
		printf("phase %d: %u MiB checked\n", k, k * (PHASE >> 20));
		fflush(stdout);
		t_ready(k);
		check_opts(fd, "server");
		if (write(go[1], "g", 1) != 1)
			t_fail("go");
	}
	read_check(fd, &word, TOTAL - 3 * PHASE);
	pthread_join(th, NULL);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		t_fail("client failed (status %d)", status);
	printf("all %u MiB checked both ways\n", TOTAL >> 20);
	t_pass();
}
