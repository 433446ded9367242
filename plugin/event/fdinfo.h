/* Parsing /proc/self/fdinfo/N of event fds (eventfd, signalfd, timerfd,
 * inotify, epoll) for the event plugin. Pure functions over a
 * NUL-terminated text, no allocation, no libc: they run with the threads
 * parked and are unit-tested (test/unit/plugin/test_event.c). */
#ifndef CRYO_PLUGIN_EVENT_FDINFO_H
#define CRYO_PLUGIN_EVENT_FDINFO_H
#include <stdint.h>

/* The number after "key" (which includes its colon, e.g. "clockid:") at the
 * start of a line, read in base 8, 10 or 16 (blanks skipped, a leading '-'
 * allowed in base 10). 0 and *out set, or -1 if no line has that key. */
int fdinfo_u64(const char *text, const char *key, int base, uint64_t *out);

/* "key (SEC, NSEC)" as the timerfd lines it_value and it_interval show
 * them. 0, or -1 if missing. */
int fdinfo_timespec(const char *text, const char *key, int64_t *sec, int64_t *nsec);

/* The next line at or after *pos that starts with prefix; *pos moves past
 * it. The line, or NULL when there is none. */
const char *fdinfo_next(const char **pos, const char *prefix);

/* One "tfd: N events: HEX data: HEX ..." line of an epoll. */
struct fdinfo_epoll {
	int tfd;
	uint32_t events;
	uint64_t data;
};
int fdinfo_epoll_line(const char *line, struct fdinfo_epoll *e);

/* One "inotify wd:N ino:HEX sdev:HEX mask:HEX ignored_mask:HEX
 * [fhandle-bytes:HEX fhandle-type:HEX f_handle:HEX...]" line. sdev is the
 * kernel's internal dev_t (major << 20 | minor). */
#define FDINFO_HANDLE_MAX 128
struct fdinfo_watch {
	int wd;
	uint64_t ino;
	uint32_t sdev;
	uint32_t mask, ignored_mask;
	uint32_t handle_bytes;	/* 0 if the kernel showed no handle */
	int32_t handle_type;
	unsigned char handle[FDINFO_HANDLE_MAX];
};
int fdinfo_inotify_line(const char *line, struct fdinfo_watch *w);

#endif /* CRYO_PLUGIN_EVENT_FDINFO_H */
