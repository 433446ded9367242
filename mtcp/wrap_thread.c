/* libc wrappers for the thread calls that hand glibc's cached tid of a
 * thread to the kernel. After a restart that cache still holds the first
 * run's (virtual) tid, which mutexes and pthread_join rely on, while the
 * kernel knows the thread by a new tid: these wrappers translate
 * (threads_real_tid) where glibc would pass the stale one.
 * Not yet covered: pthread_cancel, pthread_setaffinity_np and the
 * scheduling calls on another thread (doc/architecture.md). */
#define LOG_PREFIX "thread: "
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/sys.h"
#include "mtcp/wrap_signal.h"

/* The kernel's encoding of a thread's CPU-time clock (posix-timers.h). */
#define THREAD_CPUCLOCK(tid) ((clockid_t)((~(unsigned)(tid)) << 3) | 4 | 2)

static int (*real_pthread_kill)(pthread_t, int);
static int (*real_pthread_sigqueue)(pthread_t, int, const union sigval);
static int (*real_pthread_getcpuclockid)(pthread_t, clockid_t *);

#define RESOLVE(name) \
	do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

/* The kernel tid of a thread whose glibc tid is stale, else 0. */
static pid_t translated_tid(pthread_t th)
{
	pid_t vtid, tid;

	if (threads_tid_offset < 0)
		return 0;
	if (pthread_equal(th, pthread_self()))
		return 0;
	vtid = *(volatile pid_t *)((char *)th + threads_tid_offset);
	if (vtid <= 0)
		return 0;
	tid = threads_real_tid(vtid);
	return tid != vtid ? tid : 0;
}

CRYO_EXPORT int pthread_kill(pthread_t th, int sig)
{
	pid_t tid;
	long r;

	RESOLVE(pthread_kill);
	tid = translated_tid(th);
	if (!tid)
		return real_pthread_kill(th, sig);	/* glibc uses gettid() for itself */
	r = sys_tgkill((int)sys_getpid(), tid, sig);
	return sys_failed(r) ? (int)-r : 0;
}

CRYO_EXPORT int pthread_sigqueue(pthread_t th, int sig, const union sigval value)
{
	siginfo_t info;
	pid_t tid;
	long r;

	RESOLVE(pthread_sigqueue);
	tid = translated_tid(th);
	if (!tid)
		return real_pthread_sigqueue(th, sig, value);
	memset(&info, 0, sizeof(info));
	info.si_signo = sig;
	info.si_code = SI_QUEUE;
	info.si_pid = getpid();
	info.si_uid = getuid();
	info.si_value = value;
	r = sys_rt_tgsigqueueinfo((int)sys_getpid(), tid, sig, &info);
	return sys_failed(r) ? (int)-r : 0;
}

CRYO_EXPORT int pthread_getcpuclockid(pthread_t th, clockid_t *clk)
{
	pid_t tid;

	RESOLVE(pthread_getcpuclockid);
	/* glibc encodes its cached tid, stale for every thread after a restart,
	 * the caller included. */
	tid = pthread_equal(th, pthread_self()) ? (pid_t)sys_gettid() : translated_tid(th);
	if (!tid)
		return real_pthread_getcpuclockid(th, clk);
	*clk = THREAD_CPUCLOCK(tid);
	return 0;
}
