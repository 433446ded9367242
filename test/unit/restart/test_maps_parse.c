/* Unit tests for mtcp/maps_parse.c: /proc/PID/maps lines and what kind of
 * area each becomes (what the checkpoint saves and the restorer rebuilds). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <cmocka.h>
#include "mtcp/maps_parse.h"

static const char *parse(const char *line, struct image_area *a, int *shared, int expect_ok)
{
	static char buf[512];
	const char *path = NULL;

	strcpy(buf, line);
	assert_int_equal(maps_parse_line(buf, a, &path, shared), expect_ok ? 0 : -1);
	return path;
}

static void file_private(void **state)
{
	struct image_area a;
	int shared;
	const char *p = parse("7f0c2a5e8000-7f0c2a60e000 r-xp 00026000 fe:01 1835027                    "
			      "/usr/lib/x86_64-linux-gnu/libc.so.6", &a, &shared, 1);

	(void)state;
	assert_string_equal(p, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	assert_int_equal(a.start, 0x7f0c2a5e8000);
	assert_int_equal(a.end, 0x7f0c2a60e000);
	assert_int_equal(a.pgoff, 0x26000);
	assert_int_equal(a.prot, PROT_READ | PROT_EXEC);
	assert_int_equal(a.dev, makedev(0xfe, 1));
	assert_int_equal(a.ino, 1835027);
	assert_int_equal(a.kind, IMAGE_AREA_FILE_PRIVATE);
	assert_false(shared);
}

static void kinds(void **state)
{
	struct image_area a;
	int shared;
	const char *p;

	(void)state;
	parse("55d1c0a00000-55d1c0a21000 rw-p 00000000 00:00 0                          [heap]", &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_ANON);
	assert_true(a.flags & IMAGE_AREA_F_HEAP);
	parse("7ffc1b0f3000-7ffc1b114000 rw-p 00000000 00:00 0                          [stack]", &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_STACK);
	p = parse("7f0c2a400000-7f0c2a500000 rw-p 00000000 00:00 0 ", &a, &shared, 1);
	assert_string_equal(p, "");
	assert_int_equal(a.kind, IMAGE_AREA_ANON);
	assert_int_equal(a.prot, PROT_READ | PROT_WRITE);
	parse("7fff8a5f6000-7fff8a5fa000 r--p 00000000 00:00 0                          [vvar]", &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_VDSO);
	parse("7fff8a5fa000-7fff8a5fc000 r--p 00000000 00:00 0                          [vvar_vclock]", &a,
	      &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_VDSO);
	parse("7fff8a5fc000-7fff8a5fe000 r-xp 00000000 00:00 0                          [vdso]", &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_VDSO);
	parse("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]", &a,
	      &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_SKIP);
	assert_int_equal(a.prot, PROT_EXEC);
	parse("7f0c2a000000-7f0c2a100000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)",
	      &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_SHARED_ANON);
	assert_true(shared);
	assert_true(a.flags & IMAGE_AREA_F_DELETED);
	p = parse("7f0c2a000000-7f0c2a100000 rw-s 00000000 00:01 99                         /memfd:buf (deleted)",
		  &a, &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_SHARED_ANON);
	assert_string_equal(p, "/memfd:buf");
	parse("7f0c2a000000-7f0c2a001000 rw-s 00000000 fe:01 42                         /tmp/data", &a, &shared,
	      1);
	assert_int_equal(a.kind, IMAGE_AREA_FILE_SHARED);
	parse("7f0c2a000000-7f0c2a001000 rw-p 00000000 fe:01 42                         /tmp/gone (deleted)", &a,
	      &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_ANON);	/* its pages are saved: the file is gone */
	assert_true(a.flags & IMAGE_AREA_F_DELETED);
	parse("7f0c2a000000-7f0c2a001000 r-xp 00000000 fe:01 42                         /x/build/lib/libcryo.so",
	      &a, &shared, 1);
	assert_true(a.flags & IMAGE_AREA_F_LIBCRYO);
	parse("7f0c2a000000-7f0c2a001000 rw-p 00000000 00:00 0                          [anon:glibc]", &a,
	      &shared, 1);
	assert_int_equal(a.kind, IMAGE_AREA_ANON);
	assert_true(maps_is_vdso("[vdso]"));
	assert_false(maps_is_vdso("[vdsox]"));
}

static void malformed(void **state)
{
	struct image_area a;
	int shared;

	(void)state;
	parse("", &a, &shared, 0);
	parse("zzzz-1000 rw-p 00000000 00:00 0", &a, &shared, 0);
	parse("2000-1000 rw-p 00000000 00:00 0", &a, &shared, 0);	/* end before start */
	parse("1000-2001 rw-p 00000000 00:00 0", &a, &shared, 0);	/* not page aligned */
	parse("1000-2000 rw", &a, &shared, 0);				/* cut short */
	parse("1000-2000 rw-p 00000000 00-00 0", &a, &shared, 0);	/* bad device */
	parse("1000-2000 rw-p 00000000 00:00 x", &a, &shared, 0);	/* bad inode */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(file_private),
		cmocka_unit_test(kinds),
		cmocka_unit_test(malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
