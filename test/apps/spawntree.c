/* spawntree: children made by vfork + exec, posix_spawn and system(),
 * and a popen()ed one, across checkpoint, kill and restart cycles
 * (test/integration/spawntree.sh).
 *
 * The root starts A (vfork, then execl of this program), B (posix_spawn)
 * and F (fork), which runs system("exec spawntree child C ..."), so that C
 * is F's child. Each child announces itself to the root with
 * sigqueue(ANSWER, its getpid()); A's and B's must be what vfork and
 * posix_spawn returned. Before the first cycle the root also reads one
 * line from popen("spawntree probe"). At each cycle the root checks
 * itself, sends SIGUSR1 to A, B and C, and each checks itself (same pid,
 * same parent, no CRYO_* in its environment) and answers ANSWER with its
 * pid. At the end a SIGUSR1 carrying 1 makes them exit (A 10, B 11, C 13,
 * F with system()'s status of C) and the root reaps A, B and F.
 *
 * With $SPAWN_PROBE_FILE set, every child and the probe append a line
 * saying whether libcryo.so is mapped and which coordinator port their
 * environment had (/proc/self/environ: the program's own view has no
 * CRYO_*): the script checks they run under cryo with its coordinator.
 *
 *   spawntree                           the root
 *   spawntree child NAME ROOT CODE      (internal)
 *   spawntree probe                     (internal) */
#include "../lib/harness.h"
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

/* Answers to the root: a real-time signal, so that answers sent at once
 * are all queued (a second SIGUSR2 pending would be lost). */
#define ANSWER (SIGRTMIN + 2)

static char self_path[4096];

static void block(int sig)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

static int wait_info(int sig, siginfo_t *info)
{
	struct timespec slice = { 1, 0 };
	sigset_t s;
	long waited = 0;
	int r;

	sigemptyset(&s);
	sigaddset(&s, sig);
	for (;;) {
		r = sigtimedwait(&s, info, &slice);
		if (r == sig)
			return 0;
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (errno == EAGAIN && ++waited > 300)
				t_fail("no signal %d in 300 s", sig);
			continue;
		}
		t_fail("sigtimedwait: %s", strerror(errno));
	}
}

static void env_clean(const char *who)
{
	for (char **e = environ; *e; e++)
		T_CHECK(strncmp(*e, "CRYO_", 5) || !strncmp(*e, "CRYO_TEST_", 10), "%s sees %s", who, *e);
}

/* One line for the script: under cryo, and with which coordinator. */
static void probe_line(const char *who)
{
	const char *file = getenv("SPAWN_PROBE_FILE");
	char buf[65536], line[256], *p, port[32] = "none";
	int fd, lib = 0;
	ssize_t n;
	FILE *f;

	if (!file || !*file)
		return;
	fd = open("/proc/self/environ", O_RDONLY);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	for (p = buf; n > 0 && p < buf + n; p += strlen(p) + 1)
		if (!strncmp(p, "CRYO_COORD_PORT=", 16))
			snprintf(port, sizeof(port), "%s", p + 16);
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		lib |= strstr(line, "libcryo.so") != NULL;
	if (f)
		fclose(f);
	f = fopen(file, "a");
	T_CHECK(f != NULL, "open %s: %s", file, strerror(errno));
	fprintf(f, "%s libcryo=%d port=%s\n", who, lib, port);
	fclose(f);
}

static int child_main(const char *name, pid_t root, int code)
{
	pid_t me = getpid(), parent = getppid();
	union sigval v = { .sival_int = me };
	siginfo_t info;

	block(ANSWER);
	probe_line(name);
	env_clean(name);
	T_CHECK(sigqueue(root, ANSWER, v) == 0, "%s: sigqueue to the root: %s", name, strerror(errno));
	for (;;) {
		wait_info(SIGUSR1, &info);
		if (info.si_value.sival_int == 1)
			return code;
		T_CHECK(getpid() == me, "%s: getpid %d, was %d", name, getpid(), me);
		T_CHECK(getppid() == parent, "%s: getppid %d, was %d", name, getppid(), parent);
		T_CHECK(info.si_pid == root, "%s: signal from %d, root is %d", name, info.si_pid, root);
		env_clean(name);
		T_CHECK(sigqueue(root, ANSWER, v) == 0, "%s: sigqueue: %s", name, strerror(errno));
	}
}

/* Waits for n answers; each must name one of pids[] (0: learn it). */
static void gather(pid_t *pids, int n, const char *when)
{
	int got = 0, seen[8] = { 0 };

	while (got < n) {
		siginfo_t info;
		int i;

		wait_info(ANSWER, &info);
		for (i = 0; i < n; i++)
			if (!seen[i] && (pids[i] == info.si_value.sival_int || !pids[i]))
				break;
		T_CHECK(i < n, "%s: unexpected answer from %d", when, info.si_value.sival_int);
		T_CHECK(info.si_pid == info.si_value.sival_int, "%s: si_pid %d, child says %d", when,
			info.si_pid, info.si_value.sival_int);
		pids[i] = info.si_value.sival_int;
		seen[i] = 1;
		got++;
	}
}

static void tell(pid_t pid, int v)
{
	union sigval val = { .sival_int = v };

	T_CHECK(sigqueue(pid, SIGUSR1, val) == 0, "sigqueue to %d: %s", pid, strerror(errno));
}

static int reap(pid_t pid)
{
	int st;
	pid_t got = waitpid(pid, &st, 0);

	T_CHECK(got == pid, "waitpid(%d) returned %d: %s", pid, got, strerror(errno));
	T_CHECK(WIFEXITED(st), "child %d status %#x", pid, st);
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	char rootbuf[16], cmd[8400], line[128];
	char *bargv[] = { "spawntree", "child", "B", rootbuf, "11", NULL };
	pid_t me, a, b, f, kids[3];
	FILE *p;
	int k;

	t_init(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "probe")) {
		probe_line("popen");
		env_clean("popen");
		printf("probe: environment clean\n");
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "child"))
		return child_main(argv[2], (pid_t)atoi(argv[3]), atoi(argv[4]));
	T_CHECK(readlink("/proc/self/exe", self_path, sizeof(self_path) - 1) > 0, "readlink: %s",
		strerror(errno));
	block(ANSWER);
	me = getpid();
	snprintf(rootbuf, sizeof(rootbuf), "%d", me);
	env_clean("root");

	snprintf(cmd, sizeof(cmd), "exec '%s' probe", self_path);
	p = popen(cmd, "r");
	T_CHECK(p != NULL, "popen: %s", strerror(errno));
	T_CHECK(fgets(line, sizeof(line), p) != NULL, "nothing from the popen()ed program");
	T_CHECK(pclose(p) == 0, "pclose");
	printf("popen: %s", line);

	a = vfork();
	if (a == 0) {
		execl(self_path, "spawntree", "child", "A", rootbuf, "10", (char *)NULL);
		_exit(127);
	}
	T_CHECK(a > 0, "vfork: %s", strerror(errno));
	T_CHECK(posix_spawn(&b, self_path, NULL, NULL, bargv, environ) == 0, "posix_spawn failed");
	f = fork();
	T_CHECK(f >= 0, "fork: %s", strerror(errno));
	if (f == 0) {
		int st;

		snprintf(cmd, sizeof(cmd), "exec '%s' child C %d 13", self_path, me);
		st = system(cmd);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
	}
	kids[0] = a;
	kids[1] = b;
	kids[2] = 0;	/* C: its pid comes with its answer */
	gather(kids, 3, "start");
	printf("three children up: vfork+exec, posix_spawn, system\n");
	for (k = 1; k <= 3; k++) {
		t_ready(k);
		T_CHECK(getpid() == me, "root: getpid %d, was %d", getpid(), me);
		env_clean("root");
		for (int i = 0; i < 3; i++)
			tell(kids[i], 0);
		gather(kids, 3, "cycle");
		printf("cycle %d: the three children answered\n", k);
	}
	for (int i = 0; i < 3; i++)
		tell(kids[i], 1);
	printf("vfork child exited %d\n", reap(a));
	printf("posix_spawn child exited %d\n", reap(b));
	printf("system() in a child exited %d\n", reap(f));
	t_pass();
}
