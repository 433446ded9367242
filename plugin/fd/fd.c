/* The fd plugin: regular files, directories and character devices (such as
 * /dev/null and /dev/urandom) open in the process are reopened after a
 * restart onto the same fd numbers, with the same path, access mode,
 * O_APPEND/O_NONBLOCK-style flags, offset and close-on-exec flag. fds that
 * share one open file description (dup, dup2, inherited) share one again,
 * as kcmp(KCMP_FILE) tells at checkpoint time.
 *
 * Observe, don't track: the table is read from /proc/self/fd and
 * /proc/self/fdinfo at checkpoint time (threads parked, raw syscalls) into
 * memory reserved in pre_ckpt; that memory is part of the image, so the
 * restarted process finds its table where it left it.
 *
 * Pipes and FIFOs are plugin/pipe's, pseudo-terminals plugin/pty's. Not
 * restored yet (a warning names each one): stdin, stdout and stderr (the
 * restarted process has the restarting terminal's), sockets, event fds,
 * and files deleted while open. If a file is now shorter than
 * the saved offset, it is reopened anyway with a warning. */
#define LOG_PREFIX "fd: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "plugin/event/event.h"
#include "plugin/fd/fd.h"
#include "plugin/fd/stdio.h"
#include "plugin/pty/pty.h"

#define FD_MAX 65536
#define POOL_MAX (16ul << 20)
#define PATH_MAX_ 4096

enum fd_kind { FD_FILE = 1, FD_DIR, FD_CHR, FD_OTHER, FD_ELSEWHERE };

struct fd_entry {
	int fd;
	int kind;		/* enum fd_kind */
	int same_as;		/* index of an earlier entry with the same description, or -1 */
	unsigned flags;		/* from fdinfo, O_CLOEXEC included */
	unsigned long long pos;
	uint64_t size;		/* file size at checkpoint time */
	uint32_t path_off, path_len;
	int tmp;		/* restart: the reopened fd before it moves into place */
};

static struct fd_entry *tab;	/* ckpt_mem: saved with the image */
static char *pool;
static size_t ntab, pool_used;

int fd_parse_fdinfo(const char *text, unsigned long long *pos, unsigned *flags)
{
	const char *s = text;
	int have = 0;

	while (*s) {
		if (!nolibc_strncmp(s, "pos:", 4)) {
			unsigned long long v = 0;

			for (s += 4; *s == ' ' || *s == '\t'; s++)
				;
			for (; *s >= '0' && *s <= '9'; s++)
				v = v * 10 + (unsigned)(*s - '0');
			*pos = v;
			have |= 1;
		} else if (!nolibc_strncmp(s, "flags:", 6)) {
			unsigned v = 0;

			for (s += 6; *s == ' ' || *s == '\t'; s++)
				;
			for (; *s >= '0' && *s <= '7'; s++)
				v = v * 8 + (unsigned)(*s - '0');
			*flags = v;
			have |= 2;
		}
		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
	}
	return have == 3 ? 0 : -1;
}

static int fd_init(void)
{
	stdio_init();
	return 0;
}

static int fd_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(FD_MAX * sizeof(*tab));
	if (!pool)
		pool = ckpt_mem(POOL_MAX);
	return tab && pool ? 0 : -1;
}

static const char *path_of(const struct fd_entry *e)
{
	return pool + e->path_off;
}

static void describe(int fd, int dirfd)
{
	struct fd_entry *e = &tab[ntab];
	char name[32], info[512];
	struct stat st;
	long n, f;

	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->same_as = -1;
	e->tmp = -1;
	e->path_off = (uint32_t)pool_used;
	nolibc_snprintf(name, sizeof(name), "%d", fd);
	n = sys_call4(__NR_readlinkat, dirfd, name, pool + pool_used, PATH_MAX_ - 1);
	if (sys_failed(n) || pool_used + PATH_MAX_ + 1 > POOL_MAX)
		n = 0;
	pool[pool_used + (size_t)n] = '\0';
	e->path_len = (uint32_t)n;
	pool_used += (size_t)n + 1;
	nolibc_snprintf(name, sizeof(name), "/proc/self/fdinfo/%d", fd);
	f = sys_open(name, O_RDONLY | O_CLOEXEC, 0);
	n = sys_failed(f) ? -1 : sys_read((int)f, info, sizeof(info) - 1);
	if (!sys_failed(f))
		sys_close((int)f);
	info[n > 0 ? n : 0] = '\0';
	fd_parse_fdinfo(info, &e->pos, &e->flags);
	e->kind = FD_OTHER;
	if (!sys_failed(sys_fstat(fd, &st)) && (S_ISFIFO(st.st_mode) || pty_kind(&st)))
		e->kind = FD_ELSEWHERE;	/* plugin/pipe's, plugin/pty's */
	else if (!sys_failed(sys_fstat(fd, &st)) && e->path_len && path_of(e)[0] == '/' &&
	    !(e->path_len > 10 && !nolibc_strcmp(path_of(e) + e->path_len - 10, " (deleted)"))) {
		if (S_ISREG(st.st_mode))
			e->kind = FD_FILE;
		else if (S_ISDIR(st.st_mode))
			e->kind = FD_DIR;
		else if (S_ISCHR(st.st_mode))
			e->kind = FD_CHR;
		e->size = (uint64_t)st.st_size;
	}
}

/* Links e to an earlier entry with the same open file description. */
static void find_sharing(size_t i, pid_t pid)
{
	size_t j;

	for (j = 0; j < i; j++) {
		if (tab[j].same_as >= 0 || tab[j].kind != tab[i].kind || tab[j].path_len != tab[i].path_len ||
		    nolibc_strcmp(path_of(&tab[j]), path_of(&tab[i])))
			continue;
		if (sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, tab[j].fd, tab[i].fd) == 0) {
			tab[i].same_as = (int)j;
			return;
		}
	}
}

static int fd_ckpt(void)
{
	char buf[4096];
	long n, dirfd;
	pid_t pid = (pid_t)sys_getpid();
	size_t i;

	ntab = pool_used = 0;
	dirfd = sys_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (sys_failed(dirfd)) {
		log_syserr((int)-dirfd, "open /proc/self/fd");
		return -1;
	}
	while ((n = sys_getdents64((int)dirfd, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (off < n) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }
				*d = (void *)(buf + off);
			const char *p;
			int fd = 0;

			off += d->reclen;
			for (p = d->name; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (*p || p == d->name || fd <= 2 || fd == dirfd || fd >= ckpt_fd_base())
				continue;
			if (ntab >= FD_MAX) {
				log_err("more than %d open files", FD_MAX);
				sys_close((int)dirfd);
				return -1;
			}
			describe(fd, (int)dirfd);
			ntab++;
		}
	}
	sys_close((int)dirfd);
	for (i = 0; i < ntab; i++)
		find_sharing(i, pid);
	return 0;
}

static unsigned open_flags(unsigned saved)
{
	return saved & (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC |
			O_DIRECTORY | O_NOFOLLOW | O_LARGEFILE | O_PATH);
}

static int fd_restart(void)
{
	size_t i;
	int top = 3, ret = 0;

	for (i = 0; i < ntab; i++)
		if (tab[i].fd >= top)
			top = tab[i].fd + 1;
	/* Open everything above every saved number first, then move into place:
	 * a fresh open must not take a number another entry still needs. */
	for (i = 0; i < ntab; i++) {
		struct fd_entry *e = &tab[i];
		long fd, moved;

		e->tmp = -1;
		if (e->same_as >= 0)
			continue;
		if (e->kind == FD_ELSEWHERE || (e->kind == FD_OTHER && event_link_kind(path_of(e))))
			continue;	/* plugin/pipe's, plugin/pty's, plugin/event's */
		if (e->kind == FD_OTHER) {
			log_warn("fd %d (%s) is not restored: only files, directories and devices are, so far",
				 e->fd, e->path_len ? path_of(e) : "?");
			continue;
		}
		fd = sys_open(path_of(e), (int)(open_flags(e->flags) | O_CLOEXEC), 0);
		if (sys_failed(fd)) {
			log_syserr((int)-fd, "fd %d: reopen %s", e->fd, path_of(e));
			ret = -1;
			continue;
		}
		moved = sys_fcntl((int)fd, F_DUPFD_CLOEXEC, top);
		sys_close((int)fd);
		if (sys_failed(moved)) {
			log_syserr((int)-moved, "fd %d: move %s", e->fd, path_of(e));
			ret = -1;
			continue;
		}
		e->tmp = (int)moved;
		if (e->kind == FD_FILE) {
			struct stat st;

			if (!sys_failed(sys_fstat(e->tmp, &st)) && (uint64_t)st.st_size < e->pos)
				log_warn("fd %d: %s is now %lld bytes, shorter than the saved offset %llu", e->fd,
					 path_of(e), (long long)st.st_size, e->pos);
			sys_lseek(e->tmp, (long)e->pos, SEEK_SET);
		} else if (e->kind == FD_DIR) {
			sys_lseek(e->tmp, (long)e->pos, SEEK_SET);
		}
	}
	for (i = 0; i < ntab; i++) {
		const struct fd_entry *e = &tab[i];
		int src = e->same_as >= 0 ? tab[e->same_as].tmp : e->tmp;
		long r;

		if (src < 0)
			continue;
		r = sys_dup3(src, e->fd, (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
		if (sys_failed(r)) {
			log_syserr((int)-r, "fd %d: dup3", e->fd);
			ret = -1;
		}
	}
	for (i = 0; i < ntab; i++)
		if (tab[i].tmp >= 0)
			sys_close(tab[i].tmp);
	log_debug("%zu fds restored", ntab);
	return ret;
}

const struct cryo_plugin fd_plugin = {
	.name = "fd",
	.api = CRYO_PLUGIN_API,
	.init = fd_init,
	.pre_ckpt = fd_pre_ckpt,
	.ckpt = fd_ckpt,
	.restart = fd_restart,
};
