/* preflight.c - check_run for one origin at a time, its verdict kept as one line. */
#include "diag/preflight.h"

#include "diag/check.h"
#include "diag/verdict.h"

/* "verdict: ...\nfirewall: ...\nnext: ...\norigin ..." -> "origin down: ...; next: ..." */
static void
summary(const struct buf *report, char *out, size_t len)
{
    const char *p = buf_head(report), *end = p + buf_used(report);
    size_t off = 0;
    out[0] = '\0';
    while (p < end && off < len) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (strncmp(p, "origin ", 7) == 0)
            break; /* the steps follow: the summary is complete */
        const char *text = strncmp(p, "verdict: ", 9) == 0 ? p + 9 : p;
        off += (size_t)snprintf(out + off, len - off, "%s%.*s", off ? "; " : "",
                                (int)(n - (size_t)(text - p)), text);
        p += n + 1;
    }
}

static bool
refusable(enum check_verdict v)
{
    return v == CHECK_DNS || v == CHECK_ORIGIN_DOWN || v == CHECK_FIREWALL || v == CHECK_INVALID ||
           v == CHECK_REFUSED_BY_POLICY;
}

void
preflight_run(struct config *cfg, uint64_t timeout_ms, struct preflight *out)
{
    struct check_opts o;
    struct buf report;
    size_t total = 0;
    memset(out, 0, sizeof(*out));
    for (size_t z = 0; z < cfg->nzones; z++)
        total += cfg->zones[z].norigins;
    out->lines = xcalloc(total ? total : 1, sizeof(*out->lines));
    check_opts_default(&o);
    o.timeout = timeout_ms;
    o.count = 1;
    o.ping = o.trace = false;
    buf_init(&report, SIZE_MAX);
    for (size_t z = 0; z < cfg->nzones; z++) {
        const struct config_zone *zone = &cfg->zones[z];
        for (size_t i = 0; i < zone->norigins; i++) {
            struct preflight_line *l = &out->lines[out->nlines++];
            char what[520];
            buf_reset(&report);
            o.path = zone->active_path ? zone->active_path : "/";
            enum check_verdict v = check_run(cfg, zone, (int)i, &o, &report);
            summary(&report, what, sizeof(what));
            l->failing = refusable(v);
            l->warning = !l->failing && v != CHECK_OK;
            out->failing += l->failing;
            snprintf(l->text, sizeof(l->text), "zone \"%.60s\" origin %.100s: %s", zone->name,
                     zone->origins[i].url, what);
        }
    }
    buf_free(&report);
}

void
preflight_free(struct preflight *p)
{
    free(p->lines);
    p->lines = NULL;
    p->nlines = 0;
}
