/*
 * bench-scale: hypfsd at Xen's limit, 32,751 guest domains (every domid
 * below DOMID_FIRST_RESERVED), grown through the control protocol with the
 * entries each domain has, and measured at 1, 1,000 and 32,751 domains:
 *
 *   read          the control domain's read of a /params leaf, p50/p99,
 *                 at each size: read_p99_ratio_32k (32,751 against 1);
 *   create        domain-create and domain-destroy round trips at 32,751,
 *                 p99 (an upper bound of the daemon's part);
 *   rss           hypfsd's resident memory per domain beyond the empty
 *                 daemon, KiB;
 *   ls, tree      `xenhypfs ls /domain` and `xenhypfs tree` (the whole
 *                 tree, one subtree read), wall time;
 *   watches       every domain's directory watched, and /domain, over
 *                 1,000 connections: a write to one domain's entry, from
 *                 its reply to both concerned watchers woken, p99, against
 *                 the same with those two watches alone;
 *   exporter      hypfs-exporter scraping it all, gzip on: p50, its RSS;
 *   clients       1,024 connections of a guest domain, each with a read
 *                 always in flight, while the control domain reads: its
 *                 p99 against alone (as root, the load runs as a mapped
 *                 user; otherwise as control connections, and says so).
 *
 * Every figure printed beside its target and its baseline from the same
 * run; RESULT line last.  build/bench/bench-scale [--quick] [--exporter]:
 * --quick grows to 8,192 domains and measures less (a minute on 2 vCPUs);
 * --exporter measures the exporter alone (for working on it).
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xenhypfs.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "bench-util.h"
#include "client.h"
#include "daemon.h"
#include "tclient.h"
#include "xenhypfs-ext.h"

#define LEAF        "/params/gnttab_max_frames"
#define WATCH_CONNS 1000
#define LOAD_CONNS  1024
/*
 * The clients are 32 guests' (uids LOAD_UID.. mapped to domains 1..32),
 * 32 connections each: hypfsd's default limit per user (limit-per-uid),
 * as a real host's guests would be held to.
 */
#define LOAD_GUESTS 32
#define LOAD_UID    65000u

static unsigned int max_domains = 32751;
static struct daemon d;

/* However the run ends (exit(1) on any failure), hypfsd goes with it. */
static void stop_daemon(void)
{
    if (d.pid > 0)
        daemon_stop(&d);
}

static xenhypfs_handle *open_on(const char *socket)
{
    int fd = hypfs_client_connect_path(socket);
    xenhypfs_handle *h = fd < 0 ? NULL : xenhypfs_open_socket(fd);

    if (!h) {
        fprintf(stderr, "bench-scale: cannot open a handle on %s: %s\n",
                socket, strerror(errno));
        exit(1);
    }
    return h;
}

/* @field of /proc/@pid/status in KiB: "VmRSS", or "VmHWM" (its peak). */
static long status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t n = strlen(field);
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kib;
}

/* @n reads of LEAF on @h: p50 and p99 in µs. */
static void reads(xenhypfs_handle *h, int n, double *p50, double *p99)
{
    double *t = malloc((size_t)n * sizeof(*t));
    int i;

    if (!t)
        exit(1);
    for (i = 0; i < n; i++) {
        double t0 = now_us();
        char *v = xenhypfs_read(h, LEAF);

        t[i] = now_us() - t0;
        if (!v) {
            perror("bench-scale: read");
            exit(1);
        }
        free(v);
    }
    *p99 = percentile(t, n, 99);
    *p50 = percentile(t, n, 50);
    free(t);
}

static int ctl(struct hypfs_client *c, const char *verb, const char *arg,
               char *out, size_t outlen)
{
    const char *argv[2] = { verb, arg };
    const char *text;
    uint32_t len;
    int status;

    if (hypfs_client_ctl(c, arg ? 2 : 1, argv, &status, &text, &len) ||
        status) {
        fprintf(stderr, "bench-scale: %s %s: %.*s\n", verb, arg ? arg : "",
                (int)len, status ? text : "(no answer)");
        return -1;
    }
    if (out)
        snprintf(out, outlen, "%.*s", (int)len, text);
    return 0;
}

/* Domains until there are @n guests (names scale-<i>). */
static void grow(struct hypfs_client *c, unsigned int *have, unsigned int n)
{
    char name[64];

    for (; *have < n; (*have)++) {
        snprintf(name, sizeof(name), "name=scale-%u", *have);
        if (ctl(c, "domain-create", name, NULL, 0))
            exit(1);
    }
}

/*
 * @n times: destroy the last domain and create one in its place (the count
 * stays): round-trip p99s.
 */
static void churn(struct hypfs_client *c, int n, double *create99,
                  double *destroy99)
{
    double *tc = malloc((size_t)n * sizeof(*tc)), *td = malloc((size_t)n *
                                                              sizeof(*td));
    char id[48], out[32];
    int i;

    if (!tc || !td)
        exit(1);
    snprintf(id, sizeof(id), "id=%u", max_domains);
    for (i = 0; i < n; i++) {
        double t0 = now_us();

        if (ctl(c, "domain-destroy", id, NULL, 0))
            exit(1);
        td[i] = now_us() - t0;
        t0 = now_us();
        if (ctl(c, "domain-create", "name=scale-churn", out, sizeof(out)))
            exit(1);
        tc[i] = now_us() - t0;
        out[strcspn(out, "\n")] = '\0';
        snprintf(id, sizeof(id), "id=%s", out);
    }
    *create99 = percentile(tc, n, 99);
    *destroy99 = percentile(td, n, 99);
    free(tc);
    free(td);
}

/* ---- Watches ---- */

static void take_all(xenhypfs_handle *h)
{
    struct xenhypfs_event ev[64];

    while (xenhypfs_read_events(h, ev, 64) > 0)
        ;
}

static void watch_path(xenhypfs_handle *h, const char *path, uint64_t token)
{
    uint64_t g;

    if (xenhypfs_get_generation(h, path, &g) ||
        xenhypfs_watch(h, path, token, g)) {
        fprintf(stderr, "bench-scale: watch %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/*
 * @n writes to /domain/@id/guest-status by @w; each from its reply until
 * both @a (watching /domain/@id/) and @b (watching /domain) took their
 * event: p99 in µs.
 */
static double watch_p99(xenhypfs_handle *w, xenhypfs_handle *a,
                        xenhypfs_handle *b, unsigned int id, int n)
{
    double *t = malloc((size_t)n * sizeof(*t)), r;
    char path[64], val[32];
    int i;

    snprintf(path, sizeof(path), "/domain/%u/guest-status", id);
    for (i = 0; i < n; i++) {
        struct pollfd p[2] = {
            { .fd = xenhypfs_event_fd(a), .events = POLLIN },
            { .fd = xenhypfs_event_fd(b), .events = POLLIN },
        };
        bool got[2] = { false, false };
        double t0;

        snprintf(val, sizeof(val), "v%d", i);
        if (xenhypfs_write(w, path, val))
            exit(1);
        t0 = now_us();
        while (!got[0] || !got[1]) {
            struct xenhypfs_event ev[8];
            int k;

            if (poll(p, 2, 5000) <= 0) {
                fprintf(stderr, "bench-scale: no event within 5 s\n");
                exit(1);
            }
            for (k = 0; k < 2; k++)
                if (!got[k] && (p[k].revents & POLLIN) &&
                    xenhypfs_read_events(k ? b : a, ev, 8) > 0)
                    got[k] = true;
        }
        t[i] = now_us() - t0;
    }
    r = percentile(t, n, 99);
    free(t);
    return r;
}

/* ---- 1,024 clients with a read always in flight ---- */

struct frame {
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_op op;
    char path[32];
};
_Static_assert(offsetof(struct frame, path) ==
               sizeof(struct hypfs_msg_hdr) + sizeof(struct hypfs_msg_op),
               "a frame is its parts back to back");

static volatile sig_atomic_t load_stop;

static void on_term(int sig)
{
    (void)sig;
    load_stop = 1;
}

/*
 * Keep one read of /domain/@dom/name in flight on each of @n connections
 * until SIGTERM.
 */
static void load(const char *socket, int n, unsigned int dom, int ready_fd)
{
    char path[32];
    struct frame f = { 0 };
    int ep = epoll_create1(0), *fds = calloc((size_t)n, sizeof(*fds)), i;
    size_t len;

    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    if (ep < 0 || !fds)
        _exit(1);
    snprintf(path, sizeof(path), "/domain/%u/name", dom);
    memcpy(f.path, path, strlen(path) + 1);
    f.op.cmd = XEN_HYPFS_OP_read;
    f.op.path_len = (uint32_t)strlen(path) + 1;
    f.op.arg1 = 0x1000;
    f.op.arg2 = strlen(path) + 1;
    f.op.arg3 = 0x2000;
    f.op.arg4 = 4096;
    len = sizeof(f.hdr) + sizeof(f.op) + strlen(path) + 1;
    hypfs_msg_hdr_init(&f.hdr, HYPFS_MSG_OP, (uint32_t)(sizeof(f.op) +
                                                       strlen(path) + 1), 1);
    for (i = 0; i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };

        fds[i] = hypfs_client_connect_path(socket);
        if (fds[i] < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) ||
            write(fds[i], &f, len) != (ssize_t)len) {
            fprintf(stderr, "bench-scale: load connection %d: %s\n", i,
                    strerror(fds[i] < 0 ? -fds[i] : errno));
            _exit(2);
        }
    }
    if (write(ready_fd, "r", 1) != 1)
        _exit(3);
    while (!load_stop) {
        struct epoll_event ev[64];
        int k, m = epoll_wait(ep, ev, 64, 100);

        for (k = 0; k < m; k++) {
            int fd = fds[ev[k].data.u32];
            struct hypfs_msg_hdr h;
            char buf[8192];

            if (recv(fd, &h, sizeof(h), MSG_WAITALL) != sizeof(h) ||
                h.len > sizeof(buf) ||
                recv(fd, buf, h.len, MSG_WAITALL) != (ssize_t)h.len ||
                write(fd, &f, len) != (ssize_t)len)
                _exit(4);
        }
    }
    _exit(0);
}

/* ---- hypfs-exporter ---- */

static pid_t start_exporter(const char *prog, const char *socket, int *port)
{
    int p[2];
    pid_t pid;
    char line[512];
    FILE *f;

    if (pipe(p))
        exit(1);
    pid = fork();
    if (!pid) {
        dup2(p[1], 2);
        close(p[0]);
        setenv("HYPFS_SOCKET", socket, 1);
        execl(prog, prog, "--listen", "127.0.0.1:0", "--max-value-length",
              "256", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    f = fdopen(p[0], "r");
    *port = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "hypfs-exporter: listening on 127.0.0.1:%d", port)
            == 1)
            break;
    /* Its later lines go nowhere (the pipe is closed when it writes). */
    if (f)
        fclose(f);
    if (!*port) {
        fprintf(stderr, "bench-scale: %s did not start\n", prog);
        exit(1);
    }
    return pid;
}

/* One scrape with gzip: seconds, and the bytes it took in *bytes. */
static double scrape(int port, size_t *bytes)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Accept-Encoding: gzip\r\nConnection: close"
                              "\r\n\r\n";
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(0x7f000001) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    double t0 = now_us();
    char buf[65536];
    ssize_t n;

    bool ok = false;

    *bytes = 0;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        exit(1);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (!*bytes)
            ok = n > 12 && !strncmp(buf, "HTTP/1.1 200", 12);
        *bytes += (size_t)n;
    }
    close(fd);
    if (!ok) {
        fprintf(stderr, "bench-scale: a scrape failed\n");
        exit(1);
    }
    return (now_us() - t0) / 1e6;
}

int main(int argc, char **argv)
{
    bool quick = false, exporter_only = false;
    bool root = geteuid() == 0;
    const char *args[] = { "-q", "--max-control-clients", "4096",
                           "--max-clients", "4096", NULL };
    char config[64 * LOAD_GUESTS];
    struct rlimit rl;
    struct hypfs_client c;
    xenhypfs_handle *h, *w, *wa, *wb, **many;
    unsigned int have = 0, stages[3] = { 1, 1000, 0 }, s, i;
    int nreads = quick ? 5000 : 20000, nchurn = quick ? 300 : 2000;
    int nwatch = quick ? 300 : 2000, port, ready[2], j;
    double r50[3], r99[3], c99, d99, dc99, dd99, ls_s, tree_s, w2, wall, sc[5];
    double alone50, alone99, busy50, busy99, t[3];
    long rss0, rss;
    pid_t ex, ld, loaders[LOAD_GUESTS];
    size_t bytes = 0;

    for (j = 1; j < argc; j++) {
        if (!strcmp(argv[j], "--quick"))
            quick = true;
        else if (!strcmp(argv[j], "--exporter"))
            exporter_only = true;
        else {
            fprintf(stderr, "usage: bench-scale [--quick] [--exporter]\n");
            return 2;
        }
    }
    if (quick) {
        max_domains = 8192;
        nreads = 5000;
        nchurn = 300;
        nwatch = 300;
    }
    stages[2] = max_domains;
    /* A connection is a descriptor on each side: make room for them. */
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    for (i = 0, config[0] = '\0'; i < LOAD_GUESTS; i++)
        snprintf(config + strlen(config), sizeof(config) - strlen(config),
                 "map %u %u\n", LOAD_UID + i, i + 1);
    if (daemon_start(&d, root ? config : NULL, args))
        return 1;
    atexit(stop_daemon);
    if (tclient_open(&c, d.socket))
        return 1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    setenv("HYPFS_TRANSPORT", "socket", 1);
    h = open_on(d.socket);
    rss0 = status_kib(d.pid, "VmRSS");

    if (exporter_only) {
        grow(&c, &have, max_domains);
        ex = start_exporter(program_path("HYPFS_EXPORTER",
            strdup(sibling_program(argv[0], "../src/exporter/hypfs-exporter"))),
            d.socket, &port);
        for (j = 0; j < 5; j++)
            sc[j] = scrape(port, &bytes);
        rss = status_kib(ex, "VmHWM");
        kill(ex, SIGTERM);
        waitpid(ex, NULL, 0);
        printf("exporter at %u domains: scrape p50 %.3f s (%zu bytes gzip; "
               "target <= 1), peak RSS %.1f MB (target <= 64)\n",
               max_domains, median(sc, 5), bytes, rss / 1024.0);
        printf("RESULT domains=%u scrape_p50_s_32k=%.3f "
               "exporter_rss_mb_32k=%.1f\n", max_domains, median(sc, 5),
               rss / 1024.0);
        return 0;
    }
    for (s = 0; s < 3; s++) {
        double t0 = now_us();

        grow(&c, &have, stages[s]);
        if (s == 2)
            printf("grown to %u domains in %.1f s\n", have,
                   (now_us() - t0) / 1e6);
        reads(h, nreads, &r50[s], &r99[s]);
        printf("%6u domains: read p50 %.1f us, p99 %.1f us\n", stages[s],
               r50[s], r99[s]);
    }
    rss = status_kib(d.pid, "VmRSS");
    churn(&c, nchurn, &c99, &d99);
    {
        /* What hypfsd itself took, over these (the last 4096): stats. */
        char st[4096], *p;

        if (ctl(&c, "stats", NULL, st, sizeof(st)))
            return 1;
        p = strstr(st, "domain_create_p99_us ");
        dc99 = p ? atof(p + 21) : -1;
        p = strstr(st, "domain_destroy_p99_us ");
        dd99 = p ? atof(p + 22) : -1;
    }

    {
        const char *xenhypfs = program_path("XENHYPFS",
            strdup(sibling_program(argv[0], "../src/cli/xenhypfs")));
        const char *ls_argv[] = { xenhypfs, "ls", "/domain", NULL };
        const char *tree_argv[] = { xenhypfs, "tree", NULL };

        for (j = 0; j < 3; j++)
            t[j] = run_quiet(ls_argv) / 1e6;
        ls_s = median(t, 3);
        for (j = 0; j < 3; j++)
            t[j] = run_quiet(tree_argv) / 1e6;
        tree_s = median(t, 3);
    }

    /* Watches: the two concerned alone, then among everyone's. */
    w = open_on(d.socket);
    wa = open_on(d.socket);
    wb = open_on(d.socket);
    watch_path(wa, "/domain/7", 1);
    watch_path(wb, "/domain", 1);
    w2 = watch_p99(w, wa, wb, 7, nwatch);
    many = calloc(WATCH_CONNS, sizeof(*many));
    for (i = 0; i < WATCH_CONNS; i++)
        many[i] = open_on(d.socket);
    {
        unsigned int n = 0;
        struct xenhypfs_dirent *e = xenhypfs_readdir(h, "/domain", &n);

        if (!e)
            return 1;
        for (i = 0; i < n; i++) {
            char p[300];

            snprintf(p, sizeof(p), "/domain/%s", e[i].name);
            if (strcmp(e[i].name, "7") && strcmp(e[i].name, "0"))
                watch_path(many[i % WATCH_CONNS], p, i + 1);
        }
        free(e);
    }
    wall = watch_p99(w, wa, wb, 7, nwatch);
    take_all(wa);
    take_all(wb);
    for (i = 0; i < WATCH_CONNS; i++)
        xenhypfs_close(many[i]);
    free(many);

    /* The exporter, over everything. */
    ex = start_exporter(program_path("HYPFS_EXPORTER",
        strdup(sibling_program(argv[0], "../src/exporter/hypfs-exporter"))),
        d.socket, &port);
    for (j = 0; j < 5; j++)
        sc[j] = scrape(port, &bytes);
    {
        /* Its peak: what a scrape of everything takes at once. */
        long exrss = status_kib(ex, "VmHWM");

        kill(ex, SIGTERM);
        waitpid(ex, NULL, 0);

        /* 1,024 clients with a read in flight each, as a guest domain. */
        reads(h, nreads, &alone50, &alone99);
        if (pipe(ready))
            return 1;
        for (i = 0; i < LOAD_GUESTS; i++) {
            ld = fork();
            if (!ld) {
                close(ready[0]);
                /*
                 * The guests' own processes run in their VMs, on CPU time
                 * the host gives the VMs: not hypfsd's to defend.  Here
                 * they share the host's, so they yield it, as vCPUs under
                 * a host's control would.
                 */
                if (nice(19) < 0 && errno)
                    _exit(6);
                if (root && (setgid(LOAD_UID + i) || setuid(LOAD_UID + i)))
                    _exit(5);
                load(d.socket, LOAD_CONNS / LOAD_GUESTS, i + 1, ready[1]);
            }
            loaders[i] = ld;
        }
        close(ready[1]);
        for (i = 0; i < LOAD_GUESTS; i++)
            if (read(ready[0], &port, 1) != 1) {
                fprintf(stderr, "bench-scale: the load did not start\n");
                for (i = 0; i < LOAD_GUESTS; i++)
                    kill(loaders[i], SIGKILL);
                return 1;
            }
        close(ready[0]);
        reads(h, nreads, &busy50, &busy99);
        for (i = 0; i < LOAD_GUESTS; i++)
            kill(loaders[i], SIGTERM);
        for (i = 0; i < LOAD_GUESTS; i++)
            waitpid(loaders[i], NULL, 0);

        printf("at %u domains: read p99 %.1f us against %.1f us at 1 "
               "(%.2fx, target <= 1.2)\n", max_domains, r99[2], r99[0],
               r99[2] / r99[0]);
        printf("in hypfsd: domain-create p99 %.0f us, domain-destroy p99 "
               "%.0f us (target <= 100 each; round trips %.0f and %.0f "
               "us)\n", dc99, dd99, c99, d99);
        printf("hypfsd RSS %ld KiB empty, %ld KiB at %u domains: %.2f KiB "
               "per domain (target <= 2)\n", rss0, rss, max_domains,
               (double)(rss - rss0) / max_domains);
        printf("xenhypfs ls /domain %.1f ms (target <= 50), tree %.3f s "
               "(target <= 0.3)\n", ls_s * 1e3, tree_s);
        printf("watches: write to its two watchers p99 %.0f us with 2 "
               "watches, %.0f us with %u over %d connections (%.2fx, target "
               "<= 2)\n", w2, wall, max_domains + 1, WATCH_CONNS + 3,
               wall / w2);
        printf("exporter: scrape p50 %.3f s (%zu bytes gzip; target <= 1), "
               "peak RSS %.1f MB (target <= 64)\n", median(sc, 5), bytes,
               exrss / 1024.0);
        printf("%d clients (%s) each with a read in flight: control "
               "domain's read p99 %.1f us against %.1f us alone (%.2fx, "
               "target <= 3)\n", LOAD_CONNS, root ? "32 guest domains'" :
               "control connections: not root", busy99, alone99,
               busy99 / alone99);
        printf("RESULT domains=%u read_p99_ratio_32k=%.2f create_p99_us_32k="
               "%.0f destroy_p99_us_32k=%.0f rss_kib_per_domain=%.2f "
               "ls_domain_ms_32k=%.1f tree_domain_s_32k=%.3f "
               "watch_p99_ratio_32k=%.2f scrape_p50_s_32k=%.3f "
               "exporter_rss_mb_32k=%.1f clients_1024_p99_ratio=%.2f\n",
               max_domains, r99[2] / r99[0], dc99, dd99,
               (double)(rss - rss0) / max_domains, ls_s * 1e3, tree_s,
               wall / w2, median(sc, 5), exrss / 1024.0, busy99 / alone99);
    }
    (void)busy50;
    (void)alone50;
    (void)r50;
    xenhypfs_close(h);
    xenhypfs_close(w);
    xenhypfs_close(wa);
    xenhypfs_close(wb);
    hypfs_client_close(&c);
    j = daemon_stop(&d);
    d.pid = 0;
    return j ? 1 : 0;
}
