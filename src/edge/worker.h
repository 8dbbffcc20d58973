/* worker.h - one worker thread: its event loop, its listeners, its visitor connections,
 * its origin connection pool, and the configuration it currently serves. */
#ifndef VERGE_EDGE_WORKER_H
#define VERGE_EDGE_WORKER_H

#include "cache/notify.h"
#include "cache/store.h"
#include "core/config.h"
#include "core/loop.h"
#include "edge/metrics.h"

#include <pthread.h>

struct client;
struct visitor;
struct origin_conn;
struct upstream;
struct zone_health;
struct errcache;
struct log_repeats;
struct dns_resolver;
struct prober;

struct worker_listener {
    struct loop_io io;
    struct worker *worker;
    const struct config_addr *addr; /* points into the config that opened it */
};

/* Idle keep-alive origin connections, grouped by origin address. */
struct pool_bucket {
    struct pool_bucket *next;
    struct sockaddr_storage sa;
    socklen_t salen;
    struct origin_conn *idle; /* most recently used first */
    size_t nidle;
};

/* The per-request fields of a plain cache hit (cached.c) as they were last formatted for
 * one Content-Length, Age, ttl and edge name: those change at most once a second, and a
 * hit then copies them instead of formatting them again. */
#define WORKER_HIT_FIELDS 8
struct worker_hit_fields {
    uint64_t length;
    int64_t age, ttl;
    bool via;
    uint16_t edge_len, len; /* len 0: empty */
    char edge[64];
    char text[320]; /* up to "X-Request-Id: " */
};

struct worker {
    int id; /* 1..N */
    pthread_t thread;
    struct loop *loop;
    struct config *cfg;            /* the one new requests use; one reference held */
    uint32_t cfg_users;            /* requests using cfg (worker_config_take) */
    struct worker_old_cfg {        /* configurations replaced while requests still used */
        struct config *cfg;        /* them: one reference each, held until the last is */
        uint32_t users;            /* done */
    } *old_cfgs;
    size_t nold_cfgs;
    struct config *pending_cfg;    /* handed over by the main thread (under lock) */
    pthread_mutex_t lock;
    bool drain_requested;          /* set by the main thread (under lock) */
    bool draining;
    struct loop_timer drain_timer;  /* shutdown deadline */
    struct loop_timer accept_timer; /* accepting paused after EMFILE */

    struct worker_listener *listeners;
    size_t nlisteners;

    struct visitor *visitors; /* all open visitor connections (doubly linked, client.c) */
    size_t nvisitors;
    struct visitor *visitors_closed; /* freed at the end of the iteration (visitors_free) */
    struct loop_defer visitors_free;
    struct client *client_free; /* request states kept for the next requests (client.c) */
    size_t nclient_free;
    char *read_buf;             /* what every visitor connection reads into (client.c) */

    struct dns_resolver *resolver; /* NULL if c-ares could not start (logged) */
    struct prober *prober;         /* worker 1 only: active health probes */
    struct cache_notifier notifier; /* wakes this worker's visitors waiting on cache fills */
    struct buf cache_key;          /* the current request's cache key (cached.c) */
    struct host_memo {             /* the last Host routed under cfg (client.c route): */
        const struct config *cfg;  /* an edge sees the same few hosts again and again */
        const struct config_zone *zone; /* its zone; NULL: none (421) */
        uint8_t raw_len, name_len; /* 0: empty */
        char raw[62];              /* the field's value as sent */
        char name[64];             /* normalised (zone_host_normalise) */
    } host_memo;
    struct buf cache_scratch;      /* variants and such while looking it up */
    struct cache_near cache_near;  /* this worker's memo of hits (store.h) */
    struct loop_timer near_timer;  /* sweeps it each second */
    struct buf log_line;           /* the access log line being written */
    void *refreshes;               /* the cache's own fetches running here (refresh.c) */
    struct pool_bucket *pool; /* list of buckets, one per origin address seen */
    size_t rr;                /* round-robin start among a zone's origins */
    struct upstream *upstream_free;   /* finished fetches kept for the next (upstream.c) */
    size_t nupstream_free;
    struct zone_health *zone_health;  /* by zone_index of cfg (upstream.c) */
    size_t nzone_health;
    struct errcache *errcache;        /* error responses rendered for cfg (client.c) */
    struct log_repeats *origin_failures; /* the error-log lines of origin failures */

    struct zone_stats **zone_stats; /* by zone_index of cfg */
    struct zone_stats *unknown_zone_stats;
    struct worker_stats *stats;

    struct worker_hit_fields hit_fields[WORKER_HIT_FIELDS]; /* cached.c's memo */
    uint64_t rng[2]; /* request ids */
    uint64_t refusal_logged_ms; /* last log line about connections refused (client.c) */
    uint64_t refusals_unlogged; /* refused since that line */
};

/* Create a worker; fds are its already-bound listening sockets (one per cfg->listens). */
struct worker *worker_new(int id, struct config *cfg, const int *fds, size_t nfds);
int worker_start(struct worker *w);
/* The configuration for a request starting now, and its end: counted by the worker, not
 * by the configuration's shared reference count, whose cache line every worker's requests
 * would otherwise write twice each (the line holds fields a hit reads). Worker thread only. */
struct config *worker_config_take(struct worker *w);
void worker_config_put(struct worker *w, struct config **cfg);

/* From the main thread: serve cfg from now on (the worker takes its own reference). */
void worker_set_config(struct worker *w, struct config *cfg);
/* From the main thread: stop accepting, finish in-flight requests, exit the loop. */
void worker_drain(struct worker *w);
void worker_join_and_free(struct worker *w);
/* Free a worker whose loop ran on the caller's own thread (verge check), or never ran. */
void worker_free(struct worker *w);

/* A fresh 32-hex-digit request id. */
void worker_request_id(struct worker *w, char out[33]);

/* Called by the client module when a connection closes (bookkeeping, drain completion). */
void worker_client_closed(struct worker *w);
/* Called by refresh.c when one of the cache's own fetches ends (drain completion). */
void worker_fetch_ended(struct worker *w);

#endif
