/*
 * How libxenhypfs reaches the hypervisor: one function, hypercall(), over
 * two transports.
 *
 *   privcmd  in a Xen control domain (/dev/xen/privcmd can be opened, or
 *            an emulation of it is preloaded): the real hypfs_op hypercall
 *            through the privcmd ioctl, with the path and the buffer copied
 *            into locked, fork-proof memory, as libxencall does;
 *   socket   elsewhere: the same hypercall sent to hypfsd, carrying the
 *            path and (for writes) the buffer's bytes; the reply's bytes
 *            land in the buffer.
 *
 * $HYPFS_TRANSPORT=socket or =privcmd forces one.  Both return what the
 * hypercall returns: >= 0, or a negative errno (the hypervisor's, or the
 * transport's own when it cannot deliver the call).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libxenhypfs-internal.h"

/* Linux's privcmd interface (include/uapi/xen/privcmd.h). */
struct privcmd_hypercall {
    uint64_t op;
    uint64_t arg[5];
};
#define IOCTL_PRIVCMD_HYPERCALL  _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

_Static_assert(sizeof(struct privcmd_hypercall) == 48, "privcmd_hypercall");
_Static_assert(IOCTL_PRIVCMD_HYPERCALL == 0x305000, "IOCTL_PRIVCMD_HYPERCALL");

static int open_privcmd(void)
{
    int fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);

    if (fd < 0 && (errno == ENOENT || errno == ENXIO || errno == ENODEV))
        fd = open("/proc/xen/privcmd", O_RDWR | O_CLOEXEC);
    return fd;
}

int transport_open(xenhypfs_handle *h, int sock)
{
    const char *force = getenv("HYPFS_TRANSPORT");
    int ret;

    h->privcmd_fd = -1;
    h->client.fd = -1;
    if (sock >= 0) {
        /* A connection made for us (hypfs-fuse: made as another user). */
        memset(&h->client, 0, sizeof(h->client));
        h->client.fd = sock;
        return 0;
    }
    if (!force || strcmp(force, "socket")) {
        h->privcmd_fd = open_privcmd();
        if (h->privcmd_fd >= 0)
            return 0;
        if (force && !strcmp(force, "privcmd"))
            return -errno;
    }
    ret = client_open(&h->client, NULL);
    return ret;
}

void transport_close(xenhypfs_handle *h)
{
    if (h->privcmd_fd >= 0)
        close(h->privcmd_fd);
    h->privcmd_fd = -1;
    client_close(&h->client);
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

static long privcmd_call(xenhypfs_handle *h, unsigned int cmd, const char *path,
                         size_t path_len, void *buf, size_t buf_len)
{
    struct privcmd_hypercall call = { .op = __HYPERVISOR_hypfs_op };
    char *hpath = NULL;
    void *hbuf = NULL;
    long ret;

    if (path) {
        hpath = hcall_alloc(path_len);
        if (!hpath)
            return -ENOMEM;
        memcpy(hpath, path, path_len);
    }
    if (buf) {
        hbuf = hcall_alloc(buf_len);
        if (!hbuf) {
            hcall_free(hpath, path_len);
            return -ENOMEM;
        }
        memcpy(hbuf, buf, buf_len);
    }
    call.arg[0] = cmd;
    call.arg[1] = (uintptr_t)hpath;
    call.arg[2] = path ? path_len : 0;
    call.arg[3] = (uintptr_t)hbuf;
    call.arg[4] = buf ? buf_len : 0;
    ret = ioctl(h->privcmd_fd, IOCTL_PRIVCMD_HYPERCALL, &call);
    if (ret < 0)
        ret = -errno;
    else if (buf)
        memcpy(buf, hbuf, buf_len);
    hcall_free(hpath, path_len);
    hcall_free(hbuf, buf_len);
    return ret;
}

static long socket_call(xenhypfs_handle *h, unsigned int cmd, const char *path,
                        size_t path_len, void *buf, size_t buf_len)
{
    struct hypfs_msg_op op = { .cmd = cmd };
    const uint8_t *out;
    uint32_t out_len;
    long ret;
    int err;

    op.arg1 = (uintptr_t)path;
    op.arg2 = path ? path_len : 0;
    op.path_len = (uint32_t)(path ? path_len : 0);
    op.arg3 = (uintptr_t)buf;
    op.arg4 = buf ? buf_len : 0;
    if (cmd == XEN_HYPFS_OP_write_contents && buf)
        op.data_len = (uint32_t)(buf_len < HYPFS_MSG_DATA_MAX ? buf_len
                                                              : HYPFS_MSG_DATA_MAX);

    pthread_mutex_lock(&h->lock);
    err = client_op(&h->client, &op, path, buf, &ret, &out, &out_len);
    if (!err && out_len)
        memcpy(buf, out, out_len);     /* out_len <= arg4: checked */
    pthread_mutex_unlock(&h->lock);
    return err ? (err == -EPROTO ? -EIO : err) : ret;
}

long hypercall(xenhypfs_handle *h, unsigned int cmd, const char *path,
               size_t path_len, void *buf, size_t buf_len)
{
    if (h->privcmd_fd >= 0)
        return privcmd_call(h, cmd, path, path_len, buf, buf_len);
    return socket_call(h, cmd, path, path_len, buf, buf_len);
}
