/* The fd plugin, restart side: the table fd.c saved (plugin/fd/fd-priv.h)
 * becomes open fds again, on the same numbers, with the same flags,
 * offsets and close-on-exec flags. Runs on the checkpoint thread of the
 * restarted process with the user threads parked: raw syscalls, no malloc.
 *
 *   restart         reopen what this process owns: files, directories and
 *                   devices by path, deleted files and memfds from their
 *                   saved content; the outer stdio by the stdio policy;
 *                   check files against what they were (changed, vanished)
 *   restart_share   ask the owner of each shared description for it
 *                   (strict mode: refuse the restart here if a file vanished)
 *   restart_refill  owners answer with the fd
 *   restart_resume  take the answers, dup them onto their numbers; put back
 *                   the program's F_SETOWN values
 *
 * The stdio policy: an fd that is one of the computation's outer stdio
 * objects (stdio.h) is the restarting side's: at 0, 1 and 2 it is left as
 * cryo_restart passed it down the tree, above 2 it becomes a copy of
 * cryo_restart's matching stdio. With --keep-stdio (CRYO_RESTART_F_KEEP_STDIO)
 * the original files and terminals are reopened by path instead. doc/files.md
 * says all this for users. */
#define LOG_PREFIX "fd: "
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_exec.h"
#include "plugin/fd/fd-priv.h"
#include "plugin/fd/fdinfo.h"
#include "plugin/fd/stdio.h"
#include "plugin/share.h"

#define log_syswarn(e, fmt, ...) log_at(LOG_WARN, LOG_WHERE, (e), fmt, ##__VA_ARGS__)

enum action {
	ACT_NONE,	/* not this plugin's, or not restored (warned) */
	ACT_LEAVE,	/* outer stdio at 0-2: what cryo_restart passed down */
	ACT_OUTER,	/* outer stdio above 2: a copy of cryo_restart's */
	ACT_LOCAL,	/* reopened here */
	ACT_REMOTE,	/* received from its owner */
};

struct share_req {
	int32_t vpid;	/* the requester */
	int32_t fd;
};

static int keep_stdio, strict;
static int restarting_stdio[3] = { -1, -1, -1 };
static int nvanished, first_vanished_fd;
static char first_vanished[256];

static enum action action_of(const struct fd_entry *e)
{
	if (e->outer >= 0) {
		if (keep_stdio && (e->kind == FD_FILE || e->kind == FD_DEV))
			return e->owned ? ACT_LOCAL : ACT_REMOTE;
		return e->fd <= 2 ? ACT_LEAVE : ACT_OUTER;
	}
	switch (e->kind) {
	case FD_FILE:
	case FD_DIR:
	case FD_DEV:
	case FD_DELETED:
	case FD_MEMFD:
		return e->owned ? ACT_LOCAL : ACT_REMOTE;
	default:
		return ACT_NONE;
	}
}

static unsigned open_flags(unsigned saved)
{
	return (saved & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC |
			 O_DIRECTORY | O_NOFOLLOW | O_LARGEFILE | O_PATH)) |
	       O_CLOEXEC | O_NOCTTY;
}

/* The path to reopen: /proc/OLDPID/... names the process's kernel pid of
 * today (another process's only once the pid map has come, at RESTART). */
static const char *entry_path(const struct fd_entry *e, char *buf, size_t cap)
{
	pid_t pid;

	if (!e->proc_off)
		return fd_path(e);
	pid = e->proc_vpid == vpid_self() ? (pid_t)sys_getpid() : vpid_to_real(e->proc_vpid);
	nolibc_snprintf(buf, cap, "/proc/%d%s", (int)pid, fd_path(e) + e->proc_off);
	return buf;
}

/* A /proc/PID path of another process: reopened at RESTART, with the map. */
static int late(const struct fd_entry *e)
{
	return e->proc_off && e->proc_vpid != vpid_self();
}

/* Moves fd to the lowest free number >= top (close-on-exec); the new fd or
 * -errno. fd is closed either way. */
static long lift(long fd, int top)
{
	long nfd;

	if (sys_failed(fd))
		return fd;
	nfd = sys_fcntl((int)fd, F_DUPFD_CLOEXEC, top);
	sys_close((int)fd);
	return nfd;
}

static void vanished(const struct fd_entry *e, const char *path)
{
	if (!nvanished++) {
		nolibc_strlcpy(first_vanished, path, sizeof(first_vanished));
		first_vanished_fd = e->fd;
	}
	if (!strict)
		log_warn("fd %d: %s vanished since the checkpoint; the fd is left closed", e->fd, path);
}

/* The changed-file policy: a warning naming the file, never a refusal. */
static void check_file(const struct fd_entry *e, int fd, const char *path)
{
	struct stat st;

	if (sys_failed(sys_fstat(fd, &st)))
		return;
	if ((uint64_t)st.st_ino != e->ino || (uint64_t)st.st_dev != e->dev) {
		log_warn("fd %d: %s was replaced since the checkpoint (another file has its name); reopened "
			 "at offset %llu", e->fd, path, e->pos);
	} else if (e->outer >= 0) {
		/* The user's output file (--keep-stdio) grows by nature, cryo's
		 * own log lines of the checkpoint included: only a loss counts. */
		if ((uint64_t)st.st_size < e->pos)
			log_warn("fd %d: %s is now shorter than the saved offset (%lld bytes, offset %llu)", e->fd,
				 path, (long long)st.st_size, e->pos);
	} else if ((uint64_t)st.st_size != e->size || (int64_t)st.st_mtim.tv_sec != e->mtime_sec ||
		   (int64_t)st.st_mtim.tv_nsec != e->mtime_nsec) {
		log_warn("fd %d: %s changed since the checkpoint (%llu bytes then, %lld now)%s", e->fd, path,
			 (unsigned long long)e->size, (long long)st.st_size,
			 (uint64_t)st.st_size < e->pos ? "; it is now shorter than the saved offset" : "");
	}
}

static long reopen_path(struct fd_entry *e, int top)
{
	char buf[FD_PATH_MAX + 32];
	const char *path = entry_path(e, buf, sizeof(buf));
	long fd = lift(sys_open(path, (int)open_flags(e->flags), 0), top);

	if (fd == -ENOENT && e->outer < 0) {
		vanished(e, path);
		return fd;
	}
	if (sys_failed(fd)) {
		if (e->outer >= 0)
			log_syswarn((int)-fd, "fd %d: the original stdio %s cannot be reopened; it is the "
				    "restarting side's", e->fd, path);
		else
			log_syswarn((int)-fd, "fd %d: reopen %s; the fd is left closed", e->fd, path);
		return fd;
	}
	/* /proc and /sys files change by nature: no warning about them */
	if (e->kind == FD_FILE && nolibc_strncmp(path, "/proc/", 6) && nolibc_strncmp(path, "/sys/", 5))
		check_file(e, (int)fd, path);
	if (e->kind != FD_DEV || e->pos)
		sys_lseek((int)fd, (long)e->pos, SEEK_SET);
	return fd;
}

/* Writes the saved content to fd, leaving holes where it was all zeros. */
static int write_content(const struct fd_entry *e, int fd)
{
	const char *p = (const char *)(uintptr_t)e->data_addr;
	uint64_t off = 0;
	long r;

	r = sys_ftruncate(fd, (long)e->size);
	if (sys_failed(r))
		return (int)r;
	if (e->size && !p)
		return -ENODATA;
	while (off < e->data_len) {
		size_t n = e->data_len - off < 65536 ? (size_t)(e->data_len - off) : 65536;

		if (n % 8 == 0 && nolibc_is_zero(p + off, n)) {
			off += n;
			continue;
		}
		r = sys_call4(__NR_pwrite64, fd, p + off, n, (long)off);
		if (r == -EINTR)
			continue;
		if (sys_failed(r))
			return (int)r;
		if (r == 0)
			return -EIO;
		off += (uint64_t)r;
	}
	return 0;
}

/* An unnamed file in dir: O_TMPFILE, or a unique name unlinked at once
 * where the file system has no O_TMPFILE. The fd or -errno. */
static long unnamed_file(const char *dir)
{
	char name[FD_PATH_MAX + 64];
	long fd = sys_open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd != -EOPNOTSUPP && fd != -EISDIR)
		return fd;
	for (int i = 0; i < 100; i++) {
		nolibc_snprintf(name, sizeof(name), "%s/.cryo-deleted-%d-%d", dir, (int)sys_getpid(), i);
		fd = sys_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd == -EEXIST)
			continue;
		if (!sys_failed(fd))
			sys_unlink(name);
		return fd;
	}
	return -EEXIST;
}

/* A deleted file or memfd made again from its content: unlinked, with the
 * same content, mode, flags and offset. The fd (>= top) or -errno. */
static long recreate(struct fd_entry *e, int top)
{
	char path[FD_PATH_MAX], dir[FD_PATH_MAX], self[48];
	const char *tmpdir = getenv("TMPDIR");
	const char *dirs[3];
	size_t n = fd_strip_deleted(fd_path(e)), dl;
	long t = -ENOENT, fd = -ENOENT;
	int i, r, in_place = 0;

	nolibc_memcpy(path, fd_path(e), n);
	path[n] = '\0';
	if (e->kind == FD_MEMFD) {
		fd_memfd_name(fd_path(e), dir, sizeof(dir));
		t = sys_memfd_create(dir, MFD_CLOEXEC | (e->seals & F_SEAL_SEAL ? 0 : MFD_ALLOW_SEALING));
	} else {
		dl = fd_dir_len(path, n);
		nolibc_memcpy(dir, path, dl);
		dir[dl] = '\0';
		dirs[0] = dir;
		dirs[1] = tmpdir && tmpdir[0] == '/' ? tmpdir : "/tmp";
		dirs[2] = "/tmp";
		for (i = 0; i < 3; i++) {
			t = unnamed_file(dirs[i]);
			if (!sys_failed(t))
				break;
		}
		in_place = i == 0;
	}
	if (sys_failed(t)) {
		log_syswarn((int)-t, "fd %d: cannot make the deleted file %s again (in its directory, $TMPDIR "
			    "or /tmp); the fd is left closed", e->fd, path);
		return t;
	}
	r = write_content(e, (int)t);
	if (r < 0) {
		log_syswarn(-r, "fd %d: write the saved content of %s", e->fd, path);
		sys_close((int)t);
		return r;
	}
	/* Reopen with the program's flags. Through a link under the old name
	 * when it is free, so that /proc/self/fd shows the old name again;
	 * otherwise through /proc/self/fd (a new description of the file). */
	nolibc_snprintf(self, sizeof(self), "/proc/self/fd/%d", (int)t);
	if (in_place && !sys_failed(sys_call5(__NR_linkat, AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW))) {
		fd = sys_open(path, (int)open_flags(e->flags), 0);
		sys_unlink(path);
	}
	if (sys_failed(fd))
		fd = sys_open(self, (int)open_flags(e->flags), 0);
	sys_close((int)t);
	if (sys_failed(fd)) {
		log_syswarn((int)-fd, "fd %d: reopen the new copy of %s", e->fd, path);
		return fd;
	}
	if (e->kind == FD_MEMFD && e->seals && !(e->seals == F_SEAL_SEAL))
		sys_fcntl((int)fd, F_ADD_SEALS, (long)e->seals);
	sys_call2(__NR_fchmod, fd, e->mode & 07777);
	sys_lseek((int)fd, (long)e->pos, SEEK_SET);
	return lift(fd, top);
}

static void warn_unrestored(const struct fd_entry *e)
{
	const char *what;

	switch (e->kind) {
	case FD_SOCKET:
		return;	/* plugin/socket's */
	case FD_UNKNOWN:
		what = "of a kind cryo does not know";
		break;
	default:
		return;
	}
	log_warn("fd %d (%s) is not restored: %s", e->fd, e->path_len ? fd_path(e) : "?", what);
}

/* Puts src on the fd numbers of entry i and of every entry sharing it. */
static void place_group(size_t i, int src)
{
	for (size_t j = i; j < fd_ntab; j++) {
		struct fd_entry *e = &fd_tab[j];
		long r;

		if (j != i && e->same_as != (int)i)
			continue;
		if (e->fd == src) {
			e->restored = 1;
			continue;
		}
		r = sys_dup3(src, e->fd, (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
		if (sys_failed(r))
			log_syserr((int)-r, "fd %d: dup3", e->fd);
		else
			e->restored = 1;
	}
}

/* Closes the fds of group i that are still cryo_restart's stdio. */
static void close_group_stdio(size_t i)
{
	for (size_t j = i; j < fd_ntab; j++)
		if ((j == i || fd_tab[j].same_as == (int)i) && fd_tab[j].fd <= 2 && !fd_tab[j].restored)
			sys_close(fd_tab[j].fd);
}

static long open_local(struct fd_entry *e, int top)
{
	if (e->kind == FD_DELETED || e->kind == FD_MEMFD)
		return recreate(e, top);
	return reopen_path(e, top);
}

/* Above every fd number of the table. */
static int top_fd(void)
{
	int top = 3;

	for (size_t i = 0; i < fd_ntab; i++)
		if (fd_tab[i].fd >= top)
			top = fd_tab[i].fd + 1;
	return top;
}

/* Strict mode, before anything is opened: the files this process would
 * reopen that are gone. Their count (the first one named for the refusal). */
static int strict_check(void)
{
	char buf[FD_PATH_MAX + 32];
	struct stat st;

	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		const char *path;

		if (e->same_as >= 0 || e->outer >= 0 || action_of(e) != ACT_LOCAL || late(e) ||
		    (e->kind != FD_FILE && e->kind != FD_DIR && e->kind != FD_DEV))
			continue;
		path = entry_path(e, buf, sizeof(buf));
		if (sys_call4(__NR_newfstatat, AT_FDCWD, path, &st, 0) == -ENOENT)
			vanished(e, path);
	}
	return nvanished;
}

int fd_restart(void)
{
	const struct cryo_restart_info *ri = &cryo_restart_info_g;
	int top;
	size_t i;

	keep_stdio = (ri->flags & CRYO_RESTART_F_KEEP_STDIO) != 0;
	strict = (ri->flags & CRYO_RESTART_F_STRICT_FILES) != 0;
	nvanished = 0;
	top = top_fd();
	for (i = 0; i < fd_ntab; i++) {
		fd_tab[i].tmp = -1;
		fd_tab[i].restored = 0;
		share_note_fd(fd_tab[i].fd);
	}
	if (strict && strict_check() > 0)
		return 0;	/* refused at RESTART, when the group can be stopped as one */
	/* Everything is opened above every saved number first, then moved
	 * into place: a fresh open must not take a number another entry needs. */
	for (i = 0; i < 3; i++) {
		long c = sys_fcntl((int)i, F_DUPFD_CLOEXEC, top);

		restarting_stdio[i] = sys_failed(c) ? -1 : (int)c;
	}
	/* From now on the restarting side's stdio is the user's (unless the
	 * originals are kept): the next checkpoint must see it so. */
	if (!keep_stdio) {
		for (i = 0; i < 3; i++) {
			struct stat st;

			stdio_set_outer((int)i, restarting_stdio[i] >= 0 && !sys_failed(sys_fstat(restarting_stdio[i], &st))
							? &st : NULL);
		}
		exec_env_set("CRYO_STDIO", stdio_value());	/* for programs exec'd from now on */
	}
	for (i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		long fd = -1;

		if (e->same_as >= 0) {
			log_debug("fd %d: as fd %d", e->fd, fd_tab[e->same_as].fd);
			continue;
		}
		log_debug("fd %d: %s, kind %d, action %d, outer %d, owner %d (its fd %d)", e->fd,
			  e->path_len ? fd_path(e) : "?", e->kind, (int)action_of(e), e->outer, (int)e->owner_vpid,
			  e->owner_fd);
		switch (action_of(e)) {
		case ACT_LOCAL:
			if (late(e))
				break;
			fd = open_local(e, top);
			/* --keep-stdio could not: the restarting side's, as without it */
			if (sys_failed(fd) && e->outer >= 0 && e->fd > 2 && restarting_stdio[e->outer] >= 0)
				fd = sys_fcntl(restarting_stdio[e->outer], F_DUPFD_CLOEXEC, top);
			else if (sys_failed(fd) && e->outer >= 0)
				e->restored = 1;
			break;
		case ACT_OUTER:
			if (restarting_stdio[e->outer] >= 0)
				fd = sys_fcntl(restarting_stdio[e->outer], F_DUPFD_CLOEXEC, top);
			else
				log_warn("fd %d: a copy of the outer stdio %d, which cryo_restart does not have; "
					 "left closed", e->fd, e->outer);
			break;
		case ACT_NONE:
			if (e->outer >= 0 && keep_stdio)
				log_warn("fd %d: the original stdio (%s) cannot be reopened; it is the "
					 "restarting side's", e->fd, fd_path(e));
			else
				warn_unrestored(e);
			if (e->outer < 0)
				break;
			if (e->fd > 2 && restarting_stdio[e->outer] >= 0)
				fd = sys_fcntl(restarting_stdio[e->outer], F_DUPFD_CLOEXEC, top);
			else if (e->fd <= 2)
				e->restored = 1;	/* left as cryo_restart gave it */
			break;
		case ACT_LEAVE:
			e->restored = 1;
			break;
		case ACT_REMOTE:
			break;
		}
		e->tmp = sys_failed(fd) ? -1 : (int)fd;
	}
	for (i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		enum action a = action_of(e);

		if (e->same_as >= 0)
			continue;
		if (e->tmp >= 0)
			place_group(i, e->tmp);
		else if (e->restored)
			place_group(i, e->fd);	/* the others of a group left at 0-2 */
		if ((a == ACT_LOCAL && !late(e)) || a == ACT_OUTER)
			close_group_stdio(i);	/* vanished: no stand-in */
	}
	for (i = 0; i < 3; i++)
		if (!(fd_stdio_open & (1u << i)))
			sys_close((int)i);	/* closed at the checkpoint: closed again */
	for (i = 0; i < fd_ntab; i++)
		if (fd_tab[i].tmp >= 0) {
			sys_close(fd_tab[i].tmp);
			fd_tab[i].tmp = -1;
		}
	for (i = 0; i < 3; i++)
		if (restarting_stdio[i] >= 0) {
			sys_close(restarting_stdio[i]);
			restarting_stdio[i] = -1;
		}
	log_debug("%zu fds restored or waiting for their owner", fd_ntab);
	return 0;
}

int fd_restart_share(void)
{
	int ret = 0;

	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		long fd;

		if (e->same_as >= 0 || action_of(e) != ACT_LOCAL || !late(e) || (strict && nvanished))
			continue;
		fd = reopen_path(e, top_fd());
		if (!sys_failed(fd)) {
			place_group(i, (int)fd);
			sys_close((int)fd);
		}
		close_group_stdio(i);
	}
	if (strict && nvanished) {
		/* Every process is registered by now: leaving makes the
		 * coordinator stop the whole group before any program runs. */
		log_err("restart refused (strict files): %s (fd %d)%s vanished since the checkpoint",
			first_vanished, first_vanished_fd, nvanished > 1 ? " and other files" : "");
		sys_exit_group(1);
	}
	for (size_t i = 0; i < fd_ntab; i++) {
		const struct fd_entry *e = &fd_tab[i];
		struct share_req req = { .vpid = vpid_self(), .fd = e->fd };

		if (e->same_as >= 0 || action_of(e) != ACT_REMOTE)
			continue;
		if (share_send(e->owner_vpid, fd_tag(FD_TAG_REQUEST, e->owner_vpid, e->owner_fd), &req,
			       sizeof(req), NULL, 0) < 0)
			ret = -1;
	}
	return ret;
}

int fd_restart_refill(void)
{
	pid_t self = vpid_self();
	int ret = 0;

	for (size_t i = 0; i < fd_ntab; i++) {
		const struct fd_entry *e = &fd_tab[i];
		struct share_req req;
		unsigned nf;

		if (e->same_as >= 0 || !e->marked || action_of(e) != ACT_LOCAL)
			continue;
		while (share_take(fd_tag(FD_TAG_REQUEST, self, e->fd), &req, sizeof(req), NULL, 0, &nf) >= 0) {
			int32_t status = e->restored ? 0 : ENOENT;

			if (share_send(req.vpid, fd_tag(FD_TAG_REPLY, self, e->fd), &status, sizeof(status),
				       &e->fd, e->restored ? 1 : 0) < 0)
				ret = -1;
		}
	}
	return ret;
}

int fd_restart_resume(void)
{
	int top = top_fd();
	size_t i;

	for (i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		int32_t status = 0;
		unsigned nf = 0;
		long n, fd = -1;
		int got;

		if (e->same_as >= 0 || action_of(e) != ACT_REMOTE)
			continue;
		n = share_take(fd_tag(FD_TAG_REPLY, e->owner_vpid, e->owner_fd), &status, sizeof(status), &got, 1,
			       &nf);
		if (n >= 0 && nf == 1) {
			place_group(i, got);
			sys_close(got);
			continue;
		}
		if (n >= 0) {
			log_warn("fd %d: process %d, which owns %s, could not reopen it; the fd is left closed",
				 e->fd, (int)e->owner_vpid, fd_path(e));
		} else if (e->kind == FD_DELETED || e->kind == FD_MEMFD) {
			log_warn("fd %d: process %d, which owns %s, did not send it; the fd is left closed",
				 e->fd, (int)e->owner_vpid, fd_path(e));
		} else {
			log_warn("fd %d: process %d, which owns %s, did not send it; reopened on its own (its "
				 "offset is no longer shared)", e->fd, (int)e->owner_vpid, fd_path(e));
			fd = reopen_path(e, top);
			if (!sys_failed(fd)) {
				place_group(i, (int)fd);
				sys_close((int)fd);
			}
		}
		if (e->outer < 0)
			close_group_stdio(i);	/* the user's stdio stays where it is */
	}
	fd_owners_back(1);
	return 0;
}
