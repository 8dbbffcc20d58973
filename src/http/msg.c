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

/* The known fields whose names start with c (lower case), for http_field_of. */
static const uint8_t *
fields_starting(char c)
{
    static const uint8_t a[] = {HTTP_FIELD_AGE, HTTP_FIELD_ACCEPT, HTTP_FIELD_AUTHORIZATION,
                                HTTP_FIELD_OTHER};
    static const uint8_t c_[] = {HTTP_FIELD_CONNECTION, HTTP_FIELD_CONTENT_LENGTH,
                                 HTTP_FIELD_CACHE_CONTROL, HTTP_FIELD_CACHE_TAG, HTTP_FIELD_OTHER};
    static const uint8_t d[] = {HTTP_FIELD_DATE, HTTP_FIELD_OTHER};
    static const uint8_t e[] = {HTTP_FIELD_ETAG, HTTP_FIELD_EXPECT, HTTP_FIELD_EXPIRES,
                                HTTP_FIELD_OTHER};
    static const uint8_t h[] = {HTTP_FIELD_HOST, HTTP_FIELD_OTHER};
    static const uint8_t i[] = {HTTP_FIELD_IF_RANGE, HTTP_FIELD_IF_NONE_MATCH,
                                HTTP_FIELD_IF_MODIFIED_SINCE, HTTP_FIELD_OTHER};
    static const uint8_t k[] = {HTTP_FIELD_KEEP_ALIVE, HTTP_FIELD_OTHER};
    static const uint8_t l[] = {HTTP_FIELD_LAST_MODIFIED, HTTP_FIELD_OTHER};
    static const uint8_t r[] = {HTTP_FIELD_RANGE, HTTP_FIELD_REFERER, HTTP_FIELD_OTHER};
    static const uint8_t s[] = {HTTP_FIELD_SET_COOKIE, HTTP_FIELD_SURROGATE_KEY, HTTP_FIELD_OTHER};
    static const uint8_t t[] = {HTTP_FIELD_TE, HTTP_FIELD_TRAILER, HTTP_FIELD_TRANSFER_ENCODING,
                                HTTP_FIELD_OTHER};
    static const uint8_t u[] = {HTTP_FIELD_UPGRADE, HTTP_FIELD_USER_AGENT, HTTP_FIELD_OTHER};
    static const uint8_t v[] = {HTTP_FIELD_VARY, HTTP_FIELD_OTHER};
    static const uint8_t x[] = {HTTP_FIELD_X_REQUEST_ID, HTTP_FIELD_X_FORWARDED_FOR,
                                HTTP_FIELD_X_FORWARDED_PROTO, HTTP_FIELD_OTHER};
    static const uint8_t none[] = {HTTP_FIELD_OTHER};
    switch (c) {
    case 'a': return a;
    case 'c': return c_;
    case 'd': return d;
    case 'e': return e;
    case 'h': return h;
    case 'i': return i;
    case 'k': return k;
    case 'l': return l;
    case 'r': return r;
    case 's': return s;
    case 't': return t;
    case 'u': return u;
    case 'v': return v;
    case 'x': return x;
    default: return none;
    }
}

enum http_field
http_field_of(const char *name, size_t len)
{
    if (len == 0)
        return HTTP_FIELD_OTHER;
    for (const uint8_t *f = fields_starting((char)(name[0] | 0x20)); *f != HTTP_FIELD_OTHER; f++)
        if (field_names[*f].len == len && strncasecmp(name, field_names[*f].name, len) == 0)
            return (enum http_field)*f;
    return HTTP_FIELD_OTHER;
}

const struct http_header *
http_msg_field_next(const struct http_msg *m, enum http_field f, const struct http_header *h)
{
    size_t i = h != NULL ? (size_t)(h - m->headers) + 1 : 0;
    if (m->indexed && h == NULL)
        return http_msg_field(m, f);
    for (; i < m->nheaders; i++)
        if (http_header_field(m, &m->headers[i]) == f)
            return &m->headers[i];
    return NULL;
}

/* Hop-by-hop by name alone (RFC 9110 7.6.1, and the framing fields the proxy redoes). */
static bool
hop_field(enum http_field f)
{
    return f == HTTP_FIELD_TE || f == HTTP_FIELD_TRAILER || f == HTTP_FIELD_UPGRADE ||
           f == HTTP_FIELD_CONNECTION || f == HTTP_FIELD_KEEP_ALIVE ||
           f == HTTP_FIELD_CONTENT_LENGTH || f == HTTP_FIELD_TRANSFER_ENCODING;
}

/* Hop-by-hop by name, f being the name's known field (http_field_of). */
static bool
hop_named(enum http_field f, const char *name, size_t len)
{
    return hop_field(f) || (len >= 6 && strncasecmp(name, "proxy-", 6) == 0);
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
                strncasecmp(http_str_ptr(m, h->name), list + start, end - start) == 0)
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
