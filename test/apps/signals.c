/* signals: signal state across checkpoint/restart. Before each READY the
 * program leaves signals pending behind its mask: process-directed
 * (sigqueue with a value, kill) and thread-directed (raise, pthread_kill on
 * the main thread, pthread_sigqueue on a helper thread), real-time ones
 * queued several times. After the restart they must still be pending, on the
 * same thread, and arrive when unblocked with the same si_code and si_value,
 * real-time ones in order. Also checked: handlers installed with sigaction
 * (SA_SIGINFO, SA_ONSTACK on a sigaltstack, SA_RESETHAND, sa_mask) keep their
 * flags; a handler already reset by SA_RESETHAND stays SIG_DFL; an alarm()
 * set before the first checkpoint fires after the restart; both threads'
 * masks are unchanged. Never uses SIGUSR1 (harness) or signal 63 (libcryo). */
#include "../lib/harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define MAXEV 64
#define ALT_SIZE (64 * 1024)

struct event {
	int sig, code, val;
	pid_t pid;
	int on_alt;
};

static struct event ev[MAXEV];
static _Atomic int nev;
static volatile sig_atomic_t alarm_fired, int_fired, term_fired;
static char *alt_base;
static pthread_t helper_t;
static pthread_mutex_t hm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hcv = PTHREAD_COND_INITIALIZER;
static int helper_go, helper_done;	/* cycle numbers, under hm */
static char helper_msg[256];		/* helper's verdict for the cycle */

#define SIG_RT_Q (SIGRTMIN + 2)		/* process-directed, queued three times */
#define SIG_RT_T (SIGRTMIN + 3)		/* thread-directed at the helper */

static void on_sig(int sig, siginfo_t *si, void *uc)
{
	int i = atomic_fetch_add(&nev, 1);
	char here;

	if (i >= MAXEV)
		t_fail_async("too many signal events");
	ev[i].sig = sig;
	ev[i].code = si->si_code;
	ev[i].val = si->si_value.sival_int;
	ev[i].pid = si->si_pid;
	ev[i].on_alt = &here >= alt_base && &here < alt_base + ALT_SIZE;
	if (sig == SIGTERM)
		term_fired = 1;
}

/* SIGALRM keeps out of ev[]: after a restart it may fire at any moment. */
static void on_alarm(int sig, siginfo_t *si, void *uc)
{
	if (sig != SIGALRM || si->si_signo != SIGALRM)
		t_fail_async("SIGALRM handler: wrong signal");
	alarm_fired = 1;
}

static void on_int(int sig)
{
	int_fired = 1;
}

static void install(int sig, int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGQUIT);	/* a recognisable sa_mask */
	if (sigaction(sig, &sa, NULL) < 0)
		t_fail("sigaction %d: %s", sig, strerror(errno));
}

static void check_action(int sig, int flags, const char *what)
{
	struct sigaction sa;

	T_CHECK(sigaction(sig, NULL, &sa) == 0, "query %s", what);
	T_CHECK(sa.sa_sigaction == on_sig, "%s: handler changed", what);
	T_CHECK((sa.sa_flags & (SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_RESTART)) ==
			(SA_SIGINFO | flags), "%s: flags %#x", what, sa.sa_flags);
	T_CHECK(sigismember(&sa.sa_mask, SIGQUIT) == 1 && sigismember(&sa.sa_mask, SIGHUP) == 0,
		"%s: sa_mask changed", what);
}

static int is_dfl(int sig)
{
	struct sigaction sa;

	T_CHECK(sigaction(sig, NULL, &sa) == 0, "query %d", sig);
	return sa.sa_handler == SIG_DFL;
}

/* Signals 1..62 except glibc's internal 32 and 33, as a bit set. */
static uint64_t mask_bits(const sigset_t *s)
{
	uint64_t b = 0;

	for (int sig = 1; sig <= 62; sig++)
		if (sig != 32 && sig != 33 && sigismember(s, sig) == 1)
			b |= 1ull << sig;
	return b;
}

static uint64_t cur_mask(void)
{
	sigset_t s;

	pthread_sigmask(SIG_BLOCK, NULL, &s);
	return mask_bits(&s);
}

static uint64_t pending_bits(void)
{
	sigset_t s;

	sigpending(&s);
	return mask_bits(&s);
}

static const char *code_name(int c)
{
	switch (c) {
	case SI_USER: return "SI_USER";
	case SI_QUEUE: return "SI_QUEUE";
	case SI_TKILL: return "SI_TKILL";
	case SI_KERNEL: return "SI_KERNEL";
	default: return "other";
	}
}

/* Unblocks sig, which must be delivered n times with code and values v0.. */
static void deliver(int sig, const char *name, int n, int code, int v0, pid_t sender)
{
	sigset_t s;
	int first = atomic_load(&nev);

	sigemptyset(&s);
	sigaddset(&s, sig);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);	/* delivered before this returns */
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	T_CHECK(atomic_load(&nev) == first + n, "%s: %d deliveries, want %d", name,
		atomic_load(&nev) - first, n);
	for (int i = 0; i < n; i++) {
		struct event *e = &ev[first + i];

		T_CHECK(e->sig == sig && e->code == code, "%s: got sig %d code %d, want code %d",
			name, e->sig, e->code, code);
		if (code == SI_QUEUE)
			T_CHECK(e->val == v0 + i, "%s: value %d, want %d", name, e->val, v0 + i);
		T_CHECK(e->pid == sender, "%s: si_pid %d, sender was %d", name, (int)e->pid,
			(int)sender);
	}
	printf("  %s delivered %dx, %s", name, n, code_name(code));
	if (code == SI_QUEUE)
		printf(", values %d..%d", v0, v0 + n - 1);
	printf("\n");
}

static void *helper(void *arg)
{
	sigset_t all, s;
	siginfo_t si;
	uint64_t mask0;
	int cycle = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	mask0 = cur_mask();
	for (;;) {
		pthread_mutex_lock(&hm);
		while (helper_go == cycle)
			pthread_cond_wait(&hcv, &hm);
		cycle = helper_go;
		pthread_mutex_unlock(&hm);
		if (cycle < 0)
			break;

		helper_msg[0] = 0;
		if (cur_mask() != mask0)
			snprintf(helper_msg, sizeof(helper_msg), "helper mask changed");
		else if (!(pending_bits() & (1ull << SIG_RT_T)))
			snprintf(helper_msg, sizeof(helper_msg), "helper's signal not pending");
		else if (pending_bits() & ((1ull << SIGWINCH) | (1ull << SIGPIPE)))
			snprintf(helper_msg, sizeof(helper_msg),
				 "main thread's signals pending on the helper");
		sigemptyset(&s);
		sigaddset(&s, SIG_RT_T);
		if (!helper_msg[0]) {
			struct timespec ts = { 0, 0 };

			if (sigtimedwait(&s, &si, &ts) != SIG_RT_T)
				snprintf(helper_msg, sizeof(helper_msg), "sigtimedwait: %s",
					 strerror(errno));
			else if (si.si_code != SI_QUEUE || si.si_value.sival_int != cycle * 1000)
				snprintf(helper_msg, sizeof(helper_msg), "helper got code %d value %d",
					 si.si_code, si.si_value.sival_int);
		}
		pthread_mutex_lock(&hm);
		helper_done = cycle;
		pthread_cond_broadcast(&hcv);
		pthread_mutex_unlock(&hm);
	}
	return NULL;
}

static void helper_round(int k)
{
	pthread_mutex_lock(&hm);
	helper_go = k;
	pthread_cond_broadcast(&hcv);
	while (helper_done != k)
		pthread_cond_wait(&hcv, &hm);
	pthread_mutex_unlock(&hm);
	T_CHECK(!helper_msg[0], "cycle %d: %s", k, helper_msg);
	printf("  helper thread: its queued signal was pending on it alone, value %d\n", k * 1000);
}

int main(int argc, char **argv)
{
	sigset_t block;
	stack_t ss, now;
	uint64_t mask_before;
	pid_t sender;
	union sigval v;
	int r;

	t_init(argc, argv);
	alt_base = malloc(ALT_SIZE);
	T_CHECK(alt_base != NULL, "malloc");
	ss.ss_sp = alt_base;
	ss.ss_size = ALT_SIZE;
	ss.ss_flags = 0;
	T_CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack: %s", strerror(errno));

	install(SIGUSR2, 0);
	install(SIGURG, 0);
	install(SIG_RT_Q, 0);
	install(SIGWINCH, 0);
	install(SIGPIPE, 0);
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_alarm;
		sa.sa_flags = SA_SIGINFO;
		sigemptyset(&sa.sa_mask);
		T_CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction SIGALRM");
	}
	install(SIGHUP, SA_ONSTACK);
	install(SIGTERM, SA_RESETHAND);
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_int;
		sa.sa_flags = SA_RESETHAND;
		sigemptyset(&sa.sa_mask);
		T_CHECK(sigaction(SIGINT, &sa, NULL) == 0, "sigaction SIGINT");
	}
	raise(SIGINT);	/* runs once; SA_RESETHAND leaves SIG_DFL behind */
	T_CHECK(int_fired && is_dfl(SIGINT), "SA_RESETHAND did not reset SIGINT");

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGURG);
	sigaddset(&block, SIG_RT_Q);
	sigaddset(&block, SIGWINCH);
	sigaddset(&block, SIGPIPE);
	sigaddset(&block, SIG_RT_T);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	r = pthread_create(&helper_t, NULL, helper, NULL);
	T_CHECK(r == 0, "pthread_create: %s", strerror(r));
	printf("handlers, altstack and masks installed\n");

	for (int k = 1; k <= 3; k++) {
		sender = getpid();
		v.sival_int = k * 100;
		T_CHECK(sigqueue(sender, SIGUSR2, v) == 0, "sigqueue SIGUSR2");
		T_CHECK(kill(sender, SIGURG) == 0, "kill SIGURG");
		for (int i = 1; i <= 3; i++) {
			v.sival_int = k * 10 + i;
			T_CHECK(sigqueue(sender, SIG_RT_Q, v) == 0, "sigqueue RT");
		}
		T_CHECK(pthread_kill(pthread_self(), SIGWINCH) == 0, "pthread_kill");
		T_CHECK(raise(SIGPIPE) == 0, "raise");
		v.sival_int = k * 1000;
		T_CHECK(pthread_sigqueue(helper_t, SIG_RT_T, v) == 0, "pthread_sigqueue");
		if (k == 1)
			alarm(1);
		mask_before = cur_mask();
		T_CHECK(atomic_load(&nev) == 0 || k > 1, "a blocked signal was delivered");

		t_ready(k);

		printf("cycle %d\n", k);
		T_CHECK(cur_mask() == mask_before, "cycle %d: mask %#llx, was %#llx", k,
			(unsigned long long)cur_mask(), (unsigned long long)mask_before);
		{
			uint64_t want = (1ull << SIGUSR2) | (1ull << SIGURG) | (1ull << SIG_RT_Q) |
					(1ull << SIGWINCH) | (1ull << SIGPIPE);
			uint64_t p = pending_bits();

			T_CHECK((p & want) == want, "cycle %d: pending %#llx, want %#llx", k,
				(unsigned long long)p, (unsigned long long)want);
		}
		printf("  mask unchanged, 5 signals pending\n");
		check_action(SIGUSR2, 0, "SIGUSR2");
		check_action(SIG_RT_Q, 0, "SIGRTMIN+2");
		check_action(SIGHUP, SA_ONSTACK, "SIGHUP");
		if (k < 3)
			check_action(SIGTERM, SA_RESETHAND, "SIGTERM");
		T_CHECK(is_dfl(SIGINT), "cycle %d: SIGINT handler is back after SA_RESETHAND", k);
		printf("  sigaction flags and masks unchanged, reset handler still SIG_DFL\n");

		atomic_store(&nev, 0);
		deliver(SIGUSR2, "SIGUSR2", 1, SI_QUEUE, k * 100, sender);
		deliver(SIGURG, "SIGURG", 1, SI_USER, 0, sender);
		deliver(SIG_RT_Q, "SIGRTMIN+2", 3, SI_QUEUE, k * 10 + 1, sender);
		deliver(SIGWINCH, "SIGWINCH", 1, SI_TKILL, 0, sender);
		deliver(SIGPIPE, "SIGPIPE", 1, SI_TKILL, 0, sender);
		helper_round(k);

		T_CHECK(sigaltstack(NULL, &now) == 0, "sigaltstack query");
		T_CHECK(now.ss_sp == alt_base && now.ss_size == ALT_SIZE && !(now.ss_flags & SS_DISABLE),
			"cycle %d: altstack changed", k);
		r = atomic_load(&nev);
		raise(SIGHUP);
		T_CHECK(atomic_load(&nev) == r + 1 && ev[r].on_alt, "cycle %d: SIGHUP not on altstack", k);
		printf("  SA_ONSTACK handler ran on the alternate stack\n");

		if (k == 1) {
			for (int i = 0; i < 2000 && !alarm_fired; i++)
				t_sleep_ms(10);
			T_CHECK(alarm_fired, "alarm set before the checkpoint never fired");
			printf("  alarm set before the checkpoint fired\n");
		}
		if (k == 3) {
			raise(SIGTERM);
			T_CHECK(term_fired && is_dfl(SIGTERM), "SA_RESETHAND on SIGTERM after restart");
			printf("  SA_RESETHAND handler ran once, now SIG_DFL\n");
		}
		atomic_store(&nev, 0);
	}
	pthread_mutex_lock(&hm);
	helper_go = -1;
	pthread_cond_broadcast(&hcv);
	pthread_mutex_unlock(&hm);
	pthread_join(helper_t, NULL);
	t_pass();
}
