/* pgroup: process groups with several members across checkpoint, kill
 * and restart cycles (test/integration/pgroup.sh).
 *
 * The root forks L, which makes its own group, and M1 and M2, which join
 * L's group: their leader is not their parent. It also forks D, which
 * makes a group, forks E1 and E2 into it and exits: a group whose leader
 * is gone, with members that are nobody's children in the computation.
 * Every member reports its pid to the root (a real-time signal with the
 * pid as value). After each restart the root checks each one's group
 * (getpgid) and its own; after the last, kill(-L, SIGTERM) must reach L,
 * M1 and M2 (the root reaps them: 20, 21, 22) and killpg(D, SIGTERM) E1
 * and E2 (they answer before exiting).
 *
 *   pgroup */
#include "../lib/harness.h"
#include <sys/wait.h>

#define ANSWER (SIGRTMIN + 2)

static pid_t root;

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

static void answer(int v)
{
	union sigval val = { .sival_int = v };

	T_CHECK(sigqueue(root, ANSWER, val) == 0, "sigqueue to the root: %s", strerror(errno));
}

/* A member: joins group (if not 0), says who it is, waits for SIGTERM,
 * checks it is still in group expect (0: its own), says so, exits code. */
static void __attribute__((noreturn)) member(pid_t group, pid_t expect, int code)
{
	siginfo_t info;

	if (group)
		T_CHECK(setpgid(0, group) == 0, "setpgid(0, %d): %s", group, strerror(errno));
	if (!expect)
		expect = group ? group : getpid();
	answer(getpid());
	wait_info(SIGTERM, &info);
	T_CHECK(getpgrp() == expect, "member %d: group %d, expected %d", code, getpgrp(), expect);
	answer(1000 + code);
	_exit(code);
}

static pid_t start(pid_t group, int code)
{
	pid_t c = fork();

	T_CHECK(c >= 0, "fork: %s", strerror(errno));
	if (c == 0)
		member(group, 0, code);
	return c;
}

/* n answers into v[] (pids or codes), any order, sorted. */
static void gather(int *v, int n)
{
	for (int i = 0; i < n; i++) {
		siginfo_t info;

		wait_info(ANSWER, &info);
		v[i] = info.si_value.sival_int;
		for (int k = i; k > 0 && v[k - 1] > v[k]; k--) {
			int t = v[k];

			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	}
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
	pid_t l, m1, m2, d, e[2], pg;
	int got[3], k, st;

	t_init(argc, argv);
	block(SIGTERM);
	block(ANSWER);
	root = getpid();
	pg = getpgrp();
	l = start(0, 20);
	T_CHECK(setpgid(l, l) == 0 || errno == EACCES, "setpgid(L): %s", strerror(errno));
	m1 = start(l, 21);
	m2 = start(l, 22);
	gather(got, 3);		/* L, M1, M2: before E1 and E2 can answer */
	d = fork();
	T_CHECK(d >= 0, "fork: %s", strerror(errno));
	if (d == 0) {
		pid_t me = getpid();

		T_CHECK(setpgid(0, 0) == 0, "setpgid D: %s", strerror(errno));
		if (fork() == 0)
			member(0, me, 30);
		if (fork() == 0)
			member(0, me, 31);
		_exit(0);
	}
	T_CHECK(reap(d) == 0, "D failed");
	gather(got, 2);		/* E1, E2 */
	e[0] = got[0];
	e[1] = got[1];
	printf("five members up; the leader of the second group is gone\n");
	for (k = 1; k <= 3; k++) {
		t_ready(k);
		T_CHECK(getpgrp() == pg, "root: group %d, was %d", getpgrp(), pg);
		T_CHECK(getpgid(l) == l, "L's group %d, L is %d", getpgid(l), l);
		T_CHECK(getpgid(m1) == l && getpgid(m2) == l, "M's groups %d %d, L is %d", getpgid(m1),
			getpgid(m2), l);
		T_CHECK(getpgid(e[0]) == d && getpgid(e[1]) == d, "E's groups %d %d, D was %d",
			getpgid(e[0]), getpgid(e[1]), d);
		T_CHECK(waitpid(l, &st, WNOHANG) == 0, "L gone");
		printf("cycle %d: both groups as they were\n", k);
	}
	T_CHECK(kill(-l, SIGTERM) == 0, "kill(-L): %s", strerror(errno));
	gather(got, 3);
	printf("kill(-L) reached members %d %d %d\n", got[0] - 1000, got[1] - 1000, got[2] - 1000);
	printf("L %d, M1 %d, M2 %d\n", reap(l), reap(m1), reap(m2));
	T_CHECK(killpg(d, SIGTERM) == 0, "killpg(D): %s", strerror(errno));
	gather(got, 2);
	printf("killpg(D) reached members %d %d\n", got[0] - 1000, got[1] - 1000);
	t_pass();
}
