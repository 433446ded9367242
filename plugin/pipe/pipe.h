/* The pipe plugin: pipes and FIFOs with their data in flight, shared across
 * the processes of the computation (see pipe.c). */
#ifndef CRYO_PLUGIN_PIPE_PIPE_H
#define CRYO_PLUGIN_PIPE_PIPE_H
#include "plugin/plugin.h"

extern const struct cryo_plugin pipe_plugin;

#endif /* CRYO_PLUGIN_PIPE_PIPE_H */
