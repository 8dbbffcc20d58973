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

/* Case-insensitive compare of a length-delimited string with a C string literal. */
bool str_ieq(const char *s, size_t len, const char *lit);

/* Parse an unsigned decimal integer covering all of s[0..len); -1 on anything else. */
int str_to_u64(const char *s, size_t len, uint64_t *out);

/* Banned: unbounded or ambiguous functions (HAProxy core-principles, curl checksrc). */
#pragma GCC poison strcpy strcat sprintf vsprintf strtok gets atoi atol

#endif
