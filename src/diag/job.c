/* job.c - detached threads counted for shutdown; the finished job is reported through an
 * eventfd written under the job's lock, so an owner that abandons it never races a write
 * to a closed descriptor. */
#include "diag/job.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct diag_job {
    struct loop *loop;
    struct loop_io io; /* the eventfd, watched by loop */
    struct loop_defer free_defer;
    pthread_mutex_t lock;
    bool finished, abandoned;
    diag_job_fn fn;
    diag_job_done done;
    void (*free_arg)(void *arg);
    void *arg;
};

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static int running;

static void
count(int delta)
{
    pthread_mutex_lock(&count_lock);
    running += delta;
    pthread_mutex_unlock(&count_lock);
}

static void
job_free(struct diag_job *j)
{
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void *
run(void *p)
{
    struct diag_job *j = p;
    j->fn(j->arg);
    if (j->loop == NULL) {
        job_free(j);
        count(-1);
        return NULL;
    }
    pthread_mutex_lock(&j->lock);
    bool abandoned = j->abandoned;
    j->finished = true;
    if (!abandoned) {
        ssize_t n = write(j->io.fd, &(uint64_t){1}, sizeof(uint64_t));
        (void)n; /* adding 1 to an eventfd counter cannot fail */
    }
    pthread_mutex_unlock(&j->lock);
    if (abandoned) {
        j->free_arg(j->arg);
        job_free(j);
    }
    count(-1);
    return NULL;
}

static void
on_free(struct loop_defer *d)
{
    struct diag_job *j = container_of(d, struct diag_job, free_defer);
    j->free_arg(j->arg);
    job_free(j);
}

static void
on_finished(struct loop_io *io, uint32_t events)
{
    struct diag_job *j = container_of(io, struct diag_job, io);
    loop_io_stop(j->loop, &j->io);
    close(j->io.fd);
    j->done(j->arg);
    job_free(j);
}

struct diag_job *
diag_job_start(struct loop *loop, diag_job_fn fn, diag_job_done done, void *arg, int *err)
{
    struct diag_job *j = xcalloc(1, sizeof(*j));
    pthread_t t;
    pthread_attr_t attr;
    j->loop = loop;
    j->fn = fn;
    j->done = done;
    j->arg = arg;
    pthread_mutex_init(&j->lock, NULL);
    loop_defer_init(&j->free_defer, on_free);
    int fd = loop ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    if (loop != NULL && (fd < 0 || loop_io_start(loop, &j->io, fd, EPOLLIN, on_finished) < 0)) {
        *err = errno;
        if (fd >= 0)
            close(fd);
        job_free(j);
        return NULL;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    count(1);
    int rc = pthread_create(&t, &attr, run, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        count(-1);
        *err = rc;
        if (loop != NULL) {
            loop_io_stop(loop, &j->io);
            close(j->io.fd);
        }
        job_free(j);
        return NULL;
    }
    *err = 0;
    return loop ? j : NULL;
}

void
diag_job_abandon(struct diag_job **jp, void (*free_arg)(void *arg))
{
    struct diag_job *j = *jp;
    if (j == NULL)
        return;
    *jp = NULL;
    pthread_mutex_lock(&j->lock);
    bool finished = j->finished;
    j->abandoned = true;
    j->free_arg = free_arg;
    loop_io_stop(j->loop, &j->io);
    close(j->io.fd);
    pthread_mutex_unlock(&j->lock);
    if (finished) /* the thread is past its last use of j; its event may be in this batch */
        loop_defer(j->loop, &j->free_defer);
}

void
diag_jobs_wait(uint64_t timeout_ms)
{
    uint64_t deadline = loop_clock_ms() + timeout_ms;
    for (;;) {
        pthread_mutex_lock(&count_lock);
        int n = running;
        pthread_mutex_unlock(&count_lock);
        if (n == 0 || loop_clock_ms() >= deadline)
            return;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
}
