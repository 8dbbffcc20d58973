/* story.c - rings of failed-request stories, one per worker (shard), each under its own
 * mutex: written once per failure by its worker, read by the admin endpoint, so workers
 * recording failures at the same time never wait for one another. */
#include "edge/story.h"

#include "edge/health.h"

#include <pthread.h>
#include <time.h>

#define STORY_SHARDS 16 /* workers past 16 share rings */

struct shard {
    pthread_mutex_t lock;
    struct story *ring; /* STORY_KEEP entries, allocated on first use */
    size_t total;
};

static struct shard shards[STORY_SHARDS] = {
#define S {PTHREAD_MUTEX_INITIALIZER, NULL, 0}
    S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S,
#undef S
};

void
story_record(const struct story *s, int worker)
{
    struct shard *sh = &shards[(unsigned)worker % STORY_SHARDS];
    pthread_mutex_lock(&sh->lock);
    if (sh->ring == NULL)
        sh->ring = xcalloc(STORY_KEEP, sizeof(*sh->ring));
    sh->ring[sh->total++ % STORY_KEEP] = *s;
    pthread_mutex_unlock(&sh->lock);
}

static void
json_str(struct buf *out, const char *key, const char *s)
{
    buf_printf(out, "\"%s\":", key);
    buf_append_json_string(out, s);
}

static void
render_attempt(struct buf *out, const struct story_attempt *a)
{
    buf_append_str(out, "{");
    json_str(out, "target", a->target);
    buf_append_str(out, ",");
    json_str(out, "phase", proxy_phase_name(a->phase));
    buf_append_str(out, ",");
    json_str(out, "result", a->result == PROXY_ERR_NONE ? "ok" : proxy_error_name(a->result));
    buf_append_str(out, ",");
    json_str(out, "detail", a->detail);
    buf_printf(out, ",\"start_ms\":%llu,\"took_ms\":%llu}", (unsigned long long)a->start_ms,
               (unsigned long long)a->took_ms);
}

static void
render(struct buf *out, const struct story *s)
{
    char stamp[40];
    time_t secs = (time_t)s->time;
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf_append_str(out, "{");
    json_str(out, "request_id", s->request_id);
    buf_append_str(out, ",");
    json_str(out, "time", stamp);
    buf_append_str(out, ",");
    json_str(out, "zone", s->zone);
    buf_append_str(out, ",");
    json_str(out, "host", s->host);
    buf_append_str(out, ",");
    json_str(out, "method", s->method);
    buf_append_str(out, ",");
    json_str(out, "target", s->target);
    buf_printf(out, ",\"status\":%d,", s->status);
    json_str(out, "error", proxy_error_name(s->error.type));
    buf_append_str(out, ",");
    json_str(out, "phase", proxy_phase_name(s->error.phase));
    buf_append_str(out, ",");
    json_str(out, "detail", s->error.detail);
    buf_append_str(out, ",");
    json_str(out, "origin", s->error.addr);
    char diagnosis[600] = "";
    health_last_diagnosis(s->zone, s->error.origin, diagnosis, sizeof(diagnosis));
    buf_append_str(out, ",");
    json_str(out, "origin_url", s->error.origin);
    buf_append_str(out, ",");
    json_str(out, "diagnosis", diagnosis);
    buf_printf(out, ",\"elapsed_ms\":%llu,\"attempts\":[", (unsigned long long)s->error.elapsed_ms);
    for (int i = 0; i < s->nattempts; i++) {
        if (i > 0)
            buf_append_str(out, ",");
        render_attempt(out, &s->attempts[i]);
    }
    buf_append_str(out, "]}\n");
}

/* The newest story of request_id in sh (under its lock), or NULL. */
static const struct story *
shard_find(const struct shard *sh, const char *request_id)
{
    size_t n = MIN(sh->total, (size_t)STORY_KEEP);
    for (size_t k = 0; k < n && sh->ring != NULL; k++) {
        const struct story *s = &sh->ring[(sh->total - 1 - k) % STORY_KEEP];
        if (strcmp(s->request_id, request_id) == 0)
            return s;
    }
    return NULL;
}

int
story_json(const char *request_id, struct buf *out)
{
    struct story *best = xmalloc(sizeof(*best));
    bool found = false;
    for (size_t i = 0; i < STORY_SHARDS; i++) {
        pthread_mutex_lock(&shards[i].lock);
        const struct story *s = shard_find(&shards[i], request_id);
        if (s != NULL && (!found || s->time > best->time)) {
            *best = *s; /* a visitor may send the same id twice: the newest wins */
            found = true;
        }
        pthread_mutex_unlock(&shards[i].lock);
    }
    if (found)
        render(out, best);
    free(best);
    return found ? 0 : -1;
}
