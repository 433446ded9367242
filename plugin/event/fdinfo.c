/* Parsers of the fdinfo text of event fds, as the kernel (6.x) prints it:
 *
 *   eventfd   eventfd-count: 5 / eventfd-id: 1 / eventfd-semaphore: 1
 *   signalfd  sigmask: 0000001000000200
 *   timerfd   clockid: 1 / ticks: 0 / settime flags: 03 /
 *             it_value: (2, 999995218) / it_interval: (0, 250000000)
 *   inotify   inotify wd:2 ino:64007 sdev:fe00000 mask:2 ignored_mask:0
 *             fhandle-bytes:8 fhandle-type:1 f_handle:07400600d2acbb08
 *   epoll     tfd: 5 events: 40000019 data: 7 pos:0 ino:40f sdev:10
 *
 * Called by plugin/event/event.c with the threads parked: no libc. */
#include <stddef.h>
#include "mtcp/nolibc/string.h"
#include "plugin/event/fdinfo.h"

static int digit(int c, int base)
{
	int v = nolibc_hexval(c);

	return v >= 0 && v < base ? v : -1;
}

static const char *skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Reads a number at s in base; *end after it. 0, or -1 if no digit. */
static int number(const char *s, int base, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	int neg = 0, d, any = 0;

	s = skip_blanks(s);
	if (*s == '-' && base == 10) {
		neg = 1;
		s++;
	}
	for (; (d = digit(*s, base)) >= 0; s++, any = 1)
		v = v * (uint64_t)base + (uint64_t)d;
	if (end)
		*end = s;
	if (!any)
		return -1;
	*out = neg ? (uint64_t)-(int64_t)v : v;
	return 0;
}

/* The text after "key" on the line starting with it, or NULL. */
static const char *find_key(const char *text, const char *key)
{
	const char *s = text;
	size_t len = nolibc_strlen(key);

	while (*s) {
		if (!nolibc_strncmp(s, key, len))
			return s + len;
		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
	}
	return NULL;
}

int fdinfo_u64(const char *text, const char *key, int base, uint64_t *out)
{
	const char *s = find_key(text, key);

	return s ? number(s, base, out, NULL) : -1;
}

int fdinfo_timespec(const char *text, const char *key, int64_t *sec, int64_t *nsec)
{
	const char *s = find_key(text, key);
	uint64_t a, b;

	if (!s)
		return -1;
	s = skip_blanks(s);
	if (*s++ != '(' || number(s, 10, &a, &s) < 0)
		return -1;
	s = skip_blanks(s);
	if (*s++ != ',' || number(s, 10, &b, &s) < 0)
		return -1;
	*sec = (int64_t)a;
	*nsec = (int64_t)b;
	return 0;
}

const char *fdinfo_next(const char **pos, const char *prefix)
{
	const char *s = *pos;
	size_t len = nolibc_strlen(prefix);

	while (*s) {
		const char *line = s;

		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
		if (!nolibc_strncmp(line, prefix, len)) {
			*pos = s;
			return line;
		}
	}
	*pos = s;
	return NULL;
}

/* Where the value of "name:" starts within one line (up to its newline),
 * or NULL. */
static const char *field_at(const char *line, const char *name)
{
	size_t len = nolibc_strlen(name);
	const char *s = line;

	for (; *s && *s != '\n'; s++)
		if ((s == line || s[-1] == ' ' || s[-1] == '\t') && !nolibc_strncmp(s, name, len))
			return skip_blanks(s + len);
	return NULL;
}

static int field(const char *line, const char *name, int base, uint64_t *out)
{
	const char *s = field_at(line, name);

	return s ? number(s, base, out, NULL) : -1;
}

int fdinfo_epoll_line(const char *line, struct fdinfo_epoll *e)
{
	uint64_t tfd, ev, data;

	if (field(line, "tfd:", 10, &tfd) < 0 || field(line, "events:", 16, &ev) < 0 ||
	    field(line, "data:", 16, &data) < 0)
		return -1;
	e->tfd = (int)tfd;
	e->events = (uint32_t)ev;
	e->data = data;
	return 0;
}

int fdinfo_inotify_line(const char *line, struct fdinfo_watch *w)
{
	uint64_t wd, ino, sdev, mask, ign = 0, hb, ht;
	const char *h;
	uint32_t i;

	if (nolibc_strncmp(line, "inotify ", 8) || field(line, "wd:", 10, &wd) < 0 ||
	    field(line, "ino:", 16, &ino) < 0 || field(line, "sdev:", 16, &sdev) < 0 ||
	    field(line, "mask:", 16, &mask) < 0)
		return -1;
	field(line, "ignored_mask:", 16, &ign);
	w->wd = (int)wd;
	w->ino = ino;
	w->sdev = (uint32_t)sdev;
	w->mask = (uint32_t)mask;
	w->ignored_mask = (uint32_t)ign;
	w->handle_bytes = 0;
	w->handle_type = 0;
	if (field(line, "fhandle-bytes:", 16, &hb) < 0 || field(line, "fhandle-type:", 16, &ht) < 0 ||
	    hb > FDINFO_HANDLE_MAX || !(h = field_at(line, "f_handle:")))
		return 0;
	/* The handle is hex bytes in memory order, two digits each. */
	for (i = 0; i < hb; i++) {
		int hi = digit(h[2 * i], 16), lo = digit(h[2 * i + 1], 16);

		if (hi < 0 || lo < 0)
			return 0;
		w->handle[i] = (unsigned char)(hi << 4 | lo);
	}
	w->handle_bytes = (uint32_t)hb;
	w->handle_type = (int32_t)ht;
	return 0;
}
