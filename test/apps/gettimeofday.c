/* gettimeofday: the vDSO time calls across checkpoint/restart. A thread
 * calls clock_gettime and gettimeofday in a tight loop the whole time (so a
 * checkpoint catches it inside the vDSO) and checks that CLOCK_MONOTONIC
 * never goes backwards. After each restart the main thread checks that
 * gettimeofday, time, and clock_gettime for REALTIME, MONOTONIC,
 * MONOTONIC_RAW, BOOTTIME and the coarse clocks work and agree, that the
 * monotonic clocks did not go backwards across the restart (same host), and
 * that the vDSO is where the auxiliary vector says (glibc keeps pointers
 * into it). */
#include "../lib/harness.h"
#include <pthread.h>
#include <stdatomic.h>
#include <sys/auxv.h>
#include <sys/time.h>

static _Atomic int stop;
static _Atomic long loops;
static char bad[256];

static int64_t ns(clockid_t c)
{
	struct timespec ts;

	if (clock_gettime(c, &ts) != 0)
		t_fail("clock_gettime(%d): %s", (int)c, strerror(errno));
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *spinner(void *arg)
{
	int64_t last = ns(CLOCK_MONOTONIC), now;
	struct timeval tv;

	while (!atomic_load(&stop)) {
		now = ns(CLOCK_MONOTONIC);
		if (now < last) {
			snprintf(bad, sizeof(bad), "CLOCK_MONOTONIC went back by %lld ns",
				 (long long)(last - now));
			break;
		}
		last = now;
		if (gettimeofday(&tv, NULL) != 0) {
			snprintf(bad, sizeof(bad), "gettimeofday: %s", strerror(errno));
			break;
		}
		atomic_fetch_add(&loops, 1);
	}
	return NULL;
}

static uintptr_t vdso_in_maps(void)
{
	char line[512];
	uintptr_t start = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	T_CHECK(f != NULL, "open maps");
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]"))
			start = (uintptr_t)strtoull(line, NULL, 16);
	fclose(f);
	return start;
}

int main(int argc, char **argv)
{
	static const clockid_t mono[] = { CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
					  CLOCK_MONOTONIC_COARSE };
	static const char *mono_name[] = { "MONOTONIC", "MONOTONIC_RAW", "BOOTTIME",
					   "MONOTONIC_COARSE" };
	int64_t before[4], rt_before;
	pthread_t th;

	t_init(argc, argv);
	T_CHECK(pthread_create(&th, NULL, spinner, NULL) == 0, "pthread_create");
	for (int k = 1; k <= 3; k++) {
		long l0;
		struct timeval tv;
		int64_t rt, gt;
		time_t t;

		for (int i = 0; i < 4; i++)
			before[i] = ns(mono[i]);
		rt_before = ns(CLOCK_REALTIME);
		t_ready(k);
		for (int i = 0; i < 4; i++) {
			int64_t now = ns(mono[i]);

			/* the coarse clock may lag the fine one it was read after */
			T_CHECK(now >= before[i], "READY %d: CLOCK_%s went back by %lld ns", k,
				mono_name[i], (long long)(before[i] - now));
		}
		rt = ns(CLOCK_REALTIME);
		T_CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
		t = time(NULL);
		gt = (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
		T_CHECK(rt > rt_before - 1000000000, "READY %d: CLOCK_REALTIME went back", k);
		T_CHECK(gt >= rt - 1000 && gt - rt < 1000000000, "READY %d: gettimeofday and "
			"CLOCK_REALTIME disagree by %lld ns", k, (long long)(gt - rt));
		T_CHECK(t - tv.tv_sec <= 1 && tv.tv_sec - t <= 1, "READY %d: time() %lld vs %lld", k,
			(long long)t, (long long)tv.tv_sec);
		T_CHECK(ns(CLOCK_REALTIME_COARSE) > rt - 1000000000, "REALTIME_COARSE");
		T_CHECK(vdso_in_maps() == getauxval(AT_SYSINFO_EHDR), "READY %d: [vdso] at %#lx, "
			"auxv says %#lx", k, (unsigned long)vdso_in_maps(),
			(unsigned long)getauxval(AT_SYSINFO_EHDR));
		l0 = atomic_load(&loops);
		for (int i = 0; i < 500 && atomic_load(&loops) == l0 && !bad[0]; i++)
			t_sleep_ms(2);
		T_CHECK(!bad[0], "READY %d: spinning thread: %s", k, bad);
		T_CHECK(atomic_load(&loops) != l0, "READY %d: spinning thread stopped", k);
		printf("READY %d: clocks monotonic across the restart, realtime sane, vDSO in place, "
		       "spinning thread running\n", k);
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	T_CHECK(!bad[0], "%s", bad);
	t_pass();
}
