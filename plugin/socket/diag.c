/* Socket diagnostics through NETLINK_SOCK_DIAG (see diag.h): one dump
 * request per family, the answers parsed in place from a stack buffer.
 * inet_diag gives a TCP socket's addresses, state and inode (a listener's
 * backlog in wqueue); unix_diag gives a Unix socket's inode, its peer's
 * (UDIAG_SHOW_PEER) and a listener's backlog (UDIAG_SHOW_RQLEN). Both work
 * unprivileged. */
#define LOG_PREFIX "socket: "
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "plugin/socket/diag.h"

static void take_inet(const struct inet_diag_msg *m, struct diag_sock *d)
{
	d->ino = m->idiag_inode;
	d->family = m->idiag_family;
	d->state = m->idiag_state;
	d->sport = ntohs(m->id.idiag_sport);
	d->dport = ntohs(m->id.idiag_dport);
	nolibc_memcpy(d->src, m->id.idiag_src, sizeof(d->src));
	nolibc_memcpy(d->dst, m->id.idiag_dst, sizeof(d->dst));
	d->rqueue = m->idiag_rqueue;
	d->wqueue = m->idiag_wqueue;
}

static void take_unix(const struct unix_diag_msg *m, size_t len, struct diag_sock *d)
{
	const struct nlattr *a = (const void *)(m + 1);
	size_t left = len - sizeof(*m);

	d->ino = m->udiag_ino;
	d->family = AF_UNIX;
	d->state = m->udiag_state;
	while (left >= sizeof(*a) && a->nla_len >= sizeof(*a) && (size_t)a->nla_len <= left) {
		const void *p = (const char *)a + NLA_HDRLEN;

		if (a->nla_type == UNIX_DIAG_PEER && a->nla_len >= NLA_HDRLEN + 4)
			d->peer_ino = *(const uint32_t *)p;
		if (a->nla_type == UNIX_DIAG_RQLEN && a->nla_len >= NLA_HDRLEN + sizeof(struct unix_diag_rqlen)) {
			d->rqueue = ((const struct unix_diag_rqlen *)p)->udiag_rqueue;
			d->wqueue = ((const struct unix_diag_rqlen *)p)->udiag_wqueue;
		}
		left -= (size_t)NLA_ALIGN(a->nla_len) < left ? (size_t)NLA_ALIGN(a->nla_len) : left;
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

int diag_dump(int family, struct diag_sock *out, size_t *n, size_t max)
{
	struct {
		struct nlmsghdr h;
		union {
			struct inet_diag_req_v2 in;
			struct unix_diag_req un;
		};
	} req;
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	char buf[32768] __attribute__((aligned(8)));
	long s, r;
	int ret = -1, done = 0;

	s = sys_call3(__NR_socket, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (sys_failed(s)) {
		log_syserr((int)-s, "netlink socket for socket diagnostics");
		return -1;
	}
	nolibc_memset(&req, 0, sizeof(req));
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	if (family == AF_UNIX) {
		req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.un));
		req.un.sdiag_family = AF_UNIX;
		req.un.udiag_states = ~0u;
		req.un.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
	} else {
		req.h.nlmsg_len = NLMSG_LENGTH(sizeof(req.in));
		req.in.sdiag_family = (uint8_t)family;
		req.in.sdiag_protocol = IPPROTO_TCP;
		req.in.idiag_states = ~0u;
	}
	r = sys_call6(__NR_sendto, s, (long)&req, req.h.nlmsg_len, 0, (long)&nl, sizeof(nl));
	if (sys_failed(r)) {
		log_syserr((int)-r, "ask for socket diagnostics");
		goto out;
	}
	while (!done) {
		const struct nlmsghdr *h;
		long len = sys_call6(__NR_recvfrom, s, (long)buf, sizeof(buf), 0, 0, 0);

		if (sys_failed(len)) {
			log_syserr((int)-len, "read socket diagnostics");
			goto out;
		}
		if (len == 0)
			break;
		for (h = (const void *)buf; NLMSG_OK(h, (unsigned long)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				log_syserr(-e->error, "socket diagnostics of family %d", family);
				goto out;
			}
			if (*n >= max)
				continue;
			nolibc_memset(&out[*n], 0, sizeof(out[*n]));
			if (family == AF_UNIX)
				take_unix(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, &out[*n]);
			else
				take_inet(NLMSG_DATA(h), &out[*n]);
			(*n)++;
		}
	}
	ret = 0;
out:
	sys_close((int)s);
	return ret;
}
