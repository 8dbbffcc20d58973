/* store.h - the memory store shared by all workers: objects by key and Vary variant,
 * bounded by cache.memory with S3-FIFO or LRU eviction (evict.h), reference counted so a
 * worker can send an object while another replaces or evicts it.
 *
 * Concurrency: the table is split into CACHE_SHARDS shards, each with its own lock held
 * only for a chain walk; a hit takes one shard lock and no other (under LRU also the policy
 * lock, to move the object). Inserting, evicting and purging take the policy lock first,
 * then shard locks. Body bytes are never read under a lock: a writer appends, then
 * publishes the new length with a release store; readers load it with acquire.
 *
 * An object is in the store from the moment its fetch starts ("pending"), so that every
 * worker's visitors of it find the fetch in flight and wait for it instead of asking the
 * origin again; then "filling" (the response head is known, the body arriving: visitors
 * read what is there and follow); then "complete" (counted against cache.memory and
 * queued for eviction) or "failed" (taken out; the reason says what waiters should do).
 *
 * Beside objects the table holds markers (hit-for-miss, as Varnish calls it): "the
 * response under this key may not be stored", for a while. While one is fresh, lookups
 * of its key make no pending entry, so its visitors go to the origin at once, each on its
 * own, none waiting behind another's fetch; the first response that may be stored
 * replaces it. */
#ifndef VERGE_CACHE_STORE_H
#define VERGE_CACHE_STORE_H

#include "cache/evict.h"
#include "cache/notify.h"
#include "cache/slab.h"
#include "core/buf.h"
#include "http/msg.h"

#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/* Between the base key (which holds newlines) and the variant. */
#define CACHE_VARIANT_SEP '\x01'
#define CACHE_SHARDS 64

enum cache_obj_state {
    CACHE_OBJ_PENDING,  /* in the store, no response head yet */
    CACHE_OBJ_FILLING,  /* head known (fields below are set), body arriving */
    CACHE_OBJ_COMPLETE, /* the whole response is here (stored, or too big to keep) */
    CACHE_OBJ_FAILED,   /* the fill ended without a whole response: see fail */
};

/* Why a fill failed, so each waiter knows what to do. */
enum cache_fail {
    CACHE_FAIL_NONE,
    CACHE_FAIL_NOT_STORED, /* the response may not be stored: fetch on your own */
    CACHE_FAIL_ERROR,      /* the origin failed before a head: fail_info holds the error */
    CACHE_FAIL_5XX,        /* the origin answered 500/502/503/504 and its visitor got a stale
                            * copy instead: use yours, or fetch on your own */
    CACHE_FAIL_INCOMPLETE, /* the body was cut (origin, cache.max_object, memory) */
};

/* A piece of a body; pieces never move once written. */
struct cache_chunk {
    struct cache_chunk *next;
    size_t size; /* bytes at data */
    char *data;  /* after the struct, or file.data */
    struct cache_slab_piece file; /* a block of a memfd holding the piece (sendfile), or
                                   * file.slab NULL */
};

struct cache_obj {
    /* What every lookup reads, together in the first 64 bytes (a hit walks a chain of
     * these, cold when the cache holds many). Not aligned to a cache line: malloc keeps the
     * object beside its key, head and body, allocated with it, which counted for more
     * (bench/README.md, make profile). */
    int refs;
    int state;     /* enum cache_obj_state; cache_obj_state() reads it with acquire */
    uint64_t hash; /* of the base key: the shard and the chain */
    char *key;     /* base key + CACHE_VARIANT_SEP + variant (the request's Vary values) */
    size_t base_len;
    struct cache_obj *hash_next;
    char *vary;    /* the response's Vary names, lower case, "," separated; or NULL */
    uint32_t gen;  /* bumped (under the shard lock) when a lookup of its key could find
                    * something else: it is unlinked, or an entry of its key is linked */
    uint8_t queue, freq; /* evict.c */
    bool vary_known;   /* false while pending with no stored variant to learn names from */
    bool hit_for_miss; /* a marker (cache_store_mark): no response, complete from the start */
    size_t charge;     /* bytes counted against cache.memory */
    /* What a hit's answer reads next. Set before the state becomes FILLING, immutable
     * after. */
    int status;
    bool auth_shared; /* may answer requests with Authorization (public, s-maxage, ...) */
    char *head;       /* "HTTP/1.1 200 OK\r\n" + the header fields a hit sends */
    size_t head_len;  /* the whole block */
    size_t line_len;  /* the status line: fields start at head + line_len */
    int64_t total_len; /* the body's length when known at head time (Content-Length), or -1 */
    time_t response_time;
    int64_t initial_age; /* corrected initial age (RFC 9111 4.2.3) when it arrived */
    int64_t lifetime;    /* freshness lifetime, seconds (a soft purge sets it to 0) */
    /* The body: appended by the one writer, read by anyone up to body_len. */
    uint64_t body_len;           /* bytes readable; cache_obj_available() loads it */
    struct cache_chunk *first, *last;
    uint64_t last_off;           /* the writer's: where the last piece starts */
    struct cache_obj *body_of;   /* a revalidated copy shares this object's body */
    int64_t stale_if_error;
    int64_t stale_while_revalidate;
    char *tags;       /* Cache-Tag / Surrogate-Key values, space separated; or NULL */
    /* Failure (state FAILED). */
    int fail;        /* enum cache_fail */
    void *fail_info; /* what the filler left for waiters (CACHE_FAIL_ERROR); owned */
    size_t fail_info_len;
    /* The store's bookkeeping. */
    struct cache_obj *q_prev, *q_next;
    bool hashed;         /* reachable through the table */
    bool purged;         /* a purge selected this fill while in progress: not stored */
    bool insert_on_finish; /* a fill nobody could find (no entry was made): stored at the end */
    uint64_t purge_gen;  /* the purge generation when the fill began */
    uint64_t full_hash;  /* of key, for the ghost queue */
    struct cache_waiter *subs; /* waiting for progress (under the object's lock) */
};

/* Size the store and pick the policy (every call updates them; objects above a smaller
 * limit are evicted on the next insert). */
void cache_store_configure(uint64_t memory, uint64_t max_object, enum cache_eviction policy);
uint64_t cache_store_max_object(void);
/* Drop every object (tests and benchmarks). */
void cache_store_clear(void);

/* The 64-bit hash used for keys (eight bytes a step, then mixed: splitmix64's finish). */
uint64_t cache_key_hash(const char *s, size_t len);

/* A worker's own memo of lookups whose whole answer was one small stored object or one
 * hit-for-miss marker (no other entry of its key): the next lookup of that key on the worker
 * checks the object's gen instead of taking the shard's lock, which every worker's hits of
 * a popular object would otherwise queue on. Each slot holds a reference; an object taken
 * out of the store is let go at the slot's next use or sweep. One thread only. */
#define CACHE_NEAR_SLOTS 256
#define CACHE_NEAR_MAX_CHARGE (64 * 1024) /* what a slot may keep alive past its removal */
struct cache_near {
    struct {
        struct cache_obj *obj;
        uint32_t gen;
    } slot[CACHE_NEAR_SLOTS];
};
/* Let go of the objects that are no longer what their key finds (a timer, each second). */
void cache_near_sweep(struct cache_near *n);
/* Let go of every object (the worker ends). */
void cache_near_clear(struct cache_near *n);

/* A lookup: the stored object and the fill in progress for this request's variant. */
struct cache_lookup {
    const char *base; /* base key (zone \n host \n target), base_len bytes */
    size_t base_len;
    uint64_t hash;               /* cache_key_hash(base) */
    const struct http_msg *req;  /* its Vary values choose the variant */
    struct buf *scratch;         /* for the variant; reused, so no allocation once grown */
    bool lead;                   /* when no fill is in progress, make one: the caller leads */
    struct cache_near *near;     /* the worker's memo, or NULL */
    /* Results, each with a reference (or NULL). */
    struct cache_obj *stored;    /* complete */
    struct cache_obj *busy;      /* pending or filling */
    struct cache_obj *marker;    /* the key's hit-for-miss marker (fresh or not) */
    bool leading;                /* busy was made by this call: fill it or fail it */
    int entries;                 /* of the key, seen under the lock (the memo keeps only 1) */
    uint32_t gen;                /* the key's one entry's, under the lock (entries == 1) */
};
void cache_store_lookup(struct cache_lookup *l);

/* Remember that the response under base (any variant) may not be stored, for lifetime
 * seconds from now: lookups report the marker (cache_lookup.marker; a caller that finds
 * it fresh does not lead a fill). It replaces an older marker of base; an object stored
 * under base replaces it (cache_obj_finish); a purge selecting base removes it (a soft one
 * ends its freshness). It is charged (its key) and evicted like an object, and counted
 * apart from them (cache_store_stats.markers). */
void cache_store_mark(const char *base, size_t base_len, uint64_t hash, time_t now,
                      int64_t lifetime);

/* A fill that is not in the table (its visitor could not wait for, or join, another): it
 * is stored when it finishes. */
struct cache_obj *cache_obj_new(const char *base, size_t base_len);

/* The response head of a fill, as fill.c derives it. Strings are copied. */
struct cache_head {
    int status;
    const char *fields; /* "Name: value\r\n"..., no framing fields */
    size_t fields_len;
    int64_t total_len;  /* -1 if unknown */
    const char *vary;   /* or NULL */
    const char *variant; /* the filler's request's values for vary ("" without) */
    const char *tags;   /* or NULL */
    bool auth_shared;
    time_t response_time;
    int64_t initial_age, lifetime, stale_if_error, stale_while_revalidate;
};
/* The writer sets the head: waiters are woken and may start reading. */
void cache_obj_set_head(struct cache_obj *o, const struct cache_head *h);
/* Append body bytes; false when the object may not grow (cache.max_object, or memory):
 * the caller then fails it. Wakes waiters. Once the length the head announced is reached,
 * the object is finished here (before anyone can have read its last byte, so a visitor
 * that saw the whole response finds it stored). */
bool cache_obj_append(struct cache_obj *o, const char *data, size_t len);
/* A revalidated copy: o takes old's body (shared, not copied) as complete. */
void cache_obj_share_body(struct cache_obj *o, struct cache_obj *old);
/* The body is complete: store o (a no-op when it is complete already) (replacing the object of its variant and variants of other
 * Vary names; evicting as needed; unless it is too big or a purge came since it began),
 * mark it complete and wake waiters. The writer keeps its reference. */
void cache_obj_finish(struct cache_obj *o);
/* The fill ended without a whole response: o leaves the table, waiters are woken. info
 * (len bytes, may be NULL) is copied for them. */
void cache_obj_fail(struct cache_obj *o, enum cache_fail why, const void *info, size_t len);

/* Readers. State with acquire; bytes readable now. */
static inline enum cache_obj_state
cache_obj_state(const struct cache_obj *o)
{
    return (enum cache_obj_state)__atomic_load_n(&o->state, __ATOMIC_ACQUIRE);
}
static inline uint64_t
cache_obj_available(const struct cache_obj *o)
{
    return __atomic_load_n(&o->body_len, __ATOMIC_ACQUIRE);
}
/* Pieces of the body from byte from up to byte to (exclusive, at most what is readable)
 * into iov (at most max); returns how many, 0 when there is nothing to read yet. */
int cache_obj_iov(const struct cache_obj *o, uint64_t from, uint64_t to, struct iovec *iov,
                  int max);
/* The file behind bytes [from, to) of the body, when the piece holding from is one (a
 * large body of known length is kept in a block of a memfd (slab.h), whose pages every
 * answer shares: sent
 * with sendfile, a visitor's copy is read from memory that stays cached, where a copy into
 * each response's socket buffers costs both sides). *fd and *off locate from; returns how
 * many bytes from on lie in that piece (at most to - from), 0 when none is a file. */
size_t cache_obj_file(const struct cache_obj *o, uint64_t from, uint64_t to, int *fd, off_t *off);
/* The readable body as one contiguous copy (tests, small objects): up to outlen bytes. */
size_t cache_obj_copy(const struct cache_obj *o, uint64_t from, char *out, size_t outlen);

/* Call w's callback (in w's worker) once o's state differs from seen_state or more than
 * have bytes are readable. false when that is already so: read now, nothing subscribed.
 * From w's owner thread only (it alone subscribes w: see cache_waiter.armed). */
bool cache_obj_subscribe(struct cache_obj *o, struct cache_waiter *w, enum cache_obj_state seen,
                         uint64_t have);
/* Stop waiting (the visitor left, or its lock timeout passed); also cancels a callback
 * already queued. Owner thread; harmless when not subscribed. */
void cache_obj_unsubscribe(struct cache_obj *o, struct cache_waiter *w);

/* What a purge selects: every object of zone (host NULL: any host) whose path equals path,
 * or starts with prefix, or carries tag; nothing set beyond zone: the whole zone. */
struct cache_purge {
    const char *zone, *host, *path, *prefix, *tag;
    bool soft; /* mark stale (stale-if-error still protects) instead of removing */
};
/* Apply it; returns how many objects it touched (markers it removes are not counted). It
 * has taken effect when it returns: fills in progress then are not stored (they finish
 * for their visitors). */
size_t cache_store_purge(const struct cache_purge *p);

struct cache_obj *cache_obj_acquire(struct cache_obj *obj);
void cache_obj_destroy(struct cache_obj *obj); /* the last reference went: cache_obj_release */
/* Drop *op's reference (NULL: nothing) and clear it. Inline: a hit releases several, most
 * of them NULL. */
static inline void
cache_obj_release(struct cache_obj **op)
{
    struct cache_obj *o = *op;
    *op = NULL;
    if (o != NULL && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0)
        cache_obj_destroy(o);
}

/* Its age now (seconds), and whether it is still fresh. A soft purge may end an object's
 * freshness at any time (its lifetime is read atomically). */
static inline int64_t
cache_obj_age(const struct cache_obj *o, time_t now)
{
    return o->initial_age + MAX((int64_t)0, (int64_t)(now - o->response_time));
}
static inline int64_t
cache_obj_lifetime(const struct cache_obj *o)
{
    return __atomic_load_n(&o->lifetime, __ATOMIC_RELAXED);
}
static inline bool
cache_obj_fresh(const struct cache_obj *o, time_t now)
{
    return cache_obj_lifetime(o) > cache_obj_age(o, now);
}
/* The stored header fields (after the status line). */
static inline const char *
cache_obj_fields(const struct cache_obj *o, size_t *len)
{
    *len = o->head_len - o->line_len;
    return o->head + o->line_len;
}

/* Counters for /metrics. */
struct cache_store_stats {
    uint64_t objects, bytes, evictions, fills;
    uint64_t markers; /* hit-for-miss markers held (cache_store_mark) */
};
void cache_store_stats(struct cache_store_stats *s);

#endif
