/* range.h - byte ranges (RFC 9110 14.1, 14.2): a Range field's byte ranges resolved
 * against a body's length, with overlapping and adjacent ranges coalesced. Pure. */
#ifndef VERGE_CACHE_RANGE_H
#define VERGE_CACHE_RANGE_H

#include "core/base.h"

#define CACHE_MAX_RANGES 16 /* more ranges in one request: the whole body is sent */

struct cache_range {
    uint64_t first, last; /* inclusive */
};

/* Resolve the Range value v (len bytes) for a body of total bytes into r (at most
 * CACHE_MAX_RANGES). Returns the number of ranges (1 or more) to send; 0 when the field is
 * to be ignored and the whole body sent (not "bytes", invalid syntax, too many ranges);
 * -1 when no range can be satisfied (416). Ranges that overlap or touch are merged (in
 * ascending order then); otherwise the request's order is kept. */
int cache_range_parse(const char *v, size_t len, uint64_t total, struct cache_range *r);

#endif
