/* health.c - passive health per origin and the incident log, under one mutex: it is
 * touched once per origin attempt, never per byte. */
#include "edge/health.h"

#include "core/log.h"

#include <pthread.h>
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
    uint64_t failures, affected;
    char diagnosis[600]; /* the automatic probe's verdict and steps, "" until it reports */
};

struct origin_health {
    struct origin_health *next;
    char zone[64];
    char origin[128];
    enum health_state state;
    uint32_t consecutive;
    uint64_t down_until; /* monotonic ms */
    bool probing;
    bool active_down;       /* taken down by active probes: only they bring it back */
    uint32_t probe_ok, probe_failed; /* consecutive active probe outcomes */
    uint64_t probe_started; /* a probe whose request vanished frees the slot after hold */
    char last_cause[240];
    struct incident *incident; /* while down */
    char diagnosis[600];       /* the last automatic diagnosis */
    double diagnosed_at;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
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

enum health_verdict
health_check(struct origin_health *h, const struct config_zone *z, uint64_t now)
{
    enum health_verdict v = HEALTH_USE;
    pthread_mutex_lock(&lock);
    if (h->state == HEALTH_DOWN) {
        if (h->active_down) {
            v = HEALTH_SKIP;
        } else if (now < h->down_until || (h->probing && now < h->probe_started + z->health_hold)) {
            v = HEALTH_SKIP;
        } else {
            h->probing = true;
            h->probe_started = now;
            v = HEALTH_PROBE;
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
    h->state = HEALTH_DOWN;
    h->down_until = now + z->health_hold;
    h->incident = incident_open(h, e, wall);
}

void
health_success(struct origin_health *h, const struct config_zone *z, double wall)
{
    pthread_mutex_lock(&lock);
    bool was_down = h->state == HEALTH_DOWN;
    struct incident *i = incident_of(h);
    h->consecutive = 0;
    h->state = HEALTH_UP;
    h->probing = false;
    if (i != NULL)
        i->end = wall;
    h->incident = NULL;
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
            struct incident *i = incident_of(h);
            if (i != NULL)
                i->end = wall;
            h->incident = NULL;
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
    pthread_mutex_lock(&lock);
    struct incident *i = incident_of(h);
    if (i != NULL)
        i->affected++;
    pthread_mutex_unlock(&lock);
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
        buf_printf(out, ",\"failures\":%llu,\"requests_affected\":%llu,\"diagnosis\":",
                   (unsigned long long)i->failures, (unsigned long long)i->affected);
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
    pthread_mutex_unlock(&lock);
}
