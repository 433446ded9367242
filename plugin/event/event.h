/* The event plugin: eventfd, signalfd, timerfd, inotify and epoll fds,
 * restored onto the same numbers (plugin/event/event.c), and the inotify
 * wrappers that remember which path each watch was added with
 * (plugin/event/inotify.c). */
#ifndef CRYO_PLUGIN_EVENT_EVENT_H
#define CRYO_PLUGIN_EVENT_EVENT_H
#include <stddef.h>
#include <stdint.h>
#include "plugin/plugin.h"

extern const struct cryo_plugin event_plugin;

enum event_kind { EVENT_EVENTFD = 1, EVENT_SIGNALFD, EVENT_TIMERFD, EVENT_INOTIFY, EVENT_EPOLL };

/* The kind of event fd /proc/self/fd's link text names, or 0 if it is not
 * one this plugin restores. Inline, so the fd plugin (which leaves these
 * fds alone) needs nothing else of this plugin. Async-signal-safe. */
static inline int event_link_kind(const char *link)
{
	static const char names[][24] = {
		"anon_inode:[eventfd]", "anon_inode:[signalfd]", "anon_inode:[timerfd]",
		"anon_inode:inotify", "anon_inode:[eventpoll]",
	};
	size_t i, j;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		for (j = 0; names[i][j] && names[i][j] == link[j]; j++)
			;
		if (!names[i][j] && !link[j])
			return (int)i + 1;
	}
	return 0;
}

/* The path the program named when it added a watch on the inode (ino, on
 * the device the kernel calls sdev, major << 20 | minor), copied into buf
 * (size bytes), and the IN_DONT_FOLLOW/IN_ONLYDIR flags it used into
 * *flags. 0, or -1 if no wrapped inotify_add_watch saw that inode.
 * Async-signal-safe, no allocation: called with the threads parked. */
int inotify_path_of(uint64_t ino, uint32_t sdev, char *buf, size_t size, uint32_t *flags);

#endif /* CRYO_PLUGIN_EVENT_EVENT_H */
