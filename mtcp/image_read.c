/* The image reader: checks and returns the records of an image stream one
 * at a time, for cryo_restart (from a file or a migration socket) and
 * cryo_image. Hosted code, so it allocates freely.
 *
 * The stream is read strictly in order and never past the TRAILER: each
 * record is one read of its 16-byte header and one of its payload, straight
 * into a buffer aligned for the record structs, so a socket can carry more
 * after the image and a large PAGES record is not copied again.
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
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	uint8_t *buf;		/* IMAGE_RECORD_MAX + tag: one payload */

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

struct image_reader *image_reader_new(int fd, const char *name)
{
	struct image_reader *r = calloc(1, sizeof(*r));

	if (!r) {
		log_err("cannot allocate a reader for image %s", name);
		return NULL;
	}
	r->fd = fd;
	r->name = strdup(name);
	r->buf = malloc(IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN);
	r->dec = malloc(IMAGE_CHUNK_MAX);
	if (!r->name || !r->buf || !r->dec) {
		log_err("cannot allocate %u bytes of buffers to read image %s",
			IMAGE_RECORD_MAX + IMAGE_CHUNK_MAX, name);
		goto err;
	}
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

void image_reader_free(struct image_reader *r)
{
	if (!r)
		return;
	EVP_MD_CTX_free(r->sha);
	EVP_MD_free(r->md);
	EVP_CIPHER_CTX_free(r->aead);
	EVP_CIPHER_free(r->aes);
	explicit_bzero(r->key, sizeof(r->key));
	ZSTD_freeDCtx(r->dctx);
	free(r->areas);
	free(r->dec);
	free(r->buf);
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

static int r_fail(struct image_reader *r)
{
	r->state = RD_FAILED;
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
 * CRC and hash already checked) in place; *len loses the tag. */
static int r_open(struct image_reader *r, uint32_t type, uint64_t *len)
{
	uint8_t iv[IMAGE_SEAL_NONCE_LEN], aad[IMAGE_SEAL_AAD_LEN], tag[IMAGE_SEAL_TAG_LEN];
	uint64_t plen;
	int outl;

	if (*len < IMAGE_SEAL_TAG_LEN)
		return r_corrupt(r, type, "has %llu bytes, too few for a sealed record",
				 (unsigned long long)*len);
	if (r->recno > UINT32_MAX)
		return r_corrupt(r, type, "is past the 2^32 records a sealed image may hold");
	plen = *len - IMAGE_SEAL_TAG_LEN;
	memcpy(tag, r->buf + plen, sizeof(tag));
	image_seal_nonce(iv, r->hdr.seal_salt, (uint32_t)r->recno);
	image_seal_aad(aad, type, *len);
	if (!EVP_DecryptInit_ex(r->aead, NULL, NULL, NULL, iv) ||
	    !EVP_DecryptUpdate(r->aead, NULL, &outl, aad, sizeof(aad)) ||
	    (plen && !EVP_DecryptUpdate(r->aead, r->buf, &outl, r->buf, (int)plen)) ||
	    !EVP_CIPHER_CTX_ctrl(r->aead, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag)) {
		log_err("AES-256-GCM failed while opening image %s", r->name);
		return r_fail(r);
	}
	if (EVP_DecryptFinal_ex(r->aead, r->buf + plen, &outl) <= 0)
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

int image_reader_next(struct image_reader *r, uint32_t *type_out, const void **payload,
		      uint64_t *len_out)
{
	struct image_rec_hdr rh;
	uint64_t got = 0, len, max;
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
	ret = r_read(r, &rh, sizeof(rh), &got);
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
	ret = r_read(r, r->buf, rh.len, &got);
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
	if (image_crc32c(0, r->buf, rh.len) != rh.crc)
		return r_corrupt(r, type, "fails its checksum");
	if (r->nrec == 0 && image_check_header(r->buf, rh.len, r->name) < 0)
		return r_fail(r);
	/* The stream's hash covers the bytes as written, sealed or not. */
	if (type != IMAGE_REC_TRAILER &&
	    (!EVP_DigestUpdate(r->sha, &rh, sizeof(rh)) ||
	     !EVP_DigestUpdate(r->sha, r->buf, rh.len))) {
		log_err("SHA-256 of image %s failed", r->name);
		return r_fail(r);
	}
	len = rh.len;
	if (r->nrec == 0 && r_header(r, &len) < 0)
		return -1;
	if (r->nrec && (r->hdr.flags & IMAGE_HDR_SEALED) && r_open(r, type, &len) < 0)
		return -1;
	if (type == IMAGE_REC_TRAILER)
		return r_trailer(r, r->buf, len);
	if (r_check_record(r, type, r->buf, len) < 0)
		return -1;
	r->nrec++;
	*type_out = type;
	*payload = r->buf;
	*len_out = len;
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

	if (!r_pages_layout(r, payload, len, &pg, &runs))
		return -1;
	data = (const uint8_t *)payload + sizeof(pg) + (size_t)pg.nruns * sizeof(struct image_run);
	if (pg.codec == IMAGE_CODEC_ZSTD) {
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
