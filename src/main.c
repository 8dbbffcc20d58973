/* main.c - the command line: serve, -t, version; then the main thread's life: bind the
 * listeners, start the workers, serve the admin endpoint, and act on signals (SIGHUP
 * reload, SIGTERM/SIGINT drain, SIGUSR1 reopen logs). */
#include "admin/admin.h"
#include "cache/slab.h"
#include "cache/store.h"
#include "core/config.h"
#include "diag/auto.h"
#include "diag/check.h"
#include "diag/job.h"
#include "diag/preflight.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/net.h"
#include "edge/connlimit.h"
#include "edge/worker.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define VERGE_VERSION "0.1.0"
#define LISTEN_BACKLOG 4096

struct options {
    const char *config_file;
    const char *origin;
    const char *listen;
    const char *admin;
    int workers; /* 0 = from the configuration */
    bool test_only;
    bool preflight; /* -t --preflight: check the origins too */
};

struct reload_check;

struct server {
    struct loop *loop;
    struct config *cfg;
    struct worker **workers;
    int nworkers;
    struct admin *admin;
    struct loop_io signals;
    const struct options *opt;
    bool stopping;
    struct diag_job *preflight; /* a reload whose origins are being checked */
    bool reload_again;          /* a SIGHUP came meanwhile */
};

/* A new configuration waiting for its pre-flight before it goes live. */
struct reload_check {
    struct server *s;
    struct config *cfg;
    struct preflight result;
};

static int
usage(FILE *out)
{
    fprintf(out,
            "usage: verge serve -c FILE            run the edge with a configuration file\n"
            "       verge serve --origin URL [--listen ADDR] [--admin ADDR|off] [--workers N]\n"
            "                                      zero-config: one catch-all zone\n"
            "       verge -t -c FILE [--preflight]  test the configuration (and check its\n"
            "                                      origins) and exit\n"
            "       verge check URL | --zone NAME -c FILE   diagnose an origin: dns, tcp, http\n"
            "       verge version\n");
    return out == stderr ? 2 : 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
                     strcmp(a, "--origin") == 0 || strcmp(a, "--listen") == 0 ||
                     strcmp(a, "--admin") == 0 || strcmp(a, "--workers") == 0;
        if (takes && next == NULL) {
            fprintf(stderr, "verge: %s needs a value\n", a);
            return -1;
        }
        if (strcmp(a, "serve") == 0 && i == 1)
            continue;
        else if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0)
            o->test_only = true;
        else if (strcmp(a, "--preflight") == 0)
            o->preflight = true;
        else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            o->config_file = argv[++i];
        else if (strcmp(a, "--origin") == 0)
            o->origin = argv[++i];
        else if (strcmp(a, "--listen") == 0)
            o->listen = argv[++i];
        else if (strcmp(a, "--admin") == 0)
            o->admin = argv[++i];
        else if (strcmp(a, "--workers") == 0) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 1 || n > METRICS_MAX_WORKERS) {
                fprintf(stderr, "verge: --workers wants a number from 1 to %d\n",
                        METRICS_MAX_WORKERS);
                return -1;
            }
            o->workers = (int)n;
        } else {
            fprintf(stderr, "verge: unknown argument '%s'\n", a);
            return -1;
        }
    }
    if ((o->config_file == NULL) == (o->origin == NULL)) {
        fprintf(stderr, "verge: give either -c FILE or --origin URL\n");
        return -1;
    }
    if (o->preflight && !o->test_only) {
        fprintf(stderr, "verge: --preflight goes with -t (reloads check origins as the "
                        "preflight setting says)\n");
        return -1;
    }
    return 0;
}

/* The configuration from the command line: a file, or zero-config with overrides. */
static int
load_config(const struct options *o, struct config **out, char *err, size_t errlen)
{
    int rc = o->config_file ? config_load(o->config_file, out, err, errlen)
                            : config_from_origin(o->origin, o->listen, out, err, errlen);
    if (rc < 0)
        return -1;
    if (o->admin != NULL) {
        if (strcmp(o->admin, "off") == 0) {
            (*out)->admin_enabled = false;
        } else if (config_addr_parse(o->admin, 8081, &(*out)->admin_listen) < 0) {
            snprintf(err, errlen, "--admin '%s' is not an address; use 127.0.0.1:8081 or off",
                     o->admin);
            config_release(out);
            return -1;
        } else {
            (*out)->admin_enabled = true;
        }
    }
    if (o->workers > 0)
        (*out)->workers = o->workers;
    return 0;
}

/* The shared cache's size and eviction policy, from cfg (at start and on reload). */
static void
configure_cache(const struct config *cfg)
{
    cache_store_configure(cfg->cache_memory, cfg->cache_max_object,
                          cfg->cache_eviction == CONFIG_EVICT_LRU ? CACHE_EVICT_LRU
                                                                  : CACHE_EVICT_S3FIFO);
}

/* ---------------------------------------------------------------- signals */

/* The new configuration goes live: workers, admin, cache, logs. */
static void
apply(struct server *s, struct config *cfg)
{
    char err[1024];
    if (log_configure(cfg, err, sizeof(err)) < 0) {
        log_error("reload failed: %s; keeping the running configuration", err);
        config_release(&cfg);
        return;
    }
    if (cfg->nlistens != s->cfg->nlistens)
        log_warn("reload: listen addresses changed; they take effect after a restart");
    if (cfg->io_uring != s->cfg->io_uring)
        log_warn("reload: io_uring changed; it takes effect after a restart");
    for (int i = 0; i < s->nworkers; i++)
        worker_set_config(s->workers[i], cfg);
    if (s->admin != NULL) {
        admin_set_token(s->admin, cfg->admin_token);
        admin_set_config(s->admin, cfg);
    }
    configure_cache(cfg);
    config_release(&s->cfg);
    s->cfg = cfg;
    log_info("configuration reloaded from %s (%zu zones)", cfg->file, cfg->nzones);
}

static void reload(struct server *s);

static void
log_preflight(const struct preflight *p)
{
    for (size_t i = 0; i < p->nlines; i++) {
        const struct preflight_line *l = &p->lines[i];
        if (l->failing || l->warning)
            log_warn("pre-flight: %s", l->text);
        else
            log_info("pre-flight: %s", l->text);
    }
}

static void
run_preflight(void *arg)
{
    struct reload_check *rc = arg;
    preflight_run(rc->cfg, PREFLIGHT_TIMEOUT_MS, &rc->result);
}

static void
free_preflight(void *arg)
{
    struct reload_check *rc = arg;
    preflight_free(&rc->result);
    config_release(&rc->cfg);
    free(rc);
}

/* Back on the main loop: the verdicts decide whether the new configuration goes live. */
static void
preflight_done(void *arg)
{
    struct reload_check *rc = arg;
    struct server *s = rc->s;
    s->preflight = NULL;
    log_preflight(&rc->result);
    if (rc->result.failing > 0 && rc->cfg->preflight == CONFIG_PREFLIGHT_REFUSE) {
        log_error("reload refused: %d origin(s) of %s fail the pre-flight check (preflight: "
                  "refuse); keeping the running configuration", rc->result.failing,
                  rc->cfg->file);
    } else {
        apply(s, config_acquire(rc->cfg));
    }
    free_preflight(rc);
    if (s->reload_again && !s->stopping) {
        s->reload_again = false;
        reload(s);
    }
}

/* SIGHUP: load the file; check its origins off the loop (preflight: warn|refuse), then
 * apply. Workers keep serving the running configuration meanwhile. */
static void
reload(struct server *s)
{
    char err[1024];
    struct config *cfg;
    if (s->opt->config_file == NULL) {
        log_info("SIGHUP: zero-config mode has no file to reload; nothing to do");
        return;
    }
    if (s->preflight != NULL) {
        log_info("SIGHUP: a reload is checking its origins; reloading again after it");
        s->reload_again = true;
        return;
    }
    if (load_config(s->opt, &cfg, err, sizeof(err)) < 0) {
        log_error("reload failed: %s; keeping the running configuration", err);
        return;
    }
    if (cfg->preflight == CONFIG_PREFLIGHT_OFF) {
        apply(s, cfg);
        return;
    }
    struct reload_check *rc = xcalloc(1, sizeof(*rc));
    int e;
    rc->s = s;
    rc->cfg = cfg;
    log_info("reload: checking the origins of %s before it goes live (preflight: %s)",
             cfg->file, cfg->preflight == CONFIG_PREFLIGHT_REFUSE ? "refuse" : "warn");
    s->preflight = diag_job_start(s->loop, run_preflight, preflight_done, rc, &e);
    if (s->preflight == NULL) {
        log_warn("reload: cannot check the origins (%s); reloading without the pre-flight",
                 strerror(e));
        free(rc);
        apply(s, cfg);
    }
}

static void
on_signal(struct loop_io *io, uint32_t events)
{
    struct server *s = container_of(io, struct server, signals);
    struct signalfd_siginfo si;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            reload(s);
        } else if (si.ssi_signo == SIGUSR1) {
            if (log_reopen() < 0)
                log_error("SIGUSR1: reopening the log files failed: %s", strerror(errno));
            else
                log_info("SIGUSR1: log files reopened");
        } else if (!s->stopping) {
            s->stopping = true;
            log_info("%s: draining connections (up to %llu ms), then exiting",
                     strsignal((int)si.ssi_signo),
                     (unsigned long long)s->cfg->shutdown_timeout);
            loop_stop(s->loop);
        }
    }
}

static int
watch_signals(struct server *s, sigset_t *set)
{
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    return loop_io_start(s->loop, &s->signals, fd, EPOLLIN, on_signal);
}

/* ---------------------------------------------------------------- workers */

/* Each worker gets its own SO_REUSEPORT socket per listen address. */
static int
start_workers(struct server *s, char *err, size_t errlen)
{
    const struct config *cfg = s->cfg;
    loop_sends_use_io_uring(cfg->io_uring);
    s->nworkers = cfg->workers;
    s->workers = xcalloc((size_t)s->nworkers, sizeof(*s->workers));
    int *fds = xcalloc(cfg->nlistens ? cfg->nlistens : 1, sizeof(int));
    for (int i = 0; i < s->nworkers; i++) {
        for (size_t j = 0; j < cfg->nlistens; j++) {
            fds[j] = net_listen(&cfg->listens[j], LISTEN_BACKLOG);
            if (fds[j] < 0) {
                snprintf(err, errlen, "cannot listen on %s: %s; is another server using it? "
                         "change listen: in the configuration", cfg->listens[j].text,
                         strerror(-fds[j]));
                while (j-- > 0)
                    close(fds[j]);
                free(fds);
                s->nworkers = i;
                return -1;
            }
        }
        s->workers[i] = worker_new(i + 1, s->cfg, fds, cfg->nlistens);
    }
    free(fds);
    for (int i = 0; i < s->nworkers; i++)
        if (worker_start(s->workers[i]) < 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i + 1);
            return -1;
        }
    return 0;
}

static void
stop_workers(struct server *s)
{
    for (int i = 0; i < s->nworkers; i++)
        worker_drain(s->workers[i]);
    for (int i = 0; i < s->nworkers; i++)
        worker_join_and_free(s->workers[i]);
    free(s->workers);
    s->workers = NULL;
}

static void
log_started(const struct server *s)
{
    char listens[512] = "";
    size_t off = 0;
    for (size_t i = 0; i < s->cfg->nlistens && off < sizeof(listens); i++)
        off += (size_t)snprintf(listens + off, sizeof(listens) - off, "%s%s", i ? ", " : "",
                                s->cfg->listens[i].text);
    log_info("verge %s started: listening on %s with %d workers, %zu zones, admin %s",
             VERGE_VERSION, listens, s->nworkers, s->cfg->nzones,
             s->admin ? s->cfg->admin_listen.text : "off");
}

/* Raise the soft open-files limit to the hard one: every visitor and origin connection
 * is a descriptor. client.max_connections "auto" is 3/4 of what is allowed, leaving the
 * rest for origin connections, logs, DNS and listeners; an eighth (at most
 * STORE_FILES_MAX) may be the memfds that hold large cached bodies (cache/slab.h). */
#define STORE_FILES_MAX 4096
static void
raise_open_files(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = was;
    }
    uint64_t files = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 20 : (uint64_t)rl.rlim_cur;
    conn_limit_set_auto(MAX(files * 3 / 4, (uint64_t)1));
    cache_slab_set_files((int)MIN(files / 8, (uint64_t)STORE_FILES_MAX));
    log_info("open files limit %llu: at most %llu visitor connections (client.max_connections "
             "%s)", (unsigned long long)files,
             (unsigned long long)(cfg->client_max_connections ? cfg->client_max_connections
                                                              : conn_limit_auto()),
             cfg->client_max_connections ? "set" : "auto");
    if (cfg->client_max_connections > files)
        log_warn("client.max_connections %llu is above the open files limit %llu: connections "
                 "past that will fail to be accepted; raise the limit (ulimit -n, LimitNOFILE=)",
                 (unsigned long long)cfg->client_max_connections, (unsigned long long)files);
}

static int
serve(const struct options *o)
{
    char err[1024];
    struct server s = {.opt = o};
    sigset_t set;
    int rc = 1;
    if (load_config(o, &s.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "verge: %s\n", err);
        return 1;
    }
    if (log_configure(s.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "verge: %s\n", err);
        goto out;
    }
    raise_open_files(s.cfg);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* workers inherit the mask */
    s.loop = loop_new();
    if (watch_signals(&s, &set) < 0) {
        fprintf(stderr, "verge: cannot watch signals: %s\n", strerror(errno));
        goto out;
    }
    if (s.cfg->admin_enabled &&
        (s.admin = admin_start(s.loop, &s.cfg->admin_listen, err, sizeof(err))) == NULL) {
        log_error("%s", err);
        goto out;
    }
    if (s.admin != NULL) {
        admin_set_token(s.admin, s.cfg->admin_token);
        admin_set_config(s.admin, s.cfg);
    }
    configure_cache(s.cfg); /* before the workers serve */
    if (start_workers(&s, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    diag_auto_install();
    log_started(&s);
    loop_run(s.loop);
    rc = 0;
out:
    diag_job_abandon(&s.preflight, free_preflight);
    stop_workers(&s);
    diag_jobs_wait(5000);
    admin_stop(&s.admin);
    if (s.loop != NULL) {
        loop_io_stop(s.loop, &s.signals);
        if (s.signals.fd > 0)
            close(s.signals.fd);
        loop_free(&s.loop);
    }
    if (rc == 0)
        log_info("verge stopped");
    config_release(&s.cfg);
    return rc;
}

static int
test_config(const struct options *o)
{
    char err[1024];
    struct config *cfg;
    struct preflight p;
    if (load_config(o, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fprintf(stderr, "configuration %s is valid\n", o->config_file ? o->config_file : o->origin);
    bool check = o->preflight || cfg->preflight == CONFIG_PREFLIGHT_REFUSE;
    int rc = 0;
    if (check) {
        free(cfg->error_log);
        cfg->error_log = NULL; /* the fetch path's log lines stay quiet: the lines say it */
        log_configure(cfg, err, sizeof(err));
        preflight_run(cfg, PREFLIGHT_TIMEOUT_MS, &p);
        for (size_t i = 0; i < p.nlines; i++)
            fprintf(stderr, "pre-flight: %s%s\n", p.lines[i].failing ? "FAILS: " : "",
                    p.lines[i].text);
        if (p.failing > 0 && cfg->preflight == CONFIG_PREFLIGHT_REFUSE) {
            fprintf(stderr, "%d origin(s) fail the pre-flight check and preflight is refuse: "
                    "a reload with this file would be refused\n", p.failing);
            rc = 1;
        } else if (p.failing > 0) {
            fprintf(stderr, "%d origin(s) fail the pre-flight check (preflight: %s: a reload "
                    "would go ahead)\n", p.failing,
                    cfg->preflight == CONFIG_PREFLIGHT_OFF ? "off" : "warn");
        }
        preflight_free(&p);
    }
    config_release(&cfg);
    return rc;
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    if (argc >= 2 && (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
        printf("verge %s\n", VERGE_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return check_main(argc, argv);
    if (argc >= 2 && (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0))
        return usage(stdout);
    if (argc < 2 || parse_options(argc, argv, &o) < 0)
        return usage(stderr);
    return o.test_only ? test_config(&o) : serve(&o);
}
