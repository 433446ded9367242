/* Runs the real cryo_launch from a fake install tree (PREFIX/bin with
 * copies of cryo_launch and cryo_coordinator, PREFIX/lib/libcryo.so an
 * empty stand-in that the dynamic loader ignores with a warning), so what
 * it does is seen from outside: the environment the program gets, the
 * coordinator it starts, exit codes and one-line errors. Every coordinator
 * started here is stopped by pid. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
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

static char bindir[PATH_MAX];	/* build/bin */
static char prefix[64];
static char launch[PATH_MAX];
static char addr[64];
static int port;

struct run {
	int code;
	char out[16384], err[4096];
};

static void read_into(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

static void run(struct run *r, char *const argv[])
{
	int o[2], e[2], st;
	pid_t pid;

	assert_int_equal(pipe2(o, O_CLOEXEC), 0);
	assert_int_equal(pipe2(e, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], argv);
		_exit(126);
	}
	close(o[1]);
	close(e[1]);
	read_into(o[0], r->out, sizeof(r->out));
	read_into(e[0], r->err, sizeof(r->err));
	close(o[0]);
	close(e[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int free_port(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &sl), 0);
	p = ntohs(in.sin_port);
	close(fd);
	return p;
}

/* "pid" from cryo_command --status --json, or -1 if nothing answers. */
static pid_t coordinator_pid(void)
{
	char path[PATH_MAX + 32];
	struct run r;
	const char *p;

	snprintf(path, sizeof(path), "%s/cryo_command", bindir);
	char *argv[] = { path, "--coord", addr, "--status", "--json", NULL };
	run(&r, argv);
	if (r.code != 0)
		return -1;
	p = strstr(r.out, "\"pid\":");
	return p ? (pid_t)atoi(p + 6) : -1;
}

static int alive(pid_t pid)
{
	char path[64], buf[256], *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	read_into(fd, buf, sizeof(buf));
	close(fd);
	p = strrchr(buf, ')');
	return p && p[2] != 'Z' && p[2] != 'X';
}

static void stop_coordinator(void)
{
	pid_t pid = coordinator_pid();

	if (pid <= 0)
		return;
	assert_int_equal(kill(pid, SIGTERM), 0);
	for (int i = 0; i < 500 && alive(pid); i++) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	assert_false(alive(pid));
}

static int setup(void **state)
{
	char cmd[8 * PATH_MAX];

	snprintf(prefix, sizeof(prefix), "/tmp/cryo-test-launch-XXXXXX");
	assert_non_null(mkdtemp(prefix));
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s/bin' '%s/lib' && cp '%s/cryo_launch' '%s/cryo_coordinator' '%s/bin/'"
		 " && : > '%s/lib/libcryo.so'", prefix, prefix, bindir, bindir, prefix,
		 prefix);
	assert_int_equal(system(cmd), 0);
	snprintf(launch, sizeof(launch), "%s/bin/cryo_launch", prefix);
	port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	unsetenv("CRYO_CKPT_DIR");
	unsetenv("CRYO_CKPT_INTERVAL");
	unsetenv("CRYO_EXIT_AFTER_CKPT");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX];

	stop_coordinator();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", prefix);
	return system(cmd) == 0 ? 0 : -1;
}

static void has_line(const char *text, const char *line)
{
	char want[PATH_MAX + 64];
	size_t n = strlen(line);

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (!strncmp(text, line, n) && text[n] == '\n')
		return;
	if (!strstr(text, want))
		fail_msg("no line '%s' in:\n%s", line, text);
}

static void starts_a_coordinator_and_sets_the_environment(void **state)
{
	char ckdir[PATH_MAX], line[2 * PATH_MAX];
	struct stat st;
	struct run r;

	snprintf(ckdir, sizeof(ckdir), "%s/ck/sub", prefix);
	setenv("LD_PRELOAD", "/nonexistent-user.so", 1);
	char *argv[] = { launch, "--coord", addr, "--ckptdir", ckdir, "--interval", "5",
			 "--exit-after-ckpt", "/usr/bin/env", NULL };
	run(&r, argv);
	unsetenv("LD_PRELOAD");
	assert_int_equal(r.code, 0);
	snprintf(line, sizeof(line), "LD_PRELOAD=%s/lib/libcryo.so:/nonexistent-user.so", prefix);
	has_line(r.out, line);
	has_line(r.out, "CRYO_COORD_HOST=127.0.0.1");
	snprintf(line, sizeof(line), "CRYO_COORD_PORT=%d", port);
	has_line(r.out, line);
	snprintf(line, sizeof(line), "CRYO_CKPT_DIR=%s", ckdir);
	has_line(r.out, line);
	has_line(r.out, "CRYO_CKPT_INTERVAL=5");
	has_line(r.out, "CRYO_EXIT_AFTER_CKPT=1");
	assert_int_equal(stat(ckdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	/* the coordinator it started took the directory and interval */
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cryo_command", bindir);
	char *cargv[] = { path, "--coord", addr, "--status", "--json", NULL };
	run(&r, cargv);
	assert_int_equal(r.code, 0);
	snprintf(line, sizeof(line), "\"ckptdir\":\"%s\"", ckdir);
	assert_non_null(strstr(r.out, line));
	assert_non_null(strstr(r.out, "\"interval\":5"));

	/* --join finds it; the exit status is the program's; --interval reaches it */
	char *jargv[] = { launch, "--coord", addr, "--join", "--interval", "9", "/bin/sh", "-c",
			  "echo \"$0 $1\"; exit 7", "arg0", "arg1", NULL };
	run(&r, jargv);
	assert_int_equal(r.code, 7);
	assert_string_equal(r.out, "arg0 arg1\n");
	run(&r, cargv);
	assert_non_null(strstr(r.out, "\"interval\":9"));

	/* --new-coordinator on a taken port: the coordinator's one line */
	char *nargv[] = { launch, "--coord", addr, "--new-coordinator", "/bin/true", NULL };
	run(&r, nargv);
	assert_int_equal(r.code, 1);
	assert_non_null(strstr(r.err, "is in use"));
	assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err));
}

static void no_such_program_starts_nothing(void **state)
{
	struct run r;
	char *argv[] = { launch, "--coord", addr, "no-such-program-xyz", NULL };

	run(&r, argv);
	assert_int_equal(r.code, 127);
	assert_string_equal(r.err, "cryo_launch: no-such-program-xyz: no such program\n");
	assert_int_equal(coordinator_pid(), -1);
}

static void join_without_coordinator(void **state)
{
	struct run r;
	char msg[128];
	char *argv[] = { launch, "--coord", addr, "--join", "/bin/true", NULL };

	run(&r, argv);
	assert_int_equal(r.code, 1);
	snprintf(msg, sizeof(msg), "cryo_launch: no coordinator at %s (--join)\n", addr);
	assert_string_equal(r.err, msg);
}

static void new_coordinator(void **state)
{
	struct run r;
	char *argv[] = { launch, "--coord", addr, "--new-coordinator", "/bin/true", NULL };

	run(&r, argv);
	assert_int_equal(r.code, 0);
	assert_true(coordinator_pid() > 0);
}

static void missing_library(void **state)
{
	char lib[PATH_MAX];
	struct run r;
	char *argv[] = { launch, "--coord", addr, "/bin/true", NULL };

	snprintf(lib, sizeof(lib), "%s/lib/libcryo.so", prefix);
	assert_int_equal(unlink(lib), 0);
	run(&r, argv);
	assert_int_equal(r.code, 1);
	assert_non_null(strstr(r.err, "cryo_launch: cannot find libcryo.so at "));
	assert_int_equal(coordinator_pid(), -1);
}

static void usage_errors(void **state)
{
	struct run r;
	char *a1[] = { launch, NULL };
	char *a2[] = { launch, "--coord", "x:0", "/bin/true", NULL };
	char *a3[] = { launch, "--help", NULL };

	run(&r, a1);
	assert_int_equal(r.code, 2);
	assert_string_equal(r.err, "cryo_launch: no program to launch (try --help)\n");
	run(&r, a2);
	assert_int_equal(r.code, 2);
	run(&r, a3);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "Usage: cryo_launch"));
}

int main(void)
{
	if (util_self_dir(bindir, sizeof(bindir)) < 0)
		return 1;
	strncat(bindir, "/../../../bin", sizeof(bindir) - strlen(bindir) - 1);
	signal(SIGPIPE, SIG_IGN);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(starts_a_coordinator_and_sets_the_environment),
		T(no_such_program_starts_nothing),
		T(join_without_coordinator),
		T(new_coordinator),
		T(missing_library),
		T(usage_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
