/* epoll: an epoll instance over eventfds and a timerfd across
 * checkpoint/restart. Its interest list (each fd's events and 64-bit data)
 * must come back as it was (compared through fdinfo), and behave:
 * - e0, level-triggered, holding a counter: reported, with its data;
 * - e1, edge-triggered, written before READY and not yet waited for:
 *   reported once after the restart, not twice;
 * - e2, EPOLLONESHOT: armed in cycles 1 and 3 (reported), disarmed in
 *   cycle 2 (not reported although readable), re-armed with EPOLL_CTL_MOD;
 * - a nested epoll (an epoll watching e3) inside the outer one: reported;
 * - a periodic timerfd (15 ms): reported again and again;
 * - a thread blocked in epoll_wait() on another epoll across the
 *   checkpoint wakes when the main thread writes after READY (EINTR in
 *   between is retried, as after any signal).
 * Output: one line per cycle naming what was reported, no times. */
#include "../lib/harness.h"
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#define D_E0 0xa0a0a0a0a0a0a0a0ull
#define D_E1 0x00000000000000b1ull
#define D_E2 0xc2c2c2c2ffffffffull
#define D_IN 0x7fffffffffff00f5ull
#define D_E3 0xe4ull
#define D_T 0xd3d3ull
#define D_WAKE 0x77ull

static int ep, inner, ep_wait, e[4], tfd, wake;

static void add(int epfd, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		t_fail("epoll_ctl add %d: %s", fd, strerror(errno));
}

static void put(int fd, uint64_t v)
{
	T_CHECK(write(fd, &v, 8) == 8, "write fd %d: %s", fd, strerror(errno));
}

static uint64_t take(int fd)
{
	uint64_t v = 0;

	T_CHECK(read(fd, &v, 8) == 8, "read fd %d: %s", fd, strerror(errno));
	return v;
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The interest lines of an epoll's fdinfo, "tfd: ... data: ..." only,
 * sorted (the kernel lists them in the order of its tree of files). */
static void interests(int fd, char *out, size_t size)
{
	char path[64], line[128], lines[16][128], *s;
	size_t used = 0, n = 0, i;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	T_CHECK(f != NULL, "%s", path);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "tfd:", 4))
			continue;
		s = strstr(line, " pos:");
		if (s)
			*s = '\0';
		T_CHECK(n < 16, "too many interests");
		snprintf(lines[n++], sizeof(lines[0]), "%s", line);
	}
	fclose(f);
	qsort(lines, n, sizeof(lines[0]), cmp_line);
	for (i = 0; i < n; i++) {
		used += (size_t)snprintf(out + used, size - used, "%s;", lines[i]);
		T_CHECK(used < size, "fdinfo too long");
	}
}

static void *waiter(void *arg)
{
	struct epoll_event ev;
	int r;

	while ((r = epoll_wait(ep_wait, &ev, 1, -1)) < 0 && errno == EINTR)
		;	/* a checkpoint interrupts epoll_wait(), as any signal does */
	T_CHECK(r == 1 && ev.data.u64 == D_WAKE && (ev.events & EPOLLIN), "waiter: %d %s", r, strerror(errno));
	T_CHECK(take(wake) == 1, "waiter value");
	return NULL;
}

/* One epoll_wait: which tags came, as bits. */
enum { B_E0 = 1, B_E1 = 2, B_E2 = 4, B_IN = 8, B_T = 16 };
static int wait_tags(int timeout_ms)
{
	struct epoll_event evs[16];
	int n, i, bits = 0;

	while ((n = epoll_wait(ep, evs, 16, timeout_ms)) < 0 && errno == EINTR)
		;
	T_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		T_CHECK(evs[i].events & EPOLLIN, "events %#x", evs[i].events);
		switch (evs[i].data.u64) {
		case D_E0: bits |= B_E0; break;
		case D_E1: bits |= B_E1; break;
		case D_E2: bits |= B_E2; break;
		case D_IN: bits |= B_IN; break;
		case D_T: bits |= B_T; break;
		default: t_fail("unknown data %#llx", (unsigned long long)evs[i].data.u64);
		}
	}
	return bits;
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, 15000000 }, { 0, 15000000 } };
	int k, i;

	t_init(argc, argv);
	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create(1);
	ep_wait = epoll_create1(0);
	for (i = 0; i < 4; i++)
		e[i] = eventfd(0, EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	wake = eventfd(0, 0);
	T_CHECK(ep >= 0 && inner >= 0 && ep_wait >= 0 && e[0] >= 0 && e[1] >= 0 && e[2] >= 0 && e[3] >= 0 &&
		tfd >= 0 && wake >= 0, "create: %s", strerror(errno));
	T_CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
	add(ep, e[0], EPOLLIN, D_E0);
	add(ep, e[1], EPOLLIN | EPOLLET, D_E1);
	add(ep, e[2], EPOLLIN | EPOLLONESHOT, D_E2);
	add(inner, e[3], EPOLLIN | EPOLLPRI, D_E3);
	add(ep, inner, EPOLLIN, D_IN);
	add(ep, tfd, EPOLLIN, D_T);
	add(ep_wait, wake, EPOLLIN | EPOLLRDHUP, D_WAKE);

	for (k = 1; k <= 3; k++) {
		char before[1024], after[1024];
		pthread_t th;
		int bits, again, ticks;

		put(e[0], (uint64_t)k);
		put(e[1], 1);
		put(e[2], 1);
		if (k == 3) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = D_E2 };

			T_CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, e[2], &ev) == 0, "re-arm: %s", strerror(errno));
		}
		put(e[3], 1);
		interests(ep, before, sizeof(before));
		T_CHECK(pthread_create(&th, NULL, waiter, NULL) == 0, "waiter");

		t_ready(k);

		interests(ep, after, sizeof(after));
		T_CHECK(!strcmp(before, after), "interest list\n  %s\nbecame\n  %s", before, after);
		bits = wait_tags(1000) & ~B_T;
		T_CHECK(take(e[0]) == (uint64_t)k, "e0 counter");
		T_CHECK(take(e[1]) == 1 && take(e[2]) == 1, "e1/e2 counters");
		T_CHECK(take(e[3]) == 1, "e3 counter");
		again = wait_tags(0) & ~B_T;
		T_CHECK(again == 0, "reported again after reading: %#x", again);
		for (ticks = 0; ticks < 200 && !(wait_tags(50) & B_T); ticks++)
			;
		T_CHECK(ticks < 200, "the timerfd is no longer reported");
		while (read(tfd, &(uint64_t){ 0 }, 8) == 8)
			;
		put(wake, 1);
		pthread_join(th, NULL);
		printf("cycle %d: level %s, edge %s, one-shot %s, nested %s, timer yes, blocked waiter woke\n", k,
		       bits & B_E0 ? "yes" : "no", bits & B_E1 ? "yes" : "no", bits & B_E2 ? "yes" : "no",
		       bits & B_IN ? "yes" : "no");
	}
	t_pass();
}
