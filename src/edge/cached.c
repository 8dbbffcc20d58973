/* cached.c - lookups, one visitor's answer from a stored object, and the body sent from the
 * object's memory (whole, a range, multipart/byteranges, or chunks of a fill in progress). */
#include "edge/cached.h"

#include "core/sys.h"
#include "cache/freshness.h"
#include "cache/key.h"
#include "cache/vary.h"
#include "edge/admit.h"
#include "edge/zone.h"

#include <llhttp.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define CACHED_IOV 64
#define CACHED_PART_FRAME 512
#define CACHED_PART_CTYPE 200 /* a longer Content-Type is left out of the parts */
#define CACHED_READY (-1)     /* next_piece: there is something to write */

struct cached_parts {
    int n, i; /* ranges; the current one (-1 before the first) */
    struct cache_range r[CACHE_MAX_RANGES];
    uint64_t total;
    char boundary[24];
    char ctype[CACHED_PART_CTYPE + 1]; /* "" when none */
    char frame[CACHED_PART_FRAME];
    struct buf fields; /* the stored fields without Content-Type */
};

/* ---------------------------------------------------------------- the visit */

/* What s holds, let go; its fields left as they are. */
static void
send_release(struct cached_send *s)
{
    cache_obj_release(&s->obj);
    if (s->parts != NULL) {
        buf_free(&s->parts->fields);
        free(s->parts);
    }
}

void
cached_send_clear(struct cached_send *s)
{
    send_release(s);
    memset(s, 0, sizeof(*s));
}

void
cached_visit_clear(struct cached_visit *v)
{
    struct cache_obj *sub = v->waiting ? v->busy : v->send.obj;
    cache_obj_unsubscribe(sub, &v->waiter);
    if (v->fill != NULL && cache_obj_state(v->fill) < CACHE_OBJ_COMPLETE)
        cache_obj_fail(v->fill, CACHE_FAIL_INCOMPLETE, NULL, 0); /* its writer is gone */
    if (v->leading && v->busy != NULL && cache_obj_state(v->busy) < CACHE_OBJ_COMPLETE)
        cache_obj_fail(v->busy, CACHE_FAIL_NOT_STORED, NULL, 0); /* nobody will fill it */
    cache_obj_release(&v->hit);
    cache_obj_release(&v->stale);
    cache_obj_release(&v->busy);
    cache_obj_release(&v->fill);
    send_release(&v->send); /* zeroed with the rest */
    memset(v, 0, sizeof(*v));
}

bool
cached_key(struct worker *w, const struct config_zone *z, const char *host, size_t hlen,
           const char *target, size_t tlen)
{
    struct buf *key = &w->cache_key;
    buf_reset(key);
    return buf_append_str(key, z->name) == 0 && buf_append(key, "\n", 1) == 0 &&
           buf_append(key, host, hlen) == 0 && buf_append(key, "\n", 1) == 0 &&
           (target[0] != '?' || buf_append(key, "/", 1) == 0) &&
           cache_key_target(key, target, tlen, z->cache_key_query) == 0;
}

/* ---------------------------------------------------------------- the lookup */

/* RFC 9111: what a shared cache may answer, or store, for this request at all. */
static bool
eligible(const struct http_msg *req, const struct cache_control *rq)
{
    if (req->method != HTTP_GET && req->method != HTTP_HEAD)
        return false;
    if (req->chunked || req->content_length > 0)
        return false; /* a body: not a plain retrieval */
    return !rq->no_store;
}

/* May the stored object answer this request now (RFC 9111 4.2 and the request's own
 * Cache-Control)? */
static bool
usable(const struct cache_obj *o, const struct cache_control *rq, time_t now)
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

bool
cached_stale_allowed(const struct cache_obj *o, time_t now)
{
    return o->stale_if_error > 0 &&
           cache_obj_age(o, now) <= cache_obj_lifetime(o) + o->stale_if_error;
}

#define CACHED_LEAD (-1) /* decide: a fetch is needed and nobody leads it: look again, leading */

struct request_facts {
    const struct cache_control *rq;
    bool get, auth;
    time_t now;
};

/* With a stored copy that may be served stale while it is refreshed in the background. */
static int
decide_swr(struct cached_visit *v, struct cache_lookup *l)
{
    v->result = METRICS_CACHE_UPDATING;
    if (l->busy == NULL)
        return CACHED_LEAD;
    if (l->leading) {
        v->busy = l->busy;
        v->leading = true;
        return CACHED_REFRESH;
    }
    cache_obj_release(&l->busy); /* a refresh (or fill) is already running */
    return CACHED_HIT;
}

static int
decide(struct cached_visit *v, struct cache_lookup *l, const struct request_facts *f)
{
    struct cache_obj *o = l->stored;
    if (o != NULL && f->auth && !o->auth_shared)
        cache_obj_release(&o); /* RFC 9111 3.5: not for requests with Authorization */
    if (o != NULL && usable(o, f->rq, f->now)) {
        v->result = METRICS_CACHE_HIT;
        v->hit = o;
        cache_obj_release(&l->busy);
        return CACHED_HIT;
    }
    if (o != NULL && f->get && !f->rq->no_cache && within_swr(o, f->now)) {
        v->hit = o;
        return decide_swr(v, l);
    }
    v->stale = o;
    v->result = o ? METRICS_CACHE_EXPIRED : METRICS_CACHE_MISS;
    if (!l->leading && l->marker != NULL && cache_obj_fresh(l->marker, f->now)) {
        v->hit_for_miss = true; /* not stored lately: to the origin at once, no entry */
        cache_obj_release(&l->busy);
        return CACHED_FETCH;
    }
    if (l->busy != NULL && (l->leading || !f->rq->no_cache)) {
        v->busy = l->busy;
        v->leading = l->leading;
        return l->leading ? CACHED_FETCH : CACHED_JOIN;
    }
    if (l->busy != NULL) { /* no-cache: its own request to the origin, not someone else's */
        cache_obj_release(&l->busy);
        return CACHED_FETCH;
    }
    return f->get ? CACHED_LEAD : CACHED_FETCH;
}

enum cached_decision
cached_lookup(struct cached_visit *v, struct worker *w, const struct config_zone *z,
              const struct http_msg *req, time_t now)
{
    struct cache_control rq;
    cache_control_parse(req, &rq);
    v->request_time = now;
    v->result = METRICS_CACHE_BYPASS;
    if (!eligible(req, &rq))
        return CACHED_BYPASS;
    v->eligible = true;
    struct request_facts f = {&rq, req->method == HTTP_GET,
                              http_msg_field(req, HTTP_FIELD_AUTHORIZATION) != NULL, now};
    struct cache_lookup l = {
        .base = buf_head(&w->cache_key),
        .base_len = buf_used(&w->cache_key),
        .hash = cache_key_hash(buf_head(&w->cache_key), buf_used(&w->cache_key)),
        .req = req,
        .scratch = &w->cache_scratch,
        .near = &w->cache_near,
    };
    v->key_hash = l.hash;
    for (;;) {
        cache_store_lookup(&l);
        int d = decide(v, &l, &f);
        cache_obj_release(&l.marker);
        if (d != CACHED_LEAD)
            return (enum cached_decision)d;
        /* Nobody fetches it: look again, making the entry every worker's visitors find. */
        cache_obj_release(&v->stale);
        cache_obj_release(&v->hit);
        l.lead = true;
    }
}

bool
cached_fill_answers(const struct cache_obj *o, struct worker *w, const struct http_msg *req)
{
    if (http_msg_field(req, HTTP_FIELD_AUTHORIZATION) != NULL && !o->auth_shared)
        return false;
    if (o->vary == NULL)
        return true;
    buf_reset(&w->cache_scratch);
    cache_variant(req, o->vary, &w->cache_scratch);
    const char *v = o->key + o->base_len + 1;
    return strlen(v) == buf_used(&w->cache_scratch) &&
           memcmp(v, buf_head(&w->cache_scratch), buf_used(&w->cache_scratch)) == 0;
}

/* ---------------------------------------------------------------- the answer's head */

/* Does the visitor's conditional request match the stored object (RFC 9110 13.1)? Then
 * the answer is 304 without a body. */
static bool
not_modified(const struct http_msg *m, const struct cache_obj *o)
{
    const struct http_header *inm = http_msg_field(m, HTTP_FIELD_IF_NONE_MATCH);
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
    const struct http_header *ims = http_msg_field(m, HTTP_FIELD_IF_MODIFIED_SINCE);
    if (ims == NULL || !cache_obj_field(o, "Last-Modified", lm, sizeof(lm)))
        return false;
    time_t since = http_date_parse(http_str_ptr(m, ims->value), ims->value.len);
    time_t modified = http_date_parse(lm, strlen(lm));
    return since >= 0 && modified >= 0 && modified <= since;
}

/* Is the Range of a GET for this object to be honoured (there is one, and an If-Range
 * matches the stored strong ETag)? */
static const struct http_header *
range_wanted(const struct http_msg *m, const struct cache_obj *o)
{
    const struct http_header *h = http_msg_field(m, HTTP_FIELD_RANGE);
    const struct http_header *ir = http_msg_field(m, HTTP_FIELD_IF_RANGE);
    char etag[256];
    if (h == NULL || o->status != 200 || m->method != HTTP_GET)
        return NULL;
    if (ir != NULL && !(cache_obj_field(o, "ETag", etag, sizeof(etag)) &&
                        strlen(etag) == ir->value.len &&
                        memcmp(etag, http_str_ptr(m, ir->value), ir->value.len) == 0))
        return NULL; /* If-Range with a date or another entity tag: the whole object */
    return h;
}

/* The body's length if known now: from the origin's Content-Length, or because the fill is
 * complete. */
static bool
length_known(const struct cache_obj *o, uint64_t *total)
{
    if (o->total_len >= 0) {
        *total = (uint64_t)o->total_len;
        return true;
    }
    *total = cache_obj_available(o);
    return cache_obj_state(o) == CACHE_OBJ_COMPLETE;
}

static size_t
part_frame(const struct cached_parts *p, int i, char *out, size_t outlen)
{
    int n;
    if (i >= p->n)
        n = snprintf(out, outlen, "\r\n--%s--\r\n", p->boundary);
    else
        n = snprintf(out, outlen, "%s--%s\r\n%s%s%sContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                     i == 0 ? "" : "\r\n", p->boundary, p->ctype[0] ? "Content-Type: " : "",
                     p->ctype, p->ctype[0] ? "\r\n" : "", (unsigned long long)p->r[i].first,
                     (unsigned long long)p->r[i].last, (unsigned long long)p->total);
    return MIN((size_t)n, outlen - 1); /* fits: the Content-Type in it is bounded */
}

/* multipart/byteranges (RFC 9110 14.6): the parts, their framing, and the stored fields
 * without Content-Type (the response has its own). Returns the body's length. */
static uint64_t
parts_setup(struct cached_send *s, const struct cache_obj *o, const struct cache_range *r,
            int n, uint64_t total)
{
    struct cached_parts *p = xcalloc(1, sizeof(*p));
    char ct[CACHED_PART_CTYPE * 2];
    size_t flen;
    const char *f = cache_obj_fields(o, &flen), *end = f + flen;
    p->n = n;
    p->i = -1;
    p->total = total;
    memcpy(p->r, r, sizeof(*r) * (size_t)n);
    snprintf(p->boundary, sizeof(p->boundary), "%016llx",
             (unsigned long long)(cache_key_hash(o->key, strlen(o->key)) ^ (uintptr_t)s));
    if (cache_obj_field(o, "Content-Type", ct, sizeof(ct)) && strlen(ct) <= CACHED_PART_CTYPE)
        memcpy(p->ctype, ct, strlen(ct) + 1);
    buf_init(&p->fields, SIZE_MAX);
    while (f < end) {
        const char *eol = memchr(f, '\n', (size_t)(end - f));
        size_t len = eol ? (size_t)(eol - f) + 1 : (size_t)(end - f);
        if (len < 13 || strncasecmp(f, "Content-Type:", 13) != 0)
            buf_append(&p->fields, f, len);
        f += len;
    }
    uint64_t body = part_frame(p, n, p->frame, sizeof(p->frame));
    for (int i = 0; i < n; i++)
        body += part_frame(p, i, p->frame, sizeof(p->frame)) + r[i].last - r[i].first + 1;
    s->parts = p;
    return body;
}

static int64_t
ttl_of(const struct cache_obj *o, time_t now)
{
    return cache_obj_lifetime(o) - cache_obj_age(o, now);
}

/* Per-request fields are formatted by hand: printf's format parsing would be most of the
 * cost of a hit. Writes stop at the end of the buffer (which is sized for the longest). */
struct out {
    char *p, *end;
};

/* With n known at compile time (a literal through put_str), the copy in the branch taken
 * is a few moves, not a call. */
static inline void
put(struct out *o, const char *s, size_t n)
{
    if (likely((size_t)(o->end - o->p) >= n)) {
        memcpy(o->p, s, n);
        o->p += n;
        return;
    }
    n = (size_t)(o->end - o->p);
    memcpy(o->p, s, n);
    o->p += n;
}

static inline void
put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void
put_u64(struct out *o, uint64_t v)
{
    char digits[U64_DIGITS];
    size_t at = u64_digits(v, digits);
    put(o, digits + at, sizeof(digits) - at);
}

static void
put_i64(struct out *o, int64_t v)
{
    if (v < 0)
        put(o, "-", 1);
    put_u64(o, v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v);
}

/* Cache-Status (RFC 9211) for this answer. */
static void
put_cache_status(struct out *o, const struct cached_reply *r, const struct cache_obj *obj)
{
    enum metrics_cache l = r->result;
    put_str(o, r->edge_name);
    if (l == METRICS_CACHE_MISS || l == METRICS_CACHE_EXPIRED) {
        put_str(o, l == METRICS_CACHE_MISS ? "; fwd=uri-miss; fwd-status=" : "; fwd=stale; fwd-status=");
        put_u64(o, (uint64_t)r->fwd_status);
        put_str(o, "; stored");
        return;
    }
    put_str(o, l == METRICS_CACHE_REVALIDATED ? "; fwd=stale; fwd-status=304; ttl=" : "; hit; ttl=");
    put_i64(o, ttl_of(obj, r->now));
    put_str(o, l == METRICS_CACHE_REVALIDATED ? "; stored"
               : l == METRICS_CACHE_STALE     ? "; detail=stale-if-error"
               : l == METRICS_CACHE_UPDATING  ? "; detail=stale-while-revalidate"
               : r->collapsed                 ? "; collapsed"
                                              : "");
}

struct answer {
    int status;
    int nranges;                /* 0: the whole body; 1: one range; more: multipart */
    struct cache_range range[CACHE_MAX_RANGES];
    uint64_t total, length;     /* the body's length; what this answer sends */
    bool known, body, chunked, close;
};

/* Status, range and framing of the answer; -1 when a range needs an unknown length. */
static int
plan(struct answer *a, const struct cache_obj *o, const struct cached_reply *r)
{
    const struct http_header *rh;
    a->nranges = 0; /* range[] is only read up to nranges: not zeroed for every hit */
    a->status = r->proxy_status == NULL && not_modified(r->req, o) ? 304 : o->status;
    a->known = length_known(o, &a->total);
    a->length = a->total;
    if (a->status == 200 && (rh = range_wanted(r->req, o)) != NULL) {
        if (!a->known)
            return -1;
        a->nranges = cache_range_parse(http_str_ptr(r->req, rh->value), rh->value.len,
                                       a->total, a->range);
        a->status = a->nranges < 0 ? 416 : a->nranges > 0 ? 206 : 200;
        a->length = a->nranges < 0 ? 0 : a->nranges == 1 ? a->range[0].last - a->range[0].first + 1
                                                        : a->total;
    }
    a->body = !r->head_method && a->status != 204 && a->status != 304 && a->status != 416;
    a->chunked = !a->known && a->body && r->req->minor >= 1;
    a->close = r->close || (!a->known && a->body && r->req->minor == 0);
    return 0;
}

static void
put_framing(struct out *o, const struct answer *a, const struct cached_send *s)
{
    if (a->status == 206 && a->nranges == 1) {
        put_str(o, "Content-Range: bytes ");
        put_u64(o, a->range[0].first);
        put(o, "-", 1);
        put_u64(o, a->range[0].last);
        put(o, "/", 1);
        put_u64(o, a->total);
        put(o, "\r\n", 2);
    } else if (a->status == 416) {
        put_str(o, "Content-Range: bytes */");
        put_u64(o, a->total);
        put(o, "\r\n", 2);
    }
    if (s->parts != NULL) {
        put_str(o, "Content-Type: multipart/byteranges; boundary=");
        put_str(o, s->parts->boundary);
        put(o, "\r\n", 2);
    }
    if (a->known && a->status != 204 && a->status != 304) {
        put_str(o, "Content-Length: ");
        put_u64(o, a->length);
        put(o, "\r\n", 2);
    } else if (a->chunked) {
        put_str(o, "Transfer-Encoding: chunked\r\n");
    }
}

/* The per-request fields, after the stored ones; returns their length. */
static size_t
request_fields(char *buf, size_t len, const struct answer *a, const struct cached_send *s,
               const struct cache_obj *obj, const struct cached_reply *r)
{
    struct out o = {buf, buf + len};
    put_framing(&o, a, s);
    put_str(&o, "Age: ");
    put_i64(&o, cache_obj_age(obj, r->now));
    put_str(&o, "\r\nCache-Status: ");
    put_cache_status(&o, r, obj);
    put_str(&o, "\r\nX-Cache: ");
    put_str(&o, metrics_cache_results[r->result]);
    if (r->proxy_status != NULL) {
        put_str(&o, "\r\nProxy-Status: ");
        put_str(&o, r->proxy_status);
    }
    if (r->via) {
        put_str(&o, "\r\nVia: 1.1 ");
        put_str(&o, r->edge_name);
    }
    put_str(&o, "\r\nX-Request-Id: ");
    put_str(&o, r->request_id);
    put_str(&o, a->close ? "\r\nConnection: close\r\n\r\n"
                : r->req->minor == 0 ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\n\r\n");
    return (size_t)(o.p - buf);
}

/* The per-request fields of a plain hit (the whole body, 200, keep-alive HTTP/1.1, no
 * Proxy-Status) from the worker's memo, keyed by every value they are made of but the
 * request id: formatted by request_fields when the memo has none for these values. */
static size_t
hit_fields(char *buf, size_t len, const struct answer *a, const struct cached_send *s,
           const struct cache_obj *obj, const struct cached_reply *r)
{
    if (r->memo == NULL || a->status != 200 || a->nranges != 0 || !a->known || a->close ||
        s->parts != NULL || r->result != METRICS_CACHE_HIT || r->collapsed ||
        r->proxy_status != NULL || r->req->minor == 0)
        return request_fields(buf, len, a, s, obj, r);
    int64_t age = cache_obj_age(obj, r->now), ttl = ttl_of(obj, r->now);
    size_t edge_len = strlen(r->edge_name), rid_len = strlen(r->request_id);
    struct worker_hit_fields *m = &r->memo[(a->length ^ (uint64_t)age) % WORKER_HIT_FIELDS];
    if (m->len == 0 || m->length != a->length || m->age != age || m->ttl != ttl ||
        m->via != r->via || m->edge_len != edge_len || memcmp(m->edge, r->edge_name, edge_len)) {
        struct cached_reply bare = *r;
        bare.request_id = "";
        size_t n = edge_len <= sizeof(m->edge) ? request_fields(m->text, sizeof(m->text), a, s,
                                                                obj, &bare)
                                               : 0;
        m->len = 0;
        if (n < 4 || n == sizeof(m->text)) /* a name too long for the memo */
            return request_fields(buf, len, a, s, obj, r);
        m->length = a->length;
        m->age = age;
        m->ttl = ttl;
        m->via = r->via;
        m->edge_len = (uint16_t)edge_len;
        memcpy(m->edge, r->edge_name, edge_len);
        m->len = (uint16_t)(n - 4); /* without the "\r\n\r\n" after the empty request id */
    }
    if ((size_t)m->len + rid_len + 4 > len)
        return request_fields(buf, len, a, s, obj, r);
    memcpy(buf, m->text, m->len);
    memcpy(buf + m->len, r->request_id, rid_len);
    memcpy(buf + m->len + rid_len, "\r\n\r\n", 4);
    return m->len + rid_len + 4;
}

/* Where the body comes from: the object, from where to where, framed how. */
static uint64_t
plan_body(struct cached_send *s, struct cache_obj *o, struct answer *a)
{
    if (!a->body)
        return 0;
    s->obj = cache_obj_acquire(o);
    s->chunked = a->chunked;
    s->whole = a->nranges == 0;
    if (a->nranges > 1)
        return a->length = parts_setup(s, o, a->range, a->nranges, a->total);
    s->pos = a->nranges == 1 ? a->range[0].first : 0;
    s->end = a->nranges == 1 ? a->range[0].last + 1 : a->known ? a->total : UINT64_MAX;
    return a->length;
}

int
cached_reply_prepare(struct cached_send *s, struct cache_obj *o, const struct cached_reply *r,
                     char *buf, size_t buflen, struct iovec *iov, int *niov, int *status,
                     bool *close)
{
    struct answer a; /* plan sets every field it reads */
    if (plan(&a, o, r) < 0)
        return -1;
    cached_send_clear(s);
    plan_body(s, o, &a);
    int n = 0;
    size_t used = 0;
    if (a.status == o->status && s->parts == NULL) {
        iov[n++] = (struct iovec){o->head, o->head_len}; /* the stored block as it is */
    } else {
        used = (size_t)snprintf(buf, buflen, "HTTP/1.1 %d %s\r\n", a.status,
                                http_status_reason(a.status));
        iov[n++] = (struct iovec){buf, used};
        size_t flen;
        const char *f = cache_obj_fields(o, &flen);
        iov[n++] = s->parts ? (struct iovec){s->parts->fields.data, buf_used(&s->parts->fields)}
                            : (struct iovec){(void *)f, flen};
    }
    size_t k = hit_fields(buf + used, buflen - used, &a, s, o, r);
    iov[n++] = (struct iovec){buf + used, k};
    *niov = n;
    *status = a.status;
    *close = a.close;
    return 0;
}

/* ---------------------------------------------------------------- sending the body */

static bool
frame_pending(const struct cached_send *s)
{
    return s->frame_pos < s->frame_len;
}

static void
set_frame(struct cached_send *s, const char *p, size_t len)
{
    s->frame = p;
    s->frame_len = len;
    s->frame_pos = 0;
}

/* [pos, end) of the object: what can be written now, or why nothing can. */
static int
plain_piece(struct cached_send *s, uint64_t *limit)
{
    uint64_t avail = cache_obj_available(s->obj);
    enum cache_obj_state st = cache_obj_state(s->obj);
    uint64_t end = s->end == UINT64_MAX && st == CACHE_OBJ_COMPLETE ? avail : s->end;
    if (s->pos >= end)
        return CACHED_SENT;
    if (s->pos < avail) {
        *limit = MIN(end, avail);
        return CACHED_READY;
    }
    return st >= CACHE_OBJ_COMPLETE ? CACHED_CUT : CACHED_WAIT;
}

/* Chunked framing of a body whose length is not known yet. */
static int
chunk_piece(struct cached_send *s, uint64_t *limit)
{
    if (frame_pending(s) || s->chunk_left > 0) {
        *limit = s->pos + s->chunk_left;
        return CACHED_READY;
    }
    uint64_t avail = cache_obj_available(s->obj);
    enum cache_obj_state st = cache_obj_state(s->obj);
    const char *crlf = s->chunk_open ? "\r\n" : "";
    int n;
    if (s->pos < avail) {
        s->chunk_left = avail - s->pos;
        n = snprintf(s->line, sizeof(s->line), "%s%llx\r\n", crlf,
                     (unsigned long long)s->chunk_left);
        s->chunk_open = true;
    } else if (st == CACHE_OBJ_COMPLETE) {
        n = snprintf(s->line, sizeof(s->line), "%s0\r\n\r\n", crlf);
        s->last_frame = true;
    } else {
        return st == CACHE_OBJ_FAILED ? CACHED_CUT : CACHED_WAIT;
    }
    set_frame(s, s->line, (size_t)n);
    *limit = s->pos + s->chunk_left;
    return CACHED_READY;
}

/* multipart/byteranges: each part's framing, then its bytes; then the closing line. */
static int
parts_piece(struct cached_send *s, uint64_t *limit)
{
    struct cached_parts *p = s->parts;
    if (!frame_pending(s) && p->i >= 0 && p->i < p->n) {
        int rc = plain_piece(s, limit);
        if (rc != CACHED_SENT)
            return rc;
    }
    if (!frame_pending(s)) {
        if (p->i >= p->n)
            return CACHED_SENT;
        p->i++;
        set_frame(s, p->frame, part_frame(p, p->i, p->frame, sizeof(p->frame)));
        if (p->i < p->n) {
            s->pos = p->r[p->i].first;
            s->end = p->r[p->i].last + 1;
        } else {
            s->last_frame = true;
        }
    }
    *limit = s->last_frame ? s->pos : MIN(s->end, cache_obj_available(s->obj));
    return CACHED_READY;
}

static int
next_piece(struct cached_send *s, uint64_t *limit)
{
    *limit = s->pos;
    if (s->obj == NULL)
        return CACHED_SENT;
    if (s->last_frame)
        return frame_pending(s) ? CACHED_READY : CACHED_SENT;
    if (s->parts != NULL)
        return parts_piece(s, limit);
    if (s->chunked)
        return chunk_piece(s, limit);
    return plain_piece(s, limit);
}

/* k bytes of iov were written: take them off out, head (the rest of head joins out),
 * the frame and the body. */
static void
account(struct cached_send *s, struct buf *out, const struct iovec *head, int nhead, size_t k,
        struct cached_count *count)
{
    size_t take = MIN(k, buf_used(out));
    if (take > 0)
        buf_consume(out, take);
    k -= take;
    for (int i = 0; i < nhead; i++) {
        take = MIN(k, head[i].iov_len);
        k -= take;
        if (take < head[i].iov_len) /* most writes take the whole head: nothing to keep */
            buf_append(out, (const char *)head[i].iov_base + take, head[i].iov_len - take);
    }
    take = MIN(k, s->frame_len - s->frame_pos);
    s->frame_pos += take;
    k -= take;
    s->pos += k;
    if (s->chunked && !s->parts)
        s->chunk_left -= k;
    count->body += k;
}

/* A body in a memfd up to sendfile_max goes out with sendfile, a larger one is copied from
 * the memfd's mapping with writev: see cache.sendfile_max in docs/caching.md. */
static bool
by_file(const struct cached_send *s, uint64_t sendfile_max)
{
    return s->obj != NULL && s->obj->total_len >= 0 && (uint64_t)s->obj->total_len <= sendfile_max;
}

/* What can be written now, in order: out's bytes, head, the frame, the body's next piece
 * (up to max pieces in all). *st: next_piece's status. A body piece in a file (file: the
 * sendfile way) is not added: *file_len says its length, 0 for none. */
struct gathered {
    int n, st;
    size_t file_len;
    int file_fd;
    off_t file_off;
};

static void
gather(struct cached_send *s, struct buf *out, const struct iovec *head, int nhead, bool file,
       struct iovec *iov, int max, struct gathered *g)
{
    uint64_t limit;
    int n = 0;
    g->st = next_piece(s, &limit);
    g->file_len = 0;
    if (buf_used(out) > 0)
        iov[n++] = (struct iovec){(void *)buf_head(out), buf_used(out)};
    for (int i = 0; i < nhead; i++)
        iov[n++] = head[i];
    if (g->st == CACHED_READY && frame_pending(s))
        iov[n++] = (struct iovec){(void *)(s->frame + s->frame_pos), s->frame_len - s->frame_pos};
    bool body = g->st == CACHED_READY && limit > s->pos;
    if (body && file)
        g->file_len = cache_obj_file(s->obj, s->pos, limit, &g->file_fd, &g->file_off);
    if (body && g->file_len == 0 && n < max)
        n += cache_obj_iov(s->obj, s->pos, limit, iov + n, max - n);
    g->n = n;
}

enum cached_pump
cached_pump(struct cached_send *s, int fd, struct buf *out, const struct iovec *head, int nhead,
            uint64_t sendfile_max, struct cached_count *count)
{
    bool file = by_file(s, sendfile_max);
    for (;;) {
        struct iovec iov[CACHED_IOV];
        struct gathered g;
        size_t total = 0;
        gather(s, out, head, nhead, file, iov, CACHED_IOV, &g);
        int n = g.n;
        if (g.file_len > 0 && n == 0) {
            /* the body's piece is a file: sendfile, with the head sent just before (fd is a
             * plain TCP socket: a TLS listener would need kTLS here, or the writev path) */
            ssize_t k = sendfile(fd, g.file_fd, &g.file_off, g.file_len);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return errno == EAGAIN ? CACHED_BLOCKED : CACHED_ERROR;
            cached_sent(s, out, (size_t)k, count);
            if ((size_t)k < g.file_len)
                return CACHED_BLOCKED;
            continue;
        }
        if (n <= 0)
            return g.st == CACHED_READY ? CACHED_SENT : (enum cached_pump)g.st;
        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        /* before a file's piece: held back (MSG_MORE) to leave in its first packet */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = g.file_len > 0 ? sendmsg(fd, &mh, MSG_MORE | MSG_NOSIGNAL)
                                   : sys_writev(fd, iov, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            account(s, out, head, nhead, 0, count);
            return errno == EAGAIN ? CACHED_BLOCKED : CACHED_ERROR;
        }
        account(s, out, head, nhead, (size_t)k, count);
        count->wire += (uint64_t)k;
        head = NULL;
        nhead = 0;
        if ((size_t)k < total)
            return CACHED_BLOCKED;
    }
}

enum cached_pump
cached_plan(struct cached_send *s, struct buf *out, struct iovec *iov, int max,
            uint64_t sendfile_max, int *n)
{
    struct gathered g;
    gather(s, out, NULL, 0, by_file(s, sendfile_max), iov, max, &g);
    *n = g.n;
    if (g.file_len > 0)
        return CACHED_FILE;
    if (g.n > 0)
        return CACHED_READY_TO_SEND;
    return g.st == CACHED_READY ? CACHED_SENT : (enum cached_pump)g.st;
}

void
cached_sent(struct cached_send *s, struct buf *out, size_t k, struct cached_count *count)
{
    account(s, out, NULL, 0, k, count);
    count->wire += (uint64_t)k;
}

bool
cached_send_active(const struct cached_send *s)
{
    return s->obj != NULL;
}

/* Bytes [from, to) of the object into out. */
static void
copy_body(const struct cache_obj *o, uint64_t from, uint64_t to, struct buf *out)
{
    struct iovec iov[CACHED_IOV];
    while (from < to) {
        int n = cache_obj_iov(o, from, to, iov, CACHED_IOV);
        if (n == 0)
            return;
        for (int i = 0; i < n; i++) {
            buf_append(out, iov[i].iov_base, iov[i].iov_len);
            from += iov[i].iov_len;
        }
    }
}

bool
cached_send_detach(struct cached_send *s, struct buf *out, bool *chunked,
                   struct cached_count *moved)
{
    if (s->obj == NULL || !s->whole)
        return false;
    size_t before = buf_used(out);
    uint64_t avail = cache_obj_available(s->obj);
    uint64_t upto = s->chunked ? s->pos + s->chunk_left : avail;
    if (frame_pending(s))
        buf_append(out, s->frame + s->frame_pos, s->frame_len - s->frame_pos);
    copy_body(s->obj, s->pos, upto, out);
    if (s->chunked && s->chunk_open)
        buf_append(out, "\r\n", 2); /* ends the chunk begun */
    if (s->chunked && avail > upto) {
        buf_printf(out, "%llx\r\n", (unsigned long long)(avail - upto));
        copy_body(s->obj, upto, avail, out);
        buf_append(out, "\r\n", 2);
    }
    moved->body = avail - s->pos;
    moved->wire = buf_used(out) - before;
    *chunked = s->chunked;
    cached_send_clear(s);
    return true;
}

/* ---------------------------------------------------------------- fills */

void
cached_fill_params(const struct config *cfg, const struct config_zone *z, time_t request_time,
                   time_t now, struct cache_fill_params *p)
{
    *p = (struct cache_fill_params){
        .request_time = request_time,
        .response_time = now,
        .heuristic_cap = (int64_t)(cfg->cache_heuristic_cap / 1000),
        .stale_if_error = (int64_t)(z->stale_if_error / 1000),
        .stale_while_revalidate = (int64_t)(z->stale_while_revalidate / 1000),
    };
}

static bool
refreshes_stale(const struct cached_origin_head *h)
{
    return h->revalidating && h->stale != NULL && h->resp->status == 304;
}

const char *
cached_head_refusal(struct cache_obj *busy, const struct cached_origin_head *h)
{
    const char *why = refreshes_stale(h) ? NULL : cache_fill_refusal(h->req, h->resp);
    int64_t lifetime = (int64_t)(h->zone->hit_for_miss / 1000);
    if (why == NULL)
        return NULL;
    if (busy != NULL)
        cache_obj_fail(busy, CACHE_FAIL_NOT_STORED, NULL, 0);
    if (h->marked || lifetime <= 0 || cache_refusal_by_request(why))
        return why;
    if (busy != NULL)
        cache_store_mark(busy->key, busy->base_len, busy->hash, h->now, lifetime);
    else if (h->key != NULL)
        cache_store_mark(h->key, h->key_len, h->key_hash, h->now, lifetime);
    return why;
}

enum cached_head
cached_take_head(struct cache_obj *o, const struct cached_origin_head *h)
{
    struct cache_fill_params p;
    cached_fill_params(h->cfg, h->zone, h->request_time, h->now, &p);
    if (refreshes_stale(h)) {
        cache_fill_revalidated(o, h->stale, h->resp, &p);
        return CACHED_HEAD_REVALIDATED;
    }
    cache_fill_head(o, h->req, h->resp, &p, h->scratch);
    return CACHED_HEAD_STORED;
}

bool
cached_stale_for_5xx(const struct cached_visit *v, int status, time_t now)
{
    return v->stale != NULL && status >= 500 && status <= 504 && status != 501 &&
           cached_stale_allowed(v->stale, now);
}

const struct proxy_error *
cached_wait_error(const struct cache_obj *o)
{
    return o->fail == CACHE_FAIL_ERROR && o->fail_info_len == sizeof(struct proxy_error)
               ? o->fail_info
               : NULL;
}

enum cached_wake
cached_wait_next(struct cached_visit *v, struct worker *w, const struct http_msg *req,
                 uint64_t lock_timeout, time_t now)
{
    struct cache_obj *o = v->busy;
    if (lock_timeout > 0 && cache_obj_subscribe(o, &v->waiter, CACHE_OBJ_PENDING, 0))
        return CACHED_WAKE_WAIT;
    v->waiting = false;
    enum cache_obj_state st = cache_obj_state(o);
    bool stale_ok = v->stale != NULL && cached_stale_allowed(v->stale, now);
    if (st == CACHE_OBJ_FILLING || st == CACHE_OBJ_COMPLETE)
        return cached_fill_answers(o, w, req) ? CACHED_WAKE_READ : CACHED_WAKE_FETCH;
    if (st == CACHE_OBJ_PENDING || (o->fail == CACHE_FAIL_5XX && !stale_ok))
        return CACHED_WAKE_FETCH; /* the lock timeout is 0, or the 5xx is not covered */
    if (o->fail == CACHE_FAIL_5XX || (stale_ok && cached_wait_error(o) != NULL))
        return CACHED_WAKE_STALE;
    return cached_wait_error(o) != NULL ? CACHED_WAKE_ERROR : CACHED_WAKE_FETCH;
}

/* ---------------------------------------------------------------- passed responses */

void
cached_pass_fields(const struct cached_visit *v, const char *edge_name, int status,
                   struct buf *head)
{
    if (v->result == METRICS_CACHE_NONE)
        return;
    buf_append_str(head, "Cache-Status: ");
    buf_append_str(head, edge_name);
    buf_append_str(head, !v->eligible ? "; fwd=bypass; fwd-status="
                         : v->stale   ? "; fwd=stale; fwd-status="
                                      : "; fwd=uri-miss; fwd-status=");
    buf_append_u64(head, (uint64_t)status);
    if (v->hit_for_miss)
        buf_append_str(head, "; detail=hit-for-miss");
    buf_append_str(head, "\r\nX-Cache: ");
    buf_append_str(head, metrics_cache_results[v->result]);
    buf_append(head, "\r\n", 2);
}
