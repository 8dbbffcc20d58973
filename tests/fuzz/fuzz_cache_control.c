/* fuzz_cache_control.c - libFuzzer target: Cache-Control lists, HTTP-dates and the RFC 9111
 * functions of cache/freshness.h on a request and a response built from the input.
 * Checks beyond "no crash, no leak": a date that parses formats back to the same time;
 * two Cache-Control fields read the same as one field joining them with a comma
 * (RFC 9110 5.3); lifetimes, ages and stale windows are never negative.
 *
 * Input: 1 byte response status (index into a table), 1 byte request method and times,
 * then lines: "Name: value" (a line without a colon is a Cache-Control value); lines
 * starting with '>' belong to the request, the others to the response. */
#include "cache/freshness.h"

#include <llhttp.h>
#include <stdint.h>

static const int statuses[] = {200, 203, 204, 206, 300, 301, 302, 303, 304, 307, 308,
                               404, 405, 410, 414, 451, 500, 501, 502, 503, 100, 201};

static void
check_date(const char *s, size_t len)
{
    time_t t = http_date_parse(s, len);
    if (t < 0)
        return;
    char out[30];
    http_date_format(t, out);
    if (http_date_parse(out, strlen(out)) != t) {
        fprintf(stderr, "date %.*s -> %lld -> %s does not read back\n", (int)len, s, (long long)t,
                out);
        abort();
    }
}

static void
add_field(struct http_msg *m, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (m->nheaders == HTTP_MAX_HEADERS)
        return;
    struct http_header *h = &m->headers[m->nheaders++];
    h->name = (struct http_str){(uint32_t)m->strings.len, (uint32_t)nlen};
    buf_append(&m->strings, name, nlen);
    h->value = (struct http_str){(uint32_t)m->strings.len, (uint32_t)vlen};
    buf_append(&m->strings, value, vlen);
    check_date(value, vlen);
}

/* One input line into req or resp. */
static void
add_line(struct http_msg *req, struct http_msg *resp, const char *s, size_t len)
{
    struct http_msg *m = resp;
    if (len > 0 && s[0] == '>') {
        m = req;
        s++;
        len--;
    }
    const char *colon = memchr(s, ':', len);
    if (colon == NULL) {
        add_field(m, "Cache-Control", 13, s, len);
        return;
    }
    const char *v = colon + 1, *end = s + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    add_field(m, s, (size_t)(colon - s), v, (size_t)(end - v));
}

static bool
same_directives(const struct cache_control *a, const struct cache_control *b)
{
    return a->no_store == b->no_store && a->no_cache == b->no_cache && a->private_ == b->private_ &&
           a->public_ == b->public_ && a->must_revalidate == b->must_revalidate &&
           a->proxy_revalidate == b->proxy_revalidate && a->only_if_cached == b->only_if_cached &&
           a->max_age == b->max_age && a->s_maxage == b->s_maxage && a->min_fresh == b->min_fresh &&
           a->max_stale == b->max_stale && a->stale_if_error == b->stale_if_error &&
           a->stale_while_revalidate == b->stale_while_revalidate &&
           a->max_stale_any == b->max_stale_any;
}

/* The Cache-Control fields of m joined into one field must parse the same. */
static void
check_joined(const struct http_msg *m, const struct cache_control *cc)
{
    struct http_msg one;
    struct buf joined;
    http_msg_init(&one, SIZE_MAX);
    buf_init(&joined, SIZE_MAX);
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        if (!str_ieq(http_str_ptr(m, h->name), h->name.len, "Cache-Control"))
            continue;
        if (memchr(http_str_ptr(m, h->value), '"', h->value.len) != NULL)
            goto out; /* an unbalanced quote may swallow the comma: not comparable */
        if (joined.len > 0)
            buf_append_str(&joined, ", ");
        buf_append(&joined, http_str_ptr(m, h->value), h->value.len);
    }
    add_field(&one, "cache-control", 13, joined.data ? joined.data : "", joined.len);
    struct cache_control cc1;
    cache_control_parse(&one, &cc1);
    if (!same_directives(cc, &cc1)) {
        fprintf(stderr, "Cache-Control reads differently as one field: %.*s\n", (int)joined.len,
                joined.data);
        abort();
    }
out:
    buf_free(&joined);
    http_msg_free(&one);
}

static void
check_freshness(const struct http_msg *req, const struct http_msg *resp, unsigned when)
{
    char why[64];
    (void)cache_storable(req, resp, why, sizeof(why));
    time_t request_time = 1700000000 + (time_t)(when & 7);
    time_t response_time = request_time + (time_t)(when >> 3 & 7);
    int64_t lifetime = cache_freshness_lifetime(resp, (when & 0x40) ? 86400 : 0);
    int64_t age = cache_current_age(resp, request_time, response_time, response_time + 100);
    int64_t sie = cache_stale_if_error(resp, 0), swr = cache_stale_while_revalidate(resp, 0);
    if (lifetime < 0 || age < 0 || sie < 0 || swr < 0) {
        fprintf(stderr, "negative: lifetime %lld age %lld sie %lld swr %lld\n", (long long)lifetime,
                (long long)age, (long long)sie, (long long)swr);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 2)
        return 0;
    struct http_msg req, resp;
    http_msg_init(&req, SIZE_MAX);
    http_msg_init(&resp, SIZE_MAX);
    resp.status = statuses[data[0] % ARRAY_SIZE(statuses)];
    req.method = (data[1] & 0x80) ? HTTP_HEAD : HTTP_GET;
    unsigned when = data[1];
    const char *s = (const char *)data + 2, *end = (const char *)data + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = (size_t)((nl ? nl : end) - s);
        add_line(&req, &resp, s, n);
        s += n + (nl != NULL);
    }
    struct cache_control cc;
    cache_control_parse(&resp, &cc);
    check_joined(&resp, &cc);
    check_freshness(&req, &resp, when);
    http_msg_free(&req);
    http_msg_free(&resp);
    return 0;
}
