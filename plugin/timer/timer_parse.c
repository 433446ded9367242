/* The parser of /proc/PID/timers for the timer plugin (format in
 * plugin/timer/timer.h). Pure and libc-free: it runs with the threads
 * parked, and test/unit/plugin/test_timer.c tests it. */
#include <signal.h>
#include <stddef.h>
#include "mtcp/nolibc/string.h"
#include "plugin/timer/timer.h"

static const char *next_line(const char *s)
{
	while (*s && *s != '\n')
		s++;
	return *s ? s + 1 : s;
}

/* A number at *s in base (10 may be signed); *s moves past it. */
static int number(const char **s, int base, int64_t *out)
{
	uint64_t v = 0;
	int neg = 0, any = 0, d;

	while (**s == ' ' || **s == '\t')
		(*s)++;
	if (**s == '-' && base == 10) {
		neg = 1;
		(*s)++;
	}
	for (; (d = nolibc_hexval(**s)) >= 0 && d < base; (*s)++, any = 1)
		v = v * (uint64_t)base + (uint64_t)d;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return any ? 0 : -1;
}

static int starts(const char *s, const char *word)
{
	return !nolibc_strncmp(s, word, nolibc_strlen(word));
}

int timer_parse_next(const char **pos, struct timer_proc *t)
{
	const char *s = *pos;
	int64_t v;
	int have = 0;

	while (*s == '\n')
		s++;
	if (!*s)
		return 0;
	if (!starts(s, "ID:"))
		return -1;
	nolibc_memset(t, 0, sizeof(*t));
	while (*s && (have == 0 || !starts(s, "ID:"))) {
		const char *p;

		if (starts(s, "ID:")) {
			p = s + 3;
			if (number(&p, 10, &v) < 0)
				return -1;
			t->id = (int32_t)v;
			have |= 1;
		} else if (starts(s, "signal:")) {
			p = s + 7;
			if (number(&p, 10, &v) < 0 || *p++ != '/')
				return -1;
			t->signo = (int32_t)v;
			if (number(&p, 16, &v) < 0)
				return -1;
			t->value = (uint64_t)v;
			have |= 2;
		} else if (starts(s, "notify:")) {
			p = s + 7;
			while (*p == ' ')
				p++;
			if (starts(p, "signal/"))
				t->notify = SIGEV_SIGNAL, p += 7;
			else if (starts(p, "none/"))
				t->notify = SIGEV_NONE, p += 5;
			else if (starts(p, "thread/"))
				t->notify = SIGEV_THREAD, p += 7;
			else
				return -1;
			if (starts(p, "tid."))
				t->notify |= SIGEV_THREAD_ID;
			else if (!starts(p, "pid."))
				return -1;
			p += 4;
			if (number(&p, 10, &v) < 0)
				return -1;
			t->pid = (int32_t)v;
			have |= 4;
		} else if (starts(s, "ClockID:")) {
			p = s + 8;
			if (number(&p, 10, &v) < 0)
				return -1;
			t->clock = (int32_t)v;
			have |= 8;
		}
		s = next_line(s);
	}
	*pos = s;
	return have == 15 ? 1 : -1;
}
