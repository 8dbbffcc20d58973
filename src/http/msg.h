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

/* The fields the edge looks up by name. The parser files every field under one of these
 * (or HTTP_FIELD_OTHER) in the same pass that marks the hop-by-hop ones, so a lookup by
 * name is an array read instead of a walk over the fields with a string compare. */
enum http_field {
    HTTP_FIELD_HOST,
    HTTP_FIELD_EXPECT,
    HTTP_FIELD_CONTENT_LENGTH,
    HTTP_FIELD_TRANSFER_ENCODING,
    HTTP_FIELD_CONNECTION,
    HTTP_FIELD_KEEP_ALIVE,
    HTTP_FIELD_TE,
    HTTP_FIELD_TRAILER,
    HTTP_FIELD_UPGRADE,
    HTTP_FIELD_CACHE_CONTROL,
    HTTP_FIELD_AUTHORIZATION,
    HTTP_FIELD_RANGE,
    HTTP_FIELD_IF_RANGE,
    HTTP_FIELD_IF_NONE_MATCH,
    HTTP_FIELD_IF_MODIFIED_SINCE,
    HTTP_FIELD_X_REQUEST_ID,
    HTTP_FIELD_X_FORWARDED_FOR,
    HTTP_FIELD_X_FORWARDED_PROTO,
    HTTP_FIELD_ACCEPT,
    HTTP_FIELD_USER_AGENT,
    HTTP_FIELD_REFERER,
    HTTP_FIELD_SET_COOKIE,
    HTTP_FIELD_VARY,
    HTTP_FIELD_EXPIRES,
    HTTP_FIELD_LAST_MODIFIED,
    HTTP_FIELD_ETAG,
    HTTP_FIELD_DATE,
    HTTP_FIELD_AGE,
    HTTP_FIELD_CACHE_TAG,
    HTTP_FIELD_SURROGATE_KEY,
    HTTP_FIELD_COUNT,
    HTTP_FIELD_OTHER = HTTP_FIELD_COUNT, /* a name the edge never looks up by itself */
};

struct http_msg {
    struct buf strings; /* the head's bytes, which the spans point into (the parser caps
                         * them at twice the head size limit, as its raw copy) */
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
    bool indexed;           /* hop[], field[], first[] and count[] are filled (http_msg_index) */
    uint64_t content_length;
    uint64_t hop[HTTP_MAX_HEADERS / 64]; /* bit i: headers[i] is hop-by-hop */
    uint8_t field[HTTP_MAX_HEADERS];     /* headers[i]'s enum http_field */
    uint8_t first[HTTP_FIELD_COUNT];     /* 1 + the index of the first field so named; 0: none */
    uint8_t count[HTTP_FIELD_COUNT];     /* how many fields are so named */
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

/* The canonical name of a known field ("Cache-Control"). */
const char *http_field_name(enum http_field f);
/* Which known field a name is (case-insensitive), HTTP_FIELD_OTHER for any other. */
enum http_field http_field_of(const char *name, size_t len);

/* The first field f of m, or NULL; how many there are; the next one after h (NULL: the
 * first). An indexed message answers from its index; one built by hand, by name. */
static inline const struct http_header *
http_msg_field(const struct http_msg *m, enum http_field f)
{
    if (!m->indexed)
        return http_msg_find(m, http_field_name(f));
    return m->first[f] != 0 ? &m->headers[m->first[f] - 1] : NULL;
}

static inline size_t
http_msg_field_count(const struct http_msg *m, enum http_field f)
{
    return m->indexed ? m->count[f] : http_msg_count(m, http_field_name(f));
}

const struct http_header *http_msg_field_next(const struct http_msg *m, enum http_field f,
                                              const struct http_header *h);

/* Which known field header h of m is. */
static inline enum http_field
http_header_field(const struct http_msg *m, const struct http_header *h)
{
    if (m->indexed)
        return (enum http_field)m->field[h - m->headers];
    return http_field_of(http_str_ptr(m, h->name), h->name.len);
}

/* Does a comma-separated header list (e.g. Connection) contain token (case-insensitive)? */
bool http_list_has_token(const char *list, size_t len, const char *token);

/* Is this header hop-by-hop for a proxy: Connection, Keep-Alive, TE, Trailer,
 * Transfer-Encoding, Upgrade, Proxy-*, or one the message's Connection header names?
 * Content-Length and Transfer-Encoding are reframed by the proxy, so they count here. */
bool http_msg_is_hop_header(const struct http_msg *m, const struct http_header *h);
/* The same for a field name given as bytes (not necessarily one of m's fields). */
bool http_name_is_hop(const struct http_msg *m, const char *name, size_t len);
/* Work out once which known field each of m's fields is, and which are hop-by-hop, so
 * that http_msg_field and http_msg_is_hop_header are array reads (the parser calls it when
 * a head is complete; a message built by hand without it is answered the long way). */
void http_msg_index(struct http_msg *m);

/* Method name for an llhttp method number. */
const char *http_method_name(int method);
/* Standard reason phrase for a status ("Bad Gateway"), "" when unknown. */
const char *http_status_reason(int status);

#endif
