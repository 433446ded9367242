/* cowwait: a program that reaps any child it has, all the time, and counts
 * SIGCHLD: a copy-on-write checkpoint's image writer (a child of the
 * process, mtcp/cow.c) must stay invisible to it. A second thread calls
 * waitpid(-1, WNOHANG) and waitid(P_ALL, WNOHANG) in a loop while the main
 * thread waits at each checkpoint (t_ready), so it runs while the writer
 * does; the program has no child of its own, so any pid reaped, or any
 * SIGCHLD, fails the test. A writer that exited unseen would stay a zombie
 * until reaped, so the loop would find it sooner or later: the check does
 * not depend on timing. Usage: cowwait */
#include "../lib/harness.h"
#include <pthread.h>
#include <sys/wait.h>

static volatile sig_atomic_t n_sigchld;
static volatile int stop;
static volatile pid_t reaped;

static void on_chld(int sig)
{
	(void)sig;
	n_sigchld++;
}

static void *reaper(void *arg)
{
	struct timespec ts = { 0, 200000 };

	(void)arg;
	while (!stop) {
		siginfo_t si;
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0)
			reaped = p;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0 && si.si_pid > 0)
			reaped = si.si_pid;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	pthread_t th;

	t_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART;
	T_CHECK(sigaction(SIGCHLD, &sa, NULL) == 0, "sigaction: %s", strerror(errno));
	T_CHECK(pthread_create(&th, NULL, reaper, NULL) == 0, "pthread_create");
	for (int k = 1; k <= 3; k++) {
		t_ready(k);
		t_sleep_ms(50);	/* the loop runs on after the restart too */
		T_CHECK(!reaped, "phase %d: reaped a child it never had (pid %d)", k, (int)reaped);
		T_CHECK(!n_sigchld, "phase %d: %d SIGCHLD for a child it never had", k, (int)n_sigchld);
		printf("phase %d: no child reaped, no SIGCHLD\n", k);
		fflush(stdout);
	}
	stop = 1;
	pthread_join(th, NULL);
	t_pass();
}
