/* inotify_add_watch, wrapped: the kernel shows each watch in fdinfo by
 * inode (and by file handle, which only a process with CAP_DAC_READ_SEARCH
 * may open again), never by path. So every watch added through libc is
 * noted here: the inode and device it names, the absolute path the program
 * gave (relative paths are made absolute with the working directory of the
 * moment, symbolic links are not resolved) and its IN_DONT_FOLLOW and
 * IN_ONLYDIR flags. The event plugin looks paths up by inode at checkpoint
 * time (inotify_path_of).
 *
 * The table lives in ckpt_mem memory, so a restarted process still knows
 * its paths. Writers (the wrapper, any thread) take a lock; the reader runs
 * with every thread parked, maybe one inside the lock, so an entry becomes
 * visible only when whole (the count is published last). When the table is
 * full, older watches of the same inode are overwritten first; after that,
 * new paths are not noted (one warning) and the plugin falls back on the
 * file handle. */
#define LOG_PREFIX "inotify: "
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "mtcp/ckpt.h"
#include "mtcp/log.h"
#include "mtcp/nolibc/string.h"
#include "mtcp/wrap_signal.h"
#include "plugin/event/event.h"

#define NOTE_MAX 8192
#define NOTE_PATH 4096

struct note {
	uint64_t ino;
	uint32_t sdev;		/* kernel encoding: major << 20 | minor */
	uint32_t flags;		/* IN_DONT_FOLLOW | IN_ONLYDIR */
	char path[NOTE_PATH];
};

static struct note *notes;	/* NOTE_MAX entries, ckpt_mem */
static uint32_t nnotes;		/* published with release stores */
static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static int warned_full;

static uint32_t kernel_dev(dev_t d)
{
	return (uint32_t)(major(d) << 20 | minor(d));
}

/* Absolute form of path, without resolving links. 0, or -1. */
static int absolute(const char *path, char *out, size_t size)
{
	size_t n;

	if (path[0] == '/')
		return nolibc_strlcpy(out, path, size) < size ? 0 : -1;
	if (!getcwd(out, size))
		return -1;
	n = strlen(out);
	if (n + 1 + strlen(path) + 1 > size)
		return -1;
	if (n > 1)
		out[n++] = '/';
	strcpy(out + n, path);
	return 0;
}

static void note(const char *path, uint32_t mask)
{
	struct stat st;
	char abs[NOTE_PATH];
	uint32_t i, n;

	if (((mask & IN_DONT_FOLLOW) ? lstat(path, &st) : stat(path, &st)) < 0 ||
	    absolute(path, abs, sizeof(abs)) < 0)
		return;
	pthread_mutex_lock(&notes_lock);
	if (!notes)
		notes = ckpt_mem(NOTE_MAX * sizeof(*notes));
	if (!notes)
		goto out;
	n = __atomic_load_n(&nnotes, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++)
		if (notes[i].ino == st.st_ino && notes[i].sdev == kernel_dev(st.st_dev))
			break;
	if (i < n) {
		/* Same inode again: the newest path wins. Rewritten in place;
		 * a checkpoint in the middle finds the old or a torn path,
		 * which the restart checks against the inode. */
		notes[i].flags = mask & (IN_DONT_FOLLOW | IN_ONLYDIR);
		nolibc_strlcpy(notes[i].path, abs, sizeof(notes[i].path));
		goto out;
	}
	if (n >= NOTE_MAX) {
		if (!warned_full++)
			log_warn("more than %d watched paths: later ones are restored only by file handle", NOTE_MAX);
		goto out;
	}
	notes[n].ino = st.st_ino;
	notes[n].sdev = kernel_dev(st.st_dev);
	notes[n].flags = mask & (IN_DONT_FOLLOW | IN_ONLYDIR);
	nolibc_strlcpy(notes[n].path, abs, sizeof(notes[n].path));
	__atomic_store_n(&nnotes, n + 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&notes_lock);
}

CRYO_EXPORT int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	static int (*real)(int, const char *, uint32_t);
	int wd, saved;

	if (!real)
		real = (int (*)(int, const char *, uint32_t))dlsym(RTLD_NEXT, "inotify_add_watch");
	wd = real(fd, path, mask);
	if (wd >= 0) {
		saved = errno;
		note(path, mask);
		errno = saved;
	}
	return wd;
}

int inotify_path_of(uint64_t ino, uint32_t sdev, char *buf, size_t size, uint32_t *flags)
{
	uint32_t i, n = __atomic_load_n(&nnotes, __ATOMIC_ACQUIRE);

	for (i = 0; notes && i < n; i++) {
		if (notes[i].ino != ino || notes[i].sdev != sdev)
			continue;
		if (nolibc_strlcpy(buf, notes[i].path, size) >= size)
			return -1;
		*flags = notes[i].flags;
		return 0;
	}
	return -1;
}
