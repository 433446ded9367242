/* The barrier engine; see barrier.h for the interface and doc/protocol.md
 * for the rules. Called only from coordinator.c's event loop (and the unit
 * test), single-threaded.
 *
 * At most one sequence runs at a time: a checkpoint (SUSPEND .. COMMIT, then
 * REFILL and RESUME) or a restart (RESTART, REFILL, RESUME). Its members are
 * fixed when it starts and live in slots[]; a phase ends when every member
 * still present has acked it. RESUME is not waited for: the sequence ends
 * when RESUME is sent, and a process's late RESUME ack is ignored as stale.
 * What arrives during a sequence waits for its end: new processes (WELCOME
 * delayed), a complete restart group, a checkpoint request made during a
 * restart or after the running checkpoint's COMMIT (already reported). */
#define LOG_PREFIX "barrier: "
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "coordinator/barrier.h"
#include "mtcp/log.h"

enum seq_kind { SEQ_NONE = 0, SEQ_CKPT, SEQ_RESTART };

struct slot {
	uint64_t id;		/* connection of the member */
	int present;		/* 0 once it disconnected */
	int acked;		/* acked the current phase */
	int exiting;		/* acked COMMIT and exits: no REFILL, RESUME */
	struct barrier_image img;
};

struct barrier {
	const struct barrier_ops *ops;
	void *ctx;
	uint32_t interval, coord_pid;
	char ckptdir[COORD_PATH_MAX];

	uint64_t comp_id;	/* 0: no computation */
	uint32_t last_gen;	/* last complete checkpoint */
	int migrate_pending;	/* a migration committed; its destination has not joined */
	char last_error[256];

	struct barrier_proc *procs;
	size_t nprocs, cap;

	enum seq_kind seq;
	uint32_t phase, seq_gen, seq_flags;
	char seq_text[COORD_PATH_MAX];
	struct slot *slots;
	size_t nslots, waiting;	/* members, and those yet to ack the phase */
	int committed;
	int cow;		/* a WRITE ack said COORD_DONE_COW: RELEASE before COMMIT */
	uint64_t start_ns;

	int pending_ckpt;	/* a checkpoint request waits for the restart to end */
	uint32_t pending_flags;	/* its COORD_BAR_COW */
	unsigned suspend_retries;	/* of the current request (see barrier_leave) */
	uint32_t seq_attempt;	/* of the running checkpoint's generation */

	/* the restart group being gathered (held_nprocs 0: none) */
	uint64_t held_comp;
	uint32_t held_gen, held_nprocs;

	/* the pid map of the last restart, sent to every later joiner */
	struct coord_pid *pidmap;
	size_t npidmap;
};

static uint64_t now(struct barrier *b)
{
	return b->ops->now_ns ? b->ops->now_ns(b->ctx) : 0;
}

static struct barrier_proc *find(struct barrier *b, uint64_t id)
{
	for (size_t i = 0; i < b->nprocs; i++)
		if (b->procs[i].id == id)
			return &b->procs[i];
	return NULL;
}

static void remove_proc(struct barrier *b, struct barrier_proc *p)
{
	size_t i = (size_t)(p - b->procs);

	memmove(p, p + 1, (b->nprocs - i - 1) * sizeof(*p));
	b->nprocs--;
}

static void send_welcome_map(struct barrier *b, uint64_t id, int status, uint32_t gen,
			     const char *text, uint32_t npids)
{
	struct coord_welcome w;

	memset(&w, 0, sizeof(w));
	w.npids = npids;
	w.status = status;
	w.generation = gen;
	w.comp_id = b->comp_id;
	w.interval = b->interval;
	w.coord_pid = b->coord_pid;
	snprintf(w.ckptdir, sizeof(w.ckptdir), "%s", b->ckptdir);
	snprintf(w.text, sizeof(w.text), "%s", text ? text : "");
	b->ops->send_welcome(b->ctx, id, &w);
}

static void send_welcome(struct barrier *b, uint64_t id, int status, uint32_t gen,
			 const char *text)
{
	send_welcome_map(b, id, status, gen, text, 0);
}

static void reject(struct barrier *b, uint64_t id, const struct coord_hello_proc *h,
		   const char *text)
{
	char prog[sizeof(h->program)], host[sizeof(h->host)];

	/* the peer's strings need not be terminated */
	snprintf(prog, sizeof(prog), "%.*s", (int)strnlen(h->program, sizeof(prog) - 1),
		 h->program);
	snprintf(host, sizeof(host), "%.*s", (int)strnlen(h->host, sizeof(host) - 1),
		 h->host);
	log_warn("rejected process %u (%s on %s): %s", h->pid, prog, host, text);
	send_welcome(b, id, COORD_REJECT, 0, text);
}

static void send_phase(struct barrier *b, struct slot *s, uint32_t phase, uint32_t flags)
{
	struct coord_barrier m;

	memset(&m, 0, sizeof(m));
	m.phase = phase;
	m.generation = b->seq_gen;
	m.flags = flags;
	m.nprocs = (uint32_t)b->nslots;
	m.attempt = b->seq_attempt;
	if (phase == COORD_PH_SUSPEND || phase == COORD_PH_WRITE || phase == COORD_PH_RESTART)
		snprintf(m.text, sizeof(m.text), "%s", b->seq_text);
	b->ops->send_barrier(b->ctx, s->id, &m);
}

/* Starts phase among the members still present and not exiting; returns
 * how many must ack it. */
static size_t broadcast(struct barrier *b, uint32_t phase, uint32_t flags)
{
	size_t n = 0;

	b->phase = phase;
	for (size_t i = 0; i < b->nslots; i++) {
		struct slot *s = &b->slots[i];

		s->acked = 0;
		if (!s->present || s->exiting)
			continue;
		send_phase(b, s, phase, flags);
		n++;
	}
	b->waiting = n;
	log_debug("%s generation %u to %zu processes", coord_phase_name(phase), b->seq_gen, n);
	return n;
}

static void start_next(struct barrier *b);
static int start_ckpt(struct barrier *b, uint32_t flags, const char *text, char *why, size_t whysz);

/* Times a checkpoint starts again when a process exits during SUSPEND. */
#define SUSPEND_RETRIES 20

/* Ends the running sequence: members run on (or keep exiting). */
static void end_seq(struct barrier *b)
{
	for (size_t i = 0; i < b->nprocs; i++) {
		struct barrier_proc *p = &b->procs[i];

		if (p->slot < 0)
			continue;
		if (p->state == BARRIER_P_CKPT || p->state == BARRIER_P_RESTARTING)
			p->state = BARRIER_P_RUNNING;
		p->slot = -1;
	}
	free(b->slots);
	b->slots = NULL;
	b->nslots = 0;
	b->waiting = 0;
	b->seq = SEQ_NONE;
	b->phase = 0;
	start_next(b);
}

static void report(struct barrier *b, int ok, const char *reason)
{
	b->suspend_retries = 0;
	struct barrier_image *imgs = NULL;
	struct barrier_result r = {
		.ok = ok,
		.generation = b->seq_gen,
		.flags = b->seq_flags,
		.start_ns = b->start_ns,
		.end_ns = now(b),
		.reason = reason,
	};

	if (ok) {
		/* the images live in the slots; hand them over as one array */
		imgs = malloc((b->nslots ? b->nslots : 1) * sizeof(*imgs));
		if (!imgs) {
			log_err("out of memory reporting checkpoint %u", b->seq_gen);
		} else {
			for (size_t i = 0; i < b->nslots; i++) {
				imgs[i] = b->slots[i].img;
				r.bytes += imgs[i].bytes;
			}
			r.nimages = b->nslots;
			r.images = imgs;
		}
	}
	b->ops->ckpt_done(b->ctx, &r);
	free(imgs);
}

/* A checkpoint failed before it was complete: everyone still here resumes
 * from where it stands and discards its temporary image. */
static void ckpt_abort(struct barrier *b, const char *reason)
{
	log_warn("checkpoint %u aborted: %s", b->seq_gen, reason);
	snprintf(b->last_error, sizeof(b->last_error), "checkpoint %u aborted: %s", b->seq_gen,
		 reason);
	for (size_t i = 0; i < b->nslots; i++) {
		struct slot *s = &b->slots[i];

		if (s->present && !s->exiting)
			send_phase(b, s, COORD_PH_RESUME, COORD_BAR_ABORT);
	}
	report(b, 0, reason);
	end_seq(b);
}

/* A restart failed: a partial computation cannot run, so the rest of it is
 * killed. */
static void restart_fail(struct barrier *b, const char *reason)
{
	log_err("restart of generation %u failed: %s", b->seq_gen, reason);
	snprintf(b->last_error, sizeof(b->last_error), "restart of generation %u failed: %s",
		 b->seq_gen, reason);
	for (size_t i = 0; i < b->nslots; i++) {
		struct slot *s = &b->slots[i];
		struct barrier_proc *p;

		if (!s->present)
			continue;
		b->ops->send_kill(b->ctx, s->id);
		p = find(b, s->id);
		if (p)
			p->state = BARRIER_P_EXITING;
	}
	end_seq(b);
}

/* Every member acked the current phase: move on, possibly several phases
 * at once when nobody is left to ack one. */
static void advance(struct barrier *b)
{
	while (b->seq != SEQ_NONE && b->waiting == 0) {
		uint32_t next;

		if (b->seq == SEQ_RESTART) {
			if (b->phase == COORD_PH_RESTART) {
				next = COORD_PH_REFILL;
			} else {
				broadcast(b, COORD_PH_RESUME, 0);
				log_info("restart of generation %u complete (%zu processes)",
					 b->seq_gen, b->nslots);
				end_seq(b);
				return;
			}
		} else {
			switch (b->phase) {
			case COORD_PH_SUSPEND:
				next = COORD_PH_ELECT;
				break;
			case COORD_PH_ELECT:
				next = COORD_PH_DRAIN;
				break;
			case COORD_PH_DRAIN:
				next = COORD_PH_WRITE;
				break;
			case COORD_PH_WRITE:
				/* copy-on-write: the threads run again while the
				 * writers finish; the renames wait for all of them */
				next = (b->seq_flags & COORD_BAR_COW) || b->cow ? COORD_PH_RELEASE
										: COORD_PH_COMMIT;
				break;
			case COORD_PH_RELEASE:
				next = COORD_PH_COMMIT;
				break;
			case COORD_PH_COMMIT:
				b->committed = 1;
				b->last_gen = b->seq_gen;
				b->last_error[0] = '\0';
				if (b->seq_flags & COORD_BAR_MIGRATE)
					b->migrate_pending = 1;
				log_info("checkpoint %u complete (%zu processes)", b->seq_gen,
					 b->nslots);
				report(b, 1, NULL);
				next = COORD_PH_REFILL;
				break;
			default:
				broadcast(b, COORD_PH_RESUME, b->seq_flags);
				end_seq(b);
				return;
			}
		}
		broadcast(b, next, b->seq_flags);
	}
}

static int alloc_slots(struct barrier *b, size_t n)
{
	b->slots = calloc(n ? n : 1, sizeof(*b->slots));
	if (!b->slots) {
		log_err("out of memory for a sequence of %zu processes", n);
		return -1;
	}
	b->nslots = 0;
	return 0;
}

static void take_slot(struct barrier *b, struct barrier_proc *p, enum barrier_proc_state st)
{
	struct slot *s = &b->slots[b->nslots];

	s->id = p->id;
	s->present = 1;
	s->img.upid = p->hello.upid;
	s->img.pid = p->hello.pid;
	p->slot = (int)b->nslots++;
	p->state = st;
}

/* Starts a checkpoint of every running process. 0, or -1 with why. */
static int start_ckpt(struct barrier *b, uint32_t flags, const char *text, char *why,
		      size_t whysz)
{
	size_t n = barrier_nrunning(b);

	if (n == 0) {
		snprintf(why, whysz, "no process to checkpoint");
		return -1;
	}
	if (alloc_slots(b, n) < 0) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < b->nprocs; i++)
		if (b->procs[i].state == BARRIER_P_RUNNING)
			take_slot(b, &b->procs[i], BARRIER_P_CKPT);
	b->seq = SEQ_CKPT;
	b->seq_gen = b->last_gen + 1;
	b->seq_attempt = b->suspend_retries;	/* an ack of an abandoned attempt is stale */
	b->seq_flags = flags & (COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER | COORD_BAR_FULL | COORD_BAR_COW);
	if (b->seq_flags & COORD_BAR_MIGRATE)
		b->seq_flags &= ~COORD_BAR_COW;	/* a stream is written full-stop */
	b->committed = 0;
	b->cow = 0;
	b->start_ns = now(b);
	snprintf(b->seq_text, sizeof(b->seq_text), "%s", text ? text : "");
	log_info("checkpoint %u of %zu processes to %s", b->seq_gen, n, b->seq_text);
	broadcast(b, COORD_PH_SUSPEND, b->seq_flags);
	return 0;
}

static size_t held_count(struct barrier *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nprocs; i++)
		if (b->procs[i].state == BARRIER_P_HELD)
			n++;
	return n;
}

static int group_complete(struct barrier *b)
{
	return b->held_nprocs && held_count(b) >= b->held_nprocs;
}

/* Adds vid -> real to the map unless vid is there (first one wins: the
 * members of one group agree on it anyway). */
static void map_put(struct coord_pid *map, size_t *k, uint32_t vid, uint32_t real)
{
	for (size_t i = 0; i < *k; i++)
		if (map[i].vpid == vid)
			return;
	map[*k].vpid = vid;
	map[*k].real_pid = real;
	(*k)++;
}

/* Tells each restarted process the kernel pids the group's virtual pids
 * now stand for, and the kernel ids of their process groups and sessions
 * (their HELLO said both). The map is kept for processes that join later. */
static void send_pidmaps(struct barrier *b, size_t n)
{
	struct coord_pid *map;
	size_t i, k = 0;

	map = calloc(3 * n + 1, sizeof(*map));
	if (!map) {
		log_err("out of memory for a pid map of %zu processes", n);
		return;
	}
	for (i = 0; i < b->nprocs; i++) {
		const struct coord_hello_proc *h = &b->procs[i].hello;

		if (b->procs[i].state != BARRIER_P_RESTARTING)
			continue;
		map_put(map, &k, h->pid, h->real_pid);
	}
	for (i = 0; i < b->nprocs; i++) {
		const struct coord_hello_proc *h = &b->procs[i].hello;

		if (b->procs[i].state != BARRIER_P_RESTARTING)
			continue;
		if (h->pgid && h->real_pgid && h->pgid < COORD_PID_GROUP)
			map_put(map, &k, h->pgid | COORD_PID_GROUP, h->real_pgid);
		if (h->sid && h->real_sid && h->sid < COORD_PID_GROUP)
			map_put(map, &k, h->sid | COORD_PID_GROUP, h->real_sid);
	}
	free(b->pidmap);
	b->pidmap = map;
	b->npidmap = k;
	if (!b->ops->send_pidmap)
		return;
	for (i = 0; i < b->nprocs; i++)
		if (b->procs[i].state == BARRIER_P_RESTARTING)
			b->ops->send_pidmap(b->ctx, b->procs[i].id, map, k);
}

/* WELCOME for a process joining a running computation, then the pid map
 * if the computation has been restarted (WELCOME says how many entries
 * follow, so the process can read them before its program runs): a child
 * forked, spawned or exec'd after the restart must know the kernel pids of
 * the others too. */
static void welcome_member(struct barrier *b, uint64_t id)
{
	uint32_t n = b->ops->send_pidmap ? (uint32_t)b->npidmap : 0;

	send_welcome_map(b, id, COORD_OK, b->last_gen, NULL, n);
	if (n)
		b->ops->send_pidmap(b->ctx, id, b->pidmap, b->npidmap);
}

static void start_restart(struct barrier *b)
{
	size_t n = held_count(b);

	if (alloc_slots(b, n) < 0) {
		/* cannot run the sequence: the group is lost */
		for (size_t i = 0; i < b->nprocs; i++)
			if (b->procs[i].state == BARRIER_P_HELD) {
				b->ops->send_kill(b->ctx, b->procs[i].id);
				b->procs[i].state = BARRIER_P_EXITING;
			}
		b->held_nprocs = 0;
		return;
	}
	for (size_t i = 0; i < b->nprocs; i++)
		if (b->procs[i].state == BARRIER_P_HELD)
			take_slot(b, &b->procs[i], BARRIER_P_RESTARTING);
	b->seq = SEQ_RESTART;
	b->seq_gen = b->held_gen;
	b->seq_flags = 0;
	b->committed = 0;
	b->start_ns = now(b);
	snprintf(b->seq_text, sizeof(b->seq_text), "%s", b->ckptdir);
	b->held_nprocs = 0;
	log_info("restart of generation %u: all %zu processes joined", b->seq_gen, n);
	send_pidmaps(b, n);
	broadcast(b, COORD_PH_RESTART, 0);
}

/* After a sequence (or when a request may start): let the delayed joiners
 * in, then run what waited: a complete restart group, a queued checkpoint. */
static void start_next(struct barrier *b)
{
	for (size_t i = 0; i < b->nprocs; i++) {
		struct barrier_proc *p = &b->procs[i];

		if (p->state != BARRIER_P_JOINING)
			continue;
		p->state = BARRIER_P_RUNNING;
		welcome_member(b, p->id);
	}
	if (b->seq != SEQ_NONE)
		return;
	if (group_complete(b)) {
		start_restart(b);
		return;
	}
	if (b->pending_ckpt) {
		char why[128];

		b->pending_ckpt = 0;
		if (start_ckpt(b, b->pending_flags, b->ckptdir, why, sizeof(why)) < 0) {
			struct barrier_result r = { .ok = 0, .reason = why };

			b->ops->ckpt_done(b->ctx, &r);
		}
	}
}

static void end_computation(struct barrier *b)
{
	if (b->nprocs || !b->comp_id || b->migrate_pending)
		return;
	log_info("computation %016llx ended", (unsigned long long)b->comp_id);
	b->comp_id = 0;
	b->last_gen = 0;
	b->held_nprocs = 0;
	free(b->pidmap);
	b->pidmap = NULL;
	b->npidmap = 0;
	b->ops->comp_end(b->ctx);
}

struct barrier *barrier_new(const struct barrier_ops *ops, void *ctx)
{
	struct barrier *b = calloc(1, sizeof(*b));

	if (!b) {
		log_err("out of memory for the barrier engine");
		return NULL;
	}
	b->ops = ops;
	b->ctx = ctx;
	return b;
}

void barrier_free(struct barrier *b)
{
	if (!b)
		return;
	free(b->slots);
	free(b->procs);
	free(b->pidmap);
	free(b);
}

void barrier_set_info(struct barrier *b, uint32_t interval, const char *ckptdir,
		      uint32_t coord_pid)
{
	b->interval = interval;
	b->coord_pid = coord_pid;
	snprintf(b->ckptdir, sizeof(b->ckptdir), "%s", ckptdir ? ckptdir : "");
}

static struct barrier_proc *add_proc(struct barrier *b, uint64_t id,
				     const struct coord_hello_proc *h)
{
	struct barrier_proc *p;

	if (b->nprocs == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct barrier_proc *np = realloc(b->procs, cap * sizeof(*np));

		if (!np) {
			log_err("out of memory for %zu processes", cap);
			return NULL;
		}
		b->procs = np;
		b->cap = cap;
	}
	p = &b->procs[b->nprocs++];
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->hello = *h;
	p->hello.host[sizeof(p->hello.host) - 1] = '\0';
	p->hello.program[sizeof(p->hello.program) - 1] = '\0';
	p->slot = -1;
	return p;
}

static int join_restarted(struct barrier *b, uint64_t id, const struct coord_hello_proc *h)
{
	struct barrier_proc *p;
	char why[256];

	if (!h->comp_id || !h->nprocs) {
		reject(b, id, h,
		       "a restarted process must give its computation id and process count");
		return 0;
	}
	for (size_t i = 0; i < b->nprocs; i++) {
		const struct barrier_proc *o = &b->procs[i];

		if (o->hello.upid != h->upid || o->state == BARRIER_P_EXITING)
			continue;
		if (o->state == BARRIER_P_HELD || o->state == BARRIER_P_RESTARTING)
			snprintf(why, sizeof(why),
				 "process %016llx of this checkpoint is already being restarted",
				 (unsigned long long)h->upid);
		else
			snprintf(why, sizeof(why),
				 "computation is already running: process %016llx (pid %u) is "
				 "connected; restart refused while the original runs",
				 (unsigned long long)h->upid, o->hello.real_pid);
		reject(b, id, h, why);
		return 0;
	}
	if (b->comp_id && b->comp_id != h->comp_id) {
		snprintf(why, sizeof(why),
			 "this coordinator runs computation %016llx, not %016llx: use another "
			 "coordinator (--coord) or stop that computation",
			 (unsigned long long)b->comp_id, (unsigned long long)h->comp_id);
		reject(b, id, h, why);
		return 0;
	}
	if (b->held_nprocs && (b->held_gen != h->generation || b->held_nprocs != h->nprocs)) {
		snprintf(why, sizeof(why),
			 "generation %u (%u processes) is being restarted, not generation %u "
			 "(%u processes): images of different checkpoints mixed",
			 b->held_gen, b->held_nprocs, h->generation, h->nprocs);
		reject(b, id, h, why);
		return 0;
	}
	p = add_proc(b, id, h);
	if (!p)
		return -1;
	p->state = BARRIER_P_HELD;
	if (!b->held_nprocs) {
		b->held_comp = h->comp_id;
		b->held_gen = h->generation;
		b->held_nprocs = h->nprocs;
	}
	if (!b->comp_id || barrier_nrunning(b) == 0) {
		b->comp_id = h->comp_id;
		b->last_gen = h->generation;
	}
	b->migrate_pending = 0;	/* whoever arrives is the destination */
	log_info("restarted process %u (%s on %s) joined generation %u: %zu of %u", h->pid,
		 p->hello.program, p->hello.host, h->generation, held_count(b), b->held_nprocs);
	send_welcome(b, id, COORD_OK, h->generation, NULL);
	if (b->seq == SEQ_NONE && group_complete(b))
		start_restart(b);
	return 0;
}

int barrier_join(struct barrier *b, uint64_t id, const struct coord_hello_proc *h)
{
	struct barrier_proc *p;
	uint64_t old_id = 0;
	int have_old = 0;
	char why[256];

	if (find(b, id)) {
		log_err("connection %llu said HELLO_PROC twice", (unsigned long long)id);
		return -1;
	}
	if (h->flags & COORD_PROC_RESTARTED)
		return join_restarted(b, id, h);
	if (h->flags & COORD_PROC_EXEC) {
		/* The same process after exec, which could not keep its
		 * connection: its old entry (whose departure may not have been
		 * seen yet) goes once the new one is in, so that it is never
		 * counted twice and the computation does not end between. */
		for (size_t i = 0; i < b->nprocs; i++)
			if (b->procs[i].hello.upid == h->upid &&
			    b->procs[i].state != BARRIER_P_EXITING) {
				old_id = b->procs[i].id;
				have_old = 1;
				break;
			}
	}
	if (h->comp_id && b->comp_id && h->comp_id != b->comp_id) {
		snprintf(why, sizeof(why),
			 "process belongs to computation %016llx; this coordinator runs %016llx",
			 (unsigned long long)h->comp_id, (unsigned long long)b->comp_id);
		reject(b, id, h, why);
		return 0;
	}
	p = add_proc(b, id, h);
	if (!p)
		return -1;
	if (!b->comp_id) {
		b->comp_id = h->comp_id;
		while (!b->comp_id)
			b->comp_id = b->ops->random64(b->ctx);
		b->last_gen = h->generation;
		log_info("computation %016llx started", (unsigned long long)b->comp_id);
	}
	if (b->seq == SEQ_CKPT && b->phase == COORD_PH_SUSPEND && !(b->seq_flags & COORD_BAR_MIGRATE)) {
		/* A child forked while its parent is still to be parked (its
		 * fork waits for this registration before it can park): it is
		 * in this checkpoint too, as its parent's image will say. */
		struct slot *ns = realloc(b->slots, (b->nslots + 1) * sizeof(*ns));

		if (!ns) {
			log_err("out of memory admitting process %u", h->pid);
			return -1;
		}
		b->slots = ns;
		memset(&b->slots[b->nslots], 0, sizeof(*ns));
		take_slot(b, p, BARRIER_P_CKPT);
		welcome_member(b, id);
		send_phase(b, &b->slots[p->slot], COORD_PH_SUSPEND, b->seq_flags);
		b->waiting++;
		log_debug("process %u joins checkpoint %u at SUSPEND", h->pid, b->seq_gen);
	} else if (b->seq != SEQ_NONE) {
		p->state = BARRIER_P_JOINING;	/* WELCOME when the sequence ends */
		log_debug("process %u joins after the running sequence", h->pid);
	} else {
		p->state = BARRIER_P_RUNNING;
		welcome_member(b, id);
	}
	if (have_old) {
		log_debug("process %u re-registered after exec", h->pid);
		barrier_leave(b, old_id);
	}
	return 0;
}

void barrier_leave(struct barrier *b, uint64_t id)
{
	struct barrier_proc *p = find(b, id);
	char why[256];

	if (!p)
		return;
	if (p->slot >= 0 && b->seq != SEQ_NONE) {
		struct slot *s = &b->slots[p->slot];
		int was_waited = s->present && !s->exiting && !s->acked;

		s->present = 0;
		snprintf(why, sizeof(why), "process %u (%s on %s) disconnected during %s",
			 p->hello.pid, p->hello.program, p->hello.host,
			 coord_phase_name(b->phase));
		if (b->seq == SEQ_RESTART) {
			remove_proc(b, p);
			restart_fail(b, why);
		} else if (!b->committed && p->state != BARRIER_P_EXITING &&
			   (b->phase == COORD_PH_SUSPEND || b->phase == COORD_PH_ELECT) &&
			   !(b->seq_flags & COORD_BAR_MIGRATE) && b->suspend_retries < SUSPEND_RETRIES) {
			/* It exited before it could be frozen (a short-lived child
			 * of a shell loop): not a failure of the checkpoint. Start
			 * it again with whoever is left; the request's client is
			 * answered by the attempt that ends. In ELECT too: a
			 * process already inside exit_group when SUSPEND came finds
			 * no thread to park, acks, and is gone a moment later; and
			 * nothing is decided or drained before DRAIN. */
			uint32_t flags = b->seq_flags;
			char text[sizeof(b->seq_text)], err[128];

			remove_proc(b, p);
			log_info("checkpoint %u: %s (it exited); starting again", b->seq_gen, why);
			memcpy(text, b->seq_text, sizeof(text));
			for (size_t i = 0; i < b->nslots; i++)
				if (b->slots[i].present && !b->slots[i].exiting)
					send_phase(b, &b->slots[i], COORD_PH_RESUME, COORD_BAR_ABORT);
			b->suspend_retries++;
			end_seq(b);
			if (b->seq == SEQ_NONE && start_ckpt(b, flags, text, err, sizeof(err)) < 0)
				report(b, 0, err);
		} else if (!b->committed && p->state != BARRIER_P_EXITING) {
			remove_proc(b, p);
			ckpt_abort(b, why);
		} else {
			remove_proc(b, p);
			if (was_waited && b->waiting)
				b->waiting--;
			advance(b);
		}
	} else {
		if (p->state == BARRIER_P_HELD)
			log_info("restarted process %u left before its group was complete",
				 p->hello.pid);
		remove_proc(b, p);
		if (b->held_nprocs && !held_count(b))
			b->held_nprocs = 0;
	}
	end_computation(b);
}

void barrier_ack(struct barrier *b, uint64_t id, const struct coord_barrier_done *d)
{
	struct barrier_proc *p = find(b, id);
	struct slot *s;
	char why[COORD_PATH_MAX + 128];

	if (!p || p->slot < 0 || b->seq == SEQ_NONE || d->phase != b->phase ||
	    d->generation != b->seq_gen || d->attempt != b->seq_attempt) {
		log_debug("ignored stale ack of %s generation %u", coord_phase_name(d->phase),
			  d->generation);
		return;
	}
	s = &b->slots[p->slot];
	if (s->acked || s->exiting)
		return;
	if (d->status != 0) {
		snprintf(why, sizeof(why), "process %u (%s on %s) failed %s: %.*s", p->hello.pid,
			 p->hello.program, p->hello.host, coord_phase_name(d->phase),
			 (int)strnlen(d->text, sizeof(d->text)), d->text);
		if (b->seq == SEQ_RESTART) {
			restart_fail(b, why);
			return;
		}
		if (!b->committed) {
			ckpt_abort(b, why);
			return;
		}
		/* too late to abort: the images are complete */
		log_warn("after the checkpoint was complete: %s", why);
	}
	if (d->phase == COORD_PH_WRITE) {
		s->img.bytes = d->bytes;
		s->img.ns = d->ns;
		snprintf(s->img.path, sizeof(s->img.path), "%.*s",
			 (int)strnlen(d->text, sizeof(d->text)), d->text);
		if (d->flags & COORD_DONE_COW)
			b->cow = 1;
	}
	if (d->phase == COORD_PH_RELEASE && d->bytes) {
		/* the writer child's figures: the image is complete now */
		s->img.bytes = d->bytes;
		s->img.ns = d->ns;
	}
	if (d->phase == COORD_PH_COMMIT &&
	    ((d->flags & COORD_DONE_EXITING) || (b->seq_flags & COORD_BAR_EXIT_AFTER) ||
	     (p->hello.flags & COORD_PROC_EXIT_AFTER))) {
		s->exiting = 1;
		p->state = BARRIER_P_EXITING;
	}
	s->acked = 1;
	b->waiting--;
	advance(b);
}

enum barrier_req barrier_checkpoint(struct barrier *b, uint32_t flags, const char *text,
				    char *why, size_t whysz)
{
	if (flags & COORD_BAR_MIGRATE) {
		size_t n = barrier_nrunning(b);

		if (b->seq == SEQ_CKPT) {
			snprintf(why, whysz, "a checkpoint is in progress");
			return BARRIER_REQ_FAILED;
		}
		if (b->seq == SEQ_RESTART) {
			snprintf(why, whysz, "a restart is in progress");
			return BARRIER_REQ_FAILED;
		}
		if (n == 0) {
			snprintf(why, whysz, "no process to migrate");
			return BARRIER_REQ_FAILED;
		}
		if (n > 1) {
			snprintf(why, whysz,
				 "migration of a %zu-process computation is not supported yet", n);
			return BARRIER_REQ_FAILED;
		}
		return start_ckpt(b, flags, text, why, whysz) < 0 ? BARRIER_REQ_FAILED
								 : BARRIER_REQ_STARTED;
	}
	if (b->seq == SEQ_CKPT && (b->seq_flags & COORD_BAR_MIGRATE)) {
		snprintf(why, whysz, "a migration is in progress");
		return BARRIER_REQ_FAILED;
	}
	if (b->seq == SEQ_CKPT && !b->committed)
		return BARRIER_REQ_COALESCED;
	/* past COMMIT the running one has been reported: the next one is ours */
	if (b->seq != SEQ_NONE) {
		b->pending_ckpt = 1;
		b->pending_flags = flags & COORD_BAR_COW;
		return BARRIER_REQ_QUEUED;
	}
	if (barrier_nrunning(b) == 0 && b->held_nprocs) {
		snprintf(why, whysz, "restart of generation %u is waiting for processes (%zu of %u "
			 "joined)", b->held_gen, held_count(b), b->held_nprocs);
		return BARRIER_REQ_FAILED;
	}
	return start_ckpt(b, flags, text, why, whysz) < 0 ? BARRIER_REQ_FAILED
							 : BARRIER_REQ_STARTED;
}

size_t barrier_kill_all(struct barrier *b)
{
	for (size_t i = 0; i < b->nprocs; i++)
		b->ops->send_kill(b->ctx, b->procs[i].id);
	return b->nprocs;
}

enum barrier_state barrier_state(const struct barrier *b)
{
	if (b->seq == SEQ_CKPT)
		return BARRIER_CHECKPOINTING;
	if (b->seq == SEQ_RESTART || b->held_nprocs)
		return BARRIER_RESTARTING;
	return b->nprocs ? BARRIER_RUNNING : BARRIER_IDLE;
}

const char *barrier_state_name(enum barrier_state s)
{
	switch (s) {
	case BARRIER_IDLE:
		return "idle";
	case BARRIER_RUNNING:
		return "running";
	case BARRIER_CHECKPOINTING:
		return "checkpointing";
	case BARRIER_RESTARTING:
		return "restarting";
	}
	return "unknown";
}

const char *barrier_proc_state_name(enum barrier_proc_state s)
{
	switch (s) {
	case BARRIER_P_JOINING:
		return "joining";
	case BARRIER_P_HELD:
		return "held";
	case BARRIER_P_RESTARTING:
		return "restarting";
	case BARRIER_P_RUNNING:
		return "running";
	case BARRIER_P_CKPT:
		return "checkpointing";
	case BARRIER_P_EXITING:
		return "exiting";
	}
	return "unknown";
}

uint64_t barrier_comp_id(const struct barrier *b)
{
	return b->comp_id;
}

uint32_t barrier_generation(const struct barrier *b)
{
	return b->last_gen;
}

size_t barrier_nprocs(const struct barrier *b)
{
	return b->nprocs;
}

const struct barrier_proc *barrier_proc_at(const struct barrier *b, size_t i)
{
	return i < b->nprocs ? &b->procs[i] : NULL;
}

size_t barrier_nrunning(const struct barrier *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->nprocs; i++)
		if (b->procs[i].state == BARRIER_P_RUNNING || b->procs[i].state == BARRIER_P_CKPT)
			n++;
	return n;
}

const char *barrier_last_error(const struct barrier *b)
{
	return b->last_error[0] ? b->last_error : NULL;
}
