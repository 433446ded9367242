/* The plugin API of libcryo.so: one const struct of callbacks per kind of
 * kernel resource, called at fixed points of a checkpoint and a restart.
 * Built-in plugins are listed in plugin/registry.c, whose array is the only
 * place that fixes their order.
 *
 * Contexts of the hooks (each returns 0, or -1 after logging):
 *   init      in the library constructor, before main(); may allocate.
 *   pre_ckpt  SUSPEND, threads still running: reserve what ckpt needs.
 *   elect     ELECT, threads parked in every process of the computation:
 *             mark what this process may own (e.g. F_SETOWN on a shared
 *             description). Nothing may be decided yet: other processes
 *             are marking at the same time.
 *   drain     DRAIN, every process has marked: decide the owner of each
 *             shared object, and the owner reads out data in flight into
 *             its own memory (which the image then holds).
 *   ckpt      WRITE, every user thread parked: no malloc, no stdio, no
 *             locks a parked thread may hold. State kept in the plugin's
 *             own memory (ckpt_mem) is in the image and is there again
 *             after a restart. A failure aborts the checkpoint.
 *   refill    REFILL after a checkpoint (all images complete): drained
 *             data goes back.
 *   resume    RESUME, threads still parked, after a checkpoint (not after a
 *             restart): undo what elect and drain changed.
 *   restart   in the restarted process, threads still parked, before the
 *             coordinator is contacted: rebuild the process-local kernel
 *             objects. The share mailbox (plugin/share.h) is open.
 * The three restart_* hooks run at the restart barriers, when every process
 * of the restarted group is up and reachable through plugin/share.h; each
 * may rely on what every process sent in the hook before:
 *   restart_share   RESTART: owners create shared objects and send them.
 *   restart_refill  REFILL: receive, derive, send on; drained data back.
 *   restart_resume  RESUME, before the threads are released: last receive,
 *                   everything onto its fd number.
 * init, pre_ckpt, elect, drain and ckpt run in array order; the others in
 * reverse. */
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
	int (*elect)(void);
	int (*drain)(void);
	int (*refill)(void);
	int (*restart_share)(void);
	int (*restart_refill)(void);
	int (*restart_resume)(void);
};

/* Runs one hook of every plugin in order (or reverse, see above).
 * init, pre_ckpt, elect, drain and ckpt stop at the first failure and return
 * -1 (the checkpoint is aborted); the others run every plugin and return -1
 * if any failed. */
enum plugin_hook {
	PLUGIN_INIT,
	PLUGIN_PRE_CKPT,
	PLUGIN_ELECT,
	PLUGIN_DRAIN,
	PLUGIN_CKPT,
	PLUGIN_REFILL,
	PLUGIN_RESUME,
	PLUGIN_RESTART,
	PLUGIN_RESTART_SHARE,
	PLUGIN_RESTART_REFILL,
	PLUGIN_RESTART_RESUME,
};
int plugin_run(enum plugin_hook hook);

#endif /* CRYO_PLUGIN_PLUGIN_H */
