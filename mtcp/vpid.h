/* Virtual pids: a process of the computation keeps, for ever, the pids it
 * had in the first run (its own, its children's, its parent's, its process
 * group's and session's). Before any restart virtual and kernel pids are
 * the same; after one, the coordinator's pid map (COORD_PIDMAP) says which
 * kernel pid each virtual pid now is, and the wrappers of plugin/pid
 * translate at the libc boundary. doc/pids.md tells the whole story.
 *
 * The map holds two kinds of entries: processes (a virtual pid and the
 * kernel pid of that process now) and groups (a virtual process group or
 * session id and the kernel id of that group or session now: its leader
 * may be gone, or outside the computation, so it need not be a process of
 * the map). Pids of processes are looked up among processes only; ids of
 * groups and sessions among groups first, then processes (a leader's pid is
 * its group's id).
 *
 * All functions are async-signal-safe and never allocate once
 * vpid_map_reserve() has run; the lookups are safe in a vfork child. */
#ifndef CRYO_MTCP_VPID_H
#define CRYO_MTCP_VPID_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* This process's virtual pid; 0 before the library set it. */
pid_t vpid_self(void);
/* A new process (start, fork): its virtual pid is its kernel pid now. */
void vpid_set_self_from_kernel(void);
/* The same process after exec: keeps the virtual pid it had. */
void vpid_set_self(pid_t vpid);
/* The kernel pid of the process the library's state belongs to (set with
 * the virtual pid, and again after a restart: vpid_note_kernel_pid). A
 * different sys_getpid() means the caller is a vfork or clone child that
 * shares or copied this memory without becoming a process of its own. */
pid_t vpid_owner(void);
void vpid_note_kernel_pid(void);
/* Reserves the table (allocates: call while the threads run). 0 or -1. */
int vpid_map_reserve(void);
/* Forgets every mapping (a restart: the old kernel pids mean nothing). */
void vpid_map_reset(void);
/* How many times the map was reset: a call that carried a kernel pid into
 * the kernel and fails after this changed was restarted by the kernel
 * with a pid of the old incarnation, and must be made again. */
unsigned vpid_epoch(void);
/* Adds vpid -> kernel pid, a process. */
void vpid_map_add(pid_t vpid, pid_t real);
/* Adds a virtual process group or session id -> its kernel id now. */
void vpid_map_add_group(pid_t vid, pid_t real);
/* Entries of the map (both kinds); 0 before any restart. */
size_t vpid_map_count(void);
/* The i-th entry (i < vpid_map_count()): 0, with *group 1 for a group
 * entry; -1 out of range. For passing the map across exec. */
int vpid_map_get(size_t i, pid_t *vpid, pid_t *real, int *group);
/* Up to max virtual pids of the map's processes (a restarted group), this
 * process's own included; the count. */
size_t vpid_map_list(pid_t *vpids, size_t max);
/* Kernel pid for a virtual one, and back; identity when unknown. */
pid_t vpid_to_real(pid_t vpid);
pid_t vpid_to_virt(pid_t real);
/* The same for process group and session ids. */
pid_t vpid_group_to_real(pid_t vid);
pid_t vpid_group_to_virt(pid_t real);
/* 1 if a new process with kernel pid k would be ambiguous: k is a virtual
 * id the computation still uses (a process, a group, this process) or the
 * kernel id of an entry (a process gone since, whose id the kernel gave
 * out again). Such a child is discarded and forked again. */
int vpid_conflicts(pid_t k);
/* The kernel's getpid(), bypassing the wrapper. */
pid_t vpid_kernel_pid(void);

#endif /* CRYO_MTCP_VPID_H */
