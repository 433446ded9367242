/* inotify: watches across checkpoint/restart. A directory is watched by
 * absolute path (IN_CREATE | IN_DELETE), a file in it by a relative path
 * (IN_MODIFY, after a chdir), a watch added and removed in between leaves
 * a gap in the watch descriptors, and a second, blocking instance watches
 * the directory for IN_ATTRIB. After each READY the program makes
 * events and reads them: each must arrive, with the watch descriptor the
 * program got when it added the watch (the numbers are printed, so the
 * comparison with the uninterrupted run checks them) and the right name.
 * As root, one more watch is added with the raw system call, behind the
 * back of libcryo's inotify_add_watch wrapper: its path can then only come
 * from the file handle the kernel shows, which takes CAP_DAC_READ_SEARCH
 * to open (unprivileged, cryo warns and that watch is lost, so it is not
 * made; nothing about it is printed).
 * Events are only made after READY and read before the next one: events
 * queued but unread at a checkpoint are not carried (doc/events.md). */
#include "../lib/harness.h"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static int in, in2, wd_dir, wd_file, wd_attr, wd_raw = -1;

/* Waits up to 5 s for one event on fd; checks its watch and mask bit,
 * returns its name ("" if none). */
static const char *expect(int fd, int wd, uint32_t bit, char *name, size_t size)
{
	static char buf[4096] __attribute__((aligned(8)));
	static size_t have, off;
	static int last_fd = -1;
	struct inotify_event *ev;

	if (fd != last_fd)
		have = off = 0;
	last_fd = fd;
	if (off >= have) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r;

		while ((r = poll(&p, 1, 5000)) < 0 && errno == EINTR)
			;
		T_CHECK(r == 1, "no event on the inotify fd %d within 5 s (wanted wd %d mask %#x)", fd, wd, bit);
		n = read(fd, buf, sizeof(buf));
		T_CHECK(n > 0, "read inotify: %s", strerror(errno));
		have = (size_t)n;
		off = 0;
	}
	ev = (struct inotify_event *)(buf + off);
	off += sizeof(*ev) + ev->len;
	T_CHECK(ev->wd == wd && (ev->mask & bit), "event wd %d mask %#x, wanted wd %d mask %#x", ev->wd, ev->mask,
		wd, bit);
	snprintf(name, size, "%s", ev->len ? ev->name : "");
	return name;
}

static void no_more(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	T_CHECK(poll(&p, 1, 100) == 0, "an unexpected event is queued on fd %d", fd);
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], name[256];
	int k, fd, gap;

	t_init(argc, argv);
	snprintf(dir, sizeof(dir), "%s/inotify.XXXXXX", t_workdir(argc, argv, 1));
	T_CHECK(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_CHECK(fd >= 0, "create %s", path);
	close(fd);
	snprintf(path, sizeof(path), "%s/raw", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	T_CHECK(fd >= 0, "create %s", path);
	close(fd);
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	in2 = inotify_init();
	T_CHECK(in >= 0 && in2 >= 0, "inotify_init: %s", strerror(errno));
	wd_dir = inotify_add_watch(in, dir, IN_CREATE | IN_DELETE | IN_ONLYDIR);
	gap = inotify_add_watch(in, "/", IN_ATTRIB);
	T_CHECK(wd_dir > 0 && gap > 0 && inotify_rm_watch(in, gap) == 0, "watch: %s", strerror(errno));
	expect(in, gap, IN_IGNORED, name, sizeof(name));
	T_CHECK(chdir(dir) == 0, "chdir");
	wd_file = inotify_add_watch(in, "file", IN_MODIFY);
	wd_attr = inotify_add_watch(in2, dir, IN_ATTRIB);
	T_CHECK(wd_file > 0 && wd_attr > 0, "watch: %s", strerror(errno));
	T_CHECK(chdir("/") == 0, "chdir /");
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/raw", dir);
		wd_raw = (int)syscall(SYS_inotify_add_watch, in2, path, IN_MODIFY);
		T_CHECK(wd_raw > 0, "raw inotify_add_watch: %s", strerror(errno));
	}
	printf("watch descriptors: dir %d, file %d (gap %d), second instance %d\n", wd_dir, wd_file, gap, wd_attr);

	for (k = 1; k <= 3; k++) {
		t_ready(k);

		T_CHECK(fcntl(in, F_GETFL) & O_NONBLOCK, "in lost O_NONBLOCK");
		T_CHECK(fcntl(in, F_GETFD) & FD_CLOEXEC, "in lost FD_CLOEXEC");
		T_CHECK(!(fcntl(in2, F_GETFL) & O_NONBLOCK), "in2 became non-blocking");
		snprintf(path, sizeof(path), "%s/new%d", dir, k);
		fd = open(path, O_CREAT | O_WRONLY, 0600);
		T_CHECK(fd >= 0, "create %s", path);
		close(fd);
		printf("cycle %d: wd %d created %s\n", k, wd_dir, expect(in, wd_dir, IN_CREATE, name, sizeof(name)));
		snprintf(path, sizeof(path), "%s/file", dir);
		fd = open(path, O_WRONLY | O_APPEND);
		T_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "append to %s", path);
		close(fd);
		expect(in, wd_file, IN_MODIFY, name, sizeof(name));
		printf("cycle %d: wd %d modified\n", k, wd_file);
		T_CHECK(chmod(dir, k % 2 ? 0750 : 0700) == 0, "chmod");
		printf("cycle %d: second instance wd %d attrib %s\n", k, wd_attr,
		       expect(in2, wd_attr, IN_ATTRIB, name, sizeof(name))[0] ? "child" : "self");
		if (wd_raw > 0) {
			snprintf(path, sizeof(path), "%s/raw", dir);
			fd = open(path, O_WRONLY | O_APPEND);
			T_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "append to %s", path);
			close(fd);
			expect(in2, wd_raw, IN_MODIFY, name, sizeof(name));
		}
		snprintf(path, sizeof(path), "%s/new%d", dir, k);
		T_CHECK(unlink(path) == 0, "unlink");
		printf("cycle %d: wd %d deleted %s\n", k, wd_dir, expect(in, wd_dir, IN_DELETE, name, sizeof(name)));
		no_more(in);
		no_more(in2);
	}
	t_pass();
}
