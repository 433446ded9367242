/* Unit tests of cryo_launch's decisions (launch/options.c): option parsing,
 * the LD_PRELOAD value and the PATH search. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "coordinator/protocol.h"
#include "launch/options.h"

static struct launch_opts o;
static char err[256];

static enum launch_parse_res parse(const char *first, ...)
{
	char *argv[32] = { "cryo_launch" };
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return launch_parse(argc, argv, &o, err, sizeof(err));
}

static int setup(void **state)
{
	unsetenv("CRYO_COORD_HOST");
	unsetenv("CRYO_COORD_PORT");
	return 0;
}

static void defaults(void **state)
{
	assert_int_equal(parse("./app", "-x", "--coord", NULL), LAUNCH_RUN);
	assert_int_equal(o.prog, 1);	/* the app's own options stay its own */
	assert_string_equal(o.host, COORD_DEFAULT_HOST);
	assert_int_equal(o.port, COORD_DEFAULT_PORT);
	assert_null(o.ckptdir);
	assert_int_equal(o.interval, -1);
	assert_int_equal(o.mode, LAUNCH_ENSURE);
	assert_int_equal(o.exit_after, 0);
}

static void every_option(void **state)
{
	assert_int_equal(parse("--coord", "node2:7001", "--ckptdir", "/tmp/ck", "--interval", "60",
			       "--join", "--exit-after-ckpt", "app", "--interval", "x", NULL),
			 LAUNCH_RUN);
	assert_string_equal(o.host, "node2");
	assert_int_equal(o.port, 7001);
	assert_string_equal(o.ckptdir, "/tmp/ck");
	assert_int_equal(o.interval, 60);
	assert_int_equal(o.mode, LAUNCH_JOIN);
	assert_int_equal(o.exit_after, 1);
	assert_int_equal(o.prog, 9);
}

static void equals_forms_and_double_dash(void **state)
{
	assert_int_equal(parse("--coord=:7002", "--interval=0", "--new-coordinator", "--", "--app",
			       NULL), LAUNCH_RUN);
	assert_string_equal(o.host, COORD_DEFAULT_HOST);
	assert_int_equal(o.port, 7002);
	assert_int_equal(o.interval, 0);
	assert_int_equal(o.mode, LAUNCH_NEW);
	assert_int_equal(o.prog, 5);
}

static void environment_address(void **state)
{
	setenv("CRYO_COORD_HOST", "envhost", 1);
	setenv("CRYO_COORD_PORT", "7100", 1);
	assert_int_equal(parse("app", NULL), LAUNCH_RUN);
	assert_string_equal(o.host, "envhost");
	assert_int_equal(o.port, 7100);
	/* --coord with a port only keeps the host from the environment */
	assert_int_equal(parse("--coord", "7200", "app", NULL), LAUNCH_RUN);
	assert_string_equal(o.host, "envhost");
	assert_int_equal(o.port, 7200);
	unsetenv("CRYO_COORD_HOST");
	unsetenv("CRYO_COORD_PORT");
}

static void help_and_version(void **state)
{
	assert_int_equal(parse("--help", NULL), LAUNCH_HELP);
	assert_int_equal(parse("-h", "app", NULL), LAUNCH_HELP);
	assert_int_equal(parse("--version", NULL), LAUNCH_VERSION);
}

static void usage_errors(void **state)
{
	static const struct {
		const char *a[4];
		const char *msg;
	} cases[] = {
		{ { NULL }, "no program to launch (try --help)" },
		{ { "--interval", "5", NULL }, "no program to launch (try --help)" },
		{ { "--", NULL }, "no program to launch (try --help)" },
		{ { "--bogus", "app", NULL }, "unknown option '--bogus' (try --help)" },
		{ { "-z", "app", NULL }, "unknown option '-z' (try --help)" },
		{ { "--coord", NULL }, "option --coord needs a value" },
		{ { "--coord", "host:99999", "app", NULL },
		  "bad coordinator address 'host:99999': expected HOST[:PORT]" },
		{ { "--interval", "-3", "app", NULL },
		  "bad interval '-3': expected a number of seconds" },
		{ { "--interval", "1e3", "app", NULL },
		  "bad interval '1e3': expected a number of seconds" },
		{ { "--join", "--new-coordinator", "app", NULL },
		  "--join and --new-coordinator exclude each other" },
		{ { "--join=1", "app", NULL }, "option --join takes no value" },
		{ { "--ckptdir=", "app", NULL }, "empty --ckptdir" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum launch_parse_res r = parse(cases[i].a[0], cases[i].a[1], cases[i].a[2],
						cases[i].a[3], NULL);

		if (r != LAUNCH_USAGE_ERR)
			fail_msg("case %zu accepted", i);
		assert_string_equal(err, cases[i].msg);
	}
}

static void preload_values(void **state)
{
	char buf[256];

	assert_int_equal(launch_preload("/p/lib/libcryo.so", NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/p/lib/libcryo.so");
	assert_int_equal(launch_preload("/p/lib/libcryo.so", "", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/p/lib/libcryo.so");
	assert_int_equal(launch_preload("/p/lib/libcryo.so", "/a.so /b.so:/c.so", buf,
					sizeof(buf)), 0);
	assert_string_equal(buf, "/p/lib/libcryo.so:/a.so:/b.so:/c.so");
	/* launched from inside a launched program: no second copy */
	assert_int_equal(launch_preload("/p/lib/libcryo.so", "/p/lib/libcryo.so: /a.so ", buf,
					sizeof(buf)), 0);
	assert_string_equal(buf, "/p/lib/libcryo.so:/a.so");
	assert_int_equal(launch_preload("/p/lib/libcryo.so", "/a.so", buf, 20), -1);
	assert_int_equal(launch_preload("/p/lib/libcryo.so", NULL, buf, 5), -1);
}

static void find_programs(void **state)
{
	char dir[] = "/tmp/cryo-test-launch-XXXXXX", path[PATH_MAX], out[PATH_MAX], pathenv[PATH_MAX];
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tool", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0755);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/data", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);

	snprintf(pathenv, sizeof(pathenv), "/nonexistent:%s", dir);
	assert_int_equal(launch_find_program("tool", pathenv, out, sizeof(out)), 0);
	snprintf(path, sizeof(path), "%s/tool", dir);
	assert_string_equal(out, path);
	assert_int_equal(launch_find_program(path, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, path);

	errno = 0;
	assert_int_equal(launch_find_program("no-such-tool", pathenv, out, sizeof(out)), -1);
	assert_int_equal(errno, ENOENT);
	if (geteuid() != 0) {	/* root may execute anything with an x bit only */
		errno = 0;
		assert_int_equal(launch_find_program("data", pathenv, out, sizeof(out)), -1);
		assert_int_equal(errno, EACCES);
	}
	errno = 0;
	assert_int_equal(launch_find_program(dir, pathenv, out, sizeof(out)), -1);	/* a dir */
	assert_int_equal(errno, EACCES);
	errno = 0;
	assert_int_equal(launch_find_program("", pathenv, out, sizeof(out)), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(launch_find_program("sh", NULL, out, sizeof(out)), 0);	/* /bin:/usr/bin */

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(defaults),
		T(every_option),
		T(equals_forms_and_double_dash),
		T(environment_address),
		T(help_and_version),
		T(usage_errors),
		T(preload_values),
		T(find_programs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
