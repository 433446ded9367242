/* popen: both directions of popen(3) across checkpoints. The program reads
 * the output of `seq 1 N` (popen "r") line by line, checks each number,
 * and writes a line derived from it into `cksum` (popen "w"), whose one
 * line of output goes to the shared stdout when its input ends. Before
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
	char line[64], cmd[64];
	unsigned long long sum = 0;
	FILE *in, *out;
	long i = 0;
	int st, k = 1;

	t_init(argc, argv);
	snprintf(cmd, sizeof(cmd), "seq 1 %d", N);
	in = popen(cmd, "r");
	T_CHECK(in != NULL, "popen(%s, r): %s", cmd, strerror(errno));
	out = popen("cksum", "w");
	T_CHECK(out != NULL, "popen(cksum, w): %s", strerror(errno));
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
	fflush(stdout);
	st = pclose(out);	/* cksum prints its line now */
	T_CHECK(st != -1, "pclose(cksum): %s", strerror(errno));
	printf("pclose(cksum): exited %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cksum status %#x", st);
	t_pass();
}
