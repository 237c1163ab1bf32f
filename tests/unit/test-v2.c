/*
 * Interface version 2 in the core: read_tree, get_generation, watch and
 * unwatch.  Their argument checks in order, guest faults, read_tree's
 * records against what version 1's read gives the same caller,
 * generations as each kind of caller sees them (nothing moves for what a
 * caller may not read, and the values say nothing about how many hidden
 * changes there were), the embedder's notifications, and the snapshot
 * read_tree promises against a concurrent writer.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "core-internal.h"
#include "hypfs-testing.h"

static struct hypfs *fs;

/* ---- The tree ---- */

/* The embedder's objects behind /dd/<id>, owned by domain <id>. */
struct obj {
    bool live;
    uint32_t v, hidden;
    struct hypfs_gens gens;
};
#define NOBJ 4
static struct obj objs[NOBJ];

static int dd_foreach(const struct hypfs_dyndir *dd,
                      int (*fn)(void *arg, unsigned int id), void *arg)
{
    unsigned int i;
    int ret;

    (void)dd;
    for ( i = 1; i < NOBJ; i++ )
        if ( objs[i].live && (ret = fn(arg, i)) )
            return ret;
    return 0;
}

static int dd_find(const struct hypfs_dyndir *dd, unsigned int id, void **data)
{
    (void)dd;
    if ( id == 0 || id >= NOBJ || !objs[id].live )
        return -ENOENT;
    *data = &objs[id];
    return 0;
}

static struct hypfs_gens *dd_gens(const struct hypfs_dyndir *dd, void *data)
{
    (void)dd;
    return &((struct obj *)data)->gens;
}

static const struct hypfs_dyndir_ops dd_ops = {
    .foreach_id = dd_foreach,
    .find_id = dd_find,
    .gens = dd_gens,
};

static int v_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    struct obj *o = hypfs_get_dyndata();

    return hypfs_buf_put_num(b, e, strcmp(e->name, "v") ? o->hidden : o->v);
}

static int v_write(struct hypfs_entry_leaf *leaf, const void *val,
                   unsigned int len)
{
    struct obj *o = hypfs_get_dyndata();

    (void)len;
    memcpy(strcmp(leaf->e.name, "v") ? &o->hidden : &o->v, val, 4);
    return 0;
}

static const struct hypfs_funcs v_funcs = { .read = v_read, .write = v_write };
static struct hypfs_entry_leaf t_v = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "v", .size = 4, .max_size = 4,
           .funcs = &v_funcs },
};
static struct hypfs_entry_leaf t_hidden = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "hidden", .size = 4,
           .max_size = 4, .funcs = &v_funcs },
};
static HYPFS_DIR_INIT(dd_template, "t");
static HYPFS_DYNDIR_INIT(dd_dir, "dd", &dd_template, &dd_ops,
                         HYPFS_DYNDIR_OWNER_IS_ID);

/* Two values a writer changes together (the snapshot test). */
static uint32_t snap1, snap2;
static HYPFS_UINT_INIT(snap_1, "s1", snap1);
static HYPFS_UINT_INIT(snap_2, "s2", snap2);

/* A leaf whose read callback tries to notify (it must be refused). */
static int notify_from_callback = 1;
static int notifying_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    notify_from_callback = hypfs_notify(fs, "/pub/a");
    return hypfs_buf_put_num(b, e, 1);
}
static const struct hypfs_funcs notifying_funcs = { .read = notifying_read };
static struct hypfs_entry_leaf notifying = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "notifying", .size = 4,
           .funcs = &notifying_funcs },
};

static struct hypfs_entry_dir *own2;

/*
 * /            any
 *   pub/       any: a, b, str (any), secret (control), notifying
 *   ctl/       control: x
 *   own1/      domain 1's: v (its own), hid (control)
 *   own2/      domain 2's: v
 *   dd/<id>/   any; each instance domain <id>'s: v (its own), hidden
 *   snap/      any: s1, s2
 *   many/      any: 600 leaves (listings and walks past one stage)
 */
static int setup(void **state)
{
    struct hypfs_entry_dir *root, *d;
    struct hypfs_entry_leaf *str;
    unsigned int i;

    (void)state;
    memset(objs, 0, sizeof(objs));
    objs[1].live = objs[2].live = true;
    objs[1].v = 11;
    objs[2].v = 22;
    snap1 = snap2 = 0;
    assert_int_equal(hypfs_new(&fs), 0);
    root = hypfs_root(fs);
    assert_int_equal(hypfs_set_access(&root->e, HYPFS_RIGHT_ANY, 0), 0);

    d = mk_dir(fs, root, "pub", HYPFS_RIGHT_ANY, -1);
    mk_leaf(fs, d, "a", HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    mk_leaf(fs, d, "b", HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    assert_int_equal(hypfs_leaf_new(d, "str", XEN_HYPFS_TYPE_STRING, "text", 5,
                                    32, &str), 0);
    mk_leaf(fs, d, "secret", HYPFS_RIGHT_CONTROL,
         HYPFS_RIGHT_CONTROL);
    assert_int_equal(hypfs_add_leaf(d, &notifying, false), 0);
    hypfs_write_lock(fs);
    hypfs_set_access(&str->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    hypfs_set_access(&notifying.e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    hypfs_write_unlock(fs);

    d = mk_dir(fs, root, "ctl", HYPFS_RIGHT_CONTROL, -1);
    mk_leaf(fs, d, "x", HYPFS_RIGHT_CONTROL, HYPFS_RIGHT_CONTROL);

    d = mk_dir(fs, root, "own1", HYPFS_RIGHT_OWNER, 1);
    mk_leaf(fs, d, "v", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    mk_leaf(fs, d, "hid", HYPFS_RIGHT_CONTROL,
         HYPFS_RIGHT_CONTROL);
    own2 = mk_dir(fs, root, "own2", HYPFS_RIGHT_OWNER, 2);
    mk_leaf(fs, own2, "v", HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);

    assert_int_equal(hypfs_set_access(&dd_template.e, HYPFS_RIGHT_OWNER,
                                      HYPFS_RIGHT_CONTROL), 0);
    assert_int_equal(hypfs_set_access(&t_v.e, HYPFS_RIGHT_OWNER,
                                      HYPFS_RIGHT_OWNER), 0);
    assert_int_equal(hypfs_set_access(&t_hidden.e, HYPFS_RIGHT_CONTROL,
                                      HYPFS_RIGHT_CONTROL), 0);
    assert_int_equal(hypfs_set_access(&dd_dir.dir.e, HYPFS_RIGHT_ANY,
                                      HYPFS_RIGHT_CONTROL), 0);
    assert_int_equal(hypfs_add_leaf(&dd_template, &t_v, false), 0);
    assert_int_equal(hypfs_add_leaf(&dd_template, &t_hidden, false), 0);
    assert_int_equal(hypfs_add_dyndir(root, &dd_dir, false), 0);

    d = mk_dir(fs, root, "snap", HYPFS_RIGHT_ANY, -1);
    assert_int_equal(hypfs_set_access(&snap_1.e, HYPFS_RIGHT_ANY, 0), 0);
    assert_int_equal(hypfs_set_access(&snap_2.e, HYPFS_RIGHT_ANY, 0), 0);
    assert_int_equal(hypfs_add_leaf(d, &snap_1, false), 0);
    assert_int_equal(hypfs_add_leaf(d, &snap_2, false), 0);

    d = mk_dir(fs, root, "many", HYPFS_RIGHT_ANY, -1);
    for ( i = 0; i < 600; i++ )
    {
        char name[16];
        uint32_t v = i;
        struct hypfs_entry_leaf *l;

        snprintf(name, sizeof(name), "entry%04u", i);
        assert_int_equal(hypfs_leaf_new(d, name, XEN_HYPFS_TYPE_UINT, &v, 4,
                                        0, &l), 0);
        l->e.access = HYPFS_RIGHT_ANY;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hypfs_free(fs);
    fs = NULL;
    return 0;
}

/* ---- Calls ---- */

static long op_tree(const struct hypfs_caller *c, const char *path, void *buf,
                    size_t len)
{
    return hypfs_do_op(fs, c, XEN_HYPFS_OP_read_tree, gaddr(path),
                       strlen(path) + 1, gaddr(buf), len);
}

/* The generation of @path as @c sees it (through the hypercall). */
static long op_gen(const struct hypfs_caller *c, const char *path,
                   uint64_t *gen)
{
    return hypfs_do_op(fs, c, XEN_HYPFS_OP_get_generation, gaddr(path),
                       strlen(path) + 1, gaddr(gen), sizeof(*gen));
}

/* Its generation, or the error as a value (for before/after tables). */
static uint64_t gen_or_err(const struct hypfs_caller *c, const char *path)
{
    uint64_t g = 0, g2 = 0;
    long ret = op_gen(c, path, &g);

    /* The embedder's function agrees with the hypercall. */
    assert_int_equal(hypfs_get_generation(fs, c, path, &g2), ret);
    if ( ret )
        return (uint64_t)ret;
    assert_true(g == g2);
    assert_true(g != 0);
    return g;
}

/* ---- read_tree against version 1's read ---- */

struct rec {
    struct xen_hypfs_treeentry h;
    const char *path;
    const unsigned char *content;
};

/* Parse and check a read_tree result: framing, padding, total length. */
static size_t parse_tree(const unsigned char *buf, struct rec *recs,
                         size_t max)
{
    struct xen_hypfs_treehdr hdr;
    size_t off = sizeof(hdr), n;

    memcpy(&hdr, buf, sizeof(hdr));
    assert_int_equal(hdr.e.type, XEN_HYPFS_TYPE_DIR);
    assert_true(hdr.nr_entries <= max);
    for ( n = 0; n < hdr.nr_entries; n++ )
    {
        struct rec *r = &recs[n];
        size_t ppad, cpad, i, clen;

        memcpy(&r->h, buf + off, sizeof(r->h));
        assert_int_equal(r->h.pad, 0);
        r->path = (const char *)buf + off + sizeof(r->h);
        assert_int_equal(strlen(r->path) + 1, r->h.path_len);
        ppad = XEN_HYPFS_TREE_PAD(r->h.path_len);
        for ( i = r->h.path_len; i < ppad; i++ )
            assert_int_equal(r->path[i], 0);
        clen = r->h.e.type == XEN_HYPFS_TYPE_DIR ? 0 : r->h.e.content_len;
        cpad = XEN_HYPFS_TREE_PAD(clen);
        r->content = buf + off + sizeof(r->h) + ppad;
        for ( i = clen; i < cpad; i++ )
            assert_int_equal(r->content[i], 0);
        assert_int_equal(r->h.rec_len, sizeof(r->h) + ppad + cpad);
        /* Depth is the number of components of the relative path. */
        {
            unsigned int depth = r->path[0] ? 1 : 0;
            const char *p;

            for ( p = r->path; *p; p++ )
                depth += *p == '/';
            assert_int_equal(r->h.depth, depth);
        }
        off += r->h.rec_len;
    }
    assert_int_equal(off - sizeof(hdr), hdr.e.content_len);
    return n;
}

static void join(char *out, const char *base, const char *rel)
{
    size_t bl = strlen(base);

    while ( bl > 1 && base[bl - 1] == '/' )
        bl--;
    if ( !*rel )
        snprintf(out, XEN_HYPFS_MAX_PATHLEN, "%.*s", (int)bl, base);
    else if ( bl == 1 )
        snprintf(out, XEN_HYPFS_MAX_PATHLEN, "/%s", rel);
    else
        snprintf(out, XEN_HYPFS_MAX_PATHLEN, "%.*s/%s", (int)bl, base, rel);
}

/* Version 1's walk: every path the caller can read, in listing order. */
static void walk_v1(const struct hypfs_caller *c, const char *path,
                    char (*paths)[XEN_HYPFS_MAX_PATHLEN], size_t *n)
{
    static unsigned char buf[64 * 1024];
    struct xen_hypfs_direntry d;
    unsigned char *content;
    size_t off = 0;

    assert_int_equal(op_read(fs, c, path, buf, sizeof(buf)), 0);
    join(paths[(*n)++], path, "");
    memcpy(&d, buf, sizeof(d));
    if ( d.type != XEN_HYPFS_TYPE_DIR )
        return;
    content = malloc(d.content_len + 1);
    assert_non_null(content);
    memcpy(content, buf + sizeof(d), d.content_len);
    while ( off < d.content_len )
    {
        struct xen_hypfs_dirlistentry rec;
        char child[XEN_HYPFS_MAX_PATHLEN];

        memcpy(&rec, content + off, sizeof(rec.e) + sizeof(rec.off_next));
        join(child, path, (const char *)content + off +
                          XEN_HYPFS_DIRENTRY_NAME_OFF);
        walk_v1(c, child, paths, n);
        if ( !rec.off_next )
            break;
        off += rec.off_next;
    }
    free(content);
}

/*
 * read_tree of @path as @c: each record is what read gives @c for that
 * path, and the records are exactly version 1's walk, in its order.
 */
static size_t tree_matches_v1(const struct hypfs_caller *c, const char *path)
{
    static unsigned char tree[1 << 20];
    static unsigned char one[64 * 1024];
    static struct rec recs[2048];
    static char paths[2048][XEN_HYPFS_MAX_PATHLEN];
    size_t n, np = 0, i;

    assert_int_equal(op_tree(c, path, tree, sizeof(tree)), 0);
    n = parse_tree(tree, recs, 2048);
    walk_v1(c, path, paths, &np);
    assert_int_equal(n, np);
    for ( i = 0; i < n; i++ )
    {
        char full[XEN_HYPFS_MAX_PATHLEN];
        struct xen_hypfs_direntry d;
        uint64_t g;

        join(full, path, recs[i].path);
        assert_string_equal(full, paths[i]);
        assert_int_equal(op_read(fs, c, full, one, sizeof(one)), 0);
        memcpy(&d, one, sizeof(d));
        assert_int_equal(d.type, recs[i].h.e.type);
        assert_int_equal(d.encoding, recs[i].h.e.encoding);
        assert_int_equal(d.content_len, recs[i].h.e.content_len);
        assert_int_equal(d.max_write_len, recs[i].h.e.max_write_len);
        if ( d.type != XEN_HYPFS_TYPE_DIR )
            assert_memory_equal(one + sizeof(d), recs[i].content,
                                d.content_len);
        /* And its generation is what get_generation says. */
        assert_int_equal(op_gen(c, full, &g), 0);
        assert_true(g == recs[i].h.gen);
    }
    return n;
}

static void test_tree_is_v1_for_every_caller(void **state)
{
    struct guest g;
    struct hypfs_caller ctl, d1, d2, d3;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    d1 = caller_domain(&g, 1);
    d2 = caller_domain(&g, 2);
    d3 = caller_domain(&g, 3);
    assert_true(tree_matches_v1(&ctl, "/") > 600);
    assert_true(tree_matches_v1(&d1, "/") < tree_matches_v1(&ctl, "/"));
    tree_matches_v1(&d2, "/");
    tree_matches_v1(&d3, "/");
    tree_matches_v1(&ctl, "/pub");
    tree_matches_v1(&d1, "/pub/");
    tree_matches_v1(&d1, "/dd");
    tree_matches_v1(&d1, "/dd/1");
    tree_matches_v1(&ctl, "/dd/2/");
    tree_matches_v1(&d1, "/pub/str");
    tree_matches_v1(&ctl, "/many/entry0007");
    /* Hidden: a domain's tree of / has none of what it cannot read. */
    /* /, pub/ and its 4, dd/ (none of it its own), snap/ and 2, many/ */
    assert_int_equal(tree_matches_v1(&d3, "/"),
                     1 + 1 + 4 + 1 + 1 + 2 + 1 + 600);
}

/* ---- Argument checks, in order ---- */

static void test_read_tree_checks(void **state)
{
    unsigned char buf[1024];
    struct xen_hypfs_treehdr hdr;
    struct guest g;
    struct hypfs_caller ctl, d1, none;
    const char *bad = "pub";
    char nonul[4] = { '/', 'p', 'u', 'b' };

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    d1 = caller_domain(&g, 1);
    none = caller_none(&g);
    /* No right: -EPERM before anything, bad arguments or not. */
    assert_int_equal(op_tree(&none, "/pub", buf, sizeof(buf)), -EPERM);
    assert_int_equal(hypfs_do_op(fs, &none, XEN_HYPFS_OP_read_tree, 0, 5000,
                                 0, 0), -EPERM);
    assert_int_equal(g.accesses, 0);
    /* The path: length, NUL, leading '/'. */
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_read_tree, gaddr("/"),
                                 XEN_HYPFS_MAX_PATHLEN + 1, gaddr(buf), 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_read_tree, gaddr("/"),
                                 0, gaddr(buf), 0), -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_read_tree,
                                 gaddr(nonul), sizeof(nonul), gaddr(buf), 0),
                     -EINVAL);
    assert_int_equal(op_tree(&ctl, bad, buf, 0), -EINVAL);
    /* The lookup before the buffer's size. */
    assert_int_equal(op_tree(&ctl, "/nope", buf, 0), -ENOENT);
    assert_int_equal(op_tree(&d1, "/ctl", buf, 0), -ENOENT);
    assert_int_equal(op_tree(&d1, "/own2", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(op_tree(&ctl, "/pub/a/", buf, sizeof(buf)), -ENOENT);
    assert_int_equal(op_tree(&ctl, "/pub", buf, sizeof(hdr) - 1), -EINVAL);
    /* Too small: the header says how much the records need. */
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(op_tree(&ctl, "/pub", buf, sizeof(hdr)), -ENOBUFS);
    memcpy(&hdr, buf, sizeof(hdr));
    assert_int_equal(hdr.nr_entries, 6);
    assert_true(hdr.e.content_len > 0 &&
                hdr.e.content_len + sizeof(hdr) <= sizeof(buf));
    assert_int_equal(op_tree(&ctl, "/pub", buf,
                             sizeof(hdr) + hdr.e.content_len - 1), -ENOBUFS);
    {
        struct xen_hypfs_treehdr again;

        memcpy(&again, buf, sizeof(again));
        assert_memory_equal(&again, &hdr, sizeof(hdr));
    }
    assert_int_equal(op_tree(&ctl, "/pub", buf,
                             sizeof(hdr) + hdr.e.content_len), 0);
    /* A domain's size is its own: fewer entries. */
    assert_int_equal(op_tree(&d1, "/pub", buf, sizeof(hdr)), -ENOBUFS);
    memcpy(&hdr, buf, sizeof(hdr));
    assert_int_equal(hdr.nr_entries, 5);
}

static void test_generation_checks(void **state)
{
    struct guest g;
    struct hypfs_caller ctl, d1, none;
    uint64_t gen = 0;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    d1 = caller_domain(&g, 1);
    none = caller_none(&g);
    assert_int_equal(op_gen(&none, "/", &gen), -EPERM);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_generation,
                                 gaddr("x"), 2, gaddr(&gen), 8), -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_generation,
                                 gaddr("/nope"), 6, gaddr(&gen), 0), -ENOENT);
    assert_int_equal(op_gen(&d1, "/pub/secret", &gen), -ENOENT);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_get_generation,
                                 gaddr("/"), 2, gaddr(&gen), 7), -EINVAL);
    assert_true(gen == 0);
    assert_int_equal(op_gen(&ctl, "/", &gen), 0);
    assert_true(gen != 0);
    assert_int_equal(hypfs_get_generation(fs, &none, "/", &gen), -EPERM);
    assert_int_equal(hypfs_get_generation(fs, &ctl, "pub", &gen), -EINVAL);
    assert_int_equal(hypfs_get_generation(fs, &ctl, "/nope", &gen), -ENOENT);
}

/* ---- Watches ---- */

static struct {
    int calls, unwatch_calls, ret;
    uint32_t domid;
    char path[XEN_HYPFS_MAX_PATHLEN];
    uint64_t token, known, gen;
} w;

static int w_watch(void *arg, const struct hypfs_caller *c, const char *path,
                   uint64_t token, uint64_t known, uint64_t gen)
{
    assert_ptr_equal(arg, &w);
    w.calls++;
    w.domid = c->domid;
    snprintf(w.path, sizeof(w.path), "%s", path);
    w.token = token;
    w.known = known;
    w.gen = gen;
    return w.ret;
}

static int w_unwatch(void *arg, const struct hypfs_caller *c, uint64_t token)
{
    assert_ptr_equal(arg, &w);
    w.unwatch_calls++;
    w.domid = c->domid;
    w.token = token;
    return w.ret;
}

static const struct hypfs_watch_ops w_ops = { w_watch, w_unwatch };

static long op_watch(const struct hypfs_caller *c, const char *path,
                     uint64_t token, uint64_t known)
{
    return hypfs_do_op(fs, c, XEN_HYPFS_OP_watch, gaddr(path),
                       strlen(path) + 1, token, known);
}

static void test_watch_checks(void **state)
{
    struct guest g;
    struct hypfs_caller ctl, d1, none;
    uint64_t gen;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    d1 = caller_domain(&g, 1);
    none = caller_none(&g);
    memset(&w, 0, sizeof(w));

    /* Without an embedder that delivers: -EOPNOTSUPP, after the lookup. */
    assert_int_equal(op_watch(&none, "/", 1, 0), -EPERM);
    assert_int_equal(op_watch(&ctl, "/nope", 1, 0), -ENOENT);
    assert_int_equal(op_watch(&ctl, "/", 1, 0), -EOPNOTSUPP);
    assert_int_equal(hypfs_do_op(fs, &none, XEN_HYPFS_OP_unwatch, 0, 0, 1, 0),
                     -EPERM);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_unwatch, 1, 0, 1, 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_unwatch, 0, 1, 1, 0),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_unwatch, 0, 0, 1, 1),
                     -EINVAL);
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_unwatch, 0, 0, 1, 0),
                     -EOPNOTSUPP);

    hypfs_set_watch_ops(fs, &w_ops, &w);
    /* A path the caller cannot see: the embedder hears nothing. */
    assert_int_equal(op_watch(&d1, "/ctl/x", 7, 0), -ENOENT);
    assert_int_equal(op_watch(&d1, "/own2", 7, 0), -ENOENT);
    assert_int_equal(w.calls, 0);
    /* The embedder gets the caller, path, token, known and current. */
    assert_int_equal(op_watch(&d1, "/own1/", 0xfeedull << 32, 5), 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.domid, 1);
    assert_string_equal(w.path, "/own1/");
    assert_true(w.token == 0xfeedull << 32);
    assert_true(w.known == 5);
    assert_int_equal(op_gen(&d1, "/own1", &gen), 0);
    assert_true(w.gen == gen);
    /* Its errors are the caller's; a positive one is a bug: -EIO. */
    w.ret = -ENOSPC;
    assert_int_equal(op_watch(&d1, "/", 1, 0), -ENOSPC);
    w.ret = 3;
    assert_int_equal(op_watch(&d1, "/", 1, 0), -EIO);
    w.ret = -ENOENT;
    assert_int_equal(hypfs_do_op(fs, &d1, XEN_HYPFS_OP_unwatch, 0, 0, 9, 0),
                     -ENOENT);
    assert_int_equal(w.unwatch_calls, 1);
    assert_true(w.token == 9);
    w.ret = 0;
    /* unwatch needs no path: the watched one may be gone. */
    assert_int_equal(hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_unwatch, 0, 0, 4, 0),
                     0);
    assert_int_equal(w.unwatch_calls, 2);
    assert_int_equal(g.accesses > 0, 1);
}

/* ---- Guest faults ---- */

struct fop {
    const char *what;
    unsigned int cmd;
    const char *path;
    uint64_t a3, a4;        /* a3 0: the read buffer */
    long ok;
};

static void inject(const struct fop *op)
{
    static unsigned char out[256 * 1024];
    int n;

    for ( n = 1;; n++ )
    {
        struct guest g;
        struct hypfs_caller c;
        int calls = w.calls;
        long ret;

        guest_reset(&g);
        g.fail_at = n;
        c = caller_control(&g);
        ret = hypfs_do_op(fs, &c, op->cmd, gaddr(op->path),
                          strlen(op->path) + 1, op->a3 ? op->a3 : gaddr(out),
                          op->a4);
        assert_false(g.double_fetch);
        if ( g.accesses < n )
        {
            if ( ret != op->ok )
                fail_msg("%s: %ld after %d accesses", op->what, ret, n - 1);
            return;
        }
        if ( ret != -EFAULT )
            fail_msg("%s: access %d failed, got %ld", op->what, n, ret);
        /* A failed watch was never made. */
        assert_int_equal(w.calls, calls);
    }
}

static void test_faults(void **state)
{
    const struct fop ops[] = {
        { "read_tree /", XEN_HYPFS_OP_read_tree, "/", 0, 256 * 1024, 0 },
        { "read_tree /many, short", XEN_HYPFS_OP_read_tree, "/many", 0, 9000,
          -ENOBUFS },
        { "read_tree leaf", XEN_HYPFS_OP_read_tree, "/pub/str", 0, 100, 0 },
        { "get_generation", XEN_HYPFS_OP_get_generation, "/pub", 0, 8, 0 },
        { "watch", XEN_HYPFS_OP_watch, "/pub", 1, 0, 0 },
    };
    size_t i;

    (void)state;
    memset(&w, 0, sizeof(w));
    hypfs_set_watch_ops(fs, &w_ops, &w);
    for ( i = 0; i < sizeof(ops) / sizeof(ops[0]); i++ )
        inject(&ops[i]);
    assert_true(w.calls > 0);
}

/* ---- Bounds ---- */

static void test_tree_bounds(void **state)
{
    static unsigned char buf[64 * 1024];
    struct hypfs_entry_dir *d = hypfs_root(fs);
    struct guest g;
    struct hypfs_caller ctl;
    char name[256], path[2048] = "";
    unsigned int i;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    /* Four names of 250: /a.../b.../c.../d... is 1004 bytes, fine ... */
    for ( i = 0; i < 4; i++ )
    {
        memset(name, 'a' + (int)i, 250);
        name[250] = '\0';
        assert_int_equal(hypfs_dir_new(d, name, &d), 0);
        strcat(path, "/");
        strcat(path, name);
    }
    assert_int_equal(op_tree(&ctl, path, buf, sizeof(buf)), 0);
    /* ... but a child of 30 more could not be named by anyone. */
    memset(name, 'e', 30);
    name[30] = '\0';
    assert_int_equal(hypfs_dir_new(d, name, NULL), 0);
    assert_int_equal(op_tree(&ctl, path, buf, sizeof(buf)), -ENAMETOOLONG);
    assert_int_equal(op_tree(&ctl, "/", buf, sizeof(buf)), -ENAMETOOLONG);

    /* Depth: 127 levels below the path are walked, not 128. */
    teardown(NULL);
    setup(NULL);
    d = hypfs_root(fs);
    for ( i = 0; i < 127; i++ )
        assert_int_equal(hypfs_dir_new(d, "d", &d), 0);
    assert_int_equal(op_tree(&ctl, "/", buf, sizeof(buf)), 0);
    assert_int_equal(hypfs_dir_new(d, "d", NULL), 0);
    assert_int_equal(op_tree(&ctl, "/", buf, sizeof(buf)), -ELOOP);
    assert_int_equal(op_tree(&ctl, "/d", buf, sizeof(buf)), 0);
}

/* ---- Generations as each caller sees them ---- */

#define NCALLERS 4
#define NPATHS 12
static const char *const watched[NPATHS] = {
    "/", "/pub", "/pub/a", "/pub/b", "/own1", "/own1/v", "/own2", "/dd",
    "/dd/1", "/dd/1/v", "/dd/2", "/dd/3",
};

struct seen {
    uint64_t v[NCALLERS][NPATHS];
};

static struct guest gg;
static struct hypfs_caller callers[NCALLERS];

static void callers_init(void)
{
    guest_reset(&gg);
    callers[0] = caller_control(&gg);
    callers[1] = caller_domain(&gg, 1);
    callers[2] = caller_domain(&gg, 2);
    callers[3] = caller_domain(&gg, 3);
}

static void look(struct seen *s)
{
    unsigned int c, p;

    for ( c = 0; c < NCALLERS; c++ )
        for ( p = 0; p < NPATHS; p++ )
            s->v[c][p] = gen_or_err(&callers[c], watched[p]);
}

/*
 * @moved: for each caller, the paths whose generation must have moved
 * (space-separated, each followed by a space); every other must not.
 */
static void expect_moved(const char *what, const struct seen *before,
                         const char *const moved[NCALLERS])
{
    struct seen after;
    unsigned int c, p;

    look(&after);
    for ( c = 0; c < NCALLERS; c++ )
        for ( p = 0; p < NPATHS; p++ )
        {
            char key[64];
            bool want, got = after.v[c][p] != before->v[c][p];

            snprintf(key, sizeof(key), " %s ", watched[p]);
            want = strstr(moved[c], key) != NULL;
            if ( want != got )
                fail_msg("%s: caller %u, %s: %s", what, c, watched[p],
                         got ? "moved" : "did not move");
        }
}

static void write_u32(const struct hypfs_caller *c, const char *path,
                      uint32_t v)
{
    assert_int_equal(op_write(fs, c, path, &v, sizeof(v)), 0);
}

#define STEP(what, action, m0, m1, m2, m3) \
    do { \
        struct seen before_; \
        const char *const moved_[NCALLERS] = { m0, m1, m2, m3 }; \
        look(&before_); \
        action; \
        expect_moved(what, &before_, moved_); \
    } while ( 0 )

static uint32_t visible_v = 3;
/* Added to /dd's template while it is in the tree. */
static struct hypfs_entry_leaf t_later = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "later", .size = 4,
           .access = HYPFS_RIGHT_OWNER },
    .u.content = &visible_v,
};
static struct hypfs_entry_leaf t_ctl = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "ctl", .size = 4,
           .access = HYPFS_RIGHT_CONTROL },
    .u.content = &visible_v,
};
static struct hypfs_entry_leaf visible = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "new", .size = 4,
           .access = HYPFS_RIGHT_ANY },
    .u.content = &visible_v,
};

static void test_generations(void **state)
{
    struct hypfs_entry_leaf *l;
    uint32_t one = 1;

    (void)state;
    callers_init();
    STEP("write /pub/a", write_u32(&callers[0], "/pub/a", 5),
         " / /pub /pub/a ", " / /pub /pub/a ", " / /pub /pub/a ",
         " / /pub /pub/a ");
    STEP("write /pub/secret", write_u32(&callers[0], "/pub/secret", 5),
         " / /pub ", "", "", "");
    STEP("write /ctl/x", write_u32(&callers[0], "/ctl/x", 5),
         " / ", "", "", "");
    STEP("domain 1 writes /own1/v", write_u32(&callers[1], "/own1/v", 5),
         " / /own1 /own1/v ", " / /own1 /own1/v ", "", "");
    STEP("write /own1/hid", write_u32(&callers[0], "/own1/hid", 5),
         " / /own1 ", "", "", "");
    STEP("domain 1 writes /dd/1/v", write_u32(&callers[1], "/dd/1/v", 5),
         " / /dd /dd/1 /dd/1/v ", " / /dd /dd/1 /dd/1/v ", "", "");
    STEP("write /dd/1/hidden", write_u32(&callers[0], "/dd/1/hidden", 5),
         " / /dd /dd/1 /dd/1/v ", "", "", "");
    /* The same value again is no change: a core-held value, and one a
     * handler holds (compared as it reads back). */
    STEP("write /pub/a again", write_u32(&callers[0], "/pub/a", 5),
         "", "", "", "");
    STEP("domain 1 writes /dd/1/v again",
         write_u32(&callers[1], "/dd/1/v", 5), "", "", "", "");
    STEP("write /pub/a, another value", write_u32(&callers[0], "/pub/a", 6),
         " / /pub /pub/a ", " / /pub /pub/a ", " / /pub /pub/a ",
         " / /pub /pub/a ");
    {
        struct hypfs_entry_dir *pub;

        pub = (struct hypfs_entry_dir *)index_find(
            dir_index(hypfs_root(fs)), name_hash("pub", 3), "pub", 3);
        assert_non_null(pub);
        STEP("a visible leaf added",
             assert_int_equal(hypfs_add_leaf(pub, &visible, false), 0),
             " / /pub ", " / /pub ", " / /pub ", " / /pub ");
        STEP("a visible leaf removed",
             assert_int_equal(hypfs_remove(pub, &visible.e), 0),
             " / /pub ", " / /pub ", " / /pub ", " / /pub ");
        STEP("a hidden leaf made visible, and said so",
             assert_int_equal(hypfs_leaf_new(pub, "later", XEN_HYPFS_TYPE_UINT,
                                             &one, 4, 0, &l), 0);
             hypfs_write_lock(fs);
             hypfs_set_access(&l->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
             assert_int_equal(hypfs_notify(fs, "/pub/later"), 0);
             hypfs_write_unlock(fs),
             " / /pub ", " / /pub ", " / /pub ", " / /pub ");
        STEP("a hidden leaf added",
             assert_int_equal(hypfs_leaf_new(pub, "hid", XEN_HYPFS_TYPE_UINT,
                                             &one, 4, 0, &l), 0),
             " / /pub ", "", "", "");
        STEP("a hidden leaf removed",
             assert_int_equal(hypfs_remove(pub, &l->e), 0),
             " / /pub ", "", "", "");
    }
    STEP("the embedder changes /dd/2/v",
         hypfs_write_lock(fs);
         objs[2].v = 99;
         assert_int_equal(hypfs_notify(fs, "/dd/2/v"), 0);
         hypfs_write_unlock(fs),
         " / /dd /dd/2 ", "", " / /dd /dd/2 ", "");
    STEP("the embedder changes /dd/2/v without the lock held",
         assert_int_equal(hypfs_notify(fs, "/dd/2/v"), 0),
         " / /dd /dd/2 ", "", " / /dd /dd/2 ", "");
    STEP("/dd/3 appears",
         hypfs_write_lock(fs);
         objs[3].live = true;
         memset(&objs[3].gens, 0, sizeof(objs[3].gens));
         assert_int_equal(hypfs_notify(fs, "/dd/3"), 0);
         hypfs_write_unlock(fs),
         " / /dd /dd/3 ", "", "", " / /dd /dd/3 ");
    STEP("/dd/3 goes",
         hypfs_write_lock(fs);
         objs[3].live = false;
         assert_int_equal(hypfs_notify_gone(fs, "/dd/3"), 0);
         hypfs_write_unlock(fs),
         " / /dd /dd/3 ", "", "", " / /dd /dd/3 ");
    STEP("/own2 removed", assert_int_equal(hypfs_remove(hypfs_root(fs),
                                                        &own2->e), 0),
         " / /own2 ", "", " / /own2 ", "");
    /*
     * A leaf added to a template is in every instance at once: each owner
     * reads it in its own (everything in an instance has its record, as
     * for /dd/1/hidden above), a domain without an instance learns
     * nothing.  It is told the same when the leaf goes.
     */
    STEP("a leaf each owner may read added to the template",
         assert_int_equal(hypfs_add_leaf(&dd_template, &t_later, false), 0),
         " / /dd /dd/1 /dd/1/v /dd/2 ", " / /dd /dd/1 /dd/1/v ",
         " / /dd /dd/2 ", "");
    STEP("a leaf only the control domain reads added to the template",
         assert_int_equal(hypfs_add_leaf(&dd_template, &t_ctl, false), 0),
         " / /dd /dd/1 /dd/1/v /dd/2 ", "", "", "");
    STEP("the leaf each owner may read removed from the template",
         assert_int_equal(hypfs_remove(&dd_template, &t_later.e), 0),
         " / /dd /dd/1 /dd/1/v /dd/2 ", " / /dd /dd/1 /dd/1/v ",
         " / /dd /dd/2 ", "");
    STEP("the other removed",
         assert_int_equal(hypfs_remove(&dd_template, &t_ctl.e), 0),
         " / /dd /dd/1 /dd/1/v /dd/2 ", "", "", "");
}

/*
 * Who could see an entry added to a directory is worked out once for the
 * directory and kept (gen.c): a directory's rights or owner changed after
 * entries were added to it must count for the next one added.
 */
static struct hypfs_entry_leaf flip_leaf[3] = {
    { .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "a", .size = 4,
             .access = HYPFS_RIGHT_ANY }, .u.content = &visible_v },
    { .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "b", .size = 4,
             .access = HYPFS_RIGHT_ANY }, .u.content = &visible_v },
    { .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "c", .size = 4,
             .access = HYPFS_RIGHT_ANY }, .u.content = &visible_v },
};

static void test_generations_after_rights_change(void **state)
{
    struct hypfs_entry_dir *pub, *flip;
    unsigned int i;

    (void)state;
    callers_init();
    pub = (struct hypfs_entry_dir *)index_find(
        dir_index(hypfs_root(fs)), name_hash("pub", 3), "pub", 3);
    assert_non_null(pub);
    flip = mk_dir(fs, pub, "flip", HYPFS_RIGHT_ANY, -1);
    STEP("a leaf every domain reads added to /pub/flip",
         assert_int_equal(hypfs_add_leaf(flip, &flip_leaf[0], false), 0),
         " / /pub ", " / /pub ", " / /pub ", " / /pub ");
    STEP("/pub/flip now its owner's, and it has none: the control domain's",
         hypfs_write_lock(fs);
         assert_int_equal(hypfs_set_access(&flip->e, HYPFS_RIGHT_OWNER,
                                           HYPFS_RIGHT_CONTROL), 0);
         hypfs_write_unlock(fs),
         "", "", "", "");
    STEP("a leaf added there",
         assert_int_equal(hypfs_add_leaf(flip, &flip_leaf[1], false), 0),
         " / /pub ", "", "", "");
    /* Domain 1's view takes in the region's stamps now: not checked. */
    hypfs_write_lock(fs);
    hypfs_dir_set_owner(flip, 1);
    hypfs_write_unlock(fs);
    STEP("another added there",
         assert_int_equal(hypfs_add_leaf(flip, &flip_leaf[2], false), 0),
         " / /pub ", " / /pub ", "", "");
    for ( i = 0; i < 3; i++ )
        assert_int_equal(hypfs_remove(flip, &flip_leaf[i].e), 0);
    assert_int_equal(hypfs_remove(pub, &flip->e), 0);
}

/*
 * The values a domain is shown say nothing about how many changes it
 * could not see: they are not the tree's counter, nor any offset of it.
 * Two trees with the same key, one with one hidden change before a
 * visible one and one with five: the control domain's numbers are 4
 * apart, a domain's are unrelated (and the same tree with another key
 * gives other values, so the key is what hides them).
 */
static void test_values_hide_the_count(void **state)
{
    static const uint8_t key[16] = "0123456789abcdef";
    static const uint8_t other[16] = "fedcba9876543210";
    uint64_t dom[3][NPATHS], ctl[3][NPATHS];
    unsigned int p, i;

    (void)state;
    callers_init();
    for ( i = 0; i < 3; i++ )
    {
        unsigned int k;

        if ( i )
        {
            teardown(NULL);
            setup(NULL);
        }
        hypfs_testing_set_key(fs, i == 2 ? other : key);
        for ( k = 0; k < (i == 1 ? 5u : 1u); k++ )
            write_u32(&callers[0], "/pub/secret", k);
        write_u32(&callers[0], "/pub/a", 9);
        for ( p = 0; p < NPATHS; p++ )
        {
            dom[i][p] = gen_or_err(&callers[1], watched[p]);
            ctl[i][p] = gen_or_err(&callers[0], watched[p]);
        }
    }
    /* "/" and "/pub" moved with the visible change, and with the hidden. */
    for ( p = 0; p < 3; p++ )
    {
        assert_true(ctl[1][p] - ctl[0][p] == 4);
        assert_true(dom[1][p] != dom[0][p]);
        assert_true(dom[1][p] - dom[0][p] != 4);
        assert_true(dom[0][p] != ctl[0][p] && dom[0][p] != ctl[0][p] - 1);
        assert_true(dom[2][p] != dom[0][p]);
    }
    /* What did not change for anyone reads the same in equal trees. */
    assert_true(dom[0][4] == dom[1][4]);
}

/* A domain's values never come back to one it had. */
static void test_no_repeat(void **state)
{
    uint64_t seen[64];
    unsigned int n = 0, i, j;

    (void)state;
    callers_init();
    seen[n++] = gen_or_err(&callers[3], "/dd");
    for ( i = 0; i < 8; i++ )
    {
        hypfs_write_lock(fs);
        objs[3].live = true;
        memset(&objs[3].gens, 0, sizeof(objs[3].gens));
        assert_int_equal(hypfs_notify(fs, "/dd/3"), 0);
        hypfs_write_unlock(fs);
        seen[n++] = gen_or_err(&callers[3], "/dd");
        hypfs_write_lock(fs);
        objs[3].live = false;
        assert_int_equal(hypfs_notify_gone(fs, "/dd/3"), 0);
        hypfs_write_unlock(fs);
        seen[n++] = gen_or_err(&callers[3], "/dd");
    }
    for ( i = 0; i < n; i++ )
        for ( j = i + 1; j < n; j++ )
            if ( seen[i] == seen[j] )
                fail_msg("value %u came back at %u", i, j);
}

/* ---- Notifications ---- */

static struct {
    int calls;
    char path[XEN_HYPFS_MAX_PATHLEN];
    uint64_t gen;
} hook;

static void on_change(void *arg, const char *path, uint64_t gen)
{
    assert_ptr_equal(arg, &hook);
    assert_true(gen > hook.gen);
    hook.calls++;
    hook.gen = gen;
    snprintf(hook.path, sizeof(hook.path), "%s", path);
}

static void test_notify(void **state)
{
    static unsigned char buf[256];
    struct guest g;
    struct hypfs_caller ctl;

    (void)state;
    guest_reset(&g);
    ctl = caller_control(&g);
    memset(&hook, 0, sizeof(hook));
    hypfs_set_change_hook(fs, on_change, &hook);
    write_u32(&ctl, "/pub/a", 3);
    assert_int_equal(hook.calls, 1);
    assert_string_equal(hook.path, "/pub/a");
    /* Inside an instance, the hook is told the instance's path. */
    assert_int_equal(hypfs_notify(fs, "/dd/1/v"), 0);
    assert_int_equal(hook.calls, 2);
    assert_string_equal(hook.path, "/dd/1");
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "later", NULL), 0);
    assert_int_equal(hook.calls, 3);
    assert_string_equal(hook.path, "/later");
    /* Refused: nothing recorded. */
    assert_int_equal(hypfs_notify(fs, "pub"), -EINVAL);
    assert_int_equal(hypfs_notify(fs, NULL), -EINVAL);
    assert_int_equal(hypfs_notify(NULL, "/"), -EINVAL);
    assert_int_equal(hypfs_notify(fs, "/nope"), -ENOENT);
    assert_int_equal(hypfs_notify(fs, "/dd/7"), -ENOENT);
    assert_int_equal(hypfs_notify_gone(fs, "/pub/1"), -ENOENT);
    assert_int_equal(hypfs_notify_gone(fs, "/dd/x"), -EINVAL);
    assert_int_equal(hypfs_notify_gone(fs, "/dd/1/v"), -EINVAL);
    assert_int_equal(hook.calls, 3);
    /* From a callback it would deadlock: refused. */
    assert_int_equal(op_read(fs, &ctl, "/pub/notifying", buf, sizeof(buf)),
                     0);
    assert_int_equal(notify_from_callback, -EDEADLK);
    assert_int_equal(hook.calls, 3);
    hypfs_set_change_hook(fs, NULL, NULL);
}

/* ---- The snapshot ---- */

static atomic_bool stop;

static void *writer(void *arg)
{
    uint32_t i;

    (void)arg;
    for ( i = 1; !atomic_load(&stop); i++ )
    {
        hypfs_write_lock(fs);
        snap1 = i;
        snap2 = i;
        assert_int_equal(hypfs_notify(fs, "/snap/s1"), 0);
        assert_int_equal(hypfs_notify(fs, "/snap/s2"), 0);
        hypfs_write_unlock(fs);
    }
    return NULL;
}

static void test_snapshot(void **state)
{
    static unsigned char buf[4096];
    struct rec recs[4];
    struct guest g;
    struct hypfs_caller d1;
    pthread_t t;
    unsigned int i, changes = 0;
    uint32_t last = 0;

    (void)state;
    guest_reset(&g);
    d1 = caller_domain(&g, 1);
    atomic_store(&stop, false);
    assert_int_equal(pthread_create(&t, NULL, writer, NULL), 0);
    for ( i = 0; i < 20000 || changes < 10; i++ )
    {
        uint32_t a, b;

        assert_int_equal(op_tree(&d1, "/snap", buf, sizeof(buf)), 0);
        assert_int_equal(parse_tree(buf, recs, 4), 3);
        assert_string_equal(recs[1].path, "s1");
        memcpy(&a, recs[1].content, 4);
        memcpy(&b, recs[2].content, 4);
        if ( a != b )
            fail_msg("a subtree read shows s1=%u, s2=%u", a, b);
        changes += a != last;
        last = a;
        if ( i > 10000000 )
            break;
    }
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    assert_true(changes >= 10);
}

/* ---- SipHash, as specified ---- */

static void test_siphash_vector(void **state)
{
    uint8_t key[16], msg[15];
    unsigned int i;

    (void)state;
    for ( i = 0; i < 16; i++ )
        key[i] = (uint8_t)i;
    for ( i = 0; i < 15; i++ )
        msg[i] = (uint8_t)i;
    /* The paper's appendix A: 15 bytes 00..0e under key 00..0f. */
    assert_true(siphash24(key, msg, sizeof(msg)) == 0xa129ca6149be45e5ull);
    /* And the reference implementation's vectors for 0 and 8 bytes. */
    assert_true(siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ull);
    assert_true(siphash24(key, msg, 8) == 0x93f5f5799a932462ull);
}

/*
 * The records of owners' entries that went are forgotten with the owner:
 * the others are still found (the probe runs stay whole), and churning
 * owners that come and go does not grow them.
 */
static void test_forget_owner(void **state)
{
    struct hypfs_entry_dir *d = &dd_dir.dir;
    uint32_t id, cap;

    (void)state;
    hypfs_write_lock(fs);
    for ( id = 1; id <= 500; id++ )
    {
        assert_int_equal(tomb_reserve(d), 0);
        tomb_record(fs, d, id, 1000 + id);
    }
    for ( id = 3; id <= 500; id += 3 )
        assert_int_equal(hypfs_forget_owner(fs, id), 0);
    for ( id = 1; id <= 500; id++ )
        assert_int_equal(tomb_get(d, id), id % 3 ? 1000 + id : 0);
    for ( id = 1; id <= 500; id++ )
        assert_int_equal(hypfs_forget_owner(fs, id), 0);
    assert_int_equal(d->priv->tombs.n, 0);
    cap = d->priv->tombs.cap;
    for ( id = 1000; id < 40000; id++ )
    {
        assert_int_equal(tomb_reserve(d), 0);
        tomb_record(fs, d, id, id);
        assert_int_equal(tomb_get(d, id), id);
        assert_int_equal(hypfs_forget_owner(fs, id), 0);
    }
    assert_int_equal(d->priv->tombs.cap, cap);
    hypfs_write_unlock(fs);
    assert_int_equal(hypfs_forget_owner(NULL, 1), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree_is_v1_for_every_caller,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_tree_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_generation_checks, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_watch_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generations_after_rights_change,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_hide_the_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
        cmocka_unit_test(test_siphash_vector),
        cmocka_unit_test_setup_teardown(test_forget_owner, setup, teardown),
    };

    return cmocka_run_group_tests_name("v2", tests, NULL, NULL);
}
