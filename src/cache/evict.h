/* evict.h - which stored object leaves when the store is full. Two policies:
 *
 * S3-FIFO (the default; Yang et al., SOSP 2023): new objects enter a small FIFO holding
 * ~10% of the bytes; an object reaching its end is moved to the main FIFO if it was hit
 * while there, else evicted and its hash remembered in a ghost queue. An object whose hash
 * is in the ghost queue goes straight to main. Main is a FIFO with reinsertion: an object
 * at its end with hits left is put back with one hit fewer. One-hit wonders leave from the
 * small queue and never push hot objects out. A hit only bumps a 2-bit counter with a
 * relaxed atomic store: no lock, no list move on the hit path.
 *
 * LRU: a list moved on every hit (the hit needs the policy lock), kept to compare.
 *
 * Every function but cache_evict_touch is called by store.c with its policy lock held. */
#ifndef VERGE_CACHE_EVICT_H
#define VERGE_CACHE_EVICT_H

#include "core/base.h"

struct cache_obj;

enum cache_eviction {
    CACHE_EVICT_S3FIFO,
    CACHE_EVICT_LRU,
};

/* A FIFO of objects linked through their q_prev / q_next; head is the newest. */
struct cache_queue {
    struct cache_obj *head, *tail;
    uint64_t bytes, count;
};

/* The ghost queue: hashes of objects recently evicted from the small queue, as many as
 * main can hold objects (its share of the bytes over the mean object), in an
 * open-addressing table where an entry expires by age. A static zeroed struct cache_evict
 * is a valid empty S3-FIFO policy; the store owns the only one. */
struct cache_ghost {
    uint64_t *keys, *stamps; /* stamp 0: empty slot */
    size_t size;             /* power of two */
    uint64_t clock;          /* stamp of the newest entry */
};

struct cache_evict {
    enum cache_eviction policy;
    uint64_t limit; /* the store's size in bytes: the small queue's share is 10% of it */
    struct cache_queue small, main; /* LRU uses main only */
    struct cache_ghost ghost;
    uint64_t evictions;
};

/* Change the policy: every object is queued again, oldest first, under the new one. */
void cache_evict_switch(struct cache_evict *e, enum cache_eviction policy);

/* o was stored (its charge is set): queue it. */
void cache_evict_insert(struct cache_evict *e, struct cache_obj *o);
/* o leaves the store for another reason (purge, replaced): unqueue it. */
void cache_evict_remove(struct cache_evict *e, struct cache_obj *o);
/* A hit on a queued object, LRU: move it to the head. (S3-FIFO uses cache_evict_touch.) */
void cache_evict_hit_lru(struct cache_evict *e, struct cache_obj *o);
/* The next object to evict, already unqueued; NULL when nothing is queued. */
struct cache_obj *cache_evict_victim(struct cache_evict *e);

/* A hit, S3-FIFO: count it (0..3). Any thread, no lock. */
void cache_evict_touch(struct cache_obj *o);

#endif
