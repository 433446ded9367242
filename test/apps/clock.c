/* clock: clocks and sleeps across checkpoint/restart. After each restart:
 * clock_getres answers as before; the process and thread CPU clocks (by
 * CLOCK_*_CPUTIME_ID and by the ids from clock_getcpuclockid(getpid()) and
 * pthread_getcpuclockid(pthread_self()), which carry a pid or tid the
 * kernel must recognise) read and advance. Across the first checkpoint two
 * threads sleep: one in clock_nanosleep(TIMER_ABSTIME) on CLOCK_MONOTONIC,
 * one in a relative nanosleep; each must wake no earlier than asked. */
#include "../lib/harness.h"
#include <pthread.h>

static int64_t ns_of(clockid_t c, const char *what)
{
	struct timespec ts;
	int r = clock_gettime(c, &ts);

	if (r != 0)
		t_fail("clock_gettime(%s): %s", what, strerror(errno));
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void burn(void)
{
	volatile uint64_t x = 0;

	for (long i = 0; i < 20000000; i++)
		x += i;
}

static const char *sleep_bad;

static void *abs_sleeper(void *arg)
{
	struct timespec dl;
	int64_t want = *(int64_t *)arg, now;
	int r;

	dl.tv_sec = want / 1000000000;
	dl.tv_nsec = want % 1000000000;
	while ((r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL)) == EINTR)
		;
	now = ns_of(CLOCK_MONOTONIC, "MONOTONIC");
	if (r != 0)
		sleep_bad = "clock_nanosleep failed";
	else if (now < want)
		sleep_bad = "clock_nanosleep(TIMER_ABSTIME) woke early";
	return NULL;
}

static void *rel_sleeper(void *arg)
{
	int64_t t0 = ns_of(CLOCK_MONOTONIC, "MONOTONIC");
	struct timespec ts = { 1, 0 };

	while (nanosleep(&ts, &ts) != 0)
		if (errno != EINTR) {
			sleep_bad = "nanosleep failed";
			return NULL;
		}
	if (ns_of(CLOCK_MONOTONIC, "MONOTONIC") - t0 < 1000000000)
		sleep_bad = "nanosleep(1 s) returned early";
	return NULL;
}

int main(int argc, char **argv)
{
	static const clockid_t ids[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_COARSE,
					 CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID,
					 CLOCK_THREAD_CPUTIME_ID };
	struct timespec res0[6], res;
	clockid_t pcid, tcid;
	pthread_t a, b;
	int64_t deadline;

	t_init(argc, argv);
	for (int i = 0; i < 6; i++)
		T_CHECK(clock_getres(ids[i], &res0[i]) == 0, "clock_getres %d", i);
	for (int k = 1; k <= 3; k++) {
		if (k == 1) {
			deadline = ns_of(CLOCK_MONOTONIC, "MONOTONIC") + 1200000000;
			T_CHECK(pthread_create(&a, NULL, abs_sleeper, &deadline) == 0, "create");
			T_CHECK(pthread_create(&b, NULL, rel_sleeper, NULL) == 0, "create");
		}
		burn();
		t_ready(k);
		printf("READY %d\n", k);
		for (int i = 0; i < 6; i++) {
			T_CHECK(clock_getres(ids[i], &res) == 0, "clock_getres %d: %s", i, strerror(errno));
			T_CHECK(res.tv_sec == res0[i].tv_sec && res.tv_nsec == res0[i].tv_nsec,
				"clock %d resolution changed", (int)ids[i]);
		}
		printf("  clock_getres unchanged for 6 clocks\n");
		T_CHECK(clock_getcpuclockid(getpid(), &pcid) == 0, "clock_getcpuclockid(getpid())");
		T_CHECK(pthread_getcpuclockid(pthread_self(), &tcid) == 0, "pthread_getcpuclockid");
		{
			int64_t p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID");
			int64_t t0 = ns_of(CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID");
			int64_t q0 = ns_of(pcid, "clock_getcpuclockid(getpid())");
			int64_t u0 = ns_of(tcid, "pthread_getcpuclockid(pthread_self())");

			burn();
			T_CHECK(ns_of(CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID") > p0 &&
				ns_of(CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID") > t0 &&
				ns_of(pcid, "process cpu clock id") > q0 &&
				ns_of(tcid, "thread cpu clock id") > u0, "READY %d: a CPU clock stands still", k);
		}
		printf("  process and thread CPU clocks advance, by id too\n");
		if (k == 1) {
			pthread_join(a, NULL);
			pthread_join(b, NULL);
			T_CHECK(!sleep_bad, "%s", sleep_bad);
			printf("  absolute and relative sleeps across the checkpoint woke on time\n");
		}
	}
	t_pass();
}
