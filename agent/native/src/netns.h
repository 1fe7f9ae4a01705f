/* Sockets made inside another network namespace (the agent's health probes). */
#ifndef GROVE_NETNS_H
#define GROVE_NETNS_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A new, unconnected socket (domain AF_INET or AF_INET6, type SOCK_STREAM or
 * SOCK_DGRAM; non-blocking and close-on-exec) in the network namespace bound
 * at netns_path (/run/netns/x, /proc/PID/ns/net). Returns the fd, or -1 with
 * *err set. The calling thread stays in its own namespace. */
int grove_netns_socket (const char *netns_path, int domain, int type, grove_error_t *err);

#ifdef __cplusplus
}
#endif

#endif
