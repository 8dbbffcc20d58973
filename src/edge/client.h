/* client.h - one visitor connection: read requests (keep-alive, pipelining, bodies), route
 * each to its zone, fetch it from the origin through upstream.h, and stream the response
 * back with back-pressure. Errors become the edge's own responses with Proxy-Status. */
#ifndef VERGE_EDGE_CLIENT_H
#define VERGE_EDGE_CLIENT_H

#include "edge/worker.h"

/* Take an accepted, non-blocking socket. The client belongs to w from now on and frees
 * itself when the connection closes (worker_client_closed is called then). */
void client_accept(struct worker *w, int fd, const struct sockaddr_storage *peer,
                   socklen_t peerlen);

/* Drain: idle connections close now, busy ones close after their current response. */
void client_drain_all(struct worker *w);

/* Shutdown deadline passed: close every connection now. */
void client_close_all(struct worker *w);

/* The worker's loop is gone: free the request states and the read buffer it kept. */
void client_worker_free(struct worker *w);

#endif
