/*
 * What the files of libxenhypfs share: the handle and the hypercall.
 */
#ifndef LIBXENHYPFS_INTERNAL_H
#define LIBXENHYPFS_INTERNAL_H

#include <pthread.h>

#include <xenhypfs.h>

#include "proto.h"

struct xenhypfs_handle {
    pthread_mutex_t lock;       /* serialises requests on the socket */
    int privcmd_fd;             /* >= 0: real hypercalls through privcmd */
    struct hypfs_client client; /* otherwise: hypfsd */
};

/* Open the transport; @sock >= 0: use that connected hypfsd socket. */
int transport_open(xenhypfs_handle *h, int sock);
void transport_close(xenhypfs_handle *h);

/*
 * One hypfs_op hypercall with a path of @path_len bytes (NUL included)
 * and a buffer of @buf_len bytes (read from for writes, written to for
 * reads).  Returns its result: >= 0 or a negative errno.
 */
long hypercall(xenhypfs_handle *h, unsigned int cmd, const char *path,
               size_t path_len, void *buf, size_t buf_len);

/*
 * For hypfs's own tools, not exported from libxenhypfs.so.1 (they link the
 * library's static build):
 *
 * xenhypfs_open_socket: a handle on an already connected hypfsd socket,
 *   which the library owns from the call on: the handle closes it, and a
 *   failed call has closed it (hypfs-fuse connects as the calling user).
 * xenhypfs_read_plain: as xenhypfs_read_raw(), gzip content inflated.
 * xenhypfs_write_raw: write @len bytes as they are (blobs).
 * xenhypfs_stat_value: one read of @path for a stat: *d filled (name NULL),
 *   a directory's listing not fetched (returns an empty buffer, *len 0),
 *   a leaf's plain content returned (*len bytes) and, unless a blob, also
 *   in *text as xenhypfs_read() would format it (free() both).
 * Same error conventions as the public functions.
 */
xenhypfs_handle *xenhypfs_open_socket(int sock);
void *xenhypfs_read_plain(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent **dirent);
int xenhypfs_write_raw(xenhypfs_handle *h, const char *path, const void *data,
                       size_t len);
void *xenhypfs_stat_value(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent *d, size_t *len,
                          char **text);

#endif /* LIBXENHYPFS_INTERNAL_H */
