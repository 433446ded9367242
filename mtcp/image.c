/* The image writer: turns the engine's records and pages into the framed
 * byte stream of mtcp/image.h, on a file, a pipe or a socket.
 *
 * Called by the checkpoint thread of libcryo.so while the application's
 * threads are frozen, maybe holding the malloc lock, so everything is
 * reserved in image_writer_new(), image_writer_set_key() and
 * image_writer_prepare(): one scratch mapping holding the chunk slots,
 * their buffers, the helper threads' stacks and a fixed zstd workspace per
 * packing thread (zstd never allocates in it), the SHA-256 context (EVP;
 * Update and Final do not allocate) and one AES-GCM context per packing
 * thread. From image_writer_begin() on, nothing allocates.
 *
 * Page data is cut into PAGES chunks of at most IMAGE_CHUNK_MAX decoded
 * bytes. Consecutive pages merge into one run; a chunk is submitted when it
 * is full, when the area changes, or when any other record or the trailer
 * comes. A chunk goes through four stages, each in a thread of its own, so
 * that the costs overlap on every core (doc/performance.md):
 *
 *   fill   the calling thread adds pages to the chunk's slot (copying them
 *          with image_writer_set_live(), else pointing at them);
 *   pack   one of N packing threads (one per core, CRYO_THREADS to
 *          override) compresses the chunk (if a sample of it shrinks: a
 *          chunk whose sample does not, random data, is stored raw without
 *          paying for a compression attempt), seals it with a key, and
 *          computes its CRC-32C; chunks are packed out of order;
 *   hash   the hasher adds the chunks to the stream's SHA-256, in stream
 *          order (SHA-256 is sequential; with SHA-NI about 1.6 GB/s);
 *   write  the I/O helper writes them, in stream order.
 *
 * A ring of slots (packing threads + 4) carries the chunks between the
 * stages; every thread waits on a futex counter of its own ("kick") when it
 * has nothing to do. So the stream is the same bytes whatever the number
 * of threads and whatever order they ran in: every decision depends on the
 * chunk's content only. Records other than PAGES are few and come before
 * the pages or at the end: the calling thread waits for the ring to drain,
 * then seals, hashes and writes them itself.
 *
 * The helper threads are bare clone(2) threads on stacks of the scratch
 * mapping, with every signal blocked, made at the first chunk of a stream
 * and ended with it: pthread_create() would allocate and take glibc locks a
 * parked application thread may hold, and the engine must not find a
 * thread of ours at its next suspend. They share the calling thread's TLS
 * (no CLONE_SETTLS), so they call nothing that touches errno or TLS: raw
 * system calls, memcpy, zstd's compression into a static context,
 * OpenSSL's digest and cipher updates, none of which allocates or sets
 * errno on success. Failures are recorded and logged by the calling
 * thread. If a thread cannot be made, the calling thread does every stage
 * itself.
 *
 * The scratch mapping is given back to the kernel (MADV_DONTNEED) at the
 * end of every stream, so the next checkpoint finds none of its pages
 * present and does not save them: the writer's buffers cost an image
 * nothing.
 *
 * With a key (image_writer_set_key()), every record after the HEADER is
 * sealed with AES-256-GCM before its CRC and hash are computed: the
 * payload is encrypted into a buffer of the writer's (raw chunks then cost
 * one pass of AES-GCM, about 4 GB/s here, instead of none), the tag is
 * appended, and the CRC, the SHA-256 and the bytes written are those of the
 * sealed payload. The cipher contexts are made in image_writer_set_key(); a
 * new nonce per record (EVP_EncryptInit_ex with the IV only) does not
 * allocate. The HEADER stays in clear with the salt and the key check.
 *
 * The first failing write is logged once; from then on every call returns
 * -1 without writing or logging. */
#define LOG_PREFIX "image: "
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <openssl/evp.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif
#include "mtcp/image.h"
#include "mtcp/image-priv.h"
#include "mtcp/log.h"
#include "mtcp/sys.h"

enum w_state {
	W_READY,	/* made or prepared: image_writer_begin() may come */
	W_OPEN,		/* a stream is being written */
	W_DONE,		/* the trailer is out; image_writer_prepare() re-arms */
	W_FAILED,	/* logged once; everything fails until re-armed */
};

/* The bytes before a PAGES record's data, contiguous so that one iovec
 * carries them and one CRC pass covers the struct and the runs. */
struct w_pages_head {
	struct image_rec_hdr rh;
	struct image_pages pg;
	struct image_run runs[IMAGE_PAGES_MAX_RUNS];
};
_Static_assert(offsetof(struct w_pages_head, pg) == sizeof(struct image_rec_hdr), "padding");
_Static_assert(offsetof(struct w_pages_head, runs) ==
	       sizeof(struct image_rec_hdr) + sizeof(struct image_pages), "padding");

/* One chunk on its way through the stages. */
struct w_slot {
	struct w_pages_head head;
	/* iov[0]: the head; iov[1..]: the data, the caller's pages in place
	 * or the slot's own buffers. */
	struct iovec iov[IMAGE_PAGES_MAX_RUNS + 1];
	uint32_t area, nruns, ndata, npages;	/* as filled */
	uint64_t recno;		/* its record number (the seal's nonce) */
	int niov;		/* entries of iov to write, once packed */
	size_t total;		/* their bytes */
	uint64_t at;		/* stream offset, set by the hasher */
	int packed;		/* set by its packing thread */
	uint8_t *stage;		/* IMAGE_CHUNK_MAX: live copies, gathered runs */
	uint8_t *zout;		/* W_ZOUT_CAP: the compressed chunk, the sample */
	uint8_t *sealed;	/* W_SEAL_CAP: the sealed payload (with a key) */
};

/* A sealed PAGES payload: the struct, the runs, at most a chunk of data
 * (compressed data is kept only if smaller than raw), the tag. */
#define W_SEAL_CAP (sizeof(struct image_pages) + \
		    IMAGE_PAGES_MAX_RUNS * sizeof(struct image_run) + IMAGE_CHUNK_MAX + \
		    IMAGE_SEAL_TAG_LEN)

#define W_PACKERS_MAX	16		/* packing threads at most */
#define W_SLOTS_EXTRA	4		/* slots beyond one per packing thread */
#define W_THREAD_STACK	(128 * 1024)
/* The compression sample: W_SAMPLE_PAGES pages spread over a chunk of at
 * least W_SAMPLE_MIN bytes. The chunk is compressed only if the sample
 * shrinks by 1/32 or more. 5 pages: an odd count, so that no page parity
 * pattern fools it; about 2% of the chunk. */
#define W_SAMPLE_PAGES	5
#define W_SAMPLE_MIN	(32 * IMAGE_PAGE_SIZE)

static inline size_t w_page_round(size_t n)
{
	return (n + IMAGE_PAGE_SIZE - 1) & ~(size_t)(IMAGE_PAGE_SIZE - 1);
}

/* A packing thread's own contexts; packer 0 also serves the calling
 * thread when there are no helper threads. */
struct w_packer {
	struct image_writer *w;
	void *zwork;		/* in the scratch mapping */
	size_t zwork_len;
	ZSTD_CCtx *cctx;
	EVP_CIPHER_CTX *aead;	/* with the key schedule, when sealing */
};

/* What failed in a helper thread, for the calling thread to log. */
enum w_err { W_ERR_NONE, W_ERR_WRITE, W_ERR_HASH, W_ERR_SEAL };

struct image_writer {
	enum w_state state;
	int fd;
	bool sock;		/* fd is a socket: sendmsg(MSG_NOSIGNAL), no SIGPIPE */
	bool live;		/* copy pages when added (image_writer_set_live) */
	bool warned_zstd;
	int level;		/* zstd level, 0: raw */
	uint64_t bytes, records, pages;

	EVP_MD *md;
	EVP_MD_CTX *sha;

	/* Sealing: on from image_writer_set_key(key) until set_key(NULL). */
	bool seal;
	EVP_CIPHER *aes;
	EVP_CIPHER_CTX *aead;	/* the calling thread's, for other records */
	uint8_t key_check[IMAGE_KEY_CHECK_LEN];
	uint64_t salt;		/* this stream's, from getrandom() in begin() */

	/* The scratch mapping: slots, stacks, buffers, zstd workspaces. */
	uint8_t *scratch;
	size_t scratch_len;
	struct w_slot *slot;	/* nslots, in the scratch mapping */
	int nslots;
	uint8_t *stacks;	/* (npackers + 2) * W_THREAD_STACK */
	uint8_t *rec_sealed;	/* IMAGE_RECORD_MAX + tag: other sealed records */
	size_t zout_cap;
	struct w_packer packer[W_PACKERS_MAX];
	int npackers;

	/* The chunk being filled: slot[seq % nslots]. */
	uint32_t seq;
	uint32_t area, nruns, niov, chunk_pages;
	/* The end of the last run added, for the ordering check. */
	uint32_t last_area;
	uint64_t last_end;
	bool have_last;

	/* The pipeline. Counters of chunks: submitted by the caller, claimed
	 * by a packing thread, hashed, written. Each kick is the futex its
	 * waiters sleep on: bumped and woken after the state it guards
	 * changed. */
	int nthreads;		/* helper threads running (0: none) */
	bool no_threads;	/* making one failed: everything inline */
	volatile int tids[W_PACKERS_MAX + 2];	/* cleared by the kernel at exit */
	int submitted, claimed, hashed, written;
	int kick_pack, kick_hash, kick_write, kick_fill;
	int stop;
	/* The first failure of a helper thread (enum w_err), its errno, and
	 * where. */
	int err;
	int err_no;
	uint64_t err_at, err_recno;
	size_t err_len;
	int zstd_err;		/* a zstd error code a packing thread met */

	/* The SHA-256 of the last stream finished (image_writer_digest). */
	bool have_digest;
	uint8_t digest[32];
};

/* Packing threads: CRYO_THREADS, else one per CPU this process may run on. */
static int w_npackers(void)
{
	const char *e = getenv("CRYO_THREADS");
	cpu_set_t set;
	long n;

	if (e && *e) {
		char *end;

		n = strtol(e, &end, 10);
		if (*end || n < 1) {
			log_warn("CRYO_THREADS=%s is not a number of threads; using one per CPU", e);
		} else {
			if (n > W_PACKERS_MAX)
				n = W_PACKERS_MAX;
			return (int)n;
		}
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > W_PACKERS_MAX ? W_PACKERS_MAX : (int)n;
}

/* The zstd parameters for IMAGE_CHUNK_MAX inputs at the writer's level. */
static ZSTD_compressionParameters w_zstd_params(struct image_writer *w)
{
	if (w->level > ZSTD_maxCLevel())
		w->level = ZSTD_maxCLevel();
	if (w->level < ZSTD_minCLevel())
		w->level = ZSTD_minCLevel();
	return ZSTD_getCParams(w->level, IMAGE_CHUNK_MAX, 0);
}

/* Lays a zstd context out in packer k's workspace (again at every stream:
 * the workspace is given back to the kernel in between). */
static int w_zstd_init(struct image_writer *w, struct w_packer *k)
{
	ZSTD_compressionParameters cp = w_zstd_params(w);
	size_t r;

	k->cctx = ZSTD_initStaticCCtx(k->zwork, k->zwork_len);
	if (!k->cctx) {
		log_err("zstd refused a %zu-byte static context for level %d", k->zwork_len,
			w->level);
		return -1;
	}
	/* The level first, then the parameters it implies for 1 MiB inputs,
	 * which override the ones the level would pick for unknown sizes. */
	r = ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_compressionLevel, w->level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setCParams(k->cctx, cp);
	/* A static context starts with every flag clear: ask for the frame
	 * content size explicitly (the reader checks it before decoding). */
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_contentSizeFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(k->cctx, ZSTD_c_checksumFlag, 0);
	if (ZSTD_isError(r)) {
		log_err("zstd level %d: %s", w->level, ZSTD_getErrorName(r));
		return -1;
	}
	return 0;
}

/* Reserves the scratch mapping (address space only: nothing is touched
 * here) and carves it up. */
static int w_scratch_init(struct image_writer *w)
{
	size_t zwork = 0, slot_bytes, off, i;
	void *p;

	w->zout_cap = w_page_round(ZSTD_compressBound(IMAGE_CHUNK_MAX));
	if (w->level)
		zwork = w_page_round(ZSTD_estimateCCtxSize_usingCParams(w_zstd_params(w)));
	slot_bytes = w_page_round((size_t)w->nslots * sizeof(struct w_slot));
	w->scratch_len = slot_bytes + (size_t)(w->npackers + 2) * W_THREAD_STACK +
			 (size_t)w->nslots * (IMAGE_CHUNK_MAX + w->zout_cap + w_page_round(W_SEAL_CAP)) +
			 w_page_round(IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN) +
			 (size_t)w->npackers * zwork;
	/* libc's mmap(), not the raw call (threads run here): a sanitizer
	 * that shadows memory must see the mapping come, and the helpers'
	 * stacks in it must start unpoisoned. */
	p = mmap(NULL, w->scratch_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		log_perror("reserve %zu bytes for the image writer", w->scratch_len);
		return -1;
	}
	w->scratch = p;
	w->slot = (struct w_slot *)w->scratch;
	off = slot_bytes;
	w->stacks = w->scratch + off;
	off += (size_t)(w->npackers + 2) * W_THREAD_STACK;
	w->rec_sealed = w->scratch + off;
	off += w_page_round(IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN);
	for (i = 0; i < (size_t)w->npackers; i++) {
		w->packer[i].w = w;
		w->packer[i].zwork = zwork ? w->scratch + off : NULL;
		w->packer[i].zwork_len = zwork;
		off += zwork;
	}
	return 0;
}

/* Points every slot at its buffers (the slots live in the scratch mapping,
 * which comes back zeroed after each stream). */
static void w_slots_init(struct image_writer *w)
{
	uint8_t *buf = w->scratch + w_page_round((size_t)w->nslots * sizeof(struct w_slot)) +
		       (size_t)(w->npackers + 2) * W_THREAD_STACK +
		       w_page_round(IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN) +
		       (size_t)w->npackers * w->packer[0].zwork_len;
	int i;

	for (i = 0; i < w->nslots; i++) {
		struct w_slot *s = &w->slot[i];

		s->stage = buf;
		buf += IMAGE_CHUNK_MAX;
		s->zout = buf;
		buf += w->zout_cap;
		s->sealed = buf;
		buf += w_page_round(W_SEAL_CAP);
	}
}

/* Gives the scratch pages back: the next checkpoint sees none of them. */
static void w_scratch_release(struct image_writer *w)
{
	if (w->scratch)
		sys_madvise(w->scratch, w->scratch_len, MADV_DONTNEED);
}

struct image_writer *image_writer_new(int level)
{
	struct image_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		log_err("cannot allocate the image writer");
		return NULL;
	}
	w->fd = -1;
	w->level = level;
	w->npackers = w_npackers();
	w->nslots = w->npackers + W_SLOTS_EXTRA;
	if (w_scratch_init(w) < 0)
		goto err;
	w->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	w->sha = EVP_MD_CTX_new();
	if (!w->md || !w->sha) {
		log_err("OpenSSL has no SHA-256 for the image writer");
		goto err;
	}
	if (image_writer_prepare(w) < 0)
		goto err;
	return w;
err:
	image_writer_free(w);
	return NULL;
}

static void w_threads_stop(struct image_writer *w);

void image_writer_free(struct image_writer *w)
{
	int i;

	if (!w)
		return;
	w_threads_stop(w);
	EVP_MD_CTX_free(w->sha);
	EVP_MD_free(w->md);
	EVP_CIPHER_CTX_free(w->aead);
	for (i = 0; i < w->npackers; i++)
		EVP_CIPHER_CTX_free(w->packer[i].aead);
	EVP_CIPHER_free(w->aes);
	/* libc's munmap(), as for mmap() in w_scratch_init(). */
	if (w->scratch)
		munmap(w->scratch, w->scratch_len);
	free(w);
}

int image_writer_prepare(struct image_writer *w)
{
	w_threads_stop(w);
	if (!EVP_DigestInit_ex(w->sha, w->md, NULL)) {
		log_err("cannot start a SHA-256 digest for the image");
		w->state = W_FAILED;
		return -1;
	}
	w->state = W_READY;
	return 0;
}

void image_writer_set_live(struct image_writer *w, bool live)
{
	w->live = live;
}

int image_writer_threads(const struct image_writer *w)
{
	return w->npackers + 2;
}

void *image_writer_scratch(const struct image_writer *w, size_t *len)
{
	*len = w->scratch_len;
	return w->scratch;
}

int image_key_check(const uint8_t key[IMAGE_SEAL_KEY_LEN], uint8_t out[IMAGE_KEY_CHECK_LEN])
{
	static const char text[] = IMAGE_KEY_CHECK_TEXT;
	uint8_t buf[sizeof(text) - 1 + IMAGE_SEAL_KEY_LEN], md[32];
	int ok;

	memcpy(buf, text, sizeof(text) - 1);
	memcpy(buf + sizeof(text) - 1, key, IMAGE_SEAL_KEY_LEN);
	ok = EVP_Digest(buf, sizeof(buf), md, NULL, EVP_sha256(), NULL);
	memcpy(out, md, IMAGE_KEY_CHECK_LEN);
	explicit_bzero(buf, sizeof(buf));
	if (!ok) {
		log_err("SHA-256 of the image key check failed");
		return -1;
	}
	return 0;
}

int image_writer_set_key(struct image_writer *w, const uint8_t *key)
{
	int i;

	/* A stream still open here was abandoned (or captured by a checkpoint
	 * and restarted): image_writer_prepare() must come before the next. */
	if (w->state == W_OPEN) {
		w_threads_stop(w);
		w->state = W_FAILED;
	}
	w->seal = false;
	if (!key)
		return 0;
	if (!w->aes)
		w->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!w->aead)
		w->aead = EVP_CIPHER_CTX_new();
	for (i = 0; i < w->npackers; i++)
		if (!w->packer[i].aead)
			w->packer[i].aead = EVP_CIPHER_CTX_new();
	if (!w->aes || !w->aead) {
		log_err("OpenSSL has no AES-256-GCM for the image writer");
		return -1;
	}
	/* The key schedules now; each record only sets its IV. One context
	 * per packing thread: a context is never shared between threads. */
	if (!EVP_EncryptInit_ex(w->aead, w->aes, NULL, key, NULL)) {
		log_err("cannot set up AES-256-GCM with the image key");
		return -1;
	}
	for (i = 0; i < w->npackers; i++)
		if (!w->packer[i].aead ||
		    !EVP_EncryptInit_ex(w->packer[i].aead, w->aes, NULL, key, NULL)) {
			log_err("cannot set up AES-256-GCM with the image key");
			return -1;
		}
	if (image_key_check(key, w->key_check) < 0)
		return -1;
	w->seal = true;
	return 0;
}

/* image_seal() without the log line, for the packing threads. */
static int w_seal_quiet(struct evp_cipher_ctx_st *aead, uint64_t salt, uint64_t recno,
			uint32_t type, const struct iovec *iov, int n, size_t plen, uint8_t *out)
{
	uint8_t iv[IMAGE_SEAL_NONCE_LEN], aad[IMAGE_SEAL_AAD_LEN];
	size_t off = 0;
	int i, outl;

	if (recno > UINT32_MAX)
		return -1;
	image_seal_nonce(iv, salt, (uint32_t)recno);
	image_seal_aad(aad, type, plen + IMAGE_SEAL_TAG_LEN);
	if (!EVP_EncryptInit_ex(aead, NULL, NULL, NULL, iv) ||
	    !EVP_EncryptUpdate(aead, NULL, &outl, aad, sizeof(aad)))
		return -1;
	for (i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			continue;
		if (!EVP_EncryptUpdate(aead, out + off, &outl, iov[i].iov_base,
				       (int)iov[i].iov_len))
			return -1;
		off += (size_t)outl;
	}
	if (!EVP_EncryptFinal_ex(aead, out + off, &outl))
		return -1;
	off += (size_t)outl;
	if (off != plen ||
	    EVP_CIPHER_CTX_ctrl(aead, EVP_CTRL_AEAD_GET_TAG, IMAGE_SEAL_TAG_LEN, out + off) != 1)
		return -1;
	return 0;
}

static void w_seal_failed(uint32_t type, uint64_t recno)
{
	if (recno > UINT32_MAX)
		log_err("a sealed image holds at most 2^32 records");
	else
		log_err("AES-256-GCM sealing of %s record %llu failed", image_rec_name(type),
			(unsigned long long)recno);
}

int image_seal(struct evp_cipher_ctx_st *aead, uint64_t salt, uint64_t recno, uint32_t type,
	       const struct iovec *iov, int n, size_t plen, uint8_t *out)
{
	if (w_seal_quiet(aead, salt, recno, type, iov, n, plen, out) < 0) {
		w_seal_failed(type, recno);
		return -1;
	}
	return 0;
}

static void w_chunk_reset(struct image_writer *w)
{
	w->nruns = 0;
	w->niov = 0;
	w->chunk_pages = 0;
}

static inline struct w_slot *w_cur(struct image_writer *w)
{
	return &w->slot[w->seq % (uint32_t)w->nslots];
}

/* Writes every byte of iov[0..n) (modifying the array), retrying short
 * writes and EINTR and waiting out EAGAIN. Raw system calls only, no errno:
 * the I/O helper runs this. 0, or -errno. */
static long w_writev_raw(int fd, bool sock, struct iovec *iov, int n)
{
	while (n) {
		long r;

		if (sock) {
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };

			r = sys_call3(__NR_sendmsg, fd, &mh, MSG_NOSIGNAL);
		} else {
			r = sys_call3(__NR_writev, fd, iov, n);
		}
		if (sys_failed(r)) {
			/* A non-blocking fd (a migration socket may be one):
			 * wait until it drains instead of failing. */
			if (r == -EAGAIN) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };

				r = sys_call3(__NR_poll, &pfd, 1, -1);
				if (sys_failed(r) && r != -EINTR)
					return r;
				continue;
			}
			if (r == -EINTR)
				continue;
			return r;
		}
		while (n && (size_t)r >= iov->iov_len) {
			r -= (long)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* ---- the stages ---- */

/* Records the first failure of a helper thread; later ones are dropped.
 * No logging here: the calling thread logs it (w_check). */
static void w_set_err(struct image_writer *w, int what, int err_no, uint64_t at, size_t len,
		      uint64_t recno)
{
	int none = W_ERR_NONE;

	if (!__atomic_compare_exchange_n(&w->err, &none, -1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return;
	w->err_no = err_no;
	w->err_at = at;
	w->err_len = len;
	w->err_recno = recno;
	__atomic_store_n(&w->err, what, __ATOMIC_RELEASE);
}

static inline bool w_failed(struct image_writer *w)
{
	return __atomic_load_n(&w->err, __ATOMIC_ACQUIRE) != W_ERR_NONE;
}

/* Whether the chunk at src is worth compressing: W_SAMPLE_PAGES pages
 * spread over it, compressed together, shrink by 1/32 or more. A pure
 * function of the content, so the stream does not depend on timing. */
static bool w_worth(struct image_writer *w, struct w_packer *k, struct w_slot *s,
		    const uint8_t *src, size_t raw_len)
{
	size_t npages = raw_len / IMAGE_PAGE_SIZE, n = 0, z, i;

	if (raw_len < W_SAMPLE_MIN)
		return true;
	for (i = 0; i < W_SAMPLE_PAGES; i++) {
		size_t page = (2 * i + 1) * npages / (2 * W_SAMPLE_PAGES);

		memcpy(s->zout + n, src + page * IMAGE_PAGE_SIZE, IMAGE_PAGE_SIZE);
		n += IMAGE_PAGE_SIZE;
	}
	z = ZSTD_compress2(k->cctx, s->zout + n, w->zout_cap - n, s->zout, n);
	return ZSTD_isError(z) || z <= n - n / 32;
}

/* The pack stage of slot s with packer k's contexts: gather, compress,
 * seal, CRC. Runs in a packing thread (or the caller's): no allocation, no
 * errno, no logging; a failure is recorded with w_set_err(). */
static void w_pack(struct image_writer *w, struct w_packer *k, struct w_slot *s)
{
	struct w_pages_head *h = &s->head;
	size_t raw_len = (size_t)s->npages * IMAGE_PAGE_SIZE, head_len;
	struct iovec *data = &s->iov[1];
	uint32_t ndata = s->ndata, crc, i;

	h->pg = (struct image_pages){ .area = s->area, .nruns = s->nruns,
				      .codec = IMAGE_CODEC_RAW, .raw_len = (uint32_t)raw_len,
				      .stored_len = (uint32_t)raw_len };
	if (w->level) {
		const uint8_t *src = data[0].iov_base;
		size_t z;

		if (ndata > 1) {
			uint8_t *p = s->stage;

			for (i = 0; i < ndata; i++) {
				memcpy(p, data[i].iov_base, data[i].iov_len);
				p += data[i].iov_len;
			}
			src = s->stage;
			data[0] = (struct iovec){ s->stage, raw_len };
			ndata = 1;
		}
		if (w_worth(w, k, s, src, raw_len)) {
			z = ZSTD_compress2(k->cctx, s->zout, w->zout_cap, src, raw_len);
			if (ZSTD_isError(z)) {
				/* Cannot happen with a workspace sized for the
				 * level; storing raw keeps the checkpoint. */
				__atomic_store_n(&w->zstd_err, (int)ZSTD_getErrorCode(z),
						 __ATOMIC_RELAXED);
			} else if (z < raw_len) {
				h->pg.codec = IMAGE_CODEC_ZSTD;
				h->pg.stored_len = (uint32_t)z;
				data[0] = (struct iovec){ s->zout, z };
			}
		}
	}
	head_len = sizeof(h->pg) + s->nruns * sizeof(struct image_run);
	if (w->seal) {
		/* Encrypt-into-buffer replaces the zero-copy write. */
		size_t plen = head_len + h->pg.stored_len;

		s->iov[0] = (struct iovec){ &h->pg, head_len };
		if (w_seal_quiet(k->aead, w->salt, s->recno, IMAGE_REC_PAGES, s->iov,
				 (int)ndata + 1, plen, s->sealed) < 0) {
			w_set_err(w, W_ERR_SEAL, 0, 0, 0, s->recno);
			return;
		}
		plen += IMAGE_SEAL_TAG_LEN;
		h->rh = (struct image_rec_hdr){ .type = IMAGE_REC_PAGES,
						.crc = image_crc32c(0, s->sealed, plen),
						.len = plen };
		s->iov[0] = (struct iovec){ &h->rh, sizeof(h->rh) };
		s->iov[1] = (struct iovec){ s->sealed, plen };
		s->niov = 2;
	} else {
		crc = image_crc32c(0, &h->pg, head_len);
		for (i = 0; i < ndata; i++)
			crc = image_crc32c(crc, data[i].iov_base, data[i].iov_len);
		h->rh = (struct image_rec_hdr){ .type = IMAGE_REC_PAGES, .crc = crc,
						.len = head_len + h->pg.stored_len };
		s->iov[0] = (struct iovec){ h, sizeof(h->rh) + head_len };
		s->niov = (int)ndata + 1;
	}
}

/* Adds iov[0..n) to the stream's SHA-256; their length in *total. No
 * logging: -1 if OpenSSL failed. */
static int w_hash_iov(struct image_writer *w, const struct iovec *iov, int n, size_t *total)
{
	int i;

	*total = 0;
	for (i = 0; i < n; i++) {
		if (iov[i].iov_len && !EVP_DigestUpdate(w->sha, iov[i].iov_base, iov[i].iov_len))
			return -1;
		*total += iov[i].iov_len;
	}
	return 0;
}

/* The hash stage of slot s (in stream order). */
static void w_hash_slot(struct image_writer *w, struct w_slot *s)
{
	if (w_hash_iov(w, s->iov, s->niov, &s->total) < 0) {
		w_set_err(w, W_ERR_HASH, 0, w->bytes, 0, s->recno);
		return;
	}
	s->at = w->bytes;
	w->bytes += s->total;
}

/* The write stage of slot s (in stream order). */
static void w_write_slot(struct image_writer *w, struct w_slot *s)
{
	long r = w_writev_raw(w->fd, w->sock, s->iov, s->niov);

	if (sys_failed(r))
		w_set_err(w, W_ERR_WRITE, (int)-r, s->at, s->total, s->recno);
}

/* ---- the helper threads ---- */

static inline void w_kick(int *word)
{
	__atomic_add_fetch(word, 1, __ATOMIC_SEQ_CST);
	sys_futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

static inline void w_sleep(int *word, int seen)
{
	sys_futex(word, FUTEX_WAIT_PRIVATE, seen, NULL);
}

static inline int w_load(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* A packing thread: claims the oldest submitted chunk not yet claimed. */
static void w_packer_main(void *arg)
{
	struct w_packer *k = arg;
	struct image_writer *w = k->w;

	for (;;) {
		int kick = w_load(&w->kick_pack), c;

		if (w_load(&w->stop))
			sys_exit_thread(0);
		c = w_load(&w->claimed);
		if (c == w_load(&w->submitted)) {
			w_sleep(&w->kick_pack, kick);
			continue;
		}
		if (!__atomic_compare_exchange_n(&w->claimed, &c, c + 1, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue;
		{
			struct w_slot *s = &w->slot[(uint32_t)c % (uint32_t)w->nslots];

			if (!w_failed(w))
				w_pack(w, k, s);
			__atomic_store_n(&s->packed, 1, __ATOMIC_RELEASE);
			w_kick(&w->kick_hash);
		}
	}
}

/* The hasher: the packed chunks into the SHA-256, in stream order. */
static void w_hasher_main(void *arg)
{
	struct image_writer *w = arg;

	for (;;) {
		int kick = w_load(&w->kick_hash), h = w->hashed;
		struct w_slot *s = &w->slot[(uint32_t)h % (uint32_t)w->nslots];

		if (w_load(&w->stop))
			sys_exit_thread(0);
		if (h == w_load(&w->submitted) || !w_load(&s->packed)) {
			w_sleep(&w->kick_hash, kick);
			continue;
		}
		if (!w_failed(w))
			w_hash_slot(w, s);
		__atomic_store_n(&w->hashed, h + 1, __ATOMIC_RELEASE);
		w_kick(&w->kick_write);
	}
}

/* The I/O helper: the hashed chunks to the fd, in stream order. */
static void w_io_main(void *arg)
{
	struct image_writer *w = arg;

	for (;;) {
		int kick = w_load(&w->kick_write), x = w->written;

		if (w_load(&w->stop))
			sys_exit_thread(0);
		if (x == w_load(&w->hashed)) {
			w_sleep(&w->kick_write, kick);
			continue;
		}
		if (!w_failed(w))
			w_write_slot(w, &w->slot[(uint32_t)x % (uint32_t)w->nslots]);
		__atomic_store_n(&w->written, x + 1, __ATOMIC_RELEASE);
		w_kick(&w->kick_fill);
	}
}

static bool w_thread_start(struct image_writer *w, void (*fn)(void *), void *arg)
{
	const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
				    CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
	int i = w->nthreads;
	uint8_t *top = w->stacks + (size_t)(i + 1) * W_THREAD_STACK;
	long tid;

	w->tids[i] = -1;	/* nonzero until the kernel clears it at exit */
	tid = sys_clone_thread(flags, (void *)((uintptr_t)top & ~(uintptr_t)15),
			       (void *)&w->tids[i], 0, fn, arg);
	if (sys_failed(tid)) {
		w->tids[i] = 0;
		log_debug("no helper thread (clone: errno %ld); writing inline", -tid);
		return false;
	}
	/* The thread exits only when told to, so this races with nothing
	 * but its own exit, which comes later. */
	__atomic_store_n(&w->tids[i], (int)tid, __ATOMIC_RELEASE);
	w->nthreads++;
	return true;
}

/* Starts the helper threads unless they run or cannot run. true if they
 * run. */
static bool w_threads_start(struct image_writer *w)
{
	uint64_t all = ~0ull, old;
	bool ok;
	int i;

	if (w->nthreads || w->no_threads)
		return !w->no_threads;
	/* Born with every signal blocked: no handler of the application may
	 * run on them, and no process-wide signal is lost to them. */
	sys_rt_sigprocmask(SIG_SETMASK, &all, &old);
	ok = w_thread_start(w, w_io_main, w) && w_thread_start(w, w_hasher_main, w);
	for (i = 0; ok && i < w->npackers; i++)
		ok = w_thread_start(w, w_packer_main, &w->packer[i]);
	sys_rt_sigprocmask(SIG_SETMASK, &old, NULL);
	if (!ok) {
		w_threads_stop(w);
		w->no_threads = true;
	}
	return ok;
}

/* Ends the helper threads, if they run, each after the chunk in its hands:
 * no thread of ours outlives a stream (the engine would find it at the next
 * suspend). Chunks not yet through are dropped. */
static void w_threads_stop(struct image_writer *w)
{
	int i, tid;

	if (!w->nthreads)
		return;
	__atomic_store_n(&w->stop, 1, __ATOMIC_SEQ_CST);
	w_kick(&w->kick_pack);
	w_kick(&w->kick_hash);
	w_kick(&w->kick_write);
	/* The kernel's CLONE_CHILD_CLEARTID wake is a shared-futex wake. */
	for (i = 0; i < w->nthreads; i++)
		while ((tid = __atomic_load_n(&w->tids[i], __ATOMIC_ACQUIRE)) != 0)
			sys_futex(&w->tids[i], FUTEX_WAIT, tid, NULL);
	w->nthreads = 0;
	w->stop = 0;
#ifdef __SANITIZE_ADDRESS__
	/* AddressSanitizer poisoned the frames of threads it never knew of:
	 * the stacks may become other memory after munmap(). */
	ASAN_UNPOISON_MEMORY_REGION(w->stacks, (size_t)(w->npackers + 2) * W_THREAD_STACK);
#endif
}

void image_writer_restarted(struct image_writer *w)
{
	int i;

	/* Its helper threads lived in the old process: nothing to wait for. */
	for (i = 0; i < W_PACKERS_MAX + 2; i++)
		w->tids[i] = 0;
	w->nthreads = 0;
	w->stop = 0;
}

/* Logs a helper thread's failure, once. -1 if there was one. */
static int w_check(struct image_writer *w)
{
	int what = w_load(&w->err);

	if (what == W_ERR_NONE)
		return 0;
	while (what < 0)	/* being recorded */
		what = w_load(&w->err);
	switch (what) {
	case W_ERR_WRITE:
		log_syserr(w->err_no, "write %zu bytes of the image at byte %llu", w->err_len,
			   (unsigned long long)w->err_at);
		break;
	case W_ERR_HASH:
		log_err("SHA-256 of the image failed");
		break;
	case W_ERR_SEAL:
		w_seal_failed(IMAGE_REC_PAGES, w->err_recno);
		break;
	}
	return -1;
}

/* Waits until every chunk submitted so far is written. 0, or -1 after
 * logging the failure of a helper. */
static int w_drain(struct image_writer *w, uint32_t upto)
{
	for (;;) {
		int kick = w_load(&w->kick_fill);

		if ((int)((uint32_t)w_load(&w->written) - upto) >= 0)
			break;
		w_sleep(&w->kick_fill, kick);
	}
	return w_check(w);
}

void image_writer_begin(struct image_writer *w, int fd)
{
	struct stat st;
	int i;

	w_threads_stop(w);
	if (w->state != W_READY) {
		log_err("image writer started without image_writer_prepare()");
		w->state = W_FAILED;
		return;
	}
	if (fstat(fd, &st) < 0) {
		log_perror("fstat image fd %d", fd);
		w->state = W_FAILED;
		return;
	}
	if (w->seal && getrandom(&w->salt, sizeof(w->salt), 0) != sizeof(w->salt)) {
		log_perror("getrandom for the image's nonce salt");
		w->state = W_FAILED;
		return;
	}
	w_slots_init(w);
	for (i = 0; w->level && i < w->npackers; i++)
		if (w_zstd_init(w, &w->packer[i]) < 0) {
			w->state = W_FAILED;
			return;
		}
	w->fd = fd;
	w->sock = S_ISSOCK(st.st_mode);
	w->bytes = w->records = w->pages = 0;
	w->have_last = false;
	w->no_threads = false;
	w->seq = 0;
	w->submitted = w->claimed = w->hashed = w->written = 0;
	w->err = W_ERR_NONE;
	w->zstd_err = 0;
	w_chunk_reset(w);
	w->state = W_OPEN;
}

/* 0 if records may be written now; -1 (logging only misuse, not a stream
 * that already failed) otherwise. */
static int w_usable(struct image_writer *w)
{
	if (w->state == W_OPEN)
		return 0;
	if (w->state != W_FAILED)
		log_err("image writer used %s", w->state == W_DONE ? "after image_writer_finish()"
								  : "before image_writer_begin()");
	w->state = W_FAILED;
	return -1;
}

/* The end of a stream, good or bad: threads gone, scratch given back. */
static void w_end(struct image_writer *w)
{
	w_threads_stop(w);
	w_scratch_release(w);
}

static int w_fail(struct image_writer *w)
{
	w->state = W_FAILED;
	w_end(w);
	return -1;
}

/* Writes one record, whose header is iov[0], from the calling thread, after
 * every chunk submitted before it. */
static int w_emit(struct image_writer *w, struct iovec *iov, int n, bool hash)
{
	size_t total = 0;
	long r;
	int i;

	if (w->nthreads && w_drain(w, w->seq) < 0)
		return w_fail(w);
	if (hash && w_hash_iov(w, iov, n, &total) < 0) {
		log_err("SHA-256 of the image failed");
		return w_fail(w);
	}
	if (!hash)
		for (i = 0; i < n; i++)
			total += iov[i].iov_len;
	r = w_writev_raw(w->fd, w->sock, iov, n);
	if (sys_failed(r)) {
		log_syserr((int)-r, "write %zu bytes of the image at byte %llu", total,
			   (unsigned long long)w->bytes);
		return w_fail(w);
	}
	w->bytes += total;
	return 0;
}

/* Submits the chunk being filled to the packing threads (or packs, hashes
 * and writes it here if there are none), then makes sure the next slot is
 * free to fill. */
static int w_flush(struct image_writer *w)
{
	struct w_slot *s = w_cur(w);

	if (!w->chunk_pages)
		return 0;
	s->area = w->area;
	s->nruns = w->nruns;
	s->ndata = w->niov;
	s->npages = w->chunk_pages;
	s->recno = w->records++;
	s->packed = 0;
	w->pages += w->chunk_pages;
	w_chunk_reset(w);

	if (!w_threads_start(w)) {
		w_pack(w, &w->packer[0], s);
		if (!w_failed(w))
			w_hash_slot(w, s);
		if (!w_failed(w))
			w_write_slot(w, s);
		w->seq++;
		return w_check(w) < 0 ? w_fail(w) : 0;
	}
	w->seq++;
	__atomic_store_n(&w->submitted, (int)w->seq, __ATOMIC_RELEASE);
	w_kick(&w->kick_pack);
	/* The slot of the next chunk is free once its last chunk is written. */
	if (w->seq >= (uint32_t)w->nslots && w_drain(w, w->seq + 1 - (uint32_t)w->nslots) < 0)
		return w_fail(w);
	return 0;
}

int image_writer_record(struct image_writer *w, uint32_t type, const void *a, size_t alen,
			const void *b, size_t blen)
{
	struct image_header hdr;
	struct image_rec_hdr rh;
	struct iovec iov[3];
	uint32_t crc;

	if (w_usable(w) < 0)
		return -1;
	if (type < IMAGE_REC_HEADER || type == IMAGE_REC_TRAILER || type > IMAGE_REC_LAST) {
		log_err("image record of type %u cannot be written", type);
		return w_fail(w);
	}
	if (alen > IMAGE_RECORD_MAX || blen > IMAGE_RECORD_MAX - alen) {	/* before the tag */
		log_err("%s record of %zu bytes exceeds the %u-byte limit", image_rec_name(type),
			alen + blen, IMAGE_RECORD_MAX);
		return w_fail(w);
	}
	if ((type == IMAGE_REC_HEADER) != (w->records == 0 && w->chunk_pages == 0)) {
		log_err("%s record written as record %llu; HEADER must be first and only there",
			image_rec_name(type), (unsigned long long)w->records);
		return w_fail(w);
	}
	if (w_flush(w) < 0)
		return -1;
	if (w->seal && type == IMAGE_REC_HEADER) {
		if (alen + blen != sizeof(hdr)) {
			log_err("HEADER record of %zu bytes, not %zu", alen + blen, sizeof(hdr));
			return w_fail(w);
		}
		memcpy(&hdr, a, alen);
		if (blen)
			memcpy((uint8_t *)&hdr + alen, b, blen);
		hdr.flags |= IMAGE_HDR_SEALED;
		hdr.seal_salt = w->salt;
		memcpy(hdr.key_check, w->key_check, sizeof(hdr.key_check));
		a = &hdr;
		alen = sizeof(hdr);
		b = NULL;
		blen = 0;
	} else if (w->seal) {
		iov[0] = (struct iovec){ (void *)a, alen };
		iov[1] = (struct iovec){ (void *)b, blen };
		if (image_seal(w->aead, w->salt, w->records, type, iov, 2, alen + blen,
			       w->rec_sealed) < 0)
			return w_fail(w);
		a = w->rec_sealed;
		alen += blen + IMAGE_SEAL_TAG_LEN;
		b = NULL;
		blen = 0;
	}
	crc = image_crc32c(0, a, alen);
	if (blen)
		crc = image_crc32c(crc, b, blen);
	rh = (struct image_rec_hdr){ .type = type, .crc = crc, .len = alen + blen };
	iov[0] = (struct iovec){ &rh, sizeof(rh) };
	iov[1] = (struct iovec){ (void *)a, alen };
	iov[2] = (struct iovec){ (void *)b, blen };
	if (w_emit(w, iov, blen ? 3 : 2, true) < 0)
		return -1;
	w->records++;
	return 0;
}

/* Adds n pages (fitting in the current chunk) to the chunk. */
static void w_add(struct image_writer *w, uint64_t first, const uint8_t *addr, uint32_t n)
{
	struct w_slot *s = w_cur(w);
	struct image_run *last = w->nruns ? &s->head.runs[w->nruns - 1] : NULL;
	size_t len = (size_t)n * IMAGE_PAGE_SIZE;
	struct iovec *iov;

	if (last && last->first + last->count == first)
		last->count += n;
	else
		s->head.runs[w->nruns++] = (struct image_run){ .first = first, .count = n };

	if (w->live) {
		/* A snapshot: the CRC, the hash and the bytes sent must agree
		 * even if the application writes the page meanwhile. */
		memcpy(s->stage + (size_t)w->chunk_pages * IMAGE_PAGE_SIZE, addr, len);
		addr = s->stage + (size_t)w->chunk_pages * IMAGE_PAGE_SIZE;
	}
	iov = w->niov ? &s->iov[w->niov] : NULL;
	if (iov && (const uint8_t *)iov->iov_base + iov->iov_len == addr)
		iov->iov_len += len;
	else
		s->iov[++w->niov] = (struct iovec){ (void *)addr, len };
	w->chunk_pages += n;
}

int image_writer_pages(struct image_writer *w, uint32_t area, uint64_t first, const void *addr,
		       uint64_t npages)
{
	const uint8_t *p = addr;

	if (w_usable(w) < 0)
		return -1;
	if (!npages)
		return 0;
	if (!w->records) {
		log_err("pages written before the HEADER record");
		return w_fail(w);
	}
	if (first + npages < first || !addr) {
		log_err("bad page run for area %u: %llu pages from page %llu at %p", area,
			(unsigned long long)npages, (unsigned long long)first, addr);
		return w_fail(w);
	}
	if (w->have_last && area == w->last_area && first < w->last_end) {
		log_err("pages of area %u out of order: page %llu after page %llu", area,
			(unsigned long long)first, (unsigned long long)w->last_end - 1);
		return w_fail(w);
	}
	if (w->chunk_pages && area != w->area && w_flush(w) < 0)
		return -1;
	w->area = area;
	w->last_area = area;
	w->last_end = first + npages;
	w->have_last = true;
	while (npages) {
		uint32_t room = IMAGE_PAGES_MAX_RUNS - w->chunk_pages;
		uint32_t n = npages < room ? (uint32_t)npages : room;

		w_add(w, first, p, n);
		if (w->chunk_pages == IMAGE_PAGES_MAX_RUNS && w_flush(w) < 0)
			return -1;
		first += n;
		p += (size_t)n * IMAGE_PAGE_SIZE;
		npages -= n;
	}
	return 0;
}

int image_writer_finish(struct image_writer *w)
{
	struct image_trailer t = { 0 };
	struct image_rec_hdr rh;
	struct iovec iov[2];

	if (w_usable(w) < 0)
		return -1;
	if (!w->records) {
		log_err("image finished without a HEADER record");
		return w_fail(w);
	}
	if (w_flush(w) < 0)
		return -1;
	if (w->nthreads && w_drain(w, w->seq) < 0)
		return w_fail(w);
	w_threads_stop(w);
	if (w->zstd_err && !w->warned_zstd) {
		log_warn("zstd: %s; pages stored uncompressed",
			 ZSTD_getErrorString((ZSTD_ErrorCode)w->zstd_err));
		w->warned_zstd = true;
	}
	t.records = w->records;
	t.bytes = w->bytes;
	t.pages = w->pages;
	if (!EVP_DigestFinal_ex(w->sha, t.sha256, NULL)) {
		log_err("SHA-256 of the image failed");
		return w_fail(w);
	}
	iov[1] = (struct iovec){ &t, sizeof(t) };
	if (w->seal) {
		/* Sealed too, so that nobody without the key can rewrite the
		 * SHA-256 after changing the stream (the clear HEADER above all). */
		if (image_seal(w->aead, w->salt, w->records, IMAGE_REC_TRAILER, &iov[1], 1,
			       sizeof(t), w->rec_sealed) < 0)
			return w_fail(w);
		iov[1] = (struct iovec){ w->rec_sealed, sizeof(t) + IMAGE_SEAL_TAG_LEN };
	}
	rh = (struct image_rec_hdr){ .type = IMAGE_REC_TRAILER,
				     .crc = image_crc32c(0, iov[1].iov_base, iov[1].iov_len),
				     .len = iov[1].iov_len };
	iov[0] = (struct iovec){ &rh, sizeof(rh) };
	if (w_emit(w, iov, 2, false) < 0)
		return -1;
	w_end(w);
	w->state = W_DONE;
	memcpy(w->digest, t.sha256, sizeof(w->digest));
	w->have_digest = true;
	return 0;
}

int image_writer_digest(const struct image_writer *w, uint8_t out[32])
{
	if (w->state != W_DONE || !w->have_digest)
		return -1;
	memcpy(out, w->digest, sizeof(w->digest));
	return 0;
}

uint64_t image_writer_bytes(const struct image_writer *w)
{
	return w->bytes;
}

uint64_t image_writer_npages(const struct image_writer *w)
{
	return w->pages;
}
