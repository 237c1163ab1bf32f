/*
 * libxenhypfs against a running hypfsd (--test-tree): every behaviour of
 * SPEC section 2 with its errno, value parsing at every integer size, the
 * ENOBUFS retry on a listing and on values larger than the first 4 KiB
 * read, write limits, gzip, and one handle used by 8 threads at once.
 *
 * Run once per transport the library has on a host ($HYPFS_TEST_TRANSPORT):
 * "socket" (hypfsd's socket) and "privcmd" (Xen's privcmd device, emulated
 * by libhypfs-privcmd.so, preloaded by meson), so that every request takes
 * the code path it takes on a real Xen host too.
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
#include <cmocka.h>

#include <xenhypfs.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

static struct daemon d;
static xenhypfs_handle *h;
static bool privcmd;        /* the transport is (emulated) privcmd */

static int setup(void **state)
{
    static const char *const args[] = { "--test-tree", NULL };
    const char *t = getenv("HYPFS_TEST_TRANSPORT");

    (void)state;
    if (!t || !*t)
        t = "socket";
    if (strcmp(t, "socket") && strcmp(t, "privcmd")) {
        fprintf(stderr, "HYPFS_TEST_TRANSPORT=%s: socket or privcmd\n", t);
        return -1;
    }
    privcmd = !strcmp(t, "privcmd");
    if (privcmd && !getenv("LD_PRELOAD")) {
        fprintf(stderr, "the privcmd transport needs libhypfs-privcmd.so "
                "in LD_PRELOAD\n");
        return -1;
    }
    if (daemon_start(&d, NULL, args))
        return -1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    setenv("HYPFS_TRANSPORT", t, 1);
    h = xenhypfs_open(NULL, 0);
    return h ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xenhypfs_close(h);
    return daemon_stop(&d) ? -1 : 0;
}

/* @path's value as the library reads it (NULL: errno). */
static char *val(const char *path)
{
    static char last[256];
    char *v = xenhypfs_read(h, path);

    if (!v)
        return NULL;
    snprintf(last, sizeof(last), "%s", v);
    free(v);
    return last;
}

static void expect_errno(const char *what, bool failed, int want)
{
    if (!failed)
        fail_msg("%s: succeeded, expected errno %d", what, want);
    if (errno != want)
        fail_msg("%s: errno %d (%s), expected %d (%s)", what, errno,
                 strerror(errno), want, strerror(want));
}

static void test_open_close(void **state)
{
    xenhypfs_handle *h2;

    (void)state;
    assert_int_equal(xenhypfs_close(NULL), 0);
    /*
     * Over privcmd the device is there or not, whatever the socket: the
     * emulation keeps the one connection it made for this process.
     */
    if (!privcmd) {
        setenv("HYPFS_SOCKET", "/nonexistent/hypfsd.sock", 1);
        h2 = xenhypfs_open(NULL, 0);
        expect_errno("open without a daemon", h2 == NULL, ENOENT);
        setenv("HYPFS_SOCKET", d.socket, 1);
    }
    h2 = xenhypfs_open(NULL, 0);
    assert_non_null(h2);
    assert_int_equal(xenhypfs_close(h2), 0);
}

static void test_bad_arguments(void **state)
{
    char path[1100];
    struct xenhypfs_dirent *ent;
    unsigned int n;

    (void)state;
    expect_errno("read with NULL handle", xenhypfs_read(NULL, "/") == NULL,
                 EBADF);
    expect_errno("write with NULL handle",
                 xenhypfs_write(NULL, "/params/loglvl", "all") == -1, EBADF);
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[1024] = '\0';      /* 1025 bytes with the NUL: too long */
    expect_errno("1024-byte path", xenhypfs_read(h, path) == NULL,
                 ENAMETOOLONG);
    path[1023] = '\0';      /* 1024 with the NUL: fine, and missing */
    expect_errno("1023-byte path", xenhypfs_read(h, path) == NULL, ENOENT);
    ent = xenhypfs_readdir(h, "/nope", &n);
    expect_errno("readdir of a missing dir", ent == NULL, ENOENT);
    expect_errno("relative path", xenhypfs_read(h, "params") == NULL, EINVAL);
}

static void test_read_raw(void **state)
{
    static const struct {
        const char *path, *name;
        size_t size;
        unsigned short type, encoding;
        unsigned int flags;
    } cases[] = {
        { "/test/types/u16", "u16", 2, xenhypfs_type_uint, 0, 1 },
        { "/test/types/i64", "i64", 8, xenhypfs_type_int, 0, 1 },
        { "/test/types/string_ro", "string_ro", 10, xenhypfs_type_string, 0, 0 },
        { "/test/types/blob", "blob", 5, xenhypfs_type_blob, 0, 1 },
        { "/test/types/gzip_blob", "gzip_blob", 0, xenhypfs_type_blob,
          xenhypfs_enc_gzip, 0 },
        { "/test/empty/", "/", 0, xenhypfs_type_dir, 0, 0 },
        { "/", "/", 0, xenhypfs_type_dir, 0, 0 },
        { "/test/deep", "deep", 18, xenhypfs_type_dir, 0, 0 },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xenhypfs_dirent *de;
        void *raw = xenhypfs_read_raw(h, cases[i].path, &de);

        assert_non_null(raw);
        assert_string_equal(de->name, cases[i].name);
        if (cases[i].size)
            assert_int_equal(de->size, cases[i].size);
        assert_int_equal(de->type, cases[i].type);
        assert_int_equal(de->encoding, cases[i].encoding);
        assert_int_equal(de->flags, cases[i].flags);
        if (!strcmp(cases[i].path, "/test/types/blob"))
            assert_memory_equal(raw, "\x00\x01\x7f\x80\xff", 5);
        free(raw);
        free(de);
    }
}

static void test_read(void **state)
{
    static const struct {
        const char *path, *value;
    } cases[] = {
        { "/test/types/u8", "200" },
        { "/test/types/u16", "65000" },
        { "/test/types/u32", "4000000000" },
        { "/test/types/u64", "18000000000000000000" },
        { "/test/types/i8", "-100" },
        { "/test/types/i16", "-30000" },
        { "/test/types/i32", "-2000000000" },
        { "/test/types/i64", "-9000000000000000000" },
        { "/test/types/bool_ro", "1" },
        { "/test/types/string_ro", "read only" },
        { "/test/types/empty_string", "" },
        { "/test/types/gzip_string",
          "This string is stored gzip-encoded, as /buildinfo/config is.\n" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *v = val(cases[i].path);

        if (!v || strcmp(v, cases[i].value))
            fail_msg("%s: \"%s\", expected \"%s\"", cases[i].path,
                     v ? v : strerror(errno), cases[i].value);
    }
    expect_errno("read a directory", val("/test") == NULL, EISDIR);
    expect_errno("read a blob", val("/test/types/blob") == NULL, EDOM);
    expect_errno("read a gzip blob", val("/test/types/gzip_blob") == NULL, EDOM);
    expect_errno("read a missing entry", val("/test/none") == NULL, ENOENT);
}

static void test_readdir(void **state)
{
    struct xenhypfs_dirent *ent;
    unsigned int n, i;
    static const char *const order[] = {
        "0", "10", "9", "B", "Zz", "_", "a", "a-b", "a.b", "b", "deep",
        "empty", "types", "zz", "~",
    };

    (void)state;
    ent = xenhypfs_readdir(h, "/test", &n);
    assert_non_null(ent);
    assert_int_equal(n, 15);
    for (i = 0; i < n; i++)
        assert_string_equal(ent[i].name, order[i]);
    assert_int_equal(ent[11].type, xenhypfs_type_dir);
    assert_int_equal(ent[11].size, 0);
    free(ent);

    ent = xenhypfs_readdir(h, "/test/empty", &n);
    assert_non_null(ent);
    assert_int_equal(n, 0);
    free(ent);
    ent = xenhypfs_readdir(h, "/test/types/u8", &n);
    expect_errno("readdir of a leaf", ent == NULL, ENOTDIR);
}

/* A listing above 4 KiB: the first read is short, the retry exact. */
static void test_enobufs_retry(void **state)
{
    struct hypfs_client c;
    struct xenhypfs_dirent *ent;
    unsigned int n, i;
    char name[40];

    (void)state;
    assert_int_equal(tclient_open(&c, d.socket), 0);
    for (i = 0; i < 300; i++) {
        const char *argv[2] = { "domain-create", name };
        const char *text;
        uint32_t len;
        int status;

        snprintf(name, sizeof(name), "name=a-rather-long-domain-name-%u", i);
        assert_int_equal(hypfs_client_ctl(&c, 2, argv, &status, &text, &len), 0);
        assert_int_equal(status, 0);
    }
    hypfs_client_close(&c);
    ent = xenhypfs_readdir(h, "/domain", &n);
    assert_non_null(ent);
    assert_int_equal(n, 301);
    free(ent);
    {
        struct xenhypfs_dirent *de;
        void *raw = xenhypfs_read_raw(h, "/domain", &de);

        assert_non_null(raw);
        assert_true(de->size > 4096);
        free(raw);
        free(de);
    }
}

/* Values beyond the first 4 KiB read, read and written. */
static void test_big_values(void **state)
{
    struct xenhypfs_dirent *de;
    unsigned char *raw;
    char *v, big[16385];
    unsigned int i;

    (void)state;
    raw = xenhypfs_read_raw(h, "/test/types/blob_big", &de);
    assert_non_null(raw);
    assert_int_equal(de->size, 9000);
    assert_int_equal(de->type, xenhypfs_type_blob);
    for (i = 0; i < 9000; i++)
        if (raw[i] != (unsigned char)(i * 7 + i / 256))
            fail_msg("blob_big: byte %u is %u", i, raw[i]);
    free(raw);
    free(de);

    v = xenhypfs_read(h, "/test/types/string_big");
    assert_non_null(v);
    assert_int_equal(strlen(v), 5440);
    assert_true(!strncmp(v, "line 0 of a big string\n", 23));
    free(v);

    /* The limit counts the NUL: 16383 characters fit, 16384 do not. */
    memset(big, 'q', sizeof(big));
    big[16383] = '\0';
    assert_int_equal(xenhypfs_write(h, "/test/types/string_big", big), 0);
    v = xenhypfs_read(h, "/test/types/string_big");
    assert_non_null(v);
    assert_int_equal(strlen(v), 16383);
    free(v);
    big[16383] = 'q';
    big[16384] = '\0';
    expect_errno("a value one byte too long",
                 xenhypfs_write(h, "/test/types/string_big", big) == -1,
                 ENOSPC);
    big[5000] = '\0';
    assert_int_equal(xenhypfs_write(h, "/test/types/string_big", big), 0);
    v = xenhypfs_read(h, "/test/types/string_big");
    assert_non_null(v);
    assert_string_equal(v, big);
    free(v);
}

/* The write limit the hypervisor reports, read through its -ENOBUFS. */
static void test_write_limit(void **state)
{
    static const struct {
        const char *path;
        unsigned int limit;
    } cases[] = {
        { "/test/types/u8", 1 },
        { "/test/types/u64", 8 },
        { "/test/types/bool", 1 },
        { "/test/types/string", 64 },
        { "/test/types/string_big", 16384 },
        { "/test/types/blob", 64 },
        { "/test/types/string_ro", 0 },
        { "/test/types/blob_big", 0 },
        { "/test", 0 },
        { "/params/loglvl", 16 },
    };
    unsigned int lim;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lim = 12345;
        if (xenhypfs_write_limit(h, cases[i].path, &lim))
            fail_msg("write limit of %s: %s", cases[i].path, strerror(errno));
        if (lim != cases[i].limit)
            fail_msg("write limit of %s: %u, expected %u", cases[i].path,
                     lim, cases[i].limit);
    }
    expect_errno("write limit of a missing entry",
                 xenhypfs_write_limit(h, "/test/none", &lim) == -1, ENOENT);
}

static void test_write(void **state)
{
    static const struct {
        const char *path, *in;
        int err;            /* 0: success */
        const char *out;    /* read back */
    } cases[] = {
        { "/test/types/u8", "255", 0, "255" },
        { "/test/types/u8", "256", ERANGE, "255" },
        { "/test/types/u8", "-1", ERANGE, "255" },
        { "/test/types/u8", "0x10", 0, "16" },
        { "/test/types/u8", "017", 0, "15" },
        { "/test/types/u8", "08", EINVAL, "15" },
        { "/test/types/u8", "", EINVAL, "15" },
        /* White space on either side, as Xen's library takes " 12". */
        { "/test/types/u8", "12 ", 0, "12" },
        { "/test/types/u8", " 15\n", 0, "15" },
        { "/test/types/u8", " ", EINVAL, "15" },
        { "/test/types/u8", "1 2", EINVAL, "15" },
        { "/test/types/u8", "ten", EINVAL, "15" },
        { "/test/types/u16", "65535", 0, "65535" },
        { "/test/types/u16", "65536", ERANGE, "65535" },
        { "/test/types/u32", "4294967295", 0, "4294967295" },
        { "/test/types/u32", "4294967296", ERANGE, "4294967295" },
        { "/test/types/u64", "18446744073709551615", 0, "18446744073709551615" },
        { "/test/types/u64", "18446744073709551616", ERANGE, "18446744073709551615" },
        { "/test/types/u64", "0x8000000000000000", 0, "9223372036854775808" },
        { "/test/types/i8", "127", 0, "127" },
        { "/test/types/i8", "-128", 0, "-128" },
        { "/test/types/i8", "128", ERANGE, "-128" },
        { "/test/types/i8", "-129", ERANGE, "-128" },
        { "/test/types/i16", "-32768", 0, "-32768" },
        { "/test/types/i16", "32768", ERANGE, "-32768" },
        { "/test/types/i32", "2147483647", 0, "2147483647" },
        { "/test/types/i32", "2147483648", ERANGE, "2147483647" },
        { "/test/types/i32", "-0x80000000", 0, "-2147483648" },
        { "/test/types/i64", "-9223372036854775808", 0, "-9223372036854775808" },
        { "/test/types/i64", "9223372036854775808", ERANGE, "-9223372036854775808" },
        { "/test/types/i64", "1e3", EINVAL, "-9223372036854775808" },
        { "/test/types/bool", "0", 0, "0" },
        { "/test/types/bool", "on", 0, "1" },
        { "/test/types/bool", "off", 0, "0" },
        { "/test/types/bool", "yes", 0, "1" },
        { "/test/types/bool", "no", 0, "0" },
        { "/test/types/bool", "true", 0, "1" },
        { "/test/types/bool", "false", 0, "0" },
        { "/test/types/bool", "enable", 0, "1" },
        { "/test/types/bool", "disable", 0, "0" },
        { "/test/types/bool", "1", 0, "1" },
        { "/test/types/bool", "2", EDOM, "1" },
        { "/test/types/bool", "On", EDOM, "1" },
        { "/test/types/bool", "", EDOM, "1" },
        { "/test/types/string", "new value", 0, "new value" },
        { "/test/types/string", "", 0, "" },
        { "/test/types/string",
          "this value is longer than the sixty-four bytes the entry allows!!",
          ENOSPC, "" },
        { "/test/types/string_ro", "x", EACCES, "read only" },
        { "/test/types/bool_ro", "1", EACCES, "1" },
        { "/test/types/gzip_string", "x", EACCES, NULL },
        { "/test", "x", EACCES, NULL },
        { "/test/types/blob", "x", EDOM, NULL },
        { "/test/nothing", "1", ENOENT, NULL },
        { "/params/loglvl", "loud", EINVAL, "warning/warning" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int ret = xenhypfs_write(h, cases[i].path, cases[i].in);
        const char *v;

        if (cases[i].err)
            expect_errno(cases[i].in, ret == -1, cases[i].err);
        else if (ret)
            fail_msg("write %s = \"%s\": %s", cases[i].path, cases[i].in,
                     strerror(errno));
        if (!cases[i].out)
            continue;
        v = val(cases[i].path);
        if (!v || strcmp(v, cases[i].out))
            fail_msg("after writing %s = \"%s\": \"%s\", expected \"%s\"",
                     cases[i].path, cases[i].in, v ? v : strerror(errno),
                     cases[i].out);
    }
}

/* One handle, 8 threads, each with its own paths and values. */
static void *worker(void *arg)
{
    unsigned int id = (unsigned int)(uintptr_t)arg, i;
    static const char *const paths[] = {
        "/test/types/u8", "/test/types/u16", "/test/types/u32",
        "/test/types/u64", "/test/types/i8", "/test/types/i16",
        "/test/types/i32", "/test/types/i64",
    };
    long bad = 0;

    for (i = 0; i < 500; i++) {
        char in[32];
        char *out;
        struct xenhypfs_dirent *ent;
        unsigned int n;

        snprintf(in, sizeof(in), "%u", (i * 8 + id) % 100);
        if (xenhypfs_write(h, paths[id], in))
            bad++;
        out = xenhypfs_read(h, paths[id]);
        if (!out || strcmp(out, in))
            bad++;
        free(out);
        ent = xenhypfs_readdir(h, "/test", &n);
        if (!ent || n != 15)
            bad++;
        free(ent);
    }
    return (void *)bad;
}

static void test_threads(void **state)
{
    pthread_t t[8];
    uintptr_t i;
    void *bad;

    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)i), 0);
    for (i = 0; i < 8; i++) {
        pthread_join(t[i], &bad);
        assert_int_equal((uintptr_t)bad, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_close),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_read_raw),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_readdir),
        cmocka_unit_test(test_enobufs_retry),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_big_values),
        cmocka_unit_test(test_write_limit),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests_name("libxenhypfs", tests, setup, teardown);
}
