/* The one logging family of cryo, used by every program, by libcryo.so inside
 * the application and by the freestanding restorer.
 *
 * Each .c file defines LOG_PREFIX (e.g. "loader: ") before including this
 * header. Messages are formatted into a stack buffer by the nolibc formatter
 * and written with a single write(2): the logger is async-signal-safe, never
 * allocates and keeps errno. Errors and warnings carry file:line.
 *
 * Level: CRYO_LOG=err|warn|info|debug (default warn), read by log_init().
 * Destination: stderr, or CRYO_LOG_FILE (opened once, append). */
#ifndef CRYO_MTCP_LOG_H
#define CRYO_MTCP_LOG_H
#include <stdarg.h>

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

extern int log_level_cur;

/* Writes one formatted line; err >= 0 appends ": <description> (<NAME>)". */
void log_write(int level, const char *where, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), visibility("hidden")));

#define LOG_STR2(x) #x
#define LOG_STR(x) LOG_STR2(x)
#define LOG_WHERE __FILE__ ":" LOG_STR(__LINE__)

#define log_at(lvl, where, err, fmt, ...)                                           \
	do {                                                                        \
		if ((lvl) <= log_level_cur)                                         \
			log_write((lvl), (where), (err), LOG_PREFIX fmt, ##__VA_ARGS__); \
	} while (0)

#define log_err(fmt, ...)   log_at(LOG_ERR, LOG_WHERE, -1, fmt, ##__VA_ARGS__)
#define log_warn(fmt, ...)  log_at(LOG_WARN, LOG_WHERE, -1, fmt, ##__VA_ARGS__)
#define log_info(fmt, ...)  log_at(LOG_INFO, (const char *)0, -1, fmt, ##__VA_ARGS__)
#define log_debug(fmt, ...) log_at(LOG_DEBUG, (const char *)0, -1, fmt, ##__VA_ARGS__)
/* As log_err, with an explicit errno value (the restorer passes -ret). */
#define log_syserr(e, fmt, ...) log_at(LOG_ERR, LOG_WHERE, (e), fmt, ##__VA_ARGS__)
#ifndef CRYO_FREESTANDING
#include <errno.h>
#define log_perror(fmt, ...) log_at(LOG_ERR, LOG_WHERE, errno, fmt, ##__VA_ARGS__)
#define log_pwarn(fmt, ...)  log_at(LOG_WARN, LOG_WHERE, errno, fmt, ##__VA_ARGS__)
#endif

/* Reads CRYO_LOG and CRYO_LOG_FILE (hosted only). Not async-signal-safe. */
void log_init(void) __attribute__((visibility("hidden")));
/* Sets the level and output fd directly (the restorer, tests). */
void log_setup(int level, int fd) __attribute__((visibility("hidden")));
/* The fd log lines go to; libcryo moves it into its reserved range. */
int log_fd(void) __attribute__((visibility("hidden")));
/* Parses "err|warn|info|debug" (or 0-3); -1 if unknown. */
int log_parse_level(const char *s) __attribute__((visibility("hidden")));
/* Program name shown first on each line ("cryo_restart"). */
void log_set_ident(const char *ident) __attribute__((visibility("hidden")));

#endif /* CRYO_MTCP_LOG_H */
