/*
 * XEN_HYPFS_OP_read (SPEC section 1, rule 6): the direntry, the short
 * buffer and retry flow, the content of each leaf type, gzip content, and
 * the exact layout of directory listings.
 */
#include <stdlib.h>
#include <zlib.h>

#include "harness.h"

static struct hypfs *fs;
static unsigned int computed_calls;

static int computed_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    computed_calls++;
    return hypfs_buf_printf(b, "call %u", computed_calls);
}

static const struct hypfs_funcs computed_funcs = { .read = computed_read };
static HYPFS_VARSIZE_INIT(computed, XEN_HYPFS_TYPE_STRING, "computed", 0,
                          &computed_funcs);

static int setup(void **state)
{
    struct hypfs_entry_dir *t, *l, *sub;
    uint8_t u8 = 0xfe;
    uint16_t u16 = 0xbeef;
    uint32_t u32 = 0xdeadbeef;
    uint64_t u64 = 0x0123456789abcdefull;
    int8_t i8 = -2;
    int64_t i64 = -5000000000ll;
    uint8_t b = 1;
    const unsigned char blob[5] = { 0, 1, 2, 0xff, 0 };

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "types", &t), 0);
    assert_int_equal(hypfs_leaf_new(t, "u8", XEN_HYPFS_TYPE_UINT, &u8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "u16", XEN_HYPFS_TYPE_UINT, &u16, 2, 2, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "u32", XEN_HYPFS_TYPE_UINT, &u32, 4, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "u64", XEN_HYPFS_TYPE_UINT, &u64, 8, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "i8", XEN_HYPFS_TYPE_INT, &i8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "i64", XEN_HYPFS_TYPE_INT, &i64, 8, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "bool", XEN_HYPFS_TYPE_BOOL, &b, 1, 1, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "str", XEN_HYPFS_TYPE_STRING, "hello", 6, 32, NULL), 0);
    assert_int_equal(hypfs_leaf_new(t, "blob", XEN_HYPFS_TYPE_BLOB, blob, 5, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new_gzip(t, "config", XEN_HYPFS_TYPE_STRING,
                                         "CONFIG_HYPFS=y\nCONFIG_X=1\n", 27, NULL), 0);
    assert_int_equal(hypfs_add_leaf(t, &computed, false), 0);

    /* Names chosen so that byte-wise order differs from insertion order. */
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "list", &l), 0);
    assert_int_equal(hypfs_leaf_new(l, "b", XEN_HYPFS_TYPE_UINT, &u8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(l, "abcd", XEN_HYPFS_TYPE_STRING, "x", 2, 0, NULL), 0);
    assert_int_equal(hypfs_dir_new(l, "Z", &sub), 0);
    assert_int_equal(hypfs_leaf_new(sub, "inner", XEN_HYPFS_TYPE_UINT, &u8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(l, "abc", XEN_HYPFS_TYPE_UINT, &u32, 4, 4, NULL), 0);
    assert_int_equal(hypfs_leaf_new(l, "10", XEN_HYPFS_TYPE_UINT, &u8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(l, "9", XEN_HYPFS_TYPE_UINT, &u8, 1, 0, NULL), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "empty", NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

/* arg4 below the size of a direntry is -EINVAL, leaf or directory. */
static void test_buffer_below_direntry(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[64];

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/types/u8", buf, 11), -EINVAL);
    assert_int_equal(op_read(fs, &c, "/types/u8", buf, 0), -EINVAL);
    assert_int_equal(op_read(fs, &c, "/list", buf, 11), -EINVAL);
    /* A missing entry is -ENOENT first. */
    assert_int_equal(op_read(fs, &c, "/nope", buf, 0), -ENOENT);
}

/* A short buffer gets the direntry and -ENOBUFS; the retry succeeds. */
static void test_enobufs_then_retry(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[64];
    struct xen_hypfs_direntry d;
    size_t need;

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(op_read(fs, &c, "/types/str", buf, 12), -ENOBUFS);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_STRING);
    assert_int_equal(d.encoding, XEN_HYPFS_ENC_PLAIN);
    assert_int_equal(d.pad, 0);
    assert_int_equal(d.content_len, 6);
    assert_int_equal(d.max_write_len, 32);
    /* Nothing was written after the direntry. */
    assert_int_equal(buf[12], 0xaa);

    need = sizeof(d) + d.content_len;
    assert_int_equal(op_read(fs, &c, "/types/str", buf, need - 1), -ENOBUFS);
    assert_int_equal(buf[12], 0xaa);
    assert_int_equal(op_read(fs, &c, "/types/str", buf, need), 0);
    assert_memory_equal(buf + 12, "hello", 6);
    assert_int_equal(buf[need], 0xaa);

    /* Directories behave the same. */
    assert_int_equal(op_read(fs, &c, "/list", buf, 12), -ENOBUFS);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_DIR);
    assert_true(d.content_len > 0);
}

/* Each type's content: sizes, byte order, strings with their NUL. */
static void test_leaf_types(void **state)
{
    static const struct {
        const char *path;
        uint8_t type;
        uint32_t len;
        uint64_t val;       /* for numbers */
    } cases[] = {
        { "/types/u8", XEN_HYPFS_TYPE_UINT, 1, 0xfe },
        { "/types/u16", XEN_HYPFS_TYPE_UINT, 2, 0xbeef },
        { "/types/u32", XEN_HYPFS_TYPE_UINT, 4, 0xdeadbeef },
        { "/types/u64", XEN_HYPFS_TYPE_UINT, 8, 0x0123456789abcdefull },
        { "/types/i8", XEN_HYPFS_TYPE_INT, 1, (uint8_t)-2 },
        { "/types/i64", XEN_HYPFS_TYPE_INT, 8, (uint64_t)-5000000000ll },
        { "/types/bool", XEN_HYPFS_TYPE_BOOL, 1, 1 },
    };
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[64];
    struct xen_hypfs_direntry d;
    size_t i;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
    {
        uint64_t v = 0;

        guest_reset(&g);
        c = caller_control(&g);
        assert_int_equal(op_read(fs, &c, cases[i].path, buf, sizeof(buf)), 0);
        memcpy(&d, buf, sizeof(d));
        assert_int_equal(d.type, cases[i].type);
        assert_int_equal(d.content_len, cases[i].len);
        memcpy(&v, buf + 12, cases[i].len);   /* little-endian machine */
        assert_int_equal(v, cases[i].val);
    }

    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/types/blob", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_BLOB);
    assert_int_equal(d.content_len, 5);
    assert_memory_equal(buf + 12, "\0\1\2\377\0", 5);
    assert_int_equal(d.max_write_len, 0);
}

/* gzip content is a valid gzip stream of the original. */
static void test_gzip(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[512], out[128];
    struct xen_hypfs_direntry d;
    z_stream z;

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/types/config", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_STRING);
    assert_int_equal(d.encoding, XEN_HYPFS_ENC_GZIP);
    assert_int_equal(d.max_write_len, 0);
    assert_int_equal(buf[12], 0x1f);   /* gzip magic */
    assert_int_equal(buf[13], 0x8b);

    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 32), Z_OK);
    z.next_in = buf + 12;
    z.avail_in = d.content_len;
    z.next_out = out;
    z.avail_out = sizeof(out);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, 27);
    assert_string_equal((char *)out, "CONFIG_HYPFS=y\nCONFIG_X=1\n");
    inflateEnd(&z);

    /* Compressed entries are never writable. */
    assert_int_equal(op_write_str(fs, &c, "/types/config", "x"), -EACCES);
}

/* A computed leaf is rendered once per read and is always current. */
static void test_computed(void **state)
{
    char out[64];
    unsigned int before = computed_calls;

    (void)state;
    assert_int_equal(read_content(fs, "/types/computed", out, sizeof(out)),
                     (long)strlen("call 1") + 1);
    assert_string_equal(out, "call 1");
    assert_int_equal(computed_calls, before + 1);
    read_content(fs, "/types/computed", out, sizeof(out));
    assert_string_equal(out, "call 2");
}

/* The exact record layout of a listing. */
static void test_listing_layout(void **state)
{
    static const struct {
        const char *name;
        uint8_t type;
        uint32_t content_len;
        uint32_t max_write_len;
    } expect[] = {
        /* Byte-wise order: digits < upper case < lower case. */
        { "10", XEN_HYPFS_TYPE_UINT, 1, 0 },
        { "9", XEN_HYPFS_TYPE_UINT, 1, 0 },
        { "Z", XEN_HYPFS_TYPE_DIR, 14 + 8, 0 },   /* "inner": one record */
        { "abc", XEN_HYPFS_TYPE_UINT, 4, 4 },
        { "abcd", XEN_HYPFS_TYPE_STRING, 2, 0 },
        { "b", XEN_HYPFS_TYPE_UINT, 1, 0 },
    };
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[512];
    struct xen_hypfs_direntry d;
    size_t off = 12, i, total = 0;

    (void)state;
    for ( i = 0; i < 6; i++ )
        total += XEN_HYPFS_DIRENTRY_SIZE(strlen(expect[i].name));

    guest_reset(&g);
    c = caller_control(&g);
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(op_read(fs, &c, "/list", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_DIR);
    assert_int_equal(d.max_write_len, 0);
    assert_int_equal(d.content_len, total);

    for ( i = 0; i < 6; i++ )
    {
        struct xen_hypfs_dirlistentry rec;
        size_t namelen = strlen(expect[i].name);
        size_t size = XEN_HYPFS_DIRENTRY_SIZE(namelen), k;

        /* Records are packed: the second one starts at an odd half-word. */
        if ( i == 1 )
            assert_int_equal((off - 12) % 4, 2);
        memcpy(&rec, buf + off, 14);
        assert_int_equal(rec.e.type, expect[i].type);
        assert_int_equal(rec.e.encoding, XEN_HYPFS_ENC_PLAIN);
        assert_int_equal(rec.e.pad, 0);
        assert_int_equal(rec.e.content_len, expect[i].content_len);
        assert_int_equal(rec.e.max_write_len, expect[i].max_write_len);
        assert_int_equal(rec.off_next, i == 5 ? 0 : size);
        assert_string_equal((char *)buf + off + 14, expect[i].name);
        /* The padding after the name is zero. */
        for ( k = 14 + namelen; k < size; k++ )
            assert_int_equal(buf[off + k], 0);
        off += size;
    }
    assert_int_equal(off, 12 + total);
    assert_int_equal(buf[off], 0xaa);
}

/* An empty directory has content_len 0 and fits a bare direntry. */
static void test_empty_dir(void **state)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[12];
    struct xen_hypfs_direntry d;

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/empty/", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.type, XEN_HYPFS_TYPE_DIR);
    assert_int_equal(d.content_len, 0);
}

/* A listing larger than the core's staging buffer, in byte-wise order. */
static void test_big_listing(void **state)
{
    struct hypfs_entry_dir *big;
    struct guest g;
    struct hypfs_caller c;
    struct xen_hypfs_direntry d;
    unsigned char *buf;
    char name[32], prev[32] = "";
    size_t off, n = 0, bufsize = 64 * 1024;
    uint8_t v = 1;
    unsigned int i, perm;

    (void)state;
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "big", &big), 0);
    /* A permutation of 0..999 so that names arrive out of order. */
    for ( i = 0, perm = 0; i < 1000; i++, perm = (perm + 379) % 1000 )
    {
        snprintf(name, sizeof(name), "entry-%u", perm);
        assert_int_equal(hypfs_leaf_new(big, name, XEN_HYPFS_TYPE_UINT, &v, 1,
                                        0, NULL), 0);
    }
    buf = malloc(bufsize);
    assert_non_null(buf);
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/big", buf, bufsize), 0);
    memcpy(&d, buf, sizeof(d));
    assert_true(d.content_len > 4096);
    for ( off = 12;; )
    {
        struct xen_hypfs_dirlistentry rec;
        const char *nm = (const char *)buf + off + 14;

        memcpy(&rec, buf + off, 14);
        assert_true(strcmp(prev, nm) < 0);
        snprintf(prev, sizeof(prev), "%s", nm);
        n++;
        if ( !rec.off_next )
            break;
        off += rec.off_next;
    }
    assert_int_equal(n, 1000);
    assert_int_equal(off + XEN_HYPFS_DIRENTRY_SIZE(strlen(prev)), 12 + d.content_len);
    free(buf);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &big->e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffer_below_direntry),
        cmocka_unit_test(test_enobufs_then_retry),
        cmocka_unit_test(test_leaf_types),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_computed),
        cmocka_unit_test(test_listing_layout),
        cmocka_unit_test(test_empty_dir),
        cmocka_unit_test(test_big_listing),
    };

    return cmocka_run_group_tests_name("read", tests, setup, teardown);
}
