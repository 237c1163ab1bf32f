/*
 * Fuzz target (a): the core's dispatcher.
 *
 * Each input is a sequence of hypercalls against a fresh tree holding every
 * kind of entry: each type writable and read-only, gzip, custom read and
 * write handlers, directories with each access right and owner, and a
 * dynamic directory whose live ids the input changes between calls.  The
 * input chooses the caller (no right, any domain, the control domain), the
 * command, the path bytes and every length, the buffer size, the written
 * data, and where guest memory faults.
 *
 * Checked after every call (abort() on violation, so libFuzzer reports it):
 *   - the result is one of the errnos the ABI documents;
 *   - a caller without a hypfs right gets -EPERM, and nothing else;
 *   - a successful read returns a well-formed direntry, and for a
 *     directory exactly the records of the children the caller may see,
 *     sorted, with content_len their sum; for a leaf, a valid value of its
 *     type;
 *   - nothing a caller may not see is ever returned to it;
 *   - a failed write changed nothing; a successful plain write stored what
 *     was written;
 *   - enter and exit of the dynamic directory are balanced;
 * and, at the end, every leaf of the tree holds a valid value of its type.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypfs/hypfs.h>

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

/* ---- Input ---- */

struct in {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint32_t u32(struct in *in)
{
    return (uint32_t)u8(in) | (uint32_t)u8(in) << 8 | (uint32_t)u8(in) << 16 |
           (uint32_t)u8(in) << 24;
}

/* ---- Guest memory with faults ---- */

/*
 * The guest owns a few buffers and nothing else: an access outside them
 * faults, as an unmapped address would, and the Nth access faults on
 * demand.
 */
struct region {
    uintptr_t base;
    size_t len;
};

struct guest {
    unsigned int fail_at, accesses;
    struct region r[3];
};

static bool inside(const struct guest *g, uint64_t addr, size_t len)
{
    int i;

    for (i = 0; i < 3; i++)
        if (addr >= g->r[i].base && addr - g->r[i].base <= g->r[i].len &&
            len <= g->r[i].len - (addr - g->r[i].base))
            return true;
    return false;
}

static int g_from(void *ctx, void *dst, uint64_t addr, size_t len)
{
    struct guest *g = ctx;

    if (++g->accesses == g->fail_at || !inside(g, addr, len))
        return -EFAULT;
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return 0;
}

static int g_to(void *ctx, uint64_t addr, const void *src, size_t len)
{
    struct guest *g = ctx;

    if (++g->accesses == g->fail_at || !inside(g, addr, len))
        return -EFAULT;
    memcpy((void *)(uintptr_t)addr, src, len);
    return 0;
}

static const struct hypfs_guest_ops gops = { g_from, g_to };

/* ---- The tree ---- */

static unsigned int live_ids;       /* bit i: id i of /dyn/ is live */
static int enters;
static char custom_val[8] = "a";
static uint16_t even_val = 2;

static int dyn_enter(const struct hypfs_dyndir *dd)
{
    (void)dd;
    enters++;
    return 0;
}

static void dyn_exit(const struct hypfs_dyndir *dd)
{
    (void)dd;
    enters--;
}

static int dyn_foreach(const struct hypfs_dyndir *dd,
                       int (*fn)(void *arg, unsigned int id), void *arg)
{
    unsigned int i;
    int ret;

    (void)dd;
    for (i = 0; i < 8; i++)
        if ((live_ids & (1u << i)) && (ret = fn(arg, i)))
            return ret;
    return 0;
}

static int dyn_find(const struct hypfs_dyndir *dd, unsigned int id, void **data)
{
    (void)dd;
    if (id >= 8 || !(live_ids & (1u << id)))
        return -ENOENT;
    *data = (void *)(uintptr_t)(id + 100);
    return 0;
}

static const struct hypfs_dyndir_ops dyn_ops = {
    dyn_enter, dyn_exit, dyn_foreach, dyn_find,
};

static uint32_t dynid(void)
{
    uint32_t id = 0;

    CHECK(!hypfs_get_dynid(&id));
    return id;
}

static int id_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    CHECK((uintptr_t)hypfs_get_dyndata() == dynid() + 100);
    return hypfs_buf_put_num(b, e, dynid());
}

static int name_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_printf(b, "dom%u", dynid());
}

static int name_write(struct hypfs_entry_leaf *l, const void *v, unsigned int len)
{
    (void)l;
    CHECK(len && ((const char *)v)[len - 1] == '\0' && strlen(v) == len - 1);
    return strlen(v) > 4 ? -EINVAL : 0;
}

static int custom_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, custom_val);
}

static int custom_write(struct hypfs_entry_leaf *l, const void *v, unsigned int len)
{
    const char *s = v;

    (void)l;
    CHECK(len && s[len - 1] == '\0' && strlen(s) == len - 1);
    if (len != 2 || s[0] < 'a' || s[0] > 'e')
        return -EINVAL;
    strcpy(custom_val, s);
    return 0;
}

static int even_write(struct hypfs_entry_leaf *l, const void *v, unsigned int len)
{
    uint16_t x;

    (void)l;
    CHECK(len == 2);
    memcpy(&x, v, 2);
    if (x & 1)
        return -ERANGE;
    even_val = x;
    return 0;
}

static const struct hypfs_funcs id_funcs = { .read = id_read };
static const struct hypfs_funcs name_funcs = { name_read, name_write };
static const struct hypfs_funcs custom_funcs = { custom_read, custom_write };
static const struct hypfs_funcs even_funcs = { .write = even_write };

/* Interface version 2: the embedder's watch ops, checked and counted. */
static unsigned int watch_calls, unwatch_calls;

static int fz_watch(void *arg, const struct hypfs_caller *caller,
                    const char *path, uint64_t token, uint64_t known,
                    uint64_t gen)
{
    (void)arg;
    (void)token;
    (void)known;
    CHECK(caller && (caller->flags & HYPFS_CALLER_HYPFS));
    CHECK(path && path[0] == '/' && gen);
    watch_calls++;
    return token & 1 ? -ENOSPC : 0;
}

static int fz_unwatch(void *arg, const struct hypfs_caller *caller,
                      uint64_t token)
{
    (void)arg;
    CHECK(caller && (caller->flags & HYPFS_CALLER_HYPFS));
    unwatch_calls++;
    return token & 1 ? -ENOENT : 0;
}

static const struct hypfs_watch_ops fz_watch_ops = { fz_watch, fz_unwatch };

static struct hypfs *build(void)
{
    static HYPFS_DIR_INIT(tmpl, "t");
    static HYPFS_DYNDIR_INIT(dyn, "dyn", &tmpl, &dyn_ops, HYPFS_DYNDIR_OWNER_IS_ID);
    static struct hypfs_entry_leaf t_id = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "id", .size = 4,
               .funcs = &id_funcs, .access = HYPFS_RIGHT_OWNER },
    };
    static struct hypfs_entry_leaf t_name = {
        .e = { .type = XEN_HYPFS_TYPE_STRING, .name = "name", .max_size = 8,
               .funcs = &name_funcs,
               .access = HYPFS_RIGHT_OWNER | HYPFS_RIGHT_OWNER << 2 },
    };
    static struct hypfs_entry_leaf custom = {
        .e = { .type = XEN_HYPFS_TYPE_STRING, .name = "custom", .max_size = 8,
               .funcs = &custom_funcs },
    };
    static struct hypfs_entry_leaf even = {
        .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "even", .size = 2,
               .max_size = 2, .funcs = &even_funcs },
        .u.content = &even_val,
    };
    struct hypfs *fs;
    struct hypfs_entry_dir *root, *c, *any, *own, *o1, *o2, *big;
    struct hypfs_entry_leaf *l;
    uint64_t zero = 0;
    char name[8];
    int i;

    if (hypfs_new(&fs))
        abort();
    hypfs_set_watch_ops(fs, &fz_watch_ops, NULL);
    root = hypfs_root(fs);
    hypfs_set_access(&root->e, HYPFS_RIGHT_ANY, 0);
    if (hypfs_dir_new(root, "c", &c) || hypfs_dir_new(root, "any", &any) ||
        hypfs_dir_new(root, "own", &own) || hypfs_dir_new(own, "1", &o1) ||
        hypfs_dir_new(own, "2", &o2) || hypfs_dir_new(root, "big", &big))
        abort();
    hypfs_set_access(&any->e, HYPFS_RIGHT_ANY, 0);
    hypfs_set_access(&own->e, HYPFS_RIGHT_ANY, 0);
    hypfs_set_access(&o1->e, HYPFS_RIGHT_OWNER, 0);
    hypfs_set_access(&o2->e, HYPFS_RIGHT_OWNER, 0);
    hypfs_dir_set_owner(o1, 1);
    hypfs_dir_set_owner(o2, 2);
    if (hypfs_leaf_new(c, "u8", XEN_HYPFS_TYPE_UINT, &zero, 1, 1, NULL) ||
        hypfs_leaf_new(c, "u16", XEN_HYPFS_TYPE_UINT, &zero, 2, 2, NULL) ||
        hypfs_leaf_new(c, "u64", XEN_HYPFS_TYPE_UINT, &zero, 8, 8, NULL) ||
        hypfs_leaf_new(c, "i32", XEN_HYPFS_TYPE_INT, &zero, 4, 4, NULL) ||
        hypfs_leaf_new(c, "bool", XEN_HYPFS_TYPE_BOOL, &zero, 1, 1, NULL) ||
        hypfs_leaf_new(c, "str", XEN_HYPFS_TYPE_STRING, "s", 2, 32, NULL) ||
        hypfs_leaf_new(c, "blob", XEN_HYPFS_TYPE_BLOB, "bb", 2, 16, NULL) ||
        hypfs_leaf_new(c, "ro", XEN_HYPFS_TYPE_STRING, "ro", 3, 0, NULL) ||
        hypfs_leaf_new_gzip(c, "gz", XEN_HYPFS_TYPE_STRING, "zipped", 7, NULL) ||
        hypfs_leaf_new(any, "v", XEN_HYPFS_TYPE_UINT, &zero, 4, 4, &l))
        abort();
    hypfs_write_lock(fs);
    hypfs_set_access(&l->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_ANY);
    hypfs_write_unlock(fs);
    if (hypfs_leaf_new(o1, "x", XEN_HYPFS_TYPE_UINT, &zero, 4, 4, &l))
        abort();
    hypfs_write_lock(fs);
    hypfs_set_access(&l->e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    hypfs_write_unlock(fs);
    if (hypfs_leaf_new(o2, "x", XEN_HYPFS_TYPE_UINT, &zero, 4, 4, &l))
        abort();
    hypfs_write_lock(fs);
    hypfs_set_access(&l->e, HYPFS_RIGHT_OWNER, HYPFS_RIGHT_OWNER);
    hypfs_write_unlock(fs);
    for (i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "e%d", (i * 17) % 40);
        if (hypfs_leaf_new(big, name, XEN_HYPFS_TYPE_UINT, &zero, 1, 0, NULL))
            abort();
    }
    strcpy(custom_val, "a");
    even_val = 2;
    hypfs_add_leaf(c, &custom, true);
    hypfs_add_leaf(c, &even, true);
    hypfs_set_access(&tmpl.e, HYPFS_RIGHT_OWNER, 0);
    hypfs_set_access(&dyn.dir.e, HYPFS_RIGHT_ANY, 0);
    hypfs_add_leaf(&tmpl, &t_id, true);
    hypfs_add_leaf(&tmpl, &t_name, true);
    hypfs_add_dyndir(root, &dyn, true);
    return fs;
}

/* ---- The shadow: who may see what ---- */

struct who {
    bool right, control;
    uint32_t domid;
};

/* Expected visibility of a canonical absolute path (no trailing '/'). */
static bool visible(const struct who *w, const char *path)
{
    unsigned int id;

    if (w->control)
        return true;
    if (!strcmp(path, "/") || !strcmp(path, "/any") || !strncmp(path, "/any/", 5) ||
        !strcmp(path, "/own") || !strcmp(path, "/dyn"))
        return true;
    if (!strncmp(path, "/own/1", 6))
        return w->domid == 1;
    if (!strncmp(path, "/own/2", 6))
        return w->domid == 2;
    if (sscanf(path, "/dyn/%u", &id) == 1)
        return id == w->domid;
    return false;   /* /c, /big: the control domain's */
}

static const char *const paths[] = {
    "/", "/c", "/c/u8", "/c/u16", "/c/u64", "/c/i32", "/c/bool", "/c/str",
    "/c/blob", "/c/ro", "/c/gz", "/c/custom", "/c/even", "/any", "/any/v",
    "/own", "/own/1", "/own/1/x", "/own/2", "/own/2/x", "/big", "/big/e7",
    "/dyn", "/dyn/0", "/dyn/1", "/dyn/1/id", "/dyn/1/name", "/dyn/2/name",
    "/dyn/7", "/dyn/7/id", "/nope", "/c/u8/x", "//", "/dyn/01",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* ---- Checks of what a read returned ---- */

static void check_listing(const struct who *w, const char *dir,
                          const uint8_t *c, uint32_t len)
{
    uint32_t off = 0, sum = 0;
    char prev[300] = "";
    int first = 1;

    if (!len)
        return;
    for (;;) {
        struct xen_hypfs_dirlistentry rec;
        char name[300], child[600];
        size_t nl, size;

        CHECK(off + 14 < len);
        memcpy(&rec, c + off, 14);
        nl = strnlen((const char *)c + off + 14, len - off - 14);
        CHECK(nl < len - off - 14 && nl <= HYPFS_NAME_MAX);
        memcpy(name, c + off + 14, nl + 1);
        size = XEN_HYPFS_DIRENTRY_SIZE(nl);
        CHECK(rec.e.pad == 0);
        CHECK(rec.e.type <= XEN_HYPFS_TYPE_BOOL);
        CHECK(first || strcmp(prev, name) < 0);
        snprintf(child, sizeof(child), "%s/%s", strcmp(dir, "/") ? dir : "",
                 name);
        CHECK(visible(w, child));
        sum += (uint32_t)size;
        strcpy(prev, name);
        first = 0;
        if (!rec.off_next) {
            CHECK(off + size == len);
            break;
        }
        CHECK(rec.off_next == size);
        off += rec.off_next;
    }
    CHECK(sum == len);
}

static void check_leaf(const struct xen_hypfs_direntry *e, const uint8_t *c)
{
    if (e->encoding != XEN_HYPFS_ENC_PLAIN)
        return;
    switch (e->type) {
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_INT:
        CHECK(e->content_len == 1 || e->content_len == 2 ||
              e->content_len == 4 || e->content_len == 8);
        break;
    case XEN_HYPFS_TYPE_BOOL:
        CHECK(e->content_len == 1 && c[0] <= 1);
        break;
    case XEN_HYPFS_TYPE_STRING:
        CHECK(e->content_len >= 1 && c[e->content_len - 1] == '\0' &&
              strlen((const char *)c) == e->content_len - 1);
        break;
    }
}

/* The canonical form of @path if it names one of ours, else NULL. */
static const char *canonical(const char *path, size_t len, char *buf)
{
    if (!len || len >= 600 || path[len - 1])
        return NULL;
    strcpy(buf, path);
    if (len > 2 && buf[len - 2] == '/')
        buf[len - 2] = '\0';
    return buf;
}

/* Read @path as the control domain; the content into @out. */
static long snap(struct hypfs *fs, const char *path, uint8_t *out, size_t n)
{
    struct guest g = {
        .r = { { (uintptr_t)path, strlen(path) + 1 }, { (uintptr_t)out, n } },
    };
    struct hypfs_caller ctl = {
        0, HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL, &gops, &g,
    };

    return hypfs_do_op(fs, &ctl, XEN_HYPFS_OP_read, (uintptr_t)path,
                       strlen(path) + 1, (uintptr_t)out, n);
}

static bool allowed_errno(long r)
{
    switch (-r) {
    case EPERM: case EINVAL: case EFAULT: case ENOENT: case EOPNOTSUPP:
    case ENOBUFS: case EACCES: case ENOSPC: case EDOM: case ERANGE:
    case ENAMETOOLONG: case ELOOP:
        return true;
    }
    return false;
}

/* A read_tree result: records that add up, paths that end, pads of 0. */
static void check_tree(const uint8_t *buf, uint64_t len)
{
    struct xen_hypfs_treehdr h;
    uint64_t off = sizeof(h);
    uint32_t i;

    memcpy(&h, buf, sizeof(h));
    CHECK(h.e.type == XEN_HYPFS_TYPE_DIR);
    CHECK(sizeof(h) + (uint64_t)h.e.content_len <= len);
    for (i = 0; i < h.nr_entries; i++) {
        struct xen_hypfs_treeentry r;

        CHECK(off + sizeof(r) <= sizeof(h) + (uint64_t)h.e.content_len);
        memcpy(&r, buf + off, sizeof(r));
        CHECK(r.pad == 0 && r.path_len >= 1 && r.rec_len % 8 == 0);
        CHECK(buf[off + sizeof(r) + r.path_len - 1] == 0);
        CHECK((i == 0) == (r.depth == 0));
        off += r.rec_len;
    }
    CHECK(off == sizeof(h) + (uint64_t)h.e.content_len);
}

static void walk_valid(struct hypfs *fs, const char *path, int depth)
{
    static uint8_t buf[8192];
    struct xen_hypfs_direntry e;
    uint32_t off = 0;
    char child[600];

    CHECK(depth < 8);
    CHECK(!snap(fs, path, buf, sizeof(buf)));
    memcpy(&e, buf, sizeof(e));
    if (e.type != XEN_HYPFS_TYPE_DIR) {
        check_leaf(&e, buf + 12);
        return;
    }
    while (off < e.content_len) {
        struct xen_hypfs_dirlistentry rec;
        uint8_t copy[8192];

        memcpy(&rec, buf + 12 + off, 14);
        snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "",
                 (const char *)buf + 12 + off + 14);
        memcpy(copy, buf, sizeof(copy));
        walk_valid(fs, child, depth + 1);
        memcpy(buf, copy, sizeof(copy));
        if (!rec.off_next)
            break;
        off += rec.off_next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct in in = { data, size };
    struct hypfs *fs;
    int ops = 0;

    live_ids = 0x6;     /* ids 1 and 2 */
    fs = build();
    while (in.n && ops++ < 64) {
        static uint8_t buf[16384], before[16384], after[16384];
        char pathbuf[1100] = { 0 }, canon[600];
        uint8_t wdata[64] = { 0 };
        struct guest g = {
            .r = { { (uintptr_t)pathbuf, sizeof(pathbuf) },
                   { (uintptr_t)wdata, sizeof(wdata) },
                   { (uintptr_t)buf, sizeof(buf) } },
        };
        struct hypfs_caller c;
        struct who w;
        uint8_t sel = u8(&in), how = u8(&in);
        unsigned int cmd = sel & 0x80 ? u32(&in) : sel % 7;
        const char *path;
        size_t plen, wlen;
        uint64_t a1, a2, a3, a4;
        long r, rb = 0;
        const char *cp;

        /* Between calls, the embedder's objects come and go. */
        if (how & 0x80)
            live_ids = u8(&in);

        w.right = (how & 3) != 0;
        w.control = (how & 3) == 3;
        w.domid = (how >> 2) & 3;
        c.domid = w.domid;
        c.flags = (w.right ? HYPFS_CALLER_HYPFS : 0) |
                  (w.control ? HYPFS_CALLER_CONTROL : 0);
        c.mem = &gops;
        c.mem_ctx = &g;

        /* A known path, or raw bytes. */
        if (how & 0x10) {
            plen = u8(&in) % sizeof(pathbuf);
            if (plen > in.n)
                plen = in.n;
            memcpy(pathbuf, in.p, plen);
            in.p += plen;
            in.n -= plen;
        } else {
            const char *k = paths[u8(&in) % NPATHS];

            plen = strlen(k) + 1;
            memcpy(pathbuf, k, plen);
            if (how & 0x20)     /* a trailing slash */
                memcpy(pathbuf + plen - 1, "/", 2), plen++;
        }
        path = pathbuf;
        a1 = (uintptr_t)path;
        a2 = plen;
        switch (u8(&in) & 7) {
        case 1: a2 = plen + u8(&in); break;             /* past the end */
        case 2: a2 = plen ? plen - 1 : 0; break;        /* NUL missing */
        case 3: a2 = 1024 + u8(&in); break;             /* too long */
        case 4: a1 = u8(&in); break;                    /* a bad pointer */
        }
        wlen = u8(&in) % sizeof(wdata);
        if (wlen > in.n)
            wlen = in.n;
        memcpy(wdata, in.p, wlen);
        in.p += wlen;
        in.n -= wlen;
        a3 = cmd == XEN_HYPFS_OP_write_contents ? (uintptr_t)wdata
                                                : (uintptr_t)buf;
        a4 = cmd == XEN_HYPFS_OP_write_contents ? wlen : u32(&in) % 20000;
        if ((cmd == XEN_HYPFS_OP_read || cmd == XEN_HYPFS_OP_read_tree ||
             cmd == XEN_HYPFS_OP_get_generation) && a4 > sizeof(buf))
            a4 = sizeof(buf);
        if (cmd == XEN_HYPFS_OP_watch || cmd == XEN_HYPFS_OP_unwatch) {
            a3 = u32(&in);              /* the token */
            a4 = how & 0x40 ? u32(&in) : 0;     /* known; unwatch: 0 */
        }
        /* Embedders notify, with paths good and bad. */
        if (sel & 0x20)
            (void)hypfs_notify(fs, pathbuf);
        if ((sel & 0x60) == 0x60)
            (void)hypfs_notify_gone(fs, pathbuf);
        g.fail_at = u8(&in) & 0x7;      /* 0: no fault */
        if (cmd == XEN_HYPFS_OP_get_version && !(sel & 0x40))
            a1 = a2 = a3 = a4 = 0;

        cp = canonical(path, plen, canon);
        if (cmd == XEN_HYPFS_OP_write_contents && cp)
            rb = snap(fs, cp, before, sizeof(before));

        r = hypfs_do_op(fs, &c, cmd, a1, a2, a3, a4);

        CHECK(!enters);
        if (!w.right) {
            CHECK(r == -EPERM);
            continue;
        }
        if (cmd == XEN_HYPFS_OP_get_version) {
            CHECK(r == XEN_HYPFS_VERSION || r == -EINVAL);
            continue;
        }
        if (cmd == XEN_HYPFS_OP_read_tree && !r) {
            CHECK(cp && visible(&w, cp));
            check_tree(buf, a4);
        }
        if (cmd == XEN_HYPFS_OP_get_generation && !r) {
            uint64_t gen;

            memcpy(&gen, buf, sizeof(gen));
            CHECK(cp && visible(&w, cp) && gen);
        }
        CHECK(r == 0 || allowed_errno(r));
        if (cmd == XEN_HYPFS_OP_read && !r) {
            struct xen_hypfs_direntry e;

            CHECK(cp && a2 == plen);
            CHECK(!g.fail_at || g.accesses < g.fail_at);
            CHECK(visible(&w, cp));
            memcpy(&e, buf, sizeof(e));
            CHECK(e.pad == 0 && 12 + (uint64_t)e.content_len <= a4);
            if (e.type == XEN_HYPFS_TYPE_DIR)
                check_listing(&w, cp, buf + 12, e.content_len);
            else
                check_leaf(&e, buf + 12);
        }
        if (cmd == XEN_HYPFS_OP_write_contents && cp && !rb) {
            long ra = snap(fs, cp, after, sizeof(after));
            struct xen_hypfs_direntry e;

            CHECK(!ra);
            memcpy(&e, before, sizeof(e));
            if (r) {
                /* Failed: not one byte changed (dynamic values aside). */
                if (strncmp(cp, "/dyn", 4))
                    CHECK(!memcmp(before, after, 12 + e.content_len));
            } else {
                CHECK(visible(&w, cp));
                if (!e.encoding && strcmp(cp, "/c/custom") && strncmp(cp, "/dyn", 4) &&
                    strcmp(cp, "/c/even")) {
                    memcpy(&e, after, sizeof(e));
                    CHECK(e.content_len == wlen &&
                          !memcmp(after + 12, wdata, wlen));
                }
            }
        }
    }
    walk_valid(fs, "/", 0);
    CHECK(!enters);
    hypfs_free(fs);
    return 0;
}
