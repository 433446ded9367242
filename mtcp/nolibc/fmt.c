/* The freestanding formatter; see fmt.h. Used by the async-signal-safe
 * logger in mtcp/log.c and by the restorer. */
#include <stdint.h>
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"

struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, int width, int left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;

	if (!left)
		while (fill-- > 0)
			put(o, pad);
	while (n--)
		put(o, *s++);
	if (left)
		while (fill-- > 0)
			put(o, ' ');
}

static size_t utoa(char *tmp, unsigned long long v, unsigned base)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	return n;
}

int nolibc_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	char tmp[24], num[26];

	for (; *fmt; fmt++) {
		int left = 0, width = 0, lng = 0;
		char pad = ' ';

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				left = 1;
			else if (*fmt == '0')
				pad = '0';
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z')
				lng++;
			else if (*fmt != 'h')
				break;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
			size_t n = utoa(tmp, u, 10), k = 0;

			if (v < 0)
				num[k++] = '-';
			while (n)
				num[k++] = tmp[--n];
			put_padded(&o, num, k, width, left, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long u = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
			size_t n = utoa(tmp, u, *fmt == 'x' ? 16 : 10), k = 0;

			while (n)
				num[k++] = tmp[--n];
			put_padded(&o, num, k, width, left, pad);
			break;
		}
		case 'p': {
			uintptr_t u = (uintptr_t)va_arg(ap, void *);
			size_t n = utoa(tmp, u, 16), k = 0;

			num[k++] = '0';
			num[k++] = 'x';
			while (n)
				num[k++] = tmp[--n];
			put_padded(&o, num, k, width, left, ' ');
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (!s)
				s = "(null)";
			put_padded(&o, s, nolibc_strlen(s), width, left, ' ');
			break;
		}
		case 'c': {
			char c = (char)va_arg(ap, int);

			put_padded(&o, &c, 1, width, left, ' ');
			break;
		}
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			put(&o, '%');
			put(&o, *fmt);
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)(o.len < size ? o.len : (size ? size - 1 : 0));
}

int nolibc_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = nolibc_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
