/*
 * hypfs-guest-read: read one path N times through libxenhypfs, in one
 * process, and print the latency percentiles.  bench-guest runs it inside
 * a guest (through the channel) and on the host (through the socket), so
 * both sides measure the same calls the same way.
 *
 *   hypfs-guest-read PATH N    ->  "reads=N p50_us=... p99_us=..."
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xenhypfs.h>

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    xenhypfs_handle *h;
    double *lat;
    long i, n;

    if (argc != 3 || (n = strtol(argv[2], NULL, 10)) < 1 || n > 10000000) {
        fprintf(stderr, "usage: hypfs-guest-read PATH N\n");
        return 2;
    }
    h = xenhypfs_open(NULL, 0);
    lat = malloc((size_t)n * sizeof(*lat));
    if (!h || !lat) {
        fprintf(stderr, "hypfs-guest-read: cannot open hypfs\n");
        return 1;
    }
    for (i = 0; i < n; i++) {
        double t0 = now_us();
        char *v = xenhypfs_read(h, argv[1]);

        lat[i] = now_us() - t0;
        if (!v) {
            perror(argv[1]);
            return 1;
        }
        free(v);
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp);
    printf("reads=%ld p50_us=%.1f p99_us=%.1f\n", n, lat[n / 2],
           lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
    free(lat);
    xenhypfs_close(h);
    return 0;
}
