/* The input of the freestanding restorer: struct rst_args and the arrays it
 * points to, all built by restart/loader.c inside the restorer's own mapping
 * (offsets from the args, never pointers into memory that gets unmapped).
 * Shared by the hosted loader and the freestanding restorer. */
#ifndef CRYO_RESTART_RESTORER_RESTORER_H
#define CRYO_RESTART_RESTORER_RESTORER_H
#include <stdint.h>
#include "mtcp/image.h"
#include "mtcp/restart_info.h"
#include "restart/plan.h"

#define RST_MAGIC 0x72726f7473657263ull	/* "crestorr" */
#define RST_KEEP_MAX 8

/* One area to rebuild. stage: where its saved pages were put (0 if none). */
struct rst_area {
	uint64_t start, end;
	uint64_t pgoff;
	uint64_t stage;
	uint32_t prot, kind, flags;
	int32_t fd;		/* FILE_* kinds: open file, closed by the restorer */
	uint32_t run_first, nruns; /* copy kinds: runs[run_first..+nruns) */
	uint32_t map_flags_extra; /* MAP_NORESERVE etc. */
	uint32_t reserved;
};

/* One thread to recreate. */
struct rst_thread {
	struct image_thread t;
	uint64_t stack_top;	/* its temporary stack inside the restorer mapping */
};

/* The kernel's struct prctl_mm_map (linux/prctl.h), kept here so the
 * restorer needs no libc header. */
struct rst_mm_map {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;		/* pointer, set by the restorer */
	uint32_t auxv_size;
	uint32_t exe_fd;
};
_Static_assert(sizeof(struct rst_mm_map) == 104, "must match struct prctl_mm_map");

struct rst_args {
	uint64_t magic;		/* RST_MAGIC */
	int32_t log_fd, log_level;
	/* Ranges that survive the first sweep: the restorer mapping, the
	 * staging arena, the current vdso block. */
	struct plan_range keep[RST_KEEP_MAX];
	uint32_t nkeep;
	uint32_t nareas, nthreads, nruns;
	uint64_t areas_off, threads_off, runs_off; /* from the args' address */
	uint64_t stage_start, stage_len;	/* unmapped at the end */
	/* vDSO: the fresh block [vvar..vdso] now at vdso_cur, moved to
	 * vdso_dst (through vdso_tmp when the two overlap). len 0: no vdso. */
	uint64_t vdso_cur, vdso_dst, vdso_tmp, vdso_len;
	uint64_t task_size;	/* top of the user address space */
	struct rst_mm_map mm;
	uint64_t auxv[IMAGE_AUXV_MAX];
	uint32_t mm_valid;
	uint32_t reserved;
	uint64_t restart_info_addr;	/* where to copy info, 0 = nowhere */
	struct cryo_restart_info info;
	int32_t close_fds[8];	/* extra fds to close at the end, -1 = none */
};

/* Entry point: called on a stack inside the restorer mapping, never returns. */
void rst_entry(struct rst_args *args) __attribute__((noreturn));

#endif /* CRYO_RESTART_RESTORER_RESTORER_H */
