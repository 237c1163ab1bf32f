/*
 * Dynamic directories: one generated sub-directory per live id, from a
 * template, appearing and vanishing with the embedder's list; enter/exit
 * always balanced; nothing allocated per access survives it; nesting; and
 * byte-wise order of the generated names.
 */
#include <stdlib.h>

#include "harness.h"

/* The embedder's live objects. */
struct pool {
    bool live;
    char name[16];
    char gran[8];
    unsigned int ncpus;
};

#define NPOOLS 16
static struct pool pools[NPOOLS];
static int enters, exits, foreach_fail;
static struct hypfs *fs;

static int pool_enter(const struct hypfs_dyndir *dd)
{
    (void)dd;
    enters++;
    return 0;
}

static void pool_exit(const struct hypfs_dyndir *dd)
{
    (void)dd;
    exits++;
}

static int pool_foreach(const struct hypfs_dyndir *dd,
                        int (*fn)(void *arg, unsigned int id), void *arg)
{
    unsigned int i;
    int ret;

    (void)dd;
    if ( foreach_fail )
        return foreach_fail;
    /* Numeric order, and one id twice: the core sorts and de-duplicates. */
    for ( i = 0; i < NPOOLS; i++ )
        if ( pools[i].live && (ret = fn(arg, i)) )
            return ret;
    if ( pools[3].live && (ret = fn(arg, 3)) )
        return ret;
    return 0;
}

static int pool_find(const struct hypfs_dyndir *dd, unsigned int id,
                     void **data)
{
    (void)dd;
    if ( id >= NPOOLS || !pools[id].live )
        return -ENOENT;
    *data = &pools[id];
    return 0;
}

static const struct hypfs_dyndir_ops pool_ops = {
    .enter = pool_enter,
    .exit = pool_exit,
    .foreach_id = pool_foreach,
    .find_id = pool_find,
};

static int name_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    struct pool *p = hypfs_get_dyndata();

    (void)e;
    assert_int_equal(enters - exits, 1);   /* the lock is held */
    return hypfs_buf_put_string(b, p->name);
}

static int id_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    uint32_t id;

    assert_int_equal(hypfs_get_dynid(&id), 0);
    return hypfs_buf_put_num(b, e, id);
}

static int gran_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    struct pool *p = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, p->gran);
}

static int gran_write(struct hypfs_entry_leaf *leaf, const void *val,
                      unsigned int len)
{
    struct pool *p = hypfs_get_dyndata();

    (void)leaf;
    (void)len;
    if ( p->ncpus )
        return -EBUSY;
    if ( strcmp(val, "cpu") && strcmp(val, "core") && strcmp(val, "socket") )
        return -EINVAL;
    strcpy(p->gran, val);
    return 0;
}

static const struct hypfs_funcs name_funcs = { .read = name_read };
static const struct hypfs_funcs id_funcs = { .read = id_read };
static const struct hypfs_funcs gran_funcs = { .read = gran_read,
                                               .write = gran_write };
static HYPFS_VARSIZE_INIT(t_name, XEN_HYPFS_TYPE_STRING, "name", 0, &name_funcs);
static HYPFS_VARSIZE_INIT(t_gran, XEN_HYPFS_TYPE_STRING, "sched-gran", 8,
                          &gran_funcs);
static struct hypfs_entry_leaf t_id = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "id", .size = 4,
           .funcs = &id_funcs },
};
static HYPFS_DIR_INIT(pool_template, "template");
static HYPFS_DYNDIR_INIT(pool_dir, "cpupool", &pool_template, &pool_ops, 0);

/* A nested dynamic directory: /cpupool/<id>/cpu/<n>/ for n < ncpus. */
static int cpu_foreach(const struct hypfs_dyndir *dd,
                       int (*fn)(void *arg, unsigned int id), void *arg)
{
    struct pool *p = hypfs_get_dyndata();
    unsigned int i;
    int ret;

    (void)dd;
    for ( i = 0; i < p->ncpus; i++ )
        if ( (ret = fn(arg, i)) )
            return ret;
    return 0;
}

static int cpu_find(const struct hypfs_dyndir *dd, unsigned int id, void **data)
{
    struct pool *p = hypfs_get_dyndata();

    (void)dd;
    if ( id >= p->ncpus )
        return -ENOENT;
    *data = p;      /* each cpu instance points back at its pool */
    return 0;
}

static const struct hypfs_dyndir_ops cpu_ops = {
    .foreach_id = cpu_foreach,
    .find_id = cpu_find,
};

static int cpu_pool_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    struct pool *p = hypfs_get_dyndata();

    return hypfs_buf_put_num(b, e, (uint64_t)(p - pools));
}

static const struct hypfs_funcs cpu_pool_funcs = { .read = cpu_pool_read };
static struct hypfs_entry_leaf c_pool = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "pool", .size = 4,
           .funcs = &cpu_pool_funcs },
};
static HYPFS_DIR_INIT(cpu_template, "template");
static HYPFS_DYNDIR_INIT(cpu_dir, "cpu", &cpu_template, &cpu_ops, 0);

static int setup(void **state)
{
    (void)state;
    memset(pools, 0, sizeof(pools));
    pools[0] = (struct pool){ true, "Pool-0", "cpu", 4 };
    pools[2] = (struct pool){ true, "two", "core", 0 };
    pools[10] = (struct pool){ true, "ten", "socket", 2 };
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_add_leaf(&pool_template, &t_name, false), 0);
    assert_int_equal(hypfs_add_leaf(&pool_template, &t_gran, false), 0);
    assert_int_equal(hypfs_add_leaf(&pool_template, &t_id, false), 0);
    assert_int_equal(hypfs_add_leaf(&cpu_template, &c_pool, false), 0);
    assert_int_equal(hypfs_add_dyndir(&pool_template, &cpu_dir, false), 0);
    assert_int_equal(hypfs_add_dyndir(hypfs_root(fs), &pool_dir, false), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    return 0;
}

static void balanced(void)
{
    assert_int_equal(enters, exits);
}

static int ls(const char *path, char *names, size_t len, uint32_t *content_len)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[4096];
    struct xen_hypfs_direntry d;
    long ret;

    guest_reset(&g);
    c = caller_control(&g);
    ret = op_read(fs, &c, path, buf, sizeof(buf));
    balanced();
    if ( ret )
        return (int)ret;
    memcpy(&d, buf, sizeof(d));
    if ( content_len )
        *content_len = d.content_len;
    return listing_names(buf + 12, d.content_len, names, len);
}

static void test_listing_sorted_bytewise(void **state)
{
    char names[256];
    uint32_t len;

    (void)state;
    /* Ids 0, 2, 10 (and a duplicate 3 when live): "10" sorts before "2". */
    assert_int_equal(ls("/cpupool/", names, sizeof(names), &len), 3);
    assert_string_equal(names, "0,10,2");
    assert_int_equal(len, 2 * XEN_HYPFS_DIRENTRY_SIZE(1) +
                          XEN_HYPFS_DIRENTRY_SIZE(2));
    assert_int_equal(ls("/", names, sizeof(names), NULL), 1);
    assert_string_equal(names, "cpupool");
}

static void test_instance_listing(void **state)
{
    char names[256];
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[1024];
    struct xen_hypfs_direntry d;
    size_t off;

    (void)state;
    assert_int_equal(ls("/cpupool/10", names, sizeof(names), NULL), 4);
    assert_string_equal(names, "cpu,id,name,sched-gran");

    /* Every record carries its child's content_len, computed per pool. */
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/cpupool/10/", buf, sizeof(buf)), 0);
    off = 12;
    memcpy(&d, buf + off, sizeof(d));           /* cpu/: 2 records "0","1" */
    assert_int_equal(d.type, XEN_HYPFS_TYPE_DIR);
    assert_int_equal(d.content_len, 2 * XEN_HYPFS_DIRENTRY_SIZE(1));
    off += XEN_HYPFS_DIRENTRY_SIZE(3);
    memcpy(&d, buf + off, sizeof(d));           /* id */
    assert_int_equal(d.content_len, 4);
    off += XEN_HYPFS_DIRENTRY_SIZE(2);
    memcpy(&d, buf + off, sizeof(d));           /* name: "ten" */
    assert_int_equal(d.content_len, 4);
    off += XEN_HYPFS_DIRENTRY_SIZE(4);
    memcpy(&d, buf + off, sizeof(d));           /* sched-gran: "socket" */
    assert_int_equal(d.content_len, 7);
    assert_int_equal(d.max_write_len, 8);
}

static void test_leaves_see_their_instance(void **state)
{
    char out[32];
    uint32_t id;

    (void)state;
    assert_int_equal(read_content(fs, "/cpupool/2/name", out, sizeof(out)), 4);
    assert_string_equal(out, "two");
    assert_int_equal(read_content(fs, "/cpupool/10/name", out, sizeof(out)), 4);
    assert_string_equal(out, "ten");
    assert_int_equal(read_content(fs, "/cpupool/10/id", &id, 4), 4);
    assert_int_equal(id, 10);
    /* Nested: the cpu instance's data is its pool. */
    assert_int_equal(read_content(fs, "/cpupool/10/cpu/1/pool", &id, 4), 4);
    assert_int_equal(id, 10);
    balanced();
}

static void test_bad_ids(void **state)
{
    static const char *const paths[] = {
        "/cpupool/3", "/cpupool/01", "/cpupool/00", "/cpupool/-1",
        "/cpupool/+2", "/cpupool/2x", "/cpupool/ 2", "/cpupool/4294967296",
        "/cpupool/99999999999", "/cpupool/", "/cpupool/2/nope",
        "/cpupool/10/cpu/2", "/cpupool/2/cpu/0", "/cpupool/0/name/",
    };
    char names[64];
    size_t i;

    (void)state;
    for ( i = 0; i < sizeof(paths) / sizeof(paths[0]); i++ )
    {
        long ret = ls(paths[i], names, sizeof(names), NULL);

        if ( i == 9 )           /* "/cpupool/" itself exists */
            assert_true(ret >= 0);
        else if ( ret != -ENOENT )
            fail_msg("%s: %ld", paths[i], ret);
    }
}

static void test_appear_and_vanish(void **state)
{
    char names[256], out[16];

    (void)state;
    pools[7] = (struct pool){ true, "seven", "cpu", 0 };
    assert_int_equal(ls("/cpupool", names, sizeof(names), NULL), 4);
    assert_string_equal(names, "0,10,2,7");
    assert_int_equal(read_content(fs, "/cpupool/7/name", out, sizeof(out)), 6);

    pools[7].live = false;
    assert_int_equal(ls("/cpupool", names, sizeof(names), NULL), 3);
    assert_string_equal(names, "0,10,2");
    assert_int_equal(read_content(fs, "/cpupool/7/name", out, sizeof(out)),
                     -ENOENT);

    /* The duplicate id the embedder reports is listed once. */
    pools[3] = (struct pool){ true, "three", "cpu", 0 };
    assert_int_equal(ls("/cpupool", names, sizeof(names), NULL), 4);
    assert_string_equal(names, "0,10,2,3");
    pools[3].live = false;
    balanced();
}

static void test_write_through_template(void **state)
{
    struct guest g;
    struct hypfs_caller c;

    (void)state;
    guest_reset(&g);
    c = caller_control(&g);
    /* Pool 2 has no cpus: writable; pool 0 has cpus: busy. */
    assert_int_equal(op_write_str(fs, &c, "/cpupool/2/sched-gran", "socket"), 0);
    assert_string_equal(pools[2].gran, "socket");
    assert_int_equal(op_write_str(fs, &c, "/cpupool/0/sched-gran", "core"),
                     -EBUSY);
    assert_string_equal(pools[0].gran, "cpu");
    assert_int_equal(op_write_str(fs, &c, "/cpupool/2/sched-gran", "thread"),
                     -EINVAL);
    assert_string_equal(pools[2].gran, "socket");
    assert_int_equal(op_write_str(fs, &c, "/cpupool/5/sched-gran", "cpu"),
                     -ENOENT);
    balanced();
}

static void test_enumeration_error(void **state)
{
    char names[64];

    (void)state;
    foreach_fail = -EIO;
    assert_int_equal(ls("/cpupool", names, sizeof(names), NULL), -EIO);
    /* Looking up one id does not enumerate. */
    foreach_fail = 0;
    assert_int_equal(ls("/cpupool/0", names, sizeof(names), NULL), 4);
    /* A listing of the root sizes /cpupool/, so the error shows there too. */
    foreach_fail = -ENOMEM;
    assert_int_equal(ls("/", names, sizeof(names), NULL), -ENOMEM);
    foreach_fail = 0;
    balanced();
}

/* No live id at all: an empty listing (the fuzzer's first find). */
static void test_empty(void **state)
{
    struct pool saved[NPOOLS];
    char names[64];
    uint32_t len = 1;

    (void)state;
    memcpy(saved, pools, sizeof(saved));
    memset(pools, 0, sizeof(pools));
    assert_int_equal(ls("/cpupool", names, sizeof(names), &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(names, "");
    memcpy(pools, saved, sizeof(saved));
    balanced();
}

/* Many accesses: nothing may accumulate (LeakSanitizer checks the rest). */
static void test_no_growth_per_access(void **state)
{
    char names[256];
    int i;

    (void)state;
    for ( i = 0; i < 20000; i++ )
    {
        char out[16];

        assert_true(ls("/cpupool/", names, sizeof(names), NULL) > 0);
        assert_int_equal(read_content(fs, "/cpupool/10/cpu/0/pool", out,
                                      sizeof(out)), 4);
    }
    balanced();
}

/* A template cannot serve two dynamic directories, nor be changed by them. */
static void test_template_rules(void **state)
{
    static HYPFS_DYNDIR_INIT(again, "again", &pool_template, &pool_ops, 0);
    static HYPFS_DYNDIR_INIT(no_ops, "noops", &cpu_template, NULL, 0);

    (void)state;
    assert_int_equal(hypfs_add_dyndir(hypfs_root(fs), &again, false), -EINVAL);
    assert_int_equal(hypfs_add_dyndir(hypfs_root(fs), &no_ops, false), -EINVAL);
    /* Nothing can be added below a dynamic directory itself. */
    assert_int_equal(hypfs_dir_new(&pool_dir.dir, "x", NULL), -EINVAL);
}

/*
 * Every uint32_t is an id, 4294967295 included: hypfs_get_dynid() tells
 * "no instance" apart by its return value, not by a reserved id.
 */
static int top_foreach(const struct hypfs_dyndir *dd,
                       int (*fn)(void *arg, unsigned int id), void *arg)
{
    int ret;

    (void)dd;
    if ( (ret = fn(arg, 4294967295u)) )
        return ret;
    return fn(arg, 0);
}

static int top_find(const struct hypfs_dyndir *dd, unsigned int id,
                    void **data)
{
    (void)dd;
    if ( id != 0 && id != 4294967295u )
        return -ENOENT;
    *data = &pools[0];
    return 0;
}

static int top_id_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    uint32_t id = 12345;

    assert_int_equal(hypfs_get_dynid(&id), 0);
    return hypfs_buf_put_num(b, e, id);
}

static int top_none_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    uint32_t id = 12345;

    /* Not inside an instance: -ENOENT, and the id left alone. */
    assert_int_equal(hypfs_get_dynid(&id), -ENOENT);
    assert_int_equal(id, 12345);
    return hypfs_buf_put_num(b, e, 7);
}

static void test_largest_id(void **state)
{
    static const struct hypfs_dyndir_ops top_ops = {
        .foreach_id = top_foreach,
        .find_id = top_find,
    };
    static const struct hypfs_funcs top_id_funcs = { .read = top_id_read };
    static const struct hypfs_funcs top_none_funcs = { .read = top_none_read };
    static struct hypfs_entry_leaf top_id = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "id", .size = 4,
               .funcs = &top_id_funcs },
    };
    static struct hypfs_entry_leaf top_none = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "noinstance", .size = 4,
               .funcs = &top_none_funcs },
    };
    static HYPFS_DIR_INIT(top_template, "template");
    static HYPFS_DYNDIR_INIT(top_dir, "top", &top_template, &top_ops, 0);
    char names[64];
    uint32_t v;

    (void)state;
    assert_int_equal(hypfs_add_leaf(&top_template, &top_id, false), 0);
    assert_int_equal(hypfs_add_dyndir(hypfs_root(fs), &top_dir, false), 0);
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &top_none, false), 0);
    assert_int_equal(ls("/top", names, sizeof(names), NULL), 2);
    assert_string_equal(names, "0,4294967295");
    assert_int_equal(read_content(fs, "/top/4294967295/id", &v, sizeof(v)),
                     4);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(read_content(fs, "/top/0/id", &v, sizeof(v)), 4);
    assert_int_equal(v, 0);
    assert_int_equal(read_content(fs, "/top/4294967296/id", &v, sizeof(v)),
                     -ENOENT);
    assert_int_equal(read_content(fs, "/noinstance", &v, sizeof(v)), 4);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &top_none.e), 0);
    assert_int_equal(hypfs_remove(hypfs_root(fs), &top_dir.dir.e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listing_sorted_bytewise),
        cmocka_unit_test(test_instance_listing),
        cmocka_unit_test(test_leaves_see_their_instance),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_appear_and_vanish),
        cmocka_unit_test(test_write_through_template),
        cmocka_unit_test(test_enumeration_error),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_no_growth_per_access),
        cmocka_unit_test(test_template_rules),
        cmocka_unit_test(test_largest_id),
    };

    return cmocka_run_group_tests_name("dyndir", tests, setup, teardown);
}
