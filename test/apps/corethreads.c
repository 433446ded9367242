/* corethreads: a target for `cryo_image export-core`, read back with gdb by
 * test/integration/export_core.sh. Three threads each block in a function
 * of their own with a local of their own, and the main thread waits in
 * main_waiting() with one too:
 *
 *   worker_alpha   alpha_local = 4242
 *   worker_beta    beta_local  = 5353
 *   worker_gamma   gamma_local = 6464
 *   main_waiting   main_local  = 7575
 *
 * Each worker blocks on a condition variable (a futex wait in libc), so the
 * checkpoint interrupts it inside a system call and gdb must unwind from
 * libc back into the worker's frame. The main thread prints "@@READY 1"
 * only once all three are in place, and waits there (in sigtimedwait, via
 * t_ready) for the continue signal; after it the program releases the
 * workers, joins them and passes. Usage: corethreads */
#include "../lib/harness.h"
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int in_place;		/* workers blocked so far, under lock */
static int release;		/* set by main after READY 1, under lock */

/* Announces the caller and blocks until main releases the workers. Not
 * inlined, so each worker's frame stays below it on the stack. */
static __attribute__((noinline)) void wait_for_release(void)
{
	pthread_mutex_lock(&lock);
	in_place++;
	pthread_cond_broadcast(&cv);
	while (!release)
		pthread_cond_wait(&cv, &lock);
	pthread_mutex_unlock(&lock);
}

/* The locals are volatile and read after the wait, so each lives in its
 * frame's stack slot across the call, where gdb finds it. */
static __attribute__((noinline)) long worker_alpha(int seed)
{
	volatile long alpha_local = 4242 + seed;

	wait_for_release();
	return alpha_local;
}

static __attribute__((noinline)) long worker_beta(int seed)
{
	volatile long beta_local = 5353 + seed;

	wait_for_release();
	return beta_local;
}

static __attribute__((noinline)) long worker_gamma(int seed)
{
	volatile long gamma_local = 6464 + seed;

	wait_for_release();
	return gamma_local;
}

static long (*const workers[3])(int) = { worker_alpha, worker_beta, worker_gamma };

static void *start(void *arg)
{
	return (void *)workers[(long)arg](0);
}

static __attribute__((noinline)) void main_waiting(void)
{
	volatile long main_local = 7575;

	pthread_mutex_lock(&lock);
	while (in_place < 3)
		pthread_cond_wait(&cv, &lock);
	pthread_mutex_unlock(&lock);
	t_ready(1);
	T_CHECK(main_local == 7575, "main_local is %ld", main_local);
}

int main(int argc, char **argv)
{
	static const long want[3] = { 4242, 5353, 6464 };
	pthread_t tid[3];
	void *ret;
	int i, r;

	t_init(argc, argv);
	for (i = 0; i < 3; i++) {
		r = pthread_create(&tid[i], NULL, start, (void *)(long)i);
		T_CHECK(r == 0, "create worker %d: %s", i, strerror(r));
	}
	main_waiting();
	pthread_mutex_lock(&lock);
	release = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < 3; i++) {
		r = pthread_join(tid[i], &ret);
		T_CHECK(r == 0 && (long)ret == want[i], "join worker %d: %d, %ld", i, r, (long)ret);
	}
	printf("three workers joined\n");
	t_pass();
}
