/* client.c - visitor connections: the request/response state machine of one keep-alive
 * connection, request routing, origin request and response heads, streaming with
 * back-pressure, the edge's own responses, and the access log line of each request. */
#include "edge/client.h"

#include "core/log.h"
#include "core/net.h"
#include "core/sys.h"
#include "edge/admit.h"
#include "edge/cached.h"
#include "edge/connlimit.h"
#include "edge/errcache.h"
#include "edge/refresh.h"
#include "edge/story.h"
#include "edge/upstream.h"
#include "edge/zone.h"
#include "http/parser.h"
#include "http/validate.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_READ_SIZE (64 * 1024)  /* the worker's read buffer; a connection keeps none */
#define CLIENT_OUT_HIGH (256 * 1024) /* response bytes queued: pause the origin read */
#define CLIENT_OUT_LOW (64 * 1024)
#define CLIENT_LINGER_MS 5000        /* read and discard after our last response */
#define CLIENT_REFUSED_LINGER_MS 1000 /* the same after a 503 at accept: less, under a flood */
#define CLIENT_REFUSED_RETRY_AFTER 2  /* seconds: a connection slot is likely free by then */
#define CLIENT_REFUSAL_LOG_MS 1000    /* at most one log line a second about refusals */
#define CLIENT_MAX_REQUEST_ID 200
#define CLIENT_BATCH_MAX 64          /* pipelined requests answered per loop iteration */
#define CLIENT_FREE_MAX 64           /* request states a worker keeps for the next requests */
#define CLIENT_KEEP_BUF (16 * 1024)  /* buffer memory a kept request state may hold on to */
#define CLIENT_BATCH_COPY (16 * 1024) /* a pipelined answer's body copied to leave with others */

/* A visitor connection's states; names appear in debug logs. */
enum visitor_state {
    VISITOR_WAITING,   /* no request in progress: before the first one, or idle keep-alive */
    VISITOR_BUSY,      /* a request is in progress: its struct client says where */
    VISITOR_LINGERING, /* our side is done; reading what the visitor still sends */
    VISITOR_CLOSED,
};

static const char *const visitor_state_names[] = {"waiting", "busy", "lingering", "closed"};

/* A request's states, while its visitor is busy. */
enum client_state {
    CLIENT_IDLE,         /* finished; the next pipelined request may start */
    CLIENT_READING_HEAD, /* bytes of a request head arrived */
    CLIENT_FORWARDING,   /* a request is being served (origin fetch or own response) */
};

static const char *const client_state_names[] = {"idle", "reading_head", "forwarding"};

/* One request on the connection; reset between requests. */
struct request {
    struct config *cfg; /* for the request's life (worker_config_take) */
    const struct config_zone *zone;
    struct zone_stats *stats;
    struct upstream *up;
    struct buf strings; /* copies kept for the log and the origin request */
    uint32_t host_off, rid_off; /* offsets into strings */
    uint32_t name_off, name_len; /* the host normalised (zone_host_normalise); 0: invalid */
    uint32_t origin_host_off; /* the normalised host, sent with origin_host: visitor */
    uint32_t key_off, key_len; /* the base cache key it was looked up by */
    struct admit_facts facts; /* read from the head once it is admitted */
    uint64_t start_ms;
    int status;
    uint64_t body_sent;     /* response body bytes to the visitor */
    uint64_t body_received; /* request body bytes from the visitor */
    bool head_method;
    bool request_done; /* the request message (and its body) was read completely */
    bool response_started;
    bool response_done;
    bool chunked;      /* we frame the response body in chunks */
    bool failed;       /* an origin failure (err is set) */
    bool body_blocked; /* stopped reading the request body: origin not keeping up */
    bool origin_paused;
    bool head_held;    /* its head waits in c->out for the first bytes of the body it fills */
    bool counted;      /* its status and cache result are in the counters */
    const char *refusal; /* why the edge refused the request (status in .status) */
    uint64_t origin_ms; /* time to the origin's response head */
    bool zone_down;     /* every origin is known down: err holds the answer, given when
                         * the request message ends (answer_zone_down) */
    /* The rest is not zeroed whole between requests (request_clear): most of it is text
     * that only a failure or a refusal writes, written whole before it is read. */
    char origin[64]; /* origin address that answered (or failed); "" when none */
    struct cached_visit cache; /* zones with cache: true (cached.h); cache_leave zeroes it */
    struct proxy_error err;    /* zeroed when its type was set */
    char refusal_text[200];    /* written by refuse_malformed before it is read */
    struct story_attempt down_attempt; /* written whole by upstream_zone_down */
};

/* A visitor connection: all that an idle keep-alive connection holds (a few hundred bytes:
 * no buffer, no parser). The state of a request in progress is a struct client, taken from
 * the worker's free list at the request's first byte and given back when it is done. */
struct visitor {
    struct worker *w;
    struct visitor *next, *prev; /* the worker's open ones; once closed, next links the
                                  * ones freed at the end of the iteration */
    struct loop_io io;       /* EPOLLIN and EPOLLOUT; with ring: EPOLLOUT alone */
    struct loop_recv recv;   /* with ring: what the visitor sends, from the loop's ring */
    struct loop_send send;   /* with ring: the answers' bytes, sent at the end of the turn */
    uint64_t send_len;       /* with ring: the bytes the send under way was given */
    struct loop_timer timer; /* header, keep-alive, send/body and linger timeouts */
    struct client *busy;     /* the request in progress, NULL while waiting */
    struct buf *in;          /* bytes read but not parsed yet (pipelined requests that wait
                              * for an earlier response); NULL when there are none */
    uint32_t pending;        /* while feeding: bytes of this read not parsed yet */
    uint32_t requests;       /* requests finished on this connection */
    uint8_t state;           /* enum visitor_state */
    bool feeding;            /* serve_requests is parsing (the input is not to be freed) */
    bool in_full;            /* in reached its cap: not reading until it drains */
    bool eof;                /* the visitor closed its side: answer what it sent, then close */
    bool counted;            /* counted by conn_limit_acquire: released at close */
    bool refused;            /* over a connection limit: answered 503 at accept */
    bool closed;
    bool ring;               /* reads and writes through the loop's io_uring (loop_receives) */
    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } peer;
    char ip[INET6_ADDRSTRLEN];
};

/* A request in progress on a visitor connection: its parser, its request, its response
 * bytes not written yet. */
struct client {
    struct visitor *v;
    struct worker *w;
    const char *ip; /* the visitor's address (v->ip) */
    struct client *free_next;
    struct loop_defer next_defer;    /* go on with pipelined input */
    struct loop_defer flush_defer;   /* write queued bytes at the end of the iteration */
    struct loop_defer release_defer; /* back to the free list at the end of the iteration */
    struct loop_timer wait_timer;    /* how long to wait for another visitor's fetch */
    enum client_state state;
    struct http_parser parser;
    struct buf out;         /* response bytes not written yet */
    struct buf origin_head; /* the origin request being built (its memory is reused) */
    struct request req;
    bool close_after; /* close once the current response is written */
    bool visitor_closes; /* the request asked for that close (Connection: close, HTTP/1.0
                          * without keep-alive): the visitor sends nothing after it */
    bool rejected;    /* on_head refused the request: the parse error is ours */
    bool batching;    /* more pipelined requests follow: queue this response, write later */
    bool blocked;     /* an answer from an object waits for the socket to be writable */
    bool closed;      /* the visitor connection closed (this state goes at the end of the
                       * loop iteration) */
};

static void serve_buffered(struct visitor *v);
static void finish_request(struct client *c);
static void flush(struct client *c);
static void visitor_close(struct visitor *v);
static void respond_error(struct client *c, int status, const char *message,
                          const struct proxy_error *err);
static void respond_rejected(struct client *c);
static bool cache_consider(struct client *c);
static void cache_answer(struct client *c, struct cache_obj *o, enum metrics_cache result,
                         const struct proxy_error *err);
static void cache_wait(struct client *c);
static void cache_leave(struct client *c);
static void client_pump(struct client *c, const struct iovec *head, int nhead);
static void access_log(struct client *c);
static uint32_t keep_string(struct request *r, const char *s, size_t len);
static void on_wait_timeout(struct loop_timer *t);
static void on_next_request(struct loop_defer *d);
static void answer_zone_down(struct client *c);
static void on_flush_due(struct loop_defer *d);
static const struct http_parser_ops request_ops;

/* ---------------------------------------------------------------- lifecycle */

static void
client_free(struct client *c)
{
    http_parser_free(&c->parser);
    buf_free(&c->out);
    buf_free(&c->origin_head);
    buf_free(&c->req.strings);
    free(c);
}

static void
request_clear(struct client *c)
{
    struct request *r = &c->req;
    struct buf strings = r->strings;
    cache_leave(c); /* first: a fill it fetches may go on without it */
    upstream_abort(&r->up);
    worker_config_put(c->w, &r->cfg);
    buf_reset(&strings);
    /* Not the whole struct: over a thousand bytes of it are failure text, and zeroing them
     * for every hit cost more than the rest of this function. */
    memset(r, 0, offsetof(struct request, origin));
    r->strings = strings;
    r->origin[0] = '\0';
    if (r->err.type != PROXY_ERR_NONE)
        memset(&r->err, 0, sizeof(r->err));
}

static void
trim_buf(struct buf *b)
{
    if (b->size > CLIENT_KEEP_BUF)
        buf_free(b);
    else
        buf_reset(b);
}

/* The end of the iteration in which c was let go: onto the worker's free list (bounded),
 * with the memory of its buffers. */
static void
on_client_release(struct loop_defer *d)
{
    struct client *c = container_of(d, struct client, release_defer);
    struct worker *w = c->w;
    loop_defer_cancel(w->loop, &c->next_defer);
    loop_defer_cancel(w->loop, &c->flush_defer);
    if (w->nclient_free >= CLIENT_FREE_MAX || w->draining) {
        client_free(c);
        return;
    }
    trim_buf(&c->out);
    trim_buf(&c->origin_head);
    trim_buf(&c->req.strings);
    trim_buf(&c->parser.msg.strings);
    trim_buf(&c->parser.raw);
    c->v = NULL;
    c->free_next = w->client_free;
    w->client_free = c;
    w->nclient_free++;
}

/* A request state for v, from the worker's free list or new, attached to v. */
static struct client *
client_take(struct visitor *v)
{
    struct worker *w = v->w;
    const struct config *cfg = w->cfg;
    struct client *c = w->client_free;
    if (c != NULL) {
        w->client_free = c->free_next;
        w->nclient_free--;
        http_parser_reset(&c->parser, cfg->client_max_header_size);
    } else {
        c = xcalloc(1, sizeof(*c));
        loop_timer_init(&c->wait_timer, on_wait_timeout);
        loop_defer_init(&c->next_defer, on_next_request);
        loop_defer_init(&c->flush_defer, on_flush_due);
        loop_defer_init(&c->release_defer, on_client_release);
        http_parser_init(&c->parser, HTTP_REQUEST, cfg->client_max_header_size, &request_ops, c);
        buf_init(&c->out, SIZE_MAX);
        buf_init(&c->origin_head, SIZE_MAX);
        buf_init(&c->req.strings, SIZE_MAX);
    }
    http_parser_set_limits(&c->parser, cfg->client_max_header_fields,
                           cfg->client_max_request_line);
    c->v = v;
    c->w = w;
    c->ip = v->ip;
    c->state = CLIENT_IDLE;
    c->close_after = c->visitor_closes = c->rejected = c->batching = c->blocked = c->closed =
        false;
    v->busy = c;
    v->state = VISITOR_BUSY;
    return c;
}

/* v's request is over: its state goes back at the end of the iteration (callers up the
 * stack may still look at it). */
static void
client_detach(struct visitor *v)
{
    struct client *c = v->busy;
    if (c == NULL)
        return;
    v->busy = NULL;
    loop_defer(v->w->loop, &c->release_defer);
}

/* Bytes kept in v->in. */
static size_t
kept(const struct visitor *v)
{
    return v->in != NULL ? buf_used(v->in) : 0;
}

/* v->in, made when bytes are to be kept (capped like the bytes one request may need). */
static struct buf *
keep_buf(struct visitor *v)
{
    if (v->in == NULL) {
        /* ring: and room for what the ring received before a stop took effect */
        v->in = xmalloc(sizeof(*v->in));
        buf_init(v->in, v->w->cfg->client_max_header_size + CLIENT_READ_SIZE +
                            (v->ring ? loop_recv_lent() : 0));
    }
    return v->in;
}

static void
drop_kept(struct visitor *v)
{
    if (v->in == NULL)
        return;
    buf_free(v->in);
    free(v->in);
    v->in = NULL;
}

/* The end of the iteration: the visitors closed in it go (their callbacks are over). */
static void
on_visitors_free(struct loop_defer *d)
{
    struct worker *w = container_of(d, struct worker, visitors_free);
    while (w->visitors_closed != NULL) {
        struct visitor *v = w->visitors_closed;
        w->visitors_closed = v->next;
        drop_kept(v);
        free(v);
    }
}

/* Close now: every resource goes, the memory at the end of the loop iteration. */
static void
visitor_close(struct visitor *v)
{
    struct worker *w = v->w;
    if (v->closed)
        return;
    log_debug("client %s: closing in state %s", v->ip,
              v->busy ? client_state_names[v->busy->state] : visitor_state_names[v->state]);
    v->closed = true;
    v->state = VISITOR_CLOSED;
    if (v->busy != NULL) {
        v->busy->closed = true;
        request_clear(v->busy);
        client_detach(v);
    }
    loop_timer_stop(w->loop, &v->timer);
    loop_recv_stop(w->loop, &v->recv);
    loop_send_cancel(w->loop, &v->send);
    loop_io_close(w->loop, &v->io);
    if (v->prev)
        v->prev->next = v->next;
    else
        w->visitors = v->next;
    if (v->next)
        v->next->prev = v->prev;
    w->nvisitors--;
    STAT_ADD(w->stats->connections_active, (uint64_t)-1);
    if (v->counted)
        conn_limit_release(&v->peer.sa);
    v->next = w->visitors_closed;
    w->visitors_closed = v;
    loop_defer(w->loop, &w->visitors_free);
    worker_client_closed(w);
}

/* The configuration the request is served under (the worker's until it has its own). */
static const struct config *
request_cfg(const struct client *c)
{
    return c->req.cfg ? c->req.cfg : c->w->cfg;
}

static void
client_close(struct client *c)
{
    visitor_close(c->v);
}

/* Writes wait for EPOLLOUT: the socket's buffer was full. */
static bool
waiting_writable(const struct visitor *v)
{
    return (v->io.events & EPOLLOUT) != 0;
}

/* Bytes for the visitor wait in c->out: for EPOLLOUT, or (ring) for the send queued for
 * the end of the turn. */
static bool
writes_blocked(const struct visitor *v)
{
    return waiting_writable(v) || loop_send_queued(&v->send);
}

/* What to watch: EPOLLIN (ring: the receive) unless a limit stops the reading (the origin
 * is not taking the request body fast enough, the pipelined input reached its cap, the
 * visitor closed its side), EPOLLOUT while writes are blocked. No system call when that
 * did not change. */
static void
set_interest(struct visitor *v, bool out)
{
    const struct client *c = v->busy;
    bool in = !v->eof && !v->in_full && !(c != NULL && c->req.body_blocked);
    if (v->ring) {
        loop_recv_want(v->w->loop, &v->recv, in && v->state != VISITOR_CLOSED);
        in = false;
    }
    loop_io_set(v->w->loop, &v->io, (in ? EPOLLIN : 0) | (out ? EPOLLOUT : 0));
}

/* While forwarding: the send timeout while the visitor is not reading, the body timeout
 * while we wait for request body bytes, nothing while the origin's timers govern. */
static void
arm_forwarding_timer(struct client *c)
{
    const struct config *cfg = request_cfg(c); /* none: refused early */
    struct loop_timer *t = &c->v->timer;
    if (c->state != CLIENT_FORWARDING || c->closed || c->v->busy != c)
        return;
    if (buf_used(&c->out) > 0 || c->blocked)
        loop_timer_set(c->w->loop, t, cfg->client_send_timeout);
    else if (!c->req.request_done && !c->req.body_blocked)
        loop_timer_set(c->w->loop, t, cfg->client_body_timeout);
    else
        loop_timer_park(c->w->loop, t); /* nothing to time: the answer is written */
}

/* Our side is finished: stop writing, read and discard what the visitor still sends so
 * the close does not turn into a reset that destroys the response in flight. */
static void
start_lingering(struct visitor *v)
{
    if (v->eof || shutdown(v->io.fd, SHUT_WR) < 0) {
        visitor_close(v); /* the visitor closed its side already: nothing to wait for */
        return;
    }
    client_detach(v);
    v->state = VISITOR_LINGERING;
    v->in_full = false;
    if (!v->feeding)
        drop_kept(v); /* whatever was sent after the last answer is dropped */
    loop_timer_set(v->w->loop, &v->timer, v->refused ? CLIENT_REFUSED_LINGER_MS
                                                     : CLIENT_LINGER_MS);
    set_interest(v, false);
}

static void
count_limit(struct client *c, enum metrics_limit limit)
{
    STAT_INC(c->w->stats->limits[limit]);
}

/* The forwarding timer fired: the visitor stopped reading, or its body stopped coming. */
static void
on_forwarding_timeout(struct client *c)
{
    const struct config *cfg = request_cfg(c);
    if (buf_used(&c->out) > 0 || c->req.response_started) {
        log_info("client %s: visitor read nothing of the response for %llu ms "
                 "(client.send_timeout); closing", c->ip,
                 (unsigned long long)cfg->client_send_timeout);
        count_limit(c, METRICS_LIMIT_SEND_TIMEOUT);
        client_close(c);
        return;
    }
    log_info("client %s: request body stalled for %llu ms (client.body_timeout); answering 408",
             c->ip, (unsigned long long)cfg->client_body_timeout);
    count_limit(c, METRICS_LIMIT_BODY_TIMEOUT);
    c->close_after = true;
    upstream_abort(&c->req.up);
    respond_error(c, 408, "The request body was not received in time.", NULL);
}

/* No request (yet): the first one did not come in time, or the keep-alive ended. */
static void
on_waiting_timeout(struct visitor *v)
{
    if (v->requests == 0) {
        STAT_INC(v->w->stats->limits[METRICS_LIMIT_HEADER_TIMEOUT]);
        visitor_close(v); /* connected and said nothing: no answer owed */
        return;
    }
    log_debug("client %s: idle for %llu ms (client.keepalive_timeout); closing", v->ip,
              (unsigned long long)v->w->cfg->client_keepalive_timeout);
    STAT_INC(v->w->stats->limits[METRICS_LIMIT_KEEPALIVE_TIMEOUT]);
    visitor_close(v);
}

static void
on_head_timeout(struct client *c)
{
    count_limit(c, METRICS_LIMIT_HEADER_TIMEOUT);
    if (!http_parser_in_message(&c->parser)) {
        client_close(c); /* connected and said nothing: no answer owed */
        return;
    }
    log_info("client %s: request header not received within %llu ms "
             "(client.header_timeout); answering 408", c->ip,
             (unsigned long long)c->w->cfg->client_header_timeout);
    c->close_after = true;
    respond_error(c, 408, "The request was not received in time.", NULL);
}

static void
on_timer(struct loop_timer *t)
{
    struct visitor *v = container_of(t, struct visitor, timer);
    struct client *c = v->busy;
    if (v->state == VISITOR_WAITING)
        on_waiting_timeout(v);
    else if (v->state != VISITOR_BUSY || c->state == CLIENT_IDLE)
        visitor_close(v); /* lingering over (or a pipelined request never resumed) */
    else if (c->state == CLIENT_READING_HEAD)
        on_head_timeout(c);
    else
        on_forwarding_timeout(c);
}

/* ---------------------------------------------------------------- writing to the visitor */

static void
on_out_drained(struct client *c)
{
    set_interest(c->v, false);
    if (c->req.origin_paused && c->req.up != NULL) {
        c->req.origin_paused = false;
        upstream_resume(c->req.up);
    }
    if (c->req.response_done)
        finish_request(c);
    else
        arm_forwarding_timer(c);
}

/* Bytes are queued (not blocked): the visitor's socket must learn of them (ring: they go
 * at the end of the turn, unless the socket is full). */
static void
out_queued(struct client *c)
{
    struct request *r = &c->req;
    if (c->v->ring && !waiting_writable(c->v))
        loop_send_queue(c->w->loop, &c->v->send);
    else if (!writes_blocked(c->v))
        set_interest(c->v, true);
    if (buf_used(&c->out) >= CLIENT_OUT_HIGH && r->up != NULL && !r->origin_paused) {
        r->origin_paused = true;
        upstream_pause(r->up);
    }
    arm_forwarding_timer(c);
}

/* Append what writev left of iov (done bytes went) to c->out. */
static void
keep_rest(struct client *c, const struct iovec *iov, int n, size_t done)
{
    for (int i = 0; i < n; i++) {
        size_t skip = MIN(done, iov[i].iov_len);
        if (skip < iov[i].iov_len)
            buf_append(&c->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        done -= skip;
    }
}

/* Write iov to the visitor, after the bytes already queued and in the same writev. Queued
 * instead while more pipelined responses follow (c->batching) or while writes are blocked.
 * Returns -1 when the connection was closed. */
static int
send_iov(struct client *c, struct iovec *iov, int n)
{
    struct iovec all[8];
    size_t total = 0, queued = buf_used(&c->out);
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    STAT_ADD(c->req.stats->bytes_sent, total);
    if (c->batching || writes_blocked(c->v) || n >= (int)ARRAY_SIZE(all) || c->v->ring) {
        keep_rest(c, iov, n, 0);
        if (writes_blocked(c->v))
            out_queued(c);
        else if (!c->batching)
            flush(c);
        return c->closed ? -1 : 0;
    }
    int k = 0;
    if (queued > 0)
        all[k++] = (struct iovec){(void *)buf_head(&c->out), queued};
    memcpy(all + k, iov, sizeof(*iov) * (size_t)n);
    ssize_t done;
    do {
        done = sys_writev(c->v->io.fd, all, k + n);
    } while (done < 0 && errno == EINTR);
    if (done < 0 && errno != EAGAIN) {
        log_info("client %s: write failed (%s); closing", c->ip, strerror(errno));
        client_close(c);
        return -1;
    }
    size_t wrote = done > 0 ? (size_t)done : 0;
    buf_consume(&c->out, MIN(wrote, queued));
    keep_rest(c, iov, n, wrote > queued ? wrote - queued : 0);
    if (buf_used(&c->out) > 0)
        out_queued(c);
    return 0;
}

static int
send_bytes(struct client *c, const void *p, size_t len)
{
    struct iovec iov = {(void *)p, len};
    return send_iov(c, &iov, 1);
}

/* c->out holds bytes appended in place (a response head): they go with the next write,
 * at the latest at the end of this loop iteration. */
static void
out_appended(struct client *c, size_t len)
{
    STAT_ADD(c->req.stats->bytes_sent, len);
    if (!writes_blocked(c->v))
        loop_defer(c->w->loop, &c->flush_defer);
}

static void
on_flush_due(struct loop_defer *d)
{
    struct client *c = container_of(d, struct client, flush_defer);
    if (c->closed || c->v->busy != c || c->batching || writes_blocked(c->v))
        return;
    if (c->req.head_held || (c->v->ring && c->blocked))
        client_pump(c, NULL, 0); /* no body came with the head in this iteration (ring: or
                                  * the pump is to say what became of the answer) */
    else if (buf_used(&c->out) > 0)
        flush(c);
}

/* c->out was written (all of it, or as much as the socket took). */
static void
flushed(struct client *c)
{
    if (buf_used(&c->out) == 0) {
        buf_reset(&c->out);
        on_out_drained(c);
    } else if (c->req.origin_paused && buf_used(&c->out) < CLIENT_OUT_LOW && c->req.up) {
        c->req.origin_paused = false;
        upstream_resume(c->req.up);
    }
}

static void
flush(struct client *c)
{
    if (c->v->ring && buf_used(&c->out) > 0) {
        out_queued(c); /* written at the end of the turn: visitor_sent goes on */
        return;
    }
    while (buf_used(&c->out) > 0) {
        ssize_t k = sys_write(c->v->io.fd, buf_head(&c->out), buf_used(&c->out));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            out_queued(c);
            return;
        }
        if (k < 0) {
            log_info("client %s: write failed (%s); closing", c->ip, strerror(errno));
            client_close(c);
            return;
        }
        buf_consume(&c->out, (size_t)k);
        if (c->req.origin_paused && buf_used(&c->out) < CLIENT_OUT_LOW)
            break;
    }
    flushed(c);
}

/* ring: what the visitor's send takes at the end of the turn: the answer from an object
 * (c->blocked: c->out, then the object's next pieces), or c->out. */
static int
visitor_fill(struct loop_send *ls, struct iovec *iov, int max)
{
    struct visitor *v = container_of(ls, struct visitor, send);
    struct client *c = v->busy;
    int n = 0;
    v->send_len = 0;
    if (c == NULL || c->closed)
        return 0;
    if (c->blocked) {
        if (cached_plan(&c->req.cache.send, &c->out, iov, max,
                        request_cfg(c)->cache_sendfile_max, &n) !=
            CACHED_READY_TO_SEND) {
            loop_defer(c->w->loop, &c->flush_defer); /* the pump decides (on_flush_due) */
            return 0;
        }
    } else if (buf_used(&c->out) > 0) {
        iov[n++] = (struct iovec){(void *)buf_head(&c->out), buf_used(&c->out)};
    }
    for (int i = 0; i < n; i++)
        v->send_len += iov[i].iov_len;
    return n;
}

/* ring: the send went (k bytes, or -errno): what the socket took is off the queue; all of
 * it went: on as after a write that took everything; else wait for EPOLLOUT. */
static void
visitor_sent(struct loop_send *ls, ssize_t k)
{
    struct visitor *v = container_of(ls, struct visitor, send);
    struct client *c = v->busy;
    if (c == NULL || c->closed)
        return;
    if (k < 0 && k != -EAGAIN) {
        log_info("client %s: write failed (%s); closing", c->ip, strerror((int)-k));
        client_close(c);
        return;
    }
    size_t sent = k > 0 ? (size_t)k : 0;
    if (c->blocked) {
        struct cached_count n = {0};
        cached_sent(&c->req.cache.send, &c->out, sent, &n);
        STAT_ADD(c->req.stats->bytes_sent, n.wire);
        c->req.body_sent += n.body;
    } else {
        buf_consume(&c->out, sent);
    }
    if (sent < v->send_len) { /* the socket is full */
        set_interest(v, true);
        arm_forwarding_timer(c);
        return;
    }
    if (c->blocked)
        client_pump(c, NULL, 0);
    else
        flushed(c);
}

/* ---------------------------------------------------------------- the access log */

/* Append s to out for a log line. Combined: quotes, backslashes and bytes outside
 * printable ASCII as \xHH (nginx). JSON: the same bytes as \" \\ and \u00HH. */
static void
log_escape(struct buf *out, const char *s, size_t len, bool json)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (json && (ch == '"' || ch == '\\'))
            buf_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
            buf_printf(out, json ? "\\u%04X" : "\\x%02X", ch);
        else
            buf_append(out, &s[i], 1);
    }
}

static const char *
req_string(const struct client *c, uint32_t off)
{
    return c->req.strings.data ? c->req.strings.data + off : "";
}

static void
header_value(const struct client *c, enum http_field f, const char **v, size_t *len)
{
    const struct http_header *h = http_msg_field(&c->parser.msg, f);
    *v = h ? http_str_ptr(&c->parser.msg, h->value) : "-";
    *len = h ? h->value.len : 1;
}

/* The method and protocol of the request line, as far as it was read: a head refused as
 * malformed has them from llhttp once past them, "-" before (the message's own fields are
 * only filled when the head completes, and method 0 would read as DELETE). An empty
 * target is logged as "-". */
static void
request_line_parts(const struct client *c, const char **method, char *proto, size_t len)
{
    const struct http_parser *p = &c->parser;
    const struct http_msg *m = &p->msg;
    *method = p->headers_done ? http_method_name(m->method)
              : m->url.len > 0 ? http_method_name(p->ll.method)
                               : "-";
    if (p->headers_done)
        snprintf(proto, len, "HTTP/%u.%u", m->major, m->minor);
    else if (m->nheaders > 0)
        snprintf(proto, len, "HTTP/%u.%u", p->ll.http_major, p->ll.http_minor);
    else
        snprintf(proto, len, "-");
}

static void
access_log_fields(struct client *c, struct buf *line, bool json)
{
    const struct http_msg *m = &c->parser.msg;
    const char *ua, *ref, *method;
    char proto[16];
    request_line_parts(c, &method, proto, sizeof(proto));
    const char *url = m->url.len > 0 ? http_str_ptr(m, m->url) : "-";
    size_t ulen = m->url.len > 0 ? m->url.len : 1;
    size_t ualen, reflen;
    header_value(c, HTTP_FIELD_USER_AGENT, &ua, &ualen);
    header_value(c, HTTP_FIELD_REFERER, &ref, &reflen);
    double rt = (double)(loop_now(c->w->loop) - c->req.start_ms) / 1000.0;
    uint64_t ot = c->req.origin_ms;
    const char *origin = c->req.origin;
    const char *zone = c->req.zone ? c->req.zone->name : "-";
    const char *err = c->req.failed ? proxy_error_name(c->req.err.type) : "-";
    const char *cache = metrics_cache_results[c->req.cache.result];
    if (!json) {
        buf_printf(line, "\"%s ", method);
        log_escape(line, url, ulen, false);
        buf_printf(line, " %s\" %d %llu \"", proto, c->req.status,
                   (unsigned long long)c->req.body_sent);
        log_escape(line, ref, reflen, false);
        buf_append_str(line, "\" \"");
        log_escape(line, ua, ualen, false);
        buf_printf(line, "\" zone=%s rt=%.3f ot=%.3f origin=%s rid=%s error=%s cache=%s\n", zone,
                   rt, (double)ot / 1000.0, origin[0] ? origin : "-",
                   req_string(c, c->req.rid_off), err, cache);
        return;
    }
    buf_printf(line, "\"method\":\"%s\",\"uri\":\"", method);
    log_escape(line, url, ulen, true);
    buf_printf(line, "\",\"protocol\":\"%s\",\"status\":%d,\"bytes\":%llu,\"referer\":\"",
               proto, c->req.status, (unsigned long long)c->req.body_sent);
    log_escape(line, ref, reflen, true);
    buf_append_str(line, "\",\"user_agent\":\"");
    log_escape(line, ua, ualen, true);
    buf_printf(line,
               "\",\"zone\":\"%s\",\"request_time\":%.3f,\"origin_time\":%.3f,"
               "\"origin\":\"%s\",\"request_id\":\"%s\",\"error\":\"%s\",\"cache\":\"%s\"}\n",
               zone, rt, (double)ot / 1000.0, origin, req_string(c, c->req.rid_off), err, cache);
}

/* The access log's time for this second, formatted once per second per thread. */
static const char *
access_stamp(double wall, bool json)
{
    static __thread time_t second = -1;
    static __thread bool second_json;
    static __thread char stamp[64];
    time_t now = (time_t)wall;
    if (now != second || json != second_json) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), json ? "%Y-%m-%dT%H:%M:%S%z" : "%d/%b/%Y:%H:%M:%S %z",
                 &tm);
        second = now;
        second_json = json;
    }
    return stamp;
}

static void
access_log(struct client *c)
{
    if (!log_access_enabled())
        return;
    struct buf *line = &c->w->log_line; /* the worker's, its memory kept */
    bool json = log_access_format() == CONFIG_LOG_JSON;
    const char *stamp = access_stamp(loop_wall(c->w->loop), json);
    buf_reset(line);
    if (json) {
        buf_printf(line, "{\"time\":\"%s\",\"client\":\"%s\",", stamp, c->ip);
        access_log_fields(c, line, true);
    } else {
        buf_printf(line, "%s - - [%s] ", c->ip, stamp);
        access_log_fields(c, line, false);
    }
    if (buf_used(line) > 0 && line->data[line->len - 1] != '\n')
        buf_append(line, "\n", 1); /* cut at the cap: still one line */
    log_access_write(buf_head(line), buf_used(line));
    if (line->size > CLIENT_KEEP_BUF)
        buf_free(line); /* a rare long line: not kept */
}

/* ---------------------------------------------------------------- request completion */

/* Count the response once, when its status is final and before its bytes go out: a
 * visitor that has its answer finds it in /metrics. */
static void
count_request(struct client *c)
{
    struct request *r = &c->req;
    enum metrics_cache cache_result = r->cache.result;
    if (r->counted || r->stats == NULL)
        return;
    r->counted = true;
    if (r->status > 0 && r->status < 600)
        STAT_INC(r->stats->status[r->status]);
    if (cache_result != METRICS_CACHE_NONE)
        STAT_INC(r->stats->cache[cache_result]);
}

/* The head is gone: the visitor must see the body cut short, never a clean end. */
static void
abort_response(struct client *c)
{
    c->req.response_done = true;
    c->close_after = true;
    count_request(c);
    access_log(c);
    client_close(c);
}

/* The connection has no request in progress: wait for the next one (keep-alive). */
static void
visitor_wait(struct visitor *v)
{
    client_detach(v);
    v->state = VISITOR_WAITING;
    if (v->eof) {
        visitor_close(v); /* everything the visitor sent is answered */
        return;
    }
    loop_timer_set(v->w->loop, &v->timer, v->w->cfg->client_keepalive_timeout);
}

static void
finish_request(struct client *c)
{
    struct visitor *v = c->v;
    struct request *r = &c->req;
    bool body_pending = !r->request_done;
    count_request(c);
    access_log(c);
    request_clear(c);
    v->requests++;
    if (c->close_after || body_pending || c->w->draining) {
        /* A visitor that asked for the close, whose request was read whole and whose
         * answer is all with the kernel, sends nothing more that a close could turn into
         * a reset: closed now, as nginx does, without the shutdown, the wait for its FIN
         * and the read of it. Any other close lingers. */
        if (c->visitor_closes && !body_pending && kept(v) == 0 && v->pending == 0 &&
            buf_used(&c->out) == 0 && !(v->io.ready & EPOLLIN))
            visitor_close(v);
        else
            start_lingering(v);
        return;
    }
    http_parser_resume(&c->parser);
    c->state = CLIENT_IDLE;
    if (v->feeding ? v->pending > 0 : kept(v) > 0) {
        /* A pipelined request is waiting: the pass feeding it goes on, or one starts. */
        loop_timer_set(c->w->loop, &v->timer, c->w->cfg->client_keepalive_timeout);
        if (!v->feeding)
            loop_defer(c->w->loop, &c->next_defer);
        return;
    }
    visitor_wait(v);
}

static void
on_next_request(struct loop_defer *d)
{
    struct client *c = container_of(d, struct client, next_defer);
    if (!c->closed && c->v->busy == c)
        serve_buffered(c->v);
}

/* ---------------------------------------------------------------- the edge's own responses */

/* The zone's own page for this status: an exact match, else its 5xx page for a 5xx. */
static const char *
zone_error_page(const struct config_zone *z, int status)
{
    const char *any5xx = NULL;
    for (size_t i = 0; z != NULL && i < z->nerror_pages; i++) {
        if (z->error_pages[i].status == status)
            return z->error_pages[i].html;
        if (z->error_pages[i].status == 0 && status >= 500)
            any5xx = z->error_pages[i].html;
    }
    return any5xx;
}

static void
respond_error(struct client *c, int status, const char *message, const struct proxy_error *err)
{
    struct request *r = &c->req;
    const struct config *cfg = request_cfg(c);
    if (r->rid_off == 0) {
        char rid[33];
        worker_request_id(c->w, rid);
        r->rid_off = keep_string(r, rid, 32);
    }
    if (r->stats == NULL)
        r->stats = c->w->unknown_zone_stats;
    if (r->start_ms == 0)
        r->start_ms = loop_now(c->w->loop);
    const struct http_header *accept = c->parser.headers_done
                                           ? http_msg_field(&c->parser.msg, HTTP_FIELD_ACCEPT)
                                           : NULL;
    struct errpage page = {
        .status = status,
        .message = message,
        .err = err,
        .details = r->zone ? r->zone->expose_details : true,
        .request_id = req_string(c, r->rid_off),
        .edge_name = cfg->edge_name,
        .host = r->host_off ? req_string(c, r->host_off) : NULL,
        .origin_url = err && err->origin[0] ? err->origin : NULL,
        .retry_after = err          ? proxy_error_retry_after(err->type)
                       : c->v->refused ? CLIENT_REFUSED_RETRY_AFTER
                                      : 0,
        .is_get = c->parser.headers_done && c->parser.msg.method == HTTP_GET,
        .now = loop_wall(c->w->loop),
        .html_template = zone_error_page(r->zone, status),
    };
    if (c->w->draining || status == 400 || status == 408 || status == 413 || status == 414 ||
        status == 431 || status == 501 || status == 505 || c->v->refused)
        c->close_after = true; /* what follows on the connection cannot be trusted */
    struct errcache_response resp;
    errcache_respond(c->w->errcache, &page,
                     accept ? http_str_ptr(&c->parser.msg, accept->value) : NULL,
                     accept ? accept->value.len : 0, c->close_after, cfg == c->w->cfg, &resp);
    r->status = status;
    r->response_started = true;
    r->response_done = true;
    r->body_sent = r->head_method ? 0 : resp.body_len;
    c->state = CLIENT_FORWARDING;
    count_request(c);
    struct iovec iov[2] = {{(void *)resp.head, resp.head_len}, {(void *)resp.body, r->body_sent}};
    if (send_iov(c, iov, 2) == 0 && buf_used(&c->out) == 0)
        finish_request(c);
}

static void
respond_rejected(struct client *c)
{
    upstream_abort(&c->req.up);
    respond_error(c, c->req.status, c->req.refusal, NULL);
}

/* ---------------------------------------------------------------- routing a request */

/* Copy a string into the request's strings; returns its offset (NUL-terminated). */
static uint32_t
keep_string(struct request *r, const char *s, size_t len)
{
    if (r->strings.len == 0)
        buf_append(&r->strings, "-", 2); /* offset 0 stays "-" */
    uint32_t off = (uint32_t)r->strings.len;
    if (buf_reserve(&r->strings, len + 1) == 0) { /* no cap: it fits */
        memcpy(buf_tail(&r->strings), s, len);
        buf_tail(&r->strings)[len] = '\0';
        r->strings.len += len + 1;
    }
    return off;
}

static void
keep_request_id(struct client *c)
{
    const struct http_header *h = http_msg_field(&c->parser.msg, HTTP_FIELD_X_REQUEST_ID);
    struct request *r = &c->req;
    if (h != NULL && admit_request_id_valid(http_str_ptr(&c->parser.msg, h->value), h->value.len,
                                             CLIENT_MAX_REQUEST_ID)) {
        r->rid_off = keep_string(r, http_str_ptr(&c->parser.msg, h->value), h->value.len);
        return;
    }
    char rid[33];
    worker_request_id(c->w, rid);
    r->rid_off = keep_string(r, rid, 32);
}

/* A request that breaks RFC 9110/9112 (http_request_check): its status, with the reason
 * logged and told to the visitor. */
static int
refuse_malformed(struct client *c, int status, const char *reason, const char **message)
{
    struct request *r = &c->req;
    const char *what = status == 501   ? "uses a transfer coding this server does not support"
                       : status == 505 ? "is not HTTP/1.x"
                                       : "is malformed";
    log_info("client %s: request %s (%s); answering %d", c->ip, what, reason, status);
    count_limit(c, status == 501   ? METRICS_LIMIT_TRANSFER_CODING
                   : status == 505 ? METRICS_LIMIT_VERSION
                                   : METRICS_LIMIT_MALFORMED);
    snprintf(r->refusal_text, sizeof(r->refusal_text), "The request %s (%s) and cannot be served.",
             what, reason);
    *message = r->refusal_text;
    return status;
}

/* Why a request is refused before it reaches an origin (admit.h); 0 when it is not. */
static int
check_request(struct client *c, const char **message)
{
    const char *reason;
    int status = admit_head_check(&c->parser.msg, &c->req.facts, &reason);
    if (status == 405)
        c->close_after = true; /* what follows would be tunnel bytes, not HTTP */
    if (status == 405 || status == 417) {
        *message = reason;
        return status;
    }
    return status != 0 ? refuse_malformed(c, status, reason, message) : 0;
}

/* The host an origin gets with origin_host: visitor: the name the cache key holds (lower
 * case, no trailing dot, no port), so no two responses under one key can differ by it. */
static void
keep_origin_host(struct client *c, const char *name, size_t n)
{
    struct request *r = &c->req;
    char text[260];
    if (memchr(name, ':', n) == NULL) {
        r->origin_host_off = r->name_off;
        return;
    }
    text[0] = '[';
    memcpy(text + 1, name, n);
    text[n + 1] = ']';
    r->origin_host_off = keep_string(r, text, n + 2);
}

/* Which zone serves this request; sets r->host_off and, for a valid host, its normalised
 * name (name_off: 0 when it is not a host name). NULL means 421 (or 400, invalid). */
static const struct config_zone *
route(struct client *c)
{
    struct request *r = &c->req;
    struct host_memo *memo = &c->w->host_memo;
    const char *host = r->facts.host;
    size_t len = r->facts.host_len;
    r->host_off = keep_string(r, host, len);
    char normalised[256];
    const char *name = memo->name;
    size_t n = memo->name_len;
    const struct config_zone *z = memo->zone;
    /* The same Host as the last request under the current configuration: its name and
     * zone again, without normalising and matching it (a fifth of a hit's own work). */
    if (memo->cfg != r->cfg || len != memo->raw_len || memcmp(host, memo->raw, len) != 0) {
        int k = zone_host_normalise(host, len, normalised, sizeof(normalised));
        if (k < 0)
            return NULL;
        name = normalised;
        n = (size_t)k;
        z = zone_match(r->cfg, name, n);
        if (r->cfg == c->w->cfg && len <= sizeof(memo->raw) && n <= sizeof(memo->name)) {
            memo->cfg = r->cfg; /* only the worker's own: an older one may be freed and its
                                 * address reused */
            memo->zone = z;
            memo->raw_len = (uint8_t)len;
            memo->name_len = (uint8_t)n;
            memcpy(memo->raw, host, len);
            memcpy(memo->name, name, n);
        }
    }
    r->name_off = keep_string(r, name, n);
    r->name_len = (uint32_t)n;
    keep_origin_host(c, name, n);
    return z;
}

/* ---------------------------------------------------------------- the origin request */

/* "Name: value\r\n", name given with its colon and space. */
static void
append_field(struct buf *head, const char *name, const char *value)
{
    buf_append_str(head, name);
    buf_append_str(head, value);
    buf_append(head, "\r\n", 2);
}

static void
append_field_u64(struct buf *head, const char *name, uint64_t value)
{
    buf_append_str(head, name);
    buf_append_u64(head, value);
    buf_append(head, "\r\n", 2);
}

static void
append_forwarded_for(struct client *c, struct buf *head)
{
    const struct http_msg *m = &c->parser.msg;
    buf_append_str(head, "X-Forwarded-For: ");
    for (const struct http_header *h = http_msg_field(m, HTTP_FIELD_X_FORWARDED_FOR); h != NULL;
         h = http_msg_field_next(m, HTTP_FIELD_X_FORWARDED_FOR, h)) {
        buf_append(head, http_str_ptr(m, h->value), h->value.len);
        buf_append_str(head, ", ");
    }
    buf_append_str(head, c->ip);
    buf_append(head, "\r\n", 2);
}

/* Fields an origin may act on although no cache key holds them (cache poisoning): not
 * forwarded unless the zone lists them in pass_headers. */
static bool
unkeyed_field(const struct config_zone *z, const char *name, size_t len)
{
    static const char *const unkeyed[] = {
        "X-Forwarded-Host", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Host",
        "X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-HTTP-Method",
        "X-Method-Override", "X-Original-Host",
    };
    bool listed = false;
    if (len == 0 || (name[0] | 0x20) != 'x')
        return false; /* every one of them starts with X */
    for (size_t i = 0; i < ARRAY_SIZE(unkeyed) && !listed; i++)
        listed = str_ieq(name, len, unkeyed[i]);
    for (size_t i = 0; listed && i < z->npass_headers; i++)
        if (str_ieq(name, len, z->pass_headers[i]))
            return false;
    return listed;
}

/* Fields the edge replaces or consumes instead of forwarding; f is the name's known
 * field (http_field_of). */
static bool
replaced_request_field(const struct config_zone *z, enum http_field f, const char *name,
                       size_t len)
{
    switch (f) {
    case HTTP_FIELD_HOST:
    case HTTP_FIELD_EXPECT:
    case HTTP_FIELD_X_REQUEST_ID: return true;
    case HTTP_FIELD_X_FORWARDED_FOR: return z->add_x_forwarded_for;
    case HTTP_FIELD_X_FORWARDED_PROTO: return z->add_x_forwarded_proto;
    case HTTP_FIELD_OTHER: return unkeyed_field(z, name, len);
    default: return false;
    }
}

/* "X_Forwarded_For" is X-Forwarded-For to an origin that reads fields by CGI-style names
 * (HTTP_X_FORWARDED_FOR): a field with '_' in its name is dropped when its '-' form is
 * one the edge drops or replaces (nginx drops every such field by default). */
static bool
underscore_alias(const struct http_msg *m, const struct config_zone *z, const char *name,
                 size_t len)
{
    char dashed[64];
    if (len >= sizeof(dashed) || memchr(name, '_', len) == NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        dashed[i] = name[i] == '_' ? '-' : name[i];
    return http_name_is_hop(m, dashed, len) ||
           replaced_request_field(z, http_field_of(dashed, len), dashed, len);
}

/* Revalidate an expired object (RFC 9111 4.3.1) with its validators. true when sent. */
static bool
add_validators(struct buf *head, const struct cache_obj *o)
{
    char v[256];
    bool sent = false;
    if (o != NULL && cache_obj_field(o, "ETag", v, sizeof(v))) {
        buf_printf(head, "If-None-Match: %s\r\n", v);
        sent = true;
    }
    if (o != NULL && cache_obj_field(o, "Last-Modified", v, sizeof(v))) {
        buf_printf(head, "If-Modified-Since: %s\r\n", v);
        sent = true;
    }
    return sent;
}

/* A fetch that may fill the cache asks for the whole object: the visitor's range and
 * conditionals are answered by the edge, from the object, as for every other visitor. */
static bool
answered_by_edge(const struct client *c, enum http_field f)
{
    return c->req.cache.eligible && c->parser.msg.method == HTTP_GET &&
           (f == HTTP_FIELD_RANGE || f == HTTP_FIELD_IF_RANGE || f == HTTP_FIELD_IF_NONE_MATCH ||
            f == HTTP_FIELD_IF_MODIFIED_SINCE);
}

/* The request line and fields for the origin (the upstream adds Host), with the validators
 * of validate (an expired object) for a GET that may fill the cache. true when sent. */
static bool
build_origin_head(struct client *c, struct buf *head, const struct cache_obj *validate)
{
    const struct http_msg *m = &c->parser.msg;
    const struct config_zone *z = c->req.zone;
    size_t ulen = c->req.facts.origin_target_len;
    const char *url = c->req.facts.origin_target;
    buf_append_str(head, http_method_name(m->method));
    buf_append_str(head, url[0] == '?' ? " /" : " ");
    buf_append(head, url, ulen);
    buf_append_str(head, " HTTP/1.1\r\n");
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        const char *name = http_str_ptr(m, h->name);
        enum http_field f = http_header_field(m, h);
        if (http_msg_is_hop_header(m, h) || replaced_request_field(z, f, name, h->name.len) ||
            underscore_alias(m, z, name, h->name.len) || answered_by_edge(c, f))
            continue;
        buf_append(head, name, h->name.len);
        buf_append_str(head, ": ");
        buf_append(head, http_str_ptr(m, h->value), h->value.len);
        buf_append_str(head, "\r\n");
    }
    if (m->chunked)
        buf_append_str(head, "Transfer-Encoding: chunked\r\n");
    else if (m->has_content_length)
        append_field_u64(head, "Content-Length: ", m->content_length);
    if (z->add_x_forwarded_for)
        append_forwarded_for(c, head);
    if (z->add_x_forwarded_proto)
        buf_append_str(head, "X-Forwarded-Proto: http\r\n");
    if (z->add_via)
        append_field(head, "Via: 1.1 ", c->req.cfg->edge_name);
    bool validating = c->req.cache.eligible && m->method == HTTP_GET &&
                      add_validators(head, validate);
    append_field(head, "X-Request-Id: ", req_string(c, c->req.rid_off));
    buf_append(head, "\r\n", 2);
    return validating;
}

static const struct upstream_ops upstream_ops;

/* The Host the origin gets: NULL for the origin's own host[:port]. */
static const char *
origin_host_for(struct client *c)
{
    const struct config_zone *z = c->req.zone;
    if (z->origin_host == CONFIG_HOST_VISITOR)
        return req_string(c, c->req.origin_host_off);
    return z->origin_host == CONFIG_HOST_FIXED ? z->origin_host_value : NULL;
}

static void
start_fetch(struct client *c)
{
    const struct http_msg *m = &c->parser.msg;
    struct request *r = &c->req;
    const struct config_zone *z = r->zone;
    struct upstream_request ur = {
        .probe_origin = -1,
        .cfg = r->cfg,
        .zone = z,
        .stats = r->stats,
        .head_method = m->method == HTTP_HEAD,
        .idempotent = m->method == HTTP_GET || m->method == HTTP_HEAD ||
                      m->method == HTTP_PUT || m->method == HTTP_DELETE ||
                      m->method == HTTP_OPTIONS || m->method == HTTP_TRACE,
        .has_body = m->chunked || m->content_length > 0,
        .body_chunked = m->chunked,
        .host = origin_host_for(c),
    };
    if (!ur.has_body && upstream_zone_down(c->w, &ur, &r->err, &r->down_attempt)) {
        r->zone_down = true; /* no fetch: answered at once, or when the message ends */
        if (!c->v->feeding)
            answer_zone_down(c);
        return;
    }
    buf_reset(&c->origin_head);
    r->cache.revalidating = build_origin_head(c, &c->origin_head, r->cache.stale);
    r->up = upstream_start(c->w, &ur, &c->origin_head, &upstream_ops, c);
}

/* ---------------------------------------------------------------- the cache */

#define ORIGIN_FAILED_MESSAGE \
    "The edge server could not get a valid response from the website's origin server."

static void client_pump(struct client *c, const struct iovec *head, int nhead);

/* Answer from object o with the X-Cache word of result; err set: a stale copy instead of an
 * error. The head goes out with the first body bytes, from the object's own memory. */
static void
cache_answer(struct client *c, struct cache_obj *o, enum metrics_cache result,
             const struct proxy_error *err)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    char buf[CACHED_FIELDS_SIZE], ps[512];
    struct iovec iov[CACHED_HEAD_IOV];
    int niov, status;
    bool close;
    if (err != NULL)
        proxy_error_header(err, r->cfg->edge_name, r->zone->expose_details, ps, sizeof(ps));
    if (c->w->draining)
        c->close_after = true;
    struct cached_reply rep = {
        .req = &c->parser.msg,
        .edge_name = r->cfg->edge_name,
        .request_id = req_string(c, r->rid_off),
        .result = result,
        .proxy_status = err ? ps : NULL,
        .fwd_status = v->fwd_status,
        .collapsed = v->collapsed,
        .via = r->zone->add_via,
        .head_method = r->head_method,
        .close = c->close_after,
        .now = (time_t)loop_wall(c->w->loop),
        .memo = c->w->hit_fields,
    };
    v->result = result;
    c->state = CLIENT_FORWARDING;
    if (cached_reply_prepare(&v->send, o, &rep, buf, sizeof(buf), iov, &niov, &status, &close) < 0) {
        /* A range of a fill of unknown length: answered when the fill completes. */
        v->awaiting_length = true;
        v->send.obj = cache_obj_acquire(o);
        if (r->up == NULL && !cache_obj_subscribe(o, &v->waiter, CACHE_OBJ_FILLING, UINT64_MAX)) {
            v->awaiting_length = false; /* it completed meanwhile */
            cache_answer(c, o, result, err);
        }
        return;
    }
    c->close_after |= close;
    r->status = status;
    r->response_started = true;
    count_request(c);
    client_pump(c, iov, niov);
}

static void
pump_sent(struct client *c)
{
    struct request *r = &c->req;
    cached_send_clear(&r->cache.send);
    r->response_done = true;
    /* Its own fetch has brought the whole body but is not complete yet (its origin's
     * message ends in this same parse): on_origin_complete finishes the request, so the
     * upstream is not handed to a refresh just to see that end. */
    if (r->up != NULL && r->cache.fill != NULL)
        return;
    finish_request(c);
}

/* The fill this visitor reads was cut (origin, cache.max_object, memory). */
static void
pump_cut(struct client *c)
{
    struct request *r = &c->req;
    log_info("client %s: the stored response it was reading while it was fetched was cut "
             "short; closing (request %s)", c->ip, req_string(c, r->rid_off));
    r->failed = true;
    r->err.type = PROXY_ERR_HTTP_RESPONSE_INCOMPLETE;
    abort_response(c);
}

/* In a pass of pipelined answers, a small answer from a complete object is queued (its
 * body copied once into c->out) so that the whole pass leaves in one write. false: it is
 * to be written now (with what is queued before it): a big body, a range, a fill. */
static bool
queue_answer(struct client *c, const struct iovec *head, int nhead)
{
    struct request *r = &c->req;
    struct cached_send *s = &r->cache.send;
    struct cached_count moved = {0};
    bool chunked;
    if (!c->batching || c->close_after || writes_blocked(c->v))
        return false;
    if (s->obj != NULL && (!s->whole || cache_obj_state(s->obj) != CACHE_OBJ_COMPLETE ||
                           cache_obj_available(s->obj) - s->pos > CLIENT_BATCH_COPY))
        return false;
    size_t before = buf_used(&c->out);
    for (int i = 0; i < nhead; i++)
        buf_append(&c->out, head[i].iov_base, head[i].iov_len);
    if (s->obj != NULL)
        cached_send_detach(s, &c->out, &chunked, &moved);
    STAT_ADD(r->stats->bytes_sent, buf_used(&c->out) - before);
    r->body_sent += moved.body;
    return true;
}

/* The head of the object this visitor's own fetch fills, before any of its body: it waits
 * in c->out for the first body bytes, which the origin's read that brought the head
 * usually holds too, so that head and body leave in one write; at the latest it leaves at
 * the end of the iteration (on_flush_due). Counted when written, as the pump counts. */
static bool
hold_fill_head(struct client *c, const struct iovec *head, int nhead)
{
    struct request *r = &c->req;
    struct cached_send *s = &r->cache.send;
    if (r->up == NULL || s->obj == NULL || s->obj != r->cache.fill || c->batching ||
        writes_blocked(c->v) || cache_obj_available(s->obj) > s->pos)
        return false;
    for (int i = 0; i < nhead; i++)
        buf_append(&c->out, head[i].iov_base, head[i].iov_len);
    r->head_held = true;
    loop_defer(c->w->loop, &c->flush_defer);
    return true;
}

/* Send what can be sent of the answer from the object; then wait for the socket, for the
 * fill (the fetching visitor is driven by its origin's bytes instead), or finish. With the
 * ring, "send" is to queue the visitor's send: visitor_fill names the bytes at the end of
 * the turn (cached_plan), except a piece that goes with sendfile, written here at once. */
static void
client_pump(struct client *c, const struct iovec *head, int nhead)
{
    struct request *r = &c->req;
    struct cached_send *s = &r->cache.send;
    if (head != NULL && hold_fill_head(c, head, nhead))
        return;
    if (head != NULL && queue_answer(c, head, nhead)) {
        pump_sent(c);
        return;
    }
    r->head_held = false; /* what c->out holds leaves first */
    uint64_t sendfile_max = request_cfg(c)->cache_sendfile_max;
    bool plan = c->v->ring;
    if (plan) {
        for (int i = 0; i < nhead; i++) /* the head's memory is the caller's */
            buf_append(&c->out, head[i].iov_base, head[i].iov_len);
        head = NULL;
        nhead = 0;
    }
    for (;;) {
        struct cached_count n = {0};
        enum cached_pump st;
        if (plan) {
            struct iovec iov[LOOP_SEND_IOV];
            int k;
            st = cached_plan(s, &c->out, iov, LOOP_SEND_IOV, sendfile_max, &k);
            if (st == CACHED_FILE) {
                plan = false;
                continue;
            }
        } else {
            st = cached_pump(s, c->v->io.fd, &c->out, head, nhead, sendfile_max, &n);
            head = NULL;
            nhead = 0;
            STAT_ADD(r->stats->bytes_sent, n.wire);
            r->body_sent += n.body;
            set_interest(c->v, st == CACHED_BLOCKED);
        }
        c->blocked = st == CACHED_BLOCKED || st == CACHED_READY_TO_SEND;
        switch (st) {
        case CACHED_READY_TO_SEND:
            if (!waiting_writable(c->v))
                loop_send_queue(c->w->loop, &c->v->send);
            arm_forwarding_timer(c);
            return;
        case CACHED_SENT:
            pump_sent(c);
            return;
        case CACHED_BLOCKED:
            arm_forwarding_timer(c);
            return;
        case CACHED_WAIT:
            arm_forwarding_timer(c); /* the fill, not the visitor, is the holdup now */
            if (r->up != NULL ||
                cache_obj_subscribe(s->obj, &r->cache.waiter, CACHE_OBJ_FILLING, s->pos))
                return;
            continue; /* it moved on meanwhile */
        case CACHED_CUT:
            pump_cut(c);
            return;
        case CACHED_ERROR:
            log_info("client %s: write failed (%s); closing", c->ip, strerror(errno));
            client_close(c);
            return;
        case CACHED_FILE:
            return; /* taken above */
        }
    }
}

/* A request's own fetch, not waiting for anyone's: one that may still fill the cache. */
static void
fetch_on_own(struct client *c)
{
    struct cached_visit *v = &c->req.cache;
    v->waiting = false;
    loop_timer_stop(c->w->loop, &c->wait_timer);
    cache_obj_release(&v->busy);
    start_fetch(c);
}

static void
serve_stale(struct client *c, const struct proxy_error *e)
{
    cache_answer(c, c->req.cache.stale, METRICS_CACHE_STALE, e);
}

/* The fill it waited for failed before a head: the origin's error is this visitor's too. */
static const struct proxy_error *
take_wait_error(struct client *c)
{
    struct request *r = &c->req;
    const struct proxy_error *e = cached_wait_error(r->cache.busy);
    if (e != NULL) {
        r->err = *e;
        r->failed = true;
        snprintf(r->origin, sizeof(r->origin), "%s", r->err.addr);
    }
    return e ? &r->err : NULL;
}

/* Waiting for another visitor's fill: wait on (bounded by cache.lock_timeout), or act on
 * its head or failure. */
static void
cache_wait(struct client *c)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    time_t now = (time_t)loop_wall(c->w->loop);
    enum cached_wake next = cached_wait_next(v, c->w, &c->parser.msg, r->cfg->cache_lock_timeout,
                                             now);
    if (next == CACHED_WAKE_WAIT) {
        if (!loop_timer_armed(&c->wait_timer))
            loop_timer_set(c->w->loop, &c->wait_timer, r->cfg->cache_lock_timeout);
        return;
    }
    loop_timer_stop(c->w->loop, &c->wait_timer);
    if (next == CACHED_WAKE_READ) {
        v->collapsed = true;
        cache_answer(c, v->busy, METRICS_CACHE_HIT, NULL);
    } else if (next == CACHED_WAKE_STALE) {
        serve_stale(c, take_wait_error(c));
    } else if (next == CACHED_WAKE_ERROR) {
        respond_error(c, proxy_error_status(take_wait_error(c)->type), ORIGIN_FAILED_MESSAGE,
                      &r->err);
    } else {
        fetch_on_own(c);
    }
}

/* An object this visitor waits on moved: its head came, bytes arrived, or it ended. */
static void
on_cache_progress(struct client *c)
{
    struct cached_visit *v = &c->req.cache;
    if (c->closed)
        return;
    if (v->waiting) {
        cache_wait(c);
    } else if (v->awaiting_length) {
        struct cache_obj *o = cache_obj_acquire(v->send.obj);
        v->awaiting_length = false;
        cache_answer(c, o, v->result, NULL);
        cache_obj_release(&o);
    } else if (cached_send_active(&v->send) && !c->blocked) {
        client_pump(c, NULL, 0);
    }
}

static void
on_cache_wake(struct cache_waiter *waiter)
{
    on_cache_progress(container_of(waiter, struct client, req.cache.waiter));
}

static void
on_wait_timeout(struct loop_timer *t)
{
    struct client *c = container_of(t, struct client, wait_timer);
    struct cached_visit *v = &c->req.cache;
    log_info("client %s: waited %llu ms (cache.lock_timeout) for another visitor's fetch of "
             "the same object; fetching on its own (request %s)", c->ip,
             (unsigned long long)c->req.cfg->cache_lock_timeout,
             req_string(c, c->req.rid_off));
    cache_obj_unsubscribe(v->busy, &v->waiter);
    fetch_on_own(c);
}

/* Refresh the stored object in the background (stale-while-revalidate), as busy's filler. */
static void
start_refresh(struct client *c)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    struct buf head;
    buf_init(&head, SIZE_MAX);
    struct refresh_request rr = {
        .cfg = r->cfg,
        .zone = r->zone,
        .visitor = &c->parser.msg,
        .busy = v->busy,
        .stale = v->hit,
        .revalidating = build_origin_head(c, &head, v->hit),
        .host = origin_host_for(c),
        .request_time = v->request_time,
    };
    refresh_start(c->w, &rr, &head);
    buf_free(&head);
    cache_obj_release(&v->busy);
    v->leading = false;
}

/* The request's cache key into the worker's key buffer (cached_key). */
static bool
request_key(struct client *c)
{
    const struct request *r = &c->req;
    return cached_key(c->w, r->zone, req_string(c, r->name_off), r->name_len,
                      r->facts.origin_target, r->facts.origin_target_len);
}

/* Keep the key a fetch of this request may fill or mark (the worker's key buffer is the
 * next request's by the time the origin answers). */
static void
keep_key(struct client *c)
{
    struct request *r = &c->req;
    r->key_len = (uint32_t)buf_used(&c->w->cache_key);
    r->key_off = keep_string(r, buf_head(&c->w->cache_key), r->key_len);
}

/* Look the request up. true: no fetch now (a hit is answered when the request message
 * ends, or the request waits for another visitor's fill). */
static bool
cache_consider(struct client *c)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    if (!r->zone->cache_enabled)
        return false;
    cache_waiter_init(&v->waiter, &c->w->notifier, on_cache_wake);
    v->result = METRICS_CACHE_BYPASS;
    if (!request_key(c))
        return false;
    switch (cached_lookup(v, c->w, r->zone, &c->parser.msg, (time_t)loop_wall(c->w->loop))) {
    case CACHED_REFRESH:
        start_refresh(c);
        return true;
    case CACHED_HIT:
        return true; /* answered from the object: the key is not needed again */
    case CACHED_JOIN:
        keep_key(c); /* a failed fill leaves it to fetch on its own */
        v->waiting = true;
        return true;
    case CACHED_FETCH:
        keep_key(c);
        break;
    case CACHED_BYPASS:
        break;
    }
    return false;
}

/* A fill nobody could find (this visitor's own fetch): stored when it completes. */
static struct cache_obj *
anonymous_fill(struct client *c)
{
    return cache_obj_new(req_string(c, c->req.key_off), c->req.key_len);
}

/* The origin's head for a fetch that may fill the cache: a 304 refreshing the stale copy,
 * or a response to store, which this visitor then reads from the object as every other
 * visitor of it does. false: pass it through. */
static bool
cache_take_head(struct client *c, const struct http_msg *resp)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    if (!v->eligible || c->parser.msg.method != HTTP_GET)
        return false;
    struct cached_origin_head h = {
        .cfg = r->cfg,
        .zone = r->zone,
        .req = &c->parser.msg,
        .resp = resp,
        .stale = v->stale,
        .revalidating = v->revalidating,
        .request_time = v->request_time,
        .now = (time_t)loop_wall(c->w->loop),
        .scratch = &c->w->cache_scratch,
        .key = req_string(c, r->key_off),
        .key_len = r->key_len,
        .key_hash = v->key_hash,
        .marked = v->hit_for_miss,
    };
    if (cached_head_refusal(v->busy, &h) != NULL)
        return false; /* passed through; the entry it led failed, the key is marked */
    struct cache_obj *o = v->busy ? cache_obj_acquire(v->busy) : anonymous_fill(c);
    v->revalidated = cached_take_head(o, &h) == CACHED_HEAD_REVALIDATED;
    v->fill = o;
    v->fwd_status = resp->status;
    r->status = resp->status;
    if (!v->revalidated)
        cache_answer(c, o, v->result, NULL);
    return true;
}

/* The visitor leaves: a fetch that fills the cache goes on without it, for the visitors
 * reading or waiting for the object, and to store it. */
static void
cache_leave(struct client *c)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    bool pending = v->leading && v->busy != NULL &&
                   cache_obj_state(v->busy) == CACHE_OBJ_PENDING;
    if (r->up != NULL && (v->fill != NULL || pending)) {
        struct refresh_request rr = {
            .cfg = r->cfg,
            .zone = r->zone,
            .visitor = &c->parser.msg,
            .busy = v->leading ? v->busy : NULL,
            .fill = v->fill,
            .stale = v->stale,
            .revalidating = v->revalidating,
            .revalidated = v->revalidated,
            .host = origin_host_for(c),
            .request_time = v->request_time,
        };
        refresh_adopt(c->w, &r->up, &rr);
        cache_obj_release(&v->fill);
        if (v->leading)
            cache_obj_release(&v->busy);
        v->leading = false;
    }
    loop_timer_stop(c->w->loop, &c->wait_timer);
    cached_visit_clear(v);
    c->blocked = false;
}

/* The fill may not grow (past cache.max_object, or no memory): the others reading it see
 * it cut; this visitor gets what it was not sent of the object (copied once into its
 * queue), then the rest straight from the origin. */
static bool
cache_fill_overflow(struct client *c)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    struct cached_count moved = {0};
    cache_obj_fail(v->fill, CACHE_FAIL_INCOMPLETE, NULL, 0);
    cache_obj_release(&v->fill);
    if (!cached_send_detach(&v->send, &c->out, &r->chunked, &moved)) {
        log_info("client %s: the response outgrew the cache while a range of it was being "
                 "answered; closing (request %s)", c->ip, req_string(c, r->rid_off));
        r->failed = true;
        r->err.type = PROXY_ERR_HTTP_RESPONSE_INCOMPLETE;
        abort_response(c);
        return false;
    }
    STAT_ADD(r->stats->bytes_sent, moved.wire);
    r->body_sent += moved.body;
    c->blocked = false;
    return true;
}

/* The origin answered 500, 502, 503 or 504: RFC 5861 lets stale-if-error cover that too.
 * Serve the stored copy instead (the origin's answer is dropped). */
static bool
stale_for_5xx(struct client *c, const struct http_msg *resp)
{
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    if (!cached_stale_for_5xx(v, resp->status, (time_t)loop_wall(c->w->loop)))
        return false;
    log_warn("origin %s answered %d for \"%s\" (zone \"%s\", request %s); serving the stored "
             "copy (stale-if-error)", upstream_addr(r->up), resp->status,
             req_string(c, r->host_off), r->zone->name, req_string(c, r->rid_off));
    snprintf(r->origin, sizeof(r->origin), "%s", upstream_addr(r->up));
    upstream_abort(&r->up); /* its body is not wanted; the connection is not reused */
    if (v->leading && v->busy != NULL)
        cache_obj_fail(v->busy, CACHE_FAIL_5XX, NULL, 0); /* waiters use their stale copy */
    serve_stale(c, NULL);
    return true;
}

/* The fetch failed: the fill is cut, or the visitors waiting for its head get the error. */
static void
cache_fetch_failed(struct client *c, const struct proxy_error *e)
{
    struct cached_visit *v = &c->req.cache;
    if (v->fill != NULL)
        cache_obj_fail(v->fill, CACHE_FAIL_INCOMPLETE, NULL, 0);
    else if (v->leading && v->busy != NULL)
        cache_obj_fail(v->busy, CACHE_FAIL_ERROR, e, sizeof(*e));
}

/* The origin failed before answering: a stale copy within its stale-if-error window? */
static bool
serve_stale_on_error(struct client *c, const struct proxy_error *e)
{
    struct request *r = &c->req;
    if (r->cache.stale == NULL || r->response_started ||
        !cached_stale_allowed(r->cache.stale, (time_t)loop_wall(c->w->loop)))
        return false;
    serve_stale(c, e);
    return true;
}

/* Check, route and size a request: 0 to serve it, else the status to refuse it with. */
static int
admit_request(struct client *c, const char **message)
{
    struct request *r = &c->req;
    const struct http_msg *m = &c->parser.msg;
    int status = check_request(c, message);
    if (status != 0)
        return status;
    r->zone = route(c);
    if (r->zone == NULL && r->name_off == 0)
        return refuse_malformed(c, 400, "the Host is not a valid host name", message);
    if (r->zone == NULL) {
        *message = "This server does not serve the requested host name.";
        return 421;
    }
    c->parser.max_body = r->zone->max_request_body; /* a chunked body: the parser counts */
    if (r->zone->max_request_body > 0 && m->has_content_length &&
        m->content_length > r->zone->max_request_body) {
        log_info("client %s: request body of %llu bytes is larger than max_request_body of "
                 "zone \"%s\" (%llu bytes); answering 413", c->ip,
                 (unsigned long long)m->content_length, r->zone->name,
                 (unsigned long long)r->zone->max_request_body);
        count_limit(c, METRICS_LIMIT_BODY_SIZE);
        *message = "The request body is larger than this site accepts.";
        return 413;
    }
    return 0;
}

/* A request head was parsed: refuse it, or route it and start the fetch.
 * Returns 0 to read its body, -1 to stop parsing (refused with a body we will not read). */
static int
on_request_head(struct http_parser *p)
{
    struct client *c = p->owner;
    struct request *r = &c->req;
    const struct http_msg *m = &p->msg;
    const char *message = NULL;
    bool has_body = m->chunked || m->content_length > 0;
    r->cfg = worker_config_take(c->w);
    r->start_ms = loop_now(c->w->loop);
    r->head_method = m->method == HTTP_HEAD;
    keep_request_id(c);
    c->state = CLIENT_FORWARDING;
    loop_timer_park(c->w->loop, &c->v->timer); /* the keep-alive timer is set again after */
    c->visitor_closes = !m->keep_alive;
    if (!m->keep_alive || c->w->draining)
        c->close_after = true;
    int status = admit_request(c, &message);
    r->stats = r->zone ? c->w->zone_stats[r->zone->zone_index] : c->w->unknown_zone_stats;
    if (status != 0) {
        c->rejected = true;
        r->status = status;
        r->refusal = message;
        return has_body ? -1 : 0;
    }
    /* A GET with a body ("fat GET") neither uses nor fills the cache (cached.c: BYPASS). */
    if (cache_consider(c))
        return 0; /* a hit: served when the request message ends */
    if (has_body && http_msg_field(m, HTTP_FIELD_EXPECT) != NULL && m->minor >= 1)
        send_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    if (c->closed)
        return -1;
    start_fetch(c);
    return 0;
}

static int
on_request_body(struct http_parser *p, const char *at, size_t len)
{
    struct client *c = p->owner;
    struct request *r = &c->req;
    if (c->rejected || r->up == NULL)
        return 0; /* a refused request's body, or the fetch already ended: drop it */
    STAT_ADD(r->stats->bytes_received, len);
    r->body_received += len; /* the parser stops a body past the zone's max_request_body */
    upstream_send_body(r->up, at, len);
    if (upstream_pending(r->up) >= UPSTREAM_BODY_HIGH)
        r->body_blocked = true;
    return 0;
}

static void
on_request_complete(struct http_parser *p)
{
    struct client *c = p->owner;
    struct request *r = &c->req;
    r->request_done = true;
    if (r->up != NULL && !c->rejected)
        upstream_end_body(r->up);
}

static const struct http_parser_ops request_ops = {
    .on_head = on_request_head,
    .on_body = on_request_body,
    .on_complete = on_request_complete,
};

/* ---------------------------------------------------------------- the origin's response */

/* The origin's end-to-end fields, each as "Name: value\r\n". The spans point into the
 * head's bytes as they came (http_parser), so a line the origin already wrote that way is
 * copied as it is, and consecutive such lines in one copy: four appends a field were a
 * tenth of a pass-through's own work. */
static void
append_response_fields(struct client *c, const struct http_msg *resp, struct buf *head)
{
    const char *s = resp->strings.data;
    size_t run = 0, run_end = 0; /* [run, run_end) of s: lines waiting to be copied */
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        if (http_msg_is_hop_header(resp, h))
            continue;
        size_t at = h->name.off, colon = at + h->name.len, end = h->value.off + h->value.len;
        bool as_sent = h->value.len > 0 && h->value.off == colon + 2 && s[colon] == ':' &&
                       s[colon + 1] == ' ' && end + 2 <= resp->strings.len && s[end] == '\r' &&
                       s[end + 1] == '\n';
        if (as_sent && at == run_end && run_end > run) {
            run_end = end + 2; /* the next line of the run */
            continue;
        }
        if (run_end > run)
            buf_append(head, s + run, run_end - run);
        run = run_end = 0;
        if (as_sent) {
            run = at;
            run_end = end + 2;
            continue;
        }
        buf_append(head, s + at, h->name.len);
        buf_append_str(head, ": ");
        buf_append(head, http_str_ptr(resp, h->value), h->value.len);
        buf_append_str(head, "\r\n");
    }
    if (run_end > run)
        buf_append(head, s + run, run_end - run);
}

/* How the body reaches the visitor: its length as the origin gave it, in chunks for an
 * HTTP/1.1 visitor, or delimited by our close for an HTTP/1.0 one. */
static void
append_framing(struct client *c, const struct http_msg *resp, struct buf *head)
{
    struct request *r = &c->req;
    bool no_body = r->head_method || resp->status == 204 || resp->status == 304 ||
                   (resp->status >= 100 && resp->status < 200);
    if (resp->has_content_length && !resp->chunked && resp->status != 204) {
        append_field_u64(head, "Content-Length: ", resp->content_length);
    } else if (!no_body) {
        if (c->parser.msg.minor >= 1) {
            r->chunked = true;
            buf_append_str(head, "Transfer-Encoding: chunked\r\n");
        } else {
            c->close_after = true; /* HTTP/1.0: the close ends the body */
        }
    }
}

/* Via, X-Request-Id and Connection, and the end of the head. */
static void
append_edge_fields(struct client *c, const struct http_msg *resp, struct buf *head)
{
    struct request *r = &c->req;
    if (r->zone->add_via)
        append_field(head, "Via: 1.1 ", r->cfg->edge_name);
    if (http_msg_field(resp, HTTP_FIELD_X_REQUEST_ID) == NULL)
        append_field(head, "X-Request-Id: ", req_string(c, r->rid_off));
    if (c->close_after)
        buf_append_str(head, "Connection: close\r\n");
    else if (c->parser.msg.minor == 0)
        buf_append_str(head, "Connection: keep-alive\r\n");
    buf_append(head, "\r\n", 2);
}

static void
on_origin_head(void *owner, const struct http_msg *resp)
{
    struct client *c = owner;
    struct request *r = &c->req;
    struct buf *head = &c->out; /* built in place: it leaves with the first body bytes */
    size_t before = buf_used(head);
    if (stale_for_5xx(c, resp))
        return;
    str_copy(r->origin, sizeof(r->origin), upstream_addr(r->up));
    r->origin_ms = upstream_header_ms(r->up);
    if (cache_take_head(c, resp))
        return; /* answered from the object it fills (or, for a 304, when it completes) */
    r->status = resp->status;
    r->response_started = true;
    if (c->w->draining)
        c->close_after = true;
    buf_append_str(head, "HTTP/1.1 ");
    buf_append_u64(head, (uint64_t)resp->status);
    buf_append(head, " ", 1);
    if (resp->reason.len > 0)
        buf_append(head, http_str_ptr(resp, resp->reason), resp->reason.len);
    else
        buf_append_str(head, http_status_reason(resp->status));
    buf_append_str(head, "\r\n");
    append_response_fields(c, resp, head);
    append_framing(c, resp, head);
    cached_pass_fields(&r->cache, r->cfg->edge_name, resp->status, head);
    append_edge_fields(c, resp, head);
    count_request(c);
    out_appended(c, buf_used(head) - before);
}

static void
on_origin_body(void *owner, const char *data, size_t len)
{
    struct client *c = owner;
    struct request *r = &c->req;
    if (len == 0)
        return;
    if (r->cache.fill != NULL) {
        if (cache_obj_append(r->cache.fill, data, len)) {
            if (!c->blocked && cached_send_active(&r->cache.send))
                client_pump(c, NULL, 0);
            return;
        }
        if (!cache_fill_overflow(c))
            return; /* closed */
    }
    r->body_sent += len;
    if (!r->chunked) {
        send_bytes(c, data, len);
        return;
    }
    char size[24];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    struct iovec iov[3] = {{size, (size_t)n}, {(void *)data, len}, {"\r\n", 2}};
    send_iov(c, iov, 3);
}

static void
on_origin_complete(void *owner)
{
    struct client *c = owner;
    struct request *r = &c->req;
    struct cached_visit *v = &r->cache;
    r->up = NULL; /* the upstream is gone after this callback */
    if (v->fill != NULL) {
        cache_obj_finish(v->fill); /* stored, and every visitor reading it is told */
        if (r->response_done)
            finish_request(c); /* its answer went out with the last body bytes */
        else if (v->revalidated)
            cache_answer(c, v->fill, METRICS_CACHE_REVALIDATED, NULL);
        else if (v->awaiting_length)
            on_cache_progress(c);
        else if (!c->blocked && cached_send_active(&v->send))
            client_pump(c, NULL, 0);
        return;
    }
    r->response_done = true;
    if (r->chunked && send_bytes(c, "0\r\n\r\n", 5) < 0)
        return;
    if (buf_used(&c->out) == 0)
        finish_request(c);
}

/* One error-log line per failure, but per zone, cause and origin address only the first
 * of each second in full: the others are counted into one line at the second's end (they
 * all are in the metrics, the access log and the stories). */
static void
log_origin_failure(struct client *c, const struct proxy_error *e)
{
    const struct http_msg *m = &c->parser.msg;
    const char *addr = e->addr[0] ? e->addr : "-";
    char key[192], *summary;
    size_t n = strnlen(c->req.zone->name, 100);
    memcpy(key, c->req.zone->name, n); /* zone \n type \n address */
    key[n++] = '\n';
    key[n++] = (char)('A' + (int)e->type);
    key[n++] = '\n';
    str_copy(key + n, sizeof(key) - n, addr);
    if (!log_repeat_first(c->w->origin_failures, key, &summary))
        return;
    snprintf(summary, LOG_REPEAT_SUMMARY, "origin %s failed: %s (%s) in phase %s, zone \"%s\"",
             addr, e->detail, proxy_error_name(e->type), proxy_phase_name(e->phase),
             c->req.zone->name);
    log_error("origin %s failed: %s (%s) in phase %s after %llu ms, while proxying \"%s %.*s\" "
              "for client %s, zone \"%s\", host \"%s\", request %s",
              addr, e->detail, proxy_error_name(e->type),
              proxy_phase_name(e->phase), (unsigned long long)e->elapsed_ms,
              http_method_name(m->method), (int)MIN(m->url.len, 512u), http_str_ptr(m, m->url),
              c->ip, c->req.zone->name, req_string(c, c->req.host_off),
              req_string(c, c->req.rid_off));
}

/* Keep what was tried for the owner's /requests/<id>. */
static void
record_story(struct client *c, const struct proxy_error *e, int status,
             const struct story_attempt *tried, int n)
{
    const struct http_msg *m = &c->parser.msg;
    struct request *r = &c->req;
    struct story st = {.time = loop_wall(c->w->loop), .status = status, .error = *e};
    str_copy(st.request_id, sizeof(st.request_id), req_string(c, r->rid_off));
    str_copy(st.zone, sizeof(st.zone), r->zone->name);
    str_copy(st.host, sizeof(st.host), req_string(c, r->host_off));
    str_copy(st.method, sizeof(st.method), http_method_name(m->method));
    size_t tlen = MIN(m->url.len, sizeof(st.target) - 1);
    memcpy(st.target, http_str_ptr(m, m->url), tlen);
    st.target[tlen] = '\0';
    st.nattempts = MIN(n, STORY_MAX_ATTEMPTS);
    memcpy(st.attempts, tried, sizeof(*tried) * (size_t)st.nattempts);
    story_record(&st, c->w->id);
}

/* The request failed at the origin (e), after the attempts tried: its story and log line,
 * then a stale copy, the edge's error response, or (the head is gone already) the end of
 * the connection. */
static void
origin_failed(struct client *c, const struct proxy_error *e, const struct story_attempt *tried,
              int ntried)
{
    struct request *r = &c->req;
    record_story(c, e, r->response_started ? r->status : proxy_error_status(e->type), tried,
                 ntried);
    r->failed = true;
    if (e != &r->err)
        r->err = *e;
    str_copy(r->origin, sizeof(r->origin), e->addr);
    log_origin_failure(c, e);
    cache_fetch_failed(c, e);
    if (serve_stale_on_error(c, e))
        return;
    if (!r->response_started) {
        respond_error(c, proxy_error_status(e->type), ORIGIN_FAILED_MESSAGE, e);
        return;
    }
    abort_response(c);
}

static void
on_origin_error(void *owner, const struct proxy_error *e)
{
    struct client *c = owner;
    int n = 0;
    const struct story_attempt *tried = upstream_attempts(c->req.up, &n);
    c->req.up = NULL; /* the upstream is gone after this callback */
    origin_failed(c, e, tried, n);
}

/* Every origin of the zone is known down: the answer a fetch would have got, at once. */
static void
answer_zone_down(struct client *c)
{
    struct request *r = &c->req;
    r->zone_down = false;
    origin_failed(c, &r->err, &r->down_attempt, 1);
}

static void
on_origin_drained(void *owner)
{
    struct client *c = owner;
    if (!c->req.body_blocked)
        return;
    c->req.body_blocked = false;
    set_interest(c->v, waiting_writable(c->v));
    if (kept(c->v) > 0)
        loop_defer(c->w->loop, &c->next_defer);
    arm_forwarding_timer(c);
}

static const struct upstream_ops upstream_ops = {
    .on_head = on_origin_head,
    .on_body = on_origin_body,
    .on_complete = on_origin_complete,
    .on_error = on_origin_error,
    .on_drained = on_origin_drained,
};

/* ---------------------------------------------------------------- reading from the visitor */

/* A parse error's status, limit and log words: a limit that acted, or a malformed request. */
static int
parse_error_kind(struct client *c, enum metrics_limit *limit, char *what, size_t len)
{
    const struct http_parser *p = &c->parser;
    const struct config *cfg = c->w->cfg;
    if (p->url_too_long) {
        *limit = METRICS_LIMIT_REQUEST_LINE;
        snprintf(what, len, "request line longer than client.max_request_line (%llu bytes)",
                 (unsigned long long)MIN(cfg->client_max_request_line, p->max_head));
        return 414;
    }
    if (p->head_too_large || p->too_many_headers) {
        *limit = p->head_too_large ? METRICS_LIMIT_HEADER_SIZE : METRICS_LIMIT_HEADER_FIELDS;
        snprintf(what, len, p->head_too_large
                                ? "header section larger than client.max_header_size (%zu bytes)"
                                : "more than client.max_header_fields (%zu) header fields",
                 p->head_too_large ? p->max_head : p->max_fields);
        return 431;
    }
    if (p->body_too_large) {
        *limit = METRICS_LIMIT_BODY_SIZE;
        snprintf(what, len, "request body larger than max_request_body of zone \"%s\" "
                            "(%llu bytes)", c->req.zone ? c->req.zone->name : "-",
                 (unsigned long long)p->max_body);
        return 413;
    }
    *limit = METRICS_LIMIT_MALFORMED;
    snprintf(what, len, "malformed request (%s)", http_parser_error_text(p));
    return 400;
}

static const char *
parse_error_message(int status)
{
    switch (status) {
    case 414: return "The request line is longer than this server accepts.";
    case 431: return "The request header section is larger than this server accepts.";
    case 413: return "The request body is larger than this site accepts.";
    default: return "The request is malformed and cannot be served.";
    }
}

/* The parser stopped on an error: our refusal, a limit, or a malformed request. */
static void
on_parse_error(struct client *c)
{
    enum metrics_limit limit;
    char what[160];
    c->close_after = true;
    if (c->rejected && !c->req.response_started) {
        respond_rejected(c);
        return;
    }
    int status = parse_error_kind(c, &limit, what, sizeof(what));
    count_limit(c, limit);
    upstream_abort(&c->req.up);
    if (c->req.response_started) {
        log_info("client %s: %s after the response started; closing", c->ip, what);
        client_close(c); /* cannot answer twice: the visitor sees the connection end */
        return;
    }
    log_info("client %s: %s; answering %d", c->ip, what, status);
    respond_error(c, status, parse_error_message(status), NULL);
}

/* The request message ended: answer it now unless the answer waits for an origin. */
static void
answer_parsed(struct client *c)
{
    if (c->rejected)
        respond_rejected(c);
    else if (c->req.cache.hit != NULL)
        cache_answer(c, c->req.cache.hit, c->req.cache.result, NULL);
    else if (c->req.cache.waiting)
        cache_wait(c);
    else if (c->req.zone_down)
        answer_zone_down(c);
}

/* A request starts on v (*fresh) or goes on. */
static struct client *
begin_request(struct visitor *v, bool *fresh)
{
    struct client *c = v->busy != NULL ? v->busy : client_take(v);
    *fresh = c->state == CLIENT_IDLE;
    if (!*fresh)
        return c;
    c->state = CLIENT_READING_HEAD;
    c->rejected = false;
    return c;
}

/* A request message was parsed: answered at once, and finished here when more pipelined
 * requests follow in this pass. false ends the pass (the answer waits, or the connection
 * is done). */
static bool
on_parsed(struct client *c)
{
    struct visitor *v = c->v;
    arm_forwarding_timer(c);
    c->batching = v->pending > 0 && !c->close_after;
    answer_parsed(c);
    c->batching = false;
    if (c->closed || v->busy != c)
        return !c->closed && v->state == VISITOR_BUSY;
    if (c->state == CLIENT_IDLE) /* answered and finished already */
        return buf_used(&c->out) < CLIENT_OUT_HIGH;
    if (!c->req.response_done || c->close_after || buf_used(&c->out) >= CLIENT_OUT_HIGH ||
        (v->pending == 0 && buf_used(&c->out) > 0))
        return false; /* waits for an origin, or for its bytes to go (finished then) */
    finish_request(c); /* queued with the next responses */
    return !c->closed;
}

/* Parse what the visitor sent and serve every complete request in it, in order, while each
 * can be answered at once (a cache hit, the edge's own response): their responses are
 * queued and leave in one write at the end of the pass. A request that must wait (an
 * origin fetch) ends the pass, and so do CLIENT_BATCH_MAX requests (the rest goes on in
 * the next loop iteration, after the other connections). Returns the bytes parsed. */
static size_t
serve_requests(struct visitor *v, const char *data, size_t len)
{
    size_t done = 0;
    int served = 0;
    v->feeding = true;
    while (done < len && (v->state == VISITOR_BUSY || v->state == VISITOR_WAITING)) {
        bool fresh;
        struct client *c = begin_request(v, &fresh);
        if (c->state == CLIENT_FORWARDING && c->req.request_done)
            break; /* a pipelined request waits until this response is finished */
        size_t used;
        enum http_parse_status st = http_parser_feed(&c->parser, data + done, len - done, &used);
        done += used;
        v->pending = (uint32_t)(len - done);
        if (c->closed)
            break;
        if (st == HTTP_PARSE_ERROR) {
            on_parse_error(c);
            break;
        }
        /* The header timeout runs from a request's first byte (the first request's from
         * the accept): set now, in the same iteration, when this read did not hold the
         * whole head; a head read whole never needs it. */
        if (fresh && c->state == CLIENT_READING_HEAD && v->requests > 0)
            loop_timer_set(v->w->loop, &v->timer, v->w->cfg->client_header_timeout);
        if (st == HTTP_PARSE_PAUSED && (!on_parsed(c) || ++served == CLIENT_BATCH_MAX)) {
            if (served == CLIENT_BATCH_MAX && v->busy != NULL && v->pending > 0)
                loop_yield(v->w->loop, &v->busy->next_defer);
            break;
        }
        if (c->req.body_blocked)
            break;
    }
    v->feeding = false;
    v->pending = 0;
    return done;
}

/* The pass is over: the queued responses go in one write; timers and interest follow. */
static void
end_pass(struct visitor *v)
{
    struct client *c = v->busy;
    if (c != NULL && buf_used(&c->out) > 0 && !writes_blocked(v))
        flush(c);
    if (v->closed)
        return;
    if ((c = v->busy) != NULL && c->state == CLIENT_FORWARDING)
        arm_forwarding_timer(c);
    if (c != NULL && c->state == CLIENT_IDLE && kept(v) > 0)
        loop_defer(v->w->loop, &c->next_defer); /* pipelined requests left (or yielded) */
    set_interest(v, waiting_writable(v));
}

/* Serve n bytes read (into the worker's buffer, or the ring's); what the parser did not
 * take is kept. */
static void
serve_read(struct visitor *v, const char *data, size_t n)
{
    size_t used = serve_requests(v, data, n);
    if (!v->closed && v->state != VISITOR_LINGERING && used < n)
        buf_append(keep_buf(v), data + used, n - used);
    end_pass(v);
}

/* Serve the bytes kept in v->in. */
static void
serve_buffered(struct visitor *v)
{
    size_t used = serve_requests(v, buf_head(v->in), buf_used(v->in));
    if (v->closed)
        return;
    buf_consume(v->in, used);
    if (buf_used(v->in) == 0 || v->state == VISITOR_LINGERING)
        drop_kept(v); /* an idle connection keeps no buffer */
    v->in_full = false;
    end_pass(v);
}

/* Read into the worker's buffer, or after the bytes kept (keep). Bytes read, 0 for none
 * now, -1 at the end of the connection (*err: its errno, 0 for the visitor's FIN). */
static ssize_t
read_visitor(struct visitor *v, bool keep, int *err)
{
    char *to = v->w->read_buf;
    size_t room = CLIENT_READ_SIZE;
    if (keep) {
        if (buf_reserve(v->in, CLIENT_READ_SIZE) < 0) {
            v->in_full = true; /* read again when the kept requests are served */
            set_interest(v, waiting_writable(v));
            return 0;
        }
        to = buf_tail(v->in);
        room = buf_room(v->in);
    }
    ssize_t n = sys_read(v->io.fd, to, room);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    *err = n < 0 ? errno : 0;
    return n > 0 ? n : -1;
}

/* The answer in progress is the last on this connection and is complete (only its bytes
 * are still to go): what the visitor sends now is read and dropped, as when lingering. */
static bool
answer_is_last(const struct visitor *v)
{
    const struct client *c = v->busy;
    return c != NULL && c->close_after && c->req.response_done;
}

/* The visitor closed its side (or the connection broke). A request it sent whole is still
 * answered (with what it pipelined after it); anything else ends here. */
static void
on_visitor_eof(struct visitor *v, int err)
{
    struct client *c = v->busy;
    bool answering = c != NULL && (c->state == CLIENT_IDLE ||
                                   (c->state == CLIENT_FORWARDING && c->req.request_done));
    if (err == 0 && answering && !v->eof) {
        v->eof = true; /* no more reading; closed once the last answer is out */
        set_interest(v, waiting_writable(v));
        return;
    }
    if (c != NULL && c->state == CLIENT_FORWARDING && !c->req.response_started &&
        !c->req.request_done)
        log_info("client %s: connection closed before the request was complete", v->ip);
    visitor_close(v);
}

static void
on_readable(struct visitor *v)
{
    bool keep = kept(v) > 0 && v->state != VISITOR_LINGERING;
    int err = 0;
    ssize_t n = read_visitor(v, keep, &err);
    if (n < 0) {
        on_visitor_eof(v, err);
        return;
    }
    if (n == 0 || v->state == VISITOR_LINGERING || answer_is_last(v))
        return; /* nothing now, or read and dropped */
    if (!keep) {
        serve_read(v, v->w->read_buf, (size_t)n);
        return;
    }
    v->in->len += (size_t)n;
    serve_buffered(v);
}

/* ring: bytes the visitor sent (n > 0), its end (0) or an error (-errno). Bytes that come
 * while the reading is stopped (they were received before the stop) wait in v->in. */
static void
on_visitor_recv(struct loop_recv *r, const char *data, ssize_t n)
{
    struct visitor *v = container_of(r, struct visitor, recv);
    if (n <= 0) {
        on_visitor_eof(v, n < 0 ? (int)-n : 0);
        return;
    }
    if (v->state == VISITOR_LINGERING || answer_is_last(v))
        return; /* read and dropped */
    if (kept(v) == 0 && r->want) {
        serve_read(v, data, (size_t)n);
        return;
    }
    struct buf *in = keep_buf(v);
    if (buf_append(in, data, (size_t)n) < 0) { /* cannot happen: the cap has the room */
        log_error("client %s: %zu bytes received past the input's cap; closing", v->ip,
                  (size_t)n);
        visitor_close(v);
        return;
    }
    /* the epoll path's cap: no room left for a further read within max_header_size */
    if (buf_used(in) > v->w->cfg->client_max_header_size && !v->in_full) {
        v->in_full = true; /* received again when the kept requests are served */
        set_interest(v, waiting_writable(v));
    }
    if (r->want && !v->in_full)
        serve_buffered(v);
}

static void
on_visitor_io(struct loop_io *io, uint32_t events)
{
    struct visitor *v = container_of(io, struct visitor, io);
    struct client *c = v->busy;
    if ((events & EPOLLOUT) && v->ring)
        set_interest(v, false); /* the send that follows may be short again */
    if ((events & EPOLLOUT) && c != NULL && (c->blocked || buf_used(&c->out) > 0)) {
        if (c->blocked)
            client_pump(c, NULL, 0); /* an answer from an object, written from the object */
        else
            flush(c);
        if (v->closed)
            return;
    }
    if (v->ring) {
        /* an end or an error while receiving: the receive reports it */
        if ((events & (EPOLLHUP | EPOLLERR)) && (!v->recv.want || v->recv.ended))
            visitor_close(v);
        return;
    }
    if ((events & (EPOLLHUP | EPOLLERR)) && (v->in_full || v->eof))
        visitor_close(v); /* not reading any more: level-triggered, it would fire again */
    else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(v);
}

/* ---------------------------------------------------------------- accept and drain */

/* Over a connection limit: answer 503 at once, so the visitor learns why instead of
 * seeing a reset, and close. Logged at most once a second per worker, with a count. */
static void
refuse_connection(struct visitor *v, enum conn_limit_result why)
{
    struct worker *w = v->w;
    const struct config *cfg = w->cfg;
    bool total = why == CONN_LIMIT_TOTAL;
    uint64_t now = loop_now(w->loop);
    struct client *c = client_take(v);
    count_limit(c, total ? METRICS_LIMIT_CONNECTIONS_TOTAL : METRICS_LIMIT_CONNECTIONS_CLIENT);
    w->refusals_unlogged++;
    if (w->refusal_logged_ms == 0 || now >= w->refusal_logged_ms + CLIENT_REFUSAL_LOG_MS) {
        log_warn("client %s: %llu connections are open %s (client.%s); answering 503 and "
                 "closing (%llu refused on this worker since the last such line)",
                 c->ip,
                 (unsigned long long)(total ? (cfg->client_max_connections
                                                   ? cfg->client_max_connections
                                                   : conn_limit_auto())
                                            : cfg->client_max_connections_per_client),
                 total ? "in total" : "from this address",
                 total ? "max_connections" : "max_connections_per_client",
                 (unsigned long long)w->refusals_unlogged);
        w->refusal_logged_ms = now;
        w->refusals_unlogged = 0;
    }
    v->refused = true;
    c->close_after = true;
    respond_error(c, 503,
                  total ? "This server has too many connections open; try again shortly."
                        : "Too many connections are open from your address; close some and "
                          "try again.",
                  NULL);
}

static void
link_visitor(struct worker *w, struct visitor *v)
{
    v->next = w->visitors;
    if (w->visitors)
        w->visitors->prev = v;
    w->visitors = v;
    w->nvisitors++;
    STAT_INC(w->stats->connections_active);
    STAT_INC(w->stats->connections_total);
}

void
client_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct visitor *v = xcalloc(1, sizeof(*v));
    const struct config *cfg = w->cfg;
    if (w->read_buf == NULL) {
        w->read_buf = xmalloc(CLIENT_READ_SIZE);
        loop_defer_init(&w->visitors_free, on_visitors_free);
    }
    v->w = w;
    memcpy(&v->peer, peer, MIN((size_t)peerlen, sizeof(v->peer)));
    /* TCP_NODELAY: inherited from the listener (net_listen) */
    net_ip_text(&v->peer.sa, v->ip, sizeof(v->ip));
    loop_timer_init(&v->timer, on_timer);
    v->ring = loop_receives(w->loop);
    if (loop_io_start(w->loop, &v->io, fd, v->ring ? 0 : EPOLLIN, on_visitor_io) < 0) {
        close(fd);
        free(v);
        return;
    }
    if (v->ring) {
        loop_recv_init(&v->recv, fd, on_visitor_recv);
        loop_send_init_iov(&v->send, fd, visitor_fill, visitor_sent);
        loop_recv_want(w->loop, &v->recv, true);
    }
    link_visitor(w, v);
    enum conn_limit_result lim = conn_limit_acquire(&v->peer.sa, cfg->client_max_connections,
                                                    cfg->client_max_connections_per_client);
    v->counted = lim == CONN_LIMIT_OK;
    if (!v->counted) {
        refuse_connection(v, lim);
        return;
    }
    v->state = VISITOR_WAITING;
    loop_timer_set(w->loop, &v->timer, cfg->client_header_timeout);
}

void
client_drain_all(struct worker *w)
{
    struct visitor *next;
    for (struct visitor *v = w->visitors; v != NULL; v = next) {
        struct client *c = v->busy;
        next = v->next;
        if (c != NULL)
            c->close_after = true;
        if (v->state == VISITOR_WAITING ||
            (c != NULL && (c->state == CLIENT_IDLE ||
                           (c->state == CLIENT_READING_HEAD &&
                            !http_parser_in_message(&c->parser)))))
            visitor_close(v);
    }
}

void
client_close_all(struct worker *w)
{
    while (w->visitors != NULL)
        visitor_close(w->visitors);
}

void
client_worker_free(struct worker *w)
{
    while (w->client_free != NULL) {
        struct client *c = w->client_free;
        w->client_free = c->free_next;
        client_free(c);
    }
    w->nclient_free = 0;
    free(w->read_buf);
    w->read_buf = NULL;
}
