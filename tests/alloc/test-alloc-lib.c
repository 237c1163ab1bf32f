/*
 * Allocation failures in libxenhypfs (SQLite's malloc tests are the model).
 *
 * The library's sources (and the protocol client under them) are built
 * here with every allocation counted (failmalloc.h), zlib's included; the
 * daemon is a real hypfsd (--test-tree) in its own process, untouched.
 * Every call of the API is run first with nothing failing (the reference),
 * then with its 1st, 2nd, ... allocation failing until a run gets past the
 * last.  A failing run must return the API's failure value with errno
 * ENOMEM (or, for a call whose reference fails, that call's errno), write
 * no value, and leave the handle usable: the same call made again at once,
 * with nothing failing, must give the reference result.  A run past the
 * last allocation must give the reference result.  Leaks are
 * LeakSanitizer's to report in the sanitizer build.  Run over hypfsd's
 * socket and, as alloc-lib-privcmd, over the emulated privcmd device.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <xenhypfs.h>

#include "client.h"
#include "daemon.h"
#include "failmalloc-control.h"
#include "xenhypfs-ext.h"

#define MAX_RUNS    5000u

static struct daemon d;
static xenhypfs_handle *h;

/* A new connection to the test daemon, as hypfs-fuse makes them. */
static int connect_daemon(void)
{
    int fd = hypfs_client_connect_path(d.socket);

    assert_true(fd >= 0);
    return fd;
}

/* One call's result, flattened so that two can be compared. */
struct result {
    bool ok;
    int err;                    /* errno when !ok */
    char *bytes;                /* the content, dirents, ... (owned) */
    size_t len;
};

static void add(struct result *r, const void *p, size_t n)
{
    r->bytes = realloc(r->bytes, r->len + n + 1);
    assert_non_null(r->bytes);
    memcpy(r->bytes + r->len, p, n);
    r->len += n;
}

static void add_dirent(struct result *r, const struct xenhypfs_dirent *e)
{
    add(r, e->name, strlen(e->name) + 1);
    add(r, &e->size, sizeof(e->size));
    add(r, &e->type, sizeof(e->type));
    add(r, &e->encoding, sizeof(e->encoding));
    add(r, &e->flags, sizeof(e->flags));
}

enum kind { READ, READ_RAW, READDIR, WRITE, OPEN };

struct call {
    const char *what;
    enum kind kind;
    const char *path;
    const char *value;          /* WRITE */
    bool fresh;                 /* on a handle opened for this call alone */
};

static void perform_on(const struct call *c, struct result *r);

static void perform(const struct call *c, struct result *r)
{
    xenhypfs_handle *shared = h;

    if (!c->fresh) {
        perform_on(c, r);
        return;
    }
    h = xenhypfs_open(NULL, 0);
    if (!h) {
        memset(r, 0, sizeof(*r));
        r->err = errno;
    } else {
        perform_on(c, r);
        xenhypfs_close(h);
    }
    h = shared;
}

static void perform_on(const struct call *c, struct result *r)
{
    memset(r, 0, sizeof(*r));
    errno = 0;
    switch (c->kind) {
    case READ: {
        char *v = xenhypfs_read(h, c->path);

        r->ok = v != NULL;
        r->err = errno;
        if (v)
            add(r, v, strlen(v) + 1);
        free(v);
        break;
    }
    case READ_RAW: {
        struct xenhypfs_dirent *e = NULL;
        void *v = xenhypfs_read_raw(h, c->path, &e);

        r->ok = v != NULL;
        r->err = errno;
        if (v) {
            assert_non_null(e);
            add_dirent(r, e);
            add(r, v, e->size);
        } else {
            assert_null(e);
        }
        free(v);
        free(e);
        break;
    }
    case READDIR: {
        unsigned int n = 12345, i;
        struct xenhypfs_dirent *e = xenhypfs_readdir(h, c->path, &n);

        r->ok = e != NULL;
        r->err = errno;
        if (e) {
            add(r, &n, sizeof(n));
            for (i = 0; i < n; i++)
                add_dirent(r, &e[i]);
        }
        free(e);
        break;
    }
    case WRITE:
        r->ok = xenhypfs_write(h, c->path, c->value) == 0;
        r->err = errno;
        break;
    case OPEN: {
        xenhypfs_handle *h2 = xenhypfs_open(NULL, 0);

        r->ok = h2 != NULL;
        r->err = errno;
        xenhypfs_close(h2);
        break;
    }
    }
}

static bool same(const struct result *a, const struct result *b)
{
    return a->ok == b->ok && (a->ok || a->err == b->err) && a->len == b->len &&
           (!a->len || !memcmp(a->bytes, b->bytes, a->len));
}

/* The value at @path as the control domain sees it, read with no failure. */
static char *value_of(const char *path)
{
    char *v = xenhypfs_read(h, path);

    if (!v)
        fail_msg("reading %s back: %s", path, strerror(errno));
    return v;
}

/*
 * Run @c with each allocation failing in turn.  For a write, @watch is the
 * path whose value a failed run must leave alone (and a successful one
 * gets back).  Returns the number of failing runs.
 */
static unsigned int check_call(const struct call *c, const char *watch)
{
    struct result ref, r, again;
    char *before = watch ? value_of(watch) : NULL;
    const char *restore = NULL;
    unsigned int n, failures = 0;

    perform(c, &ref);
    if (c->kind == WRITE && ref.ok)
        restore = before;
    if (restore)
        assert_int_equal(xenhypfs_write(h, watch, restore), 0);

    for (n = 1; n <= MAX_RUNS; n++) {
        bool failed;

        fm_arm(n);
        perform(c, &r);
        failed = fm_failed();
        fm_arm(0);
        if (!failed) {
            if (!same(&r, &ref))
                fail_msg("%s: with no failure reached the result differs "
                         "from the reference", c->what);
            free(r.bytes);
            if (restore)
                assert_int_equal(xenhypfs_write(h, watch, restore), 0);
            break;
        }
        failures++;
        if (r.ok)
            fail_msg("%s, allocation %u failing: succeeded", c->what, n);
        if (r.err != ENOMEM && !(!ref.ok && r.err == ref.err))
            fail_msg("%s, allocation %u failing: errno %d (%s), expected "
                     "ENOMEM", c->what, n, r.err, strerror(r.err));
        free(r.bytes);

        /* Nothing written, and the handle works as before. */
        if (watch) {
            char *now = value_of(watch);

            if (strcmp(now, before))
                fail_msg("%s, allocation %u failing: %s changed from '%s' "
                         "to '%s'", c->what, n, watch, before, now);
            free(now);
        }
        perform(c, &again);
        if (!same(&again, &ref))
            fail_msg("%s, allocation %u failing: the next call differs from "
                     "the reference", c->what, n);
        free(again.bytes);
        if (restore)
            assert_int_equal(xenhypfs_write(h, watch, restore), 0);
    }
    if (n > MAX_RUNS)
        fail_msg("%s: still failing after %u runs", c->what, MAX_RUNS);
    printf("  %-44s %3u allocations, each failed once\n", c->what, failures);
    free(ref.bytes);
    free(before);
    return failures;
}

static int setup(void **state)
{
    static const char *const args[] = { "--test-tree", NULL };

    (void)state;
    if (daemon_start(&d, NULL, args))
        return -1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    /* socket, or privcmd (emulated, preloaded: the alloc-lib-privcmd run) */
    setenv("HYPFS_TRANSPORT", getenv("HYPFS_TEST_TRANSPORT") &&
           *getenv("HYPFS_TEST_TRANSPORT") ? getenv("HYPFS_TEST_TRANSPORT")
                                           : "socket", 1);
    /* A listing of /domain larger than the library's first read. */
    if (create_domains(d.socket, "guest-with-a-long-name-", 300))
        return -1;
    h = xenhypfs_open(NULL, 0);
    return h ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xenhypfs_close(h);
    return daemon_stop(&d) ? -1 : 0;
}

static void test_open(void **state)
{
    static const struct call c = { "xenhypfs_open", OPEN, NULL, NULL };

    (void)state;
    assert_true(check_call(&c, NULL) > 0);
}

/*
 * A handle on a socket we made: the library owns the socket from the call
 * on, so a failed open must have closed it -- neither leaked nor left for
 * the caller to close (which would close a reused descriptor).
 */
static void test_open_socket(void **state)
{
    unsigned int n, failures = 0;

    (void)state;
    for (n = 1; n <= MAX_RUNS; n++) {
        int fd = connect_daemon();
        xenhypfs_handle *s;
        bool failed;
        char *v;

        fm_arm(n);
        errno = 0;
        s = xenhypfs_open_socket(fd);
        failed = fm_failed();
        fm_arm(0);
        if (!failed) {
            assert_non_null(s);
            v = xenhypfs_read(s, "/test/types/u8");
            assert_non_null(v);
            free(v);
            xenhypfs_close(s);
            break;
        }
        failures++;
        if (s)
            fail_msg("xenhypfs_open_socket, allocation %u failing: "
                     "succeeded", n);
        assert_int_equal(errno, ENOMEM);
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            fail_msg("xenhypfs_open_socket, allocation %u failing: the "
                     "socket was left open", n);
    }
    assert_true(n <= MAX_RUNS);
    assert_true(failures > 0);
    printf("  %-44s %3u allocations, each failed once\n",
           "xenhypfs_open_socket", failures);
}

static void test_read(void **state)
{
    static const struct call calls[] = {
        { "read a string", READ, "/test/types/string", NULL },
        { "read a u64", READ, "/test/types/u64", NULL },
        { "read an i8", READ, "/test/types/i8", NULL },
        { "read a bool", READ, "/test/types/bool", NULL },
        { "read gzip (inflated)", READ, "/buildinfo/config", NULL },
        { "read a gzip string", READ, "/test/types/gzip_string", NULL },
        { "read a directory (EISDIR)", READ, "/test", NULL },
        { "read a blob (EDOM)", READ, "/test/types/blob", NULL },
        { "read a missing path (ENOENT)", READ, "/test/nope", NULL },
        { "read on a new handle", READ, "/test/types/gzip_string", NULL,
          true },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        assert_true(check_call(&calls[i], NULL) > 0);
}

static void test_read_raw(void **state)
{
    static const struct call calls[] = {
        { "read_raw a blob", READ_RAW, "/test/types/blob", NULL },
        { "read_raw a gzip blob", READ_RAW, "/test/types/gzip_blob", NULL },
        { "read_raw a u32", READ_RAW, "/test/types/u32", NULL },
        { "read_raw a directory", READ_RAW, "/test", NULL },
        { "read_raw a large directory", READ_RAW, "/domain", NULL },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        assert_true(check_call(&calls[i], NULL) > 0);
}

static void test_readdir(void **state)
{
    static const struct call calls[] = {
        { "readdir /", READDIR, "/", NULL },
        { "readdir /test/types", READDIR, "/test/types", NULL },
        { "readdir /domain (ENOBUFS retry)", READDIR, "/domain", NULL },
        { "readdir an empty directory", READDIR, "/test/empty", NULL },
        { "readdir a leaf (ENOTDIR)", READDIR, "/test/types/u8", NULL },
        { "readdir on a new handle", READDIR, "/domain", NULL, true },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        assert_true(check_call(&calls[i], NULL) > 0);
}

static void test_write(void **state)
{
    static const struct call string = {
        "write a string", WRITE, "/test/types/string", "a new value",
    };
    static const struct call number = {
        "write a u16", WRITE, "/test/types/u16", "0x1234",
    };
    static const struct call flag = {
        "write a bool", WRITE, "/test/types/bool", "off",
    };
    static const struct call param = {
        "write a parameter", WRITE, "/params/loglvl", "all/warning",
    };
    static const struct call fresh = {
        "write on a new handle", WRITE, "/test/types/string", "new handle",
        true,
    };
    static const struct call nan = {
        "write a non-number (EINVAL)", WRITE, "/test/types/u32", "lots",
    };
    static const struct call range = {
        "write out of range (ERANGE)", WRITE, "/test/types/u8", "300",
    };
    static const struct call badbool = {
        "write a non-bool (EDOM)", WRITE, "/test/types/bool", "perhaps",
    };
    static const struct call ro = {
        "write a read-only entry (EACCES)", WRITE, "/test/types/u32_ro", "1",
    };

    (void)state;
    assert_true(check_call(&string, string.path) > 0);
    assert_true(check_call(&number, number.path) > 0);
    assert_true(check_call(&flag, flag.path) > 0);
    assert_true(check_call(&param, param.path) > 0);
    assert_true(check_call(&fresh, fresh.path) > 0);
    check_call(&nan, nan.path);
    check_call(&range, range.path);
    check_call(&badbool, badbool.path);
    check_call(&ro, ro.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_open_socket),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_read_raw),
        cmocka_unit_test(test_readdir),
        cmocka_unit_test(test_write),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
