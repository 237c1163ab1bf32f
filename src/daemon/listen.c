/*
 * hypfsd's main thread: the listening socket, the signals, and the peers
 * that have no hypfs right, in one epoll loop.
 *
 * Accepting is cheap (accept, ask the kernel who it is, one lookup in the
 * published caller mapping), so that a flood of connections delays the
 * control domain's by little.  A domain's connection goes to a thread of
 * its own (server.c), within its class's budget.  An unmapped peer gets no
 * thread and no buffer: this loop reads its first frame header (16
 * bytes), answers -EPERM and closes; at most --max-pending wait for that,
 * for at most PENDING_TIMEOUT_MS.
 *
 * When the process runs out of descriptors (EMFILE, ENFILE, ENOBUFS),
 * accepting pauses and resumes by itself, as soon as a connection ends or
 * after a back-off, with one log line per episode, instead of spinning.
 * At start the descriptor limit is raised to its hard limit and the
 * budgets are fitted into it, the control domain's first, so that its
 * connections never lack a descriptor.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hypfsd.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
/* Without libsystemd: nobody to tell, and no sockets passed. */
#define SD_LISTEN_FDS_START 3
static int sd_listen_fds(int unset) { (void)unset; return 0; }
static int sd_notify(int unset, const char *state)
{
    (void)unset;
    (void)state;
    return 0;
}
#endif

#define PENDING_TIMEOUT_MS  2000
#define FD_RESERVE          48u     /* descriptors not for connections */
#define ACCEPT_BATCH        32
#define BACKOFF_MIN_MS      50
#define BACKOFF_MAX_MS      1000
#define EPISODE_QUIET_MS    1000

/* An unmapped peer, waiting for its first frame header and its -EPERM. */
struct pending {
    struct loop_source src;
    int fd;
    uid_t uid;
    int64_t deadline;
    uint8_t hdr[sizeof(struct hypfs_msg_hdr)];
    size_t got;
    struct pending *next, *prev;
};

static struct {
    int epfd, lfd, priv_fd;
    struct loop_source listen_src, priv_src, signal_src, wake_src;
    struct pending *pending;    /* oldest last */
    unsigned int npending;
    struct callers_snap *snap;  /* the main thread's view of the mapping */
    bool paused;                /* not accepting for want of descriptors */
    bool episode;               /* ... until accepting works for a while */
    int64_t last_short_ms;      /* the last refusal for want of them */
    int64_t resume_at;
    int backoff_ms;
    unsigned long pauses;       /* in this episode */
} loop = { .epfd = -1, .lfd = -1, .priv_fd = -1 };

static void pending_close(struct pending *p)
{
    epoll_ctl(loop.epfd, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    if (p->prev)
        p->prev->next = p->next;
    else
        loop.pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    loop.npending--;
    free(p);
}

/* A refused peer's first header is in: answer -EPERM, whatever it asked. */
static void answer_eperm(int fd, const uint8_t *hdr_bytes)
{
    static const char text[] = "no hypfs right: this user is not mapped to "
                               "a live domain";
    struct {
        struct hypfs_msg_hdr hdr;
        union {
            struct hypfs_msg_op_reply op;
            struct {
                struct hypfs_msg_ctl_reply r;
                char text[sizeof(text) - 1];
            } ctl;
        } u;
    } out;
    struct hypfs_msg_hdr hdr;
    size_t len = 0;

    memset(&out, 0, sizeof(out));
    memcpy(&hdr, hdr_bytes, sizeof(hdr));
    if (hypfsd_check_request_hdr(&hdr))
        return;
    if (hdr.type == HYPFS_MSG_OP) {
        out.u.op.ret = -EPERM;
        len = sizeof(out.u.op);
    } else {
        out.u.ctl.r.ret = -EPERM;
        out.u.ctl.r.text_len = sizeof(text) - 1;
        memcpy(out.u.ctl.text, text, sizeof(text) - 1);
        len = sizeof(out.u.ctl);
    }
    hypfs_msg_hdr_init(&out.hdr, hdr.type + 1, (uint32_t)len, hdr.seq);
    /* A few dozen bytes: the socket's buffer takes them, or nothing. */
    if (send(fd, &out, sizeof(out.hdr) + len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* A peer that does not take its answer goes without. */
    }
}

/*
 * A peer with no hypfs right.  Usually its first frame is there already
 * (or it is gone): then it is answered at once, with no bookkeeping.
 * Otherwise it waits, boundedly, in the loop.
 */
static void pending_add(int fd, const struct ucred *cred)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
    uint8_t hdr[sizeof(struct hypfs_msg_hdr)];
    struct pending *p;
    ssize_t got = recv(fd, hdr, sizeof(hdr), MSG_DONTWAIT);

    if (got == (ssize_t)sizeof(hdr) || got == 0 ||
        (got < 0 && errno != EAGAIN && errno != EINTR)) {
        if (got == (ssize_t)sizeof(hdr))
            answer_eperm(fd, hdr);
        close(fd);
        return;
    }
    if (loop.npending >= server_opts()->max_pending ||
        !(p = calloc(1, sizeof(*p)))) {
        log_limited(&rl_refused, L_INFO, "closing a connection of uid %u pid "
                    "%d at once: it has no hypfs right and %u such peers "
                    "are waiting already", (unsigned int)cred->uid,
                    (int)cred->pid, loop.npending);
        close(fd);
        return;
    }
    p->src.kind = SRC_PENDING;
    p->fd = fd;
    p->uid = cred->uid;
    p->deadline = monotonic_ms() + PENDING_TIMEOUT_MS;
    if (got > 0) {
        memcpy(p->hdr, hdr, (size_t)got);
        p->got = (size_t)got;
    }
    ev.data.ptr = p;
    if (epoll_ctl(loop.epfd, EPOLL_CTL_ADD, fd, &ev)) {
        close(fd);
        free(p);
        return;
    }
    p->next = loop.pending;
    if (loop.pending)
        loop.pending->prev = p;
    loop.pending = p;
    loop.npending++;
}

static void pending_readable(struct pending *p)
{
    ssize_t n = recv(p->fd, p->hdr + p->got, sizeof(p->hdr) - p->got,
                     MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pending_close(p);
        return;
    }
    p->got += (size_t)n;
    if (p->got == sizeof(p->hdr)) {
        answer_eperm(p->fd, p->hdr);
        pending_close(p);
    }
}

static void pending_expire(int64_t now)
{
    struct pending *p = loop.pending, *next;

    for (; p; p = next) {
        next = p->next;
        if (now >= p->deadline)
            pending_close(p);
    }
}

static int64_t next_deadline(void)
{
    int64_t d = INT64_MAX;
    struct pending *p;

    for (p = loop.pending; p; p = p->next)
        if (p->deadline < d)
            d = p->deadline;
    if (loop.paused && loop.resume_at < d)
        d = loop.resume_at;
    return d;
}

static void stop_accepting(int err)
{
    if (!loop.episode) {
        struct rlimit rl = { 0 };
        unsigned int ncontrol, nguest;

        getrlimit(RLIMIT_NOFILE, &rl);
        server_counts(&ncontrol, &nguest, NULL);
        log_warn("not accepting connections for now: %s (%u control, %u "
                 "guest and %u unmapped connections open, descriptor limit "
                 "%llu); resuming by itself", strerror(err), ncontrol,
                 nguest, loop.npending, (unsigned long long)rl.rlim_cur);
        loop.backoff_ms = BACKOFF_MIN_MS;
        loop.pauses = 0;
        loop.episode = true;
    } else if (loop.backoff_ms < BACKOFF_MAX_MS) {
        loop.backoff_ms *= 2;
        if (loop.backoff_ms > BACKOFF_MAX_MS)
            loop.backoff_ms = BACKOFF_MAX_MS;
    }
    loop.paused = true;
    loop.pauses++;
    loop.last_short_ms = monotonic_ms();
    loop.resume_at = loop.last_short_ms + loop.backoff_ms;
    epoll_ctl(loop.epfd, EPOLL_CTL_DEL, loop.lfd, NULL);
    epoll_ctl(loop.epfd, EPOLL_CTL_DEL, loop.priv_fd, NULL);
    /* Unmapped peers are the cheapest to let go: their descriptors first. */
    while (loop.pending)
        pending_close(loop.pending);
}

static void resume_accepting(void)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &loop.listen_src };
    struct epoll_event pev = { .events = EPOLLIN, .data.ptr = &loop.priv_src };

    if (!loop.paused)
        return;
    if ((epoll_ctl(loop.epfd, EPOLL_CTL_ADD, loop.lfd, &ev) && errno != EEXIST) ||
        (epoll_ctl(loop.epfd, EPOLL_CTL_ADD, loop.priv_fd, &pev) &&
         errno != EEXIST))
        log_err("epoll: %s", strerror(errno));
    loop.paused = false;
}

static void admit(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    unsigned int flags;
    uint32_t domid;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
        log_limited(&rl_refused, L_WARNING, "cannot identify a client: %s",
                    strerror(errno));
        close(fd);
        return;
    }
    if (!callers_current(loop.snap)) {
        callers_put(loop.snap);
        loop.snap = callers_get();
    }
    callers_lookup(loop.snap, cred.uid, &domid, &flags);
    if (!(flags & HYPFS_CALLER_HYPFS)) {
        pending_add(fd, &cred);
        return;
    }
    server_start_conn(fd, &cred, flags & HYPFS_CALLER_CONTROL,
               callers_limit_per_uid(loop.snap));
}

/*
 * Accept what waits on @lfd, a batch at most: then back to the loop, so
 * that the control domain's door (checked first) is never kept waiting
 * behind a long queue on the other.
 */
static void accept_some(int lfd)
{
    int i;

    for (i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return;
            case EINTR:
            case ECONNABORTED:
                continue;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                stop_accepting(errno);
                return;
            default:
                log_limited(&rl_refused, L_WARNING, "accept: %s",
                            strerror(errno));
                return;
            }
        }
        /*
         * The shortage is over when accepting has worked for a while:
         * a connection accepted between two refusals is the same episode.
         */
        if (loop.episode &&
            monotonic_ms() - loop.last_short_ms >= EPISODE_QUIET_MS) {
            log_notice("accepting connections again (paused %lu time%s)",
                       loop.pauses, loop.pauses == 1 ? "" : "s");
            loop.episode = false;
        }
        admit(fd);
    }
}

/* ---- Descriptors ---- */

/* Raise the descriptor limit and fit the budgets in, control first. */
static void fit_fd_budget(struct server_opts *o)
{
    struct rlimit rl;
    rlim_t avail, need, left;

    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    avail = rl.rlim_cur > FD_RESERVE ? rl.rlim_cur - FD_RESERVE : 0;
    need = (rlim_t)o->max_control + o->max_clients + o->max_pending;
    if (need <= avail)
        return;
    if (o->max_control > avail / 2)
        o->max_control = (unsigned int)(avail / 2 ? avail / 2 : 1);
    left = avail > o->max_control ? avail - o->max_control : 0;
    if (o->max_pending > left / 4)
        o->max_pending = (unsigned int)(left / 4);
    if (o->max_clients > left - o->max_pending)
        o->max_clients = (unsigned int)(left - o->max_pending);
    log_warn("the descriptor limit (%llu) is below what the connection "
             "limits need: serving at most %u control, %u guest and %u "
             "unmapped connections", (unsigned long long)rl.rlim_cur,
             o->max_control, o->max_clients, o->max_pending);
}

/* 0 after a clean stop, -1 if it could not start, 1 if threads remain. */
int server_run(struct hypfs *fs, const struct server_opts *opts,
               const char *config_path)
{
    struct epoll_event ev, events[64];
    struct sock_place sp = { .dirfd = -1 };
    struct server_opts fitted = *opts;
    char status[160];
    sigset_t mask;
    int sfd, wake_fd, lock_fd = -1, ret = 0, n_passed, err;
    bool stop = false;

    fit_fd_budget(&fitted);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Blocked here, before any thread exists, so only signalfd sees them. */
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    server_init(fs, &fitted, wake_fd);
    if (sfd < 0 || wake_fd < 0 || loop.epfd < 0) {
        log_err("cannot set up the main loop: %s", strerror(errno));
        ret = -1;
        goto out;
    }
    budget_set_max(fitted.guest_buffer_max);
    err = watch_start(fs, fitted.max_watches);
    if (err) {
        log_err("cannot start the watch notifier: %s", strerror(-err));
        ret = -1;
        goto out;
    }
    err = audit_start();
    if (err) {
        log_err("cannot start the audit trail's thread: %s", strerror(-err));
        ret = -1;
        goto out;
    }
    n_passed = sd_listen_fds(1);
    if (n_passed > 0)
        loop.lfd = sockdir_inherit(SD_LISTEN_FDS_START, n_passed, &sp,
                                   &loop.priv_fd);
    else
        loop.lfd = sockdir_take(opts->socket_path, &sp, &lock_fd,
                                &loop.priv_fd);
    if (loop.lfd < 0) {
        ret = -1;
        goto out;
    }
    loop.listen_src.kind = SRC_LISTEN;
    loop.priv_src.kind = SRC_PRIV;
    loop.signal_src.kind = SRC_SIGNAL;
    loop.wake_src.kind = SRC_WAKE;
    ev.events = EPOLLIN;
    ev.data.ptr = &loop.listen_src;
    epoll_ctl(loop.epfd, EPOLL_CTL_ADD, loop.lfd, &ev);
    ev.data.ptr = &loop.priv_src;
    epoll_ctl(loop.epfd, EPOLL_CTL_ADD, loop.priv_fd, &ev);
    ev.data.ptr = &loop.signal_src;
    epoll_ctl(loop.epfd, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.ptr = &loop.wake_src;
    epoll_ctl(loop.epfd, EPOLL_CTL_ADD, wake_fd, &ev);
    loop.snap = callers_get();
    channels_init(&sp, loop.epfd, opts->channel_gid);
    log_notice("serving %s%s: %u cpus, pid %d", opts->socket_path,
               n_passed > 0 ? " (sockets from the service manager)" : "",
               model.host_cpus, (int)getpid());
    /* Ready: clients can connect now (Type=notify). */
    snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %s",
             opts->socket_path);
    sd_notify(0, status);

    while (!stop) {
        int64_t now, deadline;
        int timeout, n, i;

        /* Before waiting: no event of the next wait names a freed channel. */
        channels_reap();
        now = monotonic_ms();
        deadline = next_deadline();
        timeout = deadline == INT64_MAX ? -1 :
                  deadline <= now ? 0 : (int)(deadline - now);
        n = epoll_wait(loop.epfd, events, 64, timeout);

        if (n < 0 && errno != EINTR) {
            log_err("epoll_wait: %s", strerror(errno));
            ret = -1;
            break;
        }
        for (i = 0; i < n; i++) {
            struct loop_source *src = events[i].data.ptr;
            struct signalfd_siginfo si;
            uint64_t v;

            switch (src->kind) {
            case SRC_LISTEN:
                /* The control domain's door first, whatever the order. */
                accept_some(loop.priv_fd);
                accept_some(loop.lfd);
                break;
            case SRC_PRIV:
                accept_some(loop.priv_fd);
                break;
            case SRC_WAKE:
                if (read(wake_fd, &v, sizeof(v)) < 0) {
                    /* Nothing to read: another event woke us. */
                }
                if (loop.paused) {
                    resume_accepting();
                    accept_some(loop.priv_fd);
                    accept_some(loop.lfd);
                }
                break;
            case SRC_PENDING:
                pending_readable((struct pending *)src);
                break;
            case SRC_CHANNEL:
                channels_accept((struct channel *)src);
                break;
            case SRC_SIGNAL:
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                    break;
                if (si.ssi_signo == SIGHUP) {
                    log_notice("SIGHUP: reloading %s", config_path ?
                               config_path : "the default mapping");
                    sd_notify(0, "RELOADING=1");
                    if (callers_load(config_path))
                        log_warn("configuration not reloaded; keeping the "
                                 "old");
                    sd_notify(0, "READY=1");
                    break;
                }
                log_notice("%s: stopping", si.ssi_signo == SIGTERM ?
                           "SIGTERM" : "SIGINT");
                stop = true;
                break;
            }
            /* A pending peer may be gone now: stop at a stop. */
            if (stop)
                break;
        }
        now = monotonic_ms();
        pending_expire(now);
        if (loop.paused && now >= loop.resume_at) {
            resume_accepting();
            accept_some(loop.priv_fd);
            accept_some(loop.lfd);
        }
    }

    /* Stop: no new clients; end every connection; wait for the threads. */
    sd_notify(0, "STOPPING=1");
    close(loop.lfd);
    loop.lfd = -1;
    close(loop.priv_fd);
    loop.priv_fd = -1;
    channels_fini();
    sockdir_release(&sp, lock_fd);
    lock_fd = -1;
    while (loop.pending)
        pending_close(loop.pending);
    if (server_drain())
        ret = 1;
 out:
    callers_put(loop.snap);
    loop.snap = NULL;
    if (sp.dirfd >= 0)
        close(sp.dirfd);
    if (loop.lfd >= 0)
        close(loop.lfd);
    if (loop.priv_fd >= 0)
        close(loop.priv_fd);
    if (lock_fd >= 0)
        close(lock_fd);
    if (loop.epfd >= 0)
        close(loop.epfd);
    if (sfd >= 0)
        close(sfd);
    /* Said even if threads did not end: those then log on their own. */
    audit_stop();
    /* Threads that did not end may still use these: leave them then. */
    if (ret <= 0)
        watch_stop();
    if (ret <= 0 && wake_fd >= 0) {
        server_forget_wake();
        close(wake_fd);
    }
    return ret;
}
