/* config.h - Verge's configuration: one YAML file (libyaml) turned into an immutable,
 * reference-counted struct config. A reload builds a new one; requests keep the one
 * they started with. Every key has a default; see docs/configuration.md. */
#ifndef VERGE_CORE_CONFIG_H
#define VERGE_CORE_CONFIG_H

#include "core/base.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define CONFIG_MAX_ADDRS 16
#define CONFIG_MAX_HEADER_FIELDS 128 /* client.max_header_fields; = HTTP_MAX_HEADERS */

/* A socket address plus its text form ("127.0.0.1:8080", "[::1]:8080"). */
struct config_addr {
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[64];
};

enum config_log_format { CONFIG_LOG_COMBINED = 0, CONFIG_LOG_JSON = 1 };
enum config_log_level { CONFIG_LOG_DEBUG = 0, CONFIG_LOG_INFO, CONFIG_LOG_WARN, CONFIG_LOG_ERROR };
/* cache.eviction */
enum config_eviction { CONFIG_EVICT_S3FIFO = 0, CONFIG_EVICT_LRU = 1 };
/* cache_key.query of a zone: how the query string enters the cache key */
enum config_cache_query { CONFIG_QUERY_KEEP = 0, CONFIG_QUERY_IGNORE = 1, CONFIG_QUERY_SORT = 2 };

/* What a reload (and verge -t --preflight) does with origins that fail verge check's
 * pre-flight (do not resolve, do not accept connections, answer invalidly). */
enum config_preflight {
    CONFIG_PREFLIGHT_WARN = 0, /* default: check on every reload, log, reload anyway */
    CONFIG_PREFLIGHT_REFUSE,   /* check, log, and keep the running configuration */
    CONFIG_PREFLIGHT_OFF,      /* no check on reload */
};

/* Which Host header the edge sends to an origin. */
enum config_origin_host {
    CONFIG_HOST_ORIGIN = 0,  /* the origin URL's host[:port] (default) */
    CONFIG_HOST_VISITOR = 1, /* the visitor's Host, unchanged */
    CONFIG_HOST_FIXED = 2,   /* zone->origin_host_value */
};

struct config_origin {
    char *url;       /* as written: "http://origin.example.com:8000" */
    char *host;      /* "origin.example.com" (IPv6 literal without brackets) */
    uint16_t port;   /* 80 when the URL has none */
    char *hostport;  /* "origin.example.com:8000", or "host" when the port is the default */
    bool literal;    /* host is an IP address: addrs holds it, DNS is never asked */
    bool backup;     /* used only when every primary origin failed or is down */
    /* A literal IP's address (naddrs 1). Names are resolved per request through the
     * shared DNS cache (src/dns), so naddrs is 0 for them and resolve_error unused. */
    struct config_addr addrs[CONFIG_MAX_ADDRS];
    int naddrs;
    char *resolve_error;
};

/* DNS for origin names (src/dns). */
struct config_resolver {
    char *servers;        /* "127.0.0.1:5353,[::1]:53" (c-ares CSV); NULL: /etc/resolv.conf */
    uint64_t min_ttl;     /* ms, default 5000: answers are kept at least this long */
    uint64_t max_ttl;     /* ms, default 3600000: and at most this long */
    uint64_t serve_stale; /* ms, default 3600000: last good answer used while resolving fails */
    uint64_t timeout;     /* ms, default 2000: per query attempt */
    int attempts;         /* default 2 */
};

/* A custom error page: an HTML template with {{placeholders}} (see docs/failures.md). */
struct config_error_page {
    int status;      /* 400..599, or 0 for "5xx": any 5xx without its own page */
    char *path;
    char *html;      /* the file's contents */
};

struct config_zone {
    char *name;
    char **hosts; /* lower case; "example.com" exact, "*.example.com" any subdomain */
    size_t nhosts;
    struct config_origin *origins;
    size_t norigins;
    enum config_origin_host origin_host;
    char *origin_host_value;   /* CONFIG_HOST_FIXED only */
    uint64_t connect_timeout;  /* ms, default 5000 */
    uint64_t send_timeout;     /* ms, default 30000: origin stops reading our request */
    uint64_t header_timeout;   /* ms, default 30000: waiting for the response header */
    uint64_t idle_timeout;     /* ms, default 60000: body bytes stop arriving */
    uint64_t max_request_body; /* bytes, default 100 MiB, 0 = unlimited */
    bool add_via;              /* default true  */
    bool add_x_forwarded_for;  /* default true  */
    bool add_x_forwarded_proto;/* default true  */
    bool allow_private;        /* default true: loopback/private/link-local origins allowed */
    bool expose_details;       /* default true: Proxy-Status details and hints to visitors */
    uint32_t health_failures;  /* default 3: consecutive failures that mark an origin down;
                                * 0 = passive health off */
    uint64_t health_hold;      /* ms, default 10000: how long it stays down before a probe */
    bool health_count_5xx;     /* default false: an origin's own 5xx counts as a failure */
    uint32_t retries;          /* default 2: further attempts (addresses, origins) per request */
    bool cache_enabled;        /* default false: store and serve this zone's responses */
    enum config_cache_query cache_key_query; /* default keep */
    uint64_t stale_if_error;   /* ms, default 0: serve stale this long past freshness when the
                                * origin fails and the response did not say otherwise */
    uint64_t stale_while_revalidate; /* ms, default 0: serve stale this long past freshness
                                      * while refreshing in the background */
    uint64_t hit_for_miss;     /* ms, default 120000: how long a response that may not be
                                * stored marks its URL (hit-for-miss); 0 = never */
    char **pass_headers;       /* unkeyed request fields the zone lets through (lower case) */
    size_t npass_headers;
    struct config_error_page *error_pages;
    size_t nerror_pages;
    /* Active health probes (health.active); active_path NULL = off. */
    char *active_path;         /* "/healthz" */
    uint64_t active_interval;  /* ms, default 5000 */
    uint64_t active_timeout;   /* ms, default 2000: connect + header */
    uint32_t active_rise;      /* default 2: consecutive successes that bring it back */
    uint32_t active_fall;      /* default 3: consecutive failures that take it down */
    int zone_index;            /* position in config->zones */
};

struct config {
    int refs; /* atomically managed by config_acquire / config_release */
    char *file; /* NULL for zero-config */

    struct config_addr *listens;
    size_t nlistens;
    int workers; /* "auto" resolves to the number of online CPUs */
    bool io_uring; /* default true: each loop turn's sends in one io_uring submission */
    char *edge_name; /* shown in Via and error pages; default: the host name */

    /* Log destinations: a path (relative paths are relative to the configuration file's
     * directory), "stdout", "stderr", or NULL for "off". Defaults: access "stdout",
     * error "stderr". */
    char *access_log;
    enum config_log_format access_log_format;
    char *error_log;
    enum config_log_level error_log_level;

    bool admin_enabled;          /* default true */
    struct config_addr admin_listen; /* default 127.0.0.1:8081 */
    char *admin_token;               /* from admin.token_file; NULL: /requests/ is closed */

    /* Visitor side limits and timeouts. */
    uint64_t client_header_timeout;    /* ms, default 10000: time to receive a request header */
    uint64_t client_keepalive_timeout; /* ms, default 75000 */
    uint64_t client_send_timeout;      /* ms, default 60000: visitor stops reading */
    uint64_t client_body_timeout;      /* ms, default 60000: request body bytes stop arriving */
    uint64_t client_max_header_size;   /* bytes, default 32 KiB (then 431) */
    uint64_t client_max_request_line;  /* bytes, default 8 KiB (then 414) */
    uint64_t client_max_header_fields; /* default 100, at most 128 (then 431) */
    uint64_t client_max_connections;   /* across workers; 0 = auto: 3/4 of the open-files
                                        * limit (then 503 and close) */
    uint64_t client_max_connections_per_client; /* per address (IPv6: per /64), default
                                                 * 1000, 0 = no limit (then 503 and close) */
    uint64_t shutdown_timeout;         /* ms, default 10000: drain time on SIGTERM */

    /* Origin connection pool. */
    uint64_t upstream_keepalive_timeout; /* ms, default 60000 */
    uint64_t upstream_max_idle;          /* idle connections kept per origin address, default 64 */
    uint64_t upstream_max_header_size;   /* bytes, default 64 KiB */

    struct config_resolver resolver;

    enum config_preflight preflight; /* default warn */

    /* The shared memory cache (src/cache). */
    uint64_t cache_memory;        /* bytes, default 256 MiB */
    uint64_t cache_max_object;    /* bytes, default 64 MiB: larger responses stream uncached */
    uint64_t cache_sendfile_max;  /* bytes, default 128 KiB: a body in a memfd up to this size
                                   * goes out with sendfile, a larger one with writev; 0 = never */
    uint64_t cache_heuristic_cap; /* ms, default 1 day: cap of heuristic freshness; 0 = off */
    enum config_eviction cache_eviction; /* default s3fifo */
    uint64_t cache_lock_timeout;  /* ms, default 5000: longest wait for another visitor's fetch
                                   * of the same object; 0 = never wait */

    struct config_zone *zones;
    size_t nzones;

    /* Every zone's hosts by name, filled as the zones are read (config_host_find): a
     * request's zone is found in the same few steps with two zones or ten thousand, and a
     * host of two zones is refused without comparing every zone with every other. */
    struct config_host *hosts_by_name; /* open addressing, host_mask + 1 slots */
    size_t host_mask, nhosts_by_name;
    uint64_t wildcard_lens;  /* bit L: a "*.suffix" host whose ".suffix" is L bytes long
                              * (bit 63: 63 or more); 0: no wildcard */
    const struct config_zone *catch_all;   /* the zone with "*", or NULL */
};

/* A host in hosts_by_name: an exact name, or a wildcard "*.example.com" keyed by
 * ".example.com" (what a name it matches ends with). zone NULL: an empty slot. */
struct config_host {
    const char *key;
    uint32_t len;
    bool wildcard;
    const struct config_zone *zone;
};

/* The hash of a key in hosts_by_name: eight bytes a step, the last few bytes one by one. */
static inline uint64_t
config_host_hash(const char *key, size_t len)
{
    uint64_t h = len * 0x9e3779b97f4a7c15ull, w;
    for (; len >= 8; key += 8, len -= 8) {
        memcpy(&w, key, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (w = 0; len > 0; len--)
        w = w << 8 | (unsigned char)key[len - 1];
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    return h ^ (h >> 32);
}

static inline uint64_t
config_host_len_bit(size_t len)
{
    return (uint64_t)1 << (len < 63 ? len : 63);
}

/* The zone whose host is exactly key[len] (a wildcard's: ".suffix"), hash being
 * config_host_hash of it; NULL when no zone has that host. */
const struct config_zone *config_host_find(const struct config *cfg, uint64_t hash,
                                           const char *key, size_t len, bool wildcard);

/* Load and validate a configuration file. On success returns 0 and *out holds a config with
 * one reference. On error returns -1 and writes one message into err:
 *   "FILE:LINE:COLUMN: what is wrong; what to do"   (LINE and COLUMN 1-based)
 * Unknown keys, wrong types, bad values (durations "5s", "250ms", "1m", "1h", "1d"; sizes
 * "64KiB", "256MiB", "1GiB", plain numbers = bytes; addresses "127.0.0.1:8080", "[::1]:8080",
 * ":8080", "8080"), duplicate keys, duplicate zone names or hosts, and zones without origins
 * are all errors. Origin names are resolved with getaddrinfo() here (blocking; called only
 * from the main thread). */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* Same as config_load, from a string; name is used in messages in place of the file name. */
int config_load_string(const char *name, const char *yaml, struct config **out, char *err,
                       size_t errlen);

/* Zero-config: one catch-all zone ("*") in front of origin_url, listening on listen
 * (NULL = "127.0.0.1:8080"). Same errors as config_load, without a position. */
int config_from_origin(const char *origin_url, const char *listen, struct config **out,
                       char *err, size_t errlen);

/* Parse one address as accepted in the file; default_port when none is given. 0 or -1. */
int config_addr_parse(const char *text, uint16_t default_port, struct config_addr *out);

/* Parse "5s"/"250ms"/"1m"/"1h"/"1d" (plain number = seconds) into ms; 0 or -1. */
int config_duration_parse(const char *text, uint64_t *ms);

/* Parse "64KiB"/"256MiB"/"1GiB"/"10KB"/"123" into bytes; 0 or -1. */
int config_size_parse(const char *text, uint64_t *bytes);

/* Reference counting; both may be called from any thread. config_release NULLs *cfg. */
struct config *config_acquire(struct config *cfg);
void config_release(struct config **cfg);

#endif
