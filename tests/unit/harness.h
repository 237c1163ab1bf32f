/*
 * Test harness for the core: a model of guest memory and of callers.
 *
 * Guest addresses are plain pointers of this process.  The accessor can be
 * told to fail its Nth access, to fault on an address range (an "unmapped"
 * page), and it logs every fetched byte range so that a test can assert
 * that no guest byte was fetched twice.
 */
#ifndef HYPFS_TEST_HARNESS_H
#define HYPFS_TEST_HARNESS_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <hypfs/hypfs.h>

#define GUEST_LOG_MAX 64

struct guest {
    int fail_at;            /* fail the Nth access (1-based); 0: never */
    int accesses;           /* accesses so far */
    uint64_t bad_lo, bad_hi;/* accesses touching [bad_lo, bad_hi) fault */
    bool double_fetch;      /* a fetched byte was fetched again */
    int nfetched;
    struct {
        uint64_t addr;
        size_t len;
    } fetched[GUEST_LOG_MAX];
};

static inline bool guest_overlaps_bad(const struct guest *g, uint64_t addr,
                                      size_t len)
{
    return g->bad_hi > g->bad_lo && addr < g->bad_hi && addr + len > g->bad_lo;
}

static inline int guest_copy_from(void *ctx, void *dst, uint64_t addr,
                                  size_t len)
{
    struct guest *g = ctx;
    int i;

    g->accesses++;
    if ( g->fail_at && g->accesses == g->fail_at )
        return -EFAULT;
    if ( guest_overlaps_bad(g, addr, len) )
        return -EFAULT;
    for ( i = 0; i < g->nfetched; i++ )
        if ( addr < g->fetched[i].addr + g->fetched[i].len &&
             addr + len > g->fetched[i].addr )
            g->double_fetch = true;
    if ( g->nfetched < GUEST_LOG_MAX )
    {
        g->fetched[g->nfetched].addr = addr;
        g->fetched[g->nfetched].len = len;
        g->nfetched++;
    }
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return 0;
}

static inline int guest_copy_to(void *ctx, uint64_t addr, const void *src,
                                size_t len)
{
    struct guest *g = ctx;

    g->accesses++;
    if ( g->fail_at && g->accesses == g->fail_at )
        return -EFAULT;
    if ( guest_overlaps_bad(g, addr, len) )
        return -EFAULT;
    memcpy((void *)(uintptr_t)addr, src, len);
    return 0;
}

static const struct hypfs_guest_ops guest_ops = {
    .copy_from = guest_copy_from,
    .copy_to = guest_copy_to,
};

static inline void guest_reset(struct guest *g)
{
    memset(g, 0, sizeof(*g));
}

/* Callers: the control domain, an ordinary domain, one without rights. */
static inline struct hypfs_caller caller_control(struct guest *g)
{
    struct hypfs_caller c = { 0, HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL,
                              &guest_ops, g };
    return c;
}

static inline struct hypfs_caller caller_domain(struct guest *g, uint32_t domid)
{
    struct hypfs_caller c = { domid, HYPFS_CALLER_HYPFS, &guest_ops, g };
    return c;
}

static inline struct hypfs_caller caller_none(struct guest *g)
{
    struct hypfs_caller c = { 77, 0, &guest_ops, g };
    return c;
}

static inline uint64_t gaddr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* Read @path into @buf (@len bytes) as @c. */
static inline long op_read(struct hypfs *fs, const struct hypfs_caller *c,
                           const char *path, void *buf, size_t len)
{
    return hypfs_do_op(fs, c, XEN_HYPFS_OP_read, gaddr(path),
                       strlen(path) + 1, gaddr(buf), len);
}

/* Write @len bytes of @data to @path as @c. */
static inline long op_write(struct hypfs *fs, const struct hypfs_caller *c,
                            const char *path, const void *data, size_t len)
{
    return hypfs_do_op(fs, c, XEN_HYPFS_OP_write_contents, gaddr(path),
                       strlen(path) + 1, gaddr(data), len);
}

/* Write a string value, NUL included. */
static inline long op_write_str(struct hypfs *fs, const struct hypfs_caller *c,
                                const char *path, const char *val)
{
    return op_write(fs, c, path, val, strlen(val) + 1);
}

/* Read a leaf's content as the control domain into @out; returns its size
 * or a negative errno. */
static inline long read_content(struct hypfs *fs, const char *path, void *out,
                                size_t outlen)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[8192];
    struct xen_hypfs_direntry d;
    long ret;

    guest_reset(&g);
    c = caller_control(&g);
    ret = op_read(fs, &c, path, buf, sizeof(buf));
    if ( ret )
        return ret;
    memcpy(&d, buf, sizeof(d));
    if ( d.content_len > outlen )
        return -ENOBUFS;
    memcpy(out, buf + sizeof(d), d.content_len);
    return d.content_len;
}

/* A uint32 leaf @name in @dir, with rights @rd/@wr. */
static inline struct hypfs_entry_leaf *mk_leaf(struct hypfs *fs,
                                               struct hypfs_entry_dir *dir,
                                               const char *name,
                                               unsigned int rd,
                                               unsigned int wr)
{
    struct hypfs_entry_leaf *l;
    uint32_t v = 1;

    assert_int_equal(hypfs_leaf_new(dir, name, XEN_HYPFS_TYPE_UINT, &v, 4, 4,
                                    &l), 0);
    hypfs_write_lock(fs);
    assert_int_equal(hypfs_set_access(&l->e, rd, wr), 0);
    hypfs_write_unlock(fs);
    return l;
}

/* A directory @name in @parent, readable by @rd, owned by @owner (>= 0). */
static inline struct hypfs_entry_dir *mk_dir(struct hypfs *fs,
                                             struct hypfs_entry_dir *parent,
                                             const char *name,
                                             unsigned int rd, long owner)
{
    struct hypfs_entry_dir *d;

    assert_int_equal(hypfs_dir_new(parent, name, &d), 0);
    hypfs_write_lock(fs);
    assert_int_equal(hypfs_set_access(&d->e, rd, HYPFS_RIGHT_CONTROL), 0);
    if ( owner >= 0 )
        hypfs_dir_set_owner(d, (uint32_t)owner);
    hypfs_write_unlock(fs);
    return d;
}

/* Parse a listing into names separated by ',' (for compact assertions). */
static inline int listing_names(const unsigned char *content, uint32_t len,
                                char *out, size_t outlen)
{
    size_t off = 0, o = 0;
    int n = 0;

    out[0] = '\0';
    while ( off < len )
    {
        struct xen_hypfs_dirlistentry rec;
        const char *name = (const char *)content + off + XEN_HYPFS_DIRENTRY_NAME_OFF;
        size_t nl = strlen(name);

        memcpy(&rec, content + off, sizeof(rec.e) + sizeof(rec.off_next));
        if ( o + nl + 2 > outlen )
            return -1;
        if ( n )
            out[o++] = ',';
        memcpy(out + o, name, nl + 1);
        o += nl;
        n++;
        if ( !rec.off_next )
            break;
        off += rec.off_next;
    }
    return n;
}

#endif /* HYPFS_TEST_HARNESS_H */
