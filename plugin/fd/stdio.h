/* The computation's outer stdio: what cryo_launch's stdin, stdout and
 * stderr were (CRYO_STDIO). An fd of any process that is one of those
 * objects (the user's terminal, a file or pipe the user redirected from or
 * to) belongs to the user, not to the computation: after a restart it is
 * left to what the restarting side provides, not restored. */
#ifndef CRYO_PLUGIN_FD_STDIO_H
#define CRYO_PLUGIN_FD_STDIO_H
#include <sys/stat.h>

/* Reads CRYO_STDIO (library init, before the environment is cleaned). */
void stdio_init(void);
/* 1 if st is one of the outer stdio objects (by device and inode). */
int stdio_is_outer(const struct stat *st);
/* Pure: parses "DEV:INO DEV:INO DEV:INO" ("-" for none, hex) into three
 * pairs; 0, or -1 if malformed. Unit-tested. */
int stdio_parse(const char *text, unsigned long long dev[3], unsigned long long ino[3], int have[3]);

#endif /* CRYO_PLUGIN_FD_STDIO_H */
