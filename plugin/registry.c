/* The built-in plugins and the order they run in (see plugin.h). */
#define LOG_PREFIX "plugin: "
#include <stddef.h>
#include "mtcp/log.h"
#include "plugin/event/event.h"
#include "plugin/fd/fd.h"
#include "plugin/pid/pid.h"
#include "plugin/pipe/pipe.h"
#include "plugin/pty/pty.h"
#include "plugin/shm/shm.h"
#include "plugin/socket/socket.h"
#include "plugin/zombie/zombie.h"
#include "plugin/plugin.h"
#include "plugin/timer/timer.h"

static const struct cryo_plugin *const registry[] = {
	&pid_plugin,	/* first: the others may record virtual pids */
	&event_plugin,	/* before fd (and pipe, socket): at restart, after them */
	&timer_plugin,
	&fd_plugin,
	&socket_plugin,	/* after event: epoll is remade after the sockets it watches */
	&pipe_plugin,
	&pty_plugin,
	&shm_plugin,
	&zombie_plugin,	/* ended children not yet reaped */
};

#define NPLUGINS (sizeof(registry) / sizeof(registry[0]))

static int (*hook_of(const struct cryo_plugin *p, enum plugin_hook h))(void)
{
	switch (h) {
	case PLUGIN_INIT:
		return p->init;
	case PLUGIN_PRE_CKPT:
		return p->pre_ckpt;
	case PLUGIN_CKPT:
		return p->ckpt;
	case PLUGIN_RESUME:
		return p->resume;
	case PLUGIN_RESTART:
		return p->restart;
	case PLUGIN_ELECT:
		return p->elect;
	case PLUGIN_DRAIN:
		return p->drain;
	case PLUGIN_REFILL:
		return p->refill;
	case PLUGIN_RESTART_SHARE:
		return p->restart_share;
	case PLUGIN_RESTART_REFILL:
		return p->restart_refill;
	case PLUGIN_RESTART_RESUME:
		return p->restart_resume;
	}
	return NULL;
}

int plugin_run(enum plugin_hook hook)
{
	int reverse = hook != PLUGIN_INIT && hook != PLUGIN_PRE_CKPT && hook != PLUGIN_ELECT &&
		      hook != PLUGIN_DRAIN && hook != PLUGIN_CKPT, ret = 0;
	size_t i;

	for (i = 0; i < NPLUGINS; i++) {
		const struct cryo_plugin *p = registry[reverse ? NPLUGINS - 1 - i : i];
		int (*fn)(void) = hook_of(p, hook);

		if (!fn || fn() == 0)
			continue;
		log_debug("plugin %s failed hook %d", p->name, (int)hook);
		ret = -1;
		if (!reverse)
			break;
	}
	return ret;
}
