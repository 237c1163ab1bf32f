/*
 * libhypfs-privcmd.so: the Linux privcmd device, emulated for hypfs, so
 * that unmodified Xen tools (Debian's xenhypfs with its own libxenhypfs and
 * libxencall) run against hypfsd on a machine without Xen:
 *
 *   LD_PRELOAD=libhypfs-privcmd.so HYPFS_SOCKET=... xenhypfs tree
 *
 * What it intercepts, and only for descriptors it created:
 *   open/openat (and their 64-bit and fortified forms) of /dev/xen/privcmd
 *     and /proc/xen/privcmd: a descriptor on /dev/null, marked as privcmd;
 *   ioctl(IOCTL_PRIVCMD_HYPERCALL): hypercall 42 (hypfs_op) goes to
 *     hypfsd; any other hypercall is ENOSYS, any other ioctl ENOTTY;
 *   dup/dup2/dup3/fcntl(F_DUPFD*): the copy is privcmd too;
 *   close: the mark goes;
 *   mmap(MAP_LOCKED) that fails for want of RLIMIT_MEMLOCK is retried
 *     without MAP_LOCKED (libxencall locks its hypercall buffers, which the
 *     emulation does not need, and unprivileged users cannot).
 * Every other file, ioctl and mapping is passed through untouched.
 *
 * The caller's memory is read and written with process_vm_readv/writev
 * on this process, split at page boundaries: a bad pointer gives exactly
 * the bytes before it, and the daemon then answers -EFAULT where the
 * hypervisor would; nothing here ever dereferences a caller's pointer.
 * Requests go over one connection, serialised by a mutex (thread-safe),
 * reopened in a child after fork.
 */
/*
 * An interposer must define open and open64 under their own names; with
 * _FILE_OFFSET_BITS=64 glibc's headers would rename one into the other.
 */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"

#define EXPORT __attribute__((visibility("default")))

struct privcmd_hypercall {
    uint64_t op;
    uint64_t arg[5];
};
#define IOCTL_PRIVCMD_HYPERCALL  _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

/* ---- The real functions ---- */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_open_2)(const char *, int);
static int (*real_open64_2)(const char *, int);
static int (*real_openat_2)(int, const char *, int);
static int (*real_openat64_2)(int, const char *, int);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);

static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve(void)
{
#define R(var, name) var = (__typeof__(var))dlsym(RTLD_NEXT, name)
    R(real_open, "open");
    R(real_open64, "open64");
    R(real_openat, "openat");
    R(real_openat64, "openat64");
    R(real_open_2, "__open_2");
    R(real_open64_2, "__open64_2");
    R(real_openat_2, "__openat_2");
    R(real_openat64_2, "__openat64_2");
    R(real_ioctl, "ioctl");
    R(real_close, "close");
    R(real_dup, "dup");
    R(real_dup2, "dup2");
    R(real_dup3, "dup3");
    R(real_fcntl, "fcntl");
    R(real_fcntl64, "fcntl64");
    R(real_mmap, "mmap");
    R(real_mmap64, "mmap64");
#undef R
}

#define RESOLVE() pthread_once(&resolve_once, resolve)

/* ---- Which descriptors are privcmd ---- */

#define MAX_FDS 65536
static atomic_uchar is_privcmd[MAX_FDS];

static bool privcmd_fd(int fd)
{
    return fd >= 0 && fd < MAX_FDS &&
           atomic_load_explicit(&is_privcmd[fd], memory_order_acquire);
}

static void mark(int fd, bool on)
{
    if (fd >= 0 && fd < MAX_FDS)
        atomic_store_explicit(&is_privcmd[fd], on, memory_order_release);
}

static bool privcmd_path(int dirfd, const char *path)
{
    (void)dirfd;    /* the paths are absolute: the directory does not matter */
    return path && (!strcmp(path, "/dev/xen/privcmd") ||
                    !strcmp(path, "/proc/xen/privcmd"));
}

/* A stand-in descriptor that behaves as a file in every other respect. */
static int open_privcmd(int flags)
{
    int fd;

    if ((flags & O_ACCMODE) != O_RDWR) {
        errno = EACCES;
        return -1;
    }
    fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd >= MAX_FDS) {
        real_close(fd);
        errno = EMFILE;
        return -1;
    }
    if (fd >= 0)
        mark(fd, true);
    return fd;
}

/* ---- The caller's memory ---- */

#define PAGE 4096u

/*
 * Copy @len bytes at the caller's @addr into @dst; returns how many could
 * be read before the first unreadable page.
 */
static size_t peek(void *dst, uint64_t addr, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t chunk = PAGE - (size_t)((addr + done) % PAGE);
        struct iovec local, remote;
        ssize_t n;

        if (chunk > len - done)
            chunk = len - done;
        local.iov_base = (char *)dst + done;
        local.iov_len = chunk;
        remote.iov_base = (void *)(uintptr_t)(addr + done);
        remote.iov_len = chunk;
        n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
        if (n != (ssize_t)chunk)
            break;
        done += chunk;
    }
    return done;
}

/* Write @len bytes to the caller's @addr: 0, or -EFAULT. */
static int poke(uint64_t addr, const void *src, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t chunk = PAGE - (size_t)((addr + done) % PAGE);
        struct iovec local, remote;

        if (chunk > len - done)
            chunk = len - done;
        local.iov_base = (char *)(uintptr_t)src + done;
        local.iov_len = chunk;
        remote.iov_base = (void *)(uintptr_t)(addr + done);
        remote.iov_len = chunk;
        if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) !=
            (ssize_t)chunk)
            return -EFAULT;
        done += chunk;
    }
    return 0;
}

/* ---- The hypercall, through hypfsd ---- */

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hypfs_client conn = { .fd = -1 };
static bool conn_open;

static void after_fork_child(void)
{
    /* The parent's connection is the parent's: start afresh. */
    pthread_mutex_init(&conn_lock, NULL);
    if (conn_open && conn.fd >= 0)
        real_close(conn.fd);
    conn.fd = -1;
    free(conn.socket_path);
    free(conn.buf);
    memset(&conn, 0, sizeof(conn));
    conn.fd = -1;
    conn_open = false;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

static long hypfs_op(const struct privcmd_hypercall *call)
{
    struct hypfs_msg_op op = { 0 };
    unsigned char path[XEN_HYPFS_MAX_PATHLEN];
    unsigned char *data = NULL;
    const uint8_t *out;
    uint32_t out_len;
    long ret;
    int err;

    /* Xen takes the command as an unsigned int, as do we. */
    op.cmd = (uint32_t)call->arg[0];
    op.arg1 = call->arg[1];
    op.arg2 = call->arg[2];
    op.arg3 = call->arg[3];
    op.arg4 = call->arg[4];
    /*
     * Send what the caller's memory holds (up to the protocol's bounds);
     * hypfsd decides, in the hypervisor's order, whether what is missing
     * matters.
     */
    if (op.arg2 && op.arg2 <= XEN_HYPFS_MAX_PATHLEN)
        op.path_len = (uint32_t)peek(path, op.arg1, (size_t)op.arg2);
    if (op.cmd == XEN_HYPFS_OP_write_contents && op.arg4) {
        size_t want = op.arg4 < HYPFS_MSG_DATA_MAX ? (size_t)op.arg4
                                                   : HYPFS_MSG_DATA_MAX;

        data = malloc(want);
        if (!data)
            return -ENOMEM;
        op.data_len = (uint32_t)peek(data, op.arg3, want);
    }

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&conn_lock);
    if (!conn_open) {
        err = client_open(&conn, NULL);
        conn_open = !err;
    } else
        err = 0;
    if (!err)
        err = client_op(&conn, &op, path, data, &ret, &out, &out_len);
    if (!err && out_len)
        err = poke(op.arg3, out, out_len) ? 1 : 0;
    pthread_mutex_unlock(&conn_lock);
    free(data);

    if (err > 0)
        return -EFAULT;         /* the caller's buffer cannot be written */
    if (err)
        return err == -EPROTO ? -EIO : err;
    return ret;
}

static int hypercall_ioctl(void *argp)
{
    struct privcmd_hypercall call;
    long ret;

    if (peek(&call, (uintptr_t)argp, sizeof(call)) != sizeof(call)) {
        errno = EFAULT;
        return -1;
    }
    if (call.op != __HYPERVISOR_hypfs_op) {
        errno = ENOSYS;
        return -1;
    }
    ret = hypfs_op(&call);
    if (ret < 0) {
        errno = (int)-ret;
        return -1;
    }
    return (int)ret;
}

/* ---- The interposed functions ---- */

/* glibc's fortified entry points, which its headers do not declare. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    RESOLVE();
    if (privcmd_path(AT_FDCWD, path))
        return open_privcmd(flags);
    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return real_open(path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    RESOLVE();
    if (privcmd_path(AT_FDCWD, path))
        return open_privcmd(flags);
    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return (real_open64 ? real_open64 : real_open)(path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    RESOLVE();
    if (privcmd_path(dirfd, path))
        return open_privcmd(flags);
    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return real_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    mode_t mode;

    RESOLVE();
    if (privcmd_path(dirfd, path))
        return open_privcmd(flags);
    va_start(ap, flags);
    mode = mode_arg(flags, ap);
    va_end(ap);
    return (real_openat64 ? real_openat64 : real_openat)(dirfd, path, flags,
                                                         mode);
}

EXPORT int __open_2(const char *path, int flags)
{
    RESOLVE();
    if (privcmd_path(AT_FDCWD, path))
        return open_privcmd(flags);
    return real_open_2(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
    RESOLVE();
    if (privcmd_path(AT_FDCWD, path))
        return open_privcmd(flags);
    return real_open64_2(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    RESOLVE();
    if (privcmd_path(dirfd, path))
        return open_privcmd(flags);
    return real_openat_2(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    RESOLVE();
    if (privcmd_path(dirfd, path))
        return open_privcmd(flags);
    return real_openat64_2(dirfd, path, flags);
}

EXPORT int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    void *argp;

    RESOLVE();
    va_start(ap, request);
    argp = va_arg(ap, void *);
    va_end(ap);
    if (!privcmd_fd(fd))
        return real_ioctl(fd, request, argp);
    if (request == IOCTL_PRIVCMD_HYPERCALL)
        return hypercall_ioctl(argp);
    errno = ENOTTY;
    return -1;
}

EXPORT int close(int fd)
{
    RESOLVE();
    if (privcmd_fd(fd))
        mark(fd, false);
    return real_close(fd);
}

static int dup_done(int from, int to)
{
    if (to >= 0 && to != from)
        mark(to, privcmd_fd(from));
    return to;
}

EXPORT int dup(int fd)
{
    RESOLVE();
    return dup_done(fd, real_dup(fd));
}

EXPORT int dup2(int fd, int fd2)
{
    RESOLVE();
    return dup_done(fd, real_dup2(fd, fd2));
}

EXPORT int dup3(int fd, int fd2, int flags)
{
    RESOLVE();
    return dup_done(fd, real_dup3(fd, fd2, flags));
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd,
                        va_list ap)
{
    /* As glibc's own wrapper does: one pointer-sized argument, if any. */
    void *arg = va_arg(ap, void *);
    int ret = real(fd, cmd, arg);

    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
        dup_done(fd, ret);
    return ret;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    int ret;

    RESOLVE();
    va_start(ap, cmd);
    ret = fcntl_common(real_fcntl, fd, cmd, ap);
    va_end(ap);
    return ret;
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    int ret;

    RESOLVE();
    va_start(ap, cmd);
    ret = fcntl_common(real_fcntl64 ? real_fcntl64 : real_fcntl, fd, cmd, ap);
    va_end(ap);
    return ret;
}

static void *mmap_common(void *(*real)(void *, size_t, int, int, int, off_t),
                         void *addr, size_t len, int prot, int flags, int fd,
                         off_t off)
{
    void *p = real(addr, len, prot, flags, fd, off);

    /* Locked anonymous memory the user may not have: go on unlocked. */
    if (p == MAP_FAILED && (flags & MAP_LOCKED) && (flags & MAP_ANONYMOUS) &&
        (errno == EAGAIN || errno == EPERM || errno == ENOMEM))
        p = real(addr, len, prot, flags & ~MAP_LOCKED, fd, off);
    return p;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off)
{
    RESOLVE();
    return mmap_common(real_mmap, addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off)
{
    RESOLVE();
    return mmap_common(real_mmap64 ? real_mmap64 : real_mmap, addr, len, prot,
                       flags, fd, off);
}
