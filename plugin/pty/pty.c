/* The pty plugin: pseudo-terminals across every process of the computation.
 *
 * A pty is a master (an open of /dev/ptmx) and its slave (/dev/pts/N). The
 * process that owns the master's description (the F_SETOWN election,
 * plugin/owner.h) saves the slave's modes (termios) and the window size;
 * each process notes whether it leads a session whose controlling terminal
 * is a pty, and the terminal's foreground process group.
 *
 * Restart (plugin/share.h):
 *   restart_share   the master's owner opens /dev/ptmx, unlocks it, sets
 *                   the window size and the slave's modes, and sends the
 *                   master to every process (keyed by the old pty number).
 *   restart_refill  each slave description's owner opens the new slave
 *                   from the master (TIOCGPTPEER, its saved flags, no
 *                   controlling terminal) and sends it on.
 *                   A session leader makes its pty its controlling
 *                   terminal again (TIOCSCTTY).
 *   restart_resume  every process puts masters and slaves onto its fd
 *                   numbers and reopens /dev/tty where it had it; a session
 *                   leader sets the terminal's foreground group.
 * The slave's number is another after a restart (/dev/pts/M): a program
 * that kept the name sees the old one.
 *
 * The user's terminal (one of cryo_launch's stdin, stdout, stderr: see
 * plugin/fd/stdio.h) is not the computation's: fds 0-2 are the restarting
 * side's; at other numbers it is dup'ed from the first of 0-2 that is a
 * terminal. Bytes in flight inside a pty (written, not yet read) are not
 * kept: a checkpoint loses them (doc/plugins.md). */
#define LOG_PREFIX "pty: "
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "plugin/fd/stdio.h"
#include "plugin/fdscan.h"
#include "plugin/owner.h"
#include "plugin/pty/pty.h"
#include "plugin/share.h"

#define PTY_MAX 1024
#define TAG_MASTER 0x6d617374u
#define TAG_SLAVE 0x736c6176u

/* The kernel's struct termios (TCGETS/TCSETS), not glibc's. */
struct ktermios {
	uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
	uint8_t c_line;
	uint8_t c_cc[19];
};

struct pty_ent {
	int fd;
	unsigned flags;
	int kind;		/* enum pty_kind */
	int32_t index;		/* the pty's number at checkpoint time */
	int same_as;
	int outer;
	int desc_owner;
	int32_t owner_vpid;
	struct f_owner_ex own;
	int have_modes;		/* master's owner: tio and ws are valid */
	struct ktermios tio;
	struct winsize ws;
	int master;		/* restart: the new master (first entry of the pty) */
	int tmp;		/* restart: this slave description */
};

static struct pty_ent *tab;	/* ckpt_mem: in the image */
static size_t ntab;
static struct { int fd; uint64_t rdev; struct f_owner_ex own; } *notes;
static size_t nnotes;
/* The session: this process leads it, its controlling terminal is pty
 * ctty_index (-1: none or not a pty), whose foreground group is fg_vpgid. */
static int leader, ctty_index = -1;
static int32_t fg_vpgid;

static int note(int fd, const struct stat *st, void *arg)
{
	(void)arg;
	if (pty_kind(st) == PTY_NONE || nnotes >= PTY_MAX)
		return 0;
	notes[nnotes].fd = fd;
	notes[nnotes].rdev = st->st_rdev;
	owner_get(fd, &notes[nnotes].own);
	nnotes++;
	return 0;
}

static int pty_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(PTY_MAX * sizeof(*tab));
	if (!notes)
		notes = ckpt_mem(PTY_MAX * sizeof(*notes));
	if (!tab || !notes)
		return -1;
	nnotes = 0;
	return fdscan_each(note, NULL) < 0 ? -1 : 0;
}

static int32_t slave_index(dev_t rdev)
{
	return (int32_t)((major(rdev) - 136) * 256 + minor(rdev));
}

static int collect(int fd, const struct stat *st, void *arg)
{
	struct pty_ent *e;
	unsigned long long pos;
	int kind = pty_kind(st);
	unsigned n = 0;

	(void)arg;
	if (kind == PTY_NONE)
		return 0;
	if (ntab >= PTY_MAX) {
		log_err("more than %d terminal fds", PTY_MAX);
		return -1;
	}
	e = &tab[ntab++];
	nolibc_memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->kind = kind;
	e->same_as = -1;
	e->master = e->tmp = -1;
	e->outer = kind == PTY_SLAVE && stdio_is_outer(st);
	fdscan_info(fd, &pos, &e->flags);
	if (kind == PTY_MASTER)
		e->index = sys_failed(sys_ioctl(fd, TIOCGPTN, &n)) ? -1 : (int32_t)n;
	else if (kind == PTY_SLAVE)
		e->index = slave_index(st->st_rdev);
	else
		e->index = -1;	/* /dev/tty: reopened after the session has its terminal */
	for (size_t i = 0; i < nnotes; i++)
		if (notes[i].fd == fd && notes[i].rdev == st->st_rdev)
			e->own = notes[i].own;
	return 0;
}

/* Reads the session fields of /proc/self/stat: session, tty_nr, tpgid. */
static void read_session(void)
{
	char buf[1024], *p;
	long f = sys_open("/proc/self/stat", O_RDONLY | O_CLOEXEC, 0), n;
	long long v[8];
	int i;

	leader = 0;
	ctty_index = -1;
	if (sys_failed(f))
		return;
	n = sys_read((int)f, buf, sizeof(buf) - 1);
	sys_close((int)f);
	if (n <= 0)
		return;
	buf[n] = '\0';
	p = NULL;
	for (char *q = buf; *q; q++)
		if (*q == ')')
			p = q;	/* the last one: the name may hold ')' */
	if (!p)
		return;
	p += 2;	/* ") " then state */
	while (*p && *p != ' ')
		p++;
	/* ppid pgrp session tty_nr tpgid */
	for (i = 0; i < 5; i++) {
		long long x = 0, neg = 0;

		while (*p == ' ')
			p++;
		if (*p == '-') {
			neg = 1;
			p++;
		}
		while (*p >= '0' && *p <= '9')
			x = x * 10 + (*p++ - '0');
		v[i] = neg ? -x : x;
	}
	leader = v[2] == vpid_kernel_pid();
	{
		/* tty_nr: major in bits 8-19, minor in bits 0-7 and 20-31 */
		unsigned ma = (unsigned)((v[3] >> 8) & 0xfff), mi = (unsigned)((v[3] & 0xff) | ((v[3] >> 12) & 0xfff00));

		if (ma >= 136 && ma <= 143)
			ctty_index = (int)((ma - 136) * 256 + mi);
	}
	fg_vpgid = v[4] > 0 ? vpid_group_to_virt((pid_t)v[4]) : 0;
}

static int pty_elect(void)
{
	pid_t pid = vpid_kernel_pid();

	ntab = 0;
	if (!tab || fdscan_each(collect, NULL) != 0)
		return -1;
	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];

		for (size_t j = 0; j < i; j++)
			if (tab[j].same_as < 0 && tab[j].kind == e->kind && tab[j].index == e->index &&
			    sys_call5(__NR_kcmp, pid, pid, KCMP_FILE, tab[j].fd, e->fd) == 0) {
				e->same_as = (int)j;
				break;
			}
		if (e->same_as < 0 && !e->outer && e->kind != PTY_CTTY)
			owner_mark(e->fd);
	}
	read_session();
	return 0;
}

static int pty_drain(void)
{
	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];
		long s;

		if (e->outer || e->kind == PTY_CTTY)
			continue;
		if (e->same_as >= 0) {
			e->desc_owner = tab[e->same_as].desc_owner;
			e->owner_vpid = tab[e->same_as].owner_vpid;
			continue;
		}
		e->desc_owner = owner_read(e->fd, &e->owner_vpid);
		if (!e->desc_owner || e->kind != PTY_MASTER)
			continue;
		/* The slave's modes, read through a slave of our own. */
		s = sys_ioctl(e->fd, TIOCGPTPEER, (void *)(long)(O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
		if (sys_failed(s) || sys_failed(sys_ioctl((int)s, TCGETS, &e->tio)) ||
		    sys_failed(sys_ioctl(e->fd, TIOCGWINSZ, &e->ws))) {
			log_warn("fd %d: the modes of pty %d cannot be read; it comes back with defaults", e->fd,
				 e->index);
		} else {
			e->have_modes = 1;
		}
		if (!sys_failed(s))
			sys_close((int)s);
	}
	return 0;
}

static int pty_resume(void)
{
	for (size_t i = 0; i < ntab; i++)
		if (!tab[i].outer && tab[i].same_as < 0 && tab[i].kind != PTY_CTTY)
			owner_set(tab[i].fd, &tab[i].own, 0);
	return 0;
}

/* ---- restart ---- */

static uint64_t tag_of(uint32_t kind, int32_t index, int32_t owner, unsigned mode)
{
	uint64_t v[3] = { kind | (uint64_t)mode << 32, (uint32_t)index, (uint32_t)owner };

	return share_tag(v, 3);
}

static int top_fd(void)
{
	int top = 3;

	for (size_t i = 0; i < ntab; i++)
		if (tab[i].fd >= top)
			top = tab[i].fd + 1;
	return top;
}

static int lift(long fd, int top)
{
	long moved;

	if (sys_failed(fd))
		return -1;
	moved = sys_fcntl((int)fd, F_DUPFD_CLOEXEC, top);
	sys_close((int)fd);
	return sys_failed(moved) ? -1 : (int)moved;
}

static int pty_restart(void)
{
	for (size_t i = 0; i < ntab; i++)
		share_note_fd(tab[i].fd);
	return 0;
}

static int pty_restart_share(void)
{
	int top = top_fd(), ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];
		int32_t id = e->index;
		int unlock = 0, m, s;

		if (e->kind != PTY_MASTER || !e->desc_owner || e->same_as >= 0)
			continue;
		m = lift(sys_open("/dev/ptmx", (int)((e->flags & (O_ACCMODE | O_NONBLOCK)) | O_NOCTTY | O_CLOEXEC), 0),
			 top);
		if (m < 0 || sys_failed(sys_ioctl(m, TIOCSPTLCK, &unlock))) {
			log_err("fd %d: cannot open a new pty for pty %d", e->fd, e->index);
			ret = -1;
			continue;
		}
		if (e->have_modes) {
			s = (int)sys_ioctl(m, TIOCGPTPEER, (void *)(long)(O_RDWR | O_NOCTTY | O_CLOEXEC));
			if (s < 0 || sys_failed(sys_ioctl(s, TCSETS, &e->tio)) ||
			    sys_failed(sys_ioctl(m, TIOCSWINSZ, &e->ws)))
				log_warn("fd %d: the modes of pty %d are not restored", e->fd, e->index);
			if (s >= 0)
				sys_close(s);
		}
		if (share_broadcast(tag_of(TAG_MASTER, e->index, 0, 0), &id, sizeof(id), &m, 1) < 0)
			ret = -1;
		sys_close(m);
	}
	return ret;
}

static int pty_restart_refill(void)
{
	int top = top_fd(), ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];
		unsigned nfds = 0;
		int32_t id = -1;
		int first = 1, m = -1;

		e->master = e->tmp = -1;
		if (e->outer || e->kind == PTY_CTTY)
			continue;
		for (size_t j = 0; j < i; j++)
			if (!tab[j].outer && tab[j].kind != PTY_CTTY && tab[j].index == e->index)
				first = 0;
		if (!first)
			continue;
		if (share_take(tag_of(TAG_MASTER, e->index, 0, 0), &id, sizeof(id), &m, 1, &nfds) < 0 || nfds != 1 ||
		    id != e->index) {
			log_warn("fd %d: pty %d was not remade (its master is not in the computation); it stays closed",
				 e->fd, e->index);
			ret = -1;
			continue;
		}
		e->master = m;
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];
		unsigned mode = e->flags & O_ACCMODE;
		int m = -1, s;

		if (e->outer || e->kind != PTY_SLAVE || !e->desc_owner || e->same_as >= 0)
			continue;
		for (size_t j = 0; j < ntab; j++)
			if (!tab[j].outer && tab[j].index == e->index && tab[j].master >= 0)
				m = tab[j].master;
		if (m < 0)
			continue;
		s = lift(sys_ioctl(m, TIOCGPTPEER, (void *)(long)((e->flags & (O_ACCMODE | O_NONBLOCK)) | O_NOCTTY)),
			 top);
		if (s < 0) {
			log_err("fd %d: cannot open the new slave of pty %d", e->fd, e->index);
			ret = -1;
			continue;
		}
		owner_set(s, &e->own, 1);
		if (share_broadcast(tag_of(TAG_SLAVE, e->index, e->owner_vpid, mode), NULL, 0, &s, 1) < 0)
			ret = -1;
		sys_close(s);
	}
	/* A session leader makes its pty the controlling terminal again now,
	 * so that at RESUME every process of the session can open /dev/tty. */
	if (leader && ctty_index >= 0) {
		int m = -1;
		long s, r;

		for (size_t j = 0; j < ntab; j++)
			if (tab[j].index == ctty_index && tab[j].master >= 0)
				m = tab[j].master;
		s = m < 0 ? -ENOENT : sys_ioctl(m, TIOCGPTPEER, (void *)(long)(O_RDWR | O_NOCTTY | O_CLOEXEC));
		r = sys_failed(s) ? s : sys_ioctl((int)s, TIOCSCTTY, 0);
		if (sys_failed(r))
			log_syserr((int)-r, "pty %d: make it the controlling terminal again", ctty_index);
		if (!sys_failed(s))
			sys_close((int)s);
	}
	return ret;
}

static int pty_restart_resume(void)
{
	int ret = 0, ctty_fd = -1;

	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];
		unsigned nfds = 0;
		int fd = -1;

		if (e->outer || e->kind != PTY_SLAVE || e->same_as >= 0)
			continue;
		if (share_take(tag_of(TAG_SLAVE, e->index, e->owner_vpid, e->flags & O_ACCMODE), NULL, 0, &fd, 1,
			       &nfds) < 0 || nfds != 1) {
			log_warn("fd %d: no slave of pty %d from process %d; it stays closed", e->fd, e->index,
				 (int)e->owner_vpid);
			ret = -1;
			continue;
		}
		e->tmp = fd;
	}
	for (size_t i = 0; i < ntab; i++) {
		const struct pty_ent *e = &tab[i];
		int src = -1;
		long r;

		if (e->kind == PTY_CTTY) {
			long t = sys_open("/dev/tty", (int)((e->flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC), 0);

			if (sys_failed(t)) {
				log_syserr((int)-t, "fd %d: reopen /dev/tty", e->fd);
				ret = -1;
				continue;
			}
			r = sys_dup3((int)t, e->fd, (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
			sys_close((int)t);
			if (sys_failed(r))
				log_syserr((int)-r, "fd %d: dup3", e->fd);
			continue;
		}
		if (e->outer) {
			for (int k = 0; k < 3 && src < 0; k++) {
				struct ktermios t;

				if (e->fd > 2 && !sys_failed(sys_ioctl(k, TCGETS, &t)))
					src = k;
			}
			if (e->fd > 2 && src < 0)
				log_warn("fd %d: the user's terminal has no counterpart here; it stays closed", e->fd);
		} else if (e->kind == PTY_MASTER) {
			for (size_t j = 0; j < ntab; j++)
				if (!tab[j].outer && tab[j].index == e->index && tab[j].master >= 0)
					src = tab[j].master;
		} else {
			src = e->same_as >= 0 ? tab[e->same_as].tmp : e->tmp;
		}
		if (src < 0)
			continue;
		r = sys_dup3(src, e->fd, (e->flags & O_CLOEXEC) ? O_CLOEXEC : 0);
		if (sys_failed(r)) {
			log_syserr((int)-r, "fd %d: dup3", e->fd);
			ret = -1;
		}
		log_debug("fd %d: %s of pty %d from %d, flags %u", e->fd, e->kind == PTY_MASTER ? "master" : "slave",
			  e->index, src, e->flags);
		if (e->kind == PTY_SLAVE && !e->outer && e->index == ctty_index && ctty_fd < 0)
			ctty_fd = e->fd;
	}
	for (size_t i = 0; i < ntab; i++) {
		struct pty_ent *e = &tab[i];

		if (e->tmp >= 0)
			sys_close(e->tmp);
		if (e->master >= 0)
			sys_close(e->master);
		e->tmp = e->master = -1;
	}
	if (leader && ctty_index >= 0 && ctty_fd >= 0 && fg_vpgid) {
		pid_t pg = vpid_group_to_real(fg_vpgid);
		long r = sys_ioctl(ctty_fd, TIOCSPGRP, &pg);

		if (sys_failed(r))
			log_syserr((int)-r, "pty %d: set the foreground group %d", ctty_index, (int)fg_vpgid);
	}
	return ret;
}

const struct cryo_plugin pty_plugin = {
	.name = "pty",
	.api = CRYO_PLUGIN_API,
	.pre_ckpt = pty_pre_ckpt,
	.elect = pty_elect,
	.drain = pty_drain,
	.resume = pty_resume,
	.restart = pty_restart,
	.restart_share = pty_restart_share,
	.restart_refill = pty_restart_refill,
	.restart_resume = pty_restart_resume,
};
