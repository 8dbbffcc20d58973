/* fuzz_request.c - libFuzzer target: a visitor's bytes through the request parser (whole,
 * split at a point the input chooses, and byte by byte), then the checks the edge applies
 * to each head: admit_head_check, the host it names and its zone, Host normalisation, the
 * target the origin gets, the request id, hop-by-hop fields and its Cache-Control.
 *
 * Input: 2 bytes split point, 1 byte head limit (64 bytes per unit, 0 = 32 KiB), then the
 * bytes a visitor sends. */
#include "edge/admit.h"
#include "edge/zone.h"
#include "http_feed.h"

static struct config *cfg;

static const char zones_yaml[] = "admin: off\n"
                                 "zones:\n"
                                 "  - name: exact\n"
                                 "    hosts: [ a.test, 127.0.0.1 ]\n"
                                 "    origins: [ \"http://127.0.0.1:1\" ]\n"
                                 "  - name: wild\n"
                                 "    hosts: [ \"*.b.test\" ]\n"
                                 "    origins: [ \"http://127.0.0.1:1\" ]\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512];
    if (config_load_string("fuzz.yaml", zones_yaml, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz_request: %s\n", err);
        abort();
    }
    return 0;
}

/* What the edge decides about one head: the same steps as on_request_head in client.c. */
static int
on_request_head(struct http_parser *p, struct buf *trace, int *count)
{
    const struct http_msg *m = &p->msg;
    const char *message = NULL;
    struct admit_facts f = {.host = "", .origin_target = ""};
    int status = admit_head_check(m, &f, &message);
    if (status != 0 && (message == NULL || status < 400))
        abort();
    const char *host = status == 0 ? f.host : "";
    size_t hlen = status == 0 ? f.host_len : 0, tlen = status == 0 ? f.origin_target_len : 0;
    const char *target = status == 0 ? f.origin_target : "";
    const struct config_zone *z = status == 0 ? zone_find(cfg, host, hlen) : NULL;
    char name[256];
    int nlen = zone_host_normalise(host, hlen, name, sizeof(name));
    if (z != NULL && (nlen < 0 || zone_match(cfg, name, (size_t)nlen) != z))
        abort(); /* a zone was found for a host that does not normalise, or not by its name */
    if (status == 0 && m->url.len > 0 && tlen == 0)
        abort();
    if (http_msg_field(m, HTTP_FIELD_X_REQUEST_ID) != http_msg_find(m, "X-Request-Id"))
        abort(); /* the field index and the names disagree */
    const struct http_header *rid = http_msg_field(m, HTTP_FIELD_X_REQUEST_ID);
    bool rid_ok = rid && admit_request_id_valid(http_str_ptr(m, rid->value), rid->value.len, 200);
    buf_printf(trace, "admit %d zone=%s host=%d target=%.*s rid=%d\n", status, z ? z->name : "-",
               nlen, (int)MIN(tlen, 64u), target, rid_ok);
    http_feed_trace_fields(m, trace);
    (void)http_method_name(m->method);
    bool has_body = m->chunked || m->content_length > 0;
    return status != 0 && has_body ? -1 : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    size_t split = http_feed_take(&data, &len, 2);
    unsigned units = http_feed_take(&data, &len, 1);
    struct http_feed f = {
        .type = HTTP_REQUEST,
        .max_head = units ? units * 64u : 32u * 1024,
        .on_head = on_request_head,
    };
    http_feed_run(&f, data, len, len ? split % (len + 1) : 0);
    return 0;
}
