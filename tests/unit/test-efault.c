/*
 * Guest memory faults: for a set of operations, make the 1st, 2nd, ...
 * guest access fail in turn.  Each attempt must return exactly -EFAULT,
 * change nothing, and no attempt may fetch a guest byte twice.  The
 * operation must succeed once the injection point is past its last access.
 */
#include <stdlib.h>

#include "harness.h"

static struct hypfs *fs;

static int setup(void **state)
{
    struct hypfs_entry_dir *d;
    uint8_t b = 0;
    uint32_t u = 1;
    char big[2000];
    unsigned int i;

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "d", &d), 0);
    assert_int_equal(hypfs_leaf_new(d, "bool", XEN_HYPFS_TYPE_BOOL, &b, 1, 1, NULL), 0);
    assert_int_equal(hypfs_leaf_new(d, "u32", XEN_HYPFS_TYPE_UINT, &u, 4, 4, NULL), 0);
    assert_int_equal(hypfs_leaf_new(d, "str", XEN_HYPFS_TYPE_STRING, "old", 4, 64, NULL), 0);
    memset(big, 'b', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(hypfs_leaf_new(d, "big", XEN_HYPFS_TYPE_STRING, big,
                                    sizeof(big), 4096, NULL), 0);
    /* A directory whose listing takes several flushes of the stage. */
    for ( i = 0; i < 600; i++ )
    {
        char name[16];

        snprintf(name, sizeof(name), "entry%04u", i);
        assert_int_equal(hypfs_leaf_new(d, name, XEN_HYPFS_TYPE_UINT, &u, 4, 0,
                                        NULL), 0);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

struct op {
    const char *what;
    unsigned int cmd;
    const char *path;
    const void *data;       /* write data; NULL for reads */
    size_t len;             /* data length, or read buffer size */
    long ok;                /* result without faults */
};

static void inject_all(const struct op *op)
{
    static unsigned char rbuf[64 * 1024];
    unsigned char before[8192];
    long before_len = read_content(fs, op->path, before, sizeof(before));
    int n;

    for ( n = 1;; n++ )
    {
        struct guest g;
        struct hypfs_caller c;
        unsigned char after[8192];
        long ret;

        guest_reset(&g);
        g.fail_at = n;
        c = caller_control(&g);
        ret = hypfs_do_op(fs, &c, op->cmd, gaddr(op->path),
                          strlen(op->path) + 1,
                          gaddr(op->data ? op->data : rbuf), op->len);
        assert_false(g.double_fetch);
        if ( g.accesses < n )
        {
            /* Past the last access: the real result. */
            if ( ret != op->ok )
                fail_msg("%s: %ld after %d accesses", op->what, ret, n - 1);
            assert_true(n > 1);
            return;
        }
        if ( ret != -EFAULT )
            fail_msg("%s: access %d failed, got %ld", op->what, n, ret);
        if ( op->cmd == XEN_HYPFS_OP_write_contents )
        {
            assert_int_equal(read_content(fs, op->path, after, sizeof(after)),
                             before_len);
            assert_memory_equal(after, before, (size_t)before_len);
        }
    }
}

static void test_inject(void **state)
{
    static const uint8_t one = 1;
    static const uint32_t v = 77;
    static char big[3000];
    const struct op ops[] = {
        { "read leaf", XEN_HYPFS_OP_read, "/d/u32", NULL, 64, 0 },
        { "read leaf, short buffer", XEN_HYPFS_OP_read, "/d/str", NULL, 12,
          -ENOBUFS },
        { "read big leaf", XEN_HYPFS_OP_read, "/d/big", NULL, 8192, 0 },
        { "read directory", XEN_HYPFS_OP_read, "/d", NULL, 64 * 1024, 0 },
        { "read directory, short", XEN_HYPFS_OP_read, "/d/", NULL, 100,
          -ENOBUFS },
        { "write bool", XEN_HYPFS_OP_write_contents, "/d/bool", &one, 1, 0 },
        { "write uint", XEN_HYPFS_OP_write_contents, "/d/u32", &v, 4, 0 },
        { "write string", XEN_HYPFS_OP_write_contents, "/d/str", "new", 4, 0 },
        { "write big string", XEN_HYPFS_OP_write_contents, "/d/big", big,
          sizeof(big), 0 },
        { "missing path", XEN_HYPFS_OP_read, "/d/none", NULL, 64, -ENOENT },
    };
    size_t i;

    (void)state;
    memset(big, 'c', sizeof(big) - 1);
    for ( i = 0; i < sizeof(ops) / sizeof(ops[0]); i++ )
        inject_all(&ops[i]);
}

/* The bytes validated are the bytes applied: the data is fetched once. */
static void test_single_fetch(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    char out[8];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_write_str(fs, &c, "/d/str", "once"), 0);
    assert_false(g.double_fetch);
    /* One fetch of the path and one of the data. */
    assert_int_equal(g.nfetched, 2);
    assert_int_equal(read_content(fs, "/d/str", out, sizeof(out)), 5);
    assert_string_equal(out, "once");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_single_fetch),
    };

    return cmocka_run_group_tests_name("efault", tests, setup, teardown);
}
