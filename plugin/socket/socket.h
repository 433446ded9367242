/* The socket plugin: AF_UNIX sockets and TCP/UDP over IPv4 and IPv6, with
 * their data in flight, across the processes of the computation (see
 * socket.c and doc/sockets.md). */
#ifndef CRYO_PLUGIN_SOCKET_SOCKET_H
#define CRYO_PLUGIN_SOCKET_SOCKET_H
#include "plugin/plugin.h"

extern const struct cryo_plugin socket_plugin;

#endif /* CRYO_PLUGIN_SOCKET_SOCKET_H */
