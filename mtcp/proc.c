/* Process-wide kernel state that the image carries besides memory and
 * threads: the prctl(PR_SET_MM_MAP) fields, auxv, the vdso's place, signal
 * actions, itimers, cwd, umask, the program's path, and pending signals.
 * Saved by the checkpoint thread (or, for pending signals, by each thread
 * in the park handler) while the application is frozen: raw syscalls and
 * fixed buffers only. Restored by the checkpoint thread after a restart,
 * before the user threads are released. */
#define LOG_PREFIX "proc: "
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/wrap_signal.h"

static struct itimerval saved_itimers[3];

/* Reads a small /proc file into buf (NUL-terminated). Bytes, or -1. */
static long read_small(const char *path, char *buf, size_t size)
{
	long fd = sys_open(path, O_RDONLY | O_CLOEXEC, 0), n, got = 0;

	if (sys_failed(fd)) {
		log_syserr((int)-fd, "open %s", path);
		return -1;
	}
	while ((size_t)got < size - 1 && (n = sys_read((int)fd, buf + got, size - 1 - (size_t)got)) > 0)
		got += n;
	sys_close((int)fd);
	buf[got] = '\0';
	return got;
}

static uint64_t parse_u64(const char **p)
{
	uint64_t v = 0;

	while (**p == ' ')
		(*p)++;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

/* Fields of /proc/self/stat after the command name, numbered as in proc(5). */
static int save_mm(struct image_process *p)
{
	char buf[2048];
	const char *s;
	uint64_t f[53] = { 0 };
	int i;

	if (read_small("/proc/self/stat", buf, sizeof(buf)) < 0)
		return -1;
	s = buf + nolibc_strlen(buf);
	while (s > buf && *s != ')')
		s--;
	if (*s != ')')
		return -1;
	s += 2;	/* ") " then field 3, the state */
	s++;	/* the state letter */
	for (i = 4; i <= 52; i++) {
		while (*s == ' ')
			s++;
		if (*s == '-')
			s++;
		f[i] = parse_u64(&s);
	}
	p->start_code = f[26];
	p->end_code = f[27];
	p->start_stack = f[28];
	p->start_data = f[45];
	p->end_data = f[46];
	p->start_brk = f[47];
	p->arg_start = f[48];
	p->arg_end = f[49];
	p->env_start = f[50];
	p->env_end = f[51];
	p->brk = (uint64_t)sys_brk(0);
	return 0;
}

static void save_auxv(struct image_process *p)
{
	long fd = sys_open("/proc/self/auxv", O_RDONLY | O_CLOEXEC, 0), n;

	if (sys_failed(fd))
		return;
	n = sys_read((int)fd, p->auxv, sizeof(p->auxv));
	sys_close((int)fd);
	if (n > 0)
		p->auxv_words = (uint32_t)(n / 8);
}

int proc_save(struct image_process *p)
{
	long n;
	int i;

	if (save_mm(p) < 0)
		return -1;
	save_auxv(p);
	for (i = 1; i <= 64; i++)
		if (i != SIGKILL && i != SIGSTOP)
			sys_rt_sigaction(i, NULL, &p->sigactions[i - 1]);
	for (i = 0; i < 3; i++)
		getitimer(i, &saved_itimers[i]);
	p->umask = umask(0);
	umask(p->umask);
	n = sys_call2(__NR_getcwd, p->cwd, sizeof(p->cwd));
	if (sys_failed(n))
		p->cwd[0] = '\0';
	n = sys_call4(__NR_readlinkat, AT_FDCWD, "/proc/self/exe", p->exe, sizeof(p->exe) - 1);
	p->exe[sys_failed(n) ? 0 : n] = '\0';
	return 0;
}

void proc_restore(const struct image_process *p)
{
	int i;

	for (i = 1; i <= 64; i++) {
		const struct image_sigaction *sa = &p->sigactions[i - 1];

		if (i == SIGKILL || i == SIGSTOP || (!sa->handler && !sa->flags && !sa->mask))
			continue;
		if (sys_failed(sys_rt_sigaction(i, sa, NULL)))
			log_warn("signal %d: its action could not be restored", i);
	}
	for (i = 0; i < 3; i++)
		if (saved_itimers[i].it_value.tv_sec || saved_itimers[i].it_value.tv_usec)
			setitimer(i, &saved_itimers[i], NULL);
	umask(p->umask);
	if (p->cwd[0] && chdir(p->cwd) < 0)
		log_pwarn("restore the working directory %s", p->cwd);
}

/* Parses "Name:\t<16 hex digits>" from a status file. */
static uint64_t status_mask(const char *buf, const char *name)
{
	const char *s = buf;
	size_t len = nolibc_strlen(name);
	uint64_t v = 0;

	while (*s) {
		if (!nolibc_strncmp(s, name, len)) {
			s += len;
			while (*s == ':' || *s == '\t' || *s == ' ')
				s++;
			for (; nolibc_hexval(*s) >= 0; s++)
				v = v << 4 | (uint64_t)nolibc_hexval(*s);
			return v;
		}
		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
	}
	return 0;
}

void proc_drain_signals(pid_t vtid, int shared)
{
	char buf[2048];
	struct timespec zero = { 0, 0 };
	int guard;

	/* Dequeue takes the thread's own queue first, so waiting only for
	 * signals that queue holds never touches the shared queue; the shared
	 * one is drained by the main thread after its own. */
	for (guard = 0; guard < CKPT_SIGPOOL; guard++) {
		uint64_t pend;
		long sig;
		int idx;

		if (read_small(shared ? "/proc/self/status" : "/proc/thread-self/status", buf, sizeof(buf)) < 0)
			return;
		pend = status_mask(buf, shared ? "ShdPnd" : "SigPnd");
		pend &= ~(1ull << (ckpt_signal - 1) | 1ull << (SIGKILL - 1) | 1ull << (SIGSTOP - 1));
		if (!pend)
			return;
		idx = __atomic_fetch_add(&ckpt_nsig, 1, __ATOMIC_ACQ_REL);
		if (idx >= CKPT_SIGPOOL) {
			log_warn("more than %d pending signals: the rest are lost", CKPT_SIGPOOL);
			return;
		}
		sig = sys_rt_sigtimedwait(&pend, ckpt_sigpool[idx].info, &zero);
		if (sys_failed(sig)) {
			ckpt_sigpool[idx].signo = 0;
			return;
		}
		/* Kept with a virtual sender: the kernel pid changes at a restart. */
		wrap_signal_virtualize((int)sig, (siginfo_t *)ckpt_sigpool[idx].info);
		ckpt_sigpool[idx].tid = shared ? 0 : (uint32_t)vtid;
		ckpt_sigpool[idx].signo = (uint32_t)sig;
	}
}

void proc_requeue_signals(pid_t vtid)
{
	int i, n = ckpt_nsig < CKPT_SIGPOOL ? ckpt_nsig : CKPT_SIGPOOL;
	pid_t pid = (pid_t)sys_getpid(), tid = (pid_t)sys_gettid();
	siginfo_t info;

	for (i = 0; i < n; i++) {
		struct image_siginfo *s = &ckpt_sigpool[i];
		long r;

		if (!s->signo || s->tid != (uint32_t)vtid)
			continue;
		nolibc_memcpy(&info, s->info, sizeof(info));
		wrap_signal_realize((int)s->signo, &info);
		if (vtid)
			r = sys_rt_tgsigqueueinfo(pid, tid, (int)s->signo, &info);
		else
			r = sys_rt_sigqueueinfo(pid, (int)s->signo, &info);
		if (sys_failed(r))
			log_syserr((int)-r, "re-queue pending signal %u", s->signo);
	}
}
