/*
 * hypfs-fuse and change: sysfs's semantics.
 *
 *   poll       poll() on an open leaf wakes with POLLPRI|POLLERR when
 *              `xenhypfs write` changes it, and reading it again from the
 *              start clears that;
 *   reread     after a change, a read from offset 0 of a file opened
 *              before gets the new value, and fstat gives its length;
 *   caches     stat and ls see changes at once although names and
 *              attributes are cached (invalidated by the watch thread):
 *              a value of another length, a domain created and destroyed.
 * Skipped where FUSE cannot be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"

static struct daemon d;
static char mnt[PATH_MAX + 8];
static pid_t fuse_pid;

static bool mounted(void)
{
    struct stat a, b;
    char parent[PATH_MAX + 16];

    snprintf(parent, sizeof(parent), "%s/..", mnt);
    return !stat(mnt, &a) && !stat(parent, &b) && a.st_dev != b.st_dev;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static const char *xenhypfs(void)
{
    return program_path("XENHYPFS", "src/cli/xenhypfs");
}

static int setup(void **state)
{
    static const char *const args[] = { "--test-tree", NULL };
    int i;

    (void)state;
    if (access("/dev/fuse", R_OK | W_OK))
        return 0;
    if (daemon_start(&d, NULL, args))
        return -1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    snprintf(mnt, sizeof(mnt), "%s/mnt", d.dir);
    mkdir(mnt, 0755);
    fuse_pid = fork();
    if (!fuse_pid) {
        const char *fuse = program_path("HYPFS_FUSE", "src/fuse/hypfs-fuse");

        execl(fuse, "hypfs-fuse", "-f", mnt, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 500 && !mounted(); i++)
        usleep(10000);
    return mounted() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (fuse_pid > 0) {
        kill(fuse_pid, SIGTERM);
        waitpid(fuse_pid, NULL, 0);
        fuse_pid = 0;
    }
    if (d.pid)
        return daemon_stop(&d) ? -1 : 0;
    return 0;
}

static void need_fuse(void)
{
    if (!fuse_pid)
        skip();
}

static char *path_of(const char *p)
{
    static char buf[PATH_MAX * 2];

    snprintf(buf, sizeof(buf), "%s%s", mnt, p);
    return buf;
}

static void test_poll(void **state)
{
    struct pollfd p;
    char buf[64];
    int fd;

    (void)state;
    need_fuse();
    assert_int_equal(run("%s write /params/loglvl warning", xenhypfs()), 0);
    fd = open(path_of("/params/loglvl"), O_RDONLY);
    assert_true(fd >= 0);
    assert_true(read(fd, buf, sizeof(buf)) > 0);
    p.fd = fd;
    p.events = POLLPRI | POLLERR;
    /* Nothing changed: not woken. */
    assert_int_equal(poll(&p, 1, 200), 0);
    /* A change by someone else wakes it. */
    assert_int_equal(run("%s write /params/loglvl info/all", xenhypfs()), 0);
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(p.revents & POLLPRI);
    assert_true(p.revents & POLLERR);
    /* Read again from the start: the new value, and quiet again. */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(pread(fd, buf, sizeof(buf), 0),
                     (ssize_t)strlen("info/all\n"));
    assert_string_equal(buf, "info/all\n");
    p.revents = 0;
    assert_int_equal(poll(&p, 1, 200), 0);
    close(fd);
}

static void test_reread(void **state)
{
    char buf[64];
    struct stat st;
    int fd;

    (void)state;
    need_fuse();
    assert_int_equal(run("%s write /params/loglvl none", xenhypfs()), 0);
    fd = open(path_of("/params/loglvl"), O_RDONLY);
    assert_true(fd >= 0);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(read(fd, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "none/none\n");
    assert_int_equal(run("%s write /params/loglvl error/info", xenhypfs()),
                     0);
    /* As tail -f sees it: the size, then the content from the start. */
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)strlen("error/info\n"));
    memset(buf, 0, sizeof(buf));
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), st.st_size);
    assert_string_equal(buf, "error/info\n");
    close(fd);
}

static void test_caches_follow(void **state)
{
    struct stat st;
    int i;

    (void)state;
    need_fuse();
    assert_int_equal(run("%s write /params/loglvl none", xenhypfs()), 0);
    assert_int_equal(stat(path_of("/params/loglvl"), &st), 0);
    assert_int_equal(st.st_size, 10);
    /* Cached now; a change of length must show at once, not later. */
    assert_int_equal(run("%s write /params/loglvl warning/all", xenhypfs()),
                     0);
    for (i = 0; i < 1000; i++) {
        assert_int_equal(stat(path_of("/params/loglvl"), &st), 0);
        if (st.st_size == (off_t)strlen("warning/all\n"))
            break;
        usleep(10000);      /* the invalidation is asynchronous */
    }
    assert_int_equal(st.st_size, (off_t)strlen("warning/all\n"));

    /* A domain appears and goes: its directory with it. */
    assert_int_equal(run("HYPFS_SOCKET=%s %s domain-create fusedom >/dev/null",
                         d.socket, program_path("HYPFSCTL",
                                                "src/ctl/hypfsctl")), 0);
    assert_int_equal(stat(path_of("/domain/1/name"), &st), 0);
    assert_int_equal(run("HYPFS_SOCKET=%s %s domain-destroy 1", d.socket,
                         program_path("HYPFSCTL", "src/ctl/hypfsctl")), 0);
    for (i = 0; i < 1000 && !stat(path_of("/domain/1"), &st); i++)
        usleep(10000);
    assert_int_equal(stat(path_of("/domain/1"), &st), -1);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll),
        cmocka_unit_test(test_reread),
        cmocka_unit_test(test_caches_follow),
    };

    return cmocka_run_group_tests_name("fuse-watch", tests, setup, teardown);
}
