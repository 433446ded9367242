/* The coordinator's epoll loop; see loop.h. Handlers are kept in a table
 * indexed by fd rather than behind epoll's data pointer, so a handler may
 * delete (and free the state of) any other fd in the middle of a round: the
 * events still pending for it find an empty slot and are dropped. */
#define LOG_PREFIX "loop: "
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include "coordinator/loop.h"
#include "mtcp/log.h"

#define LOOP_BATCH 64

struct handler {
	loop_fd_fn fn;		/* NULL: slot free */
	void *arg;
	uint32_t mask;
};

struct loop {
	int epfd;
	int tfd;		/* timerfd, -1 until first used */
	loop_timer_fn tfn;
	void *targ;
	struct handler *h;	/* indexed by fd */
	int nh;
	int stop;
};

static uint32_t to_epoll(uint32_t mask)
{
	return ((mask & LOOP_READ) ? EPOLLIN : 0) | ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l) {
		log_err("out of memory for the event loop");
		return NULL;
	}
	l->tfd = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_perror("epoll_create1");
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	if (l->tfd >= 0)
		close(l->tfd);
	close(l->epfd);
	free(l->h);
	free(l);
}

static int grow(struct loop *l, int fd)
{
	struct handler *nh;
	int n;

	if (fd < l->nh)
		return 0;
	n = l->nh ? l->nh : 64;
	while (n <= fd)
		n *= 2;
	nh = realloc(l->h, (size_t)n * sizeof(*nh));
	if (!nh) {
		log_err("out of memory watching fd %d", fd);
		return -1;
	}
	memset(nh + l->nh, 0, (size_t)(n - l->nh) * sizeof(*nh));
	l->h = nh;
	l->nh = n;
	return 0;
}

int loop_add(struct loop *l, int fd, uint32_t mask, loop_fd_fn fn, void *arg)
{
	struct epoll_event ev = { .events = to_epoll(mask), .data.fd = fd };
	int op;

	if (fd < 0 || grow(l, fd) < 0)
		return -1;
	op = l->h[fd].fn ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0) {
		log_perror("epoll_ctl add fd %d", fd);
		return -1;
	}
	l->h[fd] = (struct handler){ .fn = fn, .arg = arg, .mask = mask };
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t mask)
{
	struct epoll_event ev = { .events = to_epoll(mask), .data.fd = fd };

	if (fd < 0 || fd >= l->nh || !l->h[fd].fn) {
		log_err("fd %d is not watched", fd);
		return -1;
	}
	if (l->h[fd].mask == mask)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
		log_perror("epoll_ctl mod fd %d", fd);
		return -1;
	}
	l->h[fd].mask = mask;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nh || !l->h[fd].fn)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);	/* cannot fail for a watched fd */
	memset(&l->h[fd], 0, sizeof(l->h[fd]));
}

static void timer_fired(struct loop *l, int fd, uint32_t events, void *arg)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;	/* spurious wake-up */
	if (l->tfn)
		l->tfn(l, l->targ);
}

int loop_set_timer(struct loop *l, uint64_t period_ms, loop_timer_fn fn, void *arg)
{
	struct itimerspec its;

	if (l->tfd < 0) {
		l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (l->tfd < 0) {
			log_perror("timerfd_create");
			return -1;
		}
		if (loop_add(l, l->tfd, LOOP_READ, timer_fired, NULL) < 0)
			return -1;
	}
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(period_ms / 1000);
	its.it_value.tv_nsec = (long)(period_ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	if (timerfd_settime(l->tfd, 0, &its, NULL) < 0) {
		log_perror("timerfd_settime %llu ms", (unsigned long long)period_ms);
		return -1;
	}
	l->tfn = fn;
	l->targ = arg;
	return 0;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->stop = 0;
	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_perror("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = evs[i].data.fd;
			uint32_t e = evs[i].events, got = 0;
			struct handler h;

			if (fd >= l->nh || !l->h[fd].fn)
				continue;	/* deleted earlier in this round */
			h = l->h[fd];
			if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
				got |= LOOP_READ;
			if (e & EPOLLOUT)
				got |= LOOP_WRITE;
			got &= h.mask | LOOP_READ;
			if (got)
				h.fn(l, fd, got, h.arg);
		}
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}
