/* httpcheck.c - one GET, timed phase by phase, and what the edge would make of the answer.
 * http: the edge's upstream (its connect path, Host rules, parser and limits); https: the
 * TLS step's connection, with the edge's parser and limits. */
#include "diag/httpcheck.h"

#include "cache/freshness.h"
#include "edge/upstream.h"
#include "http/parser.h"

#include <strings.h>
#include <time.h>

#define SNIFF_BYTES 4096 /* body bytes kept to recognise a firewall's block page */

struct httpcheck {
    struct worker *w;
    const struct config *cfg;
    const struct config_zone *zone;
    int origin_index;
    struct httpcheck_result *out;
    uint64_t timeout, start_us;
    uint64_t tls_base_ms; /* https: connect and handshake, before this request */
    time_t request_time;
    struct http_msg req;  /* the request as the edge's parser reads it, for the cache */
    struct http_msg resp; /* the response head, copied */
    bool have_resp;
    struct upstream *up;  /* http */
    struct tls_conn *tls; /* https */
    struct http_parser parser;
    bool parser_ready;
    char sniff[SNIFF_BYTES];
    size_t nsniff;
    struct loop_timer timer;
    struct loop_defer done;
    bool finished;
    probe_done_cb cb;
    void *arg;
};

/* Milliseconds since connecting began (for https: the TLS step's connect). */
static uint64_t
since(const struct httpcheck *h)
{
    return h->tls_base_ms + (probe_now_us() - h->start_us) / 1000;
}

/* ---------------------------------------------------------------- the request */

/* The Host the edge sends this origin (upstream's rule: the zone's fixed value, else the
 * origin's host[:port]; a zone passing the visitor's on sends its first plain host). */
static void
choose_host(struct httpcheck *h, char *out, size_t len)
{
    const struct config_zone *z = h->zone;
    const struct config_origin *o = &z->origins[h->origin_index];
    if (z->origin_host == CONFIG_HOST_FIXED) {
        snprintf(out, len, "%s", z->origin_host_value);
        return;
    }
    if (z->origin_host == CONFIG_HOST_VISITOR)
        for (size_t i = 0; i < z->nhosts; i++)
            if (strchr(z->hosts[i], '*') == NULL) {
                snprintf(out, len, "%s", z->hosts[i]);
                return;
            }
    snprintf(out, len, "%s", o->hostport);
}

static int
on_req_head(struct http_parser *p)
{
    return 1; /* a GET: no body */
}

static int
on_req_body(struct http_parser *p, const char *at, size_t len)
{
    return 0;
}

static void
on_req_complete(struct http_parser *p)
{
}

/* The head without Host (upstream inserts it), and the full request parsed into h->req. */
static void
build_request(struct httpcheck *h, struct buf *head)
{
    struct http_parser p;
    struct buf full;
    size_t used;
    buf_printf(head, "GET %s HTTP/1.1\r\nUser-Agent: verge-check\r\nAccept: */*\r\n", h->out->path);
    if (h->zone->add_via)
        buf_printf(head, "Via: 1.1 %s\r\n", h->cfg->edge_name);
    buf_append_str(head, "\r\n");
    buf_init(&full, SIZE_MAX);
    const char *eol = memmem(buf_head(head), buf_used(head), "\r\n", 2);
    size_t line = (size_t)(eol - buf_head(head)) + 2;
    buf_append(&full, buf_head(head), line);
    buf_printf(&full, "Host: %s\r\n", h->out->host);
    buf_append(&full, buf_head(head) + line, buf_used(head) - line);
    static const struct http_parser_ops req_ops = {on_req_head, on_req_body, on_req_complete};
    http_parser_init(&p, HTTP_REQUEST, 1 << 16, &req_ops, NULL);
    http_parser_feed(&p, buf_head(&full), buf_used(&full), &used);
    http_msg_copy(&h->req, &p.msg);
    http_parser_free(&p);
    buf_free(&full);
}

/* ---------------------------------------------------------------- judging the answer */

static void
keep_fields(struct httpcheck_result *r, const struct http_msg *m)
{
    static const char *const names[] = {"Server",
                                        "Content-Type",
                                        "Content-Length",
                                        "Transfer-Encoding",
                                        "Cache-Control",
                                        "Expires",
                                        "Age",
                                        "Last-Modified",
                                        "ETag",
                                        "Vary",
                                        "Set-Cookie",
                                        "Location",
                                        "Retry-After",
                                        "Via"};
    r->nfields = 0;
    for (size_t i = 0; i < ARRAY_SIZE(names) && r->nfields < HTTPCHECK_FIELDS; i++) {
        const struct http_header *f = http_msg_find(m, names[i]);
        if (f == NULL)
            continue;
        struct httpcheck_field *out = &r->fields[r->nfields++];
        snprintf(out->name, sizeof(out->name), "%s", names[i]);
        snprintf(out->value, sizeof(out->value), "%.*s", (int)f->value.len,
                 http_str_ptr(m, f->value));
    }
}

/* Where the freshness lifetime comes from, RFC 9111 4.2.1's order. */
static void
lifetime_source(const struct http_msg *m, int64_t lifetime, char *out, size_t len)
{
    struct cache_control cc;
    cache_control_parse(m, &cc);
    if (cc.s_maxage != CC_UNSET)
        snprintf(out, len, "s-maxage=%lld", (long long)cc.s_maxage);
    else if (cc.max_age != CC_UNSET)
        snprintf(out, len, "max-age=%lld", (long long)cc.max_age);
    else if (http_msg_find(m, "Expires") != NULL)
        snprintf(out, len, "Expires minus Date");
    else if (lifetime > 0)
        snprintf(out, len, "heuristic: 10%% of the time since Last-Modified");
    else
        snprintf(out, len, "no freshness information: stored, but revalidated before each use");
}

static void
judge_cache(struct httpcheck *h, const struct http_msg *m)
{
    struct httpcheck_result *r = h->out;
    const struct config_zone *z = h->zone;
    time_t now = time(NULL);
    r->zone_caches = z->cache_enabled;
    r->storable = cache_storable(&h->req, m, r->cache_why, sizeof(r->cache_why));
    if (r->storable && m->has_content_length && m->content_length > h->cfg->cache_max_object) {
        r->storable = false;
        snprintf(r->cache_why, sizeof(r->cache_why), "larger than cache.max_object");
    }
    if (!r->storable)
        return;
    r->lifetime_s = cache_freshness_lifetime(m, (int64_t)(h->cfg->cache_heuristic_cap / 1000));
    r->age_s = cache_current_age(m, h->request_time, now, now);
    r->stale_if_error_s = cache_stale_if_error(m, (int64_t)(z->stale_if_error / 1000));
    r->stale_while_revalidate_s =
        cache_stale_while_revalidate(m, (int64_t)(z->stale_while_revalidate / 1000));
    lifetime_source(m, r->lifetime_s, r->cache_why, sizeof(r->cache_why));
}

/* A block page or a rate limit, recognised by the fields and the first body bytes. */
static void
judge_waf(struct httpcheck *h)
{
    static const struct {
        const char *field, *contains, *product;
    } fields[] = {
        {"CF-RAY", NULL, "Cloudflare"},       {"Server", "cloudflare", "Cloudflare"},
        {"X-Sucuri-ID", NULL, "Sucuri"},      {"Server", "Sucuri", "Sucuri"},
        {"X-Iinfo", NULL, "Imperva"},         {"X-CDN", "Incapsula", "Imperva"},
        {"Server", "AkamaiGHost", "Akamai"},  {"X-Amz-Cf-Id", NULL, "AWS CloudFront/WAF"},
        {"Server", "awselb", "AWS ELB/WAF"},  {"Server", "BigIP", "F5 BIG-IP"},
        {"X-WA-Info", NULL, "F5 BIG-IP ASM"}, {"Server", "mod_security", "ModSecurity"},
        {"X-DataDome", NULL, "DataDome"},     {"Server", "ddos-guard", "DDoS-Guard"},
    };
    static const struct {
        const char *contains, *product;
    } bodies[] = {
        {"Attention Required! | Cloudflare", "Cloudflare"},
        {"Incapsula incident", "Imperva"},
        {"The requested URL was rejected. Please consult with your administrator.",
         "F5 BIG-IP ASM"},
        {"Sucuri Website Firewall", "Sucuri"},
        {"ModSecurity", "ModSecurity"},
        {"Web Application Firewall", "a web application firewall"},
        {"Request blocked", "a web application firewall"},
    };
    struct httpcheck_result *r = h->out;
    const struct http_msg *m = &h->resp;
    if (!h->have_resp || (m->status != 403 && m->status != 429 && m->status != 503))
        return;
    r->rate_limited = m->status == 429;
    for (size_t i = 0; i < ARRAY_SIZE(fields) && r->waf[0] == '\0'; i++) {
        const struct http_header *f = http_msg_find(m, fields[i].field);
        char value[200];
        if (f == NULL)
            continue;
        snprintf(value, sizeof(value), "%.*s", (int)f->value.len, http_str_ptr(m, f->value));
        if (fields[i].contains != NULL && strcasestr(value, fields[i].contains) == NULL)
            continue;
        snprintf(r->waf, sizeof(r->waf), "%s", fields[i].product);
        snprintf(r->waf_evidence, sizeof(r->waf_evidence), "%s: %.120s", fields[i].field, value);
    }
    h->sniff[MIN(h->nsniff, sizeof(h->sniff) - 1)] = '\0';
    for (size_t i = 0; i < ARRAY_SIZE(bodies) && r->waf[0] == '\0'; i++)
        if (strcasestr(h->sniff, bodies[i].contains) != NULL) {
            snprintf(r->waf, sizeof(r->waf), "%s", bodies[i].product);
            snprintf(r->waf_evidence, sizeof(r->waf_evidence), "the body says \"%s\"",
                     bodies[i].contains);
        }
}

/* ---------------------------------------------------------------- the exchange */

static void
finish(struct httpcheck *h)
{
    if (h->finished)
        return;
    h->finished = true;
    h->out->finished = true;
    h->out->total_ms = MAX(since(h), h->out->header_ms);
    loop_timer_stop(h->w->loop, &h->timer);
    judge_waf(h);
    loop_defer(h->w->loop, &h->done);
}

static void
fail(struct httpcheck *h, enum proxy_error_type type, enum proxy_phase phase, const char *detail)
{
    h->out->error = type;
    h->out->phase = phase;
    snprintf(h->out->detail, sizeof(h->out->detail), "%s", detail);
    finish(h);
}

static void
take_head(struct httpcheck *h, const struct http_msg *m)
{
    struct httpcheck_result *r = h->out;
    r->head_ok = true;
    r->status = m->status;
    r->header_ms = since(h);
    snprintf(r->reason, sizeof(r->reason), "%.*s", (int)m->reason.len, http_str_ptr(m, m->reason));
    http_msg_copy(&h->resp, m);
    h->have_resp = true;
    keep_fields(r, m);
    judge_cache(h, m);
    loop_timer_set(h->w->loop, &h->timer, h->timeout);
}

/* Body bytes; false once enough was read. */
static bool
take_body(struct httpcheck *h, const char *data, size_t len)
{
    size_t keep = MIN(len, sizeof(h->sniff) - 1 - MIN(h->nsniff, sizeof(h->sniff) - 1));
    memcpy(h->sniff + h->nsniff, data, keep);
    h->nsniff += keep;
    h->out->body_bytes += len;
    loop_timer_set(h->w->loop, &h->timer, h->timeout);
    if (h->out->body_bytes < HTTPCHECK_MAX_BODY)
        return true;
    h->out->body_truncated = true;
    return false;
}

static void
on_timeout(struct loop_timer *t)
{
    struct httpcheck *h = container_of(t, struct httpcheck, timer);
    char detail[120];
    upstream_abort(&h->up);
    if (h->out->head_ok) {
        snprintf(detail, sizeof(detail), "the body stalled for %llu ms",
                 (unsigned long long)h->timeout);
        fail(h, PROXY_ERR_CONNECTION_READ_TIMEOUT, PROXY_PHASE_BODY, detail);
    } else {
        snprintf(detail, sizeof(detail), "no response header within %llu ms",
                 (unsigned long long)h->timeout);
        fail(h, PROXY_ERR_HTTP_RESPONSE_TIMEOUT, PROXY_PHASE_HEADER, detail);
    }
}

/* ------------------------------------------------ http: through the edge's upstream */

static void
on_up_head(void *owner, const struct http_msg *resp)
{
    struct httpcheck *h = owner;
    uint64_t connect_ms, first_byte_ms;
    upstream_timings(h->up, &connect_ms, &first_byte_ms);
    snprintf(h->out->address, sizeof(h->out->address), "%s", upstream_addr(h->up));
    take_head(h, resp);
    h->out->connect_ms = connect_ms; /* the edge's own clock for its own phases */
    h->out->first_byte_ms = first_byte_ms;
    h->out->header_ms = upstream_header_ms(h->up);
}

static void
on_up_body(void *owner, const char *data, size_t len)
{
    struct httpcheck *h = owner;
    if (!take_body(h, data, len)) {
        upstream_abort(&h->up);
        finish(h);
    }
}

static void
on_up_complete(void *owner)
{
    struct httpcheck *h = owner;
    h->up = NULL;
    h->out->complete = true;
    finish(h);
}

static void
on_up_error(void *owner, const struct proxy_error *e)
{
    struct httpcheck *h = owner;
    h->up = NULL;
    if (e->addr[0] != '\0')
        snprintf(h->out->address, sizeof(h->out->address), "%s", e->addr);
    fail(h, e->type, e->phase, e->detail);
}

static void
on_up_drained(void *owner)
{
}

static const struct upstream_ops up_ops = {on_up_head, on_up_body, on_up_complete, on_up_error,
                                           on_up_drained};

static void
start_upstream(struct httpcheck *h, struct buf *head)
{
    struct upstream_request req = {
        .cfg = h->cfg,
        .zone = h->zone,
        .stats = h->w->zone_stats[h->zone->zone_index],
        .idempotent = true,
        .probe_origin = h->origin_index,
        .host = h->out->host,
    };
    h->up = upstream_start(h->w, &req, head, &up_ops, h);
}

/* ------------------------------------------------ https: over the TLS step's connection */

static int
on_parsed_head(struct http_parser *p)
{
    struct httpcheck *h = p->owner;
    if (p->msg.status >= 100 && p->msg.status < 200)
        return p->msg.status == 101 ? -1 : 0; /* interim: the final response follows */
    take_head(h, &p->msg);
    return 0;
}

static int
on_parsed_body(struct http_parser *p, const char *at, size_t len)
{
    take_body(p->owner, at, len);
    return 0;
}

static void
on_parsed_complete(struct http_parser *p)
{
}

static const struct http_parser_ops parsed_ops = {on_parsed_head, on_parsed_body,
                                                  on_parsed_complete};

static bool
on_tls_data(void *arg, const char *data, size_t len)
{
    struct httpcheck *h = arg;
    size_t off = 0, used;
    if (h->out->first_byte_ms == 0)
        h->out->first_byte_ms = since(h);
    while (off < len && !h->finished) {
        enum http_parse_status st = http_parser_feed(&h->parser, data + off, len - off, &used);
        off += used;
        if (st == HTTP_PARSE_ERROR) {
            char detail[160];
            enum proxy_error_type t = proxy_error_of_parse(&h->parser, detail, sizeof(detail));
            fail(h, h->out->head_ok ? PROXY_ERR_HTTP_RESPONSE_INCOMPLETE : t,
                 h->out->head_ok ? PROXY_PHASE_BODY : PROXY_PHASE_HEADER, detail);
        } else if (st == HTTP_PARSE_PAUSED) {
            http_parser_resume(&h->parser);
            if (h->out->head_ok) {
                h->out->complete = true;
                finish(h);
            }
        } else {
            break;
        }
    }
    return !h->finished && !h->out->body_truncated;
}

static void
on_tls_end(void *arg, int err)
{
    struct httpcheck *h = arg;
    bool head = h->out->head_ok;
    if (h->finished || h->out->body_truncated) {
        finish(h);
    } else if (err == 0 && http_parser_finish(&h->parser) == HTTP_PARSE_PAUSED && head) {
        h->out->complete = true; /* a close-delimited body */
        finish(h);
    } else if (err == 0) {
        fail(h, head ? PROXY_ERR_HTTP_RESPONSE_INCOMPLETE : PROXY_ERR_CONNECTION_TERMINATED,
             head ? PROXY_PHASE_BODY : PROXY_PHASE_HEADER,
             head ? "origin closed the connection before the end of the body"
                  : "origin closed the connection before sending a response header");
    } else {
        char detail[120];
        enum proxy_phase phase = head ? PROXY_PHASE_BODY : PROXY_PHASE_HEADER;
        snprintf(detail, sizeof(detail), "reading the response failed: %s",
                 err == EPROTO ? "TLS error" : strerror(err));
        fail(h,
             err == ETIMEDOUT
                 ? (head ? PROXY_ERR_CONNECTION_READ_TIMEOUT : PROXY_ERR_HTTP_RESPONSE_TIMEOUT)
                 : proxy_error_from_errno(phase, err),
             phase, detail);
    }
}

static const struct tls_exchange_ops tls_ops = {on_tls_data, on_tls_end};

static void
start_tls(struct httpcheck *h, struct buf *head, const struct tls_result *tr)
{
    struct buf wire;
    const char *eol = memmem(buf_head(head), buf_used(head), "\r\n", 2);
    size_t line = (size_t)(eol - buf_head(head)) + 2;
    buf_init(&wire, SIZE_MAX);
    buf_append(&wire, buf_head(head), line);
    buf_printf(&wire, "Host: %s\r\n", h->out->host);
    buf_append(&wire, buf_head(head) + line, buf_used(head) - line);
    http_parser_init(&h->parser, HTTP_RESPONSE, h->cfg->upstream_max_header_size, &parsed_ops, h);
    h->parser_ready = true;
    snprintf(h->out->address, sizeof(h->out->address), "%s", tr->address);
    h->tls_base_ms = tr->handshake_us / 1000;
    h->out->connect_ms = tr->connect_us / 1000;
    h->out->tls_ms = h->tls_base_ms;
    tls_conn_exchange(h->tls, &wire, h->timeout, &tls_ops, h);
    buf_free(&wire);
}

/* ---------------------------------------------------------------- life */

static void
on_done(struct loop_defer *d)
{
    struct httpcheck *h = container_of(d, struct httpcheck, done);
    h->cb(h->arg);
}

struct httpcheck *
httpcheck_start(struct worker *w, const struct config *cfg, const struct config_zone *zone,
                int origin_index, const char *path, struct tls_conn *tls,
                const struct tls_result *tr, uint64_t timeout_ms, struct httpcheck_result *out,
                probe_done_cb cb, void *arg)
{
    struct httpcheck *h = xcalloc(1, sizeof(*h));
    struct buf head;
    h->w = w;
    h->cfg = cfg;
    h->zone = zone;
    h->origin_index = origin_index;
    h->out = out;
    h->timeout = timeout_ms;
    h->tls = tls;
    h->cb = cb;
    h->arg = arg;
    h->start_us = probe_now_us();
    h->request_time = time(NULL);
    loop_timer_init(&h->timer, on_timeout);
    loop_defer_init(&h->done, on_done);
    memset(out, 0, sizeof(*out));
    out->attempted = true;
    snprintf(out->path, sizeof(out->path), "%s", path);
    choose_host(h, out->host, sizeof(out->host));
    buf_init(&head, SIZE_MAX);
    build_request(h, &head);
    loop_timer_set(w->loop, &h->timer, timeout_ms);
    if (tls == NULL)
        start_upstream(h, &head);
    else
        start_tls(h, &head, tr);
    buf_free(&head);
    return h;
}

void
httpcheck_free(struct httpcheck **hp)
{
    struct httpcheck *h = *hp;
    if (h == NULL)
        return;
    *hp = NULL;
    if (!h->finished) {
        h->out->total_ms = since(h);
        snprintf(h->out->detail, sizeof(h->out->detail), "stopped after %llu ms, %s",
                 (unsigned long long)h->out->total_ms,
                 h->out->head_ok ? "while reading the body" : "before a response header");
    }
    upstream_abort(&h->up);
    tls_conn_free(&h->tls);
    loop_timer_stop(h->w->loop, &h->timer);
    loop_defer_cancel(h->w->loop, &h->done);
    if (h->parser_ready)
        http_parser_free(&h->parser);
    http_msg_free(&h->req);
    if (h->have_resp)
        http_msg_free(&h->resp);
    free(h);
}
