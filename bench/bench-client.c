/*
 * bench-client: what the toolstack sees.
 *
 *   tree_100k   wall time of `xenhypfs tree` over a tree of over 100,000
 *               entries (14,300 domains of 7 entries), output discarded:
 *               through one subtree read (interface version 2), and
 *               through the version-1 walk ($XENHYPFS_V1), same run;
 *   watch       from a write's reply to its watcher's wake-up (event
 *               descriptor readable, event taken), p50, against a read's
 *               round trip p50; and 1,000 watchers of one path, each on
 *               its own connection: all woken, p99 of their wake-ups;
 *   lib read    p50 of xenhypfs_read() of a 4-byte leaf, in-process;
 *   channel     p50 of the same hypercall sent raw through the channel,
 *               measured interleaved with the library's, so that the
 *               difference is the library's own cost (client and daemon
 *               on one CPU: see pin() in bench-util.h).
 *
 * Run by hand: build/bench/bench-client [--quick].  hypfsd and xenhypfs are
 * taken from $HYPFSD / $XENHYPFS or the build tree around this program.
 */
#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenhypfs.h>

#include "bench-util.h"
#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define LEAF "/params/gnttab_max_frames"
#define DOMAINS 14300u
#define WATCHERS 1000

static void write_leaf(xenhypfs_handle *h, int v)
{
    char val[16];

    snprintf(val, sizeof(val), "%d", 16 + v % 1000);
    if (xenhypfs_write(h, LEAF, val)) {
        perror("write");
        exit(1);
    }
}

/* Take every event waiting on @h; how many. */
static int take_events(xenhypfs_handle *h)
{
    struct xenhypfs_event ev[16];
    int n, total = 0;

    while ((n = xenhypfs_read_events(h, ev, 16)) > 0)
        total += n;
    return total;
}

/*
 * Watch latency: @n writes by @w, each timed from its reply to the
 * watcher @h's wake-up (its descriptor readable and the event taken).
 */
static void watch_latency(xenhypfs_handle *w, xenhypfs_handle *h, int n,
                          double *t)
{
    struct pollfd p = { .fd = xenhypfs_event_fd(h), .events = POLLIN };
    uint64_t g;
    int i;

    if (p.fd < 0 || xenhypfs_get_generation(h, LEAF, &g) ||
        xenhypfs_watch(h, LEAF, 1, g))
        exit(1);
    for (i = 0; i < n; i++) {
        double t0;

        write_leaf(w, i);
        t0 = now_us();
        while (!take_events(h))
            if (poll(&p, 1, 5000) <= 0) {
                fprintf(stderr, "no event within 5 s\n");
                exit(1);
            }
        t[i] = now_us() - t0;
    }
    xenhypfs_unwatch(h, 1);
}

/*
 * 1,000 watchers of LEAF, each on its own connection, all in one epoll
 * set: after one write, when each was woken.  @t gets the wake-up times
 * (us after the reply); returns how many were woken within 10 s.
 */
static int many_watchers(const char *socket, double *t)
{
    xenhypfs_handle *hs[WATCHERS], *w;
    struct rlimit rl = { 8192, 8192 };
    int ep = epoll_create1(0), i, woken = 0;
    double t0;

    setrlimit(RLIMIT_NOFILE, &rl);
    (void)socket;
    for (i = 0; i < WATCHERS; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        uint64_t g;

        hs[i] = xenhypfs_open(NULL, 0);
        if (!hs[i] || xenhypfs_get_generation(hs[i], LEAF, &g) ||
            xenhypfs_watch(hs[i], LEAF, 1, g) ||
            epoll_ctl(ep, EPOLL_CTL_ADD, xenhypfs_event_fd(hs[i]), &ev)) {
            perror("watcher");
            exit(1);
        }
        t[i] = -1;
    }
    w = xenhypfs_open(NULL, 0);
    write_leaf(w, 7);
    t0 = now_us();
    while (woken < WATCHERS) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10000), k;

        if (n <= 0)
            break;
        for (k = 0; k < n; k++) {
            int id = (int)evs[k].data.u32;

            if (take_events(hs[id]) && t[id] < 0) {
                t[id] = now_us() - t0;
                woken++;
            }
        }
    }
    for (i = 0; i < WATCHERS; i++)
        xenhypfs_close(hs[i]);
    xenhypfs_close(w);
    close(ep);
    return woken;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int rounds = quick ? 3 : 5, n = quick ? 5000 : 20000, i, j, r, woken;
    const char *args[] = { "-q", "--max-control-clients", "2000", NULL };
    const char *xenhypfs;
    double tree[5], tree1[5], *tl, *tc, *tw, tm[WATCHERS];
    int nw = quick ? 500 : 2000;
    struct daemon d;
    struct hypfs_client c;
    xenhypfs_handle *h;
    unsigned int lines = 0;

    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    xenhypfs = program_path("XENHYPFS",
                            strdup(sibling_program(argv[0], "../src/cli/xenhypfs")));
    if (daemon_start(&d, NULL, args))
        return 1;
    if (create_domains(d.socket, "bench-domain-", DOMAINS))
        return 1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    setenv("HYPFS_TRANSPORT", "socket", 1);

    /* Count what tree prints, once, to report it. */
    {
        char cmd[8192];
        FILE *p;
        int ch;

        snprintf(cmd, sizeof(cmd), "HYPFS_SOCKET='%s' '%s' tree", d.socket,
                 xenhypfs);
        p = popen(cmd, "r");
        while (p && (ch = fgetc(p)) != EOF)
            lines += ch == '\n';
        if (p)
            pclose(p);
    }
    for (r = 0; r < rounds; r++) {
        const char *tree_argv[] = { xenhypfs, "tree", NULL };

        tree[r] = run_quiet(tree_argv) / 1e6;   /* HYPFS_SOCKET set above */
        setenv("XENHYPFS_V1", "1", 1);
        tree1[r] = run_quiet(tree_argv) / 1e6;
        unsetenv("XENHYPFS_V1");
    }

    pin(0, 0);
    pin(d.pid, 0);
    h = xenhypfs_open(NULL, 0);
    tl = malloc((size_t)n * sizeof(*tl));
    tc = malloc((size_t)n * sizeof(*tc));
    if (!h || !tl || !tc || tclient_open(&c, d.socket))
        return 1;
    for (i = 0; i < n; i += 250) {
        for (j = i; j < n && j < i + 250; j++) {
            double t0 = now_us();
            char *v = xenhypfs_read(h, LEAF);

            tl[j] = now_us() - t0;
            if (!v)
                return 1;
            free(v);
        }
        for (j = i; j < n && j < i + 250; j++) {
            struct hypfs_msg_op op = {
                .cmd = XEN_HYPFS_OP_read, .arg1 = 0x1000,
                .arg2 = sizeof(LEAF), .arg3 = 0x100000, .arg4 = 4096,
                .path_len = sizeof(LEAF),
            };
            const uint8_t *out;
            uint32_t out_len;
            long ret;
            double t0 = now_us();

            if (tclient_op(&c, &op, LEAF, NULL, &ret, &out, &out_len) || ret)
                return 1;
            tc[j] = now_us() - t0;
        }
    }
    {
        xenhypfs_handle *w = xenhypfs_open(NULL, 0);

        tw = malloc((size_t)nw * sizeof(*tw));
        if (!w || !tw)
            return 1;
        pin_all(d.pid, 0);
        watch_latency(w, h, nw, tw);
        xenhypfs_close(w);
    }
    pin_all(d.pid, -1);
    pin(0, -1);
    woken = many_watchers(d.socket, tm);
    hypfs_client_close(&c);
    xenhypfs_close(h);
    daemon_stop(&d);

    printf("xenhypfs tree over %u entries: %.3f s through one subtree read, "
           "%.3f s through the version-1 walk (%.1fx; medians of %d)\n",
           lines, median(tree, rounds), median(tree1, rounds),
           median(tree1, rounds) / median(tree, rounds), rounds);
    printf("watch: a write's reply to its watcher's wake-up p50 %.2f us "
           "(%.2fx a read's round trip)\n", percentile(tw, nw, 50),
           percentile(tw, nw, 50) / percentile(tl, n, 50));
    printf("1000 watchers of one path: %d woken, p50 %.0f us, p99 %.0f us\n",
           woken, percentile(tm, WATCHERS, 50), percentile(tm, WATCHERS, 99));
    printf("xenhypfs_read() p50 %.2f us, raw channel p50 %.2f us (%.2fx)\n",
           percentile(tl, n, 50), percentile(tc, n, 50),
           percentile(tl, n, 50) / percentile(tc, n, 50));
    printf("RESULT tree_v2_speedup=%.1f watch_p50_ratio=%.2f "
           "watch_1000_p99_us=%.0f watch_1000_woken=%d tree_100k_s=%.3f "
           "tree_100k_v1_s=%.3f lib_read_p50_us=%.2f channel_p50_us=%.2f "
           "watch_p50_us=%.2f tree_entries=%u\n",
           median(tree1, rounds) / median(tree, rounds),
           percentile(tw, nw, 50) / percentile(tl, n, 50),
           percentile(tm, WATCHERS, 99), woken, median(tree, rounds),
           median(tree1, rounds), percentile(tl, n, 50),
           percentile(tc, n, 50), percentile(tw, nw, 50), lines);
    return 0;
}
