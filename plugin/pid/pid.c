/* The pid plugin: wrappers of every libc call that takes or returns a
 * process id, translating between the program's virtual pids and the
 * kernel's (mtcp/vpid.h). Until a restart both are the same and each
 * wrapper costs one table lookup that finds nothing.
 *
 * Covered: getpid, getppid, gettid, kill, killpg, sigqueue, clock_getcpuclockid,
 * wait, waitpid, wait4,
 * waitid, getpgid, getpgrp, setpgid, getsid, setsid, tcgetpgrp, tcsetpgrp.
 * (si_pid in the siginfo a handler receives: mtcp/wrap_signal.c.)
 * Not yet: syscall() with those numbers, /proc/<pid> paths, signalfd's
 * ssi_pid, sched_* and prlimit on other processes
 * (doc/architecture.md). */
#define LOG_PREFIX "pid: "
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
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
		return -vpid_to_real(-p);
	return p;
}

static pid_t to_virt_ret(pid_t p)
{
	return p > 0 ? vpid_to_virt(p) : p;
}

CRYO_EXPORT pid_t getpid(void)
{
	pid_t v = vpid_self();

	return v ? v : vpid_kernel_pid();
}

CRYO_EXPORT pid_t getppid(void)
{
	return vpid_to_virt((pid_t)sys_call0(__NR_getppid));
}

CRYO_EXPORT pid_t gettid(void)
{
	pid_t tid = (pid_t)sys_gettid();

	return tid == vpid_kernel_pid() ? getpid() : threads_virt_tid(tid);
}

CRYO_EXPORT int kill(pid_t pid, int sig)
{
	REAL(int, kill, (pid_t, int));
	return real_kill(to_real_arg(pid), sig);
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
	return real_killpg(pgrp > 0 ? vpid_to_real(pgrp) : pgrp, sig);
}

CRYO_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
	REAL(pid_t, waitpid, (pid_t, int *, int));
	return to_virt_ret(real_waitpid(to_real_arg(pid), status, options));
}

CRYO_EXPORT pid_t wait(int *status)
{
	REAL(pid_t, wait, (int *));
	return to_virt_ret(real_wait(status));
}

CRYO_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	REAL(pid_t, wait4, (pid_t, int *, int, struct rusage *));
	return to_virt_ret(real_wait4(to_real_arg(pid), status, options, ru));
}

CRYO_EXPORT int waitid(idtype_t type, id_t id, siginfo_t *info, int options)
{
	int r;

	REAL(int, waitid, (idtype_t, id_t, siginfo_t *, int));
	if ((type == P_PID || type == P_PGID) && id > 0)
		id = (id_t)vpid_to_real((pid_t)id);
	r = real_waitid(type, id, info, options);
	if (r == 0 && info && info->si_pid > 0)
		info->si_pid = vpid_to_virt(info->si_pid);
	return r;
}

CRYO_EXPORT pid_t getpgid(pid_t pid)
{
	REAL(pid_t, getpgid, (pid_t));
	return to_virt_ret(real_getpgid(pid > 0 ? vpid_to_real(pid) : pid));
}

CRYO_EXPORT pid_t getpgrp(void)
{
	REAL(pid_t, getpgrp, (void));
	return to_virt_ret(real_getpgrp());
}

CRYO_EXPORT int setpgid(pid_t pid, pid_t pgid)
{
	REAL(int, setpgid, (pid_t, pid_t));
	return real_setpgid(pid > 0 ? vpid_to_real(pid) : pid, pgid > 0 ? vpid_to_real(pgid) : pgid);
}

CRYO_EXPORT pid_t getsid(pid_t pid)
{
	REAL(pid_t, getsid, (pid_t));
	return to_virt_ret(real_getsid(pid > 0 ? vpid_to_real(pid) : pid));
}

CRYO_EXPORT pid_t setsid(void)
{
	REAL(pid_t, setsid, (void));
	return to_virt_ret(real_setsid());
}

CRYO_EXPORT pid_t tcgetpgrp(int fd)
{
	REAL(pid_t, tcgetpgrp, (int));
	return to_virt_ret(real_tcgetpgrp(fd));
}

CRYO_EXPORT int tcsetpgrp(int fd, pid_t pgrp)
{
	REAL(int, tcsetpgrp, (int, pid_t));
	return real_tcsetpgrp(fd, pgrp > 0 ? vpid_to_real(pgrp) : pgrp);
}

static int pid_init(void)
{
	return vpid_map_reserve();
}

const struct cryo_plugin pid_plugin = {
	.name = "pid",
	.api = CRYO_PLUGIN_API,
	.init = pid_init,
};
