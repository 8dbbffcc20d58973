/* metrics.c - the registry of per-zone, per-worker counters and its Prometheus rendering. */
#include "edge/metrics.h"

#include "cache/store.h"

#include <pthread.h>

struct zone_entry {
    struct zone_entry *next;
    char *name;
    struct zone_stats *per_worker[METRICS_MAX_WORKERS];
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zone_entry *zones;
static struct worker_stats workers[METRICS_MAX_WORKERS];

static struct zone_entry *
find_or_add(const char *name)
{
    struct zone_entry **pp = &zones;
    for (; *pp != NULL; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return *pp;
    struct zone_entry *e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    *pp = e; /* appended: rendering order follows first use */
    return e;
}

struct zone_stats *
metrics_zone_stats(const char *name, int worker_id)
{
    pthread_mutex_lock(&registry_lock);
    struct zone_entry *e = find_or_add(name);
    if (e->per_worker[worker_id] == NULL)
        e->per_worker[worker_id] = xcalloc(1, sizeof(struct zone_stats));
    struct zone_stats *s = e->per_worker[worker_id];
    pthread_mutex_unlock(&registry_lock);
    return s;
}

struct worker_stats *
metrics_worker_stats(int worker_id)
{
    return &workers[worker_id];
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Sum one field over the workers of a zone; off is the field's byte offset. */
static uint64_t
sum(const struct zone_entry *e, size_t off)
{
    uint64_t total = 0;
    for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
        const struct zone_stats *s = e->per_worker[w];
        if (s != NULL)
            total += __atomic_load_n((const uint64_t *)((const char *)s + off), __ATOMIC_RELAXED);
    }
    return total;
}

static int
render_status(struct buf *out, const struct zone_entry *e)
{
    int rc = 0;
    for (int code = 100; code < 600; code++) {
        uint64_t n = sum(e, offsetof(struct zone_stats, status) + (size_t)code * sizeof(uint64_t));
        if (n)
            rc |= buf_printf(out, "verge_requests_total{zone=\"%s\",status=\"%d\"} %llu\n",
                             e->name, code, (unsigned long long)n);
    }
    return rc;
}

static int
render_errors(struct buf *out, const struct zone_entry *e)
{
    int rc = 0;
    for (int t = 1; t < PROXY_ERR_COUNT; t++) {
        uint64_t n =
            sum(e, offsetof(struct zone_stats, origin_errors) + (size_t)t * sizeof(uint64_t));
        if (n)
            rc |= buf_printf(out, "verge_origin_errors_total{zone=\"%s\",error=\"%s\"} %llu\n",
                             e->name, proxy_error_name((enum proxy_error_type)t),
                             (unsigned long long)n);
    }
    return rc;
}

static const struct {
    const char *metric, *help;
    size_t off;
} fields[] = {
    {"verge_origin_requests_total", "Requests sent to origins.",
     offsetof(struct zone_stats, origin_requests)},
    {"verge_origin_connections_total", "New connections opened to origins.",
     offsetof(struct zone_stats, origin_connections)},
    {"verge_bytes_sent_total", "Bytes sent to visitors.", offsetof(struct zone_stats, bytes_sent)},
    {"verge_bytes_received_total", "Bytes received from visitors.",
     offsetof(struct zone_stats, bytes_received)},
};

/* Families are rendered whole, one after another, as the text format requires. */
const char *const metrics_cache_results[METRICS_CACHE_RESULTS] = {
    [METRICS_CACHE_NONE] = "-",
    [METRICS_CACHE_HIT] = "HIT",
    [METRICS_CACHE_MISS] = "MISS",
    [METRICS_CACHE_EXPIRED] = "EXPIRED",
    [METRICS_CACHE_REVALIDATED] = "REVALIDATED",
    [METRICS_CACHE_STALE] = "STALE",
    [METRICS_CACHE_UPDATING] = "UPDATING",
    [METRICS_CACHE_BYPASS] = "BYPASS",
};

static int
render_cache(struct buf *out, const struct zone_entry *e)
{
    int rc = 0;
    for (int i = METRICS_CACHE_HIT; i < METRICS_CACHE_RESULTS; i++) {
        uint64_t n = sum(e, offsetof(struct zone_stats, cache) + (size_t)i * sizeof(uint64_t));
        if (n > 0)
            rc |= buf_printf(out, "verge_cache_requests_total{zone=\"%s\",result=\"%s\"} %llu\n",
                             e->name, metrics_cache_results[i], (unsigned long long)n);
    }
    return rc;
}

static int
render_zones(struct buf *out)
{
    int rc = buf_append_str(out, "# HELP verge_requests_total Responses sent to visitors, by "
                                 "zone and status.\n# TYPE verge_requests_total counter\n");
    for (const struct zone_entry *e = zones; e != NULL; e = e->next)
        rc |= render_status(out, e);
    rc |= buf_append_str(out, "# HELP verge_origin_errors_total Origin failures, by zone and "
                              "RFC 9209 error type.\n# TYPE verge_origin_errors_total counter\n");
    for (const struct zone_entry *e = zones; e != NULL; e = e->next)
        rc |= render_errors(out, e);
    rc |= buf_append_str(out, "# HELP verge_cache_requests_total Requests of caching zones, by "
                              "result (X-Cache).\n# TYPE verge_cache_requests_total counter\n");
    for (const struct zone_entry *e = zones; e != NULL; e = e->next)
        rc |= render_cache(out, e);
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        rc |= buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", fields[i].metric,
                         fields[i].help, fields[i].metric);
        for (const struct zone_entry *e = zones; e != NULL; e = e->next)
            rc |= buf_printf(out, "%s{zone=\"%s\"} %llu\n", fields[i].metric, e->name,
                             (unsigned long long)sum(e, fields[i].off));
    }
    return rc;
}

const char *const metrics_limit_names[METRICS_LIMIT_COUNT] = {
    "malformed",      "transfer_coding", "version",           "request_line",
    "header_size",    "header_fields",   "body_size",         "header_timeout",
    "body_timeout",   "send_timeout",    "keepalive_timeout", "connections_total",
    "connections_per_client",
};

static int
render_limits(struct buf *out)
{
    int rc = buf_append_str(out, "# HELP verge_client_limit_total Visitor requests refused or "
                                 "connections closed by a check or limit, by limit.\n"
                                 "# TYPE verge_client_limit_total counter\n");
    for (int i = 0; i < METRICS_LIMIT_COUNT; i++) {
        uint64_t n = 0;
        for (int w = 0; w < METRICS_MAX_WORKERS; w++)
            n += LOAD(workers[w].limits[i]);
        rc |= buf_printf(out, "verge_client_limit_total{limit=\"%s\"} %llu\n",
                         metrics_limit_names[i], (unsigned long long)n);
    }
    return rc;
}

int
metrics_render(struct buf *out)
{
    uint64_t active = 0, total = 0;
    for (int w = 0; w < METRICS_MAX_WORKERS; w++) {
        active += LOAD(workers[w].connections_active);
        total += LOAD(workers[w].connections_total);
    }
    int rc = buf_printf(out,
                        "# HELP verge_connections_active Visitor connections open now.\n"
                        "# TYPE verge_connections_active gauge\n"
                        "verge_connections_active %llu\n"
                        "# HELP verge_connections_total Visitor connections accepted.\n"
                        "# TYPE verge_connections_total counter\n"
                        "verge_connections_total %llu\n",
                        (unsigned long long)active, (unsigned long long)total);
    rc |= render_limits(out);
    struct cache_store_stats cs;
    cache_store_stats(&cs);
    rc |= buf_printf(out,
                     "# HELP verge_cache_objects Objects in the shared cache.\n"
                     "# TYPE verge_cache_objects gauge\nverge_cache_objects %llu\n"
                     "# HELP verge_cache_bytes Bytes the shared cache holds (cache.memory).\n"
                     "# TYPE verge_cache_bytes gauge\nverge_cache_bytes %llu\n"
                     "# HELP verge_cache_evictions_total Objects evicted to make room.\n"
                     "# TYPE verge_cache_evictions_total counter\n"
                     "verge_cache_evictions_total %llu\n"
                     "# HELP verge_cache_fills Responses being fetched into the cache now.\n"
                     "# TYPE verge_cache_fills gauge\nverge_cache_fills %llu\n"
                     "# HELP verge_cache_hit_for_miss URLs remembered as not storable "
                     "(hit-for-miss markers).\n"
                     "# TYPE verge_cache_hit_for_miss gauge\nverge_cache_hit_for_miss %llu\n",
                     (unsigned long long)cs.objects, (unsigned long long)cs.bytes,
                     (unsigned long long)cs.evictions, (unsigned long long)cs.fills,
                     (unsigned long long)cs.markers);
    struct cache_slab_stats ss;
    cache_slab_stats(&ss);
    rc |= buf_printf(out,
                     "# HELP verge_cache_body_files Memfds holding large cached bodies "
                     "(sent with sendfile up to cache.sendfile_max).\n"
                     "# TYPE verge_cache_body_files gauge\nverge_cache_body_files %d\n"
                     "# HELP verge_cache_body_blocks Large cached bodies in those memfds.\n"
                     "# TYPE verge_cache_body_blocks gauge\nverge_cache_body_blocks %llu\n",
                     ss.files, (unsigned long long)ss.blocks);
    pthread_mutex_lock(&registry_lock);
    rc |= render_zones(out);
    pthread_mutex_unlock(&registry_lock);
    return rc;
}
