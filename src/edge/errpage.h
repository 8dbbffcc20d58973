/* errpage.h - bodies of the responses the edge writes itself (origin failures, refusals):
 * HTML for browsers, application/problem+json (RFC 9457) for JSON clients, plain text
 * otherwise. Visitors are told plainly whether the fault is theirs. */
#ifndef VERGE_EDGE_ERRPAGE_H
#define VERGE_EDGE_ERRPAGE_H

#include "core/buf.h"
#include "edge/proxy_error.h"

struct errpage {
    int status;
    const char *message;          /* one plain sentence for the visitor */
    const struct proxy_error *err; /* origin failure behind it, or NULL */
    bool details;                 /* show err->detail (expose_details) */
    const char *request_id;
    const char *edge_name;
};

/* Append the body for a visitor whose Accept header is accept (may be NULL) to out and
 * return its Content-Type. Every visitor-visible string is escaped. */
const char *errpage_render(const struct errpage *p, const char *accept, size_t accept_len,
                           struct buf *out);

#endif
