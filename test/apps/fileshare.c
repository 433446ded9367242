/* fileshare: open file descriptions shared by a parent and its child
 * across checkpoint/restart. Before fork the parent opens, in the work
 * directory (argv[1], else $TMPDIR, else /tmp):
 * - s: shared.txt, O_RDWR without O_APPEND: one offset for both processes;
 * - del: a file deleted at once, O_RDWR, also written at its shared offset;
 * - nul: /dev/null; dir: the work directory;
 * - pst: /proc/self/status of the parent (DMTCP's procfd1): whichever
 *   process reopens it after a restart must name the parent's new pid.
 * The child also opens /proc/PPID/status on its own: after a restart it
 * must name the parent's new pid too. Both are checked against the
 * parent's F_SETOWN on s (restored as the parent's new kernel pid).
 * The child adds fd 11 as a dup of s and moves del to fd 12 (other numbers
 * than the parent's, same descriptions). Each also opens shared.txt on its
 * own (a description of its own, with its own offset).
 * Parent and child take turns (SIGUSR2 back and forth): each turn writes
 * one fixed-size record to s and one to del, and checks that the shared
 * offsets are where the other process left them; each reader reads behind.
 * If after a restart the two had separate descriptions (or the child's own
 * one were merged with the shared one), records would overwrite each other
 * or offsets would disagree. In the end the parent reads both files back
 * whole, and reaps the child (exit 0 if all its checks passed). */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define REC 32
#define ROUNDS 20		/* turns of each process per cycle */
#define NCYCLES 4

static int s, del, nul, dir, own, pst, ppst;
static long own_pos;		/* what this process's own reader took */

static void record(char *buf, int n, const char *who)
{
	memset(buf, '.', REC);
	snprintf(buf, REC, "%s record %d", who, n);
	buf[REC - 1] = '\n';
}

/* The Tgid: line of a /proc/PID/status fd. */
static int tgid_of(int fd)
{
	char buf[2048], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	T_CHECK(n > 0, "read a status file: %s", strerror(errno));
	buf[n] = '\0';
	p = strstr(buf, "\nTgid:");
	T_CHECK(p != NULL, "no Tgid in a status file");
	return atoi(p + 6);
}

/* Takes one turn: checks the shared offsets, writes record n. */
static void turn(int sfd, int dfd, int n, const char *who)
{
	char buf[REC];

	T_CHECK(lseek(sfd, 0, SEEK_CUR) == (off_t)n * REC, "%s: shared.txt offset %ld before record %d", who,
		(long)lseek(sfd, 0, SEEK_CUR), n);
	T_CHECK(lseek(dfd, 0, SEEK_CUR) == 4096 + (off_t)n * REC, "%s: deleted file offset %ld before record %d",
		who, (long)lseek(dfd, 0, SEEK_CUR), n);
	record(buf, n, who);
	T_CHECK(write(sfd, buf, REC) == REC, "%s: write shared.txt: %s", who, strerror(errno));
	T_CHECK(write(dfd, buf, REC) == REC, "%s: write the deleted file: %s", who, strerror(errno));
	T_CHECK(write(nul, buf, REC) == REC, "%s: write /dev/null", who);
	T_CHECK(tgid_of(pst) == fcntl(s, F_GETOWN), "%s: the parent's status names pid %d, not %d", who,
		tgid_of(pst), fcntl(s, F_GETOWN));
}

/* This process's own reader takes every record written so far. */
static void read_own(int upto, const char *who)
{
	char buf[REC], want[REC];

	T_CHECK(lseek(own, 0, SEEK_CUR) == own_pos, "%s: own reader at %ld, want %ld", who,
		(long)lseek(own, 0, SEEK_CUR), own_pos);
	while (own_pos < (off_t)upto * REC) {
		int n = (int)(own_pos / REC);

		T_CHECK(read(own, buf, REC) == REC, "%s: own reader at record %d", who, n);
		record(want, n, n % 2 ? "child" : "parent");
		T_CHECK(!memcmp(buf, want, REC), "%s: record %d reads '%.*s'", who, n, REC - 1, buf);
		own_pos += REC;
	}
}

static void wait_turn(void)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	do
		sig = sigwaitinfo(&set, NULL);	/* EINTR after a restart: wait again */
	while (sig < 0 && errno == EINTR);
	T_CHECK(sig == SIGUSR2, "sigwaitinfo: %s", strerror(errno));
}

static int child_main(void)
{
	char path[64];
	int sfd11, dfd12;
	struct stat st;

	sfd11 = dup2(s, 11);
	dfd12 = dup2(del, 12);
	T_CHECK(sfd11 == 11 && dfd12 == 12 && close(del) == 0, "child fds");
	own = openat(dir, "shared.txt", O_RDONLY);
	T_CHECK(own >= 0, "child: open its own reader");
	snprintf(path, sizeof(path), "/proc/%d/status", (int)getppid());
	ppst = open(path, O_RDONLY);
	T_CHECK(ppst >= 0, "child: open %s", path);
	for (int n = 1; n < 2 * ROUNDS * NCYCLES; n += 2) {
		wait_turn();
		/* alternate the fd numbers: both are the one description */
		turn(n % 4 == 1 ? s : 11, 12, n, "child");
		if (n % 8 == 1)
			read_own(n, "child");
		T_CHECK(fstat(12, &st) == 0 && st.st_nlink == 0, "child: the deleted file has a name");
		T_CHECK(tgid_of(ppst) == fcntl(s, F_GETOWN), "child: /proc/PPID/status names pid %d, not %d",
			tgid_of(ppst), fcntl(s, F_GETOWN));
		T_CHECK(fcntl(11, F_GETOWN) > 0 && fcntl(12, F_GETOWN) == 0, "child: F_GETOWN %d/%d",
			fcntl(11, F_GETOWN), fcntl(12, F_GETOWN));
		T_CHECK(kill(getppid(), SIGUSR2) == 0, "child: signal the parent");
	}
	read_own(2 * ROUNDS * NCYCLES, "child");
	return 0;
}

int main(int argc, char **argv)
{
	char path[4200], buf[REC], want[REC];
	sigset_t set;
	pid_t child;
	int st, n = 0;

	t_init(argc, argv);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	snprintf(path, sizeof(path), "%s/shared.txt", t_workdir(argc, argv, 1));
	s = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	snprintf(path, sizeof(path), "%s/shared-deleted", t_workdir(argc, argv, 1));
	del = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	T_CHECK(s >= 0 && del >= 0 && unlink(path) == 0, "create: %s", strerror(errno));
	memset(buf, 'd', sizeof(buf));
	for (int i = 0; i < 4096 / REC; i++)
		T_CHECK(write(del, buf, REC) == REC, "fill the deleted file");
	nul = open("/dev/null", O_WRONLY);
	dir = open(t_workdir(argc, argv, 1), O_RDONLY | O_DIRECTORY);
	pst = open("/proc/self/status", O_RDONLY);
	T_CHECK(nul >= 0 && dir >= 0 && pst >= 0, "open: %s", strerror(errno));
	fflush(stdout);
	child = fork();
	T_CHECK(child >= 0, "fork");
	if (child == 0)
		_exit(child_main());
	own = openat(dir, "shared.txt", O_RDONLY);
	T_CHECK(own >= 0, "parent: open its own reader");
	/* The program's own F_SETOWN survives the election's marks: the same
	 * after each checkpoint (its pid; after a restart the kernel's new pid
	 * for it, which F_GETOWN shows untranslated, so only "set" is checked). */
	T_CHECK(fcntl(s, F_SETOWN, getpid()) == 0 && fcntl(s, F_GETOWN) == getpid(), "F_SETOWN");
	printf("parent and child share shared.txt, a deleted file, /dev/null and a directory\n");
	for (int k = 1; k <= NCYCLES; k++) {
		for (int r = 0; r < ROUNDS; r++, n += 2) {
			turn(s, del, n, "parent");
			T_CHECK(kill(child, SIGUSR2) == 0, "signal the child");
			wait_turn();
		}
		read_own(n - 1, "parent");
		T_CHECK(fcntl(s, F_GETOWN) > 0 && fcntl(own, F_GETOWN) == 0 && fcntl(del, F_GETOWN) == 0,
			"F_GETOWN %d/%d/%d after cycle %d", fcntl(s, F_GETOWN), fcntl(own, F_GETOWN),
			fcntl(del, F_GETOWN), k - 1);
		T_CHECK(k > 1 || fcntl(s, F_GETOWN) == getpid(), "F_GETOWN %d", fcntl(s, F_GETOWN));
		printf("cycle %d: %d records through one offset, own readers behind\n", k, n);
		if (k < NCYCLES)
			t_ready(k);
	}
	T_CHECK(waitpid(child, &st, 0) == child, "waitpid: %s", strerror(errno));
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed (status %#x)", st);
	read_own(n, "parent");
	T_CHECK(lseek(s, 0, SEEK_CUR) == (off_t)n * REC, "final offset");
	for (int i = 0; i < n; i++) {
		T_CHECK(pread(del, buf, REC, 4096 + (off_t)i * REC) == REC, "read the deleted file back");
		record(want, i, i % 2 ? "child" : "parent");
		T_CHECK(!memcmp(buf, want, REC), "deleted file record %d reads '%.*s'", i, REC - 1, buf);
	}
	printf("%d records in order in both files; the child exited 0\n", n);
	snprintf(path, sizeof(path), "%s/shared.txt", t_workdir(argc, argv, 1));
	unlink(path);
	t_pass();
}
