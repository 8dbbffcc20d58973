/* connlimit.h - visitor connections counted across all workers, in total and per client
 * address (an IPv4 address; the /64 of an IPv6 one, since one host gets a whole /64), so
 * that neither one address nor everyone together can take every file descriptor. */
#ifndef VERGE_EDGE_CONNLIMIT_H
#define VERGE_EDGE_CONNLIMIT_H

#include "core/base.h"

#include <sys/socket.h>

enum conn_limit_result {
    CONN_LIMIT_OK = 0,
    CONN_LIMIT_TOTAL,      /* max_total connections are open */
    CONN_LIMIT_PER_CLIENT, /* max_per_client connections from this address are open */
};

/* The total used when max_total is 0 ("auto"); main sets it from the open-files limit
 * once at start. Before that, 0 means no total limit. */
void conn_limit_set_auto(uint64_t max_total);
uint64_t conn_limit_auto(void);

/* Count a new connection from peer, unless a limit is reached (max_per_client 0: no
 * limit). A refused connection is not counted and must not be released. Thread-safe. */
enum conn_limit_result conn_limit_acquire(const struct sockaddr *peer, uint64_t max_total,
                                          uint64_t max_per_client);
/* The connection counted by conn_limit_acquire closed. Thread-safe. */
void conn_limit_release(const struct sockaddr *peer);

/* Connections counted now (all addresses). */
uint64_t conn_limit_open(void);

#endif
