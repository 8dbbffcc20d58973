/* refresh.h - stale-while-revalidate: while a visitor gets the stale copy, the edge fetches
 * the object again in the background and stores the answer. At most one refresh per
 * object at a time across all workers. */
#ifndef VERGE_EDGE_REFRESH_H
#define VERGE_EDGE_REFRESH_H

#include "edge/worker.h"
#include "http/msg.h"

struct refresh_request {
    struct config *cfg;              /* a reference is taken */
    const struct config_zone *zone;
    const struct http_msg *visitor;  /* copied: the request the object answers */
    const char *cache_base;          /* copied */
    struct buf *origin_head;         /* moved: the request for the origin, without Host */
    const char *host;                /* copied; NULL = the origin's host[:port] */
};

/* Start a background refresh; false when one for this object is already running. */
bool refresh_start(struct worker *w, const struct refresh_request *req);

#endif
