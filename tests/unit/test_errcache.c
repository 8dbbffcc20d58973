/* test_errcache.c - error responses rendered once: every request gets its own request id,
 * time and length; any other difference in the page means another rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "edge/errcache.h"

static struct proxy_error
failure(const char *detail)
{
    struct proxy_error e = {0};
    proxy_error_set(&e, PROXY_ERR_DESTINATION_UNAVAILABLE, PROXY_PHASE_CONNECT, 0, "", 0, "%s",
                    detail);
    return e;
}

static struct errpage
page(const struct proxy_error *e, const char *rid)
{
    return (struct errpage){.status = 503, .err = e, .details = true, .request_id = rid,
                            .edge_name = "edge-1", .host = "www.example", .retry_after = 10,
                            .is_get = true, .now = 1764614052};
}

static char *
text(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* The response as one string, and its Content-Length checked against its body. */
static char *
respond(struct errcache *ec, const struct errpage *p, const char *accept, bool close)
{
    struct errcache_response r;
    errcache_respond(ec, p, accept, accept ? strlen(accept) : 0, close, true, &r);
    char *head = text(r.head, r.head_len), length[32];
    snprintf(length, sizeof(length), "\r\nContent-Length: %zu\r\n", r.body_len);
    assert_non_null(strstr(head, length));
    char *all = malloc(r.head_len + r.body_len + 1);
    memcpy(all, r.head, r.head_len);
    memcpy(all + r.head_len, r.body, r.body_len);
    all[r.head_len + r.body_len] = '\0';
    free(head);
    return all;
}

static void
test_each_request_gets_its_own_id_in_head_and_body(void **state)
{
    struct errcache *ec = errcache_new();
    struct proxy_error e = failure("all 1 origins of zone z are marked down");
    const char *accepts[] = {"text/html", "application/json", NULL};
    for (size_t i = 0; i < 3; i++) {
        struct errpage one = page(&e, "first-id"), two = page(&e, "second-id-longer");
        char *a = respond(ec, &one, accepts[i], false), *b = respond(ec, &two, accepts[i], true);
        assert_non_null(strstr(a, "X-Request-Id: first-id\r\n"));
        assert_non_null(strstr(b, "X-Request-Id: second-id-longer\r\n"));
        assert_null(strstr(b, "first-id"));
        assert_non_null(strstr(strstr(b, "\r\n\r\n"), "second-id-longer"));
        assert_non_null(strstr(a, "Proxy-Status: edge-1; error=destination_unavailable"));
        assert_non_null(strstr(a, "Retry-After: 10\r\n\r\n"));
        assert_non_null(strstr(b, "Retry-After: 10\r\nConnection: close\r\n\r\n"));
        free(a);
        free(b);
    }
    errcache_free(&ec);
    assert_null(ec);
}

static void
test_any_other_difference_renders_the_page_anew(void **state)
{
    struct errcache *ec = errcache_new();
    struct proxy_error e1 = failure("first cause"), e2 = failure("second cause");
    struct errpage p = page(&e1, "rid");
    char *a = respond(ec, &p, "application/json", false);
    assert_non_null(strstr(a, "first cause"));
    p.err = &e2; /* another detail */
    char *b = respond(ec, &p, "application/json", false);
    assert_non_null(strstr(b, "second cause"));
    assert_null(strstr(b, "first cause"));
    p.host = "other.example"; /* another host */
    char *c = respond(ec, &p, "text/html", false);
    assert_non_null(strstr(c, "other.example"));
    p.details = false; /* owner details hidden */
    char *d = respond(ec, &p, "application/json", false);
    assert_null(strstr(d, "second cause"));
    p = page(&e1, "rid"); /* the first page again: from the cache, the same bytes */
    char *again = respond(ec, &p, "application/json", false);
    assert_string_equal(again, a);
    free(a);
    free(b);
    free(c);
    free(d);
    free(again);
    errcache_clear(ec);
    errcache_free(&ec);
}

static void
test_more_pages_than_slots_are_all_right(void **state)
{
    struct errcache *ec = errcache_new();
    char detail[64], want[64];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 20; i++) {
            snprintf(detail, sizeof(detail), "cause number %d", i);
            struct proxy_error e = failure(detail);
            struct errpage p = page(&e, "rid");
            char *r = respond(ec, &p, "text/plain", false);
            snprintf(want, sizeof(want), "cause number %d while", i);
            assert_non_null(strstr(r, want)); /* in the Proxy-Status details */
            free(r);
        }
    errcache_free(&ec);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_request_gets_its_own_id_in_head_and_body),
        cmocka_unit_test(test_any_other_difference_renders_the_page_anew),
        cmocka_unit_test(test_more_pages_than_slots_are_all_right),
    };
    return cmocka_run_group_tests_name("errcache", tests, NULL, NULL);
}
