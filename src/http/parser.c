/* parser.c - llhttp callbacks that build struct http_msg, check what llhttp lets by, and
 * stream bodies to the owner. */
#include "http/parser.h"

#include "core/config.h"
#include "http/validate.h"

_Static_assert(CONFIG_MAX_HEADER_FIELDS == HTTP_MAX_HEADERS,
               "client.max_header_fields is bounded by the parser's field array");

static struct http_parser *
self(llhttp_t *ll)
{
    return container_of(ll, struct http_parser, ll);
}

static int
on_message_begin(llhttp_t *ll)
{
    struct http_parser *p = self(ll);
    http_msg_reset(&p->msg);
    p->in_head = true;
    p->in_message = true;
    p->headers_done = false;
    p->last_cb = 0; /* head_bytes keeps the empty lines before the start line */
    p->span_limits = 0;
    p->max_body = p->body_bytes = 0;
    p->chunk_ext = p->chunk_ext_total = p->trailer_bytes = 0;
    p->crlf_owed = 0;
    p->invalid = NULL;
    p->split_span = false;
    return 0;
}

/* Limits hit while a span arrives (the request line length, the field count, the
 * trailer size) are noted in span_limits and reported, and fail the parse,
 * where that span ends (span_end): llhttp hands a span over in pieces cut wherever the
 * input was cut, so failing or flagging in a piece would let the cut decide between
 * llhttp's own error for a later byte of the span and the limit's: 400 or 431 for the
 * same bytes. */
#define SPAN_STRINGS 1u /* the trailer bytes (reported as a head too large) */
#define SPAN_URL 2u     /* the request line: past max_line */
#define SPAN_FIELDS 4u  /* one field more than max_fields */

/* A piece of a span of the head: where it lies in the head's bytes (those of earlier inputs,
 * kept in raw, then this input's from head_at), which is where on_headers_complete puts
 * them in msg.strings with one copy. A span's pieces are adjacent there; one that is not
 * (a value folded over lines) is noted and refused once the head is complete. */
static void
append(struct http_parser *p, struct http_str *s, const char *at, size_t len)
{
    if (p->span_limits != 0)
        return;
    uint32_t pos = (uint32_t)(buf_used(&p->raw) + (size_t)(at - p->head_at));
    if (s->len == 0)
        s->off = pos;
    else if (s->off + s->len != pos)
        p->split_span = true;
    s->len += (uint32_t)len;
}

static int
span_end(llhttp_t *ll)
{
    struct http_parser *p = self(ll);
    if (p->span_limits == 0)
        return 0;
    p->head_too_large = (p->span_limits & SPAN_STRINGS) != 0;
    p->url_too_long = (p->span_limits & SPAN_URL) != 0;
    p->too_many_headers = (p->span_limits & SPAN_FIELDS) != 0;
    return HPE_USER;
}

static int
on_url(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    append(p, &p->msg.url, at, len);
    if (p->max_line == 0 || p->msg.url.len + 64 <= p->max_line)
        return 0; /* within the bound whatever the method (every name is shorter than 48) */
    size_t line = strlen(llhttp_method_name((llhttp_method_t)ll->method)) + 1 +
                  p->msg.url.len + sizeof(" HTTP/1.1") - 1;
    if (line > p->max_line)
        p->span_limits |= SPAN_URL;
    return 0;
}

static int
on_status(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    append(p, &p->msg.reason, at, len);
    return 0;
}

/* Trailer fields are read within the head size limit and dropped: Verge never forwards
 * them, so nothing downstream can read them another way. */
static int
on_trailer_bytes(struct http_parser *p, size_t len)
{
    p->trailer_bytes += len;
    if (p->trailer_bytes > p->max_head)
        p->span_limits |= SPAN_STRINGS;
    return 0;
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    if (p->headers_done)
        return on_trailer_bytes(p, len);
    if (p->span_limits != 0)
        return 0;
    if (p->last_cb != 1) {
        if (p->msg.nheaders == p->max_fields) {
            p->span_limits |= SPAN_FIELDS;
            return 0;
        }
        p->msg.headers[p->msg.nheaders++] = (struct http_header){{0, 0}, {0, 0}};
        p->last_cb = 1;
    }
    append(p, &p->msg.headers[p->msg.nheaders - 1].name, at, len);
    return 0;
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    if (p->headers_done)
        return on_trailer_bytes(p, len);
    struct http_header *h = &p->msg.headers[p->msg.nheaders - 1];
    p->last_cb = 2;
    append(p, &h->value, at, len);
    return 0;
}

/* OWS after a field value is not part of it (RFC 9110 5.5); llhttp keeps it. */
static void
trim_values(struct http_msg *m)
{
    for (size_t i = 0; i < m->nheaders; i++) {
        struct http_str *v = &m->headers[i].value;
        while (v->len > 0 && (m->strings.data[v->off + v->len - 1] == ' ' ||
                              m->strings.data[v->off + v->len - 1] == '\t'))
            v->len--;
    }
}

/* msg.strings always holds the first bytes of the head (as raw and the inputs after it
 * hold them, from the empty lines before the start line on), and gets them up to n from
 * head, the head's bytes from its first: only what it lacks is copied, so a head sent a
 * byte at a time is copied once, not once a byte. */
static int
strings_upto(struct http_parser *p, const char *head, size_t n)
{
    size_t have = buf_used(&p->msg.strings);
    return have < n ? buf_append(&p->msg.strings, head + have, n - have) : 0;
}

static int
on_headers_complete(llhttp_t *ll)
{
    struct http_parser *p = self(ll);
    struct http_msg *m = &p->msg;
    const char *raw = p->head_at;
    size_t len = (size_t)(p->input_end - p->head_at);
    if (buf_used(&p->raw) > 0) { /* it began in an earlier input: join its rest to it */
        buf_append(&p->raw, p->head_at, len); /* fits: the input is cut at the head limit */
        raw = buf_head(&p->raw);
        len = buf_used(&p->raw);
    }
    size_t head_len = 0;
    p->invalid = http_head_check(raw, len, ll->type == HTTP_REQUEST, &head_len);
    if (p->invalid == NULL && p->split_span)
        p->invalid = "a field line split in pieces";
    if (p->invalid != NULL)
        return HPE_USER;
    /* The spans point into the head's bytes: one copy of them instead of one per span
     * (they fit: the strings' cap is raw's). */
    if (strings_upto(p, raw, head_len) < 0) {
        p->head_too_large = true;
        return HPE_USER;
    }
    trim_values(m);
    http_msg_index(m);
    ll->upgrade = 0; /* never switch protocols: the bytes that follow are HTTP */
    m->method = ll->method;
    m->status = ll->status_code;
    m->major = ll->http_major;
    m->minor = ll->http_minor;
    m->keep_alive = llhttp_should_keep_alive(ll);
    m->chunked = (ll->flags & F_CHUNKED) != 0;
    m->has_content_length = (ll->flags & F_CONTENT_LENGTH) != 0;
    m->content_length = m->has_content_length ? ll->content_length : 0;
    p->in_head = false;
    p->headers_done = true;
    int rc = p->ops->on_head(p);
    return rc < 0 ? HPE_USER : rc;
}

/* Chunk data must be followed by CRLF (RFC 9112 7.1); llhttp 8.1 skips those two bytes
 * without looking. Checks what is here now; the rest is owed to the next input. */
static bool
crlf_follows(struct http_parser *p, const char *from, int need)
{
    static const char crlf[] = "\r\n";
    const char *want = &crlf[2 - need];
    int i = 0;
    for (; i < need && from + i < p->input_end; i++)
        if (from[i] != want[i])
            return false;
    p->crlf_owed = need - i;
    return true;
}

static int
on_body(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    p->body_bytes += len;
    if (p->max_body > 0 && p->body_bytes > p->max_body) {
        p->body_too_large = true;
        return HPE_USER;
    }
    if (p->ops->on_body(p, at, len) < 0)
        return HPE_USER;
    /* The chunk's bytes are framed by its size and go to the owner first, as they would
     * when the CRLF after them arrives in a later read: where the input is cut must not
     * change what the owner gets. */
    if (p->msg.chunked && ll->content_length == 0 && !crlf_follows(p, at + len, 2)) {
        p->invalid = "chunk data not followed by CRLF";
        return HPE_USER;
    }
    return 0;
}

/* A chunk size line is complete: its size cannot take the body past the limit. */
static int
on_chunk_header(llhttp_t *ll)
{
    struct http_parser *p = self(ll);
    p->chunk_ext = 0;
    if (p->max_body > 0 && ll->content_length > p->max_body - p->body_bytes) {
        p->body_too_large = true;
        return HPE_USER;
    }
    return 0;
}

static int
on_chunk_extension(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = self(ll);
    p->chunk_ext += len;
    p->chunk_ext_total += len;
    if (p->chunk_ext <= HTTP_MAX_CHUNK_EXT && p->chunk_ext_total <= HTTP_MAX_CHUNK_EXT_TOTAL)
        return 0;
    p->invalid = "chunk extensions too large";
    return HPE_USER;
}

static int
on_message_complete(llhttp_t *ll)
{
    struct http_parser *p = self(ll);
    p->in_message = false;
    p->head_bytes = 0; /* body bytes fed with the head counted there: the next head starts at 0 */
    buf_reset(&p->raw);
    p->ops->on_complete(p);
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_url_complete = span_end,
    .on_status_complete = span_end,
    .on_header_field_complete = span_end,
    .on_header_value_complete = span_end,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
};

void
http_parser_init(struct http_parser *p, llhttp_type_t type, size_t max_head,
                 const struct http_parser_ops *ops, void *owner)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->ll, type, &settings);
    p->ops = ops;
    p->owner = owner;
    p->max_head = max_head;
    http_msg_init(&p->msg, 2 * max_head); /* the head's bytes, as raw holds them */
    buf_init(&p->raw, 2 * max_head); /* a head, and the empty lines that may precede it */
    p->max_fields = HTTP_MAX_HEADERS;
}

void
http_parser_reset(struct http_parser *p, size_t max_head)
{
    llhttp_init(&p->ll, (llhttp_type_t)p->ll.type, &settings);
    http_msg_reset(&p->msg);
    buf_reset(&p->raw);
    p->msg.strings.cap = 2 * max_head;
    p->raw.cap = 2 * max_head;
    p->max_head = max_head;
    p->max_fields = HTTP_MAX_HEADERS;
    p->max_line = 0;
    p->max_body = p->body_bytes = 0;
    p->head_bytes = p->chunk_ext = p->chunk_ext_total = p->trailer_bytes = 0;
    p->input_end = p->head_at = NULL;
    p->crlf_owed = 0;
    p->invalid = NULL;
    p->in_head = p->in_message = false;
    p->head_too_large = p->url_too_long = p->too_many_headers = p->body_too_large = false;
    p->headers_done = false;
    p->last_cb = 0;
    p->span_limits = 0;
    p->split_span = false;
}

void
http_parser_set_limits(struct http_parser *p, size_t max_fields, size_t max_line)
{
    p->max_fields = MAX(1, MIN(max_fields, (size_t)HTTP_MAX_HEADERS));
    p->max_line = max_line;
}

void
http_parser_free(struct http_parser *p)
{
    http_msg_free(&p->msg);
    buf_free(&p->raw);
}

/* One llhttp_execute call; maps its outcome and the bytes it used. */
static enum http_parse_status
execute(struct http_parser *p, const char *data, size_t len, size_t *used)
{
    p->input_end = data + len;
    if (p->crlf_owed > 0 && !crlf_follows(p, data, p->crlf_owed)) {
        p->invalid = "chunk data not followed by CRLF";
        *used = 0;
        return HTTP_PARSE_ERROR;
    }
    llhttp_errno_t e = llhttp_execute(&p->ll, data, len);
    if (e == HPE_OK) {
        *used = len;
        return HTTP_PARSE_MORE;
    }
    *used = (size_t)(llhttp_get_error_pos(&p->ll) - data);
    return e == HPE_PAUSED ? HTTP_PARSE_PAUSED : HTTP_PARSE_ERROR;
}

/* A head left incomplete (more to come, or refused before its end): msg.strings gets the
 * head's bytes so far, raw's and then those of this input from at to end (NULL: none), so
 * that its spans read there as the complete head's do. */
static void
mirror_head(struct http_parser *p, const char *at, const char *end)
{
    size_t in_raw = buf_used(&p->raw);
    if (strings_upto(p, buf_head(&p->raw), in_raw) < 0 || at == NULL)
        return;
    size_t have = buf_used(&p->msg.strings) - in_raw; /* of this input's bytes */
    if (have < (size_t)(end - at))
        buf_append(&p->msg.strings, at + have, (size_t)(end - at) - have);
}

enum http_parse_status
http_parser_feed(struct http_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t done = 0;
    enum http_parse_status st = HTTP_PARSE_MORE;
    const char *head_at = NULL; /* this input's head bytes, when it parsed any */
    while (done < len && st == HTTP_PARSE_MORE) {
        size_t chunk = len - done, used;
        bool head = p->in_head || !p->in_message;
        if (head) {
            /* Bound the head: never feed more than the limit allows before it completes. */
            if (p->head_bytes >= p->max_head) {
                p->head_too_large = true;
                st = HTTP_PARSE_ERROR;
                break;
            }
            chunk = MIN(chunk, p->max_head - p->head_bytes);
            p->head_at = head_at = data + done;
        }
        st = execute(p, data + done, chunk, &used);
        if (head && st == HTTP_PARSE_MORE && (p->in_head || !p->in_message)) {
            buf_append(&p->raw, data + done, used); /* the head goes on in the next input;
                                                     * fits: a head is at most max_head */
            head_at = NULL;
        }
        if (head && st != HTTP_PARSE_PAUSED) /* a completed message reset the count */
            p->head_bytes += used;
        done += used;
    }
    if (p->in_head && st != HTTP_PARSE_PAUSED)
        mirror_head(p, head_at, p->input_end);
    *consumed = done;
    return st;
}

enum http_parse_status
http_parser_finish(struct http_parser *p)
{
    if (!p->in_message)
        return HTTP_PARSE_MORE;
    llhttp_errno_t e = llhttp_finish(&p->ll);
    if (e == HPE_PAUSED || (e == HPE_OK && !p->in_message))
        return HTTP_PARSE_PAUSED;
    return HTTP_PARSE_ERROR;
}

void
http_parser_resume(struct http_parser *p)
{
    llhttp_resume(&p->ll);
}

const char *
http_parser_error_text(const struct http_parser *p)
{
    if (p->invalid != NULL)
        return p->invalid;
    if (p->head_too_large)
        return "header section too large";
    if (p->too_many_headers)
        return "too many header fields";
    if (p->url_too_long)
        return "request line too long";
    if (p->body_too_large)
        return "body larger than the limit";
    const char *reason = llhttp_get_error_reason(&p->ll);
    return reason ? reason : llhttp_errno_name(llhttp_get_errno(&p->ll));
}
