/* filestdio: stdio redirected inside the computation, across
 * checkpoint/restart. Like a shell's "exec 9>&1 >out <in", the program
 * keeps its original stdout at fd 9 (the user's: after a restart it must
 * be the restarting side's stdout, where the harness reads the markers),
 * puts a file of its own (out.txt, in the work directory: argv[1], else
 * $TMPDIR, else /tmp) on fd 1 and another (in.txt) on fd 0; fd 2 stays
 * the user's stderr. Each cycle it reads lines
 * from fd 0 and writes lines to fd 1 with plain read(2)/write(2). Files of
 * the computation's own at 0-2 must come back (same file, offset, flags);
 * at the end out.txt is copied to the user's stdout, so the comparison
 * with an uninterrupted run sees every line written through fd 1. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/stat.h>

#define USER_OUT 9
#define PER_CYCLE 50

static char in_path[4200], out_path[4200];
static int next_in, next_out;
static long in_off, out_off;

static void get_lines(int n)
{
	char line[64], want[64];

	for (int i = 0; i < n; i++, next_in++) {
		size_t len = 0;

		snprintf(want, sizeof(want), "input %d\n", next_in);
		while (len < sizeof(line) - 1) {
			ssize_t r = read(0, line + len, 1);

			T_CHECK(r == 1, "read fd 0 at line %d: %s", next_in, r < 0 ? strerror(errno) : "EOF");
			in_off++;
			if (line[len++] == '\n')
				break;
		}
		line[len] = '\0';
		T_CHECK(!strcmp(line, want), "fd 0 gave '%s', want '%s'", line, want);
	}
}

static void put_lines(int n)
{
	char line[64];

	for (int i = 0; i < n; i++, next_out++) {
		int len = snprintf(line, sizeof(line), "output %d (after input %d)\n", next_out, next_in - 1);

		T_CHECK(write(1, line, (size_t)len) == len, "write fd 1: %s", strerror(errno));
		out_off += len;
	}
}

static void check_stdio(int k)
{
	struct stat a, b;

	T_CHECK(stat(out_path, &a) == 0 && fstat(1, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		"fd 1 is not out.txt");
	T_CHECK(stat(in_path, &a) == 0 && fstat(0, &b) == 0 && a.st_ino == b.st_ino, "fd 0 is not in.txt");
	T_CHECK(lseek(0, 0, SEEK_CUR) == in_off && lseek(1, 0, SEEK_CUR) == out_off, "offsets %ld/%ld, want %ld/%ld",
		(long)lseek(0, 0, SEEK_CUR), (long)lseek(1, 0, SEEK_CUR), in_off, out_off);
	T_CHECK((fcntl(1, F_GETFL) & (O_ACCMODE | O_APPEND)) == O_WRONLY && (fcntl(0, F_GETFL) & O_ACCMODE) == O_RDONLY,
		"stdio flags");
	T_CHECK(fcntl(USER_OUT, F_GETFD) == FD_CLOEXEC, "fd %d lost close-on-exec", USER_OUT);
	printf("cycle %d: %d lines in through fd 0, %d out through fd 1\n", k, next_in, next_out);
}

int main(int argc, char **argv)
{
	FILE *user;
	char buf[4096];
	int fd;
	ssize_t n;

	t_init(argc, argv);
	snprintf(in_path, sizeof(in_path), "%s/in.txt", t_workdir(argc, argv, 1));
	snprintf(out_path, sizeof(out_path), "%s/out.txt", t_workdir(argc, argv, 1));
	fd = open(in_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(fd >= 0, "create %s", in_path);
	for (int i = 0; i < 5 * PER_CYCLE; i++)
		dprintf(fd, "input %d\n", i);
	close(fd);

	/* exec 9>&1 >out.txt <in.txt, and printf() goes to fd 9 */
	T_CHECK(dup3(1, USER_OUT, O_CLOEXEC) == USER_OUT, "dup3 stdout");
	user = fdopen(USER_OUT, "w");
	T_CHECK(user != NULL, "fdopen");
	setvbuf(user, NULL, _IOLBF, 0);
	stdout = user;
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(fd >= 0 && dup2(fd, 1) == 1 && close(fd) == 0, "out.txt on fd 1");
	fd = open(in_path, O_RDONLY);
	T_CHECK(fd >= 0 && dup2(fd, 0) == 0 && close(fd) == 0, "in.txt on fd 0");
	printf("fd 0 and fd 1 are files of the program's own\n");

	for (int k = 1; k <= 3; k++) {
		get_lines(PER_CYCLE);
		put_lines(PER_CYCLE);
		check_stdio(k);
		t_ready(k);
		check_stdio(k);
	}
	get_lines(PER_CYCLE);
	put_lines(PER_CYCLE);
	fd = open(out_path, O_RDONLY);
	T_CHECK(fd >= 0, "reopen out.txt");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	unlink(in_path);
	unlink(out_path);
	t_pass();
}
