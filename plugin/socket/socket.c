/* The socket plugin: AF_UNIX sockets (stream, seqpacket, datagram; pairs,
 * named and abstract) and TCP and UDP over IPv4 and IPv6, with the data in
 * flight, across every process of the computation. doc/sockets.md is the
 * protocol in prose; in short:
 *
 * Checkpoint (every user thread of every process parked):
 *   pre_ckpt  note the program's F_SETOWN of each socket; reserve memory.
 *   elect     note every socket fd: family, type, addresses, options,
 *             flags; mark each description with F_SETOWN (plugin/owner.h);
 *             bind an abstract name "cryo-<comp>-sk-<inode>" for each TCP
 *             connection end, so the peer's holder can tell it is ours.
 *   drain     owners decided. The socket diagnostics (diag.h) give each
 *             Unix end its peer's inode, each TCP end its peer's inode and
 *             whether it was accepted (a listener on its local port). A
 *             Unix receive queue is copied without being taken out
 *             (MSG_PEEK; messages one by one with SO_PEEK_OFF). A TCP
 *             connection between two processes of the computation is
 *             drained both ways: each owner writes a cookie after the
 *             program's bytes and reads until the peer's cookie arrives, so
 *             what sat in the peer's send queue is in memory too.
 *   refill    the drained TCP bytes go back (the echo below).
 *   resume    F_SETOWN back, probes closed, memory dropped.
 *
 * The echo: each owner sends its saved bytes to the peer, framed; each
 * reads the peer's frame and writes it straight back, so it lands in the
 * peer's receive queue, which then holds exactly what it held. Messages
 * keep their boundaries (one frame message, then one message each).
 *
 * Restart (plugin/share.h; one step per restart barrier):
 *   restart_share   listeners re-bound (a stale socket file unlinked) and
 *                   sent to every process; a Unix pair is remade by the
 *                   holder of its lower inode (socketpair) and each end sent
 *                   to every process; unconnected and UDP sockets remade;
 *                   a TCP end whose peer is not ours comes back as a socket
 *                   the peer has reset (one log line). Every end announces
 *                   itself (ALIVE).
 *   restart_refill  TCP: the accepting side's owner takes the new listener
 *                   (or makes a temporary one on its port), the connecting
 *                   side's owner binds its old port and connects, the
 *                   accepting side accepts (a connection meant for another
 *                   process is forwarded to it) and sends the end to every
 *                   process. A Unix end whose peer nobody announced comes
 *                   back with its peer closed.
 *   restart_resume  every process takes its ends, owners echo the saved
 *                   bytes, options and flags are set, everything is
 *                   dup3()'d onto its fd numbers.
 *
 * Raw syscalls only: every hook runs with the user threads parked. */
#define LOG_PREFIX "socket: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/fd/stdio.h"
#include "plugin/fdscan.h"
#include "plugin/owner.h"
#include "plugin/share.h"
#include "plugin/socket/diag.h"
#include "plugin/socket/socket.h"

#define SK_MAX 1024
#define DIAG_MAX 16384
#define DATA_MAX (1ul << 30)	/* address space for drained bytes (NORESERVE) */
#define ECHO_BUF 65536
#define ECHO_MAX 64		/* connections of one process put back at once */
#define WAIT_MS 30000		/* a drain, an echo, a reconnect give up after this */

enum sk_kind { SK_OTHER, SK_LISTEN, SK_CONN };

struct sk_ent {
	int fd;
	unsigned flags;		/* fdinfo flags, O_CLOEXEC from F_GETFD */
	uint64_t ino, peer_ino, lsn_ino;
	int same_as;		/* earlier entry of this description here, or -1 */
	int outer;		/* the user's stdio: left alone */
	int owner;		/* this process owns the description */
	int32_t owner_vpid;
	struct f_owner_ex own;
	int family, type, proto, kind;
	int internal;		/* SK_CONN: the peer end is held by the computation */
	int accepts;		/* TCP SK_CONN: this end comes back through accept */
	int peer_named;		/* Unix: the peer has an address */
	struct sockaddr_storage local, peer;
	uint32_t llen, plen;
	int backlog;
	int rcvbuf, sndbuf, passcred, keepalive, nodelay, reuseaddr, reuseport, v6only, broadcast;
	int kidle, kintvl, kcnt, oobinline;
	struct linger linger;
	struct timeval rcvtimeo, sndtimeo;
	uint64_t data_off, data_len;	/* saved receive queue (messages: u32 length + bytes each) */
	uint32_t nmsg;
	int probe;		/* checkpoint: our abstract name for this TCP end */
	int nfd;		/* restart: the new socket */
	int peer_tmp;		/* restart: the other end of a remade pair */
	int lsn;		/* restart: the listener this end is accepted from */
	int peer_alive;
};

struct own_note {
	int fd;
	uint64_t ino;
	struct f_owner_ex own;
};

static struct sk_ent *tab;	/* ckpt_mem: in the image */
static struct own_note *notes;
static size_t ntab, nnotes;
static struct diag_sock *diag;	/* scratch */
static size_t ndiag;
static unsigned char *data;	/* drained bytes; in the image */
static size_t data_used;

#define TAG_END 0x736b656eu	/* one remade socket, by old inode */
#define TAG_LSN 0x736b6c73u	/* a remade listener, for the accepting side */
#define TAG_ALIVE 0x736b616cu	/* an end is held by the computation */
#define TAG_ACC 0x736b6163u	/* an accepted connection, by its peer's address */

static const unsigned char cookie[32] = "cryo-socket-drain-cookie-v1\x01\x02\x03\x04";
#define ECHO_MAGIC 0x6f686365796f7263ull	/* "cryoecho" */

static uint64_t tag_of(uint32_t kind, uint64_t a, uint64_t b)
{
	uint64_t v[3] = { kind, a, b };

	return share_tag(v, 3);
}

/* ---- small raw-syscall helpers ---- */

static long x_socket(int fam, int type, int proto)
{
	return sys_call3(__NR_socket, fam, type | SOCK_CLOEXEC, proto);
}

static long x_setopt(int fd, int lvl, int name, const void *v, unsigned len)
{
	return sys_call5(__NR_setsockopt, fd, lvl, name, v, len);
}

static int x_getint(int fd, int lvl, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (sys_failed(sys_call5(__NR_getsockopt, fd, lvl, name, &v, &l)))
		return 0;
	return v;
}

static void x_setint(int fd, int lvl, int name, int v)
{
	x_setopt(fd, lvl, name, &v, sizeof(v));
}

static long x_send(int fd, const void *b, size_t n)
{
	return sys_call6(__NR_sendto, fd, (long)b, (long)n, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0);
}

static long x_recv(int fd, void *b, size_t n, int flags)
{
	return sys_call6(__NR_recvfrom, fd, (long)b, (long)n, flags | MSG_DONTWAIT, 0, 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	sys_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(void)
{
	struct timespec ts = { 0, 1000000 };

	sys_nanosleep(&ts, NULL);
}

/* "1.2.3.4:80", "[0:0:...:1]:80", "@name" or "/path" into buf. */
static const char *addr_str(const struct sockaddr_storage *a, uint32_t len, char *buf, size_t cap)
{
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)a;
		const unsigned char *b = (const void *)&s->sin_addr;

		nolibc_snprintf(buf, cap, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], ntohs(s->sin_port));
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)a;
		const unsigned char *b = s->sin6_addr.s6_addr;
		size_t k = 0;

		buf[k++] = '[';
		for (int i = 0; i < 16 && k + 8 < cap; i += 2)
			k += (size_t)nolibc_snprintf(buf + k, cap - k, "%x%s", (unsigned)(b[i] << 8 | b[i + 1]),
						     i < 14 ? ":" : "");
		nolibc_snprintf(buf + k, cap - k, "]:%u", ntohs(s->sin6_port));
	} else if (a->ss_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
		const struct sockaddr_un *s = (const void *)a;
		size_t n = len - offsetof(struct sockaddr_un, sun_path);

		if (n >= cap)
			n = cap - 1;
		nolibc_memcpy(buf, s->sun_path, n);
		buf[n] = '\0';
		if (buf[0] == '\0')
			buf[0] = '@';
	} else {
		nolibc_snprintf(buf, cap, "(unnamed)");
	}
	return buf;
}

/* An address as the diagnostics give it: 16 bytes, IPv4 mapped. */
static void addr_norm(const struct sockaddr_storage *a, uint32_t out[4], uint16_t *port)
{
	nolibc_memset(out, 0, 16);
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)a;

		out[2] = htonl(0xffff);
		out[3] = s->sin_addr.s_addr;
		*port = ntohs(s->sin_port);
	} else {
		const struct sockaddr_in6 *s = (const void *)a;

		nolibc_memcpy(out, s->sin6_addr.s6_addr, 16);
		*port = ntohs(s->sin6_port);
	}
}

static void diag_norm(const struct diag_sock *d, const uint32_t in[4], uint32_t out[4])
{
	nolibc_memset(out, 0, 16);
	if (d->family == AF_INET) {
		out[2] = htonl(0xffff);
		out[3] = in[0];
	} else {
		nolibc_memcpy(out, in, 16);
	}
}

static int addr_any(const uint32_t a[4])
{
	return (!a[0] && !a[1] && !a[2] && !a[3]) || (!a[0] && !a[1] && a[2] == htonl(0xffff) && !a[3]);
}

/* ---- checkpoint ---- */

static int note_owner(int fd, const struct stat *st, void *arg)
{
	(void)arg;
	if (!S_ISSOCK(st->st_mode) || nnotes >= SK_MAX)
		return 0;
	notes[nnotes].fd = fd;
	notes[nnotes].ino = (uint64_t)st->st_ino;
	owner_get(fd, &notes[nnotes].own);
	nnotes++;
	return 0;
}

static int sk_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(SK_MAX * sizeof(*tab));
	if (!notes)
		notes = ckpt_mem(SK_MAX * sizeof(*notes));
	if (!diag)
		diag = ckpt_scratch(DIAG_MAX * sizeof(*diag));
	if (!tab || !notes || !diag)
		return -1;
	nnotes = 0;
	return fdscan_each(note_owner, NULL) < 0 ? -1 : 0;
}

static socklen_t probe_name(uint64_t ino, struct sockaddr_un *a)
{
	int n;

	nolibc_memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = nolibc_snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "cryo-%llx-sk-%llu",
			    (unsigned long long)ckpt_comp_id(), (unsigned long long)ino);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Binds the probe name of ino: the fd, or -1 if the name is taken already. */
static int probe_bind(uint64_t ino)
{
	struct sockaddr_un a;
	socklen_t len = probe_name(ino, &a);
	long s = x_socket(AF_UNIX, SOCK_DGRAM, 0);

	if (sys_failed(s))
		return -1;
	if (sys_failed(sys_call3(__NR_bind, s, &a, len))) {
		sys_close((int)s);
		return -1;
	}
	return (int)s;
}

static void read_opts(struct sk_ent *e)
{
	socklen_t l;

	e->rcvbuf = x_getint(e->fd, SOL_SOCKET, SO_RCVBUF);
	e->sndbuf = x_getint(e->fd, SOL_SOCKET, SO_SNDBUF);
	e->passcred = x_getint(e->fd, SOL_SOCKET, SO_PASSCRED);
	e->keepalive = x_getint(e->fd, SOL_SOCKET, SO_KEEPALIVE);
	e->reuseaddr = x_getint(e->fd, SOL_SOCKET, SO_REUSEADDR);
	e->reuseport = x_getint(e->fd, SOL_SOCKET, SO_REUSEPORT);
	e->broadcast = x_getint(e->fd, SOL_SOCKET, SO_BROADCAST);
	e->oobinline = x_getint(e->fd, SOL_SOCKET, SO_OOBINLINE);
	l = sizeof(e->linger);
	sys_call5(__NR_getsockopt, e->fd, SOL_SOCKET, SO_LINGER, &e->linger, &l);
	l = sizeof(e->rcvtimeo);
	sys_call5(__NR_getsockopt, e->fd, SOL_SOCKET, SO_RCVTIMEO, &e->rcvtimeo, &l);
	l = sizeof(e->sndtimeo);
	sys_call5(__NR_getsockopt, e->fd, SOL_SOCKET, SO_SNDTIMEO, &e->sndtimeo, &l);
	if (e->family == AF_INET6)
		e->v6only = x_getint(e->fd, IPPROTO_IPV6, IPV6_V6ONLY);
	if (e->proto == IPPROTO_TCP) {
		e->nodelay = x_getint(e->fd, IPPROTO_TCP, TCP_NODELAY);
		e->kidle = x_getint(e->fd, IPPROTO_TCP, TCP_KEEPIDLE);
		e->kintvl = x_getint(e->fd, IPPROTO_TCP, TCP_KEEPINTVL);
		e->kcnt = x_getint(e->fd, IPPROTO_TCP, TCP_KEEPCNT);
	}
}

static int collect(int fd, const struct stat *st, void *arg)
{
	struct sk_ent *e;
	unsigned long long pos;
	socklen_t l;

	(void)arg;
	if (!S_ISSOCK(st->st_mode))
		return 0;
	if (ntab >= SK_MAX) {
		log_err("more than %d socket fds", SK_MAX);
		return -1;
	}
	e = &tab[ntab++];
	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->ino = (uint64_t)st->st_ino;
	e->same_as = -1;
	e->probe = e->nfd = e->peer_tmp = e->lsn = -1;
	e->outer = stdio_is_outer(st);
	fdscan_info(fd, &pos, &e->flags);
	for (size_t i = 0; i < nnotes; i++)
		if (notes[i].fd == fd && notes[i].ino == e->ino)
			e->own = notes[i].own;
	e->family = x_getint(fd, SOL_SOCKET, SO_DOMAIN);
	e->type = x_getint(fd, SOL_SOCKET, SO_TYPE);
	e->proto = x_getint(fd, SOL_SOCKET, SO_PROTOCOL);
	l = sizeof(e->local);
	if (sys_failed(sys_call3(__NR_getsockname, fd, &e->local, &l)))
		l = 0;
	e->llen = l;
	l = sizeof(e->peer);
	if (sys_failed(sys_call3(__NR_getpeername, fd, &e->peer, &l)))
		l = 0;
	e->plen = l;
	if (x_getint(fd, SOL_SOCKET, SO_ACCEPTCONN))
		e->kind = SK_LISTEN;
	else if (e->plen && e->proto == IPPROTO_TCP)
		e->kind = SK_CONN;
	read_opts(e);
	return 0;
}

static int sk_elect(void)
{
	pid_t pid = vpid_kernel_pid();

	ntab = 0;
	data = NULL;
	data_used = 0;
	if (!tab || fdscan_each(collect, NULL) != 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		for (size_t j = 0; j < i; j++)
			if (tab[j].ino == e->ino && tab[j].same_as < 0 &&
			    sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, tab[j].fd, e->fd) == 0) {
				e->same_as = (int)j;
				break;
			}
		if (e->same_as >= 0 || e->outer)
			continue;
		owner_mark(e->fd);
		if (e->kind == SK_CONN && (e->family == AF_INET || e->family == AF_INET6)) {
			e->probe = probe_bind(e->ino);
			if (e->probe >= 0)
				e->probe = ckpt_reserve_fd(e->probe);
		}
	}
	return 0;
}

static int probe_taken(uint64_t ino)
{
	int s = probe_bind(ino);

	if (s < 0)
		return 1;
	sys_close(s);
	return 0;
}

static const struct diag_sock *diag_find(uint64_t ino)
{
	for (size_t i = 0; i < ndiag; i++)
		if (diag[i].ino == ino)
			return &diag[i];
	return NULL;
}

/* TCP: the peer's inode, and whether this end was accepted. */
static void classify_tcp(struct sk_ent *e)
{
	uint32_t la[4], pa[4], a[4], b[4];
	uint16_t lp, pp;
	uint64_t lsn_local = 0, lsn_peer = 0;

	addr_norm(&e->local, la, &lp);
	addr_norm(&e->peer, pa, &pp);
	for (size_t i = 0; i < ndiag; i++) {
		const struct diag_sock *d = &diag[i];

		if (d->family == AF_UNIX)
			continue;
		diag_norm(d, d->src, a);
		diag_norm(d, d->dst, b);
		if (d->state == TCP_LISTEN) {
			if (d->sport == lp && (addr_any(a) || !nolibc_memcmp(a, la, 16)))
				lsn_local = d->ino;
			if (d->sport == pp && (addr_any(a) || !nolibc_memcmp(a, pa, 16)))
				lsn_peer = d->ino;
			continue;
		}
		if (d->sport == pp && d->dport == lp && !nolibc_memcmp(a, pa, 16) && !nolibc_memcmp(b, la, 16) &&
		    d->ino != e->ino)
			e->peer_ino = d->ino;
	}
	if (lsn_local && !lsn_peer)
		e->accepts = 1;
	else if (lsn_peer && !lsn_local)
		e->accepts = 0;
	else	/* neither (or both): the lower address listens */
		e->accepts = lp < pp || (lp == pp && nolibc_memcmp(la, pa, 16) < 0);
	e->lsn_ino = e->accepts ? lsn_local : 0;
	e->internal = e->peer_ino && probe_taken(e->peer_ino);
}

static int reserve_data(size_t need)
{
	long p;

	if (data)
		return 0;
	p = sys_mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sys_failed(p)) {
		log_syserr((int)-p, "map %zu bytes for socket data", need);
		return -1;
	}
	data = (unsigned char *)p;
	data_used = 0;
	return 0;
}

/* A Unix receive queue, copied without taking it out. */
static int peek_unix(struct sk_ent *e)
{
	int inq = 0, peekoff;

	e->data_off = data_used;
	if (e->type == SOCK_STREAM) {
		long n;

		sys_ioctl(e->fd, SIOCINQ, &inq);
		if (inq <= 0)
			return 0;
		if (data_used + (size_t)inq > DATA_MAX)
			goto full;
		n = x_recv(e->fd, data + data_used, (size_t)inq, MSG_PEEK);
		if (sys_failed(n)) {
			log_syserr((int)-n, "fd %d: copy the bytes in flight", e->fd);
			return -1;
		}
		e->data_len = (uint64_t)n;
		data_used += (size_t)n;
		return 0;
	}
	/* Messages: walk them with a peek offset, one at a time. */
	peekoff = x_getint(e->fd, SOL_SOCKET, SO_PEEK_OFF);
	x_setint(e->fd, SOL_SOCKET, SO_PEEK_OFF, 0);
	for (;;) {
		uint32_t len;
		long n;

		if (data_used + 4 + ECHO_BUF > DATA_MAX)
			goto full;
		n = x_recv(e->fd, data + data_used + 4, ECHO_BUF, MSG_PEEK | MSG_TRUNC);
		if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0)
			break;	/* a zero-length message cannot be told from the end */
		if (sys_failed(n)) {
			log_syserr((int)-n, "fd %d: copy the messages in flight", e->fd);
			break;
		}
		if (n > ECHO_BUF) {
			log_warn("fd %d: a message of %ld bytes in flight is too large to keep; it and the rest are lost",
				 e->fd, n);
			break;
		}
		len = (uint32_t)n;
		nolibc_memcpy(data + data_used, &len, 4);
		data_used += 4 + len;
		e->nmsg++;
	}
	x_setint(e->fd, SOL_SOCKET, SO_PEEK_OFF, peekoff);
	e->data_len = data_used - e->data_off;
	return 0;
full:
	log_warn("fd %d: more than %lu bytes in flight in all sockets; the rest is lost", e->fd, DATA_MAX);
	return 0;
}

/* TCP between two processes of ours: both owners read until the other's
 * cookie, writing their own meanwhile; every entry of this process at once. */
static int drain_tcp(void)
{
	struct pollfd p[SK_MAX];
	int idx[SK_MAX], ret = 0;
	size_t sent[SK_MAX], n = 0, left;
	int rx_done[SK_MAX];
	uint64_t until = now_ms() + WAIT_MS;

	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (e->outer || !e->owner || e->same_as >= 0 || e->kind != SK_CONN || !e->internal ||
		    e->family == AF_UNIX)
			continue;
		idx[n] = (int)i;
		sent[n] = 0;
		rx_done[n] = 0;
		n++;
	}
	if (!n)
		return 0;
	/* Each connection's bytes go in one run: drain them one at a time,
	 * each keeping every other socket's cookie moving. */
	for (size_t k = 0; k < n; k++) {
		struct sk_ent *e = &tab[idx[k]];

		e->data_off = data_used;
		while (!rx_done[k]) {
			long r;
			size_t m = 0;

			if (now_ms() > until) {
				log_err("fd %d: the peer's bytes did not all arrive within %d s", e->fd, WAIT_MS / 1000);
				ret = -1;
				break;
			}
			if (data_used + 65536 > DATA_MAX) {
				log_err("fd %d: more than %lu bytes in flight", e->fd, DATA_MAX);
				ret = -1;
				break;
			}
			r = x_recv(e->fd, data + data_used, 65536, 0);
			if (r > 0) {
				data_used += (size_t)r;
				if (data_used - e->data_off >= sizeof(cookie) &&
				    !nolibc_memcmp(data + data_used - sizeof(cookie), cookie, sizeof(cookie))) {
					data_used -= sizeof(cookie);
					rx_done[k] = 1;
				}
			} else if (r == 0 || (sys_failed(r) && r != -EAGAIN)) {
				rx_done[k] = 1;	/* the peer shut down or reset */
			}
			for (size_t j = 0; j < n; j++) {
				const struct sk_ent *f = &tab[idx[j]];

				if (sent[j] < sizeof(cookie)) {
					long w = x_send(f->fd, cookie + sent[j], sizeof(cookie) - sent[j]);

					if (w > 0)
						sent[j] += (size_t)w;
					else if (sys_failed(w) && w != -EAGAIN)
						sent[j] = sizeof(cookie);	/* the peer is gone */
				}
				p[m].fd = f->fd;
				p[m].events = (j == k ? POLLIN : 0) | (sent[j] < sizeof(cookie) ? POLLOUT : 0);
				p[m].revents = 0;
				m++;
			}
			if (r == -EAGAIN)
				sys_call3(__NR_poll, p, m, 10);
		}
		e->data_len = data_used - e->data_off;
	}
	for (left = 1; left && now_ms() <= until;) {
		left = 0;
		for (size_t j = 0; j < n; j++) {
			if (sent[j] >= sizeof(cookie))
				continue;
			long w = x_send(tab[idx[j]].fd, cookie + sent[j], sizeof(cookie) - sent[j]);

			if (w > 0)
				sent[j] += (size_t)w;
			else if (sys_failed(w) && w != -EAGAIN)
				sent[j] = sizeof(cookie);
			left += sent[j] < sizeof(cookie);
		}
		if (left)
			nap();
	}
	return ret;
}

static int sk_drain(void)
{
	size_t need = 0;

	ndiag = 0;
	if (!ntab)
		return 0;
	if (diag_dump(AF_UNIX, diag, &ndiag, DIAG_MAX) < 0 || diag_dump(AF_INET, diag, &ndiag, DIAG_MAX) < 0 ||
	    diag_dump(AF_INET6, diag, &ndiag, DIAG_MAX) < 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];
		const struct diag_sock *d;

		if (e->outer)
			continue;
		if (e->same_as >= 0) {
			const struct sk_ent *f = &tab[e->same_as];

			e->owner = f->owner;
			e->owner_vpid = f->owner_vpid;
			continue;
		}
		e->owner = owner_read(e->fd, &e->owner_vpid);
		if (e->family == AF_UNIX) {
			d = diag_find(e->ino);
			if (e->kind == SK_LISTEN) {
				e->backlog = d ? (int)d->wqueue : 128;
			} else if (d && (d->peer_ino || d->state == TCP_ESTABLISHED)) {
				const struct sockaddr_un *pu = (const void *)&e->peer;

				e->peer_ino = d->peer_ino;
				e->peer_named = e->plen > offsetof(struct sockaddr_un, sun_path) &&
						(pu->sun_path[0] || e->plen > offsetof(struct sockaddr_un, sun_path) + 1);
				if (e->type != SOCK_DGRAM || !e->peer_named)
					e->kind = SK_CONN;
			}
		} else if (e->proto == IPPROTO_TCP) {
			d = diag_find(e->ino);
			if (e->kind == SK_LISTEN)
				e->backlog = d ? (int)d->wqueue : 128;
			else if (e->kind == SK_CONN)
				classify_tcp(e);
		}
		if (e->owner && (e->family == AF_UNIX || e->kind == SK_CONN))
			need += (size_t)e->rcvbuf * 2 + (size_t)e->sndbuf * 2 + 65536;
	}
	if (need && reserve_data(DATA_MAX) < 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (e->outer || !e->owner || e->same_as >= 0 || e->family != AF_UNIX || e->kind == SK_LISTEN)
			continue;
		if (peek_unix(e) < 0)
			return -1;
	}
	if (drain_tcp() < 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		const struct sk_ent *e = &tab[i];
		char a[80], b[80];

		if (e->same_as < 0 && !e->outer)
			log_debug("fd %d: socket %llu kind %d %s -> %s peer %llu%s%s owner %d, %llu bytes, %u messages",
				  e->fd, (unsigned long long)e->ino, e->kind, addr_str(&e->local, e->llen, a, sizeof(a)),
				  addr_str(&e->peer, e->plen, b, sizeof(b)), (unsigned long long)e->peer_ino,
				  e->internal ? " internal" : "", e->accepts ? " accepts" : "", e->owner,
				  (unsigned long long)e->data_len, e->nmsg);
	}
	return 0;
}

/* ---- the echo: saved bytes back into the receive queues ---- */

struct echo {
	struct sk_ent *e;
	int fd, msgs;
	uint64_t hdr[2];	/* this end's frame header */
	size_t out;		/* stream: bytes of header + data sent; messages: messages sent */
	const unsigned char *cur;	/* messages: the next saved record */
	uint64_t in_hdr[2];
	size_t in_got;		/* stream: header + data bytes read; messages: messages read */
	unsigned char *in;	/* the peer's frame, kept whole until this end's is out */
	size_t in_cap, in_len;	/* bytes (messages: records) of it */
	size_t back;		/* bytes (messages: records' bytes) written back */
	int done;
};

/* A hard error: the peer is gone (killed, reset). */
static int gone(struct echo *x, long r)
{
	if (r >= 0 || r == -EAGAIN || r == -EINTR)
		return 0;
	x->done = -1;
	return 1;
}

/* One step of the echo on x, never blocking. The peer's frame is read
 * whole, whatever this end's progress (so neither end waits for the other
 * to read), and written back only once this end's own frame is out, so
 * the two never interleave in the stream. */
static void echo_step(struct echo *x)
{
	struct sk_ent *e = x->e;
	size_t total = x->msgs ? (size_t)e->nmsg + 1 : 16 + e->data_len;
	long r;

	while (x->out < total) {	/* this end's frame */
		if (!x->msgs) {
			const unsigned char *src = x->out < 16 ? (const unsigned char *)x->hdr + x->out
							       : data + e->data_off + x->out - 16;
			size_t n = x->out < 16 ? 16 - x->out : total - x->out;

			r = x_send(x->fd, src, n > 65536 ? 65536 : n);
			if (r > 0)
				x->out += (size_t)r;
		} else if (x->out == 0) {
			r = x_send(x->fd, x->hdr, 16);
			if (r >= 0)
				x->out++;
		} else {
			uint32_t len;

			nolibc_memcpy(&len, x->cur, 4);
			r = x_send(x->fd, x->cur + 4, len);
			if (r >= 0) {
				x->cur += 4 + len;
				x->out++;
			}
		}
		if (gone(x, r))
			return;
		if (r < 0)
			break;
	}
	for (;;) {	/* the peer's frame */
		if (!x->msgs) {
			size_t want;

			if (x->in_got < 16) {
				r = x_recv(x->fd, (char *)x->in_hdr + x->in_got, 16 - x->in_got, 0);
			} else {
				if (x->in_hdr[0] != ECHO_MAGIC || x->in_hdr[1] > x->in_cap) {
					x->done = -1;
					return;
				}
				want = 16 + x->in_hdr[1] - x->in_got;
				if (!want)
					break;
				r = x_recv(x->fd, x->in + x->in_len, want, 0);
				if (r > 0)
					x->in_len += (size_t)r;
			}
		} else {
			if (x->in_got >= 1 && x->in_got > x->in_hdr[1])
				break;
			if (x->in_got == 0) {
				r = x_recv(x->fd, x->in_hdr, 16, 0);
				if (r > 0 && (r != 16 || x->in_hdr[0] != ECHO_MAGIC))
					r = 0;
			} else {
				if (x->in_len + 4 + ECHO_BUF > x->in_cap) {
					x->done = -1;
					return;
				}
				r = x_recv(x->fd, x->in + x->in_len + 4, ECHO_BUF, 0);
				if (r > 0) {
					uint32_t len = (uint32_t)r;

					nolibc_memcpy(x->in + x->in_len, &len, 4);
					x->in_len += 4 + (size_t)r;
				}
			}
		}
		if (r == 0 || gone(x, r)) {
			x->done = -1;	/* the peer went away (an empty message is not kept) */
			return;
		}
		if (r < 0)
			break;
		x->in_got += x->msgs ? 1 : (size_t)r;
	}
	if (x->out < total)
		return;
	while (x->back < x->in_len) {	/* the peer's bytes back to it */
		if (!x->msgs) {
			r = x_send(x->fd, x->in + x->back, x->in_len - x->back);
			if (r > 0)
				x->back += (size_t)r;
		} else {
			uint32_t len;

			nolibc_memcpy(&len, x->in + x->back, 4);
			r = x_send(x->fd, x->in + x->back + 4, len);
			if (r >= 0)
				x->back += 4 + len;
		}
		if (gone(x, r))
			return;
		if (r < 0)
			break;
	}
	if (!x->msgs)
		x->done = x->in_got >= 16 && x->in_got == 16 + x->in_hdr[1] && x->back == x->in_len;
	else
		x->done = x->in_got >= 1 && x->in_got == x->in_hdr[1] + 1 && x->back == x->in_len;
}

/* Runs the echo on every entry of this process for which want() says so,
 * on fd_of(e). 0, or -1 after logging. */
static int echo_all(int (*want)(const struct sk_ent *), int (*fd_of)(const struct sk_ent *))
{
	static struct echo xs[SK_MAX];
	struct pollfd p[SK_MAX];
	size_t n = 0, left;
	uint64_t until = now_ms() + WAIT_MS;
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];
		struct echo *x = &xs[n];

		if (!want(e) || fd_of(e) < 0)
			continue;
		if (n >= ECHO_MAX) {
			log_err("fd %d: more than %d connections of one process to put back; its bytes are lost",
				e->fd, ECHO_MAX);
			continue;
		}
		nolibc_memset(x, 0, sizeof(*x));
		x->e = e;
		x->fd = fd_of(e);
		x->msgs = e->type != SOCK_STREAM;
		x->hdr[0] = ECHO_MAGIC;
		x->hdr[1] = x->msgs ? e->nmsg : e->data_len;
		x->cur = data ? data + e->data_off : NULL;
		n++;
	}
	if (n && reserve_data(DATA_MAX) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {	/* room for each peer's frame */
		size_t base = (data_used + 4095) & ~4095ul, slot = ((DATA_MAX - base) / n) & ~4095ul;

		xs[k].in = data + base + k * slot;
		xs[k].in_cap = slot;
	}
	for (left = n; left;) {
		size_t m = 0;

		left = 0;
		for (size_t k = 0; k < n; k++) {
			if (xs[k].done)
				continue;
			echo_step(&xs[k]);
			if (xs[k].done)
				continue;
			left++;
			p[m].fd = xs[k].fd;
			p[m].events = POLLIN | POLLOUT;
			p[m].revents = 0;
			m++;
		}
		if (!left)
			break;
		if (now_ms() > until) {
			for (size_t k = 0; k < n; k++)
				if (!xs[k].done)
					log_err("fd %d: its %llu bytes in flight could not all be put back within %d s",
						xs[k].e->fd, (unsigned long long)xs[k].e->data_len, WAIT_MS / 1000);
			return -1;
		}
		sys_call3(__NR_poll, p, m, 5);
	}
	for (size_t k = 0; k < n; k++)
		if (xs[k].done < 0) {
			log_err("fd %d: the peer did not take part in putting the bytes back", xs[k].e->fd);
			ret = -1;
		}
	return ret;
}

static int want_tcp_refill(const struct sk_ent *e)
{
	return !e->outer && e->owner && e->same_as < 0 && e->kind == SK_CONN && e->internal &&
	       e->family != AF_UNIX;
}

static int fd_old(const struct sk_ent *e)
{
	return e->fd;
}

static int sk_refill(void)
{
	return echo_all(want_tcp_refill, fd_old);
}

static void drop_data(void)
{
	if (data)
		sys_munmap(data, DATA_MAX);
	data = NULL;
	data_used = 0;
}

static int sk_resume(void)
{
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (e->probe >= 0)
			sys_close(e->probe);
		e->probe = -1;
		if (!e->outer && e->same_as < 0)
			owner_set(e->fd, &e->own, 0);
	}
	drop_data();
	return 0;
}

/* ---- restart ---- */

static int sk_restart(void)
{
	for (size_t i = 0; i < ntab; i++) {
		share_note_fd(tab[i].fd);
		tab[i].probe = tab[i].nfd = tab[i].peer_tmp = tab[i].lsn = -1;
		tab[i].peer_alive = 0;
	}
	return 0;
}

static int ours(const struct sk_ent *e)
{
	return !e->outer && e->owner && e->same_as < 0;
}

/* Options that must be set before bind. */
static void opts_early(int fd, const struct sk_ent *e)
{
	if (e->family == AF_INET6)
		x_setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, e->v6only);
	if (e->reuseport)
		x_setint(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	x_setint(fd, SOL_SOCKET, SO_REUSEADDR, e->family == AF_UNIX ? e->reuseaddr : 1);
	if (e->passcred)
		x_setint(fd, SOL_SOCKET, SO_PASSCRED, 1);
}

/* The rest, last (the buffer sizes: after the echo, which needs room). */
static void opts_late(int fd, const struct sk_ent *e)
{
	x_setint(fd, SOL_SOCKET, SO_REUSEADDR, e->reuseaddr);
	x_setint(fd, SOL_SOCKET, SO_KEEPALIVE, e->keepalive);
	x_setint(fd, SOL_SOCKET, SO_BROADCAST, e->broadcast);
	x_setint(fd, SOL_SOCKET, SO_OOBINLINE, e->oobinline);
	x_setopt(fd, SOL_SOCKET, SO_LINGER, &e->linger, sizeof(e->linger));
	x_setopt(fd, SOL_SOCKET, SO_RCVTIMEO, &e->rcvtimeo, sizeof(e->rcvtimeo));
	x_setopt(fd, SOL_SOCKET, SO_SNDTIMEO, &e->sndtimeo, sizeof(e->sndtimeo));
	if (e->rcvbuf)
		x_setint(fd, SOL_SOCKET, SO_RCVBUF, e->rcvbuf / 2);
	if (e->sndbuf)
		x_setint(fd, SOL_SOCKET, SO_SNDBUF, e->sndbuf / 2);
	if (e->proto == IPPROTO_TCP) {
		x_setint(fd, IPPROTO_TCP, TCP_NODELAY, e->nodelay);
		if (e->kidle)
			x_setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, e->kidle);
		if (e->kintvl)
			x_setint(fd, IPPROTO_TCP, TCP_KEEPINTVL, e->kintvl);
		if (e->kcnt)
			x_setint(fd, IPPROTO_TCP, TCP_KEEPCNT, e->kcnt);
	}
}

/* Room for the echo: what the queues held, and more. */
static void opts_room(int fd)
{
	x_setint(fd, SOL_SOCKET, SO_SNDBUF, 4 << 20);
	x_setint(fd, SOL_SOCKET, SO_RCVBUF, 4 << 20);
}

static long new_socket(const struct sk_ent *e)
{
	long s = x_socket(e->family, e->type, e->family == AF_UNIX ? 0 : e->proto);

	if (sys_failed(s))
		log_syserr((int)-s, "fd %d: socket(%d, %d)", e->fd, e->family, e->type);
	else
		opts_early((int)s, e);
	return s;
}

static int bind_local(int s, const struct sk_ent *e)
{
	const struct sockaddr_un *u = (const void *)&e->local;
	char a[128];
	long r;

	if (e->llen <= sizeof(sa_family_t))
		return 0;
	if (e->family == AF_UNIX && u->sun_path[0]) {
		struct stat st;
		char path[sizeof(u->sun_path) + 1];
		size_t n = e->llen - offsetof(struct sockaddr_un, sun_path);

		nolibc_memcpy(path, u->sun_path, n);
		path[n] = '\0';
		if (!sys_failed(sys_call4(__NR_newfstatat, -100, path, &st, AT_SYMLINK_NOFOLLOW)) &&
		    S_ISSOCK(st.st_mode))
			sys_unlink(path);	/* the old socket's file */
	}
	if (e->family != AF_UNIX) {
		/* an ephemeral port may be lingering in TIME_WAIT: retry a little */
		for (int k = 0; k < 1000; k++) {
			r = sys_call3(__NR_bind, s, &e->local, e->llen);
			if (r != -EADDRINUSE)
				break;
			nap();
		}
	} else {
		r = sys_call3(__NR_bind, s, &e->local, e->llen);
	}
	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: bind to %s", e->fd, addr_str(&e->local, e->llen, a, sizeof(a)));
		return -1;
	}
	return 0;
}

/* A connected TCP socket of family whose peer has reset it. */
static long reset_socket(const struct sk_ent *e)
{
	struct sockaddr_storage a;
	socklen_t alen = sizeof(a);
	long l, c = -1, s;
	struct linger lg = { 1, 0 };

	nolibc_memset(&a, 0, sizeof(a));
	if (e->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&a;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
	} else {
		struct sockaddr_in *s4 = (void *)&a;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	l = x_socket(e->family, SOCK_STREAM, 0);
	if (sys_failed(l))
		return l;
	if (sys_failed(s = sys_call3(__NR_bind, l, &a, sizeof(a))) || sys_failed(s = sys_call2(__NR_listen, l, 1)) ||
	    sys_failed(s = sys_call3(__NR_getsockname, l, &a, &alen)))
		goto out;
	c = x_socket(e->family, SOCK_STREAM, 0);
	if (sys_failed(c) || sys_failed(s = sys_call3(__NR_connect, c, &a, alen)))
		goto out;
	s = sys_call4(__NR_accept4, l, 0, 0, SOCK_CLOEXEC);
	if (sys_failed(s))
		goto out;
	x_setopt((int)s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	sys_close((int)s);
	sys_close((int)l);
	return c;
out:
	if (c >= 0)
		sys_close((int)c);
	sys_close((int)l);
	return sys_failed(s) ? s : -EIO;
}

static int send_end(const struct sk_ent *e, int fd)
{
	return share_broadcast(tag_of(TAG_END, e->ino, 0), NULL, 0, &fd, 1);
}

static int sk_restart_share(void)
{
	int ret = 0;
	char a[80], b[80];

	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];
		long s;

		if (!ours(e))
			continue;
		if (e->kind == SK_CONN)
			share_broadcast(tag_of(TAG_ALIVE, e->ino, 0), NULL, 0, NULL, 0);
		if (e->kind == SK_LISTEN) {
			s = new_socket(e);
			if (sys_failed(s) || bind_local((int)s, e) < 0 ||
			    sys_failed(sys_call2(__NR_listen, s, e->backlog > 0 ? e->backlog : 128))) {
				log_err("fd %d: listener on %s not remade", e->fd, addr_str(&e->local, e->llen, a, sizeof(a)));
				if (!sys_failed(s))
					sys_close((int)s);
				ret = -1;
				continue;
			}
			send_end(e, (int)s);
			share_broadcast(tag_of(TAG_LSN, e->ino, 0), NULL, 0, (int[]){ (int)s }, 1);
			sys_close((int)s);
		} else if (e->kind == SK_CONN && e->family == AF_UNIX) {
			int sv[2];

			if (e->peer_ino && e->ino > e->peer_ino)
				continue;	/* the other end remakes the pair */
			s = sys_call4(__NR_socketpair, AF_UNIX, e->type | SOCK_CLOEXEC, 0, sv);
			if (sys_failed(s)) {
				log_syserr((int)-s, "fd %d: socketpair", e->fd);
				ret = -1;
				continue;
			}
			send_end(e, sv[0]);
			if (e->peer_ino)
				share_broadcast(tag_of(TAG_END, e->peer_ino, 0), NULL, 0, &sv[1], 1);
			sys_close(sv[0]);
			e->peer_tmp = sv[1];
		} else if (e->kind == SK_CONN && !e->internal) {
			s = reset_socket(e);
			log_warn("fd %d: TCP connection %s -> %s: the peer is not in the computation; it comes back reset",
				 e->fd, addr_str(&e->local, e->llen, a, sizeof(a)), addr_str(&e->peer, e->plen, b, sizeof(b)));
			if (sys_failed(s)) {
				log_syserr((int)-s, "fd %d: make a reset socket", e->fd);
				ret = -1;
				continue;
			}
			send_end(e, (int)s);
			sys_close((int)s);
		} else if (e->kind == SK_OTHER) {
			s = new_socket(e);
			if (sys_failed(s)) {
				ret = -1;
				continue;
			}
			if (bind_local((int)s, e) < 0)
				ret = -1;
			e->nfd = (int)s;	/* sent at refill, once connected */
		}
	}
	return ret;
}

/* Takes the next message with tag (one fd), or -1. */
static int take_fd(uint64_t tag)
{
	unsigned nfds = 0;
	int fd = -1;

	if (share_take(tag, NULL, 0, &fd, 1, &nfds) < 0 || nfds != 1)
		return -1;
	return fd;
}

static int has_msg(uint64_t tag)
{
	unsigned nfds = 0;

	return share_take(tag, NULL, 0, NULL, 0, &nfds) >= 0;
}

static int same_addr(const struct sockaddr_storage *a, uint32_t alen, const struct sockaddr_storage *b)
{
	uint32_t x[4], y[4];
	uint16_t p, q;

	(void)alen;
	addr_norm(a, x, &p);
	addr_norm(b, y, &q);
	return p == q && !nolibc_memcmp(x, y, 16);
}

#define HELLO_MAGIC 0x6f6c6c6568797263ull	/* "cryhello": which end a reconnection is */

static int connect_tcp(struct sk_ent *e)
{
	char a[80];
	uint64_t until = now_ms() + WAIT_MS, hello[2] = { HELLO_MAGIC, e->peer_ino };
	long s, r;

	s = new_socket(e);
	if (sys_failed(s))
		return -1;
	opts_room((int)s);
	if (bind_local((int)s, e) < 0) {
		/* The old connection still holds the port (FIN_WAIT, an orphan
		 * with data): any port will do, the hello says who we are. */
		sys_close((int)s);
		s = new_socket(e);
		if (sys_failed(s))
			return -1;
		opts_room((int)s);
		log_info("fd %d: reconnecting from another local port", e->fd);
	}
	while ((r = sys_call3(__NR_connect, s, &e->peer, e->plen)) == -ECONNREFUSED && now_ms() < until)
		nap();	/* the listener's process may not have made it yet */
	if (!sys_failed(r) && sys_call6(__NR_sendto, s, (long)hello, sizeof(hello), MSG_NOSIGNAL, 0, 0) != sizeof(hello))
		r = -EIO;
	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: reconnect to %s", e->fd, addr_str(&e->peer, e->plen, a, sizeof(a)));
		sys_close((int)s);
		return -1;
	}
	e->nfd = (int)s;
	return 0;
}

/* The old inode of the end an accepted connection stands for (its hello),
 * or 0. */
static uint64_t read_hello(int c)
{
	uint64_t hello[2];
	size_t got = 0;
	uint64_t until = now_ms() + 5000;

	while (got < sizeof(hello) && now_ms() < until) {
		struct pollfd p = { c, POLLIN, 0 };
		long r = x_recv(c, (char *)hello + got, sizeof(hello) - got, 0);

		if (r > 0)
			got += (size_t)r;
		else if (r == -EAGAIN)
			sys_call3(__NR_poll, &p, 1, 50);
		else
			break;
	}
	return got == sizeof(hello) && hello[0] == HELLO_MAGIC ? hello[1] : 0;
}

static int sk_restart_refill(void)
{
	int ret = 0, waiting;
	char a[80];
	uint64_t until;

	/* Unix pairs whose other end nobody holds. */
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (!ours(e) || e->kind != SK_CONN || e->family != AF_UNIX)
			continue;
		e->peer_alive = e->peer_ino && has_msg(tag_of(TAG_ALIVE, e->peer_ino, 0));
		if (e->peer_alive && e->peer_tmp < 0)
			continue;	/* the peer's holder remade it */
		if (e->peer_alive) {
			sys_close(e->peer_tmp);
			e->peer_tmp = -1;
			continue;
		}
		if (e->peer_ino)
			log_warn("fd %d: Unix socket connected to %s: the peer is not in the computation; it comes back with the peer closed",
				 e->fd, e->plen ? addr_str(&e->peer, e->plen, a, sizeof(a)) : "an unnamed socket");
		if (e->peer_tmp < 0) {
			int sv[2];
			long s = sys_call4(__NR_socketpair, AF_UNIX, e->type | SOCK_CLOEXEC, 0, sv);

			if (sys_failed(s)) {
				log_syserr((int)-s, "fd %d: socketpair", e->fd);
				ret = -1;
				continue;
			}
			send_end(e, sv[0]);
			sys_close(sv[0]);
			e->peer_tmp = sv[1];
		}
		/* The saved bytes, then the end of the stream. */
		if (e->type == SOCK_STREAM && e->data_len)
			x_send(e->peer_tmp, data + e->data_off, e->data_len);
		for (uint32_t k = 0, off = 0; e->type != SOCK_STREAM && k < e->nmsg; k++) {
			uint32_t len;

			nolibc_memcpy(&len, data + e->data_off + off, 4);
			x_send(e->peer_tmp, data + e->data_off + off + 4, len);
			off += 4 + len;
		}
		sys_close(e->peer_tmp);
		e->peer_tmp = -1;
	}
	/* TCP: listeners for the accepting side first, then connect, then accept. */
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];
		long s;

		if (!ours(e) || e->kind != SK_CONN || e->family == AF_UNIX || !e->internal || !e->accepts)
			continue;
		if (e->lsn_ino)
			e->lsn = take_fd(tag_of(TAG_LSN, e->lsn_ino, 0));
		for (size_t j = 0; j < i && e->lsn < 0; j++)
			if (tab[j].lsn >= 0 && tab[j].accepts && same_addr(&tab[j].local, tab[j].llen, &e->local))
				e->lsn = (int)sys_fcntl(tab[j].lsn, F_DUPFD_CLOEXEC, 0);
		if (e->lsn >= 0)
			continue;
		s = new_socket(e);	/* the listener is gone: a temporary one */
		if (sys_failed(s))
			continue;
		if (bind_local((int)s, e) < 0 || sys_failed(sys_call2(__NR_listen, s, 128))) {
			sys_close((int)s);
			ret = -1;
			continue;
		}
		e->lsn = (int)s;
	}
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (ours(e) && e->kind == SK_CONN && e->family != AF_UNIX && e->internal && !e->accepts &&
		    connect_tcp(e) < 0)
			ret = -1;
	}
	until = now_ms() + WAIT_MS;
	do {
		waiting = 0;
		for (size_t i = 0; i < ntab; i++) {
			struct sk_ent *e = &tab[i];
			struct sockaddr_storage pa;
			socklen_t plen = sizeof(pa);
			uint64_t key;
			long c;

			if (!ours(e) || e->kind != SK_CONN || e->family == AF_UNIX || !e->internal || !e->accepts ||
			    e->nfd >= 0)
				continue;
			e->nfd = take_fd(tag_of(TAG_ACC, e->ino, 0));
			if (e->nfd >= 0)
				continue;
			waiting++;
			if (e->lsn < 0)
				continue;
			c = sys_call4(__NR_accept4, e->lsn, &pa, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (sys_failed(c))
				continue;
			key = read_hello((int)c);
			sys_fcntl((int)c, F_SETFL, 0);
			for (size_t j = 0; j < ntab && key; j++) {
				struct sk_ent *f = &tab[j];

				if (ours(f) && f->kind == SK_CONN && f->internal && f->accepts && f->nfd < 0 &&
				    f->family != AF_UNIX && f->ino == key) {
					f->nfd = (int)c;
					c = -1;
					break;
				}
			}
			if (c >= 0 && key)	/* another process's: forward it */
				share_broadcast(tag_of(TAG_ACC, key, 0), NULL, 0, (int[]){ (int)c }, 1);
			if (c >= 0)
				sys_close((int)c);
		}
		if (waiting)
			nap();
	} while (waiting && now_ms() < until);
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (e->lsn >= 0)
			sys_close(e->lsn);
		e->lsn = -1;
		if (!ours(e))
			continue;
		if (e->kind == SK_CONN && e->family != AF_UNIX && e->internal && e->nfd < 0) {
			log_err("fd %d: TCP connection to %s not remade", e->fd, addr_str(&e->peer, e->plen, a, sizeof(a)));
			ret = -1;
			continue;
		}
		if (e->kind == SK_OTHER && e->nfd >= 0 && e->plen > sizeof(sa_family_t) && e->type == SOCK_DGRAM) {
			long r = sys_call3(__NR_connect, e->nfd, &e->peer, e->plen);

			if (sys_failed(r))
				log_syserr((int)-r, "fd %d: reconnect to %s", e->fd, addr_str(&e->peer, e->plen, a, sizeof(a)));
		}
		if (e->nfd >= 0 && (e->kind == SK_OTHER || e->family != AF_UNIX)) {
			if (e->kind == SK_CONN)
				opts_room(e->nfd);
			send_end(e, e->nfd);
			sys_close(e->nfd);
			e->nfd = -1;
		}
	}
	return ret;
}

static int want_restart_echo(const struct sk_ent *e)
{
	if (!ours(e) || e->kind != SK_CONN)
		return 0;
	return e->family == AF_UNIX ? e->peer_alive : e->internal;
}

static int fd_new(const struct sk_ent *e)
{
	return e->nfd;
}

static int sk_restart_resume(void)
{
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		e->nfd = -1;
		if (e->outer || e->same_as >= 0)
			continue;
		e->nfd = take_fd(tag_of(TAG_END, e->ino, 0));
		if (e->nfd < 0) {
			log_warn("fd %d: socket %llu was not remade; it stays closed", e->fd, (unsigned long long)e->ino);
			ret = -1;
		}
	}
	for (size_t i = 0; i < ntab; i++)
		if (want_restart_echo(&tab[i]) && tab[i].nfd >= 0 && tab[i].family == AF_UNIX)
			opts_room(tab[i].nfd);
	if (echo_all(want_restart_echo, fd_new) < 0)
		ret = -1;
	for (size_t i = 0; i < ntab; i++) {
		struct sk_ent *e = &tab[i];

		if (e->nfd < 0)
			continue;
		if (e->owner) {
			opts_late(e->nfd, e);
			owner_set(e->nfd, &e->own, 1);
		}
		sys_fcntl(e->nfd, F_SETFL, (long)(e->flags & (O_NONBLOCK | O_ASYNC)));
	}
	for (size_t i = 0; i < ntab; i++) {
		const struct sk_ent *e = &tab[i];
		int src = e->same_as >= 0 ? tab[e->same_as].nfd : e->nfd;
		long r;

		if (src < 0)
			continue;
		r = sys_dup3(src, e->fd, (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
		if (sys_failed(r)) {
			log_syserr((int)-r, "fd %d: dup3", e->fd);
			ret = -1;
		}
	}
	for (size_t i = 0; i < ntab; i++) {
		if (tab[i].nfd >= 0)
			sys_close(tab[i].nfd);
		tab[i].nfd = -1;
	}
	drop_data();
	log_debug("%zu socket fds restored", ntab);
	return ret;
}

const struct cryo_plugin socket_plugin = {
	.name = "socket",
	.api = CRYO_PLUGIN_API,
	.pre_ckpt = sk_pre_ckpt,
	.elect = sk_elect,
	.drain = sk_drain,
	.refill = sk_refill,
	.resume = sk_resume,
	.restart = sk_restart,
	.restart_share = sk_restart_share,
	.restart_refill = sk_restart_refill,
	.restart_resume = sk_restart_resume,
};
