/*
 * bench-fuse: reading a value the way people and agents do.
 *
 * A small leaf (/params/gnttab_max_frames, "64") read through hypfs-fuse, next
 * to a sysfs file (/sys/devices/system/cpu/online), in the same run:
 *   in-process  open + read + close, as a monitoring agent reads (p50);
 *   cat         a `cat` process, as a person reads (p50);
 *   cli         a `xenhypfs cat` process, the tool's way (p50).
 * and the same open + read + close on a second mount with -o cache_values,
 * whose reads of an unchanged value stay in the kernel (fuse_cached_*),
 * with its staleness: from the reply to a write made through hypfsd (not
 * the mount) to the mount's first read that returns the new value
 * (stale_*_us; a read costs a few microseconds of it, and the watch
 * thread shares the CPU with the reader, which yields between reads).
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

#include <sched.h>
#include <xenhypfs.h>

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

/* @path's content, up to 63 bytes, as a string. */
static void content(const char *path, char *buf)
{
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, 63);

    if (n < 0) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    buf[n] = '\0';
    close(fd);
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
    char mntc[PATH_MAX + 8], leafc[PATH_MAX + 64], knob[PATH_MAX + 64];
    int nst = quick ? 100 : 1000;
    double *tf, *ts, *pf, *ps, *pc, *tc, *st;
    xenhypfs_handle *w;
    struct daemon d;
    pid_t fpid, cpid;

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
    if (snprintf(mntc, sizeof(mntc), "%s/mntc", d.dir) >= (int)sizeof(mntc) ||
        snprintf(leafc, sizeof(leafc), "%s/params/gnttab_max_frames", mntc) >=
            (int)sizeof(leafc) ||
        snprintf(knob, sizeof(knob), "%s/params/sched_credit_tslice_ms",
                 mntc) >= (int)sizeof(knob))
        return 1;
    mkdir(mnt, 0755);
    mkdir(mntc, 0755);
    fpid = fork();
    if (!fpid) {
        execl(fuse, "hypfs-fuse", "-f", mnt, (char *)NULL);
        _exit(127);
    }
    cpid = fork();
    if (!cpid) {
        execl(fuse, "hypfs-fuse", "-f", "-o", "cache_values", mntc,
              (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 500 && !(mounted(mnt) && mounted(mntc)); i++)
        usleep(10000);
    if (!mounted(mnt) || !mounted(mntc)) {
        fprintf(stderr, "hypfs-fuse did not mount (%s)\n", fuse);
        return 1;
    }
    w = xenhypfs_open(NULL, 0);
    if (!w) {
        fprintf(stderr, "cannot reach hypfsd at %s\n", d.socket);
        return 1;
    }

    tf = malloc((size_t)n * sizeof(*tf));
    ts = malloc((size_t)n * sizeof(*ts));
    pf = malloc((size_t)np * sizeof(*pf));
    ps = malloc((size_t)np * sizeof(*ps));
    pc = malloc((size_t)np * sizeof(*pc));
    tc = malloc((size_t)n * sizeof(*tc));
    st = malloc((size_t)nst * sizeof(*st));
    if (!tf || !ts || !pf || !ps || !pc || !tc || !st)
        return 1;
    /* As bench-client: everyone on one CPU (see pin() in bench-util.h). */
    pin(0, 0);
    pin_all(fpid, 0);
    pin_all(cpid, 0);
    pin_all(d.pid, 0);
    for (i = 0; i < n; i++) {
        tf[i] = read_file(leaf);
        ts[i] = read_file(SYSFS);
        tc[i] = read_file(leafc);
    }
    for (i = 0; i < nst; i++) {
        const char *val = i % 2 ? "20" : "10";
        char want[8], got[64];
        double t0;
        int spins = 0;

        snprintf(want, sizeof(want), "%s\n", val);
        content(knob, got);         /* the old value, cached */
        if (xenhypfs_write(w, "/params/sched_credit_tslice_ms", val)) {
            fprintf(stderr, "write: %s\n", strerror(errno));
            return 1;
        }
        t0 = now_us();
        for (;;) {
            content(knob, got);
            if (!strcmp(got, want))
                break;
            if (++spins > 2000000) {
                fprintf(stderr, "the cached mount never showed %s", want);
                return 1;
            }
            sched_yield();
        }
        st[i] = now_us() - t0;
    }
    xenhypfs_close(w);
    for (i = 0; i < np; i++) {
        const char *cat_fuse[] = { "cat", leaf, NULL };
        const char *cat_sys[] = { "cat", SYSFS, NULL };
        const char *cli[] = { xenhypfs, "cat", "/params/gnttab_max_frames", NULL };

        pf[i] = run_quiet(cat_fuse);
        ps[i] = run_quiet(cat_sys);
        pc[i] = run_quiet(cli);
    }
    kill(fpid, SIGTERM);
    kill(cpid, SIGTERM);
    waitpid(fpid, NULL, 0);
    waitpid(cpid, NULL, 0);
    daemon_stop(&d);

    printf("%-34s %10s %10s\n", "p50, microseconds", "hypfs", "sysfs");
    printf("%-34s %10.1f %10.1f\n", "open+read+close, in-process",
           percentile(tf, n, 50), percentile(ts, n, 50));
    printf("%-34s %10.1f %10.1f\n", "... -o cache_values",
           percentile(tc, n, 50), percentile(ts, n, 50));
    printf("%-34s %10.1f %10.1f\n", "a cat process", percentile(pf, np, 50),
           percentile(ps, np, 50));
    printf("%-34s %10.1f\n", "a xenhypfs cat process", percentile(pc, np, 50));
    printf("%-34s %10.1f %10.1f\n", "cache_values staleness p50, p99",
           percentile(st, nst, 50), percentile(st, nst, 99));
    printf("RESULT fuse_sysfs_ratio=%.1f fuse_read_us=%.1f cli_read_us=%.1f "
           "sysfs_read_us=%.1f fuse_cat_us=%.1f sysfs_cat_us=%.1f "
           "fuse_cached_sysfs_ratio=%.2f fuse_cached_read_us=%.1f "
           "stale_p50_us=%.1f stale_p99_us=%.1f\n",
           percentile(tf, n, 50) / percentile(ts, n, 50),
           percentile(tf, n, 50),
           percentile(pc, np, 50), percentile(ts, n, 50),
           percentile(pf, np, 50), percentile(ps, np, 50),
           percentile(tc, n, 50) / percentile(ts, n, 50),
           percentile(tc, n, 50), percentile(st, nst, 50),
           percentile(st, nst, 99));
    return 0;
}
