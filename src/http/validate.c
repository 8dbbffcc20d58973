/* validate.c - strict checks of message heads, request targets and framing fields that
 * llhttp 8.1 leaves to its user (see validate.h and docs/hardening.md). */
#include "http/validate.h"

#include <llhttp.h>
#include <strings.h>

/* ---------------------------------------------------------------- characters */

/* tchar (RFC 9110 5.6.2): ALPHA, DIGIT and !#$%&'*+-.^_`|~: a byte per byte value, filled
 * from the bitmap before main runs (a load per byte, where the bitmap took a shift and a
 * mask as well: field names are a third of a head's bytes). */
static uint8_t tchar_table[256];

__attribute__((constructor)) static void
tchar_table_build(void)
{
    static const uint32_t tchars[8] = {0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff};
    for (unsigned c = 0; c < 256; c++)
        tchar_table[c] = (tchars[c >> 5] >> (c & 31)) & 1;
}

/* Sixteen bytes at a time (a vector compare: SSE2 on x86-64, NEON on arm64): a compare
 * marks the bytes a scan stops at, and the first mark is found from the compare's mask. */
typedef unsigned char bytes16 __attribute__((vector_size(16)));

static size_t
first_marked(uint64_t lo, uint64_t hi)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return lo != 0 ? (size_t)__builtin_ctzll(lo) / 8 : 8 + (size_t)__builtin_ctzll(hi) / 8;
#else
    return lo != 0 ? (size_t)__builtin_clzll(lo) / 8 : 8 + (size_t)__builtin_clzll(hi) / 8;
#endif
}

/* Where the first marked (all-ones) byte of m is; 16 when none is. */
static size_t
first_mark(bytes16 m)
{
    uint64_t lo, hi;
    memcpy(&lo, &m, 8);
    memcpy(&hi, (const char *)&m + 8, 8);
    return (lo | hi) == 0 ? 16 : first_marked(lo, hi);
}

/* The first byte from i on (before n) that is not a tchar, or n. Sixteen bytes at a time
 * while sixteen are left: letters, digits and '-' (what field names are made of) by
 * compares, the first other byte from the compare's mask; a tchar among the others sends
 * the scan on. Then four bytes a step by the table. */
static size_t
token_end(const char *s, size_t i, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    while (i + 16 <= n) {
        bytes16 v;
        memcpy(&v, s + i, 16);
        bytes16 lower = v | 0x20;
        size_t k = first_mark((bytes16)((bytes16)(lower - 'a') >= 26) &
                              (bytes16)((bytes16)(v - '0') >= 10) & (bytes16)(v != '-'));
        i += k;
        if (k == 16)
            continue;
        if (!tchar_table[u[i]])
            return i;
        i++;
    }
    while (i + 4 <= n && (tchar_table[u[i]] & tchar_table[u[i + 1]] & tchar_table[u[i + 2]] &
                          tchar_table[u[i + 3]]))
        i += 4;
    while (i < n && tchar_table[u[i]])
        i++;
    return i;
}

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* VCHAR, obs-text, SP and HTAB: what a field value or a reason phrase may hold. */
static bool
is_text(unsigned char c)
{
    return (c >= 0x21 && c != 0x7f) || c == ' ' || c == '\t';
}

/* The first byte from i on (before n) that is not text (is_text), or n. Sixteen bytes at a
 * time (first_mark): the first control byte or DEL in them, and only a tab there (text
 * after all) sends the scan on. Values are most of a head's bytes, and every line ends in
 * a CR. */
static size_t
text_end(const char *s, size_t i, size_t n)
{
    for (;;) {
        for (; i + 16 <= n; i += 16) {
            bytes16 v;
            memcpy(&v, s + i, 16);
            size_t k = first_mark((bytes16)((v < 0x20) | (v == 0x7f)));
            if (k < 16) {
                i += k;
                goto marked;
            }
        }
        while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != 0x7f)
            i++;
        if (i == n)
            return n;
    marked:
        if (s[i] != '\t')
            return i;
        i++;
    }
}

static bool
text_ok(const char *s, size_t n)
{
    return text_end(s, 0, n) == n;
}

/* ---------------------------------------------------------------- the raw head */

/* The line starting at pos: its end (before CRLF) in *end, the next line's start in
 * *next. NULL, or why the line is not one. */
static const char *
line_at(const char *d, size_t len, size_t pos, size_t *end, size_t *next)
{
    const char *lf = memchr(d + pos, '\n', len - pos);
    if (lf == NULL)
        return "header section not terminated by an empty line";
    size_t i = (size_t)(lf - d);
    if (i == pos || d[i - 1] != '\r')
        return "bare LF (a line not ending in CRLF)";
    if (memchr(d + pos, '\r', i - 1 - pos) != NULL)
        return "bare CR (a CR not followed by LF)";
    *end = i - 1;
    *next = i + 1;
    return NULL;
}

static bool
version_ok(const char *s, size_t n)
{
    return n == 8 && memcmp(s, "HTTP/", 5) == 0 && is_digit((unsigned char)s[5]) &&
           s[6] == '.' && is_digit((unsigned char)s[7]);
}

/* method SP request-target SP HTTP-version, nothing else (RFC 9112 3). */
static const char *
request_line_check(const char *s, size_t n)
{
    size_t i = token_end(s, 0, n);
    if (i == 0 || i == n || s[i] != ' ')
        return "request method is not a token followed by one space";
    size_t target = ++i;
    while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f)
        i++;
    if (i == n)
        return "request line without an HTTP version";
    if (i == target)
        return s[i] == ' ' ? "more than one space between request line parts"
                           : "request target holds a control character, a tab or a byte "
                             "outside ASCII";
    if (s[i] != ' ')
        return "request target holds a control character, a tab or a byte outside ASCII";
    i++;
    if (!version_ok(s + i, n - i))
        return "request line does not end in one space and HTTP/x.y";
    return NULL;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] (RFC 9112 4; the SP before an empty reason
 * is often left out and that is not ambiguous). */
static const char *
status_line_check(const char *s, size_t n)
{
    if (n < 12 || !version_ok(s, 8) || s[8] != ' ')
        return "status line does not start with HTTP/x.y and one space";
    for (size_t i = 9; i < 12; i++)
        if (!is_digit((unsigned char)s[i]))
            return "status code is not three digits";
    if (n == 12)
        return NULL;
    if (s[12] != ' ')
        return "status code is not three digits";
    for (size_t i = 13; i < n; i++)
        if (!is_text((unsigned char)s[i]))
            return "reason phrase holds a control character";
    return NULL;
}

/* field-name ":" OWS field-value OWS (RFC 9112 5). */
static const char *
field_line_check(const char *s, size_t n)
{
    size_t i = token_end(s, 0, n);
    if (i < n && (s[i] == ' ' || s[i] == '\t'))
        return i == 0 ? "obs-fold (a header line starting with whitespace)"
                      : "whitespace between a header field name and the colon";
    if (i == n || s[i] != ':')
        return "header field name is not a token followed by a colon";
    if (i == 0)
        return "empty header field name";
    return text_ok(s + i + 1, n - i - 1) ? NULL : "header field value holds a control character";
}

/* The one pass over a line that nearly every head takes: the start of the next line when
 * the line at pos is plainly valid (text up to its CRLF, the part before that as the kind
 * of line requires), else 0: then line_at and the line's own check look at it closely and
 * give the reason (or find it valid after all). A line taken here is one they accept. */
static size_t
plain_line_end(const char *d, size_t len, size_t i)
{
    i = text_end(d, i, len);
    return i + 1 < len && d[i] == '\r' && d[i + 1] == '\n' ? i + 2 : 0;
}

static size_t
plain_field_line(const char *d, size_t len, size_t pos)
{
    size_t i = token_end(d, pos, len);
    return i > pos && i < len && d[i] == ':' ? plain_line_end(d, len, i + 1) : 0;
}

static size_t
plain_request_line(const char *d, size_t len, size_t pos)
{
    size_t i = token_end(d, pos, len), target;
    if (i == pos || i == len || d[i] != ' ')
        return 0;
    for (target = ++i; i < len && (unsigned char)d[i] > 0x20 && (unsigned char)d[i] < 0x7f;)
        i++;
    if (i == target || i + 11 > len || d[i] != ' ' || !version_ok(d + i + 1, 8))
        return 0;
    return d[i + 9] == '\r' && d[i + 10] == '\n' ? i + 11 : 0;
}

static size_t
plain_status_line(const char *d, size_t len, size_t pos)
{
    const char *s = d + pos;
    if (len - pos < 14 || !version_ok(s, 8) || s[8] != ' ' || !is_digit((unsigned char)s[9]) ||
        !is_digit((unsigned char)s[10]) || !is_digit((unsigned char)s[11]))
        return 0;
    if (s[12] == '\r')
        return s[13] == '\n' ? pos + 14 : 0;
    return s[12] == ' ' ? plain_line_end(d, len, pos + 13) : 0;
}

/* The start line at pos, closely (line_at and the line's check): NULL and *next, or why. */
static const char *
start_line_check(const char *d, size_t len, size_t pos, bool request, size_t *next)
{
    size_t end;
    const char *why = line_at(d, len, pos, &end, next);
    if (why != NULL)
        return why;
    return request ? request_line_check(d + pos, end - pos) : status_line_check(d + pos, end - pos);
}

const char *
http_head_check(const char *d, size_t len, bool request, size_t *head_len)
{
    size_t pos = 0, end = 0, next = 0;
    const char *why;
    while (request && pos + 1 < len && d[pos] == '\r' && d[pos + 1] == '\n')
        pos += 2; /* empty lines before a request line are ignored (RFC 9112 2.2) */
    next = request ? plain_request_line(d, len, pos) : plain_status_line(d, len, pos);
    if (next == 0 && (why = start_line_check(d, len, pos, request, &next)) != NULL)
        return why;
    for (pos = next;; pos = next) {
        if (pos + 1 < len && d[pos] == '\r' && d[pos + 1] == '\n') {
            next = pos + 2; /* the empty line that ends the head */
            break;
        }
        if ((next = plain_field_line(d, len, pos)) != 0)
            continue;
        if ((why = line_at(d, len, pos, &end, &next)) != NULL)
            return why;
        if (end == pos)
            break;
        if ((why = field_line_check(d + pos, end - pos)) != NULL)
            return why;
    }
    if (head_len != NULL)
        *head_len = next;
    return NULL;
}

/* ---------------------------------------------------------------- the request target */

/* What a byte of a request target is: fine, or why it is not (or '%', looked at more). */
enum target_byte { TARGET_OK, TARGET_CTL, TARGET_FRAGMENT, TARGET_UNSAFE, TARGET_PERCENT };
static uint8_t target_table[256];

__attribute__((constructor)) static void
target_table_build(void)
{
    for (unsigned c = 0; c < 256; c++)
        target_table[c] = c <= 0x20 || c >= 0x7f ? TARGET_CTL : TARGET_OK;
    target_table['#'] = TARGET_FRAGMENT;
    target_table['\\'] = target_table['"'] = target_table['<'] = target_table['>'] = TARGET_UNSAFE;
    target_table['%'] = TARGET_PERCENT;
}

/* A load per byte (eight compares a byte before: the target is checked for every request). */
static const char *
target_chars_check(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        switch (target_table[u[i]]) {
        case TARGET_OK:
            continue;
        case TARGET_CTL:
            return "request target holds a control character, a space or a byte outside ASCII";
        case TARGET_FRAGMENT:
            return "request target holds a fragment ('#')";
        case TARGET_UNSAFE:
            return "request target holds a character URIs do not allow (\\ \" < >)";
        default:
            if (i + 2 >= n || !is_hex(u[i + 1]) || !is_hex(u[i + 2]))
                return "request target holds a '%' not followed by two hex digits";
        }
    }
    return NULL;
}

/* reg-name / IP-literal / IPv4 plus ":port": unreserved, sub-delims, ':', '[', ']', '%'. */
static bool
authority_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(is_hex(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("-._~!$&'()*+,;=:[]%", c) != NULL) || c == '\0')
            return false;
    }
    return n > 0;
}

static const char *
absolute_form(const char *url, size_t len, size_t scheme_len, struct http_target *t)
{
    const char *host = url + scheme_len + 3, *end = url + len, *p = host;
    if (!(scheme_len == 4 && strncasecmp(url, "http", 4) == 0) &&
        !(scheme_len == 5 && strncasecmp(url, "https", 5) == 0))
        return "request target has a scheme other than http or https";
    while (p < end && *p != '/' && *p != '?')
        p++;
    if (memchr(host, '@', (size_t)(p - host)) != NULL)
        return "request target holds userinfo (user@host)";
    if (!authority_ok(host, (size_t)(p - host)))
        return "request target has an empty or invalid host";
    t->form = HTTP_TARGET_ABSOLUTE;
    t->https = scheme_len == 5;
    t->authority = host;
    t->authority_len = (size_t)(p - host);
    t->path = p;
    t->path_len = (size_t)(end - p);
    return NULL;
}

const char *
http_target_parse(const char *url, size_t len, struct http_target *t)
{
    const char *why = target_chars_check(url, len);
    *t = (struct http_target){.form = HTTP_TARGET_ORIGIN, .path = url, .path_len = len};
    if (why != NULL)
        return why;
    if (len == 0)
        return "empty request target";
    if (url[0] == '/')
        return NULL;
    if (len == 1 && url[0] == '*') {
        t->form = HTTP_TARGET_ASTERISK;
        return NULL;
    }
    size_t i = 0;
    while (i < len && ((url[i] >= 'a' && url[i] <= 'z') || (url[i] >= 'A' && url[i] <= 'Z')))
        i++;
    if (i > 0 && len - i >= 3 && memcmp(url + i, "://", 3) == 0)
        return absolute_form(url, len, i, t);
    if (memchr(url, '/', len) == NULL && memchr(url, '?', len) == NULL && authority_ok(url, len)) {
        *t = (struct http_target){.form = HTTP_TARGET_AUTHORITY, .authority = url,
                                  .authority_len = len, .path = url + len};
        return NULL;
    }
    return "request target is not a path, an absolute URI, host:port or '*'";
}

/* Split "name[:port]" / "[v6][:port]" into its name and its port (default when absent).
 * false when the port is not a number. */
static bool
split_host(const char *s, size_t n, const char **name, size_t *nlen, uint64_t *port,
           uint64_t default_port)
{
    const char *colon = NULL;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return false;
        colon = close + 1 < s + n ? close + 1 : NULL;
        if (colon != NULL && *colon != ':')
            return false;
    } else {
        colon = memchr(s, ':', n);
    }
    *name = s;
    *nlen = colon ? (size_t)(colon - s) : n;
    if (*nlen > 0 && s[*nlen - 1] == '.')
        (*nlen)--;
    *port = default_port;
    if (colon == NULL || colon + 1 == s + n)
        return true; /* "host:" is host with the default port (RFC 3986 3.2.3) */
    return str_to_u64(colon + 1, (size_t)(s + n - colon - 1), port) == 0;
}

bool
http_host_matches(const char *authority, size_t alen, const char *host, size_t hlen, bool https)
{
    const char *an, *hn;
    size_t anl, hnl;
    uint64_t ap, hp, def = https ? 443 : 80;
    if (!split_host(authority, alen, &an, &anl, &ap, def) ||
        !split_host(host, hlen, &hn, &hnl, &hp, def))
        return false;
    return anl == hnl && ap == hp && strncasecmp(an, hn, anl) == 0;
}

/* ---------------------------------------------------------------- framing fields */

enum http_te
http_te_classify(const struct http_msg *m)
{
    size_t fields = 0, codings = 0, chunked = 0;
    bool last_chunked = false;
    for (const struct http_header *h = http_msg_field(m, HTTP_FIELD_TRANSFER_ENCODING); h != NULL;
         h = http_msg_field_next(m, HTTP_FIELD_TRANSFER_ENCODING, h)) {
        fields++;
        const char *v = http_str_ptr(m, h->value);
        for (size_t k = 0; k < h->value.len;) {
            size_t start = k, end;
            while (k < h->value.len && v[k] != ',')
                k++;
            end = k++;
            while (start < end && (v[start] == ' ' || v[start] == '\t'))
                start++;
            while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
                end--;
            if (end == start)
                continue; /* empty list elements do not count (RFC 9110 5.6.1) */
            codings++;
            last_chunked = str_ieq(v + start, end - start, "chunked");
            chunked += last_chunked;
        }
    }
    if (fields == 0)
        return HTTP_TE_NONE;
    if (codings == 0)
        return HTTP_TE_EMPTY;
    if (chunked > 1)
        return HTTP_TE_REPEATED;
    if (!last_chunked)
        return HTTP_TE_NOT_FINAL;
    return codings > 1 ? HTTP_TE_UNSUPPORTED : HTTP_TE_CHUNKED;
}

/* Content-Length: at most one field, one decimal number, never with Transfer-Encoding. */
static const char *
content_length_check(const struct http_msg *m)
{
    const struct http_header *cl = http_msg_field(m, HTTP_FIELD_CONTENT_LENGTH);
    uint64_t n;
    if (cl == NULL)
        return NULL;
    if (http_msg_field_count(m, HTTP_FIELD_CONTENT_LENGTH) > 1)
        return "more than one Content-Length field";
    if (http_msg_field(m, HTTP_FIELD_TRANSFER_ENCODING) != NULL)
        return "Content-Length together with Transfer-Encoding";
    if (str_to_u64(http_str_ptr(m, cl->value), cl->value.len, &n) < 0)
        return "Content-Length is not one decimal number";
    return NULL;
}

static const char *
te_reason(enum http_te te)
{
    switch (te) {
    case HTTP_TE_NOT_FINAL: return "Transfer-Encoding does not end in chunked";
    case HTTP_TE_UNSUPPORTED: return "Transfer-Encoding other than chunked";
    case HTTP_TE_REPEATED: return "Transfer-Encoding applies chunked more than once";
    case HTTP_TE_EMPTY: return "Transfer-Encoding field without a coding";
    default: return NULL;
    }
}

static const char *
target_check(const struct http_msg *m, struct http_target *t)
{
    const char *why = http_target_parse(http_str_ptr(m, m->url), m->url.len, t);
    if (why != NULL)
        return why;
    if (t->form == HTTP_TARGET_ASTERISK && m->method != HTTP_OPTIONS)
        return "'*' as a request target is for OPTIONS only";
    if ((t->form == HTTP_TARGET_AUTHORITY) != (m->method == HTTP_CONNECT))
        return "host:port as a request target is for CONNECT only, and CONNECT needs it";
    return NULL;
}

static const char *
host_check(const struct http_msg *m, const struct http_target *t)
{
    const struct http_header *host = http_msg_field(m, HTTP_FIELD_HOST);
    if (http_msg_field_count(m, HTTP_FIELD_HOST) > 1)
        return "more than one Host field";
    if (host == NULL)
        return m->minor >= 1 ? "HTTP/1.1 request without a Host field" : NULL;
    if (t->form == HTTP_TARGET_ABSOLUTE &&
        !http_host_matches(t->authority, t->authority_len, http_str_ptr(m, host->value),
                           host->value.len, t->https))
        return "Host field contradicts the host of the absolute-form target";
    return NULL;
}

int
http_request_check(const struct http_msg *m, struct http_target *t, const char **reason)
{
    enum http_te te = http_te_classify(m);
    if (m->major != 1) {
        *reason = "HTTP version other than 1.x";
        return 505;
    }
    *t = (struct http_target){.form = HTTP_TARGET_ORIGIN, .path = ""};
    if ((*reason = target_check(m, t)) != NULL || (*reason = content_length_check(m)) != NULL)
        return 400;
    if (te != HTTP_TE_NONE && m->minor == 0) {
        *reason = "Transfer-Encoding in an HTTP/1.0 request";
        return 400;
    }
    if ((*reason = te_reason(te)) != NULL)
        return te == HTTP_TE_UNSUPPORTED ? 501 : 400;
    return (*reason = host_check(m, t)) != NULL ? 400 : 0;
}

const char *
http_response_check(const struct http_msg *m)
{
    enum http_te te = http_te_classify(m);
    const char *why;
    if (m->major != 1)
        return "response version is not HTTP/1.x";
    if (m->status < 100 || m->status > 599)
        return "status code outside 100-599";
    if ((why = content_length_check(m)) != NULL)
        return why;
    if (te != HTTP_TE_NONE && m->minor == 0)
        return "Transfer-Encoding in an HTTP/1.0 response";
    return te_reason(te);
}

bool
http_response_framing_reusable(const struct http_msg *m)
{
    bool no_body_status = (m->status >= 100 && m->status < 200) || m->status == 204;
    if (!no_body_status)
        return true;
    return http_msg_field(m, HTTP_FIELD_TRANSFER_ENCODING) == NULL &&
           !(m->has_content_length && m->content_length > 0);
}
