/* test_policy.c - origin address policy: loops back to the edge, private space. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/config.h"
#include "edge/policy.h"

static struct config *
load(const char *yaml)
{
    char err[512];
    struct config *cfg = NULL;
    if (config_load_string("t.yaml", yaml, &cfg, err, sizeof(err)) < 0)
        fail_msg("config did not load: %s", err);
    return cfg;
}

static enum proxy_error_type
check(const struct config *cfg, const char *addr)
{
    struct config_addr a;
    char why[160];
    assert_int_equal(config_addr_parse(addr, 80, &a), 0);
    return policy_check_addr(cfg, &cfg->zones[0], (const struct sockaddr *)&a.sa, why,
                             sizeof(why));
}

static void
test_own_listen_address_is_a_loop(void **state)
{
    struct config *cfg = load("listen: [ \"127.0.0.1:18080\" ]\n"
                              "zones: [ { name: z, hosts: [a.test], origins: [\"http://127.0.0.1:1\"] } ]\n");
    assert_int_equal(check(cfg, "127.0.0.1:18080"), PROXY_ERR_PROXY_LOOP_DETECTED);
    assert_int_equal(check(cfg, "127.0.0.1:8081"), PROXY_ERR_PROXY_LOOP_DETECTED); /* admin */
    assert_int_equal(check(cfg, "127.0.0.1:18081"), PROXY_ERR_NONE);
    assert_int_equal(check(cfg, "127.0.0.2:18080"), PROXY_ERR_NONE);
    config_release(&cfg);
}

static void
test_wildcard_listener_catches_every_local_address_on_its_port(void **state)
{
    struct config *cfg = load("listen: [ \":18080\" ]\nadmin: off\n"
                              "zones: [ { name: z, hosts: [a.test], origins: [\"http://127.0.0.1:1\"] } ]\n");
    assert_int_equal(check(cfg, "127.0.0.1:18080"), PROXY_ERR_PROXY_LOOP_DETECTED);
    assert_int_equal(check(cfg, "127.9.9.9:18080"), PROXY_ERR_PROXY_LOOP_DETECTED);
    assert_int_equal(check(cfg, "[::ffff:127.0.0.1]:18080"), PROXY_ERR_PROXY_LOOP_DETECTED);
    assert_int_equal(check(cfg, "192.0.2.1:18080"), PROXY_ERR_NONE); /* not ours */
    config_release(&cfg);
}

static void
test_private_space_is_refused_only_when_the_zone_says_so(void **state)
{
    struct config *open = load("admin: off\nzones: [ { name: z, hosts: [a.test], "
                               "origins: [\"http://127.0.0.1:1\"] } ]\n");
    struct config *closed = load("admin: off\nzones: [ { name: z, hosts: [a.test], "
                                 "allow_private: false, origins: [\"http://127.0.0.1:1\"] } ]\n");
    const char *private[] = {"10.1.2.3:80", "172.16.0.1:80", "192.168.1.1:80", "127.0.0.1:80",
                             "169.254.1.1:80", "100.64.0.1:80", "[::1]:80", "[fd00::1]:80",
                             "[fe80::1]:80", "[::ffff:10.0.0.1]:80"};
    for (size_t i = 0; i < ARRAY_SIZE(private); i++) {
        assert_int_equal(check(open, private[i]), PROXY_ERR_NONE);
        assert_int_equal(check(closed, private[i]), PROXY_ERR_DESTINATION_IP_PROHIBITED);
    }
    assert_int_equal(check(closed, "192.0.2.10:80"), PROXY_ERR_NONE);
    assert_int_equal(check(closed, "172.32.0.1:80"), PROXY_ERR_NONE);
    assert_int_equal(check(closed, "[2001:db8::1]:80"), PROXY_ERR_NONE);
    config_release(&open);
    config_release(&closed);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_listen_address_is_a_loop),
        cmocka_unit_test(test_wildcard_listener_catches_every_local_address_on_its_port),
        cmocka_unit_test(test_private_space_is_refused_only_when_the_zone_says_so),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
