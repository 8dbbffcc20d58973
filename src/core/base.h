/* base.h - what every Verge source file includes first: common headers, small helpers,
 * allocation that aborts on OOM, and the functions Verge never uses. */
#ifndef VERGE_CORE_BASE_H
#define VERGE_CORE_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Small allocations: abort with a message on OOM (as h2o and redis do). Never return NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

static inline unsigned char
ascii_lower(unsigned char c)
{
    return (unsigned char)(c - 'A') < 26 ? (unsigned char)(c | 0x20) : c;
}

/* a[0..n) and b[0..n) equal but for the case of ASCII letters (no locale, no NUL rule:
 * strncasecmp costs a library call and a locale lookup for the same answer). */
static inline bool
mem_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

/* Case-insensitive compare of a length-delimited string with a C string (usually a
 * literal: its length is then known at compile time). Inline, and it looks at the length
 * and the first byte before comparing: header names are matched this way many times per
 * request, and nearly every comparison fails on one of those two. */
static inline bool
str_ieq(const char *s, size_t len, const char *lit)
{
    if (__builtin_strlen(lit) != len)
        return false;
    if (len > 0 && (s[0] | 0x20) != (lit[0] | 0x20))
        return false; /* differs in a letter's case only when both are the same letter */
    return mem_ieq(s, lit, len);
}

/* Copy src into dst[size] (size > 0), cut to fit and always NUL-terminated: what
 * snprintf(dst, size, "%s", src) does, without the formatting machinery. */
void str_copy(char *dst, size_t size, const char *src);

/* v in decimal at the end of out: returns where its first digit is (the digits end at
 * out + U64_DIGITS). Two digits a step from a table of the hundred pairs, as nginx's
 * sprintf and fmtlib do: a division per digit was a third of formatting a hit's fields. */
#define U64_DIGITS 20
size_t u64_digits(uint64_t v, char out[U64_DIGITS]);

/* v as 16 lower-case hex digits, most significant first (no NUL): what
 * snprintf("%016llx") writes. All nibbles at once (SSE2 where there is SSE2). */
void u64_hex(uint64_t v, char out[16]);

/* Parse an unsigned decimal integer covering all of s[0..len); -1 on anything else. */
int str_to_u64(const char *s, size_t len, uint64_t *out);

/* Banned: unbounded or ambiguous functions (HAProxy core-principles, curl checksrc). */
#pragma GCC poison strcpy strcat sprintf vsprintf strtok gets atoi atol

#endif
