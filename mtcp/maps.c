/* Reading the address space at checkpoint time: /proc/self/maps for the
 * areas, /proc/self/pagemap for which pages to save. Runs on the checkpoint
 * thread with every other thread parked, so it uses raw syscalls and
 * memory reserved with mmap (ckpt_scratch, never saved in images).
 *
 * What is saved: for private anonymous areas, stacks and shared anonymous
 * memory, the pages present or swapped that are not all zero; for private
 * file mappings, only the pages the process wrote (present and no longer
 * file-backed); for shared file mappings, nothing (the file holds them);
 * the vdso block, [vsyscall] and the library's scratch memory, nothing.
 *
 * Incremental images (mtcp/dirty.h, doc/incremental.md): in an area whose
 * writes were tracked since the parent image, only the pages written since
 * are saved, and the present pages that were not written are listed as
 * kept (their bytes are the parent's). An area not tracked (new since the
 * parent, or one the kernel would not register) is saved in full and
 * registered for the next time; so is every area of a full image. The
 * tracking is armed before any page is written out, so a page the
 * checkpoint thread itself changes while writing is saved again next
 * time. */
#define LOG_PREFIX "maps: "
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/codec.h"
#include "mtcp/dirty.h"
#include "mtcp/log.h"
#include "mtcp/maps_parse.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/sys.h"

#define PAGE 4096ul
#define MAX_AREAS 70000			/* above vm.max_map_count's default */
#define TEXT_MAX (64ul << 20)		/* /proc/self/maps text */
#define RUNS_MAX (16ul << 20)		/* runs of saved pages */
#define EXCL_MAX 64
#define PM_BATCH 4096			/* pagemap entries per read */
#define REGIONS_MAX 65536		/* PAGEMAP_SCAN output per call */

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)
#define PM_SOFT_DIRTY (1ull << 55)

static char *text;
static struct maps_area *areas;
static size_t nareas;
static struct image_run *runs;
static size_t nruns;
static struct image_run *keeps;	/* pages kept from the parent */
static size_t nkeeps;
static struct dirty_region *regions;
static uint64_t *pmbuf;
static struct { uint64_t start, end; } excl[EXCL_MAX];
static size_t nexcl;
/* Areas whose pages are read from a copy (cow.c: shared memory frozen by a
 * copy-on-write writer child), until maps_done. */
static struct { uint64_t start, end; const char *copy; } redir[MAPS_REDIRECT_MAX];
static size_t nredir;
/* Areas made readable for the scan, to be put back after writing. */
static struct { uint64_t start, end; uint32_t prot; } unprot[256];
static size_t nunprot;

void maps_exclude(uint64_t start, uint64_t end)
{
	if (nexcl < EXCL_MAX) {
		excl[nexcl].start = start;
		excl[nexcl].end = end;
		nexcl++;
	}
}

int maps_redirect(uint64_t start, uint64_t end, const void *copy)
{
	if (nredir >= MAPS_REDIRECT_MAX) {
		log_err("more than %d shared memory areas to copy", MAPS_REDIRECT_MAX);
		return -1;
	}
	redir[nredir].start = start;
	redir[nredir].end = end;
	redir[nredir].copy = copy;
	nredir++;
	return 0;
}

/* Where the bytes of the page at addr are read from. */
static const void *page_src(uint64_t addr)
{
	for (size_t i = 0; i < nredir; i++)
		if (addr >= redir[i].start && addr < redir[i].end)
			return redir[i].copy + (addr - redir[i].start);
	return (const void *)addr;
}

static int reserve(void)
{
	if (text)
		return 0;
	text = ckpt_scratch(TEXT_MAX);
	areas = ckpt_scratch(MAX_AREAS * sizeof(*areas));
	runs = ckpt_scratch(RUNS_MAX * sizeof(*runs));
	pmbuf = ckpt_scratch(PM_BATCH * sizeof(*pmbuf));
	keeps = ckpt_scratch(RUNS_MAX * sizeof(*keeps));
	regions = ckpt_scratch(REGIONS_MAX * sizeof(*regions));
	return text && areas && runs && pmbuf && keeps && regions ? 0 : -1;
}

static int excluded(uint64_t addr)
{
	size_t i;

	for (i = 0; i < nexcl; i++)
		if (addr >= excl[i].start && addr < excl[i].end)
			return 1;
	return 0;
}

static long read_maps(void)
{
	long fd = sys_open("/proc/self/maps", O_RDONLY | O_CLOEXEC, 0), n, got = 0;

	if (sys_failed(fd)) {
		log_syserr((int)-fd, "open /proc/self/maps");
		return -1;
	}
	while ((n = sys_read((int)fd, text + got, TEXT_MAX - 1 - (size_t)got)) > 0)
		got += n;
	sys_close((int)fd);
	if (n < 0 || (size_t)got >= TEXT_MAX - 1) {
		log_err("cannot read /proc/self/maps (%ld bytes)", got);
		return -1;
	}
	text[got] = '\0';
	return got;
}

static void file_identity(struct image_area *a, const char *path)
{
	struct stat st;

	if (sys_failed(sys_call4(__NR_newfstatat, AT_FDCWD, path, &st, 0)))
		return;
	a->file_size = (uint64_t)st.st_size;
	a->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (st.st_ino != a->ino)
		log_warn("%s was replaced after it was mapped; restart will map the new file", path);
}

static int add_page(struct maps_area *m, uint64_t page)
{
	if (m->nruns && runs[nruns - 1].first + runs[nruns - 1].count == page) {
		runs[nruns - 1].count++;
	} else {
		if (nruns >= RUNS_MAX) {
			log_err("too many page runs (over %lu)", RUNS_MAX);
			return -1;
		}
		runs[nruns].first = page;
		runs[nruns].count = 1;
		nruns++;
		m->nruns++;
	}
	m->a.npages++;
	return 0;
}

/* Adds count pages from first to the area's kept runs. */
static int add_keep(struct maps_area *m, uint64_t first, uint64_t count)
{
	if (m->nkeep && keeps[nkeeps - 1].first + keeps[nkeeps - 1].count == first) {
		keeps[nkeeps - 1].count += count;
		return 0;
	}
	if (nkeeps >= RUNS_MAX) {
		log_err("too many runs of kept pages (over %lu)", RUNS_MAX);
		return -1;
	}
	keeps[nkeeps].first = first;
	keeps[nkeeps].count = count;
	nkeeps++;
	m->nkeep++;
	return 0;
}

/* 1 if [start, end) meets an excluded range. */
static int meets_excluded(uint64_t start, uint64_t end)
{
	size_t i;

	for (i = 0; i < nexcl; i++)
		if (start < excl[i].end && excl[i].start < end)
			return 1;
	return 0;
}

static int needs_scan(const struct image_area *a)
{
	return a->kind == IMAGE_AREA_ANON || a->kind == IMAGE_AREA_STACK ||
	       a->kind == IMAGE_AREA_FILE_PRIVATE || a->kind == IMAGE_AREA_SHARED_ANON;
}

/* Makes an area readable for the scan and the write (restored by unprotect_all). */
static int make_readable(struct maps_area *m)
{
	long r;

	if (m->a.prot & PROT_READ)
		return 0;
	if (nunprot >= sizeof(unprot) / sizeof(unprot[0])) {
		log_err("too many unreadable areas with data");
		return -1;
	}
	r = sys_mprotect((void *)m->a.start, m->a.end - m->a.start, (int)m->a.prot | PROT_READ);
	if (sys_failed(r)) {
		log_syserr((int)-r, "mprotect %p for reading", (void *)m->a.start);
		return -1;
	}
	unprot[nunprot].start = m->a.start;
	unprot[nunprot].end = m->a.end;
	unprot[nunprot].prot = m->a.prot;
	nunprot++;
	return 0;
}

static void unprotect_all(void)
{
	size_t i;

	for (i = 0; i < nunprot; i++)
		sys_mprotect((void *)unprot[i].start, unprot[i].end - unprot[i].start, (int)unprot[i].prot);
	nunprot = 0;
}

/* The pagemap way: every page's entry. tracked (soft-dirty mode): pages
 * without the soft-dirty bit are kept, not saved. */
static int scan_area(int pmfd, struct maps_area *m, int tracked)
{
	uint64_t npages = (m->a.end - m->a.start) / PAGE, i, j;
	int file_private = m->a.kind == IMAGE_AREA_FILE_PRIVATE;
	int shared = m->a.kind == IMAGE_AREA_SHARED_ANON;
	int skip_zero = !file_private;	/* a zeroed private file page must stay zero */
	unsigned char core[PM_BATCH];

	m->run_first = (uint32_t)nruns;
	m->keep_first = (uint32_t)nkeeps;
	for (i = 0; i < npages; i += PM_BATCH) {
		uint64_t n = npages - i < PM_BATCH ? npages - i : PM_BATCH;
		long r = sys_pread(pmfd, pmbuf, n * 8, (long)((m->a.start / PAGE + i) * 8));

		if (r != (long)(n * 8)) {
			log_syserr(r < 0 ? (int)-r : EIO, "read pagemap of %p", (void *)m->a.start);
			return -1;
		}
		/* Shared memory: pagemap shows only the pages this process has
		 * mapped; mincore shows every page the object holds (another
		 * process may have written it). */
		if (shared && sys_failed(sys_call3(__NR_mincore, m->a.start + i * PAGE, n * PAGE, core)))
			nolibc_memset(core, 1, n);
		for (j = 0; j < n; j++) {
			uint64_t e = pmbuf[j], addr = m->a.start + (i + j) * PAGE;
			int want = file_private ? ((e & PM_PRESENT) && !(e & PM_FILE)) || (e & PM_SWAPPED)
						: (e & (PM_PRESENT | PM_SWAPPED)) != 0 || (shared && (core[j] & 1));

			if (!want || excluded(addr))
				continue;
			if (tracked && !(e & PM_SOFT_DIRTY)) {
				if (add_keep(m, i + j, 1) < 0)
					return -1;
				continue;
			}
			if (!(m->a.prot & PROT_READ) && make_readable(m) < 0)
				return -1;
			if (skip_zero && nolibc_is_zero(page_src(addr), PAGE))
				continue;
			if (add_page(m, i + j) < 0)
				return -1;
		}
	}
	return 0;
}

/* Pages [start, end) of the area, saved (all but zero pages unless
 * keep_zero) or kept; the library's scratch memory left out. */
static int take_range(struct maps_area *m, uint64_t start, uint64_t end, int keep, int keep_zero)
{
	uint64_t addr;

	if (keep && !meets_excluded(start, end))
		return add_keep(m, (start - m->a.start) / PAGE, (end - start) / PAGE);
	for (addr = start; addr < end; addr += PAGE) {
		uint64_t page = (addr - m->a.start) / PAGE;

		if (excluded(addr))
			continue;
		if (keep) {
			if (add_keep(m, page, 1) < 0)
				return -1;
			continue;
		}
		if (!(m->a.prot & PROT_READ) && make_readable(m) < 0)
			return -1;
		if (!keep_zero && nolibc_is_zero((const void *)addr, PAGE))
			continue;
		if (add_page(m, page) < 0)
			return -1;
	}
	return 0;
}

/* The userfaultfd way (mtcp/dirty.h): PAGEMAP_SCAN of a registered area,
 * which re-protects the written pages as it reports them. tracked: the
 * area was tracked since the parent image, so only written pages are
 * saved and the others kept; else every present page is saved. Returns 0,
 * -EPERM when the area is not registered, -1 after logging. */
static int scan_area_uffd(struct maps_area *m, int tracked)
{
	int file_private = m->a.kind == IMAGE_AREA_FILE_PRIVATE;
	uint64_t addr = m->a.start, covered = m->a.start;

	m->run_first = (uint32_t)nruns;
	m->keep_first = (uint32_t)nkeeps;
	while (addr < m->a.end) {
		uint64_t walked = addr;
		long n = dirty_scan(addr, m->a.end, regions, REGIONS_MAX, &walked), i;

		if (n == -EPERM && addr == m->a.start)
			return -EPERM;
		if (sys_failed(n)) {
			log_syserr((int)-n, "PAGEMAP_SCAN of %p-%p", (void *)addr, (void *)m->a.end);
			return -1;
		}
		for (i = 0; i < n; i++) {
			struct dirty_region *r = &regions[i];
			uint64_t c = r->categories;

			/* The kernel (6.18) may report regions past the walk_end it
			 * returns, and then again from there, already protected:
			 * the first report is the one that counts. */
			if (r->end <= covered)
				continue;
			if (r->start < covered)
				r->start = covered;
			covered = r->end;

			/* A private file page never written: the file has it. */
			if (file_private && (c & DIRTY_PAGE_FILE) && !(c & DIRTY_PAGE_SWAPPED))
				continue;
			if (tracked && !(c & DIRTY_PAGE_WRITTEN)) {
				if (take_range(m, r->start, r->end, 1, 0) < 0)
					return -1;
				continue;
			}
			/* The shared zero page: nothing to save, nothing kept. */
			if (!file_private && (c & DIRTY_PAGE_PFNZERO))
				continue;
			if (take_range(m, r->start, r->end, 0, file_private) < 0)
				return -1;
		}
		if (walked <= addr || walked > m->a.end) {
			log_err("PAGEMAP_SCAN of %p-%p stopped at %p", (void *)addr, (void *)m->a.end,
				(void *)walked);
			return -1;
		}
		addr = walked > covered ? walked : covered;
	}
	return 0;
}

/* An area's pages, the way this checkpoint tracks them. */
static int scan_one(int pmfd, struct maps_area *m)
{
	enum dirty_mode mode = dirty_tracking();
	int r;

	if (mode == DIRTY_SOFT)
		return scan_area(pmfd, m, dirty_incremental() && m->a.kind != IMAGE_AREA_SHARED_ANON);
	/* Shared memory can change through another mapping or the fd, which
	 * no protection bit of this mapping sees: always saved in full. */
	if (mode != DIRTY_UFFD || m->a.kind == IMAGE_AREA_SHARED_ANON)
		return scan_area(pmfd, m, 0);
	r = scan_area_uffd(m, dirty_incremental());
	if (r != -EPERM)
		return r;
	/* Not registered (new since the parent, moved, or never writable):
	 * saved in full, and registered for next time if it can be written. */
	nruns = m->run_first;
	nkeeps = m->keep_first;
	m->nruns = m->nkeep = 0;
	m->a.npages = 0;
	if ((m->a.prot & PROT_WRITE) && dirty_register(m->a.start, m->a.end) == 0) {
		r = scan_area_uffd(m, 0);
		if (r != -EPERM)
			return r;
		nruns = m->run_first;
		nkeeps = m->keep_first;
		m->nruns = m->nkeep = 0;
		m->a.npages = 0;
	}
	return scan_area(pmfd, m, 0);
}

int maps_scan(void)
{
	long len, pmfd;
	char *line, *next;
	int ret = -1;

	if (reserve() < 0)
		return -1;
	nareas = nruns = nkeeps = 0;
	nunprot = 0;
	len = read_maps();
	if (len < 0)
		return -1;
	pmfd = sys_open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	if (sys_failed(pmfd)) {
		log_syserr((int)-pmfd, "open /proc/self/pagemap");
		return -1;
	}
	for (line = text; *line; line = next) {
		struct maps_area *m;
		const char *path;
		int shared;

		next = line;
		while (*next && *next != '\n')
			next++;
		if (*next)
			*next++ = '\0';
		if (nareas >= MAX_AREAS) {
			log_err("more than %d memory areas", MAX_AREAS);
			goto out;
		}
		m = &areas[nareas];
		nolibc_memset(m, 0, sizeof(*m));
		if (maps_parse_line(line, &m->a, &path, &shared) < 0) {
			log_err("cannot parse /proc/self/maps line: %s", line);
			goto out;
		}
		m->path = path;
		m->a.path_len = (uint32_t)nolibc_strlen(path);
		if (m->a.kind == IMAGE_AREA_FILE_PRIVATE || m->a.kind == IMAGE_AREA_FILE_SHARED)
			file_identity(&m->a, path);
		if (needs_scan(&m->a) && scan_one((int)pmfd, m) < 0)
			goto out;
		nareas++;
	}
	/* The bits were read: reset them before any page is written out. */
	if (dirty_tracking() == DIRTY_SOFT && dirty_clear_soft() < 0)
		goto out;
	ret = 0;
out:
	sys_close((int)pmfd);
	if (ret < 0)
		unprotect_all();
	return ret;
}

struct maps_area *maps_areas(size_t *n)
{
	*n = nareas;
	return areas;
}

struct image_run *maps_runs(size_t *n)
{
	*n = nruns;
	return runs;
}

int maps_write_areas(struct image_writer *w)
{
	const struct image_parent *parent = dirty_parent();
	size_t i;

	if (parent && codec->writer_record(w, IMAGE_REC_PARENT, parent, sizeof(*parent), NULL, 0) < 0)
		return -1;
	for (i = 0; i < nareas; i++)
		if (codec->writer_record(w, IMAGE_REC_AREA, &areas[i].a, sizeof(areas[i].a), areas[i].path,
					areas[i].a.path_len) < 0)
			return -1;
	return 0;
}

/* KEEP records: each area's kept runs, IMAGE_KEEP_MAX_RUNS at a time. */
static int write_keeps(struct image_writer *w)
{
	size_t i;

	for (i = 0; i < nareas; i++) {
		const struct maps_area *m = &areas[i];
		uint32_t done = 0;

		while (done < m->nkeep) {
			struct image_keep k = { .area = (uint32_t)i };

			k.nruns = m->nkeep - done < IMAGE_KEEP_MAX_RUNS ? m->nkeep - done : IMAGE_KEEP_MAX_RUNS;
			if (codec->writer_record(w, IMAGE_REC_KEEP, &k, sizeof(k), &keeps[m->keep_first + done],
						k.nruns * sizeof(struct image_run)) < 0)
				return -1;
			done += k.nruns;
		}
	}
	return 0;
}

int maps_write_pages(struct image_writer *w)
{
	size_t i;
	uint32_t k;
	int ret = 0;

	if (dirty_incremental() && write_keeps(w) < 0)
		return -1;
	for (i = 0; i < nareas && !ret; i++) {
		const struct maps_area *m = &areas[i];

		for (k = 0; k < m->nruns; k++) {
			const struct image_run *r = &runs[m->run_first + k];

			if (codec->writer_pages(w, (uint32_t)i, r->first, page_src(m->a.start + r->first * PAGE),
					       r->count) < 0) {
				ret = -1;
				break;
			}
		}
	}
	return ret;
}

void maps_done(void)
{
	nredir = 0;
	unprotect_all();
	/* Give the scratch pages back: they are not needed until next time. */
	if (text) {
		sys_madvise(text, TEXT_MAX, MADV_DONTNEED);
		sys_madvise(runs, RUNS_MAX * sizeof(*runs), MADV_DONTNEED);
		sys_madvise(keeps, RUNS_MAX * sizeof(*keeps), MADV_DONTNEED);
	}
}
