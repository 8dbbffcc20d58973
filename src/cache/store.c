/* store.c - a chained hash table plus an LRU list under one mutex; objects are reference
 * counted so eviction never frees bytes a worker is still writing. */
#include "cache/store.h"

#include <pthread.h>

#define STORE_BUCKETS 65536
#define STORE_OVERHEAD 256 /* per-object bookkeeping charged against cache.memory */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_obj **buckets;
static struct cache_obj *lru_head, *lru_tail; /* most recent first */
static uint64_t limit_bytes = 256ull << 20, max_object = 64ull << 20;
static uint64_t used_bytes, nobjects;

/* Vary names per base key: small records, never more than the objects that use them. */
struct vary_rec {
    struct vary_rec *next;
    char *base, *names;
};
static struct vary_rec *varies;

static uint64_t
hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void
cache_store_configure(uint64_t memory, uint64_t max_obj)
{
    pthread_mutex_lock(&lock);
    if (buckets == NULL)
        buckets = xcalloc(STORE_BUCKETS, sizeof(*buckets));
    limit_bytes = memory;
    max_object = max_obj;
    pthread_mutex_unlock(&lock);
}

uint64_t
cache_store_max_object(void)
{
    return __atomic_load_n(&max_object, __ATOMIC_RELAXED);
}

static void
obj_free(struct cache_obj *o)
{
    free(o->key);
    free(o->fields);
    free(o->body);
    free(o->vary);
    free(o->tags);
    free(o);
}

struct cache_obj *
cache_obj_acquire(struct cache_obj *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    return o;
}

void
cache_obj_release(struct cache_obj **op)
{
    struct cache_obj *o = *op;
    *op = NULL;
    if (o != NULL && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
        obj_free(o);
}

int64_t
cache_obj_age(const struct cache_obj *o, time_t now)
{
    return o->initial_age + MAX((int64_t)0, (int64_t)(now - o->response_time));
}

int64_t
cache_obj_lifetime(const struct cache_obj *o)
{
    return __atomic_load_n(&o->lifetime, __ATOMIC_RELAXED);
}

bool
cache_obj_fresh(const struct cache_obj *o, time_t now)
{
    return cache_obj_lifetime(o) > cache_obj_age(o, now);
}

/* ---------------------------------------------------------------- under the lock */

static void
lru_unlink(struct cache_obj *o)
{
    if (o->lru_prev)
        o->lru_prev->lru_next = o->lru_next;
    else
        lru_head = o->lru_next;
    if (o->lru_next)
        o->lru_next->lru_prev = o->lru_prev;
    else
        lru_tail = o->lru_prev;
    o->lru_prev = o->lru_next = NULL;
}

static void
lru_push(struct cache_obj *o)
{
    o->lru_next = lru_head;
    if (lru_head)
        lru_head->lru_prev = o;
    lru_head = o;
    if (lru_tail == NULL)
        lru_tail = o;
}

static struct cache_obj **
slot(const char *key)
{
    struct cache_obj **pp = &buckets[hash(key) % STORE_BUCKETS];
    while (*pp != NULL && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->hash_next;
    return pp;
}

/* Take o out of the table; the table's reference goes. */
static void
unlink_obj(struct cache_obj **pp)
{
    struct cache_obj *o = *pp;
    *pp = o->hash_next;
    lru_unlink(o);
    used_bytes -= o->charge;
    nobjects--;
    cache_obj_release(&o);
}

static void
evict_until(uint64_t room)
{
    while (lru_tail != NULL && used_bytes + room > limit_bytes)
        unlink_obj(slot(lru_tail->key));
}

static void
remember_vary(const char *key, const char *names)
{
    const char *nl = strchr(key, CACHE_VARIANT_SEP);
    size_t blen = nl ? (size_t)(nl - key) : strlen(key);
    struct vary_rec *v = varies;
    while (v != NULL && (strlen(v->base) != blen || strncmp(v->base, key, blen) != 0))
        v = v->next;
    if (v == NULL) {
        v = xcalloc(1, sizeof(*v));
        v->base = xstrndup(key, blen);
        v->next = varies;
        varies = v;
    }
    free(v->names);
    v->names = xstrdup(names ? names : "");
}

/* ---------------------------------------------------------------- API */

bool
cache_store_vary(const char *base_key, char *out, size_t outlen)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (struct vary_rec *v = varies; v != NULL && !found; v = v->next)
        if (strcmp(v->base, base_key) == 0) {
            snprintf(out, outlen, "%s", v->names);
            found = true;
        }
    pthread_mutex_unlock(&lock);
    return found;
}

struct cache_obj *
cache_store_get(const char *key)
{
    struct cache_obj *o = NULL;
    pthread_mutex_lock(&lock);
    if (buckets != NULL && (o = *slot(key)) != NULL) {
        __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
        lru_unlink(o);
        lru_push(o);
    }
    pthread_mutex_unlock(&lock);
    return o;
}

void
cache_store_put(struct cache_obj *o)
{
    o->charge = o->body_len + o->fields_len + strlen(o->key) + STORE_OVERHEAD;
    pthread_mutex_lock(&lock);
    if (buckets == NULL || o->body_len > max_object || o->charge > limit_bytes) {
        pthread_mutex_unlock(&lock);
        cache_obj_release(&o);
        return;
    }
    struct cache_obj **pp = slot(o->key);
    if (*pp != NULL)
        unlink_obj(pp);
    evict_until(o->charge);
    pp = slot(o->key);
    o->hash_next = NULL;
    *pp = o;
    lru_push(o);
    used_bytes += o->charge;
    nobjects++;
    remember_vary(o->key, o->vary);
    pthread_mutex_unlock(&lock);
}

void
cache_store_remove(const char *key)
{
    pthread_mutex_lock(&lock);
    struct cache_obj **pp = buckets ? slot(key) : NULL;
    if (pp != NULL && *pp != NULL)
        unlink_obj(pp);
    pthread_mutex_unlock(&lock);
}

static bool
has_tag(const char *tags, const char *tag)
{
    size_t n = strlen(tag);
    for (const char *p = tags; p != NULL && *p != '\0';) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (len == n && strncmp(p, tag, n) == 0)
            return true;
        p += len;
    }
    return false;
}

/* Does key ("zone\nhost\npath<SEP>variant") fall under p? */
static bool
purge_matches(const struct cache_purge *p, const struct cache_obj *o)
{
    const char *k = o->key, *nl1 = strchr(k, '\n'), *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    if (nl2 == NULL || strlen(p->zone) != (size_t)(nl1 - k) || strncmp(k, p->zone, nl1 - k) != 0)
        return false;
    if (p->host != NULL && (strlen(p->host) != (size_t)(nl2 - nl1 - 1) ||
                            strncmp(nl1 + 1, p->host, (size_t)(nl2 - nl1 - 1)) != 0))
        return false;
    const char *path = nl2 + 1, *sep = strchr(path, CACHE_VARIANT_SEP);
    size_t plen = sep ? (size_t)(sep - path) : strlen(path);
    if (p->path != NULL)
        return strlen(p->path) == plen && strncmp(path, p->path, plen) == 0;
    if (p->prefix != NULL)
        return strncmp(path, p->prefix, strlen(p->prefix)) == 0;
    if (p->tag != NULL)
        return o->tags != NULL && has_tag(o->tags, p->tag);
    return true;
}

size_t
cache_store_purge(const struct cache_purge *p)
{
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t b = 0; buckets != NULL && b < STORE_BUCKETS; b++) {
        struct cache_obj **pp = &buckets[b];
        while (*pp != NULL) {
            if (!purge_matches(p, *pp)) {
                pp = &(*pp)->hash_next;
                continue;
            }
            n++;
            if (p->soft) {
                __atomic_store_n(&(*pp)->lifetime, 0, __ATOMIC_RELAXED);
                pp = &(*pp)->hash_next;
            } else {
                unlink_obj(pp);
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return n;
}

void
cache_store_stats(uint64_t *objects, uint64_t *bytes)
{
    pthread_mutex_lock(&lock);
    *objects = nobjects;
    *bytes = used_bytes;
    pthread_mutex_unlock(&lock);
}
