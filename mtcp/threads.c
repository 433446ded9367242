/* Suspending and resuming the application's threads.
 *
 * The checkpoint thread lists /proc/self/task and sends each other thread
 * the checkpoint signal. The handler (park_handler) records the thread's
 * kernel state (fs base, glibc's tid address, robust list, rseq area,
 * signal mask, altstack, and the interrupted registers for core export),
 * dequeues its pending signals into a pool, saves a resumable context with
 * sys_ctx_save() and parks on a futex. After a resume the same handler
 * re-queues the signals and returns: the kernel's rt_sigreturn then
 * restores every register, the FPU state and the signal mask exactly as
 * they were. After a restart the restorer resumes each thread at the saved
 * context in a new process, and the handler carries on the same way.
 *
 * One register needs care: a thread parked while blocked in wait4 or waitid
 * has the kernel restart that call when the handler returns, with the
 * registers it had, and after a restart the pid it names is a kernel pid
 * of the previous run. The handler notes the virtual pid before parking
 * and puts the new kernel pid in its place before returning (pid_arg_*).
 *
 * Everything here runs with other threads frozen or in a signal handler:
 * raw syscalls, no malloc, no stdio. */
#define LOG_PREFIX "threads: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <stdlib.h>
#include <unistd.h>
#include <asm/prctl.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_signal.h"

#define RSEQ_SIG_X86 0x53053053u
#define RSEQ_MIN_LEN 32u

int ckpt_signal;
long threads_tid_offset = -1;
struct image_siginfo ckpt_sigpool[CKPT_SIGPOOL];
volatile int ckpt_nsig;

static struct ckpt_slot *slots;		/* reserved with mmap by threads_prepare() */
static size_t slot_cap;
static volatile size_t nslots;
static struct ckpt_slot self_slot;
static volatile int ckpt_active;
static volatile int nsuspended;
static volatile int nrestarted;
static volatile int resume_seq;

/* The tid map of the current incarnation: virtual (from the first run) to
 * kernel. Written by the checkpoint thread after a restart. */
static struct { pid_t vtid, tid; } *tidmap;
static size_t ntidmap;

static void futex_wake_all(volatile int *addr)
{
	sys_futex(addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

static void futex_wait_ms(volatile int *addr, int val, long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	sys_futex(addr, FUTEX_WAIT_PRIVATE, val, ms >= 0 ? &ts : NULL);
}

static struct ckpt_slot *slot_find(pid_t tid)
{
	size_t i, n = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);

	for (i = 0; i < n; i++)
		if (slots[i].tid == tid)
			return &slots[i];
	return NULL;
}

void threads_fill_record(struct image_thread *rec, const ucontext_t *uc)
{
	unsigned long fs = 0, gs = 0;
	int *ctid = NULL;
	void *rhead = NULL;
	size_t rlen = 0;
	uint64_t mask = 0;
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;

	nolibc_memset(rec, 0, sizeof(*rec));
	sys_arch_prctl(ARCH_GET_FS, (unsigned long)&fs);
	sys_arch_prctl(ARCH_GET_GS, (unsigned long)&gs);
	rec->fs_base = fs;
	rec->gs_base = gs;
	if (!sys_failed(sys_prctl(PR_GET_TID_ADDRESS, (unsigned long)&ctid, 0, 0, 0)) && ctid) {
		rec->clear_tid = (uint64_t)(uintptr_t)ctid;
		rec->tid = (uint32_t)*ctid;	/* glibc's idea of the tid: the virtual one */
	}
	if (!rec->tid)
		rec->tid = (uint32_t)sys_gettid();
	if (!sys_failed(sys_get_robust_list(0, &rhead, &rlen))) {
		rec->robust_list = (uint64_t)(uintptr_t)rhead;
		rec->robust_len = rlen;
	}
	if (__rseq_size > 0) {
		rec->rseq = fs + (uint64_t)__rseq_offset;
		rec->rseq_len = __rseq_size > RSEQ_MIN_LEN ? __rseq_size : RSEQ_MIN_LEN;
		rec->rseq_sig = RSEQ_SIG_X86;
	}
	sys_rt_sigprocmask(SIG_BLOCK, NULL, &mask);
	rec->sigmask = mask;
	if (!sys_failed(sys_sigaltstack(NULL, &ss))) {
		rec->altstack_sp = ss.sp;
		rec->altstack_size = ss.size;
		rec->altstack_flags = (uint32_t)ss.flags;
	}
	if (uc) {
		nolibc_memcpy(&rec->app_sigmask, &uc->uc_sigmask, sizeof(rec->app_sigmask));
		nolibc_memcpy(rec->gregs, uc->uc_mcontext.gregs, sizeof(rec->gregs));
		if (uc->uc_mcontext.fpregs)
			nolibc_memcpy(rec->fxsave, uc->uc_mcontext.fpregs, sizeof(rec->fxsave));
	}
}

/* A blocking call the park signal interrupted returns EINTR once the
 * handler is done: poll, select, epoll_wait, pause, sleeps... (the kernel
 * restarts only what SA_RESTART covers). A program that blocks every
 * signal of its own (and reads them with signalfd, as script(1) does) never
 * expects EINTR from them, and gives up. So when the interrupted
 * instruction is glibc's `mov $NR,%eax; syscall` (or with one
 * `mov disp8(%rsp),%edi` between) for one of these calls and it returned
 * EINTR, the thread goes back to the syscall instruction with eax = NR: the
 * call runs again (a relative sleep with what the kernel left in its
 * remaining-time argument, as glibc passes it; a poll timeout anew). */
static void restart_interrupted(ucontext_t *uc)
{
	greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)(uintptr_t)g[REG_RIP];
	const unsigned char *mov;
	uint32_t nr;

	if ((long)g[REG_RAX] != -EINTR || ((uintptr_t)ip & 0xfff) < 11 || ip[-2] != 0x0f || ip[-1] != 0x05)
		return;
	if (ip[-7] == 0xb8)
		mov = ip - 7;
	else if (ip[-11] == 0xb8 && ip[-6] == 0x8b && ip[-5] == 0x7c && ip[-4] == 0x24)
		mov = ip - 11;
	else
		return;
	nolibc_memcpy(&nr, mov + 1, sizeof(nr));
	switch (nr) {
	case __NR_poll: case __NR_select: case __NR_pause: case __NR_nanosleep:
	case __NR_clock_nanosleep: case __NR_epoll_wait: case __NR_pselect6: case __NR_ppoll:
	case __NR_epoll_pwait: case __NR_epoll_pwait2: case __NR_rt_sigtimedwait:
	case __NR_rt_sigsuspend:
		g[REG_RIP] -= 2;
		g[REG_RAX] = nr;
		break;
	default:
		break;
	}
}

/* The pid argument of a wait the kernel will restart when the handler
 * returns: which register, and the virtual pid (or group, neg) it names. */
struct pid_arg {
	int reg;	/* REG_RDI or REG_RSI; -1: none */
	int neg;	/* wait4's -pgid form */
	pid_t vpid;
};

/* At checkpoint time: the interrupted thread sits on a syscall instruction
 * (0f 05) with wait4's or waitid's number in rax (the kernel rewinds an
 * interrupted SA_RESTART call that way, and a thread stopped just before
 * the instruction looks the same): note the pid it will wait for. */
static void pid_arg_note(const ucontext_t *uc, struct pid_arg *pa)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];
	pid_t p;

	pa->reg = -1;
	if (!ip || ip[0] != 0x0f || ip[1] != 0x05)
		return;
	if (g[REG_RAX] == __NR_wait4) {
		pa->reg = REG_RDI;
	} else if (g[REG_RAX] == __NR_waitid && (g[REG_RDI] == P_PID || g[REG_RDI] == P_PGID)) {
		pa->reg = REG_RSI;
	} else {
		return;
	}
	p = (pid_t)g[pa->reg];
	pa->neg = p < -1;
	if (pa->neg)
		p = -p;
	if (p <= 0) {
		pa->reg = -1;	/* any child, or our own group: nothing to translate */
		return;
	}
	pa->vpid = vpid_to_virt(p);
}

/* After a restart, once the pid map is known: the kernel pid of the day. */
static void pid_arg_fix(ucontext_t *uc, const struct pid_arg *pa)
{
	pid_t real;

	if (pa->reg < 0)
		return;
	real = vpid_to_real(pa->vpid);
	uc->uc_mcontext.gregs[pa->reg] = pa->neg ? -(greg_t)real : (greg_t)real;
}

static void park_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno, seq;
	volatile int restarted = 0;	/* set after the second return of sys_ctx_save */
	struct ckpt_slot *s;
	struct pid_arg pa;
	int is_main;

	(void)sig;
	(void)si;
	s = slot_find((pid_t)sys_gettid());
	if (!s || !__atomic_load_n(&ckpt_active, __ATOMIC_ACQUIRE))
		goto out;	/* not ours: a stray signal */
	threads_fill_record(&s->rec, ucv);
	pid_arg_note(ucv, &pa);
	is_main = sys_gettid() == sys_getpid();
	if (is_main)
		s->rec.flags |= IMAGE_THREAD_MAIN;
	proc_drain_signals((pid_t)s->rec.tid, 0);
	if (is_main)
		proc_drain_signals(0, 1);
	seq = __atomic_load_n(&resume_seq, __ATOMIC_ACQUIRE);
	if (sys_ctx_save(&s->ctx) == 0) {
		__atomic_store_n(&s->state, SLOT_SUSPENDED, __ATOMIC_RELEASE);
		__atomic_add_fetch(&nsuspended, 1, __ATOMIC_ACQ_REL);
		futex_wake_all(&nsuspended);
	} else {
		/* A new process: the restorer brought this thread back here. */
		restarted = 1;
		s->tid = (pid_t)sys_gettid();
		__atomic_store_n(&s->state, SLOT_RESTARTED, __ATOMIC_RELEASE);
		__atomic_add_fetch(&nrestarted, 1, __ATOMIC_ACQ_REL);
		futex_wake_all(&nrestarted);
	}
	while (__atomic_load_n(&resume_seq, __ATOMIC_ACQUIRE) == seq)
		futex_wait_ms(&resume_seq, seq, -1);
	if (restarted)
		pid_arg_fix(ucv, &pa);	/* released after the pid map arrived */
	proc_requeue_signals((pid_t)s->rec.tid);
	if ((s->rec.flags & IMAGE_THREAD_MAIN) && sys_gettid() == sys_getpid())
		proc_requeue_signals(0);
	restart_interrupted(ucv);
out:
	errno = saved_errno;
}

int threads_init(void)
{
	struct sigaction sa;
	int *ctid = NULL;
	const char *env = getenv("CRYO_CKPT_SIGNAL");

	ckpt_signal = SIGRTMAX - 1;
	if (env && *env) {
		int s = atoi(env);

		if (s <= 0 || s >= SIGRTMAX + 1 || s == SIGKILL || s == SIGSTOP) {
			log_err("CRYO_CKPT_SIGNAL=%s is not a usable signal", env);
			return -1;
		}
		ckpt_signal = s;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = park_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	wrap_signal_init();
	if (real_sigaction(ckpt_signal, &sa, NULL) < 0) {
		log_perror("install the checkpoint signal handler (signal %d)", ckpt_signal);
		return -1;
	}
	if (prctl(PR_GET_TID_ADDRESS, &ctid, 0, 0, 0) == 0 && ctid)
		threads_tid_offset = (long)((char *)ctid - (char *)pthread_self());
	return 0;
}

int threads_prepare(void)
{
	size_t want = 64;
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[4096];
	long n;

	if (fd >= 0) {
		while ((n = sys_getdents64(fd, buf, sizeof(buf))) > 0)
			want += (size_t)n / 24 + 1;	/* an over-estimate of entries */
		close(fd);
	}
	want = want * 2 + 64;
	if (want <= slot_cap)
		return 0;
	if (slots)
		munmap(slots, slot_cap * sizeof(*slots));
	slots = ckpt_mem(want * sizeof(*slots));
	if (!slots) {
		slot_cap = 0;
		return -1;
	}
	slot_cap = want;
	return 0;
}

/* Sends the signal to every thread not yet known. Returns how many were new. */
static long signal_new_threads(pid_t self, pid_t pid)
{
	char buf[4096];
	long n, added = 0;
	int fd = (int)sys_open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);

	if (sys_failed(fd)) {
		log_syserr(-fd, "open /proc/self/task");
		return -1;
	}
	while ((n = sys_getdents64(fd, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (off < n) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			pid_t tid = 0;
			const char *p;

			off += d->d_reclen;
			for (p = d->d_name; *p >= '0' && *p <= '9'; p++)
				tid = tid * 10 + (*p - '0');
			if (*p || !tid || tid == self || slot_find(tid))
				continue;
			if (nslots >= slot_cap) {
				log_err("more threads than reserved slots (%zu)", slot_cap);
				sys_close(fd);
				return -1;
			}
			nolibc_memset(&slots[nslots], 0, sizeof(slots[0]));
			slots[nslots].tid = tid;
			slots[nslots].state = SLOT_SIGNALED;
			__atomic_store_n(&nslots, nslots + 1, __ATOMIC_RELEASE);
			if (sys_tgkill(pid, tid, ckpt_signal) == -ESRCH)
				slots[nslots - 1].state = SLOT_GONE;
			added++;
		}
	}
	sys_close(fd);
	return added;
}

static void wait_parked(pid_t pid)
{
	size_t i;
	long waited = 0;

	for (i = 0; i < nslots; i++) {
		struct ckpt_slot *s = &slots[i];

		while (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == SLOT_SIGNALED) {
			int cur = __atomic_load_n(&nsuspended, __ATOMIC_ACQUIRE);

			if (s->state != SLOT_SIGNALED)
				break;
			futex_wait_ms(&nsuspended, cur, 10);
			waited += 10;
			/* A thread that exits while blocking every signal never parks. */
			if (sys_tgkill(pid, s->tid, 0) == -ESRCH)
				s->state = SLOT_GONE;
			if (waited % 10000 == 0)
				log_warn("thread %d has not parked after %ld s (it blocks signal %d?)",
					 s->tid, waited / 1000, ckpt_signal);
		}
	}
}

int threads_suspend(void)
{
	pid_t self = (pid_t)sys_gettid(), pid = (pid_t)sys_getpid();
	long added;
	int round;

	__atomic_store_n(&nslots, 0, __ATOMIC_RELEASE);
	nsuspended = 0;
	nrestarted = 0;
	ckpt_nsig = 0;
	__atomic_store_n(&ckpt_active, 1, __ATOMIC_RELEASE);
	/* Until the list is stable: a thread may have been created meanwhile. */
	for (round = 0;; round++) {
		added = signal_new_threads(self, pid);
		if (added < 0)
			return -1;
		wait_parked(pid);
		if (added == 0)
			break;
	}
	threads_fill_record(&self_slot.rec, NULL);
	self_slot.rec.flags |= IMAGE_THREAD_CKPT;
	self_slot.tid = self;
	self_slot.state = SLOT_SUSPENDED;
	log_debug("%d threads parked", nsuspended);
	return 0;
}

struct ckpt_slot *threads_slots(size_t *n)
{
	*n = nslots;
	return slots;
}

struct ckpt_slot *threads_self(void)
{
	return &self_slot;
}

void threads_resume(void)
{
	__atomic_store_n(&ckpt_active, 0, __ATOMIC_RELEASE);
	__atomic_add_fetch(&resume_seq, 1, __ATOMIC_ACQ_REL);
	futex_wake_all(&resume_seq);
}

void threads_wait_restarted(void)
{
	size_t i, want = 0;

	for (i = 0; i < nslots; i++)
		if (slots[i].state == SLOT_SUSPENDED || slots[i].state == SLOT_RESTARTED)
			want++;
	for (;;) {
		int cur = __atomic_load_n(&nrestarted, __ATOMIC_ACQUIRE);

		if ((size_t)cur >= want)
			break;
		futex_wait_ms(&nrestarted, cur, 100);
	}
	/* The new incarnation's tid map (the restarted slots hold both ids). */
	if (!tidmap)
		tidmap = ckpt_mem(sizeof(*tidmap) * 65536);
	ntidmap = 0;
	for (i = 0; tidmap && i < nslots && ntidmap < 65536; i++) {
		if (slots[i].state != SLOT_RESTARTED)
			continue;
		tidmap[ntidmap].vtid = (pid_t)slots[i].rec.tid;
		tidmap[ntidmap].tid = slots[i].tid;
		ntidmap++;
	}
}

pid_t threads_real_tid(pid_t vtid)
{
	size_t i;

	for (i = 0; i < ntidmap; i++)
		if (tidmap[i].vtid == vtid)
			return tidmap[i].tid;
	return vtid;
}

pid_t threads_virt_tid(pid_t tid)
{
	size_t i;

	for (i = 0; i < ntidmap; i++)
		if (tidmap[i].tid == tid)
			return tidmap[i].vtid;
	return tid;
}
