/* http_feed.c - whole-versus-split reading of one input through struct http_parser. */
#include "http_feed.h"

#include "cache/freshness.h"

#include <stdio.h>

#define TRACE_CAP (1u << 20)
#define HTTP_FEED_BYTEWISE_MAX 512 /* inputs this short are also read byte by byte */

struct reading {
    const struct http_feed *f;
    struct buf trace;
    uint64_t body_bytes;
    uint32_t body_hash; /* FNV-1a of the de-chunked body bytes */
    int count;
};

static void
trace_body(struct reading *r)
{
    if (r->body_bytes > 0)
        buf_printf(&r->trace, "body %llu %08x\n", (unsigned long long)r->body_bytes, r->body_hash);
    r->body_bytes = 0;
    r->body_hash = 2166136261u;
}

static int
on_head(struct http_parser *p)
{
    struct reading *r = p->owner;
    const struct http_msg *m = &p->msg;
    buf_printf(&r->trace, "head %d %d %u.%u ka=%d chunked=%d cl=%d:%llu\n", m->method, m->status,
               m->major, m->minor, m->keep_alive, m->chunked, m->has_content_length,
               (unsigned long long)m->content_length);
    buf_append(&r->trace, http_str_ptr(m, m->url), m->url.len);
    buf_append(&r->trace, "\n", 1);
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        buf_append(&r->trace, http_str_ptr(m, h->name), h->name.len);
        buf_append(&r->trace, ": ", 2);
        buf_append(&r->trace, http_str_ptr(m, h->value), h->value.len);
        buf_append(&r->trace, "\n", 1);
    }
    int rc = r->f->on_head(p, &r->trace, &r->count);
    buf_printf(&r->trace, "on_head %d\n", rc);
    return rc;
}

static int
on_body(struct http_parser *p, const char *at, size_t len)
{
    struct reading *r = p->owner;
    for (size_t i = 0; i < len; i++)
        r->body_hash = (r->body_hash ^ (uint8_t)at[i]) * 16777619u;
    r->body_bytes += len;
    return 0;
}

static void
on_complete(struct http_parser *p)
{
    struct reading *r = p->owner;
    trace_body(r);
    buf_append_str(&r->trace, "complete\n");
}

static const struct http_parser_ops ops = {on_head, on_body, on_complete};

/* Feed one piece, resuming after each message; false once the parse failed. */
static bool
feed_piece(struct http_parser *p, struct reading *r, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t used;
        enum http_parse_status st = http_parser_feed(p, (const char *)data + off, len - off, &used);
        off += used;
        if (st == HTTP_PARSE_ERROR) {
            trace_body(r);
            buf_printf(&r->trace, "error too_large=%d url=%d headers=%d\n", p->head_too_large,
                       p->url_too_long, p->too_many_headers);
            return false;
        }
        if (st == HTTP_PARSE_PAUSED)
            http_parser_resume(p);
    }
    return true;
}

/* Feed data[0..split) at once, then the rest in pieces of step bytes (0: at once). */
static void
read_input(struct reading *r, const uint8_t *data, size_t len, size_t split, size_t step)
{
    struct http_parser p;
    http_parser_init(&p, r->f->type, r->f->max_head, &ops, r);
    bool ok = feed_piece(&p, r, data, split);
    for (size_t off = split; ok && off < len; off += step ? step : len) {
        size_t n = step ? MIN(step, len - off) : len - off;
        ok = feed_piece(&p, r, data + off, n);
    }
    if (ok) {
        enum http_parse_status st = http_parser_finish(&p);
        trace_body(r);
        buf_printf(&r->trace, "finish %d\n", st);
    }
    (void)http_parser_error_text(&p);
    http_parser_free(&p);
}

/* Read the input in pieces and abort() unless it reads as whole did. */
static void
compare(const struct http_feed *f, const struct buf *whole, const uint8_t *data, size_t len,
        size_t split, size_t step)
{
    struct reading r = {.f = f, .body_hash = 2166136261u};
    buf_init(&r.trace, TRACE_CAP);
    read_input(&r, data, len, split, step);
    if (whole->len != r.trace.len || memcmp(whole->data, r.trace.data, whole->len) != 0) {
        fprintf(stderr, "=== whole ===\n%.*s=== split at %zu, then %zu bytes at a time ===\n%.*s",
                (int)whole->len, whole->data, split, step, (int)r.trace.len, r.trace.data);
        abort();
    }
    buf_free(&r.trace);
}

void
http_feed_run(const struct http_feed *f, const uint8_t *data, size_t len, size_t split)
{
    struct reading whole = {.f = f, .body_hash = 2166136261u};
    buf_init(&whole.trace, TRACE_CAP);
    read_input(&whole, data, len, len, 0);
    compare(f, &whole.trace, data, len, MIN(split, len), 0);
    if (len <= HTTP_FEED_BYTEWISE_MAX)
        compare(f, &whole.trace, data, len, 0, 1);
    buf_free(&whole.trace);
}

unsigned
http_feed_take(const uint8_t **data, size_t *len, size_t nbytes)
{
    unsigned v = 0;
    for (size_t i = 0; i<nbytes && * len> 0; i++) {
        v = v << 8 | **data;
        (*data)++;
        (*len)--;
    }
    return v;
}

static int
fixed_head(struct http_parser *p)
{
    return 1; /* the head is all we need */
}

static int
fixed_body(struct http_parser *p, const char *at, size_t len)
{
    return 0;
}

static void
fixed_complete(struct http_parser *p)
{
}

static const struct http_parser_ops fixed_ops = {fixed_head, fixed_body, fixed_complete};

void
http_feed_parse_head(struct http_parser *p, llhttp_type_t type, const char *text)
{
    size_t used;
    http_parser_init(p, type, 65536, &fixed_ops, NULL);
    if (http_parser_feed(p, text, strlen(text), &used) == HTTP_PARSE_ERROR || !p->headers_done) {
        fprintf(stderr, "fixed message does not parse: %s\n", text);
        abort();
    }
}

void
http_feed_trace_fields(const struct http_msg *m, struct buf *trace)
{
    size_t hop = 0;
    for (size_t i = 0; i < m->nheaders; i++)
        hop += http_msg_is_hop_header(m, &m->headers[i]);
    struct cache_control cc;
    cache_control_parse(m, &cc);
    buf_printf(trace, "fields hop=%zu cc=%d%d%d%d%d%d%d max-age=%lld s-maxage=%lld\n", hop,
               cc.no_store, cc.no_cache, cc.private_, cc.public_, cc.must_revalidate,
               cc.proxy_revalidate, cc.only_if_cached, (long long)cc.max_age,
               (long long)cc.s_maxage);
}
