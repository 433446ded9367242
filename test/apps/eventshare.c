/* eventshare: event fds shared by a parent and its child (inherited at
 * fork) across checkpoint/restart. They must come back as one object seen
 * by both, not one copy each:
 * - req (an EFD_SEMAPHORE eventfd) carries requests from parent to child,
 *   rep (an eventfd) carries the answers back, so after a restart the
 *   parent's write must wake the child blocked in read() on its number;
 * - an epoll (the child's alone once the parent closed its copy) watches
 *   ack, a shared eventfd the parent writes after each answer and the
 *   child reads;
 * - a timerfd armed by the parent (one-shot, 1000 s) is read by the child
 *   with timerfd_gettime: the same timer in both;
 * - a dup of req in the parent must stay the same object too.
 * Each cycle the parent sends 3 requests, the child answers each with the
 * number the parent put in the timer's interval, then the parent checks
 * and prints. The last request tells the child to exit 7, and the parent
 * reaps it. */
#include "../lib/harness.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

static int req, req2, rep, ack, ep, tfd;

static void put(int fd, uint64_t v)
{
	T_CHECK(write(fd, &v, 8) == 8, "write fd %d: %s", fd, strerror(errno));
}

/* Reads fd within 10 s (a copy that nobody writes never becomes ready). */
static uint64_t take(int fd, const char *what)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v = 0;
	int r;

	while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
		;
	T_CHECK(r == 1, "%s: nothing within 10 s: the object is no longer shared", what);
	T_CHECK(read(fd, &v, 8) == 8, "%s: read: %s", what, strerror(errno));
	return v;
}

static int child(void)
{
	for (;;) {
		struct epoll_event ev;
		struct itimerspec its;
		uint64_t v = 0;
		ssize_t n;
		int r;

		/* blocking read(): a checkpoint restarts it (SA_RESTART) */
		n = read(req, &v, 8);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 8 || v != 1)
			return 2;
		/* the request number is in the shared timer's interval (ns) */
		if (timerfd_gettime(tfd, &its) < 0 || its.it_value.tv_sec < 900)
			return 4;
		put(rep, (uint64_t)its.it_interval.tv_nsec);
		while ((r = epoll_wait(ep, &ev, 1, 10000)) < 0 && errno == EINTR)
			;
		if (r != 1 || ev.data.u64 != 0xacc || read(ack, &v, 8) != 8)
			return 5;
		if (its.it_interval.tv_nsec == 999)
			return 7;
	}
}

int main(int argc, char **argv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0xacc };
	pid_t pid;
	int k, i, status;

	t_init(argc, argv);
	req = eventfd(0, EFD_SEMAPHORE);
	rep = eventfd(0, EFD_NONBLOCK);
	ack = eventfd(0, EFD_NONBLOCK);
	ep = epoll_create1(0);
	tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	T_CHECK(req >= 0 && rep >= 0 && ack >= 0 && ep >= 0 && tfd >= 0, "create: %s", strerror(errno));
	T_CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, ack, &ev) == 0, "epoll_ctl");
	pid = fork();
	T_CHECK(pid >= 0, "fork");
	if (pid == 0)
		_exit(child());
	req2 = dup(req);
	close(ep);	/* the child's alone now */

	for (k = 1; k <= 4; k++) {
		uint64_t sum = 0;

		if (k > 1)
			t_ready(k - 1);
		for (i = 1; i <= 3; i++) {
			struct itimerspec its = { { 0, k == 4 && i == 3 ? 999 : k * 10 + i }, { 1000, 0 } };

			T_CHECK(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
			put(i % 2 ? req : req2, 1);
			sum += take(rep, "the child's answer");
			put(ack, 1);	/* the child waits for it in its epoll, then reads it */
		}
		printf("cycle %d: the child answered 3 requests, sum %llu\n", k, (unsigned long long)sum);
	}
	T_CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
	T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "the child ended with status %#x", status);
	t_pass();
}
