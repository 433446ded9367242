/* filedev: devices, a directory being listed and an O_PATH fd across
 * checkpoint/restart. Open across all cycles: /dev/null (read-write),
 * /dev/zero, /dev/urandom (O_NONBLOCK|O_CLOEXEC), /dev/full, an O_PATH fd
 * on a file, and a directory of 60 entries in the work directory (argv[1],
 * else $TMPDIR, else /tmp) read with getdents64 a few entries per cycle.
 * After each restart every device behaves as its kind (EOF, zeros, random
 * bytes, ENOSPC), flags are kept, and the listing goes on where it
 * stopped: in the end every entry was seen exactly once. A stdio FILE on
 * /dev/null (DMTCP's dmtcp2) writes on. */
#include "../lib/harness.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define NENT 60

static int nul, zero, rnd, full, opath, dirfd_;
static FILE *devnull;
static char seen[NENT + 2];
static int nseen;

struct dent {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/* Reads at least want entries (a small buffer: a few at a time). */
static void list(int want)
{
	char buf[160];
	int got = 0;

	while (got < want) {
		long n = syscall(SYS_getdents64, dirfd_, buf, sizeof(buf));

		T_CHECK(n > 0, "getdents64: %s", n < 0 ? strerror(errno) : "end of directory early");
		for (long off = 0; off < n;) {
			struct dent *d = (void *)(buf + off);
			int i;

			off += d->reclen;
			got++;
			if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) {
				i = NENT + (d->name[1] == '.');
			} else {
				T_CHECK(sscanf(d->name, "entry-%d", &i) == 1 && i >= 0 && i < NENT, "odd entry %s",
					d->name);
			}
			T_CHECK(!seen[i], "entry %s listed twice", d->name);
			seen[i] = 1;
			nseen++;
		}
	}
}

static void check_devices(int k)
{
	unsigned char buf[256];
	int nz = 0;

	T_CHECK(write(nul, "discard", 7) == 7 && read(nul, buf, sizeof(buf)) == 0, "/dev/null");
	memset(buf, 0xff, sizeof(buf));
	T_CHECK(read(zero, buf, sizeof(buf)) == (ssize_t)sizeof(buf), "/dev/zero read");
	for (size_t i = 0; i < sizeof(buf); i++)
		T_CHECK(buf[i] == 0, "/dev/zero gave a non-zero byte");
	T_CHECK(read(rnd, buf, 64) == 64, "/dev/urandom read");
	for (int i = 0; i < 64; i++)
		nz += buf[i] != 0;
	T_CHECK(nz > 32, "/dev/urandom gave %d zero bytes of 64", 64 - nz);
	T_CHECK(write(full, "x", 1) < 0 && errno == ENOSPC, "/dev/full did not say ENOSPC");
	T_CHECK((fcntl(nul, F_GETFL) & O_ACCMODE) == O_RDWR && (fcntl(zero, F_GETFL) & O_ACCMODE) == O_RDONLY &&
		(fcntl(rnd, F_GETFL) & O_NONBLOCK) && fcntl(rnd, F_GETFD) == FD_CLOEXEC &&
		(fcntl(full, F_GETFL) & O_ACCMODE) == O_WRONLY, "device flags");
	T_CHECK((fcntl(opath, F_GETFL) & O_PATH) != 0, "the O_PATH fd lost O_PATH");
	T_CHECK(fprintf(devnull, "cycle %d\n", k) > 0 && fflush(devnull) == 0, "FILE on /dev/null");
}

int main(int argc, char **argv)
{
	char path[4300], dir[4200];
	struct stat st;

	t_init(argc, argv);
	snprintf(dir, sizeof(dir), "%s/listing", t_workdir(argc, argv, 1));
	mkdir(dir, 0700);
	for (int i = 0; i < NENT; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/entry-%d", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		T_CHECK(fd >= 0, "create %s", path);
		close(fd);
	}
	nul = open("/dev/null", O_RDWR);
	zero = open("/dev/zero", O_RDONLY);
	rnd = open("/dev/urandom", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	full = open("/dev/full", O_WRONLY);
	snprintf(path, sizeof(path), "%s/entry-0", dir);
	opath = open(path, O_PATH);
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
	devnull = fopen("/dev/null", "w");
	T_CHECK(nul >= 0 && zero >= 0 && rnd >= 0 && full >= 0 && opath >= 0 && dirfd_ >= 0 && devnull,
		"open: %s", strerror(errno));
	for (int k = 1; k <= 3; k++) {
		list(12);
		check_devices(k);
		t_ready(k);
		check_devices(k);
		T_CHECK(fstat(opath, &st) == 0 && S_ISREG(st.st_mode), "fstat through O_PATH");
		printf("cycle %d: devices behave, the listing goes on\n", k);
	}
	list(NENT + 2 - nseen);
	T_CHECK(nseen == NENT + 2, "%d entries listed of %d", nseen, NENT + 2);
	printf("all %d entries listed once\n", NENT);
	for (int i = 0; i < NENT; i++) {
		snprintf(path, sizeof(path), "%s/entry-%d", dir, i);
		unlink(path);
	}
	rmdir(dir);
	t_pass();
}
