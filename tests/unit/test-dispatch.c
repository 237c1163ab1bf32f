/*
 * The dispatcher's argument checks, one test per rule of SPEC section 1
 * (rules 1-5), each also checking that the rule fires before the later
 * ones: a call that breaks two rules gets the earlier rule's errno.
 */
#include "harness.h"

static struct hypfs *fs;
static char str_val[16] = "hello";

static int setup(void **state)
{
    struct hypfs_entry_dir *dir;
    uint32_t u = 7;

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "dir", &dir), 0);
    assert_int_equal(hypfs_leaf_new(dir, "str", XEN_HYPFS_TYPE_STRING,
                                    str_val, 6, 16, NULL), 0);
    assert_int_equal(hypfs_leaf_new(dir, "u32", XEN_HYPFS_TYPE_UINT, &u, 4, 4,
                                    NULL), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "empty", NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

/* Rule 1: no hypfs right, -EPERM for every command, before anything else. */
static void test_no_right_eperm(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_none(&g);
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_get_version, 0, 0, 0, 0),
                     -EPERM);
    /* Even with bad arguments that would give -EINVAL otherwise. */
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_get_version, 1, 0, 0, 0),
                     -EPERM);
    assert_int_equal(op_read(fs, &c, "/dir/str", buf, sizeof(buf)), -EPERM);
    assert_int_equal(op_write_str(fs, &c, "/dir/str", "x"), -EPERM);
    assert_int_equal(hypfs_do_op(fs, &c, 99, gaddr("/"), 2, 0, 0), -EPERM);
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, 0, 5000, 0, 0),
                     -EPERM);
    /* No guest memory was touched. */
    assert_int_equal(g.accesses, 0);
    /* A NULL caller or tree is treated the same way. */
    assert_int_equal(hypfs_do_op(fs, NULL, XEN_HYPFS_OP_get_version, 0, 0, 0, 0),
                     -EPERM);
}

/* Rule 2: get_version with all arguments 0 returns the
 * interface version (2); any other -EINVAL. */
static void test_get_version(void **state)
{
    struct guest g;
    struct hypfs_caller ctl, dom;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    dom = caller_domain(&g, 3);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_version, 0, 0, 0, 0),
                     XEN_HYPFS_VERSION);
    assert_int_equal(hypfs_do_op(fs, &dom, XEN_HYPFS_OP_get_version, 0, 0, 0, 0),
                     XEN_HYPFS_VERSION);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_version, 1, 0, 0, 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_version, 0, 1, 0, 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_version, 0, 0, 1, 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_version, 0, 0, 0, 1),
                     -EINVAL);
    assert_int_equal(g.accesses, 0);
}

/* Rule 3a: a path length above 1024 is -EINVAL, before any fetch. */
static void test_path_too_long(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    char path[XEN_HYPFS_MAX_PATHLEN + 1];
    char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[XEN_HYPFS_MAX_PATHLEN] = '\0';
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(path),
                                 XEN_HYPFS_MAX_PATHLEN + 1, gaddr(buf),
                                 sizeof(buf)), -EINVAL);
    /* Not -EFAULT, even for an address that cannot be read. */
    g.bad_lo = 0;
    g.bad_hi = UINT64_MAX;
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, 0x1000, 5000,
                                 gaddr(buf), sizeof(buf)), -EINVAL);
    assert_int_equal(g.accesses, 0);

    /* Exactly 1024 bytes (1023 characters and the NUL) is accepted. */
    guest_reset(&g);
    path[XEN_HYPFS_MAX_PATHLEN - 1] = '\0';
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(path),
                                 XEN_HYPFS_MAX_PATHLEN, gaddr(buf), sizeof(buf)),
                     -ENOENT);
}

/* Rule 3b: unreadable path memory is -EFAULT; checked before the NUL. */
static void test_path_fault(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    char path[] = "no NUL and not absolute";
    char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    g.bad_lo = gaddr(path) + 3;
    g.bad_hi = g.bad_lo + 1;
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(path), 10,
                                 gaddr(buf), sizeof(buf)), -EFAULT);
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_write_contents,
                                 gaddr(path), 10, gaddr(buf), 1), -EFAULT);
    /* Unknown commands fetch the path too. */
    assert_int_equal(hypfs_do_op(fs, &c, 17, gaddr(path), 10, 0, 0), -EFAULT);
}

/* Rule 3c: the first NUL must be the last byte of the path. */
static void test_path_nul(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    const char early[] = "/dir\0str";
    const char none[] = "/dir";
    char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    /* NUL before the end. */
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(early),
                                 sizeof(early), gaddr(buf), sizeof(buf)),
                     -EINVAL);
    /* No NUL at all within the length. */
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(none), 4,
                                 gaddr(buf), sizeof(buf)), -EINVAL);
    /* Zero length. */
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(none), 0,
                                 gaddr(buf), sizeof(buf)), -EINVAL);
    /* The right length works. */
    assert_int_equal(hypfs_do_op(fs, &c, XEN_HYPFS_OP_read, gaddr(none), 5,
                                 gaddr(buf), sizeof(buf)), 0);
}

/* Rule 3d: the path must be absolute. */
static void test_path_relative(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "dir/str", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(op_read(fs, &c, "", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(op_write_str(fs, &c, "dir/str", "x"), -EINVAL);
    /* -EINVAL for the path comes before -EOPNOTSUPP for the command. */
    assert_int_equal(hypfs_do_op(fs, &c, 9, gaddr("x"), 2, 0, 0), -EINVAL);
}

/* Rule 4: lookup. */
static void test_lookup(void **state)
{
    static const struct {
        const char *path;
        long ret;
    } cases[] = {
        { "/", 0 },                 /* the root */
        { "/dir", 0 },              /* a directory */
        { "/dir/", 0 },             /* a directory, trailing '/' */
        { "/dir/str", 0 },          /* a leaf */
        { "/dir/str/", -ENOENT },   /* a trailing '/' names a directory */
        { "/dir/str/x", -ENOENT },  /* nothing below a leaf */
        { "/dir/missing", -ENOENT },/* missing component */
        { "/missing/str", -ENOENT },/* missing in the middle */
        { "//", -ENOENT },          /* empty component */
        { "/dir//str", -ENOENT },   /* empty component in the middle */
        { "/dir/st", -ENOENT },     /* a prefix of a name is not the name */
        { "/dir/strx", -ENOENT },   /* nor is a longer name */
        { "/empty/", 0 },
        { "/./dir", -ENOENT },      /* no "." or ".." processing */
        { "/dir/../dir", -ENOENT },
    };
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[256];
    size_t i;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
    {
        guest_reset(&g);
        c = caller_control(&g);
        if ( op_read(fs, &c, cases[i].path, buf, sizeof(buf)) != cases[i].ret )
            fail_msg("lookup of \"%s\": expected %ld", cases[i].path,
                     cases[i].ret);
    }
}

/* Rule 5: an unknown command is -EOPNOTSUPP, but only after the lookup. */
static void test_unknown_command(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    const char *p = "/dir/str";
    const char *missing = "/nope";

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(hypfs_do_op(fs, &c, 7, gaddr(p), strlen(p) + 1, 0, 0),
                     -EOPNOTSUPP);
    assert_int_equal(hypfs_do_op(fs, &c, 0xffffffffu, gaddr(p), strlen(p) + 1,
                                 0, 0), -EOPNOTSUPP);
    assert_int_equal(hypfs_do_op(fs, &c, 7, gaddr(missing),
                                 strlen(missing) + 1, 0, 0), -ENOENT);
}

/* Each call has its own path: a long path does not leak into a short one. */
static void test_path_private(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[256];
    char u[8];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/dir/u32/and/some/more", buf, sizeof(buf)),
                     -ENOENT);
    assert_int_equal(read_content(fs, "/dir/u32", u, sizeof(u)), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_right_eperm),
        cmocka_unit_test(test_get_version),
        cmocka_unit_test(test_path_too_long),
        cmocka_unit_test(test_path_fault),
        cmocka_unit_test(test_path_nul),
        cmocka_unit_test(test_path_relative),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_path_private),
    };

    return cmocka_run_group_tests_name("dispatch", tests, setup, teardown);
}
