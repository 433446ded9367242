/* forkwait: a parent and its child across checkpoint/kill/restart cycles.
 * Both must keep their pids as the program sees them (getpid, getppid, the
 * value fork returned), the child must come back as the parent's child, and
 * in the end the parent signals the child (kill with the child's pid), the
 * child checks who sent it (si_pid) and exits 42, and the parent reaps it
 * with waitpid(child) and that status. No pipes: those come later. */
#include "../lib/harness.h"
#include <sys/wait.h>

static int child_main(pid_t parent)
{
	pid_t me = getpid();
	siginfo_t info;
	sigset_t s;
	int sig;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	do
		sig = sigwaitinfo(&s, &info);	/* EINTR after a restart: wait again */
	while (sig < 0 && errno == EINTR);
	if (sig != SIGUSR2)
		return 2;
	if (getpid() != me || getppid() != parent || info.si_pid != parent) {
		fprintf(stderr, "@@FAIL forkwait child: pid %d/%d, ppid %d/%d, sender %d\n", getpid(), me,
			getppid(), parent, info.si_pid);
		return 3;
	}
	return 42;
}

int main(int argc, char **argv)
{
	pid_t parent, child, got;
	int st, k;

	t_init(argc, argv);
	parent = getpid();
	child = fork();
	T_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0)
		_exit(child_main(parent));
	printf("forked a child\n");
	for (k = 1; k <= 3; k++) {
		t_ready(k);
		T_CHECK(getpid() == parent, "getpid %d, was %d", getpid(), parent);
		T_CHECK(waitpid(child, &st, WNOHANG) == 0, "the child is gone after cycle %d", k);
		T_CHECK(getpgid(0) == getpgrp(), "process group");
		printf("cycle %d: same pid, child still there\n", k);
	}
	T_CHECK(kill(child, SIGUSR2) == 0, "kill(child): %s", strerror(errno));
	got = waitpid(child, &st, 0);
	T_CHECK(got == child, "waitpid returned %d, child is %d (%s)", got, child, strerror(errno));
	T_CHECK(WIFEXITED(st), "the child did not exit normally (status %#x)", st);
	printf("child exited %d\n", WEXITSTATUS(st));
	T_CHECK(WEXITSTATUS(st) == 42, "child exit status %d", WEXITSTATUS(st));
	t_pass();
}
