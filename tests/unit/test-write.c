/*
 * XEN_HYPFS_OP_write_contents (SPEC section 1, rule 7): every kind of
 * entry with each of its errors in Xen's order, and after every failure the
 * old value, byte for byte and with its old size.
 */
#include <stdlib.h>

#include "harness.h"

static struct hypfs *fs;

/* Embedder variables behind static leaves. */
static uint32_t static_u32 = 100;
static uint8_t static_flag = 0;
static char static_buf[16] = "init";
static HYPFS_UINT_INIT_WRITABLE(leaf_u32, "static_u32", static_u32);
static HYPFS_BOOL_INIT_WRITABLE(leaf_flag, "static_flag", static_flag);
static HYPFS_VARSIZE_INIT(leaf_buf, XEN_HYPFS_TYPE_STRING, "static_str",
                          sizeof(static_buf), NULL);

/* A runtime parameter with its own parser: "low", "mid" or "high". */
static char level[8] = "mid";
static unsigned int level_writes;

static int level_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, level);
}

static int level_write(struct hypfs_entry_leaf *leaf, const void *val,
                       unsigned int len)
{
    const char *s = val;

    (void)leaf;
    assert_int_equal(s[len - 1], '\0');
    if ( strcmp(s, "low") && strcmp(s, "mid") && strcmp(s, "high") )
        return -EINVAL;
    strcpy(level, s);
    level_writes++;
    return 0;
}

static const struct hypfs_funcs level_funcs = {
    .read = level_read,
    .write = level_write,
};
static HYPFS_VARSIZE_INIT(leaf_level, XEN_HYPFS_TYPE_STRING, "level", 8,
                          &level_funcs);

/* A uint with validation: only even values. */
static uint16_t even = 2;

static int even_write(struct hypfs_entry_leaf *leaf, const void *val,
                      unsigned int len)
{
    uint16_t v;

    (void)leaf;
    assert_int_equal(len, 2);
    memcpy(&v, val, 2);
    if ( v & 1 )
        return -ERANGE;
    even = v;
    return 0;
}

static const struct hypfs_funcs even_funcs = { .write = even_write };
static HYPFS_FIXEDSIZE_INIT(leaf_even, XEN_HYPFS_TYPE_UINT, "even", even,
                            &even_funcs, 1);

/*
 * Xen's runtime-parameter contract: a max_write_len of 7 reported (the
 * size of the buffer its value is shown from), values up to 128 taken.
 */
static char mode[8] = "none";

static int mode_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, mode);
}

static int mode_write(struct hypfs_entry_leaf *leaf, const void *val,
                      unsigned int len)
{
    const char *s = val;

    (void)leaf;
    assert_true(len <= 128);
    if ( !strcmp(s, "disable") || !strcmp(s, "none") )
        strcpy(mode, "none");
    else if ( !strcmp(s, "date") )
        strcpy(mode, "date");
    else
        return -EINVAL;
    return 0;
}

static const struct hypfs_funcs mode_funcs = {
    .read = mode_read, .write = mode_write, .write_max = 128,
};
static HYPFS_VARSIZE_INIT(leaf_mode, XEN_HYPFS_TYPE_STRING, "mode", 7,
                          &mode_funcs);

/* A handler that judges a string's bytes itself (Xen's sched-gran). */
static char gran[8] = "cpu";
static unsigned int gran_calls;

static int gran_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, gran);
}

static int gran_write(struct hypfs_entry_leaf *leaf, const void *val,
                      unsigned int len)
{
    (void)leaf;
    gran_calls++;
    if ( !len || memchr(val, 0, len) != (const char *)val + len - 1 ||
         (strcmp(val, "cpu") && strcmp(val, "core")) )
        return -EINVAL;
    strcpy(gran, val);
    return 0;
}

static const struct hypfs_funcs gran_funcs = {
    .read = gran_read, .write = gran_write, .flags = HYPFS_WRITE_RAW_STRING,
};
static HYPFS_VARSIZE_INIT(leaf_gran, XEN_HYPFS_TYPE_STRING, "gran", 8,
                          &gran_funcs);

static int setup(void **state)
{
    struct hypfs_entry_dir *w;
    uint32_t u32 = 5;
    uint8_t u8 = 9, b = 0;
    int16_t i16 = -3;
    const unsigned char blob[3] = { 1, 2, 3 };

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "w", &w), 0);
    assert_int_equal(hypfs_leaf_new(w, "u32", XEN_HYPFS_TYPE_UINT, &u32, 4, 4, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "u8", XEN_HYPFS_TYPE_UINT, &u8, 1, 1, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "i16", XEN_HYPFS_TYPE_INT, &i16, 2, 2, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "bool", XEN_HYPFS_TYPE_BOOL, &b, 1, 1, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "str", XEN_HYPFS_TYPE_STRING, "abc", 4, 8, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "blob", XEN_HYPFS_TYPE_BLOB, blob, 3, 6, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "ro", XEN_HYPFS_TYPE_STRING, "ro", 3, 0, NULL), 0);
    assert_int_equal(hypfs_leaf_new(w, "big", XEN_HYPFS_TYPE_BLOB, NULL, 0, 4096, NULL), 0);
    assert_int_equal(hypfs_dir_new(w, "sub", NULL), 0);

    hypfs_string_set_reference(&leaf_buf, static_buf);
    leaf_buf.u.write_ptr = static_buf;
    assert_int_equal(hypfs_add_leaf(w, &leaf_u32, false), 0);
    assert_int_equal(hypfs_add_leaf(w, &leaf_flag, false), 0);
    assert_int_equal(hypfs_add_leaf(w, &leaf_buf, false), 0);
    assert_int_equal(hypfs_add_leaf(w, &leaf_level, false), 0);
    assert_int_equal(hypfs_add_leaf(w, &leaf_even, false), 0);
    hypfs_string_set_reference(&leaf_mode, mode);
    hypfs_string_set_reference(&leaf_gran, gran);
    assert_int_equal(hypfs_add_leaf(w, &leaf_mode, false), 0);
    assert_int_equal(hypfs_add_leaf(w, &leaf_gran, false), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

/* Snapshot of an entry's content, to prove a failed write changed nothing. */
struct snap {
    long len;
    unsigned char data[4096];
};

static void take(const char *path, struct snap *s)
{
    s->len = read_content(fs, path, s->data, sizeof(s->data));
    assert_true(s->len >= 0);
}

static void unchanged(const char *path, const struct snap *s)
{
    struct snap now;

    take(path, &now);
    assert_int_equal(now.len, s->len);
    assert_memory_equal(now.data, s->data, (size_t)s->len);
}

/* One write attempt: @data/@len as the control domain, expecting @ret. */
struct wcase {
    const char *what;
    const char *path;
    const void *data;
    size_t len;
    long ret;
    bool fault;         /* make the data unreadable */
};

static void run_cases(const struct wcase *cases, size_t n)
{
    size_t i;

    for ( i = 0; i < n; i++ )
    {
        struct guest g;
        struct hypfs_caller c;
        struct snap before;
        long ret;

        take(cases[i].path, &before);
        guest_reset(&g);
        c = caller_control(&g);
        if ( cases[i].fault )
        {
            g.bad_lo = gaddr(cases[i].data);
            g.bad_hi = g.bad_lo + 1;
        }
        ret = op_write(fs, &c, cases[i].path, cases[i].data, cases[i].len);
        if ( ret != cases[i].ret )
            fail_msg("%s: got %ld, expected %ld", cases[i].what, ret,
                     cases[i].ret);
        if ( ret )
            unchanged(cases[i].path, &before);
        assert_false(g.double_fetch);
    }
}

static void test_not_writable(void **state)
{
    static const struct wcase cases[] = {
        { "read-only leaf", "/w/ro", "x", 2, -EACCES, false },
        { "directory", "/w/sub", "x", 2, -EACCES, false },
        { "root", "/", "x", 2, -EACCES, false },
        /* -EACCES comes before the size and fault checks. */
        { "read-only, too long", "/w/ro", "0123456789", 11, -EACCES, false },
        { "read-only, fault", "/w/ro", "x", 2, -EACCES, true },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_uint_int(void **state)
{
    static const uint64_t big = 0x1122334455667788ull;
    static const uint32_t v32 = 0xcafe;
    static const int16_t vneg = -1234;
    static const struct wcase cases[] = {
        { "u32 longer than max", "/w/u32", &big, 8, -ENOSPC, false },
        { "u32 too long and fault", "/w/u32", &big, 8, -ENOSPC, true },
        { "u32 short", "/w/u32", &big, 2, -EDOM, false },
        { "u32 empty", "/w/u32", &big, 0, -EDOM, false },
        { "u32 short and fault", "/w/u32", &big, 2, -EDOM, true },
        { "u32 fault", "/w/u32", &v32, 4, -EFAULT, true },
        { "u32 ok", "/w/u32", &v32, 4, 0, false },
        { "u8 too long", "/w/u8", &big, 2, -ENOSPC, false },
        { "u8 ok", "/w/u8", &big, 1, 0, false },
        { "i16 short", "/w/i16", &big, 1, -EDOM, false },
        { "i16 ok", "/w/i16", &vneg, 2, 0, false },
    };
    uint32_t u = 0;
    uint8_t u8 = 0;
    int16_t i16 = 0;

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(read_content(fs, "/w/u32", &u, 4), 4);
    assert_int_equal(u, 0xcafe);
    assert_int_equal(read_content(fs, "/w/u8", &u8, 1), 1);
    assert_int_equal(u8, 0x88);
    assert_int_equal(read_content(fs, "/w/i16", &i16, 2), 2);
    assert_int_equal(i16, -1234);
}

static void test_bool(void **state)
{
    static const uint8_t one = 1, two = 2, ff = 0xff;
    static const uint16_t wide = 1;
    static const struct wcase cases[] = {
        { "bool empty", "/w/bool", &one, 0, -EDOM, false },
        { "bool two bytes", "/w/bool", &wide, 2, -EDOM, false },
        /* Bool size is checked before the fault. */
        { "bool two bytes and fault", "/w/bool", &wide, 2, -EDOM, true },
        { "bool fault", "/w/bool", &one, 1, -EFAULT, true },
        { "bool 2", "/w/bool", &two, 1, -EINVAL, false },
        { "bool 0xff", "/w/bool", &ff, 1, -EINVAL, false },
        { "bool 1", "/w/bool", &one, 1, 0, false },
    };
    uint8_t b = 7;

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(read_content(fs, "/w/bool", &b, 1), 1);
    assert_int_equal(b, 1);
}

static void test_string(void **state)
{
    static const struct wcase cases[] = {
        { "longer than max", "/w/str", "123456789", 10, -ENOSPC, false },
        { "too long and fault", "/w/str", "123456789", 10, -ENOSPC, true },
        { "fault", "/w/str", "xy", 3, -EFAULT, true },
        { "no NUL", "/w/str", "xyz", 3, -EINVAL, false },
        { "early NUL", "/w/str", "x\0z", 4, -EINVAL, false },
        { "empty", "/w/str", "", 0, -EINVAL, false },
        { "ok, longer", "/w/str", "1234567", 8, 0, false },
        { "ok, shorter", "/w/str", "z", 2, 0, false },
        { "ok, empty string", "/w/str", "", 1, 0, false },
    };
    char out[16];

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(read_content(fs, "/w/str", out, sizeof(out)), 1);
    assert_string_equal(out, "");
}

static void test_blob(void **state)
{
    static const unsigned char data[8] = { 9, 0, 8, 0, 7, 0, 6, 0 };
    static const struct wcase cases[] = {
        { "longer than max", "/w/blob", data, 7, -ENOSPC, false },
        { "fault", "/w/blob", data, 6, -EFAULT, true },
        { "embedded NULs are data", "/w/blob", data, 6, 0, false },
        { "empty", "/w/blob", data, 0, 0, false },
        { "back to 4", "/w/blob", data, 4, 0, false },
    };
    unsigned char out[8];

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(read_content(fs, "/w/blob", out, sizeof(out)), 4);
    assert_memory_equal(out, data, 4);
}

/* Values above the stack buffer take the heap path. */
static void test_large_value(void **state)
{
    unsigned char *data = malloc(4096), out[4096];
    size_t i;
    struct wcase cases[] = {
        { "4097 bytes", "/w/big", NULL, 4097, -ENOSPC, false },
        { "fault", "/w/big", NULL, 4096, -EFAULT, true },
        { "4096 bytes", "/w/big", NULL, 4096, 0, false },
    };

    (void)state;
    assert_non_null(data);
    for ( i = 0; i < 4096; i++ )
        data[i] = (unsigned char)(i * 7);
    for ( i = 0; i < 3; i++ )
        cases[i].data = data;
    run_cases(cases, 3);
    assert_int_equal(read_content(fs, "/w/big", out, sizeof(out)), 4096);
    assert_memory_equal(out, data, 4096);
    free(data);
}

/* Static leaves write through to the embedder's variables. */
static void test_static_leaves(void **state)
{
    static const uint32_t v = 4242;
    static const uint8_t one = 1;
    static const struct wcase cases[] = {
        { "static u32", "/w/static_u32", &v, 4, 0, false },
        { "static bool", "/w/static_flag", &one, 1, 0, false },
        { "static str too long", "/w/static_str", "0123456789abcdefg", 18,
          -ENOSPC, false },
        { "static str", "/w/static_str", "changed", 8, 0, false },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(static_u32, 4242);
    assert_int_equal(static_flag, 1);
    assert_string_equal(static_buf, "changed");
    assert_int_equal(leaf_buf.e.size, 8);
}

/* A string with its own handler: -ENOSPC, -EFAULT, -EDOM, then its own. */
static void test_custom_string(void **state)
{
    static const struct wcase cases[] = {
        { "too long", "/w/level", "verylongvalue", 14, -ENOSPC, false },
        { "too long and fault", "/w/level", "verylongvalue", 14, -ENOSPC, true },
        { "fault", "/w/level", "low", 4, -EFAULT, true },
        { "no NUL", "/w/level", "low", 3, -EDOM, false },
        { "two strings", "/w/level", "lo\0w", 5, -EDOM, false },
        { "empty", "/w/level", "", 0, -EDOM, false },
        { "handler rejects", "/w/level", "max", 4, -EINVAL, false },
        { "handler rejects empty string", "/w/level", "", 1, -EINVAL, false },
        { "ok", "/w/level", "high", 5, 0, false },
    };
    unsigned int before = level_writes;
    char out[8];

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(level_writes, before + 1);
    assert_int_equal(read_content(fs, "/w/level", out, sizeof(out)), 5);
    assert_string_equal(out, "high");
}

/* A non-string with a handler: the plain checks, then the handler's. */
static void test_custom_uint(void **state)
{
    static const uint16_t odd = 3, ten = 10;
    static const struct wcase cases[] = {
        { "short", "/w/even", &odd, 1, -EDOM, false },
        { "long", "/w/even", &odd, 4, -ENOSPC, false },
        { "fault", "/w/even", &ten, 2, -EFAULT, true },
        { "handler rejects", "/w/even", &odd, 2, -ERANGE, false },
        { "ok", "/w/even", &ten, 2, 0, false },
    };

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(even, 10);
}

/*
 * A handler's own limit above the max_write_len it reports: the report
 * stays, the limit decides -ENOSPC (Xen's console_timestamps: 7 and 128).
 */
static void test_handler_limit(void **state)
{
    static char at_limit[128], past_limit[129];
    static const struct wcase cases[] = {
        { "Xen: disable (8 bytes) into 7", "/w/mode", "disable", 8, 0, false },
        { "Xen: nope-nope", "/w/mode", "nope-nope", 10, -EINVAL, false },
        { "at the handler's limit", "/w/mode", at_limit, 128, -EINVAL, false },
        { "past it: Xen's -ENOSPC", "/w/mode", past_limit, 129, -ENOSPC,
          false },
        { "past it and a fault: size first", "/w/mode", past_limit, 129,
          -ENOSPC, true },
        { "no NUL: still -EDOM", "/w/mode", "date", 4, -EDOM, false },
        { "ok", "/w/mode", "date", 5, 0, false },
    };
    struct xen_hypfs_direntry d;
    unsigned char buf[64];
    struct hypfs_caller c;
    struct guest g;

    (void)state;
    memset(at_limit, 'x', sizeof(at_limit) - 1);
    memset(past_limit, 'x', sizeof(past_limit) - 1);
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/w/mode", buf, sizeof(buf)), 0);
    memcpy(&d, buf, sizeof(d));
    assert_int_equal(d.max_write_len, 7);
}

/* A raw-string handler picks the errno for a malformed string. */
static void test_raw_string_handler(void **state)
{
    static const struct wcase cases[] = {
        { "no NUL: the handler's -EINVAL", "/w/gran", "core", 4, -EINVAL,
          false },
        { "two strings", "/w/gran", "co\0e", 5, -EINVAL, false },
        { "empty", "/w/gran", "", 0, -EINVAL, false },
        { "too long: the core's -ENOSPC", "/w/gran", "sockets!", 9, -ENOSPC,
          false },
        { "fault: the core's -EFAULT", "/w/gran", "core", 5, -EFAULT, true },
        { "ok", "/w/gran", "core", 5, 0, false },
    };
    unsigned int before = gran_calls;

    (void)state;
    run_cases(cases, sizeof(cases) / sizeof(cases[0]));
    /* The handler saw the three malformed values and the good one. */
    assert_int_equal(gran_calls, before + 4);
    assert_string_equal(gran, "core");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_writable),
        cmocka_unit_test(test_uint_int),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_string),
        cmocka_unit_test(test_blob),
        cmocka_unit_test(test_large_value),
        cmocka_unit_test(test_static_leaves),
        cmocka_unit_test(test_custom_string),
        cmocka_unit_test(test_custom_uint),
        cmocka_unit_test(test_handler_limit),
        cmocka_unit_test(test_raw_string_handler),
    };

    return cmocka_run_group_tests_name("write", tests, setup, teardown);
}
