/* Walking the program's open fds (see fdscan.h). Raw syscalls only: this
 * runs at ELECT, DRAIN and WRITE with every user thread parked. */
#define LOG_PREFIX "fdscan: "
#include <fcntl.h>
#include <stdint.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/sys.h"
#include "plugin/fd/fd.h"
#include "plugin/fdscan.h"

int fdscan_each(int (*cb)(int fd, const struct stat *st, void *arg), void *arg)
{
	char buf[4096];
	long n, dirfd;
	int ret = 0;

	dirfd = sys_open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (sys_failed(dirfd)) {
		log_syserr((int)-dirfd, "open /proc/self/fd");
		return -1;
	}
	while (!ret && (n = sys_getdents64((int)dirfd, buf, sizeof(buf))) > 0) {
		long off = 0;

		while (!ret && off < n) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; }
				*d = (void *)(buf + off);
			struct stat st;
			const char *p;
			int fd = 0;

			off += d->reclen;
			for (p = d->name; *p >= '0' && *p <= '9'; p++)
				fd = fd * 10 + (*p - '0');
			if (*p || p == d->name || fd == dirfd || fd >= ckpt_fd_base())
				continue;
			if (sys_failed(sys_fstat(fd, &st)))
				continue;
			ret = cb(fd, &st, arg);
		}
	}
	sys_close((int)dirfd);
	return ret;
}

int fdscan_info(int fd, unsigned long long *pos, unsigned *flags)
{
	char name[40], info[512];
	long f, n;

	nolibc_snprintf(name, sizeof(name), "/proc/self/fdinfo/%d", fd);
	f = sys_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(f))
		return -1;
	n = sys_read((int)f, info, sizeof(info) - 1);
	sys_close((int)f);
	if (n <= 0)
		return -1;
	info[n] = '\0';
	if (fd_parse_fdinfo(info, pos, flags) < 0)
		return -1;
	/* fdinfo's O_CLOEXEC is the fd's flag or'ed with the description's
	 * f_flags, which can hold the bit too (TIOCGPTPEER keeps it): ask
	 * the fd itself. */
	n = sys_fcntl(fd, F_GETFD, 0);
	if (!sys_failed(n))
		*flags = (*flags & ~(unsigned)O_CLOEXEC) | ((n & FD_CLOEXEC) ? (unsigned)O_CLOEXEC : 0);
	return 0;
}
