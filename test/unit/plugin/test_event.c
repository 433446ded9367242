/* Unit tests for plugin/event/fdinfo.c (fdinfo of event fds) and
 * plugin/timer/timer_parse.c (/proc/self/timers), on texts as kernel 6.18
 * prints them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <signal.h>
#include <cmocka.h>
#include "plugin/event/fdinfo.h"
#include "plugin/timer/timer.h"

static const char eventfd_info[] = "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1039\n"
				   "eventfd-count:                5\neventfd-id: 1\neventfd-semaphore: 1\n";
static const char timerfd_info[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\nclockid: 1\nticks: 0\n"
				   "settime flags: 03\nit_value: (2, 999995218)\nit_interval: (0, 250000000)\n";

static void eventfd_fields(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(fdinfo_u64(eventfd_info, "eventfd-count:", 16, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(fdinfo_u64(eventfd_info, "eventfd-semaphore:", 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(fdinfo_u64(eventfd_info, "flags:", 8, &v), 0);
	assert_int_equal(v, 02004002);
	assert_int_equal(fdinfo_u64(eventfd_info, "sigmask:", 16, &v), -1);
	/* a key only matches at the start of a line */
	assert_int_equal(fdinfo_u64(timerfd_info, "flags:", 8, &v), 0);
	assert_int_equal(v, 02);
}

static void eventfd_count_is_hex(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(fdinfo_u64("eventfd-count: fffffffffffffffe\n", "eventfd-count:", 16, &v), 0);
	assert_true(v == 0xfffffffffffffffeull);
}

static void timerfd_fields(void **state)
{
	int64_t s, ns;
	uint64_t v;

	(void)state;
	assert_int_equal(fdinfo_u64(timerfd_info, "settime flags:", 8, &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(fdinfo_u64(timerfd_info, "clockid:", 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(fdinfo_timespec(timerfd_info, "it_value:", &s, &ns), 0);
	assert_int_equal(s, 2);
	assert_int_equal(ns, 999995218);
	assert_int_equal(fdinfo_timespec(timerfd_info, "it_interval:", &s, &ns), 0);
	assert_int_equal(s, 0);
	assert_int_equal(ns, 250000000);
	assert_int_equal(fdinfo_timespec("it_value: 2, 3\n", "it_value:", &s, &ns), -1);
}

static void epoll_lines(void **state)
{
	const char text[] = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1039\n"
			    "tfd:        5 events: 40000019 data:                7  pos:0 ino:40f sdev:10\n"
			    "tfd:        3 events: 80000019 data: 1234567890abcdef  pos:0 ino:40f sdev:10\n";
	const char *pos = text, *line;
	struct fdinfo_epoll e;

	(void)state;
	line = fdinfo_next(&pos, "tfd:");
	assert_non_null(line);
	assert_int_equal(fdinfo_epoll_line(line, &e), 0);
	assert_int_equal(e.tfd, 5);
	assert_int_equal(e.events, 0x40000019);
	assert_int_equal(e.data, 7);
	line = fdinfo_next(&pos, "tfd:");
	assert_int_equal(fdinfo_epoll_line(line, &e), 0);
	assert_int_equal(e.tfd, 3);
	assert_int_equal(e.events, 0x80000019u);
	assert_true(e.data == 0x1234567890abcdefull);
	assert_null(fdinfo_next(&pos, "tfd:"));
	assert_int_equal(fdinfo_epoll_line("tfd: 4 events: 19\n", &e), -1);
}

static void inotify_lines(void **state)
{
	const char text[] = "pos:\t0\nflags:\t04000\n"
			    "inotify wd:2 ino:64007 sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8 "
			    "fhandle-type:1 f_handle:07400600d2acbb08\n"
			    "inotify wd:1 ino:3c51a sdev:fe00000 mask:300 ignored_mask:0\n";
	const char *pos = text, *line;
	struct fdinfo_watch w;

	(void)state;
	line = fdinfo_next(&pos, "inotify ");
	assert_int_equal(fdinfo_inotify_line(line, &w), 0);
	assert_int_equal(w.wd, 2);
	assert_int_equal(w.ino, 0x64007);
	assert_int_equal(w.sdev, 0xfe00000);
	assert_int_equal(w.mask, 2);	/* "mask:" is not read out of "ignored_mask:" */
	assert_int_equal(w.handle_bytes, 8);
	assert_int_equal(w.handle_type, 1);
	assert_int_equal(w.handle[0], 0x07);
	assert_int_equal(w.handle[7], 0x08);
	line = fdinfo_next(&pos, "inotify ");
	assert_int_equal(fdinfo_inotify_line(line, &w), 0);
	assert_int_equal(w.wd, 1);
	assert_int_equal(w.mask, 0x300);
	assert_int_equal(w.handle_bytes, 0);	/* no handle shown */
	assert_int_equal(fdinfo_inotify_line("inotify wd:3 ino:1\n", &w), -1);
}

static void proc_timers(void **state)
{
	const char text[] = "ID: 3\nsignal: 14/0000000000000000\nnotify: signal/pid.31245\nClockID: -6\n"
			    "ID: 2\nsignal: 0/0000000000000000\nnotify: none/pid.31245\nClockID: 7\n"
			    "ID: 1\nsignal: 35/000000000000002a\nnotify: signal/tid.31246\nClockID: 0\n"
			    "ID: 0\nsignal: 12/00000000deadbeef\nnotify: thread/pid.31245\nClockID: 1\n";
	const char *pos = text;
	struct timer_proc t;

	(void)state;
	assert_int_equal(timer_parse_next(&pos, &t), 1);
	assert_int_equal(t.id, 3);
	assert_int_equal(t.signo, 14);
	assert_int_equal(t.notify, SIGEV_SIGNAL);
	assert_int_equal(t.clock, -6);
	assert_int_equal(timer_parse_next(&pos, &t), 1);
	assert_int_equal(t.id, 2);
	assert_int_equal(t.notify, SIGEV_NONE);
	assert_int_equal(t.clock, 7);
	assert_int_equal(timer_parse_next(&pos, &t), 1);
	assert_int_equal(t.notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
	assert_int_equal(t.pid, 31246);
	assert_int_equal(t.value, 0x2a);
	assert_int_equal(timer_parse_next(&pos, &t), 1);
	assert_int_equal(t.id, 0);
	assert_int_equal(t.notify, SIGEV_THREAD);
	assert_true(t.value == 0xdeadbeefull);
	assert_int_equal(timer_parse_next(&pos, &t), 0);
}

static void proc_timers_malformed(void **state)
{
	const char *pos = "ID: 1\nsignal: 14/0\nnotify: bogus/pid.1\nClockID: 0\n";
	const char *cut = "ID: 1\nsignal: 14/0\n";
	struct timer_proc t;

	(void)state;
	assert_int_equal(timer_parse_next(&pos, &t), -1);
	assert_int_equal(timer_parse_next(&cut, &t), -1);	/* notify and clock missing */
	pos = "";
	assert_int_equal(timer_parse_next(&pos, &t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(eventfd_fields),   cmocka_unit_test(eventfd_count_is_hex),
		cmocka_unit_test(timerfd_fields),   cmocka_unit_test(epoll_lines),
		cmocka_unit_test(inotify_lines),    cmocka_unit_test(proc_timers),
		cmocka_unit_test(proc_timers_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
