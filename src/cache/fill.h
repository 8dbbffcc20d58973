/* fill.h - from an origin response to a cache object: whether it may be stored
 * (freshness.h), the header fields a hit sends, its freshness and stale windows, its tags
 * and Vary; and the object a 304 makes of a stored one. The body then streams in through
 * cache_obj_append (store.h), where every visitor of the object can already read it. */
#ifndef VERGE_CACHE_FILL_H
#define VERGE_CACHE_FILL_H

#include "cache/store.h"

struct cache_fill_params {
    time_t request_time, response_time;
    int64_t heuristic_cap;          /* seconds; 0 = no heuristic freshness */
    int64_t stale_if_error;         /* the zone's default window, seconds */
    int64_t stale_while_revalidate; /* the zone's default window, seconds */
};

/* May resp (the answer to req) fill an object: storable (cache_refusal) and not announced
 * larger than cache.max_object? NULL when it may, else why not (a static string). */
const char *cache_fill_refusal(const struct http_msg *req, const struct http_msg *resp);

/* Give o the head of resp, which may fill it (cache_fill_refusal said so): visitors
 * waiting on o wake and start reading. scratch is a reusable buffer. */
void cache_fill_head(struct cache_obj *o, const struct http_msg *req, const struct http_msg *resp,
                     const struct cache_fill_params *p, struct buf *scratch);

/* A 304 from the origin refreshed old (RFC 9111 4.3.4): o gets old's body (shared, not
 * copied), old's fields with those the 304 carries replaced, and freshness from the 304.
 * Complete it with cache_obj_finish. */
void cache_fill_revalidated(struct cache_obj *o, const struct cache_obj *old,
                            const struct http_msg *resp, const struct cache_fill_params *p);

/* The value of a stored header field (first of that name) into out; false if absent. */
bool cache_obj_field(const struct cache_obj *o, const char *name, char *out, size_t outlen);

#endif
