/* Header-only harness for cryo's test programs (test/apps/NAME.c). Each program
 * is built from one .c file, so everything here is static inline.
 *
 * A test program calls t_init() first, then works, and at each point where
 * the runner (test/integration/run.sh) may checkpoint, kill and restart it,
 * calls t_ready(k) with k = 1, 2, 3...: it prints "@@READY k" on stdout and
 * blocks until the "continue" signal SIGUSR1 arrives. After it returns the
 * program verifies its own state and goes on; at the end it calls t_pass()
 * ("@@PASS", exit 0) or, on any mismatch, t_fail() ("@@FAIL reason" on
 * stderr, exit 1). The runner compares the whole stdout of an uninterrupted
 * run with the concatenated stdout of the checkpointed run, so a program's
 * output must be deterministic: no pids, addresses, times or thread
 * interleavings in it.
 *
 * Rules for programs:
 * - SIGUSR1 is blocked by t_init() and must stay blocked in every thread;
 *   threads created afterwards inherit the mask.
 * - Real-time signal 63 (SIGRTMAX-1) belongs to libcryo; never use it.
 * - t_ready() keeps errno, so a program may check errno across it.
 * - t_ready() gives up after $CRYO_TEST_READY_TIMEOUT seconds (default 300)
 *   without a signal, so an abandoned test never lingers.
 * - Include this header first: it defines _GNU_SOURCE for the whole file. */
#ifndef CRYO_TEST_LIB_HARNESS_H
#define CRYO_TEST_LIB_HARNESS_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T_CONTINUE_SIGNAL SIGUSR1
#define T_RESERVED_SIGNAL 63	/* libcryo's internal signal */

static const char *t_prog = "test";
static long t_ready_timeout_s = 300;

/* Prints "@@FAIL <reason>" on stderr and exits 1 without running atexit
 * handlers (another thread may hold a lock they need). Callable from any
 * thread, not from a signal handler. */
static inline void __attribute__((noreturn, format(printf, 1, 2))) t_fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "@@FAIL %s: %s\n", t_prog, msg);
	fflush(stderr);
	_exit(1);
}

/* t_fail() with the source position when cond is false. */
#define T_CHECK(cond, fmt, ...)                                                        \
	do {                                                                           \
		if (!(cond))                                                           \
			t_fail("%s:%d: %s: " fmt, __FILE__, __LINE__, #cond, ##__VA_ARGS__); \
	} while (0)

/* Async-signal-safe failure, for use inside signal handlers. */
static inline void __attribute__((noreturn)) t_fail_async(const char *msg)
{
	static const char pre[] = "@@FAIL (in signal handler) ";
	ssize_t r;

	r = write(2, pre, sizeof(pre) - 1);
	r = write(2, msg, strlen(msg));
	r = write(2, "\n", 1);
	(void)r;
	_exit(1);
}

/* Blocks the continue signal (before any thread exists, so all inherit the
 * mask), makes stdout line buffered and reads the harness settings. Call it
 * first in main(). */
static inline void t_init(int argc, char **argv)
{
	const char *s;
	sigset_t set;

	if (argc > 0 && argv[0]) {
		s = strrchr(argv[0], '/');
		t_prog = s ? s + 1 : argv[0];
	}
	sigemptyset(&set);
	sigaddset(&set, T_CONTINUE_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		t_fail("block SIGUSR1: %s", strerror(errno));
	setvbuf(stdout, NULL, _IOLBF, 0);
	s = getenv("CRYO_TEST_READY_TIMEOUT");
	if (s && atol(s) > 0)
		t_ready_timeout_s = atol(s);
}

/* Prints "@@READY k" (flushed) and waits for SIGUSR1. Other threads keep
 * running meanwhile. errno is preserved. */
static inline void t_ready(int k)
{
	int saved = errno;
	struct timespec slice = { 1, 0 };
	long waited = 0;
	sigset_t set;
	int r;

	printf("@@READY %d\n", k);
	if (fflush(stdout) != 0)
		t_fail("flush stdout before READY %d: %s", k, strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, T_CONTINUE_SIGNAL);
	for (;;) {
		/* one-second slices: an interrupted or restarted wait just loops */
		r = sigtimedwait(&set, NULL, &slice);
		if (r == T_CONTINUE_SIGNAL)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			if (++waited >= t_ready_timeout_s)
				t_fail("no continue signal %ld s after READY %d", waited, k);
			continue;
		}
		t_fail("waiting for SIGUSR1 after READY %d: %s", k, strerror(errno));
	}
	errno = saved;
}

/* Prints "@@PASS" and exits 0. */
static inline void __attribute__((noreturn)) t_pass(void)
{
	printf("@@PASS\n");
	fflush(stdout);
	exit(0);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps ms milliseconds, resuming after interruptions (a checkpoint signal). */
static inline void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Directory for the program's files: argv[i] if given, else $TMPDIR, else /tmp. */
static inline const char *t_workdir(int argc, char **argv, int i)
{
	const char *d;

	if (argc > i && argv[i] && argv[i][0])
		return argv[i];
	d = getenv("TMPDIR");
	return d && d[0] ? d : "/tmp";
}

/* FNV-1a over n bytes, chained through h (start with T_HASH_INIT). */
#define T_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t t_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	while (n--) {
		h ^= *c++;
		h *= 0x100000001b3ull;
	}
	return h;
}

#endif /* CRYO_TEST_LIB_HARNESS_H */
