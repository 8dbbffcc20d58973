/* upstream.h - one request to an origin: pick an origin and address, reuse a pooled
 * keep-alive connection or connect, send the request (head, then a streamed body), parse
 * the response, and stream it to the owner. Failures are classified (proxy_error.h) and
 * retried on another address or origin while that is safe. The owner is the visitor's
 * connection, or the cache's own fetch (refresh.h) that a fill goes on with. */
#ifndef VERGE_EDGE_UPSTREAM_H
#define VERGE_EDGE_UPSTREAM_H

#include "core/buf.h"
#include "edge/proxy_error.h"
#include "edge/worker.h"
#include "http/msg.h"

struct upstream;

/* Callbacks to the owner. None of them may free the upstream; after on_complete or on_error
 * the upstream is gone and the owner must drop its pointer. */
struct upstream_ops {
    /* The final (non-1xx) response head. */
    void (*on_head)(void *owner, const struct http_msg *resp);
    /* Response body bytes, de-chunked. The owner applies back-pressure with upstream_pause. */
    void (*on_body)(void *owner, const char *data, size_t len);
    /* The response is complete and well framed. */
    void (*on_complete)(void *owner);
    /* The fetch failed; before or after on_head (after means the body is incomplete). */
    void (*on_error)(void *owner, const struct proxy_error *err);
    /* The request body buffer drained below the low mark: more body may be sent. */
    void (*on_drained)(void *owner);
};

struct upstream_request {
    const struct config *cfg;
    const struct config_zone *zone;
    struct zone_stats *stats;
    bool head_method;  /* HEAD: the response has no body whatever it says */
    bool idempotent;   /* safe to resend after a reused connection failed */
    bool has_body;     /* a request body follows the head */
    bool body_chunked; /* send it chunked (the visitor sent it chunked) */
    const char *host;  /* Host sent to the origin; NULL = the origin's host[:port].
                        * Owned by the caller, valid until the fetch ends. */
    int probe_origin;  /* >= 0: an active health probe of this origin only: health is
                        * neither consulted nor told (the prober reports), no retries */
};

/* Bytes of request body buffered towards the origin above which the owner stops reading
 * its visitor; on_drained fires below UPSTREAM_BODY_LOW. */
#define UPSTREAM_BODY_HIGH (256 * 1024)
#define UPSTREAM_BODY_LOW (64 * 1024)

/* Start the fetch. head is the serialized request head without a Host field (the upstream
 * adds the one each origin gets, after the request line); its contents are moved into the
 * upstream (head is left empty, possibly with memory of its own: the caller still frees or
 * reuses it). Never fails synchronously: failures arrive through on_error, from the event
 * loop, never from inside this call. */
struct upstream *upstream_start(struct worker *w, const struct upstream_request *req,
                                struct buf *head, const struct upstream_ops *ops, void *owner);

/* Is every origin of req's zone known down (health), with no probe due? Then there is no
 * fetch to start: err and *attempt say what a fetch would have reported (every origin
 * marked down: destination_unavailable), the failure is counted as a fetch's would be
 * (origin requests and errors, the incidents' affected requests), and the caller answers
 * at once. Lock-free while health does not change. */
struct story_attempt;
bool upstream_zone_down(struct worker *w, const struct upstream_request *req,
                        struct proxy_error *err, struct story_attempt *attempt);

/* Queue request body bytes (framed as chunks when body_chunked). */
void upstream_send_body(struct upstream *u, const char *data, size_t len);
/* The request body is complete. */
void upstream_end_body(struct upstream *u);
/* Request bytes buffered and not yet written to the origin. */
size_t upstream_pending(const struct upstream *u);

/* Stop / restart reading the response (visitor back-pressure). */
void upstream_pause(struct upstream *u);
void upstream_resume(struct upstream *u);

/* The owner is going away: no more callbacks; the origin connection is closed, not pooled.
 * Takes the owner's pointer and NULLs it. */
void upstream_abort(struct upstream **u);

/* Hand the fetch to another owner (a cache fill that goes on after its visitor left):
 * later callbacks go to ops and owner, and host (owned by the new owner, or NULL) is the
 * Host of any further attempt. Callable from inside a callback. */
void upstream_set_owner(struct upstream *u, const struct upstream_ops *ops, void *owner,
                        const char *host);

/* The origin address in use ("127.0.0.1:8000"), "" before one was chosen. */
const char *upstream_addr(const struct upstream *u);
/* Milliseconds from start to the response head (0 if none yet). */
uint64_t upstream_header_ms(const struct upstream *u);
/* Milliseconds from start until the connection in use was established (0 for a pooled
 * one) and until the first response byte (0 if none yet), for verge check's phases. */
void upstream_timings(const struct upstream *u, uint64_t *connect_ms, uint64_t *first_byte_ms);

/* What this fetch tried so far (names resolved, addresses connected to), for the story of
 * a failed request. Valid until the upstream is gone (callable from on_error). */
struct story_attempt;
const struct story_attempt *upstream_attempts(const struct upstream *u, int *n);

/* Close every pooled connection of the worker and free the pool (reload, shutdown). */
void upstream_pool_close_all(struct worker *w);

/* The worker serves w->cfg from now on: look up its origins' health records once. */
void upstream_config_bind(struct worker *w);
/* The worker's loop is gone: free what the worker kept for its fetches. */
void upstream_worker_free(struct worker *w);

#endif
