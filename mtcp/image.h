/* The cryo image format, version 3: one byte stream of framed records, the
 * same for a file and for a migration socket. Written front to back with no
 * seeking by mtcp/image.c; read by mtcp/image_read.c (cryo_restart,
 * cryo_image). The freestanding restorer includes this header for the
 * struct layouts only. doc/image-format.md is the specification; every
 * struct here is little-endian, fixed width and size-checked.
 *
 * Stream: HEADER PROCESS [PARENT] AREA* THREAD* SIGINFO* PLUGIN* [KEEP*] PAGES* TRAILER
 *
 * An incremental image (version 3) names its parent in a PARENT record and
 * lists in KEEP records the pages whose bytes are the parent's; a restart
 * composes the chain down to a full image (doc/incremental.md).
 *
 * All AREA records come before any PAGES record, so a reader knows the
 * whole address-space layout (and can stage memory out of its way) before
 * the first page arrives. */
#ifndef CRYO_MTCP_IMAGE_H
#define CRYO_MTCP_IMAGE_H
#include <stddef.h>
#include <stdint.h>

#define IMAGE_MAGIC	0x4f595243u	/* "CRYO" as little-endian bytes */
#define IMAGE_VERSION	3		/* bump on any layout change */
#define IMAGE_VERSION_MIN 1		/* oldest version the reader accepts */
#define IMAGE_ARCH_X86_64 62		/* EM_X86_64 */
#define IMAGE_PAGE_SIZE	4096u
#define IMAGE_CHUNK_MAX	(1u << 20)	/* page data per PAGES record, decoded */
#define IMAGE_RECORD_MAX (IMAGE_CHUNK_MAX + (1u << 20)) /* any record's payload */
#define IMAGE_SUFFIX	".cryo"
/* Sealed images: AES-256-GCM, a 96-bit nonce, a 16-byte tag after each
 * sealed payload (doc/image-format.md, "Encryption"). */
#define IMAGE_SEAL_KEY_LEN 32
#define IMAGE_SEAL_NONCE_LEN 12
#define IMAGE_SEAL_TAG_LEN 16
#define IMAGE_KEY_CHECK_LEN 16

enum image_rec_type {
	IMAGE_REC_HEADER = 1,	/* struct image_header; always first */
	IMAGE_REC_PROCESS = 2,	/* struct image_process */
	IMAGE_REC_AREA = 3,	/* struct image_area + path bytes */
	IMAGE_REC_THREAD = 4,	/* struct image_thread */
	IMAGE_REC_SIGINFO = 5,	/* struct image_siginfo: a pending signal */
	IMAGE_REC_FD = 6,	/* reserved for the fd plugin */
	IMAGE_REC_PLUGIN = 7,	/* struct image_plugin + data */
	IMAGE_REC_PAGES = 8,	/* struct image_pages + runs + data */
	IMAGE_REC_INDEX = 9,	/* reserved: offsets for random access */
	IMAGE_REC_TRAILER = 10,	/* struct image_trailer; always last */
	/* Version 3: incremental images. */
	IMAGE_REC_PARENT = 11,	/* struct image_parent; right after PROCESS */
	IMAGE_REC_KEEP = 12,	/* struct image_keep + runs: pages as in the parent */
};
#define IMAGE_REC_LAST IMAGE_REC_KEEP

/* Precedes every record. crc is CRC-32C (Castagnoli) of the payload only. */
struct image_rec_hdr {
	uint32_t type;		/* enum image_rec_type */
	uint32_t crc;
	uint64_t len;		/* payload bytes that follow, <= IMAGE_RECORD_MAX */
};
_Static_assert(sizeof(struct image_rec_hdr) == 16, "layout changed: bump IMAGE_VERSION");

#define IMAGE_HDR_STREAM	0x1u	/* written to a migration socket */
#define IMAGE_HDR_EXIT_AFTER	0x2u	/* the source exits once the image is whole */
#define IMAGE_HDR_SEALED	0x4u	/* every later record sealed with AES-256-GCM */
#define IMAGE_HDR_INCREMENTAL	0x8u	/* a PARENT record follows the PROCESS (version 3) */

struct image_header {
	uint32_t magic;		/* IMAGE_MAGIC */
	uint32_t version;	/* IMAGE_VERSION */
	uint32_t arch;		/* IMAGE_ARCH_X86_64 */
	uint32_t page_size;	/* IMAGE_PAGE_SIZE */
	uint64_t flags;		/* IMAGE_HDR_* */
	uint64_t time_ns;	/* CLOCK_REALTIME when the process was suspended */
	uint32_t nareas;	/* AREA records that follow */
	uint32_t nthreads;	/* THREAD records that follow */
	uint32_t generation;	/* checkpoint number of the computation, from 1 */
	uint32_t reserved;
	char kernel[64];	/* uname -r of the checkpointing host */
	char hostname[64];
	char build[64];		/* cryo version and libcryo build id */
	char program[64];	/* short program name (comm) */
	/* Version 2. Sealed images only (0 otherwise): the per-stream nonce
	 * salt and the key check value, both set by the writer. */
	uint64_t seal_salt;	/* random; nonce = salt (8 bytes) || record number (4) */
	uint8_t key_check[IMAGE_KEY_CHECK_LEN];	/* SHA-256(IMAGE_KEY_CHECK_TEXT || key)[0..16) */
};
_Static_assert(sizeof(struct image_header) == 328, "layout changed: bump IMAGE_VERSION");
/* A version 1 HEADER: the same fields up to program[]. */
#define IMAGE_HEADER_V1_SIZE 304
#define IMAGE_KEY_CHECK_TEXT "cryo image key check v2"

/* The kernel's k_sigaction for rt_sigaction(2) on x86-64. */
struct image_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};
_Static_assert(sizeof(struct image_sigaction) == 32, "layout changed: bump IMAGE_VERSION");

#define IMAGE_AUXV_MAX 64	/* uint64_t words: 32 (type, value) pairs */

struct image_process {
	uint64_t upid;		/* unique process id within the computation */
	uint64_t comp_id;	/* computation id */
	uint32_t pid, ppid;	/* virtual ids, as the program knows them */
	uint32_t pgid, sid;
	uint32_t umask;
	uint32_t nsiginfo;	/* SIGINFO records that follow the threads */
	/* prctl(PR_SET_MM_MAP) fields, from /proc/self/stat and brk(0). */
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv[IMAGE_AUXV_MAX];
	uint32_t auxv_words;	/* used words of auxv[] */
	uint32_t reserved;
	/* Where the kernel's [vvar], [vvar_vclock] and [vdso] block was. */
	uint64_t vdso_block_start, vdso_block_len;
	uint64_t vdso_start;	/* [vdso] itself, inside the block */
	/* Address of libcryo's struct cryo_restart_info in this image. */
	uint64_t restart_info;
	struct image_sigaction sigactions[64];	/* signal n at index n-1 */
	char cwd[4096];
	char exe[4096];		/* /proc/self/exe at checkpoint time */
};
_Static_assert(sizeof(struct image_process) == 10920, "layout changed: bump IMAGE_VERSION");

/* What an area is and how the restorer rebuilds it. */
enum image_area_kind {
	IMAGE_AREA_ANON = 1,	/* private anonymous (incl. [heap]): saved pages moved in */
	IMAGE_AREA_STACK = 2,	/* private anonymous, grows down: mapped, pages copied */
	IMAGE_AREA_FILE_PRIVATE = 3, /* private file mapping: file mapped, written pages copied */
	IMAGE_AREA_FILE_SHARED = 4, /* shared file mapping: file mapped, nothing saved */
	IMAGE_AREA_SHARED_ANON = 5, /* shared anonymous or memfd: new memfd, pages copied */
	IMAGE_AREA_VDSO = 6,	/* [vdso]/[vvar]/[vvar_vclock]: never saved, moved */
	IMAGE_AREA_SKIP = 7,	/* [vsyscall] and the like: recorded, not restored */
};

#define IMAGE_AREA_F_HEAP	0x1u	/* [heap] */
#define IMAGE_AREA_F_STACK	0x2u	/* [stack] of the main thread */
#define IMAGE_AREA_F_DELETED	0x4u	/* backing file was deleted: content saved */
#define IMAGE_AREA_F_LIBCRYO	0x8u	/* libcryo.so itself */

struct image_area {
	uint64_t start, end;	/* page aligned, end exclusive */
	uint64_t pgoff;		/* file offset for file mappings */
	uint32_t prot;		/* PROT_* as mapped at checkpoint time */
	uint32_t kind;		/* enum image_area_kind */
	uint32_t flags;		/* IMAGE_AREA_F_* */
	uint32_t path_len;	/* bytes of path after the struct, no NUL */
	uint64_t dev, ino;	/* file identity, checked at restart */
	uint64_t file_size;
	int64_t mtime_ns;
	uint64_t npages;	/* pages saved in PAGES records for this area */
};
_Static_assert(sizeof(struct image_area) == 80, "layout changed: bump IMAGE_VERSION");

#define IMAGE_THREAD_MAIN	0x1u	/* the thread-group leader */
#define IMAGE_THREAD_CKPT	0x2u	/* libcryo's checkpoint thread */

/* Offsets into image_thread.gregs: the order of ucontext's mcontext gregs. */
enum {
	IMAGE_REG_R8, IMAGE_REG_R9, IMAGE_REG_R10, IMAGE_REG_R11, IMAGE_REG_R12,
	IMAGE_REG_R13, IMAGE_REG_R14, IMAGE_REG_R15, IMAGE_REG_RDI, IMAGE_REG_RSI,
	IMAGE_REG_RBP, IMAGE_REG_RBX, IMAGE_REG_RDX, IMAGE_REG_RAX, IMAGE_REG_RCX,
	IMAGE_REG_RSP, IMAGE_REG_RIP, IMAGE_REG_EFL, IMAGE_REG_CSGSFS, IMAGE_REG_ERR,
	IMAGE_REG_TRAPNO, IMAGE_REG_OLDMASK, IMAGE_REG_CR2, IMAGE_NGREG
};

struct image_thread {
	uint32_t tid;		/* virtual tid */
	uint32_t flags;		/* IMAGE_THREAD_* */
	uint64_t fs_base, gs_base;
	/* Where the restorer resumes the thread: a struct sys_ctx in libcryo. */
	uint64_t ctx[8];	/* rbx rbp r12 r13 r14 r15 rsp rip */
	uint64_t clear_tid;	/* CLONE_CHILD_CLEARTID address (glibc's tid field) */
	uint64_t robust_list, robust_len;
	uint64_t rseq, rseq_len, rseq_sig;	/* rseq area registered by glibc, or 0 */
	uint64_t sigmask;	/* mask while parked (restored by the restorer) */
	uint64_t app_sigmask;	/* the application's mask at the interruption */
	uint64_t altstack_sp, altstack_size;
	uint32_t altstack_flags;
	uint32_t reserved;
	/* The application's registers where the checkpoint signal interrupted it
	 * (ucontext gregs, IMAGE_REG_* order) and its FXSAVE area: for
	 * cryo_image export-core. Zero for the checkpoint thread. */
	uint64_t gregs[IMAGE_NGREG];
	uint8_t fxsave[512];
};
_Static_assert(sizeof(struct image_thread) == 872, "layout changed: bump IMAGE_VERSION");

/* A signal pending at checkpoint time, re-queued at resume and restart. */
struct image_siginfo {
	uint32_t tid;		/* virtual tid it was directed to; 0: the process */
	uint32_t signo;
	uint8_t info[128];	/* siginfo_t as dequeued */
};
_Static_assert(sizeof(struct image_siginfo) == 136, "layout changed: bump IMAGE_VERSION");

struct image_plugin {
	char name[32];		/* plugin name, NUL padded */
	uint32_t version;
	uint32_t len;		/* bytes of data after the struct */
};
_Static_assert(sizeof(struct image_plugin) == 40, "layout changed: bump IMAGE_VERSION");

enum image_codec {
	IMAGE_CODEC_RAW = 0,	/* page data as is */
	IMAGE_CODEC_ZSTD = 1,	/* one zstd frame of the concatenated pages */
};

/* A run of consecutive pages of one area: page indexes from the area start. */
struct image_run {
	uint64_t first;
	uint64_t count;
};
_Static_assert(sizeof(struct image_run) == 16, "layout changed: bump IMAGE_VERSION");

/* PAGES payload: this struct, nruns struct image_run, then stored_len bytes
 * which decode to raw_len = (sum of run counts) * page_size bytes, the pages
 * of the runs in order. */
struct image_pages {
	uint32_t area;		/* index of the AREA record, from 0, in stream order */
	uint32_t nruns;
	uint32_t codec;		/* enum image_codec */
	uint32_t raw_len;	/* <= IMAGE_CHUNK_MAX */
	uint32_t stored_len;
	uint32_t reserved;
};
_Static_assert(sizeof(struct image_pages) == 24, "layout changed: bump IMAGE_VERSION");

/* Last record. sha256 covers every byte of the stream before this record's
 * header (all earlier headers and payloads). */
struct image_trailer {
	uint64_t records;	/* records before the trailer */
	uint64_t bytes;		/* stream bytes before the trailer */
	uint64_t pages;		/* pages stored in all PAGES records */
	uint64_t reserved;
	uint8_t sha256[32];
};
_Static_assert(sizeof(struct image_trailer) == 64, "layout changed: bump IMAGE_VERSION");

#define IMAGE_PARENT_NAME_MAX 256

/* Version 3. The parent of an incremental image: the image whose pages the
 * KEEP records refer to, in the same directory. */
struct image_parent {
	char name[IMAGE_PARENT_NAME_MAX];	/* its file name, no directory, NUL padded */
	uint8_t sha256[32];	/* the SHA-256 in its TRAILER (of its whole stream) */
	uint64_t bytes;		/* its TRAILER's bytes: its length before the trailer */
	uint64_t upid;		/* its PROCESS upid: the same process */
	uint32_t generation;	/* its HEADER generation, lower than this image's */
	uint32_t depth;		/* incremental images from the full one to this: 1 or more */
};
_Static_assert(sizeof(struct image_parent) == 312, "layout changed: bump IMAGE_VERSION");

/* Version 3. KEEP payload: this struct, then nruns struct image_run: pages
 * of the area (indexes from its start) whose bytes are those at the same
 * addresses in the parent, as the parent's chain restores them. */
struct image_keep {
	uint32_t area;		/* index of the AREA record */
	uint32_t nruns;		/* 1 to IMAGE_KEEP_MAX_RUNS */
};
_Static_assert(sizeof(struct image_keep) == 8, "layout changed: bump IMAGE_VERSION");
#define IMAGE_KEEP_MAX_RUNS 65536

#ifndef CRYO_FREESTANDING
#include <stdbool.h>

/* ---- Writer (mtcp/image.c) -------------------------------------------
 * Made with image_writer_new() while the application still runs (it
 * allocates every buffer and the zstd and SHA-256 contexts); afterwards
 * begin/record/pages/finish never allocate, so they may run while the
 * application's threads are frozen. Not thread-safe: one writer, one thread.
 * From a stream's first PAGES chunk until image_writer_finish() returns (or
 * the stream fails, or the writer is prepared again or freed) the writer
 * runs threads of its own: one packing thread per CPU (CRYO_THREADS, read
 * by image_writer_new()), a hasher and an I/O helper, bare clone(2)
 * threads with every signal blocked that touch neither errno nor TLS. The
 * stream is the same bytes whatever their number. */
struct image_writer;

/* level: zstd level, 0 = store raw. NULL after logging on failure. */
struct image_writer *image_writer_new(int level);
void image_writer_free(struct image_writer *w);
/* Re-arms the SHA-256 context (may allocate inside OpenSSL: call it before
 * the threads are frozen). image_writer_new() arms the first stream; each
 * later stream (and one after a failure) needs this call first. */
int image_writer_prepare(struct image_writer *w);
/* The writer's memory came back in a new process (a restart, which
 * captured it mid-stream): forgets the I/O helper thread it had, which does
 * not exist here, so that prepare() and free() do not wait for it. Never
 * allocates. */
void image_writer_restarted(struct image_writer *w);
/* Starts a stream on fd (a file or a connected socket; not closed by the
 * writer). The first record should be HEADER. */
void image_writer_begin(struct image_writer *w, int fd);
/* One record: payload is a followed by b (b may be NULL, blen 0). */
int image_writer_record(struct image_writer *w, uint32_t type, const void *a, size_t alen,
			const void *b, size_t blen);
/* Adds npages pages at addr (page index first in area `area`) to the current
 * PAGES chunk; whole chunks are emitted as they fill. Runs must be added in
 * increasing order within an area; a new area flushes the chunk. The pages
 * are not copied: the memory must stay readable and unchanged until
 * image_writer_finish() returns or the stream fails (the I/O thread may
 * still be writing a chunk from it), unless image_writer_set_live() is on. */
int image_writer_pages(struct image_writer *w, uint32_t area, uint64_t first, const void *addr,
		       uint64_t npages);
/* live: pages may change or be reused after image_writer_pages() returns
 * (pre-copy while the application runs, bounce buffers), so each page is
 * copied into the writer when added. Default false. Never allocates. */
void image_writer_set_live(struct image_writer *w, bool live);
/* key: the 32-byte AES-256 key to seal the next streams with, or NULL to
 * write them in clear. Call it before image_writer_prepare(), with the
 * threads running: it allocates the cipher context and the sealing buffers
 * on first use, and sets up the key schedule; a stream left open (one
 * captured by a checkpoint, after a restart) is abandoned. The writer keeps
 * no copy of the key itself, only OpenSSL's key schedule. With a key, the
 * writer fills in the HEADER's seal fields and flag, and seals every later
 * record (doc/image-format.md). 0, or -1 after logging. */
int image_writer_set_key(struct image_writer *w, const uint8_t *key);
/* Flushes the last chunk and writes the TRAILER. */
int image_writer_finish(struct image_writer *w);
/* The SHA-256 of the last stream finished (the one in its TRAILER), for an
 * incremental image to name its parent by. 0, or -1 if none was finished. */
int image_writer_digest(const struct image_writer *w, uint8_t out[32]);
/* Bytes of the stream so far (chunks still in the writer's threads not
 * included; all of them once image_writer_finish() returned), and pages
 * stored. */
uint64_t image_writer_bytes(const struct image_writer *w);
uint64_t image_writer_npages(const struct image_writer *w);

/* ---- Reader (mtcp/image_read.c) --------------------------------------
 * Reads records one by one from an fd (file, pipe or socket), checking each
 * record's CRC-32C and, at the TRAILER, the SHA-256 of the whole stream.
 * Every failure is logged as one clear line naming the image and offset.
 * Runs threads of its own (pthreads): from a regular file a fetcher that
 * reads, CRCs and hashes ahead, and, once pages are decoded, one zstd
 * decoding thread per CPU (CRYO_THREADS); none outlives the end of the
 * stream, a failure or image_reader_free(). Not thread-safe itself. */
struct image_reader;

/* name is used in messages. NULL after logging on failure. The fd is not
 * closed by the reader. */
struct image_reader *image_reader_new(int fd, const char *name);
void image_reader_free(struct image_reader *r);
/* key: the 32-byte key to open a sealed image with (copied), or NULL.
 * Call it before the first image_reader_next(). A sealed image read
 * without a key, or with another key, fails right after its (clear)
 * HEADER with one line ("X is encrypted: ...", "X: wrong key"); a plain
 * image reads the same with or without a key. 0, or -1 after logging. */
int image_reader_set_key(struct image_reader *r, const uint8_t *key);
/* 1 if the stream's HEADER (already returned) says it is sealed. */
int image_reader_sealed(const struct image_reader *r);
/* Reads the next record. Returns 1 with *type, *payload (valid until the
 * next call, owned by the reader) and *len; 0 after a TRAILER whose
 * checksum matched (end of stream); -1 after logging on any error:
 * truncation, a bad CRC, a bad SHA-256, a foreign or newer image. The first
 * record must be a valid HEADER (checked here). Payloads of a sealed
 * image come back opened (decrypted and authenticated), *len without the
 * tag; a version 1 HEADER comes back widened to struct image_header, the
 * new fields zero. */
int image_reader_next(struct image_reader *r, uint32_t *type, const void **payload, uint64_t *len);
/* Offset in the stream of the record last returned. */
uint64_t image_reader_offset(const struct image_reader *r);
/* After image_reader_next() returned 0: the SHA-256 of the stream (checked
 * against its TRAILER) and the TRAILER's bytes. 0, or -1 before the end. */
int image_reader_digest(const struct image_reader *r, uint8_t sha256[32], uint64_t *bytes);
/* Decodes a PAGES payload (already CRC-checked): checks it, then calls
 * put(arg, area, first_page, data, npages) for each run with the decoded
 * bytes. Returns 0, or -1 after logging. */
typedef int (*image_put_fn)(void *arg, uint32_t area, uint64_t first, const void *data,
			    uint64_t npages);
int image_reader_pages(struct image_reader *r, const void *payload, uint64_t len, image_put_fn put,
		       void *arg);

/* Checks a HEADER payload: magic, version, architecture, page size. Returns
 * 0, or -1 after logging why (name is the image name for the message). */
int image_check_header(const void *payload, uint64_t len, const char *name);
/* Human-readable names ("AREA", "anon"); never NULL. */
const char *image_rec_name(uint32_t type);
const char *image_area_kind_name(uint32_t kind);

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2.
 * Async-signal-safe. crc starts at 0. */
uint32_t image_crc32c(uint32_t crc, const void *buf, size_t len);
#endif /* CRYO_FREESTANDING */
#endif /* CRYO_MTCP_IMAGE_H */
