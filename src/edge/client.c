/* client.c - visitor connections: the request/response state machine of one keep-alive
 * connection, request routing, origin request and response heads, streaming with
 * back-pressure, the edge's own responses, and the access log line of each request. */
#include "edge/client.h"

#include "cache/fill.h"
#include "cache/freshness.h"
#include "core/log.h"
#include "core/net.h"
#include "edge/admit.h"
#include "edge/collapse.h"
#include "edge/errpage.h"
#include "edge/refresh.h"
#include "edge/story.h"
#include "edge/upstream.h"
#include "edge/zone.h"
#include "http/parser.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_READ_SIZE (64 * 1024)
#define CLIENT_OUT_HIGH (256 * 1024) /* response bytes queued: pause the origin read */
#define CLIENT_OUT_LOW (64 * 1024)
#define CLIENT_LINGER_MS 5000        /* read and discard after our last response */
#define CLIENT_MAX_REQUEST_ID 200
#define CLIENT_COLLAPSE_WAIT_MS 5000 /* a slow leader cannot hold its followers longer */

/* The connection's states; names appear in debug logs. */
enum client_state {
    CLIENT_IDLE,         /* keep-alive, waiting for the next request */
    CLIENT_READING_HEAD, /* bytes of a request head arrived */
    CLIENT_FORWARDING,   /* a request is being served (origin fetch or own response) */
    CLIENT_LINGERING,    /* our side is done; reading what the visitor still sends */
    CLIENT_CLOSED,
};

static const char *const client_state_names[] = {"idle", "reading_head", "forwarding",
                                                 "lingering", "closed"};

/* One request on the connection; reset between requests. */
struct request {
    struct config *cfg; /* one reference for the request's life */
    const struct config_zone *zone;
    struct zone_stats *stats;
    struct upstream *up;
    struct buf strings; /* copies kept for the log and the origin request */
    uint32_t host_off, rid_off, xff_off; /* offsets into strings */
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
    struct proxy_error err;
    const char *refusal; /* why the edge refused the request (status in .status) */
    /* The cache (zones with cache: true). */
    char *cache_base;        /* zone + host + target; NULL when the request bypasses it */
    struct cache_obj *hit;   /* fresh object, served when the request message ends */
    struct cache_obj *stale; /* expired object kept for stale-if-error */
    struct cache_fill *fill; /* the response being stored */
    const char *cache_status; /* X-Cache word: HIT, MISS, EXPIRED, STALE, REVALIDATED */
    bool revalidating;       /* validators of the stale object went to the origin */
    bool leading;            /* this fetch is the one other visitors of the object wait for */
    bool waiting;            /* waiting for another visitor's fetch of the object */
    struct collapse_waiter waiter;
    struct cache_obj *refreshed; /* the origin said 304: serve this when it completes */
    time_t request_time;
    char origin[64];    /* origin address that answered (or failed) */
    uint64_t origin_ms; /* time to the origin's response head */
};

struct client {
    struct worker *w;
    struct client *next, *prev;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_defer next_defer, free_defer;
    struct loop_timer wait_timer; /* request collapsing: how long to wait for the leader */
    enum client_state state;
    char ip[64];
    struct http_parser parser;
    struct buf in, out;
    struct request req;
    bool close_after; /* close once the current response is written */
    bool rejected;    /* on_head refused the request: the parse error is ours */
    bool closed;
};

static void process_input(struct client *c);
static void finish_request(struct client *c);
static void flush(struct client *c);
static void respond_error(struct client *c, int status, const char *message,
                          const struct proxy_error *err);
static void respond_rejected(struct client *c);
static void collapse_stop(struct client *c);
static void on_collapse_resume(struct collapse_waiter *waiter);
static bool cache_consider(struct client *c);
static void serve_cached(struct client *c, struct cache_obj *obj, const struct proxy_error *err,
                         const char *label);
static uint32_t keep_string(struct request *r, const char *s, size_t len);

/* ---------------------------------------------------------------- lifecycle */

static void
on_client_free(struct loop_defer *d)
{
    struct client *c = container_of(d, struct client, free_defer);
    http_parser_free(&c->parser);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->req.strings);
    free(c);
}

static void
request_clear(struct client *c)
{
    struct request *r = &c->req;
    struct buf strings = r->strings;
    collapse_stop(c);
    upstream_abort(&r->up);
    config_release(&r->cfg);
    cache_obj_release(&r->hit);
    cache_obj_release(&r->stale);
    cache_obj_release(&r->refreshed);
    cache_fill_abort(&r->fill);
    free(r->cache_base);
    buf_reset(&strings);
    memset(r, 0, sizeof(*r));
    r->strings = strings;
}

/* Leave request collapsing: as a waiter, stop waiting; as the leader, release the waiters
 * (they look the cache up again, or fetch on their own). */
static void
collapse_stop(struct client *c)
{
    struct request *r = &c->req;
    if (r->waiting) {
        collapse_leave(c->w, &r->waiter);
        loop_timer_stop(c->w->loop, &c->wait_timer);
        r->waiting = false;
    }
    if (r->leading) {
        r->leading = false;
        collapse_end(c->w, r->cache_base);
    }
}

/* Close now: every resource goes, the memory at the end of the loop iteration. */
static void
client_close(struct client *c)
{
    struct worker *w = c->w;
    if (c->closed)
        return;
    log_debug("client %s: closing in state %s", c->ip, client_state_names[c->state]);
    c->closed = true;
    c->state = CLIENT_CLOSED;
    request_clear(c);
    loop_timer_stop(w->loop, &c->timer);
    loop_io_stop(w->loop, &c->io);
    close(c->io.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nclients--;
    STAT_ADD(w->stats->connections_active, (uint64_t)-1);
    loop_defer(w->loop, &c->free_defer);
    worker_client_closed(w);
}

static void
set_state(struct client *c, enum client_state s)
{
    const struct config *cfg = c->w->cfg;
    c->state = s;
    switch (s) {
    case CLIENT_IDLE:
        loop_timer_set(c->w->loop, &c->timer, cfg->client_keepalive_timeout);
        break;
    case CLIENT_READING_HEAD:
        loop_timer_set(c->w->loop, &c->timer, cfg->client_header_timeout);
        break;
    case CLIENT_LINGERING:
        loop_timer_set(c->w->loop, &c->timer, CLIENT_LINGER_MS);
        break;
    default:
        loop_timer_stop(c->w->loop, &c->timer);
        break;
    }
}

/* While forwarding: the send timeout while the visitor is not reading, the body timeout
 * while we wait for request body bytes, nothing while the origin's timers govern. */
static void
arm_forwarding_timer(struct client *c)
{
    const struct config *cfg = c->req.cfg;
    if (c->state != CLIENT_FORWARDING)
        return;
    if (buf_used(&c->out) > 0)
        loop_timer_set(c->w->loop, &c->timer, cfg->client_send_timeout);
    else if (!c->req.request_done && !c->req.body_blocked)
        loop_timer_set(c->w->loop, &c->timer, cfg->client_body_timeout);
    else
        loop_timer_stop(c->w->loop, &c->timer);
}

/* Our side is finished: stop writing, read and discard what the visitor still sends so
 * the close does not turn into a reset that destroys the response in flight. */
static void
start_lingering(struct client *c)
{
    if (shutdown(c->io.fd, SHUT_WR) < 0) {
        client_close(c);
        return;
    }
    set_state(c, CLIENT_LINGERING);
    loop_io_set(c->w->loop, &c->io, EPOLLIN);
}

static void
on_timer(struct loop_timer *t)
{
    struct client *c = container_of(t, struct client, timer);
    switch (c->state) {
    case CLIENT_READING_HEAD:
        if (!http_parser_in_message(&c->parser)) {
            client_close(c); /* connected and said nothing: no answer owed */
            break;
        }
        log_info("client %s: request header not received within %llu ms", c->ip,
                 (unsigned long long)c->w->cfg->client_header_timeout);
        c->close_after = true;
        respond_error(c, 408, "The request was not received in time.", NULL);
        break;
    case CLIENT_FORWARDING:
        if (buf_used(&c->out) > 0 || c->req.response_started) {
            log_info("client %s: visitor stopped reading the response; closing", c->ip);
            client_close(c);
        } else {
            log_info("client %s: request body stalled; answering 408", c->ip);
            c->close_after = true;
            upstream_abort(&c->req.up);
            respond_error(c, 408, "The request body was not received in time.", NULL);
        }
        break;
    default:
        client_close(c);
        break;
    }
}

/* ---------------------------------------------------------------- writing to the visitor */

static void
on_out_drained(struct client *c)
{
    loop_io_set(c->w->loop, &c->io, c->state == CLIENT_FORWARDING && !c->req.request_done &&
                                            !c->req.body_blocked
                                        ? EPOLLIN
                                        : 0);
    if (c->req.origin_paused && c->req.up != NULL) {
        c->req.origin_paused = false;
        upstream_resume(c->req.up);
    }
    if (c->req.response_done)
        finish_request(c);
    else
        arm_forwarding_timer(c);
}

/* Write iov to the visitor: directly while nothing is queued, the rest into c->out.
 * Returns -1 when the connection was closed. */
static int
send_iov(struct client *c, struct iovec *iov, int n)
{
    size_t total = 0, done = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    STAT_ADD(c->req.stats->bytes_sent, total);
    if (buf_used(&c->out) == 0) {
        ssize_t k;
        do {
            k = writev(c->io.fd, iov, n);
        } while (k < 0 && errno == EINTR);
        if (k < 0 && errno != EAGAIN) {
            log_info("client %s: write failed (%s); closing", c->ip, strerror(errno));
            client_close(c);
            return -1;
        }
        done = k > 0 ? (size_t)k : 0;
    }
    for (int i = 0; i < n && done < total; i++) {
        size_t skip = MIN(done, iov[i].iov_len);
        buf_append(&c->out, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip);
        done -= skip;
    }
    if (buf_used(&c->out) > 0) {
        loop_io_set(c->w->loop, &c->io, c->io.events | EPOLLOUT);
        if (buf_used(&c->out) >= CLIENT_OUT_HIGH && c->req.up != NULL && !c->req.origin_paused) {
            c->req.origin_paused = true;
            upstream_pause(c->req.up);
        }
        arm_forwarding_timer(c);
    }
    return 0;
}

static int
send_bytes(struct client *c, const void *p, size_t len)
{
    struct iovec iov = {(void *)p, len};
    return send_iov(c, &iov, 1);
}

static void
flush(struct client *c)
{
    while (buf_used(&c->out) > 0) {
        ssize_t k = write(c->io.fd, buf_head(&c->out), buf_used(&c->out));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            arm_forwarding_timer(c);
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
    if (buf_used(&c->out) == 0) {
        buf_reset(&c->out);
        on_out_drained(c);
    } else if (c->req.origin_paused && buf_used(&c->out) < CLIENT_OUT_LOW && c->req.up) {
        c->req.origin_paused = false;
        upstream_resume(c->req.up);
    }
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
header_value(const struct client *c, const char *name, const char **v, size_t *len)
{
    const struct http_header *h = http_msg_find(&c->parser.msg, name);
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
    header_value(c, "User-Agent", &ua, &ualen);
    header_value(c, "Referer", &ref, &reflen);
    double rt = (double)(loop_now(c->w->loop) - c->req.start_ms) / 1000.0;
    uint64_t ot = c->req.origin_ms;
    const char *origin = c->req.origin;
    const char *zone = c->req.zone ? c->req.zone->name : "-";
    const char *err = c->req.failed ? proxy_error_name(c->req.err.type) : "-";
    const char *cache = c->req.cache_status ? c->req.cache_status : "-";
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

static void
access_log(struct client *c)
{
    if (!log_access_enabled())
        return;
    char stamp[64];
    time_t now = (time_t)loop_wall(c->w->loop);
    struct tm tm;
    localtime_r(&now, &tm);
    struct buf line;
    buf_init(&line, 64 * 1024);
    if (log_access_format() == CONFIG_LOG_JSON) {
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z", &tm);
        buf_printf(&line, "{\"time\":\"%s\",\"client\":\"%s\",", stamp, c->ip);
        access_log_fields(c, &line, true);
    } else {
        strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S %z", &tm);
        buf_printf(&line, "%s - - [%s] ", c->ip, stamp);
        access_log_fields(c, &line, false);
    }
    if (buf_used(&line) > 0 && line.data[line.len - 1] != '\n')
        buf_append(&line, "\n", 1); /* cut at the cap: still one line */
    log_access_write(buf_head(&line), buf_used(&line));
    buf_free(&line);
}

/* ---------------------------------------------------------------- request completion */

static void
finish_request(struct client *c)
{
    struct request *r = &c->req;
    bool body_pending = !r->request_done;
    if (r->stats != NULL && r->status > 0 && r->status < 600)
        STAT_INC(r->stats->status[r->status]);
    int cache_result = metrics_cache_result(r->cache_status);
    if (r->stats != NULL && cache_result >= 0)
        STAT_INC(r->stats->cache[cache_result]);
    access_log(c);
    request_clear(c);
    if (c->close_after || body_pending || c->w->draining) {
        start_lingering(c);
        return;
    }
    http_parser_resume(&c->parser);
    set_state(c, CLIENT_IDLE);
    loop_io_set(c->w->loop, &c->io, EPOLLIN);
    if (buf_used(&c->in) > 0)
        loop_defer(c->w->loop, &c->next_defer); /* a pipelined request is waiting */
}

static void
on_next_request(struct loop_defer *d)
{
    struct client *c = container_of(d, struct client, next_defer);
    if (!c->closed && c->state == CLIENT_IDLE)
        process_input(c);
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
    const struct config *cfg = r->cfg ? r->cfg : c->w->cfg;
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
                                           ? http_msg_find(&c->parser.msg, "Accept")
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
        .retry_after = err ? proxy_error_retry_after(err->type) : 0,
        .is_get = c->parser.headers_done && c->parser.msg.method == HTTP_GET,
        .now = loop_wall(c->w->loop),
        .html_template = zone_error_page(r->zone, status),
    };
    struct buf body, head;
    buf_init(&body, 64 * 1024);
    buf_init(&head, 64 * 1024);
    const char *type = errpage_render(&page, accept ? http_str_ptr(&c->parser.msg, accept->value)
                                                    : NULL,
                                      accept ? accept->value.len : 0, &body);
    if (c->w->draining || status == 400 || status == 408 || status == 413 || status == 431)
        c->close_after = true;
    buf_printf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nX-Request-Id: %s\r\n",
               status, http_status_reason(status), type, buf_used(&body), page.request_id);
    if (err != NULL) {
        char ps[512];
        proxy_error_header(err, cfg->edge_name, page.details, ps, sizeof(ps));
        buf_printf(&head, "Proxy-Status: %s\r\n", ps);
        if (page.retry_after > 0)
            buf_printf(&head, "Retry-After: %d\r\n", page.retry_after);
    }
    buf_append_str(&head, c->close_after ? "Connection: close\r\n\r\n" : "\r\n");
    r->status = status;
    r->response_started = true;
    r->response_done = true;
    r->body_sent = r->head_method ? 0 : buf_used(&body);
    c->state = CLIENT_FORWARDING;
    struct iovec iov[2] = {{head.data, buf_used(&head)}, {body.data, r->body_sent}};
    int rc = send_iov(c, iov, 2);
    buf_free(&head);
    buf_free(&body);
    if (rc == 0 && buf_used(&c->out) == 0)
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
    buf_append(&r->strings, s, len);
    buf_append(&r->strings, "", 1);
    return off;
}

static void
keep_request_id(struct client *c)
{
    const struct http_header *h = http_msg_find(&c->parser.msg, "X-Request-Id");
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

/* Which zone serves this request; sets r->host_off. NULL means 421. */
static const struct config_zone *
route(struct client *c)
{
    struct request *r = &c->req;
    size_t hlen;
    const char *host = admit_host(&c->parser.msg, &hlen);
    r->host_off = keep_string(r, host, hlen);
    return zone_find(r->cfg, host, hlen);
}

static bool
host_valid(const struct client *c)
{
    char name[256];
    const char *host = req_string(c, c->req.host_off);
    return zone_host_normalise(host, strlen(host), name, sizeof(name)) >= 0;
}

/* ---------------------------------------------------------------- the origin request */

static void
append_forwarded_for(struct client *c, struct buf *head)
{
    const struct http_msg *m = &c->parser.msg;
    buf_append_str(head, "X-Forwarded-For: ");
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        if (!str_ieq(http_str_ptr(m, h->name), h->name.len, "X-Forwarded-For"))
            continue;
        buf_append(head, http_str_ptr(m, h->value), h->value.len);
        buf_append_str(head, ", ");
    }
    buf_printf(head, "%s\r\n", c->ip);
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
    for (size_t i = 0; i < ARRAY_SIZE(unkeyed) && !listed; i++)
        listed = str_ieq(name, len, unkeyed[i]);
    for (size_t i = 0; listed && i < z->npass_headers; i++)
        if (str_ieq(name, len, z->pass_headers[i]))
            return false;
    return listed;
}

/* Fields the edge replaces or consumes instead of forwarding. */
static bool
replaced_request_field(const struct config_zone *z, const char *name, size_t len)
{
    return unkeyed_field(z, name, len) || str_ieq(name, len, "Host") ||
           str_ieq(name, len, "Expect") ||
           str_ieq(name, len, "X-Request-Id") ||
           (z->add_x_forwarded_for && str_ieq(name, len, "X-Forwarded-For")) ||
           (z->add_x_forwarded_proto && str_ieq(name, len, "X-Forwarded-Proto"));
}

/* Revalidate an expired object (RFC 9111 4.3.1) with its validators, unless the visitor's
 * own request is conditional (its validators then go to the origin as they are). */
static void
add_validators(struct client *c, struct buf *head)
{
    struct request *r = &c->req;
    const struct http_msg *m = &c->parser.msg;
    char v[256];
    if (r->stale == NULL || m->method != HTTP_GET || http_msg_find(m, "If-None-Match") ||
        http_msg_find(m, "If-Modified-Since"))
        return;
    if (cache_obj_field(r->stale, "ETag", v, sizeof(v))) {
        buf_printf(head, "If-None-Match: %s\r\n", v);
        r->revalidating = true;
    }
    if (cache_obj_field(r->stale, "Last-Modified", v, sizeof(v))) {
        buf_printf(head, "If-Modified-Since: %s\r\n", v);
        r->revalidating = true;
    }
}

/* The request line and fields for the origin (the upstream adds Host). */
static void
build_origin_head(struct client *c, struct buf *head)
{
    const struct http_msg *m = &c->parser.msg;
    const struct config_zone *z = c->req.zone;
    size_t ulen;
    const char *url = admit_origin_target(http_str_ptr(m, m->url), m->url.len, &ulen);
    buf_printf(head, "%s ", http_method_name(m->method));
    buf_append(head, url, ulen);
    buf_append_str(head, " HTTP/1.1\r\n");
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        const char *name = http_str_ptr(m, h->name);
        if (http_msg_is_hop_header(m, h) || replaced_request_field(z, name, h->name.len))
            continue;
        buf_append(head, name, h->name.len);
        buf_append_str(head, ": ");
        buf_append(head, http_str_ptr(m, h->value), h->value.len);
        buf_append_str(head, "\r\n");
    }
    if (m->chunked)
        buf_append_str(head, "Transfer-Encoding: chunked\r\n");
    else if (m->has_content_length)
        buf_printf(head, "Content-Length: %llu\r\n", (unsigned long long)m->content_length);
    if (z->add_x_forwarded_for)
        append_forwarded_for(c, head);
    if (z->add_x_forwarded_proto)
        buf_append_str(head, "X-Forwarded-Proto: http\r\n");
    if (z->add_via)
        buf_printf(head, "Via: 1.1 %s\r\n", c->req.cfg->edge_name);
    add_validators(c, head);
    buf_printf(head, "X-Request-Id: %s\r\n\r\n", req_string(c, c->req.rid_off));
}

static const struct upstream_ops upstream_ops;

/* The Host the origin gets: NULL for the origin's own host[:port]. */
static const char *
origin_host_for(struct client *c)
{
    const struct config_zone *z = c->req.zone;
    if (z->origin_host == CONFIG_HOST_VISITOR)
        return req_string(c, c->req.host_off);
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
    struct buf head;
    buf_init(&head, SIZE_MAX);
    build_origin_head(c, &head);
    r->up = upstream_start(c->w, &ur, &head, &upstream_ops, c);
    buf_free(&head);
}

/* ---------------------------------------------------------------- the cache */

/* zone \n host \n origin-form target: the base key (the variant is appended to it). */
static char *
cache_base_key(struct client *c)
{
    const struct http_msg *m = &c->parser.msg;
    const char *host = req_string(c, c->req.host_off);
    char name[256];
    size_t ulen;
    const char *url = admit_origin_target(http_str_ptr(m, m->url), m->url.len, &ulen);
    if (zone_host_normalise(host, strlen(host), name, sizeof(name)) < 0)
        return NULL;
    struct buf key;
    buf_init(&key, SIZE_MAX);
    buf_printf(&key, "%s\n%s\n", c->req.zone->name, name);
    buf_append(&key, url, ulen);
    char *out = xstrndup(buf_head(&key), buf_used(&key));
    buf_free(&key);
    return out;
}

/* base + CACHE_VARIANT_SEP + the request's variant for Vary names. */
static char *
cache_full_key(struct client *c, const char *names)
{
    struct buf key;
    buf_init(&key, SIZE_MAX);
    buf_printf(&key, "%s%c", c->req.cache_base, CACHE_VARIANT_SEP);
    if (names != NULL && names[0] != '\0')
        cache_variant(&c->parser.msg, names, &key);
    char *out = xstrndup(buf_head(&key), buf_used(&key));
    buf_free(&key);
    return out;
}

/* May the stored object answer this request now (RFC 9111 4.2 and the request's own
 * Cache-Control)? */
static bool
cache_usable(const struct cache_obj *o, const struct cache_control *rq, time_t now)
{
    int64_t age = cache_obj_age(o, now), left = cache_obj_lifetime(o) - age;
    if (rq->no_cache || left <= 0)
        return false;
    if (rq->max_age != CC_UNSET && age > rq->max_age)
        return false;
    return rq->min_fresh == CC_UNSET || left >= rq->min_fresh;
}

static bool
within_swr(const struct cache_obj *o, time_t now)
{
    return o->stale_while_revalidate > 0 &&
           cache_obj_age(o, now) <= cache_obj_lifetime(o) + o->stale_while_revalidate;
}

static void build_origin_head(struct client *c, struct buf *head);

/* Refresh the stored object in the background (stale-while-revalidate). */
static bool
start_refresh(struct client *c)
{
    struct request *r = &c->req;
    struct buf head;
    buf_init(&head, SIZE_MAX);
    build_origin_head(c, &head);
    struct refresh_request rr = {.cfg = r->cfg, .zone = r->zone, .visitor = &c->parser.msg,
                                 .cache_base = r->cache_base, .origin_head = &head,
                                 .host = origin_host_for(c)};
    bool started = refresh_start(c->w, &rr);
    buf_free(&head);
    return started;
}

/* Look the request up. true: a fresh hit will be served (no fetch). Otherwise the fetch
 * goes ahead, keeping an expired object for stale-if-error. */
static bool
cache_consider(struct client *c)
{
    struct request *r = &c->req;
    const struct http_msg *m = &c->parser.msg;
    if (!r->zone->cache_enabled || (m->method != HTTP_GET && m->method != HTTP_HEAD))
        return false;
    if ((r->cache_base = cache_base_key(c)) == NULL)
        return false;
    char names[512] = "";
    cache_store_vary(r->cache_base, names, sizeof(names));
    char *key = cache_full_key(c, names);
    struct cache_obj *o = cache_store_get(key);
    free(key);
    struct cache_control rq;
    cache_control_parse(m, &rq);
    r->request_time = (time_t)loop_wall(c->w->loop);
    r->cache_status = o ? "EXPIRED" : "MISS";
    if (o != NULL && cache_usable(o, &rq, r->request_time)) {
        r->hit = o;
        r->cache_status = "HIT";
        return true;
    }
    if (o != NULL && m->method == HTTP_GET && !rq.no_cache && within_swr(o, r->request_time) &&
        start_refresh(c)) {
        r->hit = o; /* served stale now; the refresh stores the new answer */
        r->cache_status = "UPDATING";
        return true;
    }
    r->stale = o;
    if (m->method != HTTP_GET)
        return false;
    r->waiter.resume = on_collapse_resume;
    if (collapse_join(c->w, r->cache_base, &r->waiter)) {
        r->waiting = true; /* another visitor's fetch of this object is in flight */
        loop_timer_set(c->w->loop, &c->wait_timer, CLIENT_COLLAPSE_WAIT_MS);
        return true;
    }
    r->leading = true;
    return false;
}

static void start_fetch(struct client *c);

/* The fetch this visitor waited for ended: a hit now, or a fetch of its own. */
static void
on_collapse_resume(struct collapse_waiter *waiter)
{
    struct client *c = container_of(waiter, struct client, req.waiter);
    struct request *r = &c->req;
    char names[512] = "";
    r->waiting = false;
    loop_timer_stop(c->w->loop, &c->wait_timer);
    cache_store_vary(r->cache_base, names, sizeof(names));
    char *key = cache_full_key(c, names);
    struct cache_obj *o = cache_store_get(key);
    free(key);
    if (o != NULL && cache_obj_fresh(o, (time_t)loop_wall(c->w->loop))) {
        r->hit = o;
        serve_cached(c, o, NULL, "HIT");
        return;
    }
    cache_obj_release(&o);
    start_fetch(c);
}

static void
on_wait_timeout(struct loop_timer *t)
{
    struct client *c = container_of(t, struct client, wait_timer);
    log_info("client %s: waited %d ms for another fetch of the same object; fetching",
             c->ip, CLIENT_COLLAPSE_WAIT_MS);
    collapse_stop(c);
    start_fetch(c);
}

/* Start storing the origin's response when it may be stored. */
static void
cache_start_fill(struct client *c, const struct http_msg *resp)
{
    struct request *r = &c->req;
    char why[64];
    if (r->cache_base == NULL || c->parser.msg.method != HTTP_GET)
        return;
    char *names = cache_vary_names(resp);
    char *key = cache_full_key(c, names);
    struct cache_fill_params p = {
        .key = key,
        .vary = names,
        .request_time = r->request_time,
        .response_time = (time_t)loop_wall(c->w->loop),
        .heuristic_cap = (int64_t)(r->cfg->cache_heuristic_cap / 1000),
        .stale_if_error = (int64_t)(r->zone->stale_if_error / 1000),
    };
    r->fill = cache_fill_start(&c->parser.msg, resp, &p, why, sizeof(why));
    free(key);
    free(names);
}

/* Cache-Status (RFC 9211) and X-Cache for a response fetched from the origin. */
static void
append_cache_fields(struct client *c, const struct http_msg *resp, struct buf *head)
{
    struct request *r = &c->req;
    if (r->cache_base == NULL)
        return;
    buf_printf(head, "Cache-Status: %s; fwd=%s; fwd-status=%d%s\r\n", r->cfg->edge_name,
               r->stale ? "stale" : "uri-miss", resp->status, r->fill ? "; stored" : "");
    buf_printf(head, "X-Cache: %s\r\n", r->cache_status);
}

/* Does the visitor's conditional request match the stored object (RFC 9110 13.1)? Then
 * the answer is 304 without a body. */
static bool
not_modified(struct client *c, const struct cache_obj *o)
{
    const struct http_msg *m = &c->parser.msg;
    const struct http_header *inm = http_msg_find(m, "If-None-Match");
    char etag[256], lm[64];
    if (o->status != 200)
        return false;
    if (inm != NULL) {
        const char *v = http_str_ptr(m, inm->value);
        if (inm->value.len == 1 && v[0] == '*')
            return true;
        if (!cache_obj_field(o, "ETag", etag, sizeof(etag)))
            return false;
        const char *weakless = strncmp(etag, "W/", 2) == 0 ? etag + 2 : etag;
        return memmem(v, inm->value.len, weakless, strlen(weakless)) != NULL;
    }
    const struct http_header *ims = http_msg_find(m, "If-Modified-Since");
    if (ims == NULL || !cache_obj_field(o, "Last-Modified", lm, sizeof(lm)))
        return false;
    time_t since = http_date_parse(http_str_ptr(m, ims->value), ims->value.len);
    time_t modified = http_date_parse(lm, strlen(lm));
    return since >= 0 && modified >= 0 && modified <= since;
}

/* A single byte range of a stored 200 (RFC 9110 14.1.2): 1 with [*first, *last] set, 0 to
 * send the whole object (no Range, several ranges, If-Range not matching), -1 when it
 * cannot be satisfied (416). */
static int
byte_range(struct client *c, const struct cache_obj *o, size_t *first, size_t *last)
{
    const struct http_msg *m = &c->parser.msg;
    const struct http_header *h = http_msg_find(m, "Range"), *ir = http_msg_find(m, "If-Range");
    char etag[256], spec[64];
    uint64_t a = 0, b = 0;
    if (h == NULL || o->status != 200 || m->method != HTTP_GET || h->value.len >= sizeof(spec))
        return 0;
    if (ir != NULL && !(cache_obj_field(o, "ETag", etag, sizeof(etag)) &&
                        strlen(etag) == ir->value.len &&
                        memcmp(etag, http_str_ptr(m, ir->value), ir->value.len) == 0))
        return 0; /* If-Range with a date or another entity tag: the whole object */
    snprintf(spec, sizeof(spec), "%.*s", (int)h->value.len, http_str_ptr(m, h->value));
    if (strncmp(spec, "bytes=", 6) != 0 || strchr(spec, ',') != NULL)
        return 0;
    const char *r = spec + 6, *dash = strchr(r, '-');
    if (dash == NULL || (dash == r && dash[1] == '\0'))
        return 0;
    bool suffix = dash == r;
    if ((!suffix && str_to_u64(r, (size_t)(dash - r), &a) < 0) ||
        (dash[1] != '\0' && str_to_u64(dash + 1, strlen(dash + 1), &b) < 0))
        return 0;
    if (suffix) { /* the last b bytes */
        if (b == 0 || o->body_len == 0)
            return -1;
        a = o->body_len > b ? o->body_len - b : 0;
        b = o->body_len - 1;
    } else if (dash[1] == '\0' || b >= o->body_len) {
        b = o->body_len ? o->body_len - 1 : 0;
    }
    if (a >= o->body_len || a > b)
        return -1;
    *first = (size_t)a;
    *last = (size_t)b;
    return 1;
}

/* Answer from a stored object: a fresh hit, a revalidated one, or (err set) a stale copy
 * instead of an error. label is the X-Cache word. */
static void
serve_cached(struct client *c, struct cache_obj *o, const struct proxy_error *err,
             const char *label)
{
    struct request *r = &c->req;
    const struct config *cfg = r->cfg;
    time_t now = (time_t)loop_wall(c->w->loop);
    int64_t age = cache_obj_age(o, now);
    int status = err == NULL && not_modified(c, o) ? 304 : o->status;
    size_t first = 0, last = o->body_len ? o->body_len - 1 : 0, len = o->body_len;
    int range = status == 200 ? byte_range(c, o, &first, &last) : 0;
    if (range != 0) {
        status = range > 0 ? 206 : 416;
        len = range > 0 ? last - first + 1 : 0;
    }
    bool body = !r->head_method && status != 204 && status != 304 && status != 416;
    struct buf head;
    buf_init(&head, SIZE_MAX);
    buf_printf(&head, "HTTP/1.1 %d %s\r\n", status, http_status_reason(status));
    buf_append(&head, o->fields, o->fields_len);
    if (range > 0)
        buf_printf(&head, "Content-Range: bytes %zu-%zu/%zu\r\n", first, last, o->body_len);
    else if (range < 0)
        buf_printf(&head, "Content-Range: bytes */%zu\r\n", o->body_len);
    if (status != 204 && status != 304)
        buf_printf(&head, "Content-Length: %zu\r\n", len);
    const char *detail = strcmp(label, "STALE") == 0      ? "; detail=stale-if-error"
                         : strcmp(label, "UPDATING") == 0 ? "; detail=stale-while-revalidate"
                                                          : "";
    buf_printf(&head, "Age: %lld\r\nCache-Status: %s; hit; ttl=%lld%s\r\nX-Cache: %s\r\n",
               (long long)age, cfg->edge_name, (long long)(cache_obj_lifetime(o) - age),
               detail, label);
    if (err != NULL) {
        char ps[512];
        proxy_error_header(err, cfg->edge_name, r->zone->expose_details, ps, sizeof(ps));
        buf_printf(&head, "Proxy-Status: %s\r\n", ps);
    }
    if (r->zone->add_via)
        buf_printf(&head, "Via: 1.1 %s\r\n", cfg->edge_name);
    buf_printf(&head, "X-Request-Id: %s\r\n", req_string(c, r->rid_off));
    if (c->w->draining)
        c->close_after = true;
    buf_append_str(&head, c->close_after ? "Connection: close\r\n\r\n"
                          : c->parser.msg.minor == 0 ? "Connection: keep-alive\r\n\r\n"
                                                     : "\r\n");
    r->cache_status = label;
    r->status = status;
    r->response_started = r->response_done = true;
    r->body_sent = body ? len : 0;
    c->state = CLIENT_FORWARDING;
    struct iovec iov[2] = {{head.data, buf_used(&head)}, {o->body + first, r->body_sent}};
    int rc = send_iov(c, iov, 2);
    buf_free(&head);
    if (rc == 0 && buf_used(&c->out) == 0)
        finish_request(c);
}

/* The origin answered 500, 502, 503 or 504: RFC 5861 lets stale-if-error cover that too.
 * Serve the stored copy instead (the origin's answer is dropped). */
static bool
stale_for_5xx(struct client *c, const struct http_msg *resp)
{
    struct request *r = &c->req;
    struct cache_obj *o = r->stale;
    if (o == NULL || resp->status > 504 || resp->status == 501)
        return false;
    time_t now = (time_t)loop_wall(c->w->loop);
    if (o->stale_if_error <= 0 || cache_obj_age(o, now) > cache_obj_lifetime(o) + o->stale_if_error)
        return false;
    log_warn("origin %s answered %d for \"%s\" (zone \"%s\", request %s); serving the stored "
             "copy (stale-if-error)", upstream_addr(r->up), resp->status,
             req_string(c, r->host_off), r->zone->name, req_string(c, r->rid_off));
    snprintf(r->origin, sizeof(r->origin), "%s", upstream_addr(r->up));
    upstream_abort(&r->up); /* its body is not wanted; the connection is not reused */
    r->stale = NULL;
    serve_cached(c, o, NULL, "STALE");
    cache_obj_release(&o);
    return true;
}

/* The origin failed before answering: a stale copy within its stale-if-error window? */
static bool
serve_stale_on_error(struct client *c, const struct proxy_error *e)
{
    struct request *r = &c->req;
    struct cache_obj *o = r->stale;
    if (o == NULL || r->response_started)
        return false;
    time_t now = (time_t)loop_wall(c->w->loop);
    if (o->stale_if_error <= 0 || cache_obj_age(o, now) > cache_obj_lifetime(o) + o->stale_if_error)
        return false;
    r->stale = NULL;
    serve_cached(c, o, e, "STALE");
    cache_obj_release(&o);
    return true;
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
    r->cfg = config_acquire(c->w->cfg);
    r->start_ms = loop_now(c->w->loop);
    r->head_method = m->method == HTTP_HEAD;
    keep_request_id(c);
    c->state = CLIENT_FORWARDING;
    loop_timer_stop(c->w->loop, &c->timer);
    if (!m->keep_alive || c->w->draining)
        c->close_after = true;
    int status = admit_head_check(m, &message);
    if (status == 0) {
        r->zone = route(c);
        if (r->zone == NULL && !host_valid(c)) {
            status = 400;
            message = "The Host header is not a valid host name.";
        } else if (r->zone == NULL) {
            status = 421;
            message = "This server does not serve the requested host name.";
        }
    }
    r->stats = r->zone ? c->w->zone_stats[r->zone->zone_index] : c->w->unknown_zone_stats;
    if (status == 0 && r->zone->max_request_body > 0 && m->has_content_length &&
        m->content_length > r->zone->max_request_body) {
        status = 413;
        message = "The request body is larger than this site accepts.";
    }
    if (status != 0) {
        c->rejected = true;
        r->status = status;
        r->refusal = message;
        return has_body ? -1 : 0;
    }
    if (cache_consider(c))
        return 0; /* a hit: served when the request message ends */
    if (has_body && http_msg_find(m, "Expect") != NULL && m->minor >= 1)
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
    uint64_t limit = r->zone->max_request_body;
    r->body_received += len;
    if (limit > 0 && r->body_received > limit) { /* a chunked body grew past the limit */
        c->rejected = true;
        r->status = 413;
        r->refusal = "The request body is larger than this site accepts.";
        upstream_abort(&r->up);
        return -1;
    }
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

static void
append_response_fields(struct client *c, const struct http_msg *resp, struct buf *head)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        const char *name = http_str_ptr(resp, h->name);
        if (http_msg_is_hop_header(resp, h))
            continue;
        buf_append(head, name, h->name.len);
        buf_append_str(head, ": ");
        buf_append(head, http_str_ptr(resp, h->value), h->value.len);
        buf_append_str(head, "\r\n");
    }
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
        buf_printf(head, "Content-Length: %llu\r\n", (unsigned long long)resp->content_length);
    } else if (!no_body) {
        if (c->parser.msg.minor >= 1) {
            r->chunked = true;
            buf_append_str(head, "Transfer-Encoding: chunked\r\n");
        } else {
            c->close_after = true; /* HTTP/1.0: the close ends the body */
        }
    }
}

static void
on_origin_head(void *owner, const struct http_msg *resp)
{
    struct client *c = owner;
    struct request *r = &c->req;
    struct buf head;
    if (resp->status >= 500 && stale_for_5xx(c, resp))
        return;
    if (r->revalidating && resp->status == 304) {
        /* The stored body is still good: it is served when the 304 completes. */
        time_t now = (time_t)loop_wall(c->w->loop);
        r->refreshed = cache_obj_refresh(r->stale, resp, r->request_time, now,
                                         (int64_t)(r->cfg->cache_heuristic_cap / 1000));
        snprintf(r->origin, sizeof(r->origin), "%s", upstream_addr(r->up));
        r->origin_ms = upstream_header_ms(r->up);
        return;
    }
    buf_init(&head, SIZE_MAX);
    r->status = resp->status;
    r->response_started = true;
    snprintf(r->origin, sizeof(r->origin), "%s", upstream_addr(r->up));
    r->origin_ms = upstream_header_ms(r->up);
    if (c->w->draining)
        c->close_after = true;
    buf_printf(&head, "HTTP/1.1 %d ", resp->status);
    if (resp->reason.len > 0)
        buf_append(&head, http_str_ptr(resp, resp->reason), resp->reason.len);
    else
        buf_append_str(&head, http_status_reason(resp->status));
    buf_append_str(&head, "\r\n");
    append_response_fields(c, resp, &head);
    append_framing(c, resp, &head);
    cache_start_fill(c, resp);
    append_cache_fields(c, resp, &head);
    if (r->zone->add_via)
        buf_printf(&head, "Via: 1.1 %s\r\n", r->cfg->edge_name);
    if (http_msg_find(resp, "X-Request-Id") == NULL)
        buf_printf(&head, "X-Request-Id: %s\r\n", req_string(c, r->rid_off));
    if (c->close_after)
        buf_append_str(&head, "Connection: close\r\n");
    else if (c->parser.msg.minor == 0)
        buf_append_str(&head, "Connection: keep-alive\r\n");
    buf_append_str(&head, "\r\n");
    send_bytes(c, head.data, buf_used(&head));
    buf_free(&head);
}

static void
on_origin_body(void *owner, const char *data, size_t len)
{
    struct client *c = owner;
    struct request *r = &c->req;
    if (len == 0)
        return;
    if (r->fill != NULL && !cache_fill_append(r->fill, data, len))
        cache_fill_abort(&r->fill); /* past cache.max_object: streams through uncached */
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
    r->up = NULL; /* the upstream is gone after this callback */
    collapse_stop(c); /* stored (or not) by now: waiters look again */
    if (r->refreshed != NULL) {
        struct cache_obj *o = r->refreshed;
        cache_store_put(cache_obj_acquire(o)); /* the store's reference */
        serve_cached(c, o, NULL, "REVALIDATED");
        return;
    }
    r->response_done = true;
    cache_fill_commit(&r->fill);
    if (r->chunked && send_bytes(c, "0\r\n\r\n", 5) < 0)
        return;
    if (buf_used(&c->out) == 0)
        finish_request(c);
}

static void
log_origin_failure(struct client *c, const struct proxy_error *e)
{
    const struct http_msg *m = &c->parser.msg;
    log_error("origin %s failed: %s (%s) in phase %s after %llu ms, while proxying \"%s %.*s\" "
              "for client %s, zone \"%s\", host \"%s\", request %s",
              e->addr[0] ? e->addr : "-", e->detail, proxy_error_name(e->type),
              proxy_phase_name(e->phase), (unsigned long long)e->elapsed_ms,
              http_method_name(m->method), (int)MIN(m->url.len, 512u), http_str_ptr(m, m->url),
              c->ip, c->req.zone->name, req_string(c, c->req.host_off),
              req_string(c, c->req.rid_off));
}

/* Keep what was tried for the owner's /requests/<id>. */
static void
record_story(struct client *c, const struct proxy_error *e, int status)
{
    const struct http_msg *m = &c->parser.msg;
    struct request *r = &c->req;
    struct story st = {.time = loop_wall(c->w->loop), .status = status, .error = *e};
    int n = 0;
    const struct story_attempt *tried = upstream_attempts(r->up, &n);
    snprintf(st.request_id, sizeof(st.request_id), "%s", req_string(c, r->rid_off));
    snprintf(st.zone, sizeof(st.zone), "%s", r->zone->name);
    snprintf(st.host, sizeof(st.host), "%s", req_string(c, r->host_off));
    snprintf(st.method, sizeof(st.method), "%s", http_method_name(m->method));
    snprintf(st.target, sizeof(st.target), "%.*s", (int)MIN(m->url.len, 255u),
             http_str_ptr(m, m->url));
    st.nattempts = MIN(n, STORY_MAX_ATTEMPTS);
    memcpy(st.attempts, tried, sizeof(*tried) * (size_t)st.nattempts);
    story_record(&st);
}

static void
on_origin_error(void *owner, const struct proxy_error *e)
{
    struct client *c = owner;
    struct request *r = &c->req;
    record_story(c, e, r->response_started ? r->status : proxy_error_status(e->type));
    r->up = NULL; /* the upstream is gone after this callback */
    r->failed = true;
    r->err = *e;
    snprintf(r->origin, sizeof(r->origin), "%s", e->addr);
    log_origin_failure(c, e);
    cache_fill_abort(&r->fill);
    collapse_stop(c);
    if (serve_stale_on_error(c, e))
        return;
    if (!r->response_started) {
        respond_error(c, proxy_error_status(e->type),
                      "The edge server could not get a valid response from the website's "
                      "origin server.",
                      e);
        return;
    }
    /* The head is gone: the visitor must see the body cut short, never a clean end. */
    r->response_done = true;
    c->close_after = true;
    if (r->stats != NULL && r->status > 0 && r->status < 600)
        STAT_INC(r->stats->status[r->status]);
    r->stats = NULL;
    access_log(c);
    client_close(c);
}

static void
on_origin_drained(void *owner)
{
    struct client *c = owner;
    if (!c->req.body_blocked)
        return;
    c->req.body_blocked = false;
    loop_io_set(c->w->loop, &c->io, c->io.events | EPOLLIN);
    if (buf_used(&c->in) > 0)
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

/* The parser stopped on an error: our refusal, or a malformed request. */
static void
on_parse_error(struct client *c)
{
    struct http_parser *p = &c->parser;
    c->close_after = true;
    if (c->req.response_started) {
        client_close(c); /* cannot answer twice: the visitor sees the connection end */
        return;
    }
    if (c->rejected) {
        respond_rejected(c);
        return;
    }
    int status = p->url_too_long ? 414 : p->head_too_large || p->too_many_headers ? 431 : 400;
    log_info("client %s: malformed request (%s); answering %d", c->ip,
             http_parser_error_text(p), status);
    upstream_abort(&c->req.up);
    respond_error(c, status, "The request is malformed and cannot be served.", NULL);
}

/* Feed buffered input to the parser until it pauses at the end of a request, needs more,
 * or fails. */
static void
process_input(struct client *c)
{
    while (buf_used(&c->in) > 0 && !c->closed) {
        if (c->state == CLIENT_FORWARDING && c->req.request_done)
            break; /* a pipelined request waits until this response is finished */
        if (c->state == CLIENT_IDLE) {
            set_state(c, CLIENT_READING_HEAD);
            c->rejected = false;
        }
        size_t used;
        enum http_parse_status st =
            http_parser_feed(&c->parser, buf_head(&c->in), buf_used(&c->in), &used);
        buf_consume(&c->in, used);
        if (c->closed)
            return;
        if (st == HTTP_PARSE_ERROR) {
            on_parse_error(c);
            return;
        }
        if (st == HTTP_PARSE_PAUSED) {
            /* The request is in; further bytes wait for its response to finish. */
            loop_io_set(c->w->loop, &c->io, buf_used(&c->out) ? EPOLLOUT : 0);
            arm_forwarding_timer(c);
            if (c->rejected)
                respond_rejected(c);
            else if (c->req.hit != NULL)
                serve_cached(c, c->req.hit, NULL, c->req.cache_status);
            return;
        }
        if (c->req.body_blocked) {
            loop_io_set(c->w->loop, &c->io, buf_used(&c->out) ? EPOLLOUT : 0);
            break;
        }
    }
    if (c->state == CLIENT_FORWARDING)
        arm_forwarding_timer(c);
}

static void
on_readable(struct client *c)
{
    if (c->state == CLIENT_LINGERING)
        buf_reset(&c->in); /* whatever arrives now is read and dropped */
    if (buf_reserve(&c->in, CLIENT_READ_SIZE) < 0) {
        loop_io_set(c->w->loop, &c->io, c->io.events & ~EPOLLIN);
        return;
    }
    ssize_t n = read(c->io.fd, buf_tail(&c->in), buf_room(&c->in));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (c->state == CLIENT_FORWARDING && c->req.response_started == false &&
            !c->req.request_done) {
            log_info("client %s: connection closed before the request was complete", c->ip);
        }
        client_close(c);
        return;
    }
    if (c->state == CLIENT_LINGERING)
        return;
    c->in.len += (size_t)n;
    process_input(c);
}

static void
on_client_io(struct loop_io *io, uint32_t events)
{
    struct client *c = container_of(io, struct client, io);
    if ((events & EPOLLOUT) && buf_used(&c->out) > 0) {
        flush(c);
        if (c->closed)
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---------------------------------------------------------------- accept and drain */

void
client_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct client *c = xcalloc(1, sizeof(*c));
    (void)peerlen;
    c->w = w;
    /* Heads and bodies go out in separate writes: without this, Nagle's algorithm and the
     * visitor's delayed ACK hold every response for 40 ms. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    net_ip_text((const struct sockaddr *)peer, c->ip, sizeof(c->ip));
    loop_timer_init(&c->timer, on_timer);
    loop_timer_init(&c->wait_timer, on_wait_timeout);
    loop_defer_init(&c->next_defer, on_next_request);
    loop_defer_init(&c->free_defer, on_client_free);
    http_parser_init(&c->parser, HTTP_REQUEST, w->cfg->client_max_header_size, &request_ops, c);
    buf_init(&c->in, w->cfg->client_max_header_size + CLIENT_READ_SIZE);
    buf_init(&c->out, SIZE_MAX);
    buf_init(&c->req.strings, SIZE_MAX);
    if (loop_io_start(w->loop, &c->io, fd, EPOLLIN, on_client_io) < 0) {
        close(fd);
        on_client_free(&c->free_defer);
        return;
    }
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    STAT_INC(w->stats->connections_active);
    STAT_INC(w->stats->connections_total);
    set_state(c, CLIENT_READING_HEAD);
}

void
client_drain_all(struct worker *w)
{
    struct client *next;
    for (struct client *c = w->clients; c != NULL; c = next) {
        next = c->next;
        c->close_after = true;
        if (c->state == CLIENT_IDLE ||
            (c->state == CLIENT_READING_HEAD && !http_parser_in_message(&c->parser)))
            client_close(c);
    }
}

void
client_close_all(struct worker *w)
{
    while (w->clients != NULL)
        client_close(w->clients);
}
