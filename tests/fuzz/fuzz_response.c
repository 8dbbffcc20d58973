/* fuzz_response.c - libFuzzer target: an origin's bytes through the response parser
 * (whole, split at a point the input chooses, and byte by byte), handled as upstream.c
 * handles them (interim responses bounded, 101 refused, no body for a response to HEAD),
 * then what the edge computes from a final head: hop-by-hop fields, Cache-Control, whether
 * it may be stored, its freshness lifetime, age and stale windows, and a copy kept for the
 * cache.
 *
 * Input: 2 bytes split point, 1 byte flags (bit 0 the request was HEAD, bit 1 it carried
 * Authorization, bits 2-7 head limit in 256-byte units, 0 = 64 KiB), then the bytes an
 * origin sends. */
#include "cache/freshness.h"
#include "http_feed.h"

#define MAX_INFORMATIONAL 16 /* as UPSTREAM_MAX_INFORMATIONAL in upstream.c */

static struct http_parser plain, authorized; /* the visitor's request */
static bool head_method, with_authorization;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    http_feed_parse_head(&plain, HTTP_REQUEST, "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n");
    http_feed_parse_head(&authorized, HTTP_REQUEST,
                         "GET /x HTTP/1.1\r\nHost: a.test\r\nAuthorization: Basic eA==\r\n"
                         "Cache-Control: max-age=0\r\n\r\n");
    return 0;
}

static void
trace_cache(const struct http_msg *req, const struct http_msg *resp, struct buf *trace)
{
    char why[128] = "";
    bool storable = cache_storable(req, resp, why, sizeof(why));
    int64_t lifetime = cache_freshness_lifetime(resp, 86400);
    int64_t age = cache_current_age(resp, 1700000000, 1700000001, 1700000100);
    int64_t sie = cache_stale_if_error(resp, 60), swr = cache_stale_while_revalidate(resp, -1);
    if (lifetime < 0 || age < 0)
        abort(); /* durations are never negative */
    buf_printf(trace, "cache storable=%d (%s) lifetime=%lld age=%lld sie=%lld swr=%lld\n", storable,
               why, (long long)lifetime, (long long)age, (long long)sie, (long long)swr);
}

/* The same steps as on_resp_head in upstream.c and what client.c does with a final head. */
static int
on_response_head(struct http_parser *p, struct buf *trace, int *informational)
{
    const struct http_msg *m = &p->msg;
    if (m->status >= 100 && m->status < 200)
        return m->status == 101 || ++*informational > MAX_INFORMATIONAL ? -1 : 0;
    *informational = 0;
    const struct http_msg *req = with_authorization ? &authorized.msg : &plain.msg;
    buf_printf(trace, "final reason=%s\n", http_status_reason(m->status));
    http_feed_trace_fields(m, trace);
    trace_cache(req, m, trace);
    struct http_msg kept;
    http_msg_copy(&kept, m);
    if (kept.nheaders != m->nheaders || kept.strings.len != m->strings.len)
        abort();
    http_msg_free(&kept);
    return head_method ? 1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    size_t split = http_feed_take(&data, &len, 2);
    unsigned flags = http_feed_take(&data, &len, 1);
    head_method = flags & 1;
    with_authorization = flags & 2;
    struct http_feed f = {
        .type = HTTP_RESPONSE,
        .max_head = flags >> 2 ? (flags >> 2) * 256u : 64u * 1024,
        .on_head = on_response_head,
    };
    http_feed_run(&f, data, len, len ? split % (len + 1) : 0);
    return 0;
}
