/* Virtual pids: a process of the computation keeps, for ever, the pids it
 * had in the first run (its own, its children's, its parent's). Before any
 * restart virtual and kernel pids are the same; after one, the coordinator's
 * pid map (COORD_PIDMAP) says which kernel pid each virtual pid now is, and
 * the wrappers of plugin/pid translate at the libc boundary.
 * All functions are async-signal-safe and never allocate once
 * vpid_map_reserve() has run. */
#ifndef CRYO_MTCP_VPID_H
#define CRYO_MTCP_VPID_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* This process's virtual pid; 0 before the library set it. */
pid_t vpid_self(void);
/* A new process (start, fork): its virtual pid is its kernel pid now. */
void vpid_set_self_from_kernel(void);
/* Reserves the table (allocates: call while the threads run). 0 or -1. */
int vpid_map_reserve(void);
/* Forgets every mapping (a restart: the old kernel pids mean nothing). */
void vpid_map_reset(void);
/* Adds vpid -> kernel pid. */
void vpid_map_add(pid_t vpid, pid_t real);
/* Up to max virtual pids of the map (the processes of a restarted group),
 * this process's own included; the count. */
size_t vpid_map_list(pid_t *vpids, size_t max);
/* Kernel pid for a virtual one, and back; identity when unknown. */
pid_t vpid_to_real(pid_t vpid);
pid_t vpid_to_virt(pid_t real);
/* The kernel's getpid(), bypassing the wrapper. */
pid_t vpid_kernel_pid(void);

#endif /* CRYO_MTCP_VPID_H */
