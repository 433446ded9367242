/* Passing open files between restarted processes (see share.h).
 *
 * Transport: each process listens on a SOCK_SEQPACKET Unix socket in the
 * abstract namespace, "cryo-<computation id>-<virtual pid>". A message is
 * one connection: connect, one sendmsg (header, data, SCM_RIGHTS), close.
 * A connection to a listening socket is queued without an accept(), with
 * its data, up to the backlog (4096 here), so a sender never waits for a
 * receiver busy elsewhere; a datagram socket would block after
 * net.unix.max_dgram_qlen (10) messages. Every hook drains what has
 * arrived into a mailbox before it looks for a tag. */
#define LOG_PREFIX "share: "
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/share.h"

#define MAILBOX_MAX 4096
#define GROUP_MAX 4096

struct wire_hdr {
	uint64_t tag;
	uint32_t len;
	uint32_t magic;
};
#define WIRE_MAGIC 0x63727966u	/* "cryf" */

struct letter {
	uint64_t tag;
	uint32_t len;
	uint32_t nfds;
	int taken;
	int fds[SHARE_MAX_FDS];
	unsigned char data[SHARE_MAX_DATA];
};

static int sock = -1;
static int fd_floor = 3;
static struct letter *box;	/* MAILBOX_MAX letters, mmap'ed while open */
static size_t nbox;
static int quiet_refusal;	/* share_broadcast: a pid without a mailbox is no member */

static socklen_t name_of(pid_t vpid, struct sockaddr_un *a)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = nolibc_snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "cryo-%016llx-%d",
			    (unsigned long long)ckpt_comp_id(), (int)vpid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

void share_note_fd(int fd)
{
	if (fd >= fd_floor)
		fd_floor = fd + 1;
}

int share_open(void)
{
	struct sockaddr_un a;
	socklen_t len = name_of(vpid_self(), &a);
	int s;

	if (sock >= 0)
		return 0;
	if (!box) {
		void *p = mmap(NULL, MAILBOX_MAX * sizeof(*box), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED) {
			log_perror("mailbox");
			return -1;
		}
		box = p;
		nbox = 0;
	}
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		log_perror("socket");
		return -1;
	}
	if (bind(s, (struct sockaddr *)&a, len) < 0 || listen(s, 4096) < 0) {
		log_perror("bind/listen @%s", a.sun_path + 1);
		close(s);
		return -1;
	}
	sock = ckpt_reserve_fd(s);
	return 0;
}

/* Moves a received fd above every number the program uses. */
static int lift(int fd)
{
	int nfd;

	if (fd >= fd_floor)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, fd_floor);
	close(fd);
	return nfd;
}

static void read_conn(int c)
{
	union {
		char buf[CMSG_SPACE(SHARE_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct wire_hdr h;
	struct letter *l = nbox < MAILBOX_MAX ? &box[nbox] : NULL;
	struct iovec iov[2];
	struct msghdr m;
	struct cmsghdr *cm;
	ssize_t n;
	unsigned char spill[SHARE_MAX_DATA];

	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = l ? l->data : spill;
	iov[1].iov_len = SHARE_MAX_DATA;
	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	m.msg_control = cb.buf;
	m.msg_controllen = sizeof(cb.buf);
	n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
	if (n < (ssize_t)sizeof(h) || h.magic != WIRE_MAGIC || h.len != (size_t)n - sizeof(h))
		l = NULL;	/* malformed: its fds are closed below */
	if (l) {
		l->tag = h.tag;
		l->len = h.len;
		l->nfds = 0;
		l->taken = 0;
	} else if (n >= 0) {
		log_warn("dropping a %s message", nbox >= MAILBOX_MAX ? "surplus" : "malformed");
	}
	for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
		size_t k, cnt;
		int *fds = (int *)CMSG_DATA(cm);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < cnt; k++) {
			if (l && l->nfds < SHARE_MAX_FDS)
				l->fds[l->nfds++] = lift(fds[k]);
			else
				close(fds[k]);
		}
	}
	if (l)
		nbox++;
}

/* Accepts every queued connection and reads its message. */
static void drain_in(void)
{
	int c;

	if (sock < 0)
		return;
	while ((c = accept4(sock, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		read_conn(c);
		close(c);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK)
		log_perror("accept");
}

int share_send(pid_t vpid, uint64_t tag, const void *data, size_t len, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(SHARE_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct wire_hdr h = { .tag = tag, .len = (uint32_t)len, .magic = WIRE_MAGIC };
	struct sockaddr_un a;
	socklen_t alen = name_of(vpid, &a);
	struct iovec iov[2];
	struct msghdr m;
	int c, ret = -1;

	if (len > SHARE_MAX_DATA || nfds > SHARE_MAX_FDS) {
		log_err("message too large (%zu bytes, %u fds)", len, nfds);
		return -1;
	}
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0) {
		log_perror("socket");
		return -1;
	}
	if (connect(c, (struct sockaddr *)&a, alen) < 0) {
		if (errno == ECONNREFUSED && quiet_refusal) {
			/* No listener: not a restarted process of this group
			 * (a stand-in for an ended child, say). */
			log_debug("process %d has no mailbox: not in the restarted group", (int)vpid);
			ret = 0;
		} else {
			log_perror("process %d cannot be reached (@%s)", (int)vpid, a.sun_path + 1);
		}
		goto out;
	}
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = len ? 2 : 1;
	if (nfds) {
		struct cmsghdr *cm;

		memset(&cb, 0, sizeof(cb));
		m.msg_control = cb.buf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	if (sendmsg(c, &m, MSG_NOSIGNAL) != (ssize_t)(sizeof(h) + len))
		log_perror("send to process %d", (int)vpid);
	else
		ret = 0;
out:
	close(c);
	return ret;
}

int share_broadcast(uint64_t tag, const void *data, size_t len, const int *fds, unsigned nfds)
{
	static pid_t group[GROUP_MAX];
	size_t i, n = vpid_map_list(group, GROUP_MAX);
	int ret = 0;

	quiet_refusal = 1;
	for (i = 0; i < n; i++)
		if (share_send(group[i], tag, data, len, fds, nfds) < 0)
			ret = -1;
	quiet_refusal = 0;
	return ret;
}

long share_take(uint64_t tag, void *data, size_t cap, int *fds, unsigned maxfds, unsigned *nfds)
{
	size_t i;

	drain_in();
	for (i = 0; i < nbox; i++) {
		struct letter *l = &box[i];
		unsigned k;

		if (l->taken || l->tag != tag)
			continue;
		l->taken = 1;
		memcpy(data, l->data, l->len < cap ? l->len : cap);
		for (k = 0; k < l->nfds; k++) {
			if (k < maxfds)
				fds[k] = l->fds[k];
			else
				close(l->fds[k]);
		}
		*nfds = l->nfds < maxfds ? l->nfds : maxfds;
		return l->len;
	}
	return -1;
}

void share_close(void)
{
	size_t i;

	drain_in();
	if (sock >= 0)
		close(sock);
	sock = -1;
	if (!box)
		return;
	for (i = 0; i < nbox; i++) {
		unsigned k;

		if (box[i].taken)
			continue;
		for (k = 0; k < box[i].nfds; k++)
			close(box[i].fds[k]);
	}
	munmap(box, MAILBOX_MAX * sizeof(*box));
	box = NULL;
	nbox = 0;
	fd_floor = 3;
}

uint64_t share_tag(const uint64_t *v, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			h ^= (v[i] >> (8 * b)) & 0xff;
			h *= 1099511628211ull;
		}
	return h;
}

int share_place(int src, int fd, unsigned flags)
{
	long r = sys_dup3(src, fd, (flags & O_CLOEXEC) ? O_CLOEXEC : 0);

	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: dup3", fd);
		return -1;
	}
	return 0;
}
