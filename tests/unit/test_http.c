/* test_http.c - the llhttp glue and header handling: requests and responses fed whole and
 * byte by byte, pipelining, bodies in both framings, limits, hop-by-hop fields, and what
 * the glue checks that llhttp 8.1 lets by (raw head, CRLF after chunks, extensions,
 * trailers, Upgrade). */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "http/parser.h"

/* What the callbacks saw. */
struct seen {
    int heads, completes;
    char body[4096];
    size_t body_len;
    char first_url[256];
    int no_body; /* on_head returns 1 (response to HEAD) */
    uint64_t max_body; /* set on the parser in on_head, as an owner does */
};

static int
on_head(struct http_parser *p)
{
    struct seen *s = p->owner;
    if (s->heads++ == 0 && p->msg.url.len < sizeof(s->first_url)) {
        memcpy(s->first_url, http_str_ptr(&p->msg, p->msg.url), p->msg.url.len);
        s->first_url[p->msg.url.len] = '\0';
    }
    p->max_body = s->max_body;
    return s->no_body;
}

static int
on_body(struct http_parser *p, const char *at, size_t len)
{
    struct seen *s = p->owner;
    assert_true(s->body_len + len <= sizeof(s->body));
    memcpy(s->body + s->body_len, at, len);
    s->body_len += len;
    return 0;
}

static void
on_complete(struct http_parser *p)
{
    ((struct seen *)p->owner)->completes++;
}

static const struct http_parser_ops ops = {on_head, on_body, on_complete};

/* Feed data in pieces of step bytes (0 = whole), resuming after each message.
 * Returns the last status. */
static enum http_parse_status
feed(struct http_parser *p, const char *data, size_t len, size_t step)
{
    size_t off = 0;
    enum http_parse_status st = HTTP_PARSE_MORE;
    while (off < len) {
        size_t n = step ? MIN(step, len - off) : len - off, used;
        st = http_parser_feed(p, data + off, n, &used);
        off += used;
        if (st == HTTP_PARSE_ERROR)
            return st;
        if (st == HTTP_PARSE_PAUSED)
            http_parser_resume(p);
    }
    return st;
}

static const char pipelined[] =
    "GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n"
    "POST /two HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"
    "PUT /three HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";

static void
check_pipelined(size_t step)
{
    struct seen s = {0};
    struct http_parser p;
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    feed(&p, pipelined, sizeof(pipelined) - 1, step);
    assert_int_equal(s.heads, 3);
    assert_int_equal(s.completes, 3);
    assert_string_equal(s.first_url, "/one");
    assert_int_equal(s.body_len, 10);
    assert_memory_equal(s.body, "helloabcde", 10);
    http_parser_free(&p);
}

static void
test_pipelined_requests_whole_and_byte_by_byte_give_the_same_result(void **state)
{
    check_pipelined(0);
    check_pipelined(1);
    check_pipelined(7);
}

static void
test_parser_pauses_after_each_message(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    size_t used;
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    enum http_parse_status st =
        http_parser_feed(&p, pipelined, sizeof(pipelined) - 1, &used);
    assert_int_equal(st, HTTP_PARSE_PAUSED);
    assert_int_equal(used, strlen("GET /one HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    assert_int_equal(s.heads, 1);
    assert_int_equal(p.msg.method, HTTP_GET);
    assert_true(p.msg.keep_alive);
    http_parser_free(&p);
}

static void
test_header_section_over_the_limit_fails_with_head_too_large(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %01500d\r\n\r\n", 0);
    http_parser_init(&p, HTTP_REQUEST, 1024, &ops, &s);
    assert_int_equal(feed(&p, req, (size_t)n, 0), HTTP_PARSE_ERROR);
    assert_true(p.head_too_large);
    http_parser_free(&p);
    memset(&s, 0, sizeof(s));
    http_parser_init(&p, HTTP_REQUEST, 1024, &ops, &s);
    assert_int_equal(feed(&p, req, (size_t)n, 1), HTTP_PARSE_ERROR);
    assert_true(p.head_too_large);
    http_parser_free(&p);
}

/* Regression: body bytes fed together with a head counted against the next head's limit. */
static void
test_big_body_does_not_count_against_the_next_head(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    static char resp[8192];
    size_t len = 0;
    len += (size_t)snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n");
    memset(resp + len, 'x', 2000);
    len += 2000;
    len += (size_t)snprintf(resp + len, sizeof(resp) - len,
                            "HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n");
    http_parser_init(&p, HTTP_RESPONSE, 1024, &ops, &s);
    assert_int_not_equal(feed(&p, resp, len, 0), HTTP_PARSE_ERROR);
    assert_int_equal(s.completes, 2);
    assert_false(p.head_too_large);
    http_parser_free(&p);
}

/* Pipelined requests that each fit the head limit pass, whether they arrive in one read
 * or byte by byte: a completed message's bytes never count against the next head. */
static void
test_pipelined_heads_each_get_the_whole_limit(void **state)
{
    static char req[4096];
    size_t len = 0;
    for (int i = 0; i < 2; i++)
        len += (size_t)snprintf(req + len, sizeof(req) - len,
                                "GET /%d HTTP/1.1\r\nHost: a\r\nX-Pad: %0600d\r\n\r\n", i, 0);
    for (size_t step = 0; step <= 1; step++) {
        struct seen s = {0};
        struct http_parser p;
        http_parser_init(&p, HTTP_REQUEST, 1024, &ops, &s);
        assert_int_not_equal(feed(&p, req, len, step), HTTP_PARSE_ERROR);
        assert_int_equal(s.completes, 2);
        http_parser_free(&p);
    }
}

/* Regression (found by fuzz_request): empty lines before a request counted against the
 * head limit when they came in the same read as the request, not when they came in an
 * earlier one, so where TCP cut the input decided between 431 and serving the request. */
static void
test_where_the_input_is_cut_does_not_move_the_head_limit(void **state)
{
    static char req[512];
    size_t len = 0;
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(req + len, sizeof(req) - len, "\r\n");
    len += (size_t)snprintf(req + len, sizeof(req) - len, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    static const size_t steps[] = {0, 1, 7, 40};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        struct seen s = {0};
        struct http_parser p;
        http_parser_init(&p, HTTP_REQUEST, 64, &ops, &s);
        assert_int_equal(feed(&p, req, len, steps[i]), HTTP_PARSE_ERROR);
        assert_true(p.head_too_large);
        http_parser_free(&p);
    }
}

/* Regression (found by fuzz_request and fuzz_response, reading byte by byte): llhttp hands
 * a field over in pieces cut where the input was cut, and a limit hit in a piece failed the
 * parse at once, before llhttp saw a bad byte later in the same field; so the same bytes
 * got 431 (or http_response_header_section_size) or 400 depending on the cut. */
static void
check_same_error_for_every_cut(llhttp_type_t type, size_t max_head, const char *text, size_t len)
{
    static const size_t steps[] = {0, 1, 2, 7, 100};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        struct seen s = {0};
        struct http_parser p;
        http_parser_init(&p, type, max_head, &ops, &s);
        assert_int_equal(feed(&p, text, len, steps[i]), HTTP_PARSE_ERROR);
        assert_false(p.head_too_large);
        assert_false(p.too_many_headers);
        http_parser_free(&p);
    }
}

static void
test_where_the_input_is_cut_does_not_change_the_error(void **state)
{
    static char text[8192];
    size_t len = (size_t)snprintf(text, sizeof(text), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "X-%d: v\r\n", i);
    len += (size_t)snprintf(text + len, sizeof(text) - len, "X-bad\x01name: v\r\n\r\n");
    check_same_error_for_every_cut(HTTP_RESPONSE, 65536, text, len);
    /* the strings cap reached in a trailer value that has a bad byte further on */
    len = (size_t)snprintf(text, sizeof(text),
                           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3\r\nabc\r\n0\r\nX-T: %0200d\x01\r\n\r\n", 0);
    check_same_error_for_every_cut(HTTP_REQUEST, 128, text, len);
}

static void
assert_span(const struct http_msg *m, struct http_str sp, const char *want)
{
    assert_int_equal(sp.len, strlen(want));
    assert_memory_equal(http_str_ptr(m, sp), want, sp.len);
}

/* The head's spans point into one copy of its bytes, made when it completes (or, when it
 * is cut short or refused, of its bytes so far): wherever the input is cut, and with empty
 * lines before it, each reads the same. */
static void
test_fields_read_the_same_wherever_the_input_is_cut(void **state)
{
    static const char text[] =
        "\r\nGET /path?q=1 HTTP/1.1\r\nHost: a.test\r\n"
        "X-Long: 0123456789012345678901234567890123456789012345678901234567890123456789  \r\n"
        "Accept: */*\r\n\r\n";
    static const size_t steps[] = {0, 1, 2, 7, 30};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        struct seen s = {0};
        struct http_parser p;
        http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
        assert_int_not_equal(feed(&p, text, sizeof(text) - 1, steps[i]), HTTP_PARSE_ERROR);
        const struct http_msg *m = &p.msg;
        assert_int_equal(s.heads, 1);
        assert_span(m, m->url, "/path?q=1");
        assert_int_equal(m->nheaders, 3);
        assert_span(m, m->headers[0].name, "Host");
        assert_span(m, m->headers[0].value, "a.test");
        assert_span(m, m->headers[1].name, "X-Long");
        assert_span(m, m->headers[1].value,
                    "0123456789012345678901234567890123456789012345678901234567890123456789");
        assert_span(m, m->headers[2].value, "*/*");
        http_parser_free(&p);
    }
}

static void
test_a_head_cut_short_or_refused_keeps_what_was_read(void **state)
{
    static const size_t steps[] = {0, 1, 5};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        struct seen s = {0};
        struct http_parser p;
        http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
        static const char part[] = "GET /not-yet HTTP/1.1\r\nHost: a.te";
        assert_int_equal(feed(&p, part, sizeof(part) - 1, steps[i]), HTTP_PARSE_MORE);
        assert_span(&p.msg, p.msg.url, "/not-yet"); /* what a head timeout logs */
        http_parser_free(&p);

        http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
        static const char bad[] = "PUT /seen HTTP/1.1\r\nHost: a\r\nX-\x01: v\r\n\r\n";
        assert_int_equal(feed(&p, bad, sizeof(bad) - 1, steps[i]), HTTP_PARSE_ERROR);
        assert_span(&p.msg, p.msg.url, "/seen"); /* what the 400's log line shows */
        assert_span(&p.msg, p.msg.headers[0].value, "a");
        http_parser_free(&p);
    }
}

static void
test_close_delimited_response_completes_at_eof(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char resp[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
    http_parser_init(&p, HTTP_RESPONSE, 4096, &ops, &s);
    assert_int_equal(feed(&p, resp, sizeof(resp) - 1, 3), HTTP_PARSE_MORE);
    assert_int_equal(s.completes, 0);
    assert_int_equal(http_parser_finish(&p), HTTP_PARSE_PAUSED);
    assert_int_equal(s.completes, 1);
    assert_int_equal(s.body_len, strlen("until the end"));
    http_parser_free(&p);
}

static void
test_content_length_response_cut_short_is_an_error_at_eof(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
    http_parser_init(&p, HTTP_RESPONSE, 4096, &ops, &s);
    feed(&p, resp, sizeof(resp) - 1, 0);
    assert_int_equal(http_parser_finish(&p), HTTP_PARSE_ERROR);
    http_parser_free(&p);
}

static void
test_response_to_head_has_no_body_despite_content_length(void **state)
{
    struct seen s = {.no_body = 1};
    struct http_parser p;
    const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    http_parser_init(&p, HTTP_RESPONSE, 4096, &ops, &s);
    size_t used;
    assert_int_equal(http_parser_feed(&p, resp, sizeof(resp) - 1, &used), HTTP_PARSE_PAUSED);
    assert_int_equal(s.completes, 1);
    assert_int_equal(p.msg.content_length, 100);
    http_parser_free(&p);
}

static void
test_invalid_status_line_is_an_error(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char resp[] = "HTTX/1.1 200 OK\r\n\r\n";
    http_parser_init(&p, HTTP_RESPONSE, 4096, &ops, &s);
    assert_int_equal(feed(&p, resp, sizeof(resp) - 1, 0), HTTP_PARSE_ERROR);
    assert_non_null(http_parser_error_text(&p));
    http_parser_free(&p);
}

static void
test_conflicting_content_length_and_chunked_is_refused(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    assert_int_equal(feed(&p, req, sizeof(req) - 1, 0), HTTP_PARSE_ERROR);
    http_parser_free(&p);
}

static const struct http_header *
header(const struct http_msg *m, const char *name)
{
    return http_msg_find(m, name);
}

static void
test_hop_by_hop_fields_include_those_named_by_connection(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\n"
                       "X-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
                       "Proxy-Authorization: x\r\nAccept: */*\r\n\r\n";
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    feed(&p, req, sizeof(req) - 1, 0);
    const char *hop[] = {"Connection", "X-Secret", "Keep-Alive", "TE", "Upgrade",
                         "Proxy-Authorization"};
    for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
        assert_true(http_msg_is_hop_header(&p.msg, header(&p.msg, hop[i])));
    assert_false(http_msg_is_hop_header(&p.msg, header(&p.msg, "Accept")));
    assert_false(http_msg_is_hop_header(&p.msg, header(&p.msg, "Host")));
    http_parser_free(&p);
}

/* The parser marks hop-by-hop fields once; the bit test must agree with the name-based
 * answer for every field, whatever its case, and for names of every length ("Proxy-A"
 * has the length of "Trailer"; a Connection token of 64 bytes or more names nothing). */
static void
test_hop_marks_agree_with_names_for_every_field(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    char req[1024];
    char long_name[70];
    memset(long_name, 'L', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    snprintf(req, sizeof(req),
             "GET / HTTP/1.1\r\nHost: a\r\nconnection: X-One ,x-two,%s\r\nX-ONE: 1\r\n"
             "x-Two: 2\r\nX-Three: 3\r\nProxy-A: p\r\nTRAILER: t\r\n%s: l\r\n"
             "Connection: close\r\nContent-Type: text/plain\r\n\r\n",
             long_name, long_name);
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    feed(&p, req, strlen(req), 0);
    assert_true(p.msg.indexed);
    const char *hop[] = {"connection", "X-One", "X-Two", "Proxy-A", "Trailer"};
    const char *end[] = {"Host", "X-Three", "Content-Type", long_name};
    for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
        assert_true(http_msg_is_hop_header(&p.msg, header(&p.msg, hop[i])));
    for (size_t i = 0; i < ARRAY_SIZE(end); i++)
        assert_false(http_msg_is_hop_header(&p.msg, header(&p.msg, end[i])));
    for (size_t i = 0; i < p.msg.nheaders; i++) {
        const struct http_header *h = &p.msg.headers[i];
        assert_int_equal(http_msg_is_hop_header(&p.msg, h),
                         http_name_is_hop(&p.msg, http_str_ptr(&p.msg, h->name), h->name.len));
    }
    http_parser_free(&p);
}

/* Every known field is found by its name in any case, and nothing else is. */
static void
test_known_field_names_are_recognised_in_any_case(void **state)
{
    char lower[64], upper[64];
    for (int f = 0; f < HTTP_FIELD_COUNT; f++) {
        const char *name = http_field_name((enum http_field)f);
        size_t n = strlen(name);
        for (size_t i = 0; i <= n; i++) {
            lower[i] = (char)tolower((unsigned char)name[i]);
            upper[i] = (char)toupper((unsigned char)name[i]);
        }
        assert_int_equal(http_field_of(name, n), f);
        assert_int_equal(http_field_of(lower, n), f);
        assert_int_equal(http_field_of(upper, n), f);
        assert_int_equal(http_field_of(name, n - 1), HTTP_FIELD_OTHER); /* a prefix */
    }
    assert_int_equal(http_field_of("Hosts", 5), HTTP_FIELD_OTHER);
    assert_int_equal(http_field_of("X-Forwarded-Host", 16), HTTP_FIELD_OTHER);
    assert_int_equal(http_field_of("", 0), HTTP_FIELD_OTHER);
    /* bytes that are one bit from a name's, but not its letters in the other case */
    assert_int_equal(http_field_of("Content_Length", 14), HTTP_FIELD_OTHER);
    assert_int_equal(http_field_of("Dat\x05", 4), HTTP_FIELD_OTHER);
    assert_int_equal(http_field_of("\x08ost", 4), HTTP_FIELD_OTHER);
    assert_true(mem_ieq("Proxy-Authorization", "pROXY-aUTHORIZATION", 19));
    assert_false(mem_ieq("[", "{", 1));
    assert_false(mem_ieq("@", "`", 1));
}

/* The index the parser fills answers as the names do: the first field of each name, how
 * many there are, and each one in order, for repeated fields in mixed case. */
static void
test_field_index_agrees_with_the_names(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char req[] = "GET / HTTP/1.1\r\nhost: a\r\nCache-Control: no-cache\r\n"
                       "X-Other: 1\r\ncache-control: max-age=5\r\nVARY: a\r\n"
                       "X-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2\r\n\r\n";
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    feed(&p, req, sizeof(req) - 1, 0);
    assert_true(p.msg.indexed);
    for (int f = 0; f < HTTP_FIELD_COUNT; f++) {
        const char *name = http_field_name((enum http_field)f);
        assert_ptr_equal(http_msg_field(&p.msg, (enum http_field)f), http_msg_find(&p.msg, name));
        assert_int_equal(http_msg_field_count(&p.msg, (enum http_field)f),
                         http_msg_count(&p.msg, name));
    }
    const struct http_header *h = http_msg_field(&p.msg, HTTP_FIELD_CACHE_CONTROL);
    assert_memory_equal(http_str_ptr(&p.msg, h->value), "no-cache", 8);
    h = http_msg_field_next(&p.msg, HTTP_FIELD_CACHE_CONTROL, h);
    assert_memory_equal(http_str_ptr(&p.msg, h->value), "max-age=5", 9);
    assert_null(http_msg_field_next(&p.msg, HTTP_FIELD_CACHE_CONTROL, h));
    assert_int_equal(http_header_field(&p.msg, &p.msg.headers[2]), HTTP_FIELD_OTHER);
    http_parser_free(&p);
}

/* A parser kept for the next visitor after a failed message starts clean: no error, no
 * limit hit, no field of the last head. */
static void
test_reset_parser_parses_the_next_request_cleanly(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char bad[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789012345678901234567890123"
                       "4567890123456789\r\n\r\n";
    const char good[] = "GET /next HTTP/1.1\r\nHost: b\r\n\r\n";
    http_parser_init(&p, HTTP_REQUEST, 48, &ops, &s);
    assert_int_equal(feed(&p, bad, sizeof(bad) - 1, 0), HTTP_PARSE_ERROR);
    assert_true(p.head_too_large);
    http_parser_reset(&p, 4096);
    assert_false(p.head_too_large);
    assert_false(http_parser_in_message(&p));
    assert_int_equal(feed(&p, good, sizeof(good) - 1, 0), HTTP_PARSE_PAUSED);
    assert_int_equal(p.msg.nheaders, 1);
    assert_memory_equal(http_str_ptr(&p.msg, p.msg.url), "/next", 5);
    assert_non_null(http_msg_find(&p.msg, "Host"));
    http_parser_free(&p);
}

/* Regression (found by fuzz_response and fuzz_cache_control): the strings of a message
 * without any ("HTTP/1.0 200\r\n\r\n": no reason, no fields) were NULL + offset. */
static void
test_strings_of_a_message_without_any_are_empty_not_null(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char resp[] = "HTTP/1.0 200\r\n\r\n";
    http_parser_init(&p, HTTP_RESPONSE, 4096, &ops, &s);
    feed(&p, resp, sizeof(resp) - 1, 0);
    assert_int_equal(s.heads, 1);
    assert_int_equal(p.msg.reason.len, 0);
    assert_non_null(http_str_ptr(&p.msg, p.msg.reason));
    assert_null(http_msg_find(&p.msg, "Date"));
    http_parser_free(&p);
}

static void
test_list_token_matching_is_case_insensitive_and_exact(void **state)
{
    const char *v = "keep-alive, Upgrade ,x-a";
    assert_true(http_list_has_token(v, strlen(v), "upgrade"));
    assert_true(http_list_has_token(v, strlen(v), "X-A"));
    assert_false(http_list_has_token(v, strlen(v), "keep"));
    assert_false(http_list_has_token(v, strlen(v), "close"));
}

/* Parse req fed in steps of step bytes (0 = whole); the last status. */
static enum http_parse_status
parse_steps(const char *req, size_t len, size_t step, struct seen *s, struct http_parser *p)
{
    http_parser_init(p, HTTP_REQUEST, 8192, &ops, s);
    return feed(p, req, len, step);
}

static void
test_chunk_data_not_followed_by_crlf_is_refused(void **state)
{
    /* llhttp 8.1 skips the two bytes after chunk data unchecked: "XX" would pass. */
    const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhelloXX0\r\n\r\n";
    const size_t steps[] = {0, 1, 2, 3, 5};
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        struct seen s = {0};
        struct http_parser p;
        assert_int_equal(parse_steps(req, sizeof(req) - 1, steps[i], &s, &p), HTTP_PARSE_ERROR);
        assert_string_equal(http_parser_error_text(&p), "chunk data not followed by CRLF");
        assert_int_equal(s.completes, 0);
        http_parser_free(&p);
    }
}

static void
test_obs_fold_is_refused_before_the_head_is_handed_over(void **state)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n";
    for (size_t step = 0; step < 3; step++) {
        struct seen s = {0};
        struct http_parser p;
        assert_int_equal(parse_steps(req, sizeof(req) - 1, step, &s, &p), HTTP_PARSE_ERROR);
        assert_string_equal(http_parser_error_text(&p),
                            "obs-fold (a header line starting with whitespace)");
        assert_int_equal(s.heads, 0);
        http_parser_free(&p);
    }
}

static void
test_chunk_extensions_are_bounded(void **state)
{
    static char req[65536];
    struct seen s = {0};
    struct http_parser p;
    int n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                                       "chunked\r\n\r\n1;a=%01100d\r\nx\r\n0\r\n\r\n", 0);
    assert_int_equal(parse_steps(req, (size_t)n, 0, &s, &p), HTTP_PARSE_ERROR);
    assert_string_equal(http_parser_error_text(&p), "chunk extensions too large");
    http_parser_free(&p);
    /* Each chunk's are within the bound, all of them together are not. */
    n = snprintf(req, sizeof(req), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked"
                                   "\r\n\r\n");
    for (int i = 0; i < 20; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "1;a=%0900d\r\nx\r\n", i);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    memset(&s, 0, sizeof(s));
    assert_int_equal(parse_steps(req, (size_t)n, 0, &s, &p), HTTP_PARSE_ERROR);
    assert_string_equal(http_parser_error_text(&p), "chunk extensions too large");
    assert_true(s.body_len > 0 && s.body_len < 20);
    http_parser_free(&p);
}

static void
test_a_chunk_past_the_body_limit_fails_before_its_data(void **state)
{
    const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "4\r\nabcd\r\nffffffffffffffff\r\nefgh";
    struct seen s = {.max_body = 100};
    struct http_parser p;
    assert_int_equal(parse_steps(req, sizeof(req) - 1, 0, &s, &p), HTTP_PARSE_ERROR);
    assert_true(p.body_too_large);
    assert_int_equal(s.body_len, 4);
    http_parser_free(&p);
    memset(&s, 0, sizeof(s));
    s.max_body = 6; /* small chunks that add up past the limit */
    const char many[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
    assert_int_equal(parse_steps(many, sizeof(many) - 1, 1, &s, &p), HTTP_PARSE_ERROR);
    assert_true(p.body_too_large);
    http_parser_free(&p);
}

static void
test_trailers_are_read_and_dropped(void **state)
{
    const char req[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\nHost: evil\r\nContent-Length: 7\r\n\r\n";
    for (size_t step = 0; step < 2; step++) {
        struct seen s = {0};
        struct http_parser p;
        assert_int_not_equal(parse_steps(req, sizeof(req) - 1, step, &s, &p), HTTP_PARSE_ERROR);
        assert_int_equal(s.completes, 1);
        assert_int_equal(p.msg.nheaders, 2);
        assert_int_equal(http_msg_count(&p.msg, "Host"), 1);
        assert_null(http_msg_find(&p.msg, "Content-Length"));
        http_parser_free(&p);
    }
}

static void
test_field_count_and_request_line_are_bounded(void **state)
{
    struct seen s = {0};
    struct http_parser p;
    const char four[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    http_parser_set_limits(&p, 3, 0);
    assert_int_equal(feed(&p, four, sizeof(four) - 1, 0), HTTP_PARSE_ERROR);
    assert_true(p.too_many_headers);
    http_parser_free(&p);
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET /%0400d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    memset(&s, 0, sizeof(s));
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    http_parser_set_limits(&p, 100, 300);
    assert_int_equal(feed(&p, req, (size_t)n, 7), HTTP_PARSE_ERROR);
    assert_true(p.url_too_long);
    http_parser_free(&p);
    n = snprintf(req, sizeof(req), "GET /%0200d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    memset(&s, 0, sizeof(s));
    http_parser_init(&p, HTTP_REQUEST, 4096, &ops, &s);
    http_parser_set_limits(&p, 100, 300);
    assert_int_not_equal(feed(&p, req, (size_t)n, 0), HTTP_PARSE_ERROR);
    assert_int_equal(s.completes, 1);
    http_parser_free(&p);
}

static void
test_whitespace_after_a_value_is_not_part_of_it(void **state)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: a.test \t \r\nX-A:  b c\t\r\n\r\n";
    struct seen s = {0};
    struct http_parser p;
    parse_steps(req, sizeof(req) - 1, 0, &s, &p);
    const struct http_header *h = http_msg_find(&p.msg, "Host");
    assert_int_equal(h->value.len, 6);
    h = http_msg_find(&p.msg, "X-A");
    assert_int_equal(h->value.len, 3);
    assert_memory_equal(http_str_ptr(&p.msg, h->value), "b c", 3);
    http_parser_free(&p);
}

static void
test_an_upgrade_request_is_followed_by_http_again(void **state)
{
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                       "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t step = 0; step < 2; step++) {
        struct seen s = {0};
        struct http_parser p;
        assert_int_not_equal(parse_steps(req, sizeof(req) - 1, step, &s, &p), HTTP_PARSE_ERROR);
        assert_int_equal(s.heads, 2);
        assert_int_equal(s.completes, 2);
        http_parser_free(&p);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_requests_whole_and_byte_by_byte_give_the_same_result),
        cmocka_unit_test(test_chunk_data_not_followed_by_crlf_is_refused),
        cmocka_unit_test(test_obs_fold_is_refused_before_the_head_is_handed_over),
        cmocka_unit_test(test_chunk_extensions_are_bounded),
        cmocka_unit_test(test_a_chunk_past_the_body_limit_fails_before_its_data),
        cmocka_unit_test(test_trailers_are_read_and_dropped),
        cmocka_unit_test(test_field_count_and_request_line_are_bounded),
        cmocka_unit_test(test_whitespace_after_a_value_is_not_part_of_it),
        cmocka_unit_test(test_an_upgrade_request_is_followed_by_http_again),
        cmocka_unit_test(test_parser_pauses_after_each_message),
        cmocka_unit_test(test_header_section_over_the_limit_fails_with_head_too_large),
        cmocka_unit_test(test_big_body_does_not_count_against_the_next_head),
        cmocka_unit_test(test_pipelined_heads_each_get_the_whole_limit),
        cmocka_unit_test(test_where_the_input_is_cut_does_not_move_the_head_limit),
        cmocka_unit_test(test_where_the_input_is_cut_does_not_change_the_error),
        cmocka_unit_test(test_close_delimited_response_completes_at_eof),
        cmocka_unit_test(test_content_length_response_cut_short_is_an_error_at_eof),
        cmocka_unit_test(test_response_to_head_has_no_body_despite_content_length),
        cmocka_unit_test(test_invalid_status_line_is_an_error),
        cmocka_unit_test(test_conflicting_content_length_and_chunked_is_refused),
        cmocka_unit_test(test_hop_by_hop_fields_include_those_named_by_connection),
        cmocka_unit_test(test_hop_marks_agree_with_names_for_every_field),
        cmocka_unit_test(test_known_field_names_are_recognised_in_any_case),
        cmocka_unit_test(test_field_index_agrees_with_the_names),
        cmocka_unit_test(test_reset_parser_parses_the_next_request_cleanly),
        cmocka_unit_test(test_fields_read_the_same_wherever_the_input_is_cut),
        cmocka_unit_test(test_a_head_cut_short_or_refused_keeps_what_was_read),
        cmocka_unit_test(test_strings_of_a_message_without_any_are_empty_not_null),
        cmocka_unit_test(test_list_token_matching_is_case_insensitive_and_exact),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
