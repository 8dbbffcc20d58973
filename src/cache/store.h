/* store.h - the memory store shared by all workers: objects by key (and Vary variant),
 * bounded by cache.memory with least-recently-used eviction, reference counted so a
 * worker can send an object while another replaces or evicts it. Thread-safe. */
#ifndef VERGE_CACHE_STORE_H
#define VERGE_CACHE_STORE_H

#include "core/buf.h"
#include "http/msg.h"

#include <time.h>

/* Between the base key (which may hold newlines) and the variant. */
#define CACHE_VARIANT_SEP '\x01'

/* A stored response. Immutable once inserted; released with cache_obj_release. */
struct cache_obj {
    int refs;
    char *key;          /* base key + CACHE_VARIANT_SEP + variant (the request's Vary values) */
    int status;
    char *fields;       /* header fields to send ("Name: value\r\n"...), no framing fields */
    size_t fields_len;
    char *body;
    size_t body_len;
    char *vary;         /* the response's Vary field names, lower case, "," separated; or NULL */
    char *tags;         /* Cache-Tag / Surrogate-Key values, space separated; or NULL */
    time_t response_time;
    int64_t initial_age; /* corrected initial age (RFC 9111 4.2.3) when it arrived */
    int64_t lifetime;    /* freshness lifetime, seconds */
    int64_t stale_if_error;
    int64_t stale_while_revalidate;
    struct cache_obj *lru_prev, *lru_next, *hash_next;
    size_t charge;      /* bytes counted against cache.memory */
};

/* Size the store (first call wins; later calls update the limits). */
void cache_store_configure(uint64_t memory, uint64_t max_object);
uint64_t cache_store_max_object(void);

/* The Vary field names last stored for base_key (to build the variant), copied into out
 * ("" when none). false when nothing is stored under base_key. */
bool cache_store_vary(const char *base_key, char *out, size_t outlen);

/* The object for the full key (base + "\n" + variant), with a reference, or NULL. */
struct cache_obj *cache_store_get(const char *key);

/* Insert obj (taking the caller's reference), replacing an object with the same key.
 * Objects larger than max_object or that cannot fit are dropped. */
void cache_store_put(struct cache_obj *obj);

/* Remove the object with this key, if any. */
void cache_store_remove(const char *key);

/* What a purge selects: every object of zone (host NULL: any host) whose path equals path,
 * or starts with prefix, or carries tag; nothing set beyond zone: the whole zone. */
struct cache_purge {
    const char *zone, *host, *path, *prefix, *tag;
    bool soft; /* mark stale (stale-if-error still protects) instead of removing */
};
/* Apply it; returns how many objects it touched. It has taken effect when it returns. */
size_t cache_store_purge(const struct cache_purge *p);

struct cache_obj *cache_obj_acquire(struct cache_obj *obj);
void cache_obj_release(struct cache_obj **obj);

/* Its age now (seconds), and whether it is still fresh. A soft purge may end an object's
 * freshness at any time (its lifetime is read atomically). */
int64_t cache_obj_age(const struct cache_obj *obj, time_t now);
int64_t cache_obj_lifetime(const struct cache_obj *obj);
bool cache_obj_fresh(const struct cache_obj *obj, time_t now);

/* Counters for /metrics. */
void cache_store_stats(uint64_t *objects, uint64_t *bytes);

#endif
