/* Dirty-page tracking for incremental images, inside libcryo.so.
 *
 * With CRYO_INCREMENTAL=1, every image after the first stores only the
 * pages written since the image before it (its parent), and lists the
 * pages that are unchanged (KEEP records); doc/incremental.md tells the
 * whole story. This module finds those pages, and keeps the chain's state
 * (which image is the parent, how long the chain is).
 *
 * Two kernel mechanisms, probed at the first checkpoint (threads still
 * running), and one clear log line says which is used:
 *   uffd        userfaultfd write protection in asynchronous mode
 *               (UFFD_FEATURE_WP_ASYNC, UFFD_USER_MODE_ONLY when
 *               unprivileged): areas are registered with
 *               UFFDIO_REGISTER_MODE_WP; a write resolves in the kernel and
 *               only clears the page's protection bit; PAGEMAP_SCAN reports
 *               the written pages and protects them again in the same call.
 *   soft-dirty  /proc/self/pagemap bit 55, reset by writing 4 to
 *               /proc/self/clear_refs, where the kernel has it.
 * Neither: every image is full.
 *
 * Contexts: dirty_config() in the constructor; dirty_prepare() at SUSPEND
 * with the threads running (it may allocate and map); everything else on
 * the checkpoint thread with the user threads parked (raw syscalls, no
 * allocation). */
#ifndef CRYO_MTCP_DIRTY_H
#define CRYO_MTCP_DIRTY_H
#include <stddef.h>
#include <stdint.h>
#include "mtcp/image.h"

enum dirty_mode {
	DIRTY_NONE = 0,		/* no tracking: full images */
	DIRTY_UFFD = 1,		/* userfaultfd WP_ASYNC + PAGEMAP_SCAN */
	DIRTY_SOFT = 2,		/* soft-dirty bits + clear_refs */
};

/* PAGEMAP_SCAN's categories (linux/fs.h from 6.7; Debian's headers lack
 * them) and its output, struct page_region. */
#define DIRTY_PAGE_WRITTEN (1u << 1)
#define DIRTY_PAGE_FILE (1u << 2)
#define DIRTY_PAGE_PRESENT (1u << 3)
#define DIRTY_PAGE_SWAPPED (1u << 4)
#define DIRTY_PAGE_PFNZERO (1u << 5)

struct dirty_region {
	uint64_t start, end;	/* page aligned, end exclusive */
	uint64_t categories;	/* DIRTY_PAGE_* */
};

/* Reads CRYO_INCREMENTAL (1: incremental images), CRYO_INCREMENTAL_FULL
 * (every N-th image is a full one, default 10) and CRYO_DIRTY (auto, uffd,
 * soft-dirty, none: which tracking to use). */
void dirty_config(void);
/* 1 if CRYO_INCREMENTAL asked for incremental images (then images are
 * named by generation, see mtcp/ckpt_thread.c). */
int dirty_enabled(void);
/* SUSPEND, threads running: the first time (and after a fork or a
 * restart) probes the kernel, logs the mode once, reserves the scan
 * buffer. Never fails: without tracking, images are full. */
void dirty_prepare(void);
/* WRITE, threads parked, before the memory is scanned: decides whether
 * this image is incremental. full: a full image was asked for (cryo_command
 * --full); stream: the image goes to a socket (never incremental, and it
 * ends the chain). Returns 1 for an incremental image. */
int dirty_begin(int full, int stream);
/* This checkpoint: 1 if the image is incremental; the mode of tracking (a
 * full image still arms the tracking for the next one); the parent. */
int dirty_incremental(void);
enum dirty_mode dirty_tracking(void);
const struct image_parent *dirty_parent(void);

/* uffd mode, threads parked. Registers [start, end) (one whole area) for
 * write protection. 0, or -1 (logged at debug level: the area is then
 * saved in full every time). */
int dirty_register(uint64_t start, uint64_t end);
/* PAGEMAP_SCAN of [start, end) inside one registered area: the present or
 * swapped pages, in runs of equal categories, into out (at most max);
 * written pages are write-protected again in the same call. *walk_end:
 * where the scan stopped (end when it got through). The number of
 * regions, or -errno: -EPERM when the area is not registered. */
long dirty_scan(uint64_t start, uint64_t end, struct dirty_region *out, size_t max,
		uint64_t *walk_end);
/* soft-dirty mode: resets every soft-dirty bit of the process (after the
 * bits were read for this image). 0, or -1 after logging. */
int dirty_clear_soft(void);

/* After the image was written: name is its final path (NULL for a
 * stream), gen its generation, digest the SHA-256 of its stream. */
void dirty_written(const char *name, uint32_t gen, uint64_t upid, const uint8_t digest[32],
		   uint64_t bytes);
/* COMMIT done: the image just written is the parent of the next. */
void dirty_commit(void);
/* The checkpoint was aborted: if memory was scanned (protection bits
 * reset), the next image must be full. */
void dirty_abort(void);
/* A forked child (close_fd: its userfaultfd is the parent's) or a
 * restarted process (the fd number is not ours any more): no tracking
 * yet, the next image is full. */
void dirty_forget(int close_fd);

#endif /* CRYO_MTCP_DIRTY_H */
