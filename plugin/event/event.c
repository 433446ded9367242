/* The event plugin: eventfd, signalfd, timerfd, inotify and epoll fds come
 * back after a restart onto the same fd numbers, with their state.
 *
 * Observe, don't track: at checkpoint time (WRITE, threads parked, raw
 * syscalls, memory reserved in pre_ckpt) the plugin lists /proc/self/fd,
 * picks the anonymous-inode files it knows by their link name and reads
 * each one's /proc/self/fdinfo:
 *   eventfd   the counter ("eventfd-count"), EFD_SEMAPHORE
 *             ("eventfd-semaphore", on kernels that show it)
 *   signalfd  the mask ("sigmask")
 *   timerfd   the clock, the settime flags, the expirations not yet read
 *             ("ticks"), and timerfd_gettime's time left and interval; a
 *             CLOCK_REALTIME timer set with TFD_TIMER_ABSTIME keeps its
 *             absolute deadline, every other one is re-armed with the time
 *             that was left
 *   inotify   each watch (wd, inode, mask); its path from the inotify
 *             wrapper (inotify.c), else from the file handle with
 *             open_by_handle_at when the process may
 *   epoll     each interest ("tfd", "events", "data")
 * and, for all, the status flags (O_NONBLOCK) and close-on-exec. fds that
 * share one open file description (dup) are found with kcmp and share one
 * again. The tables are in ckpt_mem memory: the image holds them.
 *
 * After a restart, the restart hook (threads parked, before the
 * coordinator) creates each object and moves it onto its number; inotify
 * watches get their old watch descriptors back (numbers are handed out in
 * increasing order, so lower ones are taken and dropped until the wanted
 * one comes). epoll fds are created empty there and filled at
 * restart_resume, the last restart barrier, when the fds they watch
 * (files, pipes, sockets, restored by plugins that run before this one at
 * restart) are in place.
 *
 * Shared with other processes (inherited at fork, or passed): one owner
 * per open file description, elected the way plugin/share.h describes. At
 * ELECT every process sets F_SETOWN to its own pid on each of its event
 * fds (the program's owner is kept and put back at RESUME, and after a
 * restart); at DRAIN, the process that reads its own pid back owns the
 * description, and every other one finds the owner's fd number by kcmp
 * over /proc/OWNER/fd. After a restart the owner creates the object; the
 * others ask for it at restart_share, the owner sends it at
 * restart_refill, and they move it onto their numbers at restart_resume,
 * before the epolls are filled (an epoll is filled by its owner only).
 *
 * Not carried: inotify events queued but not read (logged at checkpoint),
 * an epoll's ready list (level-triggered interests report again at once,
 * edge-triggered ones report readiness once after the restart). See
 * doc/events.md. */
#define LOG_PREFIX "event: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/event/event.h"
#include "plugin/event/fdinfo.h"
#include "plugin/share.h"

#define EV_MAX 4096		/* event fds per process */
#define EPI_MAX 65536		/* epoll interests, all epolls together */
#define WATCH_MAX 8192		/* inotify watches, all instances together */
#define PATHS_MAX (8ul << 20)	/* watch paths */
#define INFO_MAX (8ul << 20)	/* one fdinfo text */
#define MNT_MAX (1ul << 20)	/* /proc/self/mountinfo */
#define WD_BURN_MAX 100000	/* watch descriptors skipped to reach an old number */

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

enum ev_kind {
	EV_EVENTFD = EVENT_EVENTFD,
	EV_SIGNALFD = EVENT_SIGNALFD,
	EV_TIMERFD = EVENT_TIMERFD,
	EV_INOTIFY = EVENT_INOTIFY,
	EV_EPOLL = EVENT_EPOLL,
};

struct ev_entry {
	int fd;
	int kind;		/* enum ev_kind */
	int same_as;		/* earlier entry with the same description, or -1 */
	int placed;		/* restart: the object is on its number */
	int receive;		/* another process owns the description */
	uint64_t tag;		/* the description's name for plugin/share.h */
	int32_t owner_vpid;	/* receive: who sends it */
	struct f_owner_ex app_owner;	/* the program's F_SETOWN_EX, pid virtual */
	uint32_t flags;		/* fdinfo flags: O_NONBLOCK, O_CLOEXEC */
	uint32_t first, n;	/* epoll interests or inotify watches */
	uint64_t count;		/* eventfd counter; timerfd expirations not read */
	uint64_t sigmask;	/* signalfd */
	int32_t sema;		/* eventfd: EFD_SEMAPHORE */
	int32_t clock;		/* timerfd */
	uint32_t tflags;	/* timerfd: flags to re-arm with */
	struct itimerspec spec;	/* timerfd: interval, and value (absolute if tflags says) */
};

struct ev_watch {
	int wd;
	uint32_t mask;
	uint32_t path_off;	/* into paths; 0: no path known */
	uint64_t ino;
	uint32_t sdev;
};

/* ELECT to RESUME: the event fds of this process and who owns each. */
struct ev_mark {
	int fd;
	int kind;
	int owner;		/* this process owns the description */
	int32_t owner_vpid;	/* else: the owner, */
	int owner_fd;		/* and its fd for the description */
	struct f_owner_ex app_owner;
};

#define SHARE_TAG(vpid, fd) (0x4556ull << 48 | (uint64_t)(uint32_t)(vpid) << 20 | (uint64_t)(fd))
#define SHARE_ASK (1ull << 47)

static struct ev_entry *tab;		/* ckpt_mem: in the image */
static struct ev_mark *marks;		/* ckpt_mem */
static size_t nmarks;
static struct fdinfo_epoll *epi;	/* ckpt_mem */
static struct ev_watch *watches;	/* ckpt_mem */
static char *paths;			/* ckpt_mem */
static char *info;			/* ckpt_scratch: one fdinfo text */
static char *mnt;			/* ckpt_scratch: mountinfo */
static size_t ntab, nepi, nwatch, paths_used;

static int event_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(EV_MAX * sizeof(*tab));
	if (!marks)
		marks = ckpt_mem(EV_MAX * sizeof(*marks));
	if (!epi)
		epi = ckpt_mem(EPI_MAX * sizeof(*epi));
	if (!watches)
		watches = ckpt_mem(WATCH_MAX * sizeof(*watches));
	if (!paths)
		paths = ckpt_mem(PATHS_MAX);
	if (!info)
		info = ckpt_scratch(INFO_MAX);
	if (!mnt)
		mnt = ckpt_scratch(MNT_MAX);
	nmarks = 0;
	return tab && marks && epi && watches && paths && info && mnt ? 0 : -1;
}

static const char *kind_name(int kind)
{
	switch (kind) {
	case EV_EVENTFD:
		return "eventfd";
	case EV_SIGNALFD:
		return "signalfd";
	case EV_TIMERFD:
		return "timerfd";
	case EV_INOTIFY:
		return "inotify";
	case EV_EPOLL:
		return "epoll";
	}
	return "?";
}

/* Reads /proc/self/fdinfo/fd whole into info. Its length, or -1 (logged). */
static long read_info(int fd)
{
	char name[48];
	long f, n, got = 0;

	nolibc_snprintf(name, sizeof(name), "/proc/self/fdinfo/%d", fd);
	f = sys_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(f)) {
		log_syserr((int)-f, "open %s", name);
		return -1;
	}
	while (got < (long)INFO_MAX - 1 && (n = sys_read((int)f, info + got, INFO_MAX - 1 - (size_t)got)) > 0)
		got += n;
	sys_close((int)f);
	if (got >= (long)INFO_MAX - 1) {
		log_err("fd %d: %s longer than %lu bytes", fd, name, INFO_MAX - 1);
		return -1;
	}
	info[got] = '\0';
	return got;
}

static uint64_t u64_or(const char *key, int base, uint64_t dflt)
{
	uint64_t v;

	return fdinfo_u64(info, key, base, &v) == 0 ? v : dflt;
}

static int save_timerfd(struct ev_entry *e)
{
	struct itimerspec cur;
	struct timespec now;
	uint64_t ticks = 0, fl = 0, clk;
	long r;

	if (fdinfo_u64(info, "clockid:", 10, &clk) < 0) {
		log_err("fd %d: no clockid in the timerfd's fdinfo", e->fd);
		return -1;
	}
	fdinfo_u64(info, "ticks:", 10, &ticks);
	fdinfo_u64(info, "settime flags:", 8, &fl);
	r = sys_call2(__NR_timerfd_gettime, e->fd, &cur);
	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: timerfd_gettime", e->fd);
		return -1;
	}
	e->clock = (int32_t)clk;
	e->count = ticks;
	e->spec = cur;
	e->tflags = 0;
	if ((fl & TFD_TIMER_ABSTIME) && (e->clock == CLOCK_REALTIME || e->clock == CLOCK_REALTIME_ALARM) &&
	    (cur.it_value.tv_sec || cur.it_value.tv_nsec) && !sys_failed(sys_clock_gettime(e->clock, &now))) {
		/* The deadline is a date: it stays that date. */
		e->tflags = (uint32_t)fl;
		e->spec.it_value.tv_sec = now.tv_sec + cur.it_value.tv_sec;
		e->spec.it_value.tv_nsec = now.tv_nsec + cur.it_value.tv_nsec;
		if (e->spec.it_value.tv_nsec >= 1000000000L) {
			e->spec.it_value.tv_sec++;
			e->spec.it_value.tv_nsec -= 1000000000L;
		}
	}
	return 0;
}

/* The mount point of the device the kernel calls sdev, from
 * /proc/self/mountinfo, opened (not O_PATH: open_by_handle_at refuses
 * those). The fd, or -errno. */
static long open_mount_of(uint32_t sdev)
{
	unsigned maj = sdev >> 20, min = sdev & 0xfffff;
	const char *pos = mnt, *line;
	long f, n, got = 0;

	f = sys_open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(f))
		return f;
	while (got < (long)MNT_MAX - 1 && (n = sys_read((int)f, mnt + got, MNT_MAX - 1 - (size_t)got)) > 0)
		got += n;
	sys_close((int)f);
	mnt[got] = '\0';
	while ((line = fdinfo_next(&pos, ""))) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT ..." */
		char mp[4096], dev[32];
		const char *s = line;
		size_t i;
		int field;

		if (!*line)
			break;
		for (field = 0; field < 2; field++) {
			while (*s && *s != ' ' && *s != '\n')
				s++;
			if (*s == ' ')
				s++;
		}
		nolibc_snprintf(dev, sizeof(dev), "%u:%u ", maj, min);
		if (nolibc_strncmp(s, dev, nolibc_strlen(dev)))
			continue;
		s += nolibc_strlen(dev);
		while (*s && *s != ' ' && *s != '\n')	/* ROOT */
			s++;
		if (*s == ' ')
			s++;
		for (i = 0; i < sizeof(mp) - 1 && *s && *s != ' ' && *s != '\n'; i++)
			mp[i] = *s++;
		mp[i] = '\0';
		return sys_open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	}
	return -ENOENT;
}

/* The path of a watched inode from its file handle: needs
 * CAP_DAC_READ_SEARCH. 0 and the path at paths + *off, or -1. */
static int path_from_handle(const struct fdinfo_watch *w, uint32_t *off)
{
	struct {
		uint32_t bytes;
		int32_t type;
		unsigned char h[FDINFO_HANDLE_MAX];
	} fh;
	char link[48];
	long mfd, fd, n;

	if (!w->handle_bytes || paths_used + 4096 > PATHS_MAX)
		return -1;
	fh.bytes = w->handle_bytes;
	fh.type = w->handle_type;
	nolibc_memcpy(fh.h, w->handle, w->handle_bytes);
	mfd = open_mount_of(w->sdev);
	if (sys_failed(mfd))
		return -1;
	fd = sys_call3(__NR_open_by_handle_at, mfd, &fh, O_PATH | O_CLOEXEC);
	sys_close((int)mfd);
	if (sys_failed(fd))
		return -1;
	nolibc_snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
	n = sys_call4(__NR_readlinkat, AT_FDCWD, link, paths + paths_used, 4095);
	sys_close((int)fd);
	if (sys_failed(n) || n == 0 || paths[paths_used] != '/')
		return -1;
	paths[paths_used + (size_t)n] = '\0';
	*off = (uint32_t)paths_used;
	paths_used += (size_t)n + 1;
	return 0;
}

static int save_inotify(struct ev_entry *e)
{
	const char *pos = info, *line;
	int pending = 0;

	e->first = (uint32_t)nwatch;
	while ((line = fdinfo_next(&pos, "inotify "))) {
		struct fdinfo_watch w;
		struct ev_watch *v;
		uint32_t fl = 0;

		if (fdinfo_inotify_line(line, &w) < 0)
			continue;
		if (nwatch >= WATCH_MAX) {
			log_err("more than %d inotify watches", WATCH_MAX);
			return -1;
		}
		v = &watches[nwatch];
		v->wd = w.wd;
		v->mask = w.mask;
		v->ino = w.ino;
		v->sdev = w.sdev;
		v->path_off = 0;
		if (paths_used + 4096 <= PATHS_MAX &&
		    inotify_path_of(w.ino, w.sdev, paths + paths_used, 4096, &fl) == 0) {
			v->path_off = (uint32_t)paths_used;
			v->mask |= fl;
			paths_used += nolibc_strlen(paths + paths_used) + 1;
		} else if (path_from_handle(&w, &v->path_off) < 0) {
			log_warn("fd %d: inotify watch %d (inode %llu) has no known path: it will not be restored",
				 e->fd, w.wd, (unsigned long long)w.ino);
		}
		nwatch++;
	}
	e->n = (uint32_t)nwatch - e->first;
	if (!sys_failed(sys_ioctl(e->fd, FIONREAD, &pending)) && pending > 0)
		log_info("fd %d: %d bytes of inotify events not read yet; a restart loses them", e->fd, pending);
	return 0;
}

static int save_epoll(struct ev_entry *e)
{
	const char *pos = info, *line;

	e->first = (uint32_t)nepi;
	while ((line = fdinfo_next(&pos, "tfd:"))) {
		if (nepi >= EPI_MAX) {
			log_err("more than %d epoll interests", EPI_MAX);
			return -1;
		}
		if (fdinfo_epoll_line(line, &epi[nepi]) == 0)
			nepi++;
	}
	e->n = (uint32_t)nepi - e->first;
	return 0;
}

static int describe(int fd, int kind, pid_t pid)
{
	struct ev_entry *e = &tab[ntab];
	size_t j;

	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->kind = kind;
	e->same_as = -1;
	for (j = 0; j < ntab; j++) {
		if (tab[j].kind != kind || tab[j].same_as >= 0)
			continue;
		if (sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, tab[j].fd, fd) == 0) {
			e->same_as = (int)j;
			break;
		}
	}
	if (read_info(fd) < 0)
		return -1;
	e->flags = (uint32_t)u64_or("flags:", 8, 0);
	if (e->same_as >= 0)
		return 0;
	switch (kind) {
	case EV_EVENTFD:
		if (fdinfo_u64(info, "eventfd-count:", 16, &e->count) < 0) {
			log_err("fd %d: no eventfd-count in its fdinfo", fd);
			return -1;
		}
		e->sema = (int32_t)u64_or("eventfd-semaphore:", 10, 0);
		return 0;
	case EV_SIGNALFD:
		if (fdinfo_u64(info, "sigmask:", 16, &e->sigmask) < 0) {
			log_err("fd %d: no sigmask in the signalfd's fdinfo", fd);
			return -1;
		}
		return 0;
	case EV_TIMERFD:
		return save_timerfd(e);
	case EV_INOTIFY:
		return save_inotify(e);
	case EV_EPOLL:
		return save_epoll(e);
	}
	return 0;
}

/* Calls fn(fd, kind, arg) for each event fd of the program in dir
 * (/proc/PID/fd), until fn returns non-zero, which scan_fds returns; 0
 * when all were seen, -1 if dir cannot be read (logged if loud). */
static int scan_fds(const char *dir, int loud, int (*fn)(int fd, int kind, void *arg), void *arg)
{
	char buf[4096], link[64];
	long n, dirfd;
	int ret = 0;

	dirfd = sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (sys_failed(dirfd)) {
		if (loud)
			log_syserr((int)-dirfd, "open %s", dir);
		return -1;
	}
	while (ret == 0 && (n = sys_getdents64((int)dirfd, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (ret == 0 && off < n) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }
				*d = (void *)(buf + off);
			const char *p;
			long len;
			int fd = 0, kind;

			off += d->reclen;
			for (p = d->name; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (*p || p == d->name || fd >= ckpt_fd_base())
				continue;
			len = sys_call4(__NR_readlinkat, dirfd, d->name, link, sizeof(link) - 1);
			if (sys_failed(len))
				continue;
			link[len] = '\0';
			kind = event_link_kind(link);
			if (kind)
				ret = fn(fd, kind, arg);
		}
	}
	sys_close((int)dirfd);
	return ret;
}

/* ---- ELECT, DRAIN, RESUME: who owns each shared description ---- */

static int mark_one(int fd, int kind, void *arg)
{
	struct ev_mark *m;
	long r;

	if (nmarks >= EV_MAX) {
		log_err("more than %d event fds", EV_MAX);
		return -1;
	}
	m = &marks[nmarks];
	nolibc_memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->kind = kind;
	sys_fcntl(fd, F_GETOWN_EX, (long)&m->app_owner);
	r = sys_fcntl(fd, F_SETOWN, sys_getpid());
	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: F_SETOWN to elect the owner of the %s", fd, kind_name(kind));
		return -1;
	}
	nmarks++;
	return 0;
}

static int event_elect(void)
{
	nmarks = 0;
	return scan_fds("/proc/self/fd", 1, mark_one, NULL) < 0 ? -1 : 0;
}

struct find_arg {
	pid_t owner;
	const struct ev_mark *m;
	int fd;
};

static int find_in_owner(int fd, int kind, void *arg)
{
	struct find_arg *a = arg;

	if (kind != a->m->kind ||
	    sys_call5(__NR_kcmp, (long)sys_getpid(), a->owner, KCMP_FILE, a->m->fd, fd) != 0)
		return 0;
	a->fd = fd;
	return 1;
}

static int event_drain(void)
{
	pid_t self = (pid_t)sys_getpid();
	size_t i;

	for (i = 0; i < nmarks; i++) {
		struct ev_mark *m = &marks[i];
		struct find_arg a = { .m = m, .fd = -1 };
		char dir[48];

		a.owner = (pid_t)sys_fcntl(m->fd, F_GETOWN, 0);
		m->owner = 1;
		if (a.owner == self || a.owner <= 0)
			continue;
		nolibc_snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)a.owner);
		if (scan_fds(dir, 0, find_in_owner, &a) != 1) {
			log_warn("fd %d: the %s is shared with process %d, which cannot be looked into; "
				 "it comes back as this process's own", m->fd, kind_name(m->kind), (int)a.owner);
			continue;
		}
		m->owner = 0;
		m->owner_vpid = vpid_to_virt(a.owner);
		m->owner_fd = a.fd;
	}
	return 0;
}

/* Puts the program's F_SETOWN_EX back (pid as the kernel knows it now). */
static void set_app_owner(int fd, const struct f_owner_ex *o)
{
	if (o->pid || o->type != F_OWNER_PID)
		sys_fcntl(fd, F_SETOWN_EX, (long)o);
	else
		sys_fcntl(fd, F_SETOWN, 0);
}

static int event_resume(void)
{
	size_t i;

	for (i = 0; i < nmarks; i++)
		set_app_owner(marks[i].fd, &marks[i].app_owner);
	nmarks = 0;
	return 0;
}

/* ---- WRITE ---- */

struct ckpt_arg {
	pid_t pid;
	int ret;
};

static int save_one(int fd, int kind, void *arg)
{
	struct ckpt_arg *a = arg;
	struct ev_entry *e = &tab[ntab];
	size_t i;

	if (ntab >= EV_MAX) {
		log_err("more than %d event fds", EV_MAX);
		return -1;
	}
	if (describe(fd, kind, a->pid) < 0) {
		a->ret = -1;
		return 0;
	}
	e->tag = SHARE_TAG(vpid_self(), fd);
	for (i = 0; i < nmarks; i++) {
		const struct ev_mark *m = &marks[i];

		if (m->fd != fd || m->kind != kind)
			continue;
		e->app_owner = m->app_owner;
		if (m->app_owner.type == F_OWNER_TID)
			e->app_owner.pid = threads_virt_tid(m->app_owner.pid);
		else if (m->app_owner.pid)
			e->app_owner.pid = vpid_to_virt(m->app_owner.pid);
		if (!m->owner) {
			e->receive = 1;
			e->owner_vpid = m->owner_vpid;
			e->tag = SHARE_TAG(m->owner_vpid, m->owner_fd);
		}
		break;
	}
	ntab++;
	return 0;
}

static int event_ckpt(void)
{
	struct ckpt_arg a = { .pid = (pid_t)sys_getpid(), .ret = 0 };

	ntab = nepi = nwatch = 0;
	paths_used = 1;	/* offset 0 means "no path" */
	if (scan_fds("/proc/self/fd", 1, save_one, &a) != 0)
		return -1;
	log_debug("%zu event fds, %zu epoll interests, %zu inotify watches", ntab, nepi, nwatch);
	return a.ret;
}

/* ---------------------------------------------------------------- restart */

/* Moves obj onto e's number with e's close-on-exec flag. 0, or -1 (logged). */
static int place(struct ev_entry *e, long obj)
{
	int cloexec = (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0;
	long r;

	if (obj == e->fd) {
		r = sys_fcntl(e->fd, F_SETFD, cloexec ? FD_CLOEXEC : 0);
	} else {
		r = sys_dup3((int)obj, e->fd, cloexec);
		sys_close((int)obj);
	}
	if (sys_failed(r)) {
		log_syserr((int)-r, "fd %d: move the %s onto its number", e->fd, kind_name(e->kind));
		return -1;
	}
	e->placed = 1;
	share_note_fd(e->fd);
	return 0;
}

static long make_eventfd(const struct ev_entry *e)
{
	long fd = sys_call2(__NR_eventfd2, 0, O_CLOEXEC | (e->flags & O_NONBLOCK) |
					      (e->sema ? EFD_SEMAPHORE : 0));

	if (!sys_failed(fd) && e->count) {
		long r = sys_write((int)fd, &e->count, sizeof(e->count));

		if (sys_failed(r)) {
			sys_close((int)fd);
			return r;
		}
	}
	return fd;
}

static long make_timerfd(const struct ev_entry *e)
{
	long fd = sys_call2(__NR_timerfd_create, e->clock, O_CLOEXEC | (e->flags & O_NONBLOCK)), r;

	if (sys_failed(fd))
		return fd;
	if (e->spec.it_value.tv_sec || e->spec.it_value.tv_nsec) {
		r = sys_call4(__NR_timerfd_settime, fd, e->tflags, &e->spec, NULL);
		if (sys_failed(r)) {
			sys_close((int)fd);
			return r;
		}
	}
	if (e->count) {
		r = sys_ioctl((int)fd, TFD_IOC_SET_TICKS, (void *)&e->count);
		if (sys_failed(r))
			log_syserr((int)-r, "fd %d: %llu expirations of the timerfd not read at the checkpoint are lost",
				   e->fd, (unsigned long long)e->count);
	}
	return fd;
}

/* Adds w's watch to ifd, under its old watch descriptor if it can: the
 * kernel hands numbers out in increasing order, so lower ones are taken
 * and dropped until the old one comes. */
static void add_watch(const struct ev_entry *e, long ifd, const struct ev_watch *w)
{
	const char *path = paths + w->path_off;
	struct stat st;
	long wd;
	int burnt = 0;

	if (!w->path_off)
		return;	/* warned at checkpoint */
	for (;;) {
		wd = sys_call3(__NR_inotify_add_watch, ifd, path, w->mask);
		if (sys_failed(wd)) {
			log_syserr((int)-wd, "fd %d: inotify watch %d on %s", e->fd, w->wd, path);
			return;
		}
		if (wd >= w->wd || ++burnt > WD_BURN_MAX)
			break;
		sys_call2(__NR_inotify_rm_watch, ifd, wd);
	}
	if (wd != w->wd)
		log_warn("fd %d: the inotify watch on %s is now watch descriptor %ld (was %d)", e->fd, path, wd,
			 w->wd);
	if (!sys_failed(sys_call4(__NR_newfstatat, AT_FDCWD, path, &st,
				  (w->mask & IN_DONT_FOLLOW) ? AT_SYMLINK_NOFOLLOW : 0)) &&
	    (uint64_t)st.st_ino != w->ino)
		log_warn("fd %d: %s is another file than the one watched at the checkpoint", e->fd, path);
}

static long make_inotify(const struct ev_entry *e)
{
	char drain[4096];
	long fd = sys_call1(__NR_inotify_init1, IN_CLOEXEC | IN_NONBLOCK);
	uint32_t i;

	if (sys_failed(fd))
		return fd;
	/* In increasing wd order (fdinfo lists the newest first); a watch
	 * done is marked by a negative wd until the end. */
	for (;;) {
		struct ev_watch *next = NULL;

		for (i = 0; i < e->n; i++) {
			struct ev_watch *w = &watches[e->first + i];

			if (w->wd > 0 && (!next || w->wd < next->wd))
				next = w;
		}
		if (!next)
			break;
		add_watch(e, fd, next);
		next->wd = -next->wd;
	}
	for (i = 0; i < e->n; i++)
		watches[e->first + i].wd = -watches[e->first + i].wd;
	/* The IN_IGNORED events of the dropped numbers are not the program's. */
	while (sys_read((int)fd, drain, sizeof(drain)) > 0)
		;
	if (!(e->flags & O_NONBLOCK))
		sys_fcntl((int)fd, F_SETFL, (long)(e->flags & ~(uint32_t)(O_NONBLOCK | O_CLOEXEC | O_ACCMODE)));
	return fd;
}

static long make_object(const struct ev_entry *e)
{
	uint64_t mask = e->sigmask;

	switch (e->kind) {
	case EV_EVENTFD:
		return make_eventfd(e);
	case EV_SIGNALFD:
		return sys_call4(__NR_signalfd4, -1, &mask, sizeof(mask), O_CLOEXEC | (e->flags & O_NONBLOCK));
	case EV_TIMERFD:
		return make_timerfd(e);
	case EV_INOTIFY:
		return make_inotify(e);
	case EV_EPOLL:
		return sys_call1(__NR_epoll_create1, EPOLL_CLOEXEC);
	}
	return -EINVAL;
}

static int event_restart(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < ntab; i++) {
		struct ev_entry *e = &tab[i];
		long obj;

		e->placed = 0;
		if (e->receive)
			continue;	/* its owner sends it */
		if (e->same_as >= 0) {
			if (!tab[e->same_as].placed)
				continue;
			obj = sys_fcntl(tab[e->same_as].fd, F_DUPFD_CLOEXEC, 0);
		} else {
			obj = make_object(e);
		}
		if (sys_failed(obj)) {
			log_syserr((int)-obj, "fd %d: recreate the %s", e->fd, kind_name(e->kind));
			ret = -1;
			continue;
		}
		if (place(e, obj) < 0)
			ret = -1;
	}
	log_debug("%zu event fds restored", ntab);
	return ret;
}

/* RESTART: ask the owners for the descriptions shared with them. */
static int event_restart_share(void)
{
	int32_t me = vpid_self();
	size_t i;
	int ret = 0;

	for (i = 0; i < ntab; i++)
		if (tab[i].receive && tab[i].same_as < 0 &&
		    share_send(tab[i].owner_vpid, tab[i].tag | SHARE_ASK, &me, sizeof(me), NULL, 0) < 0)
			ret = -1;
	return ret;
}

/* REFILL: answer what the others asked for. */
static int event_restart_refill(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < ntab; i++) {
		const struct ev_entry *e = &tab[i];
		int32_t who;
		unsigned nfds;

		if (!e->placed)
			continue;
		while (share_take(e->tag | SHARE_ASK, &who, sizeof(who), NULL, 0, &nfds) == (long)sizeof(who))
			if (share_send(who, e->tag, NULL, 0, &e->fd, 1) < 0)
				ret = -1;
	}
	return ret;
}

/* RESUME: the shared descriptions arrived; onto their numbers. */
static int receive_shared(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < ntab; i++) {
		struct ev_entry *e = &tab[i];
		unsigned nfds = 0;
		int fd = -1;

		if (!e->receive || e->same_as >= 0)
			continue;
		if (share_take(e->tag, NULL, 0, &fd, 1, &nfds) < 0 || nfds != 1) {
			log_err("fd %d: the %s shared with process %d did not come", e->fd, kind_name(e->kind),
				(int)e->owner_vpid);
			ret = -1;
			continue;
		}
		if (place(e, fd) < 0)
			ret = -1;
	}
	for (i = 0; i < ntab; i++) {
		struct ev_entry *e = &tab[i];
		long obj;

		if (e->placed || e->same_as < 0 || !tab[e->same_as].placed)
			continue;
		obj = sys_fcntl(tab[e->same_as].fd, F_DUPFD_CLOEXEC, 0);
		if (sys_failed(obj) || place(e, obj) < 0)
			ret = -1;
	}
	for (i = 0; i < ntab; i++) {
		struct f_owner_ex o = tab[i].app_owner;

		if (!tab[i].placed || !o.pid)
			continue;
		o.pid = o.type == F_OWNER_TID ? threads_real_tid(o.pid) : vpid_to_real(o.pid);
		set_app_owner(tab[i].fd, &o);
	}
	return ret;
}

/* The bits an interest keeps after its one-shot event fired (the kernel's
 * EP_PRIVATE_BITS): a one-shot interest with no others is disarmed. */
#define EPOLL_PRIVATE (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)
#define EPOLL_ANY (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND | \
		   EPOLLMSG | EPOLLRDHUP)

static int add_interest(const struct ev_entry *e, const struct fdinfo_epoll *p, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = p->data };
	long r = sys_call4(__NR_epoll_ctl, e->fd, EPOLL_CTL_ADD, p->tfd, &ev);

	if (r == -EPERM || r == -EBADF) {
		log_warn("epoll fd %d: fd %d (events %#x) is not restored, so it is no longer watched", e->fd,
			 p->tfd, p->events);
		return 1;
	}
	if (sys_failed(r)) {
		log_syserr((int)-r, "epoll fd %d: watch fd %d again", e->fd, p->tfd);
		return -1;
	}
	return 0;
}

/* A one-shot interest that already fired: EPOLL_CTL_ADD always arms
 * EPOLLERR and EPOLLHUP, so it is added with every event and, if its fd is
 * ready for one, disarmed the kernel's way, by one epoll_wait. This runs
 * before the epoll holds any armed interest, so that wait takes nothing
 * else. */
static int add_disarmed(const struct ev_entry *e, const struct fdinfo_epoll *p)
{
	struct epoll_event ev;
	long r;
	int ret = add_interest(e, p, (p->events & EPOLL_PRIVATE) | EPOLL_ANY);

	if (ret)
		return ret;
	r = sys_call4(__NR_epoll_wait, e->fd, &ev, 1, 0);
	if (r != 1)
		log_debug("epoll fd %d: the disarmed one-shot interest in fd %d stays armed (fd not ready)", e->fd,
			  p->tfd);
	return 0;
}

/* Last restart barrier: every fd an epoll may watch is in place. */
static int event_restart_resume(void)
{
	size_t i;
	uint32_t k;
	int ret = receive_shared(), pass;

	for (i = 0; i < ntab; i++) {
		const struct ev_entry *e = &tab[i];

		/* An epoll shared with others is filled by its owner. */
		if (e->kind != EV_EPOLL || e->same_as >= 0 || e->receive || !e->placed)
			continue;
		for (pass = 0; pass < 2; pass++) {
			for (k = 0; k < e->n; k++) {
				const struct fdinfo_epoll *p = &epi[e->first + k];
				int disarmed = (p->events & EPOLLONESHOT) && !(p->events & ~EPOLL_PRIVATE);

				if (disarmed != (pass == 0))
					continue;
				if ((disarmed ? add_disarmed(e, p) : add_interest(e, p, p->events)) < 0)
					ret = -1;
			}
		}
	}
	return ret;
}

const struct cryo_plugin event_plugin = {
	.name = "event",
	.api = CRYO_PLUGIN_API,
	.pre_ckpt = event_pre_ckpt,
	.elect = event_elect,
	.drain = event_drain,
	.ckpt = event_ckpt,
	.resume = event_resume,
	.restart = event_restart,
	.restart_share = event_restart_share,
	.restart_refill = event_restart_refill,
	.restart_resume = event_restart_resume,
};
