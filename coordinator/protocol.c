/* The coordinator's wire protocol: framing, addresses and connection set-up.
 * Linked into every program and into libcryo.so (through
 * build/libcryo-common.a), so the framing half of this file is written for
 * the checkpoint thread of a frozen application: coord_send, coord_recv and
 * coord_connect use only async-signal-safe system calls (writev, read, poll,
 * socket, connect, fcntl, setsockopt, clock_gettime), keep everything on the
 * stack and log nothing; they report through errno.
 *
 * The other half (coord_resolve, coord_open_cmd, coord_ensure) is for hosted
 * programs only: cryo_command, cryo_launch and cryo_restart. coord_ensure
 * starts a coordinator in the background when none answers at a local
 * address; see doc/protocol.md for the race between two launches. */
#define LOG_PREFIX ""
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "mtcp/log.h"
#include "mtcp/util.h"

#define COORD_ENSURE_WAIT_MS	5000	/* time a freshly started coordinator may take */
#define COORD_PROBE_MS		1000	/* connect + WELCOME timeout of a probe */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1 = no deadline: wait forever). */
static int left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits for events on fd. 1 when ready, -1 with errno (ETIMEDOUT). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int r = poll(&p, 1, left_ms(deadline));

		if (r > 0)
			return 1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

int coord_send(int fd, uint16_t type, const void *payload, uint32_t len)
{
	struct coord_hdr hdr = {
		.magic = COORD_MAGIC,
		.type = type,
		.version = COORD_PROTO_VERSION,
		.len = len,
	};
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct iovec *v = iov;
	int n = len ? 2 : 1;

	if (len > COORD_MSG_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	while (n) {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)n };
		/* MSG_NOSIGNAL: a dead coordinator must not kill the application
		 * with SIGPIPE; writev for the rare fd that is not a socket */
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (w < 0 && errno == ENOTSOCK)
			w = writev(fd, v, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* the library's socket may be non-blocking: wait, do not fail */
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    wait_fd(fd, POLLOUT, -1) == 1)
				continue;
			return -1;
		}
		while (n && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Reads exactly n bytes before deadline. n on success, the count read so
 * far on EOF, -1 with errno on error or timeout. */
static ssize_t read_full(int fd, void *buf, size_t n, int64_t deadline)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r;

		if (wait_fd(fd, POLLIN, deadline) < 0)
			return -1;
		r = read(fd, p + got, n - got);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int coord_recv(int fd, struct coord_hdr *hdr, void *buf, uint32_t bufsize, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	ssize_t r;

	r = read_full(fd, hdr, sizeof(*hdr), deadline);
	if (r < 0)
		return -1;
	if (r == 0)
		return 0;
	if ((size_t)r < sizeof(*hdr)) {
		errno = ECONNRESET;	/* the peer went away in the middle of a header */
		return -1;
	}
	if (hdr->magic != COORD_MAGIC || hdr->version != COORD_PROTO_VERSION) {
		errno = EPROTO;
		return -1;
	}
	if (hdr->len > bufsize || hdr->len > COORD_MSG_MAX) {
		errno = EMSGSIZE;	/* the stream is out of step now: the caller closes it */
		return -1;
	}
	r = read_full(fd, buf, hdr->len, deadline);
	if (r < 0)
		return -1;
	if ((size_t)r < hdr->len) {
		errno = ECONNRESET;
		return -1;
	}
	return 1;
}

static int parse_port(const char *s, int *port)
{
	uint64_t v;

	if (util_parse_u64(s, &v) < 0 || v == 0 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int set_host(const char *s, size_t n, char *host, size_t hostsz)
{
	if (n == 0 || n >= hostsz)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

int coord_parse_addr(const char *s, char *host, size_t hostsz, int *port)
{
	const char *colon;
	int p = *port;

	if (!s || !*s)
		return -1;
	if (s[0] == '[') {		/* [v6addr] or [v6addr]:port */
		const char *end = strchr(s, ']');

		if (!end)
			return -1;
		if (end[1] == ':') {
			if (parse_port(end + 2, &p) < 0)
				return -1;
		} else if (end[1]) {
			return -1;
		}
		if (set_host(s + 1, (size_t)(end - s - 1), host, hostsz) < 0)
			return -1;
		*port = p;
		return 0;
	}
	if (all_digits(s)) {
		if (parse_port(s, &p) < 0)
			return -1;
		*port = p;
		return 0;
	}
	colon = strchr(s, ':');
	if (colon && strchr(colon + 1, ':'))	/* a bare IPv6 address, no port */
		return set_host(s, strlen(s), host, hostsz);
	if (!colon)
		return set_host(s, strlen(s), host, hostsz);
	if (parse_port(colon + 1, &p) < 0)
		return -1;
	if (colon != s && set_host(s, (size_t)(colon - s), host, hostsz) < 0)
		return -1;
	*port = p;
	return 0;
}

void coord_default_addr(char *host, size_t hostsz, int *port)
{
	const char *h = getenv("CRYO_COORD_HOST"), *p = getenv("CRYO_COORD_PORT");
	int v;

	if (!h || !*h || strlen(h) >= hostsz)
		h = COORD_DEFAULT_HOST;
	snprintf(host, hostsz, "%s", h);
	*port = COORD_DEFAULT_PORT;
	if (p && *p && parse_port(p, &v) == 0)
		*port = v;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sslen,
		   int quiet)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char service[16];
	int r;

	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r != 0 || !res) {
		if (!quiet)
			log_err("cannot resolve coordinator host %s: %s", host,
				r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		if (res)
			freeaddrinfo(res);
		errno = EHOSTUNREACH;
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int coord_resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *sslen)
{
	return resolve(host, port, ss, sslen, 0);
}

int coord_read_reply(int fd, int timeout_ms, int *status, char **text)
{
	static char buf[COORD_MSG_MAX];
	struct coord_reply r;
	struct coord_hdr hdr;
	size_t total = 0, got = 0;
	char *t = NULL;
	int first = 1;

	*text = NULL;
	for (;;) {
		size_t here;
		int ret = coord_recv(fd, &hdr, buf, sizeof(buf), timeout_ms);

		if (ret <= 0) {
			if (ret == 0)
				errno = ECONNRESET;
			goto fail;
		}
		if (hdr.type != COORD_REPLY || hdr.len < sizeof(r)) {
			errno = EPROTO;
			goto fail;
		}
		memcpy(&r, buf, sizeof(r));
		here = hdr.len - sizeof(r);
		if (first) {
			total = r.len;
			*status = r.status;
			t = malloc(total + 1);
			if (!t)
				goto fail;
			first = 0;
		}
		if (r.len != total - got || here > total - got) {
			errno = EPROTO;
			goto fail;
		}
		memcpy(t + got, buf + sizeof(r), here);
		got += here;
		if (got == total)
			break;
	}
	t[total] = '\0';
	*text = t;
	return 0;
fail:
	free(t);
	return -1;
}

int coord_numeric_addr(const char *host, int port, char *out, size_t outsz)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[INET6_ADDRSTRLEN];

	if (resolve(host, port, &ss, &len, 1) < 0)
		return -1;
	if (ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
		snprintf(out, outsz, "[%s]:%d", ip, port);
	} else {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
		snprintf(out, outsz, "%s:%d", ip, port);
	}
	return 0;
}

int coord_connect(const struct sockaddr_storage *ss, socklen_t sslen, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int fd, err = 0, one = 1, fl;
	socklen_t elen = sizeof(err);

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)ss, sslen) < 0) {
		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		if (wait_fd(fd, POLLOUT, deadline) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			goto fail;
		if (err) {
			errno = err;
			goto fail;
		}
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	/* best effort */
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int coord_open_cmd(const char *host, int port, int timeout_ms)
{
	struct sockaddr_storage ss;
	struct coord_welcome w;
	struct coord_hdr hdr;
	socklen_t sslen;
	int fd, r, err;

	if (resolve(host, port, &ss, &sslen, 1) < 0)
		return -1;
	fd = coord_connect(&ss, sslen, timeout_ms);
	if (fd < 0)
		return -1;
	if (coord_send(fd, COORD_HELLO_CMD, NULL, 0) < 0)
		goto fail;
	r = coord_recv(fd, &hdr, &w, sizeof(w), timeout_ms);
	if (r <= 0) {
		if (r == 0)
			errno = ECONNRESET;
		goto fail;
	}
	if (hdr.type != COORD_WELCOME || hdr.len != sizeof(w) || w.status != COORD_OK) {
		errno = EPROTO;
		goto fail;
	}
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* 1 if host names this machine: loopback, "localhost" or our host name. */
static int host_is_local(const char *host)
{
	char me[256];
	size_t n;

	if (!strncmp(host, "127.", 4) || !strcmp(host, "localhost") || !strcmp(host, "::1") ||
	    !strcmp(host, "0.0.0.0") || !strcmp(host, "localhost.localdomain"))
		return 1;
	if (gethostname(me, sizeof(me)) < 0)
		return 0;
	me[sizeof(me) - 1] = '\0';
	if (!strcmp(host, me))
		return 1;
	/* "node1" against "node1.cluster" and the other way round */
	n = strcspn(me, ".");
	if (strlen(host) == n && !strncmp(host, me, n))
		return 1;
	n = strcspn(host, ".");
	return strlen(me) == n && !strncmp(host, me, n);
}

static int probe(const char *host, int port)
{
	int fd = coord_open_cmd(host, port, COORD_PROBE_MS);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Starts bindir/cryo_coordinator --daemon --port PORT (--bind 0.0.0.0 when
 * host is this machine's name rather than loopback), detached from us: its
 * own session, stdio on /dev/null, none of our other fds. The daemon's
 * first process exits once it listens (or failed to bind: maybe another
 * launch won the race); we reap it and let the caller poll. */
static int spawn_coordinator(const char *host, const char *bindir, int port)
{
	/* a host name other than loopback means other hosts will connect */
	int any = strncmp(host, "127.", 4) && strcmp(host, "localhost") && strcmp(host, "::1");
	char path[PATH_MAX], portstr[16];
	pid_t pid;
	int st;

	if (snprintf(path, sizeof(path), "%s/cryo_coordinator", bindir) >= (int)sizeof(path)) {
		log_err("coordinator path too long: %s/cryo_coordinator", bindir);
		return -1;
	}
	if (access(path, X_OK) < 0) {
		log_perror("cannot start a coordinator: %s", path);
		return -1;
	}
	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = fork();
	if (pid < 0) {
		log_perror("fork to start %s", path);
		return -1;
	}
	if (pid == 0) {
		char *argv[] = { path, "--daemon", "--port", portstr, any ? "--bind" : NULL,
				 "0.0.0.0", NULL };
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
		}
		setsid();
		syscall(SYS_close_range, 3u, ~0u, 0u);
		/* the coordinator must not load the library its launcher prepares */
		unsetenv("LD_PRELOAD");
		signal(SIGPIPE, SIG_DFL);
		execv(path, argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

int coord_ensure(const char *host, int port, const char *bindir)
{
	int64_t deadline;

	if (probe(host, port) == 0)
		return 0;
	if (!host_is_local(host)) {
		log_err("no coordinator at %s:%d (not a local host: start cryo_coordinator there)",
			host, port);
		return -1;
	}
	log_info("no coordinator at %s:%d, starting one", host, port);
	if (spawn_coordinator(host, bindir, port) < 0)
		return -1;
	deadline = now_ms() + COORD_ENSURE_WAIT_MS;
	do {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (probe(host, port) == 0)
			return 0;
		nanosleep(&ts, NULL);
	} while (now_ms() < deadline);
	log_err("started %s/cryo_coordinator --port %d but nothing answers at %s:%d after %d ms",
		bindir, port, host, port, COORD_ENSURE_WAIT_MS);
	return -1;
}

const char *coord_phase_name(uint32_t phase)
{
	switch (phase) {
	case COORD_PH_SUSPEND:
		return "SUSPEND";
	case COORD_PH_ELECT:
		return "ELECT";
	case COORD_PH_DRAIN:
		return "DRAIN";
	case COORD_PH_WRITE:
		return "WRITE";
	case COORD_PH_COMMIT:
		return "COMMIT";
	case COORD_PH_REFILL:
		return "REFILL";
	case COORD_PH_RELEASE:
		return "RELEASE";
	case COORD_PH_RESUME:
		return "RESUME";
	case COORD_PH_RESTART:
		return "RESTART";
	}
	return "UNKNOWN";
}
