/*
 * The client side of the hypfsd protocol: the one path by which every
 * hypfs client (libxenhypfs, the privcmd emulation, hypfsctl, hypfs-fuse,
 * the exporter, the tests) reaches the daemon.
 *
 *   connect      to the socket ($HYPFS_SOCKET, an explicit path, or a
 *                connection the caller makes itself, e.g. as another user)
 *   check        who serves it, before anything is sent (hypfs_client_check_server)
 *   exchange     one request, one reply; replies are untrusted input and
 *                are checked field by field; no reply makes the client
 *                hold more than HYPFS_MSG_REPLY_MAX
 *   reconnect    after the daemon restarted: a request that could not be
 *                delivered is sent on a new connection; a hypercall whose
 *                reply was lost is sent once more (a read changes nothing,
 *                a write sets the same value again); a control command
 *                is never sent twice (-ECONNABORTED: outcome unknown)
 *   events       asynchronous frames (watches, interface version 2) that
 *                arrive between replies are queued, boundedly
 *
 * Errors are negative errno values, and c->err says in words what went
 * wrong with the connection (naming the socket).  Nothing here prints.
 * A struct hypfs_client is not thread-safe: its owner serialises calls.
 */
#ifndef HYPFS_CLIENT_H
#define HYPFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <hypfs/msg.h>

#include "wire.h"

/* How a client finds its daemon. */
struct hypfs_client_opts {
    /* The socket; NULL: hypfs_msg_socket_path(NULL).  Copied. */
    const char *socket_path;
    /*
     * If set, used instead of connecting to socket_path, for the first
     * connection and every reconnection: returns a connected stream
     * socket (the client owns it from then on) or -errno.  hypfs-fuse
     * connects as the user it serves this way.
     */
    int (*connect)(void *arg);
    void *connect_arg;
    /* Reconnect after the daemon went away (default: yes). */
    bool no_reconnect;
};

/* An event frame waiting to be taken (see HYPFS_MSG_EVENT). */
#define HYPFS_CLIENT_EVENTS_MAX   4096u

struct hypfs_client {
    int fd;                     /* -1: not connected */
    uint32_t seq;
    uint64_t epoch;             /* connections made so far */
    char *socket_path;          /* owned; for messages and reconnecting */
    int (*connect)(void *arg);
    void *connect_arg;
    bool reconnect;
    uint8_t *rbuf;              /* received, not yet used: [rstart, rend) */
    size_t rstart, rend;
    struct hypfs_msg_event *events;     /* queued events (owned) */
    size_t nevents;
    bool events_lost;           /* the queue overflowed since last taken */
    char *ctl_text;             /* the last control command's text (owned) */
    uint32_t out_len;           /* bytes the last hypercall wrote (its reply) */
    char err[320];              /* the last connection failure, in words */
    /* A guest's channel (channel.c): socket_path names the device. */
    bool chan;
    bool chan_session;          /* a HELLO was answered on it */
    uint32_t chan_domid;        /* what the last HELLO_REPLY said */
    int chan_timeout_ms;        /* for one call in all */
    uint8_t *cbuf;              /* received, not yet used: [cstart, cend) */
    size_t ccap, cstart, cend;
};

/*
 * Connect (see struct hypfs_client_opts) and check who serves.  0, or
 * -errno with c->err set: -ENOENT (no socket), -ECONNREFUSED (nobody
 * serves it), -EACCES (not allowed to connect), -EPERM (served by a user
 * we do not trust: see hypfs_client_check_server()).  On failure nothing
 * needs closing.
 */
int hypfs_client_open(struct hypfs_client *c,
                      const struct hypfs_client_opts *opts);

/*
 * Use the connected socket @fd (the client owns it from the call on, and
 * has closed it on failure).  It is never reconnected.
 */
int hypfs_client_open_fd(struct hypfs_client *c, int fd);

/* ---- Guests' channels (channel.c) ---- */

/* Names the guest's port explicitly (and so chooses the channel). */
#define HYPFS_CHANNEL_ENV   "HYPFS_CHANNEL"

/*
 * The port through which this machine, a guest, reaches hypfsd: the
 * device $HYPFS_CHANNEL names, else /dev/virtio-ports/HYPFS_CHAN_PORT_NAME,
 * else the /dev/vportNpM whose name sysfs says is that (no udev).  0 with
 * the path in @path, or -ENOENT.
 */
int hypfs_client_find_channel(char *path, size_t len);

/*
 * Open the guest's port @device and start a session (msg.h): 0, or -errno
 * with c->err set (-EBUSY: another process of the guest has the port;
 * -ETIMEDOUT: nobody answered within $HYPFS_CHANNEL_TIMEOUT seconds,
 * default 30).  Then hypercalls, control commands and events work as on a
 * socket, with the channel's rules for lost answers (channel.c).
 */
int hypfs_client_open_channel(struct hypfs_client *c, const char *device);

/*
 * The same on a port (or a stream standing for one, in tests) the caller
 * opened: @fd is the client's from the call on (made non-blocking, and
 * closed on failure); @name names it in messages.
 */
int hypfs_client_open_channel_fd(struct hypfs_client *c, int fd,
                                 const char *name);

/* Internal to the client: channel.c's parts of the calls below. */
int hypfs_client_chan_exchange(struct hypfs_client *c, struct iovec *iov,
                               int n, uint16_t type, size_t max_len,
                               bool resend, size_t *len);
void hypfs_client_chan_done(struct hypfs_client *c, size_t len);
int hypfs_client_chan_pump(struct hypfs_client *c);
int hypfs_client_queue_event(struct hypfs_client *c,
                             const struct hypfs_msg_event *ev);

/* Close the connection and free everything.  Accepts a closed client. */
void hypfs_client_close(struct hypfs_client *c);

/*
 * Drop the connection without closing its descriptor, which is no longer
 * ours (the privcmd emulation, whose host closed it behind its back).
 * The next request connects anew.
 */
void hypfs_client_forget_fd(struct hypfs_client *c);

/*
 * Is the peer of the connected socket @fd someone we trust to be the
 * daemon: root, our own user, or the user named by $HYPFS_SERVER_USER (a
 * name or a number), or by default the system user "hypfsd" if there is
 * one?  A squatter who bound the socket path first must not receive our
 * requests.  0, or -EPERM with @err (of @errlen bytes) naming @what and
 * the peer; -errno if the peer cannot be asked.
 */
int hypfs_client_check_server(int fd, const char *what, char *err,
                              size_t errlen);

/*
 * A new connection to the Unix stream socket at @path: its descriptor
 * (close-on-exec, the caller's), or -errno (-ENAMETOOLONG when @path does
 * not fit a socket address).  No check of the peer: for tests of the
 * daemon, and for hypfs_client_open().
 */
int hypfs_client_connect_path(const char *path);

/*
 * As hypfs_client_connect_path(), but as root through the control
 * domain's own door (@path HYPFS_PRIV_SUFFIX) when the daemon has one:
 * what hypfs_client_open() uses.
 */
int hypfs_client_connect_best(const char *path);

/* ---- Hypercalls ---- */

/*
 * One hypfs_op hypercall as its caller made it: the command and four
 * arguments exactly as passed, and the bytes the caller's memory holds:
 * @path_len bytes of the path (at arg1; at most arg2 and at most
 * XEN_HYPFS_MAX_PATHLEN are sent) and, for a write, @data_len bytes of
 * the value (at arg3; at most arg4 and HYPFS_MSG_DATA_MAX are sent).
 * Memory the caller could not supply is simply not sent: the daemon then
 * faults where the hypervisor would.
 */
struct hypfs_hypercall {
    uint32_t cmd;
    uint64_t arg1, arg2, arg3, arg4;
    const void *path;
    size_t path_len;
    const void *data;
    size_t data_len;
};

/*
 * Where the bytes the hypervisor wrote into the caller's buffer go: called
 * in order with each piece (@off from arg3).  Returns 0 or -errno (the
 * rest of the reply is then consumed and the call returns that error).
 */
typedef int (*hypfs_client_sink)(void *ctx, size_t off, const void *data,
                                 size_t len);

/*
 * Perform one hypercall through the daemon; @out / @out_ctx receive what
 * it writes to the caller's buffer (never more than arg4, never more than
 * HYPFS_MSG_REPLY_MAX).  Returns the hypercall's result (>= 0 or the
 * hypervisor's -errno); when it could not be delivered, a transport
 * -errno with c->err set and *transport_failed true (if given): -EIO for
 * a broken reply, -ECONNRESET / -ENOENT / -ECONNREFUSED / -EPERM for the
 * connection.  c->out_len says how many bytes the reply carried.
 */
long hypfs_client_hypercall(struct hypfs_client *c,
                            const struct hypfs_hypercall *hc,
                            hypfs_client_sink out, void *out_ctx,
                            bool *transport_failed);

/* A sink writing to one buffer of at least arg4 bytes (@ctx). */
int hypfs_client_sink_buffer(void *ctx, size_t off, const void *data,
                             size_t len);

/* ---- Control commands ---- */

/*
 * Run a control command (its words: a verb, then key=value).  On success
 * (0) *status is its result (0 or -errno) and *text / *text_len its
 * output or message, valid until the next call on @c.  -errno for
 * transport failures with c->err set; -ECONNABORTED when the connection
 * was lost after the command was sent and before its answer: it may or
 * may not have been carried out, and it is not sent again.
 */
int hypfs_client_ctl(struct hypfs_client *c, int argc, const char *const *argv,
                     int *status, const char **text, uint32_t *text_len);

/* ---- Events (interface version 2) ---- */

/*
 * Read whatever the daemon has sent without waiting: queued events are
 * added to c->events.  0, or -errno when the connection is gone (c->err
 * says so; the next request reconnects).
 */
int hypfs_client_pump(struct hypfs_client *c);

/*
 * Take the queued events: up to @max into @ev; returns how many.
 * *lost (if given) tells whether some were dropped since the last take
 * because the queue was full (then re-read what you watch).
 */
size_t hypfs_client_take_events(struct hypfs_client *c,
                                struct hypfs_msg_event *ev, size_t max,
                                bool *lost);

#endif /* HYPFS_CLIENT_H */
