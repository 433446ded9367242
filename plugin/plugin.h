/* The plugin API of libcryo.so: one const struct of callbacks per kind of
 * kernel resource, called at fixed points of a checkpoint and a restart.
 * Built-in plugins are listed in plugin/registry.c, whose array is the only
 * place that fixes their order.
 *
 * Contexts of the hooks (each returns 0, or -1 after logging):
 *   init      in the library constructor, before main(); may allocate.
 *   pre_ckpt  SUSPEND, threads still running: reserve what ckpt needs.
 *   ckpt      WRITE, every user thread parked: no malloc, no stdio, no
 *             locks a parked thread may hold. State kept in the plugin's
 *             own memory (ckpt_mem) is in the image and is there again
 *             after a restart. A failure aborts the checkpoint.
 *   resume    RESUME, threads still parked, after a checkpoint (not after a
 *             restart).
 *   restart   in the restarted process, threads still parked, before the
 *             coordinator is contacted: rebuild the kernel objects.
 * init, pre_ckpt and ckpt run in array order; resume and restart in reverse. */
#ifndef CRYO_PLUGIN_PLUGIN_H
#define CRYO_PLUGIN_PLUGIN_H

#define CRYO_PLUGIN_API 1

struct cryo_plugin {
	const char *name;
	int api;		/* CRYO_PLUGIN_API */
	int (*init)(void);
	int (*pre_ckpt)(void);
	int (*ckpt)(void);
	int (*resume)(void);
	int (*restart)(void);
};

/* Runs one hook of every plugin in order (resume and restart: reverse).
 * init/pre_ckpt/ckpt stop at the first failure and return -1; resume and
 * restart run every plugin and return -1 if any failed. */
enum plugin_hook { PLUGIN_INIT, PLUGIN_PRE_CKPT, PLUGIN_CKPT, PLUGIN_RESUME, PLUGIN_RESTART };
int plugin_run(enum plugin_hook hook);

#endif /* CRYO_PLUGIN_PLUGIN_H */
