/* net.h - socket helpers: listeners with SO_REUSEPORT, non-blocking connects, address text.
 * Low layer: returns -errno, never logs. */
#ifndef VERGE_CORE_NET_H
#define VERGE_CORE_NET_H

#include "core/config.h"

/* A non-blocking listening socket on addr (IPv6 sockets are v6-only), with SO_REUSEPORT
 * so each worker has its own. Returns the fd or -errno. */
int net_listen(const struct config_addr *addr, int backlog);

/* Start a non-blocking TCP connect to sa. Returns the fd (connect in progress or done)
 * or -errno (e.g. -ECONNREFUSED for a local refusal detected at once). */
int net_connect(const struct sockaddr *sa, socklen_t salen);

/* The pending error of a socket whose connect finished (SO_ERROR): 0 or an errno value. */
int net_socket_error(int fd);

/* "1.2.3.4" / "::1" without port. */
void net_ip_text(const struct sockaddr *sa, char *out, size_t outlen);
/* "1.2.3.4:80" / "[::1]:80". */
void net_addr_text(const struct sockaddr *sa, char *out, size_t outlen);

#endif
