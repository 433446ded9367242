/* The zombie plugin: children that had ended but were not reaped yet when
 * the checkpoint was taken come back as such children (see zombie.c). */
#ifndef CRYO_PLUGIN_ZOMBIE_ZOMBIE_H
#define CRYO_PLUGIN_ZOMBIE_ZOMBIE_H
#include "plugin/plugin.h"

extern const struct cryo_plugin zombie_plugin;

#endif /* CRYO_PLUGIN_ZOMBIE_ZOMBIE_H */
