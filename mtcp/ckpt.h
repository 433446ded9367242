/* Internal interfaces of the in-process engine (libcryo.so): the checkpoint
 * thread (ckpt_thread.c), suspending and resuming the user threads
 * (threads.c), reading the address space (maps.c) and the process-wide
 * kernel state (proc.c). Not installed, not seen by plugins. */
#ifndef CRYO_MTCP_CKPT_H
#define CRYO_MTCP_CKPT_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "mtcp/image.h"
#include "mtcp/restart_info.h"
#include "mtcp/sys.h"

#define CKPT_FD_RESERVE 64	/* fds the library keeps at the top of the table */
#define CKPT_SIGPOOL 1024	/* pending signals kept across a checkpoint */

/* ---- threads.c ---- */

enum slot_state { SLOT_SIGNALED = 1, SLOT_SUSPENDED = 2, SLOT_GONE = 3, SLOT_RESTARTED = 4 };

/* One user thread (or the checkpoint thread) during a checkpoint. */
struct ckpt_slot {
	pid_t tid;		/* kernel tid now */
	volatile int state;	/* enum slot_state */
	struct sys_ctx ctx;	/* where the restorer resumes it */
	struct image_thread rec;
};

/* The signal that parks threads; SIGRTMAX-1 unless CRYO_CKPT_SIGNAL says. */
extern int ckpt_signal;

/* Installs the park handler; learns glibc's tid field. 0, or -1 after logging. */
int threads_init(void);
/* Makes room for every thread now running (allocates: call before
 * suspending). 0, or -1 after logging. */
int threads_prepare(void);
/* Parks every thread but the caller in the handler, saving its state, and
 * records the caller as the checkpoint thread. Async-signal-safe, no
 * allocation. 0, or -1 after logging (threads already parked stay parked). */
int threads_suspend(void);
/* The parked threads (and the checkpoint thread, last); valid until resume. */
struct ckpt_slot *threads_slots(size_t *n);
/* Releases the parked threads. */
void threads_resume(void);
/* Restart path: waits until every user thread of the image is running in
 * the new process, then updates the tid map. */
void threads_wait_restarted(void);
/* The checkpoint thread's own slot (filled by threads_suspend). */
struct ckpt_slot *threads_self(void);
/* Fills a thread record with the calling thread's kernel state. */
void threads_fill_record(struct image_thread *rec, const ucontext_t *uc);
/* Virtual tid -> kernel tid after a restart (identity when unknown), and back. */
pid_t threads_real_tid(pid_t vtid);
pid_t threads_virt_tid(pid_t tid);
/* Offset of glibc's tid field in struct pthread, or -1. */
extern long threads_tid_offset;
/* Pending signals saved at the last checkpoint. */
extern struct image_siginfo ckpt_sigpool[CKPT_SIGPOOL];
extern volatile int ckpt_nsig;

/* ---- maps.c ---- */

struct maps_area {
	struct image_area a;
	const char *path;		/* into the scanned maps text */
	uint32_t run_first, nruns;	/* into the run list */
	uint32_t keep_first, nkeep;	/* into the kept runs (incremental images) */
};

/* Reads /proc/self/maps and /proc/self/pagemap into memory reserved with
 * mmap (no malloc), deciding what each area is and which pages to save.
 * Runs with the threads parked. 0, or -1 after logging. */
int maps_scan(void);
/* The result of the last scan. */
struct maps_area *maps_areas(size_t *n);
struct image_run *maps_runs(size_t *n);
/* Writes the PARENT record of an incremental image and the AREA records,
 * then (maps_write_pages) its KEEP records and the PAGES records. */
int maps_write_areas(struct image_writer *w);
int maps_write_pages(struct image_writer *w);
/* After the image is complete (or failed): areas made readable for the scan
 * get their protection back, scratch memory is released. */
void maps_done(void);
/* Excludes [start, end) from saved pages (the library's scratch memory). */
void maps_exclude(uint64_t start, uint64_t end);
/* The pages of [start, end) are read from copy instead, by the next scan
 * and write (a copy-on-write writer's frozen copy of shared memory,
 * mtcp/cow.c); cleared by maps_done. 0, or -1 after logging. */
#define MAPS_REDIRECT_MAX 256
int maps_redirect(uint64_t start, uint64_t end, const void *copy);

/* ---- proc.c ---- */

/* Fills the PROCESS record's kernel-state fields (mm, auxv, vdso, signal
 * actions, cwd, exe, umask) and saves the itimers. Threads parked. */
int proc_save(struct image_process *p);
/* After a restart: signal actions, itimers, cwd, umask from p. */
void proc_restore(const struct image_process *p);
/* Re-queues the pending signals of tid (0 = process-wide) from the pool. */
void proc_requeue_signals(pid_t vtid);
/* Dequeues this thread's own pending signals (or, shared, the process's)
 * into the pool. */
void proc_drain_signals(pid_t vtid, int shared);

/* ---- ckpt_thread.c ---- */

/* The library's restart mailbox, filled by the restorer. */
extern struct cryo_restart_info cryo_restart_info_g;
/* Memory outside malloc (anonymous mmap), safe while threads are frozen.
 * ckpt_mem's contents are saved in images like any memory; ckpt_scratch's
 * are not (they come back as zeros after a restart). NULL after logging. */
void *ckpt_mem(size_t len);
void *ckpt_scratch(size_t len);
/* The lowest fd the library keeps for itself (the application's are below). */
int ckpt_fd_base(void);
/* Moves fd into the library's range (close-on-exec); the new fd, or fd. */
int ckpt_reserve_fd(int fd);
/* The computation's id (the coordinator's; the same after a restart). */
uint64_t ckpt_comp_id(void);

#endif /* CRYO_MTCP_CKPT_H */
