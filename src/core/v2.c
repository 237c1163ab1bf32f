/*
 * Interface version 2: a consistent read of a whole subtree, generations
 * as each caller sees them, watches, and the embedder's notifications.
 * See hypfs/abi.h for the commands and gen.c for the bookkeeping.
 *
 * read_tree walks the subtree depth-first, children in name order, under
 * the one lock the call holds: a snapshot.  Each entry is rendered once
 * (as a read would render it) and streamed to the caller's buffer through
 * the call's stage; past the end of the buffer the walk goes on counting,
 * so that -ENOBUFS says the size needed, as read does.
 *
 * A caller's view of a generation: for the control domain, the last
 * change below; for a domain, the last change it could see there: what
 * every domain could see, what its own region (below a directory it owns,
 * or in its own instance) says, and for a directory above owned regions,
 * what each owner root below it keeps for that domain.
 */
#include <errno.h>
#include <string.h>

#include "call.h"

#define TREE_DEPTH_MAX  128u

/* ---- Generations as seen ----
 *
 * The control domain is shown stamps + 1 (never 0, which watchers use
 * for "I know nothing"); a domain, gen_mask() of the stamps it may know.
 */

/* What a domain's hashed views are made of (gen_mask()'s tag). */
enum { VIEW_LEAF = 1, VIEW_DIR, VIEW_INSTANCE };

/* Is @dir at or below @top in the tree? */
static bool below(const struct hypfs_entry_dir *dir,
                  const struct hypfs_entry_dir *top)
{
    for ( ; dir; dir = dir->priv ? dir->priv->parent : NULL )
        if ( dir == top )
            return true;
    return false;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/*
 * What changed in @dd's template: in every instance at once, so every
 * instance's view includes it (gen.c).
 */
static const struct hypfs_gens *tmpl_gens(const struct hypfs_dyndir *dd)
{
    static const struct hypfs_gens none;

    return dd->tmpl->priv ? &dd->tmpl->priv->gens : &none;
}

/*
 * The stamp of the last change domain @id's own instance of @dd says its
 * owner saw, its template's included (0: no such instance, or no record).
 */
static uint64_t instance_owned(struct call *c, const struct hypfs_dyndir *dd,
                               uint32_t id)
{
    bool was_entered = entered(c, dd);
    void *data = NULL;
    uint64_t v = 0;

    if ( !dd->ops->gens || (!was_entered && enter_dyndir(c, dd)) )
        return 0;
    if ( !dd->ops->find_id(dd, id, &data) )
    {
        const struct hypfs_gens *g = dd->ops->gens(dd, data);

        /* Read while the embedder's object is held (enter). */
        if ( g )
            v = max_u64(g->owner, tmpl_gens(dd)->owner);
    }
    if ( !was_entered )
        exit_dyndir(c);
    return v;
}

/*
 * The last change below @dir (outside any region of the caller's that
 * @dir is in) that only the caller could see: what the regions it owns
 * below say, and what went from below.
 */
static uint64_t owned_below(struct call *c, const struct hypfs_entry_dir *dir)
{
    uint32_t domid = c->caller->domid;
    const struct hypfs_entry_dir *r;
    uint64_t v = 0, w;

    for ( r = c->fs->owner_roots; r; r = r->priv->next_owner_root )
    {
        if ( !below(r, dir) )
            continue;
        if ( r->e.flags & EF_DYNDIR )
            w = instance_owned(c, (const struct hypfs_dyndir *)r, domid);
        else if ( r != dir && r->owner == domid )
            w = r->priv->gens.owner;
        else
            continue;
        if ( w > v )
            v = w;
    }
    for ( r = c->fs->tomb_parents; r; r = r->priv->next_tomb_parent )
        if ( below(r, dir) && (w = tomb_get(r, domid)) > v )
            v = w;
    return v;
}

/* A stored directory's generation as the caller sees it. */
static uint64_t dir_view(struct call *c, const struct hypfs_entry_dir *dir,
                         struct owner owner)
{
    const struct hypfs_gens *gs = &dir->priv->gens;
    uint32_t domid = c->caller->domid;
    uint64_t own;

    if ( c->control )
        return gs->all + 1;
    /* In a region of its own, every change it may see is stamped here. */
    if ( owner.set && owner.domid == domid )
        own = gs->owner;
    else
        own = owned_below(c, dir);
    return gen_mask(c->fs, domid, VIEW_DIR, gs->any, own);
}

/*
 * The generation of what @r resolved to, as the caller sees it.  Inside
 * an instance: the instance's record, for everything in it.
 */
static uint64_t view_of(struct call *c, const struct resolved *r)
{
    uint32_t domid = c->caller->domid;

    if ( r->in_inst )
    {
        const struct dyninst *in = &c->inst[c->ninst - 1];
        const struct hypfs_gens *gs = in->gens, *t;

        if ( !gs )
        {
            /* No record: the control domain has its dynamic dir's. */
            return c->control ? in->dd->dir.priv->gens.all + 1
                              : gen_mask(c->fs, domid, VIEW_INSTANCE, 0, 0);
        }
        t = tmpl_gens(in->dd);
        if ( c->control )
            return max_u64(gs->all, t->all) + 1;
        return gen_mask(c->fs, domid, VIEW_INSTANCE, max_u64(gs->any, t->any),
                        r->owner.set && r->owner.domid == domid
                        ? max_u64(gs->owner, t->owner) : 0);
    }
    if ( r->entry->type != XEN_HYPFS_TYPE_DIR )
    {
        uint64_t g = gen_of_leaf(c->fs, r->entry);

        /* A leaf it may read: every change of it is one it may see. */
        return c->control ? g + 1 : gen_mask(c->fs, domid, VIEW_LEAF, g, 0);
    }
    return dir_view(c, (const struct hypfs_entry_dir *)r->entry, r->owner);
}

long do_get_generation(struct call *c, const struct resolved *r,
                       uint64_t addr, uint64_t len)
{
    uint64_t gen;

    if ( len < sizeof(gen) )
        return -EINVAL;
    gen = view_of(c, r);
    return to_guest(c->caller, addr, &gen, sizeof(gen));
}

long hypfs_get_generation(struct hypfs *fs, const struct hypfs_caller *caller,
                          const char *path, uint64_t *gen)
{
    struct resolved r;
    struct call c;
    long ret;

    if ( !fs || !caller || !(caller->flags & HYPFS_CALLER_HYPFS) )
        return -EPERM;
    if ( !path || path[0] != '/' ||
         strnlen(path, XEN_HYPFS_MAX_PATHLEN) == XEN_HYPFS_MAX_PATHLEN )
        return -EINVAL;
    if ( core_lock_state != UNLOCKED )
        return -EDEADLK;
    call_begin(&c, fs, caller, false);
    ret = lookup(&c, path, &r);
    if ( !ret )
        *gen = view_of(&c, &r);
    call_end(&c);
    return ret;
}

/* ---- Watches ---- */

long do_watch(struct call *c, const struct resolved *r, const char *path,
              uint64_t token, uint64_t known)
{
    const struct hypfs_watch_ops *ops = c->fs->watch_ops;
    int ret;

    if ( !ops || !ops->watch )
        return -EOPNOTSUPP;
    ret = ops->watch(c->fs->watch_arg, c->caller, path, token, known,
                     view_of(c, r));
    return ret > 0 ? -EIO : ret;
}

long do_unwatch(struct hypfs *fs, const struct hypfs_caller *caller,
                uint64_t arg1, uint64_t arg2, uint64_t token, uint64_t arg4)
{
    const struct hypfs_watch_ops *ops = fs->watch_ops;
    int ret;

    if ( arg1 || arg2 || arg4 )
        return -EINVAL;
    if ( !ops || !ops->unwatch )
        return -EOPNOTSUPP;
    ret = ops->unwatch(fs->watch_arg, caller, token);
    return ret > 0 ? -EIO : ret;
}

/* ---- read_tree ---- */

struct walk {
    struct call *c;
    struct stage s;             /* records, streamed after the header */
    uint64_t room;              /* bytes the buffer has for records */
    uint64_t total;             /* bytes of records so far */
    bool writing;               /* still within the buffer */
    uint32_t count;
    size_t base_len;            /* the subtree's own path, without NUL */
    char rel[XEN_HYPFS_MAX_PATHLEN];
    size_t rel_len;
};

/* Put @len bytes (@data NULL: zeros) into the records. */
static int walk_put(struct walk *w, const void *data, size_t len)
{
    static const unsigned char zeros[XEN_HYPFS_TREE_ALIGN];
    const unsigned char *p = data;
    int ret;

    if ( w->writing && w->total + len > w->room )
        w->writing = false;
    w->total += len;
    if ( w->total > UINT32_MAX - sizeof(struct xen_hypfs_treehdr) )
        return -E2BIG;
    while ( w->writing && len )
    {
        size_t chunk = len < STAGE_SIZE ? len : STAGE_SIZE;
        unsigned char *dst;

        ret = stage_reserve(&w->s, chunk, &dst);
        if ( ret )
            return ret;
        if ( p )
        {
            memcpy(dst, p, chunk);
            p += chunk;
        }
        else
            memcpy(dst, zeros, chunk);
        len -= chunk;
    }
    return 0;
}

static int walk_record(struct walk *w, const struct xen_hypfs_direntry *d,
                       uint64_t gen, unsigned int depth, const void *content,
                       uint32_t clen)
{
    struct xen_hypfs_treeentry rec;
    size_t plen = w->rel_len + 1;
    size_t ppad = XEN_HYPFS_TREE_PAD(plen), cpad = XEN_HYPFS_TREE_PAD(clen);
    int ret;

    memset(&rec, 0, sizeof(rec));
    rec.e = *d;
    rec.gen = gen;
    rec.path_len = (uint16_t)plen;
    rec.depth = (uint16_t)depth;
    rec.rec_len = (uint32_t)(sizeof(rec) + ppad + cpad);
    if ( (ret = walk_put(w, &rec, sizeof(rec))) ||
         (ret = walk_put(w, w->rel, plen)) ||
         (ret = walk_put(w, NULL, ppad - plen)) ||
         (clen && (ret = walk_put(w, content, clen))) ||
         (ret = walk_put(w, NULL, cpad - clen)) )
        return ret;
    w->count++;
    return 0;
}

/* Append "/name" (or "name" at the top) to the relative path. */
static int walk_push(struct walk *w, const char *name, size_t len,
                     size_t *saved)
{
    size_t need = w->rel_len + (w->rel_len ? 1 : 0) + len;

    *saved = w->rel_len;
    /* Every entry must be one a caller could name: path + NUL <= 1024. */
    if ( w->base_len + 1 + need + 1 > XEN_HYPFS_MAX_PATHLEN )
        return -ENAMETOOLONG;
    if ( w->rel_len )
        w->rel[w->rel_len++] = '/';
    memcpy(w->rel + w->rel_len, name, len);
    w->rel_len += len;
    w->rel[w->rel_len] = '\0';
    return 0;
}

static void walk_pop(struct walk *w, size_t saved)
{
    w->rel_len = saved;
    w->rel[saved] = '\0';
}

static int walk_dir(struct walk *w, struct hypfs_entry_dir *dir,
                    struct owner owner, unsigned int depth);

/* The generation of a child being walked (in @v of @dir). */
static uint64_t child_gen(struct walk *w, const struct hypfs_entry *e,
                          struct owner owner)
{
    struct call *c = w->c;
    struct resolved r = { .entry = (struct hypfs_entry *)e, .owner = owner,
                          .in_inst = c->ninst > 0 };

    return view_of(c, &r);
}

/* One child: its record, then (a directory) everything below it. */
static int walk_child(struct walk *w, const struct view *v,
                      const struct child *ch, unsigned int depth)
{
    struct call *c = w->c;
    struct xen_hypfs_direntry d;
    struct hypfs_entry *e = (struct hypfs_entry *)ch->entry;
    const void *content = NULL;
    uint32_t clen = 0;
    bool pushed = false;
    size_t saved;
    int ret;

    /* The walk's recursion, and the records' depth, are bounded. */
    if ( depth >= TREE_DEPTH_MAX )
        return -ELOOP;
    ret = walk_push(w, ch->name, ch->len, &saved);
    if ( ret )
        return ret;
    if ( !e )
    {
        /* An instance: generated for the walk of its subtree. */
        void *data = NULL;

        ret = v->dd->ops->find_id(v->dd, ch->id, &data);
        if ( ret )
        {
            /* Gone since the view was taken: then it is not there. */
            walk_pop(w, saved);
            return ret == -ENOENT || ret > 0 ? 0 : ret;
        }
        ret = make_instance(c, v->dd, ch->id, data, v->owner, &e);
        if ( ret )
            goto out;
        pushed = true;
    }
    if ( e->type == XEN_HYPFS_TYPE_DIR )
    {
        if ( pushed )
        {
            struct view tv;
            size_t count;

            memset(&d, 0, sizeof(d));
            d.type = XEN_HYPFS_TYPE_DIR;
            ret = view_open(c, v->dd->tmpl, ch->owner, &tv);
            if ( !ret )
                ret = view_size(c, &tv, &d.content_len, &count);
            view_close(&tv);
        }
        else
            ret = child_direntry(c, v, ch, &d);
        if ( !ret )
            ret = walk_record(w, &d, child_gen(w, e, ch->owner), depth,
                              NULL, 0);
        if ( !ret )
            ret = walk_dir(w, (struct hypfs_entry_dir *)e, ch->owner,
                           depth);
    }
    else
    {
        memset(&d, 0, sizeof(d));
        d.type = e->type;
        d.encoding = e->encoding;
        d.max_write_len = max_write_len(c, e, ch->owner);
        ret = leaf_content(c, e, &content, &clen);
        d.content_len = clen;
        if ( !ret )
            ret = walk_record(w, &d, child_gen(w, e, ch->owner), depth,
                              content, clen);
    }
 out:
    if ( pushed )
        c->ninst--;
    walk_pop(w, saved);
    return ret;
}

/* Everything below @dir the caller may see, children in name order. */
static int walk_dir(struct walk *w, struct hypfs_entry_dir *dir,
                    struct owner owner, unsigned int depth)
{
    struct call *c = w->c;
    const struct hypfs_dyndir *dd;
    struct child ch;
    struct view v;
    size_t i;
    int ret = enter_dir(c, dir, &dd);

    if ( ret )
        return ret;
    ret = view_open(c, dir, owner, &v);
    for ( i = 0; !ret && view_child(&v, &i, &ch); i++ )
        if ( may(c, RIGHT_READ(ch.access), ch.owner) )
            ret = walk_child(w, &v, &ch, depth + 1);
    view_close(&v);
    if ( dd )
        exit_dyndir(c);
    return ret;
}

long do_read_tree(struct call *c, const struct resolved *r, const char *path,
                  uint64_t addr, uint64_t len)
{
    struct xen_hypfs_treehdr hdr;
    struct walk *w;
    long ret;

    if ( len < sizeof(hdr) )
        return -EINVAL;
    /* The walk's state is large (a stage, a path): not on the stack. */
    w = core_calloc(1, sizeof(*w));
    if ( !w )
        return -ENOMEM;
    w->c = c;
    w->s.c = c;
    w->s.addr = addr + sizeof(hdr);
    w->room = len - sizeof(hdr);
    w->writing = true;
    w->base_len = strlen(path);
    /* "name/" names a directory: the same one as "name". */
    while ( w->base_len > 1 && path[w->base_len - 1] == '/' )
        w->base_len--;

    /* The path's own entry first (its relative path is ""). */
    if ( r->entry->type == XEN_HYPFS_TYPE_DIR )
    {
        struct xen_hypfs_direntry d;

        memset(&d, 0, sizeof(d));
        d.type = XEN_HYPFS_TYPE_DIR;
        ret = dir_size(c, (struct hypfs_entry_dir *)r->entry, r->owner,
                       &d.content_len);
        if ( !ret )
            ret = walk_record(w, &d, view_of(c, r), 0, NULL, 0);
        if ( !ret )
            ret = walk_dir(w, (struct hypfs_entry_dir *)r->entry, r->owner, 0);
    }
    else
    {
        struct xen_hypfs_direntry d;
        const void *content;
        uint32_t clen;

        memset(&d, 0, sizeof(d));
        d.type = r->entry->type;
        d.encoding = r->entry->encoding;
        d.max_write_len = max_write_len(c, r->entry, r->owner);
        ret = leaf_content(c, r->entry, &content, &clen);
        d.content_len = clen;
        if ( !ret )
            ret = walk_record(w, &d, view_of(c, r), 0, content, clen);
    }
    if ( !ret && w->writing )
        ret = stage_flush(&w->s);
    if ( !ret )
    {
        memset(&hdr, 0, sizeof(hdr));
        hdr.e.type = XEN_HYPFS_TYPE_DIR;
        hdr.e.content_len = (uint32_t)w->total;
        hdr.nr_entries = w->count;
        ret = to_guest(c->caller, addr, &hdr, sizeof(hdr));
        if ( !ret && !w->writing )
            ret = -ENOBUFS;
    }
    core_free(w);
    return ret;
}

/* ---- The embedder's notifications ---- */

static const struct hypfs_caller notifier = {
    .domid = 0,
    .flags = HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL,
};

/*
 * Lock for a notification: the writer lock, unless this thread holds it
 * through hypfs_write_lock() already (a change the embedder made under
 * it).  From inside an operation's callback it would deadlock.
 */
static int notify_lock(struct hypfs *fs, bool *took)
{
    *took = false;
    if ( call_current() )
        return -EDEADLK;
    if ( core_lock_state == WRITE_LOCKED )
        return 0;
    if ( core_lock_state != UNLOCKED )
        return -EDEADLK;
    tree_write_lock(fs);
    *took = true;
    return 0;
}

static int check_path(const char *path)
{
    size_t n;

    if ( !path || path[0] != '/' )
        return -EINVAL;
    n = strnlen(path, XEN_HYPFS_MAX_PATHLEN);
    return n == XEN_HYPFS_MAX_PATHLEN ? -EINVAL : 0;
}

/*
 * A lookup for a notification: as the control domain, under the lock
 * taken already (call_begin() would take it).
 */
static int notify_lookup(struct call *c, struct hypfs *fs, const char *path,
                         struct resolved *r)
{
    memset(c, 0, sizeof(*c));
    c->fs = fs;
    c->caller = &notifier;
    c->control = true;
    c->changes = true;
    buf_init(&c->render);
    return lookup(c, path, r);
}

static void notify_end(struct call *c)
{
    while ( c->nentered )
        exit_dyndir(c);
    buf_fini(&c->render);
}

int hypfs_notify(struct hypfs *fs, const char *path)
{
    struct resolved r;
    struct call c;
    bool took;
    int ret = check_path(path);

    if ( ret || !fs )
        return ret ? ret : -EINVAL;
    ret = notify_lock(fs, &took);
    if ( ret )
        return ret;
    ret = notify_lookup(&c, fs, path, &r);
    if ( !ret )
        gen_bump(fs, &r.w, path);
    notify_end(&c);
    if ( took )
        tree_unlock(fs);
    return ret;
}

int hypfs_forget_owner(struct hypfs *fs, uint32_t domid)
{
    struct hypfs_entry_dir *d;
    bool took;
    int ret;

    if ( !fs )
        return -EINVAL;
    ret = notify_lock(fs, &took);
    if ( ret )
        return ret;
    for ( d = fs->tomb_parents; d; d = d->priv->next_tomb_parent )
        tomb_delete(&d->priv->tombs, domid);
    if ( took )
        tree_unlock(fs);
    return 0;
}

int hypfs_notify_gone(struct hypfs *fs, const char *path)
{
    char parent[XEN_HYPFS_MAX_PATHLEN];
    struct hypfs_dyndir *dd;
    const char *name;
    struct resolved r;
    struct call c;
    uint32_t id;
    bool took;
    int ret = check_path(path);

    if ( ret || !fs )
        return ret ? ret : -EINVAL;
    name = strrchr(path, '/') + 1;
    if ( !parse_id(name, strlen(name), &id) )
        return -EINVAL;
    memcpy(parent, path, (size_t)(name - path));
    parent[name - path] = '\0';
    ret = notify_lock(fs, &took);
    if ( ret )
        return ret;
    ret = notify_lookup(&c, fs, parent, &r);
    if ( !ret && (!(r.entry->flags & EF_DYNDIR) || r.in_inst) )
        ret = -ENOENT;
    if ( !ret )
    {
        /* As its instance was seen: the template's rights, its owner. */
        struct owner o = r.owner;

        dd = (struct hypfs_dyndir *)r.entry;
        if ( dd->flags & HYPFS_DYNDIR_OWNER_IS_ID )
        {
            o.set = true;
            o.domid = id;
        }
        vis_step(&r.w.vis, dd->tmpl->e.access, o);
        r.w.leaf = NULL;
        /* Its owner's record went with it: a tombstone says it went. */
        if ( r.w.vis.kind == VIS_OWNER )
            ret = tomb_reserve(&dd->dir);
        if ( !ret )
        {
            uint64_t g = gen_bump(fs, &r.w, path);

            if ( r.w.vis.kind == VIS_OWNER )
                tomb_record(fs, &dd->dir,
                            r.w.vis.owner, g);
        }
    }
    notify_end(&c);
    if ( took )
        tree_unlock(fs);
    return ret;
}
