/* buf.h - a growable byte buffer with a read offset and a hard cap set at creation
 * (curl's dynbuf): appends past the cap fail instead of growing without bound. */
#ifndef VERGE_CORE_BUF_H
#define VERGE_CORE_BUF_H

#include "core/base.h"

struct buf {
    char *data;
    size_t off;  /* first unread byte */
    size_t len;  /* end of data */
    size_t size; /* allocated */
    size_t cap;  /* never grow past this */
};

void buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);

static inline size_t
buf_used(const struct buf *b)
{
    return b->len - b->off;
}
static inline const char *
buf_head(const struct buf *b)
{
    return b->data != NULL ? b->data + b->off : ""; /* never NULL, even when empty */
}
static inline void
buf_reset(struct buf *b)
{
    b->off = b->len = 0;
}

/* Make room for at least n more bytes at the end (compacting first). 0, or -1 past the cap. */
int buf_reserve(struct buf *b, size_t n);
/* Free space at the end, after buf_reserve. */
static inline char *
buf_tail(struct buf *b)
{
    return b->data + b->len;
}
static inline size_t
buf_room(const struct buf *b)
{
    return b->size - b->len;
}

/* Inline: heads are built from many short pieces, most of them literals whose length the
 * compiler knows; only a full buffer calls out (buf_reserve). */
static inline int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0; /* a fresh buffer has no data yet: no pointer arithmetic on NULL */
    if (b->size - b->len < n && buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static inline int
buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}
/* v in decimal; -1 past the cap. */
int buf_append_u64(struct buf *b, uint64_t v);
/* printf-style append; -1 past the cap. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a quoted JSON string: quotes and backslashes escaped, control bytes and
 * bytes outside ASCII as \u00XX (so a log line or document stays valid whatever s holds).
 * -1 past the cap. */
int buf_append_json_string(struct buf *b, const char *s);

/* Consume n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

#endif
