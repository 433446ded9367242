/* The fd plugin, checkpoint side: what every fd of the process is, read at
 * ELECT and DRAIN with the threads parked (raw syscalls, no malloc) into a
 * table in ckpt_mem memory, which the image holds. plugin/fd/reopen.c uses
 * it after a restart; doc/files.md is the user's view of both.
 *
 * Observe, don't track: the table comes from /proc/self/fd (the link),
 * /proc/self/fdinfo (offset, flags) and fstat (identity, size, mtime), and
 * fds of one process that share an open file description are found with
 * kcmp(KCMP_FILE).
 *
 * Shared descriptions across processes (one open before fork, inherited):
 * one owner per description, elected with the F_SETOWN trick. At ELECT
 * every process sets F_SETOWN(its kernel pid) on the first fd of each
 * description it holds; at DRAIN the one that reads back its own pid owns
 * it, and every other one finds the owner's lowest fd on it (kcmp against
 * /proc/OWNER/fd): owner pid and fd name the description at restart, where
 * the owner reopens it and sends it to the others (plugin/share.h). The
 * program's own F_GETOWN_EX value is read at SUSPEND, before any process
 * marks, and put back at RESUME and after a restart (plugin/owner.h). The
 * pipe, event and pty plugins play the same trick on their fds; this one
 * marks only files, directories, devices, deleted files and memfds.
 *
 * Files deleted while open and memfds are saved by content: the owner reads
 * them at DRAIN into anonymous memory, which the image holds; beyond
 * CRYO_DELETED_MAX bytes (default 64 MiB) per file the checkpoint is
 * refused. */
#define LOG_PREFIX "fd: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/event/event.h"
#include "plugin/fd/fd-priv.h"
#include "plugin/fd/fd.h"
#include "plugin/fd/fdinfo.h"
#include "plugin/fd/stdio.h"
#include "plugin/fdscan.h"
#include "plugin/owner.h"
#include "plugin/pty/pty.h"

#define DELETED_MAX_DEFAULT (64ull << 20)
#define OWNERS_MAX 1024

struct fd_entry *fd_tab;
char *fd_pool;
size_t fd_ntab;
unsigned fd_stdio_open;

static size_t pool_used;
static uint64_t deleted_max = DELETED_MAX_DEFAULT;

/* The program's own F_GETOWN_EX values (non-zero ones), read at SUSPEND
 * (plugin/owner.h: pid virtual, a thread's tid kernel). */
static struct prog_owner {
	int fd;
	struct f_owner_ex o;
} owners[OWNERS_MAX];
static size_t nowners;

struct dirent64_ {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Calls fn(fd, arg) for each fd listed in the directory dir (a
 * /proc/PID/fd), in ascending order, until fn returns non-zero; that value,
 * 0 at the end, or -errno if dir cannot be read. */
static int each_fd(const char *dir, int (*fn)(int fd, int dirfd, void *arg), void *arg)
{
	char buf[4096];
	long n, dirfd;
	int r = 0;

	dirfd = sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (sys_failed(dirfd))
		return (int)dirfd;
	while (!r && (n = sys_getdents64((int)dirfd, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (!r && off < n) {
			struct dirent64_ *d = (void *)(buf + off);
			const char *p;
			int fd = 0;

			off += d->reclen;
			for (p = d->name; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (*p || p == d->name || fd == dirfd)
				continue;
			r = fn(fd, (int)dirfd, arg);
		}
	}
	sys_close((int)dirfd);
	return r;
}

static int fd_init(void)
{
	const char *s = getenv("CRYO_DELETED_MAX");

	stdio_init();
	if (s && *s && fd_parse_size(s, &deleted_max) < 0) {
		log_warn("CRYO_DELETED_MAX=%s is not a size (bytes, or with K, M, G); using 64M", s);
		deleted_max = DELETED_MAX_DEFAULT;
	}
	return 0;
}

static int note_owner(int fd, const struct stat *st, void *arg)
{
	struct f_owner_ex o;

	(void)st;
	(void)arg;
	if (nowners >= OWNERS_MAX)
		return 0;
	owner_get(fd, &o);
	if (o.pid) {
		owners[nowners].fd = fd;
		owners[nowners].o = o;
		nowners++;
	}
	return 0;
}

/* SUSPEND, threads running: memory for the table, and the program's own
 * F_GETOWN values before any process of the computation marks. */
static int fd_pre_ckpt(void)
{
	if (!fd_tab)
		fd_tab = ckpt_mem(FD_MAX * sizeof(*fd_tab));
	if (!fd_pool)
		fd_pool = ckpt_mem(FD_POOL_MAX);
	if (!fd_tab || !fd_pool)
		return -1;
	fd_ntab = 0;
	nowners = 0;
	fdscan_each(note_owner, NULL);
	return 0;
}

static int is_tty(int fd)
{
	struct termios t;

	return !sys_failed(sys_ioctl(fd, TCGETS, &t));
}

static int kind_of(struct fd_entry *e, const struct stat *st, int have_st, int fd)
{
	const char *link = fd_path(e);
	struct stat ps;

	if (have_st && pty_kind(st) != PTY_NONE)
		return FD_PTY;		/* plugin/pty's (the user's terminal: see describe) */
	switch (fd_classify_link(link)) {
	case FD_LINK_PIPE:
		return FD_ELSEWHERE;
	case FD_LINK_ANON:
		return event_link_kind(link) ? FD_ELSEWHERE : FD_UNKNOWN;
	case FD_LINK_SOCKET:
		return FD_SOCKET;
	case FD_LINK_PTY:
		return FD_PTY;
	case FD_LINK_MEMFD:
		return have_st && S_ISREG(st->st_mode) ? FD_MEMFD : FD_UNKNOWN;
	case FD_LINK_DELETED:
		if (!have_st)
			return FD_UNKNOWN;
		/* A real name that ends in " (deleted)" is still there. */
		if (!sys_failed(sys_call4(__NR_newfstatat, AT_FDCWD, link, &ps, 0)) &&
		    ps.st_dev == st->st_dev && ps.st_ino == st->st_ino)
			break;
		return S_ISREG(st->st_mode) ? FD_DELETED : FD_UNKNOWN;
	case FD_LINK_PATH:
		break;
	default:
		return FD_UNKNOWN;
	}
	if (!have_st)
		return FD_UNKNOWN;
	if (S_ISFIFO(st->st_mode))
		return FD_ELSEWHERE;	/* a named FIFO: the pipe plugin's */
	if (S_ISSOCK(st->st_mode))
		return FD_SOCKET;
	if (S_ISREG(st->st_mode))
		return FD_FILE;
	if (S_ISDIR(st->st_mode))
		return FD_DIR;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		e->tty = S_ISCHR(st->st_mode) && is_tty(fd);
		return FD_DEV;
	}
	return FD_UNKNOWN;
}

/* Fills the next entry of the table for fd. */
static int describe(int fd, int dirfd, void *arg)
{
	struct fd_entry *e;
	char name[32];
	struct stat st;
	long n;
	int have_st;

	(void)arg;
	if (fd < 3)
		fd_stdio_open |= 1u << fd;
	if (fd >= ckpt_fd_base())
		return 0;
	if (fd_ntab >= FD_MAX) {
		log_err("more than %d open files", FD_MAX);
		return 1;	/* stops the scan; logged */
	}
	e = &fd_tab[fd_ntab];
	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->same_as = -1;
	e->outer = -1;
	e->tmp = -1;
	e->path_off = (uint32_t)pool_used;
	nolibc_snprintf(name, sizeof(name), "%d", fd);
	n = sys_call4(__NR_readlinkat, dirfd, name, fd_pool + pool_used, FD_PATH_MAX - 1);
	if (sys_failed(n) || pool_used + FD_PATH_MAX + 1 > FD_POOL_MAX)
		n = 0;
	fd_pool[pool_used + (size_t)n] = '\0';
	e->path_len = (uint32_t)n;
	pool_used += (size_t)n + 1;
	fdscan_info(fd, &e->pos, &e->flags);	/* FD_CLOEXEC from F_GETFD */
	have_st = !sys_failed(sys_fstat(fd, &st));
	e->kind = kind_of(e, &st, have_st, fd);
	if (have_st) {
		e->dev = (uint64_t)st.st_dev;
		e->ino = (uint64_t)st.st_ino;
		e->size = (uint64_t)st.st_size;
		e->mtime_sec = (int64_t)st.st_mtim.tv_sec;
		e->mtime_nsec = (int64_t)st.st_mtim.tv_nsec;
		e->mode = (uint32_t)st.st_mode;
		e->outer = stdio_outer_index(&st, fd < 3 ? fd : -1);
		/* /dev/null or /dev/zero opened by the program itself is the
		 * same object as a /dev/null stdin: above 2 only terminals,
		 * files, pipes and sockets count as the user's. */
		if (e->outer >= 0 && fd > 2 && e->kind == FD_DEV && !e->tty)
			e->outer = -1;
		/* The user's terminal may well be a pseudo-terminal: a device
		 * to reopen by path with --keep-stdio (without, plugin/pty
		 * gives fds above 2 the restarting side's terminal). */
		if (e->outer >= 0 && e->kind == FD_PTY && pty_kind(&st) == PTY_SLAVE) {
			e->kind = FD_DEV;
			e->tty = 1;
		}
	}
	if (e->kind == FD_FILE || e->kind == FD_DIR) {
		pid_t p;

		e->proc_off = (uint32_t)fd_proc_pid_off(fd_path(e), &p);
		e->proc_vpid = e->proc_off ? vpid_to_virt(p) : 0;
	}
	if (e->kind == FD_MEMFD) {
		long s = sys_fcntl(fd, F_GET_SEALS, 0);

		e->seals = sys_failed(s) ? F_SEAL_SEAL : (uint32_t)s;
	}
	fd_ntab++;
	return 0;
}

/* Links entry i to an earlier one of this process on the same description. */
static void find_sharing(size_t i, pid_t pid)
{
	for (size_t j = 0; j < i; j++) {
		if (fd_tab[j].same_as >= 0 || fd_tab[j].kind != fd_tab[i].kind || fd_tab[j].ino != fd_tab[i].ino ||
		    fd_tab[j].dev != fd_tab[i].dev)
			continue;
		if (sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, fd_tab[j].fd, fd_tab[i].fd) == 0) {
			fd_tab[i].same_as = (int)j;
			return;
		}
	}
}

/* Whether the election decides who reopens e: files, directories and
 * devices of the computation, and the user's files (shared by
 * --keep-stdio); not the user's terminal, which nobody marks. */
static int electable(const struct fd_entry *e)
{
	switch (e->kind) {
	case FD_FILE:
		return 1;
	case FD_DIR:
	case FD_DEV:
	case FD_DELETED:
	case FD_MEMFD:
		return e->outer < 0;
	default:
		return 0;
	}
}

static void program_owner(struct fd_entry *e)
{
	e->prog_own.type = F_OWNER_PID;
	e->prog_own.pid = 0;
	for (size_t i = 0; i < nowners; i++)
		if (owners[i].fd == e->fd)
			e->prog_own = owners[i].o;
}

/* ELECT, threads parked in every process: the table, then a mark on each
 * description this process may own. */
static int fd_elect(void)
{
	pid_t kpid = vpid_kernel_pid();
	int r;

	fd_ntab = pool_used = 0;
	fd_stdio_open = 0;
	r = each_fd("/proc/self/fd", describe, NULL);
	if (r < 0)
		log_syserr(-r, "read /proc/self/fd");
	if (r)
		return -1;
	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];

		find_sharing(i, kpid);
		if (e->same_as >= 0)
			continue;
		program_owner(e);
		e->owned = 1;
		e->owner_vpid = vpid_self();
		e->owner_fd = e->fd;
		/* O_PATH fds refuse F_SETOWN: each process reopens its own */
		if (electable(e) && !(e->flags & O_PATH)) {
			owner_mark(e->fd);
			e->marked = 1;
		}
	}
	return 0;
}

struct owner_search {
	pid_t kpid, okpid;
	int fd;
};

static int same_description(int ofd, int dirfd, void *arg)
{
	const struct owner_search *s = arg;

	(void)dirfd;
	return sys_call5(__NR_kcmp, s->kpid, s->okpid, KCMP_FILE, s->fd, ofd) == 0 ? ofd + 1 : 0;
}

/* Reads a deleted file's or memfd's content into anonymous memory. */
static int save_content(struct fd_entry *e)
{
	uint64_t done = 0;
	size_t maplen;
	char self[48];
	long p, rfd = e->fd;

	if (e->size > deleted_max) {
		log_err("fd %d: %s is %llu bytes, more than CRYO_DELETED_MAX (%llu): checkpoint refused", e->fd,
			fd_path(e), (unsigned long long)e->size, (unsigned long long)deleted_max);
		return -1;
	}
	if (!e->size)
		return 0;
	maplen = (size_t)((e->size + 4095) & ~4095ull);
	p = sys_mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sys_failed(p)) {
		log_syserr((int)-p, "fd %d: %llu bytes for the content of %s", e->fd, (unsigned long long)e->size,
			   fd_path(e));
		return -1;
	}
	if ((e->flags & O_ACCMODE) == O_WRONLY) {
		/* write-only: read it through a description of our own */
		nolibc_snprintf(self, sizeof(self), "/proc/self/fd/%d", e->fd);
		rfd = sys_open(self, O_RDONLY | O_CLOEXEC, 0);
		if (sys_failed(rfd)) {
			log_syserr((int)-rfd, "fd %d: open %s (write-only) for reading its content", e->fd,
				   fd_path(e));
			sys_munmap((void *)p, maplen);
			return -1;
		}
	}
	while (done < e->size) {
		long n = sys_pread((int)rfd, (char *)p + done, (size_t)(e->size - done), (long)done);

		if (n == -EINTR)
			continue;
		if (sys_failed(n) || n == 0) {
			if (n)
				log_syserr((int)-n, "fd %d: read the content of %s", e->fd, fd_path(e));
			else
				log_err("fd %d: %s ended at %llu of %llu bytes", e->fd, fd_path(e),
					(unsigned long long)done, (unsigned long long)e->size);
			sys_munmap((void *)p, maplen);
			if (rfd != e->fd)
				sys_close((int)rfd);
			return -1;
		}
		done += (uint64_t)n;
	}
	if (rfd != e->fd)
		sys_close((int)rfd);
	e->data_addr = (uint64_t)p;
	e->data_len = e->size;
	e->map_len = maplen;
	return 0;
}

/* DRAIN, every process has marked: who owns what; the owners read the
 * content of deleted files. */
static int fd_drain(void)
{
	struct owner_search s = { .kpid = (pid_t)sys_getpid() };
	char dir[48];

	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];
		int32_t owner;
		int r;

		if (e->same_as >= 0 || !e->marked || owner_read(e->fd, &owner) || owner <= 0)
			continue;	/* ours */
		/* The owner's lowest fd on the description names it in both. */
		s.okpid = vpid_to_real(owner);
		s.fd = e->fd;
		nolibc_snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)s.okpid);
		r = each_fd(dir, same_description, &s);
		if (r <= 0) {
			log_warn("fd %d (%s): shared with process %d, which cannot be inspected (%s); it comes "
				 "back as a description of its own",
				 e->fd, fd_path(e), (int)owner, r < 0 ? "no access" : "not found");
			continue;
		}
		e->owned = 0;
		e->owner_vpid = owner;
		e->owner_fd = r - 1;
	}
	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];

		if (e->same_as < 0 && e->owned && e->outer < 0 && (e->kind == FD_DELETED || e->kind == FD_MEMFD) &&
		    save_content(e) < 0)
			return -1;
	}
	return 0;
}

/* Puts back the program's F_SETOWN values (after a checkpoint or a
 * restart) and lets the content of deleted files go. */
void fd_owners_back(int restarted)
{
	for (size_t i = 0; i < fd_ntab; i++) {
		struct fd_entry *e = &fd_tab[i];

		if (e->same_as >= 0)
			continue;
		/* A reopened description has no owner: set only the program's. */
		if (restarted ? e->restored && e->prog_own.pid : e->marked)
			owner_set(e->fd, &e->prog_own, restarted);
		if (e->data_addr) {
			sys_munmap((void *)(uintptr_t)e->data_addr, (size_t)e->map_len);
			e->data_addr = 0;
		}
	}
}

static int fd_resume(void)
{
	fd_owners_back(0);
	return 0;
}

const struct cryo_plugin fd_plugin = {
	.name = "fd",
	.api = CRYO_PLUGIN_API,
	.init = fd_init,
	.pre_ckpt = fd_pre_ckpt,
	.elect = fd_elect,
	.drain = fd_drain,
	.resume = fd_resume,
	.restart = fd_restart,
	.restart_share = fd_restart_share,
	.restart_refill = fd_restart_refill,
	.restart_resume = fd_restart_resume,
};
