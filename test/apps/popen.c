/* popen: both directions of popen(3) across checkpoints. The program reads
 * the output of `seq 1 N` (popen "r") line by line, checks each number,
 * and writes a line derived from it into `cksum` (popen "w"), whose one
 * line of output comes back to the program through a third pipe (cksum's
 * stdout) and is printed at the end: a cksum that sees its input end
 * early, when the computation is killed after a checkpoint, can then
 * print nothing anywhere. Before
 * each "@@READY k" it waits until seq has filled its pipe again (seq is
 * then blocked in write(2), data in flight) and flushes what it wrote to
 * cksum. At the end both pclose() calls must reap their child with status
 * 0, and cksum's CRC and byte count show that not a byte written to it was
 * lost or doubled. Each child is a shell (popen runs /bin/sh -c) or the
 * command it execs. */
#include "../lib/harness.h"
#include <sys/ioctl.h>
#include <sys/wait.h>

#define N 100000
#define PHASE 20000

/* seq's pipe is full (64 KiB, 16 slots, seq writes whole 4 KiB blocks):
 * more than 15 pages in it. */
static void wait_full(FILE *in, int k)
{
	uint64_t t0 = t_now_ns();
	int n = 0;

	for (;;) {
		T_CHECK(ioctl(fileno(in), FIONREAD, &n) == 0, "FIONREAD: %s", strerror(errno));
		if (n > 15 * 4096)
			return;
		T_CHECK(t_now_ns() - t0 < 120000000000ull, "seq's pipe holds %d bytes before READY %d",
			n, k);
		usleep(2000);
	}
}

int main(int argc, char **argv)
{
	char line[64], cmd[64], sum_line[128];
	int q[2], saved;
	ssize_t n;
	unsigned long long sum = 0;
	FILE *in, *out;
	long i = 0;
	int st, k = 1;

	t_init(argc, argv);
	snprintf(cmd, sizeof(cmd), "seq 1 %d", N);
	in = popen(cmd, "r");
	T_CHECK(in != NULL, "popen(%s, r): %s", cmd, strerror(errno));
	/* cksum's stdout: a pipe of ours, read once it has ended */
	T_CHECK(pipe(q) == 0, "pipe: %s", strerror(errno));
	saved = dup(1);
	T_CHECK(saved >= 0 && dup2(q[1], 1) == 1, "dup2: %s", strerror(errno));
	out = popen("cksum", "w");
	T_CHECK(out != NULL, "popen(cksum, w): %s", strerror(errno));
	T_CHECK(dup2(saved, 1) == 1, "dup2: %s", strerror(errno));
	close(saved);
	close(q[1]);
	printf("popen: reading seq 1 %d, writing to cksum\n", N);

	while (fgets(line, sizeof(line), in)) {
		char *end;
		long v = strtol(line, &end, 10);

		i++;
		T_CHECK(*end == '\n' && v == i, "line %ld of seq is '%.20s'", i, line);
		sum += (unsigned long long)v * (unsigned long long)v;
		T_CHECK(fprintf(out, "%ld %llu\n", v, sum % 1000003) > 0, "write to cksum: %s",
			strerror(errno));
		if (i % PHASE == 0 && k <= 3) {
			T_CHECK(fflush(out) == 0, "flush to cksum: %s", strerror(errno));
			wait_full(in, k);
			printf("phase %d: %ld lines read, sum of squares %llu\n", k, i, sum);
			t_ready(k);
			k++;
		}
	}
	T_CHECK(!ferror(in), "reading seq: %s", strerror(errno));
	T_CHECK(i == N, "seq gave %ld lines, expected %d", i, N);
	printf("read %ld lines, sum of squares %llu\n", i, sum);
	st = pclose(in);
	T_CHECK(st != -1, "pclose(seq): %s", strerror(errno));
	printf("pclose(seq): exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	st = pclose(out);	/* cksum writes its line now */
	T_CHECK(st != -1, "pclose(cksum): %s", strerror(errno));
	n = read(q[0], sum_line, sizeof(sum_line) - 1);
	T_CHECK(n > 0, "read cksum's line: %s", n < 0 ? strerror(errno) : "nothing");
	sum_line[n] = '\0';
	printf("cksum: %s", sum_line);
	printf("pclose(cksum): exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cksum status %#x", st);
	t_pass();
}
