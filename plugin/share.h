/* Passing open files between the processes of a restarted computation.
 *
 * After a restart, an object several processes shared (a pipe, a socket
 * pair, a pty) is created once, by its owner, and sent to the others as
 * fds over Unix datagram sockets (SCM_RIGHTS). Each restarted process binds
 * one, in the abstract namespace, named by the computation id and its
 * virtual pid, before it registers with the coordinator: by the RESTART
 * barrier every process of the group can be reached. A message is a tag
 * (what it is about, e.g. a pipe's saved inode), a few bytes and up to
 * SHARE_MAX_FDS fds.
 *
 * A message sent in one restart hook is received in a later one: the
 * barrier between them guarantees it has arrived (a Unix datagram is queued
 * at the receiver when sendmsg returns). Received fds are moved above every
 * fd number the program had (share_note_fd), so restoring the program's
 * fds can never close one by accident.
 *
 * Runs on the checkpoint thread with the user threads parked: no malloc. */
#ifndef CRYO_PLUGIN_SHARE_H
#define CRYO_PLUGIN_SHARE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHARE_MAX_FDS 64
#define SHARE_MAX_DATA 4096

/* Binds this process's socket. 0, or -1 after logging (sends to this
 * process then fail, and the objects it should have received are lost). */
int share_open(void);
/* Closes it and drops whatever was not taken (fds closed). */
void share_close(void);
/* fd is a number the program uses: received fds stay above it. */
void share_note_fd(int fd);

/* Sends one message to the process with virtual pid vpid (this one
 * included). 0, or -1 after logging. */
int share_send(pid_t vpid, uint64_t tag, const void *data, size_t len, const int *fds, unsigned nfds);
/* The same to every process of the restarted group, this one included.
 * 0, or -1 if any send failed (logged). */
int share_broadcast(uint64_t tag, const void *data, size_t len, const int *fds, unsigned nfds);

/* A tag: a 64-bit FNV-1a hash of n words (a kind, then what names the
 * object: a device and inode, a pty number, an owner...). */
uint64_t share_tag(const uint64_t *v, size_t n);
/* Puts src onto fd (dup3, close-on-exec if flags has O_CLOEXEC), logging
 * a failure. 0, or -1. */
int share_place(int src, int fd, unsigned flags);

/* Takes the next received message with this tag: up to cap bytes into
 * data, its fds (close-on-exec, the caller's to close) into fds (at most
 * maxfds; any more are closed) and their count into *nfds. Returns the
 * message's length, or -1 when no message with this tag has arrived. */
long share_take(uint64_t tag, void *data, size_t cap, int *fds, unsigned maxfds, unsigned *nfds);

#endif /* CRYO_PLUGIN_SHARE_H */
