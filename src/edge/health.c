/* health.c - passive health per origin and the incident log. Changes happen under one
 * mutex; what every request reads (is the origin up, is it known down) is kept in atomics
 * so that the request path of a healthy origin, and the answer for a zone known down, take
 * no lock that the workers would share. */
#include "edge/health.h"

#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define HEALTH_MAX_INCIDENTS 200

enum health_state { HEALTH_UP, HEALTH_DOWN };

struct incident {
    uint64_t id;
    char zone[64];
    char origin[128];
    double start, end; /* wall clock seconds; end 0 while ongoing */
    char cause[64];    /* RFC 9209 type */
    char detail[200];
    uint64_t failures, affected; /* affected: while ongoing, the origin's counter holds it */
    struct origin_health *origin_of;
    char diagnosis[600]; /* the automatic probe's verdict and steps, "" until it reports */
};

struct origin_health {
    struct origin_health *next;
    char zone[64];
    char origin[128];
    /* Written under the lock, read without it by health_check, health_success and
     * health_known_down. */
    _Atomic int state;              /* enum health_state */
    _Atomic uint32_t consecutive;
    _Atomic uint64_t down_until;    /* monotonic ms */
    _Atomic bool probing;
    _Atomic bool active_down;       /* taken down by active probes: only they bring it back */
    _Atomic uint64_t probe_started; /* a probe whose request vanished frees the slot after hold */
    _Atomic uint64_t affected;      /* requests refused during the open incident */
    uint32_t probe_ok, probe_failed; /* consecutive active probe outcomes */
    char last_cause[240];
    struct incident *incident; /* while down */
    char diagnosis[600];       /* the last automatic diagnosis */
    double diagnosed_at;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t epoch = 1; /* bumped under the lock by every change (health_epoch) */
static struct origin_health *records;
static struct incident incidents[HEALTH_MAX_INCIDENTS];
static size_t nincidents; /* total ever opened; the ring keeps the last MAX */

struct origin_health *
health_get(const struct config_zone *z, const struct config_origin *o)
{
    pthread_mutex_lock(&lock);
    struct origin_health *h = records;
    while (h != NULL && (strcmp(h->zone, z->name) != 0 || strcmp(h->origin, o->url) != 0))
        h = h->next;
    if (h == NULL) {
        h = xcalloc(1, sizeof(*h));
        snprintf(h->zone, sizeof(h->zone), "%s", z->name);
        snprintf(h->origin, sizeof(h->origin), "%s", o->url);
        h->next = records;
        records = h;
    }
    pthread_mutex_unlock(&lock);
    return h;
}

uint64_t
health_epoch(void)
{
    return atomic_load_explicit(&epoch, memory_order_acquire);
}

/* Under the lock, after changing what health_check or health_known_down would answer. */
static void
changed(void)
{
    atomic_fetch_add_explicit(&epoch, 1, memory_order_release);
}

/* Would health_check skip h now, without handing out its probe? *until: up to when that
 * answer holds (UINT64_MAX: until a change bumps the epoch). */
static bool
skipped(const struct origin_health *h, const struct config_zone *z, uint64_t now,
        uint64_t *until)
{
    *until = UINT64_MAX;
    if (atomic_load_explicit(&h->state, memory_order_acquire) != HEALTH_DOWN)
        return false;
    if (atomic_load_explicit(&h->active_down, memory_order_relaxed))
        return true;
    uint64_t down_until = atomic_load_explicit(&h->down_until, memory_order_relaxed);
    if (now < down_until) {
        *until = down_until;
        return true;
    }
    uint64_t probe_end = atomic_load_explicit(&h->probe_started, memory_order_relaxed) +
                         z->health_hold;
    if (atomic_load_explicit(&h->probing, memory_order_relaxed) && now < probe_end) {
        *until = probe_end;
        return true;
    }
    return false;
}

bool
health_known_down(const struct origin_health *h, const struct config_zone *z, uint64_t now_ms,
                  uint64_t *until_ms)
{
    return skipped(h, z, now_ms, until_ms);
}

enum health_verdict
health_check(struct origin_health *h, const struct config_zone *z, uint64_t now)
{
    enum health_verdict v = HEALTH_USE;
    uint64_t until;
    if (atomic_load_explicit(&h->state, memory_order_acquire) == HEALTH_UP)
        return HEALTH_USE; /* the common case, without the lock */
    pthread_mutex_lock(&lock);
    if (h->state == HEALTH_DOWN) {
        if (skipped(h, z, now, &until)) {
            v = HEALTH_SKIP;
        } else {
            h->probing = true;
            h->probe_started = now;
            v = HEALTH_PROBE;
            changed();
        }
    }
    pthread_mutex_unlock(&lock);
    return v;
}

/* An origin's own 5xx (type NONE) is not an RFC 9209 failure, but can count as one. */
static const char *
cause_name(const struct proxy_error *e)
{
    return e->type == PROXY_ERR_NONE ? "origin_5xx" : proxy_error_name(e->type);
}

static struct incident *
incident_open(struct origin_health *h, const struct proxy_error *e, double wall)
{
    struct incident *i = &incidents[nincidents % HEALTH_MAX_INCIDENTS];
    memset(i, 0, sizeof(*i));
    i->id = ++nincidents;
    snprintf(i->zone, sizeof(i->zone), "%s", h->zone);
    snprintf(i->origin, sizeof(i->origin), "%s", h->origin);
    snprintf(i->cause, sizeof(i->cause), "%s", cause_name(e));
    snprintf(i->detail, sizeof(i->detail), "%s", e->detail);
    i->start = wall;
    i->failures = h->consecutive;
    i->origin_of = h;
    h->affected = 0;
    return i;
}

/* The incident still in the ring? (an old one may have been overwritten) */
static struct incident *
incident_of(struct origin_health *h)
{
    struct incident *i = h->incident;
    if (i != NULL && strcmp(i->origin, h->origin) == 0 && strcmp(i->zone, h->zone) == 0 &&
        i->end == 0)
        return i;
    return NULL;
}

/* Under the lock: mark h down with cause e. */
static void
mark_down(struct origin_health *h, const struct proxy_error *e, uint64_t now,
          const struct config_zone *z, double wall)
{
    h->down_until = now + z->health_hold;
    h->incident = incident_open(h, e, wall);
    h->state = HEALTH_DOWN;
    changed();
}

/* Under the lock: h's open incident ends now. */
static void
incident_close(struct origin_health *h, double wall)
{
    struct incident *i = incident_of(h);
    if (i != NULL) {
        i->end = wall;
        i->affected = h->affected;
    }
    h->incident = NULL;
}

void
health_success(struct origin_health *h, const struct config_zone *z, double wall)
{
    if (atomic_load_explicit(&h->state, memory_order_acquire) == HEALTH_UP &&
        atomic_load_explicit(&h->consecutive, memory_order_relaxed) == 0)
        return; /* nothing to reset: no lock */
    pthread_mutex_lock(&lock);
    bool was_down = h->state == HEALTH_DOWN;
    h->consecutive = 0;
    h->state = HEALTH_UP;
    h->probing = false;
    incident_close(h, wall);
    changed();
    pthread_mutex_unlock(&lock);
    if (was_down)
        log_warn("zone \"%s\": origin %s is up again (a probe request succeeded)", z->name,
                 h->origin);
}

static health_down_hook down_hook;

void
health_set_down_hook(health_down_hook hook)
{
    down_hook = hook;
}

health_down_hook
health_get_down_hook(void)
{
    return down_hook;
}

void
health_incident_note(struct origin_health *h, const char *diagnosis)
{
    pthread_mutex_lock(&lock);
    struct incident *i = incident_of(h);
    if (i != NULL)
        snprintf(i->diagnosis, sizeof(i->diagnosis), "%s", diagnosis);
    snprintf(h->diagnosis, sizeof(h->diagnosis), "%s", diagnosis);
    pthread_mutex_unlock(&lock);
}

bool
health_last_diagnosis(const char *zone, const char *origin_url, char *out, size_t outlen)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (struct origin_health *h = records; h != NULL && !found; h = h->next)
        if (strcmp(h->zone, zone) == 0 && strcmp(h->origin, origin_url) == 0 &&
            h->diagnosis[0] != '\0') {
            snprintf(out, outlen, "%s", h->diagnosis);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

bool
health_failure(struct origin_health *h, const struct config_zone *z,
               const struct proxy_error *e, uint64_t now, double wall)
{
    bool went_down = false;
    if (z->health_failures == 0)
        return false;
    pthread_mutex_lock(&lock);
    h->consecutive++;
    snprintf(h->last_cause, sizeof(h->last_cause), "%s: %s", cause_name(e), e->detail);
    struct incident *i = incident_of(h);
    if (i != NULL)
        i->failures++;
    if (h->state == HEALTH_DOWN) {
        h->probing = false; /* the probe failed: hold again */
        h->down_until = now + z->health_hold;
    } else if (h->consecutive >= z->health_failures) {
        mark_down(h, e, now, z, wall);
        went_down = true;
    }
    changed(); /* the last cause at least */
    pthread_mutex_unlock(&lock);
    if (went_down)
        log_error("zone \"%s\": origin %s marked down after %u consecutive failures (last: "
                  "%s, %s); no requests for %llu ms, then one probe request",
                  z->name, h->origin, z->health_failures, cause_name(e), e->detail,
                  (unsigned long long)z->health_hold);
    return went_down;
}

void
health_probe_result(struct origin_health *h, const struct config_zone *z, bool ok,
                    const struct proxy_error *e, uint64_t now, double wall)
{
    bool went_down = false, came_up = false;
    pthread_mutex_lock(&lock);
    if (ok) {
        h->probe_failed = 0;
        h->probe_ok++;
        if (h->state == HEALTH_DOWN && h->probe_ok >= z->active_rise) {
            incident_close(h, wall);
            h->state = HEALTH_UP;
            h->active_down = h->probing = false;
            h->consecutive = 0;
            came_up = true;
        }
    } else {
        h->probe_ok = 0;
        h->probe_failed++;
        snprintf(h->last_cause, sizeof(h->last_cause), "%s: %s", proxy_error_name(e->type),
                 e->detail);
        if (h->state == HEALTH_UP && h->probe_failed >= z->active_fall) {
            mark_down(h, e, now, z, wall);
            went_down = true;
        }
        if (h->state == HEALTH_DOWN)
            h->active_down = true;
    }
    changed();
    pthread_mutex_unlock(&lock);
    if (went_down)
        log_error("zone \"%s\": origin %s marked down after %u failed health probes (last: "
                  "%s, %s)", z->name, h->origin, z->active_fall, proxy_error_name(e->type),
                  e->detail);
    if (came_up)
        log_warn("zone \"%s\": origin %s is up again (%u health probes succeeded)", z->name,
                 h->origin, z->active_rise);
}

void
health_affected(struct origin_health *h)
{
    atomic_fetch_add_explicit(&h->affected, 1, memory_order_relaxed);
}

void
health_last_cause(struct origin_health *h, char *out, size_t outlen)
{
    pthread_mutex_lock(&lock);
    snprintf(out, outlen, "%s", h->last_cause);
    pthread_mutex_unlock(&lock);
}

static void
json_time(struct buf *out, double t)
{
    char stamp[40];
    time_t secs = (time_t)t;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_append_json_string(out, stamp);
}

void
health_incidents_json(struct buf *out)
{
    pthread_mutex_lock(&lock);
    size_t n = MIN(nincidents, (size_t)HEALTH_MAX_INCIDENTS);
    buf_append_str(out, "{\"incidents\":[");
    for (size_t k = 0; k < n; k++) {
        const struct incident *i = &incidents[(nincidents - 1 - k) % HEALTH_MAX_INCIDENTS];
        buf_printf(out, "%s{\"id\":%llu,\"zone\":", k ? "," : "", (unsigned long long)i->id);
        buf_append_json_string(out, i->zone);
        buf_append_str(out, ",\"origin\":");
        buf_append_json_string(out, i->origin);
        buf_append_str(out, ",\"start\":");
        json_time(out, i->start);
        buf_append_str(out, ",\"end\":");
        if (i->end > 0)
            json_time(out, i->end);
        else
            buf_append_str(out, "null");
        buf_append_str(out, ",\"cause\":");
        buf_append_json_string(out, i->cause);
        buf_append_str(out, ",\"detail\":");
        buf_append_json_string(out, i->detail);
        uint64_t affected = i->end == 0 && i->origin_of != NULL && i->origin_of->incident == i
                                ? atomic_load(&i->origin_of->affected)
                                : i->affected;
        buf_printf(out, ",\"failures\":%llu,\"requests_affected\":%llu,\"diagnosis\":",
                   (unsigned long long)i->failures, (unsigned long long)affected);
        buf_append_json_string(out, i->diagnosis);
        buf_append_str(out, "}");
    }
    buf_append_str(out, "]}\n");
    pthread_mutex_unlock(&lock);
}

void
health_reset(void)
{
    pthread_mutex_lock(&lock);
    while (records != NULL) {
        struct origin_health *h = records;
        records = h->next;
        free(h);
    }
    nincidents = 0;
    changed();
    pthread_mutex_unlock(&lock);
}
