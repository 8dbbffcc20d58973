/* test_buf.c - capped buffers: growth stops at the cap, consume/compact, JSON strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/buf.h"

static void
test_appends_past_the_cap_fail_and_keep_what_fits(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_append(&b, "9", 1), -1);
    assert_int_equal(buf_used(&b), 8);
    buf_consume(&b, 6);
    assert_int_equal(buf_append(&b, "abcdef", 6), 0); /* room again after consuming */
    assert_memory_equal(buf_head(&b), "78abcdef", 8);
    buf_free(&b);
}

/* Regression (found by fuzz_response): appending nothing to a buffer that never grew did
 * arithmetic on its NULL data pointer (undefined behaviour; UBSan stops unit-asan on it). */
static void
test_appending_nothing_to_a_fresh_buffer_is_harmless(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, NULL, 0), 0);
    assert_int_equal(buf_used(&b), 0);
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_memory_equal(buf_head(&b), "ab", 2);
    buf_free(&b);
}

static void
test_json_string_escapes_quotes_controls_and_non_ascii(void **state)
{
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(buf_append_json_string(&b, "a\"b\\c\n\x01\xc3\xa9"), 0);
    buf_append(&b, "", 1);
    assert_string_equal(buf_head(&b), "\"a\\\"b\\\\c\\u000a\\u0001\\u00c3\\u00a9\"");
    buf_free(&b);
}

static void
test_u64_is_written_in_decimal_at_every_size(void **state)
{
    struct buf b;
    buf_init(&b, 1024);
    const uint64_t values[] = {0, 7, 10, 1024, 18446744073709551615ull};
    const char *text[] = {"0", "7", "10", "1024", "18446744073709551615"};
    for (size_t i = 0; i < ARRAY_SIZE(values); i++) {
        buf_reset(&b);
        assert_int_equal(buf_append_u64(&b, values[i]), 0);
        assert_int_equal(buf_used(&b), strlen(text[i]));
        assert_memory_equal(buf_head(&b), text[i], strlen(text[i]));
    }
    /* two digits a step: each side of every power of ten, and odd and even counts */
    for (uint64_t p = 1; p != 0 && p <= 10000000000000000000ull; p = p > UINT64_MAX / 10 ? 0 : p * 10)
        for (uint64_t v = p > 2 ? p - 2 : 0; v < p + 2; v++) {
            char want[32];
            int n = snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
            buf_reset(&b);
            assert_int_equal(buf_append_u64(&b, v), 0);
            assert_int_equal(buf_used(&b), (size_t)n);
            assert_memory_equal(buf_head(&b), want, (size_t)n);
        }
    buf_free(&b);
    buf_init(&b, 3);
    assert_int_equal(buf_append_u64(&b, 1234), -1); /* past the cap */
    buf_free(&b);
}

static void
test_u64_hex_matches_printf_for_every_nibble_value(void **state)
{
    /* each nibble position through all 16 values, and mixed patterns */
    uint64_t values[16 * 16 + 4] = {0, UINT64_MAX, 0x0123456789abcdefull, 0xfedcba9876543210ull};
    size_t n = 4;
    for (int pos = 0; pos < 16; pos++)
        for (uint64_t d = 0; d < 16; d++)
            values[n++] = (d << (4 * pos)) | (0x9999999999999999ull & ~(0xfull << (4 * pos)));
    for (size_t i = 0; i < n; i++) {
        char want[17], got[17];
        snprintf(want, sizeof(want), "%016llx", (unsigned long long)values[i]);
        u64_hex(values[i], got);
        got[16] = '\0';
        assert_string_equal(got, want);
    }
}

static void
test_str_copy_cuts_to_fit_and_terminates(void **state)
{
    char small[4];
    str_copy(small, sizeof(small), "abcdef");
    assert_string_equal(small, "abc");
    str_copy(small, sizeof(small), "");
    assert_string_equal(small, "");
    assert_true(str_ieq("Content-Length", 14, "content-length"));
    assert_false(str_ieq("Content-Lengtx", 14, "content-length"));
    assert_false(str_ieq("content-length", 13, "content-length"));
    assert_false(str_ieq("@", 1, "`")); /* same byte under | 0x20, not the same letter */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_past_the_cap_fail_and_keep_what_fits),
        cmocka_unit_test(test_appending_nothing_to_a_fresh_buffer_is_harmless),
        cmocka_unit_test(test_json_string_escapes_quotes_controls_and_non_ascii),
        cmocka_unit_test(test_u64_is_written_in_decimal_at_every_size),
        cmocka_unit_test(test_u64_hex_matches_printf_for_every_nibble_value),
        cmocka_unit_test(test_str_copy_cuts_to_fit_and_terminates),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
