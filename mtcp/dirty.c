/* Dirty-page tracking and the incremental chain's state; see dirty.h.
 *
 * The probe (dirty_prepare, threads running) tries, unless CRYO_DIRTY
 * names one: (1) userfaultfd(O_CLOEXEC|O_NONBLOCK), again with
 * UFFD_USER_MODE_ONLY on EPERM (unprivileged, vm.unprivileged_userfaultfd
 * = 0), UFFDIO_API with WP_ASYNC (and WP_UNPOPULATED where offered), then
 * a one-page trial: register, write, PAGEMAP_SCAN must report the page as
 * written and protect it, a second scan must not; (2) soft-dirty: a page
 * written after clear_refs must show bit 55 in /proc/self/pagemap, and not
 * after the next clear_refs. Whatever fails is said in the one line that
 * names the mode.
 *
 * The chain's state (the last committed image's name and digest, the
 * chain's length) lives in libcryo's data, so an image holds the state of
 * the chain it belongs to; a restarted or forked process forgets it and
 * starts a new chain with a full image. */
#define LOG_PREFIX "dirty: "
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/codec.h"
#include "mtcp/dirty.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"

/* Newer than Debian's 6.1 uapi headers; the kernel says at run time. */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define UFFD_F_WP_UNPOPULATED (1ull << 13)
#define UFFD_F_WP_ASYNC (1ull << 15)

struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_IOC _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING (1u << 0)
#define PM_SCAN_CHECK_WPASYNC (1u << 1)

#define PM_SOFT_DIRTY (1ull << 55)
#define PAGE 4096ul
#define FULL_EVERY_DEFAULT 10

static int enabled;		/* CRYO_INCREMENTAL=1 */
static unsigned full_every = FULL_EVERY_DEFAULT;
static enum { WANT_AUTO, WANT_UFFD, WANT_SOFT, WANT_NONE } want;

static int probed;
static enum dirty_mode mode;
static int uffd = -1;
static int pagemap_fd = -1;

/* The chain: the last committed image, and the one being written. */
static struct image_parent chain;	/* depth 0 and no name: no parent */
static int chain_valid;
static struct image_parent pending;
static int pending_valid;
static int scanned;			/* protection bits were reset this checkpoint */
static int incremental;		/* this image */
static int tracking;		/* this checkpoint arms tracking */

void dirty_config(void)
{
	const char *e = getenv("CRYO_INCREMENTAL");
	char *end;
	long n;

	enabled = e && !strcmp(e, "1");
	e = getenv("CRYO_INCREMENTAL_FULL");
	if (e && *e) {
		n = strtol(e, &end, 10);
		if (*end || n < 1 || n > 1000000)
			log_warn("CRYO_INCREMENTAL_FULL=%s is not a number from 1 up; a full image every %d",
				 e, FULL_EVERY_DEFAULT);
		else
			full_every = (unsigned)n;
	}
	e = getenv("CRYO_DIRTY");
	if (!e || !*e || !strcmp(e, "auto"))
		want = WANT_AUTO;
	else if (!strcmp(e, "uffd"))
		want = WANT_UFFD;
	else if (!strcmp(e, "soft-dirty"))
		want = WANT_SOFT;
	else if (!strcmp(e, "none"))
		want = WANT_NONE;
	else
		log_warn("CRYO_DIRTY=%s is not auto, uffd, soft-dirty or none; using auto", e);
}

int dirty_enabled(void)
{
	return enabled;
}

static long scan_raw(uint64_t start, uint64_t end, uint64_t flags, struct dirty_region *out, size_t max,
		     uint64_t *walk_end)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags,
		.start = start,
		.end = end,
		.vec = (uint64_t)(uintptr_t)out,
		.vec_len = max,
		.category_anyof_mask = DIRTY_PAGE_PRESENT | DIRTY_PAGE_SWAPPED,
		.return_mask = DIRTY_PAGE_WRITTEN | DIRTY_PAGE_FILE | DIRTY_PAGE_PRESENT |
			       DIRTY_PAGE_SWAPPED | DIRTY_PAGE_PFNZERO,
	};
	long r = sys_ioctl(pagemap_fd, PAGEMAP_SCAN_IOC, &a);

	*walk_end = a.walk_end;
	return r;
}

/* The userfaultfd half of the probe. NULL if it works, else why not. */
static const char *probe_uffd(int *user_only)
{
	struct uffdio_api api;
	struct uffdio_register reg;
	struct dirty_region rg[4];
	const char *why = NULL;
	uint64_t walk;
	long fd, r, n1, n2;
	char *p;

	*user_only = 0;
	fd = sys_call1(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd == -EPERM) {
		fd = sys_call1(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		*user_only = 1;
	}
	if (sys_failed(fd))
		return fd == -ENOSYS ? "no userfaultfd system call" : "userfaultfd() refused";
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_F_WP_ASYNC | UFFD_F_WP_UNPOPULATED;
	r = sys_ioctl((int)fd, UFFDIO_API, &api);
	if (sys_failed(r)) {
		/* A refused UFFDIO_API leaves the fd unusable: a new one. */
		sys_close((int)fd);
		fd = sys_call1(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | (*user_only ? UFFD_USER_MODE_ONLY : 0));
		memset(&api, 0, sizeof(api));
		api.api = UFFD_API;
		api.features = UFFD_F_WP_ASYNC;
		if (sys_failed(fd) || sys_failed(sys_ioctl((int)fd, UFFDIO_API, &api))) {
			if (!sys_failed(fd))
				sys_close((int)fd);
			return "no UFFD_FEATURE_WP_ASYNC";
		}
	}
	pagemap_fd = (int)sys_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pagemap_fd < 0 || p == MAP_FAILED) {
		why = "cannot open /proc/self/pagemap";
		goto out;
	}
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uint64_t)(uintptr_t)p;
	reg.range.len = PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	p[0] = 1;
	if (sys_failed(sys_ioctl((int)fd, UFFDIO_REGISTER, &reg))) {
		why = "UFFDIO_REGISTER_MODE_WP refused";
		goto out;
	}
	n1 = scan_raw(reg.range.start, reg.range.start + PAGE, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		      &rg[0], 2, &walk);
	n2 = scan_raw(reg.range.start, reg.range.start + PAGE, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		      &rg[2], 2, &walk);
	if (n1 == -ENOTTY || n1 == -EINVAL)
		why = "no PAGEMAP_SCAN";
	else if (n1 != 1 || !(rg[0].categories & DIRTY_PAGE_WRITTEN) || n2 != 1 ||
		 (rg[2].categories & DIRTY_PAGE_WRITTEN))
		why = "PAGEMAP_SCAN does not report written pages";
	p[0] = 2;	/* the write fault resolves in the kernel (async) */
out:
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	if (why) {
		sys_close((int)fd);
		if (pagemap_fd >= 0)
			sys_close(pagemap_fd);
		pagemap_fd = -1;
		return why;
	}
	uffd = ckpt_reserve_fd((int)fd);
	pagemap_fd = ckpt_reserve_fd(pagemap_fd);
	return NULL;
}

static int clear_refs(void)
{
	long fd = sys_open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC, 0), r;

	if (sys_failed(fd))
		return (int)fd;
	r = sys_write((int)fd, "4", 1);
	sys_close((int)fd);
	return r == 1 ? 0 : (int)(r < 0 ? r : -EIO);
}

static int soft_dirty_bit(const volatile char *p, int fd)
{
	uint64_t e = 0;

	if (sys_pread(fd, &e, sizeof(e), (long)((uintptr_t)p / PAGE * 8)) != sizeof(e))
		return -1;
	return (e & PM_SOFT_DIRTY) != 0;
}

/* The soft-dirty half of the probe. NULL if it works, else why not. */
static const char *probe_soft(void)
{
	const char *why = NULL;
	volatile char *p;
	long fd;

	fd = sys_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(fd))
		return "cannot open /proc/self/pagemap";
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		sys_close((int)fd);
		return "no memory to probe soft-dirty bits";
	}
	p[0] = 1;
	if (clear_refs() < 0)
		why = "cannot write /proc/self/clear_refs";
	else if (soft_dirty_bit(p, (int)fd) != 0)
		why = "no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)";
	else {
		p[0] = 2;
		if (soft_dirty_bit(p, (int)fd) != 1)
			why = "no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)";
	}
	munmap((void *)p, PAGE);
	if (why) {
		sys_close((int)fd);
		return why;
	}
	pagemap_fd = ckpt_reserve_fd((int)fd);
	return NULL;
}

void dirty_prepare(void)
{
	const char *no_uffd = "not tried", *no_soft = "not tried";
	int user_only = 0;

	if (!enabled || probed)
		return;
	probed = 1;
	mode = DIRTY_NONE;
	if (want == WANT_NONE) {
		log_info("incremental images: dirty tracking off (CRYO_DIRTY=none); every image is full");
		return;
	}
	if (want == WANT_AUTO || want == WANT_UFFD) {
		no_uffd = probe_uffd(&user_only);
		if (!no_uffd) {
			mode = DIRTY_UFFD;
			log_info("incremental images: dirty pages tracked with userfaultfd write protection "
				 "(WP_ASYNC%s) and PAGEMAP_SCAN", user_only ? ", UFFD_USER_MODE_ONLY" : "");
			return;
		}
	}
	if (want == WANT_AUTO || want == WANT_SOFT) {
		no_soft = probe_soft();
		if (!no_soft) {
			mode = DIRTY_SOFT;
			log_info("incremental images: dirty pages tracked with soft-dirty bits (userfaultfd: %s)",
				 no_uffd);
			return;
		}
	}
	log_warn("incremental images: no dirty tracking on this kernel (userfaultfd write protection: %s; "
		 "soft-dirty: %s); every image is full", no_uffd, no_soft);
}

int dirty_begin(int full, int stream)
{
	incremental = 0;
	tracking = enabled && !stream && mode != DIRTY_NONE;
	scanned = tracking;
	pending_valid = 0;
	if (!tracking) {
		chain_valid = 0;
		return 0;
	}
	/* chain.depth is the depth the next image would have: the chain holds
	 * at most full_every images, the full one included. */
	incremental = !full && chain_valid && chain.depth < full_every;
	return incremental;
}

int dirty_incremental(void)
{
	return incremental;
}

enum dirty_mode dirty_tracking(void)
{
	return tracking ? mode : DIRTY_NONE;
}

const struct image_parent *dirty_parent(void)
{
	return incremental ? &chain : NULL;
}

int dirty_register(uint64_t start, uint64_t end)
{
	struct uffdio_register reg;
	long r;

	memset(&reg, 0, sizeof(reg));
	reg.range.start = start;
	reg.range.len = end - start;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	r = sys_ioctl(uffd, UFFDIO_REGISTER, &reg);
	if (sys_failed(r)) {
		log_debug("cannot track writes to %p-%p (errno %ld): saved in full every time", (void *)start,
			  (void *)end, -r);
		return -1;
	}
	return 0;
}

long dirty_scan(uint64_t start, uint64_t end, struct dirty_region *out, size_t max, uint64_t *walk_end)
{
	return scan_raw(start, end, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, out, max, walk_end);
}

int dirty_clear_soft(void)
{
	int r = clear_refs();

	if (r < 0) {
		log_syserr(-r, "reset the soft-dirty bits (/proc/self/clear_refs)");
		return -1;
	}
	return 0;
}

void dirty_written(const char *name, uint32_t gen, uint64_t upid, const uint8_t digest[32], uint64_t bytes)
{
	const char *base;

	pending_valid = 0;
	if (!tracking || !name)
		return;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (nolibc_strlen(base) >= sizeof(pending.name))
		return;
	memset(&pending, 0, sizeof(pending));
	nolibc_strlcpy(pending.name, base, sizeof(pending.name));
	memcpy(pending.sha256, digest, sizeof(pending.sha256));
	pending.bytes = bytes;
	pending.upid = upid;
	pending.generation = gen;
	pending.depth = incremental ? chain.depth : 0;
	pending_valid = 1;
}

void dirty_commit(void)
{
	/* The PARENT record of the next image: depth counts the images above
	 * the full one, the next one included. */
	if (pending_valid) {
		chain = pending;
		chain.depth = pending.depth + 1;
		chain_valid = 1;
	} else {
		chain_valid = 0;
	}
	pending_valid = 0;
	scanned = 0;
}

void dirty_abort(void)
{
	if (scanned)
		chain_valid = 0;
	pending_valid = 0;
	scanned = 0;
}

void dirty_forget(int close_fd)
{
	if (close_fd) {
		if (uffd >= 0)
			sys_close(uffd);
		if (pagemap_fd >= 0)
			sys_close(pagemap_fd);
	}
	uffd = pagemap_fd = -1;
	probed = 0;
	mode = DIRTY_NONE;
	chain_valid = pending_valid = scanned = incremental = tracking = 0;
}
