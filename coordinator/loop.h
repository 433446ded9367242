/* The coordinator's event loop: one epoll instance, no threads, in the
 * style of Redis's ae. Callers register an fd with a callback for
 * readability and/or writability, and at most one periodic timer (a
 * timerfd, used for --interval). Used only by coordinator.c. */
#ifndef CRYO_COORDINATOR_LOOP_H
#define CRYO_COORDINATOR_LOOP_H
#include <stdint.h>

#define LOOP_READ	0x1u
#define LOOP_WRITE	0x2u

struct loop;

/* Called with the events that happened (LOOP_READ/LOOP_WRITE; errors and
 * hang-ups are reported as LOOP_READ, so the read sees them). */
typedef void (*loop_fd_fn)(struct loop *l, int fd, uint32_t events, void *arg);
typedef void (*loop_timer_fn)(struct loop *l, void *arg);

/* A new loop. NULL after logging. */
struct loop *loop_new(void);
/* Closes the epoll and timer fds (not the registered ones); accepts NULL. */
void loop_free(struct loop *l);
/* Watches fd for mask (LOOP_READ|LOOP_WRITE), replacing any earlier
 * registration of fd. 0, or -1 after logging. */
int loop_add(struct loop *l, int fd, uint32_t mask, loop_fd_fn fn, void *arg);
/* Changes the events watched for a registered fd. 0, or -1 after logging. */
int loop_mod(struct loop *l, int fd, uint32_t mask);
/* Stops watching fd (before the caller closes it). Events of fd already
 * collected in this round are dropped. */
void loop_del(struct loop *l, int fd);
/* Calls fn every period_ms (0 = stop the timer). 0, or -1 after logging. */
int loop_set_timer(struct loop *l, uint64_t period_ms, loop_timer_fn fn, void *arg);
/* Dispatches events until loop_stop. 0, or -1 after logging if epoll fails. */
int loop_run(struct loop *l);
/* Makes loop_run return after the current round. */
void loop_stop(struct loop *l);

#endif /* CRYO_COORDINATOR_LOOP_H */
