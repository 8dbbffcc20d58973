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
    m->keep_alive = m->chunked = m->has_content_length = false;
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

bool
http_list_has_token(const char *list, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end > start && str_ieq(list + start, end - start, token))
            return true;
    }
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

bool
http_name_is_hop(const struct http_msg *m, const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive",        "te",
                                      "trailer",    "transfer-encoding", "upgrade",
                                      "content-length"};
    for (size_t i = 0; i < ARRAY_SIZE(hop); i++)
        if (str_ieq(name, len, hop[i]))
            return true;
    if (len >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return true;
    return named_by_connection(m, name, len);
}

bool
http_msg_is_hop_header(const struct http_msg *m, const struct http_header *h)
{
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
