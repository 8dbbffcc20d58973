/* range.c - parsing "bytes=a-b, c-, -n" and coalescing the result. */
#include "cache/range.h"

#include <strings.h>

static size_t
skip_ows(const char *v, size_t i, size_t len)
{
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i;
}

static size_t
digits(const char *v, size_t i, size_t len, uint64_t *n, bool *any)
{
    size_t start = i;
    *n = 0;
    while (i < len && v[i] >= '0' && v[i] <= '9') {
        if (*n > (UINT64_MAX - 9) / 10)
            *n = UINT64_MAX / 2; /* absurdly large: beyond any body */
        else
            *n = *n * 10 + (uint64_t)(v[i] - '0');
        i++;
    }
    *any = i > start;
    return i;
}

/* One byte-range-spec at v[i..]: 1 satisfiable (in *out), 0 not satisfiable, -1 invalid. */
static int
one_spec(const char *v, size_t *ip, size_t len, uint64_t total, struct cache_range *out)
{
    uint64_t a, b;
    bool has_a, has_b;
    size_t i = digits(v, *ip, len, &a, &has_a);
    if (i >= len || v[i] != '-')
        return -1;
    i = digits(v, i + 1, len, &b, &has_b);
    *ip = i;
    if (!has_a && !has_b)
        return -1;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || total == 0)
            return 0;
        *out = (struct cache_range){total > b ? total - b : 0, total - 1};
        return 1;
    }
    if (has_b && b < a)
        return -1;
    if (a >= total)
        return 0;
    *out = (struct cache_range){a, has_b && b < total ? b : total - 1};
    return 1;
}

static bool
touch(const struct cache_range *x, const struct cache_range *y)
{
    return x->first <= y->last + 1 && y->first <= x->last + 1;
}

/* Sort by first byte and merge ranges that overlap or touch. */
static int
coalesce(struct cache_range *r, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && r[j].first < r[j - 1].first; j--) {
            struct cache_range t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    int m = 0;
    for (int i = 1; i < n; i++) {
        if (touch(&r[m], &r[i]))
            r[m].last = MAX(r[m].last, r[i].last);
        else
            r[++m] = r[i];
    }
    return m + 1;
}

int
cache_range_parse(const char *v, size_t len, uint64_t total, struct cache_range *r)
{
    size_t i = skip_ows(v, 0, len);
    int n = 0, specs = 0;
    if (len - i < 6 || strncasecmp(v + i, "bytes=", 6) != 0)
        return 0;
    for (i += 6;;) {
        i = skip_ows(v, i, len);
        if (i < len && v[i] == ',') { /* empty list elements are allowed */
            i++;
            continue;
        }
        if (i >= len)
            break;
        if (++specs > CACHE_MAX_RANGES)
            return 0;
        int rc = one_spec(v, &i, len, total, &r[n]);
        if (rc < 0)
            return 0;
        n += rc;
        i = skip_ows(v, i, len);
        if (i < len && v[i] != ',')
            return 0;
    }
    if (specs == 0)
        return 0;
    if (n == 0)
        return -1;
    bool overlap = false;
    for (int a = 0; a < n && !overlap; a++)
        for (int b = a + 1; b < n && !overlap; b++)
            overlap = touch(&r[a], &r[b]);
    return overlap ? coalesce(r, n) : n;
}
