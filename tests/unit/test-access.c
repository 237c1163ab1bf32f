/*
 * The access-rights matrix: every kind of caller (the control domain, a
 * domain reading its own entries, another domain, a domain owning nothing,
 * a caller without hypfs rights) against every kind of node, for read,
 * write and listing.  What a caller may not read does not exist for it.
 */
#include "harness.h"

static struct hypfs *fs;

/* A dynamic directory of domains 1 and 2, each owning its instance. */
static int dd_foreach(const struct hypfs_dyndir *dd,
                      int (*fn)(void *arg, unsigned int id), void *arg)
{
    int ret;

    (void)dd;
    if ( (ret = fn(arg, 1)) )
        return ret;
    return fn(arg, 2);
}

static int dd_find(const struct hypfs_dyndir *dd, unsigned int id, void **data)
{
    (void)dd;
    *data = NULL;
    return id == 1 || id == 2 ? 0 : -ENOENT;
}

static const struct hypfs_dyndir_ops dd_ops = {
    .foreach_id = dd_foreach,
    .find_id = dd_find,
};

static uint32_t dd_value = 5;
static HYPFS_UINT_INIT_WRITABLE(dd_v, "v", dd_value);
static HYPFS_DIR_INIT(dd_template, "t");
static HYPFS_DYNDIR_INIT(dd_dir, "dd", &dd_template, &dd_ops,
                         HYPFS_DYNDIR_OWNER_IS_ID);

static int setup(void **state)
{
    struct hypfs_entry_dir *root, *secret, *dom, *d1, *d2;

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    root = hypfs_root(fs);
    assert_int_equal(hypfs_set_access(&root->e, HYPFS_RIGHT_ANY, 0), 0);

    mk_leaf(fs, root, "ctl_only", HYPFS_RIGHT_CONTROL, HYPFS_RIGHT_CONTROL);
    mk_leaf(fs, root, "public", HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    mk_leaf(fs, root, "public_rw", HYPFS_RIGHT_ANY, HYPFS_RIGHT_ANY);
    mk_leaf(fs, root, "orphan_owner", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    secret = mk_dir(fs, root, "secret", HYPFS_RIGHT_CONTROL, -1);
    mk_leaf(fs, secret, "inner", HYPFS_RIGHT_ANY, HYPFS_RIGHT_ANY);
    dom = mk_dir(fs, root, "dom", HYPFS_RIGHT_ANY, -1);
    d1 = mk_dir(fs, dom, "1", HYPFS_RIGHT_OWNER, 1);
    mk_leaf(fs, d1, "mine", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    mk_leaf(fs, d1, "ro", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    mk_leaf(fs, d1, "pub", HYPFS_RIGHT_ANY, HYPFS_RIGHT_ANY);
    d2 = mk_dir(fs, dom, "2", HYPFS_RIGHT_OWNER, 2);
    mk_leaf(fs, d2, "mine", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);

    assert_int_equal(hypfs_set_access(&dd_v.e, HYPFS_RIGHT_OWNER,
                                      HYPFS_RIGHT_OWNER), 0);
    assert_int_equal(hypfs_set_access(&dd_template.e, HYPFS_RIGHT_OWNER,
                                      HYPFS_RIGHT_CONTROL), 0);
    assert_int_equal(hypfs_set_access(&dd_dir.dir.e, HYPFS_RIGHT_ANY,
                                      HYPFS_RIGHT_CONTROL), 0);
    assert_int_equal(hypfs_add_leaf(&dd_template, &dd_v, false), 0);
    assert_int_equal(hypfs_add_dyndir(root, &dd_dir, false), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

enum { CTL, D1, D2, D3, NONE, NCALLERS };

static struct hypfs_caller make_caller(int who, struct guest *g)
{
    switch ( who )
    {
    case CTL: return caller_control(g);
    case D1: return caller_domain(g, 1);
    case D2: return caller_domain(g, 2);
    case D3: return caller_domain(g, 3);
    default: return caller_none(g);
    }
}

#define OK 0
#define NOENT (-ENOENT)
#define ACCES (-EACCES)
#define PERM (-EPERM)

static void test_read_matrix(void **state)
{
    static const struct {
        const char *path;
        long ret[NCALLERS];     /* CTL, D1, D2, D3, NONE */
    } cases[] = {
        { "/", { OK, OK, OK, OK, PERM } },
        { "/ctl_only", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/public", { OK, OK, OK, OK, PERM } },
        { "/orphan_owner", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/secret/", { OK, NOENT, NOENT, NOENT, PERM } },
        /* A readable entry below a hidden directory is hidden too. */
        { "/secret/inner", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/dom/", { OK, OK, OK, OK, PERM } },
        { "/dom/1/", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/1/mine", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/1/ro", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/1/pub", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/2/mine", { OK, NOENT, OK, NOENT, PERM } },
        { "/dd/", { OK, OK, OK, OK, PERM } },
        { "/dd/1/", { OK, OK, NOENT, NOENT, PERM } },
        { "/dd/1/v", { OK, OK, NOENT, NOENT, PERM } },
        { "/dd/2/v", { OK, NOENT, OK, NOENT, PERM } },
    };
    size_t i;
    int who;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
        for ( who = 0; who < NCALLERS; who++ )
        {
            struct guest g;
            struct hypfs_caller c;
            unsigned char buf[1024];
            long ret;

            guest_reset(&g);
            c = make_caller(who, &g);
            ret = op_read(fs, &c, cases[i].path, buf, sizeof(buf));
            if ( ret != cases[i].ret[who] )
                fail_msg("read %s as caller %d: %ld, expected %ld",
                         cases[i].path, who, ret, cases[i].ret[who]);
        }
}

static void test_write_matrix(void **state)
{
    static const struct {
        const char *path;
        long ret[NCALLERS];
    } cases[] = {
        { "/ctl_only", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/public", { OK, ACCES, ACCES, ACCES, PERM } },
        { "/public_rw", { OK, OK, OK, OK, PERM } },
        { "/orphan_owner", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/secret/inner", { OK, NOENT, NOENT, NOENT, PERM } },
        { "/dom/1/mine", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/1/ro", { OK, ACCES, NOENT, NOENT, PERM } },
        { "/dom/1/pub", { OK, OK, NOENT, NOENT, PERM } },
        { "/dom/2/mine", { OK, NOENT, OK, NOENT, PERM } },
        { "/dd/1/v", { OK, OK, NOENT, NOENT, PERM } },
        { "/dd/2/v", { OK, NOENT, OK, NOENT, PERM } },
        /* Directories are never writable; hidden ones do not exist. */
        { "/dom/", { ACCES, ACCES, ACCES, ACCES, PERM } },
        { "/dom/1/", { ACCES, ACCES, NOENT, NOENT, PERM } },
    };
    size_t i;
    int who;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
        for ( who = 0; who < NCALLERS; who++ )
        {
            struct guest g;
            struct hypfs_caller c;
            uint32_t v = 40 + (uint32_t)who, got = 0;
            long ret;

            guest_reset(&g);
            c = make_caller(who, &g);
            ret = op_write(fs, &c, cases[i].path, &v, 4);
            if ( ret != cases[i].ret[who] )
                fail_msg("write %s as caller %d: %ld, expected %ld",
                         cases[i].path, who, ret, cases[i].ret[who]);
            if ( !ret )
            {
                assert_int_equal(read_content(fs, cases[i].path, &got, 4), 4);
                assert_int_equal(got, v);
            }
        }
}

/*
 * Listings show exactly the visible children, content_len is their sum, and
 * max_write_len says what this caller may write.
 */
static void test_listing_matrix(void **state)
{
    static const struct {
        const char *path;
        const char *names[NCALLERS - 1];   /* CTL, D1, D2, D3 */
    } cases[] = {
        { "/", { "ctl_only,dd,dom,orphan_owner,public,public_rw,secret",
                 "dd,dom,public,public_rw", "dd,dom,public,public_rw",
                 "dd,dom,public,public_rw" } },
        { "/dom", { "1,2", "1", "2", "" } },
        { "/dom/1", { "mine,pub,ro", "mine,pub,ro", NULL, NULL } },
        { "/dd", { "1,2", "1", "2", "" } },
        { "/dd/2", { "v", NULL, "v", NULL } },
    };
    size_t i;
    int who;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
        for ( who = 0; who < NCALLERS - 1; who++ )
        {
            struct guest g;
            struct hypfs_caller c;
            unsigned char buf[2048];
            struct xen_hypfs_direntry d;
            char names[256];
            size_t off, sum = 0;
            long ret;

            guest_reset(&g);
            c = make_caller(who, &g);
            ret = op_read(fs, &c, cases[i].path, buf, sizeof(buf));
            if ( !cases[i].names[who] )
            {
                assert_int_equal(ret, -ENOENT);
                continue;
            }
            assert_int_equal(ret, 0);
            memcpy(&d, buf, sizeof(d));
            assert_true(listing_names(buf + 12, d.content_len, names,
                                      sizeof(names)) >= 0);
            if ( strcmp(names, cases[i].names[who]) )
                fail_msg("ls %s as caller %d: \"%s\", expected \"%s\"",
                         cases[i].path, who, names, cases[i].names[who]);
            for ( off = 0; off < d.content_len; )
            {
                struct xen_hypfs_dirlistentry rec;
                const char *name = (const char *)buf + 12 + off + 14;

                memcpy(&rec, buf + 12 + off, 14);
                sum += XEN_HYPFS_DIRENTRY_SIZE(strlen(name));
                /* A domain sees "public" as read-only, the control rw. */
                if ( !strcmp(name, "public") )
                    assert_int_equal(rec.e.max_write_len, who == CTL ? 4 : 0);
                if ( !strcmp(name, "public_rw") )
                    assert_int_equal(rec.e.max_write_len, 4);
                if ( !rec.off_next )
                    break;
                off += rec.off_next;
            }
            assert_int_equal(sum, d.content_len);
        }
}

/* A domain's view of its own directory's size counts only what it sees. */
static void test_sizes_per_caller(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[1024];
    struct xen_hypfs_direntry d;
    size_t off = 12, rec = 0;

    (void)state;
    guest_reset(&g);
    c = caller_domain(&g, 1);
    /* In "/dom" domain 1 sees one record, for "1", whose content_len is
     * its three children's records. */
    assert_int_equal(op_read(fs, &c, "/dom", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.content_len, XEN_HYPFS_DIRENTRY_SIZE(1));
    memcpy(&d, buf + off + rec, sizeof(d));
    assert_int_equal(d.content_len, XEN_HYPFS_DIRENTRY_SIZE(4) +
                                    XEN_HYPFS_DIRENTRY_SIZE(3) +
                                    XEN_HYPFS_DIRENTRY_SIZE(2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_matrix),
        cmocka_unit_test(test_write_matrix),
        cmocka_unit_test(test_listing_matrix),
        cmocka_unit_test(test_sizes_per_caller),
    };

    return cmocka_run_group_tests_name("access", tests, setup, teardown);
}
