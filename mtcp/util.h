/* Small helpers shared by every program and by libcryo.so. The I/O helpers
 * are async-signal-safe (plain syscalls, errno preserved on success). */
#ifndef CRYO_MTCP_UTIL_H
#define CRYO_MTCP_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes all n bytes, retrying short writes and EINTR. 0, or -1 with errno. */
int util_write_all(int fd, const void *buf, size_t n);
/* Reads until n bytes or EOF, retrying EINTR. Bytes read, or -1 with errno. */
ssize_t util_read_all(int fd, void *buf, size_t n);
/* clock_gettime(clk) in nanoseconds. */
uint64_t util_now_ns(int clk);
/* Directory holding the running program (/proc/self/exe's dirname) into
 * buf. 0, or -1 after logging. */
int util_self_dir(char *buf, size_t size);
/* Moves fd to the lowest free number >= min (F_DUPFD_CLOEXEC) and closes the
 * old one. New fd, or -1 with errno (old fd left open). */
int util_move_fd(int fd, int min);
/* For the programs' command-line errors: prints "<program>: <message>" as
 * one line on stderr and exits with code. */
void util_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Parses a non-negative decimal integer (whole string). 0, or -1. */
int util_parse_u64(const char *s, uint64_t *out);

#endif /* CRYO_MTCP_UTIL_H */
