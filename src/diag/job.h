/* job.h - verge check off the event loop: a detached thread runs the work (check_run for
 * a zone, a whole pre-flight) so no loop ever waits on a probe; then the owner hears of
 * it in its own loop, through an eventfd that loop watches (the admin listener, a reload's
 * pre-flight), or not at all (the automatic diagnosis does everything on the thread).
 * Shutdown waits for running jobs with diag_jobs_wait. */
#ifndef VERGE_DIAG_JOB_H
#define VERGE_DIAG_JOB_H

#include "core/loop.h"

struct diag_job;

typedef void (*diag_job_fn)(void *arg);   /* on the job's thread */
typedef void (*diag_job_done)(void *arg); /* on the owner's loop, after fn returned */

/* Run fn(arg) on a new thread, then done(arg) on loop (loop NULL: nothing after fn, and
 * NULL is returned on success as there is nothing to hold). Returns the job, or NULL with
 * errno set when no thread could be started (fn is not run). From a loop's own thread. */
struct diag_job *diag_job_start(struct loop *loop, diag_job_fn fn, diag_job_done done, void *arg,
                                int *err);

/* The owner stops waiting (its connection closed): done is never called, and free_arg(arg)
 * runs once fn has returned (at once if it already has). NULLs *job. */
void diag_job_abandon(struct diag_job **job, void (*free_arg)(void *arg));

/* Wait up to timeout_ms for every job's fn to return (shutdown). */
void diag_jobs_wait(uint64_t timeout_ms);

#endif
