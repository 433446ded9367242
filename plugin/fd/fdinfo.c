/* Pure helpers of the fd plugin (see fdinfo.h): called by plugin/fd/fd.c
 * with the threads parked, so nothing here allocates or calls libc. */
#include "mtcp/nolibc/string.h"
#include "plugin/fd/fdinfo.h"

#define DELETED_SUFFIX " (deleted)"
#define DELETED_LEN (sizeof(DELETED_SUFFIX) - 1)

int fd_parse_fdinfo(const char *text, unsigned long long *pos, unsigned *flags)
{
	const char *s = text;
	int have = 0;

	while (*s) {
		if (!nolibc_strncmp(s, "pos:", 4)) {
			unsigned long long v = 0;

			for (s += 4; *s == ' ' || *s == '\t'; s++)
				;
			for (; *s >= '0' && *s <= '9'; s++)
				v = v * 10 + (unsigned)(*s - '0');
			*pos = v;
			have |= 1;
		} else if (!nolibc_strncmp(s, "flags:", 6)) {
			unsigned v = 0;

			for (s += 6; *s == ' ' || *s == '\t'; s++)
				;
			for (; *s >= '0' && *s <= '7'; s++)
				v = v * 8 + (unsigned)(*s - '0');
			*flags = v;
			have |= 2;
		}
		while (*s && *s != '\n')
			s++;
		if (*s)
			s++;
	}
	return have == 3 ? 0 : -1;
}

size_t fd_strip_deleted(const char *link)
{
	size_t n = nolibc_strlen(link);

	if (n > DELETED_LEN && !nolibc_strcmp(link + n - DELETED_LEN, DELETED_SUFFIX))
		return n - DELETED_LEN;
	return n;
}

enum fd_link fd_classify_link(const char *link)
{
	size_t n = nolibc_strlen(link);

	if (!nolibc_strncmp(link, "pipe:[", 6))
		return FD_LINK_PIPE;
	if (!nolibc_strncmp(link, "socket:[", 8))
		return FD_LINK_SOCKET;
	if (!nolibc_strncmp(link, "anon_inode:", 11))
		return FD_LINK_ANON;
	if (link[0] != '/')
		return FD_LINK_OTHER;
	if (!nolibc_strcmp(link, "/dev/ptmx") || !nolibc_strncmp(link, "/dev/pts/", 9))
		return FD_LINK_PTY;
	if (fd_strip_deleted(link) == n)
		return FD_LINK_PATH;
	if (!nolibc_strncmp(link, "/memfd:", 7))
		return FD_LINK_MEMFD;
	return FD_LINK_DELETED;
}

size_t fd_dir_len(const char *path, size_t len)
{
	size_t i = len;

	while (i > 0 && path[i - 1] != '/')
		i--;
	if (i == 0)
		return 0;
	return i == 1 ? 1 : i - 1;
}

void fd_memfd_name(const char *link, char *name, size_t cap)
{
	size_t n = fd_strip_deleted(link), k = 0;

	if (!cap)
		return;
	if (cap > 250)
		cap = 250;
	for (size_t i = 7; i < n && k + 1 < cap; i++)
		name[k++] = link[i];
	name[k] = '\0';
}

size_t fd_proc_pid_off(const char *path, pid_t *pid)
{
	const char *s;
	long v = 0;

	if (nolibc_strncmp(path, "/proc/", 6))
		return 0;
	for (s = path + 6; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (*s - '0');
		if (v > 0x7fffffff)
			return 0;
	}
	if (s == path + 6 || (*s && *s != '/') || v <= 0)
		return 0;
	*pid = (pid_t)v;
	return (size_t)(s - path);
}

int fd_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	switch (*s) {
	case 'k': case 'K':
		mul = 1ull << 10;
		s++;
		break;
	case 'm': case 'M':
		mul = 1ull << 20;
		s++;
		break;
	case 'g': case 'G':
		mul = 1ull << 30;
		s++;
		break;
	default:
		break;
	}
	if (*s || (v && mul > UINT64_MAX / v))
		return -1;
	*out = v * mul;
	return 0;
}

uint64_t fd_tag(unsigned type, pid_t owner_vpid, int owner_fd)
{
	return (0x46ull << 56) | ((uint64_t)(type & 0xff) << 48) |
	       (((uint64_t)(uint32_t)owner_vpid & 0xffffff) << 24) | ((uint64_t)(uint32_t)owner_fd & 0xffffff);
}
