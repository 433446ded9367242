/* What kind of terminal an fd is (see pty.h). Pure, on its own so that
 * the fd plugin and its unit test need nothing else of plugin/pty. */
#include <sys/sysmacros.h>
#include "plugin/pty/pty.h"

int pty_kind(const struct stat *st)
{
	unsigned ma = major(st->st_rdev), mi = minor(st->st_rdev);

	if (!S_ISCHR(st->st_mode))
		return PTY_NONE;
	if (ma == 5 && mi == 2)
		return PTY_MASTER;
	if (ma == 5 && mi == 0)
		return PTY_CTTY;
	if (ma >= 136 && ma <= 143)
		return PTY_SLAVE;
	return PTY_NONE;
}
