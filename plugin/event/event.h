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

/* The path the program named when it added a watch on the inode (ino, on
 * the device the kernel calls sdev, major << 20 | minor), copied into buf
 * (size bytes), and the IN_DONT_FOLLOW/IN_ONLYDIR flags it used into
 * *flags. 0, or -1 if no wrapped inotify_add_watch saw that inode.
 * Async-signal-safe, no allocation: called with the threads parked. */
int inotify_path_of(uint64_t ino, uint32_t sdev, char *buf, size_t size, uint32_t *flags);

#endif /* CRYO_PLUGIN_EVENT_EVENT_H */
