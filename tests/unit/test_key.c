/* test_key.c - the target part of cache keys: the query kept, ignored, or with its
 * parameters sorted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache/key.h"

static void
key_is(const char *target, enum config_cache_query mode, const char *want)
{
    struct buf out;
    buf_init(&out, 4096);
    assert_int_equal(cache_key_target(&out, target, strlen(target), mode), 0);
    assert_int_equal(buf_used(&out), strlen(want));
    assert_memory_equal(buf_head(&out), want, strlen(want));
    buf_free(&out);
}

static void
test_keep_is_the_target_as_sent(void **state)
{
    key_is("/p?b=1&a=2", CONFIG_QUERY_KEEP, "/p?b=1&a=2");
    key_is("/p", CONFIG_QUERY_KEEP, "/p");
    key_is("/p?", CONFIG_QUERY_KEEP, "/p?");
}

static void
test_ignore_drops_the_query(void **state)
{
    key_is("/p?b=1&a=2", CONFIG_QUERY_IGNORE, "/p");
    key_is("/p", CONFIG_QUERY_IGNORE, "/p");
}

static void
test_sort_makes_one_key_of_any_parameter_order(void **state)
{
    key_is("/p?b=1&a=2", CONFIG_QUERY_SORT, "/p?a=2&b=1");
    key_is("/p?a=2&b=1", CONFIG_QUERY_SORT, "/p?a=2&b=1");
    key_is("/p?a=2&&b=1&", CONFIG_QUERY_SORT, "/p?a=2&b=1"); /* empty parameters dropped */
    key_is("/p?x=1&x=0&a", CONFIG_QUERY_SORT, "/p?a&x=0&x=1");
    key_is("/p?", CONFIG_QUERY_SORT, "/p");
    key_is("/p?ab=1&a=1", CONFIG_QUERY_SORT, "/p?a=1&ab=1"); /* a prefix sorts first */
}

static void
test_sort_with_more_parameters_than_the_stack_holds(void **state)
{
    char target[4096] = "/many?", want[4096] = "/many?";
    for (int i = 199; i >= 100; i--)
        snprintf(target + strlen(target), sizeof(target) - strlen(target), "%sp%d=x",
                 i == 199 ? "" : "&", i);
    for (int i = 100; i <= 199; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%sp%d=x", i == 100 ? "" : "&",
                 i);
    key_is(target, CONFIG_QUERY_SORT, want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_is_the_target_as_sent),
        cmocka_unit_test(test_ignore_drops_the_query),
        cmocka_unit_test(test_sort_makes_one_key_of_any_parameter_order),
        cmocka_unit_test(test_sort_with_more_parameters_than_the_stack_holds),
    };
    return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
