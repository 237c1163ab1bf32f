/*
 * hypfsd's log: one line per message on stderr, each prefixed with its
 * syslog priority as "<N>" so that journald, and anything else reading
 * sd-daemon style output, files it at the right level.
 */
#include <stdarg.h>
#include <stdio.h>

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
