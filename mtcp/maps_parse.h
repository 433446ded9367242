/* Parsing one line of /proc/PID/maps and deciding what kind of area it is.
 * Pure functions (no syscalls, no allocation, async-signal-safe), shared by
 * libcryo.so and cryo_restart and unit-tested on their own. */
#ifndef CRYO_MTCP_MAPS_PARSE_H
#define CRYO_MTCP_MAPS_PARSE_H
#include <stddef.h>
#include <stdint.h>
#include "mtcp/image.h"

/* Parses one line (without its newline; the line is modified: the path is
 * NUL-terminated in place and a " (deleted)" suffix cut off). Fills start,
 * end, pgoff, prot, dev, ino, kind and flags of *a and sets *path to the
 * path ("" for none) and *shared to 1 for an 's' mapping. 0, or -1 if the
 * line is malformed. */
int maps_parse_line(char *line, struct image_area *a, const char **path, int *shared);
/* 1 if path names the vdso block ([vdso], [vvar], [vvar_vclock]). */
int maps_is_vdso(const char *path);

#endif /* CRYO_MTCP_MAPS_PARSE_H */
