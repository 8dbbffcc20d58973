/* fill.c - building a cache object from a response head and its streamed body. */
#include "cache/fill.h"

#include "cache/freshness.h"

#include <ctype.h>
#include <strings.h>

struct cache_fill {
    struct cache_obj *obj;
    struct buf body;
};

/* Fields a hit sends: everything but hop-by-hop and framing fields, and Age (recomputed). */
static void
copy_fields(const struct http_msg *resp, struct cache_obj *o)
{
    struct buf f;
    buf_init(&f, SIZE_MAX);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        const char *name = http_str_ptr(resp, h->name);
        if (http_msg_is_hop_header(resp, h) || str_ieq(name, h->name.len, "Age"))
            continue;
        buf_append(&f, name, h->name.len);
        buf_append(&f, ": ", 2);
        buf_append(&f, http_str_ptr(resp, h->value), h->value.len);
        buf_append(&f, "\r\n", 2);
    }
    o->fields_len = buf_used(&f);
    o->fields = xstrndup(buf_head(&f), o->fields_len);
    buf_free(&f);
}

/* Cache-Tag and Surrogate-Key values, for purging by tag. */
static char *
tags_of(const struct http_msg *resp)
{
    struct buf t;
    buf_init(&t, 8192);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        const char *name = http_str_ptr(resp, h->name);
        if (!str_ieq(name, h->name.len, "Cache-Tag") && !str_ieq(name, h->name.len, "Surrogate-Key"))
            continue;
        buf_append(&t, " ", 1);
        buf_append(&t, http_str_ptr(resp, h->value), h->value.len);
    }
    char *tags = buf_used(&t) ? xstrndup(buf_head(&t), buf_used(&t)) : NULL;
    buf_free(&t);
    return tags;
}

struct cache_fill *
cache_fill_start(const struct http_msg *req, const struct http_msg *resp,
                 const struct cache_fill_params *p, char *why, size_t whylen)
{
    if (!cache_storable(req, resp, why, whylen))
        return NULL;
    if (resp->has_content_length && resp->content_length > cache_store_max_object()) {
        snprintf(why, whylen, "larger than cache.max_object");
        return NULL;
    }
    struct cache_fill *f = xcalloc(1, sizeof(*f));
    struct cache_obj *o = xcalloc(1, sizeof(*o));
    o->refs = 1;
    o->key = xstrdup(p->key);
    o->status = resp->status;
    o->vary = p->vary ? xstrdup(p->vary) : NULL;
    o->response_time = p->response_time;
    o->initial_age = cache_current_age(resp, p->request_time, p->response_time, p->response_time);
    o->lifetime = cache_freshness_lifetime(resp, p->heuristic_cap);
    o->stale_if_error = cache_stale_if_error(resp, p->stale_if_error);
    o->stale_while_revalidate = cache_stale_while_revalidate(resp, p->stale_while_revalidate);
    o->tags = tags_of(resp);
    copy_fields(resp, o);
    f->obj = o;
    buf_init(&f->body, cache_store_max_object());
    return f;
}

bool
cache_fill_append(struct cache_fill *f, const char *data, size_t len)
{
    return buf_append(&f->body, data, len) == 0;
}

void
cache_fill_commit(struct cache_fill **fp)
{
    struct cache_fill *f = *fp;
    *fp = NULL;
    if (f == NULL)
        return;
    f->obj->body_len = buf_used(&f->body);
    f->obj->body = f->body.data; /* the buffer's bytes move into the object */
    cache_store_put(f->obj);
    free(f);
}

void
cache_fill_abort(struct cache_fill **fp)
{
    struct cache_fill *f = *fp;
    *fp = NULL;
    if (f == NULL)
        return;
    cache_obj_release(&f->obj);
    buf_free(&f->body);
    free(f);
}

char *
cache_vary_names(const struct http_msg *resp)
{
    struct buf out;
    buf_init(&out, 4096);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        if (!str_ieq(http_str_ptr(resp, h->name), h->name.len, "Vary"))
            continue;
        const char *v = http_str_ptr(resp, h->value);
        for (size_t k = 0; k < h->value.len; k++) {
            char ch = v[k] == ' ' || v[k] == '\t' ? 0 : (char)tolower((unsigned char)v[k]);
            if (ch != 0 && !(ch == ',' && (buf_used(&out) == 0 || out.data[out.len - 1] == ',')))
                buf_append(&out, &ch, 1);
        }
        if (buf_used(&out) > 0 && out.data[out.len - 1] != ',')
            buf_append(&out, ",", 1);
    }
    if (buf_used(&out) == 0) {
        buf_free(&out);
        return NULL;
    }
    char *names = xstrndup(buf_head(&out), buf_used(&out) - 1); /* drop the last comma */
    buf_free(&out);
    return names;
}

void
cache_variant(const struct http_msg *req, const char *names, struct buf *out)
{
    const char *p = names;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)MIN(len, sizeof(name) - 1), p);
        buf_printf(out, "%s=", name);
        for (size_t i = 0; i < req->nheaders; i++) {
            const struct http_header *h = &req->headers[i];
            if (!str_ieq(http_str_ptr(req, h->name), h->name.len, name))
                continue;
            const char *v = http_str_ptr(req, h->value);
            for (size_t k = 0; k < h->value.len; k++)
                if (v[k] != ' ' && v[k] != '\t') {
                    char ch = (char)tolower((unsigned char)v[k]);
                    buf_append(out, &ch, 1);
                }
            buf_append(out, ";", 1);
        }
        buf_append(out, "\n", 1);
        p = comma ? comma + 1 : NULL;
    }
}

bool
cache_obj_field(const struct cache_obj *o, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = o->fields, *end = o->fields + o->fields_len;
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

/* old's fields with every field the 304 carries replaced by the 304's. */
static void
merge_fields(const struct cache_obj *old, const struct http_msg *resp, struct buf *out)
{
    const char *p = old->fields, *end = old->fields + old->fields_len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
        const char *colon = memchr(p, ':', len);
        bool replaced = false;
        for (size_t i = 0; colon && i < resp->nheaders && !replaced; i++) {
            const struct http_header *h = &resp->headers[i];
            replaced = h->name.len == (size_t)(colon - p) &&
                       strncasecmp(http_str_ptr(resp, h->name), p, h->name.len) == 0 &&
                       !http_msg_is_hop_header(resp, h);
        }
        if (!replaced) {
            buf_append(out, p, len);
            buf_append(out, "\r\n", 2);
        }
        p += len + 2;
    }
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        const char *name = http_str_ptr(resp, h->name);
        if (http_msg_is_hop_header(resp, h) || str_ieq(name, h->name.len, "Age"))
            continue;
        buf_append(out, name, h->name.len);
        buf_append(out, ": ", 2);
        buf_append(out, http_str_ptr(resp, h->value), h->value.len);
        buf_append(out, "\r\n", 2);
    }
}

struct cache_obj *
cache_obj_refresh(const struct cache_obj *old, const struct http_msg *resp,
                  time_t request_time, time_t response_time, int64_t heuristic_cap)
{
    struct cache_obj *o = xcalloc(1, sizeof(*o));
    struct buf fields;
    buf_init(&fields, SIZE_MAX);
    merge_fields(old, resp, &fields);
    o->refs = 1;
    o->key = xstrdup(old->key);
    o->status = old->status;
    o->fields_len = buf_used(&fields);
    o->fields = xstrndup(buf_head(&fields), o->fields_len);
    buf_free(&fields);
    o->body = xmalloc(old->body_len ? old->body_len : 1);
    memcpy(o->body, old->body, old->body_len);
    o->body_len = old->body_len;
    o->vary = old->vary ? xstrdup(old->vary) : NULL;
    o->tags = old->tags ? xstrdup(old->tags) : NULL;
    o->response_time = response_time;
    o->initial_age = cache_current_age(resp, request_time, response_time, response_time);
    int64_t lifetime = cache_freshness_lifetime(resp, heuristic_cap);
    o->lifetime = lifetime > 0 ? lifetime : old->lifetime;
    int64_t sie = cache_stale_if_error(resp, -1);
    o->stale_if_error = sie >= 0 ? sie : old->stale_if_error;
    int64_t swr = cache_stale_while_revalidate(resp, -1);
    o->stale_while_revalidate = swr >= 0 ? swr : old->stale_while_revalidate;
    return o;
}
