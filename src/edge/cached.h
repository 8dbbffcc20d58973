/* cached.h - visitors answered from the shared cache (src/cache/store.h).
 *
 * The lookup decides between a hit, waiting for a fill another visitor (in any worker)
 * started, and a fetch of one's own. The answer to one visitor from an object - status
 * (304, 206, 416, multipart/byteranges), Age, Cache-Status, X-Cache - is a head in three
 * pieces: the object's stored header block as it is, a few per-request fields formatted
 * into the caller's buffer, and the body, written straight from the object's memory with
 * writev. The visitor keeps its own position in the body: a partial write keeps a
 * reference to the object and an offset, never a copy, and a visitor of a fill in
 * progress follows it as bytes arrive. */
#ifndef VERGE_EDGE_CACHED_H
#define VERGE_EDGE_CACHED_H

#include "cache/fill.h"
#include "cache/range.h"
#include "edge/worker.h"

/* multipart/byteranges state (only for requests with several ranges). */
struct cached_parts;

/* One visitor's position in an object's body. */
struct cached_send {
    struct cache_obj *obj; /* a reference; NULL when no body comes from an object */
    uint64_t pos;          /* the next body byte to send */
    uint64_t end;          /* the end of this piece (exclusive); UINT64_MAX: the body's end */
    bool chunked;          /* framed in chunks: the length was unknown when the head went */
    bool chunk_open;       /* a chunk was sent: the next frame starts with its CRLF */
    bool last_frame;       /* the final frame is queued: done once it is written */
    bool whole;            /* the whole body, not a range of it */
    uint64_t chunk_left;   /* body bytes of the current chunk still to send */
    struct cached_parts *parts;
    const char *frame;     /* framing bytes that go before the next body bytes */
    size_t frame_len, frame_pos;
    char line[24];         /* a chunk's size line */
};

/* What a visitor of a caching zone is doing with the cache. Embedded in the request;
 * zeroed between requests by cached_visit_clear. */
struct cached_visit {
    enum metrics_cache result; /* the X-Cache word; METRICS_CACHE_NONE outside caching zones */
    bool eligible;            /* looked up, and its response may be stored */
    bool collapsed;           /* answered from another visitor's fill */
    bool revalidating;        /* the stale object's validators went to the origin */
    bool revalidated;         /* the origin said 304: fill completes with the fetch */
    bool leading;             /* busy was made for this request's fetch */
    bool waiting;             /* subscribed to busy until its head arrives */
    bool awaiting_length;     /* a range of a fill of unknown length: wait for its end */
    bool hit_for_miss;        /* the lookup found a fresh hit-for-miss marker: this request
                               * fetches on its own, leading no fill and waiting for none */
    int fwd_status;           /* the origin's status, when this request fetched it */
    struct cache_obj *hit;    /* the stored object to answer with (a hit, or stale) */
    struct cache_obj *stale;  /* an expired copy: stale-if-error, its validators */
    struct cache_obj *busy;   /* the fill this request leads or waits for */
    struct cache_obj *fill;   /* the object this request's own fetch writes */
    struct cache_waiter waiter;
    struct cached_send send;
    time_t request_time;
    uint64_t key_hash;        /* of the base key it was looked up by (cached_lookup) */
};

/* Release what v holds: objects, a subscription. Leaves v zeroed (waiter too). */
void cached_visit_clear(struct cached_visit *v);

/* The base key (zone \n host \n target) of a request into w's key buffer, from its host
 * normalised (zone_host_normalise) and the target the origin gets (admit.h); false when it
 * does not fit (the request then bypasses the cache). */
bool cached_key(struct worker *w, const struct config_zone *z, const char *host, size_t hlen,
                const char *target, size_t tlen);

enum cached_decision {
    CACHED_BYPASS,  /* the cache may not answer or store this request: to the origin */
    CACHED_HIT,     /* answer hit now (fresh; or stale while another refresh runs) */
    CACHED_REFRESH, /* answer hit (stale) now; this request leads busy: start a background
                     * refresh of it */
    CACHED_JOIN,    /* another visitor's fetch of it is in flight: wait for busy */
    CACHED_FETCH,   /* fetch it (leading busy if set); stale keeps an expired copy */
};

/* Look the request up (after cached_key) and decide. Sets v's result and objects; busy is
 * set for JOIN and, with leading, for a FETCH this request leads. */
enum cached_decision cached_lookup(struct cached_visit *v, struct worker *w,
                                   const struct config_zone *z, const struct http_msg *req,
                                   time_t now);

/* After waiting: may busy's response (its head is known) answer this request? It may not
 * when the response varies on a field this request sends differently, or the request has
 * Authorization and the response is not shared (RFC 9111 3.5). */
bool cached_fill_answers(const struct cache_obj *o, struct worker *w, const struct http_msg *req);

/* The per-request part of a visitor's answer. */
struct cached_reply {
    const struct http_msg *req;
    const char *edge_name, *request_id;
    enum metrics_cache result; /* the X-Cache word */
    const char *proxy_status; /* Proxy-Status value, or NULL */
    int fwd_status;           /* the origin's status for MISS/EXPIRED/REVALIDATED */
    bool collapsed, via, head_method;
    bool close;               /* Connection: close (else keep-alive for HTTP/1.0) */
    time_t now;
    struct worker_hit_fields *memo; /* the worker's WORKER_HIT_FIELDS, or NULL */
};

#define CACHED_HEAD_IOV 3
#define CACHED_FIELDS_SIZE 2048 /* the caller's buffer for per-request fields */

/* Prepare the answer to r from o into s (which takes a reference) and the head into iov
 * (returns how many; fields points into buf). *status gets the status sent; *close is set
 * when the body can only end with the connection (HTTP/1.0 and an unknown length).
 * Returns 0, or -1 when the answer needs the body's length and it is not known yet (a
 * range of a fill in progress without Content-Length): wait for the fill to complete. */
int cached_reply_prepare(struct cached_send *s, struct cache_obj *o, const struct cached_reply *r,
                         char *buf, size_t buflen, struct iovec *iov, int *niov, int *status,
                         bool *close);

enum cached_pump {
    CACHED_SENT,    /* all written */
    CACHED_BLOCKED, /* the socket is full: wait until it is writable */
    CACHED_WAIT,    /* the body's next bytes have not arrived: wait for the fill */
    CACHED_CUT,     /* the fill failed: the visitor must see the response cut short */
    CACHED_ERROR,   /* writing failed (errno says why) */
    CACHED_READY_TO_SEND, /* cached_plan: the pieces it gave are to be sent */
    CACHED_FILE,          /* cached_plan: the next piece is a file's, for cached_pump */
};

/* Bytes written by one pump: on the wire, and of the body. */
struct cached_count {
    uint64_t wire, body;
};

/* Write out's queued bytes, then head (may be NULL), then the body from s's position, in
 * as few writev calls as the socket allows. Unwritten head bytes join out (they are small);
 * body bytes stay in the object. */
enum cached_pump cached_pump(struct cached_send *s, int fd, struct buf *out,
                             const struct iovec *head, int nhead, uint64_t sendfile_max,
                             struct cached_count *count);

/* The same answer written at the end of the loop's turn, with other sockets' (loop_send):
 * the pieces to send now (out's bytes first, at most max, their count in *n), for the
 * CACHED_READY_TO_SEND it returns; else why there are none (SENT, WAIT, CUT), or
 * CACHED_FILE when the next piece goes with sendfile (cached_pump writes it). */
enum cached_pump cached_plan(struct cached_send *s, struct buf *out, struct iovec *iov, int max,
                             uint64_t sendfile_max, int *n);
/* k bytes of what cached_plan gave were sent. */
void cached_sent(struct cached_send *s, struct buf *out, size_t k, struct cached_count *count);

/* An answer is being written from an object. */
bool cached_send_active(const struct cached_send *s);
/* The object stops growing for this visitor, whose answer goes on from the origin: queue
 * in out what it was not sent of the object, framed as it was (*chunked tells how the rest
 * must be). false when the answer is not the whole body (a range cannot go on). */
bool cached_send_detach(struct cached_send *s, struct buf *out, bool *chunked,
                        struct cached_count *moved);
void cached_send_clear(struct cached_send *s);

/* The fill parameters of a zone for a response arriving now. */
void cached_fill_params(const struct config *cfg, const struct config_zone *z,
                        time_t request_time, time_t now, struct cache_fill_params *p);

/* An origin's response head, for a fetch that may fill an object. */
struct cached_origin_head {
    const struct config *cfg;
    const struct config_zone *zone;
    const struct http_msg *req, *resp;
    struct cache_obj *stale; /* the expired copy whose validators went, or NULL */
    bool revalidating;       /* they went */
    time_t request_time, now;
    struct buf *scratch;
    const char *key;         /* the base key the request was looked up by, for a marker */
    size_t key_len;
    uint64_t key_hash;
    bool marked;             /* the lookup found a fresh hit-for-miss marker already */
};

/* May the head fill an object: a 304 refreshing the stale copy, or a response that may be
 * stored (cache_fill_refusal)? NULL when it may. Else why not, and then the entry this
 * fetch leads (busy, or NULL) fails, its waiters fetching on their own, and the key
 * (busy's, else h's) is marked uncacheable for the zone's hit_for_miss (cache_store_mark):
 * unless the request itself was the reason (cache_refusal_by_request) or h->marked.
 * Nothing is allocated for a response that is not stored. */
const char *cached_head_refusal(struct cache_obj *busy, const struct cached_origin_head *h);

enum cached_head {
    CACHED_HEAD_STORED,      /* o has the response's head; its body follows */
    CACHED_HEAD_REVALIDATED, /* o is the stale copy refreshed by a 304, complete */
};

/* Give o, the fill of the fetch (the entry it leads, or its own), the head that
 * cached_head_refusal let through. */
enum cached_head cached_take_head(struct cache_obj *o, const struct cached_origin_head *h);

/* The origin answered status: may the stale copy be served instead (RFC 5861 lets
 * stale-if-error cover 500, 502, 503 and 504)? */
bool cached_stale_for_5xx(const struct cached_visit *v, int status, time_t now);

/* What a visitor waiting for busy does next. */
enum cached_wake {
    CACHED_WAKE_WAIT,  /* no head yet: subscribed again (arm the lock timeout) */
    CACHED_WAKE_READ,  /* answer from busy, whose head is here */
    CACHED_WAKE_STALE, /* answer the stale copy (cached_wait_error: the failure, or NULL) */
    CACHED_WAKE_ERROR, /* answer the origin's error (cached_wait_error) */
    CACHED_WAKE_FETCH, /* fetch on its own */
};
enum cached_wake cached_wait_next(struct cached_visit *v, struct worker *w,
                                  const struct http_msg *req, uint64_t lock_timeout, time_t now);
/* The origin's error a failed fill left for its waiters, or NULL. */
const struct proxy_error *cached_wait_error(const struct cache_obj *o);

/* Cache-Status and X-Cache for a response passed from the origin (not from an object). */
void cached_pass_fields(const struct cached_visit *v, const char *edge_name, int status,
                        struct buf *head);

/* May o be served instead of an error now (its stale-if-error window)? */
bool cached_stale_allowed(const struct cache_obj *o, time_t now);

#endif
