/* client.c - visitor connections: the request/response state machine of one keep-alive
 * connection, request routing, origin request and response heads, streaming with
 * back-pressure, the edge's own responses, and the access log line of each request. */
#include "edge/client.h"

#include "core/log.h"
#include "core/net.h"
#include "edge/admit.h"
#include "edge/cached.h"
#include "edge/connlimit.h"
#include "edge/errpage.h"
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

#define CLIENT_READ_SIZE (64 * 1024)
#define CLIENT_OUT_HIGH (256 * 1024) /* response bytes queued: pause the origin read */
#define CLIENT_OUT_LOW (64 * 1024)
#define CLIENT_LINGER_MS 5000        /* read and discard after our last response */
#define CLIENT_REFUSED_LINGER_MS 1000 /* the same after a 503 at accept: less, under a flood */
#define CLIENT_REFUSAL_LOG_MS 1000    /* at most one log line a second about refusals */
#define CLIENT_MAX_REQUEST_ID 200

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
    uint32_t origin_host_off; /* the normalised host, sent with origin_host: visitor */
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
    bool counted;      /* its status and cache result are in the counters */
    struct proxy_error err;
    const char *refusal; /* why the edge refused the request (status in .status) */
    char refusal_text[200];
    struct cached_visit cache; /* zones with cache: true (cached.h) */
    char origin[64];    /* origin address that answered (or failed) */
    uint64_t origin_ms; /* time to the origin's response head */
};

struct client {
    struct worker *w;
    struct client *next, *prev;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_defer next_defer, free_defer;
    struct loop_timer wait_timer; /* how long to wait for another visitor's fetch */
    enum client_state state;
    char ip[64];
    struct sockaddr_storage peer;
    struct http_parser parser;
    struct buf in, out;
    struct request req;
    bool close_after; /* close once the current response is written */
    bool rejected;    /* on_head refused the request: the parse error is ours */
    bool conn_counted; /* counted by conn_limit_acquire: released at close */
    bool refused;      /* over a connection limit: answered 503 at accept */
    bool blocked;      /* an answer from an object waits for the socket to be writable */
    bool closed;
};

static void process_input(struct client *c);
static void finish_request(struct client *c);
static void flush(struct client *c);
static void respond_error(struct client *c, int status, const char *message,
                          const struct proxy_error *err);
static void respond_rejected(struct client *c);
static bool cache_consider(struct client *c);
static void cache_answer(struct client *c, struct cache_obj *o, const char *label,
                         const struct proxy_error *err);
static void cache_wait(struct client *c);
static void cache_leave(struct client *c);
static void client_pump(struct client *c, const struct iovec *head, int nhead);
static void on_wait_timeout(struct loop_timer *t);
static void access_log(struct client *c);
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
    cache_leave(c); /* first: a fill it fetches may go on without it */
    upstream_abort(&r->up);
    config_release(&r->cfg);
    buf_reset(&strings);
    memset(r, 0, sizeof(*r));
    r->strings = strings;
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
    if (c->conn_counted)
        conn_limit_release((const struct sockaddr *)&c->peer);
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
        loop_timer_set(c->w->loop, &c->timer, c->refused ? CLIENT_REFUSED_LINGER_MS
                                                         : CLIENT_LINGER_MS);
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
    const struct config *cfg = c->req.cfg ? c->req.cfg : c->w->cfg; /* none: refused early */
    if (c->state != CLIENT_FORWARDING)
        return;
    if (buf_used(&c->out) > 0 || c->blocked)
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
count_limit(struct client *c, enum metrics_limit limit)
{
    STAT_INC(c->w->stats->limits[limit]);
}

/* The forwarding timer fired: the visitor stopped reading, or its body stopped coming. */
static void
on_forwarding_timeout(struct client *c)
{
    const struct config *cfg = c->req.cfg ? c->req.cfg : c->w->cfg;
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

static void
on_timer(struct loop_timer *t)
{
    struct client *c = container_of(t, struct client, timer);
    switch (c->state) {
    case CLIENT_IDLE:
        log_debug("client %s: idle for %llu ms (client.keepalive_timeout); closing", c->ip,
                  (unsigned long long)c->w->cfg->client_keepalive_timeout);
        count_limit(c, METRICS_LIMIT_KEEPALIVE_TIMEOUT);
        client_close(c);
        break;
    case CLIENT_READING_HEAD:
        count_limit(c, METRICS_LIMIT_HEADER_TIMEOUT);
        if (!http_parser_in_message(&c->parser)) {
            client_close(c); /* connected and said nothing: no answer owed */
            break;
        }
        log_info("client %s: request header not received within %llu ms "
                 "(client.header_timeout); answering 408", c->ip,
                 (unsigned long long)c->w->cfg->client_header_timeout);
        c->close_after = true;
        respond_error(c, 408, "The request was not received in time.", NULL);
        break;
    case CLIENT_FORWARDING:
        on_forwarding_timeout(c);
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
    const char *cache = c->req.cache.label ? c->req.cache.label : "-";
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
    struct buf line = c->w->log_line; /* the worker's: no allocation per request */
    buf_reset(&line);
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
    c->w->log_line = line;
}

/* ---------------------------------------------------------------- request completion */

/* Count the response once, when its status is final and before its bytes go out: a
 * visitor that has its answer finds it in /metrics. */
static void
count_request(struct client *c)
{
    struct request *r = &c->req;
    int cache_result = metrics_cache_result(r->cache.label);
    if (r->counted || r->stats == NULL)
        return;
    r->counted = true;
    if (r->status > 0 && r->status < 600)
        STAT_INC(r->stats->status[r->status]);
    if (cache_result >= 0)
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

static void
finish_request(struct client *c)
{
    struct request *r = &c->req;
    bool body_pending = !r->request_done;
    count_request(c);
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
    if (c->w->draining || status == 400 || status == 408 || status == 413 || status == 414 ||
        status == 431 || status == 501 || status == 505 || c->refused)
        c->close_after = true; /* what follows on the connection cannot be trusted */
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
    count_request(c);
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
    int status = admit_head_check(&c->parser.msg, &reason);
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
keep_origin_host(struct client *c)
{
    struct request *r = &c->req;
    char name[256], text[260];
    const char *host = req_string(c, r->host_off);
    if (zone_host_normalise(host, strlen(host), name, sizeof(name)) < 0)
        return; /* refused as an invalid host */
    snprintf(text, sizeof(text), strchr(name, ':') ? "[%s]" : "%s", name);
    r->origin_host_off = keep_string(r, text, strlen(text));
}

/* Which zone serves this request; sets r->host_off. NULL means 421. */
static const struct config_zone *
route(struct client *c)
{
    struct request *r = &c->req;
    size_t hlen;
    const char *host = admit_host(&c->parser.msg, &hlen);
    r->host_off = keep_string(r, host, hlen);
    keep_origin_host(c);
    return zone_find(r->cfg, req_string(c, r->host_off), hlen);
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
    return http_name_is_hop(m, dashed, len) || replaced_request_field(z, dashed, len);
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
answered_by_edge(const struct client *c, const char *name, size_t len)
{
    return c->req.cache.eligible && c->parser.msg.method == HTTP_GET &&
           (str_ieq(name, len, "Range") || str_ieq(name, len, "If-Range") ||
            str_ieq(name, len, "If-None-Match") || str_ieq(name, len, "If-Modified-Since"));
}

/* The request line and fields for the origin (the upstream adds Host), with the validators
 * of validate (an expired object) for a GET that may fill the cache. true when sent. */
static bool
build_origin_head(struct client *c, struct buf *head, const struct cache_obj *validate)
{
    const struct http_msg *m = &c->parser.msg;
    const struct config_zone *z = c->req.zone;
    size_t ulen;
    const char *url = admit_origin_target(http_str_ptr(m, m->url), m->url.len, &ulen);
    buf_printf(head, "%s %s", http_method_name(m->method), url[0] == '?' ? "/" : "");
    buf_append(head, url, ulen);
    buf_append_str(head, " HTTP/1.1\r\n");
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        const char *name = http_str_ptr(m, h->name);
        if (http_msg_is_hop_header(m, h) || replaced_request_field(z, name, h->name.len) ||
            underscore_alias(m, z, name, h->name.len) || answered_by_edge(c, name, h->name.len))
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
    bool validating = c->req.cache.eligible && m->method == HTTP_GET &&
                      add_validators(head, validate);
    buf_printf(head, "X-Request-Id: %s\r\n\r\n", req_string(c, c->req.rid_off));
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
    struct buf head;
    buf_init(&head, SIZE_MAX);
    r->cache.revalidating = build_origin_head(c, &head, r->cache.stale);
    r->up = upstream_start(c->w, &ur, &head, &upstream_ops, c);
    buf_free(&head);
}

/* ---------------------------------------------------------------- the cache */

#define ORIGIN_FAILED_MESSAGE \
    "The edge server could not get a valid response from the website's origin server."

static void client_pump(struct client *c, const struct iovec *head, int nhead);

/* Answer from object o with the X-Cache word label; err set: a stale copy instead of an
 * error. The head goes out with the first body bytes, from the object's own memory. */
static void
cache_answer(struct client *c, struct cache_obj *o, const char *label,
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
        .label = label,
        .proxy_status = err ? ps : NULL,
        .fwd_status = v->fwd_status,
        .collapsed = v->collapsed,
        .via = r->zone->add_via,
        .head_method = r->head_method,
        .close = c->close_after,
        .now = (time_t)loop_wall(c->w->loop),
    };
    v->label = label;
    c->state = CLIENT_FORWARDING;
    if (cached_reply_prepare(&v->send, o, &rep, buf, sizeof(buf), iov, &niov, &status, &close) < 0) {
        /* A range of a fill of unknown length: answered when the fill completes. */
        v->awaiting_length = true;
        v->send.obj = cache_obj_acquire(o);
        if (r->up == NULL && !cache_obj_subscribe(o, &v->waiter, CACHE_OBJ_FILLING, UINT64_MAX)) {
            v->awaiting_length = false; /* it completed meanwhile */
            cache_answer(c, o, label, err);
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
    cached_send_clear(&c->req.cache.send);
    c->req.response_done = true;
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

/* Send what can be sent of the answer from the object; then wait for the socket, for the
 * fill (the fetching visitor is driven by its origin's bytes instead), or finish. */
static void
client_pump(struct client *c, const struct iovec *head, int nhead)
{
    struct request *r = &c->req;
    struct cached_send *s = &r->cache.send;
    for (;;) {
        struct cached_count n = {0};
        enum cached_pump st = cached_pump(s, c->io.fd, &c->out, head, nhead, &n);
        head = NULL;
        nhead = 0;
        STAT_ADD(r->stats->bytes_sent, n.wire);
        r->body_sent += n.body;
        c->blocked = st == CACHED_BLOCKED;
        loop_io_set(c->w->loop, &c->io, c->blocked ? EPOLLOUT : 0);
        switch (st) {
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
    cache_answer(c, c->req.cache.stale, "STALE", e);
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
        cache_answer(c, v->busy, "HIT", NULL);
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
        cache_answer(c, o, v->label, NULL);
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
    v->label = "BYPASS";
    if (!cached_key(c->w, r->zone, &c->parser.msg, req_string(c, r->host_off)))
        return false;
    switch (cached_lookup(v, c->w, r->zone, &c->parser.msg, (time_t)loop_wall(c->w->loop))) {
    case CACHED_REFRESH:
        start_refresh(c);
        return true;
    case CACHED_HIT:
        return true;
    case CACHED_JOIN:
        v->waiting = true;
        return true;
    case CACHED_BYPASS:
    case CACHED_FETCH:
        break;
    }
    return false;
}

/* A fill nobody could find (this visitor's own fetch): stored when it completes. */
static struct cache_obj *
anonymous_fill(struct client *c)
{
    if (!cached_key(c->w, c->req.zone, &c->parser.msg, req_string(c, c->req.host_off)))
        return NULL;
    return cache_obj_new(buf_head(&c->w->cache_key), buf_used(&c->w->cache_key));
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
    struct cache_obj *o = v->busy ? cache_obj_acquire(v->busy) : anonymous_fill(c);
    if (o == NULL)
        return false;
    struct cached_origin_head h = {r->cfg, r->zone, &c->parser.msg, resp, v->stale,
                                   v->revalidating, v->request_time,
                                   (time_t)loop_wall(c->w->loop), &c->w->cache_scratch};
    enum cached_head use = cached_take_head(o, &h);
    if (use == CACHED_HEAD_NOT_STORED) {
        cache_obj_release(&o); /* failed: its waiters fetch on their own */
        return false;
    }
    v->revalidated = use == CACHED_HEAD_REVALIDATED;
    v->fill = o;
    v->fwd_status = resp->status;
    r->status = resp->status;
    if (!v->revalidated)
        cache_answer(c, o, v->label, NULL);
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
    if (r->zone == NULL && !host_valid(c))
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
    r->cfg = config_acquire(c->w->cfg);
    r->start_ms = loop_now(c->w->loop);
    r->head_method = m->method == HTTP_HEAD;
    keep_request_id(c);
    c->state = CLIENT_FORWARDING;
    loop_timer_stop(c->w->loop, &c->timer);
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
    if (stale_for_5xx(c, resp))
        return;
    snprintf(r->origin, sizeof(r->origin), "%s", upstream_addr(r->up));
    r->origin_ms = upstream_header_ms(r->up);
    if (cache_take_head(c, resp))
        return; /* answered from the object it fills (or, for a 304, when it completes) */
    buf_init(&head, SIZE_MAX);
    r->status = resp->status;
    r->response_started = true;
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
    cached_pass_fields(&r->cache, r->cfg->edge_name, resp->status, &head);
    if (r->zone->add_via)
        buf_printf(&head, "Via: 1.1 %s\r\n", r->cfg->edge_name);
    if (http_msg_find(resp, "X-Request-Id") == NULL)
        buf_printf(&head, "X-Request-Id: %s\r\n", req_string(c, r->rid_off));
    if (c->close_after)
        buf_append_str(&head, "Connection: close\r\n");
    else if (c->parser.msg.minor == 0)
        buf_append_str(&head, "Connection: keep-alive\r\n");
    buf_append_str(&head, "\r\n");
    count_request(c);
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
        if (v->revalidated)
            cache_answer(c, v->fill, "REVALIDATED", NULL);
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
            else if (c->req.cache.hit != NULL)
                cache_answer(c, c->req.cache.hit, c->req.cache.label, NULL);
            else if (c->req.cache.waiting)
                cache_wait(c);
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
    if ((events & EPOLLOUT) && (c->blocked || buf_used(&c->out) > 0)) {
        if (c->blocked)
            client_pump(c, NULL, 0); /* an answer from an object, written from the object */
        else
            flush(c);
        if (c->closed)
            return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---------------------------------------------------------------- accept and drain */

/* Over a connection limit: answer 503 at once, so the visitor learns why instead of
 * seeing a reset, and close. Logged at most once a second per worker, with a count. */
static void
refuse_connection(struct client *c, enum conn_limit_result why)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cfg;
    bool total = why == CONN_LIMIT_TOTAL;
    uint64_t now = loop_now(w->loop);
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
    c->refused = true;
    c->close_after = true;
    respond_error(c, 503,
                  total ? "This server has too many connections open; try again shortly."
                        : "Too many connections are open from your address; close some and "
                          "try again.",
                  NULL);
}

static void
link_client(struct worker *w, struct client *c)
{
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->nclients++;
    STAT_INC(w->stats->connections_active);
    STAT_INC(w->stats->connections_total);
}

void
client_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, socklen_t peerlen)
{
    struct client *c = xcalloc(1, sizeof(*c));
    const struct config *cfg = w->cfg;
    c->w = w;
    memcpy(&c->peer, peer, MIN((size_t)peerlen, sizeof(c->peer)));
    /* Heads and bodies go out in separate writes: without this, Nagle's algorithm and the
     * visitor's delayed ACK hold every response for 40 ms. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    net_ip_text((const struct sockaddr *)peer, c->ip, sizeof(c->ip));
    loop_timer_init(&c->timer, on_timer);
    loop_timer_init(&c->wait_timer, on_wait_timeout);
    loop_defer_init(&c->next_defer, on_next_request);
    loop_defer_init(&c->free_defer, on_client_free);
    http_parser_init(&c->parser, HTTP_REQUEST, cfg->client_max_header_size, &request_ops, c);
    http_parser_set_limits(&c->parser, cfg->client_max_header_fields,
                           cfg->client_max_request_line);
    buf_init(&c->in, cfg->client_max_header_size + CLIENT_READ_SIZE);
    buf_init(&c->out, SIZE_MAX);
    buf_init(&c->req.strings, SIZE_MAX);
    if (loop_io_start(w->loop, &c->io, fd, EPOLLIN, on_client_io) < 0) {
        close(fd);
        on_client_free(&c->free_defer);
        return;
    }
    link_client(w, c);
    enum conn_limit_result lim =
        conn_limit_acquire((const struct sockaddr *)&c->peer, cfg->client_max_connections,
                           cfg->client_max_connections_per_client);
    c->conn_counted = lim == CONN_LIMIT_OK;
    if (!c->conn_counted) {
        refuse_connection(c, lim);
        return;
    }
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
