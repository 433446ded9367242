/* The image reader: checks and returns the records of an image stream one
 * at a time, for cryo_restart (from a file or a migration socket) and
 * cryo_image. Hosted code, so it allocates freely.
 *
 * The stream is read strictly in order and never past the TRAILER: each
 * record is one read of its 16-byte header and one of its payload, straight
 * into a buffer aligned for the record structs, so a socket can carry more
 * after the image and a large PAGES record is not copied again.
 *
 * From a regular file, a thread of the reader's, the fetcher, reads each
 * record into a ring of R_RING buffers, computes its CRC and adds it to
 * the SHA-256 of the stream (about 1.6-1.9 GB/s with SHA-NI, the biggest
 * cost of checking an image) while the bytes are still in its core's
 * cache; meanwhile the calling thread checks the records, compares the
 * CRCs and the caller places the pages. (A SHA-256 run by another thread
 * than the one that read the bytes was 30% slower here.) A buffer is read
 * into again only once the caller is done with its record. The TRAILER
 * waits for the fetcher to end before comparing, so nothing is handed out
 * as a whole, checked image before the hash matched. The fetcher lives
 * from the first record to the end of the stream (or a failure, or
 * image_reader_free()), so no thread of the reader outlives a stream: the
 * restorer may unmap everything after it. From a pipe or a socket, whose
 * reads may block for ever, the calling thread reads and hashes itself.
 *
 * Once the caller has decoded pages (image_reader_pages()), the reader
 * reads up to R_AHEAD records ahead while they are PAGES records, checking
 * each as above, and hands their zstd chunks to decoding threads (one per
 * CPU, CRYO_THREADS to override), each into a buffer of its slot; the
 * caller then gets each record in order, and image_reader_pages() of the
 * record last returned only waits for its decoding. Only PAGES records are
 * read ahead (the next header is read first to know), so the TRAILER's
 * checks come in turn; a PAGES record read ahead that is damaged is logged
 * when it is read and refused when its turn comes. The decoding threads end
 * with the stream too.
 *
 * Everything is checked before a record is handed out: the type, the
 * length, the CRC-32C, the fixed sizes, the order (HEADER, then PROCESS,
 * every AREA before any PAGES) and the PAGES layout against the areas
 * (runs inside their area, increasing, no page stored twice, no more pages
 * than the AREA declares). At the TRAILER come the SHA-256 of the stream
 * and the counts. A failure is logged as one line naming the image and the
 * byte offset, and every later call fails without logging again.
 *
 * A sealed image (IMAGE_HDR_SEALED) needs the key (image_reader_set_key()):
 * its clear HEADER's key check tells a missing or wrong key from damage.
 * Each later record's CRC and hash are checked on the sealed bytes, then
 * the payload is opened in place (AES-256-GCM); a tag that fails is damage
 * like a bad CRC. Version 1 images (no seal fields) are still read.
 *
 * Version 3 adds incremental images: a PARENT record right after the
 * PROCESS (with IMAGE_HDR_INCREMENTAL in the HEADER), and KEEP records
 * between the last AREA and the first PAGES, each run inside its area and
 * increasing within it. Whether the parent exists and matches is the
 * caller's business (restart/loader.c reads the chain). */
#define LOG_PREFIX ""
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <openssl/evp.h>
#include "mtcp/image.h"
#include "mtcp/image-priv.h"
#include "mtcp/log.h"
#include "mtcp/util.h"

/* Far more areas than a process has (vm.max_map_count is 65530 by default):
 * a HEADER claiming more is corrupt, and we do not allocate for it. */
#define R_AREAS_MAX (1u << 22)
/* Payload buffers in flight between this thread and the hasher. */
#define R_RING 8
#define R_BUF_LEN (IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN)
/* Records read ahead of the caller (the one returned and the one being
 * read keep their buffers too), and decoding threads at most. */
#define R_AHEAD (R_RING - 2)
#define R_DECODERS_MAX 8

/* A record read (ahead), waiting to be returned. */
struct r_pend {
	int st;			/* what image_reader_next() returns for it */
	uint32_t type;
	const uint8_t *p;
	uint64_t len, rec_off, recno;
};

enum r_dec_state { RD_DEC_NONE, RD_DEC_QUEUED, RD_DEC_RUNNING, RD_DEC_DONE };

enum r_state { RD_OPEN, RD_DONE, RD_FAILED };

struct r_area {
	uint64_t npages;	/* pages the AREA record declares */
	uint64_t area_pages;	/* (end - start) / page size */
	uint64_t stored;	/* pages seen in PAGES records so far */
	uint64_t next;		/* lowest page index a later run may start at */
	uint64_t keep_next;	/* the same for KEEP runs */
};

struct image_reader {
	int fd;
	enum r_state state;
	char *name;
	uint64_t off;		/* stream bytes consumed */
	uint64_t rec_off;	/* offset of the record last returned */
	uint64_t nrec;		/* records consumed, the trailer excluded */
	uint64_t recno;		/* index of the record last read, from 0 */
	uint8_t *buf;		/* the payload last read: one of ring[] */
	uint8_t *ring[R_RING];	/* R_BUF_LEN each */
	uint8_t *oring[R_RING];	/* R_BUF_LEN each: opened payloads of a sealed image */

	/* Records read ahead, oldest first; the last returned one's slot. */
	struct r_pend q[R_RING];
	int qhead, qlen;
	const uint8_t *last_p;
	int last_slot;
	bool want_pages;	/* the caller decodes pages: decode ahead */
	/* The next record's header, read to decide whether to read it ahead. */
	bool peeked;
	int peek_ret;
	uint64_t peek_got;
	struct image_rec_hdr peek_rh;

	/* The decoding threads: slot i's zstd chunk (d_src, d_srclen) is
	 * decoded into dring[i] when d_state[i] is QUEUED. */
	int d_max;		/* decoding threads to run, 0 or 1: none */
	int d_n;		/* running */
	bool d_stop;
	pthread_t d_thread[R_DECODERS_MAX];
	ZSTD_DCtx *d_ctx[R_DECODERS_MAX];
	pthread_mutex_t d_lock;
	pthread_cond_t d_cond;		/* a chunk queued, or d_stop */
	pthread_cond_t d_cond_done;	/* a chunk decoded */
	int d_state[R_RING];
	const uint8_t *d_src[R_RING];
	size_t d_srclen[R_RING];
	uint32_t d_rawlen[R_RING];
	unsigned long long d_fsize[R_RING];
	size_t d_res[R_RING];
	uint8_t *dring[R_RING];	/* IMAGE_CHUNK_MAX each, when decoding ahead */

	/* The fetcher (regular files): record n read into ring[n % R_RING],
	 * CRC computed and hashed, for n < f_ready; the caller is done with
	 * the records before f_free. */
	bool f_use;		/* the fd is a regular file */
	bool f_running, f_stop, f_end, f_sha_failed;
	pthread_t f_thread;
	pthread_mutex_t f_lock;
	pthread_cond_t f_cond;		/* f_ready grew, or the fetcher ended */
	pthread_cond_t f_cond_free;	/* f_free grew, or f_stop */
	uint64_t f_ready, f_free;
	struct r_fetched {
		int ret, pret;		/* header, payload: 1 whole, 0 short, -1 error, -2 not read */
		int err;		/* errno of a failed read */
		uint64_t got, pgot;
		struct image_rec_hdr rh;
		uint32_t crc;		/* of the payload */
	} f[R_RING];

	bool have_key;
	int seal_err;		/* 1 no key, 2 wrong key: reported after the HEADER */
	uint8_t key[IMAGE_SEAL_KEY_LEN];
	EVP_CIPHER *aes;
	EVP_CIPHER_CTX *aead;

	EVP_MD *md;
	EVP_MD_CTX *sha;
	ZSTD_DCtx *dctx;
	uint8_t *dec;		/* IMAGE_CHUNK_MAX: decoded zstd chunks */

	/* What the stream has shown so far, for the structural checks. */
	struct image_header hdr;
	uint32_t nsiginfo;	/* from PROCESS */
	uint32_t nareas, nthreads, nsigs;
	bool seen_pages;
	bool seen_parent;
	uint64_t pages;
	uint8_t sha256[32];	/* the stream's, once the TRAILER matched it */
	uint64_t trailer_bytes;
	struct r_area *areas;	/* hdr.nareas entries */
};

/* CRYO_THREADS, else one per CPU this process may run on. */
static int r_decoders(void)
{
	const char *e = getenv("CRYO_THREADS");
	cpu_set_t set;
	long n = 0;

	if (e && *e)
		n = strtol(e, NULL, 10);
	if (n < 1)
		n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	return n > R_DECODERS_MAX ? R_DECODERS_MAX : (int)n;
}

struct image_reader *image_reader_new(int fd, const char *name)
{
	struct image_reader *r = calloc(1, sizeof(*r));

	if (!r) {
		log_err("cannot allocate a reader for image %s", name);
		return NULL;
	}
	r->fd = fd;
	r->name = strdup(name);
	for (int i = 0; i < R_RING; i++) {
		/* Touched only as far as records reach: address space mostly. */
		r->ring[i] = malloc(R_BUF_LEN);
		if (!r->ring[i])
			break;
	}
	r->buf = r->ring[0];
	r->dec = malloc(IMAGE_CHUNK_MAX);
	if (!r->name || !r->ring[R_RING - 1] || !r->dec) {
		log_err("cannot allocate %u bytes of buffers to read image %s",
			R_RING * R_BUF_LEN + IMAGE_CHUNK_MAX, name);
		goto err;
	}
	pthread_mutex_init(&r->f_lock, NULL);
	pthread_cond_init(&r->f_cond, NULL);
	pthread_cond_init(&r->f_cond_free, NULL);
	{
		struct stat st;

		r->f_use = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	}
	pthread_mutex_init(&r->d_lock, NULL);
	pthread_cond_init(&r->d_cond, NULL);
	pthread_cond_init(&r->d_cond_done, NULL);
	r->last_slot = -1;
	r->d_max = r_decoders();
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx) {
		log_err("cannot create a zstd context to read image %s", name);
		goto err;
	}
	r->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	r->sha = EVP_MD_CTX_new();
	if (!r->md || !r->sha || !EVP_DigestInit_ex(r->sha, r->md, NULL)) {
		log_err("OpenSSL has no SHA-256 to check image %s", name);
		goto err;
	}
	return r;
err:
	image_reader_free(r);
	return NULL;
}

static void r_fetcher_stop(struct image_reader *r);
static void r_decoders_stop(struct image_reader *r);

void image_reader_free(struct image_reader *r)
{
	if (!r)
		return;
	r_fetcher_stop(r);
	r_decoders_stop(r);
	for (int i = 0; i < R_DECODERS_MAX; i++)
		ZSTD_freeDCtx(r->d_ctx[i]);
	pthread_mutex_destroy(&r->f_lock);
	pthread_cond_destroy(&r->f_cond);
	pthread_cond_destroy(&r->f_cond_free);
	pthread_mutex_destroy(&r->d_lock);
	pthread_cond_destroy(&r->d_cond);
	pthread_cond_destroy(&r->d_cond_done);
	EVP_MD_CTX_free(r->sha);
	EVP_MD_free(r->md);
	EVP_CIPHER_CTX_free(r->aead);
	EVP_CIPHER_free(r->aes);
	explicit_bzero(r->key, sizeof(r->key));
	ZSTD_freeDCtx(r->dctx);
	free(r->areas);
	free(r->dec);
	for (int i = 0; i < R_RING; i++) {
		free(r->ring[i]);
		free(r->oring[i]);
		free(r->dring[i]);
	}
	free(r->name);
	free(r);
}

int image_reader_set_key(struct image_reader *r, const uint8_t *key)
{
	r->have_key = false;
	explicit_bzero(r->key, sizeof(r->key));
	if (!key)
		return 0;
	if (!r->aes)
		r->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!r->aead)
		r->aead = EVP_CIPHER_CTX_new();
	if (!r->aes || !r->aead ||
	    !EVP_DecryptInit_ex(r->aead, r->aes, NULL, key, NULL)) {
		log_err("OpenSSL has no AES-256-GCM to open image %s", r->name);
		return -1;
	}
	memcpy(r->key, key, sizeof(r->key));
	r->have_key = true;
	return 0;
}

int image_reader_sealed(const struct image_reader *r)
{
	return r->nrec > 0 && (r->hdr.flags & IMAGE_HDR_SEALED);
}

uint64_t image_reader_offset(const struct image_reader *r)
{
	return r->rec_off;
}

int image_reader_digest(const struct image_reader *r, uint8_t sha256[32], uint64_t *bytes)
{
	if (r->state != RD_DONE)
		return -1;
	memcpy(sha256, r->sha256, sizeof(r->sha256));
	*bytes = r->trailer_bytes;
	return 0;
}

static const char *arch_name(uint32_t arch)
{
	switch (arch) {
	case 3:
		return "i386";
	case 8:
		return "mips";
	case 20:
		return "ppc";
	case 21:
		return "ppc64";
	case 22:
		return "s390";
	case 40:
		return "arm";
	case 62:
		return "x86-64";
	case 183:
		return "aarch64";
	case 243:
		return "riscv";
	case 258:
		return "loongarch";
	}
	return "unknown";
}

/* The checks that must come before the CRC: a newer format may frame or
 * checksum its records differently, and a foreign file has no CRC at all. */
static int check_magic_version(const void *payload, uint64_t len, const char *name)
{
	uint32_t mv[2];

	if (len < sizeof(mv)) {
		log_err("%s is not a cryo image", name);
		return -1;
	}
	memcpy(mv, payload, sizeof(mv));
	if (mv[0] != IMAGE_MAGIC) {
		log_err("%s is not a cryo image", name);
		return -1;
	}
	if (mv[1] < IMAGE_VERSION_MIN || mv[1] > IMAGE_VERSION) {
		log_err("%s is image format version %u; this cryo reads versions %u to %u", name,
			mv[1], IMAGE_VERSION_MIN, IMAGE_VERSION);
		return -1;
	}
	return 0;
}

int image_check_header(const void *payload, uint64_t len, const char *name)
{
	struct image_header h = { 0 };
	size_t want;

	if (check_magic_version(payload, len, name) < 0)
		return -1;
	memcpy(&h.version, (const uint8_t *)payload + 4, sizeof(h.version));
	want = h.version == 1 ? IMAGE_HEADER_V1_SIZE : sizeof(h);
	if (len != want) {
		log_err("%s is corrupt: its HEADER has %llu bytes, not %zu", name,
			(unsigned long long)len, want);
		return -1;
	}
	memcpy(&h, payload, want);
	if (h.arch != IMAGE_ARCH_X86_64) {
		log_err("%s is an image of architecture %u (%s); this cryo restores x86-64", name,
			h.arch, arch_name(h.arch));
		return -1;
	}
	if (h.page_size != IMAGE_PAGE_SIZE) {
		log_err("%s has %u-byte pages; this cryo restores %u-byte pages", name, h.page_size,
			IMAGE_PAGE_SIZE);
		return -1;
	}
	return 0;
}

const char *image_rec_name(uint32_t type)
{
	static const char names[][8] = { "?", "HEADER", "PROCESS", "AREA", "THREAD", "SIGINFO",
					 "FD", "PLUGIN", "PAGES", "INDEX", "TRAILER", "PARENT",
					 "KEEP" };

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

const char *image_area_kind_name(uint32_t kind)
{
	static const char names[][12] = { "?", "anon", "stack", "file", "file-shared",
					  "shared-anon", "vdso", "skip" };

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* ---- the fetcher ---- */

/* Reads exactly n bytes into buf: 1, 0 on a short stream, -1 with *err. */
static int r_read_quiet(int fd, void *buf, size_t n, uint64_t *got, int *err)
{
	ssize_t r = util_read_all(fd, buf, n);

	if (r < 0) {
		*err = errno;
		*got = 0;
		return -1;
	}
	*got = (uint64_t)r;
	return (size_t)r == n;
}

static void *r_fetcher_main(void *arg)
{
	struct image_reader *r = arg;
	uint64_t n;

	for (n = 0;; n++) {
		struct r_fetched *f = &r->f[n % R_RING];
		uint8_t *buf = r->ring[n % R_RING];
		bool end;

		pthread_mutex_lock(&r->f_lock);
		while (!r->f_stop && n >= r->f_free + R_RING)
			pthread_cond_wait(&r->f_cond_free, &r->f_lock);
		pthread_mutex_unlock(&r->f_lock);
		if (r->f_stop)
			break;
		f->pret = -2;
		f->ret = r_read_quiet(r->fd, &f->rh, sizeof(f->rh), &f->got, &f->err);
		/* The payload only where the caller's checks of the header will
		 * pass (they are tighter or the same). */
		if (f->ret == 1 &&
		    (n == 0 ? f->rh.type == IMAGE_REC_HEADER && f->rh.len <= 4096
			    : f->rh.type >= IMAGE_REC_HEADER && f->rh.type <= IMAGE_REC_LAST &&
				      f->rh.len <= R_BUF_LEN)) {
			f->pret = r_read_quiet(r->fd, buf, f->rh.len, &f->pgot, &f->err);
			if (f->pret == 1) {
				f->crc = image_crc32c(0, buf, f->rh.len);
				if (f->rh.type != IMAGE_REC_TRAILER &&
				    (!EVP_DigestUpdate(r->sha, &f->rh, sizeof(f->rh)) ||
				     !EVP_DigestUpdate(r->sha, buf, f->rh.len)))
					r->f_sha_failed = true;
			}
		}
		end = f->pret != 1 || f->rh.type == IMAGE_REC_TRAILER;
		pthread_mutex_lock(&r->f_lock);
		r->f_ready = n + 1;
		r->f_end = end;
		pthread_cond_signal(&r->f_cond);
		pthread_mutex_unlock(&r->f_lock);
		if (end)
			break;
	}
	return NULL;
}

/* Starts the fetcher at the first record of a regular file; false if it
 * does not run (the calling thread then reads). */
static bool r_fetcher(struct image_reader *r)
{
	if (r->f_running)
		return true;
	if (!r->f_use || r->nrec || r->state != RD_OPEN)
		return false;
	r->f_ready = r->f_free = 0;
	r->f_stop = r->f_end = r->f_sha_failed = false;
	r->f_running = pthread_create(&r->f_thread, NULL, r_fetcher_main, r) == 0;
	r->f_use = r->f_running;
	return r->f_running;
}

/* Waits until record n is fetched; false if the fetcher ended before it. */
static bool r_fetched(struct image_reader *r, uint64_t n)
{
	bool have;

	pthread_mutex_lock(&r->f_lock);
	while (r->f_ready <= n && !(r->f_end && r->f_ready))
		pthread_cond_wait(&r->f_cond, &r->f_lock);
	have = r->f_ready > n;
	pthread_mutex_unlock(&r->f_lock);
	return have;
}

/* The caller is done with every record before n. */
static void r_fetch_release(struct image_reader *r, uint64_t n)
{
	if (!r->f_running)
		return;
	pthread_mutex_lock(&r->f_lock);
	if (n > r->f_free) {
		r->f_free = n;
		pthread_cond_signal(&r->f_cond_free);
	}
	pthread_mutex_unlock(&r->f_lock);
}

/* Ends the fetcher, if it runs, after the record in its hands. */
static void r_fetcher_stop(struct image_reader *r)
{
	if (!r->f_running)
		return;
	pthread_mutex_lock(&r->f_lock);
	r->f_stop = true;
	pthread_cond_signal(&r->f_cond_free);
	pthread_mutex_unlock(&r->f_lock);
	pthread_join(r->f_thread, NULL);
	r->f_running = false;
}

/* ---- the decoding threads ---- */

static void *r_decoder_main(void *arg)
{
	struct image_reader *r = ((void **)arg)[0];
	ZSTD_DCtx *dctx = ((void **)arg)[1];

	free(arg);
	pthread_mutex_lock(&r->d_lock);
	for (;;) {
		unsigned long long fsize;
		size_t res = 0;
		int i;

		if (r->d_stop)
			break;
		for (i = 0; i < R_RING && r->d_state[i] != RD_DEC_QUEUED; i++)
			;
		if (i == R_RING) {
			pthread_cond_wait(&r->d_cond, &r->d_lock);
			continue;
		}
		r->d_state[i] = RD_DEC_RUNNING;
		pthread_mutex_unlock(&r->d_lock);
		/* The same checks as image_reader_pages() makes inline; it
		 * words the failures. */
		fsize = ZSTD_getFrameContentSize(r->d_src[i], r->d_srclen[i]);
		if (fsize != ZSTD_CONTENTSIZE_ERROR &&
		    (fsize == ZSTD_CONTENTSIZE_UNKNOWN || fsize == r->d_rawlen[i]))
			res = ZSTD_decompressDCtx(dctx, r->dring[i], r->d_rawlen[i], r->d_src[i],
						  r->d_srclen[i]);
		pthread_mutex_lock(&r->d_lock);
		r->d_fsize[i] = fsize;
		r->d_res[i] = res;
		r->d_state[i] = RD_DEC_DONE;
		pthread_cond_broadcast(&r->d_cond_done);
	}
	pthread_mutex_unlock(&r->d_lock);
	return NULL;
}

/* Starts the decoding threads and their buffers; false if none run
 * (decoding then happens inline, as without read-ahead). */
static bool r_decoders_start(struct image_reader *r)
{
	int i;

	if (r->d_n)
		return true;
	if (r->d_max < 2)
		return false;
	for (i = 0; i < R_RING; i++)
		if (!r->dring[i] && !(r->dring[i] = malloc(IMAGE_CHUNK_MAX)))
			return false;
	r->d_stop = false;
	while (r->d_n < r->d_max) {
		void **arg = malloc(2 * sizeof(*arg));

		if (!r->d_ctx[r->d_n])
			r->d_ctx[r->d_n] = ZSTD_createDCtx();
		if (!arg || !r->d_ctx[r->d_n]) {
			free(arg);
			break;
		}
		arg[0] = r;
		arg[1] = r->d_ctx[r->d_n];
		if (pthread_create(&r->d_thread[r->d_n], NULL, r_decoder_main, arg)) {
			free(arg);
			break;
		}
		r->d_n++;
	}
	if (!r->d_n)
		r->d_max = 0;	/* never again for this reader */
	return r->d_n > 0;
}

static void r_decoders_stop(struct image_reader *r)
{
	int i;

	if (!r->d_n)
		return;
	pthread_mutex_lock(&r->d_lock);
	r->d_stop = true;
	pthread_cond_broadcast(&r->d_cond);
	pthread_mutex_unlock(&r->d_lock);
	for (i = 0; i < r->d_n; i++)
		pthread_join(r->d_thread[i], NULL);
	r->d_n = 0;
	for (i = 0; i < R_RING; i++)
		r->d_state[i] = RD_DEC_NONE;
}

/* Queues the zstd chunk of the PAGES record in slot i (checked) for a
 * decoding thread. */
static void r_decode_ahead(struct image_reader *r, int i, const uint8_t *p)
{
	struct image_pages pg;

	memcpy(&pg, p, sizeof(pg));
	if (pg.codec != IMAGE_CODEC_ZSTD || !r_decoders_start(r))
		return;
	pthread_mutex_lock(&r->d_lock);
	r->d_src[i] = p + sizeof(pg) + (size_t)pg.nruns * sizeof(struct image_run);
	r->d_srclen[i] = pg.stored_len;
	r->d_rawlen[i] = pg.raw_len;
	r->d_state[i] = RD_DEC_QUEUED;
	pthread_cond_signal(&r->d_cond);
	pthread_mutex_unlock(&r->d_lock);
}

/* Waits for slot i's chunk; false if it was never queued. */
static bool r_decoded(struct image_reader *r, int i)
{
	bool queued;

	pthread_mutex_lock(&r->d_lock);
	queued = r->d_state[i] != RD_DEC_NONE;
	while (r->d_state[i] == RD_DEC_QUEUED || r->d_state[i] == RD_DEC_RUNNING)
		pthread_cond_wait(&r->d_cond_done, &r->d_lock);
	r->d_state[i] = RD_DEC_NONE;
	pthread_mutex_unlock(&r->d_lock);
	return queued;
}

static int r_fail(struct image_reader *r)
{
	r->state = RD_FAILED;
	r_fetcher_stop(r);
	return -1;
}

/* Logs "<image> is corrupt: record N (TYPE) at byte M <what>" for the record
 * last read and fails the reader; returns -1. */
__attribute__((format(printf, 3, 4)))
static int r_corrupt(struct image_reader *r, uint32_t type, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_err("%s is corrupt: record %llu (%s) at byte %llu %s", r->name,
		(unsigned long long)r->recno, image_rec_name(type),
		(unsigned long long)r->rec_off, what);
	return r_fail(r);
}

/* Reads exactly n bytes; 1 on success, 0 on a short stream (logged as
 * truncation unless quiet), -1 on a read error (logged). */
static int r_read(struct image_reader *r, void *buf, size_t n, uint64_t *got_out)
{
	ssize_t got = util_read_all(r->fd, buf, n);

	if (got < 0) {
		log_perror("read image %s at byte %llu", r->name, (unsigned long long)r->off);
		return -1;
	}
	*got_out = (uint64_t)got;
	return (size_t)got == n;
}

/* What to say when the stream ends after n bytes, inside the first record
 * (whose first nhave bytes are in have): a short file that starts like a
 * cryo image is truncated, anything else is foreign. */
static void r_short_first(struct image_reader *r, const uint8_t *have, uint64_t nhave, uint64_t n)
{
	static const uint8_t type_le[4] = { IMAGE_REC_HEADER, 0, 0, 0 };
	uint32_t magic;

	if (!n) {
		log_err("%s is empty, not a cryo image", r->name);
		return;
	}
	if (memcmp(have, type_le, nhave < 4 ? nhave : 4)) {
		log_err("%s is not a cryo image", r->name);
		return;
	}
	if (nhave >= sizeof(struct image_rec_hdr) + 4) {
		memcpy(&magic, have + sizeof(struct image_rec_hdr), 4);
		if (magic != IMAGE_MAGIC) {
			log_err("%s is not a cryo image", r->name);
			return;
		}
	}
	log_err("%s is truncated at byte %llu", r->name, (unsigned long long)n);
}

/* The PAGES payload layout. Checks everything but the page data; with
 * areas (the reader's view of the stream) also the runs against the area.
 * Returns the number of pages, or 0 after logging. */
static uint64_t r_pages_layout(struct image_reader *r, const void *payload, uint64_t len,
			       struct image_pages *pg, const struct image_run **runs_out)
{
	const uint32_t type = IMAGE_REC_PAGES;
	const struct image_run *runs;
	const struct r_area *a;
	uint64_t total = 0, next, i;

	if (len < sizeof(*pg)) {
		r_corrupt(r, type, "is %llu bytes, too short for PAGES", (unsigned long long)len);
		return 0;
	}
	memcpy(pg, payload, sizeof(*pg));
	if (!pg->nruns || pg->nruns > IMAGE_PAGES_MAX_RUNS ||
	    len != sizeof(*pg) + (uint64_t)pg->nruns * sizeof(struct image_run) + pg->stored_len) {
		r_corrupt(r, type, "has %u runs and %u stored bytes in %llu bytes", pg->nruns,
			  pg->stored_len, (unsigned long long)len);
		return 0;
	}
	if (pg->codec > IMAGE_CODEC_ZSTD || !pg->raw_len || pg->raw_len > IMAGE_CHUNK_MAX ||
	    pg->raw_len % IMAGE_PAGE_SIZE ||
	    (pg->codec == IMAGE_CODEC_RAW && pg->stored_len != pg->raw_len)) {
		r_corrupt(r, type, "has codec %u, %u raw and %u stored bytes", pg->codec,
			  pg->raw_len, pg->stored_len);
		return 0;
	}
	if (pg->area >= r->nareas) {
		r_corrupt(r, type, "is for area %u; the image has %u areas before it", pg->area,
			  r->nareas);
		return 0;
	}
	a = &r->areas[pg->area];
	/* A payload from the stream is aligned (the reader's buffer); one the
	 * caller copied may not be, hence the byte-wise accessors. */
	runs = (const struct image_run *)((const uint8_t *)payload + sizeof(*pg));
	next = 0;
	for (i = 0; i < pg->nruns; i++) {
		struct image_run run;

		memcpy(&run, &runs[i], sizeof(run));
		if (!run.count || run.first < next || run.count > a->area_pages ||
		    run.first > a->area_pages - run.count) {
			r_corrupt(r, type,
				  "has run %llu of pages %llu+%llu in area %u of %llu pages",
				  (unsigned long long)i, (unsigned long long)run.first,
				  (unsigned long long)run.count, pg->area,
				  (unsigned long long)a->area_pages);
			return 0;
		}
		next = run.first + run.count;
		total += run.count;
	}
	if (total * IMAGE_PAGE_SIZE != pg->raw_len) {
		r_corrupt(r, type, "has runs of %llu pages for %u raw bytes",
			  (unsigned long long)total, pg->raw_len);
		return 0;
	}
	*runs_out = runs;
	return total;
}

/* Bookkeeping of a PAGES record seen in the stream: pages of an area come in
 * increasing order, each once, and no more than the AREA declared. */
static int r_pages_seen(struct image_reader *r, const void *payload, uint64_t len)
{
	const uint32_t type = IMAGE_REC_PAGES;
	const struct image_run *runs;
	struct image_pages pg;
	struct image_run first;
	struct r_area *a;
	uint64_t n = r_pages_layout(r, payload, len, &pg, &runs);

	if (!n)
		return -1;
	a = &r->areas[pg.area];
	memcpy(&first, &runs[0], sizeof(first));
	if (first.first < a->next) {
		r_corrupt(r, type, "stores page %llu of area %u again or out of order",
			  (unsigned long long)first.first, pg.area);
		return -1;
	}
	if (n > a->npages - a->stored) {
		r_corrupt(r, type, "brings area %u to more than the %llu pages its AREA declares",
			  pg.area, (unsigned long long)a->npages);
		return -1;
	}
	memcpy(&first, &runs[pg.nruns - 1], sizeof(first));
	a->next = first.first + first.count;
	a->stored += n;
	r->pages += n;
	r->seen_pages = true;
	return 0;
}

/* A KEEP record: runs of pages whose bytes are the parent's, after every
 * AREA and before any PAGES, increasing within their area. */
static int r_keep_seen(struct image_reader *r, const uint8_t *p, uint64_t len)
{
	const uint32_t type = IMAGE_REC_KEEP;
	struct image_keep k;
	struct r_area *a;
	uint64_t i;

	if (!r->seen_parent)
		return r_corrupt(r, type, "in an image without a PARENT record");
	if (r->seen_pages || r->nareas != r->hdr.nareas)
		return r_corrupt(r, type, "is not between the last AREA and the first PAGES");
	if (len < sizeof(k))
		return r_corrupt(r, type, "has %llu bytes, fewer than %zu", (unsigned long long)len,
				 sizeof(k));
	memcpy(&k, p, sizeof(k));
	if (!k.nruns || k.nruns > IMAGE_KEEP_MAX_RUNS ||
	    len != sizeof(k) + (uint64_t)k.nruns * sizeof(struct image_run))
		return r_corrupt(r, type, "has %u runs in %llu bytes", k.nruns,
				 (unsigned long long)len);
	if (k.area >= r->nareas)
		return r_corrupt(r, type, "is for area %u; the image has %u areas", k.area,
				 r->nareas);
	a = &r->areas[k.area];
	for (i = 0; i < k.nruns; i++) {
		struct image_run run;

		memcpy(&run, p + sizeof(k) + i * sizeof(run), sizeof(run));
		if (!run.count || run.first < a->keep_next || run.count > a->area_pages ||
		    run.first > a->area_pages - run.count)
			return r_corrupt(r, type,
					 "has run %llu of pages %llu+%llu in area %u of %llu pages, "
					 "out of the area or of order",
					 (unsigned long long)i, (unsigned long long)run.first,
					 (unsigned long long)run.count, k.area,
					 (unsigned long long)a->area_pages);
		a->keep_next = run.first + run.count;
	}
	return 0;
}

/* Structure of one record (its CRC matched). */
static int r_check_record(struct image_reader *r, uint32_t type, const uint8_t *p, uint64_t len)
{
	if (r->nrec == 0) {
		/* The caller checked it is a HEADER, and the header itself. */
		memcpy(&r->hdr, p, sizeof(r->hdr));
		if (r->hdr.nareas > R_AREAS_MAX)
			return r_corrupt(r, type, "declares %u areas", r->hdr.nareas);
		r->areas = calloc(r->hdr.nareas ? r->hdr.nareas : 1, sizeof(*r->areas));
		if (!r->areas) {
			log_err("cannot allocate the area table for %u areas of image %s",
				r->hdr.nareas, r->name);
			return r_fail(r);
		}
		return 0;
	}
	if (type == IMAGE_REC_HEADER)
		return r_corrupt(r, type, "is a second HEADER");
	if ((r->nrec == 1) != (type == IMAGE_REC_PROCESS))
		return r_corrupt(r, type, "where %s",
				 r->nrec == 1 ? "PROCESS must come" :
						"the one PROCESS record came before");
	if (r->hdr.version < 3 && type > IMAGE_REC_TRAILER)
		return r_corrupt(r, type, "is not a record of format version %u", r->hdr.version);
	if (r->nrec == 2 && (r->hdr.flags & IMAGE_HDR_INCREMENTAL) && type != IMAGE_REC_PARENT)
		return r_corrupt(r, type, "where the PARENT of an incremental image must come");
	if (type == IMAGE_REC_PARENT && (r->nrec != 2 || !(r->hdr.flags & IMAGE_HDR_INCREMENTAL)))
		return r_corrupt(r, type, "is not right after the PROCESS of an incremental image");

	switch (type) {
	case IMAGE_REC_PROCESS: {
		struct image_process pr;

		if (len != sizeof(pr))
			return r_corrupt(r, type, "has %llu bytes, not %zu",
					 (unsigned long long)len, sizeof(pr));
		memcpy(&r->nsiginfo, p + offsetof(struct image_process, nsiginfo),
		       sizeof(r->nsiginfo));
		return 0;
	}
	case IMAGE_REC_AREA: {
		struct image_area a;

		if (len < sizeof(a))
			return r_corrupt(r, type, "has %llu bytes, fewer than %zu",
					 (unsigned long long)len, sizeof(a));
		memcpy(&a, p, sizeof(a));
		if (len != sizeof(a) + a.path_len)
			return r_corrupt(r, type, "has %llu bytes for a %u-byte path",
					 (unsigned long long)len, a.path_len);
		if (r->seen_pages)
			return r_corrupt(r, type, "comes after page data");
		if (r->nareas >= r->hdr.nareas)
			return r_corrupt(r, type, "is one more than the %u the HEADER declares",
					 r->hdr.nareas);
		if (a.start % IMAGE_PAGE_SIZE || a.end % IMAGE_PAGE_SIZE || a.end <= a.start)
			return r_corrupt(r, type, "spans %llx-%llx", (unsigned long long)a.start,
					 (unsigned long long)a.end);
		if (a.npages > (a.end - a.start) / IMAGE_PAGE_SIZE)
			return r_corrupt(r, type, "declares %llu pages in %llu",
					 (unsigned long long)a.npages,
					 (unsigned long long)(a.end - a.start) / IMAGE_PAGE_SIZE);
		r->areas[r->nareas].npages = a.npages;
		r->areas[r->nareas].area_pages = (a.end - a.start) / IMAGE_PAGE_SIZE;
		r->nareas++;
		return 0;
	}
	case IMAGE_REC_THREAD:
		if (len != sizeof(struct image_thread))
			return r_corrupt(r, type, "has %llu bytes, not %zu",
					 (unsigned long long)len, sizeof(struct image_thread));
		r->nthreads++;
		return 0;
	case IMAGE_REC_SIGINFO:
		if (len != sizeof(struct image_siginfo))
			return r_corrupt(r, type, "has %llu bytes, not %zu",
					 (unsigned long long)len, sizeof(struct image_siginfo));
		r->nsigs++;
		return 0;
	case IMAGE_REC_PLUGIN: {
		struct image_plugin pl;

		if (len < sizeof(pl))
			return r_corrupt(r, type, "has %llu bytes, fewer than %zu",
					 (unsigned long long)len, sizeof(pl));
		memcpy(&pl, p, sizeof(pl));
		if (len != sizeof(pl) + pl.len)
			return r_corrupt(r, type, "has %llu bytes for %u bytes of data",
					 (unsigned long long)len, pl.len);
		return 0;
	}
	case IMAGE_REC_PAGES:
		return r_pages_seen(r, p, len);
	case IMAGE_REC_PARENT: {
		struct image_parent pa;

		if (len != sizeof(pa))
			return r_corrupt(r, type, "has %llu bytes, not %zu",
					 (unsigned long long)len, sizeof(pa));
		memcpy(&pa, p, sizeof(pa));
		if (!pa.name[0] || memchr(pa.name, '/', sizeof(pa.name)) ||
		    !memchr(pa.name, '\0', sizeof(pa.name)) || !pa.depth ||
		    pa.generation >= r->hdr.generation)
			return r_corrupt(r, type, "names no valid parent (generation %u, depth %u)",
					 pa.generation, pa.depth);
		r->seen_parent = true;
		return 0;
	}
	case IMAGE_REC_KEEP:
		return r_keep_seen(r, p, len);
	}
	return 0;	/* FD, INDEX: opaque here */
}

/* The HEADER in r->buf (checked), *len bytes: a version 1 one is widened to
 * struct image_header; a sealed one needs our key. */
static int r_header(struct image_reader *r, uint64_t *len)
{
	uint8_t check[IMAGE_KEY_CHECK_LEN];
	struct image_header h;

	if (*len == IMAGE_HEADER_V1_SIZE) {
		memset(r->buf + IMAGE_HEADER_V1_SIZE, 0, sizeof(h) - IMAGE_HEADER_V1_SIZE);
		*len = sizeof(h);
	}
	memcpy(&h, r->buf, sizeof(h));
	if (h.version < 2 || !(h.flags & IMAGE_HDR_SEALED))
		return 0;
	/* The HEADER itself is clear and still handed out (cryo_image info
	 * shows it); the next call fails. */
	if (!r->have_key) {
		r->seal_err = 1;
		return 0;
	}
	if (image_key_check(r->key, check) < 0)
		return r_fail(r);
	if (memcmp(check, h.key_check, sizeof(check)))
		r->seal_err = 2;
	return 0;
}

/* Opens the sealed payload of the record just read (*len bytes in r->buf,
 * CRC already checked) into the slot's oring[] buffer, leaving r->buf as
 * read; *len loses the tag. */
static int r_open(struct image_reader *r, uint32_t type, uint64_t *len)
{
	uint8_t iv[IMAGE_SEAL_NONCE_LEN], aad[IMAGE_SEAL_AAD_LEN], tag[IMAGE_SEAL_TAG_LEN];
	uint8_t *out;
	uint64_t plen;
	int outl;

	if (*len < IMAGE_SEAL_TAG_LEN)
		return r_corrupt(r, type, "has %llu bytes, too few for a sealed record",
				 (unsigned long long)*len);
	if (r->recno > UINT32_MAX)
		return r_corrupt(r, type, "is past the 2^32 records a sealed image may hold");
	plen = *len - IMAGE_SEAL_TAG_LEN;
	out = r->oring[r->recno % R_RING];
	if (!out && !(out = r->oring[r->recno % R_RING] = malloc(R_BUF_LEN))) {
		log_err("cannot allocate %u bytes to open image %s", R_BUF_LEN, r->name);
		return r_fail(r);
	}
	memcpy(tag, r->buf + plen, sizeof(tag));
	image_seal_nonce(iv, r->hdr.seal_salt, (uint32_t)r->recno);
	image_seal_aad(aad, type, *len);
	if (!EVP_DecryptInit_ex(r->aead, NULL, NULL, NULL, iv) ||
	    !EVP_DecryptUpdate(r->aead, NULL, &outl, aad, sizeof(aad)) ||
	    (plen && !EVP_DecryptUpdate(r->aead, out, &outl, r->buf, (int)plen)) ||
	    !EVP_CIPHER_CTX_ctrl(r->aead, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag)) {
		log_err("AES-256-GCM failed while opening image %s", r->name);
		return r_fail(r);
	}
	if (EVP_DecryptFinal_ex(r->aead, out + plen, &outl) <= 0)
		return r_corrupt(r, type, "fails its authentication tag (AES-256-GCM)");
	*len = plen;
	return 0;
}

static int r_trailer(struct image_reader *r, const uint8_t *p, uint64_t len)
{
	const uint32_t type = IMAGE_REC_TRAILER;
	uint8_t sha[32];
	struct image_trailer t;
	uint32_t i;

	if (len != sizeof(t))
		return r_corrupt(r, type, "has %llu bytes, not %zu", (unsigned long long)len,
				 sizeof(t));
	memcpy(&t, p, sizeof(t));
	/* The fetcher ended at the TRAILER: every record before it is hashed. */
	r_fetcher_stop(r);
	if (r->f_sha_failed) {
		log_err("SHA-256 of image %s failed", r->name);
		return r_fail(r);
	}
	if (!EVP_DigestFinal_ex(r->sha, sha, NULL)) {
		log_err("SHA-256 of image %s failed", r->name);
		return r_fail(r);
	}
	if (memcmp(sha, t.sha256, sizeof(sha))) {
		log_err("%s is corrupt: the SHA-256 in its trailer does not match the stream",
			r->name);
		return r_fail(r);
	}
	if (t.records != r->nrec || t.bytes != r->rec_off || t.pages != r->pages)
		return r_corrupt(r, type,
				 "counts %llu records, %llu bytes and %llu pages; the stream "
				 "has %llu, %llu and %llu",
				 (unsigned long long)t.records, (unsigned long long)t.bytes,
				 (unsigned long long)t.pages, (unsigned long long)r->nrec,
				 (unsigned long long)r->rec_off, (unsigned long long)r->pages);
	if ((r->hdr.flags & IMAGE_HDR_INCREMENTAL) && !r->seen_parent)
		return r_corrupt(r, type, "ends an incremental image that has no PARENT record");
	if (r->nareas != r->hdr.nareas || r->nthreads != r->hdr.nthreads ||
	    r->nsigs != r->nsiginfo)
		return r_corrupt(r, type,
				 "ends a stream of %u areas, %u threads and %u signals; its "
				 "HEADER and PROCESS declare %u, %u and %u",
				 r->nareas, r->nthreads, r->nsigs, r->hdr.nareas, r->hdr.nthreads,
				 r->nsiginfo);
	for (i = 0; i < r->nareas; i++)
		if (r->areas[i].stored != r->areas[i].npages)
			return r_corrupt(r, type,
					 "ends a stream with %llu pages of area %u, which "
					 "declares %llu",
					 (unsigned long long)r->areas[i].stored, i,
					 (unsigned long long)r->areas[i].npages);
	memcpy(r->sha256, sha, sizeof(sha));
	r->trailer_bytes = t.bytes;
	r->state = RD_DONE;
	return 0;
}


/* Reads and checks one record into its ring slot (recno % R_RING); returns
 * as image_reader_next(). */
static int r_next_one(struct image_reader *r, uint32_t *type_out, const uint8_t **payload,
		      uint64_t *len_out)
{
	struct image_rec_hdr rh;
	uint64_t got = 0, len, max;
	struct r_fetched *f = NULL;
	const uint8_t *p;
	uint32_t type;
	int ret;

	if (r->state == RD_DONE)
		return 0;
	if (r->state == RD_FAILED)
		return -1;
	if (r->seal_err) {
		if (r->seal_err == 1)
			log_err("%s is encrypted: give the key with --key-file or CRYO_KEY_FILE",
				r->name);
		else
			log_err("%s: wrong key", r->name);
		return r_fail(r);
	}
	r->rec_off = r->off;
	r->recno = r->nrec;
	if (r_fetcher(r)) {
		if (!r_fetched(r, r->recno)) {	/* cannot happen: it ends at a failure */
			log_err("%s: record %llu was not read", r->name, (unsigned long long)r->recno);
			return r_fail(r);
		}
		f = &r->f[r->recno % R_RING];
		ret = f->ret;
		got = f->got;
		rh = f->rh;
		if (ret < 0) {
			errno = f->err;
			log_perror("read image %s at byte %llu", r->name, (unsigned long long)r->off);
		}
	} else if (r->peeked) {
		r->peeked = false;
		ret = r->peek_ret;
		got = r->peek_got;
		rh = r->peek_rh;
	} else {
		ret = r_read(r, &rh, sizeof(rh), &got);
	}
	if (ret <= 0) {
		if (ret == 0 && r->nrec == 0)
			r_short_first(r, (const uint8_t *)&rh, got, got);
		else if (ret == 0)
			log_err("%s is truncated at byte %llu", r->name,
				(unsigned long long)(r->off + got));
		return r_fail(r);
	}
	type = rh.type;
	if (r->nrec == 0 && (type != IMAGE_REC_HEADER || rh.len > 4096)) {
		log_err("%s is not a cryo image", r->name);
		return r_fail(r);
	}
	if (type < IMAGE_REC_HEADER || type > IMAGE_REC_LAST) {
		log_err("%s is corrupt: record %llu at byte %llu has unknown type %u", r->name,
			(unsigned long long)r->nrec, (unsigned long long)r->rec_off, type);
		return r_fail(r);
	}
	max = IMAGE_RECORD_MAX;
	if (r->nrec && (r->hdr.flags & IMAGE_HDR_SEALED))
		max += IMAGE_SEAL_TAG_LEN;
	if (rh.len > max)
		return r_corrupt(r, type, "claims %llu bytes, more than any record has",
				 (unsigned long long)rh.len);
	r->off += sizeof(rh);
	r->buf = r->ring[r->recno % R_RING];
	if (f) {
		ret = f->pret;
		got = f->pgot;
		if (ret < 0) {
			errno = f->err;
			log_perror("read image %s at byte %llu", r->name, (unsigned long long)r->off);
		}
	} else {
		ret = r_read(r, r->buf, rh.len, &got);
	}
	if (ret <= 0) {
		if (ret == 0 && r->nrec == 0) {
			uint8_t have[sizeof(rh) + 4];

			memcpy(have, &rh, sizeof(rh));
			memcpy(have + sizeof(rh), r->buf, got < 4 ? got : 4);
			r_short_first(r, have, sizeof(rh) + (got < 4 ? got : 4), r->off + got);
		} else if (ret == 0) {
			log_err("%s is truncated at byte %llu", r->name,
				(unsigned long long)(r->off + got));
		}
		return r_fail(r);
	}
	r->off += rh.len;
	if (r->nrec == 0 && check_magic_version(r->buf, rh.len, r->name) < 0)
		return r_fail(r);
	if ((f ? f->crc : image_crc32c(0, r->buf, rh.len)) != rh.crc)
		return r_corrupt(r, type, "fails its checksum");
	if (r->nrec == 0 && image_check_header(r->buf, rh.len, r->name) < 0)
		return r_fail(r);
	/* The stream's hash covers the bytes as written, sealed or not (the
	 * fetcher hashed them already). */
	if (!f && type != IMAGE_REC_TRAILER &&
	    (!EVP_DigestUpdate(r->sha, &rh, sizeof(rh)) ||
	     !EVP_DigestUpdate(r->sha, r->buf, rh.len))) {
		log_err("SHA-256 of image %s failed", r->name);
		return r_fail(r);
	}
	len = rh.len;
	p = r->buf;
	if (r->nrec == 0 && r_header(r, &len) < 0)
		return -1;
	if (r->nrec && (r->hdr.flags & IMAGE_HDR_SEALED)) {
		if (r_open(r, type, &len) < 0)
			return -1;
		p = r->oring[r->recno % R_RING];
	}
	if (type == IMAGE_REC_TRAILER)
		return r_trailer(r, p, len);
	if (r_check_record(r, type, p, len) < 0)
		return -1;
	r->nrec++;
	*type_out = type;
	*payload = p;
	*len_out = len;
	return 1;
}

int image_reader_next(struct image_reader *r, uint32_t *type_out, const void **payload,
		      uint64_t *len_out)
{
	struct r_pend *e;
	int ahead = r->want_pages && r->d_max > 1 ? R_AHEAD : 1;

	/* The record returned last is done with. */
	if (r->last_slot >= 0)
		r_fetch_release(r, r->recno + 1);
	/* Read ahead while the records are pages and there is room: the next
	 * header says (read ahead of it here, or by the fetcher). */
	while (r->qlen < ahead) {
		if (r->qlen && r->state == RD_OPEN && r->f_running) {
			const struct r_fetched *f = &r->f[r->nrec % R_RING];

			if (!r_fetched(r, r->nrec) || f->ret != 1 || f->rh.type != IMAGE_REC_PAGES)
				break;
		} else if (r->qlen) {
			if (r->state == RD_OPEN && !r->peeked) {
				r->peek_ret = r_read(r, &r->peek_rh, sizeof(r->peek_rh),
						     &r->peek_got);
				r->peeked = true;
			}
			if (!r->peeked || r->peek_ret != 1 || r->peek_rh.type != IMAGE_REC_PAGES)
				break;
		}
		e = &r->q[(r->qhead + r->qlen) % R_RING];
		e->st = r_next_one(r, &e->type, &e->p, &e->len);
		e->rec_off = r->rec_off;
		e->recno = r->recno;
		r->qlen++;
		if (e->st != 1 || e->type != IMAGE_REC_PAGES)
			break;
		if (ahead > 1)
			r_decode_ahead(r, (int)(e->recno % R_RING), e->p);
	}
	e = &r->q[r->qhead];
	r->qhead = (r->qhead + 1) % R_RING;
	r->qlen--;
	/* Messages about the record returned name it. */
	r->rec_off = e->rec_off;
	r->recno = e->recno;
	r->last_p = e->st == 1 ? e->p : NULL;
	r->last_slot = (int)(e->recno % R_RING);
	if (e->st != 1) {
		r_decoders_stop(r);
		if (e->st < 0)
			r->state = RD_FAILED;
		return e->st;
	}
	*type_out = e->type;
	*payload = e->p;
	*len_out = e->len;
	return 1;
}

int image_reader_pages(struct image_reader *r, const void *payload, uint64_t len, image_put_fn put,
		       void *arg)
{
	const uint32_t type = IMAGE_REC_PAGES;
	const struct image_run *runs;
	const uint8_t *data;
	struct image_pages pg;
	uint64_t i;

	r->want_pages = true;
	if (!r_pages_layout(r, payload, len, &pg, &runs))
		return -1;
	data = (const uint8_t *)payload + sizeof(pg) + (size_t)pg.nruns * sizeof(struct image_run);
	if (pg.codec == IMAGE_CODEC_ZSTD && payload == r->last_p && r_decoded(r, r->last_slot)) {
		/* Decoded ahead: the same checks, on the thread's results. */
		unsigned long long fsize = r->d_fsize[r->last_slot];
		size_t n = r->d_res[r->last_slot];

		if (fsize == ZSTD_CONTENTSIZE_ERROR)
			return r_corrupt(r, type, "does not hold a zstd frame");
		if (fsize != ZSTD_CONTENTSIZE_UNKNOWN && fsize != pg.raw_len)
			return r_corrupt(r, type, "holds a zstd frame of %lld bytes for %u",
					 (long long)fsize, pg.raw_len);
		if (ZSTD_isError(n))
			return r_corrupt(r, type, "does not decompress: %s", ZSTD_getErrorName(n));
		if (n != pg.raw_len)
			return r_corrupt(r, type, "decompresses to %zu bytes, not %u", n,
					 pg.raw_len);
		data = r->dring[r->last_slot];
	} else if (pg.codec == IMAGE_CODEC_ZSTD) {
		unsigned long long fsize = ZSTD_getFrameContentSize(data, pg.stored_len);
		size_t n;

		/* The writer always records the frame's size; a frame
		 * without one is still checked by its decoded length. */
		if (fsize == ZSTD_CONTENTSIZE_ERROR)
			return r_corrupt(r, type, "does not hold a zstd frame");
		if (fsize != ZSTD_CONTENTSIZE_UNKNOWN && fsize != pg.raw_len)
			return r_corrupt(r, type, "holds a zstd frame of %lld bytes for %u",
					 (long long)fsize, pg.raw_len);
		n = ZSTD_decompressDCtx(r->dctx, r->dec, pg.raw_len, data, pg.stored_len);
		if (ZSTD_isError(n))
			return r_corrupt(r, type, "does not decompress: %s", ZSTD_getErrorName(n));
		if (n != pg.raw_len)
			return r_corrupt(r, type, "decompresses to %zu bytes, not %u", n,
					 pg.raw_len);
		data = r->dec;
	}
	for (i = 0; i < pg.nruns; i++) {
		struct image_run run;

		memcpy(&run, &runs[i], sizeof(run));
		if (put(arg, pg.area, run.first, data, run.count) < 0)
			return -1;
		data += run.count * IMAGE_PAGE_SIZE;
	}
	return 0;
}
