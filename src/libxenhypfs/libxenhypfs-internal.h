/*
 * What the files of libxenhypfs share: the handle and the hypercall.
 * Private to src/libxenhypfs; hypfs's tools use xenhypfs-ext.h.
 */
#ifndef LIBXENHYPFS_INTERNAL_H
#define LIBXENHYPFS_INTERNAL_H

#include <pthread.h>

#include "client.h"
#include "xenhypfs-ext.h"

struct xenhypfs_handle {
    pthread_mutex_t lock;       /* serialises requests on the transport */
    int privcmd_fd;             /* >= 0: real hypercalls through privcmd */
    struct hypfs_client client; /* otherwise: hypfsd (guarded by lock) */
    char err[320];              /* xenhypfs_transport_error() (lock) */
};

/*
 * Open the transport @args asks for (@sock >= 0: use that connected
 * hypfsd socket).  0 or -errno, with the reason in @err.
 */
int transport_open(xenhypfs_handle *h, const struct xenhypfs_open_args *args,
                   int sock, char *err, size_t errlen);
void transport_close(xenhypfs_handle *h);

/*
 * One hypfs_op hypercall with a path of @path_len bytes (NUL included)
 * and a buffer of @buf_len bytes (read from for writes, written to for
 * reads).  Returns its result: >= 0 or a negative errno (the hypervisor's,
 * or the transport's own when it cannot deliver the call; then h->err
 * says why).
 */
long hypercall(xenhypfs_handle *h, unsigned int cmd, const char *path,
               size_t path_len, void *buf, size_t buf_len);

#endif /* LIBXENHYPFS_INTERNAL_H */
