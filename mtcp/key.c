/* Loading image encryption keys from a key file.
 *
 * A key file holds the 32-byte AES-256 key of mtcp/image.c's sealing,
 * either raw or as 64 hex digits (what `openssl rand -hex 32` prints). Like
 * an ssh private key it must be a regular file of its owner alone: a key
 * that group or others can read is refused, not used. The key is read into
 * the caller's buffer (libcryo keeps it in scratch memory that is never
 * saved in an image) and every other copy, on the stack, is wiped. Messages
 * name the file, never its contents. */
#define LOG_PREFIX ""
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mtcp/key.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/log.h"

void key_wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

int key_parse(const uint8_t *buf, size_t len, uint8_t out[KEY_LEN])
{
	size_t i;

	if (len == KEY_LEN) {
		memcpy(out, buf, KEY_LEN);
		return 0;
	}
	if (len == 2 * KEY_LEN + 1 && buf[len - 1] == '\n')
		len--;
	if (len != 2 * KEY_LEN)
		return -1;
	for (i = 0; i < KEY_LEN; i++) {
		int hi = nolibc_hexval(buf[2 * i]), lo = nolibc_hexval(buf[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			key_wipe(out, KEY_LEN);
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int key_load(const char *path, uint8_t out[KEY_LEN])
{
	uint8_t buf[2 * KEY_LEN + 2];	/* one byte more than any valid file */
	struct stat st;
	size_t len = 0;
	int fd, ret = -1;

	memset(out, 0, KEY_LEN);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		log_perror("open key file %s", path);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		log_perror("fstat key file %s", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		/* The logger has no %o. */
		log_err("key file %s is accessible by group or others (mode 0%c%c%c): chmod 600 it",
			path, '0' + (int)(st.st_mode >> 6 & 7), '0' + (int)(st.st_mode >> 3 & 7),
			'0' + (int)(st.st_mode & 7));
		goto out;
	}
	while (len < sizeof(buf)) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_perror("read key file %s", path);
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (key_parse(buf, len, out) < 0) {
		log_err("key file %s holds %s%zu bytes: expected 32 raw bytes or 64 hex digits",
			path, len == sizeof(buf) ? "more than " : "", len == sizeof(buf) ? len - 1 : len);
		goto out;
	}
	ret = 0;
out:
	key_wipe(buf, sizeof(buf));
	close(fd);
	return ret;
}

int key_load_env(uint8_t out[KEY_LEN])
{
	const char *path = getenv(KEY_ENV);

	if (!path || !*path)
		return 0;
	return key_load(path, out) < 0 ? -1 : 1;
}
