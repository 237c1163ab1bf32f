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

int transport_open(xenhypfs_handle *h);
void transport_close(xenhypfs_handle *h);

/*
 * One hypfs_op hypercall with a path of @path_len bytes (NUL included)
 * and a buffer of @buf_len bytes (read from for writes, written to for
 * reads).  Returns its result: >= 0 or a negative errno.
 */
long hypercall(xenhypfs_handle *h, unsigned int cmd, const char *path,
               size_t path_len, void *buf, size_t buf_len);

#endif /* LIBXENHYPFS_INTERNAL_H */
