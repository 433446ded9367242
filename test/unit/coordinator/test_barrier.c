/* Unit tests of the barrier engine (coordinator/barrier.c): the engine's
 * callbacks record every message into a log, and each test drives joins,
 * acks, departures and requests and then checks that log. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "coordinator/barrier.h"

enum ev_kind { EV_WELCOME = 1, EV_BARRIER, EV_KILL, EV_DONE, EV_END };

struct ev {
	enum ev_kind kind;
	uint64_t id;
	int status;		/* WELCOME: status; DONE: ok */
	uint32_t phase, flags, gen, nprocs;
	uint64_t comp_id;
	size_t nimages;
	uint64_t bytes;
	char text[256];
	char img0[64];
};

static struct ev evs[256];
static size_t nev, cursor;
static uint64_t fake_clock;

static struct ev *push(enum ev_kind k, uint64_t id)
{
	struct ev *e;

	assert_true(nev < sizeof(evs) / sizeof(evs[0]));
	e = &evs[nev++];
	memset(e, 0, sizeof(*e));
	e->kind = k;
	e->id = id;
	return e;
}

static void cb_welcome(void *ctx, uint64_t id, const struct coord_welcome *w)
{
	struct ev *e = push(EV_WELCOME, id);

	e->status = w->status;
	e->nprocs = w->npids;
	e->gen = w->generation;
	e->comp_id = w->comp_id;
	snprintf(e->text, sizeof(e->text), "%s", w->text);
}

static uint32_t last_attempt;	/* of the last BARRIER sent: acks echo it */

static void cb_barrier(void *ctx, uint64_t id, const struct coord_barrier *b)
{
	struct ev *e = push(EV_BARRIER, id);

	last_attempt = b->attempt;
	e->phase = b->phase;
	e->flags = b->flags;
	e->gen = b->generation;
	e->nprocs = b->nprocs;
	snprintf(e->text, sizeof(e->text), "%.200s", b->text);
}

static void cb_kill(void *ctx, uint64_t id)
{
	push(EV_KILL, id);
}

static void cb_done(void *ctx, const struct barrier_result *r)
{
	struct ev *e = push(EV_DONE, 0);

	e->status = r->ok;
	e->gen = r->generation;
	e->flags = r->flags;
	e->nimages = r->nimages;
	e->bytes = r->bytes;
	snprintf(e->text, sizeof(e->text), "%.200s", r->reason ? r->reason : "");
	if (r->nimages)
		snprintf(e->img0, sizeof(e->img0), "%.60s", r->images[0].path);
}

static void cb_end(void *ctx)
{
	push(EV_END, 0);
}

static uint64_t cb_now(void *ctx)
{
	return fake_clock += 1000000;
}

static uint64_t cb_random(void *ctx)
{
	return 0xc0ffee;
}

static const struct barrier_ops ops = {
	.send_welcome = cb_welcome,
	.send_barrier = cb_barrier,
	.send_kill = cb_kill,
	.ckpt_done = cb_done,
	.comp_end = cb_end,
	.now_ns = cb_now,
	.random64 = cb_random,
};

static int setup(void **state)
{
	struct barrier *b = barrier_new(&ops, NULL);

	assert_non_null(b);
	barrier_set_info(b, 0, "/ckpt", 42);
	nev = cursor = 0;
	*state = b;
	return 0;
}

static int teardown(void **state)
{
	barrier_free(*state);
	return 0;
}

/* ---- helpers ---- */

static struct ev *next_ev(void)
{
	if (cursor >= nev)
		fail_msg("expected another message, the log has %zu", nev);
	return &evs[cursor++];
}

static void no_more(void)
{
	if (cursor != nev)
		fail_msg("unexpected message %zu: kind %d to %llu phase %u", cursor,
			 evs[cursor].kind, (unsigned long long)evs[cursor].id, evs[cursor].phase);
}

static struct coord_hello_proc hello(uint64_t upid)
{
	struct coord_hello_proc h;

	memset(&h, 0, sizeof(h));
	h.upid = upid;
	h.pid = (uint32_t)upid;
	h.real_pid = (uint32_t)upid + 1000;
	snprintf(h.host, sizeof(h.host), "node");
	snprintf(h.program, sizeof(h.program), "app%llu", (unsigned long long)upid);
	return h;
}

static void join(struct barrier *b, uint64_t id)
{
	struct coord_hello_proc h = hello(id + 100);

	assert_int_equal(barrier_join(b, id, &h), 0);
}

static void join_ok(struct barrier *b, uint64_t id)
{
	struct ev *e;

	join(b, id);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->id, id);
	assert_int_equal(e->status, COORD_OK);
	no_more();
}

static void join_restarted(struct barrier *b, uint64_t id, uint64_t upid, uint64_t comp,
			   uint32_t gen, uint32_t nprocs)
{
	struct coord_hello_proc h = hello(upid);

	h.flags = COORD_PROC_RESTARTED;
	h.comp_id = comp;
	h.generation = gen;
	h.nprocs = nprocs;
	assert_int_equal(barrier_join(b, id, &h), 0);
}

static void ack_flags(struct barrier *b, uint64_t id, uint32_t phase, uint32_t gen, int status,
		      uint32_t flags)
{
	struct coord_barrier_done d;

	memset(&d, 0, sizeof(d));
	d.phase = phase;
	d.generation = gen;
	d.status = status;
	d.flags = flags;
	d.attempt = last_attempt;
	if (phase == COORD_PH_WRITE) {
		d.bytes = 1000 * id;
		d.ns = 5;
		snprintf(d.text, sizeof(d.text), "/ckpt/img%llu.cryo", (unsigned long long)id);
	} else if (status) {
		snprintf(d.text, sizeof(d.text), "disk full");
	}
	barrier_ack(b, id, &d);
}

static void ack(struct barrier *b, uint64_t id, uint32_t phase, uint32_t gen)
{
	ack_flags(b, id, phase, gen, 0, 0);
}

/* Expects BARRIER(phase) to exactly ids[0..n) in some order. */
static void expect_phase(const uint64_t *ids, size_t n, uint32_t phase, uint32_t gen,
			 uint32_t flags)
{
	int seen[16] = { 0 };

	for (size_t i = 0; i < n; i++) {
		struct ev *e = next_ev();
		size_t j;

		assert_int_equal(e->kind, EV_BARRIER);
		assert_string_equal(coord_phase_name(e->phase), coord_phase_name(phase));
		assert_int_equal(e->gen, gen);
		assert_int_equal(e->flags, flags);
		for (j = 0; j < n; j++)
			if (ids[j] == e->id && !seen[j])
				break;
		assert_true(j < n);
		seen[j] = 1;
	}
}

static void ack_all(struct barrier *b, const uint64_t *ids, size_t n, uint32_t phase,
		    uint32_t gen)
{
	for (size_t i = 0; i < n; i++)
		ack(b, ids[i], phase, gen);
}

/* Runs phases first..last (inclusive, checkpoint order) for ids. */
static void run_phases(struct barrier *b, const uint64_t *ids, size_t n, uint32_t first,
		       uint32_t last, uint32_t gen, uint32_t flags)
{
	for (uint32_t ph = first; ph <= last; ph++) {
		expect_phase(ids, n, ph, gen, flags);
		no_more();
		ack_all(b, ids, n, ph, gen);
	}
}

static void expect_done(int ok, uint32_t gen)
{
	struct ev *e = next_ev();

	assert_int_equal(e->kind, EV_DONE);
	assert_int_equal(e->status, ok);
	assert_int_equal(e->gen, gen);
}

static enum barrier_req request(struct barrier *b)
{
	char why[128] = "";

	return barrier_checkpoint(b, 0, "/ckpt", why, sizeof(why));
}

/* A full checkpoint of ids: SUSPEND .. RESUME, with the result checked. */
static void full_ckpt(struct barrier *b, const uint64_t *ids, size_t n, uint32_t gen)
{
	struct ev *e;

	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, n, COORD_PH_SUSPEND, COORD_PH_COMMIT - 1, gen, 0);
	expect_phase(ids, n, COORD_PH_COMMIT, gen, 0);
	ack_all(b, ids, n, COORD_PH_COMMIT, gen);
	e = next_ev();
	assert_int_equal(e->kind, EV_DONE);
	assert_int_equal(e->status, 1);
	assert_int_equal(e->gen, gen);
	assert_int_equal(e->nimages, n);
	expect_phase(ids, n, COORD_PH_REFILL, gen, 0);
	no_more();
	ack_all(b, ids, n, COORD_PH_REFILL, gen);
	expect_phase(ids, n, COORD_PH_RESUME, gen, 0);
	no_more();
	assert_int_equal(barrier_state(b), BARRIER_RUNNING);
}

/* ---- tests ---- */

static void new_process_starts_a_computation(void **state)
{
	struct barrier *b = *state;

	assert_int_equal(barrier_state(b), BARRIER_IDLE);
	join_ok(b, 1);
	assert_int_equal(evs[0].comp_id, 0xc0ffee);
	assert_int_equal(barrier_comp_id(b), 0xc0ffee);
	join_ok(b, 2);
	assert_int_equal(evs[1].comp_id, 0xc0ffee);
	assert_int_equal(barrier_state(b), BARRIER_RUNNING);
	assert_int_equal(barrier_nprocs(b), 2);
	assert_int_equal(barrier_proc_at(b, 1)->hello.upid, 102);
	assert_null(barrier_proc_at(b, 2));
}

static void phases_in_order_with_text_and_generation(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	struct ev *e;

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	assert_int_equal(barrier_state(b), BARRIER_CHECKPOINTING);
	for (uint32_t ph = COORD_PH_SUSPEND; ph <= COORD_PH_WRITE; ph++) {
		for (int i = 0; i < 2; i++) {
			e = next_ev();
			assert_int_equal(e->kind, EV_BARRIER);
			assert_int_equal(e->phase, ph);
			assert_int_equal(e->gen, 1);
			assert_int_equal(e->nprocs, 2);
			if (ph == COORD_PH_SUSPEND || ph == COORD_PH_WRITE)
				assert_string_equal(e->text, "/ckpt");
		}
		no_more();
		/* one ack is not enough to move on */
		ack(b, 1, ph, 1);
		no_more();
		ack(b, 1, ph, 1);	/* a duplicate does not count twice */
		no_more();
		ack(b, 2, ph, 1);
	}
	expect_phase(ids, 2, COORD_PH_COMMIT, 1, 0);
	ack_all(b, ids, 2, COORD_PH_COMMIT, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_DONE);
	assert_int_equal(e->status, 1);
	assert_int_equal(e->nimages, 2);
	assert_int_equal(e->bytes, 3000);
	assert_string_equal(e->img0, "/ckpt/img1.cryo");
	assert_int_equal(barrier_generation(b), 1);
	expect_phase(ids, 2, COORD_PH_REFILL, 1, 0);
	ack_all(b, ids, 2, COORD_PH_REFILL, 1);
	expect_phase(ids, 2, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_int_equal(barrier_state(b), BARRIER_RUNNING);
	/* RESUME acks are optional and ignored */
	ack_all(b, ids, 2, COORD_PH_RESUME, 1);
	no_more();
	/* the next checkpoint is generation 2 */
	full_ckpt(b, ids, 2, 2);
	assert_int_equal(barrier_generation(b), 2);
}

static void stale_and_foreign_acks_are_ignored(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };

	join_ok(b, 1);
	ack(b, 1, COORD_PH_SUSPEND, 1);	/* no checkpoint running */
	ack(b, 9, COORD_PH_SUSPEND, 1);	/* unknown connection */
	no_more();
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 1, 0);
	ack(b, 1, COORD_PH_ELECT, 1);	/* wrong phase */
	ack(b, 1, COORD_PH_SUSPEND, 7);	/* wrong generation */
	no_more();
	ack(b, 1, COORD_PH_SUSPEND, 1);
	expect_phase(ids, 1, COORD_PH_ELECT, 1, 0);
}

/* A failure ack at each phase before COMMIT completes aborts everywhere. */
static void failure_ack_aborts_at_each_phase(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2, 3 };

	join_ok(b, 1);
	join_ok(b, 2);
	join_ok(b, 3);
	for (uint32_t bad = COORD_PH_SUSPEND; bad <= COORD_PH_COMMIT; bad++) {
		struct ev *e;

		assert_int_equal(request(b), BARRIER_REQ_STARTED);
		if (bad > COORD_PH_SUSPEND)
			run_phases(b, ids, 3, COORD_PH_SUSPEND, bad - 1, 1, 0);
		expect_phase(ids, 3, bad, 1, 0);
		ack(b, 1, bad, 1);
		ack_flags(b, 2, bad, 1, 5, 0);
		/* everyone but nobody else: RESUME + ABORT to all three */
		expect_phase(ids, 3, COORD_PH_RESUME, 1, COORD_BAR_ABORT);
		e = next_ev();
		assert_int_equal(e->kind, EV_DONE);
		assert_int_equal(e->status, 0);
		assert_non_null(strstr(e->text, coord_phase_name(bad)));
		no_more();
		assert_int_equal(barrier_generation(b), 0);	/* no good checkpoint */
		assert_int_equal(barrier_state(b), BARRIER_RUNNING);
		assert_non_null(barrier_last_error(b));
		/* the late ack of the third changes nothing */
		ack(b, 3, bad, 1);
		no_more();
	}
	/* and a good one afterwards is generation 1 */
	full_ckpt(b, ids, 3, 1);
	assert_null(barrier_last_error(b));
}

/* Losing a participant at each phase before COMMIT completes aborts;
 * after COMMIT it is a plain departure. */
static void loss_aborts_before_commit_only(void **state)
{
	struct barrier *b = *state;
	uint64_t next_id = 1;
	uint32_t gen = 0;

	/* (SUSPEND, ELECT: the checkpoint starts again, see exit_during_*) */
	for (uint32_t lost = COORD_PH_DRAIN; lost <= COORD_PH_REFILL; lost++) {
		uint64_t ids[2] = { next_id, next_id + 1 };
		uint64_t rest[1] = { next_id + 1 };

		join_ok(b, ids[0]);
		join_ok(b, ids[1]);
		next_id += 2;
		assert_int_equal(request(b), BARRIER_REQ_STARTED);
		run_phases(b, ids, 2, COORD_PH_SUSPEND, lost - 1, gen + 1, 0);
		if (lost == COORD_PH_REFILL) {
			expect_done(1, gen + 1);
			gen++;
		}
		expect_phase(ids, 2, lost, gen + (lost == COORD_PH_REFILL ? 0 : 1), 0);
		no_more();
		barrier_leave(b, ids[0]);
		if (lost < COORD_PH_REFILL) {
			expect_phase(rest, 1, COORD_PH_RESUME, gen + 1, COORD_BAR_ABORT);
			expect_done(0, gen + 1);
			assert_non_null(strstr(evs[nev - 1].text, "disconnected"));
		} else {
			/* committed: the survivor simply goes on */
			no_more();
			ack(b, ids[1], COORD_PH_REFILL, gen);
			expect_phase(rest, 1, COORD_PH_RESUME, gen, 0);
		}
		no_more();
		assert_int_equal(barrier_generation(b), gen);
		barrier_leave(b, ids[1]);
		assert_int_equal(next_ev()->kind, EV_END);
		no_more();
		gen = 0;	/* a new computation starts from 0 */
	}
}

/* Losing a participant that already acked COMMIT (not exiting) while others
 * have not: still an abort. */
static void loss_after_own_commit_ack_aborts(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	uint64_t rest[] = { 2 };

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 2, COORD_PH_COMMIT, 1, 0);
	ack(b, 1, COORD_PH_COMMIT, 1);
	barrier_leave(b, 1);
	expect_phase(rest, 1, COORD_PH_RESUME, 1, COORD_BAR_ABORT);
	expect_done(0, 1);
	no_more();
}

/* Copy-on-write: RELEASE comes between WRITE and COMMIT when the request
 * asks for it or a WRITE ack says a writer child runs; its ack carries the
 * image size; a failed RELEASE aborts before any COMMIT. */
static void cow_release_between_write_and_commit(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	char why[128] = "";
	struct coord_barrier_done d;
	struct ev *e;

	join_ok(b, 1);
	join_ok(b, 2);
	/* asked for by the request: every phase carries COW */
	assert_int_equal(barrier_checkpoint(b, COORD_BAR_COW, "/ckpt", why, sizeof(why)),
			 BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, COORD_BAR_COW);
	expect_phase(ids, 2, COORD_PH_RELEASE, 1, COORD_BAR_COW);
	no_more();
	memset(&d, 0, sizeof(d));
	d.phase = COORD_PH_RELEASE;
	d.generation = 1;
	d.bytes = 777;
	barrier_ack(b, 1, &d);
	ack(b, 2, COORD_PH_RELEASE, 1);
	expect_phase(ids, 2, COORD_PH_COMMIT, 1, COORD_BAR_COW);
	ack_all(b, ids, 2, COORD_PH_COMMIT, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_DONE);
	assert_int_equal(e->status, 1);
	assert_int_equal(e->bytes, 777 + 2000);	/* RELEASE's figure replaces WRITE's */
	expect_phase(ids, 2, COORD_PH_REFILL, 1, COORD_BAR_COW);
	ack_all(b, ids, 2, COORD_PH_REFILL, 1);
	expect_phase(ids, 2, COORD_PH_RESUME, 1, COORD_BAR_COW);
	no_more();

	/* asked for by one process (CRYO_CKPT_MODE=cow): DONE_COW at WRITE */
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_DRAIN, 2, 0);
	expect_phase(ids, 2, COORD_PH_WRITE, 2, 0);
	ack(b, 1, COORD_PH_WRITE, 2);
	ack_flags(b, 2, COORD_PH_WRITE, 2, 0, COORD_DONE_COW);
	expect_phase(ids, 2, COORD_PH_RELEASE, 2, 0);
	no_more();
	/* a writer fails: abort, no COMMIT, the last good generation stays */
	ack(b, 1, COORD_PH_RELEASE, 2);
	ack_flags(b, 2, COORD_PH_RELEASE, 2, 5, 0);
	expect_phase(ids, 2, COORD_PH_RESUME, 2, COORD_BAR_ABORT);
	expect_done(0, 2);
	no_more();
	assert_int_equal(barrier_generation(b), 1);

	/* without either: no RELEASE */
	full_ckpt(b, ids, 2, 2);
	/* a migration is never copy-on-write */
	barrier_leave(b, 2);
	cursor = nev;
	assert_int_equal(barrier_checkpoint(b, COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER | COORD_BAR_COW,
					    "127.0.0.1:5555", why, sizeof(why)),
			 BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 3, COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER);
}

static void exiting_process_leaves_without_failure(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	uint64_t rest[] = { 2 };

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 2, COORD_PH_COMMIT, 1, 0);
	ack_flags(b, 1, COORD_PH_COMMIT, 1, 0, COORD_DONE_EXITING);
	barrier_leave(b, 1);	/* before the other acked COMMIT: fine */
	no_more();
	ack(b, 2, COORD_PH_COMMIT, 1);
	expect_done(1, 1);
	assert_int_equal(evs[cursor - 1].nimages, 2);	/* the exited one's image counts */
	expect_phase(rest, 1, COORD_PH_REFILL, 1, 0);
	ack(b, 2, COORD_PH_REFILL, 1);
	expect_phase(rest, 1, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_int_equal(barrier_nprocs(b), 1);
}

static void exiting_process_gets_no_refill(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	uint64_t rest[] = { 2 };

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 2, COORD_PH_COMMIT, 1, 0);
	ack_flags(b, 1, COORD_PH_COMMIT, 1, 0, COORD_DONE_EXITING);
	ack(b, 2, COORD_PH_COMMIT, 1);
	expect_done(1, 1);
	expect_phase(rest, 1, COORD_PH_REFILL, 1, 0);
	ack(b, 2, COORD_PH_REFILL, 1);
	expect_phase(rest, 1, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_string_equal(barrier_proc_state_name(barrier_proc_at(b, 0)->state), "exiting");
	assert_int_equal(barrier_nrunning(b), 1);
	barrier_leave(b, 1);
	no_more();
}

static void launched_exit_after_process_exits_after_commit(void **state)
{
	struct barrier *b = *state;
	struct coord_hello_proc h = hello(7);
	uint64_t ids[] = { 1 };

	h.flags = COORD_PROC_EXIT_AFTER;
	assert_int_equal(barrier_join(b, 1, &h), 0);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 1, COORD_PH_COMMIT, 1, 0);
	ack(b, 1, COORD_PH_COMMIT, 1);
	expect_done(1, 1);
	no_more();	/* no REFILL, no RESUME for a process that exits */
	assert_int_equal(barrier_state(b), BARRIER_RUNNING);
	barrier_leave(b, 1);
	assert_int_equal(next_ev()->kind, EV_END);
	no_more();
}

static void coalesced_requests(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 1, 0);
	assert_int_equal(request(b), BARRIER_REQ_COALESCED);
	assert_int_equal(request(b), BARRIER_REQ_COALESCED);
	no_more();	/* no second SUSPEND */
	ack(b, 1, COORD_PH_SUSPEND, 1);
	run_phases(b, ids, 1, COORD_PH_ELECT, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 1, COORD_PH_COMMIT, 1, 0);
	ack(b, 1, COORD_PH_COMMIT, 1);
	expect_done(1, 1);	/* one result for all three requests */
	expect_phase(ids, 1, COORD_PH_REFILL, 1, 0);
	no_more();
}

/* Once COMMIT is complete the running checkpoint has been reported: a
 * request then gets the next one. */
static void request_after_commit_is_queued(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1, 0);
	expect_done(1, 1);
	expect_phase(ids, 1, COORD_PH_REFILL, 1, 0);
	assert_int_equal(request(b), BARRIER_REQ_QUEUED);
	no_more();
	ack(b, 1, COORD_PH_REFILL, 1);
	expect_phase(ids, 1, COORD_PH_RESUME, 1, 0);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 2, 0);
	no_more();
}

static void nothing_to_checkpoint(void **state)
{
	struct barrier *b = *state;
	char why[128] = "";

	assert_int_equal(barrier_checkpoint(b, 0, "/ckpt", why, sizeof(why)),
			 BARRIER_REQ_FAILED);
	assert_string_equal(why, "no process to checkpoint");
	no_more();
}

static void joiner_waits_for_the_checkpoint(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };
	struct ev *e;

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_SUSPEND, 1, 0);
	expect_phase(ids, 1, COORD_PH_ELECT, 1, 0);
	join(b, 2);	/* past SUSPEND: after the sequence */
	no_more();	/* WELCOME delayed */
	assert_string_equal(barrier_proc_state_name(barrier_proc_at(b, 1)->state), "joining");
	ack(b, 1, COORD_PH_ELECT, 1);
	run_phases(b, ids, 1, COORD_PH_DRAIN, COORD_PH_WRITE, 1, 0);
	expect_phase(ids, 1, COORD_PH_COMMIT, 1, 0);
	ack(b, 1, COORD_PH_COMMIT, 1);
	expect_done(1, 1);
	expect_phase(ids, 1, COORD_PH_REFILL, 1, 0);
	ack(b, 1, COORD_PH_REFILL, 1);
	expect_phase(ids, 1, COORD_PH_RESUME, 1, 0);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->id, 2);
	assert_int_equal(e->status, COORD_OK);
	assert_int_equal(e->gen, 1);
	no_more();
	/* now it takes part */
	uint64_t both[] = { 1, 2 };
	full_ckpt(b, both, 2, 2);
}

static void joiner_during_aborted_checkpoint_joins_too(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };
	uint64_t rest[] = { 2 };
	struct ev *e;

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 2, COORD_PH_SUSPEND, COORD_PH_ELECT, 1, 0);
	expect_phase(ids, 2, COORD_PH_DRAIN, 1, 0);
	join(b, 3);
	barrier_leave(b, 1);
	expect_phase(rest, 1, COORD_PH_RESUME, 1, COORD_BAR_ABORT);
	expect_done(0, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->id, 3);
	no_more();
}

/* A process that exits during SUSPEND (a short-lived child of a shell
 * loop) does not fail the checkpoint: it starts again with whoever is left,
 * and the request is answered once, by the attempt that ends. */
static void exit_during_suspend_starts_again(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2, 3 };
	uint64_t rest[] = { 2, 3 };

	join_ok(b, 1);
	join_ok(b, 2);
	join_ok(b, 3);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 3, COORD_PH_SUSPEND, 1, 0);
	ack(b, 2, COORD_PH_SUSPEND, 1);
	barrier_leave(b, 1);
	expect_phase(rest, 2, COORD_PH_RESUME, 1, COORD_BAR_ABORT);
	ack(b, 2, COORD_PH_RESUME, 1);	/* stale: ignored */
	run_phases(b, rest, 2, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1, 0);
	expect_done(1, 1);
	run_phases(b, rest, 2, COORD_PH_REFILL, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_int_equal(barrier_generation(b), 1);
}

/* One that acked SUSPEND (its threads were already gone: it was inside
 * exit_group) and disconnects during ELECT: the same. */
static void exit_during_elect_starts_again(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2, 3 };
	uint64_t rest[] = { 2, 3 };

	join_ok(b, 1);
	join_ok(b, 2);
	join_ok(b, 3);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 3, COORD_PH_SUSPEND, COORD_PH_SUSPEND, 1, 0);
	expect_phase(ids, 3, COORD_PH_ELECT, 1, 0);
	ack(b, 2, COORD_PH_ELECT, 1);
	barrier_leave(b, 1);
	expect_phase(rest, 2, COORD_PH_RESUME, 1, COORD_BAR_ABORT);
	run_phases(b, rest, 2, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1, 0);
	expect_done(1, 1);
	run_phases(b, rest, 2, COORD_PH_REFILL, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_int_equal(barrier_generation(b), 1);
}

/* A child that registers while its parent is still being parked (its
 * fork waits for the registration) is in the checkpoint too. */
static void joiner_during_suspend_is_in_the_checkpoint(void **state)
{
	struct barrier *b = *state;
	uint64_t one[] = { 1 }, two[] = { 2 }, both[] = { 1, 2 };
	struct ev *e;

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(one, 1, COORD_PH_SUSPEND, 1, 0);
	join(b, 2);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->id, 2);
	expect_phase(two, 1, COORD_PH_SUSPEND, 1, 0);
	no_more();
	ack(b, 1, COORD_PH_SUSPEND, 1);
	no_more();	/* the child's ack is still due */
	ack(b, 2, COORD_PH_SUSPEND, 1);
	run_phases(b, both, 2, COORD_PH_ELECT, COORD_PH_COMMIT, 1, 0);
	expect_done(1, 1);
	run_phases(b, both, 2, COORD_PH_REFILL, COORD_PH_RESUME, 1, 0);
	no_more();
}

/* ... but not for ever, and not when nobody is left. */
static void exit_during_suspend_of_the_last_fails(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 1, 0);
	barrier_leave(b, 1);
	expect_done(0, 1);
	assert_non_null(strstr(evs[cursor - 1].text, "no process"));
	assert_int_equal(next_ev()->kind, EV_END);
	no_more();
}

static void joiner_that_leaves_early_is_forgotten(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_SUSPEND, 1, 0);
	expect_phase(ids, 1, COORD_PH_ELECT, 1, 0);
	join(b, 2);
	barrier_leave(b, 2);
	no_more();
	assert_int_equal(barrier_nprocs(b), 1);
}

static void migration(void **state)
{
	struct barrier *b = *state;
	uint32_t fl = COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER;
	uint64_t ids[] = { 1 };
	char why[128] = "";
	struct ev *e;

	join_ok(b, 1);
	assert_int_equal(barrier_checkpoint(b, fl, "dest:5555", why, sizeof(why)),
			 BARRIER_REQ_STARTED);
	e = next_ev();
	assert_int_equal(e->phase, COORD_PH_SUSPEND);
	assert_int_equal(e->flags, fl);
	assert_string_equal(e->text, "dest:5555");
	cursor--;
	/* a checkpoint cannot coalesce into a migration */
	assert_int_equal(request(b), BARRIER_REQ_FAILED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_WRITE, 1, fl);
	expect_phase(ids, 1, COORD_PH_COMMIT, 1, fl);
	ack(b, 1, COORD_PH_COMMIT, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_DONE);
	assert_int_equal(e->status, 1);
	assert_int_equal(e->flags, fl);
	no_more();	/* the source exits: nothing more */
	/* the destination may arrive before the source is gone */
	join_restarted(b, 2, 101, 0xc0ffee, 1, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->status, COORD_OK);
	uint64_t dst[] = { 2 };
	expect_phase(dst, 1, COORD_PH_RESTART, 1, 0);
	barrier_leave(b, 1);
	no_more();
	ack(b, 2, COORD_PH_RESTART, 1);
	expect_phase(dst, 1, COORD_PH_REFILL, 1, 0);
	ack(b, 2, COORD_PH_REFILL, 1);
	expect_phase(dst, 1, COORD_PH_RESUME, 1, 0);
	no_more();
	assert_int_equal(barrier_state(b), BARRIER_RUNNING);
	assert_int_equal(barrier_comp_id(b), 0xc0ffee);
}

static void migration_keeps_the_computation_until_the_destination(void **state)
{
	struct barrier *b = *state;
	uint32_t fl = COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER;
	uint64_t ids[] = { 1 };
	char why[128];

	join_ok(b, 1);
	assert_int_equal(barrier_checkpoint(b, fl, "dest:5555", why, sizeof(why)),
			 BARRIER_REQ_STARTED);
	run_phases(b, ids, 1, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1, fl);
	expect_done(1, 1);
	barrier_leave(b, 1);
	no_more();	/* no EV_END: the migrated process is expected */
	assert_int_equal(barrier_comp_id(b), 0xc0ffee);
	join_restarted(b, 2, 101, 0xc0ffee, 1, 1);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(next_ev()->phase, COORD_PH_RESTART);
	no_more();
}

static void migration_refusals(void **state)
{
	struct barrier *b = *state;
	uint32_t fl = COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER;
	uint64_t ids[] = { 1 };
	char why[128] = "";

	assert_int_equal(barrier_checkpoint(b, fl, "d:1", why, sizeof(why)), BARRIER_REQ_FAILED);
	assert_string_equal(why, "no process to migrate");
	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(barrier_checkpoint(b, fl, "d:1", why, sizeof(why)), BARRIER_REQ_FAILED);
	assert_string_equal(why, "migration of a 2-process computation is not supported yet");
	barrier_leave(b, 2);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 1, 0);
	assert_int_equal(barrier_checkpoint(b, fl, "d:1", why, sizeof(why)), BARRIER_REQ_FAILED);
	assert_string_equal(why, "a checkpoint is in progress");
	no_more();
}

static void restart_grouping(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2, 3 };
	struct ev *e;

	join_restarted(b, 1, 501, 0xabc, 4, 3);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->status, COORD_OK);
	assert_int_equal(e->gen, 4);
	assert_int_equal(e->comp_id, 0xabc);
	assert_int_equal(barrier_state(b), BARRIER_RESTARTING);
	/* a checkpoint while the group is incomplete is refused */
	assert_int_equal(request(b), BARRIER_REQ_FAILED);
	join_restarted(b, 2, 502, 0xabc, 4, 3);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	no_more();	/* still held: 2 of 3 */
	join_restarted(b, 3, 503, 0xabc, 4, 3);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	expect_phase(ids, 3, COORD_PH_RESTART, 4, 0);
	assert_int_equal(evs[nev - 1].nprocs, 3);
	no_more();
	/* a request during the restart waits for it */
	assert_int_equal(request(b), BARRIER_REQ_QUEUED);
	ack_all(b, ids, 3, COORD_PH_RESTART, 4);
	expect_phase(ids, 3, COORD_PH_REFILL, 4, 0);
	ack_all(b, ids, 3, COORD_PH_REFILL, 4);
	expect_phase(ids, 3, COORD_PH_RESUME, 4, 0);
	/* the queued checkpoint starts at generation 5 */
	expect_phase(ids, 3, COORD_PH_SUSPEND, 5, 0);
	no_more();
	assert_int_equal(barrier_comp_id(b), 0xabc);
	assert_int_equal(barrier_generation(b), 4);
}

static void restart_held_member_leaving_is_dropped(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 2, 3 };

	join_restarted(b, 1, 501, 0xabc, 4, 2);
	barrier_leave(b, 1);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(next_ev()->kind, EV_END);
	no_more();
	join_restarted(b, 2, 501, 0xabc, 4, 2);
	join_restarted(b, 3, 502, 0xabc, 4, 2);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	expect_phase(ids, 2, COORD_PH_RESTART, 4, 0);
	no_more();
}

static void restart_failure_kills_the_group(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2, 3 };

	join_restarted(b, 1, 501, 0xabc, 4, 3);
	join_restarted(b, 2, 502, 0xabc, 4, 3);
	join_restarted(b, 3, 503, 0xabc, 4, 3);
	cursor += 3;
	expect_phase(ids, 3, COORD_PH_RESTART, 4, 0);
	ack(b, 1, COORD_PH_RESTART, 4);
	ack_flags(b, 2, COORD_PH_RESTART, 4, 1, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(next_ev()->kind, EV_KILL);
	no_more();
	assert_non_null(barrier_last_error(b));
	barrier_leave(b, 1);
	barrier_leave(b, 2);
	barrier_leave(b, 3);
	assert_int_equal(next_ev()->kind, EV_END);
	no_more();
}

static void restart_loss_kills_the_rest(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1, 2 };

	join_restarted(b, 1, 501, 0xabc, 4, 2);
	join_restarted(b, 2, 502, 0xabc, 4, 2);
	cursor += 2;
	expect_phase(ids, 2, COORD_PH_RESTART, 4, 0);
	ack_all(b, ids, 2, COORD_PH_RESTART, 4);
	expect_phase(ids, 2, COORD_PH_REFILL, 4, 0);
	barrier_leave(b, 1);
	struct ev *e = next_ev();
	assert_int_equal(e->kind, EV_KILL);
	assert_int_equal(e->id, 2);
	no_more();
}

static void restart_refused_while_original_runs(void **state)
{
	struct barrier *b = *state;
	struct ev *e;

	join_ok(b, 1);	/* upid 101, computation 0xc0ffee */
	join_restarted(b, 2, 101, 0xc0ffee, 1, 1);
	e = next_ev();
	assert_int_equal(e->kind, EV_WELCOME);
	assert_int_equal(e->status, COORD_REJECT);
	assert_non_null(strstr(e->text, "computation is already running"));
	no_more();
	assert_int_equal(barrier_nprocs(b), 1);
	/* a leave of the rejected connection is harmless */
	barrier_leave(b, 2);
	no_more();
}

static void restart_of_another_computation_refused(void **state)
{
	struct barrier *b = *state;
	struct ev *e;

	join_ok(b, 1);
	join_restarted(b, 2, 999, 0xdead, 1, 1);
	e = next_ev();
	assert_int_equal(e->status, COORD_REJECT);
	assert_non_null(strstr(e->text, "runs computation 0000000000c0ffee"));
	/* and a new process of another computation too */
	struct coord_hello_proc h = hello(55);
	h.comp_id = 0xdead;
	assert_int_equal(barrier_join(b, 3, &h), 0);
	assert_int_equal(next_ev()->status, COORD_REJECT);
	/* but one of ours is welcome */
	h.comp_id = 0xc0ffee;
	assert_int_equal(barrier_join(b, 4, &h), 0);
	assert_int_equal(next_ev()->status, COORD_OK);
	no_more();
}

static void restart_mixed_generations_refused(void **state)
{
	struct barrier *b = *state;

	join_restarted(b, 1, 501, 0xabc, 4, 2);
	assert_int_equal(next_ev()->status, COORD_OK);
	join_restarted(b, 2, 502, 0xabc, 3, 2);
	assert_int_equal(next_ev()->status, COORD_REJECT);
	join_restarted(b, 3, 501, 0xabc, 4, 2);	/* same process twice */
	assert_int_equal(next_ev()->status, COORD_REJECT);
	join_restarted(b, 4, 503, 0, 4, 2);	/* no computation id */
	assert_int_equal(next_ev()->status, COORD_REJECT);
	no_more();
	assert_int_equal(barrier_nprocs(b), 1);
}

static void restart_group_completing_during_checkpoint_waits(void **state)
{
	struct barrier *b = *state;
	uint64_t ids[] = { 1 };
	uint64_t grp[] = { 2 };

	join_ok(b, 1);
	assert_int_equal(request(b), BARRIER_REQ_STARTED);
	expect_phase(ids, 1, COORD_PH_SUSPEND, 1, 0);
	join_restarted(b, 2, 777, 0xc0ffee, 0, 1);
	assert_int_equal(next_ev()->status, COORD_OK);
	no_more();	/* held until the checkpoint ends */
	ack(b, 1, COORD_PH_SUSPEND, 1);
	run_phases(b, ids, 1, COORD_PH_ELECT, COORD_PH_COMMIT, 1, 0);
	expect_done(1, 1);
	expect_phase(ids, 1, COORD_PH_REFILL, 1, 0);
	ack(b, 1, COORD_PH_REFILL, 1);
	expect_phase(ids, 1, COORD_PH_RESUME, 1, 0);
	expect_phase(grp, 1, COORD_PH_RESTART, 0, 0);
	no_more();
}

static void last_leave_ends_the_computation(void **state)
{
	struct barrier *b = *state;

	join_ok(b, 1);
	join_ok(b, 2);
	barrier_leave(b, 1);
	no_more();
	barrier_leave(b, 2);
	assert_int_equal(next_ev()->kind, EV_END);
	no_more();
	assert_int_equal(barrier_comp_id(b), 0);
	assert_int_equal(barrier_state(b), BARRIER_IDLE);
	barrier_leave(b, 2);	/* twice: ignored */
	no_more();
}

static void kill_all(void **state)
{
	struct barrier *b = *state;

	join_ok(b, 1);
	join_ok(b, 2);
	assert_int_equal(barrier_kill_all(b), 2);
	assert_int_equal(next_ev()->kind, EV_KILL);
	assert_int_equal(next_ev()->kind, EV_KILL);
	no_more();
}

/* The pid maps sent, for the tests that look at them. */
static struct coord_pid maps[8][16];
static size_t map_n[8];
static uint64_t map_to[8];
static size_t nmaps;

static void cb_pidmap(void *ctx, uint64_t id, const struct coord_pid *map, size_t n)
{
	assert_true(nmaps < 8 && n <= 16);
	memcpy(maps[nmaps], map, n * sizeof(*map));
	map_n[nmaps] = n;
	map_to[nmaps++] = id;
}

static const struct barrier_ops map_ops = {
	.send_welcome = cb_welcome,
	.send_barrier = cb_barrier,
	.send_kill = cb_kill,
	.send_pidmap = cb_pidmap,
	.ckpt_done = cb_done,
	.comp_end = cb_end,
	.now_ns = cb_now,
	.random64 = cb_random,
};

static int has(size_t m, uint32_t vid, uint32_t real)
{
	for (size_t i = 0; i < map_n[m]; i++)
		if (maps[m][i].vpid == vid && maps[m][i].real_pid == real)
			return 1;
	return 0;
}

/* Restarted members get the group's map (processes, their groups and
 * sessions) before RESTART; a process that joins afterwards (a child forked
 * or exec'd after the restart) gets the same map after its WELCOME. */
static void pid_map_reaches_later_joiners(void **state)
{
	struct barrier *b = barrier_new(&map_ops, NULL);
	struct coord_hello_proc h1 = hello(501), h2 = hello(502), h3 = hello(900);
	uint64_t ids[] = { 1, 2 };

	(void)state;
	nev = cursor = nmaps = 0;
	h1.flags = h2.flags = COORD_PROC_RESTARTED;
	h1.comp_id = h2.comp_id = h3.comp_id = 0xabc;
	h1.generation = h2.generation = 4;
	h1.nprocs = h2.nprocs = 2;
	/* 501 leads group 501; 502 is a member whose group leader 600 is gone */
	h1.pgid = 501, h1.real_pgid = 1501, h1.sid = 77, h1.real_sid = 88;
	h2.pgid = 600, h2.real_pgid = 1502, h2.sid = 77, h2.real_sid = 88;
	assert_int_equal(barrier_join(b, 1, &h1), 0);
	assert_int_equal(barrier_join(b, 2, &h2), 0);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	expect_phase(ids, 2, COORD_PH_RESTART, 4, 0);
	assert_int_equal(nmaps, 2);
	assert_int_equal(map_n[0], 5);
	assert_true(has(0, 501, 1501) && has(0, 502, 1502));
	assert_true(has(0, 501 | COORD_PID_GROUP, 1501) && has(0, 600 | COORD_PID_GROUP, 1502));
	assert_true(has(0, 77 | COORD_PID_GROUP, 88));
	ack_all(b, ids, 2, COORD_PH_RESTART, 4);
	expect_phase(ids, 2, COORD_PH_REFILL, 4, 0);
	ack_all(b, ids, 2, COORD_PH_REFILL, 4);
	expect_phase(ids, 2, COORD_PH_RESUME, 4, 0);
	no_more();
	/* a child of the restarted group joins: WELCOME, then the map */
	assert_int_equal(barrier_join(b, 3, &h3), 0);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	assert_int_equal(evs[cursor - 1].nprocs, 5);	/* entries announced */
	no_more();
	assert_int_equal(nmaps, 3);
	assert_int_equal(map_to[2], 3);
	assert_int_equal(map_n[2], 5);
	assert_true(has(2, 502, 1502));
	barrier_free(b);
}

/* A process that lost its connection across exec registers again with the
 * same upid: it replaces its old entry, it is not a second process, and
 * the computation does not end in between. */
static void exec_reregistration_replaces_the_old_entry(void **state)
{
	struct barrier *b = *state;
	struct coord_hello_proc h = hello(101);
	uint64_t comp;

	join_ok(b, 1);
	comp = barrier_comp_id(b);
	h.flags = COORD_PROC_EXEC;
	h.comp_id = comp;
	assert_int_equal(barrier_join(b, 2, &h), 0);
	assert_int_equal(next_ev()->kind, EV_WELCOME);
	no_more();	/* no EV_END */
	assert_int_equal(barrier_nprocs(b), 1);
	assert_int_equal(barrier_proc_at(b, 0)->id, 2);
	assert_int_equal(barrier_comp_id(b), comp);
	barrier_leave(b, 1);	/* the old connection's end, seen late */
	no_more();
	assert_int_equal(barrier_nprocs(b), 1);
}

static void duplicate_hello_is_an_error(void **state)
{
	struct barrier *b = *state;
	struct coord_hello_proc h = hello(1);

	join_ok(b, 1);
	assert_int_equal(barrier_join(b, 1, &h), -1);
	no_more();
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(new_process_starts_a_computation),
		T(phases_in_order_with_text_and_generation),
		T(stale_and_foreign_acks_are_ignored),
		T(failure_ack_aborts_at_each_phase),
		T(loss_aborts_before_commit_only),
		T(loss_after_own_commit_ack_aborts),
		T(cow_release_between_write_and_commit),
		T(exiting_process_leaves_without_failure),
		T(exiting_process_gets_no_refill),
		T(launched_exit_after_process_exits_after_commit),
		T(coalesced_requests),
		T(request_after_commit_is_queued),
		T(nothing_to_checkpoint),
		T(joiner_waits_for_the_checkpoint),
		T(joiner_during_aborted_checkpoint_joins_too),
		T(exit_during_suspend_starts_again),
		T(joiner_during_suspend_is_in_the_checkpoint),
		T(exit_during_elect_starts_again),
		T(exit_during_suspend_of_the_last_fails),
		T(joiner_that_leaves_early_is_forgotten),
		T(migration),
		T(migration_keeps_the_computation_until_the_destination),
		T(migration_refusals),
		T(restart_grouping),
		T(restart_held_member_leaving_is_dropped),
		T(restart_failure_kills_the_group),
		T(restart_loss_kills_the_rest),
		T(restart_refused_while_original_runs),
		T(restart_of_another_computation_refused),
		T(restart_mixed_generations_refused),
		T(restart_group_completing_during_checkpoint_waits),
		T(last_leave_ends_the_computation),
		T(kill_all),
		T(duplicate_hello_is_an_error),
		T(pid_map_reaches_later_joiners),
		T(exec_reregistration_replaces_the_old_entry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
