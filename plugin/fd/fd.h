/* The fd plugin: the process's open files, directories and devices,
 * restored onto the same numbers (doc/files.md). */
#ifndef CRYO_PLUGIN_FD_FD_H
#define CRYO_PLUGIN_FD_FD_H
#include "plugin/fd/fdinfo.h"	/* fd_parse_fdinfo, for plugin/fdscan.c */
#include "plugin/plugin.h"

extern const struct cryo_plugin fd_plugin;

#endif /* CRYO_PLUGIN_FD_FD_H */
