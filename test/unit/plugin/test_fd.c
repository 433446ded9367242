/* Unit tests for plugin/fd's pure parts: /proc/PID/fdinfo, what an fd's
 * link says it is, deleted-file and memfd names, /proc/PID paths of the
 * process itself, CRYO_DELETED_MAX sizes, share tags (fdinfo.c), and the
 * outer stdio ids of CRYO_STDIO, as read and as passed on (stdio.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "plugin/fd/fdinfo.h"
#include "plugin/fd/stdio.h"

static void parses_pos_and_octal_flags(void **state)
{
	unsigned long long pos = 0;
	unsigned flags = 0;

	(void)state;
	assert_int_equal(fd_parse_fdinfo("pos:\t12345\nflags:\t02102002\nmnt_id:\t25\nino:\t99\n", &pos, &flags), 0);
	assert_int_equal(pos, 12345);
	assert_int_equal(flags, 02102002);
	assert_true(flags & O_APPEND);
	assert_true(flags & O_CLOEXEC);
	assert_int_equal(flags & O_ACCMODE, O_RDWR);
}

static void order_does_not_matter(void **state)
{
	unsigned long long pos = 7;
	unsigned flags = 7;

	(void)state;
	assert_int_equal(fd_parse_fdinfo("flags:\t0100000\npos:\t0\n", &pos, &flags), 0);
	assert_int_equal(pos, 0);
	assert_int_equal(flags, 0100000);
}

static void large_offsets(void **state)
{
	unsigned long long pos = 0;
	unsigned flags = 0;

	(void)state;
	assert_int_equal(fd_parse_fdinfo("pos:\t9223372036854775807\nflags:\t01\n", &pos, &flags), 0);
	assert_true(pos == 9223372036854775807ull);
	assert_int_equal(flags, O_WRONLY);
}

static void missing_fields_fail(void **state)
{
	unsigned long long pos;
	unsigned flags;

	(void)state;
	assert_int_equal(fd_parse_fdinfo("pos:\t1\n", &pos, &flags), -1);
	assert_int_equal(fd_parse_fdinfo("flags:\t1\n", &pos, &flags), -1);
	assert_int_equal(fd_parse_fdinfo("", &pos, &flags), -1);
	assert_int_equal(fd_parse_fdinfo("xpos:\t1\nflags:\t2\n", &pos, &flags), -1);
}

/* An eventfd's fdinfo has more lines; only pos and flags matter here. */
static void extra_lines_are_ignored(void **state)
{
	unsigned long long pos = 1;
	unsigned flags = 1;

	(void)state;
	assert_int_equal(fd_parse_fdinfo("pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n"
					 "eventfd-count:                5\neventfd-id: 3\n", &pos, &flags), 0);
	assert_int_equal(pos, 0);
	assert_int_equal(flags, 02004002);
}

static void classifies_links(void **state)
{
	(void)state;
	assert_int_equal(fd_classify_link("/home/u/data.txt"), FD_LINK_PATH);
	assert_int_equal(fd_classify_link("/"), FD_LINK_PATH);
	assert_int_equal(fd_classify_link("/dev/null"), FD_LINK_PATH);
	assert_int_equal(fd_classify_link("/tmp/x (deleted)"), FD_LINK_DELETED);
	assert_int_equal(fd_classify_link("/memfd:pool (deleted)"), FD_LINK_MEMFD);
	assert_int_equal(fd_classify_link("/memfd:"), FD_LINK_PATH);	/* not deleted: a real file */
	assert_int_equal(fd_classify_link("pipe:[12345]"), FD_LINK_PIPE);
	assert_int_equal(fd_classify_link("socket:[99]"), FD_LINK_SOCKET);
	assert_int_equal(fd_classify_link("anon_inode:[eventfd]"), FD_LINK_ANON);
	assert_int_equal(fd_classify_link("anon_inode:inotify"), FD_LINK_ANON);
	assert_int_equal(fd_classify_link("/dev/pts/3"), FD_LINK_PTY);
	assert_int_equal(fd_classify_link("/dev/ptmx"), FD_LINK_PTY);
	assert_int_equal(fd_classify_link("/dev/ptsx"), FD_LINK_PATH);
	assert_int_equal(fd_classify_link(""), FD_LINK_OTHER);
	assert_int_equal(fd_classify_link("net:[4026531840]"), FD_LINK_OTHER);
	assert_int_equal(fd_classify_link(" (deleted)"), FD_LINK_OTHER);
}

static void strips_deleted(void **state)
{
	(void)state;
	assert_int_equal(fd_strip_deleted("/tmp/a (deleted)"), 6);
	assert_int_equal(fd_strip_deleted("/tmp/a"), 6);
	assert_int_equal(fd_strip_deleted(" (deleted)"), 10);	/* nothing before it: not a suffix */
	assert_int_equal(fd_strip_deleted("/x (deleted) (deleted)"), 12);
	assert_int_equal(fd_strip_deleted(""), 0);
}

static void directory_parts(void **state)
{
	(void)state;
	assert_int_equal(fd_dir_len("/tmp/a", 6), 4);
	assert_int_equal(fd_dir_len("/a", 2), 1);
	assert_int_equal(fd_dir_len("/", 1), 1);
	assert_int_equal(fd_dir_len("a", 1), 0);
	assert_int_equal(fd_dir_len("/x/y/z.txt (deleted)", 10), 4);
}

static void memfd_names(void **state)
{
	char name[300];
	char longlink[400];

	(void)state;
	fd_memfd_name("/memfd:pool (deleted)", name, sizeof(name));
	assert_string_equal(name, "pool");
	fd_memfd_name("/memfd:a b (deleted)", name, sizeof(name));
	assert_string_equal(name, "a b");
	fd_memfd_name("/memfd: (deleted)", name, sizeof(name));
	assert_string_equal(name, "");
	fd_memfd_name("/memfd:abcdef (deleted)", name, 4);
	assert_string_equal(name, "abc");
	memset(longlink, 'n', sizeof(longlink));
	memcpy(longlink, "/memfd:", 7);
	strcpy(longlink + 380, " (deleted)");
	fd_memfd_name(longlink, name, sizeof(name));
	assert_int_equal(strlen(name), 249);	/* memfd_create's limit */
}

static void proc_paths(void **state)
{
	pid_t pid = 7;

	(void)state;
	assert_int_equal(fd_proc_pid_off("/proc/1234/status", &pid), 10);
	assert_int_equal(pid, 1234);
	assert_int_equal(fd_proc_pid_off("/proc/56", &pid), 8);
	assert_int_equal(pid, 56);
	pid = 7;
	assert_int_equal(fd_proc_pid_off("/proc/self/status", &pid), 0);
	assert_int_equal(fd_proc_pid_off("/proc/1234x/status", &pid), 0);
	assert_int_equal(fd_proc_pid_off("/proc//status", &pid), 0);
	assert_int_equal(fd_proc_pid_off("/proc/0/status", &pid), 0);
	assert_int_equal(fd_proc_pid_off("/tmp/1234/status", &pid), 0);
	assert_int_equal(fd_proc_pid_off("/proc/99999999999999999999/x", &pid), 0);
	assert_int_equal(pid, 7);	/* untouched when not a /proc/PID path */
}

static void sizes(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(fd_parse_size("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(fd_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(fd_parse_size("64M", &v), 0);
	assert_true(v == 64ull << 20);
	assert_int_equal(fd_parse_size("3k", &v), 0);
	assert_true(v == 3072);
	assert_int_equal(fd_parse_size("2G", &v), 0);
	assert_true(v == 2ull << 30);
	v = 77;
	assert_int_equal(fd_parse_size("", &v), -1);
	assert_int_equal(fd_parse_size("M", &v), -1);
	assert_int_equal(fd_parse_size("-1", &v), -1);
	assert_int_equal(fd_parse_size("12MB", &v), -1);
	assert_int_equal(fd_parse_size("1 M", &v), -1);
	assert_int_equal(fd_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(fd_parse_size("17179869184G", &v), -1);	/* 2^64 bytes */
	assert_int_equal(fd_parse_size(NULL, &v), -1);
	assert_true(v == 77);	/* untouched on failure */
}

static void tags(void **state)
{
	uint64_t a = fd_tag(FD_TAG_REQUEST, 1234, 3), b = fd_tag(FD_TAG_REPLY, 1234, 3);

	(void)state;
	assert_true(a != b);
	assert_true((a >> 56) == 'F' && (b >> 56) == 'F');
	assert_true(fd_tag(FD_TAG_REQUEST, 1234, 4) != a);
	assert_true(fd_tag(FD_TAG_REQUEST, 1235, 3) != a);
	assert_true(fd_tag(FD_TAG_REQUEST, 4194304, 65535) != fd_tag(FD_TAG_REQUEST, 4194304, 65534));
	assert_true(fd_tag(FD_TAG_REQUEST, 1234, 3) == a);
}

static void stdio_ids(void **state)
{
	unsigned long long dev[3], ino[3];
	int have[3];

	(void)state;
	assert_int_equal(stdio_parse("803:1a2b 22:5 -", dev, ino, have), 0);
	assert_true(have[0] && have[1] && !have[2]);
	assert_true(dev[0] == 0x803 && ino[0] == 0x1a2b && dev[1] == 0x22 && ino[1] == 5);
	assert_int_equal(stdio_parse("- - -", dev, ino, have), 0);
	assert_true(!have[0] && !have[1] && !have[2]);
	assert_int_equal(stdio_parse("1:2 3:4", dev, ino, have), -1);	/* two only */
	assert_int_equal(stdio_parse("1:2 3:4 5:6 ", dev, ino, have), -1);
	assert_int_equal(stdio_parse("1:2 3:4 5:", dev, ino, have), -1);
	assert_int_equal(stdio_parse("1:2  3:4 5:6", dev, ino, have), -1);
	assert_int_equal(stdio_parse("x:2 3:4 5:6", dev, ino, have), -1);
	assert_int_equal(stdio_parse("1-2 3:4 5:6", dev, ino, have), -1);
	assert_int_equal(stdio_parse("", dev, ino, have), -1);
}

static void outer_objects(void **state)
{
	struct stat tty = { 0 }, file = { 0 }, other = { 0 };

	(void)state;
	tty.st_dev = 0x16;
	tty.st_ino = 0x3;
	file.st_dev = 0x803;
	file.st_ino = 0x77;
	other.st_dev = 0x803;
	other.st_ino = 0x78;
	/* stdin and stderr the terminal, stdout a file */
	setenv("CRYO_STDIO", "16:3 803:77 16:3", 1);
	stdio_init();
	assert_int_equal(stdio_outer_index(&tty, -1), 0);
	assert_int_equal(stdio_outer_index(&tty, 2), 2);	/* fd 2 is its own stderr */
	assert_int_equal(stdio_outer_index(&tty, 1), 0);	/* fd 1 holds the terminal: stdin's */
	assert_int_equal(stdio_outer_index(&file, -1), 1);
	assert_int_equal(stdio_outer_index(&other, -1), -1);
	assert_true(stdio_is_outer(&file) && !stdio_is_outer(&other));
	/* after a restart: the restarting side's stdout, no stderr */
	stdio_set_outer(1, &other);
	stdio_set_outer(2, NULL);
	assert_string_equal(stdio_value(), "16:3 803:78 -");
	assert_int_equal(stdio_outer_index(&file, -1), -1);
	assert_int_equal(stdio_outer_index(&other, 1), 1);
	assert_int_equal(stdio_outer_index(&tty, 2), 0);
	{
		unsigned long long dev[3], ino[3];
		int have[3];

		assert_int_equal(stdio_parse(stdio_value(), dev, ino, have), 0);
		assert_true(have[0] && have[1] && !have[2] && ino[1] == 0x78);
	}
	/* malformed: nothing is outer */
	setenv("CRYO_STDIO", "16:3 bogus", 1);
	stdio_init();
	assert_int_equal(stdio_outer_index(&tty, -1), -1);
	unsetenv("CRYO_STDIO");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_pos_and_octal_flags),
		cmocka_unit_test(order_does_not_matter),
		cmocka_unit_test(large_offsets),
		cmocka_unit_test(missing_fields_fail),
		cmocka_unit_test(extra_lines_are_ignored),
		cmocka_unit_test(classifies_links),
		cmocka_unit_test(strips_deleted),
		cmocka_unit_test(directory_parts),
		cmocka_unit_test(memfd_names),
		cmocka_unit_test(proc_paths),
		cmocka_unit_test(sizes),
		cmocka_unit_test(tags),
		cmocka_unit_test(stdio_ids),
		cmocka_unit_test(outer_objects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
