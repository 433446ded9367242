/* /proc paths that name a process or thread by its virtual id: after a
 * restart "/proc/<pid>/stat" or "/proc/<pid>/task/<tid>/comm" must reach
 * the kernel's /proc/<kernel pid>/..., so the calls that take a path the
 * program may build from getpid() or gettid() translate it: open, open64,
 * openat, openat64 (and glibc's fortified __open*_2), fopen, fopen64,
 * opendir, stat, stat64, lstat, lstat64, fstatat, fstatat64, statx,
 * access, faccessat, readlink, readlinkat. readlink of "/proc/self" and
 * "/proc/thread-self" answers with the virtual ids.
 *
 * Only absolute paths spelled "/proc/<digits>..." are translated (not one
 * relative to a directory fd of /proc, nor the listing of /proc itself),
 * and only after a restart: before one a path is passed on untouched
 * after a comparison of its first bytes. doc/pids.md. */
#define LOG_PREFIX "pid: "
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mtcp/nolibc/fmt.h"
#include "mtcp/vpid.h"
#include "mtcp/wrap_signal.h"
#include "plugin/pid/pid.h"

#define PROC_PATH_MAX 4096

/* Resolved once at init (proc_path_init): these wrappers also run inside
 * the library while the threads are parked, where dlsym must not. */
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static FILE * (*real_fopen)(const char *, const char *);
static FILE * (*real_fopen64)(const char *, const char *);
static DIR * (*real_opendir)(const char *);
static int (*real_stat)(const char *, struct stat *);
static int (*real_stat64)(const char *, struct stat64 *);
static int (*real_lstat)(const char *, struct stat *);
static int (*real_lstat64)(const char *, struct stat64 *);
static int (*real_fstatat)(int, const char *, struct stat *, int);
static int (*real_fstatat64)(int, const char *, struct stat64 *, int);
static int (*real_statx)(int, const char *, int, unsigned int, struct statx *);
static int (*real_access)(const char *, int);
static int (*real_faccessat)(int, const char *, int, int);
static ssize_t (*real_readlink)(const char *, char *, size_t);
static ssize_t (*real_readlinkat)(int, const char *, char *, size_t);

#define RESOLVE(name) \
	do { if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name); } while (0)

static int resolved;

void proc_path_init(void)
{
	RESOLVE(open);
	RESOLVE(open64);
	RESOLVE(openat);
	RESOLVE(openat64);
	RESOLVE(__open_2);
	RESOLVE(__open64_2);
	RESOLVE(__openat_2);
	RESOLVE(fopen);
	RESOLVE(fopen64);
	RESOLVE(opendir);
	RESOLVE(stat);
	RESOLVE(stat64);
	RESOLVE(lstat);
	RESOLVE(lstat64);
	RESOLVE(fstatat);
	RESOLVE(fstatat64);
	RESOLVE(statx);
	RESOLVE(access);
	RESOLVE(faccessat);
	RESOLVE(readlink);
	RESOLVE(readlinkat);
	resolved = 1;
}

/* Reads a decimal id at *s (no sign, no leading zero), up to '/' or the
 * end; 0 if it is not one. */
static pid_t read_id(const char **s)
{
	const char *p = *s;
	long v = 0;

	if (*p < '1' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 0x3fffffff)
			return 0;
	}
	if (*p && *p != '/')
		return 0;
	*s = p;
	return (pid_t)v;
}

static int restarted(void)
{
	return vpid_map_count() || vpid_self() != vpid_owner();
}

const char *proc_path_real(const char *path, char *buf, size_t n)
{
	const char *rest, *tail;
	pid_t id, tid = 0, rid, rtid = 0;

	if (!path || strncmp(path, "/proc/", 6) || !restarted())
		return path;
	rest = path + 6;
	id = read_id(&rest);
	if (!id)
		return path;
	rid = pid_task_to_real(id);
	tail = rest;
	if (!strncmp(rest, "/task/", 6)) {
		const char *t = rest + 6;

		tid = read_id(&t);
		if (tid) {
			rtid = pid_task_to_real(tid);
			tail = t;
		}
	}
	if (rid == id && rtid == tid)
		return path;
	if (tid)
		nolibc_snprintf(buf, n, "/proc/%d/task/%d%s", (int)rid, (int)rtid, tail);
	else
		nolibc_snprintf(buf, n, "/proc/%d%s", (int)rid, tail);
	return strlen(path) + 24 < n ? buf : path;
}

/* The mode argument, present with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                   \
	do {                                                    \
		va_list ap_;                                    \
		va_start(ap_, flags);                           \
		if ((flags) & (O_CREAT | __O_TMPFILE))          \
			mode = va_arg(ap_, mode_t);             \
		va_end(ap_);                                    \
	} while (0)

CRYO_EXPORT int open(const char *path, int flags, ...)
{
	char buf[PROC_PATH_MAX];
	mode_t mode = 0;

	if (!resolved)
		proc_path_init();
	MODE_ARG(flags, mode);
	return real_open(proc_path_real(path, buf, sizeof(buf)), flags, mode);
}

CRYO_EXPORT int open64(const char *path, int flags, ...)
{
	char buf[PROC_PATH_MAX];
	mode_t mode = 0;

	if (!resolved)
		proc_path_init();
	MODE_ARG(flags, mode);
	return real_open64(proc_path_real(path, buf, sizeof(buf)), flags, mode);
}

CRYO_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	char buf[PROC_PATH_MAX];
	mode_t mode = 0;

	if (!resolved)
		proc_path_init();
	MODE_ARG(flags, mode);
	return real_openat(dirfd, proc_path_real(path, buf, sizeof(buf)), flags, mode);
}

CRYO_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	char buf[PROC_PATH_MAX];
	mode_t mode = 0;

	if (!resolved)
		proc_path_init();
	MODE_ARG(flags, mode);
	return real_openat64(dirfd, proc_path_real(path, buf, sizeof(buf)), flags, mode);
}

CRYO_EXPORT int __open_2(const char *path, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real___open_2(proc_path_real(path, buf, sizeof(buf)), flags);
}

CRYO_EXPORT int __open64_2(const char *path, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real___open64_2(proc_path_real(path, buf, sizeof(buf)), flags);
}

CRYO_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real___openat_2(dirfd, proc_path_real(path, buf, sizeof(buf)), flags);
}

CRYO_EXPORT FILE *fopen(const char *path, const char *mode)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_fopen(proc_path_real(path, buf, sizeof(buf)), mode);
}

CRYO_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_fopen64(proc_path_real(path, buf, sizeof(buf)), mode);
}

CRYO_EXPORT DIR *opendir(const char *path)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_opendir(proc_path_real(path, buf, sizeof(buf)));
}

CRYO_EXPORT int stat(const char *restrict path, struct stat *restrict st)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_stat(proc_path_real(path, buf, sizeof(buf)), st);
}

CRYO_EXPORT int stat64(const char *restrict path, struct stat64 *restrict st)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_stat64(proc_path_real(path, buf, sizeof(buf)), st);
}

CRYO_EXPORT int lstat(const char *restrict path, struct stat *restrict st)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_lstat(proc_path_real(path, buf, sizeof(buf)), st);
}

CRYO_EXPORT int lstat64(const char *restrict path, struct stat64 *restrict st)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_lstat64(proc_path_real(path, buf, sizeof(buf)), st);
}

CRYO_EXPORT int fstatat(int dirfd, const char *restrict path, struct stat *restrict st, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_fstatat(dirfd, proc_path_real(path, buf, sizeof(buf)), st, flags);
}

CRYO_EXPORT int fstatat64(int dirfd, const char *restrict path, struct stat64 *restrict st, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_fstatat64(dirfd, proc_path_real(path, buf, sizeof(buf)), st, flags);
}

CRYO_EXPORT int statx(int dirfd, const char *restrict path, int flags, unsigned int mask,
		      struct statx *restrict st)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_statx(dirfd, proc_path_real(path, buf, sizeof(buf)), flags, mask, st);
}

CRYO_EXPORT int access(const char *path, int mode)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_access(proc_path_real(path, buf, sizeof(buf)), mode);
}

CRYO_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return real_faccessat(dirfd, proc_path_real(path, buf, sizeof(buf)), mode, flags);
}

/* "/proc/self" reads as "<pid>", "/proc/thread-self" as "<pid>/task/<tid>":
 * the kernel's ids, which the program must see as its own. */
static ssize_t virt_self_link(const char *path, char *out, size_t n, ssize_t r)
{
	char tmp[64];
	int len;

	if (r <= 0 || !restarted())
		return r;
	if (!strcmp(path, "/proc/self"))
		len = nolibc_snprintf(tmp, sizeof(tmp), "%d", (int)vpid_self());
	else if (!strcmp(path, "/proc/thread-self"))
		len = nolibc_snprintf(tmp, sizeof(tmp), "%d/task/%d", (int)vpid_self(), (int)gettid());
	else
		return r;
	if ((size_t)len > n)
		len = (int)n;
	memcpy(out, tmp, (size_t)len);
	return len;
}

CRYO_EXPORT ssize_t readlink(const char *restrict path, char *restrict out, size_t n)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return virt_self_link(path, out, n, real_readlink(proc_path_real(path, buf, sizeof(buf)), out, n));
}

CRYO_EXPORT ssize_t readlinkat(int dirfd, const char *restrict path, char *restrict out, size_t n)
{
	char buf[PROC_PATH_MAX];

	if (!resolved)
		proc_path_init();
	return virt_self_link(path, out, n,
			      real_readlinkat(dirfd, proc_path_real(path, buf, sizeof(buf)), out, n));
}
