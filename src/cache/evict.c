/* evict.c - S3-FIFO (small, main and ghost queues) and LRU over objects' queue links. */
#include "cache/evict.h"

#include "cache/store.h"

#define Q_NONE 0
#define Q_SMALL 1
#define Q_MAIN 2
#define FREQ_MAX 3
#define SMALL_SHARE 10     /* percent of the bytes for the small queue */
#define GHOST_PROBE 8      /* slots looked at per ghost lookup */
#define GHOST_MIN_SIZE 1024
#define GHOST_MAX (16u << 20) /* entries: 512 MiB of table at most */

/* ---------------------------------------------------------------- queues */

static void
queue_push(struct cache_queue *q, struct cache_obj *o, uint8_t which)
{
    o->q_prev = NULL;
    o->q_next = q->head;
    if (q->head != NULL)
        q->head->q_prev = o;
    q->head = o;
    if (q->tail == NULL)
        q->tail = o;
    q->bytes += o->charge;
    q->count++;
    o->queue = which;
}

static void
queue_unlink(struct cache_queue *q, struct cache_obj *o)
{
    if (o->q_prev != NULL)
        o->q_prev->q_next = o->q_next;
    else
        q->head = o->q_next;
    if (o->q_next != NULL)
        o->q_next->q_prev = o->q_prev;
    else
        q->tail = o->q_prev;
    o->q_prev = o->q_next = NULL;
    q->bytes -= o->charge;
    q->count--;
    o->queue = Q_NONE;
}

static struct cache_queue *
queue_of(struct cache_evict *e, const struct cache_obj *o)
{
    return o->queue == Q_SMALL ? &e->small : o->queue == Q_MAIN ? &e->main : NULL;
}

/* ---------------------------------------------------------------- the ghost queue */

/* As many entries as main can hold objects: its share of the bytes over the mean charge. */
static uint64_t
ghost_capacity(const struct cache_evict *e)
{
    uint64_t count = e->small.count + e->main.count, bytes = e->small.bytes + e->main.bytes;
    uint64_t mean = count > 0 ? MAX(bytes / count, (uint64_t)1) : 4096;
    uint64_t n = e->limit / 100 * (100 - SMALL_SHARE) / mean;
    return MIN(MAX(n, (uint64_t)1), (uint64_t)GHOST_MAX);
}

static bool
ghost_live(const struct cache_evict *e, size_t slot)
{
    const struct cache_ghost *g = &e->ghost;
    return g->stamps[slot] != 0 && g->clock - g->stamps[slot] < ghost_capacity(e);
}

static void ghost_put(struct cache_evict *e, uint64_t key, uint64_t stamp);

/* Keep the table at least twice the capacity, so that probing finds room. */
static void
ghost_fit(struct cache_evict *e)
{
    struct cache_ghost *g = &e->ghost;
    size_t want = GHOST_MIN_SIZE;
    while (want < ghost_capacity(e) * 2)
        want *= 2;
    if (g->size >= want)
        return;
    struct cache_ghost old = *g;
    g->keys = xcalloc(want, sizeof(*g->keys));
    g->stamps = xcalloc(want, sizeof(*g->stamps));
    g->size = want;
    for (size_t i = 0; i < old.size; i++)
        if (old.stamps[i] != 0 && old.clock - old.stamps[i] < ghost_capacity(e))
            ghost_put(e, old.keys[i], old.stamps[i]);
    free(old.keys);
    free(old.stamps);
}

/* Into the first free or expired slot of the probe window, else over the oldest. */
static void
ghost_put(struct cache_evict *e, uint64_t key, uint64_t stamp)
{
    struct cache_ghost *g = &e->ghost;
    size_t best = key & (g->size - 1);
    for (size_t i = 0; i < GHOST_PROBE; i++) {
        size_t slot = (key + i) & (g->size - 1);
        if (!ghost_live(e, slot)) {
            best = slot;
            break;
        }
        if (g->stamps[slot] < g->stamps[best])
            best = slot;
    }
    g->keys[best] = key;
    g->stamps[best] = stamp;
}

static void
ghost_add(struct cache_evict *e, uint64_t key)
{
    ghost_fit(e);
    ghost_put(e, key, ++e->ghost.clock);
}

/* Was key evicted from the small queue recently? The entry is consumed. */
static bool
ghost_take(struct cache_evict *e, uint64_t key)
{
    struct cache_ghost *g = &e->ghost;
    for (size_t i = 0; g->size > 0 && i < GHOST_PROBE; i++) {
        size_t slot = (key + i) & (g->size - 1);
        if (g->keys[slot] == key && ghost_live(e, slot)) {
            g->stamps[slot] = 0;
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- the policies */

void
cache_evict_touch(struct cache_obj *o)
{
    uint8_t f = __atomic_load_n(&o->freq, __ATOMIC_RELAXED);
    if (f < FREQ_MAX)
        __atomic_store_n(&o->freq, (uint8_t)(f + 1), __ATOMIC_RELAXED);
}

void
cache_evict_insert(struct cache_evict *e, struct cache_obj *o)
{
    o->freq = 0;
    if (e->policy == CACHE_EVICT_LRU || ghost_take(e, o->full_hash))
        queue_push(&e->main, o, Q_MAIN);
    else
        queue_push(&e->small, o, Q_SMALL);
}

void
cache_evict_remove(struct cache_evict *e, struct cache_obj *o)
{
    struct cache_queue *q = queue_of(e, o);
    if (q != NULL)
        queue_unlink(q, o);
}

void
cache_evict_hit_lru(struct cache_evict *e, struct cache_obj *o)
{
    if (o->queue != Q_MAIN)
        return;
    queue_unlink(&e->main, o);
    queue_push(&e->main, o, Q_MAIN);
}

/* S3-FIFO: the small queue's end goes to main if it was hit, else out (into the ghost);
 * main's end goes back to main's head while it has hits left, else out. */
static struct cache_obj *
victim_s3fifo(struct cache_evict *e)
{
    for (;;) {
        bool from_small = e->small.tail != NULL &&
                          (e->small.bytes * 100 >= e->limit * SMALL_SHARE || e->main.tail == NULL);
        struct cache_queue *q = from_small ? &e->small : &e->main;
        struct cache_obj *t = q->tail;
        if (t == NULL)
            return NULL;
        queue_unlink(q, t);
        uint8_t f = __atomic_load_n(&t->freq, __ATOMIC_RELAXED);
        if (f > 0) {
            __atomic_store_n(&t->freq, (uint8_t)(from_small ? 0 : f - 1), __ATOMIC_RELAXED);
            queue_push(&e->main, t, Q_MAIN);
            continue;
        }
        if (from_small)
            ghost_add(e, t->full_hash);
        return t;
    }
}

struct cache_obj *
cache_evict_victim(struct cache_evict *e)
{
    struct cache_obj *v;
    if (e->policy == CACHE_EVICT_LRU) {
        v = e->main.tail;
        if (v != NULL)
            queue_unlink(&e->main, v);
    } else {
        v = victim_s3fifo(e);
    }
    if (v != NULL)
        __atomic_add_fetch(&e->evictions, 1, __ATOMIC_RELAXED); /* read by the stats */
    return v;
}

void
cache_evict_switch(struct cache_evict *e, enum cache_eviction policy)
{
    struct cache_queue all = {0};
    struct cache_queue *from[2] = {&e->main, &e->small};
    for (int i = 0; i < 2; i++)
        while (from[i]->tail != NULL) { /* oldest first: it ends up at all's tail */
            struct cache_obj *o = from[i]->tail;
            queue_unlink(from[i], o);
            queue_push(&all, o, Q_NONE);
        }
    __atomic_store_n(&e->policy, policy, __ATOMIC_RELAXED);
    while (all.tail != NULL) {
        struct cache_obj *o = all.tail;
        queue_unlink(&all, o);
        queue_push(&e->main, o, Q_MAIN);
    }
}
