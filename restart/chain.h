/* Composing a chain of incremental images into one address space: the
 * bookkeeping restart/loader.c (cryo_restart, cryo_image merge) does while
 * it reads the chain from the newest image back to the full one.
 *
 * The newest image fixes the layout: its staged areas, each at an offset
 * of the staging arena. Each image of the chain stores some pages and
 * keeps others (their bytes are the parent's). Reading newest first, a
 * page takes its bytes from the first image that stores it, provided every
 * newer image kept it; a page no image provides stays zero (anonymous
 * memory) or the file's (private file mappings). Three bitmaps over the
 * arena's pages say, for the image being read: `have` (bytes known),
 * `want` (kept by every newer image, so this one's bytes count) and `next`
 * (kept by this one too: its parent's bytes count).
 *
 * Pure functions over caller-owned arrays (the bitmaps are malloc'd by
 * chain_init): no I/O, unit-tested in test/unit/restart/test_chain.c. */
#ifndef CRYO_RESTART_CHAIN_H
#define CRYO_RESTART_CHAIN_H
#include <stddef.h>
#include <stdint.h>

/* A staged area of the newest image: [start, end) at stage_off in the arena. */
struct chain_area {
	uint64_t start, end;	/* page aligned */
	uint64_t stage_off;	/* page aligned */
};

struct chain {
	const struct chain_area *areas;	/* sorted by start, not overlapping */
	size_t nareas;
	uint64_t npages;	/* pages of the arena */
	int level;		/* 0: the newest image; 1: its parent; ... */
	uint8_t *have, *want, *next;
};

/* Sets up the bitmaps for an arena of arena_len bytes (the areas stay the
 * caller's). 0, or -1 if out of memory (c is then empty). */
int chain_init(struct chain *c, const struct chain_area *areas, size_t nareas, uint64_t arena_len);
void chain_free(struct chain *c);
/* The arena page holding address addr, or -1 if no staged area does. */
int64_t chain_page(const struct chain *c, uint64_t addr);
/* The image being read keeps npages pages from addr. Returns 0, or -1
 * when one of them was stored by the same image already (a corrupt image). */
int chain_kept(struct chain *c, uint64_t addr, uint64_t npages);
/* The image being read stores the page at addr: 1 if its bytes are the
 * ones to use (the caller copies them into the arena; the page is then
 * known), 0 if not, -1 when the same image also keeps it (corrupt). */
int chain_stored(struct chain *c, uint64_t addr);
/* Done with one image: the pages it kept are wanted from its parent.
 * Returns how many are. */
uint64_t chain_next_level(struct chain *c);
/* 1 if the arena page holds bytes from some image. */
int chain_has(const struct chain *c, uint64_t page);

#endif /* CRYO_RESTART_CHAIN_H */
