/*
 * Allocation failures (SQLite's malloc tests are the model): every
 * operation is run with its 1st, 2nd, ... allocation failing.  Each attempt
 * must fail with -ENOMEM and leave the tree as it was; once the failure
 * point is past the operation's last allocation it must succeed.  Leaks
 * are LeakSanitizer's to find in the sanitizer build.
 */
#include <stdlib.h>

#include "harness.h"
#include "hypfs-testing.h"

static int alloc_count, alloc_fail_at;

static void *t_malloc(size_t n)
{
    if ( alloc_fail_at && ++alloc_count == alloc_fail_at )
        return NULL;
    return malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    if ( alloc_fail_at && ++alloc_count == alloc_fail_at )
        return NULL;
    return realloc(p, n);
}

static void *t_calloc(size_t n, size_t size)
{
    if ( alloc_fail_at && ++alloc_count == alloc_fail_at )
        return NULL;
    return calloc(n, size);
}

static const struct hypfs_alloc_hooks hooks = {
    t_malloc, t_calloc, t_realloc, free,
};

static struct hypfs *fs;
static struct hypfs_entry_dir *dir;

/* A dynamic directory with many ids: listing it allocates. */
static int many_foreach(const struct hypfs_dyndir *dd,
                        int (*fn)(void *arg, unsigned int id), void *arg)
{
    unsigned int i;
    int ret;

    (void)dd;
    for ( i = 0; i < 100; i++ )
        if ( (ret = fn(arg, i * 7)) )
            return ret;
    return 0;
}

static int many_find(const struct hypfs_dyndir *dd, unsigned int id, void **d)
{
    (void)dd;
    *d = NULL;
    return id % 7 || id >= 700 ? -ENOENT : 0;
}

static const struct hypfs_dyndir_ops many_ops = {
    .foreach_id = many_foreach,
    .find_id = many_find,
};
static HYPFS_DIR_INIT(many_tmpl, "t");
static HYPFS_DYNDIR_INIT(many, "many", &many_tmpl, &many_ops, 0);

/* A computed value larger than the render buffer's inline space. */
static int big_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    char chunk[100];
    int i, ret;

    (void)e;
    memset(chunk, 'z', sizeof(chunk));
    for ( i = 0; i < 50; i++ )
        if ( (ret = hypfs_buf_put(b, chunk, sizeof(chunk))) )
            return ret;
    return hypfs_buf_put(b, "", 1);
}

static const struct hypfs_funcs big_funcs = { .read = big_read };
static HYPFS_VARSIZE_INIT(bigleaf, XEN_HYPFS_TYPE_STRING, "computed", 0,
                          &big_funcs);

static int setup(void **state)
{
    (void)state;
    hypfs_set_alloc_hooks(&hooks);
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "d", &dir), 0);
    assert_int_equal(hypfs_add_dyndir(hypfs_root(fs), &many, false), 0);
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &bigleaf, false), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    hypfs_set_alloc_hooks(NULL);
    return 0;
}

/* A fingerprint of the tree: the root listing and d's listing. */
static long fingerprint(unsigned char *out, size_t len)
{
    struct guest g;
    struct hypfs_caller c;
    long ret;

    alloc_fail_at = 0;
    guest_reset(&g);
    c = caller_control(&g);
    ret = op_read(fs, &c, "/d", out, len);
    return ret ? ret : (long)(((struct xen_hypfs_direntry *)out)->content_len);
}

/* Run @op with each allocation failing in turn. */
static void each_failure(const char *what, int (*op)(void))
{
    static unsigned char before[64 * 1024], after[64 * 1024];
    long blen, alen;
    int n;

    blen = fingerprint(before, sizeof(before));
    assert_true(blen >= 0);
    for ( n = 1; n < 10000; n++ )
    {
        int ret;

        alloc_count = 0;
        alloc_fail_at = n;
        ret = op();
        alloc_fail_at = 0;
        if ( alloc_count < n )
        {
            if ( ret )
                fail_msg("%s: %d with no allocation failing", what, ret);
            return;
        }
        if ( ret != -ENOMEM )
            fail_msg("%s: allocation %d failed, got %d", what, n, ret);
        alen = fingerprint(after, sizeof(after));
        assert_int_equal(alen, blen);
        assert_memory_equal(after, before, (size_t)blen + 12);
    }
    fail_msg("%s: never succeeded", what);
}

static unsigned int serial;

static int op_leaf_new(void)
{
    char name[32];
    int ret;

    snprintf(name, sizeof(name), "leaf%u", serial);
    ret = hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_STRING, "value", 6, 100,
                         NULL);
    if ( !ret )
        serial++;
    return ret;
}

static int op_dir_new(void)
{
    char name[32];
    int ret;

    snprintf(name, sizeof(name), "dir%u", serial);
    ret = hypfs_dir_new(dir, name, NULL);
    if ( !ret )
        serial++;
    return ret;
}

static int op_many_leaves(void)
{
    /* Enough to grow the hash table and the order array several times. */
    struct hypfs_entry_dir *sub;
    char name[32];
    unsigned int i;
    uint8_t v = 1;
    int ret;

    snprintf(name, sizeof(name), "sub%u", serial);
    ret = hypfs_dir_new(dir, name, &sub);
    if ( ret )
        return ret;
    for ( i = 0; i < 40; i++ )
    {
        snprintf(name, sizeof(name), "x%u", 40 - i);
        ret = hypfs_leaf_new(sub, name, XEN_HYPFS_TYPE_UINT, &v, 1, 0, NULL);
        if ( ret )
        {
            /* Undo, so that a failure leaves the tree as it was. */
            hypfs_remove(dir, &sub->e);
            return ret;
        }
    }
    serial++;
    return 0;
}

static int read_as_control(const char *path, size_t len)
{
    static unsigned char buf[64 * 1024];
    struct guest g;
    struct hypfs_caller c;

    guest_reset(&g);
    c = caller_control(&g);
    return (int)op_read(fs, &c, path, buf, len);
}

static int op_list_dyndir(void)
{
    return read_as_control("/many", 64 * 1024);
}

static int op_list_unsorted(void)
{
    /* Out-of-order names make the listing merge its unsorted tail. */
    struct hypfs_entry_dir *sub;
    char name[32];
    uint8_t v = 1;
    int ret;

    alloc_fail_at = 0;
    snprintf(name, sizeof(name), "m%u", serial++);
    if ( hypfs_dir_new(dir, name, &sub) ||
         hypfs_leaf_new(sub, "b", XEN_HYPFS_TYPE_UINT, &v, 1, 0, NULL) ||
         hypfs_leaf_new(sub, "a", XEN_HYPFS_TYPE_UINT, &v, 1, 0, NULL) )
        return -EIO;
    alloc_count = 0;
    alloc_fail_at = 1;      /* the merge's buffer */
    snprintf(name, sizeof(name), "/d/m%u", serial - 1);
    ret = read_as_control(name, 4096);
    alloc_fail_at = 0;
    /* Whatever happened, the tree stays as it was before this call. */
    hypfs_remove(dir, &sub->e);
    return ret;
}

static int op_computed(void)
{
    return read_as_control("/computed", 8192);
}

static int op_big_write(void)
{
    static char val[1000];
    struct guest g;
    struct hypfs_caller c;

    memset(val, 'w', sizeof(val) - 1);
    guest_reset(&g);
    c = caller_control(&g);
    return (int)op_write(fs, &c, "/d/big", val, sizeof(val));
}

static void test_alloc_failures(void **state)
{
    (void)state;
    each_failure("hypfs_leaf_new", op_leaf_new);
    each_failure("hypfs_dir_new", op_dir_new);
    each_failure("growing a directory", op_many_leaves);
    each_failure("listing a dynamic directory", op_list_dyndir);
    each_failure("rendering a large value", op_computed);
    assert_int_equal(hypfs_leaf_new(dir, "big", XEN_HYPFS_TYPE_STRING, "", 1,
                                    2000, NULL), 0);
    each_failure("writing a large value", op_big_write);
}

static void test_merge_failure(void **state)
{
    (void)state;
    /* The merge needs memory; without it the listing fails cleanly... */
    assert_int_equal(op_list_unsorted(), -ENOMEM);
    /* ...and with it, succeeds. */
    alloc_fail_at = 0;
    assert_int_equal(read_as_control("/d", 64 * 1024), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_merge_failure),
    };

    return cmocka_run_group_tests_name("alloc", tests, setup, teardown);
}
