/* filedeleted: files deleted while open, and a memfd, across
 * checkpoint/restart. In the work directory (argv[1], else $TMPDIR, else
 * /tmp) the program makes, then unlinks while keeping them open:
 * - a: del-a, 300 KiB of a pattern, O_RDWR, read part by part, with a dup
 *   a2 sharing its offset;
 * - b: del-b, 40 KiB, mode 0440, opened O_RDONLY (a file nobody may write);
 * - c: del-c, O_WRONLY|O_APPEND with a 1 MiB hole in the middle (sparse),
 *   appended to at every cycle;
 * and m, a memfd named "cryo-test-pool" with 100 KiB and an F_SEAL_SHRINK
 * seal. After each restart each must still be a deleted file (no link,
 * /proc/self/fd naming the old name, " (deleted)"), with its content,
 * mode, flags, offset and seals; writes made before the checkpoint must
 * be there and later ones work. */
#include "../lib/harness.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

static char dir[4096];
static int a, a2, b, c, m;
static long a_pos, c_size;

static unsigned char pat(long i, int tag)
{
	return (unsigned char)((i * 131 + (i >> 9) * 7 + tag) & 0xff);
}

static int make(const char *name, long len, int tag, mode_t mode, int flags)
{
	char path[4200];
	unsigned char buf[4096];
	int fd, wfd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	wfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	T_CHECK(wfd >= 0, "create %s: %s", path, strerror(errno));
	for (long off = 0; off < len; off += (long)sizeof(buf)) {
		size_t n = len - off < (long)sizeof(buf) ? (size_t)(len - off) : sizeof(buf);

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(off + (long)i, tag);
		T_CHECK(write(wfd, buf, n) == (ssize_t)n, "write %s", path);
	}
	T_CHECK(fchmod(wfd, mode) == 0, "chmod %s", path);
	close(wfd);
	fd = open(path, flags);
	T_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	T_CHECK(unlink(path) == 0, "unlink %s", path);
	return fd;
}

static void check_content(int fd, long from, long len, int tag, const char *what)
{
	unsigned char buf[4096];

	for (long off = from; off < from + len; off += (long)sizeof(buf)) {
		size_t n = from + len - off < (long)sizeof(buf) ? (size_t)(from + len - off) : sizeof(buf);

		T_CHECK(pread(fd, buf, n, off) == (ssize_t)n, "%s: pread at %ld: %s", what, off, strerror(errno));
		for (size_t i = 0; i < n; i++)
			T_CHECK(buf[i] == pat(off + (long)i, tag), "%s: byte %ld is %u, want %u", what,
				off + (long)i, buf[i], pat(off + (long)i, tag));
	}
}

/* fd is open, unlinked, and /proc/self/fd names "NAME (deleted)". */
static void check_deleted(int fd, const char *name, mode_t mode, long size)
{
	char link[64], target[4300], want[300];
	struct stat st;
	ssize_t n;
	const char *base;

	T_CHECK(fstat(fd, &st) == 0, "fstat %s", name);
	T_CHECK(st.st_nlink == 0, "%s has %ld links", name, (long)st.st_nlink);
	T_CHECK((st.st_mode & 07777) == mode, "%s: mode %o, want %o", name, st.st_mode & 07777, mode);
	T_CHECK(st.st_size == size, "%s: %ld bytes, want %ld", name, (long)st.st_size, size);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	T_CHECK(n > 0, "readlink %s", link);
	target[n] = '\0';
	base = strrchr(target, '/');
	snprintf(want, sizeof(want), "%s (deleted)", name);
	T_CHECK(base && !strcmp(base + 1, want), "fd %d is '%s', want '.../%s'", fd, target, want);
}

/* The whole of del-c, read through a new description of it. */
static void check_c(void)
{
	char link[64];
	int rfd;
	unsigned char buf[4096];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", c);
	rfd = open(link, O_RDONLY);
	T_CHECK(rfd >= 0, "reopen del-c for reading: %s", strerror(errno));
	check_content(rfd, 0, 8192, 3, "del-c head");
	T_CHECK(pread(rfd, buf, sizeof(buf), 8192 + 512 * 1024) == (ssize_t)sizeof(buf), "del-c hole");
	for (size_t i = 0; i < sizeof(buf); i++)
		T_CHECK(buf[i] == 0, "del-c: the hole is not zero");
	check_content(rfd, 8192 + (1 << 20), c_size - 8192 - (1 << 20), 4, "del-c tail");
	close(rfd);
}

static void check_all(int k)
{
	unsigned seals;

	check_deleted(a, "del-a", 0604, 300 * 1024);
	check_deleted(b, "del-b", 0440, 40 * 1024);
	check_deleted(c, "del-c", 0600, c_size);
	T_CHECK(lseek(a, 0, SEEK_CUR) == a_pos && lseek(a2, 0, SEEK_CUR) == a_pos, "del-a offsets %ld/%ld, want %ld",
		(long)lseek(a, 0, SEEK_CUR), (long)lseek(a2, 0, SEEK_CUR), a_pos);
	T_CHECK((fcntl(a, F_GETFL) & O_ACCMODE) == O_RDWR && (fcntl(b, F_GETFL) & O_ACCMODE) == O_RDONLY &&
		(fcntl(c, F_GETFL) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "access modes");
	T_CHECK(fcntl(b, F_GETFD) == FD_CLOEXEC, "del-b lost close-on-exec");
	check_content(a, 0, 300 * 1024, 1, "del-a");
	check_content(b, 0, 40 * 1024, 2, "del-b");
	check_c();
	check_content(m, 0, 100 * 1024, 5, "memfd");
	seals = (unsigned)fcntl(m, F_GET_SEALS);
	T_CHECK(seals == F_SEAL_SHRINK, "memfd seals %#x, want F_SEAL_SHRINK", seals);
	T_CHECK(ftruncate(m, 4096) < 0 && errno == EPERM, "a sealed memfd shrank");
	T_CHECK(lseek(m, 0, SEEK_CUR) == 1000 * k, "memfd offset %ld", (long)lseek(m, 0, SEEK_CUR));
	printf("cycle %d: del-a at %ld, del-c %ld bytes, memfd at %d: content, modes, links, seals right\n", k,
	       a_pos, c_size, 1000 * k);
}

int main(int argc, char **argv)
{
	static unsigned char buf[8192];

	t_init(argc, argv);
	snprintf(dir, sizeof(dir), "%s", t_workdir(argc, argv, 1));
	a = make("del-a", 300 * 1024, 1, 0604, O_RDWR);
	a2 = dup(a);
	b = make("del-b", 40 * 1024, 2, 0440, O_RDONLY | O_CLOEXEC);
	c = make("del-c", 8192, 3, 0600, O_WRONLY | O_APPEND);
	T_CHECK(ftruncate(c, 8192 + (1 << 20)) == 0, "ftruncate del-c");
	c_size = 8192 + (1 << 20);
	m = memfd_create("cryo-test-pool", MFD_ALLOW_SEALING);
	T_CHECK(m >= 0, "memfd_create: %s", strerror(errno));
	for (long off = 0; off < 100 * 1024; off += 4096) {
		for (size_t i = 0; i < 4096; i++)
			buf[i] = pat(off + (long)i, 5);
		T_CHECK(write(m, buf, 4096) == 4096, "write memfd");
	}
	T_CHECK(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal");
	printf("three deleted files and a memfd open\n");
	for (int k = 1; k <= 3; k++) {
		/* read a part of del-a through a2 (the offset is shared with a) */
		T_CHECK(read(a2, buf, 7000) == 7000, "read del-a");
		a_pos += 7000;
		/* append to del-c */
		for (size_t i = 0; i < 3000; i++)
			buf[i] = pat(c_size + (long)i, 4);
		T_CHECK(write(c, buf, 3000) == 3000, "append del-c: %s", strerror(errno));
		c_size += 3000;
		lseek(m, 1000 * k, SEEK_SET);
		check_all(k);
		t_ready(k);
		check_all(k);
	}
	/* writes after the restarts land in the new copies */
	memset(buf, 'z', 100);
	T_CHECK(pwrite(a, buf, 100, 5000) == 100 && pread(a2, buf + 100, 100, 5000) == 100 && buf[150] == 'z',
		"del-a write/read back");
	printf("deleted files still work after 3 restarts\n");
	t_pass();
}
