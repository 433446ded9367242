/* The fd plugin: the process's open files, restored onto the same numbers. */
#ifndef CRYO_PLUGIN_FD_FD_H
#define CRYO_PLUGIN_FD_FD_H
#include "plugin/plugin.h"

extern const struct cryo_plugin fd_plugin;

/* Parses the "pos:" and "flags:" lines of /proc/PID/fdinfo/N. 0, or -1 if
 * either is missing. Pure: unit-tested. */
int fd_parse_fdinfo(const char *text, unsigned long long *pos, unsigned *flags);

#endif /* CRYO_PLUGIN_FD_FD_H */
