/*
 * Allocation failures on hypfsd's request path, from the socket to the
 * tree and back (SQLite's malloc tests are the model).
 *
 * hypfsd's sources are built here with every allocation counted
 * (failmalloc.h), and the core's allocation hooks point at the same
 * counter.  Each request is served by the daemon's own connection code
 * (server_serve_fd()) over a socketpair, first with nothing failing (the
 * reference), then with its 1st, 2nd, ... allocation failing until one
 * run gets past the last.  Every failing run must end in exactly one of:
 * the reply -ENOMEM, or the connection closed; nothing else.  Whatever
 * happened, the whole tree (every path and value, as the control domain
 * sees it) and the model's id counters must be as they were.  A run past
 * the last allocation must give the reference reply.  Leaks are
 * LeakSanitizer's to report in the sanitizer build, where this test runs
 * too.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "failmalloc-control.h"
#include "hypfsd.h"
#include "client.h"
#include "tclient.h"

#define MAX_RUNS    5000u       /* more allocations than any request makes */

static struct hypfs *fs;

/* ---- The tree as the control domain sees it ---- */

struct text {
    char *p;
    size_t len, cap;
};

static void text_add(struct text *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 4096;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->len, p, n);
    t->len += n;
}

static long local_op(unsigned int cmd, const char *path, void *buf,
                     size_t len)
{
    struct hypfs_caller c = {
        .domid = 0,
        .flags = HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL,
        .mem = &hypfs_local_mem,
    };

    return hypfs_do_op(fs, &c, cmd, (uint64_t)(uintptr_t)path,
                       strlen(path) + 1, (uint64_t)(uintptr_t)buf, len);
}

/* Every path below @path with its entry header and content, recursively. */
static void dump(struct text *t, const char *path)
{
    static uint8_t buf[1 << 20];
    struct xen_hypfs_direntry e;
    uint8_t *content;
    size_t off = 0;
    long ret = local_op(XEN_HYPFS_OP_read, path, buf, sizeof(buf));

    if (ret)
        fail_msg("reading %s for the snapshot: %ld", path, ret);
    memcpy(&e, buf, sizeof(e));
    text_add(t, path, strlen(path) + 1);
    text_add(t, &e, sizeof(e));
    if (e.type != XEN_HYPFS_TYPE_DIR) {
        text_add(t, buf + sizeof(e), e.content_len);
        return;
    }
    content = malloc(e.content_len ? e.content_len : 1);
    assert_non_null(content);
    memcpy(content, buf + sizeof(e), e.content_len);
    while (off < e.content_len) {
        struct xen_hypfs_dirlistentry r;
        char child[XEN_HYPFS_MAX_PATHLEN];

        memcpy(&r, content + off, sizeof(r));
        snprintf(child, sizeof(child), "%s%s%s",
                 path, strcmp(path, "/") ? "/" : "",
                 (const char *)content + off + XEN_HYPFS_DIRENTRY_NAME_OFF);
        dump(t, child);
        if (!r.off_next)
            break;
        off += r.off_next;
    }
    free(content);
}

struct snapshot {
    struct text tree;
    uint32_t next_domid, next_poolid;
};

static void snapshot_take(struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    dump(&s->tree, "/");
    s->next_domid = model.next_domid;
    s->next_poolid = model.next_poolid;
}

static void snapshot_check(const struct snapshot *before, const char *what,
                           unsigned int n)
{
    struct snapshot now;

    snapshot_take(&now);
    if (now.tree.len != before->tree.len ||
        memcmp(now.tree.p, before->tree.p, now.tree.len))
        fail_msg("%s, allocation %u failing: the tree changed", what, n);
    if (now.next_domid != before->next_domid ||
        now.next_poolid != before->next_poolid)
        fail_msg("%s, allocation %u failing: the model's ids moved", what, n);
    free(now.tree.p);
}

/* ---- One request through the daemon's connection code ---- */

struct request {
    const char *what;
    uid_t uid;
    /* A hypercall ... */
    unsigned int cmd;
    const char *path;
    const void *data;
    uint32_t data_len;
    uint32_t buf_len;
    /* ... or a control command. */
    int argc;
    const char *argv[6];
    /* Put back what a successful run changed. */
    void (*undo)(void);
};

struct outcome {
    int transport;              /* tclient_op()/hypfs_client_ctl(): 0 or -errno */
    long ret;                   /* the reply's result */
    uint8_t *out;               /* the reply's bytes (owned) */
    size_t out_len;
    bool failed;                /* the injected failure was reached */
    unsigned int count;         /* allocations counted */
};

struct serve {
    int fd;
    uid_t uid;
};

static void *serve_thread(void *arg)
{
    struct serve *s = arg;

    /* Its return says whether it could start; the client sees that too. */
    (void)server_serve_fd(fs, s->fd, s->uid);
    return NULL;
}

static void run(const struct request *rq, unsigned int fail_at,
                struct outcome *o)
{
    struct hypfs_client cl;
    struct serve s;
    const uint8_t *out = NULL;
    uint32_t out_len = 0;
    pthread_t t;
    int sv[2];

    memset(o, 0, sizeof(*o));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    s.fd = sv[1];
    s.uid = rq->uid;
    /* Given, not opened: never reconnects. */
    assert_int_equal(hypfs_client_open_fd(&cl, sv[0]), 0);

    /* Armed before the server thread exists: it counts from its start. */
    fm_arm(fail_at);
    assert_int_equal(pthread_create(&t, NULL, serve_thread, &s), 0);
    if (rq->argc) {
        int status = 0;
        const char *text = NULL;

        o->transport = hypfs_client_ctl(&cl, rq->argc, rq->argv, &status, &text,
                                  &out_len);
        o->ret = status;
        out = (const uint8_t *)text;
    } else {
        struct hypfs_msg_op op = {
            .cmd = rq->cmd,
            .arg1 = 0x1000,
            .arg2 = rq->path ? strlen(rq->path) + 1 : 0,
            .arg3 = 0x100000,
            .arg4 = rq->data ? rq->data_len : rq->buf_len,
            .path_len = rq->path ? (uint32_t)strlen(rq->path) + 1 : 0,
            .data_len = rq->data_len,
        };

        o->transport = tclient_op(&cl, &op, rq->path, rq->data, &o->ret,
                                 &out, &out_len);
    }
    if (cl.fd >= 0)
        shutdown(cl.fd, SHUT_WR);       /* the server's loop ends */
    pthread_join(t, NULL);
    o->failed = fm_failed();
    o->count = fm_count();
    fm_arm(0);

    if (!o->transport && out_len) {
        o->out = malloc(out_len);
        assert_non_null(o->out);
        memcpy(o->out, out, out_len);
        o->out_len = out_len;
    }
    hypfs_client_close(&cl);
}

/*
 * The reference run, then a run failing each allocation in turn.  Returns
 * how many runs had a failure.
 */
static unsigned int check_request(const struct request *rq, long expect)
{
    struct outcome ref, o;
    struct snapshot before;
    unsigned int n, failures = 0;

    run(rq, 0, &ref);
    if (ref.transport || ref.ret != expect)
        fail_msg("%s: reference run gave transport %d, result %ld; "
                 "expected %ld", rq->what, ref.transport, ref.ret, expect);
    if (rq->undo)
        rq->undo();

    snapshot_take(&before);
    for (n = 1; n <= MAX_RUNS; n++) {
        run(rq, n, &o);
        if (!o.failed) {
            /* Past the last allocation: exactly the reference reply. */
            if (o.transport || o.ret != ref.ret || o.out_len != ref.out_len ||
                (o.out_len && memcmp(o.out, ref.out, o.out_len)))
                fail_msg("%s: with no failure reached (%u allocations) the "
                         "reply differs from the reference", rq->what,
                         o.count);
            free(o.out);
            if (rq->undo)
                rq->undo();
            break;
        }
        failures++;
        if (o.transport) {
            /*
             * The daemon closed the connection: that only.  For a control
             * command the client then cannot know whether it ran, and
             * says so.
             */
            if (o.transport != -ECONNRESET && o.transport != -EPIPE &&
                !(rq->argc && o.transport == -ECONNABORTED))
                fail_msg("%s, allocation %u failing: transport error %d",
                         rq->what, n, o.transport);
        } else if (o.ret != -ENOMEM && !(expect < 0 && o.ret == expect)) {
            fail_msg("%s, allocation %u failing: result %ld, expected "
                     "-ENOMEM%s", rq->what, n, o.ret,
                     expect < 0 ? " or the reference error" : "");
        }
        free(o.out);
        snapshot_check(&before, rq->what, n);
    }
    if (n > MAX_RUNS)
        fail_msg("%s: still failing after %u runs", rq->what, MAX_RUNS);
    printf("  %-48s %3u allocations, each failed once\n", rq->what, failures);
    free(ref.out);
    free(before.tree.p);
    return failures;
}

/* ---- Setup ---- */

static void ctl(int argc, const char **argv)
{
    struct ctl_result res = { 0 };

    ctl_run(argc, argv, &res);
    if (res.status)
        fail_msg("%s: %s", argv[0], res.text ? res.text : "failed");
    free(res.text);
}

static int setup(void **state)
{
    char path[] = "/tmp/hypfs-alloc-XXXXXX";
    static const char conf[] = "map 1000 1\n";
    const char *one[] = { "domain-create", "name=one" };
    const char *pool[] = { "pool-create", "name=spare" };
    int fd = mkstemp(path);

    (void)state;
    /* Everything this thread allocates is the test's, not the daemon's. */
    fm_exempt_thread(true);
    log_threshold = L_ERR - 1;
    if (fd < 0 || write(fd, conf, sizeof(conf) - 1) != sizeof(conf) - 1 ||
        callers_load(path))
        return -1;
    close(fd);
    unlink(path);
    if (model_init())
        return -1;
    params_reset();
    ctl(2, one);
    ctl(2, pool);
    if (hypfs_new(&fs) || fstree_build(fs) || fstree_add_test(fs))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    model_fini();
    callers_free();
    return 0;
}

/* ---- Reads ---- */

static void test_reads(void **state)
{
    static const struct request rqs[] = {
        { "read a leaf", 0, XEN_HYPFS_OP_read, "/buildinfo/version/major",
          NULL, 0, 4096, 0, { NULL }, NULL },
        { "read the root", 0, XEN_HYPFS_OP_read, "/", NULL, 0, 4096, 0,
          { NULL }, NULL },
        { "list the domains", 0, XEN_HYPFS_OP_read, "/domain", NULL, 0,
          4096, 0, { NULL }, NULL },
        { "list a domain", 0, XEN_HYPFS_OP_read, "/domain/1", NULL, 0, 4096,
          0, { NULL }, NULL },
        { "read a pool's cpus", 0, XEN_HYPFS_OP_read, "/cpupool/0/cpus",
          NULL, 0, 4096, 0, { NULL }, NULL },
        { "read gzip content", 0, XEN_HYPFS_OP_read, "/buildinfo/config",
          NULL, 0, 65536, 0, { NULL }, NULL },
        { "own domain, as its owner", 1000, XEN_HYPFS_OP_read,
          "/domain/1/name", NULL, 0, 4096, 0, { NULL }, NULL },
        { "a computed parameter", 0, XEN_HYPFS_OP_read, "/params/loglvl",
          NULL, 0, 4096, 0, { NULL }, NULL },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rqs) / sizeof(rqs[0]); i++)
        assert_true(check_request(&rqs[i], 0) > 0);
}

static void test_read_errors(void **state)
{
    static const struct request too_small = {
        "a listing into a small buffer", 0, XEN_HYPFS_OP_read, "/test", NULL,
        0, 16, 0, { NULL }, NULL,
    };
    static const struct request hidden = {
        "another domain's directory", 1000, XEN_HYPFS_OP_read, "/domain/0",
        NULL, 0, 4096, 0, { NULL }, NULL,
    };
    static const struct request missing = {
        "a missing path", 0, XEN_HYPFS_OP_read, "/nope/nothing", NULL, 0,
        4096, 0, { NULL }, NULL,
    };

    (void)state;
    check_request(&too_small, -ENOBUFS);
    check_request(&hidden, -ENOENT);
    check_request(&missing, -ENOENT);
}

/* ---- Writes ---- */

static void restore_params(void)
{
    params_reset();
}

static void test_writes(void **state)
{
    static const char loglvl[] = "all/warning";
    static const int32_t slice = 64;
    static const char bad[] = "lots";
    static const uint8_t one = 1;
    static const struct request good = {
        "write loglvl", 0, XEN_HYPFS_OP_write_contents, "/params/loglvl",
        loglvl, sizeof(loglvl), 0, 0, { NULL }, restore_params,
    };
    static const struct request good_int = {
        "write sched_credit_tslice_ms", 0, XEN_HYPFS_OP_write_contents,
        "/params/sched_credit_tslice_ms", &slice, sizeof(slice), 0, 0, { NULL },
        restore_params,
    };
    static const struct request invalid = {
        "write an invalid value", 0, XEN_HYPFS_OP_write_contents,
        "/params/loglvl", bad, sizeof(bad), 0, 0, { NULL }, NULL,
    };
    static const struct request denied = {
        "write a read-only entry of its own", 1000,
        XEN_HYPFS_OP_write_contents, "/domain/1/name", loglvl,
        sizeof(loglvl), 0, 0, { NULL }, NULL,
    };
    static const struct request boolean = {
        "write a bool", 0, XEN_HYPFS_OP_write_contents,
        "/test/types/bool", &one, 1, 0, 0, { NULL }, NULL,
    };
    static struct request big = {
        "a frame larger than the connection's buffer", 0,
        XEN_HYPFS_OP_write_contents, "/params/loglvl", NULL, 100000, 0, 0,
        { NULL }, NULL,
    };
    char *data = malloc(big.data_len);

    (void)state;
    assert_non_null(data);
    memset(data, 'x', big.data_len);
    data[big.data_len - 1] = '\0';
    big.data = data;
    assert_true(check_request(&good, 0) > 0);
    assert_true(check_request(&good_int, 0) > 0);
    check_request(&invalid, -EINVAL);
    check_request(&denied, -EACCES);
    check_request(&boolean, 0);
    check_request(&big, -ENOSPC);
    free(data);
}

/* ---- Control commands ---- */

static uint32_t saved_domid, saved_poolid;

static void save_ids(void)
{
    saved_domid = model.next_domid;
    saved_poolid = model.next_poolid;
}

/* Destroy what a successful create made, and hand its id out again. */
static void destroy_and_rewind(const char *verb, uint32_t *next, uint32_t id)
{
    const char *argv[] = { verb, NULL };
    char arg[16];

    snprintf(arg, sizeof(arg), "id=%u", id);
    argv[1] = arg;
    ctl(2, argv);
    *next = id;
}

static void undo_domain(void)
{
    destroy_and_rewind("domain-destroy", &model.next_domid, saved_domid);
}

static void undo_pool(void)
{
    destroy_and_rewind("pool-destroy", &model.next_poolid, saved_poolid);
}

static uint32_t victim;

/* The victim again, under the same id. */
static void recreate_victim(void)
{
    const char *argv[] = { "domain-create", "name=victim" };
    uint32_t next = model.next_domid;

    model.next_domid = victim;
    ctl(2, argv);
    model.next_domid = next;
}

static void test_control(void **state)
{
    static const struct request create = {
        "domain-create", 0, 0, NULL, NULL, 0, 0, 3,
        { "domain-create", "name=fresh", "vcpus=2" }, undo_domain,
    };
    static const struct request pool = {
        "pool-create", 0, 0, NULL, NULL, 0, 0, 2,
        { "pool-create", "name=newpool" }, undo_pool,
    };
    static const struct request list = {
        "domain-list", 0, 0, NULL, NULL, 0, 0, 1, { "domain-list" }, NULL,
    };
    static const struct request pools = {
        "pool-list", 0, 0, NULL, NULL, 0, 0, 1, { "pool-list" }, NULL,
    };
    static const struct request exists = {
        "domain-create of an existing name", 0, 0, NULL, NULL, 0, 0, 2,
        { "domain-create", "name=one" }, NULL,
    };
    static const struct request unprivileged = {
        "domain-list by a guest", 1000, 0, NULL, NULL, 0, 0, 1,
        { "domain-list" }, NULL,
    };
    struct request destroy = {
        "domain-destroy", 0, 0, NULL, NULL, 0, 0, 2,
        { "domain-destroy", NULL }, recreate_victim,
    };
    char id[16];

    (void)state;
    save_ids();
    assert_true(check_request(&create, 0) > 0);
    assert_true(check_request(&pool, 0) > 0);
    assert_true(check_request(&list, 0) > 0);
    assert_true(check_request(&pools, 0) > 0);
    check_request(&exists, -EEXIST);
    check_request(&unprivileged, -EACCES);

    /* Destroying frees, and a failure before it must keep the domain. */
    victim = model.next_domid;
    recreate_victim();
    model.next_domid = victim + 1;
    snprintf(id, sizeof(id), "id=%u", victim);
    destroy.argv[1] = id;
    check_request(&destroy, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_writes),
        cmocka_unit_test(test_control),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
