/* pidchain: a fork / exec / waitpid chain three levels deep across
 * checkpoint, kill and restart cycles (test/integration/pidchain.sh).
 *
 * Level 0 (the launched program) forks and execs this program as level 1,
 * which forks and execs level 2. Each level keeps, and checks after every
 * restart, what the program knows: its pid (getpid, gettid,
 * syscall(SYS_getpid), /proc/<getpid()>/status readable and the same
 * process as /proc/self/status), its parent's pid (passed down in argv;
 * not for level 0, whose parent is whoever restarted it), its child's (what fork
 * returned: waitpid(child, WNOHANG) is 0, kill(child, 0) works), and an
 * environment without CRYO_* variables. In cycle 2, after the restart,
 * level 1 execs itself again and must come back as the same process: same
 * pid, same parent, same child still its own.
 *
 * The cycles run top down: level 0 returns from t_ready(k), checks itself,
 * prints one line, and sends SIGUSR1 to level 1, which does the same with
 * level 2; level 2 answers SIGUSR2 upwards. After cycle 3 a last SIGUSR1
 * ends the chain: level 2 exits 12, level 1 reaps it and exits 11, level 0
 * reaps level 1 and checks both statuses.
 *
 *   pidchain                         level 0
 *   pidchain LEVEL PARENT [CHILD CYCLE]   (internal) */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

extern char **environ;

static int level;
static pid_t me, parent, child;
static char self_path[4096];	/* /proc/self/exe names cryo_restart after a restart */

static void block_usr2(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

/* Waits for sig (blocked), across restarts. */
static void wait_sig(int sig)
{
	struct timespec slice = { 1, 0 };
	sigset_t s;
	long waited = 0;
	int r;

	sigemptyset(&s);
	sigaddset(&s, sig);
	for (;;) {
		r = sigtimedwait(&s, NULL, &slice);
		if (r == sig)
			return;
		if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (errno == EAGAIN && ++waited > 300)
				t_fail("level %d: no signal %d in 300 s", level, sig);
			continue;
		}
		t_fail("level %d: sigtimedwait: %s", level, strerror(errno));
	}
}

/* The Tgid: line of a status file (the kernel's pid). */
static long tgid_of(const char *path)
{
	char buf[4096];
	ssize_t n;
	char *t;
	int fd = open(path, O_RDONLY);

	T_CHECK(fd >= 0, "level %d: open %s: %s", level, path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	T_CHECK(n > 0, "level %d: read %s", level, path);
	buf[n] = '\0';
	t = strstr(buf, "\nTgid:");
	T_CHECK(t != NULL, "level %d: no Tgid in %s", level, path);
	return atol(t + 6);
}

static void check_self(int cycle)
{
	char path[64];

	T_CHECK(getpid() == me, "level %d cycle %d: getpid %d, was %d", level, cycle, getpid(), me);
	T_CHECK(syscall(SYS_getpid) == me, "level %d: syscall(SYS_getpid) %ld, getpid %d", level,
		syscall(SYS_getpid), me);
	T_CHECK(gettid() == me, "level %d: gettid %d", level, gettid());
	if (parent) {
		T_CHECK(getppid() == parent, "level %d cycle %d: getppid %d, parent %d", level, cycle,
			getppid(), parent);
		T_CHECK(syscall(SYS_getppid) == parent, "level %d: syscall(SYS_getppid) %ld", level,
			syscall(SYS_getppid));
	}
	snprintf(path, sizeof(path), "/proc/%d/status", getpid());
	T_CHECK(tgid_of(path) == tgid_of("/proc/self/status"), "level %d: %s is another process's", level,
		path);
	for (char **e = environ; *e; e++)
		T_CHECK(strncmp(*e, "CRYO_", 5) || !strncmp(*e, "CRYO_TEST_", 10), "level %d: the program sees %s",
			level, *e);
	T_CHECK(getenv("CRYO_COORD_PORT") == NULL, "level %d: getenv sees CRYO_COORD_PORT", level);
	if (child) {
		int st;

		T_CHECK(waitpid(child, &st, WNOHANG) == 0, "level %d: child %d gone or not ours (%s)", level,
			child, strerror(errno));
		T_CHECK(kill(child, 0) == 0, "level %d: kill(child %d, 0): %s", level, child, strerror(errno));
	}
}

static pid_t start_child(void)
{
	char lv[16], pp[16];
	pid_t c;

	snprintf(lv, sizeof(lv), "%d", level + 1);
	snprintf(pp, sizeof(pp), "%d", me);
	c = fork();
	T_CHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0) {
		execl(self_path, "pidchain", lv, pp, (char *)NULL);
		t_fail("level %d: exec: %s", level + 1, strerror(errno));
	}
	return c;
}

/* Level 1 execs itself again after a restart: same process, same child. */
static void reexec(int cycle)
{
	char pp[16], cc[16], cy[16];

	snprintf(pp, sizeof(pp), "%d", parent);
	snprintf(cc, sizeof(cc), "%d", child);
	snprintf(cy, sizeof(cy), "%d", cycle);
	execl(self_path, "pidchain", "1", pp, cc, cy, (char *)NULL);
	t_fail("level 1: re-exec: %s", strerror(errno));
}

static int finish_child(int want)
{
	int st;
	pid_t got = waitpid(child, &st, 0);

	T_CHECK(got == child, "level %d: waitpid returned %d, child is %d (%s)", level, got, child,
		strerror(errno));
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == want, "level %d: child status %#x", level, st);
	return WEXITSTATUS(st);
}

/* Levels 1 and 2. */
static int inner(int argc, char **argv)
{
	int cycle = 1;

	level = atoi(argv[1]);
	parent = (pid_t)atoi(argv[2]);
	me = getpid();
	block_usr2();
	if (argc > 4) {
		/* back from the re-exec of cycle cycle */
		child = (pid_t)atoi(argv[3]);
		cycle = atoi(argv[4]);
		check_self(cycle);
		printf("level 1 cycle %d: the same process after exec\n", cycle);
		kill(child, SIGUSR1);
		wait_sig(SIGUSR2);
		kill(parent, SIGUSR2);
		cycle++;
	} else {
		if (level < 2)
			child = start_child();
		check_self(0);
		if (level < 2)
			wait_sig(SIGUSR2);	/* the level below is up */
		kill(parent, SIGUSR2);
	}
	for (; cycle <= 3; cycle++) {
		wait_sig(SIGUSR1);
		check_self(cycle);
		printf("level %d cycle %d: pid, parent%s and environment kept\n", level, cycle,
		       child ? ", child" : "");
		if (level == 1 && cycle == 2)
			reexec(cycle);
		if (child) {
			kill(child, SIGUSR1);
			wait_sig(SIGUSR2);
		}
		kill(parent, SIGUSR2);
	}
	wait_sig(SIGUSR1);
	if (child) {
		kill(child, SIGUSR1);
		printf("level %d: child exited %d\n", level, finish_child(12));
		return 11;
	}
	return 12;
}

int main(int argc, char **argv)
{
	int k;

	t_init(argc, argv);
	T_CHECK(readlink("/proc/self/exe", self_path, sizeof(self_path) - 1) > 0, "readlink: %s",
		strerror(errno));
	if (argc > 2)
		return inner(argc, argv);
	me = getpid();
	parent = 0;	/* whoever restarts it */
	block_usr2();
	child = start_child();
	wait_sig(SIGUSR2);
	check_self(0);
	printf("three levels up\n");
	for (k = 1; k <= 3; k++) {
		t_ready(k);
		check_self(k);
		printf("level 0 cycle %d: pid, parent, child and environment kept\n", k);
		kill(child, SIGUSR1);
		wait_sig(SIGUSR2);
	}
	kill(child, SIGUSR1);
	printf("level 0: child exited %d\n", finish_child(11));
	t_pass();
}
