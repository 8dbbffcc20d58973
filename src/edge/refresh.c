/* refresh.c - fetches owned by the cache: the object they fill is their only output. */
#include "edge/refresh.h"

#include "cache/fill.h"
#include "core/log.h"
#include "edge/cached.h"

struct refresh {
    struct refresh *next, *prev; /* the worker's running list */
    struct worker *w;
    struct config *cfg;
    const struct config_zone *zone;
    struct http_msg visitor;
    char *host;
    struct upstream *up;
    struct cache_obj *busy, *fill, *stale;
    bool revalidating, revalidated;
    time_t request_time;
};

static void
done(struct refresh *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->w->refreshes = r->next;
    if (r->next)
        r->next->prev = r->prev;
    upstream_abort(&r->up);
    if (r->fill != NULL)
        cache_obj_fail(r->fill, CACHE_FAIL_INCOMPLETE, NULL, 0); /* no-op once finished */
    if (r->busy != NULL)
        cache_obj_fail(r->busy, CACHE_FAIL_NOT_STORED, NULL, 0);
    cache_obj_release(&r->busy);
    cache_obj_release(&r->fill);
    cache_obj_release(&r->stale);
    http_msg_free(&r->visitor);
    config_release(&r->cfg);
    free(r->host);
    struct worker *w = r->w;
    free(r);
    worker_fetch_ended(w);
}

static void
on_head(void *owner, const struct http_msg *resp)
{
    struct refresh *r = owner;
    struct cached_origin_head h = {
        .cfg = r->cfg,
        .zone = r->zone,
        .req = &r->visitor,
        .resp = resp,
        .stale = r->stale,
        .revalidating = r->revalidating,
        .request_time = r->request_time,
        .now = (time_t)loop_wall(r->w->loop),
        .scratch = &r->w->cache_scratch,
    }; /* the key of a marker is busy's */
    const char *why = r->busy ? cached_head_refusal(r->busy, &h) : "no entry to fill";
    if (why == NULL) {
        r->revalidated = cached_take_head(r->busy, &h) == CACHED_HEAD_REVALIDATED;
        r->fill = cache_obj_acquire(r->busy);
        return;
    }
    log_debug("zone \"%s\": a fetch of the cache's own got %d, not to store (%s)",
              r->zone->name, resp->status, why);
    done(r); /* the body is not wanted: waiters fetch on their own */
}

static void
on_body(void *owner, const char *data, size_t len)
{
    struct refresh *r = owner;
    if (r->fill != NULL && !cache_obj_append(r->fill, data, len))
        done(r); /* past cache.max_object, or no memory: cut for those reading it */
}

static void
on_complete(void *owner)
{
    struct refresh *r = owner;
    r->up = NULL;
    if (r->fill != NULL)
        cache_obj_finish(r->fill);
    done(r);
}

static void
on_error(void *owner, const struct proxy_error *e)
{
    struct refresh *r = owner;
    r->up = NULL;
    log_warn("zone \"%s\": the cache's fetch from origin %s failed: %s (%s)%s", r->zone->name,
             e->addr[0] ? e->addr : "-", e->detail, proxy_error_name(e->type),
             r->stale ? "; the stale copy stays" : "");
    if (r->busy != NULL && r->fill == NULL)
        cache_obj_fail(r->busy, CACHE_FAIL_ERROR, e, sizeof(*e));
    done(r);
}

static void
on_drained(void *owner)
{
}

static const struct upstream_ops refresh_ops = {on_head, on_body, on_complete, on_error,
                                                on_drained};

static struct refresh *
refresh_new(struct worker *w, const struct refresh_request *req)
{
    struct refresh *r = xcalloc(1, sizeof(*r));
    r->w = w;
    r->cfg = config_acquire(req->cfg);
    r->zone = req->zone;
    r->host = req->host ? xstrdup(req->host) : NULL;
    http_msg_copy(&r->visitor, req->visitor);
    r->busy = req->busy ? cache_obj_acquire(req->busy) : NULL;
    r->fill = req->fill ? cache_obj_acquire(req->fill) : NULL;
    r->stale = req->stale ? cache_obj_acquire(req->stale) : NULL;
    r->revalidating = req->revalidating;
    r->revalidated = req->revalidated;
    r->request_time = req->request_time;
    r->next = w->refreshes;
    if (r->next != NULL)
        ((struct refresh *)r->next)->prev = r;
    w->refreshes = r;
    return r;
}

void
refresh_start(struct worker *w, const struct refresh_request *req, struct buf *origin_head)
{
    struct refresh *r = refresh_new(w, req);
    struct upstream_request ur = {
        .probe_origin = -1,
        .cfg = r->cfg,
        .zone = r->zone,
        .stats = w->zone_stats[r->zone->zone_index],
        .idempotent = true,
        .host = r->host,
    };
    r->up = upstream_start(w, &ur, origin_head, &refresh_ops, r);
}

void
refresh_adopt(struct worker *w, struct upstream **up, const struct refresh_request *req)
{
    struct refresh *r = refresh_new(w, req);
    r->up = *up;
    *up = NULL;
    upstream_set_owner(r->up, &refresh_ops, r, r->host);
    upstream_resume(r->up); /* nobody applies back-pressure now */
}

void
refresh_abort_all(struct worker *w)
{
    while (w->refreshes != NULL)
        done(w->refreshes);
}
