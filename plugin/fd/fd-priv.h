/* The fd plugin's table of open files, shared by plugin/fd/fd.c (built at
 * ELECT and DRAIN of a checkpoint) and plugin/fd/reopen.c (used after a
 * restart). The table and the path pool live in ckpt_mem memory, so the
 * image holds them and a restarted process finds them where they were.
 * Private to plugin/fd. */
#ifndef CRYO_PLUGIN_FD_FD_PRIV_H
#define CRYO_PLUGIN_FD_FD_PRIV_H
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/types.h>

#define FD_MAX 65536			/* entries in the table */
#define FD_POOL_MAX (16ul << 20)	/* bytes of link text */
#define FD_PATH_MAX 4096

enum fd_kind {
	FD_FILE = 1,	/* regular file: reopened by path */
	FD_DIR,		/* directory: reopened by path */
	FD_DEV,		/* character or block device, not a pty: reopened by path */
	FD_DELETED,	/* regular file deleted while open: content in the image */
	FD_MEMFD,	/* memfd: content in the image */
	FD_ELSEWHERE,	/* pipe, FIFO (plugin/pipe), event fd (plugin/event) */
	FD_SOCKET,	/* not restored yet (a warning) */
	FD_PTY,		/* ptmx, pts, /dev/tty: plugin/pty's */
	FD_UNKNOWN,	/* not restored (a warning) */
};

struct fd_entry {
	int fd;
	int kind;		/* enum fd_kind */
	int same_as;		/* this process's first entry on the same description, or -1 */
	int outer;		/* the outer stdio object it is (0, 1, 2; stdio.h), or -1 */
	unsigned flags;		/* from fdinfo, O_CLOEXEC included */
	uint8_t tty;		/* a terminal (TCGETS works) */
	uint8_t marked;		/* F_SETOWN'ed at ELECT: the election decides its owner */
	uint8_t owned;		/* this process reopens it (owner, or not shared) */
	uint8_t restored;	/* restart: on its fd number now */
	unsigned long long pos;
	/* identity at checkpoint time, for the changed/vanished policy */
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec;
	uint32_t mode;
	uint32_t path_off, path_len;	/* the /proc/self/fd link, in the pool */
	uint32_t proc_off;	/* a "/proc/PID/..." path: the length of "/proc/PID", else 0 */
	pid_t proc_vpid;	/* and PID as a virtual pid */
	uint32_t seals;		/* memfd: F_GET_SEALS */
	struct f_owner_ex prog_own;	/* the program's F_GETOWN_EX (plugin/owner.h); pid 0: none */
	pid_t owner_vpid;	/* the elected owner of the description */
	int owner_fd;		/* the owner's lowest fd on it (with owner_vpid: the share tag) */
	uint64_t data_addr, data_len, map_len;	/* content read by the owner at DRAIN */
	int tmp;		/* restart: the reopened fd before it moves into place */
};

extern struct fd_entry *fd_tab;
extern char *fd_pool;
extern size_t fd_ntab;
extern unsigned fd_stdio_open;	/* bit i: fd i (0-2) was open at the checkpoint */

static inline const char *fd_path(const struct fd_entry *e)
{
	return fd_pool + e->path_off;
}

/* fd.c: puts back the program's F_SETOWN values (after a checkpoint, on
 * the descriptions marked; after a restart, on those reopened) and unmaps
 * the saved content of deleted files. */
void fd_owners_back(int restarted);

/* reopen.c: the restart hooks (see plugin.h). */
int fd_restart(void);
int fd_restart_share(void);
int fd_restart_refill(void);
int fd_restart_resume(void);

#endif /* CRYO_PLUGIN_FD_FD_PRIV_H */
