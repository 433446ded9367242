/* The shm plugin: shared anonymous memory stays shared between the
 * processes of the computation after a restart (see shm.c). */
#ifndef CRYO_PLUGIN_SHM_SHM_H
#define CRYO_PLUGIN_SHM_SHM_H
#include "plugin/plugin.h"

extern const struct cryo_plugin shm_plugin;

#endif /* CRYO_PLUGIN_SHM_SHM_H */
