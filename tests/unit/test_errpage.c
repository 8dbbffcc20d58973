/* test_errpage.c - error bodies: format chosen by Accept (with q-values), escaping in every
 * format, owner details hidden on request, cause-specific words and hints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "edge/errpage.h"

static const char *
render(const struct errpage *p, const char *accept, struct buf *out)
{
    buf_init(out, 1 << 20);
    return errpage_render(p, accept, accept ? strlen(accept) : 0, out);
}

static struct proxy_error
failure(enum proxy_error_type type, uint64_t waited_ms)
{
    struct proxy_error e = {0};
    proxy_error_set(&e, type, PROXY_PHASE_CONNECT, 0, "10.0.0.5:8000", waited_ms, "%s",
                    "connect() failed (111: Connection refused)");
    snprintf(e.origin, sizeof(e.origin), "http://origin.example:8000");
    return e;
}

static struct errpage
page(const struct proxy_error *e)
{
    return (struct errpage){.status = 502, .err = e, .details = true, .request_id = "rid-1",
                            .edge_name = "edge-1", .host = "www.example",
                            .origin_url = e ? e->origin : NULL, .retry_after = 5,
                            .is_get = true, .now = 0};
}

static void
test_accept_negotiation_follows_q_values(void **state)
{
    const char *browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    assert_int_equal(errpage_negotiate(browser, strlen(browser)), ERRPAGE_HTML);
    assert_int_equal(errpage_negotiate("application/json", 16), ERRPAGE_JSON);
    const char *prefer_json = "text/html;q=0.5, application/problem+json";
    assert_int_equal(errpage_negotiate(prefer_json, strlen(prefer_json)), ERRPAGE_JSON);
    const char *prefer_html = "application/json;q=0.2, text/html;q=0.9";
    assert_int_equal(errpage_negotiate(prefer_html, strlen(prefer_html)), ERRPAGE_HTML);
    assert_int_equal(errpage_negotiate("*/*", 3), ERRPAGE_TEXT);
    assert_int_equal(errpage_negotiate(NULL, 0), ERRPAGE_TEXT);
    assert_int_equal(errpage_negotiate("text/html;q=0", 13), ERRPAGE_TEXT);
}

static void
test_content_types_match_the_format(void **state)
{
    struct proxy_error e = failure(PROXY_ERR_CONNECTION_REFUSED, 1);
    struct errpage p = page(&e);
    struct buf out;
    assert_string_equal(render(&p, "text/html", &out), "text/html; charset=utf-8");
    buf_free(&out);
    assert_string_equal(render(&p, "application/json", &out), "application/problem+json");
    assert_non_null(strstr(out.data, "\"type\":\"https://verge.invalid/problems/connection_refused\""));
    assert_non_null(strstr(out.data, "\"status\":502"));
    buf_free(&out);
    assert_string_equal(render(&p, NULL, &out), "text/plain; charset=utf-8");
    buf_free(&out);
}

static void
test_hostile_values_are_escaped_in_every_format(void **state)
{
    struct proxy_error e = failure(PROXY_ERR_HTTP_PROTOCOL_ERROR, 1);
    snprintf(e.detail, sizeof(e.detail), "bad <script>\"&'\\");
    struct errpage p = page(&e);
    p.host = "<script>alert(1)</script>";
    struct buf out;
    render(&p, "text/html", &out);
    buf_append(&out, "", 1);
    assert_null(strstr(out.data, "<script>"));
    assert_non_null(strstr(out.data, "&#60;script&#62;alert(1)"));
    buf_free(&out);
    render(&p, "application/json", &out);
    buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "bad <script>\\\"&'\\\\"));
    buf_free(&out);
}

static void
test_owner_details_are_hidden_when_asked(void **state)
{
    struct proxy_error e = failure(PROXY_ERR_CONNECTION_REFUSED, 1);
    struct errpage p = page(&e);
    p.details = false;
    const char *formats[] = {"text/html", "application/json", "text/plain"};
    for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
        struct buf out;
        render(&p, formats[i], &out);
        buf_append(&out, "", 1);
        assert_null(strstr(out.data, "10.0.0.5"));
        assert_null(strstr(out.data, "verge check"));
        assert_non_null(strstr(out.data, "rid-1"));
        assert_non_null(strstr(out.data, "refused the connection"));
        buf_free(&out);
    }
}

static void
test_each_cause_has_its_own_words_and_hint(void **state)
{
    static const struct {
        enum proxy_error_type type;
        uint64_t waited;
        const char *visitor, *owner;
    } cases[] = {
        {PROXY_ERR_CONNECTION_REFUSED, 1, "refused the connection", "listening on port 8000"},
        {PROXY_ERR_CONNECTION_TIMEOUT, 5000, "firewall may be dropping",
         "within 5.0 s. A firewall may be dropping"},
        {PROXY_ERR_DNS_ERROR, 3, "could not find the address", "The name origin.example does not resolve"},
        {PROXY_ERR_HTTP_RESPONSE_TIMEOUT, 30000, "took longer than 30.0 s", "no response header within 30.0 s"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct proxy_error e = failure(cases[i].type, cases[i].waited);
        struct errpage p = page(&e);
        struct buf out;
        render(&p, "text/plain", &out);
        buf_append(&out, "", 1);
        if (strstr(out.data, cases[i].visitor) == NULL || strstr(out.data, cases[i].owner) == NULL)
            fail_msg("%s page lacks \"%s\" or \"%s\":\n%s", proxy_error_name(cases[i].type),
                     cases[i].visitor, cases[i].owner, out.data);
        assert_non_null(strstr(out.data, "verge check http://origin.example:8000"));
        assert_non_null(strstr(out.data, "not a problem with your browser"));
        buf_free(&out);
    }
}

static void
test_html_reloads_itself_only_for_get_with_retry_after(void **state)
{
    struct proxy_error e = failure(PROXY_ERR_CONNECTION_REFUSED, 1);
    struct errpage p = page(&e);
    struct buf out;
    render(&p, "text/html", &out);
    buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "http-equiv=refresh content=\"5\""));
    buf_free(&out);
    p.is_get = false;
    render(&p, "text/html", &out);
    buf_append(&out, "", 1);
    assert_null(strstr(out.data, "http-equiv=refresh"));
    buf_free(&out);
    p.is_get = true;
    p.retry_after = 0;
    render(&p, "text/html", &out);
    buf_append(&out, "", 1);
    assert_null(strstr(out.data, "http-equiv=refresh"));
    buf_free(&out);
}

static void
test_refusals_speak_to_the_visitor_only(void **state)
{
    struct errpage p = page(NULL);
    p.status = 421;
    p.message = "This server does not serve the requested host name.";
    struct buf out;
    render(&p, "text/html", &out);
    buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "does not serve the requested host"));
    assert_null(strstr(out.data, "For the site owner"));
    assert_null(strstr(out.data, "http-equiv=refresh"));
    buf_free(&out);
}

/* A page rendered with holes, filled in later, is the page rendered for that request
 * directly: in every format, with the zone's template too, the request id escaped for
 * the format wherever it shows, and a second fill independent of the first. */
static void
test_pages_with_holes_fill_in_to_the_page_of_each_request(void **state)
{
    struct proxy_error e = failure(PROXY_ERR_CONNECTION_REFUSED, 3);
    struct errpage p = page(&e);
    const char *accepts[] = {"text/html", "application/json", "text/plain"};
    const char *tmpl = "<p>{{request_id}}</p><p>{{time}}</p><p>{{request_id}}</p>{{host}}";
    struct errpage_text t;
    errpage_text_init(&t, ERRPAGE_TEXT);
    for (int k = 0; k < 4; k++) {
        p.html_template = k == 3 ? tmpl : NULL;
        enum errpage_format f = errpage_negotiate(accepts[k % 3], strlen(accepts[k % 3]));
        errpage_render_text(&p, f, &t);
        assert_true(t.nholes >= 2);
        const char *rids[] = {"rid-1", "r<2>\"&"};
        for (int i = 0; i < 2; i++) {
            struct buf want, got;
            p.request_id = rids[i];
            p.now = 1764614052.5 + i * 3600;
            render(&p, accepts[k % 3], &want);
            buf_init(&got, 1 << 20);
            errpage_text_fill(&t, p.request_id, p.now, 0, &got);
            assert_int_equal(buf_used(&got), buf_used(&want));
            assert_memory_equal(buf_head(&got), buf_head(&want), buf_used(&want));
            buf_append(&got, "", 1);
            if (f == ERRPAGE_HTML) /* escaped as the format needs */
                assert_null(strstr(got.data, "r<2>"));
            buf_free(&want);
            buf_free(&got);
        }
    }
    errpage_text_free(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_negotiation_follows_q_values),
        cmocka_unit_test(test_content_types_match_the_format),
        cmocka_unit_test(test_hostile_values_are_escaped_in_every_format),
        cmocka_unit_test(test_owner_details_are_hidden_when_asked),
        cmocka_unit_test(test_each_cause_has_its_own_words_and_hint),
        cmocka_unit_test(test_html_reloads_itself_only_for_get_with_retry_after),
        cmocka_unit_test(test_refusals_speak_to_the_visitor_only),
        cmocka_unit_test(test_pages_with_holes_fill_in_to_the_page_of_each_request),
    };
    return cmocka_run_group_tests_name("errpage", tests, NULL, NULL);
}
