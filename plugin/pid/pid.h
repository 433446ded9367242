/* The pid plugin: libc wrappers that show the program its virtual pids
 * (pid.c) and /proc paths that name them (proc_path.c). */
#ifndef CRYO_PLUGIN_PID_PID_H
#define CRYO_PLUGIN_PID_PID_H
#include <sys/types.h>
#include "plugin/plugin.h"

extern const struct cryo_plugin pid_plugin;

/* A virtual process or thread id (a thread of this process, else a
 * process) to the kernel's, and back; identity when unknown, 0 and
 * negative values untouched. */
pid_t pid_task_to_real(pid_t id);
pid_t pid_task_to_virt(pid_t id);

/* path with its /proc/<id>/ and /proc/<id>/task/<id>/ parts naming kernel
 * ids: path itself when nothing changes (always before a restart), else
 * buf (size n). Pure apart from the lookups; async-signal-safe. */
const char *proc_path_real(const char *path, char *buf, size_t n);
/* Resolves the real functions proc_path.c wraps (plugin init). */
void proc_path_init(void);

#endif /* CRYO_PLUGIN_PID_PID_H */
