/* errpage.h - bodies of the responses the edge writes itself (origin failures, refusals):
 * HTML for browsers, application/problem+json (RFC 9457) for JSON clients, plain text
 * otherwise. Visitors are told plainly what failed and that it is not their fault; owners
 * get the cause-specific hint with the measured values and the verge check command. */
#ifndef VERGE_EDGE_ERRPAGE_H
#define VERGE_EDGE_ERRPAGE_H

#include "core/buf.h"
#include "edge/proxy_error.h"

struct errpage {
    int status;
    const char *message;           /* one plain sentence for the visitor (refusals) */
    const struct proxy_error *err; /* origin failure behind it, or NULL */
    bool details;                  /* owner section and values (zone's expose_details) */
    const char *request_id;
    const char *edge_name;
    const char *host;        /* the visitor's Host (escaped wherever it appears), or NULL */
    const char *origin_url;  /* the origin that failed ("http://o.example:8000"), or NULL */
    int retry_after;         /* seconds, 0 = none; with is_get the HTML page reloads itself */
    bool is_get;
    double now;              /* wall clock seconds, for the UTC time shown */
    const char *html_template; /* the zone's own page for browsers (error_pages), or NULL:
                                * its {{placeholders}} are replaced by escaped values */
};

enum errpage_format { ERRPAGE_TEXT, ERRPAGE_HTML, ERRPAGE_JSON };

/* Which format an Accept header asks for: the media range with the highest q among
 * HTML, JSON and plain text wins (ties: the first listed); nothing specific → text. */
enum errpage_format errpage_negotiate(const char *accept, size_t len);

/* Append the body for a visitor whose Accept header is accept (may be NULL) to out and
 * return its Content-Type. Every value shown is escaped for the format. */
const char *errpage_render(const struct errpage *p, const char *accept, size_t accept_len,
                           struct buf *out);

#endif
