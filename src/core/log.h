/* log.h - the error log (severity, nginx-like context) and the access log sink. Both are
 * file descriptors shared by all threads; each line is one write(2) on an O_APPEND file.
 * log_reopen (SIGUSR1) swaps the files under the same descriptors with dup2, so writers
 * never see a closed descriptor. */
#ifndef VERGE_CORE_LOG_H
#define VERGE_CORE_LOG_H

#include "core/config.h"

/* Open (or re-point) the error and access logs named by cfg. Main thread only.
 * On error returns -1 with a message in err and leaves the current logs untouched. */
int log_configure(const struct config *cfg, char *err, size_t errlen);

/* Reopen both files at their configured paths (after logrotate moved them). 0 or -1. */
int log_reopen(void);

/* Error log line: "2026/11/24 11:30:00 [error] 1234#2: message". Thread-safe. */
void log_msg(enum config_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(CONFIG_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(CONFIG_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(CONFIG_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(CONFIG_LOG_ERROR, __VA_ARGS__)

bool log_level_enabled(enum config_log_level level);

/* Whether an access log is open, and its format. */
bool log_access_enabled(void);
enum config_log_format log_access_format(void);
/* Write one complete access-log line (ending in '\n'). */
void log_access_write(const char *line, size_t len);

/* This thread's id in log lines (0 = main, workers 1..N). */
void log_set_thread_id(int id);

/* Lines that repeat (the same failure for every request while an origin is down): per
 * kind of line (a key), the first in a window is written in full; the others in that
 * window are only counted, and when it ends one line says how many there were. One set
 * per thread (its loop's timer writes those lines). */
struct loop;
struct log_repeats;

#define LOG_REPEAT_SUMMARY 512

struct log_repeats *log_repeats_new(struct loop *loop, enum config_log_level level,
                                    uint64_t window_ms);
/* Writes the counts still pending. The loop must still exist. */
void log_repeats_free(struct log_repeats **r);
/* A line of kind key is due. true: write it in full, and write into *summary
 * (LOG_REPEAT_SUMMARY bytes) the words that will introduce the count of the ones that
 * follow in the window; false: it was counted instead. */
bool log_repeat_first(struct log_repeats *r, const char *key, char **summary);

#endif
