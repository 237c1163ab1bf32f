/*
 * The filesystem hypfsd serves: what docs/paths.md documents.
 *
 *   /buildinfo/   this build (Xen's paths), readable by every domain
 *   /params/      runtime parameters (params.c), control domain only
 *   /cpupool/<id>/  one directory per live cpupool, control domain only
 *   /domain/<id>/   one directory per live domain, each readable by its
 *                 domain and the control domain (an addition to Xen)
 *
 * /cpupool/ and /domain/ are dynamic directories over the model's lists:
 * their enter hook holds model.lock's reader side for the operation, so
 * the pool or domain a leaf renders cannot go away under it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "buildinfo.h"
#include "changeset.h"
#include "hypfsd.h"

/* ---- /cpupool/<id>/ ---- */

static int pools_enter(const struct hypfs_dyndir *dd)
{
    (void)dd;
    model_read_lock();
    return 0;
}

static void pools_exit(const struct hypfs_dyndir *dd)
{
    (void)dd;
    model_read_unlock();
}

static int pools_foreach(const struct hypfs_dyndir *dd,
                         int (*fn)(void *arg, unsigned int id), void *arg)
{
    size_t i;
    int ret;

    (void)dd;
    for (i = 0; i < model.npools; i++)
        if ((ret = fn(arg, model.pools[i]->id)))
            return ret;
    return 0;
}

static int pools_find(const struct hypfs_dyndir *dd, unsigned int id,
                      void **data)
{
    (void)dd;
    *data = model_find_pool(id);
    return *data ? 0 : -ENOENT;
}

static struct hypfs_gens *pool_gens(const struct hypfs_dyndir *dd,
                                    void *data)
{
    (void)dd;
    return &((struct cpupool *)data)->gens;
}

static const struct hypfs_dyndir_ops pool_ops = {
    .enter = pools_enter,
    .exit = pools_exit,
    .foreach_id = pools_foreach,
    .find_id = pools_find,
    .gens = pool_gens,
};

static int gran_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct cpupool *p = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, gran_name(atomic_load(&p->gran)));
}

/*
 * As in Xen, the granularity changes only while the pool has no cpus, and
 * a value that is not one NUL-terminated name is -EINVAL (the handler
 * judges the bytes: HYPFS_WRITE_RAW_STRING).
 */
static int gran_write(struct hypfs_entry_leaf *leaf, const void *val,
                      unsigned int len)
{
    struct cpupool *p = hypfs_get_dyndata();
    int gran;

    (void)leaf;
    if (!len || memchr(val, 0, len) != (const char *)val + len - 1)
        return -EINVAL;
    gran = gran_parse(val);
    if (gran < 0)
        return -EINVAL;
    if (p->ncpus)
        return -EBUSY;
    atomic_store(&p->gran, gran);
    log_info("cpupool %u: sched-gran set to %s", p->id, gran_name(gran));
    return 0;
}

static int pool_name_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct cpupool *p = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, p->name);
}

static int pool_sched_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct cpupool *p = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, p->sched);
}

static int pool_cpus_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct cpupool *p = hypfs_get_dyndata();
    char cpus[4096];

    (void)e;
    cpus_format(p->cpus, cpus, sizeof(cpus));
    return hypfs_buf_put_string(b, cpus);
}

static const struct hypfs_funcs gran_funcs = {
    gran_read, gran_write, 0, HYPFS_WRITE_RAW_STRING,
};
static const struct hypfs_funcs pool_name_funcs = { .read = pool_name_read };
static const struct hypfs_funcs pool_sched_funcs = { .read = pool_sched_read };
static const struct hypfs_funcs pool_cpus_funcs = { .read = pool_cpus_read };

static HYPFS_VARSIZE_INIT(t_gran, XEN_HYPFS_TYPE_STRING, "sched-gran", 8,
                          &gran_funcs);
static HYPFS_VARSIZE_INIT(t_pool_name, XEN_HYPFS_TYPE_STRING, "name", 0,
                          &pool_name_funcs);
static HYPFS_VARSIZE_INIT(t_pool_sched, XEN_HYPFS_TYPE_STRING, "scheduler", 0,
                          &pool_sched_funcs);
static HYPFS_VARSIZE_INIT(t_pool_cpus, XEN_HYPFS_TYPE_STRING, "cpus", 0,
                          &pool_cpus_funcs);
static HYPFS_DIR_INIT(pool_template, "template");
static HYPFS_DYNDIR_INIT(cpupool_dir, "cpupool", &pool_template, &pool_ops, 0);

/* ---- /domain/<id>/ ---- */

static int domains_foreach(const struct hypfs_dyndir *dd,
                           int (*fn)(void *arg, unsigned int id), void *arg)
{
    size_t i;
    int ret;

    (void)dd;
    for (i = 0; i < model.ndomains; i++)
        if ((ret = fn(arg, model.domains[i]->id)))
            return ret;
    return 0;
}

static int domains_find(const struct hypfs_dyndir *dd, unsigned int id,
                        void **data)
{
    (void)dd;
    *data = model_find_domain(id);
    return *data ? 0 : -ENOENT;
}

static struct hypfs_gens *domain_gens(const struct hypfs_dyndir *dd,
                                      void *data)
{
    (void)dd;
    return &((struct domain *)data)->gens;
}

static const struct hypfs_dyndir_ops domain_ops = {
    .enter = pools_enter,       /* the same lock guards both lists */
    .exit = pools_exit,
    .foreach_id = domains_foreach,
    .find_id = domains_find,
    .gens = domain_gens,
};

static int dom_name_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, d->name);
}

static int dom_uuid_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();
    char uuid[37];

    (void)e;
    uuid_format(d->uuid, uuid);
    return hypfs_buf_put_string(b, uuid);
}

static int dom_vcpus_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    return hypfs_buf_put_num(b, e, d->vcpus);
}

static int dom_memory_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    return hypfs_buf_put_num(b, e, d->memory_kib);
}

static int dom_pool_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    return hypfs_buf_put_num(b, e, d->pool);
}

static int dom_state_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, d->state == DOM_PAUSED ? "paused"
                                                          : "running");
}

static int dom_status_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    const struct domain *d = hypfs_get_dyndata();

    (void)e;
    return hypfs_buf_put_string(b, d->status);
}

/*
 * What the guest says about itself, for the host to read (an agent's
 * "ready", a version): the one entry a domain may write, its own.  Under
 * the tree's writer lock, as every read of it is under its reader lock.
 */
static int dom_status_write(struct hypfs_entry_leaf *leaf, const void *val,
                            unsigned int len)
{
    struct domain *d = hypfs_get_dyndata();

    (void)leaf;
    if (len > sizeof(d->status))
        return -ENOSPC;
    memcpy(d->status, val, len);
    d->status[sizeof(d->status) - 1] = '\0';
    return 0;
}

static const struct hypfs_funcs dom_name_funcs = { .read = dom_name_read };
static const struct hypfs_funcs dom_status_funcs = {
    .read = dom_status_read, .write = dom_status_write,
};
static const struct hypfs_funcs dom_uuid_funcs = { .read = dom_uuid_read };
static const struct hypfs_funcs dom_vcpus_funcs = { .read = dom_vcpus_read };
static const struct hypfs_funcs dom_memory_funcs = { .read = dom_memory_read };
static const struct hypfs_funcs dom_pool_funcs = { .read = dom_pool_read };
static const struct hypfs_funcs dom_state_funcs = { .read = dom_state_read };

#define DOM_LEAF(var, typ, nam, sz, fn) \
    static struct hypfs_entry_leaf var = { \
        HYPFS_INIT_COMMON(typ, XEN_HYPFS_ENC_PLAIN, nam, sz, 0, fn) }

DOM_LEAF(t_dom_name, XEN_HYPFS_TYPE_STRING, "name", 0, &dom_name_funcs);
DOM_LEAF(t_dom_uuid, XEN_HYPFS_TYPE_STRING, "uuid", 0, &dom_uuid_funcs);
DOM_LEAF(t_dom_vcpus, XEN_HYPFS_TYPE_UINT, "vcpus", 4, &dom_vcpus_funcs);
DOM_LEAF(t_dom_memory, XEN_HYPFS_TYPE_UINT, "memory", 8, &dom_memory_funcs);
DOM_LEAF(t_dom_pool, XEN_HYPFS_TYPE_UINT, "cpupool", 4, &dom_pool_funcs);
DOM_LEAF(t_dom_state, XEN_HYPFS_TYPE_STRING, "state", 0, &dom_state_funcs);
static HYPFS_VARSIZE_INIT(t_dom_status, XEN_HYPFS_TYPE_STRING, "guest-status",
                          DOMAIN_STATUS_MAX, &dom_status_funcs);
static HYPFS_DIR_INIT(domain_template, "template");
static HYPFS_DYNDIR_INIT(domain_dir, "domain", &domain_template, &domain_ops,
                         HYPFS_DYNDIR_OWNER_IS_ID);

/* ---- /buildinfo/ and the whole ---- */

/* A core-owned string leaf anyone may read. */
static int public_string(struct hypfs_entry_dir *dir, const char *name,
                         const char *val)
{
    struct hypfs_entry_leaf *leaf;
    int ret = hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_STRING, val,
                             (unsigned int)strlen(val) + 1, 0, &leaf);

    if (!ret)
        hypfs_set_access(&leaf->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    return ret;
}

static int public_uint(struct hypfs_entry_dir *dir, const char *name,
                       uint32_t val)
{
    struct hypfs_entry_leaf *leaf;
    int ret = hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT, &val, sizeof(val),
                             0, &leaf);

    if (!ret)
        hypfs_set_access(&leaf->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    return ret;
}

static int public_dir(struct hypfs_entry_dir *parent, const char *name,
                      struct hypfs_entry_dir **dir)
{
    int ret = hypfs_dir_new(parent, name, dir);

    if (!ret)
        hypfs_set_access(&(*dir)->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    return ret;
}

static int add_buildinfo(struct hypfs_entry_dir *root)
{
    struct hypfs_entry_dir *bi, *ci, *ver;
    struct hypfs_entry_leaf *config;
    int ret;

    if ((ret = public_dir(root, "buildinfo", &bi)) ||
        (ret = public_string(bi, "changeset", HYPFS_CHANGESET)) ||
        (ret = public_dir(bi, "compileinfo", &ci)) ||
        (ret = public_string(ci, "compiler", HYPFS_COMPILER)) ||
        (ret = public_string(ci, "compile_by", HYPFS_COMPILE_BY)) ||
        (ret = public_string(ci, "compile_date", HYPFS_COMPILE_DATE)) ||
        (ret = public_string(ci, "compile_domain", HYPFS_COMPILE_DOMAIN)) ||
        (ret = public_dir(bi, "version", &ver)) ||
        (ret = public_uint(ver, "major", HYPFS_XEN_MAJOR)) ||
        (ret = public_uint(ver, "minor", HYPFS_XEN_MINOR)) ||
        (ret = public_string(ver, "extra", HYPFS_XEN_EXTRA)))
        return ret;
    /* The build configuration, gzip-encoded, as Xen's .config. */
    ret = hypfs_leaf_new_gzip(bi, "config", XEN_HYPFS_TYPE_STRING,
                              HYPFS_BUILD_CONFIG, sizeof(HYPFS_BUILD_CONFIG),
                              &config);
    if (!ret)
        hypfs_set_access(&config->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    return ret;
}

int fstree_build(struct hypfs *fs)
{
    struct hypfs_entry_dir *root = hypfs_root(fs), *params;
    int ret;

    hypfs_set_access(&root->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    ret = add_buildinfo(root);
    if (ret)
        return ret;

    ret = hypfs_dir_new(root, "params", &params);
    if (ret)
        return ret;
    params_add(params);

    hypfs_add_leaf(&pool_template, &t_gran, true);
    hypfs_add_leaf(&pool_template, &t_pool_name, true);
    hypfs_add_leaf(&pool_template, &t_pool_sched, true);
    hypfs_add_leaf(&pool_template, &t_pool_cpus, true);
    hypfs_add_dyndir(root, &cpupool_dir, true);

    /* A domain sees /domain/ with only its own directory in it. */
    hypfs_set_access(&domain_dir.dir.e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&domain_template.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_name.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_uuid.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_vcpus.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_memory.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_pool.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_state.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&t_dom_status.e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    hypfs_add_leaf(&domain_template, &t_dom_name, true);
    hypfs_add_leaf(&domain_template, &t_dom_uuid, true);
    hypfs_add_leaf(&domain_template, &t_dom_vcpus, true);
    hypfs_add_leaf(&domain_template, &t_dom_memory, true);
    hypfs_add_leaf(&domain_template, &t_dom_pool, true);
    hypfs_add_leaf(&domain_template, &t_dom_state, true);
    hypfs_add_leaf(&domain_template, &t_dom_status, true);
    hypfs_add_dyndir(root, &domain_dir, true);
    return 0;
}

/* ---- /test/ (with --test-tree): every kind of entry, for tool tests ---- */

static char test_text[64] = "hello, hypfs";
/* Sizes of /test/types/string_big (its write limit) and blob_big. */
#define TEST_BIG_STRING 16384
#define TEST_BIG_BLOB   9000
static unsigned char test_blob_buf[64] = { 0x00, 0x01, 0x7f, 0x80, 0xff };

int fstree_add_test(struct hypfs *fs)
{
    static const char odd[] = "tab\tnl\ncr\rbell\a esc\x1b hi\x80\xff\xe9 end";
    static const char gz_text[] =
        "This string is stored gzip-encoded, as /buildinfo/config is.\n";
    struct hypfs_entry_dir *t, *types, *deep, *d;
    struct hypfs_entry_leaf *leaf;
    const uint8_t u8 = 200, b = 1;
    const uint16_t u16 = 65000;
    const uint32_t u32 = 4000000000u;
    const uint64_t u64 = 18000000000000000000ull;
    const int8_t i8 = -100;
    const int16_t i16 = -30000;
    const int32_t i32 = -2000000000;
    const int64_t i64 = -9000000000000000000ll;
    int ret, i;

    if ((ret = hypfs_dir_new(hypfs_root(fs), "test", &t)) ||
        (ret = hypfs_dir_new(t, "types", &types)) ||
        (ret = hypfs_leaf_new(types, "u8", XEN_HYPFS_TYPE_UINT, &u8, 1, 1, NULL)) ||
        (ret = hypfs_leaf_new(types, "u16", XEN_HYPFS_TYPE_UINT, &u16, 2, 2, NULL)) ||
        (ret = hypfs_leaf_new(types, "u32", XEN_HYPFS_TYPE_UINT, &u32, 4, 4, NULL)) ||
        (ret = hypfs_leaf_new(types, "u64", XEN_HYPFS_TYPE_UINT, &u64, 8, 8, NULL)) ||
        (ret = hypfs_leaf_new(types, "i8", XEN_HYPFS_TYPE_INT, &i8, 1, 1, NULL)) ||
        (ret = hypfs_leaf_new(types, "i16", XEN_HYPFS_TYPE_INT, &i16, 2, 2, NULL)) ||
        (ret = hypfs_leaf_new(types, "i32", XEN_HYPFS_TYPE_INT, &i32, 4, 4, NULL)) ||
        (ret = hypfs_leaf_new(types, "i64", XEN_HYPFS_TYPE_INT, &i64, 8, 8, NULL)) ||
        (ret = hypfs_leaf_new(types, "bool", XEN_HYPFS_TYPE_BOOL, &b, 1, 1, NULL)) ||
        (ret = hypfs_leaf_new(types, "bool_ro", XEN_HYPFS_TYPE_BOOL, &b, 1, 0, NULL)) ||
        (ret = hypfs_leaf_new(types, "u32_ro", XEN_HYPFS_TYPE_UINT, &u32, 4, 0, NULL)) ||
        (ret = hypfs_leaf_new(types, "string", XEN_HYPFS_TYPE_STRING, test_text,
                              (unsigned int)strlen(test_text) + 1,
                              sizeof(test_text), NULL)) ||
        (ret = hypfs_leaf_new(types, "string_ro", XEN_HYPFS_TYPE_STRING,
                              "read only", 10, 0, NULL)) ||
        (ret = hypfs_leaf_new(types, "string_odd", XEN_HYPFS_TYPE_STRING, odd,
                              sizeof(odd), 0, NULL)) ||
        (ret = hypfs_leaf_new(types, "empty_string", XEN_HYPFS_TYPE_STRING, "",
                              1, 0, NULL)) ||
        (ret = hypfs_leaf_new(types, "blob", XEN_HYPFS_TYPE_BLOB, test_blob_buf,
                              5, sizeof(test_blob_buf), NULL)) ||
        (ret = hypfs_leaf_new(types, "empty_blob", XEN_HYPFS_TYPE_BLOB, NULL, 0,
                              0, NULL)) ||
        (ret = hypfs_leaf_new_gzip(types, "gzip_string", XEN_HYPFS_TYPE_STRING,
                                   gz_text, sizeof(gz_text), NULL)) ||
        (ret = hypfs_leaf_new_gzip(types, "gzip_blob", XEN_HYPFS_TYPE_BLOB,
                                   test_blob_buf, 5, NULL)) ||
        (ret = hypfs_dir_new(t, "empty", NULL)) ||
        (ret = hypfs_dir_new(t, "deep", &deep)))
        return ret;
    /*
     * Values larger than a client's first 4 KiB read, so that every
     * transport's -ENOBUFS retry and large copies are exercised.
     */
    {
        static char big[TEST_BIG_STRING];
        static unsigned char bigblob[TEST_BIG_BLOB];
        size_t off = 0;
        unsigned int n;

        for (n = 0; off + 32 < TEST_BIG_STRING / 3; n++)
            off += (size_t)snprintf(big + off, sizeof(big) - off,
                                    "line %u of a big string\n", n);
        for (n = 0; n < TEST_BIG_BLOB; n++)
            bigblob[n] = (unsigned char)(n * 7 + n / 256);
        if ((ret = hypfs_leaf_new(types, "string_big", XEN_HYPFS_TYPE_STRING,
                                  big, (unsigned int)off + 1,
                                  TEST_BIG_STRING, NULL)) ||
            (ret = hypfs_leaf_new(types, "blob_big", XEN_HYPFS_TYPE_BLOB,
                                  bigblob, TEST_BIG_BLOB, 0, NULL)))
            return ret;
    }
    /* Five levels, each with a leaf, for recursive listings. */
    for (i = 0, d = deep; i < 5; i++) {
        char name[8];
        uint32_t level = (uint32_t)i;

        snprintf(name, sizeof(name), "l%d", i);
        if ((ret = hypfs_dir_new(d, name, &d)) ||
            (ret = hypfs_leaf_new(d, "level", XEN_HYPFS_TYPE_UINT, &level, 4,
                                  0, &leaf)))
            return ret;
    }
    /* Names that sort differently than they were added. */
    for (i = 0; i < 12; i++) {
        static const char *const names[] = {
            "b", "a", "B", "10", "9", "_", "a.b", "a-b", "zz", "Zz", "0", "~",
        };
        uint8_t v = (uint8_t)i;

        if ((ret = hypfs_leaf_new(t, names[i], XEN_HYPFS_TYPE_UINT, &v, 1, 0,
                                  NULL)))
            return ret;
    }
    return 0;
}
