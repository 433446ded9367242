/* Unit tests for plugin/fd: parsing /proc/PID/fdinfo. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <fcntl.h>
#include <cmocka.h>
#include "mtcp/ckpt.h"
#include "plugin/fd/fd.h"

/* The engine's allocator and fd range: not reached by the parser tests. */
void *ckpt_mem(size_t len)
{
	(void)len;
	fail_msg("ckpt_mem called");
	return NULL;
}

int ckpt_fd_base(void)
{
	return 1000;
}

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_pos_and_octal_flags),
		cmocka_unit_test(order_does_not_matter),
		cmocka_unit_test(missing_fields_fail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
