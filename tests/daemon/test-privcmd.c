/*
 * libhypfs-privcmd, preloaded into this test (LD_PRELOAD from meson): the
 * hypercall through the emulated device, every kind of bad pointer giving
 * EFAULT and never a crash, other hypercalls ENOSYS, other ioctls ENOTTY,
 * other files and ioctls untouched, descriptors followed through dup and
 * close, threads, and fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <hypfs/abi.h>

#include "daemon.h"

struct privcmd_hypercall {
    uint64_t op;
    uint64_t arg[5];
};
#define IOCTL_PRIVCMD_HYPERCALL  _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

static struct daemon d;
static int pfd = -1;
static long page;

static int setup(void **state)
{
    static const char *const args[] = { "--test-tree", NULL };

    (void)state;
    page = sysconf(_SC_PAGESIZE);
    if (daemon_start(&d, NULL, args))
        return -1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    pfd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    return pfd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    close(pfd);
    return daemon_stop(&d) ? -1 : 0;
}

static int hcall(int fd, uint64_t op, uint64_t a0, const void *a1, uint64_t a2,
                 void *a3, uint64_t a4)
{
    struct privcmd_hypercall c = {
        op, { a0, (uintptr_t)a1, a2, (uintptr_t)a3, a4 },
    };

    return ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &c);
}

/* Read @path through the device into @buf; the ioctl's result. */
static int hread(const char *path, void *buf, size_t len)
{
    return hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_read, path,
                 strlen(path) + 1, buf, len);
}

static void expect_fail_at(int line, int ret, int err)
{
    if (ret != -1 || errno != err)
        fail_msg("line %d: %d, errno %d (%s); expected -1, errno %d (%s)",
                 line, ret, errno, strerror(errno), err, strerror(err));
}
#define expect_fail(ret, err) expect_fail_at(__LINE__, ret, err)

static void test_open(void **state)
{
    int fd;

    (void)state;
    fd = open("/dev/xen/privcmd", O_RDONLY);
    expect_fail(fd, EACCES);
    fd = openat(AT_FDCWD, "/proc/xen/privcmd", O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(hcall(fd, __HYPERVISOR_hypfs_op,
                           XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0),
                     XEN_HYPFS_VERSION);
    assert_int_equal(close(fd), 0);
    /* Other paths are what they are. */
    fd = open("/dev/xen/hypercall", O_RDWR);
    expect_fail(fd, ENOENT);
    fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
}

static void test_hypercalls(void **state)
{
    unsigned char buf[256];
    struct xen_hypfs_direntry e;

    (void)state;
    assert_int_equal(hcall(pfd, __HYPERVISOR_hypfs_op,
                           XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0),
                     XEN_HYPFS_VERSION);
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                      NULL, 1, NULL, 0), EINVAL);
    assert_int_equal(hread("/test/types/u16", buf, sizeof(buf)), 0);
    memcpy(&e, buf, sizeof(e));
    assert_int_equal(e.type, XEN_HYPFS_TYPE_UINT);
    assert_int_equal(*(uint16_t *)(void *)(buf + 12), 65000);
    /* Short buffer: the direntry comes back with ENOBUFS. */
    memset(buf, 0xaa, sizeof(buf));
    expect_fail(hread("/test/types/string_ro", buf, 12), ENOBUFS);
    memcpy(&e, buf, sizeof(e));
    assert_int_equal(e.content_len, 10);
    assert_int_equal(buf[12], 0xaa);
    expect_fail(hread("/none", buf, sizeof(buf)), ENOENT);
    /* Writes carry their data. */
    assert_int_equal(hcall(pfd, __HYPERVISOR_hypfs_op,
                           XEN_HYPFS_OP_write_contents, "/test/types/string",
                           sizeof("/test/types/string"), "via privcmd", 12), 0);
    assert_int_equal(hread("/test/types/string", buf, sizeof(buf)), 0);
    assert_string_equal((char *)buf + 12, "via privcmd");
    /* Any other hypercall: ENOSYS.  Any other ioctl: ENOTTY. */
    expect_fail(hcall(pfd, 17, 0, NULL, 0, NULL, 0), ENOSYS);
    expect_fail(ioctl(pfd, _IOC(_IOC_NONE, 'P', 1, 24), buf), ENOTTY);
    /* The command is taken as an unsigned int, as Xen does. */
    assert_int_equal(hcall(pfd, __HYPERVISOR_hypfs_op,
                           XEN_HYPFS_OP_get_version | (1ull << 32), NULL, 0,
                           NULL, 0), XEN_HYPFS_VERSION);
}

/*
 * Two pages, the second inaccessible.  PROT_NONE rather than unmapped, so
 * that no later mapping can land in the hole and make it readable.
 */
static char *edge(void)
{
    char *p = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    assert_true(p != MAP_FAILED);
    assert_int_equal(mprotect(p + page, (size_t)page, PROT_NONE), 0);
    return p;
}

static void test_bad_pointers(void **state)
{
    unsigned char buf[256];
    char *p = edge(), *ro;
    const char path[] = "/test/types/u8";

    (void)state;
    /* The ioctl's own argument. */
    expect_fail(ioctl(pfd, IOCTL_PRIVCMD_HYPERCALL, (void *)16), EFAULT);
    expect_fail(ioctl(pfd, IOCTL_PRIVCMD_HYPERCALL, p + page - 8), EFAULT);
    /* A path that cannot be read at all, or runs into the hole. */
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_read, NULL, 10,
                      buf, sizeof(buf)), EFAULT);
    memcpy(p + page - 5, "/test", 5);
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_read,
                      p + page - 5, sizeof(path), buf, sizeof(buf)), EFAULT);
    /* ...but a path that ends right at the hole is fine. */
    memcpy(p + page - sizeof(path), path, sizeof(path));
    assert_int_equal(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_read,
                           p + page - sizeof(path), sizeof(path), buf,
                           sizeof(buf)), 0);
    /* The length is checked before the path is read: EINVAL, not EFAULT. */
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_read,
                      (void *)16, 5000, buf, sizeof(buf)), EINVAL);
    /* An output buffer that cannot be written. */
    expect_fail(hread(path, (void *)16, 64), EFAULT);
    expect_fail(hread(path, p + page - 8, 64), EFAULT);
    ro = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(ro != MAP_FAILED);
    expect_fail(hread(path, ro, 64), EFAULT);
    /* Data that cannot be read. */
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_write_contents,
                      "/test/types/string", sizeof("/test/types/string"),
                      (void *)16, 4), EFAULT);
    expect_fail(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_write_contents,
                      "/test/types/string", sizeof("/test/types/string"),
                      p + page - 2, 4), EFAULT);
    /* And nothing was written by any of those. */
    assert_int_equal(hread("/test/types/string", buf, sizeof(buf)), 0);
    assert_string_equal((char *)buf + 12, "via privcmd");
    munmap(p, (size_t)page * 2);
    munmap(ro, (size_t)page);
}

static void test_descriptors(void **state)
{
    int fds[2], n = 0, d1, d2, d3;
    unsigned char buf[64];

    (void)state;
    /* Other ioctls pass through. */
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "abc", 3), 3);
    assert_int_equal(ioctl(fds[0], FIONREAD, &n), 0);
    assert_int_equal(n, 3);
    /* A privcmd ioctl on an ordinary descriptor is the kernel's answer. */
    assert_int_equal(ioctl(fds[0], IOCTL_PRIVCMD_HYPERCALL, buf), -1);
    assert_int_not_equal(errno, ENOSYS);
    /* Copies are privcmd; closing forgets. */
    d1 = dup(pfd);
    d2 = fcntl(pfd, F_DUPFD_CLOEXEC, 100);
    d3 = dup2(pfd, fds[1]);     /* replaces the pipe's write end */
    assert_true(d1 >= 0 && d2 >= 100 && d3 == fds[1]);
    assert_int_equal(hcall(d1, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                           NULL, 0, NULL, 0), XEN_HYPFS_VERSION);
    assert_int_equal(hcall(d2, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                           NULL, 0, NULL, 0), XEN_HYPFS_VERSION);
    assert_int_equal(hcall(d3, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                           NULL, 0, NULL, 0), XEN_HYPFS_VERSION);
    close(d1);
    close(d2);
    assert_int_equal(hcall(d1, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                           NULL, 0, NULL, 0), -1);
    assert_int_equal(errno, EBADF);
    /* dup2 over a privcmd descriptor makes it ordinary again. */
    assert_int_equal(dup2(fds[0], d3), d3);
    assert_int_equal(ioctl(d3, FIONREAD, &n), 0);
    close(d3);
    close(fds[0]);
}

static void *worker(void *arg)
{
    const char *path = arg;
    unsigned char buf[64];
    long bad = 0;
    int i;

    for (i = 0; i < 300; i++)
        if (hread(path, buf, sizeof(buf)))
            bad++;
    return (void *)bad;
}

static void test_threads_and_fork(void **state)
{
    static const char *const paths[] = {
        "/test/types/u8", "/test/types/u16", "/test/types/i8",
        "/test/types/bool", "/test/a", "/test/b", "/domain/0/name",
        "/params/loglvl",
    };
    pthread_t t[8];
    void *bad;
    pid_t pid;
    int i, status;

    (void)state;
    for (i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, worker, (void *)paths[i]);
    /* A child during all this has its own connection. */
    pid = fork();
    if (!pid)
        _exit(worker((void *)"/test/types/u32") ? 1 : 0);
    for (i = 0; i < 8; i++) {
        pthread_join(t[i], &bad);
        assert_int_equal((uintptr_t)bad, 0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(hcall(pfd, __HYPERVISOR_hypfs_op, XEN_HYPFS_OP_get_version,
                           NULL, 0, NULL, 0), XEN_HYPFS_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_hypercalls),
        cmocka_unit_test(test_bad_pointers),
        cmocka_unit_test(test_descriptors),
        cmocka_unit_test(test_threads_and_fork),
    };

    return cmocka_run_group_tests_name("privcmd", tests, setup, teardown);
}
