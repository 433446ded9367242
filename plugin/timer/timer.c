/* The timer plugin: the process's POSIX timers (timer_create) come back
 * after a restart with the same timer ids, clock, notification (signal
 * number and sigev_value, SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID to the
 * same thread) and interval, re-armed with the time that was left.
 * (alarm() and setitimer() are mtcp/proc.c's.)
 *
 * Observe, don't track: at checkpoint time (WRITE, threads parked, raw
 * syscalls, memory reserved in pre_ckpt) the plugin reads
 * /proc/self/timers, which shows every timer's id, signal, sigev_value,
 * notification and clock, and asks timer_gettime for the time left and
 * the interval. Thread ids are kept virtual. After a restart (threads
 * parked, before the coordinator) each timer is created again under its
 * old id: the kernel takes the wanted id from timer_create's result
 * argument once prctl(PR_TIMER_CREATE_RESTORE_IDS) is on (recent kernels);
 * without it, ids come out in increasing order, so lower ones are taken by
 * placeholder timers until the wanted one comes, and dropped afterwards. A
 * timer whose id cannot be had is logged with both ids.
 * CRYO_TIMER_RESTORE_IDS=0 in the program's environment at restart time
 * forces that fallback (its test).
 *
 * Wrapped, because the kernel cannot show it: timer_create with
 * SIGEV_THREAD_ID takes a thread id, which the program knows as a virtual
 * one after a restart; and SIGEV_THREAD, which glibc runs with a helper
 * thread whose kernel tid it caches for ever (a SIGEV_THREAD timer created
 * after a restart would target a thread that no longer exists). cryo runs
 * SIGEV_THREAD timers itself, the way glibc does: a kernel timer with
 * SIGEV_THREAD_ID to one helper thread of cryo's, which waits for the
 * timer signal (32, glibc's own SIGTIMER, out of the program's range) and
 * starts a detached thread per expiration that calls the program's
 * function. The helper is a thread like the program's: it is checkpointed
 * and restarted with them, and its timers follow it by virtual tid. The
 * timer_t of such a timer is the kernel id, which glibc's timer_settime,
 * timer_gettime, timer_getoverrun and timer_delete take as they are.
 *
 * Not carried: overrun counts; TIMER_ABSTIME (a timer armed with an
 * absolute time is re-armed with the time that was left); thread CPU-time
 * clocks of the calling thread (CLOCK_THREAD_CPUTIME_ID: re-created on
 * the restarting thread's clock, with a warning). See doc/events.md. */
#define LOG_PREFIX "timer: "
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_signal.h"
#include "plugin/timer/timer.h"

#define TIMER_MAX 4096		/* timers per process */
#define TEXT_MAX (1ul << 20)	/* /proc/self/timers */
#define DUMMY_MAX 4096		/* placeholder timers without RESTORE_IDS */
#define THREAD_TIMERS 1024	/* SIGEV_THREAD timers run by cryo */
#define HELPER_SIGNAL 32	/* glibc's SIGTIMER: never the program's */

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

/* The kernel's struct sigevent, as the raw system call takes it. */
struct ksigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};
_Static_assert(sizeof(struct ksigevent) == 64, "struct sigevent is 64 bytes");

struct saved_timer {
	struct timer_proc p;	/* pid: a virtual tid for SIGEV_THREAD_ID */
	struct itimerspec spec;	/* time left and interval */
};

static struct saved_timer *saved;	/* ckpt_mem: in the image */
static size_t nsaved;
static char *text;			/* ckpt_scratch */
static int dummies[DUMMY_MAX];

/* ---- SIGEV_THREAD, run by cryo ---- */

struct thread_timer {
	int used;
	uint32_t gen;		/* changes at each reuse of the slot */
	int kid;		/* kernel timer id */
	void (*fn)(union sigval);
	union sigval value;
	size_t stacksize;	/* from the program's attributes, 0: default */
};

struct expiry {
	void (*fn)(union sigval);
	union sigval value;
};

static struct thread_timer tt[THREAD_TIMERS];
static pthread_mutex_t tt_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t helper_vtid;	/* 0 until the helper runs */
static pthread_once_t helper_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t helper_cv = PTHREAD_COND_INITIALIZER;

typedef int (*timer_create_fn)(clockid_t, struct sigevent *, timer_t *);
typedef int (*timer_delete_fn)(timer_t);

static timer_create_fn real_timer_create(void)
{
	static timer_create_fn fn;

	if (!fn)
		fn = (timer_create_fn)dlsym(RTLD_NEXT, "timer_create");
	return fn;
}

static timer_delete_fn real_timer_delete(void)
{
	static timer_delete_fn fn;

	if (!fn)
		fn = (timer_delete_fn)dlsym(RTLD_NEXT, "timer_delete");
	return fn;
}

static void *run_expiry(void *arg)
{
	struct expiry x = *(struct expiry *)arg;

	free(arg);
	x.fn(x.value);
	return NULL;
}

/* The helper: waits for the timer signal and starts a thread per expiry.
 * Everything but the checkpoint signal (and glibc's SIGSETXID, which
 * setuid() sends to every thread) is blocked: it never runs the program's
 * handlers. */
static void *helper(void *arg)
{
	uint64_t block = ~0ull, wait = 1ull << (HELPER_SIGNAL - 1);

	block &= ~(1ull << (ckpt_signal - 1) | 1ull << (33 - 1));
	sys_rt_sigprocmask(SIG_SETMASK, &block, NULL);
	pthread_mutex_lock(&helper_lock);
	helper_vtid = threads_virt_tid((pid_t)sys_gettid());
	pthread_cond_broadcast(&helper_cv);
	pthread_mutex_unlock(&helper_lock);
	for (;;) {
		siginfo_t si;
		struct expiry *x;
		pthread_attr_t attr;
		pthread_t th;
		uint32_t slot, gen;
		long sig = sys_rt_sigtimedwait(&wait, &si, NULL);

		if (sig != HELPER_SIGNAL)
			continue;	/* EINTR: a checkpoint parked this thread */
		slot = (uint32_t)si.si_value.sival_int & 0xffff;
		gen = (uint32_t)si.si_value.sival_int >> 16;
		x = malloc(sizeof(*x));
		if (!x)
			continue;
		pthread_mutex_lock(&tt_lock);
		if (slot >= THREAD_TIMERS || !tt[slot].used || (tt[slot].gen & 0x7fff) != gen) {
			pthread_mutex_unlock(&tt_lock);
			free(x);	/* deleted meanwhile */
			continue;
		}
		x->fn = tt[slot].fn;
		x->value = tt[slot].value;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (tt[slot].stacksize)
			pthread_attr_setstacksize(&attr, tt[slot].stacksize);
		pthread_mutex_unlock(&tt_lock);
		if (pthread_create(&th, &attr, run_expiry, x) != 0) {
			log_warn("cannot start a thread for an expiry of timer %d", tt[slot].kid);
			free(x);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

static void start_helper(void)
{
	pthread_attr_t attr;
	pthread_t th;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, helper, NULL) != 0) {
		log_err("cannot start the SIGEV_THREAD helper thread");
	} else {
		pthread_mutex_lock(&helper_lock);
		while (!helper_vtid)
			pthread_cond_wait(&helper_cv, &helper_lock);
		pthread_mutex_unlock(&helper_lock);
	}
	pthread_attr_destroy(&attr);
}

static int thread_timer_create(clockid_t clk, const struct sigevent *sev, timer_t *id)
{
	struct ksigevent k;
	size_t stack = 0;
	int slot, kid;
	long r;

	pthread_once(&helper_once, start_helper);
	if (!helper_vtid) {
		errno = EAGAIN;
		return -1;
	}
	if (sev->sigev_notify_attributes)
		pthread_attr_getstacksize(sev->sigev_notify_attributes, &stack);
	pthread_mutex_lock(&tt_lock);
	for (slot = 0; slot < THREAD_TIMERS && tt[slot].used; slot++)
		;
	if (slot == THREAD_TIMERS) {
		pthread_mutex_unlock(&tt_lock);
		errno = EAGAIN;
		return -1;
	}
	tt[slot].gen++;
	memset(&k, 0, sizeof(k));
	k.value = (uint64_t)(uint32_t)(slot | (int)(tt[slot].gen & 0x7fff) << 16);
	k.signo = HELPER_SIGNAL;
	k.notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
	k.tid = threads_real_tid(helper_vtid);
	r = sys_call3(__NR_timer_create, clk, &k, &kid);
	if (sys_failed(r)) {
		pthread_mutex_unlock(&tt_lock);
		errno = (int)-r;
		return -1;
	}
	tt[slot].kid = kid;
	tt[slot].fn = sev->sigev_notify_function;
	tt[slot].value = sev->sigev_value;
	tt[slot].stacksize = stack;
	tt[slot].used = 1;
	pthread_mutex_unlock(&tt_lock);
	*id = (timer_t)(intptr_t)kid;
	return 0;
}

CRYO_EXPORT int timer_create(clockid_t clk, struct sigevent *sev, timer_t *id)
{
	struct sigevent copy;

	if (sev && sev->sigev_notify == SIGEV_THREAD)
		return thread_timer_create(clk, sev, id);
	if (sev && sev->sigev_notify == SIGEV_THREAD_ID) {
		/* The program names its threads by virtual tid. */
		copy = *sev;
		copy._sigev_un._tid = threads_real_tid(sev->_sigev_un._tid);
		sev = &copy;
	}
	return real_timer_create()(clk, sev, id);
}

CRYO_EXPORT int timer_delete(timer_t id)
{
	int kid = (int)(intptr_t)id, i;

	if ((intptr_t)id >= 0) {
		pthread_mutex_lock(&tt_lock);
		for (i = 0; i < THREAD_TIMERS; i++)
			if (tt[i].used && tt[i].kid == kid)
				tt[i].used = 0;
		pthread_mutex_unlock(&tt_lock);
	}
	return real_timer_delete()(id);
}

/* A forked child has no timers and no helper thread. */
static void after_fork_child(void)
{
	pthread_once_t once = PTHREAD_ONCE_INIT;

	memset(tt, 0, sizeof(tt));
	pthread_mutex_init(&tt_lock, NULL);
	pthread_mutex_init(&helper_lock, NULL);
	pthread_cond_init(&helper_cv, NULL);
	helper_once = once;
	helper_vtid = 0;
}

/* ---- checkpoint and restart ---- */

static int timer_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
	return 0;
}

static int timer_pre_ckpt(void)
{
	if (!saved)
		saved = ckpt_mem(TIMER_MAX * sizeof(*saved));
	if (!text)
		text = ckpt_scratch(TEXT_MAX);
	return saved && text ? 0 : -1;
}

/* CPU-time clocks name a process or thread: (~pid << 3) | flags. */
#define CPUCLOCK_PERTHREAD 4
static int cpu_clock_pid(int32_t clk)
{
	return ~(clk >> 3);
}

static int32_t make_cpu_clock(int32_t clk, int pid)
{
	return (int32_t)(((unsigned)~pid << 3) | ((unsigned)clk & 7));
}

static int timer_ckpt(void)
{
	const char *pos;
	long fd, n, got = 0;

	nsaved = 0;
	fd = sys_open("/proc/self/timers", O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(fd)) {
		/* Kernels without CONFIG_CHECKPOINT_RESTORE have no such file. */
		log_syserr((int)-fd, "open /proc/self/timers: POSIX timers are not saved");
		return 0;
	}
	while (got < (long)TEXT_MAX - 1 && (n = sys_read((int)fd, text + got, TEXT_MAX - 1 - (size_t)got)) > 0)
		got += n;
	sys_close((int)fd);
	text[got] = '\0';
	for (pos = text;;) {
		struct saved_timer *s = &saved[nsaved];
		int r;

		if (nsaved >= TIMER_MAX) {
			log_err("more than %d POSIX timers", TIMER_MAX);
			return -1;
		}
		r = timer_parse_next(&pos, &s->p);
		if (r == 0)
			break;
		if (r < 0) {
			log_err("cannot parse /proc/self/timers after %zu timers", nsaved);
			return -1;
		}
		n = sys_call2(__NR_timer_gettime, s->p.id, &s->spec);
		if (sys_failed(n)) {
			log_syserr((int)-n, "timer_gettime of timer %d", s->p.id);
			return -1;
		}
		if (s->p.notify & SIGEV_THREAD_ID)
			s->p.pid = threads_virt_tid(s->p.pid);
		if (s->p.clock < 0 && cpu_clock_pid(s->p.clock) != 0)
			s->p.clock = make_cpu_clock(s->p.clock, (s->p.clock & CPUCLOCK_PERTHREAD)
						? threads_virt_tid(cpu_clock_pid(s->p.clock))
						: vpid_to_virt(cpu_clock_pid(s->p.clock)));
		nsaved++;
	}
	log_debug("%zu POSIX timers", nsaved);
	return 0;
}

static int32_t restart_clock(int32_t clk)
{
	int pid;

	if (clk >= 0)
		return clk;
	pid = cpu_clock_pid(clk);
	if (pid == 0) {
		if (clk & CPUCLOCK_PERTHREAD)
			log_warn("a timer on a thread's own CPU-time clock now counts the CPU time of cryo's thread");
		return clk;
	}
	if (clk & CPUCLOCK_PERTHREAD)
		return make_cpu_clock(clk, threads_real_tid(pid));
	if (pid == vpid_self())
		return make_cpu_clock(clk, vpid_kernel_pid());
	log_warn("a timer on process %d's CPU-time clock now counts this process's", pid);
	return make_cpu_clock(clk, 0);
}

/* Creates s's timer under its id. 0, or -1 (logged). */
static int create_one(const struct saved_timer *s, int restore_ids, size_t *ndummy)
{
	struct ksigevent k;
	int32_t clk = restart_clock(s->p.clock);
	int kid;
	long r;

	nolibc_memset(&k, 0, sizeof(k));
	k.value = s->p.value;
	k.signo = s->p.signo;
	k.notify = s->p.notify;
	if (s->p.notify & SIGEV_THREAD_ID)
		k.tid = threads_real_tid(s->p.pid);
	for (;;) {
		kid = s->p.id;
		r = sys_call3(__NR_timer_create, clk, &k, &kid);
		if (sys_failed(r)) {
			log_syserr((int)-r, "re-create POSIX timer %d (clock %d, signal %d)", s->p.id, (int)clk,
				   s->p.signo);
			return -1;
		}
		if (restore_ids || kid >= s->p.id || *ndummy >= DUMMY_MAX)
			break;
		dummies[(*ndummy)++] = kid;	/* a lower id: keep it taken for now */
	}
	if (kid != s->p.id)
		log_warn("POSIX timer %d is now timer %d: the program's timer_t no longer names it", s->p.id, kid);
	if (s->spec.it_value.tv_sec || s->spec.it_value.tv_nsec) {
		r = sys_call4(__NR_timer_settime, kid, 0, &s->spec, NULL);
		if (sys_failed(r)) {
			log_syserr((int)-r, "re-arm POSIX timer %d", kid);
			return -1;
		}
	}
	return 0;
}

static int timer_restart(void)
{
	size_t i, done, ndummy = 0;
	int restore_ids, ret = 0, last = -1;

	const char *env = getenv("CRYO_TIMER_RESTORE_IDS");	/* "0": test the fallback */

	if (!nsaved)
		return 0;
	restore_ids = !(env && env[0] == '0') &&
		      !sys_failed(sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0));
	if (!restore_ids)
		log_info("without PR_TIMER_CREATE_RESTORE_IDS: POSIX timer ids are had in increasing order");
	/* In increasing id order: /proc lists the newest first. */
	for (done = 0; done < nsaved; done++) {
		const struct saved_timer *next = NULL;

		for (i = 0; i < nsaved; i++)
			if (saved[i].p.id > last && (!next || saved[i].p.id < next->p.id))
				next = &saved[i];
		if (!next)
			break;
		last = next->p.id;
		if (create_one(next, restore_ids, &ndummy) < 0)
			ret = -1;
	}
	if (restore_ids)
		sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
	for (i = 0; i < ndummy; i++)
		sys_call1(__NR_timer_delete, dummies[i]);
	log_debug("%zu POSIX timers restored", nsaved);
	return ret;
}

const struct cryo_plugin timer_plugin = {
	.name = "timer",
	.api = CRYO_PLUGIN_API,
	.init = timer_init,
	.pre_ckpt = timer_pre_ckpt,
	.ckpt = timer_ckpt,
	.restart = timer_restart,
};
