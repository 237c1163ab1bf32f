/*
 * bench-fuse: reading a value the way people and agents do.
 *
 * A small leaf (/params/gnttab_max_frames, "64") read through hypfs-fuse, next
 * to a sysfs file (/sys/devices/system/cpu/online), in the same run:
 *   in-process  open + read + close, as a monitoring agent reads (p50);
 *   cat         a `cat` process, as a person reads (p50);
 *   cli         a `xenhypfs cat` process, the tool's way (p50).
 * Needs /dev/fuse.  Run by hand: build/bench/bench-fuse [--quick].
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "daemon.h"

#define SYSFS "/sys/devices/system/cpu/online"

static double read_file(const char *path)
{
    char buf[256];
    double t0 = now_us();
    int fd = open(path, O_RDONLY);

    if (fd < 0 || read(fd, buf, sizeof(buf)) <= 0) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    close(fd);
    return now_us() - t0;
}

static bool mounted(const char *dir)
{
    struct stat a, b;
    char parent[PATH_MAX + 16];

    if (snprintf(parent, sizeof(parent), "%s/..", dir) >= (int)sizeof(parent))
        return false;
    return !stat(dir, &a) && !stat(parent, &b) && a.st_dev != b.st_dev;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int n = quick ? 500 : 3000, np = quick ? 30 : 200, i;
    const char *args[] = { "-q", NULL };
    char mnt[PATH_MAX + 8], leaf[PATH_MAX + 64];
    const char *fuse, *xenhypfs;
    double *tf, *ts, *pf, *ps, *pc;
    struct daemon d;
    pid_t fpid;

    if (access("/dev/fuse", R_OK | W_OK)) {
        fprintf(stderr, "bench-fuse: /dev/fuse is not usable here\n");
        return 1;
    }
    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    fuse = strdup(program_path("HYPFS_FUSE",
                               sibling_program(argv[0], "../src/fuse/hypfs-fuse")));
    xenhypfs = strdup(program_path("XENHYPFS",
                                   sibling_program(argv[0], "../src/cli/xenhypfs")));
    if (daemon_start(&d, NULL, args))
        return 1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    if (snprintf(mnt, sizeof(mnt), "%s/mnt", d.dir) >= (int)sizeof(mnt) ||
        snprintf(leaf, sizeof(leaf), "%s/params/gnttab_max_frames", mnt) >=
            (int)sizeof(leaf))
        return 1;
    mkdir(mnt, 0755);
    fpid = fork();
    if (!fpid) {
        execl(fuse, "hypfs-fuse", "-f", mnt, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 500 && !mounted(mnt); i++)
        usleep(10000);
    if (!mounted(mnt)) {
        fprintf(stderr, "hypfs-fuse did not mount (%s)\n", fuse);
        return 1;
    }

    tf = malloc((size_t)n * sizeof(*tf));
    ts = malloc((size_t)n * sizeof(*ts));
    pf = malloc((size_t)np * sizeof(*pf));
    ps = malloc((size_t)np * sizeof(*ps));
    pc = malloc((size_t)np * sizeof(*pc));
    if (!tf || !ts || !pf || !ps || !pc)
        return 1;
    /* As bench-client: everyone on one CPU (see pin() in bench-util.h). */
    pin(0, 0);
    pin_all(fpid, 0);
    pin_all(d.pid, 0);
    for (i = 0; i < n; i++) {
        tf[i] = read_file(leaf);
        ts[i] = read_file(SYSFS);
    }
    for (i = 0; i < np; i++) {
        const char *cat_fuse[] = { "cat", leaf, NULL };
        const char *cat_sys[] = { "cat", SYSFS, NULL };
        const char *cli[] = { xenhypfs, "cat", "/params/gnttab_max_frames", NULL };

        pf[i] = run_quiet(cat_fuse);
        ps[i] = run_quiet(cat_sys);
        pc[i] = run_quiet(cli);
    }
    kill(fpid, SIGTERM);
    waitpid(fpid, NULL, 0);
    daemon_stop(&d);

    printf("%-34s %10s %10s\n", "p50, microseconds", "hypfs", "sysfs");
    printf("%-34s %10.1f %10.1f\n", "open+read+close, in-process",
           percentile(tf, n, 50), percentile(ts, n, 50));
    printf("%-34s %10.1f %10.1f\n", "a cat process", percentile(pf, np, 50),
           percentile(ps, np, 50));
    printf("%-34s %10.1f\n", "a xenhypfs cat process", percentile(pc, np, 50));
    printf("RESULT fuse_sysfs_ratio=%.1f fuse_read_us=%.1f cli_read_us=%.1f "
           "sysfs_read_us=%.1f fuse_cat_us=%.1f sysfs_cat_us=%.1f\n",
           percentile(tf, n, 50) / percentile(ts, n, 50),
           percentile(tf, n, 50),
           percentile(pc, np, 50), percentile(ts, n, 50),
           percentile(pf, np, 50), percentile(ps, np, 50));
    return 0;
}
