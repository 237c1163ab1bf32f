/*
 * Building trees: name and entry validation, duplicates, removal of static
 * and core-owned entries, detached directories attached later, large
 * directories in any insertion order, and calls from inside callbacks.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "core-internal.h"
#include "hypfs-testing.h"

static struct hypfs *fs;

static int setup(void **state)
{
    (void)state;
    return hypfs_new(&fs);
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

static void test_names(void **state)
{
    char long_name[HYPFS_NAME_MAX + 2];
    static const struct {
        const char *name;
        int ret;
    } cases[] = {
        { "", -EINVAL },
        { ".", -EINVAL },
        { "..", -EINVAL },
        { "a/b", -EINVAL },
        { "/", -EINVAL },
        { "tab\there", -EINVAL },
        { "nl\n", -EINVAL },
        { "del\x7f", -EINVAL },
        { "...", 0 },
        { ".hidden", 0 },
        { "with space", 0 },
        { "sched-gran", 0 },
        { "UTF-8 \xc3\xa9", 0 },
    };
    size_t i;
    uint8_t v = 1;

    (void)state;
    for ( i = 0; i < sizeof(cases) / sizeof(cases[0]); i++ )
        if ( hypfs_leaf_new(hypfs_root(fs), cases[i].name, XEN_HYPFS_TYPE_UINT,
                            &v, 1, 0, NULL) != cases[i].ret )
            fail_msg("name \"%s\"", cases[i].name);
    assert_int_equal(hypfs_leaf_new(hypfs_root(fs), NULL, XEN_HYPFS_TYPE_UINT,
                                    &v, 1, 0, NULL), -EINVAL);

    memset(long_name, 'n', sizeof(long_name));
    long_name[HYPFS_NAME_MAX] = '\0';
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), long_name, NULL), 0);
    long_name[HYPFS_NAME_MAX] = 'n';
    long_name[HYPFS_NAME_MAX + 1] = '\0';
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), long_name, NULL), -EINVAL);
}

static void test_duplicates_and_reuse(void **state)
{
    static uint32_t var = 3;
    static HYPFS_UINT_INIT(stat, "stat", var);
    struct hypfs_entry_dir *a, *b;
    uint32_t v = 0;

    (void)state;
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "dup", &a), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "dup", NULL), -EEXIST);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "dup2", &b), 0);
    assert_int_equal(hypfs_add_leaf(a, &stat, false), 0);
    /* A linked entry cannot be linked twice. */
    assert_int_equal(hypfs_add_leaf(b, &stat, false), -EBUSY);
    assert_int_equal(hypfs_add_leaf(a, &stat, false), -EBUSY);
    /* Removing from the wrong parent fails; from the right one works. */
    assert_int_equal(hypfs_remove(b, &stat.e), -ENOENT);
    assert_int_equal(hypfs_remove(a, &stat.e), 0);
    assert_int_equal(read_content(fs, "/dup/stat", &v, 4), -ENOENT);
    /* A removed static entry can be added again, elsewhere. */
    assert_int_equal(hypfs_add_leaf(b, &stat, false), 0);
    assert_int_equal(read_content(fs, "/dup2/stat", &v, 4), 4);
    assert_int_equal(v, 3);
    /* Removing a directory takes what is below it along. */
    assert_int_equal(hypfs_remove(hypfs_root(fs), &b->e), 0);
    assert_int_equal(read_content(fs, "/dup2/stat", &v, 4), -ENOENT);
    assert_int_equal(hypfs_add_leaf(a, &stat, false), 0);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &a->e), 0);
}

static void test_invalid_entries(void **state)
{
    static uint8_t u8;
    static uint16_t u16;
    static char buf[4] = "abc";
    static char nonul[3] = { 'a', 'b', 'c' };
    static HYPFS_FIXEDSIZE_INIT(bool2, XEN_HYPFS_TYPE_BOOL, "bool2", u16, NULL, 0);
    static HYPFS_FIXEDSIZE_INIT(badtype, 9, "badtype", u8, NULL, 0);
    static struct hypfs_entry_leaf u3 = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "u3", .size = 3 },
        .u.content = buf,
    };
    static struct hypfs_entry_leaf str_nonul = {
        .e = { .type = XEN_HYPFS_TYPE_STRING, .name = "s", .size = 3 },
        .u.content = nonul,
    };
    static struct hypfs_entry_leaf wr_nostorage = {
        .e = { .type = XEN_HYPFS_TYPE_STRING, .name = "w", .size = 0,
               .max_size = 8 },
    };
    static struct hypfs_entry_leaf gzip_rw = {
        .e = { .type = XEN_HYPFS_TYPE_STRING, .encoding = XEN_HYPFS_ENC_GZIP,
               .name = "g", .size = 4, .max_size = 4 },
        .u.content = buf,
    };
    static struct hypfs_entry_leaf gzip_uint = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .encoding = XEN_HYPFS_ENC_GZIP,
               .name = "gu", .size = 1 },
        .u.content = buf,
    };
    static struct hypfs_entry_leaf fixed_maxsize = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "m", .size = 1,
               .max_size = 2 },
        .u.content = buf,
    };
    static struct hypfs_entry_leaf bad_enc = {
        .e = { .type = XEN_HYPFS_TYPE_BLOB, .encoding = 2, .name = "e",
               .size = 1 },
        .u.content = buf,
    };
    static struct hypfs_entry_leaf bad_bool = {
        .e = { .type = XEN_HYPFS_TYPE_BOOL, .name = "b", .size = 1 },
        .u.content = "\x02",
    };
    static struct hypfs_entry_leaf bad_rights = {
        .e = { .type = XEN_HYPFS_TYPE_BLOB, .name = "r", .size = 0,
               .access = 3 },
    };
    static HYPFS_DIR_INIT(leafy_dir, "leafy");
    struct hypfs_entry_leaf *const bad[] = {
        &bool2, &badtype, &u3, &str_nonul, &wr_nostorage, &gzip_rw, &gzip_uint,
        &fixed_maxsize, &bad_enc, &bad_bool, &bad_rights,
    };
    size_t i;
    uint8_t v = 0;

    (void)state;
    for ( i = 0; i < sizeof(bad) / sizeof(bad[0]); i++ )
        if ( hypfs_add_leaf(hypfs_root(fs), bad[i], false) != -EINVAL )
            fail_msg("entry \"%s\" accepted", bad[i]->e.name);
    /* A directory is not a leaf, and a leaf not a directory. */
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs),
                                    (struct hypfs_entry_leaf *)&leafy_dir,
                                    false), -EINVAL);
    assert_int_equal(hypfs_add_dir(hypfs_root(fs),
                                   (struct hypfs_entry_dir *)&bad_bool,
                                   false), -EINVAL);
    assert_int_equal(hypfs_set_access(&bad_bool.e, 3, 0), -EINVAL);
    /* Writable fixed-size leaves need max_size == size. */
    assert_int_equal(hypfs_leaf_new(hypfs_root(fs), "x", XEN_HYPFS_TYPE_UINT,
                                    &v, 1, 4, NULL), -EINVAL);
    assert_int_equal(hypfs_leaf_new(hypfs_root(fs), "x", XEN_HYPFS_TYPE_DIR,
                                    &v, 1, 0, NULL), -EINVAL);
    assert_int_equal(hypfs_leaf_new(hypfs_root(fs), "x", XEN_HYPFS_TYPE_UINT,
                                    NULL, 1, 0, NULL), -EINVAL);
    assert_int_equal(hypfs_leaf_new_gzip(hypfs_root(fs), "x",
                                         XEN_HYPFS_TYPE_UINT, &v, 1, NULL),
                     -EINVAL);
    assert_int_equal(hypfs_leaf_new_gzip(hypfs_root(fs), "x",
                                         XEN_HYPFS_TYPE_STRING, "ab", 2, NULL),
                     -EINVAL);
    /* Nothing of the above is in the tree. */
    assert_int_equal(dir_index(hypfs_root(fs))->nr, 0);
}

/* A detached directory (a template, a subtree built before use). */
static void test_detached(void **state)
{
    struct hypfs_entry_dir *d, *sub;
    uint8_t v = 9, out = 0;
    static HYPFS_DIR_INIT(stat_dir, "static-dir");

    (void)state;
    assert_int_equal(hypfs_dir_new(NULL, "built", &d), 0);
    assert_int_equal(hypfs_dir_new(d, "sub", &sub), 0);
    assert_int_equal(hypfs_leaf_new(sub, "v", XEN_HYPFS_TYPE_UINT, &v, 1, 0,
                                    NULL), 0);
    assert_int_equal(hypfs_add_dir(&stat_dir, d, false), 0);
    assert_int_equal(hypfs_add_dir(hypfs_root(fs), &stat_dir, false), 0);
    assert_int_equal(read_content(fs, "/static-dir/built/sub/v", &out, 1), 1);
    assert_int_equal(out, 9);
    /* Core-owned entries made while attached come from the tree. */
    assert_int_equal(hypfs_leaf_new(sub, "w", XEN_HYPFS_TYPE_UINT, &v, 1, 0,
                                    NULL), 0);
    assert_int_equal(read_content(fs, "/static-dir/built/sub/w", &out, 1), 1);
    /* Removing the static directory frees the core-owned ones below it. */
    assert_int_equal(hypfs_remove(hypfs_root(fs), &stat_dir.e), 0);
    assert_int_equal(read_content(fs, "/static-dir/built/sub/v", &out, 1),
                     -ENOENT);
    /* Detached: no private state left at all. */
    assert_null(stat_dir.priv);
}

/* Thousands of entries in scrambled order: lookups, order, removal. */
/* The uint leaf at @path holds @value, or (@present false) is not there. */
static void assert_leaf(const char *path, uint32_t value, bool present)
{
    uint32_t v = 0;

    if ( present )
    {
        assert_int_equal(read_content(fs, path, &v, 4), 4);
        assert_int_equal(v, value);
    }
    else
        assert_int_equal(read_content(fs, path, &v, 4), -ENOENT);
}

static void test_large_dir(void **state)
{
    enum { N = 20000 };
    struct hypfs_entry_dir *big;
    struct hypfs_entry_leaf **leaves;
    struct guest g;
    struct hypfs_caller c;
    unsigned char *buf;
    size_t bufsize = N * 32 + 12;
    unsigned int i, k;
    uint32_t expect_len = 0;

    (void)state;
    leaves = calloc(N, sizeof(*leaves));
    buf = malloc(bufsize);
    assert_non_null(leaves);
    assert_non_null(buf);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "big", &big), 0);
    for ( i = 0, k = 0; i < N; i++, k = (k + 7919) % N )
    {
        char name[24];

        snprintf(name, sizeof(name), "n%u", k);
        assert_int_equal(hypfs_leaf_new(big, name, XEN_HYPFS_TYPE_UINT, &k, 4,
                                        0, &leaves[k]), 0);
    }
    /* Remove every third entry, then look everything up. */
    for ( i = 0; i < N; i += 3 )
    {
        assert_int_equal(hypfs_remove(big, &leaves[i]->e), 0);
        leaves[i] = NULL;
    }
    for ( i = 0; i < N; i++ )
    {
        char path[32];

        snprintf(path, sizeof(path), "/big/n%u", i);
        assert_leaf(path, i, leaves[i] != NULL);
        if ( leaves[i] )
            expect_len += (uint32_t)XEN_HYPFS_DIRENTRY_SIZE(strlen(path) - 5);
    }
    /* The listing is complete and in order. */
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/big", buf, bufsize), 0);
    {
        struct xen_hypfs_direntry d;
        size_t off = 12, n = 0;
        const char *prev = "";

        memcpy(&d, buf, sizeof(d));
        assert_int_equal(d.content_len, expect_len);
        for ( ;; )
        {
            struct xen_hypfs_dirlistentry rec;
            const char *name = (const char *)buf + off + 14;

            memcpy(&rec, buf + off, 14);
            assert_true(strcmp(prev, name) < 0);
            prev = name;
            n++;
            if ( !rec.off_next )
                break;
            off += rec.off_next;
        }
        assert_int_equal(n, N - (N + 2) / 3);
    }
    /* Add more after a listing (the sorted prefix grows again). */
    for ( i = 0; i < N; i += 3 )
    {
        char name[24];

        snprintf(name, sizeof(name), "n%u", i);
        assert_int_equal(hypfs_leaf_new(big, name, XEN_HYPFS_TYPE_UINT, &i, 4,
                                        0, NULL), 0);
    }
    assert_int_equal(dir_index(big)->nr, N);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &big->e), 0);
    free(leaves);
    free(buf);
}

/*
 * Whether entries the core makes are in the arena.  Without it (an
 * address-space limit: ulimit -v), only if this process really cannot
 * reserve that much address space.
 */
static bool have_arena(void)
{
    void *p;

    if ( core_arena_base() )
        return true;
    p = mmap(NULL, CORE_ARENA_BYTES, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p == MAP_FAILED);
    print_message("no arena here (no room for %zu bytes of address space)\n",
                  CORE_ARENA_BYTES);
    return false;
}

/*
 * Adds and removals in a random mix, the directory growing and shrinking
 * through many incremental growths (entries removed before and after their
 * slot moved, clusters shifted in both tables), every name looked up
 * against what the test knows every 256 steps.  Names are many and similar
 * on purpose.  The entries are in the arena (@mode 0: slots keep 31 bits
 * of the hash), or not (1: the long form, 19 bits, so that slots whose
 * bits agree and whose names do not are common), or either (2: the arena
 * turned on and off every 3,000 steps, a slab block holding about 1,000
 * leaves), in one table.
 */
static void churn(int mode)
{
    enum { NAMES = 40000, OPS = 120000 };
    struct hypfs_entry_dir *dir;
    struct hypfs_entry_leaf **leaf;
    uint64_t rs = 0x2545f4914f6cdd1dull;
    unsigned int live = 0, i, op;
    bool made_ahead = false;
    char *arena = NULL;
    unsigned int in_arena = 0, outside = 0;

    leaf = calloc(NAMES, sizeof(*leaf));
    assert_non_null(leaf);
    hypfs_testing_arena(mode != 1);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "churn", &dir), 0);
    for ( op = 0; op < OPS; op++ )
    {
        unsigned int k;
        char name[24];

        if ( mode == 2 && op % 3000 == 0 )
            hypfs_testing_arena(op % 6000 != 0);
        rs ^= rs >> 12;
        rs ^= rs << 25;
        rs ^= rs >> 27;
        k = (unsigned int)((rs * 2685821657736338717ull) >> 33) % NAMES;
        snprintf(name, sizeof(name), "e%u", k);
        /* Growing for the first half, then mostly shrinking. */
        if ( !leaf[k] && (op < OPS / 2 ? k % 5 : k % 5 == 0) )
        {
            assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT,
                                            &k, 4, 0, &leaf[k]), 0);
            live++;
        }
        else if ( leaf[k] && (op >= OPS / 2 || op % 8 == 0) )
        {
            assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT,
                                            &k, 4, 0, NULL), -EEXIST);
            assert_int_equal(hypfs_remove(dir, &leaf[k]->e), 0);
            leaf[k] = NULL;
            live--;
        }
        made_ahead |= dir_index(dir)->next_slots != NULL;
        if ( op % 256 )
            continue;
        assert_int_equal(dir_index(dir)->nr, live);
        for ( i = 0; i < NAMES; i += 1 + op % 7 )
        {
            char path[32];

            snprintf(path, sizeof(path), "/churn/e%u", i);
            assert_leaf(path, i, leaf[i] != NULL);
        }
    }
    /* A next table was made ahead while growing, and let go after. */
    assert_true(made_ahead);
    assert_null(dir_index(dir)->next_slots);
    /* The entries left are where the mode says. */
    arena = core_arena_base();
    for ( i = 0; i < NAMES; i++ )
        if ( leaf[i] && core_in_arena(arena, leaf[i]) )
            in_arena++;
        else if ( leaf[i] )
            outside++;
    if ( !have_arena() )
        assert_true(!in_arena && outside);
    else
        assert_true(mode == 1 ? !in_arena && outside :
                    mode == 0 ? in_arena && !outside : in_arena && outside);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &dir->e), 0);
    hypfs_testing_arena(true);
    free(leaf);
}

static void test_random_churn(void **state)
{
    (void)state;
    churn(0);
}

static void test_random_churn_long_slots(void **state)
{
    (void)state;
    churn(1);
}

static void test_random_churn_mixed(void **state)
{
    (void)state;
    churn(2);
}

/*
 * A freed tree's slab blocks go back to the arena, counted as given back,
 * and the next tree's entries are made in them, not in more of it.
 */
static void test_arena_reuse(void **state)
{
    enum { N = 30000 };
    struct hypfs *t;
    struct hypfs_entry_dir *dir;
    struct hypfs_entry_leaf *l;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    size_t before = hypfs_mapped_bytes();
    unsigned int i, round;
    char name[24];

    (void)state;
    for ( round = 0; round < 2; round++ )
    {
        assert_int_equal(hypfs_new(&t), 0);
        assert_int_equal(hypfs_dir_new(hypfs_root(t), "d", &dir), 0);
        for ( i = 0; i < N; i++ )
        {
            snprintf(name, sizeof(name), "leaf%u", i);
            assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT,
                                            &i, 4, 0, &l), 0);
            if ( !round )
            {
                lo = (uintptr_t)l < lo ? (uintptr_t)l : lo;
                hi = (uintptr_t)l > hi ? (uintptr_t)l : hi;
            }
            else
                assert_true((uintptr_t)l >= lo && (uintptr_t)l <= hi);
        }
        if ( !have_arena() )
        {
            hypfs_free(t);
            skip();
        }
        assert_true(lo >= (uintptr_t)core_arena_base());
        assert_true(hypfs_mapped_bytes() > before + N * 32);
        hypfs_free(t);
        /* Tables kept for the next directory are not counted. */
        assert_int_equal(hypfs_mapped_bytes(), before);
    }
}

/*
 * A freed directory's tables are kept (alloc.c) and the next directory's
 * are made of them: not zero when taken, so zeroed then (the table made
 * ahead a piece per insertion).  The second tree finds each of its
 * entries and none that it lacks; the kept bytes go and come back.
 */
static void test_table_kept(void **state)
{
    enum { N = 30000 };
    struct hypfs *t;
    struct hypfs_entry_dir *dir;
    size_t kept[2];
    unsigned int i, round;
    char path[32];
    uint32_t v;

    (void)state;
    core_array_kept_drop();
    for ( round = 0; round < 2; round++ )
    {
        assert_int_equal(hypfs_new(&t), 0);
        assert_int_equal(hypfs_dir_new(hypfs_root(t), "d", &dir), 0);
        for ( i = 0; i < N; i++ )
        {
            snprintf(path, sizeof(path), "e%u", i * 7919u % N);
            assert_int_equal(hypfs_leaf_new(dir, path, XEN_HYPFS_TYPE_UINT,
                                            &i, 4, 0, NULL), 0);
        }
        for ( i = 0; i < N + 2000; i++ )
        {
            snprintf(path, sizeof(path), "/d/e%u", i);
            if ( i < N )
            {
                assert_int_equal(read_content(t, path, &v, 4), 4);
                assert_int_equal(v * 7919u % N, i);
            }
            else
                assert_int_equal(read_content(t, path, &v, 4), -ENOENT);
        }
        if ( round )
            /* Made of what the first tree left. */
            assert_true(core_array_kept_bytes() < kept[0]);
        hypfs_free(t);
        kept[round] = core_array_kept_bytes();
        /* 39,226 slots, the last table: kept. */
        assert_true(kept[round] >= 39226 * 8);
    }
    assert_int_equal(kept[1], kept[0]);
}

/*
 * A big directory makes its next table ahead once its load passes 13/16,
 * uses it when it grows, and lets it go if it shrinks back to half.
 */
static void test_next_table(void **state)
{
    enum { N = 21300 };
    struct hypfs_entry_dir *dir;
    struct hypfs_entry_leaf **leaf;
    uint64_t *next;
    unsigned int i;
    char name[24];

    (void)state;
    leaf = calloc(N + 2000, sizeof(*leaf));
    assert_non_null(leaf);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "ahead", &dir), 0);
    for ( i = 0; i < N; i++ )
    {
        snprintf(name, sizeof(name), "a%u", i);
        assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT, &i, 4,
                                        0, &leaf[i]), 0);
    }
    next = dir_index(dir)->next_slots;
    assert_non_null(next);
    assert_true(dir_index(dir)->next_nslots > dir_index(dir)->nslots);
    /* Growing takes it as its new table. */
    for ( ; dir_index(dir)->next_slots; i++ )
    {
        snprintf(name, sizeof(name), "a%u", i);
        assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT, &i, 4,
                                        0, &leaf[i]), 0);
    }
    assert_ptr_equal(dir_index(dir)->slots, next);
    /* Shrinking: no table ahead is kept (none made since; none wanted). */
    while ( i-- > 5000 )
        assert_int_equal(hypfs_remove(dir, &leaf[i]->e), 0);
    assert_null(dir_index(dir)->next_slots);
    for ( i = 0; i < 5000; i += 999 )
    {
        char path[32];

        snprintf(path, sizeof(path), "/ahead/a%u", i);
        assert_leaf(path, i, true);
    }
    assert_int_equal(hypfs_remove(hypfs_root(fs), &dir->e), 0);
    free(leaf);
}

/*
 * The arrays a directory grows: from the heap into a mapping with room
 * (contents kept), grown within the room, moved past it, and given back;
 * what is given back under the writer lock stays mapped until the lock is
 * let go (nothing can read it by then).
 */
static bool mapped(const void *p)
{
    unsigned char v;
    long pg = sysconf(_SC_PAGESIZE);

    return !mincore((void *)((uintptr_t)p & ~(uintptr_t)(pg - 1)), 1, &v);
}

/*
 * The keeping itself: a table up to 1 MiB freed whole is kept and handed
 * out again, zeroed or said to be dirty; a larger one, or one past the
 * 4 MiB kept in all, is given back.
 */
static void test_array_kept(void **state)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), size = 200000, i, in_use;
    size_t len = (size + pg - 1) & ~(pg - 1), len2 = len + 3 * pg;
    unsigned char *p, *q, *big[6];
    bool dirty;

    (void)state;
    core_array_kept_drop();
    assert_int_equal(core_array_kept_bytes(), 0);
    p = core_array_alloc(size);
    assert_non_null(p);
    memset(p, 0xa5, size);
    in_use = hypfs_mapped_bytes();
    core_array_free(p, size);
    assert_int_equal(core_array_kept_bytes(), len);
    /* Kept is not in use: as the C library's free memory. */
    assert_int_equal(hypfs_mapped_bytes(), in_use - len);
    assert_true(mapped(p));
    q = core_array_alloc(size);
    assert_ptr_equal(q, p);
    assert_int_equal(core_array_kept_bytes(), 0);
    assert_int_equal(hypfs_mapped_bytes(), in_use);
    for ( i = 0; i < size; i++ )
        assert_int_equal(q[i], 0);
    memset(q, 0x5a, size);
    core_array_free(q, size);
    q = core_array_alloc_dirty(size, &dirty);
    assert_ptr_equal(q, p);
    assert_true(dirty);
    assert_int_equal(q[size - 1], 0x5a);
    core_array_free(q, size);
    /* Another size is mapped afresh: zero, and not dirty. */
    q = core_array_alloc_dirty(len2, &dirty);
    assert_non_null(q);
    assert_false(dirty);
    assert_ptr_not_equal(q, p);
    core_array_free(q, len2);
    assert_int_equal(core_array_kept_bytes(), len + len2);
    /* Past 1 MiB: given back. */
    q = core_array_alloc((1u << 20) + pg);
    assert_non_null(q);
    core_array_free(q, (1u << 20) + pg);
    assert_false(mapped(q));
    /* Six of 1 MiB: kept while the whole stays within 4 MiB. */
    for ( i = 0; i < 6; i++ )
        assert_non_null(big[i] = core_array_alloc(1u << 20));
    for ( i = 0; i < 6; i++ )
        core_array_free(big[i], 1u << 20);
    assert_int_equal(core_array_kept_bytes(), len + len2 + (3u << 20));
    assert_true(mapped(big[2]));
    assert_false(mapped(big[3]));
    assert_false(mapped(big[5]));
    core_array_kept_drop();
    assert_int_equal(core_array_kept_bytes(), 0);
    assert_false(mapped(big[0]));
    assert_false(mapped(p));
}

static void test_array_room(void **state)
{
    size_t room = 0, sizes[] = { 4096, 20000, 1 << 20, 40u << 20 }, i, k;
    size_t before = hypfs_mapped_bytes(), prev = 0;
    uint32_t *a = NULL;

    (void)state;
    for ( i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++ )
    {
        a = core_array_resize(a, prev, sizes[i], &room);
        assert_non_null(a);
        for ( k = 0; k < prev / 4; k += 997 )
            assert_int_equal(a[k], k);      /* kept */
        for ( k = prev / 4; k < sizes[i] / 4; k += 997 )
            assert_int_equal(a[k], 0);      /* zeroed */
        for ( k = 0; k < sizes[i] / 4; k++ )
            a[k] = (uint32_t)k;
        if ( sizes[i] >= 20000 )
            assert_true(room >= sizes[i]);
        prev = sizes[i];
    }
    /* Under the writer lock the pages stay until it is let go. */
    core_lock_state = WRITE_LOCKED;
    core_array_free_room(a, prev, room);
    assert_true(mapped(a));
    assert_true(mapped((char *)a + prev - 1));
    core_lock_state = UNLOCKED;
    core_unmap_deferred();
    assert_false(mapped(a));
    assert_int_equal(hypfs_mapped_bytes(), before);
}

/* Callbacks may not change the tree: that would deadlock on its lock. */
static int reentrant_result;

static int reentrant_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    struct guest g;
    struct hypfs_caller c;
    char buf[64];

    (void)e;
    guest_reset(&g);
    c = caller_control(&g);
    reentrant_result = hypfs_dir_new(hypfs_root(fs), "from-callback", NULL);
    assert_int_equal(op_read(fs, &c, "/", buf, sizeof(buf)), -EDEADLK);
    return hypfs_buf_put_string(b, "x");
}

static void test_no_reentry(void **state)
{
    static const struct hypfs_funcs funcs = { .read = reentrant_read };
    static HYPFS_VARSIZE_INIT(re, XEN_HYPFS_TYPE_STRING, "re", 0, &funcs);
    char out[4];

    (void)state;
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &re, false), 0);
    assert_int_equal(read_content(fs, "/re", out, sizeof(out)), 2);
    assert_int_equal(reentrant_result, -EDEADLK);
    /* And under the embedder's write lock. */
    hypfs_write_lock(fs);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "locked", NULL), -EDEADLK);
    hypfs_write_unlock(fs);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &re.e), 0);
}

/* A read callback that breaks its type's rules is reported, not served. */
static int bad_render(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put(b, "no NUL", 6);
}

static void test_bad_render(void **state)
{
    static const struct hypfs_funcs funcs = { .read = bad_render };
    static HYPFS_VARSIZE_INIT(br, XEN_HYPFS_TYPE_STRING, "br", 0, &funcs);
    static struct hypfs_entry_leaf bu = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "bu", .size = 4,
               .funcs = &funcs },
    };
    char out[16];

    (void)state;
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &br, false), 0);
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &bu, false), 0);
    assert_int_equal(read_content(fs, "/br", out, sizeof(out)), -EIO);
    assert_int_equal(read_content(fs, "/bu", out, sizeof(out)), -EIO);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &br.e), 0);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &bu.e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_churn_long_slots, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_random_churn_mixed, setup,
                                        teardown),
        cmocka_unit_test(test_arena_reuse),
        cmocka_unit_test(test_table_kept),
        cmocka_unit_test(test_array_kept),
        cmocka_unit_test(test_array_room),
        cmocka_unit_test_setup_teardown(test_next_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_reentry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_render, setup, teardown),
    };

    return cmocka_run_group_tests_name("tree", tests, NULL, NULL);
}
