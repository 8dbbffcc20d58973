/* test_range.c - Range fields (RFC 9110 14.1): single, suffix and open ranges, several
 * ranges, unsatisfiable ones, invalid syntax ignored, overlapping ranges coalesced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache/range.h"

static int
parse(const char *v, uint64_t total, struct cache_range *r)
{
    return cache_range_parse(v, strlen(v), total, r);
}

static void
test_single_suffix_and_open_ranges(void **state)
{
    struct cache_range r[CACHE_MAX_RANGES];
    assert_int_equal(parse("bytes=0-499", 10000, r), 1);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 499);
    assert_int_equal(parse("bytes=9500-", 10000, r), 1);
    assert_int_equal(r[0].first, 9500);
    assert_int_equal(r[0].last, 9999);
    assert_int_equal(parse("bytes=-500", 10000, r), 1);
    assert_int_equal(r[0].first, 9500);
    assert_int_equal(parse("bytes=-20000", 10000, r), 1); /* more than there is: all */
    assert_int_equal(r[0].first, 0);
    assert_int_equal(parse("bytes=9000-20000", 10000, r), 1); /* clipped to the end */
    assert_int_equal(r[0].last, 9999);
    assert_int_equal(parse("Bytes = 1-2", 10000, r), 0); /* "bytes=" exactly */
}

static void
test_several_ranges_keep_their_order(void **state)
{
    struct cache_range r[CACHE_MAX_RANGES];
    assert_int_equal(parse("bytes=500-599, 0-99 ,, -10", 1000, r), 3);
    assert_int_equal(r[0].first, 500);
    assert_int_equal(r[1].first, 0);
    assert_int_equal(r[1].last, 99);
    assert_int_equal(r[2].first, 990);
    assert_int_equal(r[2].last, 999);
}

static void
test_unsatisfiable_and_partly_satisfiable(void **state)
{
    struct cache_range r[CACHE_MAX_RANGES];
    assert_int_equal(parse("bytes=1000-", 1000, r), -1);
    assert_int_equal(parse("bytes=-0", 1000, r), -1);
    assert_int_equal(parse("bytes=0-0", 0, r), -1); /* an empty body has no bytes */
    assert_int_equal(parse("bytes=5000-6000, 10-19", 1000, r), 1); /* one of two */
    assert_int_equal(r[0].first, 10);
}

static void
test_invalid_syntax_is_ignored(void **state)
{
    struct cache_range r[CACHE_MAX_RANGES];
    assert_int_equal(parse("items=0-5", 1000, r), 0);
    assert_int_equal(parse("bytes=5-2", 1000, r), 0); /* last before first */
    assert_int_equal(parse("bytes=-", 1000, r), 0);
    assert_int_equal(parse("bytes=a-b", 1000, r), 0);
    assert_int_equal(parse("bytes=", 1000, r), 0);
    assert_int_equal(parse("bytes=1-2;3-4", 1000, r), 0);
    char many[512] = "bytes=";
    for (int i = 0; i <= CACHE_MAX_RANGES; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%d-%d,", i * 10, i * 10);
    assert_int_equal(parse(many, 1000, r), 0); /* too many: the whole body */
}

static void
test_overlapping_and_adjacent_ranges_are_merged(void **state)
{
    struct cache_range r[CACHE_MAX_RANGES];
    assert_int_equal(parse("bytes=50-99, 0-49, 200-299, 250-260", 1000, r), 2);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 99);
    assert_int_equal(r[1].first, 200);
    assert_int_equal(r[1].last, 299);
    assert_int_equal(parse("bytes=0-10, 5-", 100, r), 1);
    assert_int_equal(r[0].last, 99);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_suffix_and_open_ranges),
        cmocka_unit_test(test_several_ranges_keep_their_order),
        cmocka_unit_test(test_unsatisfiable_and_partly_satisfiable),
        cmocka_unit_test(test_invalid_syntax_is_ignored),
        cmocka_unit_test(test_overlapping_and_adjacent_ranges_are_merged),
    };
    return cmocka_run_group_tests_name("range", tests, NULL, NULL);
}
