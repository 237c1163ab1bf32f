/*
 * Every rule of SPEC section 1, end to end through hypfsd's socket: raw
 * requests with chosen arguments, chosen path and data bytes, and the
 * exact result and reply bytes expected.  A path or data byte the caller
 * did not send is unreadable memory: -EFAULT, in Xen's order.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

static struct daemon d;
static struct hypfs_client c;

static int setup(void **state)
{
    (void)state;
    if (daemon_start(&d, NULL, NULL) || tclient_open(&c, d.socket))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_client_close(&c);
    return daemon_stop(&d) ? -1 : 0;
}

/* Fake addresses: only their distinctness matters to the daemon. */
#define PATH_ADDR  0x10000u
#define BUF_ADDR   0x20000u

struct reply {
    long ret;
    uint32_t out_len;
    unsigned char out[65536];
};

/* A request with every argument chosen by the test. */
static void raw(unsigned int cmd, uint64_t a1, uint64_t a2, uint64_t a3,
                uint64_t a4, const void *path, uint32_t plen,
                const void *data, uint32_t dlen, struct reply *r)
{
    struct hypfs_msg_op op = {
        .cmd = cmd, .arg1 = a1, .arg2 = a2, .arg3 = a3, .arg4 = a4,
        .path_len = plen, .data_len = dlen,
    };
    const uint8_t *out;

    assert_int_equal(tclient_op(&c, &op, path, data, &r->ret, &out,
                               &r->out_len), 0);
    assert_true(r->out_len <= sizeof(r->out));
    if (r->out_len)
        memcpy(r->out, out, r->out_len);
}

/* The usual read of @path with a buffer of @size bytes. */
static long rd(const char *path, uint64_t size, struct reply *r)
{
    size_t n = strlen(path) + 1;

    raw(XEN_HYPFS_OP_read, PATH_ADDR, n, BUF_ADDR, size, path, (uint32_t)n,
        NULL, 0, r);
    return r->ret;
}

static long wr(const char *path, const void *data, uint32_t len)
{
    struct reply r;
    size_t n = strlen(path) + 1;

    raw(XEN_HYPFS_OP_write_contents, PATH_ADDR, n, BUF_ADDR, len, path,
        (uint32_t)n, data, len, &r);
    assert_int_equal(r.out_len, 0);
    return r.ret;
}

/* The content of a leaf, as a string. */
static const char *value(const char *path)
{
    static struct reply r;

    assert_int_equal(rd(path, sizeof(r.out), &r), 0);
    r.out[r.out_len < sizeof(r.out) ? r.out_len : sizeof(r.out) - 1] = '\0';
    return (const char *)r.out + 12;
}

static void test_get_version(void **state)
{
    struct reply r;

    (void)state;
    raw(XEN_HYPFS_OP_get_version, 0, 0, 0, 0, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, XEN_HYPFS_VERSION);
    raw(XEN_HYPFS_OP_get_version, 1, 0, 0, 0, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
    raw(XEN_HYPFS_OP_get_version, 0, 0, 0, 4, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
    raw(XEN_HYPFS_OP_get_version, 0, 7, 0, 0, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
}

static void test_path_rules(void **state)
{
    static const char early[] = "/params\0x";
    struct reply r;

    (void)state;
    /* Longer than 1024: -EINVAL before anything is fetched. */
    raw(XEN_HYPFS_OP_read, PATH_ADDR, 1025, BUF_ADDR, 64, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
    /* The caller could supply only 3 of 8 bytes: a fault. */
    raw(XEN_HYPFS_OP_read, PATH_ADDR, 8, BUF_ADDR, 64, "/pa", 3, NULL, 0, &r);
    assert_int_equal(r.ret, -EFAULT);
    /* No path at all where one is needed. */
    raw(XEN_HYPFS_OP_read, 0, 8, BUF_ADDR, 64, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EFAULT);
    /* The first NUL must be the last byte. */
    raw(XEN_HYPFS_OP_read, PATH_ADDR, sizeof(early), BUF_ADDR, 64, early,
        sizeof(early), NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
    raw(XEN_HYPFS_OP_read, PATH_ADDR, 7, BUF_ADDR, 64, "/params", 7, NULL, 0,
        &r);
    assert_int_equal(r.ret, -EINVAL);
    raw(XEN_HYPFS_OP_read, PATH_ADDR, 0, BUF_ADDR, 64, NULL, 0, NULL, 0, &r);
    assert_int_equal(r.ret, -EINVAL);
    /* Absolute only. */
    assert_int_equal(rd("params", 64, &r), -EINVAL);
    assert_int_equal(r.out_len, 0);
}

static void test_lookup(void **state)
{
    static const struct {
        const char *path;
        long ret;
    } cases[] = {
        { "/", 0 }, { "/params", 0 }, { "/params/", 0 },
        { "/params/loglvl", 0 }, { "/params/loglvl/", -ENOENT },
        { "/params/loglvl/x", -ENOENT }, { "/params/nope", -ENOENT },
        { "//", -ENOENT }, { "/params//loglvl", -ENOENT },
        { "/domain/0/name", 0 }, { "/domain/00/name", -ENOENT },
        { "/domain/9/name", -ENOENT }, { "/cpupool/0/sched-gran", 0 },
    };
    struct reply r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (rd(cases[i].path, sizeof(r.out), &r) != cases[i].ret)
            fail_msg("%s: %ld, expected %ld", cases[i].path, r.ret,
                     cases[i].ret);
}

static void test_unknown_command(void **state)
{
    struct reply r;

    (void)state;
    raw(7, PATH_ADDR, 8, BUF_ADDR, 64, "/params", 8, NULL, 0, &r);
    assert_int_equal(r.ret, -EOPNOTSUPP);
    raw(7, PATH_ADDR, 6, BUF_ADDR, 64, "/nope", 6, NULL, 0, &r);
    assert_int_equal(r.ret, -ENOENT);
}

static void test_read_enobufs_and_retry(void **state)
{
    struct xen_hypfs_direntry e;
    struct reply r;

    (void)state;
    assert_int_equal(rd("/params/loglvl", 11, &r), -EINVAL);
    assert_int_equal(r.out_len, 0);
    /* Short: the direntry, and only it, comes back. */
    assert_int_equal(rd("/params/loglvl", 12, &r), -ENOBUFS);
    assert_int_equal(r.out_len, 12);
    memcpy(&e, r.out, sizeof(e));
    assert_int_equal(e.type, XEN_HYPFS_TYPE_STRING);
    assert_int_equal(e.pad, 0);
    assert_int_equal(e.content_len, strlen("warning/warning") + 1);
    /* Xen's size for loglvl's value (LOGLVL_VAL_SZ). */
    assert_int_equal(e.max_write_len, 16);
    /* Exactly right. */
    assert_int_equal(rd("/params/loglvl", 12 + e.content_len, &r), 0);
    assert_int_equal(r.out_len, 12 + e.content_len);
    assert_string_equal((char *)r.out + 12, "warning/warning");
    /* A huge buffer: the reply is still only what was written. */
    assert_int_equal(rd("/params/loglvl", UINT64_MAX - BUF_ADDR, &r), 0);
    assert_int_equal(r.out_len, 12 + e.content_len);
}

static void test_listing(void **state)
{
    struct xen_hypfs_direntry e;
    struct reply r;
    size_t off, n = 0;
    const char *prev = "";

    (void)state;
    assert_int_equal(rd("/params", sizeof(r.out), &r), 0);
    memcpy(&e, r.out, sizeof(e));
    assert_int_equal(e.type, XEN_HYPFS_TYPE_DIR);
    assert_int_equal(r.out_len, 12 + e.content_len);
    for (off = 12;; ) {
        struct xen_hypfs_dirlistentry rec;
        const char *name = (const char *)r.out + off + 14;

        memcpy(&rec, r.out + off, 14);
        assert_true(strcmp(prev, name) < 0);
        prev = name;
        n++;
        if (!rec.off_next)
            break;
        assert_int_equal(rec.off_next, XEN_HYPFS_DIRENTRY_SIZE(strlen(name)));
        off += rec.off_next;
    }
    /* Xen 4.17's fourteen, and hypfsd's two. */
    assert_int_equal(n, 16);
}

/* Each write error, and the value intact after each. */
static void test_write_rules(void **state)
{
    static const int32_t slice = 50;
    static const uint16_t short_val = 1;
    static const uint8_t two = 2, one = 1;
    char big[64], huge[130];
    struct reply r;
    size_t n = strlen("/params/sched_credit_tslice_ms") + 1;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(huge, 'x', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';

    assert_int_equal(wr("/buildinfo/changeset", "x", 2), -EACCES);
    assert_int_equal(wr("/params", "x", 2), -EACCES);
    /*
     * A runtime parameter: its own handler's rules.  As in Xen, it takes
     * values up to the parameter size limit (128 bytes), beyond the
     * max_write_len it reports (16): the handler judges them.
     */
    assert_int_equal(wr("/params/loglvl", huge, 129), -ENOSPC);
    assert_int_equal(wr("/params/loglvl", huge + 2, 128), -EINVAL);
    assert_int_equal(wr("/params/loglvl", big, sizeof(big)), -EINVAL);
    /* Xen's differential cases: 8 bytes into a 7-byte value, and junk. */
    assert_int_equal(wr("/params/console_timestamps", "disable", 8), 0);
    assert_string_equal(value("/params/console_timestamps"), "none");
    assert_int_equal(wr("/params/console_timestamps", "nope-nope", 10),
                     -EINVAL);
    assert_int_equal(wr("/params/console_timestamps", "enable", 7), 0);
    assert_string_equal(value("/params/console_timestamps"), "date");
    assert_int_equal(wr("/params/console_timestamps", "none", 5), 0);
    /* sched-gran's handler judges its bytes: Xen says -EINVAL, not -EDOM. */
    assert_int_equal(wr("/cpupool/0/sched-gran", "cpu", 3), -EINVAL);
    assert_int_equal(wr("/cpupool/0/sched-gran", "sockets!", 9), -ENOSPC);
    assert_int_equal(wr("/params/loglvl", "info", 4), -EDOM);
    /* Refused whole: Xen's parser would leave warning/warning behind. */
    assert_int_equal(wr("/params/loglvl", "info/loud", 10), -EINVAL);
    assert_string_equal(value("/params/loglvl"), "warning/warning");
    assert_int_equal(wr("/params/loglvl", "all/info", 9), 0);
    assert_string_equal(value("/params/loglvl"), "all/all");
    /* A string parameter: its buffer, exactly (conswitch: 3 bytes). */
    assert_int_equal(wr("/params/conswitch", "abc", 4), -ENOSPC);
    assert_int_equal(wr("/params/conswitch", "x\0y", 3), -EINVAL);
    assert_int_equal(wr("/params/conswitch", "xy", 2), -EINVAL);
    assert_string_equal(value("/params/conswitch"), "a");
    assert_int_equal(wr("/params/conswitch", "bx", 3), 0);
    assert_string_equal(value("/params/conswitch"), "bx");
    /* An int with a range (hypfsd's own parameter). */
    assert_int_equal(wr("/params/sched_credit_tslice_ms", &short_val, 2),
                     -EDOM);
    raw(XEN_HYPFS_OP_write_contents, PATH_ADDR, n, BUF_ADDR, 4,
        "/params/sched_credit_tslice_ms", (uint32_t)n, &slice, 2, &r);
    assert_int_equal(r.ret, -EFAULT);   /* 2 of 4 bytes supplied */
    assert_int_equal(wr("/params/sched_credit_tslice_ms", &(int32_t){ 0 }, 4),
                     -EINVAL);          /* below the range */
    assert_int_equal(wr("/params/sched_credit_tslice_ms", &slice, 4), 0);
    assert_int_equal(*(const int32_t *)(const void *)value(
                         "/params/sched_credit_tslice_ms"), 50);
    /* A custom parameter that is a number to Xen, shown as a string. */
    assert_int_equal(wr("/params/gnttab_max_frames", "0x20", 5), 0);
    assert_string_equal(value("/params/gnttab_max_frames"), "32");
    assert_int_equal(wr("/params/gnttab_max_frames", "2147483648", 11),
                     -ERANGE);
    assert_int_equal(wr("/params/gnttab_max_frames", "32 ", 4), -EINVAL);
    assert_string_equal(value("/params/gnttab_max_frames"), "32");
    /* A bool. */
    assert_int_equal(wr("/params/sync_console", &two, 1), -EINVAL);
    assert_int_equal(wr("/params/sync_console", &short_val, 2), -EDOM);
    assert_int_equal(value("/params/sync_console")[0], 0);
    assert_int_equal(wr("/params/sync_console", &one, 1), 0);
    assert_int_equal(value("/params/sync_console")[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_version),
        cmocka_unit_test(test_path_rules),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_read_enobufs_and_retry),
        cmocka_unit_test(test_listing),
        cmocka_unit_test(test_write_rules),
    };

    return cmocka_run_group_tests_name("hypfsd-abi", tests, setup, teardown);
}
