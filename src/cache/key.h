/* key.h - the part of a cache key that comes from the request target: the path, and the
 * query kept as sent, left out, or with its parameters sorted (a zone's cache_key.query),
 * so that "?b=1&a=2" and "?a=2&b=1" can be one object. Pure. */
#ifndef VERGE_CACHE_KEY_H
#define VERGE_CACHE_KEY_H

#include "core/buf.h"
#include "core/config.h"

/* Append the origin-form target ("/path?query", len bytes) to out as the key has it.
 * Sorting orders the "&"-separated parameters bytewise and drops empty ones; a query left
 * with no parameter leaves no "?". 0, or -1 past out's cap. */
int cache_key_target(struct buf *out, const char *target, size_t len,
                     enum config_cache_query mode);

#endif
