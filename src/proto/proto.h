/*
 * The hypfsd wire protocol, as code: what the daemon uses to take frames
 * apart and model the caller's memory, and what every client (libxenhypfs,
 * the privcmd emulation, hypfsctl, hypfs-fuse) uses to talk to it.  The
 * format itself is in include/hypfs/msg.h and docs/protocol.md.
 *
 * Nothing here prints or keeps global state; errors are negative errno
 * values.  A struct hypfs_client is not thread-safe: its user serialises.
 */
#ifndef HYPFS_PROTO_H
#define HYPFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hypfs/hypfs.h>
#include <hypfs/msg.h>

/* ---- Daemon side ---- */

/*
 * Check a frame header before reading its payload: magic, version, and a
 * payload length within the bound for its type.  0 or -EPROTO.
 */
int msg_check_request_hdr(const struct hypfs_msg_hdr *hdr);

/*
 * Take apart the payload of a HYPFS_MSG_OP frame (@len bytes).  Every
 * length must agree with the others and with the bounds of msg.h.  On
 * success *op is a copy of the fixed part and *path / *data point into
 * @payload.  0 or -EPROTO.
 */
int msg_parse_op(const void *payload, size_t len, struct hypfs_msg_op *op,
                 const uint8_t **path, const uint8_t **data);

/*
 * The caller's memory for one HYPFS_MSG_OP: the path bytes sent at arg1,
 * the data bytes sent at arg3 (reads of anything else fault), and an output
 * buffer of arg4 bytes at arg3 that grows as the core writes to it.
 */
struct msg_guest {
    uint64_t arg1, arg3, arg4;
    const uint8_t *path;
    uint32_t path_len;
    const uint8_t *data;
    uint32_t data_len;
    uint8_t *out;               /* owned; reused between requests */
    size_t out_len;             /* highest byte written + 1 */
    size_t out_cap;
};

extern const struct hypfs_guest_ops msg_guest_ops;

/* Prepare @g for the request @op (keeps the output buffer). */
void msg_guest_init(struct msg_guest *g, const struct hypfs_msg_op *op,
                    const uint8_t *path, const uint8_t *data);
/* Release the output buffer. */
void msg_guest_fini(struct msg_guest *g);

/*
 * Parse the words of a HYPFS_MSG_CTL payload into @argv (at most @max,
 * pointing into @payload).  Returns the count, or -EPROTO if the payload is
 * not NUL-terminated words or has too many.
 */
int msg_parse_ctl(const char *payload, size_t len, const char **argv, int max);

/* ---- Both sides ---- */

/* Write / read exactly @len bytes, retrying on EINTR.  0 or -errno; a
 * peer that closes first gives -ECONNRESET. */
int io_write_all(int fd, const void *buf, size_t len);
int io_read_all(int fd, void *buf, size_t len);

/* The socket to use: @explicit, else $HYPFS_SOCKET, else the default. */
const char *msg_socket_path(const char *explicit_path);

/* ---- Client side ---- */

/* The largest reply a client accepts (a listing of millions of names). */
#define CLIENT_REPLY_MAX   (256u << 20)

struct hypfs_client {
    int fd;
    uint32_t seq;
    char *socket_path;          /* owned */
    uint8_t *buf;               /* frame buffer, reused */
    size_t cap;
};

/*
 * A new connection to the Unix stream socket at @path: its descriptor
 * (close-on-exec, the caller's to close), or -errno (-ENAMETOOLONG when
 * @path does not fit a socket address).
 */
int msg_connect(const char *path);

/*
 * Connect to the daemon at @path (NULL: msg_socket_path(NULL)).  0 or
 * -errno (-ENOENT: no socket, -ECONNREFUSED: nobody serves it).
 */
int client_open(struct hypfs_client *c, const char *path);
void client_close(struct hypfs_client *c);

/*
 * Perform one hypercall through the daemon.  @op holds cmd and arg1..arg4;
 * path_len and data_len say how many bytes of @path and @data to send.
 * On success (0) *ret is the hypercall's result and *out / *out_len the
 * bytes it wrote into the caller's buffer (valid until the next call on
 * @c).  A broken connection is reopened and the request sent again once
 * (unless the connection was given, not opened: socket_path NULL).
 * Returns -errno for transport failures and malformed replies (-EPROTO).
 */
int client_op(struct hypfs_client *c, const struct hypfs_msg_op *op,
              const void *path, const void *data, long *ret,
              const uint8_t **out, uint32_t *out_len);

/*
 * Run a control command.  On success (0) *status is its result (0 or
 * -errno) and *text / *text_len its output or message (valid until the
 * next call).  -errno for transport failures.
 */
int client_ctl(struct hypfs_client *c, int argc, const char *const *argv,
               int *status, const char **text, uint32_t *text_len);

#endif /* HYPFS_PROTO_H */
