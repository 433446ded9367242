/* The shm plugin: shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, a
 * shared mapping of /dev/zero, memfd, a /dev/shm file already unlinked,
 * such as the semaphores of Python's multiprocessing) stays shared between
 * the processes of the computation after a restart.
 *
 * Each process's image holds its own copy of such an area, and the
 * restorer brings each back in a private memfd: the content is right, but
 * two processes no longer see each other's writes. So:
 *   ckpt            note every shared anonymous area (start, end, offset,
 *                   and the identity of the object: device and inode).
 *   restart_share   per object, every holder tries to bind an abstract
 *                   socket named by the computation and the object; the one
 *                   that succeeds owns it: it makes one memfd, copies its
 *                   own areas in at their offsets, maps the memfd over them
 *                   and sends it to every process.
 *   restart_refill  every other holder maps the owner's memfd over its own
 *                   areas (MAP_FIXED|MAP_SHARED, same offsets).
 *   restart_resume  the owners let go of their names.
 * Every copy was frozen at the same moment, so any holder's is the object's.
 * Not kept: a SysV segment comes back as shared memory, not as a segment
 * (shmget/shmctl do not know it); a holder's area that reaches past the
 * owner's last byte is left private, with a warning. */
#define LOG_PREFIX "shm: "
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include "mtcp/ckpt.h"
#include "mtcp/image.h"
#include "mtcp/log.h"
#include "mtcp/maps_parse.h"
#include "mtcp/nolibc/fmt.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"
#include "plugin/share.h"
#include "plugin/shm/shm.h"

#define SHM_MAX 4096
#define MAPS_MAX (8ul << 20)
#define TAG_SHM 0x73686d00u

struct shm_area {
	uint64_t start, end, pgoff;
	uint64_t dev, ino;
	uint32_t prot;
	int owner_sock;		/* restart: this process owns the object (first area of it) */
	int memfd;		/* restart: the object's memfd (first area of it) */
};

static struct shm_area *tab;	/* ckpt_mem: in the image */
static size_t ntab;
static char *maps_buf;		/* scratch: not in the image */

static int shm_pre_ckpt(void)
{
	if (!tab)
		tab = ckpt_mem(SHM_MAX * sizeof(*tab));
	if (!maps_buf)
		maps_buf = ckpt_scratch(MAPS_MAX);
	return tab && maps_buf ? 0 : -1;
}

static int shm_ckpt(void)
{
	long fd, n, len = 0;
	char *line, *nl;

	ntab = 0;
	fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(fd)) {
		log_syserr((int)-fd, "open /proc/self/maps");
		return -1;
	}
	while ((n = sys_read((int)fd, maps_buf + len, MAPS_MAX - 1 - (size_t)len)) > 0)
		len += n;
	sys_close((int)fd);
	maps_buf[len] = '\0';
	for (line = maps_buf; *line; line = nl) {
		struct image_area a;
		const char *path;
		int shared;

		nl = line;
		while (*nl && *nl != '\n')
			nl++;
		if (*nl)
			*nl++ = '\0';
		nolibc_memset(&a, 0, sizeof(a));
		if (maps_parse_line(line, &a, &path, &shared) < 0 || a.kind != IMAGE_AREA_SHARED_ANON)
			continue;
		if (ntab >= SHM_MAX) {
			log_err("more than %d shared memory areas", SHM_MAX);
			return -1;
		}
		tab[ntab].start = a.start;
		tab[ntab].end = a.end;
		tab[ntab].pgoff = a.pgoff;
		tab[ntab].dev = a.dev;
		tab[ntab].ino = a.ino;
		tab[ntab].prot = a.prot;
		tab[ntab].owner_sock = tab[ntab].memfd = -1;
		ntab++;
	}
	return 0;
}

static uint64_t tag_of(const struct shm_area *a)
{
	uint64_t v[3] = { TAG_SHM, a->dev, a->ino };

	return share_tag(v, 3);
}

static int first_of(size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (tab[j].dev == tab[i].dev && tab[j].ino == tab[i].ino)
			return 0;
	return 1;
}

/* Binds the object's name: 1 if this process now owns it, 0 if another
 * does, -1 after logging. */
static int claim(struct shm_area *a)
{
	struct sockaddr_un un;
	int s, n;

	nolibc_memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	n = nolibc_snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "cryo-%016llx-shm-%llx-%llx",
			    (unsigned long long)ckpt_comp_id(), (unsigned long long)a->dev,
			    (unsigned long long)a->ino);
	s = (int)sys_call3(__NR_socket, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		log_syserr(-s, "socket");
		return -1;
	}
	n = (int)sys_call3(__NR_bind, s, &un, offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	if (n == -EADDRINUSE) {
		sys_close(s);
		return 0;
	}
	if (sys_failed(n)) {
		log_syserr(-n, "bind @%s", un.sun_path + 1);
		sys_close(s);
		return -1;
	}
	a->owner_sock = ckpt_reserve_fd(s);
	return 1;
}

static int map_over(const struct shm_area *a, int memfd)
{
	long r = sys_mmap((void *)(uintptr_t)a->start, a->end - a->start, (int)a->prot, MAP_SHARED | MAP_FIXED,
			  memfd, (long)a->pgoff);

	if (sys_failed(r)) {
		log_syserr((int)-r, "map the shared memory over %#llx-%#llx", (unsigned long long)a->start,
			   (unsigned long long)a->end);
		return -1;
	}
	return 0;
}

static int shm_restart_share(void)
{
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct shm_area *a = &tab[i];
		uint64_t size = 0, msg[3];
		long fd;
		int c;

		a->owner_sock = a->memfd = -1;
		if (!first_of(i))
			continue;
		c = claim(a);
		if (c <= 0) {
			ret |= c;
			continue;
		}
		for (size_t j = i; j < ntab; j++)
			if (tab[j].dev == a->dev && tab[j].ino == a->ino &&
			    tab[j].pgoff + (tab[j].end - tab[j].start) > size)
				size = tab[j].pgoff + (tab[j].end - tab[j].start);
		fd = sys_memfd_create("cryo-shm", MFD_CLOEXEC);
		if (sys_failed(fd) || sys_failed(sys_ftruncate((int)fd, (long)size))) {
			log_syserr(sys_failed(fd) ? (int)-fd : ENOSPC, "memfd of %llu bytes", (unsigned long long)size);
			if (!sys_failed(fd))
				sys_close((int)fd);
			ret = -1;
			continue;
		}
		fd = ckpt_reserve_fd((int)fd);	/* off the numbers the program's fds take */
		for (size_t j = i; j < ntab; j++) {
			struct shm_area *b = &tab[j];
			uint64_t len = b->end - b->start;
			long w;

			if (b->dev != a->dev || b->ino != a->ino)
				continue;
			if (!(b->prot & PROT_READ))
				sys_mprotect((void *)(uintptr_t)b->start, len, PROT_READ);
			w = sys_call4(__NR_pwrite64, (int)fd, (void *)(uintptr_t)b->start, len, (long)(b->pgoff));
			if (w != (long)len)
				log_syserr(w < 0 ? (int)-w : EIO, "copy %#llx-%#llx into the memfd",
					   (unsigned long long)b->start, (unsigned long long)b->end);
			if (map_over(b, (int)fd) < 0)
				ret = -1;
		}
		a->memfd = (int)fd;
		msg[0] = a->dev;
		msg[1] = a->ino;
		msg[2] = size;
		if (share_broadcast(tag_of(a), msg, sizeof(msg), &a->memfd, 1) < 0)
			ret = -1;
	}
	return ret;
}

static int shm_restart_refill(void)
{
	int ret = 0;

	for (size_t i = 0; i < ntab; i++) {
		struct shm_area *a = &tab[i];
		uint64_t msg[3];
		unsigned nfds = 0;
		int fd = -1;

		if (!first_of(i) || a->owner_sock >= 0)
			continue;
		if (share_take(tag_of(a), msg, sizeof(msg), &fd, 1, &nfds) < 0 || nfds != 1 ||
		    msg[0] != a->dev || msg[1] != a->ino) {
			log_warn("shared memory at %#llx was not sent by its owner: it stays private to this process",
				 (unsigned long long)a->start);
			if (nfds)
				sys_close(fd);
			ret = -1;
			continue;
		}
		a->memfd = ckpt_reserve_fd(fd);
		for (size_t j = i; j < ntab; j++) {
			struct shm_area *b = &tab[j];

			if (b->dev != a->dev || b->ino != a->ino)
				continue;
			if (b->pgoff + (b->end - b->start) > msg[2]) {
				log_warn("shared memory at %#llx reaches past its owner's: it stays private",
					 (unsigned long long)b->start);
				continue;
			}
			if (map_over(b, a->memfd) < 0)
				ret = -1;
		}
	}
	return ret;
}

static int shm_restart_resume(void)
{
	for (size_t i = 0; i < ntab; i++) {
		if (tab[i].owner_sock >= 0)
			sys_close(tab[i].owner_sock);
		if (tab[i].memfd >= 0)
			sys_close(tab[i].memfd);
		tab[i].owner_sock = tab[i].memfd = -1;
	}
	return 0;
}

const struct cryo_plugin shm_plugin = {
	.name = "shm",
	.api = CRYO_PLUGIN_API,
	.pre_ckpt = shm_pre_ckpt,
	.ckpt = shm_ckpt,
	.restart_share = shm_restart_share,
	.restart_refill = shm_restart_refill,
	.restart_resume = shm_restart_resume,
};
