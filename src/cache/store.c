/* store.c - a sharded chained hash table of reference-counted objects, the policy's queues
 * under one lock taken only to insert, evict and purge, and per-object wake-ups. */
#include "cache/store.h"

#include "cache/vary.h"

#include <pthread.h>

#define STORE_OVERHEAD (sizeof(struct cache_obj) + 64) /* charged per object */
#define STORE_FIRST_BUCKETS 256
#define CHUNK_MIN (16 * 1024)
#define CHUNK_MAX (1024 * 1024)
#define FILE_CHUNK_MIN CACHE_SLAB_BLOCK_MIN /* a known-length body this big: in a memfd */
#define SUB_LOCKS 64

struct shard {
    pthread_mutex_t lock;
    struct cache_obj **buckets;
    size_t nbuckets; /* power of two, or 0 before the first object */
    size_t count;
} __attribute__((aligned(64)));

static struct shard shards[CACHE_SHARDS] = {
    [0 ... CACHE_SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};
static pthread_mutex_t sub_locks[SUB_LOCKS] = {
    [0 ... SUB_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER,
};

/* Under policy_lock: the queues, the limits, the totals. */
static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_evict policy = {.policy = CACHE_EVICT_S3FIFO, .limit = 256ull << 20};
static uint64_t limit_bytes = 256ull << 20, max_object = 64ull << 20;
static uint64_t used_bytes, nobjects; /* also read atomically by cache_store_stats */

static uint64_t nmarkers; /* hit-for-miss markers; like nobjects */

/* o enters (sign 1) or leaves (-1) the totals (policy lock held); stores are atomic for
 * the stats' readers. A marker counts its bytes but is no object. */
static void
totals_add(const struct cache_obj *o, int sign)
{
    uint64_t *count = o->hit_for_miss ? &nmarkers : &nobjects;
    __atomic_store_n(&used_bytes, used_bytes + (uint64_t)(sign * (int64_t)o->charge),
                     __ATOMIC_RELAXED);
    __atomic_store_n(count, *count + (uint64_t)(int64_t)sign, __ATOMIC_RELAXED);
}
static uint64_t nfills;               /* atomic */
static uint64_t purge_gen;            /* atomic: bumped by every purge */

uint64_t
cache_key_hash(const char *s, size_t len)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = (uint64_t)len * k, w = 0;
    for (; len >= 8; s += 8, len -= 8) { /* eight bytes a step: a key is hashed per request */
        memcpy(&w, s, 8);
        h = (h ^ w) * k;
        h ^= h >> 31;
    }
    w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ w) * k;
    h ^= h >> 29; /* the top bits pick the shard, the low ones the chain: mix both ways */
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static struct shard *
shard_of(uint64_t hash)
{
    return &shards[hash >> 58];
}

static pthread_mutex_t *
sub_lock(const struct cache_obj *o)
{
    return &sub_locks[((uintptr_t)o >> 6) % SUB_LOCKS];
}

uint64_t
cache_store_max_object(void)
{
    return __atomic_load_n(&max_object, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- objects */

static void
chunk_free(struct cache_chunk *c)
{
    cache_slab_give(&c->file);
    free(c);
}

/* A piece of size bytes in a memfd's block; NULL when there is none to be had: the caller
 * keeps the body in memory instead. */
static struct cache_chunk *
file_chunk_new(size_t size)
{
    struct cache_chunk *c = malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    *c = (struct cache_chunk){.size = size};
    if (cache_slab_take(size, &c->file) < 0) {
        free(c);
        return NULL;
    }
    c->data = c->file.data;
    return c;
}

void
cache_obj_destroy(struct cache_obj *o)
{
    struct cache_chunk *c = o->body_of ? NULL : o->first, *next;
    for (; c != NULL; c = next) {
        next = c->next;
        chunk_free(c);
    }
    cache_obj_release(&o->body_of);
    free(o->key);
    free(o->head);
    free(o->vary);
    free(o->tags);
    free(o->fail_info);
    free(o);
}

struct cache_obj *
cache_obj_acquire(struct cache_obj *o)
{
    __atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
    return o;
}

static struct cache_obj *
obj_alloc(const char *base, size_t base_len, uint64_t hash, const char *variant, size_t vlen)
{
    struct cache_obj *o = xcalloc(1, sizeof(*o));
    o->refs = 1;
    o->hash = hash;
    o->base_len = base_len;
    o->key = xmalloc(base_len + vlen + 2);
    memcpy(o->key, base, base_len);
    o->key[base_len] = CACHE_VARIANT_SEP;
    if (vlen > 0) /* variant may be NULL when there is none */
        memcpy(o->key + base_len + 1, variant, vlen);
    o->key[base_len + 1 + vlen] = '\0';
    o->total_len = -1;
    o->state = CACHE_OBJ_PENDING;
    return o;
}

/* A fill: counted until it completes or fails. */
static struct cache_obj *
fill_alloc(const char *base, size_t base_len, uint64_t hash, const char *variant, size_t vlen)
{
    __atomic_add_fetch(&nfills, 1, __ATOMIC_RELAXED);
    return obj_alloc(base, base_len, hash, variant, vlen);
}

struct cache_obj *
cache_obj_new(const char *base, size_t base_len)
{
    struct cache_obj *o = fill_alloc(base, base_len, cache_key_hash(base, base_len), "", 0);
    o->insert_on_finish = true;
    o->purge_gen = __atomic_load_n(&purge_gen, __ATOMIC_ACQUIRE);
    return o;
}

/* ---------------------------------------------------------------- the table (shard locked) */

static void
table_grow(struct shard *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : STORE_FIRST_BUCKETS;
    struct cache_obj **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct cache_obj *o = s->buckets[i], *next;
        for (; o != NULL; o = next) {
            next = o->hash_next;
            o->hash_next = b[o->hash & (n - 1)];
            b[o->hash & (n - 1)] = o;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

/* Is x stored under o's base key (any variant)? */
static bool
same_base_as(const struct cache_obj *x, const struct cache_obj *o)
{
    return x->hash == o->hash && x->base_len == o->base_len &&
           memcmp(x->key, o->key, o->base_len) == 0;
}

/* Link o; the table takes a reference. */
static void
table_link(struct shard *s, struct cache_obj *o)
{
    if (s->count >= s->nbuckets)
        table_grow(s);
    struct cache_obj **head = &s->buckets[o->hash & (s->nbuckets - 1)];
    for (struct cache_obj *x = *head; x != NULL; x = x->hash_next)
        if (same_base_as(x, o)) /* a lookup of x's key now finds o as well */
            __atomic_store_n(&x->gen, x->gen + 1, __ATOMIC_RELEASE);
    o->hash_next = *head;
    *head = cache_obj_acquire(o);
    o->hashed = true;
    s->count++;
}

/* Unlink o and drop the table's reference. */
static void
table_unlink(struct shard *s, struct cache_obj *o)
{
    struct cache_obj **pp = &s->buckets[o->hash & (s->nbuckets - 1)];
    while (*pp != o)
        pp = &(*pp)->hash_next;
    *pp = o->hash_next;
    o->hash_next = NULL;
    o->hashed = false;
    __atomic_store_n(&o->gen, o->gen + 1, __ATOMIC_RELEASE);
    s->count--;
    cache_obj_release(&o);
}

static bool
same_base(const struct cache_obj *o, const struct cache_lookup *l)
{
    return o->hash == l->hash && o->base_len == l->base_len &&
           memcmp(o->key, l->base, l->base_len) == 0;
}

/* Does o's variant equal the request's for o's Vary names? names/computed cache the last
 * variant built in scratch, as every variant of a key usually has the same names. */
static bool
variant_matches(const struct cache_obj *o, struct cache_lookup *l, const char **names,
                bool *computed)
{
    if (!o->vary_known)
        return true; /* a pending fill that will learn its Vary: wait, then check */
    if (!*computed || (*names == NULL) != (o->vary == NULL) ||
        (o->vary != NULL && strcmp(*names, o->vary) != 0)) {
        buf_reset(l->scratch);
        if (o->vary != NULL)
            cache_variant(l->req, o->vary, l->scratch);
        *names = o->vary;
        *computed = true;
    }
    const char *v = o->key + o->base_len + 1;
    size_t vlen = strlen(v);
    return vlen == buf_used(l->scratch) && memcmp(v, buf_head(l->scratch), vlen) == 0;
}

/* A pending entry for the request's variant of the Vary names last seen (known), so that
 * every worker's visitors of it wait for this fill. */
static struct cache_obj *
pending_new(struct shard *s, struct cache_lookup *l, const struct cache_obj *known)
{
    buf_reset(l->scratch);
    if (known != NULL && known->vary != NULL)
        cache_variant(l->req, known->vary, l->scratch);
    struct cache_obj *o = fill_alloc(l->base, l->base_len, l->hash, buf_head(l->scratch),
                                     buf_used(l->scratch));
    o->vary_known = known != NULL;
    o->vary = known && known->vary ? xstrdup(known->vary) : NULL;
    o->purge_gen = __atomic_load_n(&purge_gen, __ATOMIC_ACQUIRE);
    table_link(s, o);
    return o;
}

static void
lookup_locked(struct shard *s, struct cache_lookup *l)
{
    const char *names = NULL;
    bool computed = false;
    const struct cache_obj *known = NULL;
    struct cache_obj *o = s->nbuckets ? s->buckets[l->hash & (s->nbuckets - 1)] : NULL;
    struct cache_obj *o0 = NULL; /* the key's one entry, when it has one */
    l->entries = 0;
    for (; o != NULL; o = o->hash_next) {
        if (!same_base(o, l))
            continue;
        l->entries++;
        o0 = o;
        if (o->hit_for_miss) {
            l->marker = l->marker ? l->marker : o; /* for every variant: no Vary to match */
            continue;
        }
        enum cache_obj_state st = cache_obj_state(o);
        if (o->vary_known && known == NULL)
            known = o;
        if (!variant_matches(o, l, &names, &computed))
            continue;
        if (st == CACHE_OBJ_COMPLETE && l->stored == NULL)
            l->stored = o;
        else if (st != CACHE_OBJ_COMPLETE && l->busy == NULL)
            l->busy = o;
    }
    if (l->stored != NULL)
        cache_obj_acquire(l->stored);
    if (l->marker != NULL)
        cache_obj_acquire(l->marker);
    if (l->entries == 1)
        l->gen = o0->gen; /* stored, marker or busy: the key's only entry */
    if (l->busy != NULL)
        cache_obj_acquire(l->busy);
    else if (l->lead) {
        l->busy = pending_new(s, l, known); /* with the caller's reference */
        l->leading = true;
    }
}

/* The memo's entry for l, if it is still all a locked lookup would find: into l (stored or
 * marker, with a reference). */
static bool
near_find(struct cache_near *n, struct cache_lookup *l)
{
    size_t i = l->hash % CACHE_NEAR_SLOTS;
    struct cache_obj *o = n->slot[i].obj;
    if (o == NULL || !same_base(o, l) || __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE) != n->slot[i].gen)
        return false;
    if (o->hit_for_miss)
        l->marker = cache_obj_acquire(o);
    else
        l->stored = cache_obj_acquire(o);
    return true;
}

/* Remember l's answer when it was the key's only entry: a small stored object without
 * Vary, or a hit-for-miss marker (the URL's visitors go to the origin without a lock). */
static void
near_keep(struct cache_near *n, const struct cache_lookup *l)
{
    struct cache_obj *o = l->stored ? l->stored : l->marker;
    if (l->entries != 1 || l->busy != NULL || o == NULL ||
        (o == l->stored && (o->vary != NULL || o->charge > CACHE_NEAR_MAX_CHARGE)))
        return;
    size_t i = l->hash % CACHE_NEAR_SLOTS;
    cache_obj_release(&n->slot[i].obj);
    n->slot[i].obj = cache_obj_acquire(o);
    n->slot[i].gen = l->gen;
}

void
cache_near_sweep(struct cache_near *n)
{
    for (size_t i = 0; i < CACHE_NEAR_SLOTS; i++) {
        struct cache_obj *o = n->slot[i].obj;
        if (o != NULL && __atomic_load_n(&o->gen, __ATOMIC_ACQUIRE) != n->slot[i].gen)
            cache_obj_release(&n->slot[i].obj);
    }
}

void
cache_near_clear(struct cache_near *n)
{
    for (size_t i = 0; i < CACHE_NEAR_SLOTS; i++)
        cache_obj_release(&n->slot[i].obj);
}

void
cache_store_lookup(struct cache_lookup *l)
{
    struct shard *s = shard_of(l->hash);
    bool s3fifo = __atomic_load_n(&policy.policy, __ATOMIC_RELAXED) == CACHE_EVICT_S3FIFO;
    l->stored = l->busy = l->marker = NULL;
    l->leading = false;
    /* LRU moves the object in its queue under the policy lock on every hit: no memo */
    bool near = l->near != NULL && !l->lead && s3fifo;
    if (near && near_find(l->near, l)) {
        if (l->stored != NULL)
            cache_evict_touch(l->stored);
        return;
    }
    pthread_mutex_lock(&s->lock);
    lookup_locked(s, l);
    pthread_mutex_unlock(&s->lock);
    if (near)
        near_keep(l->near, l);
    if (l->stored == NULL)
        return;
    if (s3fifo) {
        cache_evict_touch(l->stored);
        return;
    }
    pthread_mutex_lock(&policy_lock);
    if (l->stored->queue != 0)
        cache_evict_hit_lru(&policy, l->stored);
    pthread_mutex_unlock(&policy_lock);
}

/* ---------------------------------------------------------------- wake-ups */

static void
notify(struct cache_obj *o)
{
    pthread_mutex_t *m = sub_lock(o);
    pthread_mutex_lock(m);
    struct cache_waiter *w = o->subs, *next;
    o->subs = NULL;
    for (; w != NULL; w = next) {
        next = w->next;
        w->subscribed = false;
        cache_waiter_post(w); /* under the object's lock: an unsubscribe cannot miss it */
    }
    pthread_mutex_unlock(m);
}

bool
cache_obj_subscribe(struct cache_obj *o, struct cache_waiter *w, enum cache_obj_state seen,
                    uint64_t have)
{
    pthread_mutex_t *m = sub_lock(o);
    bool subscribed = false;
    pthread_mutex_lock(m);
    if (!w->subscribed && cache_obj_state(o) == seen && cache_obj_available(o) <= have) {
        w->next = o->subs;
        o->subs = w;
        w->subscribed = subscribed = true;
        w->armed = true; /* the owner's thread: it alone subscribes w */
    }
    pthread_mutex_unlock(m);
    return subscribed || w->subscribed;
}

void
cache_obj_unsubscribe(struct cache_obj *o, struct cache_waiter *w)
{
    if (o != NULL) {
        pthread_mutex_t *m = sub_lock(o);
        pthread_mutex_lock(m);
        struct cache_waiter **pp = &o->subs;
        while (w->subscribed && *pp != NULL && *pp != w)
            pp = &(*pp)->next;
        if (w->subscribed && *pp == w) { /* subscribed to o, not to another object */
            *pp = w->next;
            w->subscribed = false;
        }
        pthread_mutex_unlock(m);
    }
    cache_waiter_cancel(w);
}

/* ---------------------------------------------------------------- the writer */

void
cache_obj_set_head(struct cache_obj *o, const struct cache_head *h)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", h->status,
                     http_status_reason(h->status));
    o->status = h->status;
    o->line_len = (size_t)n;
    o->head_len = (size_t)n + h->fields_len;
    o->head = xmalloc(o->head_len + 1);
    memcpy(o->head, line, (size_t)n);
    memcpy(o->head + n, h->fields, h->fields_len);
    o->head[o->head_len] = '\0';
    o->total_len = h->total_len;
    o->tags = h->tags ? xstrdup(h->tags) : NULL;
    o->auth_shared = h->auth_shared;
    o->response_time = h->response_time;
    o->initial_age = h->initial_age;
    o->lifetime = h->lifetime;
    o->stale_if_error = h->stale_if_error;
    o->stale_while_revalidate = h->stale_while_revalidate;
    /* The variant may change (the response names its Vary): under the shard lock, which
     * lookups hold while they compare keys. */
    size_t vlen = strlen(h->variant);
    char *key = xmalloc(o->base_len + vlen + 2), *old_key, *old_vary;
    memcpy(key, o->key, o->base_len + 1);
    memcpy(key + o->base_len + 1, h->variant, vlen + 1);
    struct shard *s = shard_of(o->hash);
    pthread_mutex_lock(&s->lock);
    old_key = o->key;
    old_vary = o->vary;
    o->key = key;
    o->vary = h->vary ? xstrdup(h->vary) : NULL;
    o->vary_known = true;
    __atomic_store_n(&o->state, CACHE_OBJ_FILLING, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    free(old_key);
    free(old_vary);
    if (o->total_len >= 0 && cache_obj_available(o) == (uint64_t)o->total_len)
        cache_obj_finish(o); /* nothing more to come: an empty body, or a shared one */
    else
        notify(o);
}

static struct cache_chunk *
chunk_new(const struct cache_obj *o, size_t need)
{
    size_t size;
    if (o->first == NULL && o->total_len > 0) {
        size = (size_t)o->total_len; /* the length is known: the body is one piece */
        struct cache_chunk *f = size >= FILE_CHUNK_MIN ? file_chunk_new(size) : NULL;
        if (f != NULL)
            return f;
    } else {
        size = MIN(MAX(o->last ? o->last->size * 2 : CHUNK_MIN, need), (size_t)CHUNK_MAX);
    }
    struct cache_chunk *c = malloc(sizeof(*c) + size); /* no memory: not stored, no abort */
    if (c != NULL)
        *c = (struct cache_chunk){.size = size, .data = (char *)(c + 1)};
    return c;
}

bool
cache_obj_append(struct cache_obj *o, const char *data, size_t len)
{
    uint64_t have = o->body_len; /* the writer's own: no atomic needed */
    size_t filled = (size_t)(have - o->last_off); /* bytes in the last piece */
    if (have + len > cache_store_max_object())
        return false;
    while (len > 0) {
        if (o->last == NULL || filled == o->last->size) {
            struct cache_chunk *c = chunk_new(o, len);
            if (c == NULL)
                return false;
            if (o->last != NULL)
                o->last->next = c;
            else
                o->first = c;
            o->last = c;
            o->last_off = have;
            filled = 0;
        }
        size_t n = MIN(len, o->last->size - filled);
        memcpy(o->last->data + filled, data, n);
        filled += n;
        data += n;
        len -= n;
        have += n;
    }
    __atomic_store_n(&o->body_len, have, __ATOMIC_RELEASE);
    if (o->total_len >= 0 && have == (uint64_t)o->total_len)
        cache_obj_finish(o);
    else
        notify(o);
    return true;
}

void
cache_obj_share_body(struct cache_obj *o, struct cache_obj *old)
{
    o->body_of = cache_obj_acquire(old->body_of ? old->body_of : old);
    o->total_len = (int64_t)cache_obj_available(old);
    __atomic_store_n(&o->body_len, cache_obj_available(old), __ATOMIC_RELEASE);
}

/* ---------------------------------------------------------------- storing (policy locked) */

/* Take a stored object (or marker) out: queue, table, totals. */
static void
drop_stored(struct shard *s, struct cache_obj *o)
{
    cache_evict_remove(&policy, o);
    totals_add(o, -1);
    table_unlink(s, o);
}

/* Objects o replaces: the stored one of its variant, and stored variants made under other
 * Vary names (the origin changed its Vary). */
static void
drop_replaced(struct shard *s, const struct cache_obj *o)
{
    struct cache_obj *x = s->buckets[o->hash & (s->nbuckets - 1)], *next;
    for (; x != NULL; x = next) {
        next = x->hash_next;
        if (x == o || !same_base_as(x, o) || cache_obj_state(x) != CACHE_OBJ_COMPLETE)
            continue;
        bool same_names = (x->vary == NULL) == (o->vary == NULL) &&
                          (x->vary == NULL || strcmp(x->vary, o->vary) == 0);
        if (!same_names || strcmp(x->key, o->key) == 0)
            drop_stored(s, x);
    }
}

/* Evict until room more bytes fit. held is the shard whose lock the caller has. */
static void
evict_until(uint64_t room, struct shard *held)
{
    while (used_bytes + room > limit_bytes) {
        struct cache_obj *v = cache_evict_victim(&policy);
        if (v == NULL)
            return;
        struct shard *vs = shard_of(v->hash);
        if (vs != held)
            pthread_mutex_lock(&vs->lock); /* policy lock held: no other multi-shard locker */
        totals_add(v, -1);
        table_unlink(vs, v);
        if (vs != held)
            pthread_mutex_unlock(&vs->lock);
    }
}

static bool
may_store(const struct cache_obj *o)
{
    if (o->hashed)
        return !o->purged;
    return o->insert_on_finish && o->purge_gen == __atomic_load_n(&purge_gen, __ATOMIC_ACQUIRE);
}

void
cache_obj_finish(struct cache_obj *o)
{
    uint64_t len = cache_obj_available(o);
    struct shard *s = shard_of(o->hash);
    if (cache_obj_state(o) >= CACHE_OBJ_COMPLETE)
        return; /* finished already (cache_obj_append, at the known length) */
    size_t klen = strlen(o->key);
    o->charge = (size_t)len + o->head_len + klen + STORE_OVERHEAD;
    o->full_hash = cache_key_hash(o->key, klen) | 1; /* the ghost queue's key; never 0 */
    pthread_mutex_lock(&policy_lock);
    pthread_mutex_lock(&s->lock);
    if (!may_store(o) || len > max_object || o->charge > limit_bytes) {
        if (o->hashed)
            table_unlink(s, o);
    } else {
        if (!o->hashed)
            table_link(s, o);
        drop_replaced(s, o);
        evict_until(o->charge, s);
        cache_evict_insert(&policy, o);
        totals_add(o, 1);
    }
    __atomic_store_n(&o->state, CACHE_OBJ_COMPLETE, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&policy_lock);
    __atomic_sub_fetch(&nfills, 1, __ATOMIC_RELAXED);
    notify(o);
}

/* Older markers of o's base (o is the new one). */
static void
drop_markers(struct shard *s, const struct cache_obj *o)
{
    struct cache_obj *x = s->buckets[o->hash & (s->nbuckets - 1)], *next;
    for (; x != NULL; x = next) {
        next = x->hash_next;
        if (x != o && x->hit_for_miss && same_base_as(x, o))
            drop_stored(s, x);
    }
}

void
cache_store_mark(const char *base, size_t base_len, uint64_t hash, time_t now, int64_t lifetime)
{
    struct cache_obj *o = obj_alloc(base, base_len, hash, "", 0);
    struct shard *s = shard_of(hash);
    size_t klen = base_len + 1;
    o->hit_for_miss = o->vary_known = true;
    o->state = CACHE_OBJ_COMPLETE;
    o->response_time = now;
    o->lifetime = lifetime;
    o->charge = klen + STORE_OVERHEAD;
    o->full_hash = cache_key_hash(o->key, klen) | 1;
    pthread_mutex_lock(&policy_lock);
    pthread_mutex_lock(&s->lock);
    table_link(s, o);
    drop_markers(s, o);
    evict_until(o->charge, s);
    cache_evict_insert(&policy, o);
    totals_add(o, 1);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&policy_lock);
    cache_obj_release(&o); /* the table keeps its own */
}

void
cache_obj_fail(struct cache_obj *o, enum cache_fail why, const void *info, size_t len)
{
    if (cache_obj_state(o) >= CACHE_OBJ_COMPLETE)
        return;
    if (info != NULL && len > 0) {
        o->fail_info = xmalloc(len);
        memcpy(o->fail_info, info, len);
        o->fail_info_len = len;
    }
    o->fail = why;
    struct shard *s = shard_of(o->hash);
    pthread_mutex_lock(&s->lock);
    if (o->hashed)
        table_unlink(s, o);
    __atomic_store_n(&o->state, CACHE_OBJ_FAILED, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    __atomic_sub_fetch(&nfills, 1, __ATOMIC_RELAXED);
    notify(o);
}

/* ---------------------------------------------------------------- readers */

int
cache_obj_iov(const struct cache_obj *o, uint64_t from, uint64_t to, struct iovec *iov, int max)
{
    uint64_t avail = cache_obj_available(o), off = 0;
    const struct cache_obj *b = o->body_of ? o->body_of : o;
    int n = 0;
    to = MIN(to, avail);
    if (from >= to)
        return 0;
    /* A piece's next is read only once bytes past the piece are published (acquire above). */
    for (const struct cache_chunk *c = b->first; c != NULL && n < max;) {
        uint64_t end = off + c->size;
        if (end > from) {
            uint64_t a = MAX(from, off) - off, z = MIN(to, end) - off;
            iov[n].iov_base = (char *)c->data + a;
            iov[n++].iov_len = (size_t)(z - a);
        }
        off = end;
        if (off >= to)
            break;
        c = c->next;
    }
    return n;
}

size_t
cache_obj_file(const struct cache_obj *o, uint64_t from, uint64_t to, int *fd, off_t *off)
{
    uint64_t at = 0;
    const struct cache_obj *b = o->body_of ? o->body_of : o;
    to = MIN(to, cache_obj_available(o));
    if (from >= to)
        return 0;
    for (const struct cache_chunk *c = b->first; c != NULL; c = c->next) {
        if (from < at + c->size) {
            if (c->file.slab == NULL)
                return 0;
            *fd = c->file.fd;
            *off = c->file.off + (off_t)(from - at);
            return (size_t)(MIN(to, at + c->size) - from);
        }
        at += c->size;
    }
    return 0;
}

size_t
cache_obj_copy(const struct cache_obj *o, uint64_t from, char *out, size_t outlen)
{
    struct iovec iov[64];
    size_t done = 0;
    while (done < outlen) {
        int n = cache_obj_iov(o, from + done, from + outlen, iov, (int)ARRAY_SIZE(iov));
        if (n == 0)
            break;
        for (int i = 0; i < n; i++) {
            memcpy(out + done, iov[i].iov_base, iov[i].iov_len);
            done += iov[i].iov_len;
        }
    }
    return done;
}

/* ---------------------------------------------------------------- purge */

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

/* One object under a purge; true when it counts (a stored object). */
static bool
purge_one(struct shard *s, struct cache_obj *o, bool soft)
{
    if (cache_obj_state(o) != CACHE_OBJ_COMPLETE) {
        o->purged = true; /* a fill that began before the purge: not stored */
        if (!soft)
            table_unlink(s, o);
        return false;
    }
    bool counts = !o->hit_for_miss;
    if (soft)
        __atomic_store_n(&o->lifetime, 0, __ATOMIC_RELAXED);
    else
        drop_stored(s, o);
    return counts;
}

static size_t
purge_shard(struct shard *s, const struct cache_purge *p)
{
    size_t n = 0;
    for (size_t b = 0; b < s->nbuckets; b++) {
        struct cache_obj *o = s->buckets[b], *next;
        for (; o != NULL; o = next) {
            next = o->hash_next;
            if (p == NULL || purge_matches(p, o))
                n += purge_one(s, o, p != NULL && p->soft);
        }
    }
    return n;
}

size_t
cache_store_purge(const struct cache_purge *p)
{
    size_t n = 0;
    pthread_mutex_lock(&policy_lock);
    __atomic_add_fetch(&purge_gen, 1, __ATOMIC_ACQ_REL);
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        n += purge_shard(&shards[i], p);
        pthread_mutex_unlock(&shards[i].lock);
    }
    pthread_mutex_unlock(&policy_lock);
    return n;
}

void
cache_store_clear(void)
{
    cache_store_purge(NULL);
    pthread_mutex_lock(&policy_lock);
    policy.evictions = 0;
    pthread_mutex_unlock(&policy_lock);
}

/* ---------------------------------------------------------------- configuration, stats */

void
cache_store_configure(uint64_t memory, uint64_t max_obj, enum cache_eviction which)
{
    pthread_mutex_lock(&policy_lock);
    limit_bytes = memory;
    __atomic_store_n(&max_object, max_obj, __ATOMIC_RELAXED);
    policy.limit = memory;
    if (policy.policy != which)
        cache_evict_switch(&policy, which);
    evict_until(0, NULL);
    pthread_mutex_unlock(&policy_lock);
}

void
cache_store_stats(struct cache_store_stats *st)
{
    st->objects = __atomic_load_n(&nobjects, __ATOMIC_RELAXED);
    st->bytes = __atomic_load_n(&used_bytes, __ATOMIC_RELAXED);
    st->evictions = __atomic_load_n(&policy.evictions, __ATOMIC_RELAXED);
    st->fills = __atomic_load_n(&nfills, __ATOMIC_RELAXED);
    st->markers = __atomic_load_n(&nmarkers, __ATOMIC_RELAXED);
}
