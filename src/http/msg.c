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
    m->keep_alive = m->chunked = m->has_content_length = m->hop_marked = false;
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
    for (size_t i = 0; i < m->nheaders; i++) {
        const struct http_header *c = &m->headers[i];
        if (name_is(m, c, "connection") &&
            http_list_has_token(http_str_ptr(m, c->value), c->value.len, token))
            return true;
    }
    return false;
}

/* Hop-by-hop by name alone (RFC 9110 7.6.1, and the framing fields the proxy redoes). */
static bool
hop_by_name(const char *name, size_t len)
{
    if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return true;
    switch (len) {
    case 2: return str_ieq(name, len, "te");
    case 7: return str_ieq(name, len, "trailer") || str_ieq(name, len, "upgrade");
    case 10: return str_ieq(name, len, "connection") || str_ieq(name, len, "keep-alive");
    case 14: return str_ieq(name, len, "content-length");
    case 17: return str_ieq(name, len, "transfer-encoding");
    default: return false;
    }
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
http_msg_mark_hop(struct http_msg *m)
{
    memset(m->hop, 0, sizeof(m->hop));
    for (size_t i = 0; i < m->nheaders; i++)
        if (hop_by_name(http_str_ptr(m, m->headers[i].name), m->headers[i].name.len))
            mark_hop(m, i);
    for (size_t i = 0; i < m->nheaders; i++)
        if (name_is(m, &m->headers[i], "connection"))
            mark_connection_tokens(m, &m->headers[i]);
    m->hop_marked = true;
}

bool
http_msg_is_hop_header(const struct http_msg *m, const struct http_header *h)
{
    size_t i = (size_t)(h - m->headers);
    if (m->hop_marked && i < m->nheaders)
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
