/* msg.h - a parsed HTTP/1.x message head: start line and header fields, stored as offsets
 * into one capped string buffer so it survives the read buffer being reused. */
#ifndef VERGE_HTTP_MSG_H
#define VERGE_HTTP_MSG_H

#include "core/buf.h"

#define HTTP_MAX_HEADERS 128

struct http_str {
    uint32_t off, len;
};

struct http_header {
    struct http_str name, value;
};

struct http_msg {
    struct buf strings; /* capped at the head size limit */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    struct http_str url;    /* requests */
    struct http_str reason; /* responses */
    int method;             /* llhttp_method_t, requests */
    int status;             /* responses */
    uint8_t major, minor;
    bool keep_alive;        /* per llhttp_should_keep_alive at headers complete */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool has_content_length;
    bool hop_marked;        /* hop[] is filled (http_msg_mark_hop) */
    uint64_t content_length;
    uint64_t hop[HTTP_MAX_HEADERS / 64]; /* bit i: headers[i] is hop-by-hop */
};

void http_msg_init(struct http_msg *m, size_t max_head);
void http_msg_reset(struct http_msg *m);
void http_msg_free(struct http_msg *m);
/* A deep copy of src into dst (dst uninitialised), for work that outlives the parser. */
void http_msg_copy(struct http_msg *dst, const struct http_msg *src);

/* The bytes of s (s.len of them, not NUL-terminated); "" for an empty message whose strings
 * never grew (no arithmetic on a NULL buffer). */
static inline const char *
http_str_ptr(const struct http_msg *m, struct http_str s)
{
    return m->strings.data ? m->strings.data + s.off : "";
}

/* The first header with this name (case-insensitive), or NULL. */
const struct http_header *http_msg_find(const struct http_msg *m, const char *name);
/* How many headers have this name. */
size_t http_msg_count(const struct http_msg *m, const char *name);

/* Does a comma-separated header list (e.g. Connection) contain token (case-insensitive)? */
bool http_list_has_token(const char *list, size_t len, const char *token);

/* Is this header hop-by-hop for a proxy: Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*, or one the message's Connection header names?
 * Content-Length and Transfer-Encoding are reframed by the proxy, so they count here. */
bool http_msg_is_hop_header(const struct http_msg *m, const struct http_header *h);
/* The same for a field name given as bytes (not necessarily one of m's fields). */
bool http_name_is_hop(const struct http_msg *m, const char *name, size_t len);
/* Work out once which of m's fields are hop-by-hop, so that http_msg_is_hop_header is a
 * bit test (the parser calls it when a head is complete; a message built by hand without
 * it is answered the long way). */
void http_msg_mark_hop(struct http_msg *m);

/* Method name for an llhttp method number. */
const char *http_method_name(int method);
/* Standard reason phrase for a status ("Bad Gateway"), "" when unknown. */
const char *http_status_reason(int status);

#endif
