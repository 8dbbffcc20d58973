/* fill.h - collecting a response while it streams to the visitor, to store it when it
 * completes: decides storability (freshness.h), copies the header fields a hit will send,
 * and keeps the body up to cache.max_object (past it, the fill is abandoned: the response
 * streams through uncached). */
#ifndef VERGE_CACHE_FILL_H
#define VERGE_CACHE_FILL_H

#include "cache/store.h"

struct cache_fill;

struct cache_fill_params {
    const char *key;           /* full key (base + "\n" + variant) */
    const char *vary;          /* the response's Vary names, normalised, or NULL */
    time_t request_time, response_time;
    int64_t heuristic_cap;     /* seconds; 0 = no heuristic freshness */
    int64_t stale_if_error;    /* the zone's default window, seconds */
    int64_t stale_while_revalidate; /* the zone's default window, seconds */
};

/* Start a fill, or NULL when the response must not be stored (why says why). */
struct cache_fill *cache_fill_start(const struct http_msg *req, const struct http_msg *resp,
                                    const struct cache_fill_params *p, char *why,
                                    size_t whylen);
/* Body bytes; false when the fill was abandoned (too large). */
bool cache_fill_append(struct cache_fill *f, const char *data, size_t len);
/* The response completed: store it. NULLs *f. */
void cache_fill_commit(struct cache_fill **f);
/* The response failed or was cut: drop it. NULLs *f. */
void cache_fill_abort(struct cache_fill **f);

/* The value of a stored header field (first of that name) into out; false if absent. */
bool cache_obj_field(const struct cache_obj *o, const char *name, char *out, size_t outlen);

/* A 304 from the origin refreshed old (RFC 9111 4.3.4): a new object with old's body, the
 * 304's fields replacing old's of the same name, and freshness from the merged fields. */
struct cache_obj *cache_obj_refresh(const struct cache_obj *old, const struct http_msg *resp,
                                    time_t request_time, time_t response_time,
                                    int64_t heuristic_cap);

/* The normalised Vary names of a response ("accept-encoding,accept-language"), or NULL. */
char *cache_vary_names(const struct http_msg *resp);
/* The variant string of a request for these Vary names ("accept-encoding=gzip\n..."). */
void cache_variant(const struct http_msg *req, const char *names, struct buf *out);

#endif
