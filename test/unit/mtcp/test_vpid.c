/* Unit tests of the virtual pid table (mtcp/vpid.c): translation both ways
 * for processes and for process groups and sessions, the identity before
 * any restart, and the pid-collision rule fork relies on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>
#include "mtcp/vpid.h"

/* vpid.c reserves its table with the library's ckpt_mem. */
void *ckpt_mem(size_t len)
{
	return calloc(1, len);
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(vpid_map_reserve(), 0);
	vpid_map_reset();
	vpid_set_self_from_kernel();
	return 0;
}

static void identity_before_a_restart(void **state)
{
	pid_t me = getpid();

	(void)state;
	assert_int_equal(vpid_self(), me);
	assert_int_equal(vpid_owner(), me);
	assert_int_equal(vpid_to_real(1234), 1234);
	assert_int_equal(vpid_to_virt(1234), 1234);
	assert_int_equal(vpid_group_to_real(1234), 1234);
	assert_int_equal(vpid_to_real(me), me);
	assert_int_equal(vpid_map_count(), 0);
	assert_false(vpid_conflicts(1234));
	assert_false(vpid_conflicts(0));
}

/* After a restart this process is virtual 100, now the kernel's getpid(). */
static void restarted_self(void)
{
	vpid_set_self(100);
	vpid_map_add(100, getpid());
	vpid_map_add(200, 5200);
	vpid_map_add(300, 5300);
}

static void processes_both_ways(void **state)
{
	pid_t me = getpid();

	(void)state;
	restarted_self();
	assert_int_equal(vpid_self(), 100);
	assert_int_equal(vpid_to_real(100), me);
	assert_int_equal(vpid_to_virt(me), 100);
	assert_int_equal(vpid_to_real(200), 5200);
	assert_int_equal(vpid_to_virt(5300), 300);
	/* unknown ids are the kernel's own (a process forked after the restart) */
	assert_int_equal(vpid_to_real(777), 777);
	assert_int_equal(vpid_to_virt(777), 777);
	/* an update replaces, it does not duplicate */
	vpid_map_add(200, 5201);
	assert_int_equal(vpid_to_real(200), 5201);
	assert_int_equal(vpid_map_count(), 3);
}

static void groups_and_sessions(void **state)
{
	pid_t v, r;
	int g;

	(void)state;
	restarted_self();
	/* group 200 is led by process 200; group 400's leader is gone and a
	 * member (process 300) leads it now; session 50 is outside */
	vpid_map_add_group(400, 5300);
	vpid_map_add_group(50, 9000);
	assert_int_equal(vpid_group_to_real(200), 5200);	/* its leader's pid */
	assert_int_equal(vpid_group_to_real(400), 5300);
	assert_int_equal(vpid_group_to_virt(5300), 400);	/* a group id: the group's */
	assert_int_equal(vpid_to_virt(5300), 300);		/* a pid: the process's */
	assert_int_equal(vpid_to_real(400), 400);		/* not a process */
	assert_int_equal(vpid_group_to_real(50), 9000);
	assert_int_equal(vpid_group_to_virt(9000), 50);
	/* the list of processes (for plugin/share) leaves groups out */
	{
		pid_t list[16];
		size_t n = vpid_map_list(list, 16);

		assert_int_equal(n, 3);
	}
	assert_int_equal(vpid_map_count(), 5);
	assert_int_equal(vpid_map_get(3, &v, &r, &g), 0);
	assert_int_equal(v, 400);
	assert_int_equal(r, 5300);
	assert_int_equal(g, 1);
	assert_int_equal(vpid_map_get(5, &v, &r, &g), -1);
}

/* A new child whose kernel pid is an id the computation still uses would
 * be ambiguous: fork discards it and forks again. */
static void collisions(void **state)
{
	(void)state;
	restarted_self();
	vpid_map_add_group(400, 5300);
	assert_true(vpid_conflicts(100));	/* this process's virtual pid */
	assert_true(vpid_conflicts(200));	/* another process's */
	assert_true(vpid_conflicts(400));	/* a group's */
	assert_true(vpid_conflicts(5200));	/* a kernel pid of the map: a stale one */
	assert_false(vpid_conflicts(201));
	assert_false(vpid_conflicts(6000));
}

/* A full map (tens of thousands of entries) still answers every id. */
static void full_map(void **state)
{
	pid_t v;

	(void)state;
	vpid_set_self(1);
	for (v = 2; v < 30002; v++)
		vpid_map_add(v, v + 40000);
	assert_int_equal(vpid_to_real(29999), 69999);
	assert_int_equal(vpid_to_virt(40002), 2);
	assert_true(vpid_conflicts(30001));
	assert_false(vpid_conflicts(30002));
	assert_true(vpid_conflicts(70001));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(identity_before_a_restart),
		T(processes_both_ways),
		T(groups_and_sessions),
		T(collisions),
		T(full_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
