/* The computation's outer stdio (see stdio.h). The ids are kept in library
 * memory, which every image holds, so a restarted process still knows what
 * the first run's terminal was. */
#include <stdlib.h>
#include "mtcp/nolibc/fmt.h"
#include "mtcp/util.h"
#include "plugin/fd/stdio.h"

static unsigned long long out_dev[3], out_ino[3];
static int out_have[3];
static char value_buf[3 * 34];

static int parse_hex(const char **s, unsigned long long *v)
{
	const char *p = *s;
	unsigned long long x = 0;
	int any = 0;

	for (;; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;

		if (d < 0)
			break;
		x = x * 16 + (unsigned)d;
		any = 1;
	}
	*s = p;
	*v = x;
	return any ? 0 : -1;
}

int stdio_parse(const char *text, unsigned long long dev[3], unsigned long long ino[3], int have[3])
{
	const char *s = text;

	for (int i = 0; i < 3; i++) {
		have[i] = 0;
		if (i && *s++ != ' ')
			return -1;
		if (*s == '-') {
			s++;
			continue;
		}
		if (parse_hex(&s, &dev[i]) < 0 || *s++ != ':' || parse_hex(&s, &ino[i]) < 0)
			return -1;
		have[i] = 1;
	}
	return *s ? -1 : 0;
}

void stdio_init(void)
{
	const char *e = getenv("CRYO_STDIO");

	if (e && stdio_parse(e, out_dev, out_ino, out_have) < 0)
		out_have[0] = out_have[1] = out_have[2] = 0;
}

static int matches(int i, const struct stat *st)
{
	return out_have[i] && out_dev[i] == (unsigned long long)st->st_dev &&
	       out_ino[i] == (unsigned long long)st->st_ino;
}

int stdio_outer_index(const struct stat *st, int prefer)
{
	if (prefer >= 0 && prefer < 3 && matches(prefer, st))
		return prefer;
	for (int i = 0; i < 3; i++)
		if (matches(i, st))
			return i;
	return -1;
}

int stdio_is_outer(const struct stat *st)
{
	return stdio_outer_index(st, -1) >= 0;
}

void stdio_set_outer(int i, const struct stat *st)
{
	if (i < 0 || i > 2)
		return;
	out_have[i] = st != NULL;
	out_dev[i] = st ? (unsigned long long)st->st_dev : 0;
	out_ino[i] = st ? (unsigned long long)st->st_ino : 0;
}

const char *stdio_value(void)
{
	size_t n = 0;

	for (int i = 0; i < 3; i++) {
		if (out_have[i])
			n += (size_t)nolibc_snprintf(value_buf + n, sizeof(value_buf) - n, "%s%llx:%llx",
						     i ? " " : "", out_dev[i], out_ino[i]);
		else
			n += (size_t)nolibc_snprintf(value_buf + n, sizeof(value_buf) - n, "%s-", i ? " " : "");
	}
	return value_buf;
}
