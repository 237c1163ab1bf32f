/*
 * bench-exporter: what one Prometheus scrape of hypfs-exporter costs, for
 * a hypervisor with 10 and with 1,000 domains, through the subtree read of
 * interface version 2 and through the version-1 walk, in the same run.
 *
 * For each: scrape latency p50/p99 (HTTP request to the last byte, over
 * loopback, "Connection: close" as Prometheus's first scrape would), the
 * exporter's CPU per scrape (utime+stime from /proc), and its peak RSS.
 * The last line:
 *   RESULT scrape_1000_p50_ms=... v2_speedup=... exporter_rss_mb=...
 * (v2_speedup: the walk's p50 over the subtree read's, 1,000 domains).
 *
 *   bench-exporter [--quick]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "daemon.h"

struct exporter {
    pid_t pid;
    int port;
};

static int start_exporter(const char *prog, const char *socket, bool v1,
                          struct exporter *e)
{
    char log[] = "/tmp/bench-exporter-XXXXXX";
    int fd = mkstemp(log), i;

    if (fd < 0)
        return -1;
    e->pid = fork();
    if (e->pid < 0)
        return -1;
    if (!e->pid) {
        dup2(fd, 2);
        setenv("HYPFS_SOCKET", socket, 1);
        if (v1)
            setenv("XENHYPFS_V1", "1", 1);
        else
            unsetenv("XENHYPFS_V1");
        execl(prog, prog, "--listen", "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 1000; i++) {
        char buf[512] = "";
        const char *p;

        if (pread(fd, buf, sizeof(buf) - 1, 0) > 0 &&
            (p = strstr(buf, "listening on 127.0.0.1:"))) {
            e->port = atoi(p + strlen("listening on 127.0.0.1:"));
            close(fd);
            unlink(log);
            return 0;
        }
        usleep(10000);
    }
    fprintf(stderr, "bench-exporter: %s did not start\n", prog);
    close(fd);
    unlink(log);
    return -1;
}

static void stop_exporter(struct exporter *e)
{
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
}

/* One scrape: bytes of the response, or -1. */
static long scrape(int port)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n"
                              "Connection: close\r\n\r\n";
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    char buf[65536];
    long total = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        total += n;
    close(fd);
    return n < 0 ? -1 : total;
}

/* The process's CPU time so far, in ms. */
static double cpu_ms(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return 0;
    }
    fclose(f);
    p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* Peak resident memory of @pid, MB. */
static double hwm_mb(pid_t pid)
{
    char path[64], line[256];
    double kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

struct result {
    double p50_ms, p99_ms, cpu_ms, rss_mb;
    long bytes;
};

static int measure(const char *prog, const char *socket, bool v1, int n,
                   struct result *r)
{
    struct exporter e;
    double *t = malloc((size_t)n * sizeof(*t)), c0;
    int i;

    if (!t || start_exporter(prog, socket, v1, &e))
        return -1;
    /* A few first, so that the handle and buffers are warm. */
    for (i = 0; i < 3; i++)
        scrape(e.port);
    c0 = cpu_ms(e.pid);
    for (i = 0; i < n; i++) {
        double t0 = now_us();

        r->bytes = scrape(e.port);
        if (r->bytes <= 0) {
            fprintf(stderr, "bench-exporter: a scrape failed\n");
            stop_exporter(&e);
            free(t);
            return -1;
        }
        t[i] = (now_us() - t0) / 1000.0;
    }
    r->cpu_ms = (cpu_ms(e.pid) - c0) / n;
    r->rss_mb = hwm_mb(e.pid);
    r->p50_ms = percentile(t, n, 50);
    r->p99_ms = percentile(t, n, 99);
    stop_exporter(&e);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *args[] = { "-q", NULL };
    static const unsigned int sizes[] = { 10, 1000 };
    const char *prog;
    struct result v2[2], v1[2];
    size_t s;

    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    prog = program_path("HYPFS_EXPORTER",
                        strdup(sibling_program(argv[0],
                                               "../src/exporter/hypfs-exporter")));
    for (s = 0; s < 2; s++) {
        int n = sizes[s] > 100 ? (quick ? 30 : 100) : (quick ? 100 : 300);
        struct daemon d;

        if (daemon_start(&d, NULL, args) ||
            create_domains(d.socket, "bench-", sizes[s]))
            return 1;
        if (measure(prog, d.socket, false, n, &v2[s]) ||
            measure(prog, d.socket, true, n, &v1[s]))
            return 1;
        daemon_stop(&d);
        printf("%4u domains, %6ld bytes: subtree read p50 %.2f ms p99 %.2f ms"
               " cpu %.2f ms rss %.1f MB | v1 walk p50 %.2f ms p99 %.2f ms"
               " cpu %.2f ms\n", sizes[s], v2[s].bytes, v2[s].p50_ms,
               v2[s].p99_ms, v2[s].cpu_ms, v2[s].rss_mb, v1[s].p50_ms,
               v1[s].p99_ms, v1[s].cpu_ms);
    }
    printf("RESULT scrape_10_p50_ms=%.2f scrape_1000_p50_ms=%.2f "
           "scrape_1000_p99_ms=%.2f scrape_1000_cpu_ms=%.2f "
           "scrape_1000_bytes=%ld v1_scrape_1000_p50_ms=%.2f v2_speedup=%.1f "
           "exporter_rss_mb=%.1f\n", v2[0].p50_ms, v2[1].p50_ms, v2[1].p99_ms,
           v2[1].cpu_ms, v2[1].bytes, v1[1].p50_ms,
           v1[1].p50_ms / v2[1].p50_ms, v2[1].rss_mb);
    return 0;
}
