/* The image writer: turns the engine's records and pages into the framed
 * byte stream of mtcp/image.h, on a file, a pipe or a socket.
 *
 * Called by the checkpoint thread of libcryo.so while the application's
 * threads are frozen, maybe holding the malloc lock, so everything is
 * reserved in image_writer_new() and image_writer_prepare(): the chunk
 * buffers, a zstd context living in a fixed workspace sized for the level
 * and for chunks of IMAGE_CHUNK_MAX bytes (zstd never allocates in it), the
 * SHA-256 context (EVP; Update and Final do not allocate) and a stack for
 * the I/O helper. From image_writer_begin() on, nothing allocates.
 *
 * Page data is cut into PAGES chunks of at most IMAGE_CHUNK_MAX decoded
 * bytes. Consecutive pages merge into one run; a chunk is written when it
 * is full, when the area changes, or when any other record or the trailer
 * comes. Uncompressed chunks are not copied: the CRC is computed over the
 * caller's memory and one writev() sends the record header, the
 * struct image_pages, the runs and the page memory in place. A compressed
 * chunk that does not shrink is stored raw.
 *
 * Every record's header and payload also go into the running SHA-256, which
 * the trailer carries. The SHA-256 (about 1.6 GB/s even with SHA-NI) and the
 * write(2) copy are the two big costs of an uncompressed image, so they
 * overlap: a sealed chunk is handed to an I/O helper, a bare thread made
 * with clone(2) on the first chunk of a stream and ended with the stream,
 * which writes it with raw system calls (no libc, no TLS, every signal
 * blocked) while this thread checksums and compresses the next one. Two
 * chunk slots alternate between them. Other records are small and written
 * by the calling thread once the helper is idle. If the helper cannot be
 * made, everything is written by the calling thread.
 *
 * With a key (image_writer_set_key()), every record after the HEADER is
 * sealed with AES-256-GCM before its CRC and hash are computed: the
 * payload is encrypted into a buffer of the writer's (raw chunks then cost
 * one pass of AES-GCM, about 4 GB/s here, instead of none), the tag is
 * appended, and the CRC, the SHA-256 and the bytes written are those of the
 * sealed payload. The cipher context is made in image_writer_set_key(); a
 * new nonce per record (EVP_EncryptInit_ex with the IV only) does not
 * allocate. The HEADER stays in clear with the salt and the key check.
 *
 * The first failing write is logged once; from then on every call returns
 * -1 without writing or logging. */
#define LOG_PREFIX "image: "
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <openssl/evp.h>
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

/* One chunk: built by the caller's thread, then written by the helper. */
struct w_slot {
	struct w_pages_head head;
	/* iov[0]: the head; iov[1..]: the data, the caller's pages in place
	 * or the slot's own buffers. */
	struct iovec iov[IMAGE_PAGES_MAX_RUNS + 1];
	int niov;		/* entries of iov to write, once sealed */
	size_t total;		/* their bytes */
	uint64_t at;		/* stream offset, for the error message */
	uint8_t *stage;		/* IMAGE_CHUNK_MAX: live copies, gathered runs */
	uint8_t *zout;		/* the compressed chunk (with a zstd level) */
	uint8_t *sealed;	/* W_SEAL_CAP: the sealed payload (with a key) */
};

/* A sealed PAGES payload: the struct, the runs, at most a chunk of data
 * (compressed data is kept only if smaller than raw), the tag. */
#define W_SEAL_CAP (sizeof(struct image_pages) + \
		    IMAGE_PAGES_MAX_RUNS * sizeof(struct image_run) + IMAGE_CHUNK_MAX + \
		    IMAGE_SEAL_TAG_LEN)

enum w_helper_cmd { W_HELPER_IDLE, W_HELPER_BUSY, W_HELPER_EXIT };

#define W_HELPER_STACK (64 * 1024)

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
	void *zwork;		/* the zstd context lives here */
	ZSTD_CCtx *cctx;
	size_t zout_cap;

	/* Sealing: on from image_writer_set_key(key) until set_key(NULL). */
	bool seal;
	EVP_CIPHER *aes;
	EVP_CIPHER_CTX *aead;	/* holds the key schedule */
	uint8_t key_check[IMAGE_KEY_CHECK_LEN];
	uint64_t salt;		/* this stream's, from getrandom() in begin() */
	uint8_t *rec_sealed;	/* IMAGE_RECORD_MAX + tag: other sealed records */

	/* The chunk being built, in slot[cur]: runs in head.runs, data in
	 * iov[1..niov]. */
	struct w_slot slot[2];
	int cur;
	uint32_t area, nruns, niov, chunk_pages;
	/* The end of the last run added, for the ordering check. */
	uint32_t last_area;
	uint64_t last_end;
	bool have_last;

	/* The I/O helper. h_cmd is the futex both sides wait on: the helper
	 * while it is IDLE, the caller while it is BUSY. */
	void *h_stack;
	volatile int h_tid;	/* its tid; the kernel clears it at its exit */
	int h_cmd;		/* enum w_helper_cmd */
	int h_slot;		/* the slot it writes */
	int h_err;		/* errno of its failed write, or 0 */
	bool h_none;		/* clone failed: write from the caller's thread */

	/* The SHA-256 of the last stream finished (image_writer_digest). */
	bool have_digest;
	uint8_t digest[32];
};

static void *w_alloc(size_t n, const char *what)
{
	void *p = malloc(n);

	if (!p)
		log_err("cannot allocate %zu bytes for the image writer's %s", n, what);
	return p;
}

/* Reserves a zstd context that compresses IMAGE_CHUNK_MAX bytes at `level`
 * without ever allocating. */
static int w_zstd_init(struct image_writer *w)
{
	ZSTD_compressionParameters cp;
	size_t need, r;

	if (w->level > ZSTD_maxCLevel())
		w->level = ZSTD_maxCLevel();
	if (w->level < ZSTD_minCLevel())
		w->level = ZSTD_minCLevel();
	cp = ZSTD_getCParams(w->level, IMAGE_CHUNK_MAX, 0);
	need = ZSTD_estimateCCtxSize_usingCParams(cp);
	w->zwork = w_alloc(need, "zstd workspace");
	if (!w->zwork)
		return -1;
	w->cctx = ZSTD_initStaticCCtx(w->zwork, need);
	if (!w->cctx) {
		log_err("zstd refused a %zu-byte static context for level %d", need, w->level);
		return -1;
	}
	/* The level first, then the parameters it implies for 1 MiB inputs,
	 * which override the ones the level would pick for unknown sizes. */
	r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, w->level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setCParams(w->cctx, cp);
	/* A static context starts with every flag clear: ask for the frame
	 * content size explicitly (the reader checks it before decoding). */
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 0);
	if (ZSTD_isError(r)) {
		log_err("zstd level %d: %s", w->level, ZSTD_getErrorName(r));
		return -1;
	}
	w->zout_cap = ZSTD_compressBound(IMAGE_CHUNK_MAX);
	for (int i = 0; i < 2; i++) {
		w->slot[i].zout = w_alloc(w->zout_cap, "compression buffer");
		if (!w->slot[i].zout)
			return -1;
	}
	return 0;
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
	/* Untouched until used (live pages, gathered runs): malloc maps
	 * buffers this big on demand, so they cost address space only. */
	w->slot[0].stage = w_alloc(IMAGE_CHUNK_MAX, "chunk buffer");
	w->slot[1].stage = w_alloc(IMAGE_CHUNK_MAX, "chunk buffer");
	w->h_stack = w_alloc(W_HELPER_STACK, "I/O helper stack");
	if (!w->slot[0].stage || !w->slot[1].stage || !w->h_stack)
		goto err;
	if (level && w_zstd_init(w) < 0)
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

static void w_helper_stop(struct image_writer *w);

void image_writer_free(struct image_writer *w)
{
	if (!w)
		return;
	w_helper_stop(w);
	EVP_MD_CTX_free(w->sha);
	EVP_MD_free(w->md);
	EVP_CIPHER_CTX_free(w->aead);
	EVP_CIPHER_free(w->aes);
	free(w->rec_sealed);
	free(w->slot[0].sealed);
	free(w->slot[1].sealed);
	free(w->slot[0].zout);
	free(w->slot[1].zout);
	free(w->zwork);
	free(w->slot[0].stage);
	free(w->slot[1].stage);
	free(w->h_stack);
	free(w);
}

int image_writer_prepare(struct image_writer *w)
{
	w_helper_stop(w);
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
		w_helper_stop(w);
		w->state = W_FAILED;
	}
	w->seal = false;
	if (!key)
		return 0;
	if (!w->aes)
		w->aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!w->aead)
		w->aead = EVP_CIPHER_CTX_new();
	if (!w->aes || !w->aead) {
		log_err("OpenSSL has no AES-256-GCM for the image writer");
		return -1;
	}
	if (!w->rec_sealed)
		w->rec_sealed = w_alloc(IMAGE_RECORD_MAX + IMAGE_SEAL_TAG_LEN, "sealing buffer");
	for (i = 0; i < 2; i++)
		if (!w->slot[i].sealed)
			w->slot[i].sealed = w_alloc(W_SEAL_CAP, "sealing buffer");
	if (!w->rec_sealed || !w->slot[0].sealed || !w->slot[1].sealed)
		return -1;
	/* The key schedule now; each record only sets its IV. */
	if (!EVP_EncryptInit_ex(w->aead, w->aes, NULL, key, NULL)) {
		log_err("cannot set up AES-256-GCM with the image key");
		return -1;
	}
	if (image_key_check(key, w->key_check) < 0)
		return -1;
	w->seal = true;
	return 0;
}

int image_seal(struct evp_cipher_ctx_st *aead, uint64_t salt, uint64_t recno, uint32_t type,
	       const struct iovec *iov, int n, size_t plen, uint8_t *out)
{
	uint8_t iv[IMAGE_SEAL_NONCE_LEN], aad[IMAGE_SEAL_AAD_LEN];
	size_t off = 0;
	int i, outl;

	if (recno > UINT32_MAX) {
		log_err("a sealed image holds at most 2^32 records");
		return -1;
	}
	image_seal_nonce(iv, salt, (uint32_t)recno);
	image_seal_aad(aad, type, plen + IMAGE_SEAL_TAG_LEN);
	if (!EVP_EncryptInit_ex(aead, NULL, NULL, NULL, iv) ||
	    !EVP_EncryptUpdate(aead, NULL, &outl, aad, sizeof(aad)))
		goto err;
	for (i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			continue;
		if (!EVP_EncryptUpdate(aead, out + off, &outl, iov[i].iov_base,
				       (int)iov[i].iov_len))
			goto err;
		off += (size_t)outl;
	}
	if (!EVP_EncryptFinal_ex(aead, out + off, &outl))
		goto err;
	off += (size_t)outl;
	if (off != plen ||
	    EVP_CIPHER_CTX_ctrl(aead, EVP_CTRL_AEAD_GET_TAG, IMAGE_SEAL_TAG_LEN, out + off) != 1)
		goto err;
	return 0;
err:
	log_err("AES-256-GCM sealing of %s record %llu failed", image_rec_name(type),
		(unsigned long long)recno);
	return -1;
}

static int w_seal(struct image_writer *w, uint32_t type, uint64_t recno, const struct iovec *iov,
		  int n, size_t plen, uint8_t *out)
{
	return image_seal(w->aead, w->salt, recno, type, iov, n, plen, out);
}

static void w_chunk_reset(struct image_writer *w)
{
	w->nruns = 0;
	w->niov = 0;
	w->chunk_pages = 0;
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

/* The I/O helper's life: wait for a slot, write it, report, again. It
 * shares the caller's TLS (no CLONE_SETTLS), so it must stay away from libc
 * and errno: raw system calls only. */
static void w_helper_main(void *arg)
{
	struct image_writer *w = arg;

	for (;;) {
		int cmd = __atomic_load_n(&w->h_cmd, __ATOMIC_ACQUIRE);
		struct w_slot *s;
		long r;

		if (cmd == W_HELPER_IDLE) {
			sys_futex(&w->h_cmd, FUTEX_WAIT_PRIVATE, W_HELPER_IDLE, NULL);
			continue;
		}
		if (cmd == W_HELPER_EXIT)
			sys_exit_thread(0);
		s = &w->slot[w->h_slot];
		r = w_writev_raw(w->fd, w->sock, s->iov, s->niov);
		w->h_err = sys_failed(r) ? (int)-r : 0;
		__atomic_store_n(&w->h_cmd, W_HELPER_IDLE, __ATOMIC_RELEASE);
		sys_futex(&w->h_cmd, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

/* Starts the helper unless it runs or cannot run. true if it runs. */
static bool w_helper_start(struct image_writer *w)
{
	const unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
				    CLONE_THREAD | CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
	uint64_t all = ~0ull, old;
	char *top = (char *)w->h_stack + W_HELPER_STACK;
	long tid;

	if (w->h_tid || w->h_none)
		return !w->h_none;
	w->h_cmd = W_HELPER_IDLE;
	w->h_err = 0;
	/* Born with every signal blocked: no handler of the application may
	 * run on it, and no process-wide signal is lost to it. */
	sys_rt_sigprocmask(SIG_SETMASK, &all, &old);
	tid = sys_clone_thread(flags, (void *)((uintptr_t)top & ~(uintptr_t)15), (void *)&w->h_tid,
			       0, w_helper_main, w);
	sys_rt_sigprocmask(SIG_SETMASK, &old, NULL);
	if (sys_failed(tid)) {
		log_debug("no I/O helper thread (clone: errno %ld); writing inline", -tid);
		w->h_none = true;
		return false;
	}
	/* It exits only when told to, so storing its tid here races with
	 * nothing; the kernel clears it when the thread is gone. */
	w->h_tid = (int)tid;
	return true;
}

/* Waits until the helper has written its slot. -1 after logging if that
 * write failed. */
static int w_helper_wait(struct image_writer *w)
{
	while (__atomic_load_n(&w->h_cmd, __ATOMIC_ACQUIRE) == W_HELPER_BUSY)
		sys_futex(&w->h_cmd, FUTEX_WAIT_PRIVATE, W_HELPER_BUSY, NULL);
	if (w->h_err) {
		const struct w_slot *s = &w->slot[w->h_slot];

		log_syserr(w->h_err, "write %zu bytes of the image at byte %llu", s->total,
			   (unsigned long long)s->at);
		w->h_err = 0;
		return -1;
	}
	return 0;
}

/* Ends the helper, if it runs, once its write is done: no thread of ours
 * outlives a stream (the engine would find it at the next suspend). */
static void w_helper_stop(struct image_writer *w)
{
	int tid;

	if (!w->h_tid)
		return;
	while (__atomic_load_n(&w->h_cmd, __ATOMIC_ACQUIRE) == W_HELPER_BUSY)
		sys_futex(&w->h_cmd, FUTEX_WAIT_PRIVATE, W_HELPER_BUSY, NULL);
	__atomic_store_n(&w->h_cmd, W_HELPER_EXIT, __ATOMIC_RELEASE);
	sys_futex(&w->h_cmd, FUTEX_WAKE_PRIVATE, 1, NULL);
	/* The kernel's CLONE_CHILD_CLEARTID wake is a shared-futex wake. */
	while ((tid = __atomic_load_n(&w->h_tid, __ATOMIC_ACQUIRE)) != 0)
		sys_futex(&w->h_tid, FUTEX_WAIT, tid, NULL);
}

void image_writer_restarted(struct image_writer *w)
{
	/* Its I/O helper lived in the old process: nothing to wait for. */
	w->h_tid = 0;
	w->h_cmd = W_HELPER_IDLE;
	w->h_err = 0;
}

void image_writer_begin(struct image_writer *w, int fd)
{
	struct stat st;

	w_helper_stop(w);
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
	w->fd = fd;
	w->sock = S_ISSOCK(st.st_mode);
	w->bytes = w->records = w->pages = 0;
	w->have_last = false;
	w->h_none = false;
	w->cur = 0;
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

static int w_fail(struct image_writer *w)
{
	w->state = W_FAILED;
	w_helper_stop(w);
	return -1;
}

/* Adds iov[0..n) to the stream's SHA-256; their length in *total. */
static int w_hash(struct image_writer *w, const struct iovec *iov, int n, size_t *total)
{
	int i;

	*total = 0;
	for (i = 0; i < n; i++) {
		if (iov[i].iov_len && !EVP_DigestUpdate(w->sha, iov[i].iov_base, iov[i].iov_len)) {
			log_err("SHA-256 of the image failed");
			return -1;
		}
		*total += iov[i].iov_len;
	}
	return 0;
}

/* Writes one record, whose header is iov[0], from the calling thread, after
 * whatever the helper is writing. */
static int w_emit(struct image_writer *w, struct iovec *iov, int n, bool hash)
{
	size_t total = 0;
	long r;
	int i;

	if (w->h_tid && w_helper_wait(w) < 0)
		return w_fail(w);
	if (hash && w_hash(w, iov, n, &total) < 0)
		return w_fail(w);
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

/* Seals the chunk being built (compress, CRC, hash) and hands it to the
 * helper, or writes it here if there is none; the next chunk is built in
 * the other slot. */
static int w_flush(struct image_writer *w)
{
	struct w_slot *s = &w->slot[w->cur];
	struct w_pages_head *h = &s->head;
	size_t raw_len = (size_t)w->chunk_pages * IMAGE_PAGE_SIZE, head_len;
	struct iovec *data = &s->iov[1];
	uint32_t ndata = w->niov, crc, i;
	long r;

	if (!w->chunk_pages)
		return 0;
	h->pg = (struct image_pages){ .area = w->area, .nruns = w->nruns,
				      .codec = IMAGE_CODEC_RAW, .raw_len = (uint32_t)raw_len,
				      .stored_len = (uint32_t)raw_len };
	if (w->level) {
		const void *src = data[0].iov_base;
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
		z = ZSTD_compress2(w->cctx, s->zout, w->zout_cap, src, raw_len);
		if (ZSTD_isError(z)) {
			/* Cannot happen with a workspace sized for the level;
			 * storing raw keeps the checkpoint. */
			if (!w->warned_zstd)
				log_warn("zstd: %s; storing pages uncompressed",
					 ZSTD_getErrorName(z));
			w->warned_zstd = true;
		} else if (z < raw_len) {
			h->pg.codec = IMAGE_CODEC_ZSTD;
			h->pg.stored_len = (uint32_t)z;
			data[0] = (struct iovec){ s->zout, z };
		}
	}
	head_len = sizeof(h->pg) + w->nruns * sizeof(struct image_run);
	if (w->seal) {
		/* Encrypt-into-buffer replaces the zero-copy write. */
		size_t plen = head_len + h->pg.stored_len;

		s->iov[0] = (struct iovec){ &h->pg, head_len };
		if (w_seal(w, IMAGE_REC_PAGES, w->records, s->iov, (int)ndata + 1, plen,
			   s->sealed) < 0)
			return w_fail(w);
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
	if (w_hash(w, s->iov, s->niov, &s->total) < 0)
		return w_fail(w);
	s->at = w->bytes;
	w->bytes += s->total;
	w->records++;
	w->pages += w->chunk_pages;

	if (w_helper_start(w)) {
		if (w_helper_wait(w) < 0)	/* the previous chunk, from the other slot */
			return w_fail(w);
		w->h_slot = w->cur;
		__atomic_store_n(&w->h_cmd, W_HELPER_BUSY, __ATOMIC_RELEASE);
		sys_futex(&w->h_cmd, FUTEX_WAKE_PRIVATE, 1, NULL);
	} else {
		r = w_writev_raw(w->fd, w->sock, s->iov, s->niov);
		if (sys_failed(r)) {
			log_syserr((int)-r, "write %zu bytes of the image at byte %llu", s->total,
				   (unsigned long long)s->at);
			return w_fail(w);
		}
	}
	w->cur ^= 1;
	w_chunk_reset(w);
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
		if (w_seal(w, type, w->records, iov, 2, alen + blen, w->rec_sealed) < 0)
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
	struct w_slot *s = &w->slot[w->cur];
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
		if (w_seal(w, IMAGE_REC_TRAILER, w->records, &iov[1], 1, sizeof(t),
			   w->rec_sealed) < 0)
			return w_fail(w);
		iov[1] = (struct iovec){ w->rec_sealed, sizeof(t) + IMAGE_SEAL_TAG_LEN };
	}
	rh = (struct image_rec_hdr){ .type = IMAGE_REC_TRAILER,
				     .crc = image_crc32c(0, iov[1].iov_base, iov[1].iov_len),
				     .len = iov[1].iov_len };
	iov[0] = (struct iovec){ &rh, sizeof(rh) };
	if (w_emit(w, iov, 2, false) < 0)
		return -1;
	w_helper_stop(w);
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
