/*
 * The hypfs_op dispatcher: one hypercall from validation to answer.
 *
 * hypfs_do_op() checks, in Xen's order: the caller's right to use hypfs at
 * all, get_version's arguments, the path (length, fetch, NUL, leading '/'),
 * the lookup, the command, and then the command's own rules (see
 * hypfs/abi.h and SPEC section 1).  Everything a call needs lives in its
 * struct call on the stack: its own copy of the path, the dynamic
 * directories it entered, the instances it generated, its render buffer.
 * Nothing is shared between calls but the tree, under the tree lock.
 *
 * Guest memory is reached only through the caller's accessor.  The path is
 * fetched once into the call's buffer; written data is fetched once into a
 * private buffer, checked there and only then applied, so a failed write
 * changes nothing and no guest byte is read twice.
 *
 * A directory is read in two passes over the same view of its children:
 * the first sums the record sizes (content_len), the second writes the
 * records.  Views of dynamic directories are materialised once per call,
 * so both passes see the same children even if the embedder's list
 * changes meanwhile.  Children the caller may not read are skipped in both.
 *
 * Interface version 2's commands (read_tree, get_generation, watch,
 * unwatch) live in v2.c, on the same machinery (call.h).  A successful
 * write records its generation (gen.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"

static CORE_TLS struct call *current;

void *hypfs_get_dyndata(void)
{
    struct call *c = current;

    LOCK_ASSERT(core_lock_state != UNLOCKED,
                "hypfs_get_dyndata() outside an operation");
    return c && c->ninst ? c->inst[c->ninst - 1].data : NULL;
}

int hypfs_get_dynid(uint32_t *id)
{
    struct call *c = current;

    LOCK_ASSERT(core_lock_state != UNLOCKED,
                "hypfs_get_dynid() outside an operation");
    if ( !c || !c->ninst )
        return -ENOENT;
    *id = c->inst[c->ninst - 1].id;
    return 0;
}

struct call *call_current(void)
{
    return current;
}

/*
 * What a failed guest access returns: the accessor's own negative errno
 * (-EFAULT, or for instance -ENOMEM when an embedder's buffer cannot
 * grow), -EFAULT for any other failure value.
 */
static int guest_err(int r)
{
    return r < 0 && r >= -4095 ? r : -EFAULT;
}

int to_guest(const struct hypfs_caller *caller, uint64_t addr,
                    const void *src, size_t len)
{
    int r = caller->mem->copy_to(caller->mem_ctx, addr, src, len);

    return r ? guest_err(r) : 0;
}

int from_guest(const struct hypfs_caller *caller, void *dst,
                      uint64_t addr, size_t len)
{
    int r = caller->mem->copy_from(caller->mem_ctx, dst, addr, len);

    return r ? guest_err(r) : 0;
}

/* ---- Rights ---- */

/* ---- Dynamic directories ---- */

int enter_dyndir(struct call *c, const struct hypfs_dyndir *dd)
{
    int ret;

    if ( c->nentered == MAX_DYN_DEPTH )
        return -ELOOP;
    if ( dd->ops->enter )
    {
        ret = dd->ops->enter(dd);
        if ( ret )
            return ret < 0 ? ret : -EIO;
    }
    c->entered[c->nentered++] = dd;
    return 0;
}

void exit_dyndir(struct call *c)
{
    const struct hypfs_dyndir *dd = c->entered[--c->nentered];

    if ( dd->ops->exit )
        dd->ops->exit(dd);
}

int enter_dir(struct call *c, const struct hypfs_entry_dir *dir,
              const struct hypfs_dyndir **dd)
{
    int ret;

    *dd = NULL;
    if ( !(dir->e.flags & EF_DYNDIR) ||
         entered(c, (const struct hypfs_dyndir *)dir) )
        return 0;
    ret = enter_dyndir(c, (const struct hypfs_dyndir *)dir);
    if ( !ret )
        *dd = (const struct hypfs_dyndir *)dir;
    return ret;
}

bool entered(const struct call *c, const struct hypfs_dyndir *dd)
{
    unsigned int i;

    for ( i = 0; i < c->nentered; i++ )
        if ( c->entered[i] == dd )
            return true;
    return false;
}

/* Strict decimal: what "%u" prints, nothing else. */
bool parse_id(const char *s, size_t len, uint32_t *id)
{
    uint64_t v = 0;
    size_t i;

    if ( !len || len > ID_NAME_MAX - 1 || (len > 1 && s[0] == '0') )
        return false;
    for ( i = 0; i < len; i++ )
    {
        if ( s[i] < '0' || s[i] > '9' )
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if ( v > UINT32_MAX )
        return false;
    *id = (uint32_t)v;
    return true;
}

static size_t format_id(char *buf, uint32_t id)
{
    char tmp[ID_NAME_MAX];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + id % 10);
        id /= 10;
    } while ( id );
    for ( i = 0; i < n; i++ )
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

int make_instance(struct call *c, const struct hypfs_dyndir *dd,
                  uint32_t id, void *data, struct owner parent,
                  struct hypfs_entry **out)
{
    struct dyninst *in;

    if ( c->ninst == MAX_DYN_DEPTH )
        return -ELOOP;
    in = &c->inst[c->ninst++];
    memset(&in->dir, 0, sizeof(in->dir));
    format_id(in->name, id);
    in->dd = dd;
    in->data = data;
    in->id = id;
    in->gens = dd->ops->gens ? dd->ops->gens(dd, data) : NULL;
    in->dir.e.type = XEN_HYPFS_TYPE_DIR;
    in->dir.e.encoding = XEN_HYPFS_ENC_PLAIN;
    in->dir.e.access = dd->tmpl->e.access;
    in->dir.e.flags = EF_INSTANCE;
    in->dir.e.name = in->name;
    /* The instance's owner, set directly: it is in no tree. */
    if ( dd->flags & HYPFS_DYNDIR_OWNER_IS_ID )
    {
        in->dir.owner = id;
        in->dir.e.flags |= EF_HAS_OWNER;
    }
    else if ( parent.set )
    {
        in->dir.owner = parent.domid;
        in->dir.e.flags |= EF_HAS_OWNER;
    }
    *out = &in->dir.e;
    return 0;
}

/* ---- Lookup ---- */

static int find_child(struct call *c, struct hypfs_entry_dir *dir,
                      struct owner dir_owner, const char *name, size_t len,
                      struct hypfs_entry **child)
{
    if ( dir->e.flags & EF_DYNDIR )
    {
        const struct hypfs_dyndir *dd = (const struct hypfs_dyndir *)dir;
        void *data = NULL;
        uint32_t id;
        int ret;

        if ( !parse_id(name, len, &id) )
            return -ENOENT;
        if ( !entered(c, dd) )
        {
            ret = enter_dyndir(c, dd);
            if ( ret )
                return ret;
        }
        ret = dd->ops->find_id(dd, id, &data);
        if ( ret )
            return ret == -ENOENT || ret > 0 ? -ENOENT : ret;
        return make_instance(c, dd, id, data, dir_owner, child);
    }

    dir = index_dir(dir);
    *child = index_find(dir_index(dir), name_hash(name, len), name, len);
    return *child ? 0 : -ENOENT;
}

/* One step of a lookup for a change: @child (owner @owner) is next. */
static void where_step(const struct call *c, struct where *w,
                       const struct hypfs_entry *child, struct owner owner)
{
    vis_step(&w->vis, child->access, owner);
    if ( child->flags & EF_INSTANCE )
    {
        const struct dyninst *in = (const struct dyninst *)child;

        /* Changes inside it are recorded in its own generations. */
        w->inst[w->ninst].gens = in->gens;
        w->inst[w->ninst].owner = owner;
        w->ninst++;
        /* Without a record, only the control domain can be told. */
        if ( !in->gens )
            w->vis.kind = VIS_CONTROL;
    }
    else if ( child->type == XEN_HYPFS_TYPE_DIR && c->ninst == 0 )
        w->dir = (struct hypfs_entry_dir *)child;
    else if ( child->flags & EF_HAS_OWNER )
    {
        /*
         * An owner inside a template: a region in every instance,
         * recorded nowhere.  Only the control domain can be told.
         */
        w->vis.kind = VIS_CONTROL;
    }
}

/*
 * Resolve @path (absolute, NUL-terminated) for the caller.  Every component
 * must exist and be readable by the caller; a trailing '/' requires a
 * directory; an empty component never matches.  For a call that changes
 * something (c->changes), work out on the way where a change of it would
 * be recorded, and who could see it (r->w); reads need none of that.
 */
int lookup(struct call *c, const char *path, struct resolved *r)
{
    struct hypfs_entry *entry = &c->fs->root.e;
    struct owner owner = owner_of(entry, (struct owner){ false, 0 });
    const char *p = path + 1;

    if ( !may(c, RIGHT_READ(entry->access), owner) )
        return -ENOENT;
    if ( c->changes )
    {
        /* Not a memset: where is large. */
        r->w.dir = &c->fs->root;
        r->w.leaf = NULL;
        r->w.ninst = 0;
        vis_init(&r->w.vis);
        vis_step(&r->w.vis, entry->access, owner);
    }

    for ( ;; )
    {
        struct hypfs_entry *child;
        const char *end;
        int ret;

        if ( !*p )
            break;
        if ( entry->type != XEN_HYPFS_TYPE_DIR )
            return -ENOENT;
        end = strchrnul(p, '/');
        ret = find_child(c, (struct hypfs_entry_dir *)entry, owner, p,
                         (size_t)(end - p), &child);
        if ( ret )
            return ret;
        owner = owner_of(child, owner);
        if ( !may(c, RIGHT_READ(child->access), owner) )
            return -ENOENT;
        entry = child;
        if ( c->changes )
        {
            where_step(c, &r->w, child, owner);
            if ( (child->flags & EF_INSTANCE) && r->w.ninst == 1 )
                r->w.inst_path_len = (size_t)(end - path);
        }
        if ( !*end )
            break;
        p = end + 1;
        /* "name/" names a directory. */
        if ( !*p && entry->type != XEN_HYPFS_TYPE_DIR )
            return -ENOENT;
    }
    r->entry = entry;
    r->owner = owner;
    r->in_inst = c->ninst > 0;
    if ( c->changes && entry->type != XEN_HYPFS_TYPE_DIR && !r->in_inst )
        r->w.leaf = entry;
    return 0;
}

/* ---- Leaf content ---- */

/* A rendered value must be a valid value of its type. */
static int check_rendered(const struct hypfs_entry *e, const struct hypfs_buf *b)
{
    if ( e->encoding != XEN_HYPFS_ENC_PLAIN )
        return 0;
    switch ( e->type )
    {
    case XEN_HYPFS_TYPE_STRING:
        if ( !b->len || b->data[b->len - 1] != '\0' )
            return -EIO;
        break;
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_INT:
        if ( b->len != e->size )
            return -EIO;
        break;
    case XEN_HYPFS_TYPE_BOOL:
        if ( b->len != 1 || (unsigned char)b->data[0] > 1 )
            return -EIO;
        break;
    }
    return b->len > UINT32_MAX - sizeof(struct xen_hypfs_direntry) ? -EFBIG : 0;
}

/* The content of leaf @e: rendered into c->render, or in place. */
int leaf_content(struct call *c, const struct hypfs_entry *e,
                 const void **data, uint32_t *size)
{
    int ret;

    LOCK_ASSERT(core_lock_state != UNLOCKED, "a leaf read without the lock");
    if ( !entry_rendered(e) )
    {
        *data = leaf_value((const struct hypfs_entry_leaf *)e);
        *size = e->size;
        return 0;
    }
    buf_reset(&c->render);
    ret = e->funcs->read(e, &c->render);
    if ( ret )
        return ret < 0 ? ret : -EIO;
    ret = check_rendered(e, &c->render);
    if ( ret )
        return ret;
    *data = c->render.data;
    *size = (uint32_t)c->render.len;
    return 0;
}

/* ---- Directory views ---- */

static int collect_id(void *arg, unsigned int id)
{
    struct idlist *l = arg;

    if ( l->n == l->cap )
    {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct idname *v;

        if ( cap > SIZE_MAX / sizeof(*v) )
            return -ENOMEM;
        v = core_realloc(l->v, cap * sizeof(*v));
        if ( !v )
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].id = id;
    l->v[l->n].len = (uint8_t)format_id(l->v[l->n].name, id);
    l->n++;
    return 0;
}

static int idname_cmp(const void *a, const void *b)
{
    return name_cmp(((const struct idname *)a)->name,
                    ((const struct idname *)b)->name);
}

/* Open a view; the caller has entered @dir if it is dynamic. */
int view_open(struct call *c, struct hypfs_entry_dir *dir,
              struct owner owner, struct view *v)
{
    int ret;

    memset(v, 0, sizeof(*v));
    v->dir = dir;
    v->owner = owner;
    if ( dir->e.flags & EF_DYNDIR )
    {
        v->dd = (const struct hypfs_dyndir *)dir;
        ret = v->dd->ops->foreach_id(v->dd, collect_id, &v->ids);
        if ( ret )
        {
            core_free(v->ids.v);
            v->ids.v = NULL;
            return ret < 0 ? ret : -EIO;
        }
        /* An empty list has no array at all: qsort() may not see NULL. */
        if (v->ids.n > 1)
            qsort(v->ids.v, v->ids.n, sizeof(*v->ids.v), idname_cmp);
        return 0;
    }
    return index_sorted(c->fs, dir_index(index_dir(dir)), &v->order, &v->nr);
}

void view_close(struct view *v)
{
    core_free(v->ids.v);
    v->ids.v = NULL;
}

/* Child @i of the view; false past the end.  Skips duplicate ids. */
bool view_child(const struct view *v, size_t *i, struct child *ch)
{
    if ( v->dd )
    {
        const struct idname *in;

        while ( *i < v->ids.n && *i &&
                v->ids.v[*i].id == v->ids.v[*i - 1].id )
            (*i)++;
        if ( *i >= v->ids.n )
            return false;
        in = &v->ids.v[*i];
        ch->entry = NULL;
        ch->id = in->id;
        ch->name = in->name;
        ch->len = in->len;
        ch->access = v->dd->tmpl->e.access;
        ch->owner = v->dd->flags & HYPFS_DYNDIR_OWNER_IS_ID ?
                    (struct owner){ true, in->id } : v->owner;
        return true;
    }
    if ( *i >= v->nr )
        return false;
    ch->entry = v->order[*i];
    ch->name = ch->entry->name;
    ch->len = strlen(ch->name);
    ch->access = ch->entry->access;
    ch->owner = owner_of(ch->entry, v->owner);
    return true;
}

/*
 * Sum of the records of the children visible to the caller, and how many
 * they are.
 */
int view_size(struct call *c, const struct view *v, uint32_t *size,
              size_t *count)
{
    struct child ch;
    uint64_t sum = 0;
    size_t i, n = 0;

    /* The control domain sees every child: the tree keeps that sum. */
    if ( c->control && !v->dd )
    {
        *size = index_dir(v->dir)->e.size;
        *count = v->nr;
        return 0;
    }
    for ( i = 0; view_child(v, &i, &ch); i++ )
        if ( may(c, RIGHT_READ(ch.access), ch.owner) )
        {
            sum += XEN_HYPFS_DIRENTRY_SIZE(ch.len);
            n++;
        }
    if ( sum > UINT32_MAX - sizeof(struct xen_hypfs_direntry) )
        return -E2BIG;
    *size = (uint32_t)sum;
    *count = n;
    return 0;
}

/* content_len of directory @dir (owner @o) for the caller. */
int dir_size(struct call *c, struct hypfs_entry_dir *dir, struct owner o,
             uint32_t *size)
{
    const struct hypfs_dyndir *dd;
    struct view v;
    size_t count;
    int ret = enter_dir(c, dir, &dd);

    if ( ret )
        return ret;
    ret = view_open(c, dir, o, &v);
    if ( !ret )
        ret = view_size(c, &v, size, &count);
    view_close(&v);
    if ( dd )
        exit_dyndir(c);
    return ret;
}

/* The direntry part of @ch's record. */
int child_direntry(struct call *c, const struct view *v,
                   const struct child *ch, struct xen_hypfs_direntry *d)
{
    const struct hypfs_entry *e = ch->entry;
    const void *data;
    int ret = 0;

    memset(d, 0, sizeof(*d));
    if ( !e )
    {
        /* An instance: shaped like the template, owned as the view says. */
        struct hypfs_entry_dir *tmpl = v->dd->tmpl;
        struct view tv;
        size_t count;

        d->type = XEN_HYPFS_TYPE_DIR;
        d->encoding = XEN_HYPFS_ENC_PLAIN;
        ret = view_open(c, tmpl, ch->owner, &tv);
        if ( !ret )
            ret = view_size(c, &tv, &d->content_len, &count);
        view_close(&tv);
        return ret;
    }

    d->type = e->type;
    d->encoding = e->encoding;
    d->max_write_len = max_write_len(c, e, ch->owner);
    if ( e->type == XEN_HYPFS_TYPE_DIR )
        return dir_size(c, (struct hypfs_entry_dir *)e, ch->owner,
                        &d->content_len);
    return leaf_content(c, e, &data, &d->content_len);
}

int stage_flush(struct stage *s)
{
    int ret;

    if ( !s->used )
        return 0;
    ret = to_guest(s->c->caller, s->addr, s->buf, s->used);
    if ( ret )
        return ret;
    s->addr += s->used;
    s->used = 0;
    return 0;
}

/*
 * Room for @len bytes (at most STAGE_SIZE) in the stage at *p, flushing it
 * first if needed.  0, or the flush's error.
 */
int stage_reserve(struct stage *s, size_t len, unsigned char **p)
{
    int ret = len > STAGE_SIZE - s->used ? stage_flush(s) : 0;

    if ( ret )
        return ret;
    *p = s->buf + s->used;
    s->used += len;
    return 0;
}

/*
 * How far ahead a listing prefetches entries: far enough to cover a memory
 * access with the work of the entries in between, so that a directory much
 * larger than the caches lists at close to memory bandwidth.
 */
#define PREFETCH_AHEAD  24u

/*
 * Always inlined: as a function of its own GCC finds it has no side
 * effects and deletes every call to it.
 */
static inline __attribute__((always_inline))
void prefetch_entry(const struct view *v, size_t i)
{
    const char *e;

    if ( v->dd || i >= v->nr )
        return;
    e = (const char *)v->order[i];
    /* The struct, and the line where an inline name usually continues. */
    __builtin_prefetch(e);
    __builtin_prefetch(e + 48);
}

/*
 * The direntry of a listing's record, kept in registers and written into
 * the record field by field: a direntry written field by field in memory
 * and copied whole is read back in wider loads than its stores, which
 * store forwarding cannot serve, and that stall was half of a listing's
 * time.  (Names are at most HYPFS_NAME_MAX bytes: a record always fits in
 * an emptied stage.)
 */
struct rec_head {
    uint8_t type, encoding;
    uint32_t content_len, max_write_len;
};

static inline struct rec_head rec_head_of(const struct xen_hypfs_direntry *d)
{
    return (struct rec_head){ d->type, d->encoding, d->content_len,
                              d->max_write_len };
}

/*
 * Put the record of child @name (@len bytes) in @s, built in place in the
 * stage; @last: the last record, whose off_next is 0.
 */
static inline __attribute__((always_inline))
int put_record(struct stage *s, struct rec_head h, const char *name,
               size_t len, bool last)
{
    size_t reclen = XEN_HYPFS_DIRENTRY_SIZE(len);
    uint16_t off_next = last ? 0 : (uint16_t)reclen, pad = 0;
    unsigned char *rec;

    if ( reclen > STAGE_SIZE - s->used )
    {
        int ret = stage_flush(s);

        if ( ret )
            return ret;
    }
    rec = s->buf + s->used;
    s->used += reclen;
    rec[offsetof(struct xen_hypfs_direntry, type)] = h.type;
    rec[offsetof(struct xen_hypfs_direntry, encoding)] = h.encoding;
    memcpy(rec + offsetof(struct xen_hypfs_direntry, pad), &pad, sizeof(pad));
    memcpy(rec + offsetof(struct xen_hypfs_direntry, content_len),
           &h.content_len, sizeof(h.content_len));
    memcpy(rec + offsetof(struct xen_hypfs_direntry, max_write_len),
           &h.max_write_len, sizeof(h.max_write_len));
    memcpy(rec + offsetof(struct xen_hypfs_dirlistentry, off_next),
           &off_next, sizeof(off_next));
    /* The name, then its NUL and the padding: at most 4 bytes. */
    memcpy(rec + XEN_HYPFS_DIRENTRY_NAME_OFF, name, len);
    memset(rec + XEN_HYPFS_DIRENTRY_NAME_OFF + len, 0, 4);
    return 0;
}

/*
 * The listing of a directory that is not dynamic.  Its records are what
 * a listing of a million entries is made of, so the common child, a leaf
 * whose content is in place, is done here without a call: the generic
 * path (view_child(), child_direntry(), leaf_content()) cost more than the
 * memory accesses it waits for.  Directories and rendered leaves take the
 * generic path.
 */
static int emit_static(struct call *c, const struct view *v, uint32_t size,
                       size_t count, struct stage *s)
{
    size_t i, k, emitted = 0, written = 0;
    int ret;

    for ( k = 0; k < PREFETCH_AHEAD; k++ )
        prefetch_entry(v, k);
    for ( i = 0; i < v->nr; i++ )
    {
        const struct hypfs_entry *e = v->order[i];
        struct owner owner = owner_of(e, v->owner);
        struct rec_head h;
        size_t len;

        prefetch_entry(v, i + PREFETCH_AHEAD);
        if ( !may(c, RIGHT_READ(e->access), owner) )
            continue;
        if ( emitted == count )
            return -EIO;    /* more than the first pass saw: a core bug */
        len = strlen(e->name);
        if ( e->type != XEN_HYPFS_TYPE_DIR && !entry_rendered(e) )
        {
            LOCK_ASSERT(core_lock_state != UNLOCKED,
                        "a leaf read without the lock");
            h = (struct rec_head){ e->type, e->encoding, e->size,
                                   max_write_len(c, e, owner) };
        }
        else
        {
            struct child ch = {
                .entry = e, .name = e->name, .len = len,
                .access = e->access, .owner = owner,
            };
            struct xen_hypfs_direntry d;

            ret = child_direntry(c, v, &ch, &d);
            if ( ret )
                return ret;
            h = rec_head_of(&d);
        }
        ret = put_record(s, h, e->name, len, ++emitted == count);
        if ( ret )
            return ret;
        written += XEN_HYPFS_DIRENTRY_SIZE(len);
    }
    /* The two passes saw the same children: anything else is a core bug. */
    return written == size && emitted == count ? 0 : -EIO;
}

/*
 * Write the listing of @v (@count visible children, @size bytes) after the
 * direntry in @s.
 */
static int emit_listing(struct call *c, const struct view *v, uint32_t size,
                        size_t count, struct stage *s)
{
    struct child ch;
    size_t i, emitted = 0, written = 0;
    int ret;

    if ( !v->dd )
        return emit_static(c, v, size, count, s);
    for ( i = 0; view_child(v, &i, &ch); i++ )
    {
        struct xen_hypfs_direntry d;

        if ( !may(c, RIGHT_READ(ch.access), ch.owner) )
            continue;
        if ( emitted == count )
            return -EIO;    /* more than the first pass saw: a core bug */
        ret = child_direntry(c, v, &ch, &d);
        if ( !ret )
            ret = put_record(s, rec_head_of(&d), ch.name, ch.len,
                             ++emitted == count);
        if ( ret )
            return ret;
        written += XEN_HYPFS_DIRENTRY_SIZE(ch.len);
    }
    /* The two passes saw the same children: anything else is a core bug. */
    return written == size && emitted == count ? 0 : -EIO;
}

/* ---- Commands ---- */

/* A leaf whose direntry and content fit here goes out in one copy. */
#define LEAF_STACK_BUF  256u

static long read_leaf(struct call *c, const struct resolved *r, uint64_t addr,
                      uint64_t len)
{
    const struct hypfs_caller *caller = c->caller;
    const struct hypfs_entry *e = r->entry;
    struct xen_hypfs_direntry d;
    unsigned char out[LEAF_STACK_BUF];
    const void *data;
    uint32_t size;
    int ret;

    ret = leaf_content(c, e, &data, &size);
    if ( ret )
        return ret;

    memset(&d, 0, sizeof(d));
    d.type = e->type;
    d.encoding = e->encoding;
    d.content_len = size;
    d.max_write_len = max_write_len(c, e, r->owner);

    if ( len < sizeof(d) + (uint64_t)size || sizeof(d) + size > sizeof(out) )
    {
        /* The direntry goes first, whatever follows. */
        ret = to_guest(caller, addr, &d, sizeof(d));
        if ( ret )
            return ret;
        if ( len < sizeof(d) + (uint64_t)size )
            return -ENOBUFS;
        return to_guest(caller, addr + sizeof(d), data, size);
    }
    memcpy(out, &d, sizeof(d));
    memcpy(out + sizeof(d), data, size);
    return to_guest(caller, addr, out, sizeof(d) + size);
}

static long read_dir(struct call *c, const struct resolved *r, uint64_t addr,
                     uint64_t len)
{
    const struct hypfs_caller *caller = c->caller;
    struct hypfs_entry_dir *dir = (struct hypfs_entry_dir *)r->entry;
    struct xen_hypfs_direntry d;
    struct stage s;
    struct view v;
    uint32_t size;
    size_t count;
    long ret;

    if ( (dir->e.flags & EF_DYNDIR) &&
         !entered(c, (const struct hypfs_dyndir *)dir) )
    {
        ret = enter_dyndir(c, (const struct hypfs_dyndir *)dir);
        if ( ret )
            return ret;
    }
    ret = view_open(c, dir, r->owner, &v);
    if ( ret )
        return ret;
    ret = view_size(c, &v, &size, &count);
    if ( ret )
        goto out;

    memset(&d, 0, sizeof(d));
    d.type = XEN_HYPFS_TYPE_DIR;
    d.encoding = XEN_HYPFS_ENC_PLAIN;
    d.content_len = size;

    if ( len < sizeof(d) + (uint64_t)size )
    {
        ret = to_guest(caller, addr, &d, sizeof(d));
        if ( !ret )
            ret = -ENOBUFS;
        goto out;
    }
    s.c = c;
    s.addr = addr;
    s.used = sizeof(d);
    memcpy(s.buf, &d, sizeof(d));
    ret = emit_listing(c, &v, size, count, &s);
    if ( !ret )
        ret = stage_flush(&s);

 out:
    view_close(&v);
    return ret;
}

static long do_read(struct call *c, const struct resolved *r, uint64_t addr,
                    uint64_t len)
{
    if ( len < sizeof(struct xen_hypfs_direntry) )
        return -EINVAL;
    if ( r->entry->type == XEN_HYPFS_TYPE_DIR )
        return read_dir(c, r, addr, len);
    return read_leaf(c, r, addr, len);
}

/* The longest value a write of @e may carry (its handler may say more). */
static unsigned int write_limit(const struct hypfs_entry *e)
{
    if ( e->funcs && e->funcs->write && e->funcs->write_max )
        return e->funcs->write_max;
    return e->max_size;
}

/*
 * The checks of a write that need no guest access: may the caller write
 * the entry at all, and may a value of @len bytes go there?  In Xen's
 * order; 0 if the write goes on to fetch the value.
 */
static long write_checks(const struct call *c, const struct resolved *r,
                         uint64_t len)
{
    const struct hypfs_entry *e = r->entry;

    if ( e->type == XEN_HYPFS_TYPE_DIR || !e->max_size ||
         !may(c, RIGHT_WRITE(e->access), r->owner) )
        return -EACCES;
    if ( e->type == XEN_HYPFS_TYPE_BOOL )
        return len != 1 ? -EDOM : 0;
    if ( len > write_limit(e) )
        return -ENOSPC;
    if ( (e->type == XEN_HYPFS_TYPE_UINT || e->type == XEN_HYPFS_TYPE_INT) &&
         len != e->size )
        return -EDOM;
    return 0;
}

/* Small values are fetched onto the stack; larger ones into the heap. */
#define WRITE_STACK_BUF 256u

/*
 * A write that leaves a value as it was is no change: its generation
 * stays, watchers are not woken, and the embedder's audit trail (which
 * compares generations) has nothing to record, so a caller cannot flood
 * either by writing the same value again and again.  A handler's value is
 * compared as it reads back: a copy taken before the write (no memory for
 * it: -ENOMEM, nothing written), the value read again after it (which
 * reuses the render buffer the copy was read into); a value that cannot
 * be read counts as changed.
 */
static int value_copy(struct call *c, const struct hypfs_entry *e,
                      void **copy, uint32_t *size)
{
    const void *data;
    int ret = leaf_content(c, e, &data, size);

    *copy = NULL;
    if ( ret )
        return ret == -ENOMEM ? ret : 0;
    *copy = core_malloc(*size ? *size : 1);
    if ( !*copy )
        return -ENOMEM;
    memcpy(*copy, data, *size);
    return 0;
}

static bool value_is(struct call *c, const struct hypfs_entry *e,
                     const void *old, uint32_t size)
{
    const void *data;
    uint32_t n;

    return !leaf_content(c, e, &data, &n) && n == size &&
           !memcmp(data, old, n);
}

static long do_write(struct call *c, const struct resolved *r,
                     const char *path, uint64_t addr, uint64_t len)
{
    const struct hypfs_caller *caller = c->caller;
    struct hypfs_entry *e = r->entry;
    struct hypfs_entry_leaf *leaf = (struct hypfs_entry_leaf *)e;
    bool custom = e->funcs && e->funcs->write;
    unsigned char stackbuf[WRITE_STACK_BUF];
    unsigned char *buf = stackbuf;
    bool same;
    long ret;

    /* Size rules first: they need no guest access. */
    ret = write_checks(c, r, len);
    if ( ret )
        return ret;

    /* Fetch once into a private copy. */
    if ( len > sizeof(stackbuf) )
    {
        buf = core_malloc((size_t)len);
        if ( !buf )
            return -ENOMEM;
    }
    if ( len && (ret = from_guest(caller, buf, addr, (size_t)len)) )
        goto out;

    /* Content rules, on the private copy. */
    switch ( e->type )
    {
    case XEN_HYPFS_TYPE_STRING:
        if ( custom && (e->funcs->flags & HYPFS_WRITE_RAW_STRING) )
            break;      /* the handler judges the bytes itself */
        if ( !len || memchr(buf, 0, (size_t)len) != buf + len - 1 )
        {
            /* Xen's runtime-parameter handlers say -EDOM here. */
            ret = custom ? -EDOM : -EINVAL;
            goto out;
        }
        break;
    case XEN_HYPFS_TYPE_BOOL:
        if ( buf[0] > 1 )
        {
            ret = -EINVAL;
            goto out;
        }
        break;
    }

    if ( custom )
    {
        uint32_t oldsize = 0;
        void *old;

        LOCK_ASSERT(core_lock_state == WRITE_LOCKED,
                    "a write callback without the writer lock");
        ret = value_copy(c, e, &old, &oldsize);
        if ( ret )
            goto out;
        ret = e->funcs->write(leaf, buf, (unsigned int)len);
        if ( ret > 0 )
            ret = -EIO;
        same = !ret && old && value_is(c, e, old, oldsize);
        core_free(old);
    }
    else
    {
        void *val = e->flags & EF_INLINE ? (void *)&leaf->u.val
                                         : leaf->u.write_ptr;

        same = e->size == len && !memcmp(val, buf, (size_t)len);
        memcpy(val, buf, (size_t)len);
        e->size = (unsigned int)len;
        ret = 0;
    }
    if ( !ret && !same )
        gen_bump(c->fs, &r->w, path);

 out:
    if ( buf != stackbuf )
        core_free(buf);
    return ret;
}

/*
 * The checks every command makes before the tree is locked: the caller's
 * right to use hypfs, get_version's arguments, and the path, fetched once
 * into @path.  Returns 0 to go on, else the hypercall's result (which is
 * never 0: get_version's is positive, the rest are errors).
 */
static inline __attribute__((always_inline))
long check_call(struct hypfs *fs, const struct hypfs_caller *caller,
                unsigned int cmd, uint64_t arg1, uint64_t arg2, uint64_t arg3,
                uint64_t arg4, char *path)
{
    long ret;

    if ( !fs || !caller || !(caller->flags & HYPFS_CALLER_HYPFS) )
        return -EPERM;

    if ( cmd == XEN_HYPFS_OP_get_version )
        return arg1 || arg2 || arg3 || arg4 ? -EINVAL : XEN_HYPFS_VERSION;

    if ( arg2 > XEN_HYPFS_MAX_PATHLEN )
        return -EINVAL;
    if ( arg2 && (ret = from_guest(caller, path, arg1, (size_t)arg2)) )
        return ret;
    if ( !arg2 || memchr(path, 0, (size_t)arg2) != path + arg2 - 1 )
        return -EINVAL;
    if ( path[0] != '/' )
        return -EINVAL;

    /* A callback calling back in would deadlock on the tree lock. */
    if ( core_lock_state != UNLOCKED )
        return -EDEADLK;
    return 0;
}

/* Inlined into hypfs_do_op(): this is every call's path. */
static inline __attribute__((always_inline))
void begin(struct call *c, struct hypfs *fs, const struct hypfs_caller *caller,
           bool write)
{
    c->fs = fs;
    c->caller = caller;
    c->control = caller->flags & HYPFS_CALLER_CONTROL;
    c->changes = write;
    c->nentered = 0;
    c->ninst = 0;
    buf_init(&c->render);
    if ( write )
        tree_write_lock(fs);
    else
        tree_read_lock(fs);
    current = c;
}

void call_begin(struct call *c, struct hypfs *fs,
                const struct hypfs_caller *caller, bool write)
{
    begin(c, fs, caller, write);
}

/* Inlined into hypfs_do_op(), as begin() is. */
static inline __attribute__((always_inline)) void end(struct call *c)
{
    while ( c->nentered )
        exit_dyndir(c);
    current = NULL;
    tree_unlock(c->fs);
    buf_fini(&c->render);
}

void call_end(struct call *c)
{
    end(c);
}

/* write_checks() for @path, under the reader lock. */
static long write_precheck(struct hypfs *fs, const struct hypfs_caller *caller,
                           const char *path, uint64_t len)
{
    struct resolved r;
    struct call c;
    long ret;

    call_begin(&c, fs, caller, false);
    ret = lookup(&c, path, &r);
    if ( !ret )
        ret = write_checks(&c, &r, len);
    call_end(&c);
    return ret;
}

long hypfs_write_check(struct hypfs *fs, const struct hypfs_caller *caller,
                       uint64_t arg1, uint64_t arg2, uint64_t arg4)
{
    char path[XEN_HYPFS_MAX_PATHLEN];
    long ret = check_call(fs, caller, XEN_HYPFS_OP_write_contents, arg1, arg2,
                          0, arg4, path);

    if ( ret )
        return ret;
    return write_precheck(fs, caller, path, arg4);
}

long hypfs_do_op(struct hypfs *fs, const struct hypfs_caller *caller,
                 unsigned int cmd, uint64_t arg1, uint64_t arg2,
                 uint64_t arg3, uint64_t arg4)
{
    char path[XEN_HYPFS_MAX_PATHLEN];
    bool write = cmd == XEN_HYPFS_OP_write_contents;
    struct resolved r;
    struct call c;
    long ret;

    /* unwatch names a watch by its token: no path. */
    if ( cmd == XEN_HYPFS_OP_unwatch && fs && caller &&
         (caller->flags & HYPFS_CALLER_HYPFS) )
        return do_unwatch(fs, caller, arg1, arg2, arg3, arg4);
    ret = check_call(fs, caller, cmd, arg1, arg2, arg3, arg4, path);
    if ( ret )
        return ret;

    /*
     * A write needs the writer lock, which stops every reader.  A caller
     * other than the control domain is checked under the reader lock
     * first, so that writes it may not make (most of what a guest could
     * try) are refused without stopping anyone.  The checks run again
     * under the writer lock: the tree may change in between.
     */
    if ( write && !(caller->flags & HYPFS_CALLER_CONTROL) )
    {
        ret = write_precheck(fs, caller, path, arg4);
        if ( ret )
            return ret;
    }

    begin(&c, fs, caller, write);
    ret = lookup(&c, path, &r);
    if ( ret )
        goto out;

    switch ( cmd )
    {
    case XEN_HYPFS_OP_read:
        ret = do_read(&c, &r, arg3, arg4);
        break;
    case XEN_HYPFS_OP_write_contents:
        ret = do_write(&c, &r, path, arg3, arg4);
        break;
    case XEN_HYPFS_OP_read_tree:
        ret = do_read_tree(&c, &r, path, arg3, arg4);
        break;
    case XEN_HYPFS_OP_get_generation:
        ret = do_get_generation(&c, &r, arg3, arg4);
        break;
    case XEN_HYPFS_OP_watch:
        ret = do_watch(&c, &r, path, arg3, arg4);
        break;
    default:
        ret = -EOPNOTSUPP;
        break;
    }

 out:
    end(&c);
    return ret;
}
