/* auto.c - each diagnosis is a job (diag/job.h): a short-lived thread with its own loop
 * and resolver (check_run), so no worker ever waits on it. */
#include "diag/auto.h"

#include "core/log.h"
#include "core/loop.h"
#include "diag/check.h"
#include "diag/job.h"

#include <pthread.h>

#define DIAG_TIMEOUT_MS 3000

struct job {
    struct config *cfg; /* one reference: keeps zone valid */
    const struct config_zone *zone;
    size_t origin;
    struct origin_health *health;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int running;

/* "verdict: ...\nnext: ...\n  tcp ...\n" → "verdict: ...; next: ...; tcp ..." */
static void
one_line(const struct buf *report, char *out, size_t len)
{
    size_t n = 0;
    bool space = false;
    for (size_t i = 0; i < buf_used(report) && n + 3 < len; i++) {
        char ch = buf_head(report)[i];
        if (ch == '\n') {
            if (n > 0 && i + 1 < buf_used(report)) {
                out[n++] = ';';
                space = true;
            }
        } else if (ch == ' ' && (space || n == 0)) {
            continue;
        } else {
            if (space)
                out[n++] = ' ';
            space = ch == ' ';
            if (!space)
                out[n++] = ch;
        }
    }
    out[n] = '\0';
}

static void
run(void *arg)
{
    struct job *job = arg;
    struct buf report;
    struct check_opts o;
    char line[600];
    const struct config_zone *z = job->zone;
    log_set_thread_id(0);
    buf_init(&report, 1 << 16);
    check_opts_default(&o);
    o.path = z->active_path ? z->active_path : "/";
    o.timeout = DIAG_TIMEOUT_MS;
    o.count = 1;
    o.trace = false; /* quick and bounded; verge check --zone traces the path */
    check_run(job->cfg, z, (int)job->origin, &o, &report);
    one_line(&report, line, sizeof(line));
    log_warn("zone \"%s\": diagnosis of origin %s: %s", z->name, z->origins[job->origin].url, line);
    health_incident_note(job->health, line);
    buf_free(&report);
    config_release(&job->cfg);
    free(job);
    pthread_mutex_lock(&lock);
    running--;
    pthread_mutex_unlock(&lock);
}

static void
on_origin_down(const struct config *cfg, const struct config_zone *z, size_t origin,
               struct origin_health *h)
{
    int err;
    pthread_mutex_lock(&lock);
    bool room = running < DIAG_MAX_RUNNING;
    running += room;
    pthread_mutex_unlock(&lock);
    if (!room) {
        log_info("zone \"%s\": no diagnosis of %s: %d already running", z->name,
                 z->origins[origin].url, DIAG_MAX_RUNNING);
        return;
    }
    struct job *job = xcalloc(1, sizeof(*job));
    job->cfg = config_acquire((struct config *)cfg);
    job->zone = z;
    job->origin = origin;
    job->health = h;
    diag_job_start(NULL, run, NULL, job, &err);
    if (err != 0) {
        log_warn("zone \"%s\": no diagnosis of %s: cannot start a thread: %s", z->name,
                 z->origins[origin].url, strerror(err));
        config_release(&job->cfg);
        free(job);
        pthread_mutex_lock(&lock);
        running--;
        pthread_mutex_unlock(&lock);
    }
}

void
diag_auto_install(void)
{
    health_set_down_hook(on_origin_down);
}
