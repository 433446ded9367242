/* The async-signal-safe logger; see log.h. Compiled hosted (every program and
 * libcryo.so) and freestanding (the restorer), where errno descriptions come
 * from no libc and only the number is printed. */
#include <stddef.h>
#include "mtcp/log.h"
#include "mtcp/sys.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#ifndef CRYO_FREESTANDING
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#endif

int log_level_cur = LOG_WARN;
static int log_out = 2;
static char log_ident[32] = "cryo";

void log_setup(int level, int fd)
{
	log_level_cur = level;
	log_out = fd;
}

int log_fd(void)
{
	return log_out;
}

void log_set_ident(const char *ident)
{
	nolibc_strlcpy(log_ident, ident, sizeof(log_ident));
}

int log_parse_level(const char *s)
{
	static const char names[4][6] = { "err", "warn", "info", "debug" };
	int i;

	if (!s || !*s)
		return -1;
	if (s[0] >= '0' && s[0] <= '3' && !s[1])
		return s[0] - '0';
	for (i = 0; i < 4; i++)
		if (!nolibc_strcmp(s, names[i]))
			return i;
	if (!nolibc_strcmp(s, "error"))
		return LOG_ERR;
	if (!nolibc_strcmp(s, "warning"))
		return LOG_WARN;
	if (!nolibc_strcmp(s, "trace"))
		return LOG_DEBUG;
	return -1;
}

#ifndef CRYO_FREESTANDING
void log_init(void)
{
	const char *lv = getenv("CRYO_LOG"), *file = getenv("CRYO_LOG_FILE");
	int l = log_parse_level(lv);

	if (l >= 0)
		log_level_cur = l;
	if (file && *file) {
		int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0)
			log_out = fd;
	}
}
#endif

void log_write(int level, const char *where, int err, const char *fmt, ...)
{
	static const char tags[4][8] = { "error", "warning", "info", "debug" };
	char buf[1024];
	size_t n = 0;
	va_list ap;
#ifndef CRYO_FREESTANDING
	int saved = errno;
#endif

	n += nolibc_snprintf(buf + n, sizeof(buf) - n, "%s[%d]: ", log_ident, (int)sys_getpid());
	if (level <= LOG_WARN)
		n += nolibc_snprintf(buf + n, sizeof(buf) - n, "%s: ", tags[level]);
	va_start(ap, fmt);
	n += nolibc_vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (err >= 0) {
#ifndef CRYO_FREESTANDING
		const char *desc = strerrordesc_np(err), *name = strerrorname_np(err);

		n += nolibc_snprintf(buf + n, sizeof(buf) - n, ": %s (%s)", desc ? desc : "error",
				     name ? name : "?");
#else
		n += nolibc_snprintf(buf + n, sizeof(buf) - n, ": errno %d", err);
#endif
	}
	if (where)
		n += nolibc_snprintf(buf + n, sizeof(buf) - n, " [%s]", where);
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	sys_write(log_out, buf, n);
#ifndef CRYO_FREESTANDING
	errno = saved;
#endif
}
