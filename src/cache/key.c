/* key.c - the target part of a cache key, with the query kept, ignored or sorted. */
#include "cache/key.h"

#define KEY_SORT_STACK 64 /* parameters sorted without an allocation */

struct param {
    const char *p;
    size_t len;
};

static int
param_cmp(const void *a, const void *b)
{
    const struct param *x = a, *y = b;
    int c = memcmp(x->p, y->p, MIN(x->len, y->len));
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

static size_t
split_params(const char *q, size_t qlen, struct param *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i <= qlen && n < max;) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp ? (size_t)(amp - q) : qlen;
        if (end > i)
            out[n++] = (struct param){q + i, end - i};
        i = end + 1;
    }
    return n;
}

static int
append_sorted(struct buf *out, const char *q, size_t qlen)
{
    size_t max = 1;
    for (size_t i = 0; i < qlen; i++)
        max += q[i] == '&';
    struct param stack[KEY_SORT_STACK], *params = max <= KEY_SORT_STACK ? stack
                                                                        : xmalloc(max * sizeof(*params));
    size_t n = split_params(q, qlen, params, max);
    qsort(params, n, sizeof(*params), param_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        rc |= buf_append(out, i == 0 ? "?" : "&", 1);
        rc |= buf_append(out, params[i].p, params[i].len);
    }
    if (params != stack)
        free(params);
    return rc;
}

int
cache_key_target(struct buf *out, const char *target, size_t len, enum config_cache_query mode)
{
    const char *q = memchr(target, '?', len);
    size_t plen = q ? (size_t)(q - target) : len;
    if (mode == CONFIG_QUERY_KEEP || q == NULL)
        return buf_append(out, target, len);
    int rc = buf_append(out, target, plen);
    if (mode == CONFIG_QUERY_SORT)
        rc |= append_sorted(out, q + 1, len - plen - 1);
    return rc;
}
