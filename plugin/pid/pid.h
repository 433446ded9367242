/* The pid plugin: libc wrappers that show the program its virtual pids. */
#ifndef CRYO_PLUGIN_PID_PID_H
#define CRYO_PLUGIN_PID_PID_H
#include "plugin/plugin.h"

extern const struct cryo_plugin pid_plugin;

#endif /* CRYO_PLUGIN_PID_PID_H */
