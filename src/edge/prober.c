/* prober.c - one timer per (zone, origin) with health.active; each tick fetches the probe
 * path from that origin only, through the normal fetch path (DNS, policy, pool). */
#include "edge/prober.h"

#include "core/log.h"
#include "edge/health.h"
#include "edge/upstream.h"

struct probe {
    struct prober *prober;
    const struct config_zone *zone;
    int origin;
    struct origin_health *health;
    struct loop_timer tick, deadline;
    struct upstream *up;
    int status;
};

struct prober {
    struct worker *w;
    struct config *cfg; /* the configuration the probes belong to (one reference) */
    struct probe *probes;
    size_t nprobes;
};

static void
report(struct probe *p, bool ok, const struct proxy_error *e)
{
    struct loop *loop = p->prober->w->loop;
    loop_timer_stop(loop, &p->deadline);
    health_probe_result(p->health, p->zone, ok, e, loop_now(loop), loop_wall(loop));
    loop_timer_set(loop, &p->tick, p->zone->active_interval);
}

static void
on_probe_head(void *owner, const struct http_msg *resp)
{
    ((struct probe *)owner)->status = resp->status;
}

static void
on_probe_body(void *owner, const char *data, size_t len)
{
}

static void
on_probe_complete(void *owner)
{
    struct probe *p = owner;
    struct proxy_error e = {0};
    p->up = NULL;
    if (p->status >= 200 && p->status < 400) {
        report(p, true, NULL);
        return;
    }
    proxy_error_set(&e, PROXY_ERR_HTTP_PROTOCOL_ERROR, PROXY_PHASE_HEADER, 0, "", 0,
                    "health probe %s answered %d", p->zone->active_path, p->status);
    report(p, false, &e);
}

static void
on_probe_error(void *owner, const struct proxy_error *e)
{
    struct probe *p = owner;
    p->up = NULL;
    report(p, false, e);
}

static void
on_probe_drained(void *owner)
{
}

static const struct upstream_ops probe_ops = {on_probe_head, on_probe_body, on_probe_complete,
                                              on_probe_error, on_probe_drained};

static void
on_deadline(struct loop_timer *t)
{
    struct probe *p = container_of(t, struct probe, deadline);
    struct proxy_error e;
    upstream_abort(&p->up);
    proxy_error_set(&e, PROXY_ERR_HTTP_RESPONSE_TIMEOUT, PROXY_PHASE_HEADER, 0, "",
                    p->zone->active_timeout, "health probe %s got no answer within %llu ms",
                    p->zone->active_path, (unsigned long long)p->zone->active_timeout);
    report(p, false, &e);
}

static void
on_tick(struct loop_timer *t)
{
    struct probe *p = container_of(t, struct probe, tick);
    struct worker *w = p->prober->w;
    struct upstream_request req = {
        .cfg = p->prober->cfg,
        .zone = p->zone,
        .stats = w->zone_stats[p->zone->zone_index],
        .idempotent = true,
        .probe_origin = p->origin,
    };
    struct buf head;
    buf_init(&head, SIZE_MAX);
    buf_printf(&head, "GET %s HTTP/1.1\r\nUser-Agent: verge-health-probe\r\nAccept: */*\r\n\r\n",
               p->zone->active_path);
    p->status = 0;
    p->up = upstream_start(w, &req, &head, &probe_ops, p);
    buf_free(&head);
    loop_timer_set(w->loop, &p->deadline, p->zone->active_timeout);
}

struct prober *
prober_new(struct worker *w)
{
    struct config *cfg = w->cfg;
    size_t n = 0;
    for (size_t i = 0; i < cfg->nzones; i++)
        n += cfg->zones[i].active_path ? cfg->zones[i].norigins : 0;
    if (n == 0)
        return NULL;
    struct prober *pr = xcalloc(1, sizeof(*pr));
    pr->w = w;
    pr->cfg = config_acquire(cfg);
    pr->probes = xcalloc(n, sizeof(*pr->probes));
    for (size_t i = 0; i < cfg->nzones; i++) {
        const struct config_zone *z = &cfg->zones[i];
        for (size_t j = 0; z->active_path && j < z->norigins; j++) {
            struct probe *p = &pr->probes[pr->nprobes++];
            p->prober = pr;
            p->zone = z;
            p->origin = (int)j;
            p->health = health_get(z, &z->origins[j]);
            loop_timer_init(&p->tick, on_tick);
            loop_timer_init(&p->deadline, on_deadline);
            loop_timer_set(w->loop, &p->tick, 0); /* first probe at once */
        }
    }
    log_info("active health probes: %zu origins", n);
    return pr;
}

void
prober_free(struct prober **prp)
{
    struct prober *pr = *prp;
    if (pr == NULL)
        return;
    *prp = NULL;
    for (size_t i = 0; i < pr->nprobes; i++) {
        struct probe *p = &pr->probes[i];
        upstream_abort(&p->up);
        loop_timer_stop(pr->w->loop, &p->tick);
        loop_timer_stop(pr->w->loop, &p->deadline);
    }
    config_release(&pr->cfg);
    free(pr->probes);
    free(pr);
}
