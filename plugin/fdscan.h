/* Walking the program's open fds with raw syscalls (threads parked). */
#ifndef CRYO_PLUGIN_FDSCAN_H
#define CRYO_PLUGIN_FDSCAN_H
#include <sys/stat.h>

/* Calls cb for every open fd of the program (below the library's reserved
 * range, the directory fd itself excluded), in no particular order, with
 * its fstat. Stops and returns cb's value when it is non-zero; 0 when
 * every fd was seen; -1 after logging if /proc/self/fd cannot be read. */
int fdscan_each(int (*cb)(int fd, const struct stat *st, void *arg), void *arg);

/* Reads /proc/self/fdinfo/FD's "pos:" and "flags:" (see fd_parse_fdinfo),
 * with O_CLOEXEC set from the fd's own FD_CLOEXEC. 0, or -1. */
int fdscan_info(int fd, unsigned long long *pos, unsigned *flags);

#endif /* CRYO_PLUGIN_FDSCAN_H */
