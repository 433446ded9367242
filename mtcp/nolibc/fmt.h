/* A tiny printf-style formatter for the logger and the restorer: no malloc,
 * no locale, no floating point, async-signal-safe and freestanding.
 * Conversions: %d %i %u %x %p %s %c %%, with flags '0' and '-', a width, and
 * the length modifiers l, ll, z, h (h is accepted and ignored). %m is not
 * supported: callers pass errno explicitly. */
#ifndef CRYO_MTCP_NOLIBC_FMT_H
#define CRYO_MTCP_NOLIBC_FMT_H
#include <stdarg.h>
#include <stddef.h>

/* Formats into buf (always NUL-terminated when size > 0). Returns the number
 * of characters written, excluding the NUL, truncated to size-1. */
int nolibc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int nolibc_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* CRYO_MTCP_NOLIBC_FMT_H */
