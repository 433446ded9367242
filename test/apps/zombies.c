/* zombies: children that have ended but are not reaped when checkpoints are
 * taken. Before READY 1 the program forks four children and lets them end
 * without reaping them: one exits 7, one exits 0, one is killed by SIGTERM,
 * one by SIGKILL; another one is forked before READY 2 and exits 9. They
 * are in no image (their processes ended), yet after every restart the
 * parent must still find each one: waitpid(child, WNOHANG) must not say
 * ECHILD, and at the end waitpid(child) must give each one's pid and exact
 * status, and waitpid(-1) then ECHILD (no stray child). SIGCHLD is left at
 * its default disposition. */
#include "../lib/harness.h"
#include <sys/wait.h>

#define N 5

static pid_t kids[N];
static const char *how[N] = { "exit 7", "exit 0", "SIGTERM", "SIGKILL", "exit 9" };

static pid_t spawn(int i)
{
	pid_t p = fork();

	T_CHECK(p >= 0, "fork: %s", strerror(errno));
	if (p == 0) {
		switch (i) {
		case 0: _exit(7);
		case 1: _exit(0);
		case 2: raise(SIGTERM); break;
		case 3: raise(SIGKILL); break;
		default: _exit(9);
		}
		_exit(99);
	}
	return p;
}

/* Until the child has ended (WNOWAIT: it stays a zombie). */
static void wait_ended(pid_t p)
{
	siginfo_t si;

	for (int t = 0; t < 10000; t++) {
		memset(&si, 0, sizeof(si));
		T_CHECK(waitid(P_PID, (id_t)p, &si, WEXITED | WNOHANG | WNOWAIT) == 0, "waitid: %s",
			strerror(errno));
		if (si.si_pid == p)
			return;
		usleep(1000);
	}
	t_fail("child %d did not end", p);
}

/* Each of the first n children is still there to reap (waitid with
 * WNOWAIT looks without reaping). */
static void check_unreaped(int n, int k)
{
	siginfo_t si;

	for (int i = 0; i < n; i++) {
		memset(&si, 0, sizeof(si));
		T_CHECK(waitid(P_PID, (id_t)kids[i], &si, WEXITED | WNOHANG | WNOWAIT) == 0,
			"after READY %d, child %d (%s): %s", k, i + 1, how[i], strerror(errno));
		T_CHECK(si.si_pid == kids[i], "after READY %d, child %d (%s) is not there to reap", k,
			i + 1, how[i]);
	}
}

int main(int argc, char **argv)
{
	int i, st;

	t_init(argc, argv);
	for (i = 0; i < N - 1; i++)
		kids[i] = spawn(i);
	for (i = 0; i < N - 1; i++)
		wait_ended(kids[i]);
	printf("four children ended, none reaped\n");
	t_ready(1);
	check_unreaped(N - 1, 1);
	kids[N - 1] = spawn(N - 1);
	wait_ended(kids[N - 1]);
	printf("a fifth one ended\n");
	t_ready(2);
	check_unreaped(N, 2);
	t_ready(3);
	check_unreaped(N, 3);
	for (i = N - 1; i >= 0; i--) {
		pid_t r = waitpid(kids[i], &st, 0);

		T_CHECK(r == kids[i], "waitpid(child %d, %s) returned %d: %s", i + 1, how[i], r,
			strerror(errno));
		if (WIFEXITED(st))
			printf("child %d: exited %d\n", i + 1, WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			printf("child %d: killed by signal %d\n", i + 1, WTERMSIG(st));
		else
			t_fail("child %d: status %#x", i + 1, st);
	}
	T_CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a stray child is left");
	printf("no other child\n");
	t_pass();
}
