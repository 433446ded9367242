/* Freestanding memory and string helpers. Linked into the restorer (which has
 * no libc) and into hosted code under the same names with a nolibc_ prefix,
 * so they never collide with libc's. Every function is async-signal-safe. */
#ifndef CRYO_MTCP_NOLIBC_STRING_H
#define CRYO_MTCP_NOLIBC_STRING_H
#include <stddef.h>
#include <stdint.h>

void *nolibc_memcpy(void *dst, const void *src, size_t n);
void *nolibc_memset(void *dst, int c, size_t n);
int nolibc_memcmp(const void *a, const void *b, size_t n);
size_t nolibc_strlen(const char *s);
size_t nolibc_strnlen(const char *s, size_t max);
int nolibc_strcmp(const char *a, const char *b);
int nolibc_strncmp(const char *a, const char *b, size_t n);
/* Copies at most size-1 bytes and always terminates (size > 0). Returns strlen(src). */
size_t nolibc_strlcpy(char *dst, const char *src, size_t size);
/* The value of a hexadecimal digit (either case), or -1. */
int nolibc_hexval(int c);
/* 1 if the n bytes at p are all zero (n a multiple of 8, p 8-aligned). */
int nolibc_is_zero(const void *p, size_t n);

#endif /* CRYO_MTCP_NOLIBC_STRING_H */
