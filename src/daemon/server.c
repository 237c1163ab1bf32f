/*
 * The socket server: one Unix stream socket, one thread per connection.
 *
 * Why threads and not an event loop: a request is a short, bounded piece
 * of work (a lookup and a copy), so a blocking thread per client answers
 * with the fewest system calls (a read and a write per request, no
 * readiness polling), which is what keeps a hypercall through the socket
 * close to the raw round trip; and a client that stalls stalls only its
 * own thread.  Threads are bounded by --max-clients in total and by the
 * configured limit per user, and their stacks are small.
 *
 * Hostile clients: a frame header is checked before its payload is read;
 * a frame must arrive completely within FRAME_TIMEOUT_MS of its first byte;
 * a reply must be taken within SEND_TIMEOUT_S; any violation closes that
 * connection only.  Idle connections (between frames) may stay open.
 *
 * The caller's identity comes from the kernel (SO_PEERCRED at accept) and
 * is mapped to a domain for every request, so a mapping reloaded with
 * SIGHUP, or a domain destroyed, takes effect at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "hypfsd.h"

#define FRAME_TIMEOUT_MS    5000
#define SEND_TIMEOUT_S      10
#define THREAD_STACK        (256u * 1024u)
#define RBUF_INITIAL        8192u
#define RBUF_KEEP           (64u * 1024u)   /* shrink back after big frames */

struct conn {
    int fd;
    uid_t uid;
    pid_t pid;
    struct conn *next, *prev;
    uint8_t *rbuf;              /* buffered input: [rstart, rend) */
    size_t rcap, rstart, rend;
    struct hypfsd_guest guest;     /* output buffer, reused */
};

static struct {
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t drained;
    struct conn *list;
    unsigned int nconns;
    struct hypfs *fs;
} srv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Make [rstart, rend) hold at least @n bytes.  With @deadline < 0 wait as
 * long as it takes (between frames), else until the deadline.  0, or -1
 * when the peer went away, timed out or sent nonsense.
 */
static int fill(struct conn *c, size_t n, int64_t deadline)
{
    while (c->rend - c->rstart < n) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t got;

        if (c->rcap - c->rstart < n) {
            /* Move the partial frame to the front; grow if still short. */
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
            if (c->rcap < n) {
                uint8_t *b = realloc(c->rbuf, n);

                if (!b)
                    return -1;
                c->rbuf = b;
                c->rcap = n;
            }
        }
        /*
         * Between frames a blocking read is all it takes (shutdown() at
         * stop ends it).  Within a frame, read what is there and poll only
         * when nothing is: the usual frame arrives whole, at no extra cost.
         */
        got = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend,
                   deadline >= 0 ? MSG_DONTWAIT : 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            deadline >= 0) {
            int64_t left = deadline - now_ms();

            if (left <= 0) {
                log_debug("connection of uid %u pid %d: frame not completed "
                          "in time", (unsigned int)c->uid, (int)c->pid);
                return -1;
            }
            if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        if (got <= 0)
            return -1;
        c->rend += (size_t)got;
    }
    return 0;
}

static int send_reply(struct conn *c, uint16_t type, uint32_t seq,
                      const void *fixed, size_t fixed_len,
                      const void *body, size_t body_len)
{
    struct hypfs_msg_hdr hdr;
    struct iovec iov[3] = {
        { &hdr, sizeof(hdr) },
        { (void *)(uintptr_t)fixed, fixed_len },
        { (void *)(uintptr_t)body, body_len },
    };

    hypfs_msg_hdr_init(&hdr, type, (uint32_t)(fixed_len + body_len), seq);
    return hypfs_msg_writev_all(c->fd, iov, 3) ? -1 : 0;
}

static int handle_op(struct conn *c, const uint8_t *payload, uint32_t len,
                     uint32_t seq)
{
    struct hypfs_msg_op op;
    struct hypfs_msg_op_reply reply = { 0 };
    struct hypfs_caller caller;
    const uint8_t *path, *data;

    if (hypfsd_parse_op(payload, len, &op, &path, &data)) {
        log_debug("connection of uid %u pid %d: malformed request",
                  (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    callers_identify(c->uid, &caller.domid, &caller.flags);
    caller.mem = &hypfsd_guest_ops;
    caller.mem_ctx = &c->guest;
    hypfsd_guest_init(&c->guest, &op, path, data);
    reply.ret = hypfs_do_op(srv.fs, &caller, op.cmd, op.arg1, op.arg2,
                            op.arg3, op.arg4);
    reply.out_len = (uint32_t)c->guest.out_len;
    return send_reply(c, HYPFS_MSG_OP_REPLY, seq, &reply, sizeof(reply),
                      c->guest.out, c->guest.out_len);
}

static int handle_ctl(struct conn *c, const uint8_t *payload, uint32_t len,
                      uint32_t seq)
{
    const char *argv[33];
    struct hypfs_msg_ctl_reply reply;
    struct ctl_result res = { 0 };
    unsigned int flags;
    uint32_t domid;
    int argc, ret;

    argc = hypfsd_parse_ctl((const char *)payload, len, argv, 33);
    if (argc < 0) {
        log_debug("connection of uid %u pid %d: malformed control request",
                  (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    callers_identify(c->uid, &domid, &flags);
    if (!(flags & HYPFS_CALLER_CONTROL)) {
        static const char msg[] = "control commands are for the control "
                                  "domain only";

        reply.ret = -EPERM;
        reply.text_len = sizeof(msg) - 1;
        return send_reply(c, HYPFS_MSG_CTL_REPLY, seq, &reply, sizeof(reply),
                          msg, reply.text_len);
    }
    ctl_run(argc, argv, &res);
    reply.ret = res.status;
    reply.text_len = (uint32_t)res.len;
    ret = send_reply(c, HYPFS_MSG_CTL_REPLY, seq, &reply, sizeof(reply),
                     res.text, res.len);
    free(res.text);
    return ret;
}

/* One frame: 0 to go on, -1 to close the connection. */
static int serve_frame(struct conn *c)
{
    struct hypfs_msg_hdr hdr;
    int64_t deadline;
    int ret;

    /* Between frames a client may stay quiet for as long as it likes. */
    if (fill(c, 1, -1))
        return -1;
    deadline = now_ms() + FRAME_TIMEOUT_MS;
    if (fill(c, sizeof(hdr), deadline))
        return -1;
    memcpy(&hdr, c->rbuf + c->rstart, sizeof(hdr));
    if (hypfsd_check_request_hdr(&hdr)) {
        log_debug("connection of uid %u pid %d: bad frame header",
                  (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    if (fill(c, sizeof(hdr) + hdr.len, deadline))
        return -1;
    c->rstart += sizeof(hdr);
    if (hdr.type == HYPFS_MSG_OP)
        ret = handle_op(c, c->rbuf + c->rstart, hdr.len, hdr.seq);
    else
        ret = handle_ctl(c, c->rbuf + c->rstart, hdr.len, hdr.seq);
    c->rstart += hdr.len;
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
        if (c->rcap > RBUF_KEEP) {
            uint8_t *b = realloc(c->rbuf, RBUF_INITIAL);

            if (b) {
                c->rbuf = b;
                c->rcap = RBUF_INITIAL;
            }
        }
    }
    if (c->guest.out_cap > RBUF_KEEP)
        hypfsd_guest_fini(&c->guest);
    return ret;
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->rbuf);
    hypfsd_guest_fini(&c->guest);
    free(c);
}

static void *conn_thread(void *arg)
{
    struct conn *c = arg;

    log_debug("connection of uid %u pid %d opened", (unsigned int)c->uid,
              (int)c->pid);
    while (!serve_frame(c))
        ;
    log_debug("connection of uid %u pid %d closed", (unsigned int)c->uid,
              (int)c->pid);

    pthread_mutex_lock(&srv.lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!--srv.nconns)
        pthread_cond_broadcast(&srv.drained);
    pthread_mutex_unlock(&srv.lock);
    conn_free(c);
    return NULL;
}

int server_serve_fd(struct hypfs *fs, int fd, uid_t uid)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c || !(c->rbuf = malloc(RBUF_INITIAL))) {
        free(c);
        close(fd);
        return -ENOMEM;
    }
    srv.fs = fs;
    c->fd = fd;
    c->uid = uid;
    c->pid = getpid();
    c->rcap = RBUF_INITIAL;
    while (!serve_frame(c))
        ;
    conn_free(c);
    return 0;
}

static void accept_one(int lfd, unsigned int max_clients)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct timeval tv = { SEND_TIMEOUT_S, 0 };
    pthread_attr_t attr;
    pthread_t tid;
    struct conn *c, *it;
    unsigned int same_uid = 0, limit = callers_limit_per_uid();
    int fd;

    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            log_warn("accept: %s", strerror(errno));
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        log_warn("cannot identify a client: %s", strerror(errno));
        close(fd);
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    pthread_mutex_lock(&srv.lock);
    for (it = srv.list; it; it = it->next)
        same_uid += it->uid == cred.uid;
    if (srv.nconns >= max_clients ||
        (cred.uid && cred.uid != getuid() && same_uid >= limit)) {
        pthread_mutex_unlock(&srv.lock);
        log_debug("refusing a connection of uid %u pid %d: too many clients",
                  (unsigned int)cred.uid, (int)cred.pid);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c)
        c->rbuf = malloc(RBUF_INITIAL);
    if (!c || !c->rbuf) {
        pthread_mutex_unlock(&srv.lock);
        if (c)
            free(c);
        close(fd);
        return;
    }
    c->fd = fd;
    c->uid = cred.uid;
    c->pid = cred.pid;
    c->rcap = RBUF_INITIAL;
    c->next = srv.list;
    if (srv.list)
        srv.list->prev = c;
    srv.list = c;
    srv.nconns++;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, conn_thread, c)) {
        srv.list = c->next;
        if (c->next)
            c->next->prev = NULL;
        srv.nconns--;
        pthread_mutex_unlock(&srv.lock);
        log_warn("cannot start a thread for a client");
        conn_free(c);
    } else
        pthread_mutex_unlock(&srv.lock);
    pthread_attr_destroy(&attr);
}

/*
 * Take the socket: a lock file makes two daemons starting at once agree,
 * and a socket that still answers means another daemon serves it.
 */
static int take_socket(const char *path, int *lock_fd)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char lockpath[sizeof(sa.sun_path) + 8];
    int fd, probe;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        log_err("socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    snprintf(lockpath, sizeof(lockpath), "%s.lock", path);

    if (!strcmp(path, HYPFS_DEFAULT_SOCKET) && mkdir("/run/hypfs", 0755) &&
        errno != EEXIST) {
        log_err("cannot create /run/hypfs: %s (use --socket PATH)",
                strerror(errno));
        return -1;
    }
    *lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*lock_fd < 0) {
        log_err("cannot open %s: %s", lockpath, strerror(errno));
        return -1;
    }
    if (flock(*lock_fd, LOCK_EX | LOCK_NB)) {
        log_err("another hypfsd is already serving %s", path);
        return -1;
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
        close(probe);
        log_err("%s is served by another process", path);
        return -1;
    }
    if (probe >= 0)
        close(probe);
    unlink(path);   /* a stale socket left by a crash */

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        chmod(path, 0666) || listen(fd, 128)) {
        log_err("cannot listen on %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* 0 after a clean stop, -1 if it could not start, 1 if threads remain. */
int server_run(struct hypfs *fs, const struct server_opts *opts,
               const char *config_path)
{
    struct pollfd pfd[2];
    struct timespec until;
    sigset_t mask;
    int lfd, sfd, lock_fd = -1, ret = 0;
    struct conn *c;

    srv.fs = fs;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked here, before any thread exists, so only signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        log_err("signalfd: %s", strerror(errno));
        return -1;
    }
    lfd = take_socket(opts->socket_path, &lock_fd);
    if (lfd < 0) {
        close(sfd);
        if (lock_fd >= 0)
            close(lock_fd);
        return -1;
    }
    log_notice("serving %s: %u cpus, pid %d", opts->socket_path,
               model.host_cpus, (int)getpid());

    pfd[0].fd = lfd;
    pfd[0].events = POLLIN;
    pfd[1].fd = sfd;
    pfd[1].events = POLLIN;
    for (;;) {
        struct signalfd_siginfo si;

        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_err("poll: %s", strerror(errno));
            ret = -1;
            break;
        }
        if (pfd[1].revents & POLLIN) {
            if (read(sfd, &si, sizeof(si)) != sizeof(si))
                continue;
            if (si.ssi_signo == SIGHUP) {
                log_notice("SIGHUP: reloading %s",
                           config_path ? config_path : "the default mapping");
                if (callers_load(config_path))
                    log_warn("configuration not reloaded; keeping the old");
                continue;
            }
            log_notice("%s: stopping", si.ssi_signo == SIGTERM ? "SIGTERM"
                                                               : "SIGINT");
            break;
        }
        if (pfd[0].revents & POLLIN)
            accept_one(lfd, opts->max_clients);
    }

    /* Stop: no new clients; end every connection; wait for the threads. */
    close(lfd);
    unlink(opts->socket_path);
    pthread_mutex_lock(&srv.lock);
    for (c = srv.list; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (srv.nconns)
        if (pthread_cond_timedwait(&srv.drained, &srv.lock, &until)) {
            log_warn("%u connections did not end in time", srv.nconns);
            ret = 1;
            break;
        }
    pthread_mutex_unlock(&srv.lock);
    close(sfd);
    close(lock_fd);
    return ret;
}
