/* /proc/PID/maps line parsing and area classification; see maps_parse.h. */
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include "mtcp/maps_parse.h"
#include "mtcp/nolibc/string.h"

static int parse_hex(char **s, uint64_t *out)
{
	uint64_t v = 0;
	int d, n = 0;

	while ((d = nolibc_hexval(**s)) >= 0) {
		v = v << 4 | (uint64_t)d;
		(*s)++;
		n++;
	}
	*out = v;
	return n ? 0 : -1;
}

static int parse_dec(char **s, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (**s >= '0' && **s <= '9') {
		v = v * 10 + (uint64_t)(*(*s)++ - '0');
		n++;
	}
	*out = v;
	return n ? 0 : -1;
}

static int expect(char **s, char c)
{
	if (**s != c)
		return -1;
	(*s)++;
	return 0;
}

static void skip_spaces(char **s)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
}

int maps_is_vdso(const char *path)
{
	return !nolibc_strcmp(path, "[vdso]") || !nolibc_strcmp(path, "[vvar]") ||
	       !nolibc_strcmp(path, "[vvar_vclock]");
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = nolibc_strlen(suffix);

	return len >= n && !nolibc_memcmp(s + len - n, suffix, n);
}

static void classify(struct image_area *a, char *path, int shared)
{
	size_t len = nolibc_strlen(path);
	int deleted = 0;

	if (path[0] == '/' && ends_with(path, len, " (deleted)")) {
		path[len - 10] = '\0';
		deleted = 1;
		a->flags |= IMAGE_AREA_F_DELETED;
	}
	if (ends_with(path, nolibc_strlen(path), "/libcryo.so"))
		a->flags |= IMAGE_AREA_F_LIBCRYO;
	if (path[0] == '/' && !deleted && nolibc_strncmp(path, "/memfd:", 7) &&
	    nolibc_strncmp(path, "/SYSV", 5)) {
		a->kind = shared ? IMAGE_AREA_FILE_SHARED : IMAGE_AREA_FILE_PRIVATE;
		return;
	}
	if (maps_is_vdso(path)) {
		a->kind = IMAGE_AREA_VDSO;
		return;
	}
	if (!nolibc_strcmp(path, "[vsyscall]") || !nolibc_strcmp(path, "[uprobes]")) {
		a->kind = IMAGE_AREA_SKIP;
		return;
	}
	if (shared || !nolibc_strncmp(path, "[anon_shmem:", 12)) {
		a->kind = IMAGE_AREA_SHARED_ANON;
		return;
	}
	if (!nolibc_strcmp(path, "[stack]")) {
		a->kind = IMAGE_AREA_STACK;
		a->flags |= IMAGE_AREA_F_STACK;
		return;
	}
	if (!nolibc_strcmp(path, "[heap]"))
		a->flags |= IMAGE_AREA_F_HEAP;
	a->kind = IMAGE_AREA_ANON;	/* anonymous, [heap], [anon:name], private deleted file */
}

int maps_parse_line(char *line, struct image_area *a, const char **path, int *shared)
{
	char *s = line;
	uint64_t maj, min, ino;
	char perms[4];
	int i;

	nolibc_memset(a, 0, sizeof(*a));
	if (parse_hex(&s, &a->start) || expect(&s, '-') || parse_hex(&s, &a->end) || expect(&s, ' '))
		return -1;
	for (i = 0; i < 4; i++) {
		if (!*s)
			return -1;
		perms[i] = *s++;
	}
	skip_spaces(&s);
	if (parse_hex(&s, &a->pgoff) || expect(&s, ' '))
		return -1;
	if (parse_hex(&s, &maj) || expect(&s, ':') || parse_hex(&s, &min) || expect(&s, ' '))
		return -1;
	if (parse_dec(&s, &ino))
		return -1;
	if (a->end <= a->start || (a->start & 4095) || (a->end & 4095))
		return -1;
	skip_spaces(&s);
	*path = s;
	a->dev = makedev((unsigned)maj, (unsigned)min);
	a->ino = ino;
	a->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	*shared = perms[3] == 's';
	classify(a, s, *shared);
	return 0;
}
