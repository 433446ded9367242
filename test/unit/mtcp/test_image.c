/* Unit tests of the image writer (mtcp/image.c) and reader
 * (mtcp/image_read.c): round trips through a pipe, a socket and a file at
 * several zstd levels, with sparse runs, several areas, incompressible pages
 * and pages added from scattered or reused memory, each page compared on
 * the way back; bit flips and truncations refused with one clear line;
 * foreign, newer and mis-structured images refused; write errors reported
 * once; and no allocation at all while the writer runs.
 *
 * Allocation watch: malloc, calloc, realloc and free are interposed here, so
 * calls from zstd and OpenSSL land in them too, and our own objects' calls
 * reach them through -Wl,--wrap (see module.mk); under AddressSanitizer only
 * the wraps count. A thread-local flag, set only around writer calls
 * (cmocka allocates as well), counts any call. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include "mtcp/image.h"
#include "mtcp/image-priv.h"
#include "mtcp/log.h"

#define PS IMAGE_PAGE_SIZE

/* ---- allocation watch ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

/* volatile: the compiler assumes malloc and free touch no user variable. */
static _Thread_local volatile int alloc_forbidden;
static volatile int alloc_bad;

static void alloc_note(void)
{
	if (alloc_forbidden)
		__atomic_add_fetch(&alloc_bad, 1, __ATOMIC_RELAXED);
}

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_INTERPOSED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_INTERPOSED 0
#endif
#endif
#ifndef ALLOC_INTERPOSED
#define ALLOC_INTERPOSED 1
#endif

#if ALLOC_INTERPOSED
/* Interposed for every library of the process, and the target of the
 * wraps' __real_*. Under AddressSanitizer, which owns malloc, only the
 * wraps count: our own calls, not zstd's or OpenSSL's. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

#define EXPORTED __attribute__((visibility("default")))
EXPORTED void *malloc(size_t n)
{
	alloc_note();
	return __libc_malloc(n);
}

EXPORTED void *calloc(size_t n, size_t size)
{
	alloc_note();
	return __libc_calloc(n, size);
}

EXPORTED void *realloc(void *p, size_t n)
{
	alloc_note();
	return __libc_realloc(p, n);
}

EXPORTED void free(void *p)
{
	if (p)
		alloc_note();
	__libc_free(p);
}
#endif

void *__wrap_malloc(size_t n)
{
	alloc_note();
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	alloc_note();
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	alloc_note();
	return __real_realloc(p, n);
}

void __wrap_free(void *p)
{
	if (p)
		alloc_note();
	__real_free(p);
}

/* ---- log capture ---- */

static int log_mfd = -1;

/* The log lines written since the last call, NUL-terminated in buf. */
static const char *log_take(void)
{
	static char buf[16384];
	ssize_t n = pread(log_mfd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	assert_int_equal(ftruncate(log_mfd, 0), 0);
	assert_int_equal(lseek(log_mfd, 0, SEEK_SET), 0);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Exactly one log line, and it contains want. */
static void assert_one_line(const char *log, const char *want)
{
	if (count_lines(log) != 1 || !strstr(log, want))
		fail_msg("expected one line with \"%s\", got:\n%s", want, log);
}

/* ---- test images ---- */

enum fill { FILL_TEXT, FILL_RANDOM, FILL_ZERO, FILL_MIXED };

struct t_area {
	struct image_area a;
	char path[64];
	enum fill fill;
	size_t nruns;
	struct image_run runs[8];
	uint32_t split;		/* add runs in pieces of this many pages; 0: whole */
	bool scatter;		/* add page by page from reversed memory */
	uint8_t *mem;		/* the area's content, every page */
	uint8_t *rev;		/* the same pages in reverse order (scatter) */
	uint8_t *seen;
};

struct t_rec {
	uint32_t type;
	const void *a, *b;
	size_t alen, blen;
};

struct t_img {
	struct image_header hdr;
	struct image_process proc;
	struct image_thread thr[2];
	struct image_siginfo sig;
	struct image_plugin plug;
	char plug_data[13];
	size_t nareas;
	struct t_area areas[6];
	size_t nrecs;
	struct t_rec recs[16];	/* the non-PAGES records, in stream order */
	uint64_t npages;
	bool live;		/* pages from a bounce page, overwritten after each add */
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_page(uint8_t *p, enum fill fill, uint32_t area, uint64_t page)
{
	uint64_t seed = ((uint64_t)area << 40 | page) * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	if (fill == FILL_MIXED)
		fill = page % 2 ? FILL_RANDOM : FILL_TEXT;
	switch (fill) {
	case FILL_TEXT:
		memset(p, 0, PS);
		for (i = 0; i < PS; i += 32)
			snprintf((char *)p + i, 32, "area %2u page %6u at %4u...", area % 100,
				 (unsigned)(page % 1000000), (unsigned)i);
		break;
	case FILL_RANDOM:
		for (i = 0; i < PS; i += 8) {
			uint64_t v = xorshift(&seed);

			memcpy(p + i, &v, 8);
		}
		break;
	case FILL_ZERO:
	case FILL_MIXED:
		memset(p, 0, PS);
		break;
	}
}

static void t_area(struct t_img *m, uint32_t kind, uint64_t start, uint64_t npages_area,
		   const char *path, enum fill fill, size_t nruns, const struct image_run *runs)
{
	struct t_area *ta = &m->areas[m->nareas];
	uint64_t i;

	memset(ta, 0, sizeof(*ta));
	ta->a.start = start;
	ta->a.end = start + npages_area * PS;
	ta->a.prot = 3;
	ta->a.kind = kind;
	ta->fill = fill;
	if (path) {
		snprintf(ta->path, sizeof(ta->path), "%s", path);
		ta->a.path_len = (uint32_t)strlen(path);
	}
	ta->nruns = nruns;
	for (i = 0; i < nruns; i++) {
		ta->runs[i] = runs[i];
		ta->a.npages += runs[i].count;
	}
	ta->mem = aligned_alloc(PS, npages_area * PS);
	ta->seen = calloc(npages_area, 1);
	assert_non_null(ta->mem);
	assert_non_null(ta->seen);
	for (i = 0; i < npages_area; i++)
		fill_page(ta->mem + i * PS, fill, (uint32_t)m->nareas, i);
	m->npages += ta->a.npages;
	m->nareas++;
}

static void t_rec(struct t_img *m, uint32_t type, const void *a, size_t alen, const void *b,
		  size_t blen)
{
	m->recs[m->nrecs++] = (struct t_rec){ type, a, b, alen, blen };
}

/* Header, process, threads, one signal and one plugin around the areas. */
static void t_finish_img(struct t_img *m, size_t nthreads, bool with_sig)
{
	size_t i;

	m->hdr.magic = IMAGE_MAGIC;
	m->hdr.version = IMAGE_VERSION;
	m->hdr.arch = IMAGE_ARCH_X86_64;
	m->hdr.page_size = IMAGE_PAGE_SIZE;
	m->hdr.time_ns = 1700000000123456789ull;
	m->hdr.nareas = (uint32_t)m->nareas;
	m->hdr.nthreads = (uint32_t)nthreads;
	m->hdr.generation = 3;
	snprintf(m->hdr.kernel, sizeof(m->hdr.kernel), "6.18.44-test");
	snprintf(m->hdr.hostname, sizeof(m->hdr.hostname), "testhost");
	snprintf(m->hdr.build, sizeof(m->hdr.build), "cryo test");
	snprintf(m->hdr.program, sizeof(m->hdr.program), "app");
	m->proc.pid = 4242;
	m->proc.ppid = 1;
	m->proc.nsiginfo = with_sig;
	snprintf(m->proc.cwd, sizeof(m->proc.cwd), "/work");
	snprintf(m->proc.exe, sizeof(m->proc.exe), "/work/app");
	t_rec(m, IMAGE_REC_HEADER, &m->hdr, sizeof(m->hdr), NULL, 0);
	t_rec(m, IMAGE_REC_PROCESS, &m->proc, sizeof(m->proc), NULL, 0);
	for (i = 0; i < m->nareas; i++)
		t_rec(m, IMAGE_REC_AREA, &m->areas[i].a, sizeof(m->areas[i].a), m->areas[i].path,
		      m->areas[i].a.path_len);
	for (i = 0; i < nthreads; i++) {
		m->thr[i].tid = 4242 + (uint32_t)i;
		m->thr[i].flags = i ? 0 : IMAGE_THREAD_MAIN;
		m->thr[i].gregs[IMAGE_REG_RIP] = 0x401000 + i;
		t_rec(m, IMAGE_REC_THREAD, &m->thr[i], sizeof(m->thr[i]), NULL, 0);
	}
	if (with_sig) {
		m->sig.tid = 4243;
		m->sig.signo = 10;
		t_rec(m, IMAGE_REC_SIGINFO, &m->sig, sizeof(m->sig), NULL, 0);
	}
	snprintf(m->plug.name, sizeof(m->plug.name), "fd");
	m->plug.version = 1;
	m->plug.len = sizeof(m->plug_data);
	memcpy(m->plug_data, "plugin state", sizeof(m->plug_data));
	t_rec(m, IMAGE_REC_PLUGIN, &m->plug, sizeof(m->plug), m->plug_data, sizeof(m->plug_data));
}

/* Six areas: a heap of compressible pages added 7 at a time (more than a
 * chunk), a sparse random area, a file area, an area with no pages, a stack
 * whose pages come from reversed memory, a zero page. */
static void img_full(struct t_img *m)
{
	static const struct image_run heap[] = { { 0, 300 } };
	static const struct image_run sparse[] = { { 0, 10 }, { 20, 1 }, { 22, 9 }, { 100, 300 },
						   { 998, 2 } };
	static const struct image_run file[] = { { 1, 2 }, { 5, 3 } };
	static const struct image_run stack[] = { { 0, 20 } };
	static const struct image_run one[] = { { 0, 1 } };

	memset(m, 0, sizeof(*m));
	t_area(m, IMAGE_AREA_ANON, 0x555500000000ull, 300, "[heap]", FILL_TEXT, 1, heap);
	m->areas[0].split = 7;
	m->areas[0].a.flags = IMAGE_AREA_F_HEAP;
	t_area(m, IMAGE_AREA_ANON, 0x7f0000000000ull, 1000, NULL, FILL_RANDOM, 5, sparse);
	t_area(m, IMAGE_AREA_FILE_PRIVATE, 0x7f1000000000ull, 8, "/usr/lib/libfoo.so", FILL_TEXT,
	       2, file);
	t_area(m, IMAGE_AREA_FILE_SHARED, 0x7f2000000000ull, 16, "/dev/shm/x", FILL_TEXT, 0, NULL);
	t_area(m, IMAGE_AREA_STACK, 0x7ffd00000000ull, 20, "[stack]", FILL_MIXED, 1, stack);
	m->areas[4].scatter = true;
	t_area(m, IMAGE_AREA_ANON, 0x7f3000000000ull, 1, NULL, FILL_ZERO, 1, one);
	t_finish_img(m, 2, true);
}

/* Two small areas (one compressible, one not) for the damage tests. */
static void img_small(struct t_img *m)
{
	static const struct image_run a0[] = { { 0, 3 } };
	static const struct image_run a1[] = { { 1, 2 } };

	memset(m, 0, sizeof(*m));
	t_area(m, IMAGE_AREA_ANON, 0x10000000ull, 3, "[heap]", FILL_TEXT, 1, a0);
	t_area(m, IMAGE_AREA_ANON, 0x20000000ull, 4, NULL, FILL_RANDOM, 1, a1);
	t_finish_img(m, 1, false);
}

static void img_free(struct t_img *m)
{
	size_t i;

	for (i = 0; i < m->nareas; i++) {
		free(m->areas[i].mem);
		free(m->areas[i].rev);
		free(m->areas[i].seen);
	}
	m->nareas = 0;
}

static void img_reset_seen(struct t_img *m)
{
	size_t i;

	for (i = 0; i < m->nareas; i++)
		memset(m->areas[i].seen, 0, (m->areas[i].a.end - m->areas[i].a.start) / PS);
}

/* Scatter needs a reversed copy, made before the writer runs. */
static void img_prepare_scatter(struct t_img *m)
{
	size_t i, k;

	for (i = 0; i < m->nareas; i++) {
		struct t_area *ta = &m->areas[i];
		size_t n = (ta->a.end - ta->a.start) / PS;

		if (!ta->scatter || ta->rev)
			continue;
		ta->rev = aligned_alloc(PS, n * PS);
		assert_non_null(ta->rev);
		for (k = 0; k < n; k++)
			memcpy(ta->rev + (n - 1 - k) * PS, ta->mem + k * PS, PS);
	}
}

static int t_write_pages(struct image_writer *w, struct t_img *m)
{
	static uint8_t bounce[PS] __attribute__((aligned(PS)));
	size_t i, k;

	for (i = 0; i < m->nareas; i++) {
		struct t_area *ta = &m->areas[i];
		size_t n = (ta->a.end - ta->a.start) / PS;

		for (k = 0; k < ta->nruns; k++) {
			uint64_t first = ta->runs[k].first, left = ta->runs[k].count;

			while (left) {
				uint64_t step = ta->split ? ta->split : left;
				const uint8_t *src = ta->mem + first * PS;

				if (step > left)
					step = left;
				if (ta->scatter) {
					step = 1;
					src = ta->rev + (n - 1 - first) * PS;
				}
				if (m->live) {
					step = 1;
					memcpy(bounce, src, PS);
					src = bounce;
				}
				if (image_writer_pages(w, (uint32_t)i, first, src, step) < 0)
					return -1;
				if (m->live)
					memset(bounce, 0xa5, PS);
				first += step;
				left -= step;
			}
		}
	}
	return 0;
}

/* Writes the whole image with allocation forbidden in this thread. */
static int t_write(struct image_writer *w, int fd, struct t_img *m)
{
	int ret = -1;
	size_t i;

	alloc_forbidden = 1;
	image_writer_set_live(w, m->live);
	image_writer_begin(w, fd);
	for (i = 0; i < m->nrecs; i++) {
		const struct t_rec *r = &m->recs[i];

		if (image_writer_record(w, r->type, r->a, r->alen, r->b, r->blen) < 0)
			goto out;
	}
	if (t_write_pages(w, m) < 0 || image_writer_finish(w) < 0)
		goto out;
	ret = 0;
out:
	alloc_forbidden = 0;
	return ret;
}

struct t_got {
	uint64_t records, pages, chunks_raw, chunks_zstd, bad;
};

struct t_check {
	struct t_img *m;
	struct t_got *got;
};

static int t_put(void *arg, uint32_t area, uint64_t first, const void *data, uint64_t npages)
{
	struct t_check *c = arg;
	struct t_area *ta;
	uint64_t k;

	if (area >= c->m->nareas) {
		c->got->bad++;
		return 0;
	}
	ta = &c->m->areas[area];
	for (k = 0; k < npages; k++) {
		if (first + k >= (ta->a.end - ta->a.start) / PS || ta->seen[first + k] ||
		    memcmp((const uint8_t *)data + k * PS, ta->mem + (first + k) * PS, PS))
			c->got->bad++;
		else
			ta->seen[first + k] = 1;
	}
	c->got->pages += npages;
	return 0;
}

/* The key t_read() opens images with (NULL: none). */
static const uint8_t *t_key;

/* Reads the image from fd, comparing every record and page with m. Returns
 * what image_reader_next() or image_reader_pages() returned last. */
static int t_read(int fd, struct t_img *m, struct t_got *got, bool compare)
{
	struct image_reader *r = image_reader_new(fd, "test.cryo");
	struct t_check c = { m, got };
	size_t nrec = 0;
	const void *p;
	uint64_t len;
	uint32_t type;
	int ret;

	assert_non_null(r);
	if (t_key)
		assert_int_equal(image_reader_set_key(r, t_key), 0);
	memset(got, 0, sizeof(*got));
	img_reset_seen(m);
	while ((ret = image_reader_next(r, &type, &p, &len)) > 0) {
		got->records++;
		if (type == IMAGE_REC_PAGES) {
			struct image_pages pg;

			memcpy(&pg, p, sizeof(pg));
			if (pg.codec == IMAGE_CODEC_ZSTD)
				got->chunks_zstd++;
			else
				got->chunks_raw++;
			ret = image_reader_pages(r, p, len, t_put, &c);
			if (ret < 0)
				break;
			continue;
		}
		if (!compare)
			continue;
		assert_true(nrec < m->nrecs);
		assert_int_equal(type, m->recs[nrec].type);
		assert_int_equal(len, m->recs[nrec].alen + m->recs[nrec].blen);
		if (type == IMAGE_REC_HEADER) {
			/* The writer fills in the seal fields of a sealed image. */
			struct image_header h;

			memcpy(&h, p, sizeof(h));
			assert_int_equal(!!(h.flags & IMAGE_HDR_SEALED), !!t_key);
			assert_int_equal(image_reader_sealed(r), !!t_key);
			h.flags &= ~(uint64_t)IMAGE_HDR_SEALED;
			h.seal_salt = 0;
			memset(h.key_check, 0, sizeof(h.key_check));
			p = &h;
			assert_memory_equal(p, m->recs[nrec].a, m->recs[nrec].alen);
			nrec++;
			continue;
		}
		assert_memory_equal(p, m->recs[nrec].a, m->recs[nrec].alen);
		if (m->recs[nrec].blen)
			assert_memory_equal((const char *)p + m->recs[nrec].alen, m->recs[nrec].b,
					    m->recs[nrec].blen);
		nrec++;
	}
	if (ret == 0 && compare)
		assert_int_equal(nrec, m->nrecs);
	image_reader_free(r);
	return ret;
}

/* Every stored page came back once, identical, and nothing else did. */
static void assert_all_pages(struct t_img *m, const struct t_got *got)
{
	size_t i, k;

	assert_int_equal(got->bad, 0);
	assert_int_equal(got->pages, m->npages);
	for (i = 0; i < m->nareas; i++) {
		const struct t_area *ta = &m->areas[i];
		uint64_t seen = 0;

		for (k = 0; k < (ta->a.end - ta->a.start) / PS; k++)
			seen += ta->seen[k];
		assert_int_equal(seen, ta->a.npages);
		for (k = 0; k < ta->nruns; k++)
			assert_true(ta->seen[ta->runs[k].first] &&
				    ta->seen[ta->runs[k].first + ta->runs[k].count - 1]);
	}
}

/* ---- the writer in a thread, for pipes and sockets ---- */

struct t_job {
	struct image_writer *w;
	struct t_img *m;
	int fd, ret;
};

static void *writer_thread(void *arg)
{
	struct t_job *j = arg;

	j->ret = t_write(j->w, j->fd, j->m);
	close(j->fd);
	return NULL;
}

/* Writes m at level through the pair of fds (writer end fds[1]) while this
 * thread reads and checks it. */
static void round_trip_fds(struct t_img *m, int level, int fds[2], struct t_got *got)
{
	struct image_writer *w = image_writer_new(level);
	struct t_job job = { w, m, fds[1], -1 };
	pthread_t th;
	int before = alloc_bad;

	assert_non_null(w);
	if (t_key)
		assert_int_equal(image_writer_set_key(w, t_key), 0);
	img_prepare_scatter(m);
	assert_int_equal(pthread_create(&th, NULL, writer_thread, &job), 0);
	assert_int_equal(t_read(fds[0], m, got, true), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	close(fds[0]);
	assert_int_equal(job.ret, 0);
	assert_int_equal(alloc_bad, before);
	assert_int_equal(image_writer_npages(w), m->npages);
	assert_all_pages(m, got);
	image_writer_free(w);
	assert_string_equal(log_take(), "");
}

static void pipe_raw(void **state)
{
	struct t_img m;
	struct t_got got;
	int fds[2];

	(void)state;
	img_full(&m);
	assert_int_equal(pipe(fds), 0);
	round_trip_fds(&m, 0, fds, &got);
	assert_int_equal(got.chunks_zstd, 0);
	assert_true(got.chunks_raw >= 5);
	img_free(&m);
}

static void pipe_zstd(void **state)
{
	struct t_img m;
	struct t_got got;
	int fds[2];

	(void)state;
	img_full(&m);
	assert_int_equal(pipe(fds), 0);
	round_trip_fds(&m, 1, fds, &got);
	/* Text compresses; the random area and the random half of the stack
	 * do not, and are stored raw. */
	assert_true(got.chunks_zstd >= 3);
	assert_true(got.chunks_raw >= 2);
	img_free(&m);
}

/* A non-blocking pipe: short writes and EAGAIN on the writer's side. */
static void pipe_nonblocking(void **state)
{
	struct t_img m;
	struct t_got got;
	int fds[2];

	(void)state;
	img_full(&m);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	round_trip_fds(&m, 0, fds, &got);
	img_free(&m);
}

static void socket_zstd(void **state)
{
	struct t_img m;
	struct t_got got;
	int fds[2];

	(void)state;
	img_full(&m);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	round_trip_fds(&m, 3, fds, &got);
	img_free(&m);
}

/* Pages handed in from one bounce page, overwritten after each call: with
 * live set, the image still holds what the page held when it was added. */
static void live_bounce_buffer(void **state)
{
	struct t_img m;
	struct t_got got;
	int fds[2], level;

	(void)state;
	for (level = 0; level <= 1; level++) {
		img_full(&m);
		m.live = true;
		assert_int_equal(pipe(fds), 0);
		round_trip_fds(&m, level, fds, &got);
		img_free(&m);
	}
}

static int tmp_fd(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	return fd;
}

/* Through a file, at several levels; the file is as long as the writer says,
 * and the writer can write a second image after image_writer_prepare(). */
static void file_round_trips(void **state)
{
	static const int levels[] = { 0, 1, 3 };
	struct t_img m;
	struct t_got got;
	size_t i;

	(void)state;
	img_full(&m);
	img_prepare_scatter(&m);
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct image_writer *w = image_writer_new(levels[i]);
		int round, before = alloc_bad;

		assert_non_null(w);
		for (round = 0; round < 2; round++) {
			int fd = tmp_fd();
			struct stat st;

			if (round)
				assert_int_equal(image_writer_prepare(w), 0);
			assert_int_equal(t_write(w, fd, &m), 0);
			assert_int_equal(fstat(fd, &st), 0);
			assert_int_equal((uint64_t)st.st_size, image_writer_bytes(w));
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			assert_int_equal(t_read(fd, &m, &got, true), 0);
			assert_all_pages(&m, &got);
			close(fd);
		}
		assert_int_equal(alloc_bad, before);
		image_writer_free(w);
	}
	assert_string_equal(log_take(), "");
	img_free(&m);
}

/* Every zstd level, negative ones included, compresses inside the fixed
 * workspace: no allocation, no fallback warning. */
static void zstd_levels_without_allocation(void **state)
{
	static const int levels[] = { -7, -1, 1, 2, 5, 9, 15, 19, 22 };
	static const struct image_run text[] = { { 0, 300 } };
	static const struct image_run rnd[] = { { 0, 20 } };
	struct t_img m;
	struct t_got got;
	size_t i;

	(void)state;
	memset(&m, 0, sizeof(m));
	t_area(&m, IMAGE_AREA_ANON, 0x10000000ull, 300, NULL, FILL_TEXT, 1, text);
	t_area(&m, IMAGE_AREA_ANON, 0x20000000ull, 20, NULL, FILL_RANDOM, 1, rnd);
	t_finish_img(&m, 1, false);
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct image_writer *w = image_writer_new(levels[i]);
		int fd = tmp_fd(), before = alloc_bad;

		assert_non_null(w);
		assert_int_equal(t_write(w, fd, &m), 0);
		assert_int_equal(alloc_bad, before);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(t_read(fd, &m, &got, true), 0);
		assert_all_pages(&m, &got);
		assert_true(got.chunks_zstd >= 2);
		assert_true(got.chunks_raw >= 1);
		close(fd);
		image_writer_free(w);
		assert_string_equal(log_take(), "");
	}
	img_free(&m);
}

/* The allocation watch itself works: a forbidden malloc is counted. */
static void allocation_watch_works(void **state)
{
	int before = alloc_bad;
	void *volatile p;	/* or the compiler drops the pair */

	(void)state;
	alloc_forbidden = 1;
	p = malloc(10);
	free(p);
	alloc_forbidden = 0;
	assert_true(alloc_bad >= before + 2);
	alloc_bad = before;
}

/* ---- damaged images ---- */

struct t_blob {
	uint8_t *data;
	size_t len;
	size_t nrec;
	size_t rec_off[64];	/* offset of each record header */
};

static void blob_make(struct t_img *m, int level, struct t_blob *b)
{
	struct image_writer *w = image_writer_new(level);
	int fd = tmp_fd();
	struct stat st;
	size_t off = 0;

	assert_non_null(w);
	if (t_key)
		assert_int_equal(image_writer_set_key(w, t_key), 0);
	assert_int_equal(t_write(w, fd, m), 0);
	image_writer_free(w);
	assert_int_equal(fstat(fd, &st), 0);
	b->len = (size_t)st.st_size;
	b->data = malloc(b->len);
	assert_non_null(b->data);
	assert_int_equal(pread(fd, b->data, b->len, 0), (ssize_t)b->len);
	close(fd);
	b->nrec = 0;
	while (off < b->len) {
		struct image_rec_hdr rh;

		memcpy(&rh, b->data + off, sizeof(rh));
		assert_true(b->nrec < 64);
		b->rec_off[b->nrec++] = off;
		off += sizeof(rh) + rh.len;
	}
	assert_int_equal(off, b->len);
}

/* Reads len bytes of data as an image through a memfd; 0 if accepted. */
static int blob_read(struct t_img *m, const uint8_t *data, size_t len)
{
	struct t_got got;
	int fd = memfd_create("img", MFD_CLOEXEC), ret;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	ret = t_read(fd, m, &got, false);
	close(fd);
	return ret;
}

/* Flips one bit, expects a refusal in one line (containing want, if set). */
static void blob_check_flip(struct t_img *m, struct t_blob *b, size_t off, int bit,
			    const char *want)
{
	const char *log;

	b->data[off] ^= (uint8_t)(1u << bit);
	if (blob_read(m, b->data, b->len) != -1)
		fail_msg("a flipped bit %d at byte %zu was accepted", bit, off);
	b->data[off] ^= (uint8_t)(1u << bit);
	log = log_take();
	if (count_lines(log) != 1 || (want && !strstr(log, want)))
		fail_msg("a flipped bit %d at byte %zu gave %d lines, wanted \"%s\":\n%s", bit, off,
			 count_lines(log), want ? want : "", log);
}

static void flipped_bits_refused(void **state)
{
	struct t_img m;
	struct t_blob b;
	size_t i, off;
	int level;

	(void)state;
	img_small(&m);
	for (level = 0; level <= 1; level++) {
		blob_make(&m, level, &b);
		assert_int_equal(blob_read(&m, b.data, b.len), 0);
		assert_string_equal(log_take(), "");
		/* Every bit of every record header, the trailer's included. */
		for (i = 0; i < b.nrec; i++)
			for (off = b.rec_off[i]; off < b.rec_off[i] + sizeof(struct image_rec_hdr);
			     off++)
				for (int bit = 0; bit < 8; bit++)
					blob_check_flip(&m, &b, off, bit, NULL);
		/* Payload bytes: the first and last of each record, and a
		 * stride through the rest, the trailer's SHA-256 included.
		 * The record's CRC catches each, except in the HEADER's magic
		 * and version, which are checked first. */
		for (i = 0; i < b.nrec; i++) {
			size_t start = b.rec_off[i] + sizeof(struct image_rec_hdr);
			size_t end = i + 1 < b.nrec ? b.rec_off[i + 1] : b.len;
			struct image_rec_hdr rh;
			char want[128];

			memcpy(&rh, b.data + b.rec_off[i], sizeof(rh));
			snprintf(want, sizeof(want), "record %zu (%s) at byte %zu fails its checksum",
				 i, image_rec_name(rh.type), b.rec_off[i]);
			for (off = start; off < end; off += off + 61 < end ? 61 : 1)
				blob_check_flip(&m, &b, off, (int)(off % 8),
						i == 0 && off < start + 8 ? NULL : want);
			blob_check_flip(&m, &b, end - 1, 7, want);
		}
		free(b.data);
	}
	img_free(&m);
}

static void check_truncated(struct t_img *m, struct t_blob *b, size_t len)
{
	char want[64];

	if (blob_read(m, b->data, len) != -1)
		fail_msg("image truncated to %zu of %zu bytes was accepted", len, b->len);
	if (len)
		snprintf(want, sizeof(want), "test.cryo is truncated at byte %zu", len);
	else
		snprintf(want, sizeof(want), "test.cryo is empty");
	assert_one_line(log_take(), want);
}

static void truncation_refused(void **state)
{
	struct t_img m;
	struct t_blob b;
	size_t i, len;
	uint64_t seed = 7;

	(void)state;
	img_small(&m);
	blob_make(&m, 1, &b);
	for (len = 0; len < 64; len++)
		check_truncated(&m, &b, len);
	for (i = 0; i < b.nrec; i++) {
		static const int delta[] = { -1, 0, 1, 8, 15, 16, 17, 40 };

		for (size_t k = 0; k < sizeof(delta) / sizeof(delta[0]); k++) {
			len = b.rec_off[i] + (size_t)(long)delta[k];
			if (len > 0 && len < b.len)
				check_truncated(&m, &b, len);
		}
	}
	for (i = 0; i < 300; i++)
		check_truncated(&m, &b, xorshift(&seed) % b.len);
	check_truncated(&m, &b, b.len - 1);
	assert_int_equal(blob_read(&m, b.data, b.len), 0);
	free(b.data);
	img_free(&m);
}

/* Writes m with its header altered and expects the reader's message. */
static void check_foreign(struct t_img *m, const char *want)
{
	struct t_blob b;

	blob_make(m, 0, &b);
	assert_int_equal(blob_read(m, b.data, b.len), -1);
	assert_one_line(log_take(), want);
	free(b.data);
}

static void foreign_images_refused(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not an image\n";
	struct t_img m;

	(void)state;
	img_small(&m);
	m.hdr.magic = 0x464c457fu;	/* "\177ELF" */
	check_foreign(&m, "test.cryo is not a cryo image");
	m.hdr.magic = IMAGE_MAGIC;
	m.hdr.version = IMAGE_VERSION + 1;
	check_foreign(&m, "test.cryo is image format version 4; this cryo reads versions 1 to 3");
	m.hdr.version = IMAGE_VERSION;
	m.hdr.arch = 183;
	check_foreign(&m, "test.cryo is an image of architecture 183 (aarch64)");
	m.hdr.arch = IMAGE_ARCH_X86_64;
	m.hdr.page_size = 65536;
	check_foreign(&m, "test.cryo has 65536-byte pages");
	img_free(&m);

	assert_int_equal(blob_read(&m, (const uint8_t *)text, sizeof(text) - 1), -1);
	assert_one_line(log_take(), "test.cryo is not a cryo image");
}

static void header_checker_messages(void **state)
{
	struct image_header h = { .magic = IMAGE_MAGIC, .version = IMAGE_VERSION,
				  .arch = IMAGE_ARCH_X86_64, .page_size = IMAGE_PAGE_SIZE };

	(void)state;
	assert_int_equal(image_check_header(&h, sizeof(h), "x"), 0);
	assert_int_equal(image_check_header(&h, sizeof(h) - 1, "x"), -1);
	assert_one_line(log_take(), "x is corrupt: its HEADER has 327 bytes");
	assert_int_equal(image_check_header(&h, 3, "x"), -1);
	assert_one_line(log_take(), "x is not a cryo image");
	h.version = 0;
	assert_int_equal(image_check_header(&h, sizeof(h), "x"), -1);
	assert_one_line(log_take(), "x is image format version 0");
	assert_string_equal(image_rec_name(IMAGE_REC_AREA), "AREA");
	assert_string_equal(image_rec_name(99), "?");
	assert_string_equal(image_area_kind_name(IMAGE_AREA_ANON), "anon");
	assert_string_equal(image_area_kind_name(0), "?");
}

/* ---- structure: valid checksums, wrong contents ---- */

/* Writes the records of m (all but pages), then extra PAGES payloads, then
 * the trailer, and expects the reader to refuse with want. */
static void check_structure(struct t_img *m, const void *pages, size_t pages_len, bool add_pages,
			    const char *want)
{
	struct image_writer *w = image_writer_new(0);
	int fd = tmp_fd();
	struct t_got got;
	size_t i;

	assert_non_null(w);
	image_writer_begin(w, fd);
	for (i = 0; i < m->nrecs; i++)
		assert_int_equal(image_writer_record(w, m->recs[i].type, m->recs[i].a,
						     m->recs[i].alen, m->recs[i].b,
						     m->recs[i].blen), 0);
	if (add_pages)
		assert_int_equal(t_write_pages(w, m), 0);
	if (pages)
		assert_int_equal(image_writer_record(w, IMAGE_REC_PAGES, pages, pages_len, NULL, 0),
				 0);
	assert_int_equal(image_writer_finish(w), 0);
	image_writer_free(w);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(t_read(fd, m, &got, false), -1);
	close(fd);
	assert_one_line(log_take(), want);
}

static void bad_structure_refused(void **state)
{
	struct {
		struct image_pages pg;
		struct image_run run;
		uint8_t data[2 * PS];
	} pages;
	struct t_img m;

	(void)state;
	img_small(&m);

	/* An area declares more pages than the stream stores. */
	m.areas[1].a.npages = 3;
	check_structure(&m, NULL, 0, true, "which declares 3");
	m.areas[1].a.npages = 2;

	/* A PAGES record for an area that does not exist. */
	memset(&pages, 0, sizeof(pages));
	pages.pg = (struct image_pages){ .area = 5, .nruns = 1, .codec = IMAGE_CODEC_RAW,
					 .raw_len = PS, .stored_len = PS };
	pages.run = (struct image_run){ .first = 0, .count = 1 };
	check_structure(&m, &pages, sizeof(pages) - PS, false, "is for area 5");

	/* A run past the end of its area (area 1 has 4 pages). */
	pages.pg.area = 1;
	pages.run.first = 4;
	check_structure(&m, &pages, sizeof(pages) - PS, false, "has run 0 of pages 4+1");

	/* Runs that do not add up to raw_len. */
	pages.run.first = 0;
	pages.run.count = 2;
	check_structure(&m, &pages, sizeof(pages) - PS, false, "has runs of 2 pages");

	/* A zstd chunk that is not zstd. */
	pages.run.count = 1;
	pages.pg.codec = IMAGE_CODEC_ZSTD;
	pages.pg.stored_len = 100;
	memset(pages.data, 0x5a, 100);
	check_structure(&m, &pages, sizeof(pages.pg) + sizeof(pages.run) + 100, false,
			"does not hold a zstd frame");

	/* The same page twice. */
	pages.pg.codec = IMAGE_CODEC_RAW;
	pages.pg.stored_len = PS;
	pages.run.first = 1;
	check_structure(&m, &pages, sizeof(pages) - PS, true, "stores page 1 of area 1 again");

	/* Fewer THREAD records than the HEADER declares. */
	m.hdr.nthreads = 2;
	check_structure(&m, NULL, 0, true, "HEADER and PROCESS declare 2, 2 and 0");
	img_free(&m);
}

static void bad_order_refused(void **state)
{
	struct t_img m;

	(void)state;
	img_small(&m);
	/* No PROCESS record. */
	memmove(&m.recs[1], &m.recs[2], (m.nrecs - 2) * sizeof(m.recs[0]));
	m.nrecs--;
	check_structure(&m, NULL, 0, true, "where PROCESS must come");
	img_free(&m);

	/* An AREA after page data: the last area's record moved behind. */
	img_small(&m);
	{
		struct image_writer *w = image_writer_new(0);
		int fd = tmp_fd();
		struct t_got got;
		size_t i;

		image_writer_begin(w, fd);
		for (i = 0; i < m.nrecs; i++)
			if (i != 3)
				assert_int_equal(image_writer_record(w, m.recs[i].type, m.recs[i].a,
								     m.recs[i].alen, m.recs[i].b,
								     m.recs[i].blen), 0);
		assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 3), 0);
		assert_int_equal(image_writer_record(w, m.recs[3].type, m.recs[3].a, m.recs[3].alen,
						     m.recs[3].b, m.recs[3].blen), 0);
		assert_int_equal(image_writer_finish(w), 0);
		image_writer_free(w);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(t_read(fd, &m, &got, false), -1);
		close(fd);
		assert_one_line(log_take(), "(AREA) at byte 24683 comes after page data");
	}
	img_free(&m);
}

/* ---- writer errors and misuse ---- */

static void write_error_reported_once(void **state)
{
	struct t_img m;
	struct image_writer *w;
	int fd, fds[2];

	(void)state;
	img_small(&m);
	w = image_writer_new(1);
	assert_non_null(w);

	/* ENOSPC from /dev/full: one line, then everything fails quietly. */
	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_HEADER, &m.hdr, sizeof(m.hdr), NULL, 0),
			 -1);
	assert_one_line(log_take(), "No space left on device (ENOSPC)");
	assert_int_equal(image_writer_record(w, IMAGE_REC_PROCESS, &m.proc, sizeof(m.proc), NULL,
					     0), -1);
	assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 1), -1);
	assert_int_equal(image_writer_finish(w), -1);
	assert_string_equal(log_take(), "");
	close(fd);

	/* A socket whose peer went away: EPIPE, and no SIGPIPE kills us. */
	assert_int_equal(image_writer_prepare(w), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	close(fds[0]);
	assert_int_equal(t_write(w, fds[1], &m), -1);
	assert_one_line(log_take(), "Broken pipe (EPIPE)");
	close(fds[1]);

	/* After a failure the writer needs image_writer_prepare() again. */
	fd = tmp_fd();
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_finish(w), -1);
	assert_one_line(log_take(), "without image_writer_prepare()");
	assert_int_equal(image_writer_prepare(w), 0);
	assert_int_equal(t_write(w, fd, &m), 0);
	assert_string_equal(log_take(), "");
	close(fd);

	image_writer_free(w);
	img_free(&m);
}

static void writer_misuse_refused(void **state)
{
	struct t_img m;
	struct image_writer *w;
	int fd;

	(void)state;
	img_small(&m);
	w = image_writer_new(0);
	assert_non_null(w);

	fd = tmp_fd();
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 1), -1);
	assert_one_line(log_take(), "pages written before the HEADER record");
	close(fd);

	assert_int_equal(image_writer_prepare(w), 0);
	fd = tmp_fd();
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_PROCESS, &m.proc, sizeof(m.proc), NULL,
					     0), -1);
	assert_one_line(log_take(), "HEADER must be first");
	close(fd);

	assert_int_equal(image_writer_prepare(w), 0);
	fd = tmp_fd();
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_HEADER, &m.hdr, sizeof(m.hdr), NULL, 0),
			 0);
	assert_int_equal(image_writer_pages(w, 0, 2, m.areas[0].mem, 1), 0);
	assert_int_equal(image_writer_pages(w, 0, 1, m.areas[0].mem, 1), -1);
	assert_one_line(log_take(), "pages of area 0 out of order: page 1 after page 2");
	close(fd);

	assert_int_equal(image_writer_prepare(w), 0);
	fd = tmp_fd();
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_HEADER, &m.hdr, sizeof(m.hdr), NULL, 0),
			 0);
	assert_int_equal(image_writer_record(w, IMAGE_REC_PLUGIN, m.areas[0].mem,
					     IMAGE_RECORD_MAX, "x", 1), -1);
	assert_one_line(log_take(), "exceeds the");
	close(fd);

	image_writer_free(w);
	image_writer_free(NULL);
	image_reader_free(NULL);
	img_free(&m);
}

/* ---- the pipeline: packing threads, hasher, I/O helper ---- */

static void blob_fix_crc(struct t_blob *b, size_t off);

/* A zstd chunk far into the stream, read ahead and decoded by a decoding
 * thread, whose frame is damaged and its CRC fixed up: refused when its
 * turn comes, in one line naming it. */
static void check_bad_frame(struct t_img *m, struct t_blob *b, size_t rec)
{
	size_t off = b->rec_off[rec], data;
	struct image_pages pg;
	uint8_t *copy = malloc(b->len);
	char want[96];

	assert_non_null(copy);
	memcpy(copy, b->data, b->len);
	memcpy(&pg, b->data + off + sizeof(struct image_rec_hdr), sizeof(pg));
	assert_int_equal(pg.codec, IMAGE_CODEC_ZSTD);
	data = off + sizeof(struct image_rec_hdr) + sizeof(pg) + pg.nruns * sizeof(struct image_run);
	memset(b->data + data + pg.stored_len / 2, 0xee, 64);
	blob_fix_crc(b, off);
	assert_int_equal(blob_read(m, b->data, b->len), -1);
	snprintf(want, sizeof(want), "record %zu (PAGES) at byte %zu does not decompress", rec, off);
	assert_one_line(log_take(), want);
	memcpy(b->data, copy, b->len);
	free(copy);
}

/* 40 chunks (more than the ring has slots): pages alternately text and
 * random, then a random area, then a text area. */
static void img_many_chunks(struct t_img *m)
{
	static const struct image_run mixed[] = { { 0, 6144 } };
	static const struct image_run rnd[] = { { 0, 1000 }, { 1024, 1024 } };
	static const struct image_run text[] = { { 0, 2048 } };

	memset(m, 0, sizeof(*m));
	t_area(m, IMAGE_AREA_ANON, 0x10000000ull, 6144, NULL, FILL_MIXED, 1, mixed);
	t_area(m, IMAGE_AREA_ANON, 0x20000000ull, 2048, NULL, FILL_RANDOM, 2, rnd);
	t_area(m, IMAGE_AREA_ANON, 0x30000000ull, 2048, "[heap]", FILL_TEXT, 1, text);
	m->areas[1].split = 100;	/* chunks cut across calls */
	t_finish_img(m, 1, false);
}

/* The stream is the same bytes whatever the number of packing threads (1,
 * 2, 7: fewer, as many as, more than the CPUs here), at level 0, 1 and -1,
 * live or not; every page comes back; random chunks are stored raw without
 * a compression attempt deciding otherwise; and a bit flipped in any of
 * several chunks is refused. */
static void same_bytes_any_threads(void **state)
{
	static const char *const threads[] = { "1", "2", "7" };
	static const int levels[] = { 0, 1, -1 };
	struct t_img m;
	struct t_got got;
	struct t_blob b[3];
	size_t li, ti, i;

	(void)state;
	img_many_chunks(&m);
	for (li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
		for (ti = 0; ti < 3; ti++) {
			assert_int_equal(setenv("CRYO_THREADS", threads[ti], 1), 0);
			m.live = ti == 2;
			blob_make(&m, levels[li], &b[ti]);
			assert_int_equal(b[ti].nrec, 7 + 40 + 1);	/* and the trailer */
			if (ti) {
				assert_int_equal(b[ti].len, b[0].len);
				assert_memory_equal(b[ti].data, b[0].data, b[0].len);
			}
		}
		{
			struct image_writer *w = image_writer_new(levels[li]);

			assert_non_null(w);
			assert_int_equal(image_writer_threads(w), 2 + 7);
			image_writer_free(w);
		}
		unsetenv("CRYO_THREADS");
		assert_int_equal(blob_read(&m, b[0].data, b[0].len), 0);
		{
			int fd = memfd_create("img", MFD_CLOEXEC);

			assert_int_equal(write(fd, b[0].data, b[0].len), (ssize_t)b[0].len);
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			assert_int_equal(t_read(fd, &m, &got, true), 0);
			assert_all_pages(&m, &got);
			close(fd);
		}
		if (levels[li]) {
			/* The mixed area's chunks and the text area's shrink;
			 * the 8 chunks of the random area are stored raw. */
			assert_int_equal(got.chunks_raw, 8);
			assert_int_equal(got.chunks_zstd, 32);
			check_bad_frame(&m, &b[0], 7 + 20);
			check_bad_frame(&m, &b[0], 7 + 39);
		} else {
			assert_int_equal(got.chunks_zstd, 0);
		}
		for (i = 7; i < b[0].nrec; i += 6) {
			size_t off = b[0].rec_off[i] + 4000 + i;

			blob_check_flip(&m, &b[0], off, (int)(i % 8), "fails its checksum");
		}
		for (ti = 0; ti < 3; ti++)
			free(b[ti].data);
	}
	assert_string_equal(log_take(), "");
	img_free(&m);
}

/* After a stream, good or failed, the writer's buffers are given back to
 * the kernel: a checkpoint finds none of their pages, so they cost an
 * image nothing. */
static void scratch_given_back(void **state)
{
	struct t_img m;
	struct image_writer *w;
	unsigned char *vec;
	size_t len, i, resident;
	uint8_t *scratch;
	int fd, round, fds[2];

	(void)state;
	img_full(&m);
	img_prepare_scatter(&m);
	for (round = 0; round < 2; round++) {
		w = image_writer_new(1);
		assert_non_null(w);
		scratch = image_writer_scratch(w, &len);
		vec = malloc(len / PS);
		assert_non_null(vec);
		if (round == 0) {
			fd = tmp_fd();
			assert_int_equal(t_write(w, fd, &m), 0);
			close(fd);
		} else {
			assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
			close(fds[0]);
			assert_int_equal(t_write(w, fds[1], &m), -1);
			assert_one_line(log_take(), "Broken pipe (EPIPE)");
			close(fds[1]);
		}
		assert_int_equal(mincore(scratch, len, vec), 0);
		for (i = resident = 0; i < len / PS; i++)
			resident += vec[i] & 1;
		assert_int_equal(resident, 0);
		free(vec);
		image_writer_free(w);
	}
	img_free(&m);
}

/* ---- the I/O helper thread ---- */

static int count_threads(void)
{
	char buf[4096];
	int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	long got;

	assert_true(fd >= 0);
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < got;) {
			unsigned short reclen;

			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			n += buf[off + 19] != '.';
			off += reclen;
		}
	close(fd);
	return n;
}

/* Waits up to 2 s for the thread count to come down to want: a thread that
 * has exited (its tid cleared, which is what the writer waits for) may
 * stay listed in /proc/self/task for a moment while the kernel reaps it. */
static int settled_threads(int want)
{
	int i, n = count_threads();

	for (i = 0; i < 200 && n != want; i++) {
		usleep(10000);
		n = count_threads();
	}
	return n;
}

/* The helper exists while pages are written and is gone after the stream,
 * whether it ends well or not. */
static void helper_thread_comes_and_goes(void **state)
{
	struct t_img m;
	struct t_got got;
	struct image_writer *w;
	int base = count_threads(), fd = tmp_fd(), i;

	(void)state;
	img_full(&m);
	w = image_writer_new(1);
	assert_non_null(w);
	image_writer_begin(w, fd);
	for (i = 0; i < (int)m.nrecs; i++)
		assert_int_equal(image_writer_record(w, m.recs[i].type, m.recs[i].a, m.recs[i].alen,
						     m.recs[i].b, m.recs[i].blen), 0);
	assert_int_equal(count_threads(), base);
	assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 300), 0);
	assert_int_equal(count_threads(), base + image_writer_threads(w));
	assert_int_equal(image_writer_pages(w, 1, 0, m.areas[1].mem, 10), 0);
	assert_int_equal(image_writer_pages(w, 1, 20, m.areas[1].mem + 20 * PS, 1), 0);
	assert_int_equal(image_writer_pages(w, 1, 22, m.areas[1].mem + 22 * PS, 9), 0);
	assert_int_equal(image_writer_pages(w, 1, 100, m.areas[1].mem + 100 * PS, 300), 0);
	assert_int_equal(image_writer_pages(w, 1, 998, m.areas[1].mem + 998 * PS, 2), 0);
	assert_int_equal(image_writer_pages(w, 2, 1, m.areas[2].mem + PS, 2), 0);
	assert_int_equal(image_writer_pages(w, 2, 5, m.areas[2].mem + 5 * PS, 3), 0);
	assert_int_equal(image_writer_pages(w, 4, 0, m.areas[4].mem, 20), 0);
	assert_int_equal(image_writer_pages(w, 5, 0, m.areas[5].mem, 1), 0);
	assert_int_equal(image_writer_finish(w), 0);
	assert_int_equal(settled_threads(base), base);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(t_read(fd, &m, &got, true), 0);
	assert_all_pages(&m, &got);
	close(fd);

	/* A failure ends it too: pages cut short by a peer that went away. */
	{
		int fds[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		assert_int_equal(image_writer_prepare(w), 0);
		image_writer_begin(w, fds[1]);
		for (i = 0; i < (int)m.nrecs; i++)
			assert_int_equal(image_writer_record(w, m.recs[i].type, m.recs[i].a,
							     m.recs[i].alen, m.recs[i].b,
							     m.recs[i].blen), 0);
		close(fds[0]);
		/* The helper's error shows at the next chunk or record. */
		assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 256), 0);
		assert_int_equal(count_threads(), base + image_writer_threads(w));
		assert_int_equal(image_writer_finish(w), -1);
		assert_one_line(log_take(), "Broken pipe (EPIPE)");
		assert_int_equal(settled_threads(base), base);
		assert_int_equal(image_writer_pages(w, 1, 0, m.areas[1].mem, 10), -1);
		assert_string_equal(log_take(), "");
		close(fds[1]);
	}

	/* Freed in the middle of a stream: the helper goes with it. */
	fd = tmp_fd();
	assert_int_equal(image_writer_prepare(w), 0);
	image_writer_begin(w, fd);
	assert_int_equal(image_writer_record(w, IMAGE_REC_HEADER, &m.hdr, sizeof(m.hdr), NULL, 0),
			 0);
	assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 300), 0);
	assert_int_equal(count_threads(), base + image_writer_threads(w));
	image_writer_free(w);
	assert_int_equal(settled_threads(base), base);
	close(fd);
	img_free(&m);
}

/* A restart brings the writer's memory back without its helper thread,
 * which existed only in the old process; fork() makes exactly that: the
 * child has the writer mid-stream and no helper. After
 * image_writer_restarted() the child must be able to prepare and write a
 * whole new image (before the fix, prepare() waited forever). */
static void restarted_writer_forgets_its_helper(void **state)
{
	struct t_img m;
	struct image_writer *w;
	int fd = tmp_fd(), status, i;
	pid_t child;

	(void)state;
	img_full(&m);
	img_prepare_scatter(&m);
	w = image_writer_new(1);
	assert_non_null(w);
	image_writer_begin(w, fd);
	for (i = 0; i < (int)m.nrecs; i++)
		assert_int_equal(image_writer_record(w, m.recs[i].type, m.recs[i].a, m.recs[i].alen,
						     m.recs[i].b, m.recs[i].blen), 0);
	assert_int_equal(image_writer_pages(w, 0, 0, m.areas[0].mem, 300), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct t_got got;
		int nfd = tmp_fd();

		alarm(10);	/* a hang is the failure this test looks for */
		image_writer_restarted(w);
		if (image_writer_prepare(w) < 0 || t_write(w, nfd, &m) < 0)
			_exit(2);
		lseek(nfd, 0, SEEK_SET);
		_exit(t_read(nfd, &m, &got, true) == 0 && got.pages == m.npages ? 0 : 3);
	}
	assert_int_equal(image_writer_finish(w), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	image_writer_free(w);
	close(fd);
	img_free(&m);
}

static int group_setup(void **state)
{
	(void)state;
	log_mfd = memfd_create("log", MFD_CLOEXEC);
	if (log_mfd < 0)
		return -1;
	log_setup(LOG_WARN, log_mfd);
	return 0;
}

/* ---- sealed images (AES-256-GCM) ---- */

static const uint8_t key_a[32] = { 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
				   11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
				   22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
static const uint8_t key_b[32] = { 0xff };

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* Known answers computed independently with Python's cryptography:
 *   AESGCM(bytes(range(32))).encrypt(struct.pack('<QI', salt, 5),
 *       b"cryo sealed record test vector", struct.pack('<IQ', 7, 30 + 16))
 *   hashlib.sha256(b"cryo image key check v2" + bytes(range(32)))[:16] */
static void seal_known_answer(void **state)
{
	static const char pt[] = "cryo sealed record test vector";
	static const char want_hex[] = "eb4c96d00ea0051bd1b840797ac0f87c98fe7640ea70a6dfe1d2313765"
				       "6fc73f85cd2894677e13a74399d5fb21f0";
	uint8_t want[30 + 16], out[30 + 16], check[16], want_check[16], iv[12], aad[12];
	struct iovec iov[2] = { { (void *)pt, 11 }, { (void *)(pt + 11), 19 } };
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	(void)state;
	assert_int_equal(sizeof(pt) - 1, 30);
	hex_to(want_hex, want, sizeof(want));
	assert_non_null(ctx);
	assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key_a, NULL), 1);
	assert_int_equal(image_seal(ctx, 0x0123456789abcdefull, 5, IMAGE_REC_PLUGIN, iov, 2, 30,
				    out), 0);
	assert_memory_equal(out, want, sizeof(want));
	EVP_CIPHER_CTX_free(ctx);

	hex_to("b5ecf5925ea87a746b493ac68edde95d", want_check, sizeof(want_check));
	assert_int_equal(image_key_check(key_a, check), 0);
	assert_memory_equal(check, want_check, sizeof(check));

	image_seal_nonce(iv, 0x0123456789abcdefull, 0x01020304u);
	assert_memory_equal(iv, "\xef\xcd\xab\x89\x67\x45\x23\x01\x04\x03\x02\x01", 12);
	image_seal_aad(aad, 8, 0x1122334455ull);
	assert_memory_equal(aad, "\x08\0\0\0\x55\x44\x33\x22\x11\0\0\0", 12);
}

static bool mem_has(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
	return memmem(hay, n, needle, k) != NULL;
}

/* Pipe, socket and file, at several levels: every page back, no allocation
 * while writing, no plaintext and no key in the stream, a new salt for
 * each stream. */
static void sealed_round_trips(void **state)
{
	static const int levels[] = { 0, 1, 3 };
	struct t_img m;
	struct t_got got;
	struct t_blob b;
	uint64_t salts[3];
	int fds[2];
	size_t i;

	(void)state;
	t_key = key_a;
	img_full(&m);
	assert_int_equal(pipe(fds), 0);
	round_trip_fds(&m, 0, fds, &got);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	round_trip_fds(&m, 1, fds, &got);
	m.live = true;
	assert_int_equal(pipe(fds), 0);
	round_trip_fds(&m, 0, fds, &got);
	m.live = false;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct image_header h;

		blob_make(&m, levels[i], &b);
		assert_int_equal(blob_read(&m, b.data, b.len), 0);
		assert_false(mem_has(b.data, b.len, "area  0 page", 12));
		assert_false(mem_has(b.data, b.len, "plugin state", 12));
		assert_false(mem_has(b.data, b.len, key_a, sizeof(key_a)));
		memcpy(&h, b.data + sizeof(struct image_rec_hdr), sizeof(h));
		assert_true(h.flags & IMAGE_HDR_SEALED);
		salts[i] = h.seal_salt;
		free(b.data);
	}
	assert_true(salts[0] != salts[1] && salts[1] != salts[2] && salts[0] != salts[2]);
	/* The same writer writes plain again once the key is taken away. */
	t_key = NULL;
	{
		struct image_writer *w = image_writer_new(0);
		int fd = tmp_fd();

		assert_int_equal(image_writer_set_key(w, key_a), 0);
		assert_int_equal(image_writer_set_key(w, NULL), 0);
		assert_int_equal(t_write(w, fd, &m), 0);
		assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
		assert_int_equal(t_read(fd, &m, &got, true), 0);
		close(fd);
		image_writer_free(w);
	}
	assert_string_equal(log_take(), "");
	img_free(&m);
}

/* Fixes the CRC of the record at off after its payload was changed. */
static void blob_fix_crc(struct t_blob *b, size_t off)
{
	struct image_rec_hdr rh;

	memcpy(&rh, b->data + off, sizeof(rh));
	rh.crc = image_crc32c(0, b->data + off + sizeof(rh), rh.len);
	memcpy(b->data + off, &rh, sizeof(rh));
}

/* No key, a wrong key, a sealed payload changed (CRC fixed up so that the
 * tag is what catches it), a salt changed. */
static void sealed_refusals(void **state)
{
	struct t_img m;
	struct t_blob b;
	size_t i;
	const char *log;

	(void)state;
	img_small(&m);
	t_key = key_a;
	blob_make(&m, 1, &b);
	t_key = NULL;
	assert_int_equal(blob_read(&m, b.data, b.len), -1);
	assert_one_line(log_take(),
			"test.cryo is encrypted: give the key with --key-file or CRYO_KEY_FILE");
	t_key = key_b;
	assert_int_equal(blob_read(&m, b.data, b.len), -1);
	assert_one_line(log_take(), "test.cryo: wrong key");
	t_key = key_a;
	for (i = 1; i < b.nrec; i++) {
		size_t at = b.rec_off[i] + sizeof(struct image_rec_hdr) + 3;

		b.data[at] ^= 0x10;
		assert_int_equal(blob_read(&m, b.data, b.len), -1);
		assert_one_line(log_take(), "fails its checksum");
		blob_fix_crc(&b, b.rec_off[i]);
		assert_int_equal(blob_read(&m, b.data, b.len), -1);
		log = log_take();
		if (count_lines(log) != 1 || !strstr(log, "fails its authentication tag"))
			fail_msg("record %zu: %s", i, log);
		b.data[at] ^= 0x10;
		blob_fix_crc(&b, b.rec_off[i]);
	}
	/* Another salt: every nonce changes, the first sealed record fails. */
	b.data[sizeof(struct image_rec_hdr) + offsetof(struct image_header, seal_salt)] ^= 1;
	blob_fix_crc(&b, 0);
	assert_int_equal(blob_read(&m, b.data, b.len), -1);
	assert_one_line(log_take(), "record 1 (PROCESS) at byte 344 fails its authentication tag");
	t_key = NULL;
	free(b.data);
	img_free(&m);
}

/* Two identical records in one stream are sealed under different nonces:
 * their ciphertexts differ. */
static void sealed_nonce_per_record(void **state)
{
	struct t_img m;
	struct t_blob b;
	struct image_rec_hdr r1, r2;
	size_t n;

	(void)state;
	img_small(&m);
	t_rec(&m, IMAGE_REC_PLUGIN, &m.plug, sizeof(m.plug), m.plug_data, sizeof(m.plug_data));
	t_key = key_a;
	blob_make(&m, 0, &b);
	assert_int_equal(blob_read(&m, b.data, b.len), 0);
	n = m.nrecs;	/* the two PLUGIN records are the last two before PAGES */
	memcpy(&r1, b.data + b.rec_off[n - 2], sizeof(r1));
	memcpy(&r2, b.data + b.rec_off[n - 1], sizeof(r2));
	assert_int_equal(r1.type, IMAGE_REC_PLUGIN);
	assert_int_equal(r2.type, IMAGE_REC_PLUGIN);
	assert_int_equal(r1.len, r2.len);
	assert_memory_not_equal(b.data + b.rec_off[n - 2] + sizeof(r1),
				b.data + b.rec_off[n - 1] + sizeof(r2), r1.len);
	t_key = NULL;
	free(b.data);
	img_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allocation_watch_works),
		cmocka_unit_test(pipe_raw),
		cmocka_unit_test(pipe_zstd),
		cmocka_unit_test(pipe_nonblocking),
		cmocka_unit_test(socket_zstd),
		cmocka_unit_test(live_bounce_buffer),
		cmocka_unit_test(file_round_trips),
		cmocka_unit_test(zstd_levels_without_allocation),
		cmocka_unit_test(flipped_bits_refused),
		cmocka_unit_test(truncation_refused),
		cmocka_unit_test(foreign_images_refused),
		cmocka_unit_test(header_checker_messages),
		cmocka_unit_test(bad_structure_refused),
		cmocka_unit_test(bad_order_refused),
		cmocka_unit_test(write_error_reported_once),
		cmocka_unit_test(writer_misuse_refused),
		cmocka_unit_test(same_bytes_any_threads),
		cmocka_unit_test(scratch_given_back),
		cmocka_unit_test(helper_thread_comes_and_goes),
		cmocka_unit_test(restarted_writer_forgets_its_helper),
		cmocka_unit_test(seal_known_answer),
		cmocka_unit_test(sealed_round_trips),
		cmocka_unit_test(sealed_refusals),
		cmocka_unit_test(sealed_nonce_per_record),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
