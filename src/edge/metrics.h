/* metrics.h - counters per zone, one set per worker so the hot path never shares a cache
 * line: each counter has one writer (its worker) and is read by the admin listener. Sets
 * are kept by zone name, so counts survive reloads. */
#ifndef VERGE_EDGE_METRICS_H
#define VERGE_EDGE_METRICS_H

#include "core/buf.h"
#include "edge/proxy_error.h"

#define METRICS_MAX_WORKERS 256

/* What the cache did for a request (the X-Cache word), counted per zone. */
enum metrics_cache {
    METRICS_CACHE_NONE, /* not a caching zone's request: no X-Cache, not counted */
    METRICS_CACHE_HIT,
    METRICS_CACHE_MISS,
    METRICS_CACHE_EXPIRED,
    METRICS_CACHE_REVALIDATED,
    METRICS_CACHE_STALE,
    METRICS_CACHE_UPDATING,
    METRICS_CACHE_BYPASS,
    METRICS_CACHE_RESULTS,
};
/* The X-Cache words ("HIT"), "-" for METRICS_CACHE_NONE. */
extern const char *const metrics_cache_results[METRICS_CACHE_RESULTS];

struct zone_stats {
    uint64_t status[600];          /* responses sent to visitors by status code */
    uint64_t origin_requests;      /* requests sent to an origin */
    uint64_t origin_connections;   /* new origin connections opened */
    uint64_t origin_errors[PROXY_ERR_COUNT];
    uint64_t bytes_sent;           /* to visitors */
    uint64_t bytes_received;       /* from visitors */
    uint64_t cache[METRICS_CACHE_RESULTS]; /* requests by enum metrics_cache */
};

/* Single-writer increment: a plain add, with relaxed atomic access for the readers. */
#define STAT_ADD(field, n) \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define STAT_INC(field) STAT_ADD(field, 1)

/* The counters of zone `name` for worker `worker_id` (created on first use; never freed).
 * Zone "-" counts requests no zone serves. Thread-safe. */
struct zone_stats *metrics_zone_stats(const char *name, int worker_id);

/* Visitor-side checks and limits, each counted when it acted (see docs/hardening.md). */
enum metrics_limit {
    METRICS_LIMIT_MALFORMED,          /* 400: not valid HTTP/1.1, or ambiguous */
    METRICS_LIMIT_TRANSFER_CODING,    /* 501: a transfer coding other than chunked */
    METRICS_LIMIT_VERSION,            /* 505: not HTTP/1.x */
    METRICS_LIMIT_REQUEST_LINE,       /* 414: client.max_request_line */
    METRICS_LIMIT_HEADER_SIZE,        /* 431: client.max_header_size */
    METRICS_LIMIT_HEADER_FIELDS,      /* 431: client.max_header_fields */
    METRICS_LIMIT_BODY_SIZE,          /* 413: the zone's max_request_body */
    METRICS_LIMIT_HEADER_TIMEOUT,     /* 408: client.header_timeout */
    METRICS_LIMIT_BODY_TIMEOUT,       /* 408: client.body_timeout */
    METRICS_LIMIT_SEND_TIMEOUT,       /* closed: client.send_timeout */
    METRICS_LIMIT_KEEPALIVE_TIMEOUT,  /* closed: client.keepalive_timeout */
    METRICS_LIMIT_CONNECTIONS_TOTAL,  /* 503: client.max_connections */
    METRICS_LIMIT_CONNECTIONS_CLIENT, /* 503: client.max_connections_per_client */
    METRICS_LIMIT_COUNT
};
extern const char *const metrics_limit_names[METRICS_LIMIT_COUNT];

/* Gauges and totals per worker. */
struct worker_stats {
    uint64_t connections_active;
    uint64_t connections_total;
    uint64_t limits[METRICS_LIMIT_COUNT]; /* verge_client_limit_total{limit} */
};
struct worker_stats *metrics_worker_stats(int worker_id);

/* Render everything in Prometheus text format (version 0.0.4) into out. */
int metrics_render(struct buf *out);

#endif
