/* The timer plugin: POSIX timers (timer_create) saved at checkpoint time
 * and re-created after a restart with the same ids, notification, clock,
 * time left and interval (plugin/timer/timer.c), the timer_create and
 * timer_delete wrappers (SIGEV_THREAD_ID translation, SIGEV_THREAD run by
 * cryo's own helper thread), and the parser of /proc/self/timers
 * (plugin/timer/timer_parse.c, pure). */
#ifndef CRYO_PLUGIN_TIMER_TIMER_H
#define CRYO_PLUGIN_TIMER_TIMER_H
#include <stdint.h>
#include "plugin/plugin.h"

extern const struct cryo_plugin timer_plugin;

/* One timer of /proc/PID/timers:
 *   ID: 3
 *   signal: 14/0000000000000000      signal number / sigev_value
 *   notify: signal/pid.31245         SIGEV_SIGNAL | SIGEV_NONE | SIGEV_THREAD,
 *                                    "tid" for SIGEV_THREAD_ID
 *   ClockID: -6 */
struct timer_proc {
	int32_t id;
	int32_t signo;
	uint64_t value;		/* sigev_value, as the kernel shows it */
	int32_t notify;		/* SIGEV_* as given to timer_create */
	int32_t pid;		/* the pid or tid the notification goes to */
	int32_t clock;
};

/* Parses the next timer at *pos and moves *pos past it. 1 and *t filled,
 * 0 at the end of the text, -1 if the text is malformed. Pure. */
int timer_parse_next(const char **pos, struct timer_proc *t);

#endif /* CRYO_PLUGIN_TIMER_TIMER_H */
