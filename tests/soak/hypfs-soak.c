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
 * descriptors are sampled from /proc (shown, not judged).  At the end,
 * with every client gone, its descriptors and threads must be back to
 * where they started, and the heap it has in use (hypfsctl stats: the C
 * library's allocations in use, which is what a leak grows; not RSS, which
 * glibc's bounded caches of thread stacks and arenas move under load) must
 * be where the first of two equal halves of the run left it (the first
 * lays down what the daemon keeps for good: glibc's arenas, grown
 * arrays): the same model state, the same one connection asking, within
 * a bound derived from the run (HEAP_SLACK_BYTES, ARENA_BYTES for every
 * arena glibc made in the second half, THREAD_BYTES for every thread
 * beyond the most there were at once in the first).  A leak of one 16-byte
 * allocation per thousand requests grows it by tens of KiB in a minute's
 * run.  The last line:
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
/*
 * What may differ between two quiet moments without a leak: a little for
 * the allocator's bookkeeping, and for every arena glibc made meanwhile
 * (one more thread contending), its fixed header (a few KiB, counted as
 * in use).  The little was 1 KiB until a CI run on a loaded machine saw
 * 1.8 KiB beyond what its threads explain (2352 bytes, one thread more);
 * 4 KiB still leaves a leak of one 16-byte allocation per thousand
 * requests (8 KiB in a half of a minute's run, 500,000 requests) caught.
 */
#define HEAP_SLACK_BYTES  4096
#define ARENA_BYTES       (8 * 1024)
/*
 * And for every thread more than ever before at once: glibc keeps the
 * stacks of ended threads for reuse, each with its thread-local storage
 * vector, allocated on the heap.
 */
#define THREAD_BYTES      512
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
/* How they read back: Xen's form, both levels, "debug" shown as "all". */
static const char *const shown[] = { "warning/warning", "all/all", "error/all" };
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
        if (!one_of(v, shown, 3))
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

/*
 * The memory hypfsd has in use now, as its stats command says: its heap,
 * and the core's own mappings (where the entries are: a leak of them
 * shows there), and how many arenas the heap is in; -1 if it cannot say.
 */
static long heap_in_use(long *arenas, long *peak)
{
    static const char *const argv[] = { "stats" };
    struct hypfs_client c;
    const char *text, *p, *q, *m;
    uint32_t len;
    int status;
    long v = -1;

    if (tclient_open(&c, d.socket))
        return -1;
    if (!hypfs_client_ctl(&c, 1, argv, &status, &text, &len) && !status &&
        (p = strstr(text, "heap_in_use_bytes ")) &&
        (q = strstr(text, "heap_arenas ")) &&
        (m = strstr(text, "core_mapped_bytes ")) &&
        strstr(text, "connections_peak ")) {
        v = atol(p + strlen("heap_in_use_bytes ")) +
            atol(m + strlen("core_mapped_bytes "));
        *arenas = atol(q + strlen("heap_arenas "));
        *peak = atol(strstr(text, "connections_peak ") +
                     strlen("connections_peak "));
    }
    hypfs_client_close(&c);
    return v;
}

struct run {
    struct sample *samples;
    size_t nsamples;
    long rss_max;
    long guest_requests;
    bool as_root;
    bool ok;
};

/*
 * One phase of load for @seconds: every kind of client at once, sampled
 * once a second; then every client stops and the daemon is let to settle.
 */
static void phase(struct run *r, double seconds)
{
    pthread_t threads[READERS + OPENERS + HOSTILE + 2];
    pid_t guests[GUESTS];
    int guest_pipe[2] = { -1, -1 };
    size_t i, nthreads = 0;
    double until = now() + seconds;
    unsigned int g;

    atomic_store(&stop, false);
    if (r->as_root) {
        if (pipe(guest_pipe)) {
            r->ok = false;
            return;
        }
        for (g = 0; g < GUESTS; g++) {
            guests[g] = fork();
            if (!guests[g]) {
                close(guest_pipe[0]);
                guest_process(guest_pipe[1], until);
            }
        }
        close(guest_pipe[1]);
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

    while (now() < until && r->nsamples < MAX_SAMPLES) {
        struct sample *sm = &r->samples[r->nsamples];

        sleep_ms(1000);
        if (proc_sample(d.pid, sm)) {
            fprintf(stderr, "hypfsd is gone\n");
            r->ok = false;
            break;
        }
        if (getenv("HYPFS_SOAK_TRACE"))
            printf("rss_kib=%ld threads=%ld fds=%ld requests=%ld\n",
                   sm->rss_kib, sm->threads, sm->fds, atomic_load(&requests));
        if (sm->rss_kib > r->rss_max)
            r->rss_max = sm->rss_kib;
        r->nsamples++;
    }
    atomic_store(&stop, true);
    for (i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    if (r->as_root) {
        for (g = 0; g < GUESTS; g++) {
            struct guest_report rep;

            if (read(guest_pipe[0], &rep, sizeof(rep)) != sizeof(rep)) {
                unexpected_result("guest", "no report", -1);
                continue;
            }
            r->guest_requests += rep.requests;
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
}

/* Wait (5 s at most) for the daemon's descriptors and threads to be @base's. */
static void settle(const struct sample *base, struct sample *now_)
{
    int i;

    for (i = 0; i < 50; i++) {
        sleep_ms(100);
        if (!proc_sample(d.pid, now_) && now_->fds == base->fds &&
            now_->threads == base->threads)
            break;
    }
}

int main(int argc, char **argv)
{
    const char *env = getenv("HYPFS_SOAK_SECONDS");
    double seconds = argc > 1 ? atof(argv[1]) : env ? atof(env) : 60;
    static const char *const args[] = { "--test-tree", "--quiet", NULL };
    char config[64];
    struct sample base, mid, end;
    struct run r = { .as_root = geteuid() == 0, .ok = true };
    long rss_mid, rss_last, heap_mid, heap_end, arenas_mid = 0, arenas_end = 0;
    long peak_mid = 0, peak_end = 0, allowed;
    double t0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (seconds < 4) {
        fprintf(stderr, "usage: hypfs-soak [SECONDS >= 4]\n");
        return 2;
    }
    r.samples = calloc(MAX_SAMPLES, sizeof(*r.samples));
    host_cpus = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(config, sizeof(config), "map %d 1\n", GUEST_UID);
    /*
     * Without per-thread caches of freed chunks in the daemon: what they
     * hold at a given moment counts as in use, and the main thread's
     * would blur the measure by a few hundred bytes either way.
     */
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
    if (!r.samples || daemon_start(&d, r.as_root ? config : NULL, args))
        return 1;
    unsetenv("GLIBC_TUNABLES");
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
    if (!r.as_root)
        printf("not root: no guest processes (a second user is needed)\n");
    sleep_ms(200);
    if (proc_sample(d.pid, &base)) {
        daemon_stop(&d);
        return 1;
    }

    /*
     * Two equal halves, each ended by every client going away.  The first
     * lays down what the daemon keeps for good under this load (glibc's
     * arenas for its threads, grown arrays); after the second, with the
     * same model state and the same one connection asking, the heap in use
     * must be where the first left it.
     */
    t0 = now();
    phase(&r, seconds / 2);
    settle(&base, &mid);
    heap_mid = heap_in_use(&arenas_mid, &peak_mid);
    phase(&r, seconds / 2);
    settle(&base, &end);
    heap_end = heap_in_use(&arenas_end, &peak_end);
    allowed = HEAP_SLACK_BYTES +
              ARENA_BYTES * (arenas_end > arenas_mid ? arenas_end - arenas_mid
                                                     : 0) +
              THREAD_BYTES * (peak_end > peak_mid ? peak_end - peak_mid : 0);
    rss_mid = r.nsamples ? r.samples[r.nsamples / 2].rss_kib : 0;
    rss_last = r.nsamples ? r.samples[r.nsamples - 1].rss_kib : 0;

    printf("daemon:   memory in use %ld bytes (%ld arenas, %ld threads at "
           "most) after the first half, %ld (%ld, %ld) after the second "
           "(%ld allowed); rss %ld KiB at start, %ld half-way, %ld at the "
           "end (max %ld); fds %ld -> %ld; threads %ld -> %ld\n", heap_mid,
           arenas_mid, peak_mid, heap_end, arenas_end, peak_end, allowed,
           base.rss_kib, rss_mid, rss_last, r.rss_max, base.fds, end.fds,
           base.threads, end.threads);
    printf("clients:  %ld toolstack calls (%ld writes), %ld control steps, "
           "%ld guest calls, %ld hostile connections, %ld stalled frames\n",
           atomic_load(&requests), atomic_load(&writes),
           atomic_load(&ctl_steps), r.guest_requests,
           atomic_load(&hostile_conns), atomic_load(&stalls));
    if (end.fds != base.fds || end.threads != base.threads ||
        mid.fds != base.fds || mid.threads != base.threads) {
        fprintf(stderr, "FAIL: descriptors or threads not back to start\n");
        r.ok = false;
    }
    if (heap_mid < 0 || heap_end < 0 || heap_end - heap_mid > allowed) {
        fprintf(stderr, "FAIL: the memory in use grew by %ld bytes over the "
                "second half (from %ld to %ld), more than %ld\n",
                heap_end - heap_mid, heap_mid, heap_end, allowed);
        r.ok = false;
    }
    if (atomic_load(&unexpected)) {
        fprintf(stderr, "FAIL: %ld unexpected results\n",
                atomic_load(&unexpected));
        r.ok = false;
    }
    if (daemon_stop(&d)) {
        fprintf(stderr, "FAIL: hypfsd did not stop cleanly\n");
        r.ok = false;
    }
    printf("RESULT seconds=%.0f requests=%ld control=%ld guest=%ld "
           "hostile=%ld heap_mid=%ld heap_end=%ld rss_start_kib=%ld "
           "rss_mid_kib=%ld rss_end_kib=%ld rss_max_kib=%ld fds_start=%ld "
           "fds_end=%ld unexpected=%ld\n",
           now() - t0, atomic_load(&requests), atomic_load(&ctl_steps),
           r.guest_requests, atomic_load(&hostile_conns), heap_mid, heap_end,
           base.rss_kib, rss_mid, rss_last, r.rss_max, base.fds, end.fds,
           atomic_load(&unexpected));
    free(r.samples);
    return r.ok ? 0 : 1;
}
