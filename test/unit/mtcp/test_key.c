/* Unit tests of key file loading (mtcp/key.c): raw and hex keys, every
 * malformed length or digit refused, and files that group or others can
 * reach, directories and missing files refused in one line naming the file
 * but never the key. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mtcp/key.h"
#include "mtcp/log.h"

static int log_mfd = -1;
static char dir[] = "/tmp/cryo-key-test-XXXXXX";

static const char *log_take(void)
{
	static char buf[4096];
	ssize_t n = pread(log_mfd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	assert_int_equal(ftruncate(log_mfd, 0), 0);
	assert_int_equal(lseek(log_mfd, 0, SEEK_SET), 0);
	return buf;
}

static void assert_one_line(const char *want)
{
	const char *log = log_take();
	const char *nl = strchr(log, '\n');

	if (!nl || nl[1] || !strstr(log, want))
		fail_msg("expected one line with \"%s\", got:\n%s", want, log);
}

static const char *put(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

static void good_keys(void **state)
{
	uint8_t raw[32], out[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)i;
	assert_int_equal(key_load(put("raw", raw, 32, 0600), out), 0);
	assert_memory_equal(out, raw, 32);
	memset(out, 0, 32);
	assert_int_equal(key_load(put("hex", hex, 64, 0400), out), 0);
	assert_memory_equal(out, raw, 32);
	memset(out, 0, 32);
	{
		char nl[65];

		memcpy(nl, hex, 64);
		nl[64] = '\n';
		assert_int_equal(key_load(put("hexnl", nl, 65, 0600), out), 0);
		assert_memory_equal(out, raw, 32);
	}
	assert_string_equal(log_take(), "");
}

static void bad_contents(void **state)
{
	static const size_t lens[] = { 0, 1, 31, 33, 63, 66, 100 };
	char buf[100], bad[65];
	uint8_t out[32];

	(void)state;
	memset(buf, 'a', sizeof(buf));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		assert_int_equal(key_load(put("len", buf, lens[i], 0600), out), -1);
		assert_one_line("expected 32 raw bytes or 64 hex digits");
	}
	memcpy(bad, hex, 64);
	bad[10] = 'g';
	assert_int_equal(key_load(put("nothex", bad, 64, 0600), out), -1);
	assert_one_line("expected 32 raw bytes or 64 hex digits");
	for (int i = 0; i < 32; i++)
		assert_int_equal(out[i], 0);
	memcpy(bad, hex, 64);
	bad[64] = ' ';
	assert_int_equal(key_load(put("trailing", bad, 65, 0600), out), -1);
	assert_one_line("holds 65 bytes");
	/* The key is never in the message. */
	assert_int_equal(key_parse((const uint8_t *)hex, 64, out), 0);
	assert_int_equal(key_parse((const uint8_t *)hex, 63, out), -1);
}

static void bad_files(void **state)
{
	static const mode_t modes[] = { 0640, 0604, 0620, 0602, 0644, 0610 };
	uint8_t raw[32] = { 1 }, out[32];
	char path[256];

	(void)state;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(key_load(put("open", raw, 32, modes[i]), out), -1);
		assert_one_line("is accessible by group or others");
	}
	assert_int_equal(key_load(dir, out), -1);
	assert_one_line("is not a regular file");
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(key_load(path, out), -1);
	assert_one_line("open key file");
	assert_int_equal(key_load("/dev/null", out), -1);
	assert_one_line("/dev/null is not a regular file");
}

static void from_environment(void **state)
{
	uint8_t raw[32] = { 7 }, out[32];

	(void)state;
	unsetenv(KEY_ENV);
	assert_int_equal(key_load_env(out), 0);
	setenv(KEY_ENV, "", 1);
	assert_int_equal(key_load_env(out), 0);
	setenv(KEY_ENV, put("env", raw, 32, 0600), 1);
	assert_int_equal(key_load_env(out), 1);
	assert_memory_equal(out, raw, 32);
	chmod(getenv(KEY_ENV), 0644);
	assert_int_equal(key_load_env(out), -1);
	assert_one_line("chmod 600");
	unsetenv(KEY_ENV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_keys),
		cmocka_unit_test(bad_contents),
		cmocka_unit_test(bad_files),
		cmocka_unit_test(from_environment),
	};
	char cmd[300];
	int ret;

	log_mfd = memfd_create("log", MFD_CLOEXEC);
	if (log_mfd < 0 || !mkdtemp(dir))
		return 1;
	log_setup(LOG_WARN, log_mfd);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
