/* The pipe plugin: pipes and FIFOs, with the data in flight, across every
 * process of the computation.
 *
 * Checkpoint (every user thread of every process parked):
 *   pre_ckpt  note the program's own F_SETOWN of each pipe fd (read before
 *             any process marks, so every process reads the same value).
 *   elect     each process sets F_SETOWN(its kernel pid) on each of its
 *             pipe descriptions; the last one wins.
 *   drain     the process that reads its own pid back owns the description
 *             (one owner per open file description, computation-wide).
 *             Description owners then try flock(LOCK_EX|LOCK_NB) once per
 *             pipe: flock locks the inode, so exactly one process wins the
 *             pipe. That pipe owner copies the bytes in flight without
 *             consuming them: tee(2) into a pipe of its own, read from
 *             there into memory the image holds (if tee fails, read them
 *             out and write them back). Nothing to refill: the pipe never
 *             lost its data.
 *   resume    put the program's F_SETOWN back, drop the locks and the copy.
 *
 * Restart (plugin/share.h, one step per restart barrier):
 *   restart_share   each pipe owner makes a new pipe (a FIFO: opens its
 *                   path), sets its size, writes the saved bytes and sends
 *                   both ends to every process.
 *   restart_refill  each description owner opens its description anew
 *                   (/proc/self/fd/N of the received end, with its saved
 *                   flags and F_SETOWN) and sends it to every process.
 *   restart_resume  every process takes the descriptions it shares and
 *                   dup3()s them onto its fd numbers, close-on-exec as saved.
 * So fds that shared one description before (dup, fork) share one again,
 * with one O_NONBLOCK and one owner.
 *
 * Pipes of the user's stdio (CRYO_STDIO, plugin/fd/stdio.h) are left alone:
 * they are not the computation's, and after a restart fds 0-2 are the
 * restarting side's. Not kept: packet mode (O_DIRECT) boundaries; two
 * descriptions with the same access mode of one pipe owned by one process
 * are told apart by order only. */
#define LOG_PREFIX "pipe: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdint.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/fd/stdio.h"
#include "plugin/fdscan.h"
#include "plugin/pipe/pipe.h"
#include "plugin/share.h"

#define PIPE_MAX 4096
#define POOL_MAX (1ul << 20)

struct pipe_ent {
	int fd;
	unsigned flags;		/* fdinfo flags, O_CLOEXEC included */
	uint64_t dev, ino;
	int same_as;		/* earlier entry with this description here, or -1 */
	int first_of_pipe;	/* earliest entry of this pipe here */
	int outer;		/* the user's stdio: not ours */
	int desc_owner;		/* this process owns the description */
	int32_t owner_vpid;	/* who owns it */
	int pipe_owner;		/* this process saved the pipe and remakes it */
	int locked;		/* this entry's description holds the flock */
	struct f_owner_ex own;	/* the program's F_SETOWN_EX (kernel pid) */
	uint32_t size;		/* F_GETPIPE_SZ */
	uint64_t data_off, data_len;	/* pipe owner: the saved bytes */
	uint32_t path_off, path_len;	/* a FIFO's path in pool; 0 long: a pipe */
	int r, w;		/* restart, first_of_pipe: the new pipe's ends */
	int tmp;		/* restart: the description before it moves into place */
};

/* Program owners noted at pre_ckpt, by (dev, ino, fd). */
struct own_note {
	int fd;
	uint64_t ino;
	struct f_owner_ex own;
};

static struct pipe_ent *tab;	/* ckpt_mem: in the image */
static struct own_note *notes;
static char *pool;
static size_t ntab, nnotes, pool_used;
static unsigned char *data;	/* the saved bytes; mapped at drain, in the image */
static size_t data_len;

static uint64_t tag_of(uint32_t kind, uint64_t dev, uint64_t ino, int32_t owner, unsigned mode)
{
	uint64_t v[4] = { kind | (uint64_t)mode << 32, dev, ino, (uint32_t)owner };

	return share_tag(v, 4);
}

#define TAG_PIPE 0x70697065u	/* a pipe's two new ends */
#define TAG_DESC 0x64657363u	/* one description */

static int is_pipe(const struct stat *st)
{
	return S_ISFIFO(st->st_mode);
}

static int note_owner(int fd, const struct stat *st, void *arg)
{
	(void)arg;
	if (!is_pipe(st) || nnotes >= PIPE_MAX)
		return 0;
	notes[nnotes].fd = fd;
	notes[nnotes].ino = (uint64_t)st->st_ino;
	if (sys_failed(sys_fcntl(fd, F_GETOWN_EX, (long)&notes[nnotes].own)))
		notes[nnotes].own.pid = 0;
	nnotes++;
	return 0;
}

static int pipe_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(PIPE_MAX * sizeof(*tab));
	if (!notes)
		notes = ckpt_mem(PIPE_MAX * sizeof(*notes));
	if (!pool)
		pool = ckpt_mem(POOL_MAX);
	if (!tab || !notes || !pool)
		return -1;
	nnotes = 0;
	return fdscan_each(note_owner, NULL) < 0 ? -1 : 0;
}

static const char *path_of(const struct pipe_ent *e)
{
	return pool + e->path_off;
}

static int collect(int fd, const struct stat *st, void *arg)
{
	struct pipe_ent *e;
	char name[32];
	unsigned long long pos;
	long n;

	(void)arg;
	if (!is_pipe(st))
		return 0;
	if (ntab >= PIPE_MAX) {
		log_err("more than %d pipe fds", PIPE_MAX);
		return -1;
	}
	e = &tab[ntab++];
	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->same_as = -1;
	e->r = e->w = e->tmp = -1;
	e->outer = stdio_is_outer(st);
	fdscan_info(fd, &pos, &e->flags);
	for (size_t i = 0; i < nnotes; i++)
		if (notes[i].fd == fd && notes[i].ino == e->ino)
			e->own = notes[i].own;
	/* A FIFO's link is its path; an anonymous pipe's is "pipe:[INO]". */
	nolibc_snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	e->path_off = (uint32_t)pool_used;
	n = sys_call4(__NR_readlinkat, -100, name, pool + pool_used, 4095);
	if (sys_failed(n) || pool_used + 4096 + 1 > POOL_MAX || pool[pool_used] != '/')
		n = 0;
	pool[pool_used + (size_t)n] = '\0';
	e->path_len = (uint32_t)n;
	pool_used += (size_t)n + 1;
	return 0;
}

static int pipe_elect(void)
{
	struct f_owner_ex me = { F_OWNER_PID, vpid_kernel_pid() };
	pid_t pid = vpid_kernel_pid();

	ntab = pool_used = 0;
	data = NULL;
	data_len = 0;
	if (!tab || fdscan_each(collect, NULL) != 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];

		e->first_of_pipe = (int)i;
		for (size_t j = 0; j < i; j++) {
			if (tab[j].ino != e->ino || tab[j].dev != e->dev)
				continue;
			if (e->first_of_pipe == (int)i)
				e->first_of_pipe = (int)j;
			if (tab[j].same_as < 0 &&
			    sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, tab[j].fd, e->fd) == 0) {
				e->same_as = (int)j;
				break;
			}
		}
		if (e->same_as < 0 && !e->outer)
			sys_fcntl(e->fd, F_SETOWN_EX, (long)&me);
	}
	return 0;
}

/* Copies the bytes in flight of e's pipe into data + off without taking
 * them out. Their count, or -1 after logging. The copy is read through a
 * reading end of our own, opened through /proc (so no flag of the
 * program's changes), or the program's own reading end when the pipe is
 * not ours to open (another user's, inherited). */
static long copy_in_flight(const struct pipe_ent *e, size_t off)
{
	char name[32];
	long view, n, got = 0;
	int t[2] = { -1, -1 }, own_view = 1;

	nolibc_snprintf(name, sizeof(name), "/proc/self/fd/%d", e->fd);
	view = sys_open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
	if (sys_failed(view)) {
		long err = view;

		for (size_t j = 0; j < ntab && sys_failed(view); j++)
			if (tab[j].ino == e->ino && tab[j].dev == e->dev && (tab[j].flags & O_ACCMODE) != O_WRONLY)
				view = tab[j].fd;
		if (sys_failed(view)) {
			log_warn("fd %d: pipe %llu cannot be read (%s): it comes back empty", e->fd,
				 (unsigned long long)e->ino, err == -EACCES ? "another user's" : "no reading end");
			return 0;
		}
		own_view = 0;
	}
	n = sys_call2(__NR_pipe2, t, O_NONBLOCK | O_CLOEXEC);
	if (!sys_failed(n)) {
		sys_fcntl(t[1], F_SETPIPE_SZ, (long)e->size);
		n = sys_call4(__NR_tee, (int)view, t[1], e->size, SPLICE_F_NONBLOCK);
	}
	if (n == -EAGAIN) {
		n = 0;	/* empty */
	} else if ((sys_failed(n) || (t[0] >= 0 && (size_t)n > e->size)) && own_view) {
		/* No tee: take the bytes out and put them back. */
		long r, wv;

		for (got = 0; (size_t)got < e->size; got += r) {
			r = sys_read((int)view, data + off + got, e->size - (size_t)got);
			if (r <= 0)
				break;
		}
		wv = sys_open(name, O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
		r = sys_failed(wv) ? wv : sys_write((int)wv, data + off, (size_t)got);
		if (!sys_failed(wv))
			sys_close((int)wv);
		if (got && r != got) {
			log_syserr(r < 0 ? (int)-r : EIO, "fd %d: put %ld bytes back", e->fd, got);
			got = -1;
		}
		n = -1;
	}
	for (long k = 0; n > 0 && k < n;) {
		long r = sys_read(t[0], data + off + k, (size_t)(n - k));

		if (r <= 0) {
			log_syserr(r < 0 ? (int)-r : EIO, "fd %d: read the copy", e->fd);
			got = -1;
			break;
		}
		k += r;
		got = k;
	}
	if (n < 0 && !own_view)
		log_warn("fd %d: the bytes in flight of pipe %llu cannot be copied: it comes back empty",
			 e->fd, (unsigned long long)e->ino);
	if (t[0] >= 0) {
		sys_close(t[0]);
		sys_close(t[1]);
	}
	if (own_view)
		sys_close((int)view);
	return got;
}

static int pipe_drain(void)
{
	pid_t pid = vpid_kernel_pid();
	size_t need = 0, off = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		struct f_owner_ex o;

		if (e->outer)
			continue;
		if (e->same_as >= 0) {
			e->desc_owner = tab[e->same_as].desc_owner;
			e->owner_vpid = tab[e->same_as].owner_vpid;
			continue;
		}
		if (sys_failed(sys_fcntl(e->fd, F_GETOWN_EX, (long)&o)))
			o.pid = 0;
		e->desc_owner = o.pid == pid;
		e->owner_vpid = vpid_to_virt(o.pid);
	}
	/* One flock attempt per pipe, by a description this process owns. */
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		int tried = 0;

		if (e->outer || !e->desc_owner || e->same_as >= 0)
			continue;
		for (size_t j = 0; j < i; j++)
			if (tab[j].ino == e->ino && tab[j].dev == e->dev && tab[j].desc_owner && !tab[j].outer)
				tried = 1;
		if (tried)
			continue;
		if (!sys_failed(sys_call2(__NR_flock, e->fd, LOCK_EX | LOCK_NB))) {
			e->locked = 1;
			for (size_t j = 0; j < ntab; j++)
				if (tab[j].ino == e->ino && tab[j].dev == e->dev)
					tab[j].pipe_owner = 1;
		}
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		long sz;

		if (!e->pipe_owner || e->first_of_pipe != (int)i)
			continue;
		sz = sys_fcntl(e->fd, F_GETPIPE_SZ, 0);
		e->size = sys_failed(sz) ? 65536 : (uint32_t)sz;
		need += e->size;
	}
	if (need) {
		long p = sys_mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (sys_failed(p)) {
			log_syserr((int)-p, "map %zu bytes for pipe data", need);
			return -1;
		}
		data = (unsigned char *)p;
		data_len = need;
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		long n;

		if (!e->pipe_owner || e->first_of_pipe != (int)i)
			continue;
		n = copy_in_flight(e, off);
		if (n < 0)
			return -1;
		e->data_off = off;
		e->data_len = (uint64_t)n;
		off += e->size;
		log_debug("fd %d: pipe %llu, %ld bytes in flight", e->fd, (unsigned long long)e->ino, n);
	}
	return 0;
}

static void drop_data(void)
{
	if (data)
		sys_munmap(data, data_len);
	data = NULL;
	data_len = 0;
}

static int pipe_resume(void)
{
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];

		if (e->outer || e->same_as >= 0)
			continue;
		sys_fcntl(e->fd, F_SETOWN_EX, (long)&e->own);
		if (e->locked)
			sys_call2(__NR_flock, e->fd, LOCK_UN);
		e->locked = 0;
	}
	drop_data();
	return 0;
}

/* ---- restart ---- */

static int pipe_restart(void)
{
	for (size_t i = 0; i < ntab; i++)
		share_note_fd(tab[i].fd);
	return 0;
}

static int make_pipe(struct pipe_ent *e, int t[2])
{
	long r;

	if (e->path_len) {
		long rw = sys_open(path_of(e), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);

		if (sys_failed(rw)) {
			log_syserr((int)-rw, "fd %d: open FIFO %s", e->fd, path_of(e));
			return -1;
		}
		t[0] = (int)sys_open(path_of(e), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0);
		t[1] = (int)sys_open(path_of(e), O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0);
		sys_close((int)rw);
		if (t[0] < 0 || t[1] < 0) {
			log_err("fd %d: cannot reopen FIFO %s", e->fd, path_of(e));
			if (t[0] >= 0)
				sys_close(t[0]);
			if (t[1] >= 0)
				sys_close(t[1]);
			return -1;
		}
	} else {
		r = sys_call2(__NR_pipe2, t, O_NONBLOCK | O_CLOEXEC);
		if (sys_failed(r)) {
			log_syserr((int)-r, "fd %d: pipe2", e->fd);
			return -1;
		}
	}
	if (e->size && sys_failed(r = sys_fcntl(t[1], F_SETPIPE_SZ, (long)e->size)))
		log_syserr((int)-r, "fd %d: set the pipe's size to %u", e->fd, e->size);
	if (e->data_len) {
		r = sys_write(t[1], data + e->data_off, e->data_len);
		if (r != (long)e->data_len)
			log_syserr(r < 0 ? (int)-r : EIO, "fd %d: put %llu bytes back in the pipe", e->fd,
				   (unsigned long long)e->data_len);
	}
	return 0;
}

static int pipe_restart_share(void)
{
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		uint64_t id[2] = { e->dev, e->ino };
		int t[2];

		if (e->outer || !e->pipe_owner || e->first_of_pipe != (int)i)
			continue;
		if (make_pipe(e, t) < 0) {
			ret = -1;
			continue;
		}
		if (share_broadcast(tag_of(TAG_PIPE, e->dev, e->ino, 0, 0), id, sizeof(id), t, 2) < 0)
			ret = -1;
		sys_close(t[0]);
		sys_close(t[1]);
	}
	drop_data();
	return ret;
}

static int top_fd(void)
{
	int top = 3;

	for (size_t i = 0; i < ntab; i++)
		if (tab[i].fd >= top)
			top = tab[i].fd + 1;
	return top;
}

static int pipe_restart_refill(void)
{
	struct f_owner_ex none = { F_OWNER_PID, 0 };
	int top = top_fd(), ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		uint64_t id[2];
		unsigned nfds = 0;
		int fds[2];

		if (e->outer || e->first_of_pipe != (int)i)
			continue;
		if (share_take(tag_of(TAG_PIPE, e->dev, e->ino, 0, 0), id, sizeof(id), fds, 2, &nfds) < 0 ||
		    nfds != 2 || id[0] != e->dev || id[1] != e->ino) {
			log_warn("fd %d: pipe %llu was not remade by its owner; it stays closed", e->fd,
				 (unsigned long long)e->ino);
			for (unsigned k = 0; k < nfds; k++)
				sys_close(fds[k]);
			ret = -1;
			continue;
		}
		e->r = fds[0];
		e->w = fds[1];
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		const struct pipe_ent *p = &tab[e->first_of_pipe];
		unsigned mode = e->flags & O_ACCMODE;
		char name[32];
		long fd, moved;

		if (e->outer || !e->desc_owner || e->same_as >= 0 || p->r < 0)
			continue;
		nolibc_snprintf(name, sizeof(name), "/proc/self/fd/%d", mode == O_WRONLY ? p->w : p->r);
		fd = sys_open(name, (int)((e->flags & (O_ACCMODE | O_NONBLOCK | O_DIRECT)) | O_CLOEXEC), 0);
		if (sys_failed(fd)) {
			log_syserr((int)-fd, "fd %d: reopen the pipe", e->fd);
			ret = -1;
			continue;
		}
		moved = sys_fcntl((int)fd, F_DUPFD_CLOEXEC, top);
		sys_close((int)fd);
		if (sys_failed(moved)) {
			log_syserr((int)-moved, "fd %d: move", e->fd);
			ret = -1;
			continue;
		}
		if (e->own.pid) {
			struct f_owner_ex o = e->own;

			o.pid = o.type == F_OWNER_TID ? o.pid : vpid_to_real(o.pid);
			sys_fcntl((int)moved, F_SETOWN_EX, (long)&o);
		} else {
			sys_fcntl((int)moved, F_SETOWN_EX, (long)&none);
		}
		if (share_broadcast(tag_of(TAG_DESC, e->dev, e->ino, e->owner_vpid, mode), NULL, 0,
				    (int[]){ (int)moved }, 1) < 0)
			ret = -1;
		sys_close((int)moved);
	}
	return ret;
}

static int pipe_restart_resume(void)
{
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];
		unsigned nfds = 0;
		int fd = -1;

		e->tmp = -1;
		if (e->outer || e->same_as >= 0 || tab[e->first_of_pipe].r < 0)
			continue;
		if (share_take(tag_of(TAG_DESC, e->dev, e->ino, e->owner_vpid, e->flags & O_ACCMODE), NULL, 0,
			       &fd, 1, &nfds) < 0 || nfds != 1) {
			log_warn("fd %d: pipe %llu: no description from process %d; it stays closed", e->fd,
				 (unsigned long long)e->ino, (int)e->owner_vpid);
			ret = -1;
			continue;
		}
		e->tmp = fd;
	}
	for (size_t i = 0; i < ntab; i++) {
		const struct pipe_ent *e = &tab[i];
		int src = e->same_as >= 0 ? tab[e->same_as].tmp : e->tmp;

		if (src >= 0 && share_place(src, e->fd, e->flags) < 0)
			ret = -1;
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pipe_ent *e = &tab[i];

		if (e->tmp >= 0)
			sys_close(e->tmp);
		if (e->r >= 0)
			sys_close(e->r);
		if (e->w >= 0)
			sys_close(e->w);
		e->tmp = e->r = e->w = -1;
		e->locked = 0;
	}
	log_debug("%zu pipe fds restored", ntab);
	return ret;
}

const struct cryo_plugin pipe_plugin = {
	.name = "pipe",
	.api = CRYO_PLUGIN_API,
	.pre_ckpt = pipe_pre_ckpt,
	.elect = pipe_elect,
	.drain = pipe_drain,
	.resume = pipe_resume,
	.restart = pipe_restart,
	.restart_share = pipe_restart_share,
	.restart_refill = pipe_restart_refill,
	.restart_resume = pipe_restart_resume,
};
