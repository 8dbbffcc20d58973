/* vary.c - Vary names of a response and the variant of a request. */
#include "cache/vary.h"

#include <ctype.h>

/* A coded body (gzip, br, ...) is the answer to the visitor's Accept-Encoding, whether or
 * not the origin says so: stored without that field in its variant, it would go to
 * visitors that cannot decode it. The names so far are in names ("a,b,"). */
static bool
encoded_without_vary(const struct http_msg *resp, const struct buf *names)
{
    const struct http_header *ce = http_msg_find(resp, "Content-Encoding");
    if (ce == NULL || str_ieq(http_str_ptr(resp, ce->value), ce->value.len, "identity"))
        return false;
    const char *n = buf_head(names);
    size_t len = buf_used(names), want = sizeof("accept-encoding") - 1;
    for (size_t at = 0; at < len;) {
        const char *comma = memchr(n + at, ',', len - at);
        size_t end = comma ? (size_t)(comma - n) : len;
        if (end - at == want && memcmp(n + at, "accept-encoding", want) == 0)
            return false;
        at = end + 1;
    }
    return true;
}

char *
cache_vary_names(const struct http_msg *resp)
{
    struct buf out;
    buf_init(&out, 4096);
    for (const struct http_header *h = http_msg_field(resp, HTTP_FIELD_VARY); h != NULL;
         h = http_msg_field_next(resp, HTTP_FIELD_VARY, h)) {
        const char *v = http_str_ptr(resp, h->value);
        for (size_t k = 0; k < h->value.len; k++) {
            char ch = v[k] == ' ' || v[k] == '\t' ? 0 : (char)tolower((unsigned char)v[k]);
            if (ch != 0 && !(ch == ',' && (buf_used(&out) == 0 || out.data[out.len - 1] == ',')))
                buf_append(&out, &ch, 1);
        }
        if (buf_used(&out) > 0 && out.data[out.len - 1] != ',')
            buf_append(&out, ",", 1);
    }
    if (encoded_without_vary(resp, &out))
        buf_append_str(&out, "accept-encoding,");
    if (buf_used(&out) == 0) {
        buf_free(&out);
        return NULL;
    }
    char *names = xstrndup(buf_head(&out), buf_used(&out) - 1); /* drop the last comma */
    buf_free(&out);
    return names;
}

/* One field's values, lower case and without blanks, each followed by ";". */
static void
append_values(const struct http_msg *req, const char *name, struct buf *out)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!str_ieq(http_str_ptr(req, h->name), h->name.len, name))
            continue;
        const char *v = http_str_ptr(req, h->value);
        for (size_t k = 0; k < h->value.len; k++)
            if (v[k] != ' ' && v[k] != '\t') {
                char ch = (char)tolower((unsigned char)v[k]);
                buf_append(out, &ch, 1);
            }
        buf_append(out, ";", 1);
    }
}

void
cache_variant(const struct http_msg *req, const char *names, struct buf *out)
{
    const char *p = names;
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)MIN(len, sizeof(name) - 1), p);
        buf_printf(out, "%s=", name);
        append_values(req, name, out);
        buf_append(out, "\n", 1);
        p = comma ? comma + 1 : NULL;
    }
}
