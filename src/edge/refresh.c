/* refresh.c - a background fetch whose owner is the cache: no visitor waits on it. */
#include "edge/refresh.h"

#include "cache/fill.h"
#include "core/log.h"
#include "edge/upstream.h"

#include <pthread.h>

struct refresh {
    struct refresh *next; /* in the running list */
    struct worker *w;
    struct config *cfg;
    const struct config_zone *zone;
    struct http_msg visitor;
    char *base, *host;
    struct upstream *up;
    struct cache_fill *fill;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct refresh *running;

/* Claim base for a refresh; false if another one holds it. */
static bool
claim(struct refresh *r)
{
    bool free_slot = true;
    pthread_mutex_lock(&lock);
    for (struct refresh *x = running; x != NULL && free_slot; x = x->next)
        free_slot = strcmp(x->base, r->base) != 0;
    if (free_slot) {
        r->next = running;
        running = r;
    }
    pthread_mutex_unlock(&lock);
    return free_slot;
}

static void
done(struct refresh *r)
{
    pthread_mutex_lock(&lock);
    for (struct refresh **pp = &running; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&lock);
    cache_fill_abort(&r->fill);
    http_msg_free(&r->visitor);
    config_release(&r->cfg);
    free(r->base);
    free(r->host);
    free(r);
}

static void
on_head(void *owner, const struct http_msg *resp)
{
    struct refresh *r = owner;
    char why[64];
    char *names = cache_vary_names(resp);
    struct buf key;
    buf_init(&key, SIZE_MAX);
    buf_printf(&key, "%s%c", r->base, CACHE_VARIANT_SEP);
    if (names != NULL)
        cache_variant(&r->visitor, names, &key);
    buf_append(&key, "", 1);
    time_t now = (time_t)loop_wall(r->w->loop);
    struct cache_fill_params p = {
        .key = buf_head(&key),
        .vary = names,
        .request_time = now,
        .response_time = now,
        .heuristic_cap = (int64_t)(r->cfg->cache_heuristic_cap / 1000),
        .stale_if_error = (int64_t)(r->zone->stale_if_error / 1000),
        .stale_while_revalidate = (int64_t)(r->zone->stale_while_revalidate / 1000),
    };
    r->fill = cache_fill_start(&r->visitor, resp, &p, why, sizeof(why));
    buf_free(&key);
    free(names);
}

static void
on_body(void *owner, const char *data, size_t len)
{
    struct refresh *r = owner;
    if (r->fill != NULL && !cache_fill_append(r->fill, data, len))
        cache_fill_abort(&r->fill);
}

static void
on_complete(void *owner)
{
    struct refresh *r = owner;
    cache_fill_commit(&r->fill);
    done(r);
}

static void
on_error(void *owner, const struct proxy_error *e)
{
    struct refresh *r = owner;
    log_warn("zone \"%s\": background refresh failed: %s (%s); the stale copy stays",
             r->zone->name, e->detail, proxy_error_name(e->type));
    done(r);
}

static void
on_drained(void *owner)
{
}

static const struct upstream_ops refresh_ops = {on_head, on_body, on_complete, on_error,
                                                on_drained};

bool
refresh_start(struct worker *w, const struct refresh_request *req)
{
    struct refresh *r = xcalloc(1, sizeof(*r));
    r->w = w;
    r->base = xstrdup(req->cache_base);
    if (!claim(r)) {
        free(r->base);
        free(r);
        return false;
    }
    r->cfg = config_acquire(req->cfg);
    r->zone = req->zone;
    r->host = req->host ? xstrdup(req->host) : NULL;
    http_msg_copy(&r->visitor, req->visitor);
    struct upstream_request ur = {
        .probe_origin = -1,
        .cfg = r->cfg,
        .zone = r->zone,
        .stats = w->zone_stats[r->zone->zone_index],
        .idempotent = true,
        .host = r->host,
    };
    r->up = upstream_start(w, &ur, req->origin_head, &refresh_ops, r);
    return true;
}
