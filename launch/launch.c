/* cryo_launch: runs a program under cryo. It finds libcryo.so beside
 * itself (<bindir>/../lib/libcryo.so, the same in the build tree and in an
 * installed PREFIX), finds or starts the coordinator, sets the environment
 * the library reads (LD_PRELOAD, CRYO_COORD_HOST/PORT, CRYO_CKPT_DIR,
 * CRYO_CKPT_INTERVAL, CRYO_EXIT_AFTER_CKPT, CRYO_STDIO) and execs the program: no fork,
 * so its stdio, arguments, environment, pid and exit status are its own.
 * The decisions live in options.c; this file acts on them. Problems are
 * reported as one "cryo_launch: ..." line on stderr: exit 2 for bad usage,
 * 127 for no such program (checked first, before anything is started), 126
 * for a program that cannot be executed, 1 for anything else. */
#define LOG_PREFIX ""
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "launch/options.h"
#include "mtcp/log.h"
#include "mtcp/util.h"

static void usage(void)
{
	printf("Usage: cryo_launch [OPTION]... PROGRAM [ARG]...\n"
	       "Runs PROGRAM under cryo, so that cryo_command can checkpoint it.\n"
	       "\n"
	       "  --coord HOST[:PORT]  the coordinator (default CRYO_COORD_HOST/CRYO_COORD_PORT,\n"
	       "                       else %s:%d); started in the background if\n"
	       "                       none answers there and HOST is this machine\n"
	       "  --join               fail if no coordinator answers (start none)\n"
	       "  --new-coordinator    start a new coordinator; fail if the port is taken\n"
	       "  --ckptdir DIR        checkpoint directory (created if missing)\n"
	       "  --interval SECS      checkpoint every SECS seconds (0 = never); sets the\n"
	       "                       coordinator's interval, whether started or found\n"
	       "  --exit-after-ckpt    exit after the first checkpoint (with LM_DEST_IP and\n"
	       "                       LM_DEST_PORT: migrate there)\n"
	       "  --help, --version\n"
	       "Options end at the first argument that is not one, or at \"--\".\n",
	       COORD_DEFAULT_HOST, COORD_DEFAULT_PORT);
}

static void set(const char *name, const char *value)
{
	if (setenv(name, value, 1) < 0)
		util_die(1, "cannot set %s: %s", name, strerror(errno));
}

/* CRYO_STDIO: what stdin, stdout and stderr are outside the computation
 * ("DEV:INO" each, "-" if closed), so that after a restart the library can
 * tell the user's terminal or files (replaced by the restarting side's)
 * from pipes and files of the computation's own (restored). */
static void set_stdio_ids(void)
{
	char buf[128];
	size_t n = 0;

	buf[0] = '\0';
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;

		if (fstat(fd, &st) == 0)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%llx:%llx", fd ? " " : "",
					      (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
		else
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s-", fd ? " " : "");
	}
	set("CRYO_STDIO", buf);
}

static int is_loopback(const char *host)
{
	return !strncmp(host, "127.", 4) || !strcmp(host, "localhost") || !strcmp(host, "::1");
}

/* mkdir -p with mode 0700 for what is created. */
static void make_dirs(const char *dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		util_die(2, "checkpoint directory path too long: %s", dir);
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; ; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) < 0 && errno != EEXIST)
				util_die(1, "cannot create checkpoint directory %s: %s", buf,
				     strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
}

static void setup_ckptdir(const char *given)
{
	char abs[PATH_MAX];
	struct stat st;

	if (!given || !*given)
		return;	/* the coordinator's own directory */
	make_dirs(given);
	if (!realpath(given, abs))
		util_die(1, "checkpoint directory %s: %s", given, strerror(errno));
	if (stat(abs, &st) < 0 || !S_ISDIR(st.st_mode))
		util_die(1, "checkpoint directory %s is not a directory", given);
	set("CRYO_CKPT_DIR", abs);
}

/* --new-coordinator: start one in the background, and say why not if it
 * cannot (its own stderr line, e.g. the port is in use). */
static void start_new(const char *bindir, const struct launch_opts *o, const char *addr)
{
	char path[PATH_MAX + 32], port[16], interval[24];
	char *argv[12];
	int n = 0, st;
	pid_t pid;

	if (!is_loopback(o->host) && strcmp(o->host, "0.0.0.0")) {
		char me[256] = "";

		gethostname(me, sizeof(me) - 1);
		if (strcmp(o->host, me))
			util_die(1, "--new-coordinator: %s is not this host", o->host);
	}
	snprintf(path, sizeof(path), "%s/cryo_coordinator", bindir);
	snprintf(port, sizeof(port), "%d", o->port);
	argv[n++] = path;
	argv[n++] = "--daemon";
	argv[n++] = "--port";
	argv[n++] = port;
	if (!is_loopback(o->host)) {
		argv[n++] = "--bind";
		argv[n++] = "0.0.0.0";
	}
	if (o->interval >= 0) {
		snprintf(interval, sizeof(interval), "%ld", o->interval);
		argv[n++] = "--interval";
		argv[n++] = interval;
	}
	argv[n] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		util_die(1, "fork: %s", strerror(errno));
	if (pid == 0) {
		unsetenv("LD_PRELOAD");
		execv(path, argv);
		fprintf(stderr, "cryo_launch: cannot run %s: %s\n", path, strerror(errno));
		_exit(1);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			util_die(1, "waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
		exit(1);	/* it said why (e.g. the port is in use) */
	if (!WIFEXITED(st))
		util_die(1, "could not start a new coordinator at %s", addr);
}

static void send_interval(const struct launch_opts *o, const char *addr)
{
	struct coord_command cmd = { .op = COORD_OP_INTERVAL, .arg = o->interval };
	struct coord_reply *r;
	struct coord_hdr hdr;
	char buf[1024];
	int fd;

	fd = coord_open_cmd(o->host, o->port, 3000);
	if (fd < 0)
		util_die(1, "no coordinator at %s", addr);
	if (coord_send(fd, COORD_COMMAND, &cmd, sizeof(cmd)) < 0 ||
	    coord_recv(fd, &hdr, buf, sizeof(buf), 5000) != 1 || hdr.type != COORD_REPLY ||
	    hdr.len < sizeof(*r))
		util_die(1, "cannot set the interval of the coordinator at %s", addr);
	r = (struct coord_reply *)buf;
	if (r->status != COORD_OK)
		util_die(1, "the coordinator at %s refused interval %ld", addr, o->interval);
	close(fd);
}

int main(int argc, char **argv)
{
	char err[512], bindir[PATH_MAX], lib[PATH_MAX + 32], libabs[PATH_MAX];
	char prog[PATH_MAX], addr[300], port[16], preload[8192], interval[24];
	struct launch_opts o;
	int fd;

	log_set_ident("cryo_launch");
	log_init();
	switch (launch_parse(argc, argv, &o, err, sizeof(err))) {
	case LAUNCH_HELP:
		usage();
		return 0;
	case LAUNCH_VERSION:
		printf("cryo_launch %s\n", CRYO_VERSION);
		return 0;
	case LAUNCH_USAGE_ERR:
		util_die(2, "%s", err);
	case LAUNCH_RUN:
		break;
	}
	if (launch_find_program(argv[o.prog], getenv("PATH"), prog, sizeof(prog)) < 0) {
		if (errno == EACCES)
			util_die(126, "%s: permission denied", argv[o.prog]);
		util_die(127, "%s: no such program", argv[o.prog]);
	}
	if (util_self_dir(bindir, sizeof(bindir)) < 0)
		return 1;
	snprintf(lib, sizeof(lib), "%s/../lib/libcryo.so", bindir);
	if (!realpath(lib, libabs) || access(libabs, R_OK) < 0)
		util_die(1, "cannot find libcryo.so at %s: %s", lib, strerror(errno));
	if (strchr(o.host, ':'))
		snprintf(addr, sizeof(addr), "[%s]:%d", o.host, o.port);
	else
		snprintf(addr, sizeof(addr), "%s:%d", o.host, o.port);

	/* what a coordinator started below inherits too */
	setup_ckptdir(o.ckptdir ? o.ckptdir : getenv("CRYO_CKPT_DIR"));
	if (o.interval >= 0) {
		snprintf(interval, sizeof(interval), "%ld", o.interval);
		set("CRYO_CKPT_INTERVAL", interval);
	}

	switch (o.mode) {
	case LAUNCH_JOIN:
		fd = coord_open_cmd(o.host, o.port, 3000);
		if (fd < 0)
			util_die(1, "no coordinator at %s (--join)", addr);
		close(fd);
		break;
	case LAUNCH_NEW:
		start_new(bindir, &o, addr);
		break;
	case LAUNCH_ENSURE:
		if (coord_ensure(o.host, o.port, bindir) < 0)
			return 1;	/* it said why */
		break;
	}
	if (o.interval >= 0 && o.mode != LAUNCH_NEW)
		send_interval(&o, addr);

	snprintf(port, sizeof(port), "%d", o.port);
	set("CRYO_COORD_HOST", o.host);
	set("CRYO_COORD_PORT", port);
	if (o.exit_after)
		set("CRYO_EXIT_AFTER_CKPT", "1");
	set_stdio_ids();
	if (launch_preload(libabs, getenv("LD_PRELOAD"), preload, sizeof(preload)) < 0)
		util_die(1, "LD_PRELOAD too long");
	set("LD_PRELOAD", preload);
	execv(prog, argv + o.prog);
	util_die(126, "cannot execute %s: %s", argv[o.prog], strerror(errno));
}
