/* Electing one owner per open file description across the processes of
 * the computation, with F_SETOWN (doc/plugins.md, "The shared-fd ownership
 * rule"): at SUSPEND every process reads the program's own value
 * (owner_get), at ELECT each sets its own pid (owner_mark), at DRAIN the
 * one that reads its pid back owns the description (owner_read), and at
 * RESUME or after a restart the program's value goes back (owner_set).
 * Raw syscalls: safe with the threads parked. */
#ifndef CRYO_PLUGIN_OWNER_H
#define CRYO_PLUGIN_OWNER_H
#include <fcntl.h>
#include <stdint.h>

/* The description's F_GETOWN_EX, pid virtual (a thread owner: kernel tid);
 * pid 0 if it cannot be read. */
void owner_get(int fd, struct f_owner_ex *o);
/* Marks the description as this process's. */
void owner_mark(int fd);
/* 1 if this process owns it; *owner = the owner's virtual pid. */
int owner_read(int fd, int32_t *owner);
/* Puts back a value from owner_get (pid translated; after a restart a
 * thread owner is dropped: its tid means nothing now). */
void owner_set(int fd, const struct f_owner_ex *o, int restarted);

#endif /* CRYO_PLUGIN_OWNER_H */
