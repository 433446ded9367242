/* The hosted half of a restart, in cryo_restart: read and verify the whole
 * image (every record's CRC, the trailer's SHA-256) while staging its
 * pages in an arena placed where no saved area lies; check that the image
 * fits this machine (same vDSO layout, mapped files unchanged); then build
 * struct rst_args inside a fresh mapping for the restorer blob, drop
 * everything the restorer must not inherit (signals, rseq, fds) and jump.
 *
 * An incremental image (doc/incremental.md) comes with its chain: its
 * PARENT record names the image before it, in the same directory, and so
 * on down to a full image. The chain is first walked by its HEADER,
 * PROCESS and PARENT records (every image there, of the same process, in
 * generation order), then read newest first; each image gives the pages it
 * stores and that no newer image replaced (restart/chain.h), and must end
 * with the SHA-256 its child recorded.
 *
 * A bad image is refused before anything of this process is replaced. */
#define LOG_PREFIX ""
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "build/gen/restorer_blob.h"
#include "mtcp/log.h"
#include "mtcp/maps_parse.h"
#include "mtcp/sys.h"
#include "restart/chain.h"
#include "restart/loader.h"
#include "restart/plan.h"
#include "restart/restorer/restorer.h"

#define PAGE 4096ul
#define TASK_SIZE_4LEVEL 0x7ffffffff000ull
#define LOW_LIMIT 0x10000ull
#define THREAD_STACK (64ul << 10)
#define MAIN_STACK (256ul << 10)
#define RSEQ_SIG_X86 0x53053053u

extern const char restorer_blob[], restorer_blob_end[];

static uint64_t page_up(uint64_t x)
{
	return (x + PAGE - 1) & ~(PAGE - 1);
}

static int is_copy_kind(uint32_t kind)
{
	return kind == IMAGE_AREA_STACK || kind == IMAGE_AREA_FILE_PRIVATE || kind == IMAGE_AREA_SHARED_ANON;
}

static int stages(const struct loaded_area *la)
{
	return (la->a.npages || la->nkept) && (la->a.kind == IMAGE_AREA_ANON || is_copy_kind(la->a.kind));
}

static int keep_records;

void loader_set_keep_records(int keep)
{
	keep_records = keep;
}

/* The current address space of this process, as ranges. Caller frees. */
static struct plan_range *self_ranges(size_t *n, uint64_t *vdso_start, uint64_t *vdso_end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	struct plan_range *r = NULL;
	size_t cap = 0;
	char line[4096 + 128];

	*n = 0;
	*vdso_start = *vdso_end = 0;
	if (!f) {
		log_perror("open /proc/self/maps");
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		struct image_area a;
		const char *path;
		int shared;

		line[strcspn(line, "\n")] = '\0';
		if (maps_parse_line(line, &a, &path, &shared) < 0)
			continue;
		if (*n == cap) {
			struct plan_range *nr = realloc(r, (cap = cap * 2 + 64) * sizeof(*r));

			if (!nr) {
				log_err("out of memory");
				free(r);
				fclose(f);
				return NULL;
			}
			r = nr;
		}
		r[*n].start = a.start;
		r[*n].end = a.end;
		(*n)++;
		if (a.kind == IMAGE_AREA_VDSO) {
			if (!*vdso_start || a.start < *vdso_start)
				*vdso_start = a.start;
			if (a.end > *vdso_end)
				*vdso_end = a.end;
		}
	}
	fclose(f);
	return r;
}

/* Every range that must stay free for the image, plus what is mapped now. */
static struct plan_range *busy_ranges(const struct loaded_image *img, size_t *n, uint64_t *vs, uint64_t *ve)
{
	size_t nself, i;
	struct plan_range *self = self_ranges(&nself, vs, ve), *all;

	if (!self)
		return NULL;
	all = realloc(self, (nself + img->nareas + 8) * sizeof(*all));
	if (!all) {
		free(self);
		log_err("out of memory");
		return NULL;
	}
	for (i = 0; i < img->nareas; i++) {
		all[nself + i].start = img->areas[i].a.start;
		/* Leave room below a stack for it to grow, and for its guard gap. */
		all[nself + i].end = img->areas[i].a.end;
		if (img->areas[i].a.kind == IMAGE_AREA_STACK)
			all[nself + i].start = img->areas[i].a.start > (64ul << 20) ? img->areas[i].a.start - (64ul << 20) : 0;
	}
	*n = nself + img->nareas;
	plan_sort(all, *n);
	*n = plan_merge(all, *n);
	return all;
}

static uint64_t task_size(const struct loaded_image *img)
{
	size_t i;

	for (i = 0; i < img->nareas; i++)
		if (img->areas[i].a.kind != IMAGE_AREA_SKIP && img->areas[i].a.end > TASK_SIZE_4LEVEL)
			return 0x00fffffffffff000ull;
	return TASK_SIZE_4LEVEL;
}

/* Maps len bytes at a hole clear of busy[] (which gains the new range). */
static void *map_hole(struct plan_range **busy, size_t *n, uint64_t len, uint64_t top, int prot)
{
	uint64_t at = plan_find_hole(*busy, *n, len, 16 * PAGE, LOW_LIMIT, top);
	struct plan_range *nb;
	void *p;

	if (!at) {
		log_err("no room for %llu bytes clear of the image's memory", (unsigned long long)len);
		return NULL;
	}
	p = mmap((void *)at, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED) {
		log_perror("map %llu bytes at %p", (unsigned long long)len, (void *)at);
		return NULL;
	}
	nb = realloc(*busy, (*n + 1) * sizeof(**busy));
	if (!nb) {
		munmap(p, len);
		return NULL;
	}
	*busy = nb;
	nb[*n].start = at;
	nb[*n].end = at + len;
	(*n)++;
	plan_sort(nb, *n);
	*n = plan_merge(nb, *n);
	return p;
}

static int stage(struct loaded_image *img)
{
	struct plan_range *busy;
	size_t nbusy, i;
	uint64_t off = 0, vs, ve;

	size_t n = 0;

	img->chain_areas = calloc(img->nareas + 1, sizeof(*img->chain_areas));
	if (!img->chain_areas) {
		log_err("out of memory");
		return -1;
	}
	for (i = 0; i < img->nareas; i++) {
		struct loaded_area *la = &img->areas[i];

		if (!stages(la))
			continue;
		la->staged = 1;
		la->stage_off = off;
		/* AREA records come in address order: so do these. */
		img->chain_areas[n].start = la->a.start;
		img->chain_areas[n].end = la->a.end;
		img->chain_areas[n].stage_off = off;
		n++;
		off += la->a.end - la->a.start;
	}
	img->arena_len = off;
	if (chain_init(&img->chain, img->chain_areas, n, off) < 0) {
		log_err("out of memory for the page maps of %s", img->name);
		return -1;
	}
	for (i = 0; i < img->nkept; i++) {
		const struct loaded_area *la = &img->areas[img->kept_area[i]];

		if (chain_kept(&img->chain, la->a.start + img->kept[i].first * PAGE, img->kept[i].count) < 0) {
			log_err("%s is corrupt: it keeps a page of area %u it also stores", img->name,
				img->kept_area[i]);
			return -1;
		}
	}
	if (!off)
		return 0;
	busy = busy_ranges(img, &nbusy, &vs, &ve);
	if (!busy)
		return -1;
	img->arena = map_hole(&busy, &nbusy, off, task_size(img), PROT_READ | PROT_WRITE);
	free(busy);
	return img->arena ? 0 : -1;
}

static int add_run(struct loaded_area *la, uint64_t first, uint64_t count)
{
	if (la->nruns && la->runs[la->nruns - 1].first + la->runs[la->nruns - 1].count == first) {
		la->runs[la->nruns - 1].count += count;
		return 0;
	}
	if (la->nruns == la->cap) {
		struct image_run *nr = realloc(la->runs, (la->cap = la->cap * 2 + 16) * sizeof(*nr));

		if (!nr) {
			log_err("out of memory");
			return -1;
		}
		la->runs = nr;
	}
	la->runs[la->nruns].first = first;
	la->runs[la->nruns].count = count;
	la->nruns++;
	return 0;
}

static int put_pages(void *arg, uint32_t area, uint64_t first, const void *data, uint64_t npages)
{
	struct loaded_image *img = arg;
	struct loaded_area *la;
	uint64_t pages;

	if (area >= img->nareas) {
		log_err("%s: pages for area %u, but the image has %zu areas", img->name, area, img->nareas);
		return -1;
	}
	la = &img->areas[area];
	pages = (la->a.end - la->a.start) / PAGE;
	if (!la->staged || first > pages || npages > pages - first) {
		log_err("%s: pages %llu+%llu do not fit area %u", img->name, (unsigned long long)first,
			(unsigned long long)npages, area);
		return -1;
	}
	for (uint64_t i = 0; i < npages; i++)
		if (chain_stored(&img->chain, la->a.start + (first + i) * PAGE) < 0) {
			log_err("%s is corrupt: page %llu of area %u is both kept and stored", img->name,
				(unsigned long long)(first + i), area);
			return -1;
		}
	memcpy(img->arena + la->stage_off + first * PAGE, data, npages * PAGE);
	img->pages += npages;
	return 0;
}

/* The runs of pages each staged area got from the chain: what the restorer
 * copies (copy kinds), what a merge writes (all, with keep_records). */
static int make_runs(struct loaded_image *img)
{
	size_t i;

	for (i = 0; i < img->nareas; i++) {
		struct loaded_area *la = &img->areas[i];
		uint64_t p, first = la->stage_off / PAGE, n = (la->a.end - la->a.start) / PAGE;

		la->nruns = 0;
		if (!la->staged || (!is_copy_kind(la->a.kind) && !keep_records))
			continue;
		for (p = 0; p < n; p++)
			if (chain_has(&img->chain, first + p) && add_run(la, p, 1) < 0)
				return -1;
	}
	return 0;
}

/* A KEEP record of the newest image, kept until the arena is laid out
 * (already checked by the reader: area, runs inside it and in order). */
static int take_keep(struct loaded_image *img, const uint8_t *p)
{
	struct image_keep k;
	uint32_t i;

	memcpy(&k, p, sizeof(k));
	for (i = 0; i < k.nruns; i++) {
		if (img->nkept == img->kept_cap) {
			size_t cap = img->kept_cap * 2 + 256;
			struct image_run *nr = realloc(img->kept, cap * sizeof(*nr));
			uint32_t *na;

			if (!nr) {
				log_err("out of memory");
				return -1;
			}
			img->kept = nr;
			na = realloc(img->kept_area, cap * sizeof(*na));
			if (!na) {
				log_err("out of memory");
				return -1;
			}
			img->kept_area = na;
			img->kept_cap = cap;
		}
		memcpy(&img->kept[img->nkept], p + sizeof(k) + (size_t)i * sizeof(struct image_run),
		       sizeof(struct image_run));
		img->kept_area[img->nkept] = k.area;
		img->areas[k.area].nkept += img->kept[img->nkept].count;
		img->nkept++;
	}
	return 0;
}

static int keep_record(struct loaded_image *img, uint32_t type, const void *p, uint64_t len)
{
	struct loaded_record *nr = realloc(img->records, (img->nrecords + 1) * sizeof(*nr));

	if (!nr) {
		log_err("out of memory");
		return -1;
	}
	img->records = nr;
	nr[img->nrecords].type = type;
	nr[img->nrecords].len = len;
	nr[img->nrecords].data = malloc(len ? len : 1);
	if (!nr[img->nrecords].data) {
		log_err("out of memory");
		return -1;
	}
	memcpy(nr[img->nrecords].data, p, len);
	img->nrecords++;
	return 0;
}

/* An AREA record, already checked by the reader (size, path length,
 * alignment, order, no more than the HEADER declares). */
static int take_area(struct loaded_image *img, const void *p)
{
	const struct image_area *a = p;
	struct loaded_area *la = &img->areas[img->nareas];

	memset(la, 0, sizeof(*la));
	la->a = *a;
	la->path = strndup((const char *)p + sizeof(*a), a->path_len);
	if (!la->path) {
		log_err("out of memory");
		return -1;
	}
	img->nareas++;
	return 0;
}

static const uint8_t *loader_key;

void loader_set_key(const uint8_t *key)
{
	loader_key = key;
}

int loader_parent_path(const char *path, const char *parent, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');
	int n = slash ? snprintf(out, size, "%.*s/%s", (int)(slash - path), path, parent)
		      : snprintf(out, size, "%s", parent);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The HEADER, PROCESS and PARENT records of the image at path; *has_parent
 * says whether it has the last. -2 if the file does not exist (not
 * logged), -1 after logging, 0. */
static int peek_image(const char *path, struct image_header *hdr, struct image_process *proc,
		      struct image_parent *parent, int *has_parent)
{
	struct image_reader *r;
	const void *p;
	uint64_t len;
	uint32_t type;
	int fd, st = 1, got = 0, ret = -1;

	*has_parent = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -2;
		log_perror("open image %s", path);
		return -1;
	}
	r = image_reader_new(fd, path);
	if (r && image_reader_set_key(r, loader_key) < 0) {
		image_reader_free(r);
		r = NULL;
	}
	while (r && got < 2 && (st = image_reader_next(r, &type, &p, &len)) == 1) {
		if (type == IMAGE_REC_HEADER) {
			memcpy(hdr, p, sizeof(*hdr));
		} else if (type == IMAGE_REC_PROCESS) {
			memcpy(proc, p, sizeof(*proc));
			if (!(hdr->flags & IMAGE_HDR_INCREMENTAL))
				got = 2;
		} else if (type == IMAGE_REC_PARENT) {
			memcpy(parent, p, sizeof(*parent));
			*has_parent = 1;
			got = 2;
		}
	}
	if (r && got == 2)
		ret = 0;
	else if (r && st >= 0)
		log_err("%s ends before its PROCESS record", path);
	image_reader_free(r);
	close(fd);
	return ret;
}

/* Walks the chain below img by its first records, before anything is
 * staged: every parent there, of the same process, an older generation,
 * the chain's depth consistent, ending in a full image. */
static int check_chain(const struct loaded_image *img)
{
	struct image_parent want = img->parent, next;
	struct image_header h;
	struct image_process pr;
	char path[4096], child[4096];
	int has_next, r, steps;

	snprintf(child, sizeof(child), "%s", img->name);
	for (steps = 0;; steps++) {
		if (loader_parent_path(img->name, want.name, path, sizeof(path)) < 0) {
			log_err("%s: the path of its parent %s is too long", child, want.name);
			return -1;
		}
		r = peek_image(path, &h, &pr, &next, &has_next);
		if (r == -2) {
			log_err("%s: its parent %s is missing: an incremental image needs every image of its chain "
				"down to a full one (cryo_image info shows the chain)", child, path);
			return -1;
		}
		if (r < 0)
			return -1;
		if (h.generation != want.generation || pr.upid != want.upid) {
			log_err("%s: its parent %s is generation %u of process %016llx, not generation %u of "
				"%016llx: not the image it was written after", child, path, h.generation,
				(unsigned long long)pr.upid, want.generation, (unsigned long long)want.upid);
			return -1;
		}
		if (has_next ? next.depth + 1 != want.depth : want.depth != 1) {
			log_err("%s: the chain below it is inconsistent at %s (depth %u, then %s)", child, path,
				want.depth, has_next ? "another parent" : "a full image");
			return -1;
		}
		if (!has_next)
			return 0;
		if (steps > 100000) {
			log_err("%s: its chain of parents does not end", img->name);
			return -1;
		}
		snprintf(child, sizeof(child), "%s", path);
		want = next;
	}
}

/* Reading one parent: where its areas start, to place its pages. */
struct parent_ctx {
	struct loaded_image *img;
	const char *path;
	uint64_t *starts;	/* AREA start of each of its areas */
	size_t nareas, cap;
};

static int put_parent(void *arg, uint32_t area, uint64_t first, const void *data, uint64_t npages)
{
	struct parent_ctx *pc = arg;
	struct loaded_image *img = pc->img;
	uint64_t i;

	if (area >= pc->nareas)
		return -1;	/* the reader checked it */
	for (i = 0; i < npages; i++) {
		uint64_t addr = pc->starts[area] + (first + i) * PAGE;
		int r = chain_stored(&img->chain, addr);

		if (r < 0) {
			log_err("%s is corrupt: page %llu of area %u is both kept and stored", pc->path,
				(unsigned long long)(first + i), area);
			return -1;
		}
		if (r > 0)
			memcpy(img->arena + (uint64_t)chain_page(&img->chain, addr) * PAGE,
			       (const uint8_t *)data + i * PAGE, PAGE);
	}
	return 0;
}

/* Reads the parent at path, which want describes; *next: its own parent. */
static int read_parent(struct loaded_image *img, const char *path, const char *child,
		       const struct image_parent *want, struct image_parent *next, int *has_next)
{
	struct parent_ctx pc = { .img = img, .path = path };
	struct image_reader *r = NULL;
	const void *p;
	uint64_t len, bytes;
	uint8_t sha[32];
	uint32_t type;
	int fd, st, ret = -1;

	*has_next = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_perror("%s: open its parent %s", child, path);
		return -1;
	}
	r = image_reader_new(fd, path);
	if (!r || image_reader_set_key(r, loader_key) < 0)
		goto out;
	while ((st = image_reader_next(r, &type, &p, &len)) == 1) {
		switch (type) {
		case IMAGE_REC_PARENT:
			memcpy(next, p, sizeof(*next));
			*has_next = 1;
			break;
		case IMAGE_REC_AREA:
			if (pc.nareas == pc.cap) {
				uint64_t *ns = realloc(pc.starts, (pc.cap = pc.cap * 2 + 64) * sizeof(*ns));

				if (!ns) {
					log_err("out of memory");
					goto out;
				}
				pc.starts = ns;
			}
			pc.starts[pc.nareas++] = ((const struct image_area *)p)->start;
			break;
		case IMAGE_REC_KEEP: {
			struct image_keep k;
			uint32_t i;

			memcpy(&k, p, sizeof(k));
			for (i = 0; i < k.nruns; i++) {
				struct image_run run;

				memcpy(&run, (const uint8_t *)p + sizeof(k) + (size_t)i * sizeof(run), sizeof(run));
				if (chain_kept(&img->chain, pc.starts[k.area] + run.first * PAGE, run.count) < 0)
					goto out;
			}
			break;
		}
		case IMAGE_REC_PAGES:
			if (image_reader_pages(r, p, len, put_parent, &pc) < 0)
				goto out;
			break;
		default:
			break;
		}
	}
	if (st < 0)
		goto out;
	if (image_reader_digest(r, sha, &bytes) < 0 || memcmp(sha, want->sha256, sizeof(sha))) {
		log_err("%s: its parent %s is not the image it was written after (the SHA-256 differs: "
			"replaced or rewritten since)", child, path);
		goto out;
	}
	ret = 0;
out:
	free(pc.starts);
	image_reader_free(r);
	close(fd);
	return ret;
}

/* The chain below the newest image, newest first. */
static int read_parents(struct loaded_image *img)
{
	struct image_parent want = img->parent, next;
	char path[4096], child[4096];
	int has_next = 1;

	snprintf(child, sizeof(child), "%s", img->name);
	while (has_next) {
		if (loader_parent_path(img->name, want.name, path, sizeof(path)) < 0)
			return -1;	/* check_chain said it */
		chain_next_level(&img->chain);
		if (read_parent(img, path, child, &want, &next, &has_next) < 0)
			return -1;
		img->chain_len++;
		snprintf(child, sizeof(child), "%s", path);
		want = next;
	}
	return 0;
}

int loader_read(int fd, const char *name, struct loaded_image *img)
{
	struct image_reader *r;
	const void *p;
	uint64_t len;
	uint32_t type;
	int ret = -1, st, staged = 0;

	memset(img, 0, sizeof(*img));
	img->name = name;
	r = image_reader_new(fd, name);
	if (!r)
		return -1;
	if (image_reader_set_key(r, loader_key) < 0) {
		image_reader_free(r);
		return -1;
	}
	while ((st = image_reader_next(r, &type, &p, &len)) == 1) {
		switch (type) {
		case IMAGE_REC_HEADER:
			memcpy(&img->hdr, p, sizeof(img->hdr));
			img->areas = calloc(img->hdr.nareas + 1, sizeof(*img->areas));
			img->threads = calloc(img->hdr.nthreads + 1, sizeof(*img->threads));
			if (!img->areas || !img->threads) {
				log_err("out of memory");
				goto out;
			}
			break;
		case IMAGE_REC_PROCESS:
			memcpy(&img->proc, p, sizeof(img->proc));
			break;
		case IMAGE_REC_AREA:
			if (take_area(img, p) < 0)
				goto out;
			break;
		case IMAGE_REC_PARENT:
			/* Record 2: before anything is staged, every parent must be there. */
			memcpy(&img->parent, p, sizeof(img->parent));
			img->has_parent = 1;
			if (check_chain(img) < 0)
				goto out;
			break;
		case IMAGE_REC_KEEP:
			if (take_keep(img, p) < 0)
				goto out;
			break;
		case IMAGE_REC_THREAD:
			/* The reader counts THREAD records only at the trailer. */
			if (img->nthreads >= img->hdr.nthreads) {
				log_err("%s: more THREAD records than the %u its HEADER declares", name,
					img->hdr.nthreads);
				goto out;
			}
			memcpy(&img->threads[img->nthreads++], p, sizeof(struct image_thread));
			break;
		case IMAGE_REC_PAGES:
			if (!staged) {
				if (stage(img) < 0)
					goto out;
				staged = 1;
			}
			if (image_reader_pages(r, p, len, put_pages, img) < 0)
				goto out;
			break;
		default:	/* SIGINFO (the library keeps its own copy), PLUGIN, FD, INDEX */
			if (keep_records && keep_record(img, type, p, len) < 0)
				goto out;
			break;
		}
	}
	if (st < 0)	/* the reader also checked the counts and order at the trailer */
		goto out;
	if (!staged && stage(img) < 0)
		goto out;
	img->bytes = image_reader_offset(r);
	img->chain_len = 1;
	if (img->has_parent && read_parents(img) < 0)
		goto out;
	if (make_runs(img) < 0)
		goto out;
	ret = 0;
out:
	image_reader_free(r);
	return ret;
}

int loader_peek(const char *path, struct image_header *hdr, struct image_process *proc)
{
	struct image_reader *r;
	const void *p;
	uint64_t len;
	uint32_t type;
	int fd, st, got = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_perror("open image %s", path);
		return -1;
	}
	r = image_reader_new(fd, path);
	if (r && loader_key && image_reader_set_key(r, loader_key) < 0) {
		image_reader_free(r);
		r = NULL;
	}
	while (r && got != 3 && (st = image_reader_next(r, &type, &p, &len)) == 1) {
		if (type == IMAGE_REC_HEADER && len >= sizeof(*hdr)) {
			memcpy(hdr, p, sizeof(*hdr));
			got |= 1;
		} else if (type == IMAGE_REC_PROCESS && len == sizeof(*proc)) {
			memcpy(proc, p, sizeof(*proc));
			got |= 2;
		}
	}
	if (r && got != 3 && st >= 0)
		log_err("%s: no PROCESS record", path);
	image_reader_free(r);
	close(fd);
	return got == 3 ? 0 : -1;
}

void loader_free(struct loaded_image *img)
{
	size_t i;

	for (i = 0; img->areas && i < img->nareas; i++) {
		free(img->areas[i].path);
		free(img->areas[i].runs);
	}
	for (i = 0; i < img->nrecords; i++)
		free(img->records[i].data);
	free(img->records);
	chain_free(&img->chain);
	free(img->chain_areas);
	free(img->kept);
	free(img->kept_area);
	free(img->areas);
	free(img->threads);
	if (img->arena)
		munmap(img->arena, img->arena_len);
	memset(img, 0, sizeof(*img));
}

/* The image's vdso block must match this kernel's: same pieces, same sizes. */
static int check_vdso(const struct loaded_image *img, uint64_t cur_start, uint64_t cur_end, uint64_t *dst)
{
	uint64_t s = 0, e = 0;
	size_t i;

	for (i = 0; i < img->nareas; i++) {
		const struct image_area *a = &img->areas[i].a;

		if (a->kind != IMAGE_AREA_VDSO)
			continue;
		if (!s || a->start < s)
			s = a->start;
		if (a->end > e)
			e = a->end;
	}
	*dst = s;
	if (!s)
		return 0;
	if (e - s != cur_end - cur_start) {
		log_err("%s: the vDSO here (%llu KiB) differs from the checkpoint's (%llu KiB, kernel %s): "
			"restart on a host with the same kernel", img->name,
			(unsigned long long)((cur_end - cur_start) >> 10), (unsigned long long)((e - s) >> 10),
			img->hdr.kernel);
		return -1;
	}
	return 0;
}

/* One fd per mapped file, checked against what the checkpoint saw. */
static int open_files(struct loaded_image *img, struct rst_area *ra)
{
	size_t i, j;

	for (i = 0; i < img->nareas; i++) {
		const struct loaded_area *la = &img->areas[i];
		int shared = la->a.kind == IMAGE_AREA_FILE_SHARED;
		struct stat st;
		int fd = -1;

		ra[i].fd = -1;
		if (la->a.kind != IMAGE_AREA_FILE_PRIVATE && !shared)
			continue;
		for (j = 0; j < i; j++)
			if (ra[j].fd >= 0 && !strcmp(img->areas[j].path, la->path) &&
			    (!shared || img->areas[j].a.kind == IMAGE_AREA_FILE_SHARED)) {
				fd = ra[j].fd;
				break;
			}
		if (fd < 0) {
			fd = open(la->path, (shared && (la->a.prot & PROT_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
			if (fd < 0) {
				log_perror("%s: open %s, mapped at %p at checkpoint time", img->name, la->path,
					   (void *)la->a.start);
				return -1;
			}
			if (fstat(fd, &st) < 0) {
				log_perror("fstat %s", la->path);
				close(fd);
				return -1;
			}
			if (!shared && la->a.mtime_ns &&
			    ((uint64_t)st.st_size != la->a.file_size ||
			     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != la->a.mtime_ns)) {
				log_err("%s: %s changed since the checkpoint (size %llu, now %llu); refusing to "
					"restart from a different file", img->name, la->path,
					(unsigned long long)la->a.file_size, (unsigned long long)st.st_size);
				close(fd);
				return -1;
			}
		}
		ra[i].fd = fd;
	}
	return 0;
}

static void close_files(struct rst_area *ra, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (ra[i].fd < 0)
			continue;
		for (j = i + 1; j < n; j++)
			if (ra[j].fd == ra[i].fd)
				ra[j].fd = -1;
		close(ra[i].fd);
		ra[i].fd = -1;
	}
}

static int cmp_fd(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Closes every fd above 2 that the restorer does not need. */
static void close_other_fds(const struct rst_area *ra, size_t n)
{
	int *keep = calloc(n + 1, sizeof(int)), nk = 0, lo = 3;
	size_t i;

	if (!keep)
		return;
	for (i = 0; i < n; i++)
		if (ra[i].fd >= 0)
			keep[nk++] = ra[i].fd;
	qsort(keep, (size_t)nk, sizeof(int), cmp_fd);
	for (i = 0; i < (size_t)nk; i++) {
		if (keep[i] > lo)
			syscall(SYS_close_range, lo, keep[i] - 1, 0);
		if (keep[i] >= lo)
			lo = keep[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0u, 0);
	free(keep);
}

int loader_exec(struct loaded_image *img, const struct loader_opts *o)
{
	size_t nbusy, i, nruns = 0, k, args_len, blob_code, total;
	uint64_t cur_vs, cur_ve, dst_vdso, top = task_size(img);
	struct plan_range *busy;
	struct rst_args *a;
	struct rst_area *ra;
	struct rst_thread *rt;
	struct image_run *rr;
	char *map;
	sigset_t all;

	busy = busy_ranges(img, &nbusy, &cur_vs, &cur_ve);
	if (!busy)
		return -1;
	if (check_vdso(img, cur_vs, cur_ve, &dst_vdso) < 0)
		goto fail;
	for (i = 0; i < img->nareas; i++)
		if (is_copy_kind(img->areas[i].a.kind))
			nruns += img->areas[i].nruns;
	blob_code = page_up(RESTORER_BLOB_MEM_SIZE);
	args_len = page_up(sizeof(*a) + img->nareas * sizeof(*ra) + img->nthreads * sizeof(*rt) +
			   nruns * sizeof(*rr) + 64);
	total = blob_code + args_len + img->nthreads * THREAD_STACK + MAIN_STACK;
	map = map_hole(&busy, &nbusy, total, top, PROT_READ | PROT_WRITE | PROT_EXEC);
	if (!map)
		goto fail;
	memcpy(map, restorer_blob, (size_t)(restorer_blob_end - restorer_blob));
	a = (struct rst_args *)(map + blob_code);
	memset(a, 0, sizeof(*a));
	a->magic = RST_MAGIC;
	a->log_fd = 2;
	a->log_level = o->log_level >= 0 ? o->log_level : log_level_cur;
	a->task_size = top;
	a->areas_off = sizeof(*a);
	a->threads_off = a->areas_off + img->nareas * sizeof(*ra);
	a->runs_off = a->threads_off + img->nthreads * sizeof(*rt);
	ra = (struct rst_area *)((char *)a + a->areas_off);
	rt = (struct rst_thread *)((char *)a + a->threads_off);
	rr = (struct image_run *)((char *)a + a->runs_off);
	a->nareas = (uint32_t)img->nareas;
	a->nthreads = (uint32_t)img->nthreads;
	a->nruns = (uint32_t)nruns;
	nruns = 0;
	for (i = 0; i < img->nareas; i++) {
		const struct loaded_area *la = &img->areas[i];

		memset(&ra[i], 0, sizeof(ra[i]));
		ra[i].start = la->a.start;
		ra[i].end = la->a.end;
		ra[i].pgoff = la->a.pgoff;
		ra[i].prot = la->a.prot;
		ra[i].kind = la->a.kind;
		ra[i].flags = la->a.flags;
		ra[i].stage = la->staged ? (uint64_t)(uintptr_t)(img->arena + la->stage_off) : 0;
		ra[i].map_flags_extra = la->a.kind == IMAGE_AREA_ANON ? MAP_NORESERVE : 0;
		ra[i].run_first = (uint32_t)nruns;
		ra[i].nruns = is_copy_kind(la->a.kind) ? (uint32_t)la->nruns : 0;
		for (k = 0; k < ra[i].nruns; k++)
			rr[nruns++] = la->runs[k];
	}
	for (i = 0; i < img->nthreads; i++) {
		rt[i].t = img->threads[i];
		rt[i].stack_top = (uint64_t)(uintptr_t)(map + blob_code + args_len + (i + 1) * THREAD_STACK - 64);
	}
	a->nkeep = 0;
	a->keep[a->nkeep].start = (uint64_t)(uintptr_t)map;
	a->keep[a->nkeep++].end = (uint64_t)(uintptr_t)map + total;
	if (img->arena_len) {
		a->keep[a->nkeep].start = (uint64_t)(uintptr_t)img->arena;
		a->keep[a->nkeep++].end = (uint64_t)(uintptr_t)img->arena + img->arena_len;
		a->stage_start = (uint64_t)(uintptr_t)img->arena;
		a->stage_len = img->arena_len;
	}
	if (cur_vs) {
		void *tmp;

		a->keep[a->nkeep].start = cur_vs;
		a->keep[a->nkeep++].end = cur_ve;
		a->vdso_cur = cur_vs;
		a->vdso_len = cur_ve - cur_vs;
		/* A spare hole: the way round when the old and new places overlap,
		 * and the vdso's place when the image has none. */
		tmp = map_hole(&busy, &nbusy, a->vdso_len, top, PROT_NONE);
		if (!tmp)
			goto fail;
		munmap(tmp, a->vdso_len);
		a->vdso_tmp = (uint64_t)(uintptr_t)tmp;
		a->vdso_dst = dst_vdso ? dst_vdso : a->vdso_tmp;
	}
	{
		const struct image_process *p = &img->proc;

		a->mm_valid = p->start_code && p->start_brk && p->arg_start && p->env_start;
		a->mm.start_code = p->start_code;
		a->mm.end_code = p->end_code;
		a->mm.start_data = p->start_data;
		a->mm.end_data = p->end_data;
		a->mm.start_brk = p->start_brk;
		a->mm.brk = p->brk;
		a->mm.start_stack = p->start_stack;
		a->mm.arg_start = p->arg_start;
		a->mm.arg_end = p->arg_end;
		a->mm.env_start = p->env_start;
		a->mm.env_end = p->env_end;
		memcpy(a->auxv, p->auxv, sizeof(a->auxv));
		a->mm.auxv_size = p->auxv_words * 8;
	}
	a->restart_info_addr = img->proc.restart_info;
	a->info.flags = (o->migrated ? CRYO_RESTART_F_MIGRATED : 0) | o->info_flags;
	a->info.coord_port = o->coord_port;
	snprintf(a->info.coord_host, sizeof(a->info.coord_host), "%s", o->coord_host);
	a->info.blob_start = (uint64_t)(uintptr_t)map;
	a->info.blob_len = total;
	a->info.t_src_suspend_ns = img->hdr.time_ns;
	a->info.t_restart_ns = o->t_restart_ns;
	a->info.stream_bytes = img->bytes;
	a->info.log_level = o->log_level;
	snprintf(a->info.log_file, sizeof(a->info.log_file), "%s", o->log_file ? o->log_file : "");
	for (i = 0; i < 8; i++)
		a->close_fds[i] = -1;
	if (open_files(img, ra) < 0) {
		close_files(ra, img->nareas);
		goto fail;
	}
	free(busy);
	log_debug("restorer at %p (%zu bytes), arena %p (%zu bytes), %zu areas, %zu threads", (void *)map, total,
		  (void *)img->arena, img->arena_len, img->nareas, img->nthreads);
	fflush(NULL);
	if (o->ack_fd >= 0) {
		/* A migration: the source may go now, the image is whole and fits here. */
		if (write(o->ack_fd, "CRYO-OK\n", 8) != 8)
			log_pwarn("confirm the image to the migration source");
		close(o->ack_fd);
	}
	close_other_fds(ra, img->nareas);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Our own rseq area is about to be unmapped: the kernel must stop using it. */
	if (__rseq_size > 0)
		sys_rseq((char *)__builtin_thread_pointer() + __rseq_offset, __rseq_size > 32 ? __rseq_size : 32,
			 RSEQ_FLAG_UNREGISTER, RSEQ_SIG_X86);
	sys_switch_stack(map + total - 64, (void (*)(void *))(void *)(map + RESTORER_BLOB_ENTRY), a);
fail:
	free(busy);
	return -1;
}
