/* test_freshness.c - RFC 9111 calculations: Cache-Control parsing, storability, freshness
 * lifetime (explicit and heuristic), current age, stale-if-error (RFC 5861). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cache/freshness.h"
#include "parse_head.h"

struct parsed {
    struct http_parser p;
};

/* Parse a message head (request or response) into m. */
static const struct http_msg *
parse(struct parsed *m, llhttp_type_t type, const char *text)
{
    return parse_head(&m->p, type, text);
}

#define GET "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
#define DATE "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"

static void
test_cache_control_lists_quotes_and_several_fields(void **state)
{
    struct parsed m;
    struct cache_control cc;
    cache_control_parse(parse(&m, HTTP_RESPONSE,
                              "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=\"60\", foo=\"a,b\"\r\n"
                              "Cache-Control: S-MaxAge=30,stale-if-error=600\r\n\r\n"),
                        &cc);
    assert_true(cc.public_);
    assert_int_equal(cc.max_age, 60);
    assert_int_equal(cc.s_maxage, 30);
    assert_int_equal(cc.stale_if_error, 600);
    assert_false(cc.no_store);
    assert_int_equal(cc.min_fresh, CC_UNSET);
    http_parser_free(&m.p);
}

static void
test_dates_in_all_three_formats(void **state)
{
    const char *fixdate = "Sun, 06 Nov 1994 08:49:37 GMT", *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT",
               *asc = "Sun Nov  6 08:49:37 1994";
    assert_int_equal(http_date_parse(fixdate, strlen(fixdate)), 784111777);
    assert_int_equal(http_date_parse(rfc850, strlen(rfc850)), 784111777);
    assert_int_equal(http_date_parse(asc, strlen(asc)), 784111777);
    assert_int_equal(http_date_parse("yesterday", 9), -1);
    char out[30];
    http_date_format(784111777, out);
    assert_string_equal(out, fixdate);
}

/* What http_date_parse gave before IMF-fixdate was read by hand: strptime, then timegm. */
static time_t
by_strptime(const char *text)
{
    struct tm tm = {0};
    const char *end = strptime(text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    time_t t = timegm(&tm);
    return t > HTTP_DATE_MAX ? HTTP_DATE_MAX : t;
}

static void
same_as_strptime(const char *text)
{
    time_t want = by_strptime(text), got = http_date_parse(text, strlen(text));
    if (got != want)
        fail_msg("\"%s\": %lld, strptime read %lld", text, (long long)got, (long long)want);
}

/* Every IMF-fixdate reads as strptime read it: each day of years 0 to 9999 at a time of
 * day that moves with it, days past the end of their month, leap seconds, the clamp at
 * 9999, and forms only strptime takes (other case, full names, one-digit fields). */
static void
test_fixdates_read_by_hand_as_strptime_reads_them(void **state)
{
    static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char text[64];
    for (int y = 0; y <= 9999; y += (y < 1900 || y > 2100) ? 7 : 1) {
        for (int m = 0; m < 12; m++) {
            for (int d = 1; d <= 31; d += (y % 4 == 0) ? 1 : 3) {
                int secs = (int)((long long)(y * 372 + m * 31 + d) * 7919 % 86400);
                snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                         wdays[(y + m + d) % 7], d, mons[m], y, secs / 3600, secs / 60 % 60,
                         secs % 60);
                same_as_strptime(text);
            }
        }
    }
    static const char *const edges[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:58 GMT", "Sat, 31 Feb 2021 12:00:00 GMT",
        "Sun, 30 Jun 2030 23:59:60 GMT", "Sun, 30 Jun 2030 23:59:61 GMT",
        "Fri, 31 Dec 9999 23:59:59 GMT", "Fri, 31 Dec 9999 23:59:61 GMT",
        "Mon, 01 Jan 0000 00:00:00 GMT", "sun, 06 nov 1994 08:49:37 GMT",
        "SUN, 06 NOV 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",  "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:62 GMT", "Sun, 06 Xyz 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 19x4 08:49:37 GMT", "Sun, 06 Nov -994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        same_as_strptime(edges[i]);
}

/* Found by fuzz_cache_control: a leap second on 9999-12-31 rolled into year 10000, which
 * did not fit the 30-byte buffer and was written unterminated. */
static void
test_dates_past_year_9999_clamp(void **state)
{
    const char *leap = "Fri, 31 Dec 9999 23:59:60 GMT";
    assert_int_equal(http_date_parse(leap, strlen(leap)), HTTP_DATE_MAX);
    char out[30];
    http_date_format(HTTP_DATE_MAX + 1, out);
    assert_string_equal(out, "Fri, 31 Dec 9999 23:59:59 GMT");
    http_date_format(-5, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static bool
storable(const char *req, const char *resp)
{
    struct parsed a, b;
    char why[64];
    bool ok = cache_storable(parse(&a, HTTP_REQUEST, req), parse(&b, HTTP_RESPONSE, resp), why,
                             sizeof(why));
    http_parser_free(&a.p);
    http_parser_free(&b.p);
    return ok;
}

static void
test_what_a_shared_cache_may_store(void **state)
{
    assert_true(storable(GET, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 200 OK\r\nCache-Control: no-store, max-age=60\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 200 OK\r\nCache-Control: private, max-age=60\r\n\r\n"));
    assert_false(storable("GET / HTTP/1.1\r\nHost: a\r\nCache-Control: no-store\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_false(storable("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 200 OK\r\nVary: *\r\nCache-Control: max-age=60\r\n\r\n"));
    /* Authorization: only with public, s-maxage or must-revalidate */
    const char *auth = "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\r\n\r\n";
    assert_false(storable(auth, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_true(storable(auth, "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=60\r\n\r\n"));
    assert_true(storable(auth, "HTTP/1.1 200 OK\r\nCache-Control: s-maxage=60\r\n\r\n"));
    /* statuses: heuristically cacheable ones, others only with explicit freshness */
    assert_true(storable(GET, "HTTP/1.1 404 Not Found\r\nLast-Modified: " "Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 503 Busy\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    assert_true(storable(GET, "HTTP/1.1 503 Busy\r\nCache-Control: max-age=5\r\n\r\n"));
    /* a 304 is one conditional visitor's answer, never a stored response */
    assert_false(storable("GET / HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
                          "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=60\r\n"
                          "ETag: \"x\"\r\n\r\n"));
    /* negative caching: 404/410 per their headers; a 5xx never on public alone */
    assert_true(storable(GET, "HTTP/1.1 410 Gone\r\nCache-Control: max-age=60\r\n\r\n"));
    assert_true(storable(GET, "HTTP/1.1 404 Not Found\r\nExpires: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                              "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 404 Not Found\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 500 Oops\r\nCache-Control: public\r\n"
                               "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    assert_true(storable(GET, "HTTP/1.1 502 Bad\r\nCache-Control: public, s-maxage=5\r\n\r\n"));
    assert_true(storable(GET, "HTTP/1.1 403 Forbidden\r\nCache-Control: public\r\n"
                              "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"));
    assert_false(storable(GET, "HTTP/1.1 200 OK\r\n\r\n")); /* nothing to go on */
}

static int64_t
lifetime(const char *resp, int64_t cap)
{
    struct parsed m;
    int64_t v = cache_freshness_lifetime(parse(&m, HTTP_RESPONSE, resp), cap);
    http_parser_free(&m.p);
    return v;
}

static void
test_freshness_lifetime_precedence(void **state)
{
    assert_int_equal(lifetime("HTTP/1.1 200 OK\r\nCache-Control: max-age=60, s-maxage=30\r\n"
                              "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n" DATE "\r\n", 86400), 30);
    assert_int_equal(lifetime("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                              "Expires: Sun, 06 Nov 1994 09:49:37 GMT\r\n" DATE "\r\n", 86400), 60);
    assert_int_equal(lifetime("HTTP/1.1 200 OK\r\nExpires: Sun, 06 Nov 1994 09:49:37 GMT\r\n"
                              DATE "\r\n", 86400), 3600);
    assert_int_equal(lifetime("HTTP/1.1 200 OK\r\nExpires: 0\r\n" DATE "\r\n", 86400), 0);
    /* heuristic: 10% of Date - Last-Modified (10 days → 1 day), capped */
    const char *lm = "HTTP/1.1 200 OK\r\nLast-Modified: Thu, 27 Oct 1994 08:49:37 GMT\r\n" DATE "\r\n";
    assert_int_equal(lifetime(lm, 864000), 86400);
    assert_int_equal(lifetime(lm, 3600), 3600);
    assert_int_equal(lifetime(lm, 0), 0); /* heuristics off */
}

static void
test_current_age_follows_rfc_9111_4_2_3(void **state)
{
    struct parsed m;
    /* Date 10 s before the response arrived, Age 5, 2 s in flight, 100 s in the cache:
     * apparent_age 10; corrected_age_value 5 + 2 = 7; initial 10; age 110. */
    const struct http_msg *r = parse(&m, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nAge: 5\r\n" DATE "\r\n");
    time_t date = 784111777;
    assert_int_equal(cache_current_age(r, date + 8, date + 10, date + 110), 110);
    http_parser_free(&m.p);
    /* Age larger than the apparent age wins */
    r = parse(&m, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nAge: 50\r\n" DATE "\r\n");
    assert_int_equal(cache_current_age(r, date, date + 1, date + 1), 51);
    http_parser_free(&m.p);
}

static int64_t
sie(const char *resp, int64_t zone_default)
{
    struct parsed m;
    int64_t v = cache_stale_if_error(parse(&m, HTTP_RESPONSE, resp), zone_default);
    http_parser_free(&m.p);
    return v;
}

static void
test_stale_if_error_window(void **state)
{
    assert_int_equal(sie("HTTP/1.1 200 OK\r\nCache-Control: max-age=60, stale-if-error=300\r\n\r\n", 0), 300);
    assert_int_equal(sie("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n", 86400), 86400);
    assert_int_equal(sie("HTTP/1.1 200 OK\r\nCache-Control: max-age=60, must-revalidate, "
                         "stale-if-error=300\r\n\r\n", 86400), 0);
    assert_int_equal(sie("HTTP/1.1 200 OK\r\nCache-Control: s-maxage=60\r\n\r\n", 86400), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_control_lists_quotes_and_several_fields),
        cmocka_unit_test(test_dates_in_all_three_formats),
        cmocka_unit_test(test_dates_past_year_9999_clamp),
        cmocka_unit_test(test_fixdates_read_by_hand_as_strptime_reads_them),
        cmocka_unit_test(test_what_a_shared_cache_may_store),
        cmocka_unit_test(test_freshness_lifetime_precedence),
        cmocka_unit_test(test_current_age_follows_rfc_9111_4_2_3),
        cmocka_unit_test(test_stale_if_error_window),
    };
    return cmocka_run_group_tests_name("freshness", tests, NULL, NULL);
}
