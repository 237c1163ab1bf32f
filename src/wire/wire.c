/*
 * The part of the wire protocol both ends share: frame headers and moving
 * whole buffers over a stream socket.  See wire.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "wire.h"

void hypfs_msg_hdr_init(struct hypfs_msg_hdr *hdr, uint16_t type, uint32_t len,
                        uint32_t seq)
{
    hdr->magic = HYPFS_MSG_MAGIC;
    hdr->version = HYPFS_MSG_VERSION;
    hdr->type = type;
    hdr->len = len;
    hdr->seq = seq;
}

int hypfs_msg_hdr_check(const struct hypfs_msg_hdr *hdr)
{
    return hdr->magic == HYPFS_MSG_MAGIC && hdr->version == HYPFS_MSG_VERSION ?
           0 : -EPROTO;
}

uint32_t hypfs_msg_crc(uint32_t sum, const struct iovec *iov, int n)
{
    uLong c = sum;
    int i;

    for (i = 0; i < n; i++) {
        const Bytef *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        /* zlib takes a uInt at a time. */
        while (left) {
            uInt take = left > (1u << 30) ? (1u << 30) : (uInt)left;

            c = crc32(c, p, take);
            p += take;
            left -= take;
        }
    }
    return (uint32_t)c;
}

int hypfs_msg_write_chan(int fd, const struct iovec *iov, int n)
{
    struct iovec v[8];
    uint32_t crc;
    int i, k = 0;
    bool is_sock = true;

    if (n > 7)
        return -EINVAL;
    crc = hypfs_msg_crc(0, iov, n);
    for (i = 0; i < n; i++)
        if (iov[i].iov_len)
            v[k++] = iov[i];
    v[k].iov_base = &crc;
    v[k].iov_len = sizeof(crc);
    k++;
    /* A socket (hypfsd's side) without SIGPIPE; a device (the guest's). */
    for (i = 0; i < k;) {
        struct msghdr msg = { .msg_iov = v + i, .msg_iovlen = (size_t)(k - i) };
        ssize_t w = is_sock ? sendmsg(fd, &msg, MSG_NOSIGNAL)
                            : writev(fd, v + i, k - i);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOTSOCK && is_sock) {
                is_sock = false;
                continue;
            }
            return -errno;
        }
        while (i < k && (size_t)w >= v[i].iov_len) {
            w -= (ssize_t)v[i].iov_len;
            i++;
        }
        if (i < k) {
            v[i].iov_base = (uint8_t *)v[i].iov_base + w;
            v[i].iov_len -= (size_t)w;
        }
    }
    return 0;
}

int hypfs_msg_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int hypfs_msg_writev_all(int fd, struct iovec *iov, int n)
{
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)n };

    for (;;) {
        ssize_t sent;

        /* Skip empty pieces, so that a finished frame ends the loop. */
        while (msg.msg_iovlen && !msg.msg_iov->iov_len) {
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (!msg.msg_iovlen)
            return 0;
        sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        while (sent > 0) {
            size_t piece = msg.msg_iov->iov_len;

            if ((size_t)sent < piece) {
                msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + sent;
                msg.msg_iov->iov_len = piece - (size_t)sent;
                break;
            }
            sent -= (ssize_t)piece;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
    }
}

int hypfs_msg_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len) {
        ssize_t n = read(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (!n)
            return -ECONNRESET;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

const char *hypfs_msg_socket_path(const char *explicit_path)
{
    const char *env;

    if (explicit_path && *explicit_path)
        return explicit_path;
    env = getenv(HYPFS_SOCKET_ENV);
    return env && *env ? env : HYPFS_DEFAULT_SOCKET;
}
