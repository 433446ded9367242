/* What the kernel's socket diagnostics (NETLINK_SOCK_DIAG, the interface
 * behind ss(8)) say about the sockets of this network namespace: for each
 * socket its inode, state, addresses, queue lengths and, for a Unix socket,
 * its peer's inode. The socket plugin reads it at DRAIN to learn which end
 * of a connection is which, a listener's backlog and who accepted what.
 * Raw syscalls, no allocation: safe with the threads parked. */
#ifndef CRYO_PLUGIN_SOCKET_DIAG_H
#define CRYO_PLUGIN_SOCKET_DIAG_H
#include <stddef.h>
#include <stdint.h>

struct diag_sock {
	uint64_t ino, peer_ino;	/* peer_ino: Unix only, 0 if none */
	uint8_t family, state;	/* AF_*, TCP_* (Unix: TCP_LISTEN / TCP_ESTABLISHED / TCP_CLOSE) */
	uint16_t sport, dport;	/* host order */
	uint32_t src[4], dst[4];	/* network order, as the kernel gives them */
	uint32_t rqueue, wqueue;	/* a listener: queued connections, backlog */
};

/* Appends the TCP sockets of family (AF_INET or AF_INET6), or the Unix
 * sockets (AF_UNIX), to out[*n..max). 0, or -1 after logging. */
int diag_dump(int family, struct diag_sock *out, size_t *n, size_t max);

#endif /* CRYO_PLUGIN_SOCKET_DIAG_H */
