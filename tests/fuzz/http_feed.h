/* http_feed.h - shared by the HTTP fuzz targets: drive a struct http_parser over one input
 * the way the edge does (resume after each message, stop at the first error, finish at the
 * end of input), once with the input whole, once split in two at a point chosen from the
 * input and, for short inputs, once byte by byte, recording what the callbacks saw. The
 * readings must be the same: TCP may cut a message anywhere, and where it cuts must never
 * change how Verge reads it. */
#ifndef VERGE_FUZZ_HTTP_FEED_H
#define VERGE_FUZZ_HTTP_FEED_H

#include "http/parser.h"

#include <stdint.h>

struct http_feed {
    llhttp_type_t type;
    size_t max_head;
    /* A head is complete: look at it (appending what matters to trace) and return what a
     * parser on_head returns (0 body as framed, 1 no body, -1 stop). *count starts at 0
     * for each reading and is the target's to use (interim responses seen, ...). */
    int (*on_head)(struct http_parser *p, struct buf *trace, int *count);
};

/* Read data[0..len) whole, split at split (0 < split < len splits) and byte by byte,
 * compare, and abort() with the traces printed when they differ. */
void http_feed_run(const struct http_feed *f, const uint8_t *data, size_t len, size_t split);

/* Parse the complete head in text into p (initialised here, the caller frees it); abort()
 * when it does not parse. For the fixed messages a target needs besides its input. */
void http_feed_parse_head(struct http_parser *p, llhttp_type_t type, const char *text);

/* Append to trace what the edge reads from any head: how many fields are hop-by-hop and
 * the Cache-Control directives. */
void http_feed_trace_fields(const struct http_msg *m, struct buf *trace);

/* A number from the first bytes of the input (consumed): the fuzzer steers it, and a seed
 * file starts with it. */
unsigned http_feed_take(const uint8_t **data, size_t *len, size_t nbytes);

#endif
