/*
 * hypfs-soak: hypfsd under load for a given time, watched from outside.
 *
 *   hypfs-soak [SECONDS]        (default $HYPFS_SOAK_SECONDS, else 60)
 *
 * A private hypfsd (--test-tree) serves, at once:
 *  - toolstack clients through libxenhypfs: long-lived handles and handles
 *    opened for one call, reading static and dynamic entries, listing,
 *    writing parameters (valid values, whose reads must give one of the
 *    values written, and invalid ones, which must fail with EINVAL);
 *  - the control domain's toolstack creating and destroying cpupools and
 *    domains, moving cpus in and out, pausing domains: every step with the
 *    one result the model allows (-EBUSY included);
 *  - guest processes (when run as root: a user mapped to domain 1) that may
 *    see their own domain and nothing else;
 *  - hostile clients: garbage, lying headers, huge lengths, truncated
 *    frames, disconnects mid-request, slow senders, frames never finished,
 *    replies never read.
 * Every result is checked against the one expected; anything else is
 * counted and shown.  Once a second the daemon's RSS, threads and open
 * descriptors are sampled from /proc.  At the end, with every client gone,
 * its descriptors and threads must be back to where they started, and its
 * RSS must not have grown over the second half of the run by more than
 * RSS_SLACK_KIB (the allocator settles in the first; a leak grows
 * steadily: one of 20 bytes per control command shows in 10 s).  The last
 * line:
 *   RESULT seconds=... requests=... ... unexpected=0
 * Exit status 0 only if every check held.
 */
#include <errno.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenhypfs.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define READERS         6       /* long-lived library handles */
#define OPENERS         2       /* a handle per call */
#define HOSTILE         2
#define GUESTS          2       /* processes, as a mapped user */
#define GUEST_UID       65534
#define RSS_SLACK_KIB   512
#define MAX_SAMPLES     (7 * 24 * 3600)

static struct daemon d;
static atomic_bool stop;
static atomic_long requests, writes, ctl_steps, hostile_conns, stalls;
static atomic_long unexpected;
static unsigned int host_cpus;

static void unexpected_result(const char *who, const char *what, long got)
{
    if (atomic_fetch_add(&unexpected, 1) < 20)
        fprintf(stderr, "unexpected: %s: %s: %ld (%s)\n", who, what, got,
                got < 0 ? strerror((int)-got) : "-");
}

static void sleep_ms(unsigned int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Toolstack clients (libxenhypfs) ---- */

static const char *const levels[] = { "warning", "all/info", "error/debug" };
static const char *const frames[] = { "32", "64", "128" };

static bool one_of(const char *v, const char *const *set, size_t n)
{
    size_t i;

    for (i = 0; v && i < n; i++)
        if (!strcmp(v, set[i]))
            return true;
    return false;
}

/* One call through @h, checked.  @seed drives the choice. */
static void toolstack_call(xenhypfs_handle *h, unsigned int *seed,
                           const char *who)
{
    unsigned int r = (unsigned int)rand_r(seed) % 12;
    struct xenhypfs_dirent *e;
    unsigned int n;
    char path[64], *v;

    switch (r) {
    case 0: case 1:
        v = xenhypfs_read(h, "/params/loglvl");
        if (!one_of(v, levels, 3))
            unexpected_result(who, v ? v : "read /params/loglvl",
                              v ? 0 : -errno);
        free(v);
        break;
    case 2:
        v = xenhypfs_read(h, "/params/gnttab_max_frames");
        if (!one_of(v, frames, 3))
            unexpected_result(who, v ? v : "read gnttab_max_frames",
                              v ? 0 : -errno);
        free(v);
        break;
    case 3:
        if (xenhypfs_write(h, "/params/loglvl", levels[rand_r(seed) % 3]))
            unexpected_result(who, "write /params/loglvl", -errno);
        atomic_fetch_add(&writes, 1);
        break;
    case 4:
        if (xenhypfs_write(h, "/params/gnttab_max_frames",
                           frames[rand_r(seed) % 3]))
            unexpected_result(who, "write gnttab_max_frames", -errno);
        atomic_fetch_add(&writes, 1);
        break;
    case 5:     /* refused, and changes nothing (checked by the reads) */
        if (!xenhypfs_write(h, "/params/loglvl", "loud") || errno != EINVAL)
            unexpected_result(who, "invalid write", -errno);
        break;
    case 6:
        e = xenhypfs_readdir(h, "/domain", &n);
        if (!e || !n)
            unexpected_result(who, "readdir /domain", e ? 0 : -errno);
        free(e);
        break;
    case 7:     /* domains come and go: there, or ENOENT */
        snprintf(path, sizeof(path), "/domain/%u/name",
                 (unsigned int)rand_r(seed) % 64);
        v = xenhypfs_read(h, path);
        if (!v && errno != ENOENT)
            unexpected_result(who, path, -errno);
        free(v);
        break;
    case 8:
        snprintf(path, sizeof(path), "/cpupool/%u/cpus",
                 (unsigned int)rand_r(seed) % 8);
        v = xenhypfs_read(h, path);
        if (!v && errno != ENOENT)
            unexpected_result(who, path, -errno);
        free(v);
        break;
    case 9:
        v = xenhypfs_read(h, "/buildinfo/config");
        if (!v || !strstr(v, "CONFIG_HYPFS=y"))
            unexpected_result(who, "read /buildinfo/config", v ? 0 : -errno);
        free(v);
        break;
    case 10:
        e = xenhypfs_readdir(h, "/test/types", &n);
        if (!e || n < 10)
            unexpected_result(who, "readdir /test/types", e ? 0 : -errno);
        free(e);
        break;
    default:
        v = xenhypfs_read(h, "/domain/0/name");
        if (!v || strcmp(v, "Domain-0"))
            unexpected_result(who, "read /domain/0/name", v ? 0 : -errno);
        free(v);
    }
    atomic_fetch_add(&requests, 1);
}

static void *reader(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 7919u + 1;
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);

    if (!h) {
        unexpected_result("reader", "open", -errno);
        return NULL;
    }
    while (!atomic_load(&stop))
        toolstack_call(h, &seed, "reader");
    xenhypfs_close(h);
    return NULL;
}

static void *opener(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 104729u + 3;

    while (!atomic_load(&stop)) {
        xenhypfs_handle *h = xenhypfs_open(NULL, 0);

        if (!h) {
            unexpected_result("opener", "open", -errno);
            sleep_ms(10);
            continue;
        }
        toolstack_call(h, &seed, "opener");
        xenhypfs_close(h);
    }
    return NULL;
}

/* ---- The control domain's toolstack ---- */

static struct hypfs_client ctl_client;

/* Run a command; its status must be @expect.  Its output in @out. */
static void ctl_expect(int expect, char *out, size_t outlen,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void ctl_expect(int expect, char *out, size_t outlen,
                       const char *fmt, ...)
{
    char line[256], *words[8], *save = NULL, *w;
    const char *text;
    uint32_t len;
    va_list ap;
    int argc = 0, status, err;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    for (w = strtok_r(line, " ", &save); w && argc < 8;
         w = strtok_r(NULL, " ", &save))
        words[argc++] = w;
    err = hypfs_client_ctl(&ctl_client, argc, (const char *const *)words, &status,
                     &text, &len);
    if (err)
        unexpected_result("control", words[0], err);
    else if (status != expect)
        unexpected_result("control", words[0], status);
    else if (out)
        snprintf(out, outlen, "%.*s", (int)len, text);
    atomic_fetch_add(&ctl_steps, 1);
}

/*
 * One cycle of a toolstack's life: a pool, a cpu lent to it, a domain in
 * it, and all of it taken back.  Every step has exactly one right result.
 */
static void ctl_cycle(xenhypfs_handle *h, unsigned int n)
{
    char pool[16] = "", dom[16] = "", path[64];
    unsigned int cpu = host_cpus - 1;
    bool lend = host_cpus > 1;
    char *v;

    ctl_expect(0, pool, sizeof(pool), "pool-create name=soak%u sched=credit2",
               n);
    pool[strcspn(pool, "\n")] = '\0';
    /* Without cpus the granularity may change; with them it may not. */
    snprintf(path, sizeof(path), "/cpupool/%s/sched-gran", pool);
    if (xenhypfs_write(h, path, n % 2 ? "core" : "socket"))
        unexpected_result("control", "sched-gran of an empty pool", -errno);
    if (lend) {
        ctl_expect(0, NULL, 0, "cpu-move cpu=%u pool=%s", cpu, pool);
        if (!xenhypfs_write(h, path, "cpu") || errno != EBUSY)
            unexpected_result("control", "sched-gran of a busy pool", -errno);
    }
    ctl_expect(0, dom, sizeof(dom), "domain-create name=churn%u pool=%s "
               "vcpus=%u", n, pool, n % 4 + 1);
    dom[strcspn(dom, "\n")] = '\0';
    snprintf(path, sizeof(path), "/domain/%s/cpupool", dom);
    v = xenhypfs_read(h, path);
    if (!v || strcmp(v, pool))
        unexpected_result("control", "the new domain's pool", v ? 0 : -errno);
    free(v);
    ctl_expect(0, NULL, 0, "domain-pause id=%s", dom);
    ctl_expect(-EBUSY, NULL, 0, "pool-destroy id=%s", pool);
    ctl_expect(0, NULL, 0, "domain-unpause id=%s", dom);
    ctl_expect(0, NULL, 0, "domain-list");
    ctl_expect(0, NULL, 0, "domain-destroy id=%s", dom);
    ctl_expect(-ENOENT, NULL, 0, "domain-destroy id=%s", dom);
    if (lend)
        ctl_expect(0, NULL, 0, "cpu-move cpu=%u pool=0", cpu);
    ctl_expect(0, NULL, 0, "pool-destroy id=%s", pool);
    ctl_expect(0, NULL, 0, "pool-list");
}

static void *controller(void *arg)
{
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);
    unsigned int n = 0;

    (void)arg;
    if (!h || tclient_open(&ctl_client, d.socket)) {
        unexpected_result("control", "open", -errno);
        xenhypfs_close(h);
        return NULL;
    }
    while (!atomic_load(&stop))
        ctl_cycle(h, n++);
    hypfs_client_close(&ctl_client);
    xenhypfs_close(h);
    return NULL;
}

/* ---- Guests: a user mapped to domain 1 ---- */

struct guest_report {
    long requests, unexpected;
};

static void guest_process(int out_fd, double until)
{
    struct guest_report rep = { 0, 0 };
    xenhypfs_handle *h;

    if (setgid(GUEST_UID) || setuid(GUEST_UID))
        _exit(2);
    h = xenhypfs_open(NULL, 0);
    if (!h)
        _exit(3);
    while (now() < until) {
        struct xenhypfs_dirent *e;
        unsigned int n;
        char *v = xenhypfs_read(h, "/domain/1/name");

        rep.unexpected += !v || strcmp(v, "soak-guest");
        free(v);
        /* Its own directory is all it sees of /domain. */
        e = xenhypfs_readdir(h, "/domain", &n);
        rep.unexpected += !e || n != 1 || strcmp(e[0].name, "1");
        free(e);
        v = xenhypfs_read(h, "/domain/0/name");
        rep.unexpected += v || errno != ENOENT;
        free(v);
        rep.unexpected += !xenhypfs_write(h, "/domain/1/name", "x") ||
                          errno != EACCES;
        v = xenhypfs_read(h, "/params/loglvl");
        rep.unexpected += v || errno != ENOENT;
        free(v);
        rep.requests += 5;
    }
    xenhypfs_close(h);
    _exit(write(out_fd, &rep, sizeof(rep)) == sizeof(rep) ? 0 : 4);
}

/* ---- Hostile clients ---- */

static int raw_connect(void)
{
    return hypfs_client_connect_path(d.socket);
}

/* Does the daemon close @fd within @ms, sending nothing? */
static bool closed_by_daemon(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char b[64];

    return poll(&p, 1, ms) == 1 && read(fd, b, sizeof(b)) == 0;
}

static struct hypfs_msg_hdr frame_hdr(uint16_t type, uint32_t len)
{
    struct hypfs_msg_hdr h = {
        .magic = HYPFS_MSG_MAGIC, .version = HYPFS_MSG_VERSION,
        .type = type, .len = len, .seq = 1,
    };
    return h;
}

struct read_frame {
    struct hypfs_msg_hdr h;
    struct hypfs_msg_op op;
    char path[2];
};

static struct read_frame root_read(uint32_t bufsize)
{
    struct read_frame f;

    memset(&f, 0, sizeof(f));
    f.h = frame_hdr(HYPFS_MSG_OP, sizeof(f.op) + 2);
    f.op.cmd = XEN_HYPFS_OP_read;
    f.op.arg1 = 1;
    f.op.arg2 = 2;
    f.op.arg3 = 2;
    f.op.arg4 = bufsize;
    f.op.path_len = 2;
    memcpy(f.path, "/", 2);
    return f;
}

/* A frame never finished: the daemon ends it after its 5 s. */
static void *staller(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        struct hypfs_msg_hdr h = frame_hdr(HYPFS_MSG_OP, 100);
        int fd = raw_connect();

        if (fd < 0 || write(fd, &h, sizeof(h)) != sizeof(h) ||
            !closed_by_daemon(fd, 15000))
            unexpected_result("hostile", "stalled frame not cut off", -1);
        if (fd >= 0)
            close(fd);
        atomic_fetch_add(&stalls, 1);
    }
    return NULL;
}

static void *hostile(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg * 31337u + 5;

    while (!atomic_load(&stop)) {
        struct read_frame f = root_read(65536);
        struct hypfs_msg_hdr h;
        int fd = raw_connect(), i, kind = rand_r(&seed) % 7;
        uint8_t junk[512];
        bool must_close = true;

        if (fd < 0) {
            unexpected_result("hostile", "connect", fd);
            sleep_ms(10);
            continue;
        }
        for (i = 0; i < (int)sizeof(junk); i++)
            junk[i] = (uint8_t)rand_r(&seed);
        switch (kind) {
        case 0:     /* garbage */
            must_close = write(fd, junk, sizeof(junk)) == sizeof(junk);
            break;
        case 1:     /* a header that lies about its length */
            h = frame_hdr(HYPFS_MSG_OP, 0xfffffff0u);
            must_close = write(fd, &h, sizeof(h)) == sizeof(h);
            break;
        case 2:     /* a wrong version */
            h = frame_hdr(HYPFS_MSG_OP, 8);
            h.version = 99;
            must_close = write(fd, &h, sizeof(h)) == sizeof(h);
            break;
        case 3:     /* half a frame, then gone */
            if (write(fd, &f, sizeof(f) / 2) < 0) {
                /* gone anyway */
            }
            must_close = false;
            break;
        case 4:     /* a request, gone before the reply */
            if (write(fd, &f, sizeof(f)) < 0) {
                /* gone anyway */
            }
            must_close = false;
            break;
        case 5: {   /* a slow sender: answered all the same */
            uint8_t reply[64];

            for (i = 0; i < (int)sizeof(f); i += 8) {
                if (write(fd, (uint8_t *)&f + i,
                          sizeof(f) - (size_t)i < 8 ? sizeof(f) - (size_t)i : 8) < 0)
                    break;
                sleep_ms(2);
            }
            if (hypfs_msg_read_all(fd, reply, sizeof(struct hypfs_msg_hdr)))
                unexpected_result("hostile", "slow sender not answered", -1);
            must_close = false;
            break;
        }
        default:    /* requests piled up, replies never read */
            for (i = 0; i < 200; i++)
                if (send(fd, &f, sizeof(f), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                    break;
            must_close = false;
        }
        if (must_close && !closed_by_daemon(fd, 10000))
            unexpected_result("hostile", "protocol violation not cut off",
                              kind);
        close(fd);
        atomic_fetch_add(&hostile_conns, 1);
    }
    return NULL;
}

/* ---- The daemon, from /proc ---- */

struct sample {
    long rss_kib, threads, fds;
};

static int proc_sample(pid_t pid, struct sample *s)
{
    char path[64], line[256];
    struct dirent *de;
    FILE *f;
    DIR *dir;

    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "VmRSS: %ld", &s->rss_kib);
        sscanf(line, "Threads: %ld", &s->threads);
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((de = readdir(dir)))
        s->fds += de->d_name[0] != '.';
    closedir(dir);
    return 0;
}

/* Average RSS of samples [from, to). */
static long rss_avg(const struct sample *s, size_t from, size_t to)
{
    long sum = 0;
    size_t i;

    for (i = from; i < to; i++)
        sum += s[i].rss_kib;
    return to > from ? sum / (long)(to - from) : 0;
}

int main(int argc, char **argv)
{
    const char *env = getenv("HYPFS_SOAK_SECONDS");
    double seconds = argc > 1 ? atof(argv[1]) : env ? atof(env) : 60;
    static const char *const args[] = { "--test-tree", "--quiet", NULL };
    char config[64];
    pthread_t threads[READERS + OPENERS + HOSTILE + 2];
    pid_t guests[GUESTS];
    int guest_pipe[2] = { -1, -1 };
    struct sample base, end, *samples;
    size_t nsamples = 0, i, nthreads = 0;
    long guest_requests = 0, rss_mid, rss_last, rss_max = 0;
    bool as_root = geteuid() == 0, ok = true;
    double t0, until;
    unsigned int g;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (seconds < 4) {
        fprintf(stderr, "usage: hypfs-soak [SECONDS >= 4]\n");
        return 2;
    }
    samples = calloc(MAX_SAMPLES, sizeof(*samples));
    host_cpus = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(config, sizeof(config), "map %d 1\n", GUEST_UID);
    if (!samples || daemon_start(&d, as_root ? config : NULL, args))
        return 1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    setenv("HYPFS_TRANSPORT", "socket", 1);
    {
        /* Domain 1, the one the guests' user is mapped to. */
        const char *add[] = { "domain-create", "name=soak-guest" };
        const char *text;
        uint32_t len;
        int st = -1;

        if (tclient_open(&ctl_client, d.socket) ||
            hypfs_client_ctl(&ctl_client, 2, add, &st, &text, &len) || st ||
            len != 2 || memcmp(text, "1\n", 2)) {
            fprintf(stderr, "cannot create the guests' domain\n");
            daemon_stop(&d);
            return 1;
        }
        hypfs_client_close(&ctl_client);
    }
    sleep_ms(200);
    if (proc_sample(d.pid, &base)) {
        daemon_stop(&d);
        return 1;
    }

    t0 = now();
    until = t0 + seconds;
    if (as_root) {
        if (pipe(guest_pipe))
            return 1;
        for (g = 0; g < GUESTS; g++) {
            guests[g] = fork();
            if (!guests[g]) {
                close(guest_pipe[0]);
                guest_process(guest_pipe[1], until);
            }
        }
        close(guest_pipe[1]);
    } else {
        printf("not root: no guest processes (a second user is needed)\n");
    }
    for (i = 0; i < READERS; i++)
        pthread_create(&threads[nthreads++], NULL, reader,
                       (void *)(uintptr_t)(i + 1));
    for (i = 0; i < OPENERS; i++)
        pthread_create(&threads[nthreads++], NULL, opener,
                       (void *)(uintptr_t)(i + 1));
    for (i = 0; i < HOSTILE; i++)
        pthread_create(&threads[nthreads++], NULL, hostile,
                       (void *)(uintptr_t)(i + 1));
    pthread_create(&threads[nthreads++], NULL, staller, NULL);
    pthread_create(&threads[nthreads++], NULL, controller, NULL);

    while (now() < until && nsamples < MAX_SAMPLES) {
        sleep_ms(1000);
        if (proc_sample(d.pid, &samples[nsamples])) {
            fprintf(stderr, "hypfsd is gone\n");
            ok = false;
            break;
        }
        if (getenv("HYPFS_SOAK_TRACE"))
            printf("t=%.0f rss_kib=%ld threads=%ld fds=%ld requests=%ld\n",
                   now() - t0, samples[nsamples].rss_kib,
                   samples[nsamples].threads, samples[nsamples].fds,
                   atomic_load(&requests));
        if (samples[nsamples].rss_kib > rss_max)
            rss_max = samples[nsamples].rss_kib;
        nsamples++;
    }
    atomic_store(&stop, true);
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (as_root) {
        for (g = 0; g < GUESTS; g++) {
            struct guest_report rep;

            if (read(guest_pipe[0], &rep, sizeof(rep)) != sizeof(rep)) {
                unexpected_result("guest", "no report", -1);
                continue;
            }
            guest_requests += rep.requests;
            if (rep.unexpected)
                unexpected_result("guest", "results", rep.unexpected);
        }
        for (g = 0; g < GUESTS; g++) {
            int st;

            if (waitpid(guests[g], &st, 0) != guests[g] || !WIFEXITED(st) ||
                WEXITSTATUS(st))
                unexpected_result("guest", "exit status", -1);
        }
        close(guest_pipe[0]);
    }

    /* Every connection gone: the daemon is back where it started. */
    for (i = 0; i < 50; i++) {
        sleep_ms(100);
        if (!proc_sample(d.pid, &end) && end.fds == base.fds &&
            end.threads == base.threads)
            break;
    }
    rss_mid = rss_avg(samples, nsamples / 2, nsamples / 2 + 3 < nsamples ?
                      nsamples / 2 + 3 : nsamples);
    rss_last = rss_avg(samples, nsamples > 3 ? nsamples - 3 : 0, nsamples);

    printf("daemon:   rss %ld KiB at start, %ld half-way, %ld at the end "
           "(max %ld); fds %ld -> %ld; threads %ld -> %ld\n",
           base.rss_kib, rss_mid, rss_last, rss_max, base.fds, end.fds,
           base.threads, end.threads);
    printf("clients:  %ld toolstack calls (%ld writes), %ld control steps, "
           "%ld guest calls, %ld hostile connections, %ld stalled frames\n",
           atomic_load(&requests), atomic_load(&writes),
           atomic_load(&ctl_steps), guest_requests,
           atomic_load(&hostile_conns), atomic_load(&stalls));
    if (end.fds != base.fds || end.threads != base.threads) {
        fprintf(stderr, "FAIL: descriptors or threads not back to start\n");
        ok = false;
    }
    if (rss_last - rss_mid > RSS_SLACK_KIB) {
        fprintf(stderr, "FAIL: RSS grew by %ld KiB over the second half\n",
                rss_last - rss_mid);
        ok = false;
    }
    if (atomic_load(&unexpected)) {
        fprintf(stderr, "FAIL: %ld unexpected results\n",
                atomic_load(&unexpected));
        ok = false;
    }
    if (daemon_stop(&d)) {
        fprintf(stderr, "FAIL: hypfsd did not stop cleanly\n");
        ok = false;
    }
    printf("RESULT seconds=%.0f requests=%ld control=%ld guest=%ld "
           "hostile=%ld rss_start_kib=%ld rss_mid_kib=%ld rss_end_kib=%ld "
           "rss_max_kib=%ld fds_start=%ld fds_end=%ld unexpected=%ld\n",
           now() - t0, atomic_load(&requests), atomic_load(&ctl_steps),
           guest_requests, atomic_load(&hostile_conns), base.rss_kib,
           rss_mid, rss_last, rss_max, base.fds, end.fds,
           atomic_load(&unexpected));
    free(samples);
    return ok ? 0 : 1;
}
