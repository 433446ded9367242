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
/* Which one: 0, 1 or 2 (prefer, when several match, e.g. one terminal for
 * all three; -1 for none), else the first that matches, or -1. */
int stdio_outer_index(const struct stat *st, int prefer);
/* After a restart without --keep-stdio the restarting side's stdio is the
 * outer stdio: i (0-2) becomes st's object, or none when st is NULL. */
void stdio_set_outer(int i, const struct stat *st);
/* The current ids in CRYO_STDIO's format ("DEV:INO DEV:INO DEV:INO", "-"
 * for none), to pass on to the programs exec'd from now on. Library
 * memory, valid until the next call. */
const char *stdio_value(void);
/* Pure: parses "DEV:INO DEV:INO DEV:INO" ("-" for none, hex) into three
 * pairs; 0, or -1 if malformed. Unit-tested. */
int stdio_parse(const char *text, unsigned long long dev[3], unsigned long long ino[3], int have[3]);

#endif /* CRYO_PLUGIN_FD_STDIO_H */
