/*
 * The client's side of the hypfsd protocol: connecting, checking who
 * serves, one request and its reply at a time, reconnecting, and taking
 * in the events a daemon sends unasked.  See client.h for the contract.
 *
 * Replies are not trusted.  The header, the sequence number, every length
 * and the result's range are checked before a byte of payload is used; a
 * reply can never be larger than what the request allows (arg4 for a
 * hypercall's output) nor than HYPFS_MSG_REPLY_MAX; and the payload is
 * streamed into the caller's own buffer through a fixed 64 KiB window,
 * so a hostile or broken daemon can neither overrun a buffer nor make the
 * client allocate beyond its bounds.
 *
 * A request goes out in one sendmsg() (header, fixed part and path from
 * the stack, the value from the caller's buffer), and its reply usually
 * comes in with one read().
 */
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

#define RBUF_SIZE       (64u * 1024u)

static void set_err(struct hypfs_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct hypfs_client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

static const char *where(const struct hypfs_client *c)
{
    return c->socket_path ? c->socket_path : "the hypfsd connection";
}

/* ---- Connecting, and who serves ---- */

int hypfs_client_connect_path(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, ret;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        ret = -errno;
        close(fd);
        return ret;
    }
    return fd;
}

/* The uid a user name or number stands for; -1 if none. */
static long lookup_user(const char *s)
{
    struct passwd pw, *res = NULL;
    char buf[1024], *end;
    unsigned long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (!*end && !errno && v < (uid_t)-1)
        return (long)v;
    if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) || !res)
        return -1;
    return (long)res->pw_uid;
}

/* The daemon's own user when it does not run as root or as us. */
static long server_user(const char **named)
{
    const char *env = getenv("HYPFS_SERVER_USER");

    if (env && *env) {
        *named = "$HYPFS_SERVER_USER";
        return lookup_user(env);
    }
    *named = "the system user hypfsd";
    return lookup_user("hypfsd");
}

int hypfs_client_check_server(int fd, const char *what, char *err,
                              size_t errlen)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    struct passwd pw, *res = NULL;
    char buf[1024];
    const char *named;
    long trusted;
    int ret;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len)) {
        ret = -errno;
        snprintf(err, errlen, "cannot tell who serves %s: %s", what,
                 strerror(-ret));
        return ret;
    }
    if (cr.uid == 0 || cr.uid == geteuid() || cr.uid == getuid())
        return 0;
    trusted = server_user(&named);
    if (trusted >= 0 && (uid_t)trusted == cr.uid)
        return 0;
    if (getpwuid_r(cr.uid, &pw, buf, sizeof(buf), &res))
        res = NULL;
    snprintf(err, errlen, "refusing %s: it is served by uid %u%s%s%s, not by "
             "root, this user or %s (set HYPFS_SERVER_USER to trust another "
             "user)", what, (unsigned int)cr.uid, res ? " (" : "",
             res ? res->pw_name : "", res ? ")" : "", named);
    return -EPERM;
}

static const char *connect_hint(int err)
{
    switch (err) {
    case ENOENT:
        return " (is hypfsd running? HYPFS_SOCKET chooses another socket)";
    case ECONNREFUSED:
        return " (nobody serves it: is hypfsd running?)";
    case EACCES:
        return " (this user may not reach it)";
    default:
        return "";
    }
}

int hypfs_client_connect_best(const char *path)
{
    char priv[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;

    /*
     * Root may use the control domain's own door (mode 0600), where its
     * connections never queue behind anybody else's.  Only root tries:
     * for everyone else it is closed anyway.  If it is missing (an older
     * daemon) or nobody answers, the door for everyone will do.  If it is
     * there but not the daemon's (squatted), that is what the caller is
     * told: a priv socket that is not ours is never fallen back from.
     */
    if (geteuid() == 0 &&
        (size_t)snprintf(priv, sizeof(priv), "%s%s", path,
                         HYPFS_PRIV_SUFFIX) < sizeof(priv)) {
        fd = hypfs_client_connect_path(priv);
        if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED &&
                        fd != -EACCES && fd != -ENOTDIR))
            return fd;
    }
    return hypfs_client_connect_path(path);
}

static int do_connect(struct hypfs_client *c)
{
    int fd, ret;

    fd = c->connect ? c->connect(c->connect_arg)
                    : hypfs_client_connect_best(c->socket_path);
    if (fd < 0) {
        set_err(c, "cannot reach hypfsd at %s: %s%s", where(c), strerror(-fd),
                connect_hint(-fd));
        return fd;
    }
    ret = hypfs_client_check_server(fd, where(c), c->err, sizeof(c->err));
    if (ret) {
        close(fd);
        return ret;
    }
    c->fd = fd;
    c->epoch++;
    c->rstart = c->rend = 0;
    return 0;
}

static int client_init(struct hypfs_client *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->rbuf = malloc(RBUF_SIZE);
    if (!c->rbuf) {
        set_err(c, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int hypfs_client_open(struct hypfs_client *c,
                      const struct hypfs_client_opts *opts)
{
    const char *path = hypfs_msg_socket_path(opts ? opts->socket_path : NULL);
    int ret = client_init(c);

    if (ret)
        return ret;
    c->socket_path = strdup(path);
    if (!c->socket_path) {
        set_err(c, "out of memory");
        hypfs_client_close(c);
        return -ENOMEM;
    }
    if (opts) {
        c->connect = opts->connect;
        c->connect_arg = opts->connect_arg;
    }
    c->reconnect = !opts || !opts->no_reconnect;
    ret = do_connect(c);
    if (ret) {
        /* Keep the message for the caller: only the resources go. */
        char err[sizeof(c->err)];

        memcpy(err, c->err, sizeof(err));
        hypfs_client_close(c);
        memcpy(c->err, err, sizeof(err));
    }
    return ret;
}

int hypfs_client_open_fd(struct hypfs_client *c, int fd)
{
    int ret = client_init(c);

    if (!ret)
        ret = hypfs_client_check_server(fd, "the given hypfsd connection",
                                        c->err, sizeof(c->err));
    if (ret) {
        char err[sizeof(c->err)];

        memcpy(err, c->err, sizeof(err));
        close(fd);
        hypfs_client_close(c);
        memcpy(c->err, err, sizeof(err));
        return ret;
    }
    c->fd = fd;
    c->epoch = 1;
    return 0;
}

void hypfs_client_close(struct hypfs_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->socket_path);
    free(c->rbuf);
    free(c->events);
    free(c->ctl_text);
    free(c->cbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void hypfs_client_forget_fd(struct hypfs_client *c)
{
    c->fd = -1;
    c->rstart = c->rend = 0;
}

/* The connection is unusable: close it; the next request reconnects. */
static void drop(struct hypfs_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rstart = c->rend = 0;
}

static bool may_reconnect(const struct hypfs_client *c)
{
    return c->reconnect && (c->socket_path || c->connect);
}

static bool connection_lost(int err)
{
    return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN ||
           err == -EBADF;
}

static int ensure_connected(struct hypfs_client *c)
{
    if (c->fd >= 0)
        return 0;
    if (!may_reconnect(c)) {
        if (!c->err[0])
            set_err(c, "the connection to %s is closed", where(c));
        return -ENOTCONN;
    }
    return do_connect(c);
}

/* ---- Frames ---- */

/* Have at least @n (<= RBUF_SIZE) received bytes at rbuf + rstart. */
static int fill(struct hypfs_client *c, size_t n)
{
    while (c->rend - c->rstart < n) {
        ssize_t got;

        if (RBUF_SIZE - c->rstart < n) {
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
        }
        got = read(c->fd, c->rbuf + c->rend, RBUF_SIZE - c->rend);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (!got)
            return -ECONNRESET;
        c->rend += (size_t)got;
    }
    return 0;
}

int hypfs_client_queue_event(struct hypfs_client *c,
                             const struct hypfs_msg_event *ev)
{
    size_t i;

    if (ev->pad || ev->status > 0 || ev->status < -4095)
        return -EPROTO;
    /* One pending event per watch: a later one says all an earlier did. */
    for (i = 0; i < c->nevents; i++)
        if (c->events[i].token == ev->token) {
            c->events[i] = *ev;
            return 0;
        }
    if (!c->events) {
        c->events = malloc(HYPFS_CLIENT_EVENTS_MAX * sizeof(*c->events));
        if (!c->events) {
            c->events_lost = true;
            return 0;
        }
    }
    if (c->nevents == HYPFS_CLIENT_EVENTS_MAX) {
        c->events_lost = true;
        return 0;
    }
    c->events[c->nevents++] = *ev;
    return 0;
}

/*
 * Take the event frame whose header is at rbuf + rstart (complete in the
 * buffer or not: @wait says whether to read for the rest).  1 if taken, 0
 * if incomplete and not waiting, -errno.
 */
static int take_event_frame(struct hypfs_client *c, bool wait)
{
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_event ev;
    int ret;

    memcpy(&hdr, c->rbuf + c->rstart, sizeof(hdr));
    if (hdr.len != sizeof(ev) || hdr.seq)
        return -EPROTO;
    if (c->rend - c->rstart < sizeof(hdr) + sizeof(ev)) {
        if (!wait)
            return 0;
        ret = fill(c, sizeof(hdr) + sizeof(ev));
        if (ret)
            return ret;
    }
    memcpy(&ev, c->rbuf + c->rstart + sizeof(hdr), sizeof(ev));
    ret = hypfs_client_queue_event(c, &ev);
    if (ret)
        return ret;
    c->rstart += sizeof(hdr) + sizeof(ev);
    return 1;
}

/* The header of the next frame that is not an event (consumed). */
static int next_reply_hdr(struct hypfs_client *c, struct hypfs_msg_hdr *hdr)
{
    int ret;

    for (;;) {
        ret = fill(c, sizeof(*hdr));
        if (ret)
            return ret;
        memcpy(hdr, c->rbuf + c->rstart, sizeof(*hdr));
        if (hypfs_msg_hdr_check(hdr))
            return -EPROTO;
        if (hdr->type != HYPFS_MSG_EVENT) {
            c->rstart += sizeof(*hdr);
            return 0;
        }
        ret = take_event_frame(c, true);
        if (ret < 0)
            return ret;
    }
}

/*
 * The start of the reply to request @seq: a frame of @type whose payload
 * is its fixed part (@fixed_len bytes, copied to @fixed) and at most
 * @max_len bytes in all.  Its payload length in *len.
 */
static int begin_reply(struct hypfs_client *c, uint16_t type, uint32_t seq,
                       void *fixed, size_t fixed_len, size_t max_len,
                       size_t *len)
{
    struct hypfs_msg_hdr hdr;
    int ret = next_reply_hdr(c, &hdr);

    if (ret)
        return ret;
    if (hdr.type != type || hdr.seq != seq || hdr.len < fixed_len ||
        hdr.len > max_len)
        return -EPROTO;
    ret = fill(c, fixed_len);
    if (ret)
        return ret;
    memcpy(fixed, c->rbuf + c->rstart, fixed_len);
    c->rstart += fixed_len;
    *len = hdr.len;
    return 0;
}

/* Hand @len payload bytes to @out (or drop them if @out is NULL). */
static int stream_out(struct hypfs_client *c, size_t len, hypfs_client_sink out,
                      void *ctx, int *sink_err)
{
    size_t off = 0;
    int ret;

    while (off < len) {
        size_t n;

        if (c->rend == c->rstart) {
            c->rstart = c->rend = 0;
            ret = fill(c, 1);
            if (ret)
                return ret;
        }
        n = c->rend - c->rstart;
        if (n > len - off)
            n = len - off;
        if (out && !*sink_err)
            *sink_err = out(ctx, off, c->rbuf + c->rstart, n);
        c->rstart += n;
        off += n;
    }
    return 0;
}

int hypfs_client_sink_buffer(void *ctx, size_t off, const void *data,
                             size_t len)
{
    memcpy((uint8_t *)ctx + off, data, len);
    return 0;
}

/* ---- Hypercalls ---- */

/*
 * Read the reply to hypercall @seq whose output may be @max_out bytes.
 * 0 and *result, or -errno (-EPROTO: a broken reply).
 */
static int read_op_reply(struct hypfs_client *c, uint32_t seq, size_t max_out,
                         hypfs_client_sink out, void *ctx, long *result,
                         int *sink_err)
{
    struct hypfs_msg_op_reply reply;
    size_t len;
    int ret = begin_reply(c, HYPFS_MSG_OP_REPLY, seq, &reply, sizeof(reply),
                          sizeof(reply) + max_out, &len);

    if (ret)
        return ret;
    /* A result is an errno (> -4096) or a small positive value. */
    if (reply.pad || len != sizeof(reply) + reply.out_len ||
        reply.ret < -4095 || reply.ret > INT32_MAX)
        return -EPROTO;
    ret = stream_out(c, reply.out_len, out, ctx, sink_err);
    if (ret)
        return ret;
    c->out_len = reply.out_len;
    *result = (long)reply.ret;
    return 0;
}

static size_t min_size(uint64_t a, size_t b)
{
    return a < b ? (size_t)a : b;
}

/* A hypercall through a guest's channel (whole frames, checked). */
static long chan_hypercall(struct hypfs_client *c, struct hypfs_msg_hdr *hdr,
                           const struct hypfs_hypercall *hc, size_t max_out,
                           hypfs_client_sink out, void *out_ctx,
                           bool *transport_failed)
{
    struct hypfs_msg_op *op = (struct hypfs_msg_op *)(hdr + 1);
    struct hypfs_msg_op_reply reply;
    struct iovec iov[3] = {
        { hdr, sizeof(*hdr) + sizeof(*op) },
        { (void *)(uintptr_t)hc->path, op->path_len },
        { (void *)(uintptr_t)hc->data, op->data_len },
    };
    size_t len;
    int ret, sink_err = 0;

    hypfs_msg_hdr_init(hdr, HYPFS_MSG_OP,
                       (uint32_t)(sizeof(*op) + op->path_len + op->data_len),
                       0);
    ret = hypfs_client_chan_exchange(c, iov, 3, HYPFS_MSG_OP_REPLY,
                                     sizeof(reply) + max_out, true, &len);
    if (ret) {
        if (transport_failed)
            *transport_failed = true;
        return ret;
    }
    memcpy(&reply, c->cbuf + c->cstart, sizeof(reply) <= len ? sizeof(reply)
                                                             : 0);
    if (len < sizeof(reply) || reply.pad ||
        len != sizeof(reply) + reply.out_len || reply.ret < -4095 ||
        reply.ret > INT32_MAX) {
        hypfs_client_chan_done(c, len);
        if (transport_failed)
            *transport_failed = true;
        set_err(c, "%s sent a malformed reply", where(c));
        return -EIO;
    }
    if (out && reply.out_len)
        sink_err = out(out_ctx, 0, c->cbuf + c->cstart + sizeof(reply),
                       reply.out_len);
    hypfs_client_chan_done(c, len);
    c->out_len = reply.out_len;
    c->err[0] = '\0';
    return sink_err ? sink_err : (long)reply.ret;
}

long hypfs_client_hypercall(struct hypfs_client *c,
                            const struct hypfs_hypercall *hc,
                            hypfs_client_sink out, void *out_ctx,
                            bool *transport_failed)
{
    struct {
        struct hypfs_msg_hdr hdr;
        struct hypfs_msg_op op;
    } head;
    struct iovec iov[3];
    size_t max_out = min_size(hc->arg4, HYPFS_MSG_REPLY_MAX);
    int attempt, ret = 0, sink_err;
    long result = 0;

    if (transport_failed)
        *transport_failed = false;
    c->out_len = 0;
    memset(&head, 0, sizeof(head));
    head.op.cmd = hc->cmd;
    head.op.arg1 = hc->arg1;
    head.op.arg2 = hc->arg2;
    head.op.arg3 = hc->arg3;
    head.op.arg4 = hc->arg4;
    head.op.path_len = (uint32_t)min_size(hc->arg2,
                                          min_size(hc->path_len,
                                                   XEN_HYPFS_MAX_PATHLEN));
    head.op.data_len = (uint32_t)min_size(hc->arg4,
                                          min_size(hc->data_len,
                                                   HYPFS_MSG_DATA_MAX));

    if (c->chan)
        return chan_hypercall(c, &head.hdr, hc, max_out, out, out_ctx,
                              transport_failed);
    for (attempt = 0; attempt < 2; attempt++) {
        ret = ensure_connected(c);
        if (ret) {
            /* ensure_connected() said why in c->err. */
            if (transport_failed)
                *transport_failed = true;
            return ret;
        }
        hypfs_msg_hdr_init(&head.hdr, HYPFS_MSG_OP,
                           (uint32_t)(sizeof(head.op) + head.op.path_len +
                                      head.op.data_len), ++c->seq);
        iov[0].iov_base = &head;
        iov[0].iov_len = sizeof(head);
        iov[1].iov_base = (void *)(uintptr_t)hc->path;
        iov[1].iov_len = head.op.path_len;
        iov[2].iov_base = (void *)(uintptr_t)hc->data;
        iov[2].iov_len = head.op.data_len;
        ret = hypfs_msg_writev_all(c->fd, iov, 3);
        if (!ret) {
            sink_err = 0;
            ret = read_op_reply(c, head.hdr.seq, max_out, out, out_ctx,
                                &result, &sink_err);
            if (!ret) {
                c->err[0] = '\0';
                return sink_err ? sink_err : result;
            }
        }
        /* The stream may be out of step now: never reuse it. */
        drop(c);
        /*
         * The daemon went away (restarted): send it again, once, on a new
         * connection.  A hypercall is safe to repeat even if the first
         * copy was carried out: a read changes nothing, and a write sets
         * the same value again.
         */
        if (!connection_lost(ret) || !may_reconnect(c))
            break;
    }
    if (transport_failed)
        *transport_failed = true;
    if (ret == -EPROTO) {
        set_err(c, "%s sent a malformed reply", where(c));
        return -EIO;
    }
    set_err(c, "the connection to %s was lost: %s", where(c), strerror(-ret));
    return ret;
}

/* ---- Control commands ---- */

static int read_ctl_reply(struct hypfs_client *c, uint32_t seq, int *status,
                          uint32_t *text_len)
{
    struct hypfs_msg_ctl_reply reply;
    char *text;
    size_t len;
    int ret = begin_reply(c, HYPFS_MSG_CTL_REPLY, seq, &reply, sizeof(reply),
                          HYPFS_MSG_REPLY_MAX, &len), sink_err = 0;

    if (ret)
        return ret;
    if (len != sizeof(reply) + reply.text_len || reply.ret > 0 ||
        reply.ret < -4095)
        return -EPROTO;
    /* The text outlives the window: it gets a buffer of its own. */
    text = malloc((size_t)reply.text_len + 1);
    ret = stream_out(c, reply.text_len, text ? hypfs_client_sink_buffer : NULL,
                     text, &sink_err);
    if (ret || !text) {
        free(text);
        return ret ? ret : -ENOMEM;
    }
    text[reply.text_len] = '\0';
    free(c->ctl_text);
    c->ctl_text = text;
    *status = reply.ret;
    *text_len = reply.text_len;
    return 0;
}

int hypfs_client_ctl(struct hypfs_client *c, int argc, const char *const *argv,
                     int *status, const char **text, uint32_t *text_len)
{
    struct hypfs_msg_hdr hdr;
    struct iovec iov[1 + 2 * 32];
    size_t len = 0;
    int i, n, attempt, ret = 0;

    if (argc < 1 || argc > 32) {
        set_err(c, "a control command has 1 to 32 words");
        return -E2BIG;
    }
    for (i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    if (len > HYPFS_MSG_CTL_MAX) {
        set_err(c, "control command too long (%zu bytes, at most %u)", len,
                HYPFS_MSG_CTL_MAX);
        return -E2BIG;
    }
    if (c->chan) {
        struct hypfs_msg_ctl_reply reply;
        size_t rlen;
        char *t;

        hypfs_msg_hdr_init(&hdr, HYPFS_MSG_CTL, (uint32_t)len, 0);
        iov[0].iov_base = &hdr;
        iov[0].iov_len = sizeof(hdr);
        for (i = 0, n = 1; i < argc; i++) {
            iov[n].iov_base = (void *)(uintptr_t)argv[i];
            iov[n++].iov_len = strlen(argv[i]) + 1;
        }
        ret = hypfs_client_chan_exchange(c, iov, n, HYPFS_MSG_CTL_REPLY,
                                         HYPFS_MSG_REPLY_MAX, false, &rlen);
        if (ret)
            return ret;
        if (rlen >= sizeof(reply))
            memcpy(&reply, c->cbuf + c->cstart, sizeof(reply));
        if (rlen < sizeof(reply) || rlen != sizeof(reply) + reply.text_len ||
            reply.ret > 0 || reply.ret < -4095 ||
            !(t = malloc((size_t)reply.text_len + 1))) {
            hypfs_client_chan_done(c, rlen);
            set_err(c, "%s sent a malformed reply", where(c));
            return -EIO;
        }
        memcpy(t, c->cbuf + c->cstart + sizeof(reply), reply.text_len);
        t[reply.text_len] = '\0';
        hypfs_client_chan_done(c, rlen);
        free(c->ctl_text);
        c->ctl_text = t;
        *status = reply.ret;
        *text_len = reply.text_len;
        *text = t;
        c->err[0] = '\0';
        return 0;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        ret = ensure_connected(c);
        if (ret)
            return ret;
        hypfs_msg_hdr_init(&hdr, HYPFS_MSG_CTL, (uint32_t)len, ++c->seq);
        iov[0].iov_base = &hdr;
        iov[0].iov_len = sizeof(hdr);
        for (i = 0, n = 1; i < argc; i++) {
            iov[n].iov_base = (void *)(uintptr_t)argv[i];
            iov[n++].iov_len = strlen(argv[i]) + 1;
        }
        ret = hypfs_msg_writev_all(c->fd, iov, n);
        if (ret) {
            /*
             * Refused before the daemon could read all of it (a daemon
             * that went away): nothing was carried out, so it may be sent
             * once more on a new connection.
             */
            drop(c);
            if (connection_lost(ret) && may_reconnect(c))
                continue;
            set_err(c, "cannot send to %s: %s", where(c), strerror(-ret));
            return ret;
        }
        ret = read_ctl_reply(c, hdr.seq, status, text_len);
        if (!ret) {
            *text = c->ctl_text;
            c->err[0] = '\0';
            return 0;
        }
        drop(c);
        if (ret == -EPROTO) {
            set_err(c, "%s sent a malformed reply", where(c));
            return -EIO;
        }
        if (connection_lost(ret)) {
            set_err(c, "the connection to %s was lost before hypfsd "
                    "answered: the command may or may not have been "
                    "carried out", where(c));
            return -ECONNABORTED;
        }
        set_err(c, "%s: %s", where(c), strerror(-ret));
        return ret;
    }
    set_err(c, "the connection to %s was lost: %s", where(c), strerror(-ret));
    return ret;
}

/* ---- Events ---- */

int hypfs_client_pump(struct hypfs_client *c)
{
    int ret;

    if (c->fd < 0)
        return -ENOTCONN;
    if (c->chan)
        return hypfs_client_chan_pump(c);
    for (;;) {
        ssize_t got;

        /* Whole event frames first; a partial one waits for more. */
        while (c->rend - c->rstart >= sizeof(struct hypfs_msg_hdr)) {
            struct hypfs_msg_hdr hdr;

            memcpy(&hdr, c->rbuf + c->rstart, sizeof(hdr));
            if (hypfs_msg_hdr_check(&hdr) || hdr.type != HYPFS_MSG_EVENT) {
                /* Nothing else may come unasked: the stream is broken. */
                drop(c);
                set_err(c, "%s sent a malformed frame", where(c));
                return -EIO;
            }
            ret = take_event_frame(c, false);
            if (ret < 0) {
                drop(c);
                set_err(c, "%s sent a malformed event", where(c));
                return -EIO;
            }
            if (!ret)
                break;
        }
        if (c->rstart == c->rend)
            c->rstart = c->rend = 0;
        else if (c->rstart) {
            memmove(c->rbuf, c->rbuf + c->rstart, c->rend - c->rstart);
            c->rend -= c->rstart;
            c->rstart = 0;
        }
        got = recv(c->fd, c->rbuf + c->rend, RBUF_SIZE - c->rend,
                   MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            ret = -errno;
        } else if (!got) {
            ret = -ECONNRESET;
        } else {
            c->rend += (size_t)got;
            continue;
        }
        drop(c);
        set_err(c, "the connection to %s was lost: %s", where(c),
                strerror(-ret));
        return ret;
    }
}

size_t hypfs_client_take_events(struct hypfs_client *c,
                                struct hypfs_msg_event *ev, size_t max,
                                bool *lost)
{
    size_t n = c->nevents < max ? c->nevents : max;

    if (n) {
        memcpy(ev, c->events, n * sizeof(*ev));
        memmove(c->events, c->events + n, (c->nevents - n) * sizeof(*ev));
        c->nevents -= n;
    }
    if (lost)
        *lost = c->events_lost;
    c->events_lost = false;
    return n;
}
