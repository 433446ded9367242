/* tls: thread-local storage and errno across checkpoint/restart. Eight
 * threads each give their __thread variables (an initialised int, a bss
 * array, a pointer to their own heap block) and errno distinct values.
 * Half of them spin re-checking the values without a system call while the
 * runner checkpoints, half wait on a condition variable (which leaves errno
 * alone); after each restart all of them check again, as does the main
 * thread, whose errno is set before t_ready (which preserves it). */
#include "../lib/harness.h"
#include <pthread.h>
#include <stdatomic.h>

#define NT 8

static __thread int t_int = 42;
static __thread uint64_t t_arr[512];
static __thread char *t_heap;
static __thread int t_id = -1;

static _Atomic int phase;		/* bumped by main after each READY */
static _Atomic int stop;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int checked[4];			/* threads that checked phase p, under m */
static char bad[256];			/* first failure seen by a thread */

static void set_mine(int id)
{
	t_id = id;
	t_int = 1000 + id;
	for (int i = 0; i < 512; i++)
		t_arr[i] = (uint64_t)id << 32 | i;
	t_heap = malloc(256);
	memset(t_heap, 'a' + id % 26, 256);
}

static const char *check_mine(int id, int want_errno)
{
	if (t_id != id || t_int != 1000 + id)
		return "scalar __thread value";
	for (int i = 0; i < 512; i++)
		if (t_arr[i] != ((uint64_t)id << 32 | i))
			return "__thread array";
	for (int i = 0; i < 256; i++)
		if (t_heap[i] != 'a' + id % 26)
			return "heap block behind a __thread pointer";
	if (errno != want_errno)
		return "errno";
	return NULL;
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, seen = 0, want = 200 + id;
	const char *why;

	set_mine(id);
	errno = want;
	while (!atomic_load(&stop)) {
		if (id % 2) {
			/* spinner: no system call, values checked all the time */
			while (atomic_load(&phase) == seen && !atomic_load(&stop))
				if ((why = check_mine(id, want)))
					goto out_bad;
		} else {
			pthread_mutex_lock(&m);
			while (atomic_load(&phase) == seen && !atomic_load(&stop))
				pthread_cond_wait(&cv, &m);
			pthread_mutex_unlock(&m);
		}
		/* glibc's mutex and condvar calls leave errno alone */
		seen = atomic_load(&phase);
		if (atomic_load(&stop))
			break;
		if ((why = check_mine(id, want)))
			goto out_bad;
		pthread_mutex_lock(&m);
		checked[seen]++;
		pthread_cond_broadcast(&cv);
		pthread_mutex_unlock(&m);
	}
	free(t_heap);
	return NULL;
out_bad:
	pthread_mutex_lock(&m);
	snprintf(bad, sizeof(bad), "thread %d: %s (errno %d)", id, why, errno);
	checked[0] = -1000;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&m);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t tid[NT];
	const char *why;

	t_init(argc, argv);
	set_mine(99);
	for (int i = 0; i < NT; i++)
		T_CHECK(pthread_create(&tid[i], NULL, worker, (void *)(long)i) == 0, "create");
	printf("%d threads with their own TLS and errno\n", NT);
	for (int k = 1; k <= 3; k++) {
		errno = 300 + k;
		t_ready(k);
		T_CHECK(errno == 300 + k, "READY %d: main errno %d, want %d", k, errno, 300 + k);
		T_CHECK(!(why = check_mine(99, errno)), "READY %d: main thread %s", k, why);
		pthread_mutex_lock(&m);
		atomic_store(&phase, k);
		pthread_cond_broadcast(&cv);
		while (checked[k] < NT && checked[0] >= 0)
			pthread_cond_wait(&cv, &m);
		pthread_mutex_unlock(&m);
		T_CHECK(checked[0] >= 0, "READY %d: %s", k, bad);
		printf("READY %d: TLS and errno intact in the main thread and %d threads\n", k, NT);
	}
	atomic_store(&stop, 1);
	pthread_mutex_lock(&m);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&m);
	for (int i = 0; i < NT; i++)
		pthread_join(tid[i], NULL);
	T_CHECK(checked[0] >= 0, "%s", bad);
	t_pass();
}
