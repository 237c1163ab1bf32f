/*
 * hypfs-attack: what a hostile local user does to hypfsd, for the hostile
 * suite (tests/hostile/hostile.sh) and bench/bench-hostile.  It runs as
 * the attacking user (the suite starts it with setpriv) for SECONDS, then
 * prints one line of what it saw and exits 0.
 *
 *   idle N        hold N connections open, sending nothing
 *   idle-ids N    the same from N distinct user ids: one child per uid
 *                 1..N of a user namespace (subordinate uids), each with
 *                 32 connections (run it under unshare --user --map-auto)
 *   stall N       N connections, each sending all but the last byte of a
 *                 frame of the largest size the protocol allows
 *   flood N       N threads connecting and closing as fast as they can
 *   writes N      N threads writing /params/loglvl, refused, in a loop
 *   squat         bind SOCKET first and answer whoever comes, counting the
 *                 bytes it is sent
 *   watches N     as a guest: N connections, each arming watches on "/"
 *                 and on its domain's directory until refused (its
 *                 domain's budget, or --max-watches), never reading an
 *                 event
 *   status N      as a guest: N threads writing the domain's own
 *                 guest-status, a new value each time; prints the last
 *                 value written
 *   http-slow N   SOCKET is HOST:PORT (hypfs-exporter): N connections,
 *                 each sending a request's headers a byte every 4 s, and
 *                 made again at once when the server closes it
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hypfs/msg.h>
#include <xenhypfs.h>

static const char *sock_path;
static double until;
static atomic_long count, failures;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        close(fd);
        return -1;
    }
    return fd;
}

static void sleep_until_done(void)
{
    while (now() < until) {
        struct timespec ts = { 0, 50000000 };

        nanosleep(&ts, NULL);
    }
}

/* Hold @n idle connections; how many the daemon closed meanwhile. */
static void hold(int n, bool stall)
{
    int *fds = calloc((size_t)n, sizeof(int)), i, open_ = 0, closed = 0;
    static uint8_t frame[sizeof(struct hypfs_msg_hdr) +
                         sizeof(struct hypfs_msg_op) + XEN_HYPFS_MAX_PATHLEN +
                         HYPFS_MSG_DATA_MAX];

    if (stall) {
        struct hypfs_msg_hdr h = {
            HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION, HYPFS_MSG_OP,
            (uint32_t)(sizeof(frame) - sizeof(h)), 1,
        };
        struct hypfs_msg_op op = {
            .cmd = XEN_HYPFS_OP_write_contents,
            .path_len = XEN_HYPFS_MAX_PATHLEN, .arg1 = 0x1000,
            .arg2 = XEN_HYPFS_MAX_PATHLEN, .arg3 = 0x100000,
            .arg4 = HYPFS_MSG_DATA_MAX, .data_len = HYPFS_MSG_DATA_MAX,
        };

        memcpy(frame, &h, sizeof(h));
        memcpy(frame + sizeof(h), &op, sizeof(op));
        memset(frame + sizeof(h) + sizeof(op), 'a', XEN_HYPFS_MAX_PATHLEN);
        memcpy(frame + sizeof(h) + sizeof(op), "/params/loglvl", 14);
    }
    for (i = 0; i < n && fds; i++) {
        fds[i] = connect_to(sock_path);
        if (fds[i] < 0) {
            failures++;
            continue;
        }
        open_++;
        if (stall) {
            size_t off = 0, len = sizeof(frame) - 1;

            /* As much as the socket takes at once: then it stalls. */
            while (off < len) {
                ssize_t w = send(fds[i], frame + off, len - off,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);

                if (w <= 0)
                    break;
                off += (size_t)w;
            }
            count += (long)off;
        }
    }
    sleep_until_done();
    for (i = 0; i < n && fds; i++) {
        char b;

        if (fds[i] < 0)
            continue;
        if (recv(fds[i], &b, 1, MSG_DONTWAIT) == 0)
            closed++;
        close(fds[i]);
    }
    printf("held %d connections (%ld refused at connect), %d closed by the "
           "daemon; %ld bytes sent\n", open_, (long)failures, closed,
           (long)count);
    free(fds);
}

/* One child per uid of a user namespace, each holding 32 connections. */
static void hold_as_ids(int n)
{
    int i, ok = 0;

    for (i = 1; i <= n; i++) {
        pid_t pid = fork();

        if (!pid) {
            if (setgid((gid_t)i) || setuid((uid_t)i))
                _exit(3);
            hold(32, false);
            _exit(0);
        }
    }
    while (wait(&i) > 0)
        ok += WIFEXITED(i) && !WEXITSTATUS(i);
    printf("%d of %d user ids held their connections\n", ok, n);
}

static void *flood_thread(void *arg)
{
    (void)arg;
    while (now() < until) {
        int fd = connect_to(sock_path);

        if (fd < 0)
            failures++;
        else {
            count++;
            close(fd);
        }
    }
    return NULL;
}

static void *write_thread(void *arg)
{
    static const char path[] = "/params/loglvl", val[] = "all";
    struct {
        struct hypfs_msg_hdr h;
        struct hypfs_msg_op op;
        char path[sizeof(path)];
        char val[sizeof(val)];
    } __attribute__((packed)) req;
    uint8_t reply[64];
    int fd = -1;

    (void)arg;
    memset(&req, 0, sizeof(req));
    req.h = (struct hypfs_msg_hdr){ HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                                    HYPFS_MSG_OP,
                                    (uint32_t)(sizeof(req) - sizeof(req.h)),
                                    1 };
    req.op.cmd = XEN_HYPFS_OP_write_contents;
    req.op.arg1 = 0x1000;
    req.op.arg2 = req.op.path_len = sizeof(path);
    req.op.arg3 = 0x100000;
    req.op.arg4 = req.op.data_len = sizeof(val);
    memcpy(req.path, path, sizeof(path));
    memcpy(req.val, val, sizeof(val));
    while (now() < until) {
        if (fd < 0 && (fd = connect_to(sock_path)) < 0) {
            failures++;
            continue;
        }
        if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req) ||
            recv(fd, reply, sizeof(reply), 0) <= 0) {
            close(fd);
            fd = -1;
            failures++;
            continue;
        }
        count++;
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static void run_threads(int n, void *(*fn)(void *), const char *what)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    int i;

    for (i = 0; i < n && t; i++)
        pthread_create(&t[i], NULL, fn, NULL);
    for (i = 0; i < n && t; i++)
        pthread_join(t[i], NULL);
    printf("%s: %ld done, %ld failed\n", what, (long)count, (long)failures);
    free(t);
}

/* Bind the path first and play the daemon to whoever comes. */
static int squat(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), conns = 0;
    long bytes = 0;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
        listen(lfd, 16)) {
        perror("squat: bind");
        return 1;
    }
    /* Ready: the suite waits for this line. */
    printf("squatting %s\n", sock_path);
    fflush(stdout);
    while (now() < until) {
        struct timeval tv = { 0, 100000 };
        fd_set rs;
        int fd;

        FD_ZERO(&rs);
        FD_SET(lfd, &rs);
        if (select(lfd + 1, &rs, NULL, NULL, &tv) <= 0)
            continue;
        fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        conns++;
        /* Whatever it is sent, it answers as a daemon never would. */
        {
            struct timeval rt = { 0, 300000 };
            char buf[4096];
            ssize_t n;
            static const char lie[] = "attacker-controlled";

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt));
            while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
                bytes += n;
                if (send(fd, lie, sizeof(lie), MSG_NOSIGNAL) < 0)
                    break;
            }
        }
        close(fd);
    }
    unlink(sock_path);
    printf("squatter: %d connections, %ld bytes received\n", conns, bytes);
    return 0;
}

/* ---- As a guest, through libxenhypfs ($HYPFS_SOCKET) ---- */

/* The guest's own domain directory: the one /domain shows it. */
static int own_domain(xenhypfs_handle *h, char *dir, size_t cap)
{
    struct xenhypfs_dirent *e;
    unsigned int n = 0;

    e = xenhypfs_readdir(h, "/domain", &n);
    if (!e || n != 1) {
        free(e);
        return -1;
    }
    snprintf(dir, cap, "/domain/%s", e[0].name);
    free(e);
    return 0;
}

static void watches(int n)
{
    xenhypfs_handle **h = calloc((size_t)n, sizeof(*h));
    char dir[64] = "";
    long armed = 0, refused_at_budget = 0;
    int i;

    for (i = 0; i < n && h; i++) {
        uint64_t t;

        h[i] = xenhypfs_open(NULL, 0);
        if (!h[i]) {
            failures++;
            continue;
        }
        if (!dir[0] && own_domain(h[i], dir, sizeof(dir)))
            snprintf(dir, sizeof(dir), "/");
        for (t = 1; now() < until; t++) {
            if (xenhypfs_watch(h[i], t % 2 ? "/" : dir, t, 0)) {
                refused_at_budget += errno == ENOSPC;
                break;
            }
            armed++;
        }
    }
    sleep_until_done();
    for (i = 0; i < n && h; i++)
        xenhypfs_close(h[i]);
    printf("watches: %ld armed on %d connections, %ld connections stopped "
           "by ENOSPC, %ld could not connect\n", armed, n, refused_at_budget,
           (long)failures);
    free(h);
}

static atomic_long status_seq;
static char status_path[96];

static void *status_thread(void *arg)
{
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);

    (void)arg;
    if (!h) {
        failures++;
        return NULL;
    }
    while (now() < until) {
        char v[32];

        snprintf(v, sizeof(v), "s%ld", (long)++status_seq);
        if (xenhypfs_write(h, status_path, v))
            failures++;
        else
            count++;
    }
    xenhypfs_close(h);
    return NULL;
}

static int status_writes(int n)
{
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);
    char dir[64], v[32];

    if (!h || own_domain(h, dir, sizeof(dir))) {
        fprintf(stderr, "hypfs-attack: not a guest with a domain\n");
        return 1;
    }
    snprintf(status_path, sizeof(status_path), "%s/guest-status", dir);
    run_threads(n, status_thread, "status writes");
    /* The last value is the one written last, whichever thread wrote it:
     * write it once more, alone, so that it is known. */
    snprintf(v, sizeof(v), "last%ld", (long)status_seq);
    if (xenhypfs_write(h, status_path, v))
        return 1;
    printf("%s last value: %s\n", status_path, v);
    xenhypfs_close(h);
    return 0;
}

/* ---- hypfs-exporter's clients ---- */

static struct addrinfo *http_addr;

static int http_connect(void)
{
    int fd = socket(http_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC |
                    SOCK_NONBLOCK, 0);

    if (fd < 0)
        return -1;
    if (connect(fd, http_addr->ai_addr, http_addr->ai_addrlen) &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int http_slow(const char *hostport, int n)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                              "User-Agent: slow\r\n";
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    double *next = calloc((size_t)n, sizeof(*next));
    size_t *off = calloc((size_t)n, sizeof(*off));
    char host[256], *colon;
    long closed = 0, made = 0;
    int i;

    snprintf(host, sizeof(host), "%s", hostport);
    colon = strrchr(host, ':');
    if (!p || !next || !off || !colon) {
        fprintf(stderr, "hypfs-attack: http-slow needs HOST:PORT\n");
        return 2;
    }
    *colon = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &http_addr)) {
        fprintf(stderr, "hypfs-attack: cannot resolve %s\n", hostport);
        return 2;
    }
    for (i = 0; i < n; i++) {
        p[i].fd = http_connect();
        p[i].events = POLLIN;
        made += p[i].fd >= 0;
    }
    while (now() < until) {
        double t = now();

        poll(p, (nfds_t)n, 100);
        for (i = 0; i < n; i++) {
            char b[512];

            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                recv(p[i].fd, b, sizeof(b), MSG_DONTWAIT) <= 0 &&
                errno != EAGAIN) {
                close(p[i].fd);
                p[i].fd = -1;
                closed++;
            }
            if (p[i].fd < 0) {
                p[i].fd = http_connect();
                made += p[i].fd >= 0;
                off[i] = 0;
                next[i] = t;
                continue;
            }
            if (t >= next[i] && off[i] < sizeof(req) - 1) {
                if (send(p[i].fd, req + off[i], 1,
                         MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
                    off[i]++;
                next[i] = t + 4;
            }
        }
    }
    for (i = 0; i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    printf("http-slow: %ld connections made, %ld closed by the server\n",
           made, closed);
    freeaddrinfo(http_addr);
    free(p);
    free(next);
    free(off);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode;
    int n;

    if (argc < 4) {
        fprintf(stderr, "usage: hypfs-attack SOCKET MODE SECONDS [N]\n");
        return 2;
    }
    sock_path = argv[1];
    mode = argv[2];
    until = now() + atof(argv[3]);
    n = argc > 4 ? atoi(argv[4]) : 32;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "idle"))
        hold(n, false);
    else if (!strcmp(mode, "idle-ids"))
        hold_as_ids(n);
    else if (!strcmp(mode, "stall"))
        hold(n, true);
    else if (!strcmp(mode, "flood"))
        run_threads(n, flood_thread, "connections");
    else if (!strcmp(mode, "writes"))
        run_threads(n, write_thread, "refused writes");
    else if (!strcmp(mode, "squat"))
        return squat();
    else if (!strcmp(mode, "watches"))
        watches(n);
    else if (!strcmp(mode, "status"))
        return status_writes(n);
    else if (!strcmp(mode, "http-slow"))
        return http_slow(sock_path, n);
    else {
        fprintf(stderr, "hypfs-attack: unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
