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

/* What a hole of an errpage_text is filled with. */
enum errpage_hole {
    ERRPAGE_HOLE_REQUEST_ID, /* the request id, escaped for the text's format */
    ERRPAGE_HOLE_TIME,       /* "2026-11-24 11:30:00 UTC" */
    ERRPAGE_HOLE_LENGTH,     /* a decimal number (a Content-Length) */
};

/* A rendered text with holes for what differs from one request to the next: a page is
 * rendered once per zone, status, cause and format, and each request only fills it in. */
struct errpage_hole_at {
    size_t at;
    enum errpage_hole what;
};

struct errpage_text {
    struct buf text;
    enum errpage_format format;
    struct errpage_hole_at *holes;
    size_t nholes, holes_cap;
};

void errpage_text_init(struct errpage_text *t, enum errpage_format f);
void errpage_text_free(struct errpage_text *t);
/* Empty again (its memory kept), for format f. */
void errpage_text_reset(struct errpage_text *t, enum errpage_format f);
/* A hole at the end of the text so far. */
void errpage_text_hole(struct errpage_text *t, enum errpage_hole what);
/* Append t to out with its holes filled in. */
void errpage_text_fill(const struct errpage_text *t, const char *request_id, double now,
                       uint64_t length, struct buf *out);


/* Which format an Accept header asks for: the media range with the highest q among
 * HTML, JSON and plain text wins (ties: the first listed); nothing specific → text. */
enum errpage_format errpage_negotiate(const char *accept, size_t len);

/* Append the body for a visitor whose Accept header is accept (may be NULL) to out and
 * return its Content-Type. Every value shown is escaped for the format. */
const char *errpage_render(const struct errpage *p, const char *accept, size_t accept_len,
                           struct buf *out);

/* The same body in format f into t (reset first), with holes where the request id and the
 * time go: p->request_id and p->now are not read. Returns the Content-Type. */
const char *errpage_render_text(const struct errpage *p, enum errpage_format f,
                                struct errpage_text *t);

#endif
