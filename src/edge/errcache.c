/* errcache.c - a handful of rendered error responses per worker, replaced in turn. */
#include "edge/errcache.h"

#include "http/msg.h"

#define ERRCACHE_SLOTS 8

/* One rendered response and what it was rendered from. */
struct entry {
    bool used;
    int status;
    enum errpage_format format;
    bool details, is_get, has_err;
    int retry_after;
    const char *html_template; /* by address: see errcache_clear */
    char *message, *edge_name, *host, *origin_url; /* copies, NULL when absent */
    struct proxy_error err;
    const char *type;
    struct errpage_text head, body; /* head without its Connection field */
};

struct errcache {
    struct entry slots[ERRCACHE_SLOTS];
    size_t next; /* the slot a new page replaces */
    struct entry scratch; /* a page rendered without keeping it */
    struct buf head, body; /* the response handed out last */
};

struct errcache *
errcache_new(void)
{
    struct errcache *ec = xcalloc(1, sizeof(*ec));
    for (size_t i = 0; i < ERRCACHE_SLOTS; i++) {
        errpage_text_init(&ec->slots[i].head, ERRPAGE_TEXT);
        errpage_text_init(&ec->slots[i].body, ERRPAGE_TEXT);
    }
    errpage_text_init(&ec->scratch.head, ERRPAGE_TEXT);
    errpage_text_init(&ec->scratch.body, ERRPAGE_TEXT);
    buf_init(&ec->head, SIZE_MAX);
    buf_init(&ec->body, SIZE_MAX);
    return ec;
}

static void
entry_forget(struct entry *e)
{
    free(e->message);
    free(e->edge_name);
    free(e->host);
    free(e->origin_url);
    e->message = e->edge_name = e->host = e->origin_url = NULL;
    e->used = false;
}

void
errcache_clear(struct errcache *ec)
{
    for (size_t i = 0; i < ERRCACHE_SLOTS; i++)
        entry_forget(&ec->slots[i]);
    ec->next = 0;
}

void
errcache_free(struct errcache **ecp)
{
    struct errcache *ec = *ecp;
    if (ec == NULL)
        return;
    errcache_clear(ec);
    for (size_t i = 0; i < ERRCACHE_SLOTS; i++) {
        errpage_text_free(&ec->slots[i].head);
        errpage_text_free(&ec->slots[i].body);
    }
    entry_forget(&ec->scratch);
    errpage_text_free(&ec->scratch.head);
    errpage_text_free(&ec->scratch.body);
    buf_free(&ec->head);
    buf_free(&ec->body);
    free(ec);
    *ecp = NULL;
}

/* ---------------------------------------------------------------- the key */

static bool
same_str(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The fields of an origin failure that a page or its Proxy-Status shows. */
static bool
same_error(const struct proxy_error *a, const struct proxy_error *b)
{
    return a->type == b->type && a->phase == b->phase && a->elapsed_ms == b->elapsed_ms &&
           strcmp(a->addr, b->addr) == 0 && strcmp(a->detail, b->detail) == 0 &&
           strcmp(a->origin, b->origin) == 0;
}

static bool
matches(const struct entry *e, const struct errpage *p, enum errpage_format f)
{
    if (!e->used || e->status != p->status || e->format != f || e->details != p->details ||
        e->is_get != p->is_get || e->retry_after != p->retry_after ||
        e->html_template != p->html_template || e->has_err != (p->err != NULL))
        return false;
    if (p->err != NULL && !same_error(&e->err, p->err))
        return false;
    return same_str(e->message, p->message) && same_str(e->edge_name, p->edge_name) &&
           same_str(e->host, p->host) && same_str(e->origin_url, p->origin_url);
}

static char *
copy(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static void
remember(struct entry *e, const struct errpage *p, enum errpage_format f)
{
    entry_forget(e);
    e->used = true;
    e->status = p->status;
    e->format = f;
    e->details = p->details;
    e->is_get = p->is_get;
    e->retry_after = p->retry_after;
    e->html_template = p->html_template;
    e->has_err = p->err != NULL;
    if (p->err != NULL)
        e->err = *p->err;
    e->message = copy(p->message);
    e->edge_name = copy(p->edge_name);
    e->host = copy(p->host);
    e->origin_url = copy(p->origin_url);
}

/* ---------------------------------------------------------------- rendering */

/* The head up to its Connection field, with holes for the length and the request id. */
static void
render_head(struct entry *e, const struct errpage *p)
{
    struct errpage_text *t = &e->head;
    struct buf *h = &t->text;
    errpage_text_reset(t, ERRPAGE_TEXT);
    buf_printf(h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: ", p->status,
               http_status_reason(p->status), e->type);
    errpage_text_hole(t, ERRPAGE_HOLE_LENGTH);
    buf_append_str(h, "\r\nCache-Control: no-store\r\nX-Request-Id: ");
    errpage_text_hole(t, ERRPAGE_HOLE_REQUEST_ID);
    buf_append_str(h, "\r\n");
    if (p->err != NULL) {
        char ps[512];
        proxy_error_header(p->err, p->edge_name, p->details, ps, sizeof(ps));
        buf_printf(h, "Proxy-Status: %s\r\n", ps);
    }
    if (p->retry_after > 0)
        buf_printf(h, "Retry-After: %d\r\n", p->retry_after);
}

static void
render(struct entry *e, const struct errpage *p, enum errpage_format f)
{
    e->type = errpage_render_text(p, f, &e->body);
    render_head(e, p);
}

static struct entry *
find_or_render(struct errcache *ec, const struct errpage *p, enum errpage_format f, bool keep)
{
    for (size_t i = 0; i < ERRCACHE_SLOTS; i++)
        if (matches(&ec->slots[i], p, f))
            return &ec->slots[i];
    struct entry *e = &ec->scratch;
    if (keep) {
        e = &ec->slots[ec->next];
        ec->next = (ec->next + 1) % ERRCACHE_SLOTS;
        remember(e, p, f);
    }
    render(e, p, f);
    return e;
}

void
errcache_respond(struct errcache *ec, const struct errpage *p, const char *accept,
                 size_t accept_len, bool close, bool keep, struct errcache_response *out)
{
    struct entry *e = find_or_render(ec, p, errpage_negotiate(accept, accept_len), keep);
    buf_reset(&ec->head);
    buf_reset(&ec->body);
    errpage_text_fill(&e->body, p->request_id, p->now, 0, &ec->body);
    errpage_text_fill(&e->head, p->request_id, p->now, buf_used(&ec->body), &ec->head);
    buf_append_str(&ec->head, close ? "Connection: close\r\n\r\n" : "\r\n");
    out->head = buf_head(&ec->head);
    out->head_len = buf_used(&ec->head);
    out->body = buf_head(&ec->body);
    out->body_len = buf_used(&ec->body);
    out->type = e->type;
}
