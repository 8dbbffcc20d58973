/* buf.c - growable, capped byte buffers. */
#include "core/buf.h"

#include <stdarg.h>

void
buf_init(struct buf *b, size_t cap)
{
    b->data = NULL;
    b->off = b->len = b->size = 0;
    b->cap = cap;
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->size = 0;
}

int
buf_reserve(struct buf *b, size_t n)
{
    if (b->size - b->len >= n)
        return 0;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->size - b->len >= n)
            return 0;
    }
    if (b->len + n > b->cap)
        return -1;
    size_t size = b->size ? b->size : 1024;
    while (size < b->len + n)
        size *= 2;
    size = MIN(size, b->cap);
    b->data = xrealloc(b->data, size);
    b->size = size;
    return 0;
}

int
buf_append_u64(struct buf *b, uint64_t v)
{
    char digits[U64_DIGITS];
    size_t at = u64_digits(v, digits);
    return buf_append(b, digits + at, sizeof(digits) - at);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return buf_append(b, small, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

int
buf_append_json_string(struct buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);
    for (; *s != '\0' && rc == 0; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            rc = buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            rc = buf_printf(b, "\\u%04x", ch);
        else
            rc = buf_append(b, s, 1);
    }
    return rc == 0 ? buf_append(b, "\"", 1) : rc;
}
