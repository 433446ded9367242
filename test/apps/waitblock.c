/* waitblock: threads blocked in wait calls for a given child across
 * checkpoint/kill/restart cycles. Three children wait for SIGUSR2; three
 * threads of the parent stay blocked the whole time, each in one form of
 * wait naming its child: waitpid(child), waitid(P_PID, child) and
 * wait4(-pgid) for a child that leads a process group of its own. The
 * kernel restarts a wait interrupted by the checkpoint signal with the
 * registers it had, so after a restart the pid in them must be the
 * child's new kernel pid, not the one of the run the image came from
 * (which would give ECHILD at once). A fourth thread speaks the READY
 * protocol; after the last cycle it sends each child SIGUSR2, and each
 * waiter must see its own child end with its own status. */
#include "../lib/harness.h"
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

struct waiter {
	const char *how;
	pid_t child;
	pid_t got;
	int status;
	int err;
};

static int child_main(int code, int own_group)
{
	siginfo_t info;
	sigset_t s;
	int sig;

	if (own_group && setpgid(0, 0) < 0)
		return 90;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigprocmask(SIG_BLOCK, &s, NULL);
	do
		sig = sigwaitinfo(&s, &info);
	while (sig < 0 && errno == EINTR);
	return sig == SIGUSR2 ? code : 91;
}

static void *wait_pid(void *arg)
{
	struct waiter *w = arg;

	do
		w->got = waitpid(w->child, &w->status, 0);
	while (w->got < 0 && errno == EINTR);
	w->err = w->got < 0 ? errno : 0;
	return NULL;
}

static void *wait_id(void *arg)
{
	struct waiter *w = arg;
	siginfo_t si;
	int r;

	memset(&si, 0, sizeof(si));
	do
		r = waitid(P_PID, (id_t)w->child, &si, WEXITED);
	while (r < 0 && errno == EINTR);
	w->err = r < 0 ? errno : 0;
	w->got = r < 0 ? -1 : si.si_pid;
	w->status = si.si_code == CLD_EXITED ? si.si_status << 8 : -1;
	return NULL;
}

static void *wait_group(void *arg)
{
	struct waiter *w = arg;
	struct rusage ru;

	do
		w->got = wait4(-w->child, &w->status, 0, &ru);
	while (w->got < 0 && errno == EINTR);
	w->err = w->got < 0 ? errno : 0;
	return NULL;
}

/* The READY protocol, in a thread: the main thread is one of the waiters. */
static void *ready_main(void *arg)
{
	struct waiter *w = arg;

	for (int k = 1; k <= 3; k++) {
		usleep(50000);	/* let every waiter block first */
		t_ready(k);
		for (int i = 0; i < 3; i++)
			T_CHECK(w[i].got == 0, "%s returned %d (%s) after READY %d", w[i].how, w[i].got,
				strerror(w[i].err), k);
		printf("cycle %d: every waiter still blocked\n", k);
	}
	for (int i = 0; i < 3; i++)
		T_CHECK(kill(w[i].child, SIGUSR2) == 0, "kill(child %d): %s", i + 1, strerror(errno));
	return NULL;
}

int main(int argc, char **argv)
{
	static struct waiter w[3] = { { "waitpid(child)" }, { "waitid(P_PID, child)" },
				      { "wait4(-pgid)" } };
	void *(*fn[3])(void *) = { wait_pid, wait_id, wait_group };
	pthread_t th[3];
	int k, i;

	t_init(argc, argv);
	for (i = 0; i < 3; i++) {
		w[i].child = fork();
		T_CHECK(w[i].child >= 0, "fork: %s", strerror(errno));
		if (w[i].child == 0)
			_exit(child_main(41 + i, i == 2));
	}
	/* wait on the group only once the child leads it */
	for (k = 0; k < 1000 && getpgid(w[2].child) != w[2].child; k++)
		usleep(1000);
	T_CHECK(getpgid(w[2].child) == w[2].child, "child 3 did not lead its own group");
	for (i = 1; i < 3; i++)
		T_CHECK(pthread_create(&th[i], NULL, fn[i], &w[i]) == 0, "pthread_create");
	T_CHECK(pthread_create(&th[0], NULL, ready_main, w) == 0, "pthread_create");
	printf("three children, three waiting threads\n");
	wait_pid(&w[0]);
	for (i = 0; i < 3; i++)
		T_CHECK(pthread_join(th[i], NULL) == 0, "pthread_join");
	for (i = 0; i < 3; i++) {
		T_CHECK(w[i].got == w[i].child, "%s returned %d (%s), child is %d", w[i].how, w[i].got,
			strerror(w[i].err), w[i].child);
		T_CHECK(WIFEXITED(w[i].status) && WEXITSTATUS(w[i].status) == 41 + i,
			"%s: status %#x, expected exit %d", w[i].how, w[i].status, 41 + i);
		printf("%s: child %d exited %d\n", w[i].how, i + 1, WEXITSTATUS(w[i].status));
	}
	t_pass();
}
