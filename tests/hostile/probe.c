/*
 * hypfs-probe: the control domain's requests, as its tools make them
 * (libxenhypfs), counted and timed, for the hostile suite and
 * bench/bench-hostile.
 *
 *   hypfs-probe [--newconn] [--count N] [--path PATH] [--expect VALUE]
 *
 * Reads PATH (default /params/loglvl) N times (default 3000), over one
 * connection, or with --newconn each on a new one (open, read, close: a
 * tool's whole life).  Every read must succeed and, with --expect, give
 * VALUE.  Prints one line:
 *
 *   served=K of=N p50_us=.. p99_us=.. max_us=..
 *
 * and exits 0 only if every request was served correctly.  $HYPFS_SOCKET
 * says where.  A request that does not come back within 60 s ends the
 * run as a failure (SIGALRM), rather than hanging the suite.
 */
#include <errno.h>
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

static void on_alarm(int sig)
{
    static const char msg[] = "hypfs-probe: a request took over 60 s\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(3);
    _exit(3);
}

int main(int argc, char **argv)
{
    const char *path = "/params/loglvl", *expect = NULL;
    bool newconn = false;
    long count = 3000, served = 0, i, errors = 0;
    xenhypfs_handle *h = NULL;
    double *lat;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--newconn"))
            newconn = true;
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
            expect = argv[++i];
        else {
            fprintf(stderr, "usage: hypfs-probe [--newconn] [--count N] "
                    "[--path PATH] [--expect VALUE]\n");
            return 2;
        }
    }
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
    alarm(0);
    xenhypfs_close(h);
    qsort(lat, (size_t)count, sizeof(*lat), cmp_double);
    printf("served=%ld of=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", served,
           count, lat[count / 2], lat[count * 99 / 100], lat[count - 1]);
    free(lat);
    return served == count ? 0 : 1;
}
