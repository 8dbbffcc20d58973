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

const struct config_zone *
zone_find(const struct config *cfg, const char *host, size_t len)
{
    char name[ZONE_MAX_HOST];
    int n = zone_host_normalise(host, len, name, sizeof(name));
    return n < 0 ? NULL : zone_match(cfg, name, (size_t)n);
}

/* The exact name first, then each ".suffix" from the name's first dot on: the further
 * left the dot, the longer the suffix, so the first wildcard found is the most specific.
 * A suffix as long as no wildcard is not looked up. A dot at the name's start is no match
 * ("*.example.com" is not ".example.com"). */
const struct config_zone *
zone_match(const struct config *cfg, const char *name, size_t n)
{
    const struct config_zone *z = config_host_find(cfg, config_host_hash(name, n), name, n, false);
    if (z != NULL)
        return z;
    for (size_t i = 1; cfg->wildcard_lens != 0 && i < n; i++) {
        const char *dot = memchr(name + i, '.', n - i);
        if (dot == NULL)
            break;
        i = (size_t)(dot - name);
        if ((cfg->wildcard_lens & config_host_len_bit(n - i)) == 0)
            continue;
        z = config_host_find(cfg, config_host_hash(dot, n - i), dot, n - i, true);
        if (z != NULL)
            return z;
    }
    return cfg->catch_all;
}
