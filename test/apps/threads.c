/* threads: 16 worker threads contend on a normal, a recursive and an
 * error-checking mutex and ping-pong in pairs over condition variables. In
 * each phase every worker does an exact amount of counted work, then keeps
 * churning (same locks, uncounted) until the next phase, so the threads are
 * busy, or blocked in futex waits, whenever the runner checkpoints; the
 * totals after each phase are exact and printed.
 *
 * Also checked across restarts: pthread_self() is unchanged; a mutex the main
 * thread holds across the checkpoint still knows its owner (trylock EBUSY,
 * lock EDEADLK, unlock 0 on the error-checking one, nested unlock on the
 * recursive one); a thread that exited before a checkpoint and ones that
 * were running are joined after it; a thread created after the last restart
 * works. Usage: threads [UNITS_PER_PHASE] */
#include "../lib/harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define NT 16
#define NPAIRS (NT / 2)
#define PHASES 4

struct pair {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int turn;		/* 0 or 1: which side may go */
	long counted, churn;
};

static long units = 12000;
static pthread_mutex_t m_norm = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_rec, m_err, m_held_err, m_held_rec;
static long total_norm, total_rec, total_err, churn_norm;
static struct pair pairs[NPAIRS];
static long done[NT];			/* counted units per worker, own slot */
static _Atomic int phase = 1;		/* workers may count up to phase*units */
static _Atomic int stopping;
static pthread_mutex_t ph_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ph_cv = PTHREAD_COND_INITIALIZER;
static int finished;			/* worker-phases completed, under ph_m */

static void lock_ok(pthread_mutex_t *m, const char *what)
{
	int r = pthread_mutex_lock(m);

	if (r)
		t_fail("lock %s: %s", what, strerror(r));
}

static void unlock_ok(pthread_mutex_t *m, const char *what)
{
	int r = pthread_mutex_unlock(m);

	if (r)
		t_fail("unlock %s: %s", what, strerror(r));
}

/* One exchange with the partner thread: wait for our turn, hand it over. */
static int pair_step(struct pair *p, int side, int counted)
{
	lock_ok(&p->m, "pair");
	while (p->turn != side && !atomic_load(&stopping))
		pthread_cond_wait(&p->cv, &p->m);
	if (atomic_load(&stopping)) {
		unlock_ok(&p->m, "pair");
		return -1;
	}
	if (counted)
		p->counted++;
	else
		p->churn++;
	p->turn = !side;
	pthread_cond_broadcast(&p->cv);
	unlock_ok(&p->m, "pair");
	return 0;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, r;
	struct pair *p = &pairs[id / 2];
	unsigned spin = 0;

	for (;;) {
		int ph = atomic_load(&phase);

		if (atomic_load(&stopping))
			break;
		if (done[id] < ph * units) {
			lock_ok(&m_norm, "normal");
			total_norm++;
			unlock_ok(&m_norm, "normal");

			lock_ok(&m_rec, "recursive");
			lock_ok(&m_rec, "recursive (nested)");
			total_rec++;
			unlock_ok(&m_rec, "recursive (nested)");
			unlock_ok(&m_rec, "recursive");

			lock_ok(&m_err, "errorcheck");
			if (done[id] % 512 == 0) {
				r = pthread_mutex_lock(&m_err);
				if (r != EDEADLK)
					t_fail("worker %d: relock of own errorcheck mutex: %d", id, r);
			}
			total_err++;
			unlock_ok(&m_err, "errorcheck");
			if (done[id] % 512 == 1) {
				r = pthread_mutex_unlock(&m_err);
				if (r != EPERM)
					t_fail("worker %d: unlock of unowned errorcheck mutex: %d", id, r);
			}
			if (pair_step(p, id & 1, 1) < 0)
				break;
			if (++done[id] == ph * units) {
				lock_ok(&ph_m, "phase");
				finished++;
				pthread_cond_signal(&ph_cv);
				unlock_ok(&ph_m, "phase");
			}
		} else {
			/* churn: same locks, nothing counted, until the next phase */
			lock_ok(&m_norm, "normal");
			churn_norm++;
			unlock_ok(&m_norm, "normal");
			if (pair_step(p, id & 1, 0) < 0)
				break;
			for (volatile unsigned i = 0; i < 200; i++)
				spin += i;
		}
	}
	return (void *)(long)(1000 + id);
}

static void *early(void *arg)
{
	return arg;
}

struct late_arg {
	long n;
	pthread_t self;
};

static void *late(void *arg)
{
	struct late_arg *a = arg;

	a->self = pthread_self();
	for (long i = 0; i < a->n; i++) {
		lock_ok(&m_norm, "normal (late)");
		total_norm++;
		unlock_ok(&m_norm, "normal (late)");
		lock_ok(&m_err, "errorcheck (late)");
		total_err++;
		unlock_ok(&m_err, "errorcheck (late)");
	}
	return a;
}

static void wait_phase(int ph)
{
	lock_ok(&ph_m, "phase");
	while (finished < ph * NT)
		pthread_cond_wait(&ph_cv, &ph_m);
	unlock_ok(&ph_m, "phase");
}

static void report(int ph)
{
	long pc = 0, want = (long)ph * units * NT;

	lock_ok(&m_norm, "normal");
	lock_ok(&m_rec, "recursive");
	lock_ok(&m_err, "errorcheck");
	for (int i = 0; i < NPAIRS; i++) {
		lock_ok(&pairs[i].m, "pair");
		pc += pairs[i].counted;
		unlock_ok(&pairs[i].m, "pair");
	}
	T_CHECK(total_norm == want && total_rec == want && total_err == want && pc == want,
		"phase %d: norm %ld rec %ld err %ld pairs %ld, want %ld", ph, total_norm,
		total_rec, total_err, pc, want);
	for (int i = 0; i < NT; i++)
		T_CHECK(done[i] == ph * units, "worker %d did %ld", i, done[i]);
	printf("phase %d: normal %ld recursive %ld errorcheck %ld pair exchanges %ld\n", ph,
	       total_norm, total_rec, total_err, pc);
	unlock_ok(&m_err, "errorcheck");
	unlock_ok(&m_rec, "recursive");
	unlock_ok(&m_norm, "normal");
}

/* The main thread holds m_held_err and m_held_rec (twice) across READY k. */
static void check_held(int k)
{
	int r;

	r = pthread_mutex_trylock(&m_held_err);
	T_CHECK(r == EBUSY, "READY %d: trylock held errorcheck mutex: %d", k, r);
	r = pthread_mutex_lock(&m_held_err);
	T_CHECK(r == EDEADLK, "READY %d: relock held errorcheck mutex: %d (owner lost?)", k, r);
	r = pthread_mutex_unlock(&m_held_err);
	T_CHECK(r == 0, "READY %d: owner unlocks errorcheck mutex: %d", k, r);
	r = pthread_mutex_unlock(&m_held_err);
	T_CHECK(r == EPERM, "READY %d: second unlock: %d", k, r);
	r = pthread_mutex_unlock(&m_held_rec);
	T_CHECK(r == 0, "READY %d: owner unlocks recursive mutex: %d", k, r);
	r = pthread_mutex_trylock(&m_held_rec);	/* still held once: recursion */
	T_CHECK(r == 0, "READY %d: owner relocks recursive mutex: %d", k, r);
	r = pthread_mutex_unlock(&m_held_rec);
	T_CHECK(r == 0, "READY %d: unlock: %d", k, r);
	r = pthread_mutex_unlock(&m_held_rec);
	T_CHECK(r == 0, "READY %d: last unlock: %d", k, r);
	r = pthread_mutex_unlock(&m_held_rec);
	T_CHECK(r == EPERM, "READY %d: unlock of free recursive mutex: %d", k, r);
	printf("READY %d: held mutexes still owned by the main thread\n", k);
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t a;
	pthread_t tid[NT], early_t, self = pthread_self();
	struct late_arg la = { 0 };
	void *ret;
	int r;

	t_init(argc, argv);
	if (argc > 1)
		units = atol(argv[1]);
	T_CHECK(units > 0, "units");
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&m_rec, &a);
	pthread_mutex_init(&m_held_rec, &a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&m_err, &a);
	pthread_mutex_init(&m_held_err, &a);
	pthread_mutexattr_destroy(&a);
	for (int i = 0; i < NPAIRS; i++) {
		pthread_mutex_init(&pairs[i].m, NULL);
		pthread_cond_init(&pairs[i].cv, NULL);
	}

	r = pthread_create(&early_t, NULL, early, (void *)77L);
	T_CHECK(r == 0, "create early: %s", strerror(r));
	for (int i = 0; i < NT; i++) {
		r = pthread_create(&tid[i], NULL, worker, (void *)(long)i);
		T_CHECK(r == 0, "create worker %d: %s", i, strerror(r));
	}
	printf("started %d workers, %ld units per phase\n", NT, units);

	for (int k = 1; k <= 3; k++) {
		/* phase k's counted work runs while the runner checkpoints */
		lock_ok(&m_held_err, "held errorcheck");
		lock_ok(&m_held_rec, "held recursive");
		lock_ok(&m_held_rec, "held recursive (nested)");
		t_ready(k);
		T_CHECK(pthread_equal(self, pthread_self()), "pthread_self changed across READY %d", k);
		check_held(k);
		if (k == 1) {
			r = pthread_join(early_t, &ret);
			T_CHECK(r == 0 && ret == (void *)77L, "join early thread: %d", r);
			printf("joined the thread that exited before the checkpoint\n");
		}
		wait_phase(k);
		report(k);
		atomic_store(&phase, k + 1);
	}

	/* after the last restart: a new thread shares the mutexes */
	la.n = units;
	{
		pthread_t lt;

		r = pthread_create(&lt, NULL, late, &la);
		T_CHECK(r == 0, "create late thread: %s", strerror(r));
		wait_phase(4);
		r = pthread_join(lt, &ret);
		T_CHECK(r == 0 && ret == &la, "join late thread: %d", r);
		T_CHECK(pthread_equal(lt, la.self), "late thread's pthread_self");
	}
	atomic_store(&stopping, 1);
	for (int i = 0; i < NPAIRS; i++) {
		lock_ok(&pairs[i].m, "pair");
		pthread_cond_broadcast(&pairs[i].cv);
		unlock_ok(&pairs[i].m, "pair");
	}
	for (int i = 0; i < NT; i++) {
		r = pthread_join(tid[i], &ret);
		T_CHECK(r == 0 && ret == (void *)(long)(1000 + i), "join worker %d: %d", i, r);
	}
	total_norm -= units;	/* the late thread's share */
	total_err -= units;
	report(4);
	printf("late thread did %ld units; all %d workers joined\n", units, NT);
	t_pass();
}
