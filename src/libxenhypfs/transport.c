/*
 * How libxenhypfs reaches the hypervisor: one function, hypercall(), over
 * three transports.
 *
 *   privcmd  in a Xen control domain (/dev/xen/privcmd can be opened, or
 *            an emulation of it is preloaded): the real hypfs_op hypercall
 *            through the privcmd ioctl, with the path and the buffer copied
 *            into locked, fork-proof memory, as libxencall does;
 *   socket   elsewhere: the same hypercall sent to hypfsd through the one
 *            client path (src/client), which checks who serves, streams
 *            the reply into the buffer and reconnects after a restart;
 *   channel  inside a virtual machine: the same hypercall through the
 *            guest's virtio-serial port to its domain's channel in hypfsd
 *            (src/client/channel.c).
 *
 * Both return what the hypercall returns: >= 0, or a negative errno (the
 * hypervisor's, or the transport's own when it cannot deliver the call,
 * with the reason in h->err).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libxenhypfs-internal.h"
#include "privcmd-abi.h"

static int open_privcmd(void)
{
    int fd = open(PRIVCMD_PATH, O_RDWR | O_CLOEXEC);

    if (fd < 0 && (errno == ENOENT || errno == ENXIO || errno == ENODEV))
        fd = open(PRIVCMD_PATH_OLD, O_RDWR | O_CLOEXEC);
    return fd;
}

int transport_open(xenhypfs_handle *h, const struct xenhypfs_open_args *args,
                   int sock, char *err, size_t errlen)
{
    struct hypfs_client_opts opts = { NULL };
    int ret;

    h->privcmd_fd = -1;
    h->client.fd = -1;
    h->epfd = h->evfd = h->ep_sock = -1;
    if (sock >= 0) {
        /* A connection made for us, as another user perhaps. */
        ret = args->transport == XENHYPFS_TRANSPORT_CHANNEL ?
              hypfs_client_open_channel_fd(&h->client, sock, "channel") :
              hypfs_client_open_fd(&h->client, sock);
        if (ret)
            snprintf(err, errlen, "%s", h->client.err);
        return ret;
    }
    if (args->transport == XENHYPFS_TRANSPORT_AUTO ||
        args->transport == XENHYPFS_TRANSPORT_PRIVCMD) {
        h->privcmd_fd = open_privcmd();
        if (h->privcmd_fd >= 0)
            return 0;
        if (args->transport == XENHYPFS_TRANSPORT_PRIVCMD) {
            ret = -errno;
            snprintf(err, errlen, "cannot open %s: %s", PRIVCMD_PATH,
                     strerror(-ret));
            return ret;
        }
    }
    /*
     * In a guest, the port; unless a socket was named, which says this
     * is a host (or a test) after all.
     */
    if (args->transport == XENHYPFS_TRANSPORT_CHANNEL ||
        (args->transport == XENHYPFS_TRANSPORT_AUTO && !args->socket_path &&
         !args->connect && !getenv(HYPFS_SOCKET_ENV))) {
        char dev[300];

        if (args->channel_path)
            snprintf(dev, sizeof(dev), "%s", args->channel_path);
        else if (hypfs_client_find_channel(dev, sizeof(dev))) {
            if (args->transport == XENHYPFS_TRANSPORT_CHANNEL) {
                snprintf(err, errlen, "no hypfs channel in this machine "
                         "(no virtio-serial port named %s; $%s names one)",
                         HYPFS_CHAN_PORT_NAME, HYPFS_CHANNEL_ENV);
                return -ENOENT;
            }
            dev[0] = '\0';
        }
        if (dev[0]) {
            ret = hypfs_client_open_channel(&h->client, dev);
            if (ret)
                snprintf(err, errlen, "%s", h->client.err);
            return ret;
        }
    }
    opts.socket_path = args->socket_path;
    opts.connect = args->connect;
    opts.connect_arg = args->connect_arg;
    ret = hypfs_client_open(&h->client, &opts);
    if (ret)
        snprintf(err, errlen, "%s", h->client.err);
    return ret;
}

void transport_close(xenhypfs_handle *h)
{
    events_fini(h);
    if (h->privcmd_fd >= 0)
        close(h->privcmd_fd);
    h->privcmd_fd = -1;
    hypfs_client_close(&h->client);
}

/* Locked memory for a hypercall argument; freed with hcall_free(). */
static void *hcall_alloc(size_t size)
{
    size_t len = (size + 4095) & ~(size_t)4095;
    void *p;

    if (!len)
        len = 4096;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (p == MAP_FAILED)    /* a small RLIMIT_MEMLOCK: as libxencall, go on */
        p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, len, MADV_DONTFORK);
    return p;
}

static void hcall_free(void *p, size_t size)
{
    size_t len = (size + 4095) & ~(size_t)4095;

    if (p)
        munmap(p, len ? len : 4096);
}

/* The hypercall with arg3/arg4 as given, the path copied to safe memory. */
static long privcmd_args(xenhypfs_handle *h, unsigned int cmd,
                         const char *path, size_t path_len, uint64_t arg3,
                         uint64_t arg4)
{
    struct privcmd_hypercall call = { .op = __HYPERVISOR_hypfs_op };
    char *hpath = NULL;
    long ret;

    if (path) {
        hpath = hcall_alloc(path_len);
        if (!hpath)
            return -ENOMEM;
        memcpy(hpath, path, path_len);
    }
    call.arg[0] = cmd;
    call.arg[1] = (uintptr_t)hpath;
    call.arg[2] = path ? path_len : 0;
    call.arg[3] = arg3;
    call.arg[4] = arg4;
    ret = ioctl(h->privcmd_fd, IOCTL_PRIVCMD_HYPERCALL, &call);
    if (ret < 0) {
        ret = -errno;
        /* The hypervisor's own errors come back the same way. */
        if (ret == -ENOTTY || ret == -EBADF)
            snprintf(h->err, sizeof(h->err), "%s: %s", PRIVCMD_PATH,
                     strerror((int)-ret));
    }
    hcall_free(hpath, path_len);
    return ret;
}

/*
 * The same with a buffer (arg3/arg4), copied in, and copied back after
 * every command that writes into it, whatever it returns: a read that
 * fails with -ENOBUFS has written the direntry that says the size to ask
 * for (SPEC §1.6), and the caller decides on it.  A write's buffer is
 * the caller's value: the hypervisor only reads it.
 */
static long privcmd_call(xenhypfs_handle *h, unsigned int cmd, const char *path,
                         size_t path_len, void *buf, size_t buf_len)
{
    void *hbuf = NULL;
    long ret;

    if (buf) {
        hbuf = hcall_alloc(buf_len);
        if (!hbuf)
            return -ENOMEM;
        memcpy(hbuf, buf, buf_len);
    }
    ret = privcmd_args(h, cmd, path, path_len, (uintptr_t)hbuf,
                       buf ? buf_len : 0);
    if (buf && cmd != XEN_HYPFS_OP_write_contents)
        memcpy(buf, hbuf, buf_len);
    hcall_free(hbuf, buf_len);
    return ret;
}

long hypercall_args_locked(xenhypfs_handle *h, unsigned int cmd,
                           const char *path, size_t path_len, uint64_t arg3,
                           uint64_t arg4)
{
    struct hypfs_hypercall hc = {
        .cmd = cmd,
        .arg1 = (uintptr_t)path,
        .arg2 = path ? path_len : 0,
        .arg3 = arg3,
        .arg4 = arg4,
        .path = path,
        .path_len = path ? path_len : 0,
    };
    bool failed;
    long ret;

    h->err[0] = '\0';
    if (h->privcmd_fd >= 0) {
        ret = privcmd_args(h, cmd, path, path_len, arg3, arg4);
        memcpy(lib_thread_err, h->err, sizeof(lib_thread_err));
        return ret;
    }
    ret = hypfs_client_hypercall(&h->client, &hc, NULL, NULL, &failed);
    if (failed)
        snprintf(h->err, sizeof(h->err), "%s", h->client.err);
    memcpy(lib_thread_err, h->err, sizeof(lib_thread_err));
    events_sync(h);
    return ret;
}

/* The calling thread's last request's transport failure (see core.c). */
_Thread_local char lib_thread_err[sizeof(((xenhypfs_handle *)0)->err)];

long hypercall(xenhypfs_handle *h, unsigned int cmd, const char *path,
               size_t path_len, void *buf, size_t buf_len)
{
    long ret;

    pthread_mutex_lock(&h->lock);
    ret = hypercall_locked(h, cmd, path, path_len, buf, buf_len);
    pthread_mutex_unlock(&h->lock);
    return ret;
}

long hypercall_locked(xenhypfs_handle *h, unsigned int cmd, const char *path,
                      size_t path_len, void *buf, size_t buf_len)
{
    struct hypfs_hypercall hc = {
        .cmd = cmd,
        .arg1 = (uintptr_t)path,
        .arg2 = path ? path_len : 0,
        .arg3 = (uintptr_t)buf,
        .arg4 = buf ? buf_len : 0,
        .path = path,
        .path_len = path ? path_len : 0,
    };
    bool failed;
    long ret;

    if (cmd == XEN_HYPFS_OP_write_contents && buf) {
        hc.data = buf;
        hc.data_len = buf_len;
    }
    h->err[0] = '\0';
    if (h->privcmd_fd >= 0) {
        ret = privcmd_call(h, cmd, path, path_len, buf, buf_len);
    } else {
        ret = hypfs_client_hypercall(&h->client, &hc,
                                     buf ? hypfs_client_sink_buffer : NULL,
                                     buf, &failed);
        if (failed)
            snprintf(h->err, sizeof(h->err), "%s", h->client.err);
        events_sync(h);
    }
    memcpy(lib_thread_err, h->err, sizeof(lib_thread_err));
    return ret;
}
