/* upstream.c - fetching from origins: address choice and retries, the keep-alive pool,
 * request writing, response parsing, and the classification of every failure. */
#include "edge/upstream.h"

#include "core/log.h"
#include "core/net.h"
#include "core/sys.h"
#include "dns/resolver.h"
#include "edge/health.h"
#include "edge/policy.h"
#include "edge/story.h"

#include "http/parser.h"
#include "http/validate.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#define UPSTREAM_READ_SIZE (64 * 1024)
#define UPSTREAM_MAX_INFORMATIONAL 16 /* interim responses before the final one, then 502 */
#define UPSTREAM_HELD_SPANS 64        /* body pieces held back with an undelivered head */

struct origin_conn {
    struct worker *w;
    struct loop_io io;
    struct loop_timer idle_timer; /* keep-alive timeout while pooled */
    struct loop_defer free_defer;
    struct pool_bucket *bucket;   /* set while pooled */
    struct origin_conn *pool_next, *pool_prev;
    struct sockaddr_storage sa;
    socklen_t salen;
    char addr[64];
    struct upstream *up; /* current fetch, NULL while pooled */
    struct http_parser parser;
    struct loop_send send; /* the request's bytes, sent at the end of the loop's turn */
    size_t send_len;       /* what the send under way was given */
    bool send_body;        /* ... from u->out (else from u->wire) */
    bool closed;
};

enum upstream_state {
    UP_RESOLVING,
    UP_CONNECTING,
    UP_SENDING,      /* request bytes queued or body still coming */
    UP_WAITING_HEAD, /* request fully sent */
    UP_READING_BODY,
    UP_FINISHED,
};

static const char *const state_names[] = {"resolving", "connecting", "sending", "waiting_head",
                                          "reading_body", "finished"};

#define UPSTREAM_ORDER_INLINE 8 /* origins planned without an allocation */
#define UPSTREAM_FREE_MAX 64     /* finished fetches kept per worker for the next ones */

struct upstream {
    struct worker *w;
    struct upstream_request req;
    const struct upstream_ops *ops;
    void *owner; /* NULL once aborted */
    enum upstream_state state;
    bool body_started; /* a body byte reached some connection: no more retries */
    struct origin_conn *conn;
    size_t rr;       /* round-robin start among the zone's origins */
    size_t origin_i; /* origins taken so far */
    const struct config_origin *origin;
    const struct config_addr *addrs; /* the current origin's addresses */
    int naddrs, addr_i;
    struct dns_request *dns; /* waiting for the resolver */
    size_t *order;           /* origin indexes: primaries round-robin, then backups */
    size_t norder;
    struct origin_health *health; /* the current origin's */
    uint32_t attempts;       /* addresses tried; the zone's retries bound it */
    size_t skipped_down;     /* origins passed over because they are marked down */
    int nattempts;
    uint64_t resolve_start;
    bool reused;
    bool body_ended;
    bool got_bytes;  /* any response byte on this attempt */
    bool head_seen;    /* the owner has the response head */
    bool head_pending; /* parsed, held back until the bytes read with it are parsed too */
    bool no_reuse;     /* the response's framing leaves the connection unusable */
    bool complete;
    bool paused;
    bool above_high;
    int informational;
    int nheld;
    uint64_t start_ms, header_ms;
    uint64_t connect_ms, first_byte_ms; /* since start: connection up, first response byte */
    struct loop_timer timer;
    struct loop_defer kick, free_defer;
    struct proxy_error err;
    char addr[64];
    size_t order_inline[UPSTREAM_ORDER_INLINE];
    /* Not cleared when a fetch starts: the buffers keep their memory for the next fetch of
     * the worker, the arrays are valid up to their counts (naddrs, nattempts, nheld). */
    struct buf head; /* request line and fields without Host, kept for every attempt */
    struct buf wire; /* this attempt's head with its Host, still to write */
    struct buf out;  /* request body bytes still to write (after wire) */
    struct upstream *free_next;
    struct config_addr resolved[CONFIG_MAX_ADDRS]; /* a resolved name's, with the port */
    struct story_attempt tried[STORY_MAX_ATTEMPTS]; /* what was tried, for the story */
    struct {
        const char *at;
        size_t len;
    } held[UPSTREAM_HELD_SPANS]; /* body pieces read with a pending head (in the read buffer) */
};

/* A worker's view of one zone's health (w->zone_health, by zone_index of w->cfg): the
 * records of its origins, looked up once per configuration, and whether every origin is
 * known down, as of a health epoch and until a time. */
struct zone_health {
    struct origin_health **origins;
    uint64_t epoch, until;
    bool down;
    struct proxy_error err; /* while down: the failure every request gets */
};

static void try_next(struct upstream *u);
static size_t pending(const struct upstream *u);
static void conn_close(struct origin_conn *c);
static void on_conn_io(struct loop_io *io, uint32_t events);

/* ---------------------------------------------------------------- pool */

static struct pool_bucket *
bucket_find(struct worker *w, const struct sockaddr_storage *sa, socklen_t salen, bool create)
{
    for (struct pool_bucket *b = w->pool; b != NULL; b = b->next)
        if (b->salen == salen && memcmp(&b->sa, sa, salen) == 0)
            return b;
    if (!create)
        return NULL;
    struct pool_bucket *b = xcalloc(1, sizeof(*b));
    memcpy(&b->sa, sa, salen);
    b->salen = salen;
    b->next = w->pool;
    w->pool = b;
    return b;
}

static void
pool_unlink(struct origin_conn *c)
{
    struct pool_bucket *b = c->bucket;
    if (b == NULL)
        return;
    if (c->pool_prev)
        c->pool_prev->pool_next = c->pool_next;
    else
        b->idle = c->pool_next;
    if (c->pool_next)
        c->pool_next->pool_prev = c->pool_prev;
    c->pool_next = c->pool_prev = NULL;
    c->bucket = NULL;
    b->nidle--;
    loop_timer_stop(c->w->loop, &c->idle_timer);
}

/* An idle connection is clean when the origin sent nothing after its last response: no
 * stray bytes (they would be read as the next visitor's response), no close. It is watched
 * for both while idle (pool_put) and closed when they come; what arrived in the batch
 * being dispatched but not yet handled shows in io.ready. So no recv(MSG_PEEK) per
 * request, as nginx and HAProxy do not peek either: a close racing the next request is
 * the retry's business (the request is idempotent, or nothing was sent). */
static bool
conn_clean(const struct origin_conn *c)
{
    return (c->io.ready & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0;
}

static struct origin_conn *
pool_take(struct worker *w, const struct config_addr *addr)
{
    struct pool_bucket *b = bucket_find(w, &addr->sa, addr->salen, false);
    while (b != NULL && b->idle != NULL) {
        struct origin_conn *c = b->idle;
        pool_unlink(c);
        if (conn_clean(c))
            return c;
        conn_close(c); /* closed by the origin, or bytes nobody asked for */
    }
    return NULL;
}

static void
on_pool_idle_timeout(struct loop_timer *t)
{
    struct origin_conn *c = container_of(t, struct origin_conn, idle_timer);
    conn_close(c);
}

static void
pool_put(struct origin_conn *c, const struct config *cfg)
{
    struct pool_bucket *b = bucket_find(c->w, &c->sa, c->salen, true);
    if (b->nidle >= cfg->upstream_max_idle) {
        conn_close(c);
        return;
    }
    c->up = NULL;
    c->bucket = b;
    c->pool_prev = NULL;
    c->pool_next = b->idle;
    if (b->idle)
        b->idle->pool_prev = c;
    b->idle = c;
    b->nidle++;
    loop_io_set(c->w->loop, &c->io, EPOLLIN); /* a close or stray bytes: drop it */
    loop_timer_set(c->w->loop, &c->idle_timer, cfg->upstream_keepalive_timeout);
}

void
upstream_pool_close_all(struct worker *w)
{
    struct pool_bucket *next;
    for (struct pool_bucket *b = w->pool; b != NULL; b = next) {
        next = b->next;
        while (b->idle != NULL)
            conn_close(b->idle);
        free(b); /* only pooled connections point at a bucket */
    }
    w->pool = NULL;
}

/* ---------------------------------------------------------------- connections */

static void
on_conn_free(struct loop_defer *d)
{
    struct origin_conn *c = container_of(d, struct origin_conn, free_defer);
    http_parser_free(&c->parser);
    free(c);
}

static void
conn_close(struct origin_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    pool_unlink(c);
    loop_timer_stop(c->w->loop, &c->idle_timer);
    loop_send_cancel(c->w->loop, &c->send);
    loop_io_close(c->w->loop, &c->io);
    if (c->up != NULL && c->up->conn == c)
        c->up->conn = NULL;
    c->up = NULL;
    loop_defer(c->w->loop, &c->free_defer);
}

static int on_resp_head(struct http_parser *p);
static int on_resp_body(struct http_parser *p, const char *at, size_t len);
static void on_resp_complete(struct http_parser *p);

static const struct http_parser_ops resp_ops = {
    .on_head = on_resp_head,
    .on_body = on_resp_body,
    .on_complete = on_resp_complete,
};

static bool conn_send_fill(struct loop_send *s, const void **data, size_t *len);
static void conn_send_done(struct loop_send *s, ssize_t n);

static struct origin_conn *
conn_new(struct worker *w, int fd, const struct config_addr *addr, const struct config *cfg)
{
    struct origin_conn *c = xcalloc(1, sizeof(*c));
    c->w = w;
    memcpy(&c->sa, &addr->sa, addr->salen);
    c->salen = addr->salen;
    str_copy(c->addr, sizeof(c->addr), addr->text);
    loop_timer_init(&c->idle_timer, on_pool_idle_timeout);
    loop_defer_init(&c->free_defer, on_conn_free);
    loop_send_init(&c->send, fd, conn_send_fill, conn_send_done);
    http_parser_init(&c->parser, HTTP_RESPONSE, cfg->upstream_max_header_size, &resp_ops, c);
    if (loop_io_start(w->loop, &c->io, fd, EPOLLOUT | EPOLLIN, on_conn_io) < 0) {
        close(fd);
        http_parser_free(&c->parser);
        free(c);
        return NULL;
    }
    return c;
}

/* ---------------------------------------------------------------- fetch lifecycle */

static uint64_t
elapsed(const struct upstream *u)
{
    return loop_now(u->w->loop) - u->start_ms;
}

static void
upstream_free(struct upstream *u)
{
    buf_free(&u->head);
    buf_free(&u->wire);
    buf_free(&u->out);
    free(u);
}

/* Kept for the worker's next fetch (bounded), with its buffers' memory. */
static void
on_upstream_free(struct loop_defer *d)
{
    struct upstream *u = container_of(d, struct upstream, free_defer);
    struct worker *w = u->w;
    if (u->order != u->order_inline)
        free(u->order);
    if (w->nupstream_free >= UPSTREAM_FREE_MAX || buf_used(&u->out) > 0 ||
        u->out.size > UPSTREAM_BODY_LOW) {
        upstream_free(u);
        return;
    }
    u->free_next = w->upstream_free;
    w->upstream_free = u;
    w->nupstream_free++;
}

static void
release(struct upstream *u)
{
    u->state = UP_FINISHED;
    u->owner = NULL;
    dns_request_cancel(&u->dns);
    loop_timer_stop(u->w->loop, &u->timer);
    loop_defer(u->w->loop, &u->free_defer);
}

/* Arm the one fetch timer for the current state. */
static void
arm_timer(struct upstream *u)
{
    const struct config_zone *z = u->req.zone;
    struct loop *loop = u->w->loop;
    switch (u->state) {
    case UP_RESOLVING:
        loop_timer_stop(loop, &u->timer); /* the resolver's timeout and attempts govern */
        break;
    case UP_CONNECTING:
        loop_timer_set(loop, &u->timer, z->connect_timeout);
        break;
    case UP_SENDING:
        if (pending(u) > 0)
            loop_timer_set(loop, &u->timer, z->send_timeout);
        else
            loop_timer_stop(loop, &u->timer); /* waiting on the visitor's body */
        break;
    case UP_WAITING_HEAD:
        loop_timer_set(loop, &u->timer, z->header_timeout);
        break;
    case UP_READING_BODY:
        if (u->paused)
            loop_timer_stop(loop, &u->timer); /* the visitor's send timeout governs */
        else
            loop_timer_set(loop, &u->timer, z->idle_timeout);
        break;
    case UP_FINISHED:
        loop_timer_stop(loop, &u->timer);
        break;
    }
}

/* ---------------------------------------------------------------- health, per worker */

static void
zone_health_free(struct worker *w)
{
    for (size_t i = 0; i < w->nzone_health; i++)
        free(w->zone_health[i].origins);
    free(w->zone_health);
    w->zone_health = NULL;
    w->nzone_health = 0;
}

void
upstream_config_bind(struct worker *w)
{
    const struct config *cfg = w->cfg;
    zone_health_free(w);
    w->zone_health = xcalloc(cfg->nzones ? cfg->nzones : 1, sizeof(*w->zone_health));
    w->nzone_health = cfg->nzones;
    for (size_t i = 0; i < cfg->nzones; i++) {
        const struct config_zone *z = &cfg->zones[i];
        struct zone_health *zh = &w->zone_health[i];
        zh->origins = xcalloc(z->norigins ? z->norigins : 1, sizeof(*zh->origins));
        for (size_t j = 0; j < z->norigins; j++)
            zh->origins[j] = health_get(z, &z->origins[j]);
    }
}

void
upstream_worker_free(struct worker *w)
{
    zone_health_free(w);
    while (w->upstream_free != NULL) {
        struct upstream *u = w->upstream_free;
        w->upstream_free = u->free_next;
        upstream_free(u);
    }
    w->nupstream_free = 0;
}

/* The worker's view of zone z of cfg; NULL when z is not of the configuration the worker
 * serves now (a request begun before a reload): then health is asked by name. */
static struct zone_health *
zone_health_of(const struct worker *w, const struct config *cfg, const struct config_zone *z)
{
    size_t i = (size_t)z->zone_index;
    if (cfg != w->cfg || i >= w->nzone_health || &cfg->zones[i] != z)
        return NULL;
    return &w->zone_health[i];
}

static struct origin_health *
health_of(const struct worker *w, const struct config *cfg, const struct config_zone *z,
          const struct config_origin *o)
{
    struct zone_health *zh = zone_health_of(w, cfg, z);
    return zh != NULL ? zh->origins[o - z->origins] : health_get(z, o);
}

/* The failure of a request whose zone has every origin marked down. */
static void
down_error(const struct worker *w, const struct config *cfg, const struct config_zone *z,
           uint64_t elapsed_ms, struct proxy_error *err)
{
    char cause[240] = "";
    for (size_t i = 0; i < z->norigins && cause[0] == '\0'; i++)
        health_last_cause(health_of(w, cfg, z, &z->origins[i]), cause, sizeof(cause));
    memset(err, 0, sizeof(*err));
    proxy_error_set(err, PROXY_ERR_DESTINATION_UNAVAILABLE, PROXY_PHASE_CONNECT, 0, "",
                    elapsed_ms, "all %zu origins of zone %s are marked down (last failure: "
                    "%.150s)", z->norigins, z->name, cause);
}

/* Is every origin of z known down now? Taken again only when health changed (its epoch)
 * or the hold of an origin ends; the failure to tell is kept with the verdict. */
static struct zone_health *
zone_down_view(struct worker *w, const struct config *cfg, const struct config_zone *z)
{
    struct zone_health *zh = zone_health_of(w, cfg, z);
    uint64_t now = loop_now(w->loop), epoch = health_epoch();
    if (zh == NULL || z->norigins == 0)
        return NULL;
    if (zh->epoch == epoch && now < zh->until)
        return zh;
    zh->epoch = epoch;
    zh->until = UINT64_MAX;
    zh->down = true;
    for (size_t i = 0; i < z->norigins && zh->down; i++) {
        uint64_t until;
        zh->down = health_known_down(zh->origins[i], z, now, &until);
        zh->until = MIN(zh->until, until);
    }
    if (zh->down)
        down_error(w, cfg, z, 0, &zh->err);
    else
        zh->until = UINT64_MAX; /* only a change of health (the epoch) can put it down */
    return zh;
}

bool
upstream_zone_down(struct worker *w, const struct upstream_request *req,
                   struct proxy_error *err, struct story_attempt *attempt)
{
    const struct config_zone *z = req->zone;
    struct zone_health *zh = req->probe_origin >= 0 ? NULL : zone_down_view(w, req->cfg, z);
    if (zh == NULL || !zh->down)
        return false;
    *err = zh->err;
    for (size_t i = 0; i < z->norigins; i++)
        health_affected(zh->origins[i]);
    STAT_INC(req->stats->origin_requests);
    STAT_INC(req->stats->origin_errors[PROXY_ERR_DESTINATION_UNAVAILABLE]);
    memset(attempt, 0, sizeof(*attempt));
    str_copy(attempt->target, sizeof(attempt->target), "every origin");
    str_copy(attempt->detail, sizeof(attempt->detail), err->detail);
    attempt->phase = PROXY_PHASE_CONNECT;
    attempt->result = PROXY_ERR_DESTINATION_UNAVAILABLE;
    return true;
}

/* ---------------------------------------------------------------- the story */

static void
attempt_begin(struct upstream *u, const char *target, enum proxy_phase phase, uint64_t start)
{
    if (u->nattempts == STORY_MAX_ATTEMPTS)
        return;
    struct story_attempt *a = &u->tried[u->nattempts++];
    size_t n = strnlen(target, sizeof(a->target) - 1);
    memmove(a->target, target, n); /* target may live in *u too */
    a->target[n] = '\0';
    a->phase = phase;
    a->result = PROXY_ERR_NONE;
    a->detail[0] = '\0';
    a->start_ms = start;
    a->took_ms = 0; /* every field set: no memset of the whole record per request */
}

/* The last attempt ended: with u->err when failed, else fine at phase. */
static void
attempt_end(struct upstream *u, bool failed, enum proxy_phase phase, const char *detail)
{
    if (u->nattempts == 0)
        return;
    struct story_attempt *a = &u->tried[u->nattempts - 1];
    a->result = failed ? u->err.type : PROXY_ERR_NONE;
    a->phase = failed ? u->err.phase : phase;
    str_copy(a->detail, sizeof(a->detail), failed ? u->err.detail : detail);
    a->took_ms = elapsed(u) - a->start_ms;
}

const struct story_attempt *
upstream_attempts(const struct upstream *u, int *n)
{
    *n = u->nattempts;
    return u->tried;
}

/* The fetch failed for good: the owner hears it, with the origin it was about. */
static void
tell_error(struct upstream *u)
{
    if (u->owner == NULL)
        return;
    if (u->origin != NULL && u->err.type != PROXY_ERR_DESTINATION_UNAVAILABLE)
        str_copy(u->err.origin, sizeof(u->err.origin), u->origin->url);
    u->ops->on_error(u->owner, &u->err);
}

/* The current origin failed this request: its health hears of it. */
static void
count_failure(struct upstream *u)
{
    if (u->health == NULL ||
        !health_failure(u->health, u->req.zone, &u->err, loop_now(u->w->loop),
                        loop_wall(u->w->loop)))
        return;
    health_down_hook hook = health_get_down_hook();
    if (hook != NULL)
        hook(u->req.cfg, u->req.zone, (size_t)(u->origin - u->req.zone->origins), u->health);
}

/* Can this failure be retried on another connection without risk? */
static bool
retry_safe(const struct upstream *u)
{
    if (u->head_seen || u->got_bytes || u->owner == NULL)
        return false;
    if (u->state == UP_CONNECTING)
        return true; /* nothing reached the origin */
    /* A reused keep-alive connection the origin had closed: resend if the origin cannot
     * have acted on the request (its head was not all written) or acting twice is safe. */
    return u->reused && !u->body_started && (u->req.idempotent || buf_used(&u->wire) > 0);
}

/* The single place where an attempt's failure is recorded, counted and acted upon. */
static void
fail(struct upstream *u, enum proxy_error_type type, int err, const char *fmt, const char *what)
{
    enum proxy_phase phase = u->state == UP_CONNECTING      ? PROXY_PHASE_CONNECT
                             : u->state == UP_SENDING       ? PROXY_PHASE_SEND
                             : u->state == UP_WAITING_HEAD  ? PROXY_PHASE_HEADER
                                                            : PROXY_PHASE_BODY;
    if (u->head_seen && type != PROXY_ERR_CONNECTION_READ_TIMEOUT)
        type = PROXY_ERR_HTTP_RESPONSE_INCOMPLETE;
    proxy_error_set(&u->err, type, phase, err, u->addr, elapsed(u), fmt, what);
    STAT_INC(u->req.stats->origin_errors[type]);
    attempt_end(u, true, phase, NULL);
    bool retry = retry_safe(u);
    if (retry && u->reused) {
        u->addr_i--; /* a stale pooled connection: the same address deserves a new one */
        u->attempts--;
    } else {
        count_failure(u);
    }
    if (u->conn != NULL)
        conn_close(u->conn);
    if (retry) {
        log_warn("origin %s failed: %s (%s) in state %s; trying the next address, zone \"%s\"",
                 u->addr, u->err.detail, proxy_error_name(type), state_names[u->state],
                 u->req.zone->name);
        loop_defer(u->w->loop, &u->kick);
        return;
    }
    tell_error(u);
    release(u);
}

static void
fail_errno(struct upstream *u, int err, const char *action)
{
    enum proxy_phase phase = u->state == UP_CONNECTING ? PROXY_PHASE_CONNECT
                             : u->head_seen           ? PROXY_PHASE_BODY
                                                      : PROXY_PHASE_HEADER;
    char detail[96];
    snprintf(detail, sizeof(detail), "%s (%d: %s)", action, err, strerror(err));
    fail(u, proxy_error_from_errno(phase, err), err, "%s", detail);
}

static void
on_timer(struct loop_timer *t)
{
    struct upstream *u = container_of(t, struct upstream, timer);
    switch (u->state) {
    case UP_CONNECTING:
        fail(u, PROXY_ERR_CONNECTION_TIMEOUT, ETIMEDOUT, "%s", "connect() timed out");
        break;
    case UP_SENDING:
        fail(u, PROXY_ERR_CONNECTION_WRITE_TIMEOUT, ETIMEDOUT, "%s",
             "origin stopped reading the request");
        break;
    case UP_WAITING_HEAD:
        fail(u, PROXY_ERR_HTTP_RESPONSE_TIMEOUT, ETIMEDOUT, "%s", "no response header in time");
        break;
    default:
        fail(u, PROXY_ERR_CONNECTION_READ_TIMEOUT, ETIMEDOUT, "%s", "response body stalled");
        break;
    }
}

static void
complete(struct upstream *u, bool reusable)
{
    struct origin_conn *c = u->conn;
    u->complete = true;
    if (c != NULL) {
        u->conn = NULL;
        c->up = NULL;
        if (reusable && u->owner != NULL)
            pool_put(c, u->req.cfg);
        else
            conn_close(c);
    }
    if (u->owner != NULL)
        u->ops->on_complete(u->owner);
    release(u);
}

/* ---------------------------------------------------------------- choosing an address */

static void do_write(struct upstream *u);

static void
attach(struct upstream *u, struct origin_conn *c, bool reused)
{
    u->conn = c;
    c->up = u;
    u->reused = reused;
    u->got_bytes = false;
    u->state = reused ? UP_SENDING : UP_CONNECTING;
    arm_timer(u);
    /* A pooled connection is writable: write the head now (from the head: nothing of this
     * request was written yet). Waiting for EPOLLOUT would cost two epoll_ctl calls. */
    if (reused)
        do_write(u);
}

/* Each attempt writes the head anew, with the Host this origin gets, inserted after the
 * request line. Body bytes wait in u->out; retries happen only before any of them left. */
static void
build_wire(struct upstream *u, const struct config_origin *o)
{
    const char *h = buf_head(&u->head);
    size_t n = buf_used(&u->head);
    const char *lf = memchr(h, '\n', n); /* the request line we wrote ends in CRLF */
    size_t line = lf ? (size_t)(lf - h) + 1 : n;
    buf_reset(&u->wire);
    buf_append(&u->wire, h, line);
    buf_append_str(&u->wire, "Host: ");
    buf_append_str(&u->wire, u->req.host ? u->req.host : o->hostport);
    buf_append(&u->wire, "\r\n", 2);
    buf_append(&u->wire, h + line, n - line);
}

static bool
try_address(struct upstream *u, const struct config_origin *o, const struct config_addr *a)
{
    char why[160];
    str_copy(u->addr, sizeof(u->addr), a->text);
    attempt_begin(u, a->text, PROXY_PHASE_CONNECT, elapsed(u));
    enum proxy_error_type refused =
        policy_check_addr(u->req.cfg, u->req.zone, (const struct sockaddr *)&a->sa, why,
                          sizeof(why));
    if (refused != PROXY_ERR_NONE) {
        u->state = UP_CONNECTING;
        proxy_error_set(&u->err, refused, PROXY_PHASE_CONNECT, 0, u->addr, elapsed(u),
                        "%s (%s resolves to %s)", why, o->host, a->text);
        STAT_INC(u->req.stats->origin_errors[refused]);
        attempt_end(u, true, PROXY_PHASE_CONNECT, NULL);
        return false;
    }
    u->attempts++;
    build_wire(u, o);
    struct origin_conn *c = pool_take(u->w, a);
    if (c != NULL) {
        attach(u, c, true);
        return true;
    }
    int fd = net_connect((const struct sockaddr *)&a->sa, a->salen);
    if (fd < 0) {
        u->state = UP_CONNECTING;
        proxy_error_set(&u->err, proxy_error_from_errno(PROXY_PHASE_CONNECT, -fd),
                        PROXY_PHASE_CONNECT, -fd, u->addr, elapsed(u), "connect() failed (%d: %s)",
                        -fd, strerror(-fd));
        STAT_INC(u->req.stats->origin_errors[u->err.type]);
        attempt_end(u, true, PROXY_PHASE_CONNECT, NULL);
        count_failure(u);
        return false;
    }
    c = conn_new(u->w, fd, a, u->req.cfg);
    if (c == NULL)
        return false;
    STAT_INC(u->req.stats->origin_connections);
    attach(u, c, false);
    return true;
}

/* The answer for the current origin: its addresses (with the origin's port) become the
 * candidates, or the DNS failure becomes the error of record. */
static bool
take_answer(struct upstream *u, const struct config_origin *o, const struct dns_answer *ans)
{
    u->naddrs = u->addr_i = 0;
    attempt_begin(u, o->host, PROXY_PHASE_RESOLVE, u->resolve_start);
    if (ans->status != DNS_OK && !ans->stale) {
        enum proxy_error_type type =
            ans->status == DNS_TIMEOUT ? PROXY_ERR_DNS_TIMEOUT : PROXY_ERR_DNS_ERROR;
        str_copy(u->addr, sizeof(u->addr), o->hostport);
        proxy_error_set(&u->err, type, PROXY_PHASE_RESOLVE, 0, u->addr, elapsed(u), "%s",
                        ans->detail);
        STAT_INC(u->req.stats->origin_errors[type]);
        attempt_end(u, true, PROXY_PHASE_RESOLVE, NULL);
        count_failure(u);
        return false;
    }
    attempt_end(u, false, PROXY_PHASE_RESOLVE, ans->detail);
    u->addrs = u->resolved;
    for (int i = 0; i < ans->naddrs && i < CONFIG_MAX_ADDRS; i++) {
        struct config_addr *a = &u->resolved[u->naddrs++];
        *a = ans->addrs[i];
        if (a->sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(o->port);
        else
            ((struct sockaddr_in *)&a->sa)->sin_port = htons(o->port);
        net_addr_text((const struct sockaddr *)&a->sa, a->text, sizeof(a->text));
    }
    return u->naddrs > 0;
}

static void
on_dns(void *arg, const struct dns_answer *ans)
{
    struct upstream *u = arg;
    u->dns = NULL;
    if (ans->stale)
        log_warn("DNS: resolving %s failed (%s); using its last good answer, %llu s past its "
                 "TTL (resolver.serve_stale)",
                 u->origin->host, ans->detail, (unsigned long long)(ans->age_ms / 1000));
    take_answer(u, u->origin, ans);
    try_next(u);
}

/* Move to the next origin in round-robin order. 1: its addresses are ready; 0: waiting for
 * DNS (on_dns continues); -1: no origin left. */
static int
next_origin(struct upstream *u)
{
    const struct config_zone *z = u->req.zone;
    while (u->origin_i < u->norder) {
        const struct config_origin *o = &z->origins[u->order[u->origin_i++]];
        struct dns_answer ans;
        u->origin = o;
        u->health = u->req.probe_origin >= 0 ? NULL : health_of(u->w, u->req.cfg, z, o);
        if (u->health != NULL && health_check(u->health, z, loop_now(u->w->loop)) == HEALTH_SKIP) {
            u->skipped_down++;
            u->health = NULL;
            continue;
        }
        if (o->literal) {
            u->addrs = o->addrs; /* the configuration outlives the fetch (req.cfg) */
            u->naddrs = o->naddrs;
            u->addr_i = 0;
            return 1;
        }
        u->resolve_start = elapsed(u);
        if (u->w->resolver == NULL) {
            ans = (struct dns_answer){.status = DNS_FAILED};
            snprintf(ans.detail, sizeof(ans.detail), "the DNS resolver could not start");
        } else if (dns_resolve(u->w->resolver, o->host, &u->req.cfg->resolver, &ans, on_dns, u,
                               &u->dns) == 0) {
            u->state = UP_RESOLVING;
            arm_timer(u);
            return 0;
        }
        if (take_answer(u, o, &ans))
            return 1;
    }
    return -1;
}

/* Every origin is marked down: answer at once instead of waiting on timeouts. */
static void
all_down(struct upstream *u)
{
    const struct config_zone *z = u->req.zone;
    for (size_t i = 0; i < z->norigins; i++)
        health_affected(health_of(u->w, u->req.cfg, z, &z->origins[i]));
    down_error(u->w, u->req.cfg, z, elapsed(u), &u->err);
    STAT_INC(u->req.stats->origin_errors[PROXY_ERR_DESTINATION_UNAVAILABLE]);
    attempt_begin(u, "every origin", PROXY_PHASE_CONNECT, elapsed(u));
    attempt_end(u, true, PROXY_PHASE_CONNECT, NULL);
}

/* Primaries in round-robin order, then backups in the order written. */
static void
plan_order(struct upstream *u)
{
    const struct config_zone *z = u->req.zone;
    size_t n = 0;
    u->order = z->norigins <= UPSTREAM_ORDER_INLINE
                   ? u->order_inline
                   : xcalloc(z->norigins, sizeof(*u->order));
    if (u->req.probe_origin >= 0) {
        u->order[0] = (size_t)u->req.probe_origin;
        u->norder = 1;
        return;
    }
    for (size_t i = 0; i < z->norigins; i++) {
        size_t k = (u->rr + i) % z->norigins;
        if (!z->origins[k].backup)
            u->order[n++] = k;
    }
    for (size_t k = 0; k < z->norigins; k++)
        if (z->origins[k].backup)
            u->order[n++] = k;
    u->norder = n;
}

/* Try candidates until one connects (or is in progress), DNS is awaited, or none is left. */
static void
try_next(struct upstream *u)
{
    while (u->owner != NULL && u->attempts <= u->req.zone->retries) {
        if (u->addr_i < u->naddrs) {
            if (try_address(u, u->origin, &u->addrs[u->addr_i++]))
                return;
            continue;
        }
        int rc = next_origin(u);
        if (rc == 0)
            return;
        if (rc < 0)
            break;
    }
    if (u->attempts == 0 && u->err.type == PROXY_ERR_NONE && u->skipped_down > 0)
        all_down(u);
    tell_error(u);
    release(u);
}

static void
on_kick(struct loop_defer *d)
{
    struct upstream *u = container_of(d, struct upstream, kick);
    if (u->state != UP_FINISHED)
        try_next(u);
}

/* A cleared upstream: from the worker's free list, or new. */
static struct upstream *
upstream_take(struct worker *w)
{
    struct upstream *u = w->upstream_free;
    if (u == NULL) {
        u = xmalloc(sizeof(*u));
        buf_init(&u->head, SIZE_MAX);
        buf_init(&u->wire, SIZE_MAX);
        buf_init(&u->out, SIZE_MAX);
    } else {
        w->upstream_free = u->free_next;
        w->nupstream_free--;
    }
    memset(u, 0, offsetof(struct upstream, head)); /* not the arrays: see the struct */
    buf_reset(&u->wire);
    buf_reset(&u->out);
    return u;
}

struct upstream *
upstream_start(struct worker *w, const struct upstream_request *req, struct buf *head,
               const struct upstream_ops *ops, void *owner)
{
    struct upstream *u = upstream_take(w);
    struct buf spare = u->head;
    u->w = w;
    u->req = *req;
    u->ops = ops;
    u->owner = owner;
    u->start_ms = loop_now(w->loop);
    u->head = *head; /* the caller's bytes move in; it gets the spare buffer back */
    buf_reset(&spare);
    *head = spare;
    loop_timer_init(&u->timer, on_timer);
    loop_defer_init(&u->kick, on_kick);
    loop_defer_init(&u->free_defer, on_upstream_free);
    u->rr = w->rr++;
    plan_order(u);
    STAT_INC(req->stats->origin_requests);
    loop_defer(w->loop, &u->kick);
    return u;
}

/* ---------------------------------------------------------------- writing */

static size_t
pending(const struct upstream *u)
{
    return buf_used(&u->wire) + buf_used(&u->out);
}

static void
after_write(struct upstream *u)
{
    if (pending(u) == 0) {
        loop_io_set(u->w->loop, &u->conn->io, EPOLLIN);
        if (u->state == UP_SENDING && (u->body_ended || !u->req.has_body))
            u->state = UP_WAITING_HEAD;
    }
    arm_timer(u);
    if (u->above_high && buf_used(&u->out) < UPSTREAM_BODY_LOW && u->owner != NULL) {
        u->above_high = false;
        u->ops->on_drained(u->owner);
    }
}

/* The request goes at the end of the loop's turn, with every other origin's (loop_send):
 * an origin on this CPU is woken once for all of them, not preempting the worker at each. */
static void
do_write(struct upstream *u)
{
    loop_send_queue(u->w->loop, &u->conn->send);
}

static bool
conn_send_fill(struct loop_send *s, const void **data, size_t *len)
{
    struct origin_conn *c = container_of(s, struct origin_conn, send);
    struct upstream *u = c->up;
    if (u == NULL || pending(u) == 0)
        return false;
    c->send_body = buf_used(&u->wire) == 0;
    struct buf *b = c->send_body ? &u->out : &u->wire;
    *data = buf_head(b);
    *len = c->send_len = buf_used(b);
    return true;
}

static void
conn_send_done(struct loop_send *s, ssize_t n)
{
    struct origin_conn *c = container_of(s, struct origin_conn, send);
    struct upstream *u = c->up;
    if (u == NULL)
        return;
    if (n < 0 && n != -EAGAIN) {
        fail_errno(u, (int)-n, "write() to origin failed");
        return;
    }
    if (n > 0) {
        buf_consume(c->send_body ? &u->out : &u->wire, (size_t)n);
        u->body_started |= c->send_body;
    }
    if (n < 0 || (size_t)n < c->send_len) { /* the socket is full */
        loop_io_set(u->w->loop, &c->io, EPOLLIN | EPOLLOUT);
        arm_timer(u);
        return;
    }
    if (pending(u) > 0) {
        do_write(u); /* the body after the head: in the next flush of this turn */
        return;
    }
    after_write(u);
}

static void
on_connected(struct upstream *u)
{
    int err = net_socket_error(u->conn->io.fd);
    if (err != 0) {
        fail_errno(u, err, "connect() failed");
        return;
    }
    u->state = UP_SENDING;
    u->connect_ms = elapsed(u);
    do_write(u);
}

void
upstream_send_body(struct upstream *u, const char *data, size_t len)
{
    if (len == 0)
        return;
    if (u->req.body_chunked)
        buf_printf(&u->out, "%zx\r\n", len);
    buf_append(&u->out, data, len);
    if (u->req.body_chunked)
        buf_append(&u->out, "\r\n", 2);
    if (pending(u) >= UPSTREAM_BODY_HIGH) /* the measure upstream_pending gives the client */
        u->above_high = true;
    if (u->conn != NULL && u->state == UP_SENDING)
        do_write(u);
}

void
upstream_end_body(struct upstream *u)
{
    u->body_ended = true;
    if (u->req.body_chunked)
        buf_append(&u->out, "0\r\n\r\n", 5);
    if (u->conn != NULL && u->state == UP_SENDING)
        do_write(u);
}

size_t
upstream_pending(const struct upstream *u)
{
    return pending(u);
}

/* ---------------------------------------------------------------- reading */

/* An interim (1xx) response: skipped, unless it is an unasked-for 101, announces a body, or
 * is one too many. */
static int
on_interim(struct http_parser *p, struct upstream *u)
{
    if (p->msg.status == 101)
        p->invalid = "101 Switching Protocols to a request that asked for no upgrade";
    else if (!http_response_framing_reusable(&p->msg))
        p->invalid = "interim (1xx) response with Content-Length or Transfer-Encoding";
    else if (++u->informational > UPSTREAM_MAX_INFORMATIONAL)
        p->invalid = "more than 16 interim (1xx) responses";
    return p->invalid != NULL ? -1 : 1;
}

static void
health_after_head(struct upstream *u, int status)
{
    if (status >= 500 && u->req.zone->health_count_5xx && u->health != NULL) {
        struct proxy_error e = {0};
        proxy_error_set(&e, PROXY_ERR_NONE, PROXY_PHASE_HEADER, 0, u->addr, elapsed(u),
                        "origin answered %d", status);
        if (health_failure(u->health, u->req.zone, &e, loop_now(u->w->loop),
                           loop_wall(u->w->loop)) && health_get_down_hook() != NULL)
            health_get_down_hook()(u->req.cfg, u->req.zone,
                                   (size_t)(u->origin - u->req.zone->origins), u->health);
    } else if (u->health != NULL) {
        health_success(u->health, u->req.zone, loop_wall(u->w->loop));
    }
}

/* A response head: checked (http_response_check), then held back until the bytes read with
 * it are parsed, so that an error in them still gets the visitor a 502 and not a cut
 * response. Bodiless responses (HEAD, 204, 304) are told to the parser as such: a body
 * they announce is never read. */
static int
on_resp_head(struct http_parser *p)
{
    struct origin_conn *c = p->owner;
    struct upstream *u = c->up;
    int status = p->msg.status;
    if (u == NULL || u->owner == NULL)
        return -1;
    if ((p->invalid = http_response_check(&p->msg)) != NULL)
        return -1;
    if (status >= 100 && status < 200)
        return on_interim(p, u);
    u->state = UP_READING_BODY;
    u->head_pending = true;
    u->header_ms = elapsed(u);
    attempt_end(u, false, PROXY_PHASE_HEADER, "response header received");
    health_after_head(u, status);
    bool bodiless = u->req.head_method || status == 204 || status == 304;
    u->no_reuse = bodiless && !http_response_framing_reusable(&p->msg);
    return bodiless ? 1 : 0;
}

/* Hand the owner the held head and body pieces. */
static void
deliver_head(struct upstream *u, const struct http_msg *m)
{
    if (!u->head_pending)
        return;
    u->head_pending = false;
    u->head_seen = true;
    u->ops->on_head(u->owner, m);
    for (int i = 0; i < u->nheld && u->owner != NULL; i++)
        u->ops->on_body(u->owner, u->held[i].at, u->held[i].len);
    u->nheld = 0;
}

static int
on_resp_body(struct http_parser *p, const char *at, size_t len)
{
    struct origin_conn *c = p->owner;
    struct upstream *u = c->up;
    if (u == NULL || u->owner == NULL)
        return -1;
    if (u->head_pending && u->nheld < UPSTREAM_HELD_SPANS) {
        u->held[u->nheld].at = at;
        u->held[u->nheld++].len = len;
        return 0;
    }
    deliver_head(u, &p->msg); /* too many pieces to hold: the head goes now */
    if (u->owner != NULL)
        u->ops->on_body(u->owner, at, len);
    return u->owner != NULL ? 0 : -1;
}

static void
on_resp_complete(struct http_parser *p)
{
    (void)p; /* handled where http_parser_feed returns HTTP_PARSE_PAUSED */
}

static void
parse_error(struct upstream *u, struct http_parser *p)
{
    u->head_pending = false; /* never delivered: the visitor gets a 502 */
    u->nheld = 0;
    char detail[160];
    enum proxy_error_type type = proxy_error_of_parse(p, detail, sizeof(detail));
    fail(u, type, 0, "%s", detail);
}

/* Feed what was read. Returns true when the fetch ended (completed or failed). */
static bool
feed(struct upstream *u, const char *data, size_t n)
{
    struct http_parser *p = &u->conn->parser;
    size_t off = 0;
    while (off < n) {
        size_t used;
        enum http_parse_status st = http_parser_feed(p, data + off, n - off, &used);
        off += used;
        if (u->owner == NULL)
            return true; /* aborted by the owner from a callback: already released */
        if (st == HTTP_PARSE_ERROR) {
            parse_error(u, p);
            return true;
        }
        deliver_head(u, &p->msg);
        if (u->owner == NULL)
            return true;
        if (st == HTTP_PARSE_MORE)
            return false;
        http_parser_resume(p);
        if (p->msg.status >= 100 && p->msg.status < 200)
            continue; /* an interim response: the final one follows */
        /* Bytes after the response (off < n) are nobody's: the connection goes. */
        bool reusable = p->msg.keep_alive && off == n && pending(u) == 0 && !u->no_reuse &&
                        (u->body_ended || !u->req.has_body);
        complete(u, reusable);
        return true;
    }
    return false;
}

static void
on_eof(struct upstream *u)
{
    struct http_parser *p = &u->conn->parser;
    enum http_parse_status st = http_parser_finish(p);
    if (st == HTTP_PARSE_PAUSED && u->head_seen) {
        complete(u, false); /* a close-delimited body ended */
        return;
    }
    if (u->head_seen)
        fail(u, PROXY_ERR_HTTP_RESPONSE_INCOMPLETE, 0, "%s",
             "origin closed the connection before the end of the body");
    else
        fail(u, PROXY_ERR_CONNECTION_TERMINATED, 0, "%s",
             "origin closed the connection before sending a response header");
}

static void
do_read(struct upstream *u)
{
    char data[UPSTREAM_READ_SIZE];
    ssize_t n = sys_read(u->conn->io.fd, data, sizeof(data));
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        fail_errno(u, errno, "read() from origin failed");
        return;
    }
    if (n == 0) {
        on_eof(u);
        return;
    }
    if (!u->got_bytes)
        u->first_byte_ms = elapsed(u);
    u->got_bytes = true;
    if (!feed(u, data, (size_t)n))
        arm_timer(u);
}

static void
on_idle_conn_event(struct origin_conn *c)
{
    /* A pooled connection became readable: the origin closed it or sent stray bytes. */
    conn_close(c);
}

static void
on_conn_io(struct loop_io *io, uint32_t events)
{
    struct origin_conn *c = container_of(io, struct origin_conn, io);
    struct upstream *u = c->up;
    if (u == NULL) {
        on_idle_conn_event(c);
        return;
    }
    if (u->state == UP_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(u);
        return;
    }
    if ((events & EPOLLOUT) && pending(u) > 0) {
        do_write(u);
        if (c->closed || c->up != u)
            return;
    }
    /* Errors are read even while paused, or level-triggered epoll would spin on them. */
    if ((events & (EPOLLHUP | EPOLLERR)) || ((events & EPOLLIN) && !u->paused))
        do_read(u);
}

/* ---------------------------------------------------------------- owner controls */

void
upstream_pause(struct upstream *u)
{
    if (u->paused)
        return;
    u->paused = true;
    if (u->conn != NULL)
        loop_io_set(u->w->loop, &u->conn->io, pending(u) ? EPOLLOUT : 0);
    arm_timer(u);
}

void
upstream_resume(struct upstream *u)
{
    if (!u->paused)
        return;
    u->paused = false;
    if (u->conn != NULL)
        loop_io_set(u->w->loop, &u->conn->io, EPOLLIN | (pending(u) ? EPOLLOUT : 0));
    arm_timer(u);
}

void
upstream_abort(struct upstream **up)
{
    struct upstream *u = *up;
    *up = NULL;
    if (u == NULL || u->state == UP_FINISHED)
        return;
    u->owner = NULL;
    if (u->conn != NULL)
        conn_close(u->conn);
    release(u);
}

void
upstream_set_owner(struct upstream *u, const struct upstream_ops *ops, void *owner,
                   const char *host)
{
    u->ops = ops;
    u->owner = owner;
    u->req.host = host;
}

const char *
upstream_addr(const struct upstream *u)
{
    return u->addr;
}

uint64_t
upstream_header_ms(const struct upstream *u)
{
    return u->header_ms;
}

void
upstream_timings(const struct upstream *u, uint64_t *connect_ms, uint64_t *first_byte_ms)
{
    *connect_ms = u->reused ? 0 : u->connect_ms;
    *first_byte_ms = u->first_byte_ms;
}
