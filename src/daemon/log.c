/*
 * hypfsd's log: one line per message on stderr.  Under systemd (stderr is
 * the journal's stream) each line starts with its syslog priority as
 * "<N>", which journald reads and strips; elsewhere a person reads it, so
 * it says "hypfsd: warning: ..." as the usage messages and the other tools
 * do.  $HYPFSD_LOG_PRIORITY=1 asks for the "<N>" prefix anyway (anything
 * else that reads sd-daemon style output).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hypfsd.h"

int log_threshold = L_INFO;

/* Is stderr the journal's stream ($JOURNAL_STREAM names its dev:ino)? */
static bool to_journal(void)
{
    static int known = -1;
    const char *js, *env;
    struct stat st;
    unsigned long long dev, ino;

    if (known >= 0)
        return known;
    env = getenv("HYPFSD_LOG_PRIORITY");
    js = getenv("JOURNAL_STREAM");
    known = (env && !strcmp(env, "1")) ||
            (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
             !fstat(2, &st) && st.st_dev == dev && st.st_ino == ino);
    return known;
}

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
    if (to_journal())
        fprintf(stderr, "<%d>hypfsd: %s\n", prio, line);
    else
        fprintf(stderr, "hypfsd: %s%s\n", prio <= L_ERR ? "error: " :
                prio == L_WARNING ? "warning: " : "", line);
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
