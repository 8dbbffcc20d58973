/* cache_policy.c - benchmark (not a test): the hit ratio of each eviction policy on a
 * skewed trace, through the real store (src/cache/store.c): every request is a lookup,
 * every miss a fill (head, body copied in, finish) that may evict.
 *
 * The trace: Zipf(0.9) popularity over DISTINCT objects (ranks shuffled, so popularity has
 * nothing to do with key order), each object with a fixed size drawn log-uniformly from
 * 256 B to 64 KiB, REQUESTS requests, a fixed seed (the same trace for every policy and
 * every run). The cache is sized at 10% of the working set (the bytes of all distinct
 * objects). Then: hits per second on a few hot objects from 1 and 2 threads, to show the
 * cost of the policy's lock on the hit path (LRU takes it to move the object; S3-FIFO does
 * not).
 *
 * Usage: build/bench/cache_policy [requests] [objects]   (make bench-cache) */
#include "cache/store.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#define DEFAULT_REQUESTS 2000000
#define DEFAULT_OBJECTS 200000
#define ZIPF_ALPHA 0.9
#define SEED 0x5eed5eed12345678ull
#define MIN_SIZE 256.0
#define MAX_SIZE 65536.0
#define HOT_KEYS 64
#define HIT_SECONDS 1.0

static uint64_t rng_state;

static uint64_t
rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}

struct trace {
    uint32_t *requests; /* object ids */
    uint32_t *sizes;    /* by object id */
    size_t nrequests, nobjects;
    uint64_t working_set;
};

/* Ranks by inverse CDF; rank r is object perm[r]. */
static void
trace_make(struct trace *t, size_t nrequests, size_t nobjects)
{
    double *cdf = xmalloc(nobjects * sizeof(*cdf)), sum = 0;
    uint32_t *perm = xmalloc(nobjects * sizeof(*perm));
    rng_state = SEED;
    for (size_t i = 0; i < nobjects; i++) {
        sum += 1.0 / pow((double)(i + 1), ZIPF_ALPHA);
        cdf[i] = sum;
        perm[i] = (uint32_t)i;
    }
    for (size_t i = nobjects - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = rng_next() % (i + 1);
        uint32_t x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    t->nrequests = nrequests;
    t->nobjects = nobjects;
    t->sizes = xmalloc(nobjects * sizeof(*t->sizes));
    t->working_set = 0;
    for (size_t i = 0; i < nobjects; i++) {
        t->sizes[i] = (uint32_t)exp(log(MIN_SIZE) + rng_unit() * (log(MAX_SIZE) - log(MIN_SIZE)));
        t->working_set += t->sizes[i];
    }
    t->requests = xmalloc(nrequests * sizeof(*t->requests));
    for (size_t i = 0; i < nrequests; i++) {
        double u = rng_unit() * sum;
        size_t lo = 0, hi = nobjects - 1;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        t->requests[i] = perm[lo];
    }
    free(cdf);
    free(perm);
}

static void
key_of(uint32_t id, char *out, size_t outlen)
{
    snprintf(out, outlen, "bench\nexample.com\n/objects/%u.bin", (unsigned)id);
}

/* One request through the store: true on a hit; a miss fills the object. */
static bool
request(struct buf *scratch, uint32_t id, uint32_t size, const char *body)
{
    char key[96];
    key_of(id, key, sizeof(key));
    struct cache_lookup l = {.base = key, .base_len = strlen(key),
                             .hash = cache_key_hash(key, strlen(key)), .scratch = scratch};
    cache_store_lookup(&l);
    bool hit = l.stored != NULL;
    if (!hit) {
        l.lead = true;
        cache_store_lookup(&l);
    }
    if (l.leading) {
        struct cache_head h = {.status = 200, .fields = "Content-Type: application/octet-stream\r\n",
                               .fields_len = 40, .total_len = size, .variant = "",
                               .response_time = time(NULL), .lifetime = 86400};
        cache_obj_set_head(l.busy, &h);
        if (!cache_obj_append(l.busy, body, size))
            cache_obj_fail(l.busy, CACHE_FAIL_INCOMPLETE, NULL, 0);
    }
    cache_obj_release(&l.stored);
    cache_obj_release(&l.busy);
    return hit;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
replay(const struct trace *t, enum cache_eviction policy, const char *name, const char *body)
{
    struct buf scratch;
    uint64_t hits = 0, hit_bytes = 0, bytes = 0;
    buf_init(&scratch, 1 << 16);
    cache_store_configure(t->working_set / 10, 1 << 20, policy);
    cache_store_clear();
    double start = now_s();
    for (size_t i = 0; i < t->nrequests; i++) {
        uint32_t id = t->requests[i];
        bool hit = request(&scratch, id, t->sizes[id], body);
        hits += hit;
        hit_bytes += hit ? t->sizes[id] : 0;
        bytes += t->sizes[id];
    }
    double secs = now_s() - start;
    struct cache_store_stats st;
    cache_store_stats(&st);
    printf("| %-7s | %6.2f%% | %6.2f%% | %9llu | %7llu | %6.2f |\n", name,
           100.0 * (double)hits / (double)t->nrequests, 100.0 * (double)hit_bytes / (double)bytes,
           (unsigned long long)st.evictions, (unsigned long long)st.objects, secs);
    cache_store_clear();
    buf_free(&scratch);
}

/* ---------------------------------------------------------------- the hit path */

struct hitter {
    pthread_t thread;
    uint64_t lookups;
};

static volatile bool hitting;

static void *
hit_loop(void *arg)
{
    struct hitter *h = arg;
    struct buf scratch;
    char key[96];
    buf_init(&scratch, 1 << 16);
    while (hitting) {
        for (uint32_t id = 0; id < HOT_KEYS; id++) {
            key_of(id, key, sizeof(key));
            struct cache_lookup l = {.base = key, .base_len = strlen(key),
                                     .hash = cache_key_hash(key, strlen(key)),
                                     .scratch = &scratch};
            cache_store_lookup(&l);
            cache_obj_release(&l.stored);
        }
        h->lookups += HOT_KEYS;
    }
    buf_free(&scratch);
    return NULL;
}

static double
hits_per_second(enum cache_eviction policy, int threads, const char *body)
{
    struct hitter h[2] = {{0}};
    struct buf scratch;
    buf_init(&scratch, 1 << 16);
    cache_store_configure(64 << 20, 1 << 20, policy);
    cache_store_clear();
    for (uint32_t id = 0; id < HOT_KEYS; id++)
        request(&scratch, id, 1024, body);
    hitting = true;
    double start = now_s();
    for (int i = 0; i < threads; i++)
        pthread_create(&h[i].thread, NULL, hit_loop, &h[i]);
    while (now_s() - start < HIT_SECONDS)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    hitting = false;
    uint64_t total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(h[i].thread, NULL);
        total += h[i].lookups;
    }
    double secs = now_s() - start;
    cache_store_clear();
    buf_free(&scratch);
    return (double)total / secs;
}

int
main(int argc, char **argv)
{
    size_t nrequests = argc > 1 ? strtoull(argv[1], NULL, 10) : DEFAULT_REQUESTS;
    size_t nobjects = argc > 2 ? strtoull(argv[2], NULL, 10) : DEFAULT_OBJECTS;
    static char body[(size_t)MAX_SIZE];
    struct trace t;
    memset(body, 'v', sizeof(body));
    if (nrequests == 0 || nobjects < 2) {
        fprintf(stderr, "usage: %s [requests] [objects]: both positive, objects > 1\n", argv[0]);
        return 2;
    }
    trace_make(&t, nrequests, nobjects);
    printf("Zipf(%.1f), %zu requests over %zu objects of 256 B..64 KiB (log-uniform), seed "
           "%llx;\nworking set %.1f MiB, cache.memory %.1f MiB (10%%), through src/cache/store.c\n\n",
           ZIPF_ALPHA, nrequests, nobjects, (unsigned long long)SEED,
           (double)t.working_set / 1048576.0, (double)(t.working_set / 10) / 1048576.0);
    printf("| policy  | hits    | bytes   | evictions | objects | secs   |\n"
           "|---------|---------|---------|-----------|---------|--------|\n");
    replay(&t, CACHE_EVICT_S3FIFO, "s3fifo", body);
    replay(&t, CACHE_EVICT_LRU, "lru", body);
    printf("\nHit path: lookups per second of %d hot objects (1 KiB), same run\n\n"
           "| policy  | 1 thread   | 2 threads  | 2 / 1 |\n"
           "|---------|------------|------------|-------|\n", HOT_KEYS);
    enum cache_eviction policies[2] = {CACHE_EVICT_S3FIFO, CACHE_EVICT_LRU};
    const char *names[2] = {"s3fifo", "lru"};
    for (int p = 0; p < 2; p++) {
        double one = hits_per_second(policies[p], 1, body);
        double two = hits_per_second(policies[p], 2, body);
        printf("| %-7s | %10.0f | %10.0f | %5.2f |\n", names[p], one, two, two / one);
    }
    free(t.requests);
    free(t.sizes);
    return 0;
}
