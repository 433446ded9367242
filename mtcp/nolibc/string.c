/* Freestanding memory and string helpers; see string.h. In the restorer the
 * compiler may also emit calls to memcpy/memset/memmove/memcmp for struct
 * copies, so those plain names are defined there too (CRYO_FREESTANDING). */
#include "mtcp/nolibc/string.h"

void *nolibc_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n >= 8) {
		uint64_t v;
		__builtin_memcpy(&v, s, 8);
		__builtin_memcpy(d, &v, 8);
		d += 8;
		s += 8;
		n -= 8;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *nolibc_memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int nolibc_memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t nolibc_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

size_t nolibc_strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int nolibc_strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int nolibc_strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

size_t nolibc_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = nolibc_strlen(src);
	size_t n = len < size - 1 ? len : size - 1;

	nolibc_memcpy(dst, src, n);
	dst[n] = '\0';
	return len;
}

int nolibc_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nolibc_is_zero(const void *p, size_t n)
{
	const uint64_t *q = p;
	uint64_t acc = 0;
	size_t i;

	/* Check in blocks so a non-zero page is rejected early. */
	for (i = 0; i < n / 8; i += 8) {
		acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7];
		if (acc)
			return 0;
	}
	return 1;
}

#ifdef CRYO_FREESTANDING
/* The compiler's own calls (struct copies, large initialisers). */
void *memcpy(void *dst, const void *src, size_t n)
{
	return nolibc_memcpy(dst, src, n);
}

void *memset(void *dst, int c, size_t n)
{
	return nolibc_memset(dst, c, n);
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d < s)
		return nolibc_memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	return nolibc_memcmp(a, b, n);
}
#endif
