/* msg.c - HTTP message heads: header lookup, hop-by-hop rules, status and method names. */
#include "http/msg.h"

#include <llhttp.h>
#include <strings.h>

void
http_msg_init(struct http_msg *m, size_t max_head)
{
    memset(m, 0, sizeof(*m));
    buf_init(&m->strings, max_head);
}

void
http_msg_reset(struct http_msg *m)
{
    buf_reset(&m->strings);
    m->nheaders = 0;
    m->url = (struct http_str){0, 0};
    m->reason = (struct http_str){0, 0};
    m->method = m->status = 0;
    m->major = m->minor = 0;
    m->keep_alive = m->chunked = m->has_content_length = m->indexed = false;
    m->content_length = 0;
}

void
http_msg_copy(struct http_msg *dst, const struct http_msg *src)
{
    struct buf strings;
    buf_init(&strings, src->strings.cap);
    buf_append(&strings, src->strings.data, src->strings.len);
    *dst = *src;
    dst->strings = strings;
}

void
http_msg_free(struct http_msg *m)
{
    buf_free(&m->strings);
}

static bool
name_is(const struct http_msg *m, const struct http_header *h, const char *name)
{
    return str_ieq(http_str_ptr(m, h->name), h->name.len, name);
}

const struct http_header *
http_msg_find(const struct http_msg *m, const char *name)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (name_is(m, &m->headers[i], name))
            return &m->headers[i];
    return NULL;
}

size_t
http_msg_count(const struct http_msg *m, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nheaders; i++)
        n += name_is(m, &m->headers[i], name);
    return n;
}

/* The next element of a comma-separated list from *i: [*start, *end) without its
 * whitespace (empty for ", ,"). false at the end of the list. */
static bool
list_next(const char *list, size_t len, size_t *i, size_t *start, size_t *end)
{
    while (*i < len && (list[*i] == ' ' || list[*i] == '\t' || list[*i] == ','))
        (*i)++;
    if (*i >= len)
        return false;
    *start = *i;
    while (*i < len && list[*i] != ',')
        (*i)++;
    *end = *i;
    while (*end > *start && (list[*end - 1] == ' ' || list[*end - 1] == '\t'))
        (*end)--;
    return true;
}

bool
http_list_has_token(const char *list, size_t len, const char *token)
{
    size_t i = 0, start, end;
    while (list_next(list, len, &i, &start, &end))
        if (end > start && str_ieq(list + start, end - start, token))
            return true;
    return false;
}

static bool
named_by_connection(const struct http_msg *m, const char *name, size_t len)
{
    char token[64];
    if (len >= sizeof(token))
        return false;
    memcpy(token, name, len);
    token[len] = '\0';
    for (const struct http_header *c = http_msg_field(m, HTTP_FIELD_CONNECTION); c != NULL;
         c = http_msg_field_next(m, HTTP_FIELD_CONNECTION, c))
        if (http_list_has_token(http_str_ptr(m, c->value), c->value.len, token))
            return true;
    return false;
}

#define FIELD(id, name) [id] = {name, sizeof(name) - 1}

static const struct {
    const char *name;
    size_t len;
} field_names[HTTP_FIELD_COUNT] = {
    FIELD(HTTP_FIELD_HOST, "Host"),
    FIELD(HTTP_FIELD_EXPECT, "Expect"),
    FIELD(HTTP_FIELD_CONTENT_LENGTH, "Content-Length"),
    FIELD(HTTP_FIELD_TRANSFER_ENCODING, "Transfer-Encoding"),
    FIELD(HTTP_FIELD_CONNECTION, "Connection"),
    FIELD(HTTP_FIELD_KEEP_ALIVE, "Keep-Alive"),
    FIELD(HTTP_FIELD_TE, "TE"),
    FIELD(HTTP_FIELD_TRAILER, "Trailer"),
    FIELD(HTTP_FIELD_UPGRADE, "Upgrade"),
    FIELD(HTTP_FIELD_CACHE_CONTROL, "Cache-Control"),
    FIELD(HTTP_FIELD_AUTHORIZATION, "Authorization"),
    FIELD(HTTP_FIELD_RANGE, "Range"),
    FIELD(HTTP_FIELD_IF_RANGE, "If-Range"),
    FIELD(HTTP_FIELD_IF_NONE_MATCH, "If-None-Match"),
    FIELD(HTTP_FIELD_IF_MODIFIED_SINCE, "If-Modified-Since"),
    FIELD(HTTP_FIELD_X_REQUEST_ID, "X-Request-Id"),
    FIELD(HTTP_FIELD_X_FORWARDED_FOR, "X-Forwarded-For"),
    FIELD(HTTP_FIELD_X_FORWARDED_PROTO, "X-Forwarded-Proto"),
    FIELD(HTTP_FIELD_ACCEPT, "Accept"),
    FIELD(HTTP_FIELD_USER_AGENT, "User-Agent"),
    FIELD(HTTP_FIELD_REFERER, "Referer"),
    FIELD(HTTP_FIELD_SET_COOKIE, "Set-Cookie"),
    FIELD(HTTP_FIELD_VARY, "Vary"),
    FIELD(HTTP_FIELD_EXPIRES, "Expires"),
    FIELD(HTTP_FIELD_LAST_MODIFIED, "Last-Modified"),
    FIELD(HTTP_FIELD_ETAG, "ETag"),
    FIELD(HTTP_FIELD_DATE, "Date"),
    FIELD(HTTP_FIELD_AGE, "Age"),
    FIELD(HTTP_FIELD_CACHE_TAG, "Cache-Tag"),
    FIELD(HTTP_FIELD_SURROGATE_KEY, "Surrogate-Key"),
};

const char *
http_field_name(enum http_field f)
{
    return f < HTTP_FIELD_COUNT ? field_names[f].name : "";
}

/* The known fields by a hash of their name's length and first and last bytes (lower
 * case): open addressing in a table eight times the fields' number, so a lookup is a hash,
 * one slot and, when its length matches, one comparison of eight bytes at a time with the
 * name in lower case. Built before main runs. */
#define FIELD_SLOTS 256
#define FIELD_NAME_MAX 24
static uint8_t field_slot[FIELD_SLOTS];          /* 1 + the field; 0: empty */
static char field_lower[HTTP_FIELD_COUNT][FIELD_NAME_MAX]; /* zero-padded */

static size_t
field_hash(const char *name, size_t len)
{
    return (len * 37 + ascii_lower((unsigned char)name[0]) * 7 +
            ascii_lower((unsigned char)name[len - 1])) % FIELD_SLOTS;
}

__attribute__((constructor)) static void
field_slots_build(void)
{
    for (size_t f = 0; f < HTTP_FIELD_COUNT; f++) {
        if (field_names[f].len >= FIELD_NAME_MAX)
            abort(); /* FIELD_NAME_MAX is to grow with the names */
        for (size_t k = 0; k < field_names[f].len; k++)
            field_lower[f][k] = (char)ascii_lower((unsigned char)field_names[f].name[k]);
        size_t i = field_hash(field_names[f].name, field_names[f].len);
        while (field_slot[i] != 0)
            i = (i + 1) % FIELD_SLOTS;
        field_slot[i] = (uint8_t)(f + 1);
    }
}

/* Eight bytes with their ASCII capitals made small (bytes from 0x80 stay as they are). */
static uint64_t
lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t heptets = w & ~highs;
    uint64_t from_a = heptets + (0x80 - 'A') * ones, past_z = heptets + (0x7f - 'Z') * ones;
    return w | ((from_a & ~past_z & ~w & highs) >> 2);
}

static uint64_t
load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static uint64_t
load4(const char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* name is field f but for case: words of eight (or four) bytes compared with the name in
 * lower case, the last word overlapping the one before, so no name takes a byte loop. */
static bool
is_field(const char *name, size_t len, size_t f)
{
    const char *lower = field_lower[f];
    if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8)
            if (lower8(load8(name + i)) != load8(lower + i))
                return false;
        return lower8(load8(name + len - 8)) == load8(lower + len - 8);
    }
    if (len >= 4)
        return lower8(load4(name)) == load4(lower) &&
               lower8(load4(name + len - 4)) == load4(lower + len - 4);
    return mem_ieq(name, lower, len);
}

enum http_field
http_field_of(const char *name, size_t len)
{
    if (len == 0 || len >= FIELD_NAME_MAX)
        return HTTP_FIELD_OTHER;
    for (size_t i = field_hash(name, len); field_slot[i] != 0; i = (i + 1) % FIELD_SLOTS) {
        size_t f = field_slot[i] - 1u;
        if (field_names[f].len == len && is_field(name, len, f))
            return (enum http_field)f;
    }
    return HTTP_FIELD_OTHER;
}

const struct http_header *
http_msg_field_next(const struct http_msg *m, enum http_field f, const struct http_header *h)
{
    size_t i = h != NULL ? (size_t)(h - m->headers) + 1 : 0;
    if (m->indexed && h == NULL)
        return http_msg_field(m, f);
    if (m->indexed && m->count[f] <= 1)
        return NULL; /* h was the only one: no scan of the fields after it */
    for (; i < m->nheaders; i++)
        if (http_header_field(m, &m->headers[i]) == f)
            return &m->headers[i];
    return NULL;
}

/* Hop-by-hop by name alone (RFC 9110 7.6.1, and the framing fields the proxy redoes). */
static const bool hop_field[HTTP_FIELD_COUNT + 1] = {
    [HTTP_FIELD_TE] = true,         [HTTP_FIELD_TRAILER] = true,
    [HTTP_FIELD_UPGRADE] = true,    [HTTP_FIELD_CONNECTION] = true,
    [HTTP_FIELD_KEEP_ALIVE] = true, [HTTP_FIELD_CONTENT_LENGTH] = true,
    [HTTP_FIELD_TRANSFER_ENCODING] = true,
};

/* Hop-by-hop by name, f being the name's known field (http_field_of): a load, and for
 * the few names that start with a p, a look at "proxy-" (every field of a head goes
 * through here). */
static inline bool
hop_named(enum http_field f, const char *name, size_t len)
{
    return hop_field[f] ||
           (len >= 6 && ascii_lower((unsigned char)name[0]) == 'p' && mem_ieq(name, "proxy-", 6));
}

static bool
hop_by_name(const char *name, size_t len)
{
    return hop_named(http_field_of(name, len), name, len);
}

bool
http_name_is_hop(const struct http_msg *m, const char *name, size_t len)
{
    return hop_by_name(name, len) || named_by_connection(m, name, len);
}

static void
mark_hop(struct http_msg *m, size_t i)
{
    m->hop[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Every field a Connection field names: its tokens compared with each field name. */
static void
mark_connection_tokens(struct http_msg *m, const struct http_header *c)
{
    const char *list = http_str_ptr(m, c->value);
    size_t len = c->value.len, i = 0, start, end;
    while (list_next(list, len, &i, &start, &end)) {
        /* as named_by_connection: tokens of 64 bytes or more name nothing */
        for (size_t k = 0; end > start && end - start < 64 && k < m->nheaders; k++) {
            const struct http_header *h = &m->headers[k];
            if (h->name.len == end - start &&
                mem_ieq(http_str_ptr(m, h->name), list + start, end - start))
                mark_hop(m, k);
        }
    }
}

void
http_msg_index(struct http_msg *m)
{
    memset(m->hop, 0, sizeof(m->hop));
    memset(m->first, 0, sizeof(m->first));
    memset(m->count, 0, sizeof(m->count));
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *h = &m->headers[i];
        const char *name = http_str_ptr(m, h->name);
        enum http_field f = http_field_of(name, h->name.len);
        m->field[i] = (uint8_t)f;
        if (f != HTTP_FIELD_OTHER && m->count[f]++ == 0)
            m->first[f] = (uint8_t)(i + 1);
        if (hop_named(f, name, h->name.len))
            mark_hop(m, i);
    }
    m->indexed = true;
    for (const struct http_header *c = http_msg_field(m, HTTP_FIELD_CONNECTION); c != NULL;
         c = http_msg_field_next(m, HTTP_FIELD_CONNECTION, c))
        mark_connection_tokens(m, c);
}

bool
http_msg_is_hop_header(const struct http_msg *m, const struct http_header *h)
{
    size_t i = (size_t)(h - m->headers);
    if (m->indexed && i < m->nheaders)
        return (m->hop[i / 64] >> (i % 64)) & 1;
    return http_name_is_hop(m, http_str_ptr(m, h->name), h->name.len);
}

const char *
http_method_name(int method)
{
    return llhttp_method_name((llhttp_method_t)method);
}

const char *
http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
    }
}
