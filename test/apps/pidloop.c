/* pidloop: the cost of calls the pid plugin wraps, for `make bench`.
 *   pidloop getpid N    N calls of getpid() and getppid()
 *   pidloop spawn N     N fork + execv("/bin/true") + waitpid
 * Prints "ns_per_op <value>" on stdout. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 2 ? atol(argv[2]) : 0, i;
	volatile pid_t sink = 0;
	long long t0;

	if (argc < 3 || n <= 0) {
		fprintf(stderr, "usage: pidloop getpid|spawn N\n");
		return 2;
	}
	t0 = now_ns();
	if (!strcmp(argv[1], "getpid")) {
		for (i = 0; i < n; i++)
			sink += getpid() + getppid();
	} else if (!strcmp(argv[1], "spawn")) {
		for (i = 0; i < n; i++) {
			pid_t c = fork();
			int st;

			if (c == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st)) {
				fprintf(stderr, "pidloop: spawn %ld failed\n", i);
				return 1;
			}
		}
	} else {
		fprintf(stderr, "pidloop: unknown test %s\n", argv[1]);
		return 2;
	}
	printf("ns_per_op %lld\n", (now_ns() - t0) / n);
	return 0;
}
