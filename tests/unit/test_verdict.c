/* test_verdict.c - the culprit named from evidence, and the firewall fingerprint: what it
 * likely is, where, and what to allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "diag/verdict.h"

#include <arpa/inet.h>

static struct config *cfg;

static int
setup(void **state)
{
    char err[256];
    if (config_load_string("t.yaml",
                           "zones: [ { name: z, hosts: [a.test], origins: "
                           "[\"http://origin.test:8080\"] } ]\n",
                           &cfg, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return 0;
}

static int
teardown(void **state)
{
    config_release(&cfg);
    return 0;
}

/* One origin with one address that answered DNS. */
static void
evidence(struct evidence_origin *e, const char *addr)
{
    memset(e, 0, sizeof(*e));
    e->zone = &cfg->zones[0];
    e->origin = &cfg->zones[0].origins[0];
    e->started = e->dns_done = true;
    e->naddrs = 1;
    assert_int_equal(config_addr_parse(addr, 8080, &e->addrs[0].addr), 0);
    e->addrs[0].ran_tcp = true;
    e->addrs[0].tcp.count = e->addrs[0].tcp.done = 1;
    snprintf(e->addrs[0].tcp.address, sizeof(e->addrs[0].tcp.address), "%s", addr);
    snprintf(e->addrs[0].tcp.local, sizeof(e->addrs[0].tcp.local), "192.0.2.1");
}

static void
icmp_from(struct net_icmp *m, const char *ip, uint8_t type, uint8_t code)
{
    struct sockaddr_in *s = (struct sockaddr_in *)&m->from;
    memset(m, 0, sizeof(*m));
    m->origin_icmp = m->has_from = true;
    m->family = AF_INET;
    m->type = type;
    m->code = code;
    s->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &s->sin_addr);
}

static void
test_no_address_is_dns(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    e.naddrs = 0;
    e.dns_flags = DNS_FLAG_NXDOMAIN;
    snprintf(e.answer.detail, sizeof(e.answer.detail), "origin.test: rcode=NXDOMAIN");
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_DNS);
    assert_string_equal(e.evidence, "origin.test: rcode=NXDOMAIN");
    assert_true(strncmp(e.next, "the name does not exist", 23) == 0);
}

static void
test_resets_everywhere_are_origin_down_not_a_firewall(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    e.addrs[0].tcp.outcome = e.addrs[0].tcp.tries[0].outcome = TCPPROBE_REFUSED;
    e.addrs[0].tcp.refused = 1;
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_ORIGIN_DOWN);
    assert_string_equal(e.evidence,
                        "every address of origin.test refuses connections on port 8080");
    assert_false(e.fw.found);
}

static void
test_silent_drop_names_the_last_hop_that_answered(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    struct evidence_addr *a = &e.addrs[0];
    a->tcp.outcome = a->tcp.tries[0].outcome = TCPPROBE_NO_ANSWER;
    a->tcp.silent = 1;
    a->ran_tcp_trace = true;
    a->tcp_trace.last_ttl = a->tcp_trace.sent_up_to = 3;
    for (int i = 0; i < 3; i++) {
        a->tcp_trace.hops[i].answered = true;
        snprintf(a->tcp_trace.hops[i].address, 64, "198.18.0.%d", i + 1);
    }
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_FIREWALL);
    assert_string_equal(e.fw.kind, "drop");
    assert_true(strncmp(e.fw.where, "198.18.0.3 (hop 3, the last to answer", 37) == 0);
    assert_string_equal(e.next, e.fw.allow);
    assert_non_null(strstr(e.fw.allow, "allow the edge's address 192.0.2.1 to port 8080 on "
                                       "10.0.0.5 in the firewall at 198.18.0.3 (hop 3)"));
}

static void
test_icmp_rejects_are_told_apart(void **state)
{
    static const struct {
        uint8_t code;
        const char *kind;
    } cases[] = {{13, "reject_admin_prohibited"},
                 {3, "reject_port_unreachable"},
                 {1, "reject_host_unreachable"},
                 {0, "no_route"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct evidence_origin e;
        evidence(&e, "10.0.0.5:8080");
        struct tcpprobe_try *t = &e.addrs[0].tcp.tries[0];
        e.addrs[0].tcp.outcome = t->outcome = TCPPROBE_UNREACHABLE;
        e.addrs[0].tcp.unreachable = 1;
        t->has_icmp = true;
        icmp_from(&t->icmp, "10.0.0.5", 3, cases[i].code);
        verdict_judge(&e);
        assert_int_equal(e.verdict, CHECK_FIREWALL);
        assert_string_equal(e.fw.kind, cases[i].kind);
        assert_string_equal(e.fw.where, "10.0.0.5, the origin host itself");
    }
}

static void
test_reset_after_client_hello_is_a_middlebox(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    e.addrs[0].tcp.outcome = TCPPROBE_OPEN;
    e.addrs[0].tcp.open = 1;
    e.tls.attempted = e.tls.connected = e.tls.reset_after_hello = true;
    snprintf(e.tls.address, sizeof(e.tls.address), "10.0.0.5:8080");
    snprintf(e.tls.sni, sizeof(e.tls.sni), "origin.test");
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_FIREWALL);
    assert_string_equal(e.fw.kind, "tls_reset");
    assert_non_null(strstr(e.fw.likely, "resets TLS connections for origin.test"));
}

static void
test_certificate_findings_are_tls_problems(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    e.addrs[0].tcp.open = 1;
    e.tls.attempted = e.tls.connected = e.tls.handshake_ok = true;
    e.tls.chain_ok = e.tls.name_ok = true;
    e.tls.days_left = -3;
    snprintf(e.tls.not_after, sizeof(e.tls.not_after), "2026-01-01");
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_TLS);
    assert_string_equal(e.evidence, "the certificate of origin.test expired on 2026-01-01 (3 "
                                    "days ago)");
    e.tls.days_left = 20;
    e.tls.name_ok = false;
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_TLS);
    assert_non_null(strstr(e.evidence, "is not valid for that name"));
}

static void
test_http_errors_and_wafs(void **state)
{
    struct evidence_origin e;
    evidence(&e, "10.0.0.5:8080");
    e.addrs[0].tcp.open = 1;
    e.http.attempted = e.http.finished = true;
    e.http.error = PROXY_ERR_HTTP_RESPONSE_TIMEOUT;
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_SLOW);
    e.http.error = PROXY_ERR_HTTP_PROTOCOL_ERROR;
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_INVALID);
    e.http.error = PROXY_ERR_NONE;
    e.http.head_ok = true;
    e.http.status = 403;
    snprintf(e.http.waf, sizeof(e.http.waf), "Imperva");
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_FIREWALL);
    assert_string_equal(e.fw.kind, "waf");
    e.http.waf[0] = '\0';
    verdict_judge(&e);
    assert_int_equal(e.verdict, CHECK_OK); /* an origin's own 403 */
    assert_string_equal(e.evidence, "resolves, accepts connections and answers (HTTP 403)");
}

static void
test_first_failing_origin_decides(void **state)
{
    struct evidence_origin o[3];
    const struct evidence_origin *which;
    memset(o, 0, sizeof(o));
    o[0].started = true;
    o[1].started = true;
    o[1].verdict = CHECK_SLOW;
    o[2].started = true;
    o[2].verdict = CHECK_DNS;
    assert_int_equal(verdict_overall(o, 3, false, &which), CHECK_SLOW);
    assert_ptr_equal(which, &o[1]);
    assert_int_equal(verdict_overall(o, 1, true, &which), CHECK_INTERRUPTED);
    assert_null(which);
    assert_int_equal(verdict_overall(o, 1, false, &which), CHECK_OK);
    assert_string_equal(verdict_name(CHECK_TLS), "TLS problem");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_address_is_dns),
        cmocka_unit_test(test_resets_everywhere_are_origin_down_not_a_firewall),
        cmocka_unit_test(test_silent_drop_names_the_last_hop_that_answered),
        cmocka_unit_test(test_icmp_rejects_are_told_apart),
        cmocka_unit_test(test_reset_after_client_hello_is_a_middlebox),
        cmocka_unit_test(test_certificate_findings_are_tls_problems),
        cmocka_unit_test(test_http_errors_and_wafs),
        cmocka_unit_test(test_first_failing_origin_decides),
    };
    return cmocka_run_group_tests_name("verdict", tests, setup, teardown);
}
