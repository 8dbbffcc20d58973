/* base.c - allocation that aborts on OOM and small string helpers. */
#include "core/base.h"

#include <strings.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

#ifdef __SSE2__
/* The bytes most significant first, each split into its two nibbles (interleaved high
 * then low), each nibble made '0'..'9' or 'a'..'f': a dozen instructions for 16 digits. */
void
u64_hex(uint64_t v, char out[16])
{
    const __m128i low4 = _mm_set1_epi8(0x0f);
    __m128i x = _mm_cvtsi64_si128((long long)__builtin_bswap64(v));
    __m128i lo = _mm_and_si128(x, low4);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), low4);
    __m128i n = _mm_unpacklo_epi8(hi, lo);
    __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(n, _mm_set1_epi8(9)),
                                    _mm_set1_epi8('a' - '0' - 10));
    n = _mm_add_epi8(n, _mm_add_epi8(_mm_set1_epi8('0'), letters));
    _mm_storeu_si128((__m128i *)(void *)out, n);
}
#else
/* Eight nibbles at a time, each spread into a byte of its own, then made a digit or a
 * letter. */
static void
hex8(uint32_t v, char out[8])
{
    uint64_t n = v;
    n = ((n & 0xffff0000ull) << 16) | (n & 0xffffull);
    n = ((n & 0x0000ff000000ff00ull) << 8) | (n & 0x000000ff000000ffull);
    n = ((n & 0x00f000f000f000f0ull) << 4) | (n & 0x000f000f000f000full); /* a nibble a byte */
    uint64_t letters = ((n + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull; /* >= 10 */
    n += 0x3030303030303030ull + letters * ('a' - '0' - 10);
    n = __builtin_bswap64(n); /* the most significant nibble is in the highest byte */
    memcpy(out, &n, 8);
}

void
u64_hex(uint64_t v, char out[16])
{
    hex8((uint32_t)(v >> 32), out);
    hex8((uint32_t)v, out + 8);
}
#endif

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
