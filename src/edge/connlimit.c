/* connlimit.c - one table of open visitor connections per client address, shared by the
 * workers under a mutex (taken once per accept and once per close). */
#include "edge/connlimit.h"

#include <netinet/in.h>
#include <pthread.h>

#define CONN_LIMIT_BUCKETS 4096

struct client_count {
    struct client_count *next;
    uint8_t key[16];
    uint64_t open;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct client_count *buckets[CONN_LIMIT_BUCKETS];
static uint64_t total_open;
static uint64_t auto_total;

void
conn_limit_set_auto(uint64_t max_total)
{
    __atomic_store_n(&auto_total, max_total, __ATOMIC_RELAXED);
}

uint64_t
conn_limit_auto(void)
{
    return __atomic_load_n(&auto_total, __ATOMIC_RELAXED);
}

/* The address a client is counted under: IPv4 (also IPv4-mapped IPv6) as ::ffff:a.b.c.d,
 * IPv6 cut to its /64. */
static void
client_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return;
    }
    if (sa->sa_family != AF_INET6)
        return;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(key, a, memcmp(a, mapped, 12) == 0 ? 16 : 8);
}

static size_t
bucket_of(const uint8_t key[16])
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    return (size_t)(h % CONN_LIMIT_BUCKETS);
}

static struct client_count **
find(const uint8_t key[16])
{
    struct client_count **pp = &buckets[bucket_of(key)];
    while (*pp != NULL && memcmp((*pp)->key, key, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

enum conn_limit_result
conn_limit_acquire(const struct sockaddr *peer, uint64_t max_total, uint64_t max_per_client)
{
    uint8_t key[16];
    enum conn_limit_result rc = CONN_LIMIT_OK;
    client_key(peer, key);
    if (max_total == 0)
        max_total = conn_limit_auto();
    pthread_mutex_lock(&lock);
    struct client_count **pp = find(key);
    if (max_total > 0 && total_open >= max_total) {
        rc = CONN_LIMIT_TOTAL;
    } else if (max_per_client > 0 && *pp != NULL && (*pp)->open >= max_per_client) {
        rc = CONN_LIMIT_PER_CLIENT;
    } else {
        if (*pp == NULL) {
            *pp = xcalloc(1, sizeof(**pp));
            memcpy((*pp)->key, key, 16);
        }
        (*pp)->open++;
        total_open++;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void
conn_limit_release(const struct sockaddr *peer)
{
    uint8_t key[16];
    client_key(peer, key);
    pthread_mutex_lock(&lock);
    struct client_count **pp = find(key), *c = *pp;
    if (c != NULL) {
        total_open--;
        if (--c->open == 0) {
            *pp = c->next;
            free(c);
        }
    }
    pthread_mutex_unlock(&lock);
}

uint64_t
conn_limit_open(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = total_open;
    pthread_mutex_unlock(&lock);
    return n;
}
