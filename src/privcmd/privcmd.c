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
 *     hypfsd (ENODEV while it cannot be reached, with the reason on
 *     standard error once); any other hypercall is ENOSYS, any other
 *     ioctl ENOTTY;
 *   dup/dup2/dup3/fcntl(F_DUPFD*): the copy is privcmd too;
 *   close: the mark goes;
 *   mmap(MAP_LOCKED) that fails for want of RLIMIT_MEMLOCK is retried
 *     without MAP_LOCKED (libxencall locks its hypercall buffers, which the
 *     emulation does not need, and unprivileged users cannot).
 * Every other file, ioctl and mapping is passed through untouched.
 *
 * The connection to hypfsd is the emulation's own descriptor, kept near
 * the top of the descriptor table, and the host tool's housekeeping must
 * not touch it: close(), close_range(), closefrom() and dup2()/dup3()
 * over it leave it alone (close() of it says EBADF, as for any descriptor
 * the tool never opened; dup2() onto it first moves it elsewhere).  A
 * tool that closes it anyway (a raw system call) and reuses the number
 * is noticed before the next request: the descriptor is checked to be
 * the same socket (device and inode) every time, and if it is not, the
 * emulation forgets it, never writing to or closing what is now the
 * tool's, and connects anew.
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
#include <limits.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include "client.h"
#include "privcmd-abi.h"

#define EXPORT __attribute__((visibility("default")))

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
static int (*real_close_range)(unsigned int, unsigned int, int);
static void (*real_closefrom)(int);
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
    R(real_close_range, "close_range");
    R(real_closefrom, "closefrom");
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
    return path && (!strcmp(path, PRIVCMD_PATH) ||
                    !strcmp(path, PRIVCMD_PATH_OLD));
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

/* ---- The connection to hypfsd ---- */

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hypfs_client conn = { .fd = -1 };   /* conn_lock */
static bool conn_open;                            /* conn_lock */
static bool outage_told;        /* hypfsd's absence was said (conn_lock) */
static dev_t conn_dev;                            /* conn_lock */
static ino_t conn_ino;                            /* conn_lock */
/* conn.fd for the interposers' quick test (-1: none). */
static atomic_int conn_fd = -1;
/* This thread is running the emulation's own code: its closes are real. */
static _Thread_local bool inside;

static bool is_conn_fd(int fd)
{
    return fd >= 0 && fd == atomic_load_explicit(&conn_fd, memory_order_acquire);
}

/* A descriptor number far from the ones a tool uses: near its limit. */
static int move_high(int fd)
{
    struct rlimit rl;
    int nfd;

    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 256)
        return fd;
    nfd = real_fcntl(fd, F_DUPFD_CLOEXEC,
                     (int)(rl.rlim_cur > 4096 ? 4096 : rl.rlim_cur) - 64);
    if (nfd < 0)
        return fd;
    real_close(fd);
    return nfd;
}

/* The client's connector: connect, move out of the way, remember it. */
static int emu_connect(void *arg)
{
    struct stat st;
    int fd = hypfs_client_connect_best(hypfs_msg_socket_path(NULL));

    (void)arg;
    if (fd < 0)
        return fd;
    fd = move_high(fd);
    if (fstat(fd, &st)) {
        int err = -errno;

        real_close(fd);
        return err;
    }
    conn_dev = st.st_dev;
    conn_ino = st.st_ino;
    atomic_store_explicit(&conn_fd, fd, memory_order_release);
    return fd;
}

/*
 * Is conn.fd still our socket?  If the tool closed it behind our back,
 * the number may now be one of its files: forget it, never touch it.
 */
static void check_conn(void)
{
    struct stat st;

    if (conn.fd < 0)
        return;
    if (fstat(conn.fd, &st) || st.st_dev != conn_dev || st.st_ino != conn_ino) {
        hypfs_client_forget_fd(&conn);
        atomic_store_explicit(&conn_fd, -1, memory_order_release);
    }
}

static void after_fork_child(void)
{
    /* The parent's connection is the parent's: start afresh. */
    pthread_mutex_init(&conn_lock, NULL);
    inside = true;
    if (conn_open)
        hypfs_client_close(&conn);
    inside = false;
    memset(&conn, 0, sizeof(conn));
    conn.fd = -1;
    conn_open = false;
    atomic_store(&conn_fd, -1);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_child);
}

/* ---- The hypercall, through hypfsd ---- */

/* The client's sink: the reply's bytes into the caller's buffer. */
static int poke_sink(void *ctx, size_t off, const void *data, size_t len)
{
    return poke(*(const uint64_t *)ctx + off, data, len);
}

static long hypfs_op(const struct privcmd_hypercall *call)
{
    struct hypfs_client_opts opts = { .connect = emu_connect };
    struct hypfs_hypercall hc = { 0 };
    unsigned char path[XEN_HYPFS_MAX_PATHLEN];
    unsigned char *data = NULL;
    bool failed = false;
    long ret;
    int err = 0;

    /* Xen takes the command as an unsigned int, as do we. */
    hc.cmd = (uint32_t)call->arg[0];
    hc.arg1 = call->arg[1];
    hc.arg2 = call->arg[2];
    hc.arg3 = call->arg[3];
    hc.arg4 = call->arg[4];
    /*
     * Send what the caller's memory holds (up to the protocol's bounds);
     * hypfsd decides, in the hypervisor's order, whether what is missing
     * matters.
     */
    if (hc.arg2 && hc.arg2 <= XEN_HYPFS_MAX_PATHLEN) {
        hc.path = path;
        hc.path_len = peek(path, hc.arg1, (size_t)hc.arg2);
    }
    if (hc.cmd == XEN_HYPFS_OP_write_contents && hc.arg4) {
        size_t want = hc.arg4 < HYPFS_MSG_DATA_MAX ? (size_t)hc.arg4
                                                   : HYPFS_MSG_DATA_MAX;

        data = malloc(want);
        if (!data)
            return -ENOMEM;
        hc.data = data;
        hc.data_len = peek(data, hc.arg3, want);
    }

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&conn_lock);
    inside = true;
    if (!conn_open) {
        err = hypfs_client_open(&conn, &opts);
        conn_open = !err;
    } else {
        check_conn();
    }
    ret = err ? err : hypfs_client_hypercall(&conn, &hc, poke_sink, &hc.arg3,
                                             &failed);
    /*
     * A real hypervisor is always there; hypfsd may not be.  The tool sees
     * only an errno: one no hypervisor gives for a hypfs call (not ENOENT,
     * which a tool takes for a missing path), and once per outage, on its
     * standard error, the reason.
     */
    if (err || failed) {
        if (!outage_told)
            fprintf(stderr, "libhypfs-privcmd: %s\n", conn.err);
        outage_told = true;
        ret = -ENODEV;
    } else {
        outage_told = false;
    }
    /* Whatever happened to the connection, the interposers must know. */
    atomic_store_explicit(&conn_fd, conn_open ? conn.fd : -1,
                          memory_order_release);
    inside = false;
    pthread_mutex_unlock(&conn_lock);
    free(data);
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
    if (!inside && is_conn_fd(fd)) {
        /* Not the tool's to close: as if it had never been open. */
        errno = EBADF;
        return -1;
    }
    if (privcmd_fd(fd))
        mark(fd, false);
    return real_close(fd);
}

/* close_range() around our descriptor, which stays. */
static int close_range_around(unsigned int first, unsigned int last, int flags)
{
    int ours = atomic_load_explicit(&conn_fd, memory_order_acquire), ret = 0;
    unsigned int fd;

    for (fd = first; fd <= last && fd < MAX_FDS; fd++) {
        if (privcmd_fd((int)fd) && !(flags & CLOSE_RANGE_CLOEXEC))
            mark((int)fd, false);
    }
    if (inside || ours < 0 || (unsigned int)ours < first ||
        (unsigned int)ours > last)
        return real_close_range(first, last, flags);
    if ((unsigned int)ours > first)
        ret = real_close_range(first, (unsigned int)ours - 1, flags);
    if (!ret && (unsigned int)ours < last)
        ret = real_close_range((unsigned int)ours + 1, last, flags);
    return ret;
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    RESOLVE();
    if (!real_close_range) {
        errno = ENOSYS;
        return -1;
    }
    return close_range_around(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
    RESOLVE();
    if (lowfd < 0)
        lowfd = 0;
    if (real_close_range)
        close_range_around((unsigned int)lowfd, ~0u, 0);
    else if (real_closefrom)
        real_closefrom(lowfd);
}

/*
 * dup2()/dup3() onto our descriptor: move ours first, so that the tool
 * gets the number it asked for and we keep our socket.
 */
static void evacuate(int fd2)
{
    int nfd;

    if (inside || !is_conn_fd(fd2))
        return;
    pthread_mutex_lock(&conn_lock);
    if (conn.fd == fd2) {
        nfd = real_fcntl(fd2, F_DUPFD_CLOEXEC, fd2 > 64 ? fd2 - 32 : 3);
        if (nfd >= 0) {
            conn.fd = nfd;
            atomic_store_explicit(&conn_fd, nfd, memory_order_release);
        } else {
            /* No room to move: let it go, unclosed; we connect anew. */
            hypfs_client_forget_fd(&conn);
            atomic_store_explicit(&conn_fd, -1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&conn_lock);
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
    if (fd != fd2)
        evacuate(fd2);
    return dup_done(fd, real_dup2(fd, fd2));
}

EXPORT int dup3(int fd, int fd2, int flags)
{
    RESOLVE();
    if (fd != fd2)
        evacuate(fd2);
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
