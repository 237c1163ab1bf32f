/*
 * libxenhypfs extensions for hypfs's own tools (xenhypfs, hypfs-fuse,
 * hypfs-exporter, the tests).  Not part of the shared library's ABI: the
 * tools link the library's static build, which has these; programs that
 * use only <xenhypfs.h> are unaffected by anything here.
 *
 * Same conventions as <xenhypfs.h>: NULL or -1 with errno on failure,
 * results released with one free(), and a handle may be used from
 * several threads at once (each call takes the handle's lock for the
 * requests it makes).
 */
#ifndef XENHYPFS_EXT_H
#define XENHYPFS_EXT_H

#include <stddef.h>

#include <xenhypfs.h>

/* How a handle reaches the hypervisor. */
enum xenhypfs_transport {
    /*
     * privcmd if it opens; else, in a guest with hypfs's virtio-serial
     * port (and no socket named by $HYPFS_SOCKET or socket_path), the
     * channel; else the socket.
     */
    XENHYPFS_TRANSPORT_AUTO,
    XENHYPFS_TRANSPORT_SOCKET,  /* hypfsd's Unix socket */
    XENHYPFS_TRANSPORT_PRIVCMD, /* /dev/xen/privcmd (a Xen control domain) */
    /* In a guest: its port (channel_path, $HYPFS_CHANNEL, or found by name). */
    XENHYPFS_TRANSPORT_CHANNEL,
};

struct xenhypfs_open_args {
    enum xenhypfs_transport transport;
    /* Socket transport: the socket (NULL: $HYPFS_SOCKET, else the default). */
    const char *socket_path;
    /*
     * Socket transport: make each connection yourself (the first and,
     * after a daemon restart, every later one): return a connected
     * stream socket, which the handle owns from then on, or -errno.
     * hypfs-fuse connects as the user it serves this way.
     */
    int (*connect)(void *arg);
    void *connect_arg;
    /* Channel transport: the guest's port device (NULL: look for it). */
    const char *channel_path;
    /* Where to say why the open failed (may be NULL). */
    char *err;
    size_t errlen;
};

/*
 * Open a handle as @args says (xenhypfs_open() is this with
 * XENHYPFS_TRANSPORT_AUTO, or what $HYPFS_TRANSPORT names: socket,
 * privcmd or channel).  On failure
 * NULL, errno, and the reason in args->err naming the socket or device.
 */
xenhypfs_handle *xenhypfs_open_ext(const struct xenhypfs_open_args *args);

/*
 * A handle on the already connected hypfsd socket @sock, which the
 * library owns from the call on: the handle closes it, and a failed call
 * has closed it.  It is never reconnected.
 */
xenhypfs_handle *xenhypfs_open_socket(int sock);

/*
 * The same for a guest's port already open as @fd (a test's stream
 * standing for one): the channel's rules (sessions, CRCs, resends).
 */
xenhypfs_handle *xenhypfs_open_channel_fd(int fd);

/*
 * In a guest: the virtio-serial port to hypfs ($HYPFS_CHANNEL, or the
 * port named org.xenproject.hypfs.0).  0 with the device in @path, or
 * -ENOENT (not a guest with hypfs's port).
 */
int xenhypfs_find_channel(char *path, size_t len);

/*
 * The transport $HYPFS_TRANSPORT names (socket, privcmd or channel) in
 * *t, XENHYPFS_TRANSPORT_AUTO if it is unset or empty.  0, or -EINVAL
 * with the reason in @err.
 */
int xenhypfs_transport_from_env(enum xenhypfs_transport *t, char *err,
                                size_t errlen);

/*
 * The transport @h was opened on (never XENHYPFS_TRANSPORT_AUTO): a tool
 * that serves several users needs to know whether the hypervisor tells
 * them apart (the socket) or sees one domain whoever calls (privcmd, a
 * guest's channel).
 */
enum xenhypfs_transport xenhypfs_transport_of(xenhypfs_handle *h);

/* The socket a handle uses when none is named: $HYPFS_SOCKET or the default. */
const char *xenhypfs_socket_path(const char *explicit_path);

/*
 * Why the calling thread's last request on @h could not reach the
 * hypervisor (the socket and the cause), or "" if it could.  Per thread:
 * other threads' requests on the handle do not change it.  Valid until
 * this thread's next call; the library's.
 */
const char *xenhypfs_transport_error(xenhypfs_handle *h);

/* As xenhypfs_read_raw(), gzip content inflated (dirent->size: inflated). */
void *xenhypfs_read_plain(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent **dirent);

/* Write @len bytes as they are (blobs, or a string with its NUL). */
int xenhypfs_write_raw(xenhypfs_handle *h, const char *path, const void *data,
                       size_t len);

/*
 * One read of @path, as a stat needs it: *d filled (name NULL); for a
 * directory the listing is not fetched (an empty buffer comes back, *len
 * 0); for a leaf its plain content (gzip inflated, *len bytes) and, unless
 * a blob, also *text as xenhypfs_read() would format it (free() both).
 */
void *xenhypfs_stat_value(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent *d, size_t *len,
                          char **text);

#endif /* XENHYPFS_EXT_H */
