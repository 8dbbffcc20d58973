/* test_store.c - the shared store: one fill per object across workers, bodies in pieces
 * read while they grow, variants, wake-ups in another thread's notifier, failure, purge,
 * and the memory bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache/store.h"
#include "parse_head.h"

#include <pthread.h>

static struct buf scratch;

static const struct http_msg *
parse_request(struct http_parser *p, const char *text)
{
    return parse_head(p, HTTP_REQUEST, text);
}

static struct cache_lookup
lookup(const char *base, const struct http_msg *req, bool lead)
{
    struct cache_lookup l = {.base = base, .base_len = strlen(base),
                             .hash = cache_key_hash(base, strlen(base)), .req = req,
                             .scratch = &scratch, .lead = lead};
    cache_store_lookup(&l);
    return l;
}

static void
set_head(struct cache_obj *o, int64_t total, const char *vary, const char *variant)
{
    struct cache_head h = {
        .status = 200,
        .fields = "Content-Type: text/plain\r\n",
        .fields_len = 26,
        .total_len = total,
        .vary = vary,
        .variant = variant,
        .response_time = time(NULL),
        .lifetime = 60,
    };
    cache_obj_set_head(o, &h);
}

/* What a fetch does: lead, head, body, finish. */
static void
store_object(const char *base, const char *body, const char *vary, const char *variant,
             const struct http_msg *req)
{
    struct cache_lookup l = lookup(base, req, true);
    assert_non_null(l.busy);
    assert_true(l.leading);
    set_head(l.busy, -1, vary, variant);
    assert_true(cache_obj_append(l.busy, body, strlen(body)));
    cache_obj_finish(l.busy);
    cache_obj_release(&l.busy);
    cache_obj_release(&l.stored);
    cache_obj_release(&l.marker);
}

static void
body_is(const struct cache_obj *o, const char *want)
{
    char got[256];
    size_t n = cache_obj_copy(o, 0, got, sizeof(got));
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
}

static int
setup(void **state)
{
    cache_store_configure(64 << 20, 1 << 20, CACHE_EVICT_S3FIFO);
    cache_store_clear();
    return 0;
}

static void
test_a_stored_object_is_found_with_its_head_and_body(void **state)
{
    store_object("z\nh\n/a", "hello", NULL, "", NULL);
    struct cache_lookup l = lookup("z\nh\n/a", NULL, false);
    assert_non_null(l.stored);
    assert_null(l.busy);
    assert_int_equal(cache_obj_state(l.stored), CACHE_OBJ_COMPLETE);
    assert_int_equal(l.stored->status, 200);
    assert_memory_equal(l.stored->head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n",
                        l.stored->head_len);
    body_is(l.stored, "hello");
    cache_obj_release(&l.stored);
    assert_null(l.stored);
    l = lookup("z\nh\n/b", NULL, false);
    assert_null(l.stored);
    assert_null(l.busy);
    struct cache_store_stats st;
    cache_store_stats(&st);
    assert_int_equal(st.objects, 1);
    assert_int_equal(st.fills, 0);
}

/* Every worker looking the object up while it is fetched finds that one fill. */
static void
test_one_fill_per_object_however_many_look(void **state)
{
    struct cache_lookup first = lookup("z\nh\n/f", NULL, true);
    assert_true(first.leading);
    for (int i = 0; i < 3; i++) {
        struct cache_lookup again = lookup("z\nh\n/f", NULL, true);
        assert_false(again.leading);
        assert_ptr_equal(again.busy, first.busy);
        assert_int_equal(cache_obj_state(again.busy), CACHE_OBJ_PENDING);
        cache_obj_release(&again.busy);
    }
    cache_obj_fail(first.busy, CACHE_FAIL_NOT_STORED, NULL, 0);
    assert_int_equal(cache_obj_state(first.busy), CACHE_OBJ_FAILED);
    cache_obj_release(&first.busy);
    struct cache_lookup after = lookup("z\nh\n/f", NULL, true);
    assert_true(after.leading); /* the failed fill left: the next visitor fetches */
    cache_obj_fail(after.busy, CACHE_FAIL_NOT_STORED, NULL, 0);
    cache_obj_release(&after.busy);
}

/* A body read while it grows, in pieces that never move. */
static void
test_a_growing_body_is_read_up_to_what_arrived(void **state)
{
    static char big[300000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    struct cache_lookup l = lookup("z\nh\n/big", NULL, true);
    struct cache_obj *o = l.busy;
    set_head(o, -1, NULL, "");
    struct iovec iov[64];
    assert_int_equal(cache_obj_iov(o, 0, UINT64_MAX, iov, 64), 0);
    for (size_t off = 0; off < sizeof(big); off += 7000) {
        size_t n = off + 7000 > sizeof(big) ? sizeof(big) - off : 7000;
        assert_true(cache_obj_append(o, big + off, n));
        assert_int_equal(cache_obj_available(o), off + n);
    }
    int n = cache_obj_iov(o, 1000, sizeof(big), iov, 64);
    assert_true(n > 1); /* several pieces */
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        assert_memory_equal(iov[i].iov_base, big + 1000 + total, iov[i].iov_len);
        total += iov[i].iov_len;
    }
    assert_int_equal(total, sizeof(big) - 1000);
    cache_obj_finish(o);
    assert_int_equal(cache_obj_state(o), CACHE_OBJ_COMPLETE);
    cache_obj_release(&o);
}

/* A known length is one piece, and reaching it completes the object. */
static void
test_a_known_length_completes_the_object_when_reached(void **state)
{
    struct cache_lookup l = lookup("z\nh\n/cl", NULL, true);
    set_head(l.busy, 10, NULL, "");
    assert_true(cache_obj_append(l.busy, "01234", 5));
    assert_int_equal(cache_obj_state(l.busy), CACHE_OBJ_FILLING);
    assert_true(cache_obj_append(l.busy, "56789", 5));
    assert_int_equal(cache_obj_state(l.busy), CACHE_OBJ_COMPLETE);
    struct iovec iov[4];
    assert_int_equal(cache_obj_iov(l.busy, 0, 10, iov, 4), 1);
    cache_obj_finish(l.busy); /* a second finish does nothing */
    cache_obj_release(&l.busy);
    l = lookup("z\nh\n/cl", NULL, false);
    body_is(l.stored, "0123456789");
    cache_obj_release(&l.stored);
}

static void
test_cache_max_object_stops_a_growing_fill(void **state)
{
    cache_store_configure(64 << 20, 8, CACHE_EVICT_S3FIFO);
    struct cache_lookup l = lookup("z\nh\n/max", NULL, true);
    set_head(l.busy, -1, NULL, "");
    assert_true(cache_obj_append(l.busy, "12345678", 8));
    assert_false(cache_obj_append(l.busy, "9", 1));
    cache_obj_fail(l.busy, CACHE_FAIL_INCOMPLETE, NULL, 0);
    cache_obj_release(&l.busy);
    l = lookup("z\nh\n/max", NULL, false);
    assert_null(l.stored);
    assert_null(l.busy);
}

/* Vary: one object per variant; a response with other Vary names replaces them all. */
static void
test_variants_by_vary_values(void **state)
{
    struct http_parser gz, id;
    const struct http_msg *g = parse_request(&gz, "GET /v HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
    const struct http_msg *i = parse_request(&id, "GET /v HTTP/1.1\r\nAccept-Encoding: br\r\n\r\n");
    store_object("z\nh\n/v", "gzipped", "accept-encoding", "accept-encoding=gzip;\n", g);
    struct cache_lookup l = lookup("z\nh\n/v", i, true);
    assert_null(l.stored); /* br is another variant: fetched */
    assert_true(l.leading);
    set_head(l.busy, -1, "accept-encoding", "accept-encoding=br;\n");
    cache_obj_append(l.busy, "brotli", 6);
    cache_obj_finish(l.busy);
    cache_obj_release(&l.busy);
    l = lookup("z\nh\n/v", g, false);
    body_is(l.stored, "gzipped");
    cache_obj_release(&l.stored);
    l = lookup("z\nh\n/v", i, false);
    body_is(l.stored, "brotli");
    cache_obj_release(&l.stored);
    store_object("z\nh\n/v", "plain", NULL, "", g); /* the origin dropped its Vary */
    l = lookup("z\nh\n/v", g, false);
    body_is(l.stored, "plain");
    cache_obj_release(&l.stored);
    struct cache_store_stats st;
    cache_store_stats(&st);
    assert_int_equal(st.objects, 1);
    http_parser_free(&gz);
    http_parser_free(&id);
}

/* ---------------------------------------------------------------- wake-ups */

static int woken;

static void
on_wake(struct cache_waiter *w)
{
    woken++;
}

struct filler {
    struct cache_obj *o;
};

static void *
fill_in_another_thread(void *arg)
{
    struct filler *f = arg;
    set_head(f->o, 3, NULL, "");
    cache_obj_append(f->o, "abc", 3);
    return NULL;
}

/* A waiter in one thread is woken by a fill in another, through its notifier. */
static void
test_waiters_are_woken_in_their_own_thread(void **state)
{
    struct loop *loop = loop_new();
    struct cache_notifier n;
    struct cache_waiter w;
    cache_notifier_init(&n, loop);
    cache_waiter_init(&w, &n, on_wake);
    struct cache_lookup l = lookup("z\nh\n/w", NULL, true);
    assert_true(cache_obj_subscribe(l.busy, &w, CACHE_OBJ_PENDING, 0));
    woken = 0;
    pthread_t t;
    struct filler f = {l.busy};
    pthread_create(&t, NULL, fill_in_another_thread, &f);
    pthread_join(t, NULL);
    assert_int_equal(woken, 0); /* nothing runs in the filler's thread */
    cache_notifier_run(&n);
    assert_int_equal(woken, 1);
    assert_int_equal(cache_obj_state(l.busy), CACHE_OBJ_COMPLETE);
    /* already moved past what the waiter saw: it reads now instead of subscribing */
    assert_false(cache_obj_subscribe(l.busy, &w, CACHE_OBJ_FILLING, 0));
    cache_obj_release(&l.busy);
    cache_notifier_destroy(&n);
    loop_free(&loop);
}

static void
test_unsubscribing_cancels_a_queued_wake_up(void **state)
{
    struct loop *loop = loop_new();
    struct cache_notifier n;
    struct cache_waiter w;
    cache_notifier_init(&n, loop);
    cache_waiter_init(&w, &n, on_wake);
    struct cache_lookup l = lookup("z\nh\n/u", NULL, true);
    assert_true(cache_obj_subscribe(l.busy, &w, CACHE_OBJ_PENDING, 0));
    set_head(l.busy, -1, NULL, ""); /* queues w */
    cache_obj_unsubscribe(l.busy, &w);
    woken = 0;
    cache_notifier_run(&n);
    assert_int_equal(woken, 0);
    cache_obj_fail(l.busy, CACHE_FAIL_INCOMPLETE, NULL, 0);
    cache_obj_release(&l.busy);
    cache_notifier_destroy(&n);
    loop_free(&loop);
}

static void
test_a_failure_carries_its_reason_to_waiters(void **state)
{
    struct cache_lookup l = lookup("z\nh\n/e", NULL, true);
    struct cache_lookup w = lookup("z\nh\n/e", NULL, true);
    cache_obj_fail(l.busy, CACHE_FAIL_ERROR, "why", 4);
    assert_int_equal(cache_obj_state(w.busy), CACHE_OBJ_FAILED);
    assert_int_equal(w.busy->fail, CACHE_FAIL_ERROR);
    assert_string_equal(w.busy->fail_info, "why");
    cache_obj_release(&l.busy);
    cache_obj_release(&w.busy);
}

/* ---------------------------------------------------------------- purge and memory */

static void
test_purge_hard_soft_and_fills_in_progress(void **state)
{
    store_object("z\nh\n/p/1", "one", NULL, "", NULL);
    store_object("z\nh\n/p/2", "two", NULL, "", NULL);
    store_object("y\nh\n/p/1", "other zone", NULL, "", NULL);
    struct cache_lookup fill = lookup("z\nh\n/p/3", NULL, true);
    struct cache_purge soft = {.zone = "z", .path = "/p/1", .soft = true};
    assert_int_equal(cache_store_purge(&soft), 1);
    struct cache_lookup l = lookup("z\nh\n/p/1", NULL, false);
    assert_false(cache_obj_fresh(l.stored, time(NULL))); /* kept, stale */
    cache_obj_release(&l.stored);
    struct cache_purge prefix = {.zone = "z", .prefix = "/p/"};
    assert_int_equal(cache_store_purge(&prefix), 2);
    l = lookup("y\nh\n/p/1", NULL, false);
    assert_non_null(l.stored);
    cache_obj_release(&l.stored);
    set_head(fill.busy, -1, NULL, ""); /* began before the purge: not stored */
    cache_obj_finish(fill.busy);
    cache_obj_release(&fill.busy);
    l = lookup("z\nh\n/p/3", NULL, false);
    assert_null(l.stored);
}

/* ---------------------------------------------------------------- hit-for-miss markers */

static void
mark(const char *base, int64_t lifetime)
{
    cache_store_mark(base, strlen(base), cache_key_hash(base, strlen(base)), time(NULL), lifetime);
}

static uint64_t
markers(void)
{
    struct cache_store_stats st;
    cache_store_stats(&st);
    return st.markers;
}

/* A marker is found by lookups of its key, fresh for its lifetime, and is neither a stored
 * object nor a fill; marking again replaces it. */
static void
test_a_marker_is_found_and_is_no_object(void **state)
{
    mark("z\nh\n/np", 120);
    mark("z\nh\n/np", 60); /* the newer one replaces it */
    struct cache_lookup l = lookup("z\nh\n/np", NULL, false);
    assert_non_null(l.marker);
    assert_true(l.marker->hit_for_miss);
    assert_int_equal(cache_obj_lifetime(l.marker), 60);
    assert_true(cache_obj_fresh(l.marker, time(NULL)));
    assert_false(cache_obj_fresh(l.marker, time(NULL) + 61));
    assert_null(l.stored);
    assert_null(l.busy);
    cache_obj_release(&l.marker);
    struct cache_store_stats st;
    cache_store_stats(&st);
    assert_int_equal(st.markers, 1);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.fills, 0);
    assert_true(st.bytes > 0); /* charged against cache.memory like an object */
    l = lookup("z\nh\n/other", NULL, false);
    assert_null(l.marker);
}

/* The first response stored under the key replaces its marker, whatever its Vary. */
static void
test_a_stored_response_replaces_the_marker(void **state)
{
    mark("z\nh\n/later", 120);
    store_object("z\nh\n/later", "now cacheable", NULL, "", NULL);
    struct cache_lookup l = lookup("z\nh\n/later", NULL, false);
    assert_null(l.marker);
    body_is(l.stored, "now cacheable");
    cache_obj_release(&l.stored);
    struct http_parser gz;
    const struct http_msg *g =
        parse_request(&gz, "GET /varied HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
    mark("z\nh\n/varied", 120);
    store_object("z\nh\n/varied", "gzipped", "accept-encoding", "accept-encoding=gzip;\n", g);
    l = lookup("z\nh\n/varied", g, false);
    assert_null(l.marker);
    body_is(l.stored, "gzipped");
    cache_obj_release(&l.stored);
    assert_int_equal(markers(), 0);
    http_parser_free(&gz);
}

/* A purge removes the markers it selects (a soft one ends their freshness) and counts only
 * objects. */
static void
test_purge_removes_markers_without_counting_them(void **state)
{
    mark("z\nh\n/m1", 120);
    mark("z\nh\n/m2", 120);
    struct cache_purge soft = {.zone = "z", .path = "/m1", .soft = true};
    assert_int_equal(cache_store_purge(&soft), 0);
    struct cache_lookup l = lookup("z\nh\n/m1", NULL, false);
    assert_false(cache_obj_fresh(l.marker, time(NULL)));
    cache_obj_release(&l.marker);
    struct cache_purge zone = {.zone = "z"};
    assert_int_equal(cache_store_purge(&zone), 0);
    assert_int_equal(markers(), 0);
    l = lookup("z\nh\n/m2", NULL, false);
    assert_null(l.marker);
}

/* The store stays within cache.memory; a reader keeps an evicted object alive. */
static void
test_memory_bound_and_readers_outlive_eviction(void **state)
{
    static char body[4096];
    char key[64];
    cache_store_configure(64 * 1024, 1 << 20, CACHE_EVICT_LRU); /* /m/0 is never hit again */
    store_object("z\nh\n/m/0", "first", NULL, "", NULL);
    struct cache_lookup held = lookup("z\nh\n/m/0", NULL, false);
    memset(body, 'x', sizeof(body) - 1);
    for (int i = 1; i < 100; i++) {
        snprintf(key, sizeof(key), "z\nh\n/m/%d", i);
        store_object(key, body, NULL, "", NULL);
    }
    struct cache_store_stats st;
    cache_store_stats(&st);
    assert_true(st.bytes <= 64 * 1024);
    assert_true(st.evictions > 0);
    struct cache_lookup l = lookup("z\nh\n/m/0", NULL, false);
    assert_null(l.stored); /* evicted... */
    body_is(held.stored, "first"); /* ...but still readable by who holds it */
    cache_obj_release(&held.stored);
}

/* ---------------------------------------------------------------- a worker's memo */

static struct cache_near near;

static struct cache_lookup
lookup_near(const char *base, bool lead)
{
    struct cache_lookup l = {.base = base, .base_len = strlen(base),
                             .hash = cache_key_hash(base, strlen(base)), .scratch = &scratch,
                             .lead = lead, .near = &near};
    cache_store_lookup(&l);
    return l;
}

static struct cache_obj *
memo_of(const char *base)
{
    return near.slot[cache_key_hash(base, strlen(base)) % CACHE_NEAR_SLOTS].obj;
}

/* The memo answers as the locked lookup would, whatever happened to the key since: it is
 * purged, replaced, refreshed (a fill in progress), marked; a sweep lets go of what the
 * store dropped, and only small objects alone under their key are kept. */
static void
test_the_memo_answers_as_the_store_does(void **state)
{
    const char *k = "z\nh\n/near";
    store_object(k, "one", NULL, "", NULL);
    struct cache_lookup l = lookup_near(k, false);
    assert_non_null(l.stored);
    struct cache_obj *first = l.stored;
    assert_ptr_equal(memo_of(k), first);
    cache_obj_release(&l.stored);
    l = lookup_near(k, false); /* from the memo */
    assert_ptr_equal(l.stored, first);
    assert_null(l.busy);
    cache_obj_release(&l.stored);

    /* a refresh began on another worker: the fill is found too */
    struct cache_lookup refresh = lookup(k, NULL, true);
    assert_non_null(refresh.busy);
    cache_obj_release(&refresh.stored);
    l = lookup_near(k, false);
    assert_ptr_equal(l.stored, first);
    assert_ptr_equal(l.busy, refresh.busy);
    cache_obj_release(&l.stored);
    cache_obj_release(&l.busy);
    /* it completes: the new object replaces the old, in the memo's answer as well */
    set_head(refresh.busy, -1, NULL, "");
    assert_true(cache_obj_append(refresh.busy, "two", 3));
    cache_obj_finish(refresh.busy);
    struct cache_obj *second = refresh.busy;
    l = lookup_near(k, false);
    assert_ptr_equal(l.stored, second);
    body_is(l.stored, "two");
    cache_obj_release(&l.stored);
    cache_obj_release(&refresh.busy);
    assert_ptr_equal(memo_of(k), second);

    /* a marker of the key is reported */
    mark(k, 60);
    l = lookup_near(k, false);
    assert_non_null(l.marker);
    cache_obj_release(&l.stored);
    cache_obj_release(&l.marker);

    /* hard purge: nothing, and the sweep lets go of the purged object */
    store_object("z\nh\n/near2", "three", NULL, "", NULL);
    l = lookup_near("z\nh\n/near2", false);
    cache_obj_release(&l.stored);
    assert_non_null(memo_of("z\nh\n/near2"));
    struct cache_purge hard = {.zone = "z", .path = "/near2"};
    assert_int_equal(cache_store_purge(&hard), 1);
    l = lookup_near("z\nh\n/near2", false);
    assert_null(l.stored);
    cache_near_sweep(&near);
    assert_null(memo_of("z\nh\n/near2"));

    /* soft purge: the memo's object is the stale one the store keeps */
    store_object("z\nh\n/near3", "four", NULL, "", NULL);
    l = lookup_near("z\nh\n/near3", false);
    cache_obj_release(&l.stored);
    struct cache_purge soft = {.zone = "z", .path = "/near3", .soft = true};
    assert_int_equal(cache_store_purge(&soft), 1);
    l = lookup_near("z\nh\n/near3", false);
    assert_non_null(l.stored);
    assert_false(cache_obj_fresh(l.stored, time(NULL)));
    cache_obj_release(&l.stored);

    /* variants are not kept: each request still gets its own */
    struct http_parser gz;
    const struct http_msg *g = parse_request(&gz, "GET /v HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
    store_object("z\nh\n/v", "gzipped", "accept-encoding", "accept-encoding=gzip;\n", g);
    struct cache_lookup v = {.base = "z\nh\n/v", .base_len = 6, .req = g,
                             .hash = cache_key_hash("z\nh\n/v", 6), .scratch = &scratch,
                             .near = &near};
    cache_store_lookup(&v);
    body_is(v.stored, "gzipped");
    assert_null(memo_of("z\nh\n/v"));
    cache_obj_release(&v.stored);
    http_parser_free(&gz);
    /* a marker alone is kept too, until a stored response replaces it */
    const char *m = "z\nh\n/near-mark";
    mark(m, 60);
    l = lookup_near(m, false);
    assert_non_null(l.marker);
    assert_null(l.stored);
    assert_ptr_equal(memo_of(m), l.marker);
    cache_obj_release(&l.marker);
    l = lookup_near(m, false); /* from the memo */
    assert_non_null(l.marker);
    cache_obj_release(&l.marker);
    store_object(m, "stored now", NULL, "", NULL);
    l = lookup_near(m, false);
    assert_null(l.marker);
    body_is(l.stored, "stored now");
    cache_obj_release(&l.stored);

    cache_near_clear(&near);
    assert_null(memo_of(k));
}

int
main(void)
{
    buf_init(&scratch, 1 << 20);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_a_stored_object_is_found_with_its_head_and_body, setup),
        cmocka_unit_test_setup(test_one_fill_per_object_however_many_look, setup),
        cmocka_unit_test_setup(test_a_growing_body_is_read_up_to_what_arrived, setup),
        cmocka_unit_test_setup(test_a_known_length_completes_the_object_when_reached, setup),
        cmocka_unit_test_setup(test_cache_max_object_stops_a_growing_fill, setup),
        cmocka_unit_test_setup(test_variants_by_vary_values, setup),
        cmocka_unit_test_setup(test_waiters_are_woken_in_their_own_thread, setup),
        cmocka_unit_test_setup(test_unsubscribing_cancels_a_queued_wake_up, setup),
        cmocka_unit_test_setup(test_a_failure_carries_its_reason_to_waiters, setup),
        cmocka_unit_test_setup(test_purge_hard_soft_and_fills_in_progress, setup),
        cmocka_unit_test_setup(test_a_marker_is_found_and_is_no_object, setup),
        cmocka_unit_test_setup(test_a_stored_response_replaces_the_marker, setup),
        cmocka_unit_test_setup(test_purge_removes_markers_without_counting_them, setup),
        cmocka_unit_test_setup(test_memory_bound_and_readers_outlive_eviction, setup),
        cmocka_unit_test_setup(test_the_memo_answers_as_the_store_does, setup),
    };
    int rc = cmocka_run_group_tests_name("store", tests, NULL, NULL);
    buf_free(&scratch);
    return rc;
}
