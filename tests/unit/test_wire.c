/* test_wire.c - DNS messages as received: rcode, records of each section, CNAME targets
 * through compression pointers, malformed messages refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "dns/wire.h"

/* www.test CNAME cdn.test (ttl 300), cdn.test A 10.0.0.5 (ttl 60), then an SOA in the
 * authority section (ttl 30, minimum 45). */
static const unsigned char answer[] = {
    0x12, 0x34, 0x81, 0x80, 0,    1,    0,  2, 0,    1,    0,  0,  3,  'w', 'w', 'w',
    4,    't',  'e',  's',  't',  0,    0,  1, 0,    1,           /* question at 12 */
    0xc0, 12,   0,    5,    0,    1,    0,  0, 0x01, 0x2c, 0,  6, /* CNAME, ttl 300 */
    3,    'c',  'd',  'n',  0xc0, 16,                             /* cdn.test at 38 */
    0xc0, 38,   0,    1,    0,    1,    0,  0, 0,    60,   0,  4,  10, 0,   0,   5, /* A 10.0.0.5 */
    0xc0, 16,   0,    6,    0,    1,    0,  0, 0,    30,   0,  27, /* SOA for test */
    2,    'n',  's',  0xc0, 16,   0xc0, 16, 0, 0,    0,    1,  0,  0,  0,   2,   0,
    0,    0,    3,    0,    0,    0,    4,  0, 0,    0,    45,
};

struct seen {
    int n, types[8], sections[8];
    uint32_t ttls[8];
    char names[8][64], targets[8][64];
};

static int
collect(void *arg, const struct dns_rr *rr, const unsigned char *msg, int len)
{
    struct seen *s = arg;
    int i = s->n++;
    s->types[i] = rr->type;
    s->sections[i] = rr->section;
    s->ttls[i] = rr->ttl;
    snprintf(s->names[i], sizeof(s->names[i]), "%s", rr->name);
    if (rr->type == 5)
        assert_int_equal(dns_wire_name(msg, len, rr->rdata, s->targets[i], sizeof(s->targets[i])),
                         0);
    return 0;
}

static void
test_records_of_each_section_in_order(void **state)
{
    struct seen s = {0};
    assert_int_equal(dns_wire_walk(answer, sizeof(answer), collect, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.types[0], 5);
    assert_string_equal(s.names[0], "www.test");
    assert_string_equal(s.targets[0], "cdn.test");
    assert_int_equal(s.ttls[0], 300);
    assert_int_equal(s.types[1], 1);
    assert_string_equal(s.names[1], "cdn.test");
    assert_int_equal(s.ttls[1], 60);
    assert_int_equal(s.sections[2], DNS_SECTION_AUTHORITY);
    assert_int_equal(s.types[2], 6);
}

static int
stop_at_first(void *arg, const struct dns_rr *rr, const unsigned char *msg, int len)
{
    (*(int *)arg)++;
    return 1;
}

static void
test_callback_can_stop_the_walk(void **state)
{
    int n = 0;
    assert_int_equal(dns_wire_walk(answer, sizeof(answer), stop_at_first, &n), 0);
    assert_int_equal(n, 1);
}

static void
test_rcode_and_its_name(void **state)
{
    unsigned char msg[sizeof(answer)];
    char tmp[16];
    memcpy(msg, answer, sizeof(msg));
    assert_int_equal(dns_wire_rcode(msg, sizeof(msg)), 0);
    msg[3] = 0x83;
    assert_int_equal(dns_wire_rcode(msg, sizeof(msg)), 3);
    assert_string_equal(dns_wire_rcode_name(3, tmp), "NXDOMAIN");
    assert_string_equal(dns_wire_rcode_name(2, tmp), "SERVFAIL");
    assert_string_equal(dns_wire_rcode_name(12, tmp), "RCODE12");
    assert_int_equal(dns_wire_rcode(msg, 11), -1);
}

static void
test_truncated_or_looping_messages_are_refused(void **state)
{
    struct seen s = {0};
    for (size_t len = 12; len < sizeof(answer); len++) {
        s.n = 0;
        int rc = dns_wire_walk(answer, (int)len, collect, &s);
        assert_true(rc == -1 || s.n < 3); /* never reads past the end */
    }
    unsigned char loop[sizeof(answer)];
    memcpy(loop, answer, sizeof(loop));
    loop[12] = 0xc0; /* the question's name points at itself */
    loop[13] = 12;
    assert_int_equal(dns_wire_walk(loop, sizeof(loop), collect, &s), -1);
    assert_int_equal(dns_wire_walk(NULL, 0, collect, &s), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_of_each_section_in_order),
        cmocka_unit_test(test_callback_can_stop_the_walk),
        cmocka_unit_test(test_rcode_and_its_name),
        cmocka_unit_test(test_truncated_or_looping_messages_are_refused),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
