/* The coordinator's barrier engine: which processes form the computation,
 * and the checkpoint and restart barrier sequences among them. A pure state
 * machine with no I/O and no clock of its own: coordinator.c feeds it what
 * arrives on the sockets (joins, acks, disconnections, requests) and the
 * engine answers through the callbacks of struct barrier_ops, which say what
 * to send to whom. The unit test drives it the same way.
 *
 * doc/protocol.md describes the rules implemented here: phase order, abort,
 * exit-after, coalesced requests, restart grouping and rejections. */
#ifndef CRYO_COORDINATOR_BARRIER_H
#define CRYO_COORDINATOR_BARRIER_H
#include <stddef.h>
#include <stdint.h>
#include "coordinator/protocol.h"

/* Where a process stands. */
enum barrier_proc_state {
	BARRIER_P_JOINING = 1,	/* connected during a sequence: WELCOME delayed */
	BARRIER_P_HELD,		/* restarted, waiting for the rest of its checkpoint */
	BARRIER_P_RESTARTING,	/* in the RESTART, REFILL, RESUME sequence */
	BARRIER_P_RUNNING,	/* an ordinary member of the computation */
	BARRIER_P_CKPT,		/* a participant of the running checkpoint */
	BARRIER_P_EXITING,	/* acked COMMIT and will exit: its departure is no failure */
};

/* The computation as a whole. */
enum barrier_state {
	BARRIER_IDLE = 0,	/* no process */
	BARRIER_RUNNING,
	BARRIER_CHECKPOINTING,
	BARRIER_RESTARTING,	/* restarted processes held or in their sequence */
};

struct barrier_proc {
	uint64_t id;		/* the caller's connection id */
	struct coord_hello_proc hello;
	enum barrier_proc_state state;
	int slot;		/* index in the running sequence, -1 if none */
};

struct barrier_image {
	uint64_t upid;
	uint32_t pid;
	uint64_t bytes;		/* as acked at WRITE */
	uint64_t ns;
	char path[COORD_PATH_MAX];	/* final image path (or stream target) */
};

/* What a checkpoint came to; valid only during the ckpt_done callback. */
struct barrier_result {
	int ok;			/* 1: every COMMIT acked; 0: aborted or never started */
	uint32_t generation;	/* 0 if it never started */
	uint32_t flags;		/* COORD_BAR_* of the checkpoint */
	uint64_t start_ns, end_ns;	/* from ops->now_ns */
	uint64_t bytes;		/* sum of the images */
	size_t nimages;
	const struct barrier_image *images;	/* nimages entries, in join order */
	const char *reason;	/* !ok: why, one line */
};

/* Every callback gets the ctx given to barrier_new. The engine's state is
 * consistent while a callback runs, but a callback must not call back into
 * the engine (no barrier_* calls but the read-only accessors). */
struct barrier_ops {
	/* Send WELCOME to a process. status COORD_REJECT: the engine has
	 * already forgotten the process; the caller closes the connection. */
	void (*send_welcome)(void *ctx, uint64_t id, const struct coord_welcome *w);
	void (*send_barrier)(void *ctx, uint64_t id, const struct coord_barrier *b);
	void (*send_kill)(void *ctx, uint64_t id);
	/* Restart: the group's pid map (n entries), sent to each member before
	 * RESTART. May be NULL. */
	void (*send_pidmap)(void *ctx, uint64_t id, const struct coord_pid *map, size_t n);
	/* A checkpoint finished (COMMIT complete) or failed. Requests made
	 * while it ran were coalesced into it: answer every waiting requester. */
	void (*ckpt_done)(void *ctx, const struct barrier_result *r);
	/* The last process left; the computation is forgotten. */
	void (*comp_end)(void *ctx);
	uint64_t (*now_ns)(void *ctx);	/* may be NULL: times are 0 */
	uint64_t (*random64)(void *ctx);	/* a new computation id, never 0 */
};

/* What barrier_checkpoint did with a request. */
enum barrier_req {
	BARRIER_REQ_STARTED = 0,	/* a new checkpoint started */
	BARRIER_REQ_COALESCED,		/* joined the checkpoint already running */
	BARRIER_REQ_QUEUED,		/* starts when the running sequence ends */
	BARRIER_REQ_FAILED,		/* refused; see why */
};

struct barrier;

/* A new engine with no process. NULL after logging if out of memory. The
 * caller keeps ops (and ctx) alive as long as the engine. */
struct barrier *barrier_new(const struct barrier_ops *ops, void *ctx);
/* Frees the engine; accepts NULL. Sends nothing. */
void barrier_free(struct barrier *b);
/* What WELCOME tells processes: the checkpoint interval, the checkpoint
 * directory and the coordinator's pid. */
void barrier_set_info(struct barrier *b, uint32_t interval, const char *ckptdir,
		      uint32_t coord_pid);

/* A process said HELLO_PROC on connection id. Sends WELCOME now (accepted,
 * held for a restart, or rejected) or later (joining during a checkpoint).
 * 0, or -1 after logging if out of memory (nothing sent: close it). */
int barrier_join(struct barrier *b, uint64_t id, const struct coord_hello_proc *h);
/* Connection id is gone. Unknown ids are ignored. May abort the running
 * checkpoint, end a restart or end the computation. */
void barrier_leave(struct barrier *b, uint64_t id);
/* BARRIER_DONE from connection id. Stale or unexpected acks are ignored
 * (logged at debug level). */
void barrier_ack(struct barrier *b, uint64_t id, const struct coord_barrier_done *d);
/* A checkpoint is requested: flags COORD_BAR_MIGRATE|COORD_BAR_EXIT_AFTER for
 * a migration (text HOST:PORT; a one-process computation only, never
 * coalesced or queued), else 0 with text the checkpoint directory. why
 * (whysz bytes) gets the reason when BARRIER_REQ_FAILED; then nothing else
 * happens. Otherwise ckpt_done will be called once for the checkpoint the
 * request started, joined or queued (a queued one that cannot start when
 * its turn comes is reported as failed, generation 0). */
enum barrier_req barrier_checkpoint(struct barrier *b, uint32_t flags, const char *text,
				    char *why, size_t whysz);
/* Sends COORD_KILL to every process; returns how many. */
size_t barrier_kill_all(struct barrier *b);

enum barrier_state barrier_state(const struct barrier *b);
const char *barrier_state_name(enum barrier_state s);
const char *barrier_proc_state_name(enum barrier_proc_state s);
uint64_t barrier_comp_id(const struct barrier *b);
/* Generation of the last complete checkpoint (or of the restarted images). */
uint32_t barrier_generation(const struct barrier *b);
/* Processes known (every state), and the i-th of them (join order); the
 * pointer is valid until the next barrier_* call that is not an accessor. */
size_t barrier_nprocs(const struct barrier *b);
const struct barrier_proc *barrier_proc_at(const struct barrier *b, size_t i);
/* Running members (RUNNING or CKPT), the ones a checkpoint would take. */
size_t barrier_nrunning(const struct barrier *b);
/* Why the last checkpoint or restart failed, or NULL if the last one
 * succeeded. Valid until the next barrier_* call. */
const char *barrier_last_error(const struct barrier *b);

#endif /* CRYO_COORDINATOR_BARRIER_H */
