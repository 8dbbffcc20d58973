/* base.c - allocation that aborts on OOM and small string helpers. */
#include "core/base.h"

#include <strings.h>
#include <unistd.h>

static void
oom(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "verge: out of memory allocating %zu bytes\n", size);
    if (n > 0 && write(2, msg, (size_t)n) < 0) {
        /* nothing more to do */
    }
    abort();
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (unlikely(p == NULL))
        oom(size);
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (unlikely(p == NULL))
        oom(n * size);
    return p;
}

void *
xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (unlikely(q == NULL))
        oom(size);
    return q;
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

void
str_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memmove(dst, src, n); /* src may overlap dst (a field copied onto itself) */
    dst[n] = '\0';
}

int
str_to_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (i >= 19 && v > (UINT64_MAX - d) / 10) /* 19 digits cannot overflow */
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

size_t
u64_digits(uint64_t v, char out[U64_DIGITS])
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    size_t i = U64_DIGITS;
    while (v >= 100) {
        i -= 2;
        memcpy(out + i, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        i -= 2;
        memcpy(out + i, pairs + 2 * v, 2);
    } else {
        out[--i] = (char)('0' + v);
    }
    return i;
}
