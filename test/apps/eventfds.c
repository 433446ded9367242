/* eventfds: eventfd, signalfd and timerfd across checkpoint/restart. Before
 * each READY the program leaves state in each kind of fd; after it, the
 * state must be there, on the same fd numbers, with the same flags:
 * - eventfd (non-blocking, close-on-exec) holding a counter, a dup of it
 *   (one description: what one writes the other reads), an EFD_SEMAPHORE
 *   eventfd (reads return 1, count times);
 * - signalfd for SIGUSR2 and SIGRTMIN+4 (blocked) with both pending: read
 *   after the restart with their values; its fdinfo mask unchanged;
 * - timerfds: periodic CLOCK_MONOTONIC 20 ms (keeps expiring, interval
 *   kept), one-shot CLOCK_BOOTTIME 1000 s (re-armed with the time that was
 *   left, never more), CLOCK_REALTIME TFD_TIMER_ABSTIME with
 *   TFD_TIMER_CANCEL_ON_SET (the same date), a disarmed one (stays
 *   disarmed), and an expired one-shot whose expiration was not read
 *   (still readable once);
 * - a thread blocked in poll() on an eventfd and one in select() on
 *   another across the checkpoint: each must wake when the main thread
 *   writes after READY (an EINTR in between is retried, as the program
 *   would after any signal).
 * Output: one line per cycle naming what was read, no times. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#define SIG_RT (SIGRTMIN + 4)

static int efd, efd_dup, sem, sfd, tper, tlong, tabs, toff, tfired, wake_poll, wake_select;
static struct timespec abs_deadline;

static uint64_t ts_ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void arm(int fd, int flags, long value_ns, long interval_ns, const struct timespec *abs)
{
	struct itimerspec its = { { interval_ns / 1000000000L, interval_ns % 1000000000L },
				  { value_ns / 1000000000L, value_ns % 1000000000L } };

	if (abs)
		its.it_value = *abs;
	if (timerfd_settime(fd, flags, &its, NULL) < 0)
		t_fail("timerfd_settime fd %d: %s", fd, strerror(errno));
}

static uint64_t left_ns(int fd, uint64_t *interval)
{
	struct itimerspec its;

	if (timerfd_gettime(fd, &its) < 0)
		t_fail("timerfd_gettime fd %d: %s", fd, strerror(errno));
	if (interval)
		*interval = ts_ns(its.it_interval);
	return ts_ns(its.it_value);
}

/* The "sigmask:" line of fd's fdinfo. */
static void sigmask_line(int fd, char *out, size_t size)
{
	char path[64], buf[1024], *s;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	T_CHECK(f != NULL, "%s", path);
	out[0] = '\0';
	while (fgets(buf, sizeof(buf), f))
		if ((s = strstr(buf, "sigmask:")) == buf)
			snprintf(out, size, "%s", buf);
	fclose(f);
	T_CHECK(out[0], "no sigmask line for fd %d", fd);
}

static void *poller(void *arg)
{
	struct pollfd p = { .fd = wake_poll, .events = POLLIN };
	uint64_t v;

	for (;;) {
		int r = poll(&p, 1, -1);

		if (r < 0 && errno == EINTR)
			continue;	/* a checkpoint interrupts poll(), as any signal does */
		T_CHECK(r == 1 && (p.revents & POLLIN), "poll: %d %s", r, strerror(errno));
		break;
	}
	T_CHECK(read(wake_poll, &v, 8) == 8 && v == 7, "poller read %llu", (unsigned long long)v);
	return NULL;
}

static void *selecter(void *arg)
{
	uint64_t v;

	for (;;) {
		fd_set rd;
		int r;

		FD_ZERO(&rd);
		FD_SET(wake_select, &rd);
		r = select(wake_select + 1, &rd, NULL, NULL, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		T_CHECK(r == 1 && FD_ISSET(wake_select, &rd), "select: %d %s", r, strerror(errno));
		break;
	}
	T_CHECK(read(wake_select, &v, 8) == 8 && v == 9, "selecter read %llu", (unsigned long long)v);
	return NULL;
}

static void check_flags(int fd, int nonblock, int cloexec, const char *what)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	T_CHECK(fl >= 0 && fdfl >= 0, "%s: fd %d is not open: %s", what, fd, strerror(errno));
	T_CHECK(!!(fl & O_NONBLOCK) == nonblock, "%s: O_NONBLOCK %d", what, !!(fl & O_NONBLOCK));
	T_CHECK(!!(fdfl & FD_CLOEXEC) == cloexec, "%s: FD_CLOEXEC %d", what, !!(fdfl & FD_CLOEXEC));
}

int main(int argc, char **argv)
{
	struct timespec now;
	sigset_t sigs;
	int k;

	t_init(argc, argv);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR2);
	sigaddset(&sigs, SIG_RT);
	T_CHECK(sigprocmask(SIG_BLOCK, &sigs, NULL) == 0, "block");
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sem = eventfd(0, EFD_SEMAPHORE);
	efd_dup = dup(efd);
	sfd = signalfd(-1, &sigs, SFD_NONBLOCK);
	tper = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	tlong = timerfd_create(CLOCK_BOOTTIME, 0);
	tabs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	toff = timerfd_create(CLOCK_MONOTONIC, 0);
	tfired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	wake_poll = eventfd(0, 0);
	wake_select = eventfd(0, EFD_CLOEXEC);
	T_CHECK(efd >= 0 && sem >= 0 && efd_dup >= 0 && sfd >= 0 && tper >= 0 && tlong >= 0 && tabs >= 0 &&
		toff >= 0 && tfired >= 0 && wake_poll >= 0 && wake_select >= 0, "create: %s", strerror(errno));
	arm(tper, 0, 20000000L, 20000000L, NULL);
	arm(tlong, 0, 1000000000L * 1000, 0, NULL);
	clock_gettime(CLOCK_REALTIME, &now);
	abs_deadline.tv_sec = now.tv_sec + 2000;
	abs_deadline.tv_nsec = 500000000L;
	arm(tabs, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, 0, 0, &abs_deadline);

	for (k = 1; k <= 3; k++) {
		pthread_t pt, st;
		uint64_t v, before, after, interval;
		char mask_before[128], mask_after[128];
		struct signalfd_siginfo si;
		int got_usr2 = 0, got_rt = 0, rt_val = -1, n;
		union sigval sv = { .sival_int = 100 + k };

		v = (uint64_t)k * 10;
		T_CHECK(write(efd, &v, 8) == 8, "write efd");
		v = (uint64_t)k + 1;
		T_CHECK(write(sem, &v, 8) == 8, "write sem");
		T_CHECK(sigqueue(getpid(), SIG_RT, sv) == 0, "sigqueue");
		T_CHECK(kill(getpid(), SIGUSR2) == 0, "kill");
		arm(tfired, 0, 1000000L, 0, NULL);
		t_sleep_ms(20);	/* tfired has expired; its expiration stays unread */
		sigmask_line(sfd, mask_before, sizeof(mask_before));
		before = left_ns(tlong, NULL);
		T_CHECK(pthread_create(&pt, NULL, poller, NULL) == 0, "poller");
		T_CHECK(pthread_create(&st, NULL, selecter, NULL) == 0, "selecter");

		t_ready(k);

		/* eventfd: counter, shared description, flags */
		check_flags(efd, 1, 1, "efd");
		check_flags(efd_dup, 1, 0, "efd dup");
		check_flags(sem, 0, 0, "sem");
		T_CHECK(read(efd, &v, 8) == 8 && v == (uint64_t)k * 10, "efd read %llu", (unsigned long long)v);
		T_CHECK(read(efd, &v, 8) < 0 && errno == EAGAIN, "efd empty");
		v = 5;
		T_CHECK(write(efd_dup, &v, 8) == 8, "write dup");
		T_CHECK(read(efd, &v, 8) == 8 && v == 5, "the dup is not the same eventfd: %llu", (unsigned long long)v);
		for (n = 0;; n++) {
			struct pollfd p = { .fd = sem, .events = POLLIN };

			if (poll(&p, 1, 0) != 1)
				break;
			T_CHECK(read(sem, &v, 8) == 8 && v == 1, "semaphore read %llu", (unsigned long long)v);
		}
		T_CHECK(n == k + 1, "semaphore gave %d reads, wanted %d", n, k + 1);

		/* signalfd: mask, pending signals with their values */
		check_flags(sfd, 1, 0, "sfd");
		sigmask_line(sfd, mask_after, sizeof(mask_after));
		T_CHECK(!strcmp(mask_before, mask_after), "signalfd mask %s became %s", mask_before, mask_after);
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR2)
				got_usr2++;
			else if ((int)si.ssi_signo == SIG_RT) {
				got_rt++;
				rt_val = si.ssi_int;
			}
		}
		T_CHECK(errno == EAGAIN, "signalfd read: %s", strerror(errno));

		/* timerfds */
		check_flags(tper, 1, 1, "tper");
		check_flags(tlong, 0, 0, "tlong");
		check_flags(tabs, 1, 0, "tabs");
		left_ns(tper, &interval);
		T_CHECK(interval == 20000000ull, "periodic interval %llu", (unsigned long long)interval);
		for (n = 0; n < 500 && read(tper, &v, 8) != 8; n++)
			t_sleep_ms(5);
		T_CHECK(n < 500, "the periodic timerfd stopped");
		after = left_ns(tlong, &interval);
		T_CHECK(interval == 0 && after > 0 && after <= before && before - after < 120ull * 1000000000,
			"one-shot: %llu ns left before, %llu after", (unsigned long long)before,
			(unsigned long long)after);
		clock_gettime(CLOCK_REALTIME, &now);
		after = left_ns(tabs, NULL);
		v = ts_ns(abs_deadline) - ts_ns(now);
		T_CHECK(after + 1000000000ull > v && after < v + 1000000000ull,
			"absolute timer: %llu ns left, the date is %llu ns away", (unsigned long long)after,
			(unsigned long long)v);
		T_CHECK(left_ns(toff, &interval) == 0 && interval == 0, "disarmed timer armed");
		T_CHECK(read(tfired, &v, 8) == 8 && v == 1, "expired timerfd read: %s", strerror(errno));

		/* threads blocked in poll() and select() */
		v = 7;
		T_CHECK(write(wake_poll, &v, 8) == 8, "wake poll");
		v = 9;
		T_CHECK(write(wake_select, &v, 8) == 8, "wake select");
		pthread_join(pt, NULL);
		pthread_join(st, NULL);

		printf("cycle %d: eventfd %d, semaphore %d reads, SIGUSR2 %d, SIGRTMIN+4 %d value %d, "
		       "timers ok, poll and select woke\n",
		       k, k * 10, k + 1, got_usr2, got_rt, rt_val);
	}
	t_pass();
}
