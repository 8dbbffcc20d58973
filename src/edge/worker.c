/* worker.c - a worker thread: accepts visitors on its own SO_REUSEPORT listeners, runs their
 * connections on its event loop, takes new configurations and drain orders from the main
 * thread through a locked hand-over and an eventfd wake-up. */
#include "edge/worker.h"

#include "core/log.h"
#include "dns/resolver.h"
#include "edge/client.h"
#include "edge/errcache.h"
#include "edge/prober.h"
#include "edge/refresh.h"
#include "edge/upstream.h"

#include <sys/random.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 1000 /* after EMFILE: let connections close before accepting again */

static void on_drain_deadline(struct loop_timer *t);

static void
bind_zone_stats(struct worker *w)
{
    free(w->zone_stats);
    w->zone_stats = xcalloc(w->cfg->nzones ? w->cfg->nzones : 1, sizeof(*w->zone_stats));
    for (size_t i = 0; i < w->cfg->nzones; i++)
        w->zone_stats[i] = metrics_zone_stats(w->cfg->zones[i].name, w->id);
}

static void
listeners_set(struct worker *w, uint32_t events)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].io.fd >= 0)
            loop_io_set(w->loop, &w->listeners[i].io, events);
}

static void
on_accept_pause_end(struct loop_timer *t)
{
    struct worker *w = container_of(t, struct worker, accept_timer);
    if (!w->draining)
        listeners_set(w, EPOLLIN);
}

static void
on_accept(struct loop_io *io, uint32_t events)
{
    struct worker_listener *l = container_of(io, struct worker_listener, io);
    struct worker *w = l->worker;
    for (int i = 0; i < ACCEPT_BATCH && !w->draining; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            client_accept(w, fd, &peer, len);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            log_error("accept() on %s failed: %s; pausing new connections for %d ms "
                      "(raise the open-files limit: ulimit -n)",
                      l->addr->text, strerror(errno), ACCEPT_PAUSE_MS);
            listeners_set(w, 0);
            loop_timer_set(w->loop, &w->accept_timer, ACCEPT_PAUSE_MS);
        } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
            log_error("accept() on %s failed: %s", l->addr->text, strerror(errno));
        }
        return;
    }
}

/* Objects the store let go of are let go here too within a second (store.h cache_near). */
static void
on_near_sweep(struct loop_timer *t)
{
    struct worker *w = container_of(t, struct worker, near_timer);
    cache_near_sweep(&w->cache_near);
    loop_timer_set(w->loop, t, 1000);
}

struct worker *
worker_new(int id, struct config *cfg, const int *fds, size_t nfds)
{
    struct worker *w = xcalloc(1, sizeof(*w));
    w->id = id;
    w->loop = loop_new();
    w->cfg = config_acquire(cfg);
    pthread_mutex_init(&w->lock, NULL);
    loop_timer_init(&w->accept_timer, on_accept_pause_end);
    loop_timer_init(&w->drain_timer, on_drain_deadline);
    loop_timer_init(&w->near_timer, on_near_sweep);
    cache_notifier_init(&w->notifier, w->loop);
    buf_init(&w->cache_key, 1 << 20);
    buf_init(&w->cache_scratch, 1 << 20);
    buf_init(&w->log_line, 64 * 1024);
    w->stats = metrics_worker_stats(id);
    w->unknown_zone_stats = metrics_zone_stats("-", id);
    bind_zone_stats(w);
    upstream_config_bind(w);
    w->errcache = errcache_new();
    w->origin_failures = log_repeats_new(w->loop, CONFIG_LOG_ERROR, 1000);
    char err[256];
    w->resolver = dns_resolver_new(w->loop, &cfg->resolver, err, sizeof(err));
    if (w->resolver == NULL)
        log_error("worker %d: %s; origin names will not resolve", id, err);
    if (getrandom(w->rng, sizeof(w->rng), 0) != sizeof(w->rng)) {
        w->rng[0] = (uint64_t)loop_clock_ms() ^ ((uint64_t)getpid() << 32);
        w->rng[1] = (uint64_t)(uintptr_t)w ^ 0x9e3779b97f4a7c15ull;
    }
    w->rng[0] |= 1;
    w->listeners = xcalloc(nfds ? nfds : 1, sizeof(*w->listeners));
    w->nlisteners = nfds;
    for (size_t i = 0; i < nfds; i++) {
        struct worker_listener *l = &w->listeners[i];
        l->worker = w;
        l->addr = &cfg->listens[i];
        l->io.fd = -1;
        if (loop_io_start(w->loop, &l->io, fds[i], EPOLLIN, on_accept) < 0)
            close(fds[i]);
    }
    return w;
}

/* ---------------------------------------------------------------- drain */

/* Drained when no visitor and none of the cache's own fetches (fills other workers' visitors
 * may be reading) is left; the shutdown deadline bounds both. */
static void
maybe_stop(struct worker *w)
{
    if (w->draining && w->nvisitors == 0 && w->refreshes == NULL)
        loop_stop(w->loop);
}

static void
on_drain_deadline(struct loop_timer *t)
{
    struct worker *w = container_of(t, struct worker, drain_timer);
    log_warn("worker %d: shutdown timeout; closing %zu connections still open", w->id,
             w->nvisitors);
    client_close_all(w);
    refresh_abort_all(w); /* their fills fail: readers elsewhere see them cut */
    maybe_stop(w);
}

static void
start_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    prober_free(&w->prober);
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct worker_listener *l = &w->listeners[i];
        if (l->io.registered) {
            loop_io_stop(w->loop, &l->io);
            close(l->io.fd);
            l->io.fd = -1;
        }
    }
    upstream_pool_close_all(w);
    client_drain_all(w);
    loop_timer_stop(w->loop, &w->accept_timer);
    loop_timer_set(w->loop, &w->drain_timer, w->cfg->shutdown_timeout);
    maybe_stop(w);
}

void
worker_client_closed(struct worker *w)
{
    maybe_stop(w);
}

void
worker_fetch_ended(struct worker *w)
{
    maybe_stop(w);
}

/* ---------------------------------------------------------------- hand-over from main */

static void
on_wake(struct loop *loop, void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->lock);
    struct config *cfg = w->pending_cfg;
    bool drain = w->drain_requested;
    w->pending_cfg = NULL;
    pthread_mutex_unlock(&w->lock);
    if (cfg != NULL) {
        if (w->cfg_users > 0) { /* requests in progress keep it: the reference moves */
            w->old_cfgs = xrealloc(w->old_cfgs, (w->nold_cfgs + 1) * sizeof(*w->old_cfgs));
            w->old_cfgs[w->nold_cfgs++] = (struct worker_old_cfg){w->cfg, w->cfg_users};
        } else {
            config_release(&w->cfg);
        }
        w->cfg = cfg; /* the reference taken in worker_set_config */
        w->host_memo = (struct host_memo){0}; /* its zones are the old configuration's */
        w->cfg_users = 0;
        bind_zone_stats(w);
        upstream_config_bind(w);
        errcache_clear(w->errcache);
        upstream_pool_close_all(w); /* origins may have changed: no stale connections */
        char err[256];
        if (w->resolver != NULL &&
            dns_resolver_configure(w->resolver, &cfg->resolver, err, sizeof(err)) < 0)
            log_error("worker %d: %s; keeping the previous resolver servers", w->id, err);
        if (w->id == 1) {
            prober_free(&w->prober);
            w->prober = prober_new(w);
        }
    }
    if (drain)
        start_drain(w);
    cache_notifier_run(&w->notifier);
}

struct config *
worker_config_take(struct worker *w)
{
    w->cfg_users++;
    return w->cfg;
}

void
worker_config_put(struct worker *w, struct config **cfgp)
{
    struct config *cfg = *cfgp;
    *cfgp = NULL;
    if (cfg == NULL)
        return;
    if (cfg == w->cfg) {
        w->cfg_users--;
        return;
    }
    for (size_t i = 0; i < w->nold_cfgs; i++) {
        if (w->old_cfgs[i].cfg != cfg)
            continue;
        if (--w->old_cfgs[i].users == 0) {
            config_release(&w->old_cfgs[i].cfg);
            w->old_cfgs[i] = w->old_cfgs[--w->nold_cfgs];
        }
        return;
    }
}

void
worker_set_config(struct worker *w, struct config *cfg)
{
    struct config *old;
    pthread_mutex_lock(&w->lock);
    old = w->pending_cfg;
    w->pending_cfg = config_acquire(cfg);
    pthread_mutex_unlock(&w->lock);
    config_release(&old);
    loop_wake(w->loop);
}

void
worker_drain(struct worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->drain_requested = true;
    pthread_mutex_unlock(&w->lock);
    loop_wake(w->loop);
}

/* ---------------------------------------------------------------- thread */

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    log_set_thread_id(w->id);
    if (w->id == 1)
        w->prober = prober_new(w);
    loop_timer_set(w->loop, &w->near_timer, 1000);
    loop_run(w->loop);
    loop_timer_stop(w->loop, &w->near_timer);
    cache_near_clear(&w->cache_near);
    prober_free(&w->prober);
    refresh_abort_all(w);
    upstream_pool_close_all(w);
    return NULL;
}

int
worker_start(struct worker *w)
{
    loop_set_wake_cb(w->loop, on_wake, w);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    return rc == 0 ? 0 : -rc;
}

void
worker_join_and_free(struct worker *w)
{
    pthread_join(w->thread, NULL);
    worker_free(w);
}

void
worker_free(struct worker *w)
{
    prober_free(&w->prober);
    refresh_abort_all(w);
    upstream_pool_close_all(w);
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].io.fd >= 0) {
            loop_io_stop(w->loop, &w->listeners[i].io);
            close(w->listeners[i].io.fd);
        }
    }
    dns_resolver_free(&w->resolver);
    log_repeats_free(&w->origin_failures); /* writes the counts still pending */
    loop_free(&w->loop); /* runs deferred frees */
    client_worker_free(w);
    upstream_worker_free(w);
    errcache_free(&w->errcache);
    config_release(&w->pending_cfg);
    config_release(&w->cfg);
    for (size_t i = 0; i < w->nold_cfgs; i++)
        config_release(&w->old_cfgs[i].cfg);
    free(w->old_cfgs);
    pthread_mutex_destroy(&w->lock);
    cache_notifier_destroy(&w->notifier);
    buf_free(&w->cache_key);
    buf_free(&w->cache_scratch);
    buf_free(&w->log_line);
    free(w->listeners);
    free(w->zone_stats);
    free(w);
}

/* xorshift128+: fast, and good enough for ids that only need to be unique. The hex is
 * u64_hex, not snprintf("%016llx"): two of those cost more than the rest of a cache hit's
 * bookkeeping. */
void
worker_request_id(struct worker *w, char out[33])
{
    for (int half = 0; half < 2; half++) {
        uint64_t x = w->rng[0], y = w->rng[1];
        w->rng[0] = y;
        x ^= x << 23;
        w->rng[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        u64_hex(w->rng[1] + y, out + half * 16);
    }
    out[32] = '\0';
}
