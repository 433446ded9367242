/* Copy-on-write checkpoints (doc/cow.md): the image is written by a child
 * process that sees the application's memory as it was when the state was
 * captured, while the application runs again.
 *
 * Called by the checkpoint thread (mtcp/ckpt_thread.c) only, with the
 * user threads parked unless said otherwise; nothing here allocates with
 * malloc. The state of one writer is kept per process (a forked child of
 * the application, or a restarted process, has none). */
#ifndef CRYO_MTCP_COW_H
#define CRYO_MTCP_COW_H
#include <stdint.h>

/* Writes the whole image to fd (the checkpoint thread's writer); 0, or -1
 * after logging; *bytes gets the image's size. Runs in the writer child. */
typedef int (*cow_write_fn)(int fd, uint32_t flags, uint64_t *bytes);

/* Reads CRYO_CKPT_MODE (constructor, before the environment is hidden):
 * "cow" or "full" (the default). Bad values: one warning, full. */
void cow_config(void);
/* 1 if this checkpoint's image is written by a child: the barrier asks for
 * it (COORD_BAR_COW) or CRYO_CKPT_MODE=cow. The caller leaves streams and
 * processes that exit after the checkpoint out. */
int cow_wanted(uint32_t bar_flags);

/* SUSPEND, threads still running (may allocate): reserves the memory the
 * writer child copies shared memory into. 0, or -1 after logging. */
int cow_prepare(uint32_t bar_flags);

/* WRITE: forks the writer (clone with no exit signal: the application's
 * wait() never sees it, no SIGCHLD) and, if the process has shared memory,
 * waits until the child holds its own copy of it; the child then calls
 * write_fn(fd, flags) and exits. 0: the writer runs (the caller closes its fd copy);
 * -1: the child failed (logged); -2: no child could be made (logged): the
 * caller writes the image itself, threads parked. */
int cow_start(int fd, uint32_t flags, cow_write_fn write_fn);
/* 1 while this process has a writer child whose image is not committed. */
int cow_active(void);
/* Waits for the writer child to end (threads may run). 0 with *bytes, or
 * -1 after logging (the image is not complete). */
int cow_finish(uint64_t *bytes);
/* The checkpoint is over (committed or aborted): a writer still running is
 * killed and reaped; threads blocked in cow_wait_idle go on. */
void cow_idle(void);
/* Any thread but the checkpoint thread, threads running: waits while this
 * process has a checkpoint in its copy-on-write window (from WRITE until
 * the checkpoint is complete: REFILL, or RESUME after an abort), so an exec
 * or exit() cannot lose the image under way or abort the checkpoint. */
void cow_wait_idle(void);
/* In a restarted process: the writer state in the image is not ours. */
void cow_forget(void);

#endif /* CRYO_MTCP_COW_H */
