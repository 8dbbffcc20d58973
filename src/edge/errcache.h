/* errcache.h - the edge's own error responses, rendered once and answered many times: a
 * small per-worker cache of response heads and bodies (errpage.h texts with holes for the
 * request id, the time and the length), keyed by everything else that shapes them (zone
 * page, status, cause, format, host, ...). A zone whose origins are all down answers every
 * request with the same page: each request only fills in its request id and time. */
#ifndef VERGE_EDGE_ERRCACHE_H
#define VERGE_EDGE_ERRCACHE_H

#include "edge/errpage.h"

struct errcache;

/* One response, in the cache's own buffers: valid until the next errcache_respond. */
struct errcache_response {
    const char *head; /* status line to the blank line, Connection included */
    size_t head_len;
    const char *body;
    size_t body_len;
    const char *type; /* Content-Type */
};

struct errcache *errcache_new(void);
void errcache_free(struct errcache **ec);
/* Forget every page: the configuration changed (the zones' own pages are compared by
 * address, so none may outlive the configuration it came from). */
void errcache_clear(struct errcache *ec);

/* The response for page p to a visitor whose Accept header is accept (may be NULL), with
 * "Connection: close" when close is set. Served from the cache when an equal page was
 * rendered before (everything of p but request_id and now compared: strings by content,
 * html_template by address); otherwise rendered, and kept when keep is set (p's
 * html_template belongs to the configuration the cache was cleared for). */
void errcache_respond(struct errcache *ec, const struct errpage *p, const char *accept,
                      size_t accept_len, bool close, bool keep, struct errcache_response *out);

#endif
