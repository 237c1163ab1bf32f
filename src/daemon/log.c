/*
 * hypfsd's log: one line per message on stderr, each prefixed with its
 * syslog priority as "<N>" so that journald, and anything else reading
 * sd-daemon style output, files it at the right level.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "hypfsd.h"

int log_threshold = L_INFO;

void log_msg(int prio, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (prio > log_threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One call per line: stdio's lock keeps lines from different threads
     * whole. */
    fprintf(stderr, "<%d>hypfsd: %s\n", prio, line);
}

int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define RATELIMIT_INTERVAL_MS   5000
#define RATELIMIT_BURST         5u

void log_limited(struct log_ratelimit *rl, int prio, const char *fmt, ...)
{
    char line[1024];
    unsigned long suppressed = 0;
    int64_t now = monotonic_ms();
    bool emit;
    va_list ap;

    if (prio > log_threshold)
        return;
    pthread_mutex_lock(&rl->lock);
    if (now - rl->window_start_ms >= RATELIMIT_INTERVAL_MS) {
        suppressed = rl->suppressed;
        rl->suppressed = 0;
        rl->window_start_ms = now;
        rl->in_window = 0;
    }
    emit = rl->in_window < RATELIMIT_BURST;
    if (emit)
        rl->in_window++;
    else
        rl->suppressed++;
    pthread_mutex_unlock(&rl->lock);
    if (suppressed)
        log_msg(prio, "(%lu similar messages suppressed)", suppressed);
    if (!emit)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_msg(prio, "%s", line);
}
