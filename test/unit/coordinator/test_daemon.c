/* Runs the real cryo_coordinator (on --port 0, in a temporary checkpoint
 * directory) and cryo_command, found next to this test in build/bin, with
 * fake processes written here that speak the protocol over TCP: a full
 * checkpoint with the restart script, an abort when a process disconnects
 * mid-checkpoint, a restart group, rejections, command exit codes, and the
 * coordinator's own start-up (bad options, port in use, --daemon,
 * --exit-on-last, coord_ensure and its race). Every daemon started here is
 * stopped by pid. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "coordinator/protocol.h"
#include "mtcp/util.h"

#define WAIT_MS 5000

static char bindir[PATH_MAX];
static char dir[PATH_MAX];
static pid_t coord_pid;
static int coord_port;
static char portarg[64];	/* "127.0.0.1:PORT" */

/* ---- running programs ---- */

struct run {
	int code;		/* exit code, or 128+signal */
	char out[65536], err[2048];
};

static void read_into(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

struct child {
	pid_t pid;
	int out, err;
};

static struct child start(char *const argv[])
{
	struct child c;
	int o[2], e[2];

	assert_int_equal(pipe2(o, O_CLOEXEC), 0);
	assert_int_equal(pipe2(e, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], argv);
		_exit(126);
	}
	close(o[1]);
	close(e[1]);
	c.out = o[0];
	c.err = e[0];
	return c;
}

static void finish(struct child c, struct run *r)
{
	int st;

	read_into(c.out, r->out, sizeof(r->out));
	read_into(c.err, r->err, sizeof(r->err));
	close(c.out);
	close(c.err);
	assert_int_equal(waitpid(c.pid, &st, 0), c.pid);
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void run(struct run *r, char *const argv[])
{
	finish(start(argv), r);
}

/* cryo_command --coord ADDR ARGS... */
static struct child command_start(const char *a1, const char *a2, const char *a3)
{
	static char path[PATH_MAX + 64];
	char *argv[] = { path, "--coord", portarg, (char *)a1, (char *)a2, (char *)a3, NULL };

	snprintf(path, sizeof(path), "%s/cryo_command", bindir);
	return start(argv);
}

static void command(struct run *r, const char *a1, const char *a2, const char *a3)
{
	finish(command_start(a1, a2, a3), r);
}

static int wait_file(const char *path)
{
	for (int i = 0; i < WAIT_MS / 5; i++) {
		struct timespec ts = { 0, 5000000 };

		if (access(path, R_OK) == 0)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

static int read_port(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	read_into(fd, buf, sizeof(buf));
	close(fd);
	return atoi(buf);
}

/* Starts cryo_coordinator --port 0 in dir, plus extra options. */
static void coordinator_start(const char *x1, const char *x2)
{
	char path[PATH_MAX + 64], pf[PATH_MAX + 16];
	char *argv[] = { path, "--port", "0", "--port-file", pf, "--ckptdir", dir, (char *)x1,
			 (char *)x2, NULL };

	snprintf(path, sizeof(path), "%s/cryo_coordinator", bindir);
	snprintf(pf, sizeof(pf), "%s/port", dir);
	unlink(pf);
	coord_pid = fork();
	assert_true(coord_pid >= 0);
	if (coord_pid == 0) {
		/* CRYO_TEST_WRAPPER="valgrind --leak-check=full --error-exitcode=9"
		 * runs the coordinator under that command */
		const char *wrap = getenv("CRYO_TEST_WRAPPER");
		char *wv[32], *w, *save = NULL;
		int n = 0;

		if (wrap && *wrap) {
			w = strdup(wrap);
			for (char *t = strtok_r(w, " ", &save); t && n < 20;
			     t = strtok_r(NULL, " ", &save))
				wv[n++] = t;
			for (int i = 0; argv[i] && n < 31; i++)
				wv[n++] = argv[i];
			wv[n] = NULL;
			execvp(wv[0], wv);
			_exit(126);
		}
		execv(path, argv);
		_exit(126);
	}
	assert_int_equal(wait_file(pf), 0);
	coord_port = read_port(pf);
	assert_true(coord_port > 0);
	snprintf(portarg, sizeof(portarg), "127.0.0.1:%d", coord_port);
}

/* Stops the coordinator; returns its exit code. */
static int coordinator_stop(void)
{
	int st;

	if (coord_pid <= 0)
		return -1;
	kill(coord_pid, SIGTERM);
	assert_int_equal(waitpid(coord_pid, &st, 0), coord_pid);
	coord_pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/cryo-test-daemon-XXXXXX");
	assert_non_null(mkdtemp(dir));
	coordinator_start(NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	int code = coord_pid ? coordinator_stop() : 0;

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	if (code != 0)
		fprintf(stderr, "cryo_coordinator exited with %d\n", code);
	return code == 0 ? 0 : -1;
}

/* ---- fake processes ---- */

struct fake {
	int fd;
	uint64_t upid;
	struct coord_welcome w;
};

/* Connects and says HELLO_PROC. */
static void fake_hello(struct fake *f, uint64_t upid, uint32_t flags, uint64_t comp,
		       uint32_t gen, uint32_t nprocs)
{
	struct sockaddr_storage ss;
	struct coord_hello_proc h;
	socklen_t sl;

	memset(f, 0, sizeof(*f));
	f->upid = upid;
	assert_int_equal(coord_resolve("127.0.0.1", coord_port, &ss, &sl), 0);
	f->fd = coord_connect(&ss, sl, WAIT_MS);
	assert_true(f->fd >= 0);
	memset(&h, 0, sizeof(h));
	h.upid = upid;
	h.comp_id = comp;
	h.pid = (uint32_t)upid;
	h.real_pid = (uint32_t)upid + 1;
	h.flags = flags;
	h.generation = gen;
	h.nprocs = nprocs;
	snprintf(h.host, sizeof(h.host), "testhost");
	snprintf(h.program, sizeof(h.program), "fake%llu", (unsigned long long)upid);
	assert_int_equal(coord_send(f->fd, COORD_HELLO_PROC, &h, sizeof(h)), 0);
}

/* Waits for the WELCOME; returns its status. */
static int fake_welcome(struct fake *f)
{
	struct coord_hdr hdr;

	assert_int_equal(coord_recv(f->fd, &hdr, &f->w, sizeof(f->w), WAIT_MS), 1);
	assert_int_equal(hdr.type, COORD_WELCOME);
	assert_int_equal(hdr.len, sizeof(f->w));
	return f->w.status;
}

static void fake_join(struct fake *f, uint64_t upid)
{
	fake_hello(f, upid, 0, 0, 0, 0);
	assert_int_equal(fake_welcome(f), COORD_OK);
	assert_true(f->w.comp_id != 0);
	assert_string_equal(f->w.ckptdir, dir);
}

static void fake_close(struct fake *f)
{
	close(f->fd);
	f->fd = -1;
}

/* Expects BARRIER(phase); returns it in *b. RESTART comes after the
 * group's pid map, which must be well formed and not empty. */
static void fake_expect(struct fake *f, uint32_t phase, struct coord_barrier *b)
{
	struct coord_hdr hdr;

	assert_int_equal(coord_recv(f->fd, &hdr, b, sizeof(*b), WAIT_MS), 1);
	if (phase == COORD_PH_RESTART) {
		const struct coord_pidmap *m = (const struct coord_pidmap *)b;

		assert_int_equal(hdr.type, COORD_PIDMAP);
		assert_true(m->n >= 1);
		assert_int_equal(hdr.len, sizeof(*m) + m->n * sizeof(m->ents[0]));
		assert_int_equal(coord_recv(f->fd, &hdr, b, sizeof(*b), WAIT_MS), 1);
	}
	assert_int_equal(hdr.type, COORD_BARRIER);
	assert_string_equal(coord_phase_name(b->phase), coord_phase_name(phase));
}

/* Nothing arrives for a while. */
static void fake_quiet(struct fake *f, int ms)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, ms), 0);
}

static void fake_ack(struct fake *f, const struct coord_barrier *b, int status, const char *text)
{
	struct coord_barrier_done d;

	memset(&d, 0, sizeof(d));
	d.phase = b->phase;
	d.generation = b->generation;
	d.attempt = b->attempt;
	d.status = status;
	if (b->phase == COORD_PH_WRITE) {
		d.bytes = 4096;
		d.ns = 1000;
	}
	if (text)
		snprintf(d.text, sizeof(d.text), "%s", text);
	assert_int_equal(coord_send(f->fd, COORD_BARRIER_DONE, &d, sizeof(d)), 0);
}

/* Both fakes through phases first..last, acking each. */
static void phases(struct fake *f, size_t n, uint32_t first, uint32_t last, uint32_t gen)
{
	struct coord_barrier b;

	for (uint32_t ph = first; ph <= last; ph++) {
		for (size_t i = 0; i < n; i++) {
			char img[PATH_MAX + 32];

			fake_expect(&f[i], ph, &b);
			assert_int_equal(b.generation, gen);
			assert_int_equal(b.nprocs, n);
			assert_int_equal(b.flags, 0);
			if (ph == COORD_PH_SUSPEND || ph == COORD_PH_WRITE)
				assert_string_equal(b.text, dir);
			snprintf(img, sizeof(img), "%s/ckpt_%llu_gen%u.cryo", dir,
				 (unsigned long long)f[i].upid, gen);
			fake_ack(&f[i], &b, 0, ph == COORD_PH_WRITE ? img : NULL);
		}
	}
}

static char *slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	read_into(fd, buf, size);
	close(fd);
	return buf;
}

/* ---- tests ---- */

static void full_checkpoint_writes_the_script(void **state)
{
	struct fake f[2];
	struct coord_barrier b;
	struct child c;
	struct run r;
	char path[PATH_MAX + 64], expect[2 * PATH_MAX + 100], script[8192];
	struct stat st;

	fake_join(&f[0], 11);
	fake_join(&f[1], 12);
	assert_int_equal(f[0].w.comp_id, f[1].w.comp_id);

	c = command_start("--bcheckpoint", NULL, NULL);
	phases(f, 2, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1);
	finish(c, &r);
	assert_int_equal(r.code, 0);
	snprintf(expect, sizeof(expect), "%s/ckpt_11_gen1.cryo\n%s/ckpt_12_gen1.cryo\n", dir, dir);
	assert_string_equal(r.out, expect);
	assert_string_equal(r.err, "");

	/* the processes are not done yet: REFILL, then RESUME */
	phases(f, 2, COORD_PH_REFILL, COORD_PH_REFILL, 1);
	fake_expect(&f[0], COORD_PH_RESUME, &b);
	fake_expect(&f[1], COORD_PH_RESUME, &b);
	assert_int_equal(b.flags, 0);

	snprintf(path, sizeof(path), "%s/cryo_restart_script.sh", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_non_null(slurp(path, script, sizeof(script)));
	assert_true(!strncmp(script, "#!/bin/sh\n", 10));
	assert_non_null(strstr(script, "/cryo_restart' --coord '"));
	assert_non_null(strstr(script, portarg));
	assert_non_null(strstr(script, "\"$@\""));
	snprintf(expect, sizeof(expect), "'%s/ckpt_11_gen1.cryo'", dir);
	assert_non_null(strstr(script, expect));
	snprintf(expect, sizeof(expect), "'%s/ckpt_12_gen1.cryo'", dir);
	assert_non_null(strstr(script, expect));
	/* it is valid sh */
	snprintf(expect, sizeof(expect), "sh -n '%s'", path);
	assert_int_equal(system(expect), 0);

	/* status and list see it */
	command(&r, "--status", "--json", NULL);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "\"state\":\"running\""));
	assert_non_null(strstr(r.out, "\"nprocs\":2"));
	assert_non_null(strstr(r.out, "\"generation\":1,"));
	assert_non_null(strstr(r.out, "\"last_checkpoint\":{\"generation\":1,"));
	assert_non_null(strstr(r.out, "\"bytes\":8192"));
	assert_non_null(strstr(r.out, "ckpt_12_gen1.cryo\"]"));
	command(&r, "--list", NULL, NULL);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "000000000000000b 11 12 testhost fake11 running\n"));
	assert_non_null(strstr(r.out, "000000000000000c 12 13 testhost fake12 running\n"));
	command(&r, "--list", "--json", NULL);
	assert_non_null(strstr(r.out, "{\"upid\":\"000000000000000b\",\"pid\":11,\"real_pid\":12,"));

	/* a second one, non-blocking, in JSON; the old script is kept */
	command(&r, "--checkpoint", "--json", NULL);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "{\"request\":\"started\",\"generation\":2}\n");
	phases(f, 2, COORD_PH_SUSPEND, COORD_PH_REFILL, 2);
	snprintf(path, sizeof(path), "%s/cryo_restart_script.prev.sh", dir);
	assert_non_null(slurp(path, script, sizeof(script)));
	assert_non_null(strstr(script, "ckpt_11_gen1.cryo"));
	snprintf(path, sizeof(path), "%s/cryo_restart_script.sh", dir);
	assert_non_null(slurp(path, script, sizeof(script)));
	assert_non_null(strstr(script, "ckpt_11_gen2.cryo"));
	fake_close(&f[0]);
	fake_close(&f[1]);
}

static void bcheckpoint_json(void **state)
{
	struct fake f[1];
	struct child c;
	struct run r;
	char expect[PATH_MAX + 100];

	fake_join(&f[0], 21);
	c = command_start("--bcheckpoint", "--json", NULL);
	phases(f, 1, COORD_PH_SUSPEND, COORD_PH_COMMIT, 1);
	finish(c, &r);
	assert_int_equal(r.code, 0);
	snprintf(expect, sizeof(expect),
		 "{\"generation\":1,\"images\":[\"%s/ckpt_21_gen1.cryo\"],\"bytes\":4096,\"ms\":", dir);
	assert_true(!strncmp(r.out, expect, strlen(expect)));
	fake_close(&f[0]);
}

static void disconnect_mid_checkpoint_aborts(void **state)
{
	struct fake f[2];
	struct coord_barrier b;
	struct child c;
	struct run r;
	char path[PATH_MAX + 64];

	fake_join(&f[0], 31);
	fake_join(&f[1], 32);
	c = command_start("-bc", NULL, NULL);
	phases(f, 2, COORD_PH_SUSPEND, COORD_PH_DRAIN, 1);
	fake_expect(&f[0], COORD_PH_WRITE, &b);
	fake_expect(&f[1], COORD_PH_WRITE, &b);
	fake_ack(&f[0], &b, 0, "/x/never.cryo");
	fake_close(&f[1]);
	fake_expect(&f[0], COORD_PH_RESUME, &b);
	assert_int_equal(b.flags, COORD_BAR_ABORT);
	finish(c, &r);
	assert_int_equal(r.code, 1);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "cryo_command: checkpoint 1 failed: process 32"));
	assert_non_null(strstr(r.err, "disconnected during WRITE"));
	assert_null(strchr(r.err, '\n') == r.err + strlen(r.err) - 1 ? NULL : "two lines");
	snprintf(path, sizeof(path), "%s/cryo_restart_script.sh", dir);
	assert_int_equal(access(path, F_OK), -1);

	/* the survivor runs on, the failure shows in the status */
	command(&r, "--status", "--json", NULL);
	assert_non_null(strstr(r.out, "\"state\":\"running\",\"nprocs\":1,\"generation\":0"));
	assert_non_null(strstr(r.out, "\"last_error\":\"checkpoint 1 aborted"));
	/* a failure ack aborts too, with its reason */
	c = command_start("-bc", NULL, NULL);
	fake_expect(&f[0], COORD_PH_SUSPEND, &b);
	assert_int_equal(b.generation, 1);
	fake_ack(&f[0], &b, 1, "no space left");
	fake_expect(&f[0], COORD_PH_RESUME, &b);
	assert_int_equal(b.flags, COORD_BAR_ABORT);
	finish(c, &r);
	assert_int_equal(r.code, 1);
	assert_non_null(strstr(r.err, "failed SUSPEND: no space left"));
	fake_close(&f[0]);
}

static void restart_group(void **state)
{
	const uint64_t comp = 0x1234abcd5678ef00ull;
	struct fake f[3], dup;
	struct coord_barrier b;
	struct run r;

	fake_hello(&f[0], 41, COORD_PROC_RESTARTED, comp, 3, 2);
	assert_int_equal(fake_welcome(&f[0]), COORD_OK);
	assert_int_equal(f[0].w.comp_id, comp);
	assert_int_equal(f[0].w.generation, 3);
	fake_quiet(&f[0], 100);	/* held: the other one is missing */
	command(&r, "--status", NULL, NULL);
	assert_non_null(strstr(r.out, "state: restarting\n"));
	assert_non_null(strstr(r.out, "computation: 1234abcd5678ef00\n"));

	/* another computation is refused meanwhile */
	fake_hello(&f[2], 99, COORD_PROC_RESTARTED, comp + 1, 3, 2);
	assert_int_equal(fake_welcome(&f[2]), COORD_REJECT);
	assert_non_null(strstr(f[2].w.text, "runs computation 1234abcd5678ef00"));
	fake_close(&f[2]);

	fake_hello(&f[1], 42, COORD_PROC_RESTARTED, comp, 3, 2);
	assert_int_equal(fake_welcome(&f[1]), COORD_OK);
	for (int i = 0; i < 2; i++) {
		fake_expect(&f[i], COORD_PH_RESTART, &b);
		assert_int_equal(b.generation, 3);
		assert_int_equal(b.nprocs, 2);
		fake_ack(&f[i], &b, 0, NULL);
	}
	for (int i = 0; i < 2; i++) {
		fake_expect(&f[i], COORD_PH_REFILL, &b);
		fake_ack(&f[i], &b, 0, NULL);
	}
	fake_expect(&f[0], COORD_PH_RESUME, &b);
	fake_expect(&f[1], COORD_PH_RESUME, &b);

	/* the original is "running" now: restarting it again is refused */
	fake_hello(&dup, 41, COORD_PROC_RESTARTED, comp, 3, 2);
	assert_int_equal(fake_welcome(&dup), COORD_REJECT);
	assert_non_null(strstr(dup.w.text, "computation is already running"));
	fake_close(&dup);

	command(&r, "--status", "--json", NULL);
	assert_non_null(strstr(r.out, "\"comp_id\":\"1234abcd5678ef00\",\"state\":\"running\","
				      "\"nprocs\":2,\"generation\":3"));
	/* the next checkpoint is generation 4 */
	command(&r, "--checkpoint", NULL, NULL);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "checkpoint 4 started\n");
	phases(f, 2, COORD_PH_SUSPEND, COORD_PH_SUSPEND, 4);
	fake_close(&f[0]);
	fake_close(&f[1]);
}

static void kill_and_quit(void **state)
{
	struct fake f[2];
	struct coord_hdr hdr;
	char buf[16];
	struct run r;

	fake_join(&f[0], 51);
	fake_join(&f[1], 52);
	command(&r, "--migrate", "127.0.0.1:5555", NULL);
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err, "cryo_command: migration of a 2-process computation is not "
				   "supported yet\n");
	command(&r, "--kill", NULL, NULL);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "killed 2 processes\n");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(coord_recv(f[i].fd, &hdr, buf, sizeof(buf), WAIT_MS), 1);
		assert_int_equal(hdr.type, COORD_KILL);
		fake_close(&f[i]);
	}
	command(&r, "--quit", NULL, NULL);
	assert_int_equal(r.code, 0);
	int st;
	assert_int_equal(waitpid(coord_pid, &st, 0), coord_pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	coord_pid = 0;
	command(&r, "--status", NULL, NULL);
	assert_int_equal(r.code, 3);
	snprintf(buf, sizeof(buf), "%d", coord_port);
	assert_non_null(strstr(r.err, "cryo_command: no coordinator at 127.0.0.1:"));
	assert_non_null(strstr(r.err, buf));
}

static void migration_one_process(void **state)
{
	struct fake f, dst;
	struct coord_barrier b;
	struct child c;
	struct run r;
	const uint32_t fl = COORD_BAR_MIGRATE | COORD_BAR_EXIT_AFTER;

	fake_join(&f, 61);
	command(&r, "--migrate", "127.0.0.1:5555", "--precopy");
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err, "cryo_command: pre-copy migration is not supported yet\n");
	c = command_start("--migrate", "127.0.0.1:5555", NULL);
	for (uint32_t ph = COORD_PH_SUSPEND; ph <= COORD_PH_COMMIT; ph++) {
		fake_expect(&f, ph, &b);
		assert_int_equal(b.flags, fl);
		if (ph == COORD_PH_SUSPEND || ph == COORD_PH_WRITE)
			assert_string_equal(b.text, "127.0.0.1:5555");
		fake_ack(&f, &b, 0, ph == COORD_PH_WRITE ? "127.0.0.1:5555" : NULL);
	}
	finish(c, &r);
	assert_int_equal(r.code, 0);
	assert_true(!strncmp(r.out, "migrated to 127.0.0.1:5555: 4096 bytes in ", 42));
	/* the destination arrives before the source is gone */
	fake_hello(&dst, 61, COORD_PROC_RESTARTED, f.w.comp_id, 1, 1);
	assert_int_equal(fake_welcome(&dst), COORD_OK);
	fake_close(&f);
	fake_expect(&dst, COORD_PH_RESTART, &b);
	fake_ack(&dst, &b, 0, NULL);
	fake_expect(&dst, COORD_PH_REFILL, &b);
	fake_ack(&dst, &b, 0, NULL);
	fake_expect(&dst, COORD_PH_RESUME, &b);
	struct coord_report rep = { .total_ns = 2000000000ull, .downtime_ns = 30000000ull,
				    .bytes = 4096, .rounds = 0, .pid = 61 };
	assert_int_equal(coord_send(dst.fd, COORD_REPORT, &rep, sizeof(rep)), 0);
	for (int i = 0; i < 100; i++) {
		command(&r, "--status", "--json", NULL);
		if (strstr(r.out, "\"arrived\":true"))
			break;
	}
	assert_non_null(strstr(r.out, "\"last_migration\":{\"target\":\"127.0.0.1:5555\","));
	assert_non_null(strstr(r.out, "\"total_ms\":2000,\"downtime_ms\":30,\"bytes\":4096,"
				      "\"rounds\":0}"));
	fake_close(&dst);
}

static void joiner_during_checkpoint_waits(void **state)
{
	struct fake f[2];
	struct coord_barrier b;
	struct run r;

	fake_join(&f[0], 71);
	command(&r, "--checkpoint", NULL, NULL);
	assert_string_equal(r.out, "checkpoint 1 started\n");
	fake_expect(&f[0], COORD_PH_SUSPEND, &b);
	fake_ack(&f[0], &b, 0, NULL);
	fake_expect(&f[0], COORD_PH_ELECT, &b);
	fake_hello(&f[1], 72, 0, 0, 0, 0);	/* past SUSPEND: after the sequence */
	fake_quiet(&f[1], 100);	/* no WELCOME yet */
	command(&r, "--checkpoint", NULL, NULL);	/* coalesced */
	assert_string_equal(r.out, "checkpoint 1 already running\n");
	fake_ack(&f[0], &b, 0, NULL);
	phases(f, 1, COORD_PH_DRAIN, COORD_PH_REFILL, 1);
	fake_expect(&f[0], COORD_PH_RESUME, &b);
	assert_int_equal(fake_welcome(&f[1]), COORD_OK);
	assert_int_equal(f[1].w.generation, 1);
	fake_close(&f[0]);
	fake_close(&f[1]);
}

static void garbage_is_dropped(void **state)
{
	struct fake f;
	struct run r;
	char junk[64];

	fake_join(&f, 81);
	memset(junk, 'x', sizeof(junk));
	assert_int_equal(util_write_all(f.fd, junk, sizeof(junk)), 0);
	/* the coordinator closes the connection and carries on */
	struct coord_hdr hdr;
	assert_int_equal(coord_recv(f.fd, &hdr, junk, sizeof(junk), WAIT_MS), 0);
	fake_close(&f);
	command(&r, "--status", NULL, NULL);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "processes: 0\n"));
}

/* Replies longer than one message (16 KiB) arrive whole: 40 processes with
 * 600-byte image paths make a 24 KB --bcheckpoint reply. */
static void long_replies_are_split(void **state)
{
	enum { N = 40 };
	static struct fake f[N];
	static char img[N][700], expect[N * 700];
	struct coord_barrier b;
	struct child c;
	struct run r;
	size_t len = 0;

	for (int i = 0; i < N; i++) {
		fake_join(&f[i], 1000 + (uint64_t)i);
		snprintf(img[i], sizeof(img[i]), "%.64s/%0600d.cryo", dir, i);
		len += (size_t)snprintf(expect + len, sizeof(expect) - len, "%s\n", img[i]);
	}
	c = command_start("--bcheckpoint", NULL, NULL);
	for (uint32_t ph = COORD_PH_SUSPEND; ph <= COORD_PH_COMMIT; ph++)
		for (int i = 0; i < N; i++) {
			fake_expect(&f[i], ph, &b);
			fake_ack(&f[i], &b, 0, ph == COORD_PH_WRITE ? img[i] : NULL);
		}
	finish(c, &r);
	assert_int_equal(r.code, 0);
	assert_true(strlen(expect) > COORD_MSG_MAX);
	assert_string_equal(r.out, expect);
	command(&r, "--status", "--json", NULL);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, img[N - 1]));
	for (int i = 0; i < N; i++)
		fake_close(&f[i]);
}

/* ---- the programs' own start-up ---- */

static void coordinator_bad_input(void **state)
{
	char path[PATH_MAX + 64], port[16];
	struct run r;

	snprintf(path, sizeof(path), "%s/cryo_coordinator", bindir);
	snprintf(port, sizeof(port), "%d", coord_port);
	{
		char *argv[] = { path, "--port", "abc", NULL };
		run(&r, argv);
		assert_int_equal(r.code, 2);
		assert_string_equal(r.err, "cryo_coordinator: bad port 'abc': expected 0 to 65535\n");
	}
	{
		char *argv[] = { path, "--bogus", NULL };
		run(&r, argv);
		assert_int_equal(r.code, 2);
		assert_non_null(strstr(r.err, "unknown option '--bogus'"));
	}
	{
		char *argv[] = { path, "--port", NULL };
		run(&r, argv);
		assert_int_equal(r.code, 2);
		assert_non_null(strstr(r.err, "needs a value"));
	}
	{
		char *argv[] = { path, "--port", port, "--daemon", NULL };
		run(&r, argv);	/* in use: said before detaching */
		assert_int_equal(r.code, 1);
		assert_non_null(strstr(r.err, "is in use"));
		assert_null(strchr(r.err, '\n') + 1 == r.err + strlen(r.err) ? NULL : "lines");
	}
	{
		char *argv[] = { path, "--help", NULL };
		run(&r, argv);
		assert_int_equal(r.code, 0);
		assert_non_null(strstr(r.out, "Usage: cryo_coordinator"));
	}
	{
		char *argv[] = { path, "--version", NULL };
		run(&r, argv);
		assert_int_equal(r.code, 0);
		assert_true(!strncmp(r.out, "cryo_coordinator ", 17));
	}
}

static void command_bad_input(void **state)
{
	struct run r;

	command(&r, "--frobnicate", NULL, NULL);
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err, "cryo_command: unknown option '--frobnicate' (try --help)\n");
	command(&r, "--interval", "soon", NULL);
	assert_int_equal(r.code, 2);
	command(&r, "--status", "--list", NULL);
	assert_int_equal(r.code, 2);
	command(&r, "--migrate", "nowhere", NULL);
	assert_int_equal(r.code, 2);
	command(&r, "--json", NULL, NULL);
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err, "cryo_command: no command given (try --help)\n");
	command(&r, "--checkpoint", NULL, NULL);
	assert_int_equal(r.code, 1);
	assert_string_equal(r.err, "cryo_command: no process to checkpoint\n");
	command(&r, "--interval", "7", NULL);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.out, "interval checkpoints every 7 s\n");
	command(&r, "--status", NULL, NULL);
	assert_non_null(strstr(r.out, "interval: 7 s\n"));
	command(&r, "--interval", "0", NULL);
	assert_string_equal(r.out, "interval checkpoints off\n");
}

static void interval_checkpoints(void **state)
{
	struct fake f;
	struct coord_barrier b;
	struct run r;

	fake_join(&f, 91);
	command(&r, "--interval", "1", NULL);
	assert_int_equal(r.code, 0);
	fake_expect(&f, COORD_PH_SUSPEND, &b);	/* within WAIT_MS */
	assert_int_equal(b.generation, 1);
	command(&r, "--interval", "0", NULL);
	fake_close(&f);
}

static void exit_on_last(void **state)
{
	struct fake f;
	int st;

	assert_int_equal(coordinator_stop(), 0);
	coordinator_start("--exit-on-last", NULL);
	fake_join(&f, 101);
	fake_close(&f);
	assert_int_equal(waitpid(coord_pid, &st, 0), coord_pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	coord_pid = 0;
}

/* "pid" from --status --json at host:port, or -1. */
static pid_t status_pid(int port)
{
	char addr[64], path[PATH_MAX + 64];
	struct run r;
	const char *p;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(path, sizeof(path), "%s/cryo_command", bindir);
	char *argv[] = { path, "--coord", addr, "--status", "--json", NULL };
	run(&r, argv);
	if (r.code != 0)
		return -1;
	p = strstr(r.out, "\"pid\":");
	return p ? (pid_t)atoi(p + 6) : -1;
}

/* A port nothing listens on now: the kernel's pick for port 0. */
static int free_port(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &sl), 0);
	port = ntohs(in.sin_port);
	close(fd);
	return port;
}

/* Running (a zombie no one reaps, as under a minimal init, is not). */
static int alive(pid_t pid)
{
	char path[64], buf[256], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!slurp(path, buf, sizeof(buf)))
		return 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void daemon_mode_and_ensure_race(void **state)
{
	pid_t kids[3], pid;
	int port, st;

	/* coord_ensure from three processes at once: one coordinator */
	port = free_port();
	for (int i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0)
			_exit(coord_ensure("127.0.0.1", port, bindir) == 0 ? 0 : 1);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	pid = status_pid(port);
	assert_true(pid > 0);
	/* and again: it is found, not started */
	assert_int_equal(coord_ensure("127.0.0.1", port, bindir), 0);
	assert_int_equal(status_pid(port), pid);
	/* a daemon is not our child: stop it by pid and wait for the port */
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (int i = 0; i < WAIT_MS / 10 && alive(pid); i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	assert_false(alive(pid));
	assert_int_equal(status_pid(port), -1);
}

int main(void)
{
	if (util_self_dir(bindir, sizeof(bindir)) < 0)
		return 1;
	/* build/test/unit/coordinator -> build/bin */
	strncat(bindir, "/../../../bin", sizeof(bindir) - strlen(bindir) - 1);
	signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(full_checkpoint_writes_the_script),
		T(bcheckpoint_json),
		T(disconnect_mid_checkpoint_aborts),
		T(restart_group),
		T(kill_and_quit),
		T(migration_one_process),
		T(joiner_during_checkpoint_waits),
		T(garbage_is_dropped),
		T(long_replies_are_split),
		T(coordinator_bad_input),
		T(command_bad_input),
		T(interval_checkpoints),
		T(exit_on_last),
		T(daemon_mode_and_ensure_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
