/* log.c - error and access log files shared by all threads. */
#include "core/log.h"

#include "core/loop.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

static int error_fd = 2;
static int access_fd = -1;
static char *error_path;  /* NULL: stderr */
static char *access_path; /* NULL: stdout/stderr/off, not reopened */
static enum config_log_level min_level = CONFIG_LOG_INFO;
static enum config_log_format access_format = CONFIG_LOG_COMBINED;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int thread_id;
static int log_pid; /* set by log_configure, before the workers start */
/* This thread's "YYYY/MM/DD HH:MM:SS" and the second it shows: a burst of lines within one
 * second formats the time once. */
static __thread time_t stamp_second = -1;
static __thread char stamp_text[24];
static __thread size_t stamp_len;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
log_set_thread_id(int id)
{
    thread_id = id;
}

static int
open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* Resolve a destination to a descriptor: -1 off, 1 stdout, 2 stderr, or a new file. */
static int
open_dest(const char *dest, int *fd_out)
{
    if (dest == NULL) {
        *fd_out = -1;
        return 0;
    }
    if (strcmp(dest, "stdout") == 0) {
        *fd_out = 1;
        return 0;
    }
    if (strcmp(dest, "stderr") == 0) {
        *fd_out = 2;
        return 0;
    }
    *fd_out = open_log(dest);
    return *fd_out < 0 ? -1 : 0;
}

static bool
is_file(const char *dest)
{
    return dest != NULL && strcmp(dest, "stdout") != 0 && strcmp(dest, "stderr") != 0;
}

/* Point *slot at newfd: dup2 over an existing private descriptor so concurrent writers
 * keep a valid descriptor; otherwise store it. */
static void
install_fd(int *slot, int newfd)
{
    if (*slot > 2 && newfd > 2) {
        dup2(newfd, *slot);
        close(newfd);
        return;
    }
    if (*slot > 2 && newfd <= 2) {
        int old = *slot;
        *slot = newfd;
        close(old); /* a writer racing this may lose one line; reload only */
        return;
    }
    *slot = newfd;
}

int
log_configure(const struct config *cfg, char *err, size_t errlen)
{
    int efd, afd;
    const char *edest = cfg->error_log ? cfg->error_log : "stderr";
    if (open_dest(edest, &efd) < 0) {
        snprintf(err, errlen, "cannot open error log %s: %s; check the path and permissions",
                 edest, strerror(errno));
        return -1;
    }
    if (open_dest(cfg->access_log, &afd) < 0) {
        snprintf(err, errlen, "cannot open access log %s: %s; check the path and permissions",
                 cfg->access_log, strerror(errno));
        if (efd > 2)
            close(efd);
        return -1;
    }
    pthread_mutex_lock(&log_lock);
    log_pid = (int)getpid();
    install_fd(&error_fd, efd);
    install_fd(&access_fd, afd);
    free(error_path);
    free(access_path);
    error_path = is_file(edest) ? xstrdup(edest) : NULL;
    access_path = is_file(cfg->access_log) ? xstrdup(cfg->access_log) : NULL;
    min_level = cfg->error_log_level;
    access_format = cfg->access_log_format;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

int
log_reopen(void)
{
    int rc = 0;
    pthread_mutex_lock(&log_lock);
    if (error_path != NULL) {
        int fd = open_log(error_path);
        if (fd >= 0)
            install_fd(&error_fd, fd);
        else
            rc = -1;
    }
    if (access_path != NULL) {
        int fd = open_log(access_path);
        if (fd >= 0)
            install_fd(&access_fd, fd);
        else
            rc = -1;
    }
    pthread_mutex_unlock(&log_lock);
    return rc;
}

bool
log_level_enabled(enum config_log_level level)
{
    return level >= min_level;
}

/* "YYYY/MM/DD HH:MM:SS [level] pid#thread: " into line; its length. */
static size_t
line_prefix(enum config_log_level level, char *line, size_t size)
{
    time_t now = time(NULL);
    if (now != stamp_second) {
        struct tm tm;
        localtime_r(&now, &tm);
        stamp_len = strftime(stamp_text, sizeof(stamp_text), "%Y/%m/%d %H:%M:%S", &tm);
        stamp_second = now;
    }
    memcpy(line, stamp_text, stamp_len);
    int n = snprintf(line + stamp_len, size - stamp_len, " [%s] %d#%d: ", level_names[level],
                     log_pid ? log_pid : (int)getpid(), thread_id);
    return stamp_len + (n > 0 ? (size_t)n : 0);
}

void
log_msg(enum config_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[2048];
    size_t n = line_prefix(level, line, sizeof(line));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n = MIN(n + (size_t)m, sizeof(line) - 2);
    line[n++] = '\n';
    if (write(error_fd, line, n) < 0) {
        /* nowhere left to report it */
    }
}

bool
log_access_enabled(void)
{
    return access_fd >= 0;
}

enum config_log_format
log_access_format(void)
{
    return access_format;
}

void
log_access_write(const char *line, size_t len)
{
    int fd = access_fd;
    if (fd >= 0 && write(fd, line, len) < 0) {
        /* a full disk must not stop the edge */
    }
}

/* ---------------------------------------------------------------- repeated lines */

#define LOG_REPEAT_SLOTS 16
#define LOG_REPEAT_KEY 192

struct repeat_slot {
    bool used;
    char key[LOG_REPEAT_KEY];
    char summary[LOG_REPEAT_SUMMARY];
    uint64_t since; /* monotonic ms the window opened */
    uint64_t count; /* lines counted, not written */
};

struct log_repeats {
    struct loop *loop;
    struct loop_timer timer;
    enum config_log_level level;
    uint64_t window_ms;
    struct repeat_slot slots[LOG_REPEAT_SLOTS];
};

/* The window of s is over: the count, if any, in one line; the slot is free again. */
static void
repeat_close(struct log_repeats *r, struct repeat_slot *s, uint64_t now)
{
    if (s->count > 0)
        log_msg(r->level, "%s: and %llu more like it in the last %.1f s (each one is counted "
                "in the metrics and the access log)", s->summary,
                (unsigned long long)s->count, (double)(now - s->since) / 1000.0);
    s->used = false;
}

/* Close the windows that are over; the timer for the next one to end. */
static void
repeats_sweep(struct log_repeats *r)
{
    uint64_t now = loop_now(r->loop), next = UINT64_MAX;
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        struct repeat_slot *s = &r->slots[i];
        if (s->used && now >= s->since + r->window_ms)
            repeat_close(r, s, now);
        else if (s->used)
            next = MIN(next, s->since + r->window_ms);
    }
    if (next != UINT64_MAX)
        loop_timer_set(r->loop, &r->timer, next - now);
}

static void
on_repeats_timer(struct loop_timer *t)
{
    repeats_sweep(container_of(t, struct log_repeats, timer));
}

struct log_repeats *
log_repeats_new(struct loop *loop, enum config_log_level level, uint64_t window_ms)
{
    struct log_repeats *r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->level = level;
    r->window_ms = window_ms;
    loop_timer_init(&r->timer, on_repeats_timer);
    return r;
}

void
log_repeats_free(struct log_repeats **rp)
{
    struct log_repeats *r = *rp;
    if (r == NULL)
        return;
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++)
        if (r->slots[i].used)
            repeat_close(r, &r->slots[i], loop_now(r->loop));
    loop_timer_stop(r->loop, &r->timer);
    free(r);
    *rp = NULL;
}

/* A free slot, or the one whose window opened first (its count written now). */
static struct repeat_slot *
repeat_slot_for(struct log_repeats *r, uint64_t now)
{
    struct repeat_slot *oldest = &r->slots[0];
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        if (!r->slots[i].used)
            return &r->slots[i];
        if (r->slots[i].since < oldest->since)
            oldest = &r->slots[i];
    }
    repeat_close(r, oldest, now);
    return oldest;
}

bool
log_repeat_first(struct log_repeats *r, const char *key, char **summary)
{
    uint64_t now = loop_now(r->loop);
    for (size_t i = 0; i < LOG_REPEAT_SLOTS; i++) {
        struct repeat_slot *s = &r->slots[i];
        if (!s->used || strcmp(s->key, key) != 0)
            continue;
        if (now < s->since + r->window_ms) {
            s->count++;
            return false;
        }
        repeat_close(r, s, now); /* over, and its timer has not run yet */
        break;
    }
    struct repeat_slot *s = repeat_slot_for(r, now);
    s->used = true;
    str_copy(s->key, sizeof(s->key), key);
    s->summary[0] = '\0';
    s->since = now;
    s->count = 0;
    if (!loop_timer_armed(&r->timer))
        loop_timer_set(r->loop, &r->timer, r->window_ms);
    *summary = s->summary;
    return true;
}
