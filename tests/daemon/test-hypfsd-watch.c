/*
 * Interface version 2 through hypfsd and libxenhypfs: subtree reads,
 * generations and watches, end to end.
 *
 *   read_tree      what a version-1 walk (readdir + read_raw) finds, entry
 *                  for entry, with the same values;
 *   watches        every kind of change wakes the watchers of its path
 *                  (writes, domains and pools created, destroyed, paused,
 *                  cpus moved), and the event's generation is the path's;
 *   rights         a guest's generations do not move for what it cannot
 *                  read (other domains, pools, parameters), and do for its
 *                  own domain (root only: guests are other users);
 *   final state    under a write storm the watcher always ends with the
 *                  last value;
 *   bounds         --max-watches 10000: not one more; closing
 *                  drops them; a watcher that never reads is closed after
 *                  the send timeout and nobody else notices;
 *   restart        a watcher survives a daemon restart: re-armed, told of
 *                  the gap;
 *   budget         a guest's watches count at their whole cost against its
 *                  domain's budget, re-arming too; another domain's budget
 *                  is its own.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"
#include "xenhypfs-ext.h"

#define UID_DOM1        65534
#define UID_DOM2        65533

static struct daemon d;

static xenhypfs_handle *open_h(void)
{
    struct xenhypfs_open_args a = {
        .transport = XENHYPFS_TRANSPORT_SOCKET,
        .socket_path = d.socket,
    };
    xenhypfs_handle *h = xenhypfs_open_ext(&a);

    assert_non_null(h);
    return h;
}

static int ctl(const char *verb, ...)
{
    const char *argv[8];
    struct hypfs_client c;
    const char *text;
    uint32_t len;
    int argc = 0, status = -1;
    va_list ap;

    argv[argc++] = verb;
    va_start(ap, verb);
    while (argc < 8 && (argv[argc] = va_arg(ap, const char *)))
        argc++;
    va_end(ap);
    assert_int_equal(tclient_open(&c, d.socket), 0);
    assert_int_equal(hypfs_client_ctl(&c, argc, argv, &status, &text, &len),
                     0);
    hypfs_client_close(&c);
    return status;
}

/* Wait up to @ms for events; take them into @ev.  How many. */
static int wait_events(xenhypfs_handle *h, struct xenhypfs_event *ev,
                       unsigned int max, int ms)
{
    struct pollfd p = { .fd = xenhypfs_event_fd(h), .events = POLLIN };
    int n;

    assert_true(p.fd >= 0);
    n = xenhypfs_read_events(h, ev, max);
    if (n)
        return n;
    if (poll(&p, 1, ms) < 0)
        return -1;
    return xenhypfs_read_events(h, ev, max);
}

/* Events read but not awaited yet. */
static struct xenhypfs_event backlog[256];
static int nbacklog;

/* Wait (up to 10 s) for an event of watch @token, or fail. */
static struct xenhypfs_event await(xenhypfs_handle *h, uint64_t token)
{
    struct xenhypfs_event ev[64], found;
    struct timespec t0, t;
    int i;

    for (i = 0; i < nbacklog; i++)
        if (backlog[i].token == token) {
            found = backlog[i];
            backlog[i] = backlog[--nbacklog];
            return found;
        }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int n = wait_events(h, ev, 64, 200), hit = -1;

        for (i = 0; i < n; i++)
            if (ev[i].token == token && hit < 0)
                hit = i;
            else if (nbacklog < 256)
                backlog[nbacklog++] = ev[i];
        if (hit >= 0)
            return ev[hit];
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("no event for watch %llu in 10 s",
                     (unsigned long long)token);
    }
}

static int setup(void **state)
{
    /* The bound tested below, as an operator would set it. */
    static const char *const args[] = { "--test-tree", "--max-watches",
                                        "10000", NULL };

    (void)state;
    return daemon_start(&d, getuid() ? NULL : "map 65534 1\nmap 65533 2\n",
                        args);
}

static int teardown(void **state)
{
    (void)state;
    return daemon_stop(&d) ? -1 : 0;
}

/* ---- read_tree ---- */

static void check_against_walk(xenhypfs_handle *h, const char *top)
{
    struct xenhypfs_tree_entry *t;
    unsigned int n, i;

    t = xenhypfs_read_tree(h, top, &n);
    assert_non_null(t);
    assert_true(n >= 1);
    for (i = 0; i < n; i++) {
        char path[1024];
        struct xenhypfs_dirent *dent;
        void *content;

        if (!t[i].dirent.name[0])
            snprintf(path, sizeof(path), "%s", top);
        else
            snprintf(path, sizeof(path), "%s%s%s", top,
                     strcmp(top, "/") ? "/" : "", t[i].dirent.name);
        content = xenhypfs_read_raw(h, path, &dent);
        assert_non_null(content);
        assert_int_equal(dent->type, t[i].dirent.type);
        assert_int_equal(dent->encoding, t[i].dirent.encoding);
        assert_int_equal(dent->flags, t[i].dirent.flags);
        if (dent->type != xenhypfs_type_dir) {
            assert_int_equal(dent->size, t[i].dirent.size);
            assert_memory_equal(content, t[i].content, dent->size);
        } else {
            unsigned int kids, k, seen = 0;
            struct xenhypfs_dirent *list = xenhypfs_readdir(h, path, &kids);

            assert_non_null(list);
            /* Its children follow it, in the listing's order. */
            for (k = i + 1; k < n && t[k].depth > t[i].depth; k++)
                if (t[k].depth == t[i].depth + 1) {
                    const char *base = strrchr(t[k].dirent.name, '/');

                    base = base ? base + 1 : t[k].dirent.name;
                    assert_true(seen < kids);
                    assert_string_equal(base, list[seen].name);
                    seen++;
                }
            assert_int_equal(seen, kids);
            free(list);
        }
        free(dent);
        free(content);
    }
    free(t);
}

static void test_read_tree(void **state)
{
    xenhypfs_handle *h = open_h();
    unsigned int n;

    (void)state;
    check_against_walk(h, "/");
    check_against_walk(h, "/test");
    check_against_walk(h, "/buildinfo/version/major");
    assert_null(xenhypfs_read_tree(h, "/nope", &n));
    assert_int_equal(errno, ENOENT);
    xenhypfs_close(h);
}

/* ---- Every kind of change ---- */

/*
 * Watch @paths (tokens 1..n), do @what, and expect exactly the watches in
 * @woken (a string of '0'/'1' per path) to get an event with the path's
 * new generation.  The others' generations must not have moved.
 */
static void expect_woken(xenhypfs_handle *h, const char *const *paths,
                         unsigned int n, const char *woken,
                         void (*what)(void))
{
    uint64_t before[16], after;
    unsigned int i;

    for (i = 0; i < n; i++) {
        assert_int_equal(xenhypfs_get_generation(h, paths[i], &before[i]), 0);
        assert_int_equal(xenhypfs_watch(h, paths[i], i + 1, before[i]), 0);
    }
    what();
    for (i = 0; i < n; i++) {
        if (woken[i] == '1') {
            struct xenhypfs_event ev = await(h, i + 1);

            if (!ev.status) {
                assert_int_equal(xenhypfs_get_generation(h, paths[i], &after),
                                 0);
                assert_true(ev.generation == after);
            }
            assert_true(after != before[i] || ev.status);
        } else if (!xenhypfs_get_generation(h, paths[i], &after)) {
            if (after != before[i])
                fail_msg("%s moved", paths[i]);
        }
    }
    for (i = 0; i < n; i++)
        assert_int_equal(xenhypfs_unwatch(h, i + 1), 0);
    nbacklog = 0;
}

static void do_write(void)
{
    xenhypfs_handle *h = open_h();

    assert_int_equal(xenhypfs_write(h, "/params/gnttab_max_frames", "77"), 0);
    xenhypfs_close(h);
}

static void do_domain_create(void)
{
    assert_int_equal(ctl("domain-create", "name=watched", NULL), 0);
}

static void do_domain_pause(void)
{
    assert_int_equal(ctl("domain-pause", "id=1", NULL), 0);
}

static void do_domain_destroy(void)
{
    assert_int_equal(ctl("domain-destroy", "id=1", NULL), 0);
}

static void do_pool_create(void)
{
    assert_int_equal(ctl("pool-create", "name=wp", NULL), 0);
}

static void do_cpu_move(void)
{
    assert_int_equal(ctl("cpu-remove", "cpu=1", NULL), 0);
}

static void test_every_change(void **state)
{
    static const char *const p[] = {
        "/params/gnttab_max_frames", "/params", "/domain", "/cpupool",
        "/cpupool/0", "/buildinfo", "/",
    };
    xenhypfs_handle *h = open_h();

    (void)state;
    expect_woken(h, p, 7, "1100001", do_write);
    expect_woken(h, p, 7, "0010001", do_domain_create);
    {
        static const char *const q[] = { "/domain/1", "/domain/1/state",
                                         "/domain/1/name", "/domain" };

        /* Inside an instance, every entry has the instance's generation. */
        expect_woken(h, q, 4, "1111", do_domain_pause);
        expect_woken(h, q, 4, "1111", do_domain_destroy);
    }
    expect_woken(h, p, 7, "0001001", do_pool_create);
    if (ctl("cpu-move", "cpu=1", "pool=0", NULL) == 0)
        expect_woken(h, p, 7, "0001101", do_cpu_move);
    xenhypfs_close(h);
}

/* ---- Rights: as guests (other users) ---- */

/* In a child, as @uid: the generation of @path, or a negative errno. */
static void gens_as(uid_t uid, const char *const *paths, unsigned int n,
                    int64_t *out)
{
    int pfd[2], status;
    pid_t pid;

    assert_int_equal(pipe(pfd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        struct xenhypfs_open_args a = {
            .transport = XENHYPFS_TRANSPORT_SOCKET, .socket_path = d.socket,
        };
        int64_t v[16];
        xenhypfs_handle *h;
        unsigned int i;

        if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
            _exit(100);
        h = xenhypfs_open_ext(&a);
        if (!h)
            _exit(101);
        for (i = 0; i < n; i++) {
            uint64_t g;

            v[i] = xenhypfs_get_generation(h, paths[i], &g) ? -errno
                                                             : (int64_t)g;
        }
        if (write(pfd[1], v, n * sizeof(v[0])) != (ssize_t)(n * sizeof(v[0])))
            _exit(102);
        _exit(0);
    }
    close(pfd[1]);
    assert_int_equal(read(pfd[0], out, n * sizeof(out[0])),
                     (ssize_t)(n * sizeof(out[0])));
    close(pfd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_guest_rights(void **state)
{
    static const char *const p[] = { "/", "/domain", "/domain/1",
                                     "/domain/2", "/params", "/cpupool" };
    int64_t a1[6], a2[6], b1[6], b2[6];
    unsigned int i;

    (void)state;
    if (getuid())
        skip();
    assert_int_equal(ctl("domain-create", "name=one", NULL), 0);
    assert_int_equal(ctl("domain-create", "name=two", NULL), 0);
    gens_as(UID_DOM1, p, 6, a1);
    gens_as(UID_DOM2, p, 6, a2);
    /* What each cannot see does not exist for it. */
    assert_true(a1[3] == -ENOENT && a1[4] == -ENOENT && a1[5] == -ENOENT);
    assert_true(a2[2] == -ENOENT);

    /* Changes neither guest may read: nothing moves for either. */
    assert_int_equal(ctl("domain-create", "name=three", NULL), 0);
    assert_int_equal(ctl("domain-pause", "id=3", NULL), 0);
    assert_int_equal(ctl("domain-destroy", "id=3", NULL), 0);
    assert_int_equal(ctl("pool-create", "name=hidden", NULL), 0);
    do_write();
    gens_as(UID_DOM1, p, 6, b1);
    gens_as(UID_DOM2, p, 6, b2);
    for (i = 0; i < 6; i++) {
        if (a1[i] != b1[i])
            fail_msg("domain 1's %s moved for hidden changes", p[i]);
        if (a2[i] != b2[i])
            fail_msg("domain 2's %s moved for hidden changes", p[i]);
    }

    /* Domain 1's own change: its /, /domain, /domain/1; not domain 2's. */
    assert_int_equal(ctl("domain-pause", "id=1", NULL), 0);
    gens_as(UID_DOM1, p, 6, b1);
    gens_as(UID_DOM2, p, 6, b2);
    assert_true(b1[0] != a1[0] && b1[1] != a1[1] && b1[2] != a1[2]);
    for (i = 0; i < 6; i++)
        if (a2[i] != b2[i])
            fail_msg("domain 2's %s moved for domain 1's change", p[i]);
    assert_int_equal(ctl("domain-destroy", "id=1", NULL), 0);
    assert_int_equal(ctl("domain-destroy", "id=2", NULL), 0);
}

/* ---- The final state under a storm ---- */

static atomic_bool storm_done;
static atomic_int storm_failed;

/* No cmocka assertions here: they may not run in another thread. */
static void *storm(void *arg)
{
    xenhypfs_handle *h = arg;
    int i;

    for (i = 1; i <= 3000; i++) {
        char v[16];

        snprintf(v, sizeof(v), "v%d", i);
        if (xenhypfs_write(h, "/test/types/string", v))
            atomic_store(&storm_failed, errno ? errno : -1);
    }
    atomic_store(&storm_done, true);
    return NULL;
}

static void test_final_state(void **state)
{
    xenhypfs_handle *h = open_h(), *writer;
    pthread_t t;
    uint64_t g;
    char *v = NULL;
    int events = 0;

    (void)state;
    assert_int_equal(xenhypfs_get_generation(h, "/test/types/string", &g), 0);
    assert_int_equal(xenhypfs_watch(h, "/test/types/string", 9, g), 0);
    atomic_store(&storm_done, false);
    atomic_store(&storm_failed, 0);
    writer = open_h();
    assert_int_equal(pthread_create(&t, NULL, storm, writer), 0);
    /* A watcher reads the value after each event, as a real one would. */
    for (;;) {
        struct xenhypfs_event ev[16];
        int n = wait_events(h, ev, 16, 2000);

        if (n > 0) {
            events += n;
            free(v);
            v = xenhypfs_read(h, "/test/types/string");
            assert_non_null(v);
            if (atomic_load(&storm_done) && !strcmp(v, "v3000"))
                break;
        } else if (atomic_load(&storm_done)) {
            /* Quiet after the storm: the last event must have come. */
            break;
        }
    }
    pthread_join(t, NULL);
    xenhypfs_close(writer);
    assert_int_equal(atomic_load(&storm_failed), 0);
    assert_non_null(v);
    assert_string_equal(v, "v3000");
    assert_true(events >= 1 && events <= 3000);
    free(v);
    xenhypfs_close(h);
}

/* ---- Bounds ---- */

static long stat_of(const char *key)
{
    struct hypfs_client c;
    const char *argv[1] = { "stats" }, *text, *p;
    uint32_t len;
    int status;
    char buf[1024];
    long v = -1;

    assert_int_equal(tclient_open(&c, d.socket), 0);
    assert_int_equal(hypfs_client_ctl(&c, 1, argv, &status, &text, &len), 0);
    snprintf(buf, sizeof(buf), "%.*s", (int)len, text);
    p = strstr(buf, key);
    if (p)
        v = atol(p + strlen(key) + 1);
    hypfs_client_close(&c);
    return v;
}

static void wait_stat(const char *key, long want)
{
    int i;

    for (i = 0; i < 1500 && stat_of(key) != want; i++)
        usleep(10000);
    assert_int_equal(stat_of(key), want);
}

static void test_limits(void **state)
{
    xenhypfs_handle *h = open_h();
    unsigned int i;

    (void)state;
    for (i = 0; i < 10000; i++)
        assert_int_equal(xenhypfs_watch(h, "/test", 1000 + i, 0), 0);
    assert_int_equal(xenhypfs_watch(h, "/test", 99999, 0), -1);
    assert_int_equal(errno, ENOSPC);
    /* Re-arming one in use is not one more. */
    assert_int_equal(xenhypfs_watch(h, "/", 1000, 0), 0);
    assert_int_equal(stat_of("watches"), 10000);
    assert_int_equal(xenhypfs_unwatch(h, 1000), 0);
    assert_int_equal(xenhypfs_unwatch(h, 1000), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat_of("watches"), 9999);
    xenhypfs_close(h);
    wait_stat("watches", 0);
}

/*
 * A watcher that never reads: 10,000 watches, all woken by one change,
 * are more events than its socket holds.  Its thread blocks sending, and
 * closes it at the send timeout; meanwhile everyone else is served.
 */
static void test_reader_that_never_reads(void **state)
{
    struct hypfs_client c;
    xenhypfs_handle *other;
    unsigned int i;
    char *v;

    (void)state;
    assert_int_equal(tclient_open(&c, d.socket), 0);
    for (i = 0; i < 10000; i++) {
        struct hypfs_hypercall hc = {
            .cmd = XEN_HYPFS_OP_watch, .arg1 = (uintptr_t)"/",
            .arg2 = 2, .arg3 = i, .arg4 = 1, .path = "/", .path_len = 2,
        };

        /* known 1: differs from "/"'s: an event at once for each. */
        assert_int_equal(hypfs_client_hypercall(&c, &hc, NULL, NULL, NULL),
                         0);
    }
    assert_int_equal(stat_of("connections_watching"), 1);
    /* One change wakes all 10,000: more than its socket holds. */
    assert_int_equal(ctl("domain-create", "name=wake", NULL), 0);
    /* Everyone else is served meanwhile. */
    other = open_h();
    v = xenhypfs_read(other, "/buildinfo/version/major");
    assert_non_null(v);
    free(v);
    xenhypfs_close(other);
    /* Within the send timeout (10 s) and a margin, it is gone. */
    wait_stat("connections_watching", 0);
    hypfs_client_close(&c);
}

/* ---- A restart ---- */

static void test_restart(void **state)
{
    static const char *const args[] = { "--test-tree", NULL };
    xenhypfs_handle *h = open_h();
    struct xenhypfs_event ev[8];
    struct timespec t0, t;
    uint64_t g;
    int n = 0;

    (void)state;
    assert_int_equal(xenhypfs_get_generation(h, "/params", &g), 0);
    assert_int_equal(xenhypfs_watch(h, "/params", 5, g), 0);
    assert_int_equal(daemon_restart(&d, args), 0);
    /* The event descriptor wakes (the old connection closed); events come
     * again once re-armed on the new one, the first saying "gap". */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        n = wait_events(h, ev, 8, 200);
        if (n > 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10)
            fail_msg("no gap event after a restart");
    }
    assert_true(ev[0].token == 5 && (ev[0].flags & XENHYPFS_EVENT_GAP));
    /* And it is armed again: a change is told. */
    do_write();
    ev[0] = await(h, 5);
    assert_int_equal(ev[0].status, 0);
    xenhypfs_close(h);
}

/* ---- Each domain's budget ---- */

#define SMALL_BUDGET    (2u << 20)

static int setup_budget(void **state)
{
    static const char *const args[] = {
        "--test-tree", "--guest-buffer", "2097152", "--max-watches", "100000",
        NULL,
    };

    (void)state;
    return daemon_start(&d, getuid() ? NULL : "map 65534 1\nmap 65533 2\n",
                        args);
}

/*
 * A guest's helper process, as @uid: for each command byte read from
 * @cmd, act and write one long back on @res.
 *   'w'  watch "/" with new tokens until refused: how many were made
 *   'r'  re-arm every token made on PATH_REARM: how many were refused
 *   'n'  one new watch: 0, or the errno it got
 */
#define PATH_REARM "/domain/1/guest-status"
static void budget_helper(uid_t uid, int cmd, int res)
{
    struct xenhypfs_open_args a = {
        .transport = XENHYPFS_TRANSPORT_SOCKET, .socket_path = d.socket,
    };
    xenhypfs_handle *h;
    long made = 0;
    char c;

    if (setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
        _exit(100);
    h = xenhypfs_open_ext(&a);
    if (!h)
        _exit(101);
    while (read(cmd, &c, 1) == 1) {
        long v = 0, i;

        if (c == 'w') {
            while (made < 200000 && !xenhypfs_watch(h, "/", (uint64_t)made, 0))
                made++;
            v = errno == ENOSPC ? made : -errno;
        } else if (c == 'r') {
            for (i = 0; i < made; i++)
                v += xenhypfs_watch(h, PATH_REARM, (uint64_t)i, 0) != 0;
        } else if (c == 'n') {
            v = xenhypfs_watch(h, "/", 999999, 0) ? errno : 0;
        }
        if (write(res, &v, sizeof(v)) != sizeof(v))
            _exit(102);
    }
    _exit(0);
}

struct helper {
    pid_t pid;
    int cmd, res;
};

static void helper_start(struct helper *hp, uid_t uid)
{
    int c[2], r[2];

    assert_int_equal(pipe(c), 0);
    assert_int_equal(pipe(r), 0);
    hp->pid = fork();
    assert_true(hp->pid >= 0);
    if (!hp->pid) {
        close(c[1]);
        close(r[0]);
        budget_helper(uid, c[0], r[1]);
    }
    close(c[0]);
    close(r[1]);
    hp->cmd = c[1];
    hp->res = r[0];
}

static long helper_do(struct helper *hp, char what)
{
    long v;

    assert_int_equal(write(hp->cmd, &what, 1), 1);
    assert_int_equal(read(hp->res, &v, sizeof(v)), (ssize_t)sizeof(v));
    return v;
}

static void helper_stop(struct helper *hp)
{
    int status;

    close(hp->cmd);
    assert_int_equal(waitpid(hp->pid, &status, 0), hp->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(hp->res);
}

/*
 * A guest's watches are counted at their whole cost against its domain's
 * budget: it gets as many as the budget holds and not one more, re-arming
 * them elsewhere stays within it, and another domain's watches are not
 * refused meanwhile.
 */
static void test_domain_budget(void **state)
{
    struct helper one, two;
    long made, held;

    (void)state;
    if (getuid())
        skip();
    assert_int_equal(ctl("domain-create", "name=one", NULL), 0);
    assert_int_equal(ctl("domain-create", "name=two", NULL), 0);
    helper_start(&one, UID_DOM1);
    helper_start(&two, UID_DOM2);
    made = helper_do(&one, 'w');
    held = stat_of("domain_most_held_bytes");
    printf("domain 1: %ld watches in its %u-byte budget (%ld bytes held, "
           "%.0f per watch)\n", made, SMALL_BUDGET, held,
           made > 0 ? (double)held / (double)made : 0.0);
    /* Refused by the budget (not the count), near its end, every byte
     * counted: a watch and its share cost 64 bytes at least. */
    assert_true(made > 1000 && made < (long)(SMALL_BUDGET / 64));
    assert_true(held <= (long)SMALL_BUDGET && held > (long)SMALL_BUDGET - 4096);
    assert_int_equal(helper_do(&one, 'n'), ENOSPC);
    /* Another domain has its own budget. */
    assert_int_equal(helper_do(&two, 'n'), 0);
    /* Moved to another path, they stay within the budget. */
    helper_do(&one, 'r');
    assert_true(stat_of("domain_most_held_bytes") <= (long)SMALL_BUDGET);
    assert_int_equal(helper_do(&one, 'n'), ENOSPC);
    /* The second was forked with the first's pipes: it goes first. */
    helper_stop(&two);
    helper_stop(&one);
    /* Closed: nothing held. */
    wait_stat("domains_held_bytes", 0);
    assert_int_equal(ctl("domain-destroy", "id=1", NULL), 0);
    assert_int_equal(ctl("domain-destroy", "id=2", NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_rights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_final_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_that_never_reads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domain_budget, setup_budget,
                                        teardown),
    };

    return cmocka_run_group_tests_name("hypfsd-watch", tests, NULL, NULL);
}
