/* cache.c - one shared table of DNS answers under a mutex: origin names are few, lookups
 * are one short critical section per request. */
#include "dns/cache.h"

#include <pthread.h>
#include <strings.h>

#define DNS_STALE_RECHECK_MS 5000 /* after a failed refresh, ask again this much later */

struct entry {
    struct entry *next;
    char *name;
    struct dns_answer answer;   /* the current answer (positive or negative) */
    uint64_t expires_ms;        /* fresh until */
    struct dns_answer good;     /* the last positive answer */
    bool has_good;
    uint64_t good_expired_ms;   /* when its TTL ran out */
    uint64_t recheck_ms;        /* serving stale: do not ask before this */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *entries;

static const char *const status_names[] = {"NOERROR", "NXDOMAIN", "NODATA", "SERVFAIL",
                                           "REFUSED", "TIMEOUT", "FAILED"};

const char *
dns_status_name(enum dns_status s)
{
    return (size_t)s < ARRAY_SIZE(status_names) ? status_names[s] : "FAILED";
}

static struct entry *
find(const char *name, bool create)
{
    for (struct entry *e = entries; e != NULL; e = e->next)
        if (strcasecmp(e->name, name) == 0)
            return e;
    if (!create)
        return NULL;
    struct entry *e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    e->next = entries;
    entries = e;
    return e;
}

/* Serve the last good answer while it is within serve_stale. */
static bool
stale_usable(const struct entry *e, uint64_t now, const struct config_resolver *rc)
{
    return e->has_good && now < e->good_expired_ms + rc->serve_stale;
}

static void
copy_stale(const struct entry *e, uint64_t now, struct dns_answer *out)
{
    *out = e->good;
    out->stale = true;
    out->age_ms = now > e->good_expired_ms ? now - e->good_expired_ms : 0;
}

enum dns_lookup
dns_cache_lookup(const char *name, uint64_t now, const struct config_resolver *rc,
                 struct dns_answer *out)
{
    enum dns_lookup result = DNS_LOOKUP_MISS;
    pthread_mutex_lock(&lock);
    struct entry *e = find(name, false);
    if (e != NULL && now < e->expires_ms) {
        *out = e->answer;
        result = DNS_LOOKUP_HIT;
    } else if (e != NULL && now < e->recheck_ms && stale_usable(e, now, rc)) {
        copy_stale(e, now, out);
        result = DNS_LOOKUP_STALE;
    }
    pthread_mutex_unlock(&lock);
    return result;
}

static uint64_t
clamp_ttl_ms(uint32_t ttl_s, const struct config_resolver *rc)
{
    uint64_t ms = (uint64_t)ttl_s * 1000;
    return MIN(MAX(ms, rc->min_ttl), rc->max_ttl);
}

bool
dns_cache_store(const char *name, uint64_t now, const struct config_resolver *rc,
                struct dns_answer *out, uint32_t ttl_s)
{
    bool usable = out->status == DNS_OK;
    pthread_mutex_lock(&lock);
    struct entry *e = find(name, true);
    switch (out->status) {
    case DNS_OK:
        e->answer = *out;
        e->expires_ms = now + clamp_ttl_ms(ttl_s, rc);
        e->good = *out;
        e->has_good = true;
        e->good_expired_ms = e->expires_ms;
        e->recheck_ms = 0;
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        /* An authoritative "no": the name is gone, stale addresses must not be used. */
        e->answer = *out;
        e->expires_ms = now + clamp_ttl_ms(ttl_s, rc);
        e->has_good = false;
        break;
    default:
        if (stale_usable(e, now, rc)) {
            char why[sizeof(out->detail)];
            snprintf(why, sizeof(why), "%s", out->detail);
            copy_stale(e, now, out);
            snprintf(out->detail, sizeof(out->detail), "%s", why);
            e->recheck_ms = now + MIN(DNS_STALE_RECHECK_MS, MAX(rc->min_ttl, 1000));
            usable = true;
        }
        break;
    }
    pthread_mutex_unlock(&lock);
    return usable;
}

void
dns_cache_clear(void)
{
    pthread_mutex_lock(&lock);
    while (entries != NULL) {
        struct entry *e = entries;
        entries = e->next;
        free(e->name);
        free(e);
    }
    pthread_mutex_unlock(&lock);
}
