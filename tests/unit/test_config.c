/* test_config.c - verge.yaml: a full valid file, defaults, every kind of mistake with its
 * file:line:column message, durations, sizes, addresses, zero-config, reference counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/config.h"

#include <arpa/inet.h>

static struct config *
load_ok(const char *yaml)
{
    char err[1024] = "";
    struct config *cfg = NULL;
    if (config_load_string("t.yaml", yaml, &cfg, err, sizeof(err)) < 0)
        fail_msg("expected a valid configuration, got: %s", err);
    return cfg;
}

/* The message for an invalid file must start with prefix ("t.yaml:L:C: ...") and contain
 * fragment. */
static void
assert_refused(const char *yaml, const char *prefix, const char *fragment)
{
    char err[1024] = "";
    struct config *cfg = NULL;
    if (config_load_string("t.yaml", yaml, &cfg, err, sizeof(err)) == 0)
        fail_msg("expected an error for:\n%s", yaml);
    assert_null(cfg);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, fragment) == NULL)
        fail_msg("message \"%s\" should start with \"%s\" and mention \"%s\"", err, prefix,
                 fragment);
}

#define ZONE "zones:\n  - name: z\n    hosts: [ a.test ]\n    origins: [ \"http://127.0.0.1:8000\" ]\n"

static void
test_full_file_sets_every_key(void **state)
{
    struct config *cfg = load_ok(
        "listen: [ \"127.0.0.1:9000\", \"[::1]:9001\" ]\n"
        "workers: 3\n"
        "edge_name: edge-1\n"
        "shutdown_timeout: 2s\n"
        "logs: { access: /tmp/a.log, access_format: json, error: stderr, level: warn }\n"
        "admin: { listen: \"127.0.0.1:9100\" }\n"
        "client: { header_timeout: 1s, keepalive_timeout: 2s, send_timeout: 3s,\n"
        "          body_timeout: 4s, max_header_size: 16KiB }\n"
        "upstream: { keepalive_timeout: 5s, max_idle: 7, max_header_size: 8KiB }\n"
        "zones:\n"
        "  - name: z\n"
        "    hosts: [ A.Test, \"*.b.test\" ]\n"
        "    origins:\n"
        "      - url: http://127.0.0.1:8000\n"
        "      - \"http://[::1]:8001\"\n"
        "    origin_host: visitor\n"
        "    timeouts: { connect: 250ms, send: 1m, header: 1h, idle: 1d }\n"
        "    max_request_body: 1MiB\n"
        "    forwarded: { via: false, x_forwarded_for: no, x_forwarded_proto: off }\n");
    assert_int_equal(cfg->nlistens, 2);
    assert_string_equal(cfg->listens[1].text, "[::1]:9001");
    assert_int_equal(cfg->workers, 3);
    assert_string_equal(cfg->edge_name, "edge-1");
    assert_int_equal(cfg->shutdown_timeout, 2000);
    assert_string_equal(cfg->access_log, "/tmp/a.log");
    assert_int_equal(cfg->access_log_format, CONFIG_LOG_JSON);
    assert_int_equal(cfg->error_log_level, CONFIG_LOG_WARN);
    assert_string_equal(cfg->admin_listen.text, "127.0.0.1:9100");
    assert_int_equal(cfg->client_body_timeout, 4000);
    assert_int_equal(cfg->client_max_header_size, 16 * 1024);
    assert_int_equal(cfg->upstream_max_idle, 7);
    const struct config_zone *z = &cfg->zones[0];
    assert_string_equal(z->hosts[0], "a.test");
    assert_int_equal(z->norigins, 2);
    assert_string_equal(z->origins[1].hostport, "[::1]:8001");
    assert_int_equal(z->origins[0].naddrs, 1);
    assert_int_equal(z->origin_host, CONFIG_HOST_VISITOR);
    assert_int_equal(z->connect_timeout, 250);
    assert_int_equal(z->idle_timeout, 86400000);
    assert_int_equal(z->max_request_body, 1024 * 1024);
    assert_false(z->add_via || z->add_x_forwarded_for || z->add_x_forwarded_proto);
    config_release(&cfg);
    assert_null(cfg);
}

static void
test_smallest_file_gets_documented_defaults(void **state)
{
    struct config *cfg = load_ok(ZONE);
    assert_string_equal(cfg->listens[0].text, "127.0.0.1:8080");
    assert_true(cfg->workers >= 1);
    assert_string_equal(cfg->access_log, "stdout");
    assert_string_equal(cfg->error_log, "stderr");
    assert_true(cfg->admin_enabled);
    assert_string_equal(cfg->admin_listen.text, "127.0.0.1:8081");
    assert_int_equal(cfg->client_header_timeout, 10000);
    assert_int_equal(cfg->client_keepalive_timeout, 75000);
    assert_int_equal(cfg->client_max_header_size, 32 * 1024);
    assert_int_equal(cfg->client_max_request_line, 8 * 1024);
    assert_int_equal(cfg->client_max_header_fields, 100);
    assert_int_equal(cfg->client_max_connections, 0); /* auto */
    assert_int_equal(cfg->client_max_connections_per_client, 1000);
    assert_int_equal(cfg->upstream_max_idle, 64);
    const struct config_zone *z = &cfg->zones[0];
    assert_int_equal(z->connect_timeout, 5000);
    assert_int_equal(z->header_timeout, 30000);
    assert_int_equal(z->max_request_body, 100 * 1024 * 1024);
    assert_int_equal(z->origin_host, CONFIG_HOST_ORIGIN);
    assert_string_equal(z->origins[0].hostport, "127.0.0.1:8000");
    assert_true(z->add_via && z->add_x_forwarded_for && z->add_x_forwarded_proto);
    config_release(&cfg);
}

static void
test_unknown_key_names_the_valid_ones(void **state)
{
    assert_refused(ZONE "listn: 1\n", "t.yaml:5:1: ", "unknown key \"listn\"");
    assert_refused(ZONE "listn: 1\n", "t.yaml:5:1: ", "valid keys are: listen");
    assert_refused(ZONE "    colour: red\n", "t.yaml:5:5: ", "unknown key \"colour\" in a zone");
}

static void
test_wrong_types_say_what_was_expected(void **state)
{
    assert_refused("workers: [1]\n" ZONE, "t.yaml:1:10: ", "\"workers\" must be");
    assert_refused("client: 5\n" ZONE, "t.yaml:1:9: ", "must be a mapping");
    assert_refused("zones: { a: 1 }\n", "t.yaml:1:8: ", "a list of zones");
    assert_refused(ZONE "    forwarded: { via: maybe }\n", "t.yaml:5:23: ", "true or false");
}

static void
test_bad_values_are_refused_with_their_position(void **state)
{
    assert_refused(ZONE "    timeouts: { connect: 5 seconds }\n", "t.yaml:5:26: ",
                   "a duration such as");
    assert_refused(ZONE "    timeouts: { connect: 0s }\n", "t.yaml:5:26: ", "greater than 0");
    assert_refused(ZONE "    max_request_body: 10 lots\n", "t.yaml:5:23: ", "a size such as");
    assert_refused("listen: \"999.1.1.1:80\"\n" ZONE, "t.yaml:1:9: ", "an address such as");
    assert_refused("workers: 0\n" ZONE, "t.yaml:1:10: ", "from 1 to 256");
    assert_refused("client: { max_header_size: 10 }\n" ZONE, "t.yaml:1:28: ", "1KiB to 1MiB");
}

static void
test_visitor_limits_are_set_and_refused_with_their_position(void **state)
{
    struct config *cfg = load_ok("client: { max_request_line: 2KiB, max_header_fields: 50,\n"
                                 "          max_connections: 5000,\n"
                                 "          max_connections_per_client: 0 }\n" ZONE);
    assert_int_equal(cfg->client_max_request_line, 2048);
    assert_int_equal(cfg->client_max_header_fields, 50);
    assert_int_equal(cfg->client_max_connections, 5000);
    assert_int_equal(cfg->client_max_connections_per_client, 0);
    config_release(&cfg);
    cfg = load_ok("client: { max_connections: auto }\n" ZONE);
    assert_int_equal(cfg->client_max_connections, 0);
    config_release(&cfg);
    assert_refused("client: { max_request_line: 100 }\n" ZONE, "t.yaml:1:29: ",
                   "from 256 to 1MiB");
    assert_refused("client:\n  max_header_size: 4KiB\n  max_request_line: 8KiB\n" ZONE,
                   "t.yaml:3:21: ", "larger than max_header_size");
    assert_refused("client: { max_header_fields: 0 }\n" ZONE, "t.yaml:1:30: ", "from 1 to 128");
    assert_refused("client: { max_header_fields: 500 }\n" ZONE, "t.yaml:1:30: ", "from 1 to 128");
    assert_refused("client: { max_connections: 0 }\n" ZONE, "t.yaml:1:28: ", "\"auto\" or");
    assert_refused("client: { max_connections_per_client: -1 }\n" ZONE, "t.yaml:1:39: ",
                   "a non-negative integer");
}

static void
test_duplicate_keys_zones_and_hosts_are_refused(void **state)
{
    assert_refused("workers: 1\nworkers: 2\n" ZONE, "t.yaml:2:1: ", "duplicate key \"workers\"");
    assert_refused(ZONE "  - name: z\n    hosts: [ b.test ]\n"
                        "    origins: [ \"http://127.0.0.1:1\" ]\n",
                   "t.yaml:", "zone name \"z\" is used twice");
    assert_refused(ZONE "  - name: y\n    hosts: [ A.TEST ]\n"
                        "    origins: [ \"http://127.0.0.1:1\" ]\n",
                   "t.yaml:5:5: ", "host \"a.test\" is served by zones \"z\" and \"y\"");
    assert_refused("zones:\n  - { name: a, hosts: [ \"*\" ], origins: [ \"http://o\" ] }\n"
                   "  - { name: b, hosts: [ x.test, \"*\" ], origins: [ \"http://o\" ] }\n",
                   "t.yaml:3:5: ", "host \"*\" is served by zones \"a\" and \"b\"");
    assert_refused("zones:\n  - { name: a, hosts: [ \"*.x.test\" ], origins: [ \"http://o\" ] }\n"
                   "  - { name: b, hosts: [ x.test, \"*.X.test\" ], origins: [ \"http://o\" ] }\n",
                   "t.yaml:3:5: ", "host \"*.x.test\" is served by zones \"a\" and \"b\"");
    /* a wildcard and the exact name it is made of are two hosts; one zone may list a
     * host twice */
    struct config *cfg = load_ok(
        "zones:\n  - { name: a, hosts: [ \"*.x.test\", y.test, y.test ], origins: [ \"http://o\" ] }\n"
        "  - { name: b, hosts: [ x.test ], origins: [ \"http://o\" ] }\n");
    config_release(&cfg);
    /* far down a long list, after the hosts' table has grown several times */
    size_t cap = 100 * 1000 + 200, len = 0;
    char *yaml = malloc(cap);
    len += (size_t)snprintf(yaml + len, cap - len, "zones:\n");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(yaml + len, cap - len,
                                "  - { name: z%d, hosts: [ h%d.test ], origins: [ \"http://o\" ] }\n",
                                i, i);
    snprintf(yaml + len, cap - len,
             "  - { name: late, hosts: [ new.test, h17.test ], origins: [ \"http://o\" ] }\n");
    assert_refused(yaml, "t.yaml:1002:5: ", "host \"h17.test\" is served by zones \"z17\" and \"late\"");
    free(yaml);
}

static void
test_zone_mistakes(void **state)
{
    assert_refused("zones:\n  - name: z\n    hosts: [ a.test ]\n", "t.yaml:2:5: ",
                   "has no \"origins\"");
    assert_refused("zones:\n  - name: z\n    origins: []\n", "t.yaml:3:14: ",
                   "\"origins\" is empty");
    assert_refused("zones:\n  - name: z\n    origins: [ \"https://o.test\" ]\n",
                   "t.yaml:3:16: ", "TLS to origins is not supported yet");
    assert_refused("zones:\n  - name: z\n    origins: [ \"ftp://o.test\" ]\n", "t.yaml:3:16: ",
                   "starts with http://");
    assert_refused("zones:\n  - name: z\n    origins: [ \"http://o.test/path\" ]\n",
                   "t.yaml:3:16: ", "no path");
    assert_refused("zones:\n  - name: z\n    hosts: [ \"a b\" ]\n    origins: [ \"http://o\" ]\n",
                   "t.yaml:3:14: ", "a host name such as");
    assert_refused("listen: 1\n", "t.yaml:1:1: ", "no zones configured");
    assert_refused("", "t.yaml:1:1: ", "the configuration is empty");
}

static void
test_keys_of_later_features_say_not_supported_yet(void **state)
{
    assert_refused("zones:\n  - name: z\n    origins: [ { url: \"http://10.0.0.1\", weight: 2 } ]\n",
                   "t.yaml:3:50: ", "not supported yet");
}

static void
test_yaml_syntax_error_has_a_position(void **state)
{
    assert_refused("zones: [ { name: z\n", "t.yaml:2:1: ", "fix the YAML syntax");
}

static void
test_admin_off_and_clash_with_listen(void **state)
{
    struct config *cfg = load_ok("admin: off\n" ZONE);
    assert_false(cfg->admin_enabled);
    config_release(&cfg);
    assert_refused("listen: \"127.0.0.1:8081\"\n" ZONE, "t.yaml:1:1: ",
                   "also a visitor listen address");
}

static void
test_origin_names_are_left_to_dns_and_literals_are_parsed(void **state)
{
    struct config *cfg = load_ok("zones:\n  - name: z\n    hosts: [ a.test ]\n"
                                 "    origins: [ \"http://nonexistent.invalid:8000\",\n"
                                 "               \"http://[::1]:8001\", \"http://10.0.0.1\" ]\n");
    const struct config_origin *o = cfg->zones[0].origins;
    assert_false(o[0].literal);
    assert_int_equal(o[0].naddrs, 0); /* resolved per request, never at load */
    assert_true(o[1].literal);
    assert_string_equal(o[1].addrs[0].text, "[::1]:8001");
    assert_true(o[2].literal);
    assert_string_equal(o[2].addrs[0].text, "10.0.0.1:80");
    config_release(&cfg);
}

static void
test_resolver_section(void **state)
{
    struct config *cfg = load_ok("resolver: { servers: [ \"127.0.0.1:5353\", \"[::1]\" ],\n"
                                 "  min_ttl: 1s, max_ttl: 10m, serve_stale: 0, timeout: 500ms,\n"
                                 "  attempts: 3 }\n" ZONE);
    assert_string_equal(cfg->resolver.servers, "127.0.0.1:5353,[::1]:53");
    assert_int_equal(cfg->resolver.min_ttl, 1000);
    assert_int_equal(cfg->resolver.max_ttl, 600000);
    assert_int_equal(cfg->resolver.serve_stale, 0);
    assert_int_equal(cfg->resolver.timeout, 500);
    assert_int_equal(cfg->resolver.attempts, 3);
    config_release(&cfg);
    cfg = load_ok(ZONE);
    assert_null(cfg->resolver.servers);
    assert_int_equal(cfg->resolver.min_ttl, 5000);
    assert_int_equal(cfg->resolver.serve_stale, 3600000);
    config_release(&cfg);
    assert_refused("resolver: { min_ttl: 1h, max_ttl: 1m }\n" ZONE, "t.yaml:1:1: ",
                   "min_ttl is larger than max_ttl");
    assert_refused("resolver: { attempts: 0 }\n" ZONE, "t.yaml:1:23: ", "from 1 to 10");
}

static void
test_zone_without_hosts_serves_its_name(void **state)
{
    struct config *cfg = load_ok("zones:\n  - name: www.example.com\n"
                                 "    origins: [ \"http://127.0.0.1:1\" ]\n");
    assert_int_equal(cfg->zones[0].nhosts, 1);
    assert_string_equal(cfg->zones[0].hosts[0], "www.example.com");
    config_release(&cfg);
}

static void
test_durations_and_sizes(void **state)
{
    uint64_t v;
    assert_int_equal(config_duration_parse("250ms", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(config_duration_parse("3", &v), 0);
    assert_int_equal(v, 3000);
    assert_int_equal(config_duration_parse("2h", &v), 0);
    assert_int_equal(v, 7200000);
    assert_int_equal(config_duration_parse("5 s", &v), -1);
    assert_int_equal(config_duration_parse("-1s", &v), -1);
    assert_int_equal(config_duration_parse("", &v), -1);
    assert_int_equal(config_size_parse("64KiB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(config_size_parse("1gib", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(config_size_parse("10KB", &v), 0);
    assert_int_equal(v, 10000);
    assert_int_equal(config_size_parse("123", &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(config_size_parse("99999999999999999999", &v), -1);
    assert_int_equal(config_size_parse("1.5MiB", &v), -1);
}

static void
test_addresses(void **state)
{
    struct config_addr a;
    assert_int_equal(config_addr_parse("127.0.0.1:8080", 1, &a), 0);
    assert_string_equal(a.text, "127.0.0.1:8080");
    assert_int_equal(config_addr_parse("[::1]:443", 1, &a), 0);
    assert_string_equal(a.text, "[::1]:443");
    assert_int_equal(config_addr_parse(":9000", 1, &a), 0);
    assert_string_equal(a.text, "0.0.0.0:9000");
    assert_int_equal(config_addr_parse("9000", 1, &a), 0);
    assert_string_equal(a.text, "0.0.0.0:9000");
    assert_int_equal(config_addr_parse("10.0.0.1", 8080, &a), 0);
    assert_string_equal(a.text, "10.0.0.1:8080");
    assert_int_equal(config_addr_parse("::1:80", 1, &a), -1);
    assert_int_equal(config_addr_parse("1.2.3.4:0", 1, &a), -1);
    assert_int_equal(config_addr_parse("1.2.3.4:65536", 1, &a), -1);
    assert_int_equal(config_addr_parse("example.com:80", 1, &a), -1);
}

static void
test_zero_config_is_one_catch_all_zone(void **state)
{
    char err[256];
    struct config *cfg;
    assert_int_equal(config_from_origin("http://127.0.0.1:8000", "127.0.0.1:9999", &cfg, err,
                                        sizeof(err)),
                     0);
    assert_int_equal(cfg->nzones, 1);
    assert_string_equal(cfg->zones[0].name, "default");
    assert_string_equal(cfg->zones[0].hosts[0], "*");
    assert_string_equal(cfg->listens[0].text, "127.0.0.1:9999");
    assert_int_equal(cfg->zones[0].origins[0].port, 8000);
    config_release(&cfg);
    assert_int_equal(config_from_origin("https://x", NULL, &cfg, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--origin 'https://x'"));
}

static void
test_references_keep_the_config_alive(void **state)
{
    struct config *cfg = load_ok(ZONE), *other = config_acquire(cfg);
    config_release(&cfg);
    assert_null(cfg);
    assert_string_equal(other->zones[0].name, "z"); /* still alive */
    config_release(&other);
}

static void
test_health_backup_and_retries(void **state)
{
    struct config *cfg = load_ok("zones:\n  - name: z\n    hosts: [ a.test ]\n"
                                 "    origins: [ \"http://10.0.0.1\", { url: \"http://10.0.0.2\", "
                                 "backup: true } ]\n"
                                 "    health: { failures: 5, hold: 30s }\n    retries: 4\n");
    const struct config_zone *z = &cfg->zones[0];
    assert_false(z->origins[0].backup);
    assert_true(z->origins[1].backup);
    assert_int_equal(z->health_failures, 5);
    assert_int_equal(z->health_hold, 30000);
    assert_int_equal(z->retries, 4);
    config_release(&cfg);
    cfg = load_ok(ZONE);
    assert_int_equal(cfg->zones[0].health_failures, 3);
    assert_int_equal(cfg->zones[0].health_hold, 10000);
    assert_int_equal(cfg->zones[0].retries, 2);
    config_release(&cfg);
    assert_refused("zones:\n  - name: z\n    origins: [ { url: \"http://10.0.0.1\", backup: true } ]\n",
                   "t.yaml:2:5: ", "every origin of zone \"z\" is a backup");
    assert_refused(ZONE "    retries: many\n", "t.yaml:5:14: ", "a whole number from 0 to 1000");
}

static void
test_cache_keys(void **state)
{
    struct config *cfg = load_ok(ZONE);
    assert_int_equal(cfg->cache_eviction, CONFIG_EVICT_S3FIFO);
    assert_int_equal(cfg->cache_lock_timeout, 5000);
    assert_int_equal(cfg->zones[0].cache_key_query, CONFIG_QUERY_KEEP);
    config_release(&cfg);
    cfg = load_ok("cache: { eviction: lru, lock_timeout: 250ms }\n" ZONE
                  "    cache_key: { query: sort }\n");
    assert_int_equal(cfg->cache_eviction, CONFIG_EVICT_LRU);
    assert_int_equal(cfg->cache_lock_timeout, 250);
    assert_int_equal(cfg->zones[0].cache_key_query, CONFIG_QUERY_SORT);
    config_release(&cfg);
    assert_refused("cache: { eviction: lfu }\n" ZONE, "t.yaml:1:20: ",
                   "one of \"s3fifo\", \"lru\"");
    assert_refused(ZONE "    cache_key: { query: drop }\n", "t.yaml:5:25: ",
                   "one of \"keep\", \"ignore\", \"sort\"");
    assert_refused(ZONE "    cache_key: { path: lower }\n", "t.yaml:5:18: ",
                   "unknown key \"path\" in cache_key");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file_sets_every_key),
        cmocka_unit_test(test_smallest_file_gets_documented_defaults),
        cmocka_unit_test(test_unknown_key_names_the_valid_ones),
        cmocka_unit_test(test_wrong_types_say_what_was_expected),
        cmocka_unit_test(test_bad_values_are_refused_with_their_position),
        cmocka_unit_test(test_visitor_limits_are_set_and_refused_with_their_position),
        cmocka_unit_test(test_duplicate_keys_zones_and_hosts_are_refused),
        cmocka_unit_test(test_zone_mistakes),
        cmocka_unit_test(test_keys_of_later_features_say_not_supported_yet),
        cmocka_unit_test(test_yaml_syntax_error_has_a_position),
        cmocka_unit_test(test_admin_off_and_clash_with_listen),
        cmocka_unit_test(test_origin_names_are_left_to_dns_and_literals_are_parsed),
        cmocka_unit_test(test_resolver_section),
        cmocka_unit_test(test_health_backup_and_retries),
        cmocka_unit_test(test_zone_without_hosts_serves_its_name),
        cmocka_unit_test(test_durations_and_sizes),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_zero_config_is_one_catch_all_zone),
        cmocka_unit_test(test_references_keep_the_config_alive),
        cmocka_unit_test(test_cache_keys),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
