/* Reading the address space at checkpoint time: /proc/self/maps for the
 * areas, /proc/self/pagemap for which pages to save. Runs on the checkpoint
 * thread with every other thread parked, so it uses raw syscalls and
 * memory reserved with mmap (ckpt_scratch, never saved in images).
 *
 * What is saved: for private anonymous areas, stacks and shared anonymous
 * memory, the pages present or swapped that are not all zero; for private
 * file mappings, only the pages the process wrote (present and no longer
 * file-backed); for shared file mappings, nothing (the file holds them);
 * the vdso block, [vsyscall] and the library's scratch memory, nothing. */
#define LOG_PREFIX "maps: "
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/codec.h"
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

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)

static char *text;
static struct maps_area *areas;
static size_t nareas;
static struct image_run *runs;
static size_t nruns;
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
	return text && areas && runs && pmbuf ? 0 : -1;
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

static int scan_area(int pmfd, struct maps_area *m)
{
	uint64_t npages = (m->a.end - m->a.start) / PAGE, i, j;
	int file_private = m->a.kind == IMAGE_AREA_FILE_PRIVATE;
	int shared = m->a.kind == IMAGE_AREA_SHARED_ANON;
	int skip_zero = !file_private;	/* a zeroed private file page must stay zero */
	unsigned char core[PM_BATCH];

	m->run_first = (uint32_t)nruns;
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

int maps_scan(void)
{
	long len, pmfd;
	char *line, *next;
	int ret = -1;

	if (reserve() < 0)
		return -1;
	nareas = nruns = 0;
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
		if (needs_scan(&m->a) && scan_area((int)pmfd, m) < 0)
			goto out;
		nareas++;
	}
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
	size_t i;

	for (i = 0; i < nareas; i++)
		if (codec->writer_record(w, IMAGE_REC_AREA, &areas[i].a, sizeof(areas[i].a), areas[i].path,
					areas[i].a.path_len) < 0)
			return -1;
	return 0;
}

int maps_write_pages(struct image_writer *w)
{
	size_t i;
	uint32_t k;
	int ret = 0;

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
	}
}
