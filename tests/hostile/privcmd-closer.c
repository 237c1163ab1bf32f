/*
 * A Xen tool with bad manners, run under the privcmd emulation
 * (LD_PRELOAD=libhypfs-privcmd.so): it closes descriptors it does not
 * own, with close(), close_range(), closefrom() and dup2() over them, and
 * finally with a raw close_range system call the emulation cannot see,
 * then reuses the number for a file of its own.  After each, a hypercall
 * must still work, and the tool's file must never be written to or
 * closed by the emulation.  Prints what failed; exits 0 if nothing did.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <hypfs/abi.h>

#include "privcmd-abi.h"

static int failures;

static int open_privcmd(void)
{
    int fd = open(PRIVCMD_PATH, O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        perror("open " PRIVCMD_PATH);
        exit(2);
    }
    return fd;
}

/* get_version through the emulation: the interface version, or -errno. */
static long version(int fd)
{
    struct privcmd_hypercall call = { .op = __HYPERVISOR_hypfs_op };
    long ret;

    call.arg[0] = XEN_HYPFS_OP_get_version;
    ret = ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &call);
    return ret < 0 ? -errno : ret;
}

static void expect_served(const char *after)
{
    int fd = open_privcmd();
    long v = version(fd);

    if (v < 1) {
        printf("FAIL: after %s: get_version gave %ld\n", after, v);
        failures++;
    }
    close(fd);
}

/* The emulation's socket: the only socket this program did not make. */
static int hidden_socket(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;

    while (d && (e = readdir(d))) {
        char link[300], target[128];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0 && !strncmp(target, "socket:", 7) && atoi(e->d_name) > 2 &&
            atoi(e->d_name) != dirfd(d))
            found = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

int main(void)
{
    char tmpl[] = "/tmp/hypfs-closer-XXXXXX";
    int fd, s, file, i;
    struct stat st;

    expect_served("nothing");
    s = hidden_socket();
    if (s < 0) {
        printf("FAIL: no connection to hypfsd after a hypercall\n");
        return 1;
    }

    fd = open_privcmd();
    for (i = 3; i < 4096; i++)
        if (i != fd)
            close(i);
    close(fd);
    expect_served("close() of every descriptor");

    close_range(3, ~0u, 0);
    expect_served("close_range(3, ~0, 0)");

    closefrom(3);
    expect_served("closefrom(3)");

    s = hidden_socket();
    fd = open("/dev/null", O_RDONLY);
    if (s >= 0 && dup2(fd, s) != s) {
        printf("FAIL: dup2 onto %d: %s\n", s, strerror(errno));
        failures++;
    }
    expect_served("dup2() onto the emulation's descriptor");
    close(fd);
    if (s >= 0)
        close(s);

    /*
     * What it cannot see: a raw system call closes everything, and the
     * number comes back as the tool's own file.
     */
    s = hidden_socket();
    syscall(SYS_close_range, 3, ~0u, 0);
    file = mkstemp(tmpl);
    /* Raw too: the emulation must notice by itself, not in its dup2(). */
    if (file < 0 || s < 0 ||
        (file != s && syscall(SYS_dup3, file, s, 0) != s)) {
        printf("FAIL: cannot set up the reused descriptor\n");
        return 1;
    }
    if (file != s)
        close(file);
    expect_served("a raw close_range and the number reused");
    if (fcntl(s, F_GETFD) < 0) {
        printf("FAIL: the tool's file (descriptor %d) was closed\n", s);
        failures++;
    } else if (fstat(s, &st) || st.st_size != 0) {
        printf("FAIL: the tool's file was written to (%lld bytes)\n",
               (long long)st.st_size);
        failures++;
    }
    unlink(tmpl);
    if (!failures)
        printf("the emulation's descriptor survived every close, and it "
               "never touched the tool's file\n");
    return failures ? 1 : 0;
}
