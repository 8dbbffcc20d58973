/* refresh.h - the cache's own origin fetches, which no visitor waits on at the other end:
 * a stale-while-revalidate refresh (a visitor got the stale copy; the edge fetches the
 * object again, with its validators, and stores the answer), and the fill of a visitor who
 * left before it ended (it goes on, for the visitors reading or waiting for it in any
 * worker, and to be stored; bounded by the origin timeouts and cache.max_object). */
#ifndef VERGE_EDGE_REFRESH_H
#define VERGE_EDGE_REFRESH_H

#include "cache/store.h"
#include "edge/upstream.h"
#include "edge/worker.h"
#include "http/msg.h"

struct refresh_request {
    struct config *cfg;             /* a reference is taken */
    const struct config_zone *zone;
    const struct http_msg *visitor; /* copied: the request the object answers */
    struct cache_obj *busy;         /* the store's entry for the fetch, or NULL: referenced */
    struct cache_obj *fill;         /* the object being written (head known), or NULL */
    struct cache_obj *stale;        /* the expired copy whose validators went, or NULL */
    bool revalidating;              /* validators went: a 304 refreshes stale */
    bool revalidated;               /* the 304 came: fill is complete when the fetch is */
    const char *host;               /* copied; NULL = the origin's host[:port] */
    time_t request_time;
};

/* Start a background refresh filling req->busy (which the caller leads). origin_head is
 * the request for the origin, without Host; its contents are moved. */
void refresh_start(struct worker *w, const struct refresh_request *req, struct buf *origin_head);

/* Take over a visitor's fetch in flight (*up, NULLed) for req's objects. */
void refresh_adopt(struct worker *w, struct upstream **up, const struct refresh_request *req);

/* Stop every one of the worker's fetches (shutdown): their objects fail. */
void refresh_abort_all(struct worker *w);

#endif
