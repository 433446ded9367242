/* Reading an image into a staging area and handing it to the restorer.
 * Hosted code inside cryo_restart (and cryo_image merge, which reads a
 * chain the same way). An incremental image is read with its whole chain
 * of parents (restart/chain.h, doc/incremental.md). */
#ifndef CRYO_RESTART_LOADER_H
#define CRYO_RESTART_LOADER_H
#include <stddef.h>
#include <stdint.h>
#include "mtcp/image.h"
#include "restart/chain.h"

struct loaded_area {
	struct image_area a;
	char *path;		/* malloc'd, NUL-terminated */
	uint64_t stage_off;	/* offset in the arena, if staged */
	int staged;
	struct image_run *runs;	/* pages to copy (copy kinds), malloc'd */
	size_t nruns, cap;
	uint64_t nkept;		/* pages the newest image keeps from its parent */
};

/* A record kept verbatim for cryo_image merge (SIGINFO, PLUGIN, FD, INDEX). */
struct loaded_record {
	uint32_t type;
	uint64_t len;
	void *data;		/* malloc'd */
};

struct loaded_image {
	const char *name;
	struct image_header hdr;
	struct image_process proc;
	struct loaded_area *areas;
	size_t nareas;
	struct image_thread *threads;
	size_t nthreads;
	char *arena;		/* staging arena (MAP_NORESERVE), NULL if empty */
	size_t arena_len;
	uint64_t bytes;		/* stream bytes read */
	uint64_t pages;
	/* Incremental images: the parent named by the newest one, and what
	 * the chain's reading needs (loader.c's business). */
	int has_parent;
	struct image_parent parent;
	int chain_len;		/* images read, the newest included */
	struct chain chain;
	struct chain_area *chain_areas;
	struct image_run *kept;	/* the newest's KEEP runs before staging, by area */
	uint32_t *kept_area;
	size_t nkept, kept_cap;
	/* loader_set_keep_records(1): the other records, for a merge. */
	struct loaded_record *records;
	size_t nrecords;
};

/* What the restarted process needs to know besides the image. */
struct loader_opts {
	char coord_host[256];	/* numeric */
	int coord_port;
	int log_level;		/* -1: keep the image's */
	const char *log_file;	/* NULL: stderr */
	int migrated;
	uint64_t t_restart_ns;	/* CLOCK_REALTIME when cryo_restart started */
	int ack_fd;		/* migration socket to confirm on, or -1 */
	uint32_t info_flags;	/* CRYO_RESTART_F_* for the restarted process (--keep-stdio, ...) */
};

/* Reads a whole image from fd, verifying every record and the trailer, and
 * stages its pages in memory placed clear of every saved area. An
 * incremental image's parents are read too, from name's directory,
 * newest first: a missing, damaged or wrong parent (not the image this one
 * was written after) is refused, naming it. 0, or -1 after logging one
 * line (nothing of the process is touched). */
int loader_read(int fd, const char *name, struct loaded_image *img);
/* Checks the image can be restored here (vDSO layout, files unchanged),
 * loads the restorer and jumps to it. Returns only on failure (-1, logged). */
int loader_exec(struct loaded_image *img, const struct loader_opts *opts);
void loader_free(struct loaded_image *img);
/* The 32-byte key of sealed images for every later read of an image (NULL:
 * none, the default). The loader keeps the pointer, not a copy. */
void loader_set_key(const uint8_t *key);
/* keep: loader_read keeps copies of the SIGINFO, PLUGIN, FD and INDEX
 * records (img->records) and fills every staged area's runs, anonymous
 * ones included: what cryo_image merge writes out. Default 0. */
void loader_set_keep_records(int keep);
/* The path of the parent named by an image at path (same directory), in
 * out. 0, or -1 if it does not fit. */
int loader_parent_path(const char *path, const char *parent, char *out, size_t size);
/* Reads only the HEADER and PROCESS records of the image at path (to plan
 * a process tree; the whole image is checked later by loader_read). 0, or
 * -1 after logging. */
int loader_peek(const char *path, struct image_header *hdr, struct image_process *proc);

#endif /* CRYO_RESTART_LOADER_H */
