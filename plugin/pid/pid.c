/* The pid plugin: wrappers of every libc call that takes or returns a
 * process, thread, process group or session id, translating between the
 * program's virtual ids and the kernel's (mtcp/vpid.h; doc/pids.md). Until
 * a restart both are the same and each wrapper costs a lookup in an empty
 * table.
 *
 * Covered: getpid, getppid, gettid, kill, killpg, sigqueue, tgkill,
 * clock_getcpuclockid, wait, waitpid, wait3, wait4, waitid, getpgid, getpgrp,
 * setpgid, getsid, setsid, tcgetpgrp, tcsetpgrp, sched_setaffinity,
 * sched_getaffinity, sched_setscheduler, sched_getscheduler,
 * sched_setparam, sched_getparam, sched_rr_get_interval, prlimit,
 * getpriority and setpriority, pidfd_open, process_vm_readv and
 * process_vm_writev; syscall() with the numbers of those calls (and tkill,
 * rt_sigqueueinfo, rt_tgsigqueueinfo); /proc/<pid>/... paths (proc_path.c).
 * (si_pid in the siginfo a handler receives: mtcp/wrap_signal.c.)
 * Not translated: signalfd's ssi_pid, pids inside files the program reads
 * (/proc/<pid>/stat's ppid field, ps output), raw syscall instructions. */
#define LOG_PREFIX "pid: "
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_signal.h"
#include "plugin/pid/pid.h"

#define REAL(ret, name, args) \
	static ret(*real_##name) args; \
	if (!real_##name) \
		real_##name = dlsym(RTLD_NEXT, #name)

/* A pid argument that may name a process (> 0) or a group (< -1). */
static pid_t to_real_arg(pid_t p)
{
	if (p > 0)
		return vpid_to_real(p);
	if (p < -1)
		return -vpid_group_to_real(-p);
	return p;
}

static pid_t to_virt_ret(pid_t p)
{
	return p > 0 ? vpid_to_virt(p) : p;
}

static pid_t group_to_virt_ret(pid_t p)
{
	return p > 0 ? vpid_group_to_virt(p) : p;
}

pid_t pid_task_to_real(pid_t id)
{
	pid_t t;

	if (id <= 0)
		return id;
	t = threads_real_tid(id);	/* a thread of this process */
	return t != id ? t : vpid_to_real(id);
}

pid_t pid_task_to_virt(pid_t id)
{
	pid_t t;

	if (id <= 0)
		return id;
	if (id == vpid_owner())
		return vpid_self() ? vpid_self() : id;
	t = threads_virt_tid(id);
	return t != id ? t : vpid_to_virt(id);
}

/* A failed raw syscall as libc returns it. */
static long sys_ret(long r)
{
	if (sys_failed(r)) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

CRYO_EXPORT pid_t getpid(void)
{
	pid_t k = (pid_t)sys_getpid(), v = vpid_self();

	/* In a vfork child (which shares this memory) the kernel's pid differs
	 * from the owner's: the child is a new process, known by its own. */
	return v && k == vpid_owner() ? v : k;
}

CRYO_EXPORT pid_t getppid(void)
{
	return vpid_to_virt((pid_t)sys_call0(__NR_getppid));
}

CRYO_EXPORT pid_t gettid(void)
{
	pid_t tid = (pid_t)sys_gettid();

	if (tid == vpid_owner() && vpid_self())
		return vpid_self();
	return threads_virt_tid(tid);
}

CRYO_EXPORT int kill(pid_t pid, int sig)
{
	REAL(int, kill, (pid_t, int));
	return real_kill(to_real_arg(pid), sig);
}

CRYO_EXPORT int tgkill(pid_t tgid, pid_t tid, int sig)
{
	return (int)sys_ret(sys_tgkill(vpid_to_real(tgid), pid_task_to_real(tid), sig));
}

CRYO_EXPORT int sigqueue(pid_t pid, int sig, const union sigval value)
{
	REAL(int, sigqueue, (pid_t, int, const union sigval));
	/* glibc puts the kernel pid in si_pid: the receiver's trampoline or
	 * sigwaitinfo turns it back into ours. */
	return real_sigqueue(pid > 0 ? vpid_to_real(pid) : pid, sig, value);
}

CRYO_EXPORT int clock_getcpuclockid(pid_t pid, clockid_t *clk)
{
	REAL(int, clock_getcpuclockid, (pid_t, clockid_t *));
	return real_clock_getcpuclockid(pid > 0 ? vpid_to_real(pid) : pid, clk);
}

CRYO_EXPORT int killpg(pid_t pgrp, int sig)
{
	REAL(int, killpg, (pid_t, int));
	return real_killpg(pgrp > 0 ? vpid_group_to_real(pgrp) : pgrp, sig);
}

/* A wait blocked across a checkpoint is restarted by the kernel, in the
 * restarted process, with the kernel pid of the old incarnation: ECHILD,
 * and the epoch of the pid map has moved. Such a wait is made again, with
 * the pid translated anew. */
static int again(long r, unsigned epoch)
{
	return r < 0 && errno == ECHILD && vpid_epoch() != epoch;
}

CRYO_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	unsigned e;
	pid_t r;

	REAL(pid_t, waitpid, (pid_t, int *, int));
	do {
		e = vpid_epoch();
		r = real_waitpid(to_real_arg(pid), status, options);
	} while (again(r, e));
	return to_virt_ret(r);
}

CRYO_EXPORT pid_t wait(int *status)
{
	REAL(pid_t, wait, (int *));
	return to_virt_ret(real_wait(status));
}

CRYO_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	unsigned e;
	pid_t r;

	REAL(pid_t, wait4, (pid_t, int *, int, struct rusage *));
	do {
		e = vpid_epoch();
		r = real_wait4(to_real_arg(pid), status, options, ru);
	} while (again(r, e));
	return to_virt_ret(r);
}

/* dash waits with wait3, which glibc implements with its own wait4 call,
 * not through the PLT: wrapped here, or its children's pids are never
 * translated back after a restart. */
CRYO_EXPORT pid_t wait3(int *status, int options, struct rusage *ru)
{
	return wait4(-1, status, options, ru);
}

static id_t waitid_id(idtype_t type, id_t id)
{
	if (type == P_PID && (pid_t)id > 0)
		return (id_t)vpid_to_real((pid_t)id);
	if (type == P_PGID && (pid_t)id > 0)
		return (id_t)vpid_group_to_real((pid_t)id);
	return id;
}

CRYO_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	unsigned e;
	int r;

	REAL(int, waitid, (idtype_t, id_t, siginfo_t *, int));
	do {
		e = vpid_epoch();
		r = real_waitid(type, waitid_id(type, id), info, options);
	} while (again(r, e));
	if (r == 0 && info && info->si_pid > 0)
		info->si_pid = vpid_to_virt(info->si_pid);
	return r;
}

CRYO_EXPORT pid_t getpgid(pid_t pid)
{
	REAL(pid_t, getpgid, (pid_t));
	return group_to_virt_ret(real_getpgid(pid > 0 ? vpid_to_real(pid) : pid));
}

CRYO_EXPORT pid_t getpgrp(void)
{
	REAL(pid_t, getpgrp, (void));
	return group_to_virt_ret(real_getpgrp());
}

CRYO_EXPORT int setpgid(pid_t pid, pid_t pgid)
{
	REAL(int, setpgid, (pid_t, pid_t));
	return real_setpgid(pid > 0 ? vpid_to_real(pid) : pid, pgid > 0 ? vpid_group_to_real(pgid) : pgid);
}

CRYO_EXPORT pid_t getsid(pid_t pid)
{
	REAL(pid_t, getsid, (pid_t));
	return group_to_virt_ret(real_getsid(pid > 0 ? vpid_to_real(pid) : pid));
}

CRYO_EXPORT pid_t setsid(void)
{
	REAL(pid_t, setsid, (void));
	return group_to_virt_ret(real_setsid());
}

CRYO_EXPORT pid_t tcgetpgrp(int fd)
{
	REAL(pid_t, tcgetpgrp, (int));
	return group_to_virt_ret(real_tcgetpgrp(fd));
}

CRYO_EXPORT int tcsetpgrp(int fd, pid_t pgrp)
{
	REAL(int, tcsetpgrp, (int, pid_t));
	return real_tcsetpgrp(fd, pgrp > 0 ? vpid_group_to_real(pgrp) : pgrp);
}

/* ---- scheduling, limits, priorities: a process or a thread ---- */

CRYO_EXPORT int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t *set)
{
	REAL(int, sched_setaffinity, (pid_t, size_t, const cpu_set_t *));
	return real_sched_setaffinity(pid_task_to_real(pid), size, set);
}

CRYO_EXPORT int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set)
{
	REAL(int, sched_getaffinity, (pid_t, size_t, cpu_set_t *));
	return real_sched_getaffinity(pid_task_to_real(pid), size, set);
}

CRYO_EXPORT int sched_setscheduler(pid_t pid, int policy, const struct sched_param *p)
{
	REAL(int, sched_setscheduler, (pid_t, int, const struct sched_param *));
	return real_sched_setscheduler(pid_task_to_real(pid), policy, p);
}

CRYO_EXPORT int sched_getscheduler(pid_t pid)
{
	REAL(int, sched_getscheduler, (pid_t));
	return real_sched_getscheduler(pid_task_to_real(pid));
}

CRYO_EXPORT int sched_setparam(pid_t pid, const struct sched_param *p)
{
	REAL(int, sched_setparam, (pid_t, const struct sched_param *));
	return real_sched_setparam(pid_task_to_real(pid), p);
}

CRYO_EXPORT int sched_getparam(pid_t pid, struct sched_param *p)
{
	REAL(int, sched_getparam, (pid_t, struct sched_param *));
	return real_sched_getparam(pid_task_to_real(pid), p);
}

CRYO_EXPORT int sched_rr_get_interval(pid_t pid, struct timespec *t)
{
	REAL(int, sched_rr_get_interval, (pid_t, struct timespec *));
	return real_sched_rr_get_interval(pid_task_to_real(pid), t);
}

CRYO_EXPORT int prlimit(pid_t pid, enum __rlimit_resource res, const struct rlimit *nl, struct rlimit *ol)
{
	REAL(int, prlimit, (pid_t, enum __rlimit_resource, const struct rlimit *, struct rlimit *));
	return real_prlimit(pid > 0 ? vpid_to_real(pid) : pid, res, nl, ol);
}

CRYO_EXPORT int prlimit64(pid_t pid, enum __rlimit_resource res, const struct rlimit64 *nl,
			  struct rlimit64 *ol)
{
	REAL(int, prlimit64, (pid_t, enum __rlimit_resource, const struct rlimit64 *, struct rlimit64 *));
	return real_prlimit64(pid > 0 ? vpid_to_real(pid) : pid, res, nl, ol);
}

static id_t prio_who(int which, id_t who)
{
	if ((pid_t)who <= 0)
		return who;
	if (which == PRIO_PROCESS)
		return (id_t)pid_task_to_real((pid_t)who);
	if (which == PRIO_PGRP)
		return (id_t)vpid_group_to_real((pid_t)who);
	return who;	/* PRIO_USER: a uid */
}

CRYO_EXPORT int getpriority(__priority_which_t which, id_t who)
{
	REAL(int, getpriority, (__priority_which_t, id_t));
	return real_getpriority(which, prio_who(which, who));
}

CRYO_EXPORT int setpriority(__priority_which_t which, id_t who, int prio)
{
	REAL(int, setpriority, (__priority_which_t, id_t, int));
	return real_setpriority(which, prio_who(which, who), prio);
}

CRYO_EXPORT int pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)sys_ret(sys_call2(__NR_pidfd_open, pid > 0 ? vpid_to_real(pid) : pid, flags));
}

CRYO_EXPORT ssize_t process_vm_readv(pid_t pid, const struct iovec *l, unsigned long nl,
				     const struct iovec *r, unsigned long nr, unsigned long flags)
{
	return sys_ret(sys_call6(__NR_process_vm_readv, vpid_to_real(pid), (long)l, (long)nl, (long)r,
				 (long)nr, (long)flags));
}

CRYO_EXPORT ssize_t process_vm_writev(pid_t pid, const struct iovec *l, unsigned long nl,
				      const struct iovec *r, unsigned long nr, unsigned long flags)
{
	return sys_ret(sys_call6(__NR_process_vm_writev, vpid_to_real(pid), (long)l, (long)nl, (long)r,
				 (long)nr, (long)flags));
}

/* ---- syscall() ---- */

/* A siginfo the program queues itself names its own pid (virtual) as
 * the sender: the kernel pid goes out, the receiver translates back. */
static long queue_info(long nr, long tgid, long tid, int sig, const siginfo_t *info)
{
	siginfo_t copy;

	if (!info)
		return sys_ret(-EFAULT);
	copy = *info;
	wrap_signal_realize(sig, &copy);
	if (nr == __NR_rt_sigqueueinfo)
		return sys_ret(sys_rt_sigqueueinfo((int)vpid_to_real((pid_t)tgid), sig, &copy));
	return sys_ret(sys_rt_tgsigqueueinfo((int)vpid_to_real((pid_t)tgid), (int)pid_task_to_real((pid_t)tid),
					     sig, &copy));
}

CRYO_EXPORT long syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	REAL(long, syscall, (long, ...));
	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	switch (nr) {
	case __NR_getpid:
		return getpid();
	case __NR_getppid:
		return getppid();
	case __NR_gettid:
		return gettid();
	case __NR_kill:
		return kill((pid_t)a[0], (int)a[1]);
	case __NR_tgkill:
		return tgkill((pid_t)a[0], (pid_t)a[1], (int)a[2]);
	case __NR_tkill:
		return sys_ret(sys_call2(__NR_tkill, pid_task_to_real((pid_t)a[0]), a[1]));
	case __NR_rt_sigqueueinfo:
		return queue_info(nr, a[0], 0, (int)a[1], (const siginfo_t *)a[2]);
	case __NR_rt_tgsigqueueinfo:
		return queue_info(nr, a[0], a[1], (int)a[2], (const siginfo_t *)a[3]);
	case __NR_wait4:
		return wait4((pid_t)a[0], (int *)a[1], (int)a[2], (struct rusage *)a[3]);
	case __NR_waitid: {
		long r = sys_ret(sys_call5(__NR_waitid, a[0], (long)waitid_id((idtype_t)a[0], (id_t)a[1]), a[2],
					   a[3], a[4]));
		siginfo_t *info = (siginfo_t *)a[2];

		if (r == 0 && info && info->si_pid > 0)
			info->si_pid = vpid_to_virt(info->si_pid);
		return r;
	}
	case __NR_setpgid:
		return setpgid((pid_t)a[0], (pid_t)a[1]);
	case __NR_getpgid:
		return getpgid((pid_t)a[0]);
	case __NR_getpgrp:
		return getpgrp();
	case __NR_getsid:
		return getsid((pid_t)a[0]);
	case __NR_setsid:
		return setsid();
	case __NR_sched_setaffinity:
	case __NR_sched_getaffinity:
	case __NR_sched_setscheduler:
	case __NR_sched_getscheduler:
	case __NR_sched_setparam:
	case __NR_sched_getparam:
	case __NR_sched_rr_get_interval:
		return sys_ret(sys_call6(nr, pid_task_to_real((pid_t)a[0]), a[1], a[2], a[3], a[4], a[5]));
	case __NR_prlimit64:
	case __NR_pidfd_open:
	case __NR_process_vm_readv:
	case __NR_process_vm_writev:
		return sys_ret(sys_call6(nr, (pid_t)a[0] > 0 ? vpid_to_real((pid_t)a[0]) : a[0], a[1], a[2],
					 a[3], a[4], a[5]));
	case __NR_getpriority:
	case __NR_setpriority:
		return sys_ret(sys_call6(nr, a[0], (long)prio_who((int)a[0], (id_t)a[1]), a[2], a[3], a[4],
					 a[5]));
	default:
		return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
}

static int pid_init(void)
{
	proc_path_init();
	return vpid_map_reserve();
}

const struct cryo_plugin pid_plugin = {
	.name = "pid",
	.api = CRYO_PLUGIN_API,
	.init = pid_init,
};
