/* Pure helpers of the fd plugin: parsing what /proc tells about an fd,
 * sorting an fd into what restores it, the tags of the messages that pass
 * shared descriptions between restarted processes, and size settings. No
 * system calls, no allocation, async-signal-safe; unit-tested in
 * test/unit/plugin/test_fd.c. */
#ifndef CRYO_PLUGIN_FD_FDINFO_H
#define CRYO_PLUGIN_FD_FDINFO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Parses the "pos:" and "flags:" lines of /proc/PID/fdinfo/N. 0, or -1 if
 * either is missing. */
int fd_parse_fdinfo(const char *text, unsigned long long *pos, unsigned *flags);

/* What an fd's /proc/self/fd link says it is, before fstat is asked. */
enum fd_link {
	FD_LINK_PATH = 1,	/* an absolute path: a file, directory or device */
	FD_LINK_DELETED,	/* an absolute path ending in " (deleted)" */
	FD_LINK_MEMFD,		/* "/memfd:NAME (deleted)" */
	FD_LINK_PIPE,		/* "pipe:[ino]" */
	FD_LINK_SOCKET,		/* "socket:[ino]" */
	FD_LINK_ANON,		/* "anon_inode:...": event fds, epoll, pidfd, ... */
	FD_LINK_PTY,		/* "/dev/ptmx", "/dev/pts/..." */
	FD_LINK_OTHER,		/* anything else (empty, relative, unknown) */
};
enum fd_link fd_classify_link(const char *link);

/* Length of link without its " (deleted)" suffix (the whole length when it
 * has none). */
size_t fd_strip_deleted(const char *link);

/* Length of the directory part of path[0..len): up to, not including, the
 * last '/', but 1 for "/x" (the root). 0 when path has no '/'. */
size_t fd_dir_len(const char *path, size_t len);

/* The memfd name of a "/memfd:NAME (deleted)" link, copied into name
 * (always terminated; at most 249 bytes, memfd_create's limit). */
void fd_memfd_name(const char *link, char *name, size_t cap);

/* "/proc/PID/...": the offset of what follows the pid (the '/' after it,
 * or the end) and the pid in *pid; else 0. After a restart such a path is
 * reopened under the process's new kernel pid. */
size_t fd_proc_pid_off(const char *path, pid_t *pid);

/* Parses a byte count: decimal digits with an optional K, M or G (powers of
 * 1024). 0, or -1 if malformed or too large. */
int fd_parse_size(const char *s, uint64_t *out);

/* Tags of plugin/share.h messages about one shared open file description,
 * named by its owner's virtual pid and the owner's lowest fd number on it:
 * a request (to the owner) and the reply (with the fd, to the requester).
 * The top byte is 'F' so that other plugins' tags (pipe inodes) never
 * collide. */
#define FD_TAG_REQUEST 1u
#define FD_TAG_REPLY 2u
uint64_t fd_tag(unsigned type, pid_t owner_vpid, int owner_fd);

#endif /* CRYO_PLUGIN_FD_FDINFO_H */
