/*
 * What the files of libxenhypfs share: the handle and the hypercall.
 * Private to src/libxenhypfs; hypfs's tools use xenhypfs-ext.h.
 */
#ifndef LIBXENHYPFS_INTERNAL_H
#define LIBXENHYPFS_INTERNAL_H

#include <pthread.h>

#include "client.h"
#include "xenhypfs-ext.h"

/* A watch the library keeps, to re-arm it after a reconnection. */
struct lib_watch {
    uint64_t token;
    uint64_t known;             /* the last generation reported */
    char *path;
};

struct xenhypfs_handle {
    pthread_mutex_t lock;       /* serialises requests on the transport */
    int privcmd_fd;             /* >= 0: real hypercalls through privcmd */
    struct hypfs_client client; /* otherwise: hypfsd (guarded by lock) */
    char err[320];              /* the last request's failure (lock) */
    /* Interface version 2 (v2.c), all under lock. */
    int version;                /* the hypervisor's; 0: not asked yet */
    uint64_t version_epoch;     /* the connection it was asked on */
    struct lib_watch *watches;
    size_t nwatches, watches_cap;
    uint64_t watch_epoch;       /* the connection they are armed on */
    struct xenhypfs_event *pending;     /* events to report first */
    size_t npending;
    int epfd;                   /* xenhypfs_event_fd(): -1 until asked */
    int evfd;                   /* in epfd: events are queued */
    int ep_sock;                /* the socket in epfd, -1: none */
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

/*
 * The same with arg3/arg4 as numbers (watch: a token and a generation;
 * unwatch: no path), nothing read or written.  Lock held by the caller.
 */
long hypercall_args_locked(xenhypfs_handle *h, unsigned int cmd,
                           const char *path, size_t path_len, uint64_t arg3,
                           uint64_t arg4);
/*
 * What xenhypfs_transport_error() says: the reason the calling thread's
 * last request could not reach the hypervisor ("" if it could), copied
 * from h->err under the handle's lock, so that other threads using the
 * handle do not change it under the caller.
 */
extern _Thread_local char lib_thread_err[320];

/* hypercall() with the lock already held. */
long hypercall_locked(xenhypfs_handle *h, unsigned int cmd, const char *path,
                      size_t path_len, void *buf, size_t buf_len);

/*
 * After a request on the socket (lock held): keep the event descriptor
 * (v2.c) watching the current connection, and signal it if events wait
 * in the queue.
 */
void events_sync(xenhypfs_handle *h);
/* Path length with its NUL, or -1 with errno (EBADF, EINVAL, ENAMETOOLONG). */
long lib_path_size(xenhypfs_handle *h, const char *path);
/* A dirent's size, type, encoding and flags from the hypervisor's direntry. */
struct xen_hypfs_direntry;
void lib_set_attrs(const struct xen_hypfs_direntry *e,
                   struct xenhypfs_dirent *d);

/* Free what v2.c keeps in the handle (at close). */
void events_fini(xenhypfs_handle *h);

#endif /* LIBXENHYPFS_INTERNAL_H */
