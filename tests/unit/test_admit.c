/* test_admit.c - the checks on a request head before routing: refusals with their status,
 * the host a request names, the target the origin gets, and which request ids are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "edge/admit.h"
#include "http/parser.h"

static int
on_head(struct http_parser *p)
{
    return 0;
}

static int
on_body(struct http_parser *p, const char *at, size_t len)
{
    return 0;
}

static void
on_complete(struct http_parser *p)
{
}

static const struct http_parser_ops ops = {on_head, on_body, on_complete};

/* The status admit_head_check gives a request head (parsed whole). */
static int
check(const char *head, const char **message)
{
    struct http_parser p;
    size_t used;
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, NULL);
    assert_int_not_equal(http_parser_feed(&p, head, strlen(head), &used), HTTP_PARSE_ERROR);
    struct admit_facts f;
    int status = admit_head_check(&p.msg, &f, message);
    http_parser_free(&p);
    return status;
}

static void
test_head_checks_refuse_with_their_own_status(void **state)
{
    const char *m = NULL;
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", &m), 0);
    assert_int_equal(check("GET / HTTP/1.0\r\n\r\n", &m), 0);
    assert_int_equal(check("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n", &m), 405);
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", &m), 400);
    assert_non_null(strstr(m, "more than one Host"));
    assert_int_equal(check("GET / HTTP/1.1\r\n\r\n", &m), 400);
    assert_int_equal(check("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &m), 400);
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", &m), 0);
    assert_int_equal(check("GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", &m), 417);
}

/* The facts of an admitted head (parsed whole) into *f; the parser stays in *p. */
static void
admitted(struct http_parser *p, const char *head, struct admit_facts *f)
{
    const char *message;
    size_t used;
    http_parser_init(p, HTTP_REQUEST, 4096, &ops, NULL);
    assert_int_not_equal(http_parser_feed(p, head, strlen(head), &used), HTTP_PARSE_ERROR);
    assert_int_equal(admit_head_check(&p->msg, f, &message), 0);
}

static void
test_absolute_form_names_the_host_and_gives_the_origin_its_path(void **state)
{
    struct http_parser p;
    struct admit_facts f;
    admitted(&p, "GET http://b.test:8080?q=1 HTTP/1.1\r\nHost: b.test:8080\r\n\r\n", &f);
    assert_int_equal(f.target.form, HTTP_TARGET_ABSOLUTE);
    assert_int_equal(f.host_len, 11);
    assert_memory_equal(f.host, "b.test:8080", 11);
    assert_int_equal(f.origin_target_len, 4);
    assert_memory_equal(f.origin_target, "?q=1", 4);
    http_parser_free(&p);
    admitted(&p, "GET http://b.test HTTP/1.1\r\nHost: b.test\r\n\r\n", &f);
    assert_int_equal(f.origin_target_len, 1);
    assert_memory_equal(f.origin_target, "/", 1);
    http_parser_free(&p);
    admitted(&p, "GET http://b.test/x/y HTTP/1.1\r\nHost: b.test\r\n\r\n", &f);
    assert_int_equal(f.origin_target_len, 4);
    assert_memory_equal(f.origin_target, "/x/y", 4);
    http_parser_free(&p);
    admitted(&p, "GET /a://b HTTP/1.1\r\nHost: a.test\r\n\r\n", &f);
    assert_int_equal(f.target.form, HTTP_TARGET_ORIGIN); /* origin form stays as it is */
    assert_int_equal(f.origin_target_len, 6);
    assert_memory_equal(f.origin_target, "/a://b", 6);
    http_parser_free(&p);
}

static void
test_host_comes_from_the_absolute_target_before_the_host_field(void **state)
{
    struct http_parser p;
    struct admit_facts f;
    admitted(&p, "GET http://b.test/x HTTP/1.1\r\nHost: B.test:80\r\n\r\n", &f);
    assert_int_equal(f.host_len, 6);
    assert_memory_equal(f.host, "b.test", 6);
    http_parser_free(&p);
    admitted(&p, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", &f);
    assert_int_equal(f.host_len, 6);
    assert_memory_equal(f.host, "a.test", 6);
    http_parser_free(&p);
    admitted(&p, "GET / HTTP/1.0\r\n\r\n", &f);
    assert_string_equal(f.host, "");
    assert_int_equal(f.host_len, 0);
    http_parser_free(&p);
}

static void
test_request_ids_are_kept_only_when_short_and_plain(void **state)
{
    assert_true(admit_request_id_valid("abc-123_x.y:z", 13, 200));
    assert_false(admit_request_id_valid("", 0, 200));
    assert_false(admit_request_id_valid("a b", 3, 200));
    assert_false(admit_request_id_valid("a\"b", 3, 200));
    assert_false(admit_request_id_valid("abcd", 4, 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_checks_refuse_with_their_own_status),
        cmocka_unit_test(test_absolute_form_names_the_host_and_gives_the_origin_its_path),
        cmocka_unit_test(test_host_comes_from_the_absolute_target_before_the_host_field),
        cmocka_unit_test(test_request_ids_are_kept_only_when_short_and_plain),
    };
    return cmocka_run_group_tests_name("admit", tests, NULL, NULL);
}
