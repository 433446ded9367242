/* ptimer: POSIX timers firing every 10 ms across checkpoint/restart.
 * - A: SIGEV_SIGNAL (SIGRTMIN+1, value 0xA) on CLOCK_MONOTONIC, counted
 *   by a handler that checks si_code, si_value and si_timerid;
 * - B: SIGEV_THREAD_ID to a worker thread (SIGRTMIN+2, value 0xB) on
 *   CLOCK_REALTIME, counted by the worker with sigwaitinfo;
 * - C: SIGEV_THREAD (a function run in a new thread, value 0xC) on
 *   CLOCK_MONOTONIC;
 * - D: SIGEV_NONE one-shot in 1000 s on CLOCK_BOOTTIME: after a restart it
 *   has the time that was left, never more;
 * - E: armed never, with a timer created and deleted before it (an id
 *   gap): it stays disarmed, and every id still names its timer.
 * After each READY, new timers are made (a SIGEV_THREAD_ID one-shot to the
 * worker, named by the tid the worker got from gettid() before the
 * restart, and a SIGEV_THREAD one-shot) and must fire. CLOCK_MONOTONIC
 * must not run backwards across a restart. The output is a function of
 * tick counts only: a line each time all of A, B and C have passed
 * another 100 ticks.
 * With the argument "fallback" the program sets CRYO_TIMER_RESTORE_IDS=0
 * in its environment, which makes cryo re-create the timers without
 * prctl(PR_TIMER_CREATE_RESTORE_IDS), as on kernels before 6.17. */
#include "../lib/harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define SIG_A (SIGRTMIN + 1)
#define SIG_B (SIGRTMIN + 2)
#define SIG_NEW (SIGRTMIN + 4)

static timer_t ta, tb, tc, td, te;
static atomic_long ticks_a, ticks_b, ticks_c;
static atomic_int new_thread_id_fired, new_thread_fired;
static atomic_int worker_tid;
static volatile sig_atomic_t bad;

static void on_a(int sig, siginfo_t *si, void *uc)
{
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 0xA || si->si_timerid != (int)(intptr_t)ta)
		bad = 1;
	atomic_fetch_add(&ticks_a, 1 + si->si_overrun);
}

static void *worker(void *arg)
{
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIG_B);
	sigaddset(&set, SIG_NEW);
	atomic_store(&worker_tid, gettid());
	for (;;) {
		int sig = sigwaitinfo(&set, &si);

		if (sig < 0)
			continue;	/* EINTR: a checkpoint */
		if (sig == SIG_B) {
			if (si.si_code != SI_TIMER || si.si_value.sival_int != 0xB)
				bad = 2;
			atomic_fetch_add(&ticks_b, 1 + si.si_overrun);
		} else if (sig == SIG_NEW) {
			if (si.si_value.sival_int != 0x1d)
				bad = 3;
			atomic_store(&new_thread_id_fired, 1);
		}
	}
	return NULL;
}

static void on_c(union sigval v)
{
	if (v.sival_int != 0xC)
		bad = 4;
	atomic_fetch_add(&ticks_c, 1);
}

static void on_new(union sigval v)
{
	if (v.sival_ptr != &new_thread_fired)
		bad = 5;
	atomic_store(&new_thread_fired, 1);
}

static timer_t make(clockid_t clk, int notify, int sig, union sigval v, void (*fn)(union sigval), pid_t tid)
{
	struct sigevent sev;
	timer_t t;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value = v;
	sev.sigev_notify_function = fn;
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = tid;
	if (timer_create(clk, &sev, &t) < 0)
		t_fail("timer_create (notify %d): %s", notify, strerror(errno));
	return t;
}

static void arm(timer_t t, long value_ns, long interval_ns)
{
	struct itimerspec its = { { interval_ns / 1000000000L, interval_ns % 1000000000L },
				  { value_ns / 1000000000L, value_ns % 1000000000L } };

	if (timer_settime(t, 0, &its, NULL) < 0)
		t_fail("timer_settime: %s", strerror(errno));
}

static struct itimerspec get(timer_t t, const char *what)
{
	struct itimerspec its;

	if (timer_gettime(t, &its) < 0)
		t_fail("timer_gettime %s: %s", what, strerror(errno));
	return its;
}

static uint64_t ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return ns(t);
}

/* Waits until each of A, B and C has passed n ticks. */
static void wait_ticks(long n)
{
	int waited;

	for (waited = 0; atomic_load(&ticks_a) < n || atomic_load(&ticks_b) < n || atomic_load(&ticks_c) < n;
	     waited++) {
		T_CHECK(!bad, "a timer notification was wrong (%d)", bad);
		T_CHECK(waited < 6000, "ticks stalled: A %ld, B %ld, C %ld, wanted %ld", atomic_load(&ticks_a),
			atomic_load(&ticks_b), atomic_load(&ticks_c), n);
		t_sleep_ms(5);
	}
}

static void check_new_timers(void)
{
	timer_t t1, t2;
	int i;

	atomic_store(&new_thread_id_fired, 0);
	atomic_store(&new_thread_fired, 0);
	t1 = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIG_NEW, (union sigval){ .sival_int = 0x1d }, NULL,
		  atomic_load(&worker_tid));
	t2 = make(CLOCK_MONOTONIC, SIGEV_THREAD, 0, (union sigval){ .sival_ptr = &new_thread_fired }, on_new, 0);
	arm(t1, 20000000L, 0);
	arm(t2, 20000000L, 0);
	for (i = 0; i < 1000 && !(atomic_load(&new_thread_id_fired) && atomic_load(&new_thread_fired)); i++)
		t_sleep_ms(5);
	T_CHECK(atomic_load(&new_thread_id_fired), "a new SIGEV_THREAD_ID timer did not fire");
	T_CHECK(atomic_load(&new_thread_fired), "a new SIGEV_THREAD timer did not fire");
	T_CHECK(timer_delete(t1) == 0 && timer_delete(t2) == 0, "timer_delete: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	pthread_t th;
	sigset_t set;
	timer_t gap;
	int k, i;

	t_init(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "fallback"))
		setenv("CRYO_TIMER_RESTORE_IDS", "0", 1);
	sigemptyset(&set);
	sigaddset(&set, SIG_B);
	sigaddset(&set, SIG_NEW);
	T_CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0, "block");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_a;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	T_CHECK(sigaction(SIG_A, &sa, NULL) == 0, "sigaction");
	T_CHECK(pthread_create(&th, NULL, worker, NULL) == 0, "worker");
	for (i = 0; i < 1000 && !atomic_load(&worker_tid); i++)
		t_sleep_ms(1);
	T_CHECK(atomic_load(&worker_tid), "worker did not start");

	gap = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, (union sigval){ 0 }, NULL, 0);
	ta = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIG_A, (union sigval){ .sival_int = 0xA }, NULL, 0);
	T_CHECK(timer_delete(gap) == 0, "timer_delete");
	tb = make(CLOCK_REALTIME, SIGEV_THREAD_ID, SIG_B, (union sigval){ .sival_int = 0xB }, NULL,
		  atomic_load(&worker_tid));
	tc = make(CLOCK_MONOTONIC, SIGEV_THREAD, 0, (union sigval){ .sival_int = 0xC }, on_c, 0);
	td = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, (union sigval){ 0 }, NULL, 0);
	te = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 3, (union sigval){ .sival_int = 0xE }, NULL, 0);
	arm(ta, 10000000L, 10000000L);
	arm(tb, 10000000L, 10000000L);
	arm(tc, 10000000L, 10000000L);
	arm(td, 1000000000L * 1000, 0);

	for (k = 1; k <= 4; k++) {
		uint64_t mono, boot, left_before, left_after;
		struct itimerspec its;

		wait_ticks(100L * k);
		printf("A, B and C have each fired %d times\n", 100 * k);
		if (k == 4)
			break;
		left_before = ns(get(td, "D").it_value);
		mono = clock_ns(CLOCK_MONOTONIC);
		boot = clock_ns(CLOCK_BOOTTIME);

		t_ready(k);

		T_CHECK(clock_ns(CLOCK_MONOTONIC) >= mono, "CLOCK_MONOTONIC ran backwards");
		T_CHECK(clock_ns(CLOCK_BOOTTIME) >= boot, "CLOCK_BOOTTIME ran backwards");
		its = get(ta, "A");
		T_CHECK(ns(its.it_interval) == 10000000ull, "A's interval");
		its = get(tb, "B");
		T_CHECK(ns(its.it_interval) == 10000000ull, "B's interval");
		its = get(tc, "C");
		T_CHECK(ns(its.it_interval) == 10000000ull, "C's interval");
		its = get(td, "D");
		left_after = ns(its.it_value);
		T_CHECK(left_after > 0 && left_after <= left_before && left_before - left_after < 120000000000ull,
			"D: %llu ns left before, %llu after", (unsigned long long)left_before,
			(unsigned long long)left_after);
		its = get(te, "E");
		T_CHECK(ns(its.it_value) == 0 && ns(its.it_interval) == 0, "E is armed");
		T_CHECK(timer_gettime(gap, &its) < 0 && errno == EINVAL, "the deleted timer's id names a timer");
		check_new_timers();
	}
	T_CHECK(!bad, "a timer notification was wrong (%d)", bad);
	t_pass();
}
