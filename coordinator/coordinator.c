/* cryo_coordinator: the daemon every process of a computation and every
 * cryo_command talks to. One thread, one epoll loop (loop.c); each
 * connection is a non-blocking socket with its own input buffer (one whole
 * message at most) and an output buffer that grows as needed, so a slow
 * or frozen process never blocks the coordinator.
 *
 * What the messages mean is decided by the barrier engine (barrier.c); this
 * file does the I/O around it: accepting, framing, command replies (text or
 * JSON, split over several REPLY messages when long), the interval timer,
 * the restart script written after every complete checkpoint, and
 * daemonizing. Errors found before the coordinator runs (bad option, port
 * in use) are printed as one "cryo_coordinator: ..." line on stderr, before
 * any detaching, with a non-zero exit; once running, it logs through
 * mtcp/log.h. doc/protocol.md describes the behaviour seen from outside. */
#define LOG_PREFIX ""
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "coordinator/barrier.h"
#include "coordinator/loop.h"
#include "coordinator/protocol.h"
#include "mtcp/log.h"
#include "mtcp/util.h"

#define SCRIPT_NAME	"cryo_restart_script.sh"
#define SCRIPT_PREV	"cryo_restart_script.prev.sh"
#define OUT_MAX		(64u << 20)	/* a peer this far behind is dropped */
#define INBUF		(sizeof(struct coord_hdr) + COORD_MSG_MAX)
#define INTERVAL_MAX	(10u * 365 * 24 * 3600)

enum conn_kind { CONN_NEW = 0, CONN_PROC, CONN_CMD };
enum conn_wait { WAIT_NONE = 0, WAIT_CKPT, WAIT_MIGRATE };

struct conn {
	int fd;
	uint64_t id;		/* (sequence << 32) | fd: unique, and finds the slot */
	enum conn_kind kind;
	enum conn_wait wait;	/* a blocking request waits for ckpt_done */
	int wait_json;
	int dead;		/* close at the end of this round */
	int closing;		/* close once the output is flushed */
	char *out;
	size_t outlen, outoff, outcap;
	size_t inlen;
	char in[INBUF];
};

/* A growable string for replies and the restart script. */
struct sb {
	char *s;
	size_t len, cap;
	int oom;
};

struct last_ckpt {
	int valid;
	uint32_t generation;
	uint64_t ms, bytes;
	size_t nimages;
	char **images;
};

struct coord {
	struct loop *loop;
	struct barrier *bar;
	int lfd, sigfd;
	char bind[256];		/* listening address */
	char host[256];		/* the address clients use (restart script, status) */
	int port;
	char ckptdir[PATH_MAX];
	char bindir[PATH_MAX];
	uint32_t interval;
	int exit_on_last;
	uint32_t pid;

	struct conn **conns;	/* indexed by fd */
	int nconns;
	uint32_t conn_seq;
	int ndead;
	int accept_paused;	/* out of fds: the listening socket is not watched */

	struct last_ckpt last;
	int mig_valid;		/* a migration finished (source side) */
	uint32_t mig_gen;
	uint64_t mig_ms, mig_bytes;
	char mig_target[COORD_PATH_MAX];
	int report_valid;	/* the destination reported */
	struct coord_report report;
};

static struct coord co;

/* ---- small helpers ---- */

static void sb_addf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_addf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			log_err("out of memory building a reply of %zu bytes", cap);
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

/* Appends s as a JSON string, quotes included. */
static void sb_json(struct sb *b, const char *s)
{
	sb_addf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_addf(b, "\\%c", c);
		else if (c == '\n')
			sb_addf(b, "\\n");
		else if (c < 0x20)
			sb_addf(b, "\\u%04x", c);
		else
			sb_addf(b, "%c", c);
	}
	sb_addf(b, "\"");
}

static void sb_free(struct sb *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* A terminated copy of a fixed-size field sent by a peer. */
static void field(char *dst, size_t dstsz, const char *src, size_t srcsz)
{
	size_t n = strnlen(src, srcsz);

	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static uint64_t ns_now(void)
{
	return util_now_ns(CLOCK_MONOTONIC);
}

/* ---- connections ---- */

static struct conn *conn_by_id(uint64_t id)
{
	int fd = (int)(id & 0xffffffffu);

	if (fd < 0 || fd >= co.nconns || !co.conns[fd] || co.conns[fd]->id != id)
		return NULL;
	return co.conns[fd];
}

static void conn_kill(struct conn *c)
{
	if (!c->dead) {
		c->dead = 1;
		co.ndead++;
	}
}

static void conn_io(struct loop *l, int fd, uint32_t events, void *arg);

/* Writes what is buffered; keeps LOOP_WRITE armed while something is left. */
static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t w = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			log_debug("send to connection %d: %s", c->fd, strerror(errno));
			conn_kill(c);
			return;
		}
		c->outoff += (size_t)w;
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->closing) {
			conn_kill(c);
			return;
		}
	}
	loop_mod(co.loop, c->fd, LOOP_READ | (c->outlen ? LOOP_WRITE : 0));
}

/* Queues one message and tries to send it at once. Never closes the
 * connection here (callers may be inside the barrier engine): a failure
 * marks it dead, and it is closed at the end of the round. */
static void conn_send(struct conn *c, uint16_t type, const void *a, uint32_t alen,
		      const void *b, uint32_t blen)
{
	struct coord_hdr hdr = {
		.magic = COORD_MAGIC,
		.type = type,
		.version = COORD_PROTO_VERSION,
		.len = alen + blen,
	};
	size_t need = sizeof(hdr) + alen + blen;

	if (c->dead)
		return;
	if (c->outlen + need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 8192;
		char *o;

		while (cap < c->outlen + need)
			cap *= 2;
		if (cap > OUT_MAX) {
			log_warn("connection %d does not read its messages; dropping it", c->fd);
			conn_kill(c);
			return;
		}
		o = realloc(c->out, cap);
		if (!o) {
			log_err("out of memory queueing %zu bytes for connection %d", need, c->fd);
			conn_kill(c);
			return;
		}
		c->out = o;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, &hdr, sizeof(hdr));
	if (alen)
		memcpy(c->out + c->outlen + sizeof(hdr), a, alen);
	if (blen)
		memcpy(c->out + c->outlen + sizeof(hdr) + alen, b, blen);
	c->outlen += need;
	conn_flush(c);
}

/* A reply of any length: split into REPLY messages whose coord_reply.len
 * counts the text left from that message on (see doc/protocol.md). */
static void conn_reply(struct conn *c, int status, const char *text, size_t len)
{
	const size_t chunk = COORD_MSG_MAX - sizeof(struct coord_reply);
	size_t off = 0;

	do {
		struct coord_reply r = { .status = status, .len = (uint32_t)(len - off) };
		size_t n = len - off < chunk ? len - off : chunk;

		conn_send(c, COORD_REPLY, &r, sizeof(r), text + off, (uint32_t)n);
		off += n;
	} while (off < len);
}

static void reply_sb(struct conn *c, int status, struct sb *b)
{
	if (b->oom)
		conn_reply(c, COORD_ERR, "out of memory", 13);
	else
		conn_reply(c, status, b->s ? b->s : "", b->len);
	sb_free(b);
}

static void reply_str(struct conn *c, int status, const char *text)
{
	conn_reply(c, status, text, strlen(text));
}

static void conn_free(struct conn *c)
{
	loop_del(co.loop, c->fd);
	close(c->fd);
	co.conns[c->fd] = NULL;
	free(c->out);
	free(c);
	if (co.accept_paused) {
		co.accept_paused = 0;
		loop_mod(co.loop, co.lfd, LOOP_READ);
	}
}

/* Closes the connections marked dead; a process's departure goes to the
 * engine, which may mark more of them (its messages to them failed). */
static void reap(void)
{
	while (co.ndead) {
		co.ndead = 0;
		for (int fd = 0; fd < co.nconns; fd++) {
			struct conn *c = co.conns[fd];
			uint64_t id;
			int proc;

			if (!c || !c->dead)
				continue;
			id = c->id;
			proc = c->kind == CONN_PROC;
			conn_free(c);
			if (proc)
				barrier_leave(co.bar, id);
		}
	}
}

/* ---- barrier engine callbacks ---- */

static void cb_welcome(void *ctx, uint64_t id, const struct coord_welcome *w)
{
	struct conn *c = conn_by_id(id);

	if (!c)
		return;
	conn_send(c, COORD_WELCOME, w, sizeof(*w), NULL, 0);
	if (w->status == COORD_REJECT) {
		c->kind = CONN_NEW;	/* the engine forgot it */
		c->closing = 1;
		conn_flush(c);
	}
}

static void cb_barrier(void *ctx, uint64_t id, const struct coord_barrier *b)
{
	struct conn *c = conn_by_id(id);

	if (c)
		conn_send(c, COORD_BARRIER, b, sizeof(*b), NULL, 0);
}

static void cb_pidmap(void *ctx, uint64_t id, const struct coord_pid *map, size_t n)
{
	struct conn *c = conn_by_id(id);
	struct coord_pidmap hdr = { 0 };

	while (c && n) {
		size_t k = n < COORD_PIDMAP_MAX ? n : COORD_PIDMAP_MAX;

		hdr.n = (uint32_t)k;
		conn_send(c, COORD_PIDMAP, &hdr, sizeof(hdr), map, k * sizeof(*map));
		map += k;
		n -= k;
	}
}

/* 1 if pid maps libcryo.so (it is a process of ours, not a pid reused). */
static int runs_libcryo(pid_t pid)
{
	char path[64], line[512];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libcryo.so") != NULL;
	fclose(f);
	return found;
}

/* KILL goes to the process's checkpoint thread; one busy in a plugin's
 * hook (a socket refill waiting for a peer that is gone) would not read
 * it for a while. So a process of this host that runs libcryo also gets
 * SIGKILL: its connection is still open, so its pid is still its own (the
 * library's coordinator socket is close-on-exec and closed in forked
 * children), and the maps check rules out a pid that is not ours. */
static void cb_kill(void *ctx, uint64_t id)
{
	struct conn *c = conn_by_id(id);
	char me[256] = "";

	if (!c)
		return;
	conn_send(c, COORD_KILL, NULL, 0, NULL, 0);
	gethostname(me, sizeof(me) - 1);
	for (size_t i = 0; i < barrier_nprocs(co.bar); i++) {
		const struct barrier_proc *p = barrier_proc_at(co.bar, i);

		if (p->id == id && p->hello.real_pid > 1 &&
		    !strncmp(p->hello.host, me, sizeof(p->hello.host)) &&
		    runs_libcryo((pid_t)p->hello.real_pid))
			kill((pid_t)p->hello.real_pid, SIGKILL);
	}
}

static void last_free(struct last_ckpt *l)
{
	for (size_t i = 0; i < l->nimages; i++)
		free(l->images[i]);
	free(l->images);
	memset(l, 0, sizeof(*l));
}

/* An image path as the script and status show it: absolute. */
static char *image_abs(const char *p)
{
	struct sb b = { 0 };

	if (p[0] == '/')
		sb_addf(&b, "%s", p);
	else
		sb_addf(&b, "%s/%s", co.ckptdir, p);
	if (b.oom) {
		sb_free(&b);
		return NULL;
	}
	return b.s;
}

static void record_ckpt(const struct barrier_result *r)
{
	struct last_ckpt l = { .valid = 1, .generation = r->generation, .bytes = r->bytes };

	l.ms = (r->end_ns - r->start_ns) / 1000000;
	l.images = calloc(r->nimages ? r->nimages : 1, sizeof(*l.images));
	if (!l.images) {
		log_err("out of memory recording checkpoint %u", r->generation);
		return;
	}
	for (size_t i = 0; i < r->nimages; i++) {
		if (!r->images[i].path[0]) {
			log_warn("process %u reported no image path for checkpoint %u",
				 r->images[i].pid, r->generation);
			continue;
		}
		l.images[l.nimages] = image_abs(r->images[i].path);
		if (!l.images[l.nimages]) {
			log_err("out of memory recording checkpoint %u", r->generation);
			last_free(&l);
			return;
		}
		l.nimages++;
	}
	last_free(&co.last);
	co.last = l;
}

/* Single-quotes s for sh. */
static void sb_shquote(struct sb *b, const char *s)
{
	sb_addf(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			sb_addf(b, "'\\''");
		else
			sb_addf(b, "%c", *s);
	}
	sb_addf(b, "'");
}

static void addr_string(char *buf, size_t size)
{
	if (strchr(co.host, ':'))
		snprintf(buf, size, "[%s]:%d", co.host, co.port);
	else
		snprintf(buf, size, "%s:%d", co.host, co.port);
}

/* cryo_restart_script.sh in the checkpoint directory, replaced atomically;
 * the one it replaces is kept as cryo_restart_script.prev.sh. */
static int write_script(void)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64], prev[PATH_MAX + 64], ptmp[PATH_MAX + 64];
	char addr[300], when[64], restart[PATH_MAX + 16];
	struct sb b = { 0 };
	time_t t = time(NULL);
	struct tm tm;
	int fd, ret = -1;

	snprintf(path, sizeof(path), "%s/%s", co.ckptdir, SCRIPT_NAME);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%u", co.ckptdir, SCRIPT_NAME, co.pid);
	snprintf(prev, sizeof(prev), "%s/%s", co.ckptdir, SCRIPT_PREV);
	snprintf(ptmp, sizeof(ptmp), "%s/.%s.%u", co.ckptdir, SCRIPT_PREV, co.pid);
	snprintf(restart, sizeof(restart), "%s/cryo_restart", co.bindir);
	addr_string(addr, sizeof(addr));
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %z", localtime_r(&t, &tm));

	sb_addf(&b, "#!/bin/sh\n");
	sb_addf(&b, "# Restarts computation %016" PRIx64 " from checkpoint generation %u\n",
		barrier_comp_id(co.bar), co.last.generation);
	sb_addf(&b, "# (%zu process%s), written by cryo_coordinator %s on %s.\n",
		co.last.nimages, co.last.nimages == 1 ? "" : "es", addr, when);
	sb_addf(&b, "# Runs from any directory; arguments are passed to cryo_restart,\n");
	sb_addf(&b, "# e.g. --coord HOST:PORT to restart under another coordinator.\n");
	sb_addf(&b, "exec ");
	sb_shquote(&b, restart);
	sb_addf(&b, " --coord ");
	sb_shquote(&b, addr);
	sb_addf(&b, " \"$@\"");
	for (size_t i = 0; i < co.last.nimages; i++) {
		sb_addf(&b, " \\\n\t");
		sb_shquote(&b, co.last.images[i]);
	}
	sb_addf(&b, "\n");
	if (b.oom)
		goto out;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (fd < 0) {
		log_perror("create restart script %s", tmp);
		goto out;
	}
	if (util_write_all(fd, b.s, b.len) < 0 || fchmod(fd, 0700) < 0) {
		log_perror("write restart script %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (link(path, ptmp) == 0 && rename(ptmp, prev) < 0) {
		log_pwarn("keep the previous restart script as %s", prev);
		unlink(ptmp);
	}
	if (rename(tmp, path) < 0) {
		log_perror("rename %s to %s", tmp, path);
		unlink(tmp);
		goto out;
	}
	log_info("wrote %s", path);
	ret = 0;
out:
	sb_free(&b);
	return ret;
}

static void ckpt_reply(struct conn *c, const struct barrier_result *r)
{
	struct sb b = { 0 };
	uint64_t ms = (r->end_ns - r->start_ns) / 1000000;

	if (!r->ok) {
		if (r->generation)
			sb_addf(&b, "checkpoint %u failed: %s", r->generation, r->reason);
		else
			sb_addf(&b, "checkpoint failed: %s", r->reason);
		reply_sb(c, COORD_ERR, &b);
		return;
	}
	if (r->flags & COORD_BAR_MIGRATE) {
		if (c->wait_json) {
			sb_addf(&b, "{\"generation\":%u,\"target\":", r->generation);
			sb_json(&b, co.mig_target);
			sb_addf(&b, ",\"bytes\":%" PRIu64 ",\"ms\":%" PRIu64 "}", r->bytes, ms);
		} else {
			sb_addf(&b, "migrated to %s: %" PRIu64 " bytes in %" PRIu64 " ms",
				co.mig_target, r->bytes, ms);
		}
		reply_sb(c, COORD_OK, &b);
		return;
	}
	if (c->wait_json) {
		sb_addf(&b, "{\"generation\":%u,\"images\":[", r->generation);
		for (size_t i = 0; i < co.last.nimages; i++) {
			sb_addf(&b, "%s", i ? "," : "");
			sb_json(&b, co.last.images[i]);
		}
		sb_addf(&b, "],\"bytes\":%" PRIu64 ",\"ms\":%" PRIu64 "}", r->bytes, ms);
	} else {
		for (size_t i = 0; i < co.last.nimages; i++)
			sb_addf(&b, "%s\n", co.last.images[i]);
	}
	reply_sb(c, COORD_OK, &b);
}

static void cb_ckpt_done(void *ctx, const struct barrier_result *r)
{
	if (r->ok && (r->flags & COORD_BAR_MIGRATE)) {
		co.mig_valid = 1;
		co.mig_gen = r->generation;
		co.mig_bytes = r->bytes;
		co.mig_ms = (r->end_ns - r->start_ns) / 1000000;
		co.report_valid = 0;
	} else if (r->ok) {
		record_ckpt(r);
		if (co.last.valid && co.last.generation == r->generation)
			write_script();
	}
	for (int fd = 0; fd < co.nconns; fd++) {
		struct conn *c = co.conns[fd];

		if (!c || c->wait == WAIT_NONE)
			continue;
		ckpt_reply(c, r);
		c->wait = WAIT_NONE;
	}
}

static void cb_comp_end(void *ctx)
{
	if (co.exit_on_last) {
		log_info("the last process left: exiting (--exit-on-last)");
		loop_stop(co.loop);
	}
}

static uint64_t cb_now(void *ctx)
{
	return ns_now();
}

static uint64_t cb_random(void *ctx)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = ns_now() ^ ((uint64_t)getpid() << 32);
	return v;
}

static const struct barrier_ops bar_ops = {
	.send_welcome = cb_welcome,
	.send_barrier = cb_barrier,
	.send_kill = cb_kill,
	.send_pidmap = cb_pidmap,
	.ckpt_done = cb_ckpt_done,
	.comp_end = cb_comp_end,
	.now_ns = cb_now,
	.random64 = cb_random,
};

/* ---- commands ---- */

static void status_text(struct sb *b)
{
	const char *err = barrier_last_error(co.bar);
	char addr[300];

	addr_string(addr, sizeof(addr));
	sb_addf(b, "coordinator: %s (pid %u, version %s)\n", addr, co.pid, CRYO_VERSION);
	sb_addf(b, "checkpoint dir: %s\n", co.ckptdir);
	if (barrier_comp_id(co.bar))
		sb_addf(b, "computation: %016" PRIx64 "\n", barrier_comp_id(co.bar));
	else
		sb_addf(b, "computation: none\n");
	sb_addf(b, "state: %s\n", barrier_state_name(barrier_state(co.bar)));
	sb_addf(b, "processes: %zu\n", barrier_nprocs(co.bar));
	sb_addf(b, "generation: %u\n", barrier_generation(co.bar));
	if (co.interval)
		sb_addf(b, "interval: %u s\n", co.interval);
	else
		sb_addf(b, "interval: off\n");
	if (co.last.valid) {
		sb_addf(b, "last checkpoint: generation %u, %" PRIu64 " ms, %" PRIu64
			" bytes, %zu image%s\n", co.last.generation, co.last.ms, co.last.bytes,
			co.last.nimages, co.last.nimages == 1 ? "" : "s");
		for (size_t i = 0; i < co.last.nimages; i++)
			sb_addf(b, "  %s\n", co.last.images[i]);
	} else {
		sb_addf(b, "last checkpoint: none\n");
	}
	if (co.report_valid)
		sb_addf(b, "last migration: to %s, %" PRIu64 " ms total, %" PRIu64
			" ms downtime, %" PRIu64 " bytes, %u rounds\n", co.mig_target,
			co.report.total_ns / 1000000, co.report.downtime_ns / 1000000,
			co.report.bytes, co.report.rounds);
	else if (co.mig_valid)
		sb_addf(b, "last migration: to %s, %" PRIu64 " bytes sent in %" PRIu64
			" ms, destination not running yet\n", co.mig_target, co.mig_bytes,
			co.mig_ms);
	if (err)
		sb_addf(b, "last error: %s\n", err);
}

static void status_json(struct sb *b)
{
	const char *err = barrier_last_error(co.bar);

	sb_addf(b, "{\"host\":");
	sb_json(b, co.host);
	sb_addf(b, ",\"port\":%d,\"pid\":%u,\"version\":", co.port, co.pid);
	sb_json(b, CRYO_VERSION);
	sb_addf(b, ",\"ckptdir\":");
	sb_json(b, co.ckptdir);
	if (barrier_comp_id(co.bar))
		sb_addf(b, ",\"comp_id\":\"%016" PRIx64 "\"", barrier_comp_id(co.bar));
	else
		sb_addf(b, ",\"comp_id\":null");
	sb_addf(b, ",\"state\":\"%s\",\"nprocs\":%zu,\"generation\":%u,\"interval\":%u",
		barrier_state_name(barrier_state(co.bar)), barrier_nprocs(co.bar),
		barrier_generation(co.bar), co.interval);
	if (co.last.valid) {
		sb_addf(b, ",\"last_checkpoint\":{\"generation\":%u,\"ms\":%" PRIu64
			",\"bytes\":%" PRIu64 ",\"images\":[", co.last.generation, co.last.ms,
			co.last.bytes);
		for (size_t i = 0; i < co.last.nimages; i++) {
			sb_addf(b, "%s", i ? "," : "");
			sb_json(b, co.last.images[i]);
		}
		sb_addf(b, "]}");
	} else {
		sb_addf(b, ",\"last_checkpoint\":null");
	}
	if (co.mig_valid) {
		sb_addf(b, ",\"last_migration\":{\"target\":");
		sb_json(b, co.mig_target);
		sb_addf(b, ",\"generation\":%u,\"sent_bytes\":%" PRIu64 ",\"sent_ms\":%" PRIu64,
			co.mig_gen, co.mig_bytes, co.mig_ms);
		if (co.report_valid)
			sb_addf(b, ",\"arrived\":true,\"total_ms\":%" PRIu64 ",\"downtime_ms\":%"
				PRIu64 ",\"bytes\":%" PRIu64 ",\"rounds\":%u}",
				co.report.total_ns / 1000000, co.report.downtime_ns / 1000000,
				co.report.bytes, co.report.rounds);
		else
			sb_addf(b, ",\"arrived\":false}");
	} else if (co.report_valid) {
		sb_addf(b, ",\"last_migration\":{\"arrived\":true,\"total_ms\":%" PRIu64
			",\"downtime_ms\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"rounds\":%u}",
			co.report.total_ns / 1000000, co.report.downtime_ns / 1000000,
			co.report.bytes, co.report.rounds);
	} else {
		sb_addf(b, ",\"last_migration\":null");
	}
	sb_addf(b, ",\"last_error\":");
	if (err)
		sb_json(b, err);
	else
		sb_addf(b, "null");
	sb_addf(b, "}\n");
}

static void list(struct sb *b, int json)
{
	size_t n = barrier_nprocs(co.bar);

	if (json)
		sb_addf(b, "[");
	for (size_t i = 0; i < n; i++) {
		const struct barrier_proc *p = barrier_proc_at(co.bar, i);
		const char *st = barrier_proc_state_name(p->state);
		char host[sizeof(p->hello.host)], prog[sizeof(p->hello.program)];

		field(host, sizeof(host), p->hello.host, sizeof(p->hello.host));
		field(prog, sizeof(prog), p->hello.program, sizeof(p->hello.program));
		if (json) {
			sb_addf(b, "%s{\"upid\":\"%016" PRIx64 "\",\"pid\":%u,\"real_pid\":%u,"
				"\"ppid\":%u,\"host\":", i ? "," : "", p->hello.upid, p->hello.pid,
				p->hello.real_pid, p->hello.ppid);
			sb_json(b, host);
			sb_addf(b, ",\"program\":");
			sb_json(b, prog);
			sb_addf(b, ",\"state\":\"%s\"}", st);
		} else {
			sb_addf(b, "%016" PRIx64 " %u %u %s %s %s\n", p->hello.upid, p->hello.pid,
				p->hello.real_pid, host, prog, st);
		}
	}
	if (json)
		sb_addf(b, "]\n");
}

static void on_timer(struct loop *l, void *arg)
{
	char why[256];

	if (barrier_state(co.bar) != BARRIER_RUNNING)
		return;	/* busy or nobody there: the next tick will do */
	if (barrier_checkpoint(co.bar, 0, co.ckptdir, why, sizeof(why)) == BARRIER_REQ_FAILED)
		log_info("interval checkpoint not started: %s", why);
	reap();
}

static int set_interval(uint32_t secs)
{
	if (loop_set_timer(co.loop, (uint64_t)secs * 1000, on_timer, NULL) < 0)
		return -1;
	co.interval = secs;
	barrier_set_info(co.bar, co.interval, co.ckptdir, co.pid);
	return 0;
}

static void cmd_checkpoint(struct conn *c, const struct coord_command *cmd, int json)
{
	enum barrier_req r;
	struct sb b = { 0 };
	char why[256];

	r = barrier_checkpoint(co.bar,
			       ((cmd->flags & COORD_CMD_FULL) ? COORD_BAR_FULL : 0) |
				       ((cmd->flags & COORD_CMD_COW) ? COORD_BAR_COW : 0),
			       co.ckptdir, why,
			       sizeof(why));
	if (r == BARRIER_REQ_FAILED) {
		reply_str(c, COORD_ERR, why);
		return;
	}
	if (cmd->flags & COORD_CMD_BLOCKING) {
		c->wait = WAIT_CKPT;
		c->wait_json = json;
		return;
	}
	if (json)
		sb_addf(&b, "{\"request\":\"%s\",\"generation\":%u}\n",
			r == BARRIER_REQ_STARTED ? "started" : r == BARRIER_REQ_COALESCED ?
			"coalesced" : "queued", barrier_generation(co.bar) + 1);
	else if (r == BARRIER_REQ_STARTED)
		sb_addf(&b, "checkpoint %u started\n", barrier_generation(co.bar) + 1);
	else if (r == BARRIER_REQ_COALESCED)
		sb_addf(&b, "checkpoint %u already running\n", barrier_generation(co.bar) + 1);
	else
		sb_addf(&b, "checkpoint queued until the running sequence ends\n");
	reply_sb(c, COORD_OK, &b);
}

static void cmd_migrate(struct conn *c, const struct coord_command *cmd, int json)
{
	char host[256] = "", text[sizeof(cmd->text)], why[320];
	int port = 0;

	if (cmd->flags & COORD_CMD_PRECOPY) {
		reply_str(c, COORD_ERR, "pre-copy migration is not supported yet");
		return;
	}
	if (cmd->flags & COORD_CMD_POSTCOPY) {
		reply_str(c, COORD_ERR, "post-copy migration is not supported yet");
		return;
	}
	field(text, sizeof(text), cmd->text, sizeof(cmd->text));
	if (coord_parse_addr(text, host, sizeof(host), &port) < 0 || !host[0] || !port) {
		snprintf(why, sizeof(why), "bad migration target '%s': expected HOST:PORT", text);
		reply_str(c, COORD_ERR, why);
		return;
	}
	if (barrier_checkpoint(co.bar, COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER, text, why,
			       sizeof(why)) == BARRIER_REQ_FAILED) {
		reply_str(c, COORD_ERR, why);
		return;
	}
	snprintf(co.mig_target, sizeof(co.mig_target), "%s", text);
	c->wait = WAIT_MIGRATE;
	c->wait_json = json;
}

static void handle_command(struct conn *c, const struct coord_command *cmd)
{
	int json = !!(cmd->flags & COORD_CMD_JSON);
	struct sb b = { 0 };
	size_t n;

	switch (cmd->op) {
	case COORD_OP_STATUS:
		if (json)
			status_json(&b);
		else
			status_text(&b);
		reply_sb(c, COORD_OK, &b);
		return;
	case COORD_OP_LIST:
		list(&b, json);
		reply_sb(c, COORD_OK, &b);
		return;
	case COORD_OP_CHECKPOINT:
		cmd_checkpoint(c, cmd, json);
		return;
	case COORD_OP_INTERVAL:
		if (cmd->arg < 0 || cmd->arg > INTERVAL_MAX) {
			reply_str(c, COORD_ERR, "bad interval: expected 0 to 315360000 seconds");
			return;
		}
		if (set_interval((uint32_t)cmd->arg) < 0) {
			reply_str(c, COORD_ERR, "cannot set the interval timer");
			return;
		}
		log_info("interval set to %u s", co.interval);
		if (co.interval)
			sb_addf(&b, "interval checkpoints every %u s\n", co.interval);
		else
			sb_addf(&b, "interval checkpoints off\n");
		reply_sb(c, COORD_OK, &b);
		return;
	case COORD_OP_KILL:
	case COORD_OP_QUIT:
		n = barrier_kill_all(co.bar);
		sb_addf(&b, "killed %zu process%s%s\n", n, n == 1 ? "" : "es",
			cmd->op == COORD_OP_QUIT ? "; coordinator exiting" : "");
		reply_sb(c, COORD_OK, &b);
		if (cmd->op == COORD_OP_QUIT) {
			log_info("quit requested");
			loop_stop(co.loop);
		}
		return;
	case COORD_OP_MIGRATE:
		cmd_migrate(c, cmd, json);
		return;
	}
	sb_addf(&b, "unknown command %u (a newer cryo_command?)", cmd->op);
	reply_sb(c, COORD_ERR, &b);
}

/* ---- input ---- */

static void welcome_cmd(struct conn *c)
{
	struct coord_welcome w;

	memset(&w, 0, sizeof(w));
	w.status = COORD_OK;
	w.generation = barrier_generation(co.bar);
	w.comp_id = barrier_comp_id(co.bar);
	w.interval = co.interval;
	w.coord_pid = co.pid;
	snprintf(w.ckptdir, sizeof(w.ckptdir), "%s", co.ckptdir);
	conn_send(c, COORD_WELCOME, &w, sizeof(w), NULL, 0);
}

static int bad_len(struct conn *c, const struct coord_hdr *h, size_t want)
{
	if (h->len == want)
		return 0;
	log_warn("connection %d: message type %u of %u bytes, expected %zu; closing it", c->fd,
		 h->type, h->len, want);
	conn_kill(c);
	return 1;
}

static void dispatch(struct conn *c, const struct coord_hdr *h, const void *payload)
{
	union {
		struct coord_hello_proc hello;
		struct coord_command cmd;
		struct coord_barrier_done done;
		struct coord_report rep;
	} u;

	if (c->kind == CONN_NEW && h->type == COORD_HELLO_PROC) {
		if (bad_len(c, h, sizeof(u.hello)))
			return;
		memcpy(&u.hello, payload, sizeof(u.hello));
		c->kind = CONN_PROC;
		if (barrier_join(co.bar, c->id, &u.hello) < 0) {
			c->kind = CONN_NEW;
			conn_kill(c);
		}
		return;
	}
	if (c->kind == CONN_NEW && h->type == COORD_HELLO_CMD) {
		c->kind = CONN_CMD;
		welcome_cmd(c);
		return;
	}
	if (c->kind == CONN_CMD && h->type == COORD_COMMAND) {
		if (bad_len(c, h, sizeof(u.cmd)))
			return;
		memcpy(&u.cmd, payload, sizeof(u.cmd));
		if (c->wait != WAIT_NONE) {
			reply_str(c, COORD_ERR, "a request is already waiting on this connection");
			return;
		}
		handle_command(c, &u.cmd);
		return;
	}
	if (c->kind == CONN_PROC && h->type == COORD_BARRIER_DONE) {
		if (bad_len(c, h, sizeof(u.done)))
			return;
		memcpy(&u.done, payload, sizeof(u.done));
		barrier_ack(co.bar, c->id, &u.done);
		return;
	}
	if (c->kind == CONN_PROC && h->type == COORD_REPORT) {
		if (bad_len(c, h, sizeof(u.rep)))
			return;
		memcpy(&co.report, payload, sizeof(co.report));
		co.report_valid = 1;
		log_info("migration of pid %u arrived: %" PRIu64 " ms total, %" PRIu64
			 " ms downtime, %" PRIu64 " bytes, %u rounds", co.report.pid,
			 co.report.total_ns / 1000000, co.report.downtime_ns / 1000000,
			 co.report.bytes, co.report.rounds);
		return;
	}
	if (c->kind == CONN_NEW) {
		log_warn("connection %d: message type %u before HELLO; closing it", c->fd, h->type);
		conn_kill(c);
		return;
	}
	log_warn("connection %d: unexpected message type %u; ignored", c->fd, h->type);
}

/* Handles every whole message in the input buffer. */
static void parse(struct conn *c)
{
	size_t off = 0;

	while (!c->dead && c->inlen - off >= sizeof(struct coord_hdr)) {
		struct coord_hdr h;

		memcpy(&h, c->in + off, sizeof(h));
		if (h.magic != COORD_MAGIC || h.version != COORD_PROTO_VERSION ||
		    h.len > COORD_MSG_MAX) {
			log_warn("connection %d: bad message header (magic %x, version %u, "
				 "%u bytes); closing it", c->fd, h.magic, h.version, h.len);
			conn_kill(c);
			return;
		}
		if (c->inlen - off < sizeof(h) + h.len)
			break;
		dispatch(c, &h, c->in + off + sizeof(h));
		off += sizeof(h) + h.len;
	}
	if (off) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

static void conn_io(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	if (events & LOOP_WRITE)
		conn_flush(c);
	while ((events & LOOP_READ) && !c->dead) {
		ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_debug("read connection %d: %s", c->fd, strerror(errno));
				conn_kill(c);
			}
			break;
		}
		if (r == 0) {
			conn_kill(c);
			break;
		}
		c->inlen += (size_t)r;
		parse(c);
	}
	reap();
}

static void on_accept(struct loop *l, int fd, uint32_t events, void *arg)
{
	for (;;) {
		int cfd = accept4(co.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct conn *c;

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* level-triggered: stop watching until a connection closes */
				log_perror("accept a connection (paused until one closes)");
				co.accept_paused = 1;
				loop_mod(co.loop, co.lfd, 0);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				log_perror("accept a connection");
			}
			return;
		}
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (cfd >= co.nconns) {
			int n = co.nconns ? co.nconns : 64;
			struct conn **nc;

			while (n <= cfd)
				n *= 2;
			nc = realloc(co.conns, (size_t)n * sizeof(*nc));
			if (!nc) {
				log_err("out of memory accepting connection %d", cfd);
				close(cfd);
				continue;
			}
			memset(nc + co.nconns, 0, (size_t)(n - co.nconns) * sizeof(*nc));
			co.conns = nc;
			co.nconns = n;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			log_err("out of memory accepting connection %d", cfd);
			close(cfd);
			continue;
		}
		c->fd = cfd;
		c->id = ((uint64_t)++co.conn_seq << 32) | (uint32_t)cfd;
		co.conns[cfd] = c;
		if (loop_add(co.loop, cfd, LOOP_READ, conn_io, c) < 0) {
			co.conns[cfd] = NULL;
			close(cfd);
			free(c);
		}
	}
}

static void on_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	unsigned int sig;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	sig = si.ssi_signo;
	log_info("signal %u: exiting", sig);
	loop_stop(co.loop);
}

/* ---- start-up ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cryo_coordinator [OPTION]...\n"
		"The cryo checkpoint coordinator: the processes of a computation and\n"
		"cryo_command connect to it.\n"
		"\n"
		"  --port PORT        listen on PORT (default %d; 0 = any free port)\n"
		"  --port-file FILE   write the port listened on to FILE\n"
		"  --bind ADDR        listen on ADDR (default 127.0.0.1; 0.0.0.0 = all hosts)\n"
		"  --daemon           run in the background once listening\n"
		"  --exit-on-last     exit when the last process of the computation leaves\n"
		"  --interval SECS    checkpoint every SECS seconds (0 = never)\n"
		"  --ckptdir DIR      checkpoint directory (default: the current one)\n"
		"  --help, --version\n"
		"\n"
		"Environment: CRYO_COORD_PORT, CRYO_CKPT_DIR, CRYO_CKPT_INTERVAL as the\n"
		"options (options win), CRYO_LOG=err|warn|info|debug, CRYO_LOG_FILE.\n",
		COORD_DEFAULT_PORT);
}

struct opts {
	const char *port, *port_file, *bind, *interval, *ckptdir;
	int daemon;
};

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const char *const valued[] = { "--port", "--port-file", "--bind", "--interval",
					      "--ckptdir" };
	const char **dst[] = { &o->port, &o->port_file, &o->bind, &o->interval, &o->ckptdir };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		size_t k;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(a, "--version")) {
			printf("cryo_coordinator %s\n", CRYO_VERSION);
			exit(0);
		}
		if (!strcmp(a, "--daemon")) {
			o->daemon = 1;
			continue;
		}
		if (!strcmp(a, "--exit-on-last")) {
			co.exit_on_last = 1;
			continue;
		}
		for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
			if (strlen(valued[k]) == n && !strncmp(a, valued[k], n))
				break;
		if (k == sizeof(valued) / sizeof(valued[0]))
			util_die(2, "unknown option '%s' (try --help)", a);
		if (eq) {
			*dst[k] = eq + 1;
		} else {
			if (i + 1 >= argc)
				util_die(2, "option %s needs a value", a);
			*dst[k] = argv[++i];
		}
	}
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (util_parse_u64(s, &v) < 0 || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static void setup_options(int argc, char **argv, struct opts *o)
{
	char cwd[PATH_MAX];
	uint32_t v;

	o->port = getenv("CRYO_COORD_PORT");
	o->ckptdir = getenv("CRYO_CKPT_DIR");
	o->interval = getenv("CRYO_CKPT_INTERVAL");
	if (o->port && !*o->port)
		o->port = NULL;
	if (o->ckptdir && !*o->ckptdir)
		o->ckptdir = NULL;
	if (o->interval && !*o->interval)
		o->interval = NULL;
	parse_args(argc, argv, o);

	co.port = COORD_DEFAULT_PORT;
	if (o->port) {
		if (parse_u32(o->port, 65535, &v) < 0)
			util_die(2, "bad port '%s': expected 0 to 65535", o->port);
		co.port = (int)v;
	}
	if (o->interval) {
		if (parse_u32(o->interval, INTERVAL_MAX, &v) < 0)
			util_die(2, "bad interval '%s': expected a number of seconds", o->interval);
		co.interval = v;
	}
	snprintf(co.bind, sizeof(co.bind), "%s", o->bind ? o->bind : COORD_DEFAULT_HOST);
	if (!co.bind[0])
		util_die(2, "empty --bind address");
	if (!getcwd(cwd, sizeof(cwd)))
		util_die(1, "cannot get the current directory: %s", strerror(errno));
	if (!o->ckptdir) {
		snprintf(co.ckptdir, sizeof(co.ckptdir), "%s", cwd);
	} else {
		if (o->ckptdir[0] == '/')
			snprintf(co.ckptdir, sizeof(co.ckptdir), "%s", o->ckptdir);
		else if (snprintf(co.ckptdir, sizeof(co.ckptdir), "%s/%s", cwd, o->ckptdir) >=
			 (int)sizeof(co.ckptdir))
			util_die(2, "checkpoint directory path too long: %s", o->ckptdir);
		if (mkdir(co.ckptdir, 0700) < 0 && errno != EEXIST)
			util_die(1, "cannot create checkpoint directory %s: %s", co.ckptdir,
			    strerror(errno));
	}
	{
		struct stat st;

		if (stat(co.ckptdir, &st) < 0 || !S_ISDIR(st.st_mode))
			util_die(1, "checkpoint directory %s is not a directory", co.ckptdir);
	}
	if (util_self_dir(co.bindir, sizeof(co.bindir)) < 0)
		exit(1);
}

static void do_listen(void)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char service[16];
	int r, one = 1;

	snprintf(service, sizeof(service), "%d", co.port);
	r = getaddrinfo(co.bind, service, &hints, &res);
	if (r != 0 || !res)
		util_die(2, "bad --bind address '%s': %s", co.bind, gai_strerror(r));
	co.lfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (co.lfd < 0)
		util_die(1, "socket: %s", strerror(errno));
	setsockopt(co.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(co.lfd, res->ai_addr, res->ai_addrlen) < 0) {
		if (errno == EADDRINUSE)
			util_die(1, "port %d is in use on %s (another coordinator?)", co.port, co.bind);
		util_die(1, "cannot listen on %s:%d: %s", co.bind, co.port, strerror(errno));
	}
	freeaddrinfo(res);
	if (listen(co.lfd, 128) < 0)
		util_die(1, "listen on %s:%d: %s", co.bind, co.port, strerror(errno));
	if (getsockname(co.lfd, (struct sockaddr *)&ss, &sl) < 0)
		util_die(1, "getsockname: %s", strerror(errno));
	co.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	/* what a client (and the restart script) should connect to */
	if (!strcmp(co.bind, "0.0.0.0") || !strcmp(co.bind, "::")) {
		if (gethostname(co.host, sizeof(co.host)) < 0 || !co.host[0])
			snprintf(co.host, sizeof(co.host), "127.0.0.1");
		co.host[sizeof(co.host) - 1] = '\0';
	} else {
		snprintf(co.host, sizeof(co.host), "%s", co.bind);
	}
}

static void write_port_file(const char *file)
{
	char tmp[PATH_MAX], buf[16];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid()) >= (int)sizeof(tmp))
		util_die(2, "port file path too long: %s", file);
	n = snprintf(buf, sizeof(buf), "%d\n", co.port);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		util_die(1, "cannot write port file %s: %s", tmp, strerror(errno));
	if (util_write_all(fd, buf, (size_t)n) < 0 || close(fd) < 0) {
		unlink(tmp);
		util_die(1, "cannot write port file %s: %s", tmp, strerror(errno));
	}
	if (rename(tmp, file) < 0) {
		unlink(tmp);
		util_die(1, "cannot rename %s to %s: %s", tmp, file, strerror(errno));
	}
}

/* Double fork: the caller's process exits 0 once the daemon is set up (it
 * reports through a pipe), or 1 if the daemon died first. */
static void daemonize(void)
{
	int p[2], nul;
	pid_t pid;
	char c = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		util_die(1, "pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		util_die(1, "fork: %s", strerror(errno));
	if (pid > 0) {
		ssize_t r;

		close(p[1]);
		do
			r = read(p[0], &c, 1);
		while (r < 0 && errno == EINTR);
		_exit(r == 1 && c == 'k' ? 0 : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		util_die(1, "setsid: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		util_die(1, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		util_die(1, "chdir /: %s", strerror(errno));
	nul = open("/dev/null", O_RDWR);
	if (nul < 0)
		util_die(1, "open /dev/null: %s", strerror(errno));
	c = 'k';
	if (write(p[1], &c, 1) != 1)
		_exit(1);
	close(p[1]);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (nul > 2)
		close(nul);
}

static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
		log_perror("sigprocmask");
		return -1;
	}
	co.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (co.sigfd < 0) {
		log_perror("signalfd");
		return -1;
	}
	return loop_add(co.loop, co.sigfd, LOOP_READ, on_signal, NULL);
}

/* On the way out: give pending replies (a QUIT's) a moment to leave. */
static void flush_all(void)
{
	uint64_t deadline = ns_now() + 500000000ull;

	for (int fd = 0; fd < co.nconns; fd++) {
		struct conn *c = co.conns[fd];

		while (c && !c->dead && c->outlen > c->outoff && ns_now() < deadline) {
			struct timespec ts = { 0, 1000000 };

			conn_flush(c);
			if (c->outlen > c->outoff)
				nanosleep(&ts, NULL);
		}
	}
}

static void shutdown_all(void)
{
	flush_all();
	for (int fd = 0; fd < co.nconns; fd++)
		if (co.conns[fd])
			conn_free(co.conns[fd]);
	free(co.conns);
	barrier_free(co.bar);
	loop_free(co.loop);
	last_free(&co.last);
	close(co.lfd);
	if (co.sigfd >= 0)
		close(co.sigfd);
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	int ret;

	log_set_ident("cryo_coordinator");
	log_init();
	co.sigfd = -1;
	setup_options(argc, argv, &o);
	do_listen();
	if (o.port_file)
		write_port_file(o.port_file);
	/* everything that can fail happens before detaching, to be reported */
	co.loop = loop_new();
	co.bar = barrier_new(&bar_ops, NULL);
	if (!co.loop || !co.bar || loop_add(co.loop, co.lfd, LOOP_READ, on_accept, NULL) < 0 ||
	    (co.interval && set_interval(co.interval) < 0)) {
		shutdown_all();
		return 1;
	}
	if (o.daemon)
		daemonize();
	co.pid = (uint32_t)getpid();
	/* after the fork: a signalfd added to epoll wakes the process that added it */
	if (setup_signals() < 0) {
		shutdown_all();
		return 1;
	}
	barrier_set_info(co.bar, co.interval, co.ckptdir, co.pid);
	log_info("listening on %s:%d, checkpoint dir %s, interval %u s", co.bind, co.port,
		 co.ckptdir, co.interval);
	ret = loop_run(co.loop);
	shutdown_all();
	return ret < 0 ? 1 : 0;
}
