/* admin.c - the admin listener: one short request per connection, answered and closed. */
#include "admin/admin.h"

#include "core/buf.h"
#include "core/net.h"
#include "cache/store.h"
#include "diag/check.h"
#include "diag/job.h"
#include "edge/health.h"
#include "edge/metrics.h"
#include "edge/story.h"
#include "http/parser.h"

#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADMIN_MAX_HEAD 8192
#define ADMIN_TIMEOUT_MS 5000
#define ADMIN_CHECK_TIMEOUT_MS 120000 /* a /check of a zone with several origins */
#define ADMIN_MAX_CHECKS 2            /* at once: each is a thread with its probes */
#define ADMIN_CHECK_PROBE_MS 3000     /* default per-probe bound of /check */

struct admin_conn {
    struct admin *admin;
    struct admin_conn *next, *prev;
    struct loop_io io;
    struct loop_timer timer;
    struct loop_defer free_defer;
    struct http_parser parser;
    struct buf out;
    bool answered;
    struct diag_job *job; /* a /check running for this connection */
};

struct admin {
    struct loop *loop;
    struct loop_io io;
    struct admin_conn *conns;
    char *token;
    struct config *cfg; /* for /check; one reference */
    int checks;         /* /check jobs running */
};

/* One /check: filled on the main thread, run on the job's thread, answered back here. */
struct admin_check {
    struct admin *admin;
    struct admin_conn *conn;
    struct config *cfg;
    const struct config_zone *zone;
    char path[1024];
    struct check_opts opts;
    struct buf report;
};

void
admin_set_config(struct admin *a, struct config *cfg)
{
    config_release(&a->cfg);
    a->cfg = config_acquire(cfg);
}

void
admin_set_token(struct admin *a, const char *token)
{
    free(a->token);
    a->token = token ? xstrdup(token) : NULL;
}

/* Constant-time comparison of the presented bearer token. */
static bool
token_ok(const struct admin *a, const struct http_msg *m)
{
    const struct http_header *h = http_msg_field(m, HTTP_FIELD_AUTHORIZATION);
    static const char bearer[] = "Bearer ";
    if (a->token == NULL || h == NULL || h->value.len < sizeof(bearer) - 1)
        return false;
    const char *v = http_str_ptr(m, h->value);
    if (strncasecmp(v, bearer, sizeof(bearer) - 1) != 0)
        return false;
    v += sizeof(bearer) - 1;
    size_t len = h->value.len - (sizeof(bearer) - 1), tlen = strlen(a->token);
    unsigned diff = len != tlen;
    for (size_t i = 0; i < len && i < tlen; i++)
        diff |= (unsigned char)v[i] ^ (unsigned char)a->token[i];
    return diff == 0;
}

static void respond(struct admin_conn *c, int status, const char *type, const struct buf *body);

/* The value of one query parameter, percent-decoded, into out; false if absent. */
static bool
query_param(const char *q, size_t qlen, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), i = 0;
    while (i < qlen) {
        size_t end = i;
        while (end < qlen && q[end] != '&')
            end++;
        if (end - i > nlen && q[i + nlen] == '=' && strncmp(q + i, name, nlen) == 0) {
            size_t o = 0;
            for (size_t k = i + nlen + 1; k < end && o + 1 < outlen; k++) {
                unsigned hex;
                if (q[k] == '%' && k + 2 < end && sscanf(q + k + 1, "%2x", &hex) == 1) {
                    out[o++] = (char)hex;
                    k += 2;
                } else {
                    out[o++] = q[k] == '+' ? ' ' : q[k];
                }
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* The admin token, or the answer to a request without it (true: answered). */
static bool
refuse_without_token(struct admin_conn *c, const struct http_msg *m, struct buf *body,
                     const char *what)
{
    if (c->admin->token != NULL && token_ok(c->admin, m))
        return false;
    if (c->admin->token == NULL)
        buf_printf(body, "%s is closed: set admin.token_file\n", what);
    else
        buf_append_str(body, "send the admin token: Authorization: Bearer <token>\n");
    respond(c, c->admin->token ? 401 : 403, "text/plain", body);
    return true;
}

/* POST /purge?zone=Z[&host=H][&path=P | &prefix=P | &tag=T][&mode=soft]: answers when the
 * purge has taken effect. */
static void
serve_purge(struct admin_conn *c, const struct http_msg *m, const char *q, size_t qlen,
            struct buf *body)
{
    char zone[128], host[256], path[1024], prefix[1024], tag[256], mode[16];
    struct cache_purge p = {.zone = zone};
    if (refuse_without_token(c, m, body, "purge"))
        return;
    if (m->method != HTTP_POST || !query_param(q, qlen, "zone", zone, sizeof(zone))) {
        buf_append_str(body, "use POST /purge?zone=NAME[&host=H][&path=/p | &prefix=/p | "
                             "&tag=T][&mode=soft]\n");
        respond(c, 400, "text/plain", body);
        return;
    }
    p.host = query_param(q, qlen, "host", host, sizeof(host)) ? host : NULL;
    p.path = query_param(q, qlen, "path", path, sizeof(path)) ? path : NULL;
    p.prefix = query_param(q, qlen, "prefix", prefix, sizeof(prefix)) ? prefix : NULL;
    p.tag = query_param(q, qlen, "tag", tag, sizeof(tag)) ? tag : NULL;
    p.soft = query_param(q, qlen, "mode", mode, sizeof(mode)) && strcmp(mode, "soft") == 0;
    size_t n = cache_store_purge(&p);
    buf_printf(body, "{\"purged\":%zu,\"mode\":\"%s\"}\n", n, p.soft ? "soft" : "hard");
    respond(c, 200, "application/json", body);
}

static void
run_check(void *arg)
{
    struct admin_check *k = arg;
    check_run(k->cfg, k->zone, -1, &k->opts, &k->report);
}

static void
check_free(void *arg)
{
    struct admin_check *k = arg;
    config_release(&k->cfg);
    buf_free(&k->report);
    free(k);
}

static void
check_done(void *arg)
{
    struct admin_check *k = arg;
    k->admin->checks--;
    k->conn->job = NULL;
    respond(k->conn, 200, "application/json", &k->report);
    check_free(k);
}

/* GET /check?zone=Z[&path=/p][&timeout=3s][&trace=0]: verge check --zone Z --json, run on
 * a thread; the answer comes when it is done. */
static void
serve_check(struct admin_conn *c, const struct http_msg *m, const char *q, size_t qlen,
            struct buf *body)
{
    struct admin *a = c->admin;
    char zone[128], timeout[32], trace[8];
    if (refuse_without_token(c, m, body, "/check"))
        return;
    const struct config_zone *z = NULL;
    bool named = query_param(q, qlen, "zone", zone, sizeof(zone));
    for (size_t i = 0; named && a->cfg != NULL && i < a->cfg->nzones && z == NULL; i++)
        if (strcmp(a->cfg->zones[i].name, zone) == 0)
            z = &a->cfg->zones[i];
    if (z == NULL) {
        buf_printf(body, "%s; use GET /check?zone=NAME[&path=/p][&timeout=3s][&trace=0]\n",
                   named ? "no zone by that name" : "which zone?");
        respond(c, named ? 404 : 400, "text/plain", body);
        return;
    }
    if (a->checks >= ADMIN_MAX_CHECKS) {
        buf_printf(body, "%d checks are running; try again when they are done\n", a->checks);
        respond(c, 503, "text/plain", body);
        return;
    }
    struct admin_check *k = xcalloc(1, sizeof(*k));
    k->admin = a;
    k->conn = c;
    k->cfg = config_acquire(a->cfg);
    k->zone = z;
    buf_init(&k->report, SIZE_MAX);
    check_opts_default(&k->opts);
    k->opts.json = true;
    k->opts.timeout = ADMIN_CHECK_PROBE_MS;
    if (query_param(q, qlen, "timeout", timeout, sizeof(timeout)) &&
        (config_duration_parse(timeout, &k->opts.timeout) < 0 || k->opts.timeout == 0 ||
         k->opts.timeout > 10000))
        k->opts.timeout = ADMIN_CHECK_PROBE_MS;
    k->opts.trace = !(query_param(q, qlen, "trace", trace, sizeof(trace)) && trace[0] == '0');
    k->opts.path = query_param(q, qlen, "path", k->path, sizeof(k->path)) && k->path[0] == '/'
                       ? k->path
                       : z->active_path ? z->active_path : "/";
    int err;
    c->job = diag_job_start(a->loop, run_check, check_done, k, &err);
    if (c->job == NULL) {
        check_free(k);
        buf_printf(body, "cannot start the check: %s\n", strerror(err));
        respond(c, 503, "text/plain", body);
        return;
    }
    a->checks++;
    loop_io_set(a->loop, &c->io, 0); /* nothing more to read; the answer comes later */
    loop_timer_set(a->loop, &c->timer, ADMIN_CHECK_TIMEOUT_MS);
}

/* /requests/<id>: the story of one failed request, for the owner holding the token. */
static void
serve_story(struct admin_conn *c, const struct http_msg *m, const char *id, size_t idlen,
            struct buf *body)
{
    char rid[64];
    if (c->admin->token == NULL) {
        buf_append_str(body, "request stories are closed: set admin.token_file in the "
                             "configuration\n");
        respond(c, 403, "text/plain", body);
    } else if (!token_ok(c->admin, m)) {
        buf_append_str(body, "send the admin token: Authorization: Bearer <token>\n");
        respond(c, 401, "text/plain", body);
    } else if (idlen == 0 || idlen >= sizeof(rid) ||
               (snprintf(rid, sizeof(rid), "%.*s", (int)idlen, id), story_json(rid, body) < 0)) {
        buf_append_str(body, "no failed request with this id is kept (the last 1000 are)\n");
        respond(c, 404, "text/plain", body);
    } else {
        respond(c, 200, "application/json", body);
    }
}

static void
on_conn_free(struct loop_defer *d)
{
    struct admin_conn *c = container_of(d, struct admin_conn, free_defer);
    http_parser_free(&c->parser);
    buf_free(&c->out);
    free(c);
}

static void
conn_close(struct admin_conn *c)
{
    struct admin *a = c->admin;
    if (c->job != NULL) {
        a->checks--;
        diag_job_abandon(&c->job, check_free); /* the thread frees what it works on */
    }
    loop_timer_stop(a->loop, &c->timer);
    loop_io_close(a->loop, &c->io);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    loop_defer(a->loop, &c->free_defer);
}

static void
respond(struct admin_conn *c, int status, const char *type, const struct buf *body)
{
    buf_printf(&c->out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
               status, http_status_reason(status), type, buf_used(body));
    buf_append(&c->out, buf_head(body), buf_used(body));
    c->answered = true;
    loop_io_set(c->admin->loop, &c->io, EPOLLOUT);
}

/* Route the request: the only place that knows the admin URLs. */
static int
on_head(struct http_parser *p)
{
    struct admin_conn *c = p->owner;
    const struct http_msg *m = &p->msg;
    const char *url = http_str_ptr(m, m->url);
    size_t len = m->url.len;
    const char *q = memchr(url, '?', len);
    struct buf body;
    buf_init(&body, SIZE_MAX);
    if (q != NULL)
        len = (size_t)(q - url);
    if (len == 6 && memcmp(url, "/purge", 6) == 0) {
        serve_purge(c, m, q ? q + 1 : "", q ? m->url.len - len - 1 : 0, &body);
    } else if (m->method != HTTP_GET && m->method != HTTP_HEAD) {
        buf_append_str(&body, "only GET is supported here\n");
        respond(c, 405, "text/plain", &body);
    } else if (len == 8 && memcmp(url, "/healthz", 8) == 0) {
        buf_append_str(&body, "ok\n");
        respond(c, 200, "text/plain", &body);
    } else if (len == 8 && memcmp(url, "/metrics", 8) == 0) {
        metrics_render(&body);
        respond(c, 200, "text/plain; version=0.0.4", &body);
    } else if (len > 10 && memcmp(url, "/requests/", 10) == 0) {
        serve_story(c, m, url + 10, len - 10, &body);
    } else if (len == 6 && memcmp(url, "/check", 6) == 0) {
        serve_check(c, m, q ? q + 1 : "", q ? m->url.len - len - 1 : 0, &body);
    } else if (len == 10 && memcmp(url, "/incidents", 10) == 0) {
        health_incidents_json(&body);
        respond(c, 200, "application/json", &body);
    } else {
        buf_append_str(&body, "not found; try /healthz, /metrics, /incidents or "
                              "/check?zone=NAME\n");
        respond(c, 404, "text/plain", &body);
    }
    buf_free(&body);
    return 1;
}

static int
on_body(struct http_parser *p, const char *at, size_t len)
{
    return 0;
}

static void
on_complete(struct http_parser *p)
{
}

static const struct http_parser_ops admin_ops = {on_head, on_body, on_complete};

static void
on_readable(struct admin_conn *c)
{
    char data[4096];
    ssize_t n = read(c->io.fd, data, sizeof(data));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    size_t used;
    if (http_parser_feed(&c->parser, data, (size_t)n, &used) == HTTP_PARSE_ERROR &&
        !c->answered) {
        struct buf body;
        buf_init(&body, 64);
        buf_append_str(&body, "bad request\n");
        respond(c, 400, "text/plain", &body);
        buf_free(&body);
    }
}

static void
on_conn_io(struct loop_io *io, uint32_t events)
{
    struct admin_conn *c = container_of(io, struct admin_conn, io);
    if (!c->answered) {
        on_readable(c);
        return;
    }
    ssize_t n = write(c->io.fd, buf_head(&c->out), buf_used(&c->out));
    if (n > 0)
        buf_consume(&c->out, (size_t)n);
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || buf_used(&c->out) == 0)
        conn_close(c);
}

static void
on_conn_timeout(struct loop_timer *t)
{
    conn_close(container_of(t, struct admin_conn, timer));
}

static void
on_accept(struct loop_io *io, uint32_t events)
{
    struct admin *a = container_of(io, struct admin, io);
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct admin_conn *c = xcalloc(1, sizeof(*c));
    c->admin = a;
    http_parser_init(&c->parser, HTTP_REQUEST, ADMIN_MAX_HEAD, &admin_ops, c);
    buf_init(&c->out, SIZE_MAX);
    loop_timer_init(&c->timer, on_conn_timeout);
    loop_defer_init(&c->free_defer, on_conn_free);
    if (loop_io_start(a->loop, &c->io, fd, EPOLLIN, on_conn_io) < 0) {
        close(fd);
        on_conn_free(&c->free_defer);
        return;
    }
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    loop_timer_set(a->loop, &c->timer, ADMIN_TIMEOUT_MS);
}

struct admin *
admin_start(struct loop *loop, const struct config_addr *addr, char *err, size_t errlen)
{
    int fd = net_listen(addr, 64);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s for the admin endpoint: %s; pick a free "
                 "address with admin.listen (or admin: off)", addr->text, strerror(-fd));
        return NULL;
    }
    struct admin *a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    if (loop_io_start(loop, &a->io, fd, EPOLLIN, on_accept) < 0) {
        snprintf(err, errlen, "cannot watch the admin listener on %s", addr->text);
        close(fd);
        free(a);
        return NULL;
    }
    return a;
}

void
admin_stop(struct admin **ap)
{
    struct admin *a = *ap;
    if (a == NULL)
        return;
    *ap = NULL;
    while (a->conns != NULL)
        conn_close(a->conns);
    loop_io_stop(a->loop, &a->io);
    close(a->io.fd);
    free(a->token);
    config_release(&a->cfg);
    free(a);
}
