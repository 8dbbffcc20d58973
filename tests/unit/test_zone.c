/* test_zone.c - Host → zone: exact, wildcard (longest wins), catch-all, normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

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
    };
    return cmocka_run_group_tests_name("zone", tests, NULL, NULL);
}
