/*
 * What the benchmarks share: a clock, medians and percentiles, finding the
 * programs they start next to themselves in the build tree, and timing a
 * run of one.
 */
#ifndef HYPFS_BENCH_UTIL_H
#define HYPFS_BENCH_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline double now_us(void)
{
    return now_ns() / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The @pct-th percentile of @v (sorted in place). */
static inline double percentile(double *v, int n, int pct)
{
    int i = (int)((long)n * pct / 100);

    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return v[i < n ? i : n - 1];
}

static inline double median(double *v, int n)
{
    return percentile(v, n, 50);
}

/* @rel resolved against the directory of this program. */
static inline const char *sibling_program(const char *argv0, const char *rel)
{
    static char path[PATH_MAX * 2];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0)
        snprintf(self, sizeof(self), "%s", argv0);
    else
        self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof(path), "%s/%s", slash ? self : ".", rel);
    return path;
}

/*
 * Microseconds from fork to exit of the program @argv (searched in PATH
 * unless it holds a '/'), its output discarded; exits if the program fails.
 */
static inline double run_quiet(const char *const *argv)
{
    double t0 = now_us();
    int status;
    pid_t pid = fork();

    if (!pid) {
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "%s failed\n", argv[0]);
        exit(1);
    }
    return now_us() - t0;
}

/*
 * Latency between two processes on a virtual machine is dominated by how a
 * waiting vCPU is woken: a vCPU that stayed idle past the guest's halt-poll
 * window needs the host to run it again, tens of microseconds, and a few
 * microseconds more work on the other side can tip a round trip over that
 * edge.  Latency rounds therefore put client and server on one CPU (cpu 0),
 * where a wake-up is a plain context switch and what remains is the cost
 * of the software; -1 lets them run anywhere again.  A server's connection
 * threads inherit the affinity of the thread that creates them.
 */
static inline void pin(pid_t pid, int cpu)
{
    cpu_set_t set;
    long n = sysconf(_SC_NPROCESSORS_ONLN), i;

    CPU_ZERO(&set);
    for (i = 0; i < n; i++)
        if (cpu < 0 || (n > 1 ? i == cpu : 1))
            CPU_SET((int)i, &set);
    sched_setaffinity(pid, sizeof(set), &set);
}

/* Every thread of @pid on @cpu (threads made later inherit it). */
static inline void pin_all(pid_t pid, int cpu)
{
    char dir[64];
    DIR *d;
    struct dirent *e;

    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    d = opendir(dir);
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            pin((pid_t)atoi(e->d_name), cpu);
    if (d)
        closedir(d);
}

#endif
