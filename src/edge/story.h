/* story.h - the full story of failed requests, for owners: what the edge tried (each
 * address or name, each phase, each timing) and how it was classified. The last
 * STORY_KEEP failures of each worker are kept in memory and served by the admin endpoint
 * /requests/<id> (behind the admin token). Thread-safe. */
#ifndef VERGE_EDGE_STORY_H
#define VERGE_EDGE_STORY_H

#include "core/buf.h"
#include "edge/proxy_error.h"

#define STORY_KEEP 1000
#define STORY_MAX_ATTEMPTS 8

/* One step of a fetch: resolving a name, or one connection attempt to an address. */
struct story_attempt {
    char target[72];    /* "origin.example.com" (resolve) or "10.0.0.5:8000" */
    enum proxy_phase phase;   /* where it ended */
    enum proxy_error_type result; /* PROXY_ERR_NONE: it worked */
    char detail[160];
    uint64_t start_ms;  /* since the request started */
    uint64_t took_ms;
};

struct story {
    char request_id[64];
    double time;        /* wall clock, seconds */
    char zone[64];
    char host[128];
    char method[16];
    char target[256];
    int status;
    struct proxy_error error;
    struct story_attempt attempts[STORY_MAX_ATTEMPTS];
    int nattempts;
};

/* Keep a copy of s in worker's ring (its oldest story goes when STORY_KEEP are kept). */
void story_record(const struct story *s, int worker);

/* The story of request_id as JSON into out; -1 when it is not (or no longer) kept. */
int story_json(const char *request_id, struct buf *out);

#endif
