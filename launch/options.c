/* cryo_launch's option parsing, LD_PRELOAD value and PATH search; see
 * options.h. No side effects: launch.c acts on the results. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "coordinator/protocol.h"
#include "launch/options.h"
#include "mtcp/util.h"

#define INTERVAL_MAX 315360000L	/* ten years */

enum launch_parse_res launch_parse(int argc, char **argv, struct launch_opts *o, char *err,
				   size_t errsz)
{
	const char *coord = NULL;
	int i, join = 0, fresh = 0;

	memset(o, 0, sizeof(*o));
	o->interval = -1;
	coord_default_addr(o->host, sizeof(o->host), &o->port);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = NULL, *val = NULL;
		size_t n;

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;	/* PROGRAM */
		if (!strncmp(a, "--", 2))
			eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (strlen(name) == n && !strncmp(a, name, n))
		if (IS("--coord") || IS("--ckptdir") || IS("--interval")) {
			if (eq) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				snprintf(err, errsz, "option %s needs a value", a);
				return LAUNCH_USAGE_ERR;
			}
		} else if (eq) {
			snprintf(err, errsz, "option %.*s takes no value", (int)n, a);
			return LAUNCH_USAGE_ERR;
		}
		if (IS("--help") || IS("-h")) {
			return LAUNCH_HELP;
		} else if (IS("--version")) {
			return LAUNCH_VERSION;
		} else if (IS("--coord")) {
			coord = val;
		} else if (IS("--ckptdir")) {
			if (!*val) {
				snprintf(err, errsz, "empty --ckptdir");
				return LAUNCH_USAGE_ERR;
			}
			o->ckptdir = val;
		} else if (IS("--interval")) {
			uint64_t v;

			if (util_parse_u64(val, &v) < 0 || v > INTERVAL_MAX) {
				snprintf(err, errsz,
					 "bad interval '%s': expected a number of seconds", val);
				return LAUNCH_USAGE_ERR;
			}
			o->interval = (long)v;
		} else if (IS("--join")) {
			join = 1;
		} else if (IS("--new-coordinator")) {
			fresh = 1;
		} else if (IS("--exit-after-ckpt")) {
			o->exit_after = 1;
		} else {
			snprintf(err, errsz, "unknown option '%s' (try --help)", a);
			return LAUNCH_USAGE_ERR;
		}
#undef IS
	}
	if (join && fresh) {
		snprintf(err, errsz, "--join and --new-coordinator exclude each other");
		return LAUNCH_USAGE_ERR;
	}
	o->mode = join ? LAUNCH_JOIN : fresh ? LAUNCH_NEW : LAUNCH_ENSURE;
	if (coord && coord_parse_addr(coord, o->host, sizeof(o->host), &o->port) < 0) {
		snprintf(err, errsz, "bad coordinator address '%s': expected HOST[:PORT]", coord);
		return LAUNCH_USAGE_ERR;
	}
	if (i >= argc) {
		snprintf(err, errsz, "no program to launch (try --help)");
		return LAUNCH_USAGE_ERR;
	}
	o->prog = i;
	return LAUNCH_RUN;
}

/* Length of the next entry of a space/colon separated list at s. */
static size_t entry_len(const char *s)
{
	return strcspn(s, " :");
}

int launch_preload(const char *lib, const char *old, char *buf, size_t size)
{
	size_t len = strlen(lib), ll = len;

	if (len + 1 > size)
		return -1;
	memcpy(buf, lib, len + 1);
	while (old && *old) {
		size_t n;

		old += strspn(old, " :");
		n = entry_len(old);
		if (!n)
			break;
		if (!(n == ll && !strncmp(old, lib, n))) {
			if (len + 1 + n + 1 > size)
				return -1;
			buf[len++] = ':';
			memcpy(buf + len, old, n);
			len += n;
			buf[len] = '\0';
		}
		old += n;
	}
	return 0;
}

/* 0 if path is a regular file we may execute; -1 with errno. */
static int executable(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		errno = EACCES;
		return -1;
	}
	return access(path, X_OK);
}

int launch_find_program(const char *name, const char *path, char *out, size_t size)
{
	int denied = 0;

	if (!*name) {
		errno = ENOENT;
		return -1;
	}
	if (strchr(name, '/')) {
		if (executable(name) < 0)
			return -1;
		if ((size_t)snprintf(out, size, "%s", name) >= size) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	if (!path)
		path = "/bin:/usr/bin";
	for (;;) {
		size_t n = strcspn(path, ":");
		int w;

		if (n == 0)
			w = snprintf(out, size, "./%s", name);
		else
			w = snprintf(out, size, "%.*s/%s", (int)n, path, name);
		if (w >= 0 && (size_t)w < size) {
			if (executable(out) == 0)
				return 0;
			if (errno == EACCES)
				denied = 1;
		}
		if (!path[n])
			break;
		path += n + 1;
	}
	errno = denied ? EACCES : ENOENT;
	return -1;
}
