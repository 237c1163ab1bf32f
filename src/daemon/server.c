/*
 * Serving the connections of domains: one thread per connection, frames
 * in, replies out, each class of caller within its own budget.
 *
 * Callers are served in three classes (listen.c sorts them at accept):
 *
 *   control   peers mapped to domain 0: a thread per connection, up to
 *             --max-control-clients, no idle timeout;
 *   guests    peers mapped to another live domain: a thread per
 *             connection, up to --max-clients in all and limit-per-uid per
 *             user, closed after --idle-timeout seconds without a frame;
 *             the payload they may have buffered at once, all together,
 *             is bounded (--guest-buffer), and a write's value is taken
 *             in only once the write is known to be allowed (the core's
 *             hypfs_write_check(): path, rights and size first);
 *   unmapped  peers with no hypfs right: never reach this file (listen.c
 *             answers them itself, without a thread or a buffer).
 *
 * No other caller, however many connections or distinct user ids it
 * brings, can use up what the control domain's requests need: a slot, a
 * thread, descriptors (listen.c fits the budgets into the descriptor
 * limit, the control domain's first) or memory.
 *
 * Why threads: a request is a short, bounded piece of work (a lookup and
 * a copy), so a blocking thread per client answers with the fewest system
 * calls (a read and a write per request, no readiness polling), which
 * keeps a hypercall through the socket close to a raw round trip; and a
 * client that stalls stalls only its own thread.
 *
 * Hostile clients: a frame header is checked before its payload is read;
 * a frame must arrive completely within FRAME_TIMEOUT_MS of its first
 * byte; a reply must be taken within SEND_TIMEOUT_S; any violation closes
 * that connection only, and every log line a peer can cause is
 * rate-limited.
 *
 * Identity comes from the kernel (SO_PEERCRED at accept) and is mapped to
 * a domain for every request through the published snapshot (callers.c),
 * so a reload or a destroyed domain takes effect at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
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
    bool control;               /* counted in the control domain's budget */
    struct conn *next, *prev;
    struct callers_snap *snap;  /* the mapping this connection last used */
    uint8_t *rbuf;              /* buffered input: [rstart, rend) */
    size_t rcap, rstart, rend;
    struct dbudget *domain;     /* its domain's budget (NULL: control) */
    size_t held;                /* a large frame it holds, counted */
    struct hypfsd_guest guest;  /* output buffer, reused */
    struct watchset *ws;        /* its watches */
    struct channel *ch;         /* a guest's channel: its identity (ref) */
};

static struct {
    pthread_mutex_t lock;       /* guards everything below but fs, opts */
    pthread_cond_t drained;
    struct conn *list;
    unsigned int ncontrol, nguest;
    unsigned int peak;          /* most connection threads at once */
    int wake_fd;                /* eventfd: a connection ended */
    struct hypfs *fs;
    struct server_opts opts;
} srv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .drained = PTHREAD_COND_INITIALIZER,
    .wake_fd = -1,
    .opts = SERVER_OPTS_DEFAULT,
};

struct log_ratelimit rl_refused = LOG_RATELIMIT_INIT;
static struct log_ratelimit rl_bad = LOG_RATELIMIT_INIT;

/*
 * Guests' operations run at most one per CPU at once.  A thread per
 * connection means a thousand guests' connections, each with a request in
 * flight, are a thousand runnable threads; niced, they still take the CPU
 * from the control domain's one (the scheduler shares among the runnable).
 * Waiting here they are not runnable.  Only the operation is gated, never
 * a read from or a write to a guest: a guest that stalls its socket holds
 * no turn.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t turn;
    unsigned int free;
    bool sized;                 /* free set to the CPUs, once */
} gate = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .turn = PTHREAD_COND_INITIALIZER,
};

static void gate_enter(void)
{
    pthread_mutex_lock(&gate.lock);
    /* Sized at first use: whoever runs the server code, daemon or test. */
    if (!gate.sized) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        gate.free = cpus > 0 ? (unsigned int)cpus : 1;
        gate.sized = true;
    }
    while (!gate.free)
        pthread_cond_wait(&gate.turn, &gate.lock);
    gate.free--;
    pthread_mutex_unlock(&gate.lock);
}

static void gate_leave(void)
{
    pthread_mutex_lock(&gate.lock);
    gate.free++;
    pthread_cond_signal(&gate.turn);
    pthread_mutex_unlock(&gate.lock);
}

/* ---- One connection of a domain ---- */

/* Room for @n bytes from rstart: 0, or -1 without memory. */
static int make_room(struct conn *c, size_t n)
{
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
    return 0;
}

/*
 * Make [rstart, rend) hold at least @n bytes.  With @deadline < 0 wait as
 * long as it takes (between frames; a guest's idle timeout ends that),
 * else until the deadline.  0, or -1 when the peer went away, timed out
 * or there is no memory.
 */
static int fill(struct conn *c, size_t n, int64_t deadline)
{
    while (c->rend - c->rstart < n) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t got;

        if (make_room(c, n))
            return -1;
        /*
         * Between frames a blocking read is all it takes (shutdown() at
         * stop ends it).  Within a frame, read what is there and poll only
         * when nothing is: the usual frame arrives whole, at no extra cost.
         */
        got = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend,
                   deadline >= 0 ? MSG_DONTWAIT : 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - monotonic_ms();

            if (deadline < 0) {
                log_debug("connection of uid %u pid %d: idle for %u s, "
                          "closed", (unsigned int)c->uid, (int)c->pid,
                          srv.opts.idle_timeout_s);
                return -1;
            }
            if (left <= 0) {
                log_limited(&rl_bad, L_INFO, "connection of uid %u pid %d: "
                            "frame not completed in time, closed",
                            (unsigned int)c->uid, (int)c->pid);
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

/* Read and drop @n bytes of the stream (a payload nobody will use). */
static int skip(struct conn *c, size_t n, int64_t deadline)
{
    while (n) {
        size_t have = c->rend - c->rstart, take;

        if (!have) {
            c->rstart = c->rend = 0;
            if (fill(c, 1, deadline))
                return -1;
            have = c->rend - c->rstart;
        }
        take = have < n ? have : n;
        c->rstart += take;
        n -= take;
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
    if (c->ch)
        return hypfs_msg_write_chan(c->fd, iov, 3) ? -1 : 0;
    return hypfs_msg_writev_all(c->fd, iov, 3) ? -1 : 0;
}

/* The caller this connection is now (the mapping may have changed). */
static void identify(struct conn *c, struct hypfs_caller *caller)
{
    if (!callers_current(c->snap)) {
        callers_put(c->snap);
        c->snap = callers_get();
    }
    if (c->ch)
        /* A channel is its domain, whoever the VMM runs as. */
        caller->flags = channel_identity(c->ch, &caller->domid) ?
                        HYPFS_CALLER_HYPFS : 0;
    else
        callers_lookup(c->snap, c->uid, &caller->domid, &caller->flags);
    caller->mem = &hypfsd_guest_ops;
    caller->mem_ctx = &c->guest;
}

static int reply_op(struct conn *c, uint32_t seq, long ret)
{
    struct hypfs_msg_op_reply reply = { .ret = ret };

    return send_reply(c, HYPFS_MSG_OP_REPLY, seq, &reply, sizeof(reply),
                      NULL, 0);
}

/* Hypercalls run, for `hypfsctl stats` (which one reached hypfsd). */
static atomic_ulong ops_served;

unsigned long server_ops_served(void)
{
    return atomic_load_explicit(&ops_served, memory_order_relaxed);
}

/* Run the hypercall @op on the bytes given, and answer it. */
static int run_op(struct conn *c, const struct hypfs_msg_op *op,
                  const uint8_t *path, const uint8_t *data, uint32_t seq)
{
    struct hypfs_msg_op_reply reply = { 0 };
    struct hypfs_caller caller;

    char wpath[XEN_HYPFS_MAX_PATHLEN], before[600], after[600];
    uint64_t gen_before = 0, gen_after = 0;
    bool audit = false;

    identify(c, &caller);
    if (op->cmd == XEN_HYPFS_OP_write_contents) {
        int64_t us = budget_write_pace(c->domain);

        if (us)
            usleep((useconds_t)(us < 10000000 ? us : 10000000));
    }
    /* A write whose path is whole: its values before and after are logged. */
    if (op->cmd == XEN_HYPFS_OP_write_contents && op->path_len &&
        op->path_len == op->arg2 && op->path_len <= sizeof(wpath) &&
        !path[op->path_len - 1] && caller.flags != 0) {
        memcpy(wpath, path, op->path_len);
        audit = true;
        audit_value(srv.fs, wpath, before, sizeof(before), &gen_before);
    }
    if (!c->control)
        gate_enter();
    atomic_fetch_add_explicit(&ops_served, 1, memory_order_relaxed);
    hypfsd_guest_init(&c->guest, op, path, data);
    reply.ret = hypfs_do_op(srv.fs, &caller, op->cmd, op->arg1, op->arg2,
                            op->arg3, op->arg4);
    if (audit) {
        if (!reply.ret)
            audit_value(srv.fs, wpath, after, sizeof(after), &gen_after);
        audit_write(&caller, c->ch ? AUDIT_UID_CHANNEL : c->uid, wpath,
                    before, after, reply.ret,
                    !gen_before || !gen_after || gen_before != gen_after);
    }
    /* A watch is made once the operation has let go of the tree. */
    if (op->cmd == XEN_HYPFS_OP_watch || op->cmd == XEN_HYPFS_OP_unwatch) {
        int err = watch_apply(c->ws, &caller);

        if (!reply.ret && err)
            reply.ret = err;
    }
    if (!c->control)
        gate_leave();
    reply.out_len = (uint32_t)c->guest.out_len;
    return send_reply(c, HYPFS_MSG_OP_REPLY, seq, &reply, sizeof(reply),
                      c->guest.out, c->guest.out_len);
}

static int handle_op(struct conn *c, const uint8_t *payload, uint32_t len,
                     uint32_t seq)
{
    struct hypfs_msg_op op;
    const uint8_t *path, *data;

    if (hypfsd_parse_op(payload, len, &op, &path, &data)) {
        log_limited(&rl_bad, L_DEBUG, "connection of uid %u pid %d: "
                    "malformed request", (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    return run_op(c, &op, path, data, seq);
}

static int handle_ctl(struct conn *c, const uint8_t *payload, uint32_t len,
                      uint32_t seq)
{
    const char *argv[33];
    struct hypfs_msg_ctl_reply reply;
    struct ctl_result res = { 0 };
    struct hypfs_caller caller;
    int argc, ret;

    argc = hypfsd_parse_ctl((const char *)payload, len, argv, 33);
    if (argc < 0) {
        log_limited(&rl_bad, L_DEBUG, "connection of uid %u pid %d: "
                    "malformed control request", (unsigned int)c->uid,
                    (int)c->pid);
        return -1;
    }
    identify(c, &caller);
    if (!(caller.flags & HYPFS_CALLER_CONTROL)) {
        static const char msg[] = "control commands are for the control "
                                  "domain only";

        /* EACCES, not EPERM: no right to the door, not a refused deed. */
        reply.ret = -EACCES;
        reply.text_len = sizeof(msg) - 1;
        return send_reply(c, HYPFS_MSG_CTL_REPLY, seq, &reply, sizeof(reply),
                          msg, reply.text_len);
    }
    ctl_run(argc, argv, &res);
    audit_ctl(c->uid, argc, argv, res.status);
    reply.ret = res.status;
    reply.text_len = (uint32_t)res.len;
    ret = send_reply(c, HYPFS_MSG_CTL_REPLY, seq, &reply, sizeof(reply),
                     res.text, res.len);
    free(res.text);
    return ret;
}

/* ---- A frame's payload, counted against its domain's budget ---- */

static int budget_take(struct conn *c, size_t n, int64_t deadline)
{
    if (budget_charge_wait(c->domain, n, deadline)) {
        log_limited(&rl_refused, L_NOTICE, "connection of uid %u pid %d: "
                    "domain %u's budget (%zu bytes) stayed full, closed",
                    (unsigned int)c->uid, (int)c->pid,
                    budget_domid(c->domain), budget_max());
        return -1;
    }
    c->held = n;
    return 0;
}

static void budget_release(struct conn *c)
{
    budget_uncharge(c->domain, c->held);
    c->held = 0;
}

/*
 * A large request of a guest (a write with a value, mostly): its value is
 * taken in only once the write is known to be allowed, and then within
 * the guests' budget; otherwise it is read and dropped, never buffered.
 * 0 to go on, -1 to close.
 */
static int serve_large_op(struct conn *c, const struct hypfs_msg_hdr *hdr,
                          int64_t deadline)
{
    uint8_t path[XEN_HYPFS_MAX_PATHLEN];
    struct hypfs_msg_op op;
    struct hypfs_caller caller;
    size_t head = sizeof(*hdr) + sizeof(op);
    long ret;
    int err;

    if (fill(c, head, deadline))
        return -1;
    memcpy(&op, c->rbuf + c->rstart + sizeof(*hdr), sizeof(op));
    /* The lengths must agree before any of them is trusted. */
    if (op.flags || op.path_len > XEN_HYPFS_MAX_PATHLEN ||
        op.path_len > op.arg2 || op.data_len > HYPFS_MSG_DATA_MAX ||
        op.data_len > op.arg4 ||
        hdr->len != sizeof(op) + (size_t)op.path_len + op.data_len) {
        log_limited(&rl_bad, L_DEBUG, "connection of uid %u pid %d: "
                    "malformed request", (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    if (fill(c, head + op.path_len, deadline))
        return -1;
    memcpy(path, c->rbuf + c->rstart + head, op.path_len);
    if (op.cmd == XEN_HYPFS_OP_write_contents) {
        /* The checks that need only the path: the caller's rights first. */
        identify(c, &caller);
        hypfsd_guest_init(&c->guest, &op, path, NULL);
        c->guest.data_len = 0;
        ret = hypfs_write_check(srv.fs, &caller, op.arg1, op.arg2, op.arg4);
        if (!ret) {
            if (budget_take(c, hdr->len, deadline))
                return -1;
            err = fill(c, sizeof(*hdr) + hdr->len, deadline);
            if (!err) {
                c->rstart += sizeof(*hdr);
                err = handle_op(c, c->rbuf + c->rstart, hdr->len, hdr->seq);
                c->rstart += hdr->len;
            }
            budget_release(c);
            return err;
        }
        c->rstart += head + op.path_len;
        return skip(c, op.data_len, deadline) ? -1
                                              : reply_op(c, hdr->seq, ret);
    }
    /* Any other command reads no value: drop it, then run without. */
    c->rstart += head + op.path_len;
    if (skip(c, op.data_len, deadline))
        return -1;
    op.data_len = 0;
    return run_op(c, &op, path, NULL, hdr->seq);
}

/*
 * Wait for the next frame.  A connection that watches waits for events
 * too, and sends them as they come: a watcher is not idle, and has no
 * idle timeout; one that stops reading is closed when a send times out.
 */
static int wait_frame(struct conn *c)
{
    while (c->rend == c->rstart && watchset_count(c->ws)) {
        struct pollfd p[2] = {
            { .fd = c->fd, .events = POLLIN },
            { .fd = watchset_fd(c->ws), .events = POLLIN },
        };

        if (watch_flush(c->ws, c->fd))
            return -1;
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (p[0].revents)
            break;
    }
    return fill(c, 1, -1);
}

/* ---- Guests' channels: a byte stream that may carry garbage ---- */

/*
 * As fill(), for a channel: 0 when @n bytes are there, 1 when the stream
 * stalled (no byte for HYPFS_CHAN_STALL_MS) or @deadline passed before
 * that, -1 when the peer went away or there is no memory.  The deadline
 * bounds a frame that trickles in: a guest cannot hold its share of the
 * guests' buffer for ever a byte at a time.
 */
static int chan_fill(struct conn *c, size_t n, int64_t deadline)
{
    int64_t last = monotonic_ms();

    while (c->rend - c->rstart < n) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t got;

        if (make_room(c, n))
            return -1;
        got = recv(c->fd, c->rbuf + c->rend, c->rcap - c->rend, MSG_DONTWAIT);
        if (got > 0) {
            c->rend += (size_t)got;
            last = monotonic_ms();
            continue;
        }
        if (!got)
            return -1;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        {
            int64_t now = monotonic_ms(), until = last + HYPFS_CHAN_STALL_MS;

            if (until > deadline)
                until = deadline;
            if (now >= until)
                return 1;
            if (poll(&pfd, 1, (int)(until - now)) < 0 && errno != EINTR)
                return -1;
        }
    }
    return 0;
}

/* Drop what cannot begin a frame: up to the next (possible) magic. */
static void chan_skip_to_magic(struct conn *c)
{
    static const uint32_t magic = HYPFS_MSG_MAGIC;
    const uint8_t *m = (const uint8_t *)&magic;
    size_t i, have = c->rend - c->rstart;
    const uint8_t *p = c->rbuf + c->rstart;

    for (i = 0; i < have; i++) {
        size_t k = have - i < 4 ? have - i : 4;

        if (p[i] == m[0] && !memcmp(p + i, m, k))
            break;
    }
    c->rstart += i;
}

static int chan_hello(struct conn *c, uint32_t seq)
{
    struct hypfs_msg_hello_reply r = { 0 };
    struct watchset *ws;

    /* A new guest process: the previous one's watches end with it. */
    if (watchset_count(c->ws) &&
        (ws = watchset_new(c->uid, c->ch, false, c->domain))) {
        watchset_close(c->ws);
        c->ws = ws;
        c->guest.watches = ws;
    }
    r.ret = channel_identity(c->ch, &r.domid) ? 0 : -EPERM;
    return send_reply(c, HYPFS_MSG_HELLO_REPLY, seq, &r, sizeof(r), NULL, 0);
}

/*
 * One frame from a channel.  Nothing in the stream is trusted to be where
 * a frame begins: a frame is taken only whole, plausible and with its
 * CRC right; otherwise its first byte goes and the search goes on in
 * what is buffered (so the remains of a killed guest process's request
 * cannot swallow its successor's).  0 to go on, -1 to close.
 */
static int serve_chan_frame(struct conn *c)
{
    struct hypfs_msg_hdr hdr;
    int64_t deadline;
    size_t total;
    uint32_t crc;
    int r, ret;

    for (;;) {
        if (c->rend == c->rstart) {
            c->rstart = c->rend = 0;
            if (wait_frame(c))
                return -1;
        }
        chan_skip_to_magic(c);
        if (c->rend == c->rstart)
            continue;
        /* From where this frame would begin, as for a socket's frames. */
        deadline = monotonic_ms() + FRAME_TIMEOUT_MS;
        r = chan_fill(c, sizeof(hdr), deadline);
        if (r < 0)
            return -1;
        if (r > 0) {
            c->rstart++;
            continue;
        }
        memcpy(&hdr, c->rbuf + c->rstart, sizeof(hdr));
        if (hdr.type == HYPFS_MSG_HELLO ? hypfs_msg_hdr_check(&hdr) || hdr.len
                                        : hypfsd_check_request_hdr(&hdr) != 0) {
            c->rstart++;
            continue;
        }
        total = sizeof(hdr) + hdr.len + HYPFS_CHAN_TRAILER;
        /* What a guest may have buffered at once: its domain's budget. */
        if (total > RBUF_INITIAL &&
            budget_take(c, total, monotonic_ms() + HYPFS_CHAN_STALL_MS)) {
            c->rstart++;
            continue;
        }
        r = chan_fill(c, total, deadline);
        if (r) {
            budget_release(c);
            if (r < 0)
                return -1;
            c->rstart++;
            continue;
        }
        {
            struct iovec v = { c->rbuf + c->rstart, total - HYPFS_CHAN_TRAILER };

            memcpy(&crc, c->rbuf + c->rstart + v.iov_len, sizeof(crc));
            if (crc != hypfs_msg_crc(0, &v, 1)) {
                budget_release(c);
                c->rstart++;
                continue;
            }
        }
        break;
    }
    c->rstart += sizeof(hdr);
    {
        const uint8_t *payload = c->rbuf + c->rstart, *path, *data;
        struct hypfs_msg_op op;
        const char *argv[33];

        /*
         * A whole frame with its CRC right but malformed is the guest's
         * mistake: it is skipped (the guest's call times out), and the
         * VMM's connection, which all the guest's processes share, stays.
         */
        if (hdr.type == HYPFS_MSG_HELLO)
            ret = chan_hello(c, hdr.seq);
        else if (hdr.type == HYPFS_MSG_OP)
            ret = hypfsd_parse_op(payload, hdr.len, &op, &path, &data) ? 0 :
                  run_op(c, &op, path, data, hdr.seq);
        else
            ret = hypfsd_parse_ctl((const char *)payload, hdr.len, argv,
                                   33) < 0 ? 0 :
                  handle_ctl(c, payload, hdr.len, hdr.seq);
    }
    c->rstart += hdr.len + HYPFS_CHAN_TRAILER;
    budget_release(c);
    return ret;
}

/* One frame: 0 to go on, -1 to close the connection. */
static int serve_frame(struct conn *c)
{
    struct hypfs_msg_hdr hdr;
    int64_t deadline;
    int ret;

    if (c->ch) {
        ret = serve_chan_frame(c);
        goto done;
    }

    /* Between frames a client may stay quiet (a guest: for a while). */
    if (wait_frame(c))
        return -1;
    deadline = monotonic_ms() + FRAME_TIMEOUT_MS;
    if (fill(c, sizeof(hdr), deadline))
        return -1;
    memcpy(&hdr, c->rbuf + c->rstart, sizeof(hdr));
    if (hypfsd_check_request_hdr(&hdr)) {
        log_limited(&rl_bad, L_DEBUG, "connection of uid %u pid %d: bad "
                    "frame header", (unsigned int)c->uid, (int)c->pid);
        return -1;
    }
    if (hdr.type == HYPFS_MSG_OP && !c->control &&
        sizeof(hdr) + hdr.len > RBUF_INITIAL) {
        ret = serve_large_op(c, &hdr, deadline);
    } else {
        if (fill(c, sizeof(hdr) + hdr.len, deadline))
            return -1;
        c->rstart += sizeof(hdr);
        if (hdr.type == HYPFS_MSG_OP)
            ret = handle_op(c, c->rbuf + c->rstart, hdr.len, hdr.seq);
        else
            ret = handle_ctl(c, c->rbuf + c->rstart, hdr.len, hdr.seq);
        c->rstart += hdr.len;
    }
 done:
    if (c->rstart == c->rend) {
        c->rstart = c->rend = 0;
        /*
         * A guest's buffer grows only for a large frame, counted while it
         * is served (budget_take()): it goes back at once, so that nothing
         * is held uncounted afterwards.
         */
        if (c->rcap > (c->control ? RBUF_KEEP : RBUF_INITIAL)) {
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

static struct conn *conn_new(int fd, uid_t uid, pid_t pid, bool control,
                             struct channel *ch)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c || !(c->rbuf = malloc(RBUF_INITIAL))) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->uid = uid;
    c->pid = pid;
    c->control = control;
    c->rcap = RBUF_INITIAL;
    c->snap = callers_get();
    /* What it makes us hold counts against its domain's budget. */
    if (!control) {
        uint32_t domid = 0;
        unsigned int flags;

        if (ch)
            domid = channel_domid(ch);
        else
            callers_lookup(c->snap, uid, &domid, &flags);
        c->domain = budget_get(domid);
        /* Without its budget it would hold memory uncounted: refused. */
        if (domid && !c->domain) {
            callers_put(c->snap);
            free(c->rbuf);
            free(c);
            return NULL;
        }
    }
    c->ws = watchset_new(uid, ch, control, c->domain);
    if (!c->ws) {
        callers_put(c->snap);
        budget_put(c->domain);
        free(c->rbuf);
        free(c);
        return NULL;
    }
    c->guest.watches = c->ws;
    c->guest.domain = c->domain;
    if (ch) {
        channel_get(ch);
        c->ch = ch;
    }
    return c;
}

static void conn_free(struct conn *c)
{
    close(c->fd);
    free(c->rbuf);
    budget_uncharge(c->domain, c->held);
    hypfsd_guest_fini(&c->guest);
    watchset_close(c->ws);
    callers_put(c->snap);
    channel_put(c->ch);
    budget_put(c->domain);
    free(c);
}

/*
 * Guests' threads yield to the control domain's: a busy guest (or many)
 * cannot keep the CPU from the control domain's requests.  Linux's nice
 * value is per thread; lowering one's own priority needs no privilege.
 */
#define GUEST_NICENESS  19

static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    uint64_t one = 1;

    if (!c->control) {
        int nice_now;

        errno = 0;
        nice_now = getpriority(PRIO_PROCESS, 0);
        if (nice_now != -1 || !errno)
            setpriority(PRIO_PROCESS, 0, nice_now + GUEST_NICENESS);
    }

    log_debug("connection of uid %u pid %d opened (%s)", (unsigned int)c->uid,
              (int)c->pid, c->control ? "control domain" : "guest");
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
    if (c->control)
        srv.ncontrol--;
    else
        srv.nguest--;
    if (!srv.ncontrol && !srv.nguest)
        pthread_cond_broadcast(&srv.drained);
    pthread_mutex_unlock(&srv.lock);
    conn_free(c);
    pthread_mutex_lock(&srv.lock);
    /*
     * A descriptor is free again: accepting may resume if it paused.
     * Under the lock, which server_forget_wake() takes before the
     * eventfd is closed (a detached thread may outlive the main loop).
     */
    if (srv.wake_fd >= 0 && write(srv.wake_fd, &one, sizeof(one)) < 0) {
        /* The counter saturated: the main loop is awake anyway. */
    }
    pthread_mutex_unlock(&srv.lock);
    return NULL;
}

static int serve_here(struct hypfs *fs, int fd, uid_t uid, struct channel *ch)
{
    struct callers_snap *snap = callers_get();
    unsigned int flags;
    uint32_t domid;
    struct conn *c;

    callers_lookup(snap, uid, &domid, &flags);
    callers_put(snap);
    c = conn_new(fd, uid, getpid(), !ch && (flags & HYPFS_CALLER_CONTROL), ch);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    srv.fs = fs;
    hypfsd_fs = fs;
    while (!serve_frame(c))
        ;
    conn_free(c);
    /* The caller frees the tree (tests, fuzzing): forget it. */
    hypfsd_fs = NULL;
    return 0;
}

int server_serve_fd(struct hypfs *fs, int fd, uid_t uid)
{
    return serve_here(fs, fd, uid, NULL);
}

int server_serve_channel_fd(struct hypfs *fs, int fd, struct channel *ch)
{
    return serve_here(fs, fd, 0, ch);
}

static void start_locked(struct conn *c);

void server_start_conn(int fd, const struct ucred *cred, bool control,
                       unsigned int limit_per_uid)
{
    struct timeval snd = { SEND_TIMEOUT_S, 0 };
    struct timeval idle = { srv.opts.idle_timeout_s, 0 };
    struct conn *c, *it;
    unsigned int same_uid = 0;
    const char *full = NULL;

    pthread_mutex_lock(&srv.lock);
    if (control) {
        if (srv.ncontrol >= srv.opts.max_control)
            full = "the control domain's connections";
    } else {
        for (it = srv.list; it; it = it->next)
            same_uid += !it->control && it->uid == cred->uid;
        if (srv.nguest >= srv.opts.max_clients)
            full = "the guests' connections";
        else if (same_uid >= limit_per_uid)
            full = "this user's connections";
    }
    if (full) {
        pthread_mutex_unlock(&srv.lock);
        log_limited(&rl_refused, L_NOTICE, "refusing a connection of uid %u "
                    "pid %d: %s are all in use", (unsigned int)cred->uid,
                    (int)cred->pid, full);
        close(fd);
        return;
    }
    c = conn_new(fd, cred->uid, cred->pid, control, NULL);
    if (!c) {
        pthread_mutex_unlock(&srv.lock);
        log_limited(&rl_refused, L_WARNING, "refusing a connection of uid "
                    "%u: out of memory", (unsigned int)cred->uid);
        close(fd);
        return;
    }
    /* Threads read blocking; a guest's reads end when it idles too long. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
    if (!control && srv.opts.idle_timeout_s)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
    start_locked(c);
}

/* Count @c, start its thread (srv.lock held; released here). */
static void start_locked(struct conn *c)
{
    pthread_attr_t attr;
    pthread_t tid;
    bool control = c->control;

    c->next = srv.list;
    if (srv.list)
        srv.list->prev = c;
    srv.list = c;
    if (control)
        srv.ncontrol++;
    else
        srv.nguest++;
    if (srv.ncontrol + srv.nguest > srv.peak)
        srv.peak = srv.ncontrol + srv.nguest;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, conn_thread, c)) {
        srv.list = c->next;
        if (c->next)
            c->next->prev = NULL;
        if (control)
            srv.ncontrol--;
        else
            srv.nguest--;
        pthread_mutex_unlock(&srv.lock);
        log_limited(&rl_refused, L_WARNING, "cannot start a thread for a "
                    "client of uid %u", (unsigned int)c->uid);
        conn_free(c);
    } else
        pthread_mutex_unlock(&srv.lock);
    pthread_attr_destroy(&attr);
}

/*
 * A VMM's connection to a domain's channel.  It counts among the guests'
 * connections, a few per channel (a VMM reconnecting while its old
 * connection is not yet seen closed), and has no idle timeout: a guest's
 * processes come and go on it, and the VMM keeps it for the domain's life.
 */
#define CONNS_PER_CHANNEL   4u

void server_start_channel(int fd, const struct ucred *cred,
                          struct channel *ch)
{
    struct timeval snd = { SEND_TIMEOUT_S, 0 };
    struct conn *c, *it;
    unsigned int same = 0;
    const char *full = NULL;

    pthread_mutex_lock(&srv.lock);
    for (it = srv.list; it; it = it->next)
        same += it->ch == ch;
    if (srv.nguest >= srv.opts.max_clients)
        full = "the guests' connections are all in use";
    else if (same >= CONNS_PER_CHANNEL)
        full = "it has too many connections";
    if (full || !(c = conn_new(fd, cred->uid, cred->pid, false, ch))) {
        pthread_mutex_unlock(&srv.lock);
        log_limited(&rl_refused, L_NOTICE, "refusing a connection of uid %u "
                    "pid %d to the channel of domain %u: %s",
                    (unsigned int)cred->uid, (int)cred->pid,
                    channel_domid(ch), full ? full : "out of memory");
        close(fd);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
    /*
     * One VM per domain: a second connection is a VMM reconnecting while
     * its old connection is not yet seen closed, or a second VMM that
     * acts as this domain too.  Said loudly, naming both.
     */
    if (same) {
        for (it = srv.list; it && it->ch != ch; it = it->next)
            ;
        log_warn("domain %u: another VMM (uid %u pid %d) connected to its "
                 "channel while uid %u pid %d is connected: each acts as "
                 "domain %u (expected only while a VMM reconnects)",
                 channel_domid(ch), (unsigned int)cred->uid, (int)cred->pid,
                 it ? (unsigned int)it->uid : 0u, it ? (int)it->pid : 0,
                 channel_domid(ch));
    } else
        log_info("domain %u: a VMM (uid %u pid %d) connected to its channel",
                 channel_domid(ch), (unsigned int)cred->uid, (int)cred->pid);
    start_locked(c);
}

void server_hang_up_old_channels(const char *name)
{
    struct conn *c;
    uint32_t domid;

    pthread_mutex_lock(&srv.lock);
    for (c = srv.list; c; c = c->next)
        if (c->ch && !channel_identity(c->ch, &domid) &&
            !strcmp(channel_name(c->ch), name)) {
            /* Its thread sees the end and closes; the fd is valid till then. */
            shutdown(c->fd, SHUT_RDWR);
            log_info("the VMM (uid %u pid %d) of the earlier domain named %s "
                     "is hung up, to reconnect to the new domain's channel",
                     (unsigned int)c->uid, (int)c->pid, name);
        }
    pthread_mutex_unlock(&srv.lock);
}

void server_wake(void)
{
    uint64_t one = 1;

    pthread_mutex_lock(&srv.lock);
    if (srv.wake_fd >= 0 && write(srv.wake_fd, &one, sizeof(one)) < 0) {
        /* Saturated: the main loop is awake anyway. */
    }
    pthread_mutex_unlock(&srv.lock);
}

void server_init(struct hypfs *fs, const struct server_opts *opts,
                 int wake_fd)
{
    srv.fs = fs;
    hypfsd_fs = fs;
    srv.opts = *opts;
    srv.wake_fd = wake_fd;
}

void server_forget_wake(void)
{
    pthread_mutex_lock(&srv.lock);
    srv.wake_fd = -1;
    pthread_mutex_unlock(&srv.lock);
}

const struct server_opts *server_opts(void)
{
    return &srv.opts;
}

void server_counts(unsigned int *control, unsigned int *guests,
                   unsigned int *peak)
{
    pthread_mutex_lock(&srv.lock);
    *control = srv.ncontrol;
    *guests = srv.nguest;
    if (peak)
        *peak = srv.peak;
    pthread_mutex_unlock(&srv.lock);
}

int server_drain(void)
{
    struct timespec until;
    struct conn *c;
    int ret = 0;

    pthread_mutex_lock(&srv.lock);
    for (c = srv.list; c; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (srv.ncontrol || srv.nguest)
        if (pthread_cond_timedwait(&srv.drained, &srv.lock, &until)) {
            log_warn("%u connections did not end in time",
                     srv.ncontrol + srv.nguest);
            ret = 1;
            break;
        }
    pthread_mutex_unlock(&srv.lock);
    return ret;
}
