/* How new programs and new processes stay in the computation: the glue
 * between the checkpoint thread (mtcp/ckpt_thread.c, which owns the
 * process's identity and its coordinator connection) and the wrappers of
 * exec*, posix_spawn*, system and popen (mtcp/wrap_exec.c) and of fork,
 * vfork and clone (mtcp/wrap_fork.c). doc/pids.md tells the whole story.
 *
 * The program never sees cryo's variables: exec_env_init() takes every
 * CRYO_* variable out of environ in the constructor and keeps it; every
 * wrapper that starts a program hands them back to it (with LD_PRELOAD
 * naming libcryo.so) in the environment it passes to the kernel, plus, for
 * an exec of this very process, CRYO_EXEC: its identity (unique id,
 * computation, virtual pid), its coordinator connection (kept open across
 * the exec) and its pid map (in a memfd), so that the new program is the
 * same process of the computation. */
#ifndef CRYO_MTCP_WRAP_EXEC_H
#define CRYO_MTCP_WRAP_EXEC_H
#include <stddef.h>
#include <sys/types.h>

#define EXEC_ENV_IDENT "CRYO_EXEC"

/* ---- wrap_exec.c, for ckpt_thread.c ---- */

/* Keeps every CRYO_* variable but CRYO_EXEC and takes them all out of
 * environ (not CRYO_TEST_*: the test harness's own, test/lib/harness.h); notes libcryo.so's path for LD_PRELOAD. Constructor, after the
 * plugins' init (which may still read them). May allocate. */
void exec_env_init(void);
/* Replaces (or adds) a kept variable, e.g. the coordinator's address after
 * a restart. value is copied; NULL removes it. Threads running. */
void exec_env_set(const char *name, const char *value);

/* ---- ckpt_thread.c, for the wrappers ---- */

/* 1 if the caller runs in the process the library state belongs to; 0 in
 * the child of a vfork (or of a clone sharing memory) before it execs,
 * which is a new process of its own. */
int ckpt_is_owner(void);
/* This process is about to exec. Holds off the checkpoint thread (it
 * finishes the message it is handling, then leaves the next one in the
 * socket for the new program), lets the coordinator connection survive
 * the exec and writes "CRYO_EXEC=..." into ident (size n; empty when the
 * process is not in a computation). Always paired with ckpt_exec_end()
 * when the exec returns. Not async-signal-safe; not in a vfork child. */
void ckpt_exec_begin(char *ident, size_t n);
/* The exec failed: the connection is the library's again and the
 * checkpoint thread carries on. errno is kept. */
void ckpt_exec_end(void);
/* In the child of a fork done without fork() (clone without CLONE_VM):
 * what fork's child handler does, a process of its own joining the
 * computation. */
void ckpt_child_start(void);
/* A new child with kernel pid k would be ambiguous (doc/pids.md): the
 * pid map's rule plus this process's threads' virtual tids. */
int ckpt_pid_conflicts(pid_t k);
/* fork(): the parent must not be parked before its child is in the
 * computation, or the child would miss a checkpoint its parent is in.
 * ckpt_fork_begin (parent, before the fork) returns an fd to wait on, or -1
 * when this process is not in a computation, and tells the child's handler
 * to register synchronously and then write one byte to the other end;
 * ckpt_fork_wait (parent, after) waits for that byte (or the child's end)
 * and closes it. The caller blocks the checkpoint signal from before the
 * fork until after the wait. */
int ckpt_fork_begin(void);
void ckpt_fork_wait(int fd);

#endif /* CRYO_MTCP_WRAP_EXEC_H */
