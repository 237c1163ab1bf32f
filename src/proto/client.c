/*
 * The client's side of the wire protocol: one connection to hypfsd, one
 * request and one reply at a time.
 *
 * Replies are not trusted: the header, the sequence number, every length
 * and the result's range are checked before a byte of payload is used,
 * and a reply can never be larger than what the request allows (arg4 for
 * a hypercall's output), so a hostile or broken daemon cannot make a
 * client overrun a buffer or allocate without bound.
 *
 * A request and its reply use a single write and, usually, a single read:
 * the frame is built in one buffer, and the reply is read into the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

int msg_connect(const char *path)
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

int client_open(struct hypfs_client *c, const char *path)
{
    int fd;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->socket_path = strdup(msg_socket_path(path));
    if (!c->socket_path)
        return -ENOMEM;
    fd = msg_connect(c->socket_path);
    if (fd < 0) {
        free(c->socket_path);
        c->socket_path = NULL;
        return fd;
    }
    c->fd = fd;
    return 0;
}

void client_close(struct hypfs_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->socket_path);
    free(c->buf);
    c->socket_path = NULL;
    c->buf = NULL;
    c->cap = 0;
}

static int reserve(struct hypfs_client *c, size_t need)
{
    uint8_t *buf;
    size_t cap;

    if (need <= c->cap)
        return 0;
    cap = c->cap ? c->cap : 4096;
    while (cap < need)
        cap *= 2;
    buf = realloc(c->buf, cap);
    if (!buf)
        return -ENOMEM;
    c->buf = buf;
    c->cap = cap;
    return 0;
}

/*
 * Send the frame in c->buf (@len bytes) and read the reply of type @type,
 * whose payload may not exceed @max_payload, into c->buf.  On success
 * *payload_len is the reply's payload length (payload at c->buf + hdr).
 */
static int exchange_once(struct hypfs_client *c, size_t len, uint16_t type,
                         size_t max_payload, size_t *payload_len)
{
    struct hypfs_msg_hdr hdr, sent;
    size_t got = 0;
    int ret;

    memcpy(&sent, c->buf, sizeof(sent));
    ret = io_write_all(c->fd, c->buf, len);
    if (ret)
        return ret;

    /* Read what is there: usually the whole reply in one go. */
    while (got < sizeof(hdr)) {
        ssize_t n = read(c->fd, c->buf + got, c->cap - got);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return got ? -EPROTO : -errno;
        }
        if (!n)     /* the request is still in c->buf only if got is 0 */
            return got ? -EPROTO : -ECONNRESET;
        got += (size_t)n;
    }
    memcpy(&hdr, c->buf, sizeof(hdr));
    if (hdr.magic != HYPFS_MSG_MAGIC || hdr.version != HYPFS_MSG_VERSION ||
        hdr.type != type || hdr.seq != sent.seq || hdr.len > max_payload)
        return -EPROTO;
    if (got > sizeof(hdr) + hdr.len)
        return -EPROTO;     /* bytes nobody asked for */
    ret = reserve(c, sizeof(hdr) + hdr.len);
    if (ret)
        return ret;
    ret = io_read_all(c->fd, c->buf + got, sizeof(hdr) + hdr.len - got);
    if (ret)
        return ret == -ECONNRESET ? -EPROTO : ret;  /* a cut reply */
    *payload_len = hdr.len;
    return 0;
}

static bool connection_lost(int ret)
{
    return ret == -EPIPE || ret == -ECONNRESET || ret == -ENOTCONN ||
           ret == -EBADF;
}

static int exchange(struct hypfs_client *c, size_t len, uint16_t type,
                    size_t max_payload, size_t *payload_len)
{
    int ret = c->fd >= 0 ? exchange_once(c, len, type, max_payload,
                                         payload_len) : -ENOTCONN;

    /*
     * The daemon may have restarted since the last request: reconnect and
     * send it again, once.  A hypercall is safe to repeat: reads change
     * nothing and a write sets the same value again.
     */
    if (connection_lost(ret) && c->socket_path) {
        int fd = msg_connect(c->socket_path);

        if (fd < 0)
            return fd;
        if (c->fd >= 0)
            close(c->fd);
        c->fd = fd;
        ret = exchange_once(c, len, type, max_payload, payload_len);
    }
    if (ret && c->fd >= 0) {
        /* The stream may be out of step now: never reuse it. */
        close(c->fd);
        c->fd = -1;
    }
    return ret;
}

int client_op(struct hypfs_client *c, const struct hypfs_msg_op *op,
              const void *path, const void *data, long *ret,
              const uint8_t **out, uint32_t *out_len)
{
    struct hypfs_msg_hdr hdr = {
        .magic = HYPFS_MSG_MAGIC,
        .version = HYPFS_MSG_VERSION,
        .type = HYPFS_MSG_OP,
    };
    struct hypfs_msg_op_reply reply;
    size_t len, payload, max_out;
    int err;

    if (op->path_len > XEN_HYPFS_MAX_PATHLEN ||
        op->data_len > HYPFS_MSG_DATA_MAX || op->flags)
        return -EINVAL;
    hdr.len = (uint32_t)(sizeof(*op) + op->path_len + op->data_len);
    hdr.seq = ++c->seq;
    len = sizeof(hdr) + hdr.len;
    /*
     * At least a page: the reply to a write (no data) then always fits, so
     * a write can never fail for want of memory after the daemon applied
     * it.  Only a read's reply may need more, and a read changes nothing.
     */
    err = reserve(c, len > 4096 ? len : 4096);
    if (err)
        return err;
    memcpy(c->buf, &hdr, sizeof(hdr));
    memcpy(c->buf + sizeof(hdr), op, sizeof(*op));
    if (op->path_len)
        memcpy(c->buf + sizeof(hdr) + sizeof(*op), path, op->path_len);
    if (op->data_len)
        memcpy(c->buf + sizeof(hdr) + sizeof(*op) + op->path_len, data,
               op->data_len);

    max_out = op->arg4 < CLIENT_REPLY_MAX ? (size_t)op->arg4 : CLIENT_REPLY_MAX;
    err = exchange(c, len, HYPFS_MSG_OP_REPLY, sizeof(reply) + max_out,
                   &payload);
    if (err)
        return err;
    if (payload < sizeof(reply))
        return -EPROTO;
    memcpy(&reply, c->buf + sizeof(hdr), sizeof(reply));
    /* A result is an errno (> -4096) or a small positive value. */
    if (reply.pad || payload != sizeof(reply) + reply.out_len ||
        reply.ret < -4095 || reply.ret > INT32_MAX)
        return -EPROTO;
    *ret = (long)reply.ret;
    *out = c->buf + sizeof(hdr) + sizeof(reply);
    *out_len = reply.out_len;
    return 0;
}

int client_ctl(struct hypfs_client *c, int argc, const char *const *argv,
               int *status, const char **text, uint32_t *text_len)
{
    struct hypfs_msg_hdr hdr = {
        .magic = HYPFS_MSG_MAGIC,
        .version = HYPFS_MSG_VERSION,
        .type = HYPFS_MSG_CTL,
    };
    struct hypfs_msg_ctl_reply reply;
    size_t len = 0, off, payload;
    int i, err;

    for (i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    if (!len || len > HYPFS_MSG_CTL_MAX)
        return -E2BIG;
    hdr.len = (uint32_t)len;
    hdr.seq = ++c->seq;
    err = reserve(c, 4096 + sizeof(hdr) + len);
    if (err)
        return err;
    memcpy(c->buf, &hdr, sizeof(hdr));
    off = sizeof(hdr);
    for (i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;

        memcpy(c->buf + off, argv[i], n);
        off += n;
    }
    err = exchange(c, off, HYPFS_MSG_CTL_REPLY, CLIENT_REPLY_MAX, &payload);
    if (err)
        return err;
    if (payload < sizeof(reply))
        return -EPROTO;
    memcpy(&reply, c->buf + sizeof(hdr), sizeof(reply));
    if (payload != sizeof(reply) + reply.text_len || reply.ret > 0 ||
        reply.ret < -4095)
        return -EPROTO;
    *status = reply.ret;
    *text = (const char *)c->buf + sizeof(hdr) + sizeof(reply);
    *text_len = reply.text_len;
    return 0;
}
