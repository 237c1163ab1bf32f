/*
 * bench-channel: the cost of a hypercall through hypfsd's socket.
 *
 * A read of a small leaf (/params/gnttab_max_frames, "64") through the channel,
 * against a raw Unix-socket ping-pong that moves frames of exactly the same
 * sizes between two processes the same way (one thread per connection,
 * one read and one write per round trip): the difference is what hypfs
 * costs.  Both are measured in this run, in alternating rounds:
 *   latency     p50 and p99 of single round trips, one client, client
 *               and servers on one CPU (see pin() for why);
 *   throughput  round trips per second with 1 and with 4 clients.
 *
 * Run by hand: build/bench/bench-channel [--quick].  hypfsd is taken from
 * $HYPFSD or next to this program in the build tree.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define LEAF "/params/gnttab_max_frames"

static struct daemon d;
static size_t req_size, reply_size;
static char raw_path[PATH_MAX];

/* ---- One round trip, either way ---- */

struct conn {
    struct hypfs_client c;      /* channel */
    int fd;                     /* raw */
    unsigned char buf[4096];
};

static int channel_open(struct conn *k)
{
    return tclient_open(&k->c, d.socket);
}

static void channel_trip(struct conn *k)
{
    struct hypfs_msg_op op = {
        .cmd = XEN_HYPFS_OP_read, .arg1 = 0x1000, .arg2 = sizeof(LEAF),
        .arg3 = 0x100000, .arg4 = 64, .path_len = sizeof(LEAF),
    };
    const uint8_t *out;
    uint32_t out_len;
    long ret;

    if (tclient_op(&k->c, &op, LEAF, NULL, &ret, &out, &out_len) || ret ||
        out_len != 16) {
        fprintf(stderr, "channel read failed\n");
        exit(1);
    }
}

static int raw_open(struct conn *k)
{
    k->fd = hypfs_client_connect_path(raw_path);
    return k->fd < 0;
}

static void raw_trip(struct conn *k)
{
    size_t got = 0;

    memset(k->buf, 0x5a, req_size);
    if (hypfs_msg_write_all(k->fd, k->buf, req_size))
        exit(1);
    while (got < reply_size) {
        ssize_t n = read(k->fd, k->buf + got, sizeof(k->buf) - got);

        if (n <= 0)
            exit(1);
        got += (size_t)n;
    }
}

/* The raw peer: another process, a thread per connection, read and write. */
static void *raw_serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char buf[8192];

    for (;;) {
        size_t got = 0;

        while (got < req_size) {
            ssize_t n = read(fd, buf + got, sizeof(buf) - got);

            if (n <= 0) {
                close(fd);
                return NULL;
            }
            got += (size_t)n;
        }
        if (hypfs_msg_write_all(fd, buf, reply_size))
            break;
    }
    close(fd);
    return NULL;
}

static pid_t raw_server_start(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    pid_t pid;

    if (snprintf(raw_path, sizeof(raw_path), "%s/raw.sock", d.dir) >=
        (int)sizeof(raw_path))
        exit(1);
    memcpy(sa.sun_path, raw_path, strlen(raw_path) + 1);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
        listen(lfd, 16))
        exit(1);
    pid = fork();
    if (!pid) {
        for (;;) {
            int fd = accept(lfd, NULL, NULL);
            pthread_t t;

            if (fd >= 0)
                pthread_create(&t, NULL, raw_serve, (void *)(intptr_t)fd);
        }
    }
    close(lfd);
    return pid;
}

/* ---- Measurements ---- */

typedef void (*trip_fn)(struct conn *);
typedef int (*open_fn)(struct conn *);

/*
 * Latency of both, interleaved in blocks of 250 round trips on connections
 * opened beforehand, so that whatever the machine does meanwhile falls on
 * both alike.
 */
static void latency(int n, double *ch50, double *ch99, double *raw50,
                    double *raw99)
{
    struct conn *ch = calloc(1, sizeof(*ch)), *raw = calloc(1, sizeof(*raw));
    double *tc = malloc((size_t)n * sizeof(*tc));
    double *tr = malloc((size_t)n * sizeof(*tr));
    int i, j;

    if (!ch || !raw || !tc || !tr || channel_open(ch) || raw_open(raw))
        exit(1);
    for (i = 0; i < 1000; i++) {        /* warm up */
        channel_trip(ch);
        raw_trip(raw);
    }
    for (i = 0; i < n; i += 250) {
        for (j = i; j < n && j < i + 250; j++) {
            double t0 = now_us();

            channel_trip(ch);
            tc[j] = now_us() - t0;
        }
        for (j = i; j < n && j < i + 250; j++) {
            double t0 = now_us();

            raw_trip(raw);
            tr[j] = now_us() - t0;
        }
    }
    *ch50 = percentile(tc, n, 50);
    *ch99 = percentile(tc, n, 99);
    *raw50 = percentile(tr, n, 50);
    *raw99 = percentile(tr, n, 99);
    hypfs_client_close(&ch->c);
    close(raw->fd);
    free(tc);
    free(tr);
    free(ch);
    free(raw);
}

struct tput {
    open_fn op;
    trip_fn trip;
    atomic_int *go, *stop;
    long count;
};

static void *tput_thread(void *arg)
{
    struct tput *p = arg;
    struct conn *k = calloc(1, sizeof(*k));

    if (!k || p->op(k))
        exit(1);
    while (!atomic_load(p->go))
        ;
    while (!atomic_load(p->stop)) {
        p->trip(k);
        p->count++;
    }
    if (p->trip == channel_trip)
        hypfs_client_close(&k->c);
    else
        close(k->fd);
    free(k);
    return NULL;
}

static double throughput_slice(open_fn op, trip_fn trip, int clients,
                               double secs)
{
    pthread_t t[8];
    struct tput p[8];
    atomic_int go = 0, stop = 0;
    struct timespec ts = { (time_t)secs, (long)((secs - (time_t)secs) * 1e9) };
    double t0, total = 0;
    int i;

    for (i = 0; i < clients; i++) {
        p[i] = (struct tput){ op, trip, &go, &stop, 0 };
        pthread_create(&t[i], NULL, tput_thread, &p[i]);
    }
    usleep(50000);
    t0 = now_us();
    atomic_store(&go, 1);
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        total += (double)p[i].count;
    }
    return total / ((now_us() - t0) / 1e6);
}

/*
 * Round trips per second of both, in alternating slices of secs/4, so that
 * a slow moment of the machine falls on both alike.
 */
static void throughput(int clients, double secs, double *ch, double *raw)
{
    int i;

    *ch = *raw = 0;
    for (i = 0; i < 4; i++) {
        *ch += throughput_slice(channel_open, channel_trip, clients, secs / 4);
        *raw += throughput_slice(raw_open, raw_trip, clients, secs / 4);
    }
    *ch /= 4;
    *raw /= 4;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int rounds = quick ? 3 : 5, n = quick ? 5000 : 20000, r;
    double secs = quick ? 0.5 : 2.0;
    double ch50[5], ch99[5], raw50[5], raw99[5];
    double ch1[5], raw1[5], ch4[5], raw4[5];
    const char *args[] = { "-q", NULL };
    pid_t raw_pid;

    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    if (daemon_start(&d, NULL, args)) {
        fprintf(stderr, "cannot start hypfsd (set $HYPFSD)\n");
        return 1;
    }
    req_size = sizeof(struct hypfs_msg_hdr) + sizeof(struct hypfs_msg_op) +
               sizeof(LEAF);
    reply_size = sizeof(struct hypfs_msg_hdr) +
                 sizeof(struct hypfs_msg_op_reply) + 12 + 4;
    raw_pid = raw_server_start();

    /* Alternate the two in every round, so drift hits both alike. */
    for (r = 0; r < rounds; r++) {
        pin(0, 0);
        pin(d.pid, 0);
        pin(raw_pid, 0);
        latency(n, &ch50[r], &ch99[r], &raw50[r], &raw99[r]);
        pin(0, -1);
        pin(d.pid, -1);
        pin(raw_pid, -1);
        throughput(1, secs, &ch1[r], &raw1[r]);
        throughput(4, secs, &ch4[r], &raw4[r]);
        fprintf(stderr, "round %d: p50 %.2f/%.2f us, p99 %.2f/%.2f us, "
                "1 client %.0f/%.0f/s, 4 clients %.0f/%.0f/s\n", r + 1,
                ch50[r], raw50[r], ch99[r], raw99[r], ch1[r], raw1[r], ch4[r],
                raw4[r]);
    }
    kill(raw_pid, SIGKILL);
    waitpid(raw_pid, NULL, 0);
    daemon_stop(&d);

    printf("frames: request %zu bytes, reply %zu bytes; %d rounds, median\n",
           req_size, reply_size, rounds);
    printf("%-28s %12s %12s %8s\n", "", "hypfsd", "raw socket", "ratio");
    printf("%-28s %12.2f %12.2f %8.2f\n", "round trip p50 (us)",
           median(ch50, rounds), median(raw50, rounds),
           median(ch50, rounds) / median(raw50, rounds));
    printf("%-28s %12.2f %12.2f %8.2f\n", "round trip p99 (us)",
           median(ch99, rounds), median(raw99, rounds),
           median(ch99, rounds) / median(raw99, rounds));
    printf("%-28s %12.0f %12.0f %8.2f\n", "reads/s, 1 client",
           median(ch1, rounds), median(raw1, rounds),
           median(ch1, rounds) / median(raw1, rounds));
    printf("%-28s %12.0f %12.0f %8.2f\n", "reads/s, 4 clients",
           median(ch4, rounds), median(raw4, rounds),
           median(ch4, rounds) / median(raw4, rounds));
    printf("RESULT read_p50_us=%.2f raw_p50_us=%.2f ratio_p50=%.2f "
           "reads_per_s_4=%.0f raw_per_s_4=%.0f read_p99_us=%.2f "
           "raw_p99_us=%.2f reads_per_s_1=%.0f raw_per_s_1=%.0f\n",
           median(ch50, rounds), median(raw50, rounds),
           median(ch50, rounds) / median(raw50, rounds),
           median(ch4, rounds), median(raw4, rounds), median(ch99, rounds),
           median(raw99, rounds), median(ch1, rounds), median(raw1, rounds));
    return 0;
}
