/* The pty plugin: pseudo-terminals (their masters and slaves), their modes
 * and window size, and the controlling terminal of a session (see pty.c). */
#ifndef CRYO_PLUGIN_PTY_PTY_H
#define CRYO_PLUGIN_PTY_PTY_H
#include <sys/stat.h>
#include "plugin/plugin.h"

extern const struct cryo_plugin pty_plugin;

enum pty_kind { PTY_NONE = 0, PTY_MASTER = 1, PTY_SLAVE = 2, PTY_CTTY = 3 };

/* What st (an fstat of an fd) is: a pty master (/dev/ptmx), a slave
 * (/dev/pts/N), /dev/tty (the controlling terminal), or neither. Pure. */
int pty_kind(const struct stat *st);

#endif /* CRYO_PLUGIN_PTY_PTY_H */
