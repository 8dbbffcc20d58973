/* test_validate.c - the strict checks llhttp 8.1 leaves to Verge: raw head syntax, request
 * targets, Host/target agreement, Transfer-Encoding lists, request and response framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <llhttp.h>

#include "http/validate.h"

/* ---------------------------------------------------------------- raw heads */

static const char *
head(const char *s, bool request)
{
    return http_head_check(s, strlen(s), request, NULL);
}

static void
test_valid_heads_pass_and_report_their_length(void **state)
{
    const char *req = "GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\nX-Tab: a\tb\r\n"
                      "X-Latin: caf\xe9\r\n\r\nBODY";
    size_t len = 0;
    assert_null(http_head_check(req, strlen(req), true, &len));
    assert_int_equal(len, strlen(req) - 4);
    assert_null(head("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", true)); /* RFC 9112 2.2 */
    assert_null(head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", false));
    assert_null(head("HTTP/1.1 204\r\n\r\n", false));
    assert_null(head("HTTP/1.1 404 \r\n\r\n", false));
}

static void
test_line_endings_other_than_crlf_are_refused(void **state)
{
    assert_string_equal(head("GET / HTTP/1.1\nHost: a\r\n\r\n", true),
                        "bare LF (a line not ending in CRLF)");
    assert_string_equal(head("GET / HTTP/1.1\r\nHost: a\r\n\n", true),
                        "bare LF (a line not ending in CRLF)");
    assert_string_equal(head("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", true),
                        "bare CR (a CR not followed by LF)");
    assert_string_equal(head("GET / HTTP/1.1\r\nHost: a\r\n", true),
                        "header section not terminated by an empty line");
    assert_non_null(head("HTTP/1.1 200 OK\nContent-Length: 2\n\n", false));
}

static void
test_obs_fold_and_whitespace_before_the_colon_are_refused(void **state)
{
    const char *fold = "obs-fold (a header line starting with whitespace)";
    assert_string_equal(head("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", true), fold);
    assert_string_equal(head("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", true), fold);
    assert_string_equal(head("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false), fold);
    assert_string_equal(head("GET / HTTP/1.1\r\nHost : a\r\n\r\n", true),
                        "whitespace between a header field name and the colon");
    assert_string_equal(head("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", true),
                        "whitespace between a header field name and the colon");
}

static void
test_field_names_and_values_hold_only_their_characters(void **state)
{
    assert_string_equal(head("GET / HTTP/1.1\r\n: a\r\n\r\n", true), "empty header field name");
    assert_string_equal(head("GET / HTTP/1.1\r\nX(y): a\r\n\r\n", true),
                        "header field name is not a token followed by a colon");
    assert_string_equal(head("GET / HTTP/1.1\r\nNoColon\r\n\r\n", true),
                        "header field name is not a token followed by a colon");
    static const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_string_equal(http_head_check(nul, sizeof(nul) - 1, true, NULL),
                        "header field value holds a control character");
    assert_non_null(head("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", true));
    assert_non_null(head("GET / HTTP/1.1\r\nX: a\x7f" "b\r\n\r\n", true));
    /* long values are checked eight bytes at a time: a tab anywhere passes, DEL, a control
     * byte or an obs-text neighbour of one does not fool the word check */
    assert_null(head("GET / HTTP/1.1\r\nX: abcdefgh\tijklmnop qrstuvwx\xff\xfe\r\n\r\n", true));
    assert_non_null(head("GET / HTTP/1.1\r\nX: abcdefghijklm\x7fnopqrstuvwx\r\n\r\n", true));
    assert_non_null(head("GET / HTTP/1.1\r\nX: abcdefghijklmnopqrst\x1fuvwx\r\n\r\n", true));
    assert_non_null(head("GET / HTTP/1.1\r\nX: \xff\xff\xff\xff\xff\xff\x01\xff\xff\r\n\r\n", true));

}

/* Names are scanned four bytes at a time, then a byte at a time: every byte value at every
 * offset of a name (a short one, and one of 40 bytes) passes exactly when it is a tchar (or
 * a colon that ends a shorter name). */
static void
check_every_byte_of_a_name(size_t nlen)
{
    char buf[128];
    const char *start = "GET / HTTP/1.1\r\n";
    size_t at = strlen(start);
    for (size_t off = 0; off < nlen; off++)
        for (int c = 0; c < 256; c++) {
            memcpy(buf, start, at);
            memset(buf + at, 'n', nlen);
            buf[at + off] = (char)c;
            memcpy(buf + at + nlen, ": v\r\n\r\n", 7);
            bool tchar = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
            bool valid = tchar || (c == ':' && off > 0);
            const char *why = http_head_check(buf, at + nlen + 7, true, NULL);
            if (valid != (why == NULL))
                fail_msg("byte 0x%02x at %zu of a name of %zu: %s", c, off, nlen,
                         why ? why : "accepted");
        }
}

static void
test_every_byte_at_every_offset_of_a_name(void **state)
{
    check_every_byte_of_a_name(13);
    check_every_byte_of_a_name(40);
}

/* Values are scanned sixteen bytes at a time: every byte value, at every offset of a value
 * longer than two vectors, passes exactly when it is text (a tab, SP, VCHAR, obs-text),
 * and a tab before it does not hide it. */
static void
test_every_byte_at_every_offset_of_a_value(void **state)
{
    char buf[128];
    const char *start = "GET / HTTP/1.1\r\nX: ";
    size_t at = strlen(start), vlen = 40;
    for (int tab = 0; tab < 2; tab++)
        for (size_t off = 0; off < vlen; off++)
            for (int c = 0; c < 256; c++) {
                memcpy(buf, start, at);
                memset(buf + at, 'v', vlen);
                if (tab && off > 0)
                    buf[at + off - 1] = '\t';
                buf[at + off] = (char)c;
                memcpy(buf + at + vlen, "\r\n\r\n", 4);
                bool text = c == '\t' || (c >= 0x20 && c != 0x7f);
                const char *why = http_head_check(buf, at + vlen + 4, true, NULL);
                if (text != (why == NULL))
                    fail_msg("byte 0x%02x at %zu (tab before: %d): %s", c, off, tab,
                             why ? why : "accepted");
            }
}

static void
test_request_lines_have_one_space_between_three_parts(void **state)
{
    assert_string_equal(head("GET  / HTTP/1.1\r\n\r\n", true),
                        "more than one space between request line parts");
    assert_string_equal(head("GET /\r\n\r\n", true), "request line without an HTTP version");
    assert_string_equal(head("GET / HTTP/1.1 \r\n\r\n", true),
                        "request line does not end in one space and HTTP/x.y");
    assert_string_equal(head("GET / http/1.1\r\n\r\n", true),
                        "request line does not end in one space and HTTP/x.y");
    assert_string_equal(head("G(T / HTTP/1.1\r\n\r\n", true),
                        "request method is not a token followed by one space");
    assert_non_null(head("GET /a\tb HTTP/1.1\r\n\r\n", true));
    assert_non_null(head("GET /a\xff HTTP/1.1\r\n\r\n", true));
}

static void
test_status_lines_have_three_digits_and_a_clean_reason(void **state)
{
    assert_string_equal(head("HTTP/1.1 20 OK\r\n\r\n", false), "status code is not three digits");
    assert_string_equal(head("HTTP/1.1 2000 OK\r\n\r\n", false), "status code is not three digits");
    assert_string_equal(head("HTTP/1.1  200 OK\r\n\r\n", false), "status code is not three digits");
    assert_string_equal(head("HTTP/1.1 200 O\x01K\r\n\r\n", false),
                        "reason phrase holds a control character");
    assert_string_equal(head("HTTX/1.1 200 OK\r\n\r\n", false),
                        "status line does not start with HTTP/x.y and one space");
}

/* ---------------------------------------------------------------- targets */

static const char *
target(const char *s, struct http_target *t)
{
    return http_target_parse(s, strlen(s), t);
}

static void
test_targets_are_split_by_form(void **state)
{
    struct http_target t;
    assert_null(target("/a/b?c=%2F", &t));
    assert_int_equal(t.form, HTTP_TARGET_ORIGIN);
    assert_null(target("HTTP://A.test:8080/x?y", &t));
    assert_int_equal(t.form, HTTP_TARGET_ABSOLUTE);
    assert_false(t.https);
    assert_int_equal(t.authority_len, 11);
    assert_memory_equal(t.authority, "A.test:8080", 11);
    assert_memory_equal(t.path, "/x?y", 4);
    assert_null(target("https://a.test?q", &t));
    assert_true(t.https);
    assert_memory_equal(t.path, "?q", 2);
    assert_null(target("http://a.test", &t));
    assert_int_equal(t.path_len, 0);
    assert_null(target("*", &t));
    assert_int_equal(t.form, HTTP_TARGET_ASTERISK);
    assert_null(target("a.test:443", &t));
    assert_int_equal(t.form, HTTP_TARGET_AUTHORITY);
    assert_null(target("/{json}|^`", &t)); /* browsers send these unencoded in queries */
}

/* Every byte value in a path: refused for what it is, or let through (RFC 3986 less what
 * is ambiguous between proxies). */
static void
test_every_byte_of_a_target_is_classified(void **state)
{
    for (unsigned c = 0; c < 256; c++) {
        char url[] = "/ab?x=Xcd";
        url[6] = (char)c;
        struct http_target t;
        const char *why = http_target_parse(url, sizeof(url) - 1, &t);
        if (c <= 0x20 || c >= 0x7f)
            assert_string_equal(why, "request target holds a control character, a space or a "
                                     "byte outside ASCII");
        else if (c == '#')
            assert_string_equal(why, "request target holds a fragment ('#')");
        else if (c == '\\' || c == '"' || c == '<' || c == '>')
            assert_non_null(strstr(why, "a character URIs do not allow"));
        else
            assert_null(why); /* '%' too: "%cd" is two hex digits */
    }
    assert_null(target("/%41%7e%Ff", &(struct http_target){0}));
    assert_non_null(target("/a%4", &(struct http_target){0}));
    assert_non_null(target("/a%", &(struct http_target){0}));
    assert_non_null(target("/a%g1", &(struct http_target){0}));
}

static void
test_ambiguous_targets_are_refused(void **state)
{
    struct http_target t;
    assert_string_equal(target("/a#frag", &t), "request target holds a fragment ('#')");
    assert_non_null(target("/a\\b", &t));
    assert_non_null(target("/a\"b", &t));
    assert_non_null(target("/a<b>", &t));
    assert_string_equal(target("/a%zz", &t),
                        "request target holds a '%' not followed by two hex digits");
    assert_non_null(target("/a%2", &t));
    assert_string_equal(target("http://user:pw@a.test/", &t),
                        "request target holds userinfo (user@host)");
    assert_string_equal(target("ftp://a.test/", &t),
                        "request target has a scheme other than http or https");
    assert_string_equal(target("http:///x", &t), "request target has an empty or invalid host");
    assert_non_null(target("foo/bar", &t));
    assert_non_null(target("", &t));
}

static bool
matches(const char *authority, const char *host, bool https)
{
    return http_host_matches(authority, strlen(authority), host, strlen(host), https);
}

static void
test_host_matches_the_target_authority_as_the_same_host_and_port(void **state)
{
    assert_true(matches("a.test", "A.TEST", false));
    assert_true(matches("a.test.", "a.test", false));
    assert_true(matches("a.test", "a.test:80", false));
    assert_true(matches("a.test:443", "a.test", true));
    assert_true(matches("[::1]:8080", "[::1]:8080", false));
    assert_false(matches("a.test", "b.test", false));
    assert_false(matches("a.test", "a.test:8080", false));
    assert_false(matches("a.test", "a.test:443", false));
    assert_false(matches("a.test", "a.test:x", false));
    assert_false(matches("a.test", "", false));
}

/* ---------------------------------------------------------------- framing fields */

/* A message built by hand: method, version, target and fields. */
static void
msg_build(struct http_msg *m, int method, int minor, const char *url, const char *const *fields)
{
    http_msg_init(m, 8192);
    m->method = method;
    m->major = 1;
    m->minor = (uint8_t)minor;
    m->url = (struct http_str){(uint32_t)m->strings.len, (uint32_t)strlen(url)};
    buf_append(&m->strings, url, strlen(url));
    for (size_t i = 0; fields[i] != NULL; i += 2) {
        struct http_header *h = &m->headers[m->nheaders++];
        h->name = (struct http_str){(uint32_t)m->strings.len, (uint32_t)strlen(fields[i])};
        buf_append(&m->strings, fields[i], strlen(fields[i]));
        h->value = (struct http_str){(uint32_t)m->strings.len, (uint32_t)strlen(fields[i + 1])};
        buf_append(&m->strings, fields[i + 1], strlen(fields[i + 1]));
    }
}

static enum http_te
te_of(const char *const *fields)
{
    struct http_msg m;
    msg_build(&m, HTTP_POST, 1, "/", fields);
    enum http_te te = http_te_classify(&m);
    http_msg_free(&m);
    return te;
}

static void
test_transfer_encoding_lists_are_read_across_fields(void **state)
{
    assert_int_equal(te_of((const char *[]){"Host", "a", NULL}), HTTP_TE_NONE);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "Chunked", NULL}),
                     HTTP_TE_CHUNKED);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", " , chunked ,", NULL}),
                     HTTP_TE_CHUNKED);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "gzip, chunked", NULL}),
                     HTTP_TE_UNSUPPORTED);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "gzip", "transfer-encoding",
                                            "chunked", NULL}),
                     HTTP_TE_UNSUPPORTED);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "chunked, gzip", NULL}),
                     HTTP_TE_NOT_FINAL);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "chunked", "Transfer-Encoding",
                                            "chunked", NULL}),
                     HTTP_TE_REPEATED);
    assert_int_equal(te_of((const char *[]){"Transfer-Encoding", "", NULL}), HTTP_TE_EMPTY);
}

static int
request_status(int method, int minor, const char *url, const char *const *fields,
               const char **reason)
{
    struct http_msg m;
    struct http_target t;
    const char *indexed_reason;
    msg_build(&m, method, minor, url, fields);
    int status = http_request_check(&m, &t, reason);
    http_msg_index(&m); /* as the parser leaves it: the same answer from the field index */
    assert_int_equal(http_request_check(&m, &t, &indexed_reason), status);
    assert_ptr_equal(indexed_reason, *reason);
    http_msg_free(&m);
    return status;
}

static void
test_request_framing_and_host_rules(void **state)
{
    const char *why = NULL;
    assert_int_equal(request_status(HTTP_GET, 1, "/", (const char *[]){"Host", "a", NULL}, &why),
                     0);
    assert_int_equal(request_status(HTTP_POST, 1, "/",
                                    (const char *[]){"Host", "a", "Content-Length", "5",
                                                     "Transfer-Encoding", "chunked", NULL},
                                    &why),
                     400);
    assert_string_equal(why, "Content-Length together with Transfer-Encoding");
    assert_int_equal(request_status(HTTP_POST, 1, "/",
                                    (const char *[]){"Host", "a", "Content-Length", "5",
                                                     "Content-Length", "5", NULL},
                                    &why),
                     400);
    assert_string_equal(why, "more than one Content-Length field");
    assert_int_equal(request_status(HTTP_POST, 0, "/",
                                    (const char *[]){"Transfer-Encoding", "chunked", NULL}, &why),
                     400);
    assert_string_equal(why, "Transfer-Encoding in an HTTP/1.0 request");
    assert_int_equal(request_status(HTTP_POST, 1, "/",
                                    (const char *[]){"Host", "a", "Transfer-Encoding",
                                                     "gzip, chunked", NULL},
                                    &why),
                     501);
    assert_int_equal(request_status(HTTP_GET, 1, "/", (const char *[]){NULL}, &why), 400);
    assert_string_equal(why, "HTTP/1.1 request without a Host field");
    assert_int_equal(request_status(HTTP_GET, 0, "/", (const char *[]){NULL}, &why), 0);
    assert_int_equal(request_status(HTTP_GET, 1, "/",
                                    (const char *[]){"Host", "a", "host", "b", NULL}, &why),
                     400);
    assert_int_equal(request_status(HTTP_GET, 1, "http://a.test/",
                                    (const char *[]){"Host", "b.test", NULL}, &why),
                     400);
    assert_string_equal(why, "Host field contradicts the host of the absolute-form target");
    assert_int_equal(request_status(HTTP_GET, 1, "*", (const char *[]){"Host", "a", NULL}, &why),
                     400);
    assert_int_equal(
        request_status(HTTP_OPTIONS, 1, "*", (const char *[]){"Host", "a", NULL}, &why), 0);
}

static void
test_request_versions_other_than_1x_get_505(void **state)
{
    struct http_msg m;
    struct http_target t;
    const char *why;
    msg_build(&m, HTTP_GET, 0, "/", (const char *[]){"Host", "a", NULL});
    m.major = 2;
    assert_int_equal(http_request_check(&m, &t, &why), 505);
    m.major = 0;
    m.minor = 9;
    assert_int_equal(http_request_check(&m, &t, &why), 505);
    http_msg_free(&m);
}

static const char *
response_reason(int status, int minor, const char *const *fields)
{
    struct http_msg m;
    msg_build(&m, 0, minor, "", fields);
    m.status = status;
    const char *why = http_response_check(&m);
    http_msg_free(&m);
    return why;
}

static void
test_response_framing_rules(void **state)
{
    assert_null(response_reason(200, 1, (const char *[]){"Content-Length", "2", NULL}));
    assert_null(response_reason(200, 0, (const char *[]){NULL})); /* until close: allowed */
    assert_string_equal(response_reason(200, 1, (const char *[]){"Transfer-Encoding", "gzip",
                                                                 NULL}),
                        "Transfer-Encoding does not end in chunked");
    assert_string_equal(response_reason(200, 0, (const char *[]){"Transfer-Encoding",
                                                                 "chunked", NULL}),
                        "Transfer-Encoding in an HTTP/1.0 response");
    assert_string_equal(response_reason(200, 1, (const char *[]){"Content-Length", "2",
                                                                 "Content-Length", "3", NULL}),
                        "more than one Content-Length field");
    assert_string_equal(response_reason(600, 1, (const char *[]){NULL}),
                        "status code outside 100-599");
    assert_string_equal(response_reason(99, 1, (const char *[]){NULL}),
                        "status code outside 100-599");
}

static void
test_bodiless_responses_that_announce_a_body_are_not_reusable(void **state)
{
    struct http_msg m;
    msg_build(&m, 0, 1, "", (const char *[]){"Content-Length", "5", NULL});
    m.has_content_length = true;
    m.content_length = 5;
    m.status = 204;
    assert_false(http_response_framing_reusable(&m));
    m.status = 100;
    assert_false(http_response_framing_reusable(&m));
    m.status = 304; /* the length the GET would have had */
    assert_true(http_response_framing_reusable(&m));
    m.status = 200;
    assert_true(http_response_framing_reusable(&m));
    m.status = 204;
    m.content_length = 0;
    assert_true(http_response_framing_reusable(&m));
    http_msg_free(&m);
    msg_build(&m, 0, 1, "", (const char *[]){"Transfer-Encoding", "chunked", NULL});
    m.status = 204;
    m.chunked = true;
    assert_false(http_response_framing_reusable(&m));
    http_msg_free(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_heads_pass_and_report_their_length),
        cmocka_unit_test(test_line_endings_other_than_crlf_are_refused),
        cmocka_unit_test(test_obs_fold_and_whitespace_before_the_colon_are_refused),
        cmocka_unit_test(test_field_names_and_values_hold_only_their_characters),
        cmocka_unit_test(test_every_byte_at_every_offset_of_a_value),
        cmocka_unit_test(test_every_byte_at_every_offset_of_a_name),
        cmocka_unit_test(test_request_lines_have_one_space_between_three_parts),
        cmocka_unit_test(test_status_lines_have_three_digits_and_a_clean_reason),
        cmocka_unit_test(test_targets_are_split_by_form),
        cmocka_unit_test(test_every_byte_of_a_target_is_classified),
        cmocka_unit_test(test_ambiguous_targets_are_refused),
        cmocka_unit_test(test_host_matches_the_target_authority_as_the_same_host_and_port),
        cmocka_unit_test(test_transfer_encoding_lists_are_read_across_fields),
        cmocka_unit_test(test_request_framing_and_host_rules),
        cmocka_unit_test(test_request_versions_other_than_1x_get_505),
        cmocka_unit_test(test_response_framing_rules),
        cmocka_unit_test(test_bodiless_responses_that_announce_a_body_are_not_reusable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
