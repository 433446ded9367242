/* Copy-on-write checkpoints: the application is stopped only while its
 * state is captured; its image is written afterwards, while it runs again,
 * by a child process that sees memory as it was (doc/cow.md).
 *
 * The checkpoint thread (mtcp/ckpt_thread.c) calls this at WRITE, after
 * proc_save, the plugins' ckpt hooks and its own resume point, with every
 * user thread parked. cow_start forks a writer with raw clone: no exit
 * signal (no SIGCHLD, and wait()/waitpid(-1) without __WALL never reap a
 * child that has none), no shared memory: the kernel gives the child a
 * copy-on-write copy of every private page. Shared memory (MAP_SHARED
 * anonymous, memfd, SysV) is not copied by fork, so the child copies the
 * pages the object holds into memory of its own (reserved by cow_prepare)
 * and tells the parent; only then does WRITE complete. The child then
 * closes every fd but the image's and the log's (so no pipe end or socket
 * of the application stays open in it), scans its address space and
 * writes the image with the same writer as a full-stop checkpoint, and
 * sends its verdict and the image size back through a pipe.
 *
 * The coordinator sends RELEASE once every process has captured its state:
 * the threads run again, and the checkpoint thread waits for the writer
 * (cow_finish). COMMIT renames as always. From WRITE until the checkpoint is
 * complete (REFILL, or RESUME after an abort), exec and exit() in the
 * application wait (cow_wait_idle): either would lose the image under way,
 * or abort the checkpoint by leaving before every COMMIT is in.
 *
 * Memory: every page the application writes while the child runs is
 * copied by the kernel (at most the process's size again, usually far
 * less). The stall is the capture, fork's page-table copy and the copy of
 * shared memory: it grows with memory (fork copies page tables), but far
 * more slowly than writing the image does. */
#define LOG_PREFIX "cow: "
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include "coordinator/protocol.h"
#include "mtcp/ckpt.h"
#include "mtcp/cow.h"
#include "mtcp/log.h"
#include "mtcp/maps_parse.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "mtcp/util.h"

#define PAGE 4096ul
#define TEXT_MAX (16ul << 20)		/* /proc/self/maps text in the child */
#define ARENA_MIN (64ul << 20)

#ifndef __NR_close_range
#define __NR_close_range 436
#endif

/* What the child sends back: first one byte (0 = it holds its copy), then
 * this, when the image is written. */
struct cow_result {
	int32_t status;		/* 0 = image complete */
	uint32_t pad;
	uint64_t bytes;
};

static int mode_cow;		/* CRYO_CKPT_MODE=cow */

/* Reserved at SUSPEND, used by the child only: the maps text, then per
 * shared area its mincore vector and its copy. */
static char *text;
static char *arena;
static size_t arena_len;

/* The writer of this process (owner: its kernel pid). */
static pid_t owner;
static pid_t child;
static int rfd = -1;		/* read end of the child's pipe */
static int copied;		/* its first byte (it holds its copy) was read */
static volatile int busy;	/* futex: 1 from WRITE until the checkpoint ends */

void cow_config(void)
{
	const char *e = getenv("CRYO_CKPT_MODE");

	if (!e || !*e)
		return;
	if (!strcmp(e, "full"))
		mode_cow = 0;
	else if (!strcmp(e, "cow"))
		mode_cow = 1;
	else
		log_warn("CRYO_CKPT_MODE=%s: expected cow or full; checkpoints stop the program "
			 "while they write", e);
}

int cow_wanted(uint32_t bar_flags)
{
	return mode_cow || (bar_flags & COORD_BAR_COW);
}

static int mine(void)
{
	return owner && owner == (pid_t)sys_getpid();
}

int cow_active(void)
{
	return mine() && child > 0;
}

/* Reads /proc/self/maps into buf (NUL-terminated). Its length, or -1. */
static long read_maps(char *buf, size_t cap)
{
	long fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0), len = 0, r;

	if (sys_failed(fd)) {
		log_syserr((int)-fd, "open /proc/self/maps");
		return -1;
	}
	while ((r = sys_read((int)fd, buf + len, cap - 1 - (size_t)len)) > 0)
		len += r;
	sys_close((int)fd);
	if (r < 0 || (size_t)len >= cap - 1) {
		log_syserr(r < 0 ? (int)-r : E2BIG, "read /proc/self/maps");
		return -1;
	}
	buf[len] = '\0';
	return len;
}

/* Calls fn for every shared anonymous area of the maps text in buf (which
 * it cuts into lines). Stops at the first fn that fails: -1. */
static int each_shared(char *buf, int (*fn)(const struct image_area *a, void *arg), void *arg)
{
	char *line, *next;

	for (line = buf; *line; line = next) {
		struct image_area a;
		const char *path;
		int shared;

		next = line;
		while (*next && *next != '\n')
			next++;
		if (*next)
			*next++ = '\0';
		nolibc_memset(&a, 0, sizeof(a));
		if (maps_parse_line(line, &a, &path, &shared) < 0)
			continue;
		if (a.kind == IMAGE_AREA_SHARED_ANON && fn(&a, arg) < 0)
			return -1;
	}
	return 0;
}

static int add_need(const struct image_area *a, void *arg)
{
	size_t n = (a->end - a->start) / PAGE;

	*(size_t *)arg += a->end - a->start + ((n + PAGE - 1) & ~(PAGE - 1));
	return 0;
}

int cow_prepare(uint32_t bar_flags)
{
	size_t need = 0, len;
	long p;

	if (!cow_wanted(bar_flags))
		return 0;
	if (!text) {
		p = sys_mmap(NULL, TEXT_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			     -1, 0);
		if (sys_failed(p)) {
			log_syserr((int)-p, "reserve %lu bytes for the writer child", TEXT_MAX);
			return -1;
		}
		text = (char *)p;
	}
	if (read_maps(text, TEXT_MAX) < 0)
		return -1;
	each_shared(text, add_need, &need);
	sys_madvise(text, TEXT_MAX, MADV_DONTNEED);
	if (need <= arena_len)
		return 0;
	/* Room for shared memory that appears before the threads are parked. */
	len = ARENA_MIN;
	while (len < need + need / 4)
		len *= 2;
	if (arena)
		sys_munmap(arena, arena_len);
	arena = NULL;
	arena_len = 0;
	p = sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sys_failed(p)) {
		log_syserr((int)-p, "reserve %zu bytes for copies of shared memory", len);
		return -1;
	}
	arena = (char *)p;
	arena_len = len;
	return 0;
}

/* ---- the child ---- */

struct snap {
	size_t used;
};

/* Copies the pages the shared object holds in [a->start, a->end) into the
 * arena; the scan and the write read them there (maps_redirect). */
static int snap_area(const struct image_area *a, void *arg)
{
	struct snap *s = arg;
	size_t len = a->end - a->start, n = len / PAGE, vlen = (n + PAGE - 1) & ~(PAGE - 1);
	unsigned char *vec;
	char *copy;
	long r;

	if (s->used + vlen + len > arena_len) {
		log_err("shared memory grew during the checkpoint (%zu bytes reserved); try again",
			arena_len);
		return -1;
	}
	vec = (unsigned char *)arena + s->used;
	copy = arena + s->used + vlen;
	s->used += vlen + len;
	if (!(a->prot & PROT_READ)) {
		/* the child's own mapping: the parent's protection is untouched */
		r = sys_mprotect((void *)a->start, len, (int)a->prot | PROT_READ);
		if (sys_failed(r)) {
			log_syserr((int)-r, "mprotect %p for reading", (void *)a->start);
			return -1;
		}
	}
	if (sys_failed(sys_call3(__NR_mincore, a->start, len, vec)))
		nolibc_memset(vec, 1, n);
	for (size_t i = 0; i < n; i++)
		if (vec[i] & 1)
			nolibc_memcpy(copy + i * PAGE, (const void *)(a->start + i * PAGE), PAGE);
	return maps_redirect(a->start, a->end, copy);
}

/* Closes every fd but the ones in keep (the image, the pipe, the log). */
static void close_others(int a, int b, int c)
{
	int k[3] = { a, b, c }, lo = 0;

	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (k[j] < k[i]) {
				int t = k[i];

				k[i] = k[j];
				k[j] = t;
			}
	for (int i = 0; i < 3; i++) {
		if (k[i] < 0 || k[i] < lo)
			continue;
		if (k[i] > lo)
			sys_call3(__NR_close_range, lo, k[i] - 1, 0);
		lo = k[i] + 1;
	}
	sys_call3(__NR_close_range, lo, ~0u, 0);
}

static __attribute__((noreturn)) void child_main(int fd, int wfd, uint32_t flags, cow_write_fn write_fn,
						 pid_t parent)
{
	struct cow_result res = { 0, 0, 0 };
	struct snap s = { 0 };
	char ok = 0;

	/* Dies with the checkpoint thread: no writer outlives its process. */
	sys_call2(__NR_prctl, PR_SET_PDEATHSIG, SIGKILL);
	if ((pid_t)sys_call0(__NR_getppid) != parent)
		sys_exit_group(3);
	if (read_maps(text, TEXT_MAX) < 0 || each_shared(text, snap_area, &s) < 0)
		ok = 1;
	/* The parent's threads may run from here on: everything is ours. */
	if (sys_write(wfd, &ok, 1) != 1 || ok)
		sys_exit_group(2);
	close_others(fd, wfd, log_fd());
	maps_exclude((uint64_t)(uintptr_t)text, (uint64_t)(uintptr_t)text + TEXT_MAX);
	if (arena)
		maps_exclude((uint64_t)(uintptr_t)arena, (uint64_t)(uintptr_t)arena + arena_len);
	res.status = write_fn(fd, flags, &res.bytes) < 0 ? 1 : 0;
	sys_write(wfd, &res, sizeof(res));
	sys_exit_group(res.status);
}

/* ---- the parent ---- */

/* Reads exactly n bytes from the child; 1, or 0 if it ended first. */
static int read_child(void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		long r = sys_read(rfd, (char *)buf + got, n - got);

		if (r == -EINTR)
			continue;
		if (r <= 0)
			return 0;
		got += (size_t)r;
	}
	return 1;
}

/* Reaps the child; its exit status, or -1 if it was killed. */
static int reap(void)
{
	siginfo_t si;
	long r;

	do {
		memset(&si, 0, sizeof(si));
		r = sys_call5(__NR_waitid, P_PID, child, &si, WEXITED | __WCLONE, NULL);
	} while (r == -EINTR);
	child = 0;
	if (sys_failed(r)) {
		log_syserr((int)-r, "wait for the image writer");
		return -1;
	}
	return si.si_code == CLD_EXITED ? si.si_status : -1;
}

static void drop_pipe(void)
{
	if (rfd >= 0)
		sys_close(rfd);
	rfd = -1;
}

static int count_shared(const struct image_area *a, void *arg)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

/* The child's first byte: it holds its copy of everything. 0, or -1. */
static int wait_copied(void)
{
	char ok;

	if (copied)
		return 0;
	if (!read_child(&ok, 1) || ok) {
		log_err("the image writer (pid %d) could not copy the shared memory", (int)child);
		return -1;
	}
	copied = 1;
	return 0;
}

int cow_start(int fd, uint32_t flags, cow_write_fn write_fn)
{
	pid_t self = (pid_t)sys_getpid();
	uint64_t t0, t1;
	int p[2], nshared = 0;
	long r;

	if (!text) {
		log_warn("no memory was reserved for the image writer; writing with the threads stopped");
		return -2;
	}
	r = sys_call2(__NR_pipe2, p, O_CLOEXEC);
	if (sys_failed(r)) {
		log_syserr((int)-r, "make a pipe for the image writer; writing with the threads stopped");
		return -2;
	}
	/* Without shared memory the child's copy is fork's alone: no need
	 * to wait for it (a wakeup across CPUs costs up to a few ms here). */
	if (read_maps(text, TEXT_MAX) < 0)
		nshared = 1;	/* the child will know */
	else
		each_shared(text, count_shared, &nshared);
	owner = self;
	busy = 1;
	copied = 0;
	/* flags 0: a copy of the address space and of the fd table, and no
	 * exit signal. */
	t0 = util_now_ns(CLOCK_MONOTONIC);
	r = sys_call5(__NR_clone, 0, 0, NULL, NULL, 0);
	if (r == 0)
		child_main(fd, p[1], flags, write_fn, self);
	t1 = util_now_ns(CLOCK_MONOTONIC);
	sys_close(p[1]);
	if (sys_failed(r)) {
		log_syserr((int)-r, "fork the image writer; writing with the threads stopped");
		sys_close(p[0]);
		owner = 0;
		return -2;
	}
	child = (pid_t)r;
	rfd = ckpt_reserve_fd(p[0]);	/* out of the application's fd numbers */
	if (nshared && wait_copied() < 0) {
		drop_pipe();
		reap();
		return -1;
	}
	log_info("image writer is pid %d: fork %llu us, copy of %d shared areas %llu us", (int)child,
		 (unsigned long long)((t1 - t0) / 1000), nshared,
		 (unsigned long long)((util_now_ns(CLOCK_MONOTONIC) - t1) / 1000));
	return 0;
}

int cow_finish(uint64_t *bytes)
{
	struct cow_result res;
	int got, st;

	if (!cow_active())
		return 0;
	got = wait_copied() == 0 && read_child(&res, sizeof(res));
	drop_pipe();
	st = reap();
	if (!got || st != 0 || res.status != 0) {
		log_err("the image writer failed (exit status %d)", st);
		return -1;
	}
	*bytes = res.bytes;
	return 0;
}

void cow_idle(void)
{
	if (!mine())
		return;
	if (child > 0) {
		sys_call2(__NR_kill, child, SIGKILL);
		reap();
	}
	drop_pipe();
	owner = 0;
	__atomic_store_n(&busy, 0, __ATOMIC_RELEASE);
	sys_futex(&busy, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL);
}

void cow_wait_idle(void)
{
	while (mine() && __atomic_load_n(&busy, __ATOMIC_ACQUIRE))
		sys_futex(&busy, FUTEX_WAIT_PRIVATE, 1, NULL);
}

void cow_forget(void)
{
	owner = 0;
	child = 0;
	rfd = -1;
	busy = 0;
}

/* exit() while the image is being written would kill the writer with the
 * process: wait for the checkpoint to be committed first. */
__attribute__((destructor)) static void cow_at_exit(void)
{
	cow_wait_idle();
}
