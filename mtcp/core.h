/* ELF core files from checkpoint images, for `cryo_image export-core`: the
 * memory of the checkpointed process as one PT_LOAD segment per area, and
 * one note set per thread, so that `gdb PROGRAM CORE` shows every thread's
 * backtrace and variables as they were at the checkpoint. doc/export-core.md
 * says what the core holds and what it lacks. Hosted code (libelf). */
#ifndef CRYO_MTCP_CORE_H
#define CRYO_MTCP_CORE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/user.h>
#include "mtcp/image.h"

/* What core_export() wrote. */
struct core_result {
	char path[4096];	/* the core file */
	uint32_t nthreads;	/* NT_PRSTATUS notes */
	uint32_t nloads;	/* PT_LOAD segments */
	uint64_t size;		/* file size (zero pages are holes) */
	uint32_t nstale;	/* mapped files changed or gone: their pages are zero */
};

/* Writes the core of the image file `image` to `out` (NULL: "core.<pid>" in
 * the current directory, pid as the program knew it). The core is written
 * under a temporary name beside out, mode 0600, and renamed to out once
 * complete. The image is read twice, layout first and then the pages one
 * chunk at a time, so it must be a regular file, and memory use does not
 * grow with the image. Pages the image does not hold come from the mapped
 * file for file mappings, if it still has the size and mtime it had at the
 * checkpoint (one warning per file otherwise), and are zero (holes)
 * elsewhere. Returns 0 and fills *res (may be NULL), or -1 after logging
 * one error line (a damaged image, an unwritable out); on failure nothing
 * is left at out or under the temporary name. key: the 32-byte key of a
 * sealed image, or NULL; the core itself is written in clear (mode 0600). */
int core_export(const char *image, const char *out, const uint8_t *key, struct core_result *res);

/* The registers of a THREAD record as NT_PRSTATUS carries them (the kernel's
 * struct user_regs_struct): the interrupted registers (gregs); for a thread
 * that was not interrupted (the checkpoint thread: gregs zero), its resume
 * context ctx, as if it had just returned from sys_ctx_save(). orig_rax is
 * -1; cs and ss come from the record's csgsfs, else 0x33 and 0x2b. Pure. */
void core_thread_regs(const struct image_thread *t, struct user_regs_struct *regs);

#endif /* CRYO_MTCP_CORE_H */
