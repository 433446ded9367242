/* fileappend: one file written in O_APPEND and read at its own offset,
 * across checkpoint/restart. In the work directory (argv[1], else $TMPDIR,
 * else /tmp) the program creates log.txt (mode 0640) and keeps open:
 * - w: O_WRONLY|O_APPEND|O_CLOEXEC, and w2 = dup(w) (one description);
 * - r: O_RDONLY|O_NONBLOCK, its own description, reading behind the writer
 *   and stopping mid-line before each checkpoint;
 * - d: the work directory (O_DIRECTORY), used with openat;
 * - x: /proc/self/exe, and s: /proc/self/status (a /proc path of the
 *   process itself, which must name the new process after a restart).
 * After each restart it checks every offset, the status flags, the
 * close-on-exec flags, the file's mode, that w and w2 still share one
 * offset, that stdin (closed at the start) is still closed, that the reader goes on exactly where it stopped, and that the
 * executable and status files read as before. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/stat.h>

#define LINES 200

static char path[4200];
static int w, w2, r, d, x, s;
static long written;		/* bytes in the file */
static long nread;		/* bytes the reader took */
static int next_line, read_lines;
static char pending[128];	/* the reader's partial line */
static size_t npending;

static void append(int fd, int n)
{
	char line[64];

	for (int i = 0; i < n; i++, next_line++) {
		int len = snprintf(line, sizeof(line), "line %d of the log\n", next_line);

		T_CHECK(write(fd, line, (size_t)len) == len, "append line %d: %s", next_line, strerror(errno));
		written += len;
		/* O_APPEND: both fds of the description end at the end of the file */
		T_CHECK(lseek(w, 0, SEEK_CUR) == written && lseek(w2, 0, SEEK_CUR) == written,
			"writer offsets %ld/%ld, file %ld", (long)lseek(w, 0, SEEK_CUR), (long)lseek(w2, 0, SEEK_CUR),
			written);
	}
}

/* Reads up to max bytes, checking each whole line as it completes. */
static void take(long max)
{
	char buf[256], want[64];

	while (max > 0) {
		ssize_t n = read(r, buf, max < (long)sizeof(buf) ? (size_t)max : sizeof(buf));

		T_CHECK(n > 0, "reader: %s at %ld", n < 0 ? strerror(errno) : "EOF", nread);
		for (ssize_t i = 0; i < n; i++) {
			T_CHECK(npending < sizeof(pending) - 1, "line too long");
			pending[npending++] = buf[i];
			if (buf[i] != '\n')
				continue;
			pending[npending] = '\0';
			snprintf(want, sizeof(want), "line %d of the log\n", read_lines);
			T_CHECK(!strcmp(pending, want), "reader got '%s', want '%s'", pending, want);
			read_lines++;
			npending = 0;
		}
		nread += n;
		max -= n;
	}
	T_CHECK(lseek(r, 0, SEEK_CUR) == nread, "reader offset %ld, want %ld", (long)lseek(r, 0, SEEK_CUR), nread);
}

static void check_fds(int k)
{
	struct stat st;
	char buf[64];
	int t;

	T_CHECK((fcntl(w, F_GETFL) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "w flags %#x",
		fcntl(w, F_GETFL));
	T_CHECK((fcntl(r, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND)) == (O_RDONLY | O_NONBLOCK),
		"r flags %#x", fcntl(r, F_GETFL));
	T_CHECK(fcntl(w, F_GETFD) == FD_CLOEXEC && fcntl(w2, F_GETFD) == 0 && fcntl(r, F_GETFD) == 0,
		"close-on-exec flags %d %d %d", fcntl(w, F_GETFD), fcntl(w2, F_GETFD), fcntl(r, F_GETFD));
	T_CHECK(fstat(w, &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_size == written,
		"log.txt: mode %o, size %ld, want 0640 and %ld", st.st_mode & 0777, (long)st.st_size, written);
	T_CHECK(lseek(r, 0, SEEK_CUR) == nread, "reader offset %ld, want %ld", (long)lseek(r, 0, SEEK_CUR), nread);
	t = openat(d, "log.txt", O_RDONLY | O_CLOEXEC);
	T_CHECK(t >= 0 && fstat(t, &st) == 0 && st.st_size == written, "openat(d, log.txt): %s", strerror(errno));
	close(t);
	errno = 0;
	T_CHECK(fcntl(0, F_GETFD) == -1 && errno == EBADF, "fd 0 is open");
	T_CHECK(pread(x, buf, 4, 0) == 4 && !memcmp(buf, "\177ELF", 4), "/proc/self/exe does not read as ELF");
	T_CHECK(lseek(s, 0, SEEK_SET) == 0 && read(s, buf, 5) == 5 && !memcmp(buf, "Name:", 5),
		"/proc/self/status does not read");
	printf("cycle %d: %d lines written (%ld bytes), %d read (%ld bytes), offsets and flags right\n", k,
	       next_line, written, read_lines, nread);
}

int main(int argc, char **argv)
{
	t_init(argc, argv);
	umask(022);
	snprintf(path, sizeof(path), "%s/log.txt", t_workdir(argc, argv, 1));
	unlink(path);
	w = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	r = open(path, O_RDONLY | O_NONBLOCK);
	d = open(t_workdir(argc, argv, 1), O_RDONLY | O_DIRECTORY);
	x = open("/proc/self/exe", O_RDONLY);
	s = open("/proc/self/status", O_RDONLY);
	T_CHECK(w >= 0 && r >= 0 && d >= 0 && x >= 0 && s >= 0, "open: %s", strerror(errno));
	w2 = dup(w);
	T_CHECK(w2 >= 0, "dup");
	/* a closed stdin stays closed: the restarting side's is not let in */
	T_CHECK(close(0) == 0, "close stdin");
	for (int k = 1; k <= 4; k++) {
		append(w, LINES / 2);
		append(w2, LINES / 2);
		/* leave the reader in the middle of a line, behind the writer */
		take(written - nread - 7 * k - 13);
		check_fds(k);
		if (k == 4)
			break;
		t_ready(k);
		check_fds(k);
	}
	take(written - nread);
	T_CHECK(read_lines == next_line && npending == 0, "read %d lines of %d", read_lines, next_line);
	T_CHECK(read(r, pending, 1) == 0, "reader: data after the end");
	printf("all %d lines read back in order\n", read_lines);
	unlink(path);
	t_pass();
}
