/*
 * hypfs-probe: the control domain's requests, as its tools make them
 * (libxenhypfs), counted and timed, for the hostile suite and
 * bench/bench-hostile.
 *
 *   hypfs-probe [--newconn] [--count N] [--path PATH] [--expect VALUE]
 *   hypfs-probe --events [--count N]
 *
 * Reads PATH (default /params/loglvl) N times (default 3000), over one
 * connection, or with --newconn each on a new one (open, read, close: a
 * tool's whole life).  Every read must succeed and, with --expect, give
 * VALUE.  Prints one line:
 *
 *   served=K of=N p50_us=.. p99_us=.. max_us=..
 *
 * and exits 0 only if every request was served correctly.  With --events
 * it watches /params/loglvl and writes it N times, "info" and "warning" in
 * turn (ending with "warning", as it was), each time timing the write and
 * the event it causes: a request is served when its event comes.
 * $HYPFS_SOCKET
 * says where.  A request that does not come back within 60 s ends the
 * run as a failure (SIGALRM), rather than hanging the suite.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xenhypfs.h>

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The run's line, and its exit status; @h and @lat are freed. */
static int finish(xenhypfs_handle *h, double *lat, long count, long served)
{
    alarm(0);
    xenhypfs_close(h);
    qsort(lat, (size_t)count, sizeof(*lat), cmp_double);
    printf("served=%ld of=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", served,
           count, lat[count / 2], lat[count * 99 / 100], lat[count - 1]);
    free(lat);
    return served == count ? 0 : 1;
}

static void on_alarm(int sig)
{
    static const char msg[] = "hypfs-probe: a request took over 60 s\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(3);
    _exit(3);
}

/* Write, then wait for the watch's event: 0, or -1 (5 s without one). */
static int write_and_wait(xenhypfs_handle *h, const char *v)
{
    struct xenhypfs_event ev[8];
    struct pollfd p = { xenhypfs_event_fd(h), POLLIN, 0 };
    int n, tries;

    if (xenhypfs_write(h, "/params/loglvl", v))
        return -1;
    for (tries = 0; tries < 50; tries++) {
        n = xenhypfs_read_events(h, ev, 8);
        if (n > 0)
            return 0;
        if (n < 0)
            return -1;
        poll(&p, 1, 100);
    }
    return -1;
}

static int events(long count)
{
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);
    struct xenhypfs_event ev[8];
    double *lat = calloc((size_t)count, sizeof(*lat));
    long i, served = 0;

    if (!h || !lat || xenhypfs_watch(h, "/params/loglvl", 1, 0)) {
        fprintf(stderr, "hypfs-probe: cannot watch: %s\n", strerror(errno));
        return 2;
    }
    /* The first event says the current generation: taken, not timed. */
    usleep(100000);
    while (xenhypfs_read_events(h, ev, 8) > 0)
        ;
    signal(SIGALRM, on_alarm);
    for (i = 0; i < count; i++) {
        double t0 = now_us();

        alarm(60);
        if (!write_and_wait(h, (count - i) % 2 ? "warning" : "info"))
            served++;
        lat[i] = now_us() - t0;
    }
    return finish(h, lat, count, served);
}

int main(int argc, char **argv)
{
    const char *path = "/params/loglvl", *expect = NULL;
    bool newconn = false, events_mode = false;
    long count = 3000, served = 0, i, errors = 0;
    xenhypfs_handle *h = NULL;
    double *lat;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--newconn"))
            newconn = true;
        else if (!strcmp(argv[i], "--events"))
            events_mode = true;
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
            expect = argv[++i];
        else {
            fprintf(stderr, "usage: hypfs-probe [--newconn] [--count N] "
                    "[--path PATH] [--expect VALUE]\n"
                    "       hypfs-probe --events [--count N]\n");
            return 2;
        }
    }
    if (events_mode)
        return count > 0 ? events(count) : 2;
    lat = calloc((size_t)count, sizeof(*lat));
    if (!lat || count <= 0)
        return 2;
    signal(SIGALRM, on_alarm);
    for (i = 0; i < count; i++) {
        double t0 = now_us();
        char *v = NULL;

        alarm(60);
        if (newconn || !h)
            h = xenhypfs_open(NULL, 0);
        if (h)
            v = xenhypfs_read(h, path);
        if (v && (!expect || !strcmp(v, expect)))
            served++;
        else if (errors++ < 5)
            fprintf(stderr, "hypfs-probe: request %ld: %s\n", i,
                    !h ? "cannot open the library" :
                    !v ? strerror(errno) : "wrong value");
        free(v);
        if (newconn) {
            xenhypfs_close(h);
            h = NULL;
        }
        lat[i] = now_us() - t0;
    }
    return finish(h, lat, count, served);
}
