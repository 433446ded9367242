/* libc wrappers that create processes by copying this one: fork and
 * clone (see wrap_exec.h).
 *
 * fork: the child joins the computation from the library's pthread_atfork
 * child handler (ckpt_thread.c). After a restart the kernel may hand the
 * child a pid that the computation still uses as a virtual one (another
 * process's, a group's, this process's own, a thread's); the program would
 * then have two processes under one pid. Both sides see it (the child has
 * a copy of the same pid map): the child exits at once, before joining,
 * and this wrapper reaps it and forks again, as DMTCP does. The program
 * sees one fork (its pthread_atfork handlers run for each attempt, and the
 * discarded child's SIGCHLD may reach it).
 *
 * clone without CLONE_VM makes a process that fork's child handlers never
 * see: the function it runs is wrapped so that the child joins first, as a
 * forked one does (without the pid check: there is no retrying a clone).
 * clone with CLONE_VM (a thread, or a vfork-like child that execs, as in
 * glibc's posix_spawn) is passed through.
 *
 * vfork is a fork here. Its child would join only from the constructor of
 * the program it execs, and its parent, which the kernel holds until that
 * exec, could be parked and checkpointed before the new program registers:
 * a checkpoint with the parent and without its child. A forked child
 * registers before the parent can park (see fork below). The cost is a
 * copy of the page tables; a child that relies on writing its parent's
 * memory (which POSIX does not allow) would not work. dash and Python's
 * subprocess use vfork. */
#define LOG_PREFIX "fork: "
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/sys.h"
#include "mtcp/wrap_exec.h"
#include "mtcp/wrap_signal.h"

#define FORK_TRIES 64

static pid_t (*real_fork)(void);
static int (*real_clone)(int (*)(void *), void *, int, void *, ...);

CRYO_EXPORT pid_t fork(void)
{
	pid_t pid;
	int tries;

	if (!real_fork)
		real_fork = dlsym(RTLD_NEXT, "fork");
	for (tries = 1;; tries++) {
		sigset_t park, old;
		int ready;
		long r;

		/* Not parked between the fork and the child's registration
		 * (ckpt_fork_begin): a checkpoint either has both or neither. */
		sigemptyset(&park);
		sigaddset(&park, ckpt_signal);
		real_pthread_sigmask(SIG_BLOCK, &park, &old);
		ready = ckpt_fork_begin();
		pid = real_fork();
		if (pid != 0)
			ckpt_fork_wait(ready);
		else if (ready >= 0)
			close(ready);
		real_pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (pid <= 0 || tries == FORK_TRIES || !ckpt_pid_conflicts(pid))
			break;
		log_debug("child pid %d is a virtual pid in use: forking again", (int)pid);
		do
			r = sys_call4(__NR_wait4, pid, NULL, __WALL, NULL);
		while (r == -EINTR);
	}
	if (pid > 0 && tries == FORK_TRIES)
		log_warn("fork: %d children in a row got pids in use; pid %d may be ambiguous", tries,
			 (int)pid);
	return pid;
}

CRYO_EXPORT pid_t vfork(void)
{
	return fork();
}

struct clone_start {
	int (*fn)(void *);
	void *arg;
};

static int clone_child(void *p)
{
	struct clone_start s = *(struct clone_start *)p;

	ckpt_child_start();
	return s.fn(s.arg);
}

CRYO_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	struct clone_start s = { fn, arg };
	pid_t *ptid;
	void *tls;
	pid_t *ctid;
	va_list ap;

	if (!real_clone)
		real_clone = dlsym(RTLD_NEXT, "clone");
	va_start(ap, arg);
	ptid = va_arg(ap, pid_t *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if ((flags & (CLONE_VM | CLONE_THREAD)) || !fn)
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	/* s is on this stack, which the child has a copy of */
	return real_clone(clone_child, stack, flags, &s, ptid, tls, ctid);
}
