/* zone.c - Host → zone: exact name, then the longest "*.suffix" wildcard, then "*". */
#include "edge/zone.h"

#define ZONE_MAX_HOST 256

/* A byte of a host name as it is normalised: itself, its lower case, or 0 (not allowed). */
static const unsigned char host_chars[256] = {
    ['a' ... 'z'] = 1, ['0' ... '9'] = 1, ['-'] = 1, ['.'] = 1, ['_'] = 1, ['A' ... 'Z'] = 2,
};

static int
port_ok(const char *p, size_t len)
{
    uint64_t port;
    return len > 0 && len <= 5 && str_to_u64(p, len, &port) == 0 && port <= 65535 ? 0 : -1;
}

/* "[v6]" or "[v6]:port" → v6 text in lower case. */
static int
normalise_v6(const char *host, size_t len, char *out, size_t outlen)
{
    const char *close = memchr(host, ']', len);
    if (close == NULL)
        return -1;
    size_t n = (size_t)(close - host - 1), rest = len - (size_t)(close - host) - 1;
    if (rest > 0 && (close[1] != ':' || port_ok(close + 2, rest - 1) < 0))
        return -1;
    if (n == 0 || n + 1 > outlen)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)host[1 + i];
        if (ch >= 'A' && ch <= 'F')
            ch = (unsigned char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == ':' || ch == '.'))
            return -1;
        out[i] = (char)ch;
    }
    out[n] = '\0';
    return (int)n;
}

int
zone_host_normalise(const char *host, size_t len, char *out, size_t outlen)
{
    if (len == 0)
        return -1;
    if (host[0] == '[')
        return normalise_v6(host, len, out, outlen);
    const char *colon = memchr(host, ':', len);
    if (colon != NULL) {
        if (port_ok(colon + 1, len - (size_t)(colon - host) - 1) < 0)
            return -1;
        len = (size_t)(colon - host);
    }
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len + 1 > outlen)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i], kind = host_chars[ch];
        if (kind == 0)
            return -1;
        out[i] = (char)(kind == 2 ? ch | 0x20 : ch);
    }
    out[len] = '\0';
    return (int)len;
}

/* Does "*.suffix" match name? Returns the suffix length (longer = more specific) or -1. */
static int
wildcard_match(const char *pattern, const char *name, size_t nlen)
{
    size_t slen = strlen(pattern) - 1; /* ".suffix" */
    if (nlen <= slen || memcmp(name + nlen - slen, pattern + 1, slen) != 0)
        return -1;
    return (int)slen;
}

const struct config_zone *
zone_find(const struct config *cfg, const char *host, size_t len)
{
    char name[ZONE_MAX_HOST];
    int n = zone_host_normalise(host, len, name, sizeof(name));
    return n < 0 ? NULL : zone_match(cfg, name, (size_t)n);
}

const struct config_zone *
zone_match(const struct config *cfg, const char *name, size_t n)
{
    const struct config_zone *best = NULL, *catch_all = NULL;
    int best_len = -1;
    for (size_t i = 0; i < cfg->nzones; i++) {
        const struct config_zone *z = &cfg->zones[i];
        for (size_t j = 0; j < z->nhosts; j++) {
            const char *h = z->hosts[j];
            if (h[0] == '*' && h[1] == '\0') {
                catch_all = catch_all ? catch_all : z;
            } else if (h[0] == '*' && h[1] == '.') {
                int m = wildcard_match(h, name, n);
                if (m > best_len) {
                    best_len = m;
                    best = z;
                }
            } else if (strlen(h) == n && memcmp(h, name, n) == 0) {
                return z;
            }
        }
    }
    return best ? best : catch_all;
}
