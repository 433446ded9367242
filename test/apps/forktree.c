/* forktree: a parent that forks a child and then, through system(), a
 * shell that sleeps: three processes which must all join the computation.
 * Used by test/integration/fork.sh (multi-process restart comes later). */
#include "../lib/harness.h"
#include <sys/wait.h>

int main(int argc, char **argv)
{
	pid_t child;
	int st;

	t_init(argc, argv);
	child = fork();
	T_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		sleep(60);
		_exit(7);
	}
	if (fork() == 0) {
		/* system() runs /bin/sh through posix_spawn: it joins from exec. */
		_exit(system("sleep 60") == 0 ? 0 : 1);
	}
	printf("forked\n");
	t_ready(1);
	T_CHECK(waitpid(child, &st, WNOHANG) == 0, "the child ended early");
	t_pass();
}
