/* test_evict.c - the eviction policies, through the real store: S3-FIFO keeps a hot object
 * through a flood of one-hit wonders where LRU loses it; the ghost queue lets an object
 * evicted too soon come back into the main queue; LRU keeps what was hit recently; a
 * policy change keeps every object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache/store.h"

#define OBJ_BYTES 1000
#define MEMORY (40 * 1024) /* about thirty objects */

static struct buf scratch;
static char body[OBJ_BYTES];

static struct cache_lookup
lookup(const char *key, bool lead)
{
    struct cache_lookup l = {.base = key, .base_len = strlen(key),
                             .hash = cache_key_hash(key, strlen(key)), .scratch = &scratch,
                             .lead = lead};
    cache_store_lookup(&l);
    return l;
}

/* A request for key, as cached_lookup makes it: true on a hit; on a miss the object is
 * fetched and stored. */
static bool
request(const char *key)
{
    struct cache_lookup l = lookup(key, false);
    bool hit = l.stored != NULL;
    if (!hit)
        l = lookup(key, true);
    if (l.leading) {
        struct cache_head h = {.status = 200, .fields = "", .total_len = OBJ_BYTES,
                               .variant = "", .response_time = time(NULL), .lifetime = 600};
        cache_obj_set_head(l.busy, &h);
        cache_obj_append(l.busy, body, sizeof(body));
    } else if (l.busy != NULL) {
        fail_msg("a fill left behind for %s", key);
    }
    cache_obj_release(&l.stored);
    cache_obj_release(&l.busy);
    return hit;
}

static bool
stored(const char *key)
{
    struct cache_lookup l = {.base = key, .base_len = strlen(key),
                             .hash = cache_key_hash(key, strlen(key)), .scratch = &scratch};
    cache_store_lookup(&l); /* counts as a hit: only call it at the end of a test */
    bool found = l.stored != NULL;
    cache_obj_release(&l.stored);
    return found;
}

/* A hot object, hit a few times, then a flood of objects asked for once each. */
static bool
hot_survives_one_hit_wonders(enum cache_eviction policy)
{
    char key[32];
    cache_store_configure(MEMORY, 1 << 20, policy);
    cache_store_clear();
    request("/hot");
    for (int i = 0; i < 3; i++)
        assert_true(request("/hot"));
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "/once/%d", i);
        assert_false(request(key));
    }
    return stored("/hot");
}

static void
test_s3fifo_a_one_hit_wonder_does_not_evict_a_hot_object(void **state)
{
    assert_true(hot_survives_one_hit_wonders(CACHE_EVICT_S3FIFO));
}

static void
test_lru_loses_the_hot_object_to_the_same_flood(void **state)
{
    assert_false(hot_survives_one_hit_wonders(CACHE_EVICT_LRU));
}

/* An object evicted from the small queue before its second request comes back through the
 * ghost queue into main, where a new flood does not reach it. */
static void
test_s3fifo_ghost_brings_an_evicted_object_back_to_main(void **state)
{
    char key[32];
    cache_store_configure(MEMORY, 1 << 20, CACHE_EVICT_S3FIFO);
    cache_store_clear();
    request("/again");
    for (int i = 0; i < 40; i++) { /* pushes it out of the small queue, unhit */
        snprintf(key, sizeof(key), "/a/%d", i);
        request(key);
    }
    assert_false(request("/again")); /* evicted: a miss, but its hash is in the ghost */
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "/b/%d", i);
        request(key);
    }
    assert_true(stored("/again")); /* it went to main, never hit since */
}

static void
test_lru_keeps_what_was_hit_recently(void **state)
{
    char key[32];
    cache_store_configure(MEMORY, 1 << 20, CACHE_EVICT_LRU);
    cache_store_clear();
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "/l/%d", i);
        request(key);
    }
    assert_true(request("/l/0")); /* the oldest becomes the newest */
    for (int i = 20; i < 35; i++) {
        snprintf(key, sizeof(key), "/l/%d", i);
        request(key);
    }
    assert_true(stored("/l/0"));
    assert_false(stored("/l/1"));
}

static void
test_changing_the_policy_keeps_the_objects(void **state)
{
    char key[32];
    cache_store_configure(MEMORY, 1 << 20, CACHE_EVICT_S3FIFO);
    cache_store_clear();
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "/k/%d", i);
        request(key);
    }
    cache_store_configure(MEMORY, 1 << 20, CACHE_EVICT_LRU);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "/k/%d", i);
        assert_true(stored(key));
    }
    struct cache_store_stats st;
    cache_store_stats(&st);
    assert_int_equal(st.objects, 10);
    cache_store_configure(MEMORY / 4, 1 << 20, CACHE_EVICT_S3FIFO); /* smaller: evicts */
    cache_store_stats(&st);
    assert_true(st.bytes <= MEMORY / 4);
    assert_true(st.objects < 10);
}

int
main(void)
{
    buf_init(&scratch, 1 << 16);
    memset(body, 'b', sizeof(body));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3fifo_a_one_hit_wonder_does_not_evict_a_hot_object),
        cmocka_unit_test(test_lru_loses_the_hot_object_to_the_same_flood),
        cmocka_unit_test(test_s3fifo_ghost_brings_an_evicted_object_back_to_main),
        cmocka_unit_test(test_lru_keeps_what_was_hit_recently),
        cmocka_unit_test(test_changing_the_policy_keeps_the_objects),
    };
    int rc = cmocka_run_group_tests_name("evict", tests, NULL, NULL);
    buf_free(&scratch);
    return rc;
}
