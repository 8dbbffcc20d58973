/* fill.c - an object's head from a response head, or from a stored object and a 304. */
#include "cache/fill.h"

#include "cache/freshness.h"
#include "cache/vary.h"

#include <strings.h>

/* Not stored: hop-by-hop and framing fields, Age (recomputed per hit) and X-Request-Id
 * (each response carries its own request's). */
static bool
kept_field(const struct http_msg *resp, const struct http_header *h)
{
    enum http_field f = http_header_field(resp, h);
    return !http_msg_is_hop_header(resp, h) && f != HTTP_FIELD_AGE && f != HTTP_FIELD_X_REQUEST_ID;
}

static void
append_field(struct buf *out, const struct http_msg *m, const struct http_header *h)
{
    buf_append(out, http_str_ptr(m, h->name), h->name.len);
    buf_append(out, ": ", 2);
    buf_append(out, http_str_ptr(m, h->value), h->value.len);
    buf_append(out, "\r\n", 2);
}

/* Cache-Tag and Surrogate-Key values, for purging by tag. */
static char *
tags_of(const struct http_msg *resp)
{
    struct buf t;
    buf_init(&t, 8192);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        enum http_field f = http_header_field(resp, h);
        if (f != HTTP_FIELD_CACHE_TAG && f != HTTP_FIELD_SURROGATE_KEY)
            continue;
        buf_append(&t, " ", 1);
        buf_append(&t, http_str_ptr(resp, h->value), h->value.len);
    }
    char *tags = buf_used(&t) ? xstrndup(buf_head(&t), buf_used(&t)) : NULL;
    buf_free(&t);
    return tags;
}

/* RFC 9111 3.5: a response a shared cache may give to requests with Authorization. */
static bool
shared_with_auth(const struct cache_control *cc)
{
    return cc->public_ || cc->s_maxage != CC_UNSET || cc->must_revalidate;
}

static int64_t
body_length(const struct http_msg *resp)
{
    if (resp->status == 204 || resp->status == 304)
        return 0;
    return resp->has_content_length && !resp->chunked ? (int64_t)resp->content_length : -1;
}

const char *
cache_fill_refusal(const struct http_msg *req, const struct http_msg *resp)
{
    const char *why = cache_refusal(req, resp);
    if (why == NULL && resp->has_content_length && resp->content_length > cache_store_max_object())
        why = "larger than cache.max_object";
    return why;
}

void
cache_fill_head(struct cache_obj *o, const struct http_msg *req, const struct http_msg *resp,
                const struct cache_fill_params *p, struct buf *scratch)
{
    struct buf fields;
    buf_init(&fields, SIZE_MAX);
    for (size_t i = 0; i < resp->nheaders; i++)
        if (kept_field(resp, &resp->headers[i]))
            append_field(&fields, resp, &resp->headers[i]);
    char *names = cache_vary_names(resp), *tags = tags_of(resp);
    buf_reset(scratch);
    if (names != NULL)
        cache_variant(req, names, scratch);
    buf_append(scratch, "", 1);
    struct cache_control cc; /* parsed once for the four questions below */
    cache_control_parse(resp, &cc);
    struct cache_head h = {
        .status = resp->status,
        .fields = buf_head(&fields),
        .fields_len = buf_used(&fields),
        .total_len = body_length(resp),
        .vary = names,
        .variant = buf_head(scratch),
        .tags = tags,
        .auth_shared = shared_with_auth(&cc),
        .response_time = p->response_time,
        .initial_age = cache_current_age(resp, p->request_time, p->response_time,
                                         p->response_time),
        .lifetime = cache_lifetime_by(resp, &cc, p->heuristic_cap),
        .stale_if_error = cache_stale_window_by(&cc, true, p->stale_if_error),
        .stale_while_revalidate = cache_stale_window_by(&cc, false, p->stale_while_revalidate),
    };
    cache_obj_set_head(o, &h);
    buf_free(&fields);
    free(names);
    free(tags);
}

bool
cache_obj_field(const struct cache_obj *o, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), flen;
    const char *p = cache_obj_fields(o, &flen), *end = p + flen;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (len > nlen + 1 && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < p + len && *v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(p + len - v), v);
            return true;
        }
        p += len + 2;
    }
    return false;
}

/* Does the 304 carry a field of this name (it then replaces the stored one)? */
static bool
replaced_by(const struct http_msg *resp, const char *name, size_t len)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        if (h->name.len == len && strncasecmp(http_str_ptr(resp, h->name), name, len) == 0 &&
            kept_field(resp, h))
            return true;
    }
    return false;
}

/* old's fields with every field the 304 carries replaced by the 304's. */
static void
merge_fields(const struct cache_obj *old, const struct http_msg *resp, struct buf *out)
{
    size_t flen;
    const char *p = cache_obj_fields(old, &flen), *end = p + flen;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
        const char *colon = memchr(p, ':', len);
        if (colon == NULL || !replaced_by(resp, p, (size_t)(colon - p))) {
            buf_append(out, p, len);
            buf_append(out, "\r\n", 2);
        }
        p += len + 2;
    }
    for (size_t i = 0; i < resp->nheaders; i++)
        if (kept_field(resp, &resp->headers[i]))
            append_field(out, resp, &resp->headers[i]);
}

void
cache_fill_revalidated(struct cache_obj *o, const struct cache_obj *old,
                       const struct http_msg *resp, const struct cache_fill_params *p)
{
    struct buf fields;
    buf_init(&fields, SIZE_MAX);
    merge_fields(old, resp, &fields);
    struct cache_control cc;
    cache_control_parse(resp, &cc);
    int64_t lifetime = cache_lifetime_by(resp, &cc, p->heuristic_cap);
    int64_t sie = cache_stale_window_by(&cc, true, -1), swr = cache_stale_window_by(&cc, false, -1);
    struct cache_head h = {
        .status = old->status,
        .fields = buf_head(&fields),
        .fields_len = buf_used(&fields),
        .total_len = (int64_t)cache_obj_available(old),
        .vary = old->vary,
        .variant = old->key + old->base_len + 1,
        .tags = old->tags,
        .auth_shared = old->auth_shared || shared_with_auth(&cc),
        .response_time = p->response_time,
        .initial_age = cache_current_age(resp, p->request_time, p->response_time,
                                         p->response_time),
        .lifetime = lifetime > 0 ? lifetime : cache_obj_lifetime(old),
        .stale_if_error = sie >= 0 ? sie : old->stale_if_error,
        .stale_while_revalidate = swr >= 0 ? swr : old->stale_while_revalidate,
    };
    cache_obj_share_body(o, (struct cache_obj *)old);
    cache_obj_set_head(o, &h);
    buf_free(&fields);
}
