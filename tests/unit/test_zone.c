/* test_zone.c - Host → zone: exact, wildcard (longest wins), catch-all, normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "edge/zone.h"

static struct config *
load(const char *yaml)
{
    char err[512];
    struct config *cfg = NULL;
    if (config_load_string("test.yaml", yaml, &cfg, err, sizeof(err)) < 0)
        fail_msg("config did not load: %s", err);
    return cfg;
}

static const char *
zone_of(const struct config *cfg, const char *host)
{
    const struct config_zone *z = zone_find(cfg, host, strlen(host));
    return z ? z->name : NULL;
}

static const char *const zones_yaml =
    "zones:\n"
    "  - name: exact\n"
    "    hosts: [ www.example.com ]\n"
    "    origins: [ \"http://127.0.0.1:1\" ]\n"
    "  - name: wild\n"
    "    hosts: [ \"*.example.com\" ]\n"
    "    origins: [ \"http://127.0.0.1:1\" ]\n"
    "  - name: deeper\n"
    "    hosts: [ \"*.static.example.com\" ]\n"
    "    origins: [ \"http://127.0.0.1:1\" ]\n";

static void
test_exact_name_beats_wildcard(void **state)
{
    struct config *cfg = load(zones_yaml);
    assert_string_equal(zone_of(cfg, "www.example.com"), "exact");
    config_release(&cfg);
}

static void
test_wildcard_matches_any_depth_but_not_the_bare_domain(void **state)
{
    struct config *cfg = load(zones_yaml);
    assert_string_equal(zone_of(cfg, "a.example.com"), "wild");
    assert_string_equal(zone_of(cfg, "a.b.example.com"), "wild");
    assert_null(zone_of(cfg, "example.com"));
    assert_null(zone_of(cfg, "badexample.com"));
    config_release(&cfg);
}

static void
test_longest_wildcard_wins(void **state)
{
    struct config *cfg = load(zones_yaml);
    assert_string_equal(zone_of(cfg, "img.static.example.com"), "deeper");
    config_release(&cfg);
}

static void
test_unknown_host_has_no_zone_without_catch_all(void **state)
{
    struct config *cfg = load(zones_yaml);
    assert_null(zone_of(cfg, "other.test"));
    assert_null(zone_of(cfg, ""));
    config_release(&cfg);
}

static void
test_catch_all_takes_what_nothing_else_matches(void **state)
{
    struct config *cfg = load("zones:\n"
                              "  - name: one\n    hosts: [ a.test ]\n"
                              "    origins: [ \"http://127.0.0.1:1\" ]\n"
                              "  - name: rest\n    hosts: [ \"*\" ]\n"
                              "    origins: [ \"http://127.0.0.1:1\" ]\n");
    assert_string_equal(zone_of(cfg, "a.test"), "one");
    assert_string_equal(zone_of(cfg, "b.test"), "rest");
    config_release(&cfg);
}

static void
test_port_case_and_trailing_dot_are_normalised(void **state)
{
    struct config *cfg = load(zones_yaml);
    assert_string_equal(zone_of(cfg, "WWW.Example.COM"), "exact");
    assert_string_equal(zone_of(cfg, "www.example.com:8080"), "exact");
    assert_string_equal(zone_of(cfg, "www.example.com."), "exact");
    config_release(&cfg);
}

static void
test_malformed_hosts_match_nothing(void **state)
{
    struct config *cfg = load("zones:\n  - name: all\n    hosts: [ \"*\" ]\n"
                              "    origins: [ \"http://127.0.0.1:1\" ]\n");
    assert_null(zone_of(cfg, "a b"));
    assert_null(zone_of(cfg, "a/b"));
    assert_null(zone_of(cfg, "user@host"));
    assert_null(zone_of(cfg, "host:port"));
    assert_null(zone_of(cfg, "host:99999"));
    assert_null(zone_of(cfg, "[::1"));
    assert_string_equal(zone_of(cfg, "[::1]:8080"), "all");
    config_release(&cfg);
}

/* Zone i has h<i>.example and *.w<i>.example; zone deep<i> has *.s.w<i>.example. */
static struct config *
many_zones(size_t n, bool catch_all)
{
    size_t cap = 256 * n + 200, len = 0; /* an entry pair is under 256 bytes */
    char *yaml = malloc(cap);
    len += (size_t)snprintf(yaml + len, cap - len, "zones:\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(yaml + len, cap - len,
                                "  - { name: z%zu, hosts: [ h%zu.example, \"*.w%zu.example\" ], "
                                "origins: [ \"http://127.0.0.1:1\" ] }\n"
                                "  - { name: deep%zu, hosts: [ \"*.s.w%zu.example\" ], "
                                "origins: [ \"http://127.0.0.1:1\" ] }\n",
                                i, i, i, i, i);
    if (catch_all)
        snprintf(yaml + len, cap - len,
                 "  - { name: rest, hosts: [ \"*\" ], origins: [ \"http://127.0.0.1:1\" ] }\n");
    struct config *cfg = load(yaml);
    free(yaml);
    return cfg;
}

static void
expect_zone(const struct config *cfg, const char *host, const char *want)
{
    const char *got = zone_of(cfg, host);
    if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0)
        fail_msg("%s: zone %s, expected %s", host, got ? got : "(none)", want ? want : "(none)");
}

static void
test_every_host_of_thousands_of_zones_finds_its_own(void **state)
{
    const size_t n = 2000;
    for (int catch_all = 0; catch_all < 2; catch_all++) {
        struct config *cfg = many_zones(n, catch_all);
        const char *rest = catch_all ? "rest" : NULL;
        /* each host made with the zone's number, and which zone is to serve it */
        static const struct {
            const char *host;
            enum { Z, DEEP, REST } want;
        } cases[] = {
            {"h%zu.example", Z},        {"H%zu.Example:443", Z},     {"a.w%zu.example", Z},
            {"a.b.w%zu.example", Z},    {"s.w%zu.example", Z}, /* *.w, not *.s.w */
            {"a.s.w%zu.example", DEEP}, {"x.a.s.w%zu.example", DEEP},
            {"w%zu.example", REST}, /* the bare domain */
            {".w%zu.example", REST},    {"h%zu.example.other", REST}, {"xh%zu.example", REST},
        };
        char host[64], z[32], deep[32];
        for (size_t i = 0; i < n; i++) {
            snprintf(z, sizeof(z), "z%zu", i);
            snprintf(deep, sizeof(deep), "deep%zu", i);
            for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                snprintf(host, sizeof(host), cases[k].host, i);
                expect_zone(cfg, host, cases[k].want == Z ? z : cases[k].want == DEEP ? deep : rest);
            }
        }
        expect_zone(cfg, "h2000.example", rest);
        expect_zone(cfg, "example", rest);
        config_release(&cfg);
    }
}

/* Wildcards of 63 bytes and more share one bit of the lengths looked up (wildcard_lens). */
static void
test_long_wildcards_are_found_whatever_their_length(void **state)
{
    const char *l63 = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0";
    char yaml[1024], host[256];
    snprintf(yaml, sizeof(yaml),
             "zones:\n"
             "  - { name: long, hosts: [ \"*.%s.example\" ], origins: [ \"http://127.0.0.1:1\" ] }\n"
             "  - { name: longer, hosts: [ \"*.b.%s.%s.example\" ], origins: [ \"http://127.0.0.1:1\" ] }\n"
             "  - { name: short, hosts: [ \"*.x\" ], origins: [ \"http://127.0.0.1:1\" ] }\n",
             l63, l63, l63);
    struct config *cfg = load(yaml);
    snprintf(host, sizeof(host), "a.%s.example", l63);
    expect_zone(cfg, host, "long");
    snprintf(host, sizeof(host), "a.b.%s.%s.example", l63, l63);
    expect_zone(cfg, host, "longer");
    snprintf(host, sizeof(host), "b.%s.%s.example", l63, l63); /* not *.b.…: *.<l63>.example */
    expect_zone(cfg, host, "long");
    snprintf(host, sizeof(host), "%s.example", l63);
    expect_zone(cfg, host, NULL);
    snprintf(host, sizeof(host), "a.%s.%s.x", l63, l63);
    expect_zone(cfg, host, "short");
    config_release(&cfg);
}

static void
test_normalise_ipv6_literal(void **state)
{
    char out[64];
    assert_int_equal(zone_host_normalise("[2001:DB8::1]:80", 16, out, sizeof(out)), 11);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(zone_host_normalise("[]", 2, out, sizeof(out)), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_name_beats_wildcard),
        cmocka_unit_test(test_wildcard_matches_any_depth_but_not_the_bare_domain),
        cmocka_unit_test(test_longest_wildcard_wins),
        cmocka_unit_test(test_unknown_host_has_no_zone_without_catch_all),
        cmocka_unit_test(test_catch_all_takes_what_nothing_else_matches),
        cmocka_unit_test(test_port_case_and_trailing_dot_are_normalised),
        cmocka_unit_test(test_malformed_hosts_match_nothing),
        cmocka_unit_test(test_normalise_ipv6_literal),
        cmocka_unit_test(test_every_host_of_thousands_of_zones_finds_its_own),
        cmocka_unit_test(test_long_wildcards_are_found_whatever_their_length),
    };
    return cmocka_run_group_tests_name("zone", tests, NULL, NULL);
}
