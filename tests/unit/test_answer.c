/* test_answer.c - one name's A and AAAA replies into addresses, a TTL and one status:
 * the smallest TTL wins, a negative answer is kept for its SOA minimum, addresses win over
 * a failed query, and replies that do not parse add nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "dns/answer.h"

#include <ares.h>
#include <arpa/nameser.h>

/* A DNS message under construction. */
struct msg {
    unsigned char b[512];
    int len;
};

static void
put(struct msg *m, const void *p, int n)
{
    memcpy(m->b + m->len, p, (size_t)n);
    m->len += n;
}

static void
put16(struct msg *m, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(m, b, 2);
}

static void
put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* Header and the question "origin.test" of qtype. */
static void
begin(struct msg *m, int qtype, int rcode, int ancount, int nscount)
{
    m->len = 0;
    put16(m, 0x1234);
    put16(m, 0x8180 | (unsigned)rcode);
    put16(m, 1);
    put16(m, (unsigned)ancount);
    put16(m, (unsigned)nscount);
    put16(m, 0);
    put(m, "\6origin\4test\0", 13);
    put16(m, (unsigned)qtype);
    put16(m, C_IN);
}

/* A record named by a pointer to the question's name. */
static void
record(struct msg *m, int type, uint32_t ttl, const void *rdata, int rdlen)
{
    put(m, "\xc0\x0c", 2);
    put16(m, (unsigned)type);
    put16(m, C_IN);
    put32(m, ttl);
    put16(m, (unsigned)rdlen);
    put(m, rdata, rdlen);
}

static void
soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
    struct msg rd = {.len = 0};
    put(&rd, "\2ns\0\5admin\0", 11);
    for (uint32_t v = 1; v <= 4; v++)
        put32(&rd, v);
    put32(&rd, minimum);
    record(m, T_SOA, ttl, rd.b, rd.len);
}

static void
test_addresses_of_both_families_with_the_smallest_ttl(void **state)
{
    struct msg a, aaaa;
    begin(&a, T_A, NOERROR, 2, 0);
    record(&a, T_A, 300, "\xc0\x00\x02\x01", 4);
    record(&a, T_A, 60, "\xc0\x00\x02\x02", 4);
    static const unsigned char ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    begin(&aaaa, T_AAAA, NOERROR, 1, 0);
    record(&aaaa, T_AAAA, 120, ip6, 16);
    struct dns_collect c;
    dns_collect_init(&c);
    dns_collect_add(&c, T_A, ARES_SUCCESS, a.b, a.len);
    dns_collect_add(&c, T_AAAA, ARES_SUCCESS, aaaa.b, aaaa.len);
    assert_int_equal(dns_collect_finish(&c), 60);
    assert_int_equal(c.answer.status, DNS_OK);
    assert_int_equal(c.answer.naddrs, 3);
    assert_string_equal(c.answer.addrs[0].text, "192.0.2.1");
    assert_string_equal(c.answer.addrs[1].text, "192.0.2.2");
    assert_string_equal(c.answer.addrs[2].text, "2001:db8::1");
    assert_int_equal(c.answer.addrs[2].sa.ss_family, AF_INET6);
}

static void
test_nxdomain_is_kept_for_the_soa_minimum(void **state)
{
    struct msg a;
    begin(&a, T_A, NXDOMAIN, 0, 1);
    soa(&a, 300, 45);
    struct dns_collect c;
    dns_collect_init(&c);
    dns_collect_add(&c, T_A, ARES_ENOTFOUND, a.b, a.len);
    dns_collect_add(&c, T_AAAA, ARES_ENOTFOUND, a.b, a.len);
    assert_int_equal(dns_collect_finish(&c), 45);
    assert_int_equal(c.answer.status, DNS_NXDOMAIN);
    assert_int_equal(c.answer.naddrs, 0);
    begin(&a, T_A, NXDOMAIN, 0, 1);
    soa(&a, 10, 45); /* the SOA's own TTL caps its minimum (RFC 2308 section 5) */
    dns_collect_init(&c);
    dns_collect_add(&c, T_A, ARES_ENOTFOUND, a.b, a.len);
    dns_collect_add(&c, T_AAAA, ARES_ENODATA, NULL, 0);
    assert_int_equal(dns_collect_finish(&c), 10);
}

static void
test_addresses_win_over_a_failed_query_and_failures_keep_their_kind(void **state)
{
    struct msg a;
    begin(&a, T_A, NOERROR, 1, 0);
    record(&a, T_A, 30, "\x7f\x00\x00\x01", 4);
    struct dns_collect c;
    dns_collect_init(&c);
    dns_collect_add(&c, T_A, ARES_SUCCESS, a.b, a.len);
    dns_collect_add(&c, T_AAAA, ARES_ETIMEOUT, NULL, 0);
    assert_int_equal(dns_collect_finish(&c), 30);
    assert_int_equal(c.answer.status, DNS_OK);
    static const struct {
        int a, aaaa;
        enum dns_status status;
    } cases[] = {
        {ARES_ENODATA, ARES_ENODATA, DNS_NODATA},       {ARES_ETIMEOUT, ARES_ENODATA, DNS_TIMEOUT},
        {ARES_ESERVFAIL, ARES_ETIMEOUT, DNS_TIMEOUT},   {ARES_EREFUSED, ARES_ENODATA, DNS_REFUSED},
        {ARES_ESERVFAIL, ARES_ESERVFAIL, DNS_SERVFAIL}, {ARES_EBADRESP, ARES_ENODATA, DNS_FAILED},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        dns_collect_init(&c);
        dns_collect_add(&c, T_A, cases[i].a, NULL, 0);
        dns_collect_add(&c, T_AAAA, cases[i].aaaa, NULL, 0);
        dns_collect_finish(&c);
        assert_int_equal(c.answer.status, cases[i].status);
    }
}

static void
test_a_reply_that_does_not_parse_adds_nothing(void **state)
{
    struct msg a;
    begin(&a, T_A, NOERROR, 1, 0);
    record(&a, T_A, 30, "\x7f\x00\x00\x01", 4);
    struct dns_collect c;
    dns_collect_init(&c);
    dns_collect_add(&c, T_A, ARES_SUCCESS, a.b, a.len - 3); /* cut inside the address */
    dns_collect_add(&c, T_AAAA, ARES_ENODATA, a.b, 5);      /* shorter than a header */
    dns_collect_finish(&c);
    assert_int_equal(c.answer.naddrs, 0);
    assert_int_equal(c.answer.status, DNS_FAILED);
    assert_int_equal(c.neg_ttl, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses_of_both_families_with_the_smallest_ttl),
        cmocka_unit_test(test_nxdomain_is_kept_for_the_soa_minimum),
        cmocka_unit_test(test_addresses_win_over_a_failed_query_and_failures_keep_their_kind),
        cmocka_unit_test(test_a_reply_that_does_not_parse_adds_nothing),
    };
    return cmocka_run_group_tests_name("answer", tests, NULL, NULL);
}
