/* admit.c - the edge's checks on a request head, before routing. */
#include "edge/admit.h"

#include "http/validate.h"

#include <llhttp.h>

int
admit_head_check(const struct http_msg *m, const char **reason)
{
    int status = http_request_check(m, reason);
    if (status != 0)
        return status;
    if (m->method == HTTP_CONNECT) {
        *reason = "This server does not act as a tunnel (CONNECT).";
        return 405;
    }
    const struct http_header *e = http_msg_find(m, "Expect");
    if (e != NULL && !str_ieq(http_str_ptr(m, e->value), e->value.len, "100-continue")) {
        *reason = "Only \"Expect: 100-continue\" is supported.";
        return 417;
    }
    return 0;
}

const char *
admit_target_authority(const char *url, size_t len, size_t *alen, const char **path, size_t *plen)
{
    struct http_target t;
    if (http_target_parse(url, len, &t) != NULL || t.form != HTTP_TARGET_ABSOLUTE)
        return NULL;
    *alen = t.authority_len;
    *path = t.path;
    *plen = t.path_len;
    return t.authority;
}

const char *
admit_origin_target(const char *url, size_t len, size_t *tlen)
{
    const char *path;
    size_t alen, plen;
    *tlen = len;
    if (admit_target_authority(url, len, &alen, &path, &plen) == NULL)
        return url;
    *tlen = plen ? plen : 1;
    return plen ? path : "/";
}

const char *
admit_host(const struct http_msg *m, size_t *len)
{
    const char *path;
    size_t plen;
    const char *host =
        admit_target_authority(http_str_ptr(m, m->url), m->url.len, len, &path, &plen);
    if (host != NULL)
        return host;
    const struct http_header *h = http_msg_find(m, "Host");
    *len = h ? h->value.len : 0;
    return h ? http_str_ptr(m, h->value) : "";
}

bool
admit_request_id_valid(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ':'))
            return false;
    }
    return true;
}
