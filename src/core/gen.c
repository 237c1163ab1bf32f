/*
 * Generations (interface version 2): when did what change, for whom.
 *
 * A tree has one counter, fs->gen, moved by every change; each change is
 * stamped with it on its way up the tree, for those who could see it:
 *
 *   a leaf        its last change (32 low bits in the entry: see below);
 *   a directory   three stamps (struct hypfs_gens in its private state):
 *                 the last change below it of any kind (the control
 *                 domain's view), the last that every domain could see,
 *                 and the last its owner could see (within a region owned
 *                 by a domain: below a directory with an owner);
 *   an instance   of a dynamic directory: the same three, kept by the
 *                 embedder in its object (hypfs_dyndir_ops.gens), for
 *                 everything inside the instance;
 *   a template    what changed in it (an entry added or removed at run
 *                 time) changed in every instance at once: its
 *                 directories' stamps, which every instance's view
 *                 includes, its owner stamp standing for each instance's
 *                 owner when instances are owned by their ids.
 *
 * Who could see a change (struct vis) is worked out along its path from
 * the root: every domain, if every entry on the way is readable by any;
 * one domain, if the entry is in a region it owns and readable by it;
 * each instance's owner, inside a template whose instances are owned by
 * their ids; else only the control domain.  A domain's view of a directory above the
 * regions it owns adds what they say: v2.c asks the owner roots below the
 * directory, and the tombstones of owned entries that went from below it.
 *
 * A domain is never shown a stamp itself: the stamps count every change
 * of the tree, and the difference between two of them would tell it how
 * many changes it could not see happened in between.  It is shown a keyed
 * hash (SipHash-2-4, a key per tree drawn at random) of the stamps it may
 * know of: the value differs exactly when something it may see changed,
 * and says nothing else.  The stamps a domain's view is made of only ever
 * grow, so a view never comes back to an earlier value.  The control
 * domain, which sees everything, is shown the stamps.
 *
 * A change costs O(depth): the entry, then each directory above it.
 * Nothing per watcher happens here; the change hook only takes note.
 * Who could see an entry added or removed is worked out from what is
 * kept for its directory (struct dir_vis) rather than from the root
 * again: working it out was a seventh of the cost of an add.
 *
 * A leaf keeps the 32 low bits of its stamp, so that leaves stay as small
 * as they were.  The full number is rebuilt from the tree's: the largest
 * one not above it with those low bits.  That is exact for any leaf
 * changed less than 2^32 changes ago; an older one reads up to 2^32 too
 * new, which can only ever make a watcher look once more, never miss a
 * change (its real last change is older still).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "core-internal.h"
#include "hypfs-testing.h"

/* Paths are at most 1024 bytes: no deeper chain of directories. */
#define CHAIN_MAX   512u

void vis_init(struct vis *v)
{
    v->kind = VIS_ANY;
    v->owner = 0;
}

void vis_step(struct vis *v, uint8_t access, struct owner owner)
{
    switch ( RIGHT_READ(access) )
    {
    case HYPFS_RIGHT_ANY:
        return;
    case HYPFS_RIGHT_OWNER:
        if ( !owner.set )
            v->kind = VIS_CONTROL;
        else if ( v->kind == VIS_ANY )
        {
            v->kind = VIS_OWNER;
            v->owner = owner.domid;
        }
        else if ( v->kind == VIS_OWNER && v->owner != owner.domid )
            v->kind = VIS_CONTROL;
        return;
    default:
        v->kind = VIS_CONTROL;
    }
}

static struct owner owner_below(const struct hypfs_entry *e, struct owner o)
{
    if ( e->type == XEN_HYPFS_TYPE_DIR && (e->flags & EF_HAS_OWNER) )
    {
        o.set = true;
        o.domid = ((const struct hypfs_entry_dir *)e)->owner;
    }
    return o;
}

/*
 * The stored directories from @dir up to the root, deepest first: their
 * number.  *@dd_at: the place in it of the dynamic directory whose
 * template @dir is in (0: none; @dir itself is never one).  *@control: a
 * change at @dir is for the control domain only: in a template inside
 * another template, or deeper than any path can be.
 */
static unsigned int chain_up(struct hypfs_entry_dir *dir,
                             struct hypfs_entry_dir **chain,
                             unsigned int *dd_at, bool *control)
{
    unsigned int n = 0;

    *dd_at = 0;
    *control = false;
    for ( ; dir && dir->priv; dir = dir->priv->parent )
    {
        if ( n == CHAIN_MAX )
        {
            *control = true;
            break;
        }
        if ( dir->e.flags & EF_DYNDIR && n )
        {
            if ( *dd_at )
                *control = true;
            *dd_at = n;
        }
        chain[n++] = dir;
    }
    return n;
}

/*
 * One step down inside a template whose instances are owned by their ids:
 * what the owner of each instance may see there.  A region inside the
 * template (a directory with an owner of its own) is in every instance
 * and recorded nowhere: the control domain's only.
 */
static void vis_step_each(struct vis *v, const struct hypfs_entry *e)
{
    if ( e->type == XEN_HYPFS_TYPE_DIR && (e->flags & EF_HAS_OWNER) )
    {
        v->kind = VIS_CONTROL;
        return;
    }
    switch ( RIGHT_READ(e->access) )
    {
    case HYPFS_RIGHT_ANY:
        return;
    case HYPFS_RIGHT_OWNER:
        /* An owner's region above: one instance's owner at most. */
        if ( v->kind == VIS_ANY )
            v->kind = VIS_EACH_OWNER;
        else if ( v->kind != VIS_EACH_OWNER )
            v->kind = VIS_CONTROL;
        return;
    default:
        v->kind = VIS_CONTROL;
    }
}

/*
 * Who could see @child below the @n directories of @chain (chain_up()'s
 * @dd_at and @control).  Inside a template, each instance has the
 * template's rights and, with HYPFS_DYNDIR_OWNER_IS_ID, its id as owner.
 */
static void vis_down(struct hypfs_entry_dir *const *chain, unsigned int n,
                     unsigned int dd_at, bool control,
                     const struct hypfs_entry *child, struct vis *v)
{
    struct owner o = { false, 0 };
    bool each = false;

    vis_init(v);
    if ( control )
    {
        v->kind = VIS_CONTROL;
        return;
    }
    while ( n-- )
    {
        const struct hypfs_entry *e = &chain[n]->e;

        if ( each )
            vis_step_each(v, e);
        else
        {
            o = owner_below(e, o);
            vis_step(v, e->access, o);
            if ( dd_at && n < dd_at && (e->flags & EF_HAS_OWNER) )
                v->kind = VIS_CONTROL;
        }
        if ( dd_at && n == dd_at &&
             (((const struct hypfs_dyndir *)chain[n])->flags &
              HYPFS_DYNDIR_OWNER_IS_ID) )
            each = true;
    }
    if ( each )
        vis_step_each(v, child);
    else
    {
        o = owner_below(child, o);
        vis_step(v, child->access, o);
        if ( dd_at && (child->flags & EF_HAS_OWNER) &&
             child->type == XEN_HYPFS_TYPE_DIR )
            v->kind = VIS_CONTROL;
    }
}

/*
 * Stamp @g on the @n directories of @chain for those @v says could see
 * the change: from the root down, so that each directory's owner is known.
 * Each instance's owner's changes move the owner stamps of the template's
 * directories (below @dd_at), which every instance's view includes.
 */
static void bump_chain(struct hypfs_entry_dir *const *chain, unsigned int n,
                       unsigned int dd_at, const struct vis *v, uint64_t g)
{
    bool any = v->kind == VIS_ANY, owned = v->kind == VIS_OWNER;
    bool each = v->kind == VIS_EACH_OWNER;
    struct owner o = { false, 0 };

    while ( n-- )
    {
        struct hypfs_gens *gs = &chain[n]->priv->gens;

        o = owner_below(&chain[n]->e, o);
        gs->all = g;
        if ( any )
            gs->any = g;
        /* Only its own owner's changes move an owner's record. */
        if ( (owned && o.set && o.domid == v->owner) || (each && n < dd_at) )
            gs->owner = g;
    }
}

void gen_vis_of_child(const struct hypfs_entry_dir *parent,
                      const struct hypfs_entry *child, struct vis *v)
{
    struct hypfs_entry_dir *chain[CHAIN_MAX];
    unsigned int dd_at, n;
    bool control;

    n = chain_up((struct hypfs_entry_dir *)parent, chain, &dd_at, &control);
    vis_down(chain, n, dd_at, control, child, v);
}

uint64_t gen_bump(struct hypfs *fs, const struct where *w, const char *path)
{
    uint64_t g = ++fs->gen;
    bool any = w->vis.kind == VIS_ANY, owned = w->vis.kind == VIS_OWNER;
    struct hypfs_entry_dir *chain[CHAIN_MAX];
    unsigned int dd_at, i, n;
    bool control;

    LOCK_ASSERT(core_lock_state == WRITE_LOCKED,
                "a change recorded without the writer lock");
    if ( w->leaf )
        w->leaf->gen = (uint32_t)g;
    for ( i = 0; i < w->ninst; i++ )
    {
        struct hypfs_gens *gs = w->inst[i].gens;

        if ( !gs )
            continue;
        gs->all = g;
        if ( any )
            gs->any = g;
        /* Only its own owner's changes move an owner's record. */
        if ( owned && w->inst[i].owner.set &&
             w->inst[i].owner.domid == w->vis.owner )
            gs->owner = g;
    }
    /* A stored directory on a path: never in a template (dd_at 0). */
    n = chain_up(w->dir, chain, &dd_at, &control);
    bump_chain(chain, n, dd_at, &w->vis, g);
    if ( fs->hook )
    {
        char inst[XEN_HYPFS_MAX_PATHLEN];

        if ( path && w->ninst && w->inst_path_len < sizeof(inst) )
        {
            memcpy(inst, path, w->inst_path_len);
            inst[w->inst_path_len] = '\0';
            path = inst;
        }
        fs->hook(fs->hook_arg, path ? path : "/", g);
    }
    return g;
}

/*
 * The epoch of every directory's struct dir_vis: moved by any change of a
 * directory's rights or owner, in any tree (rare: such changes are made
 * when a directory is made, before its children), so that none is kept
 * past one that could change it.  Starts above the 0 of "never".
 */
static uint64_t vis_epoch = 1;

void gen_vis_changed(void)
{
    __atomic_add_fetch(&vis_epoch, 1, __ATOMIC_RELAXED);
}

/*
 * @dir's struct dir_vis brought up to @epoch, with those of the
 * directories above it that are not: false if the path is deeper than
 * that can be done for (then chain_up() and vis_down() do it all).
 */
static bool dir_vis_fill(struct hypfs_entry_dir *dir, uint64_t epoch)
{
    struct hypfs_entry_dir *chain[CHAIN_MAX], *d, *up;
    struct dir_vis s;
    unsigned int n = 0;

    for ( d = dir; d && d->priv && d->priv->dvis.epoch != epoch;
          d = d->priv->parent )
    {
        if ( n == CHAIN_MAX )
            return false;
        chain[n++] = d;
    }
    up = d && d->priv ? d : NULL;
    if ( up )
        s = up->priv->dvis;
    else
    {
        vis_init(&s.vis);
        s.owner.set = false;
        s.owner.domid = 0;
        s.depth = 0;
        s.plain = true;
    }
    while ( n-- )
    {
        d = chain[n];
        /* A step below a dynamic directory is into its template. */
        s.plain = s.plain && !(up && (up->e.flags & EF_DYNDIR));
        s.depth = up ? s.depth + 1 : 0;
        if ( s.depth + 1 >= CHAIN_MAX )
            s.plain = false;
        s.owner = owner_below(&d->e, s.owner);
        vis_step(&s.vis, d->e.access, s.owner);
        s.epoch = epoch;
        d->priv->dvis = s;
        up = d;
    }
    return true;
}

uint64_t gen_bump_child(struct hypfs *fs, struct hypfs_entry_dir *parent,
                        const struct hypfs_entry *child, const char *path,
                        struct vis *v)
{
    struct hypfs_entry_dir *chain[CHAIN_MAX], *d;
    uint64_t g = ++fs->gen;
    uint64_t epoch = __atomic_load_n(&vis_epoch, __ATOMIC_RELAXED);
    const struct dir_vis *pv = &parent->priv->dvis;
    unsigned int dd_at, n;
    bool control;

    LOCK_ASSERT(core_lock_state == WRITE_LOCKED,
                "a change recorded without the writer lock");
    if ( (pv->epoch == epoch || dir_vis_fill(parent, epoch)) && pv->plain )
    {
        bool any, owned;

        /* vis_down() and bump_chain() without a template on the path. */
        *v = pv->vis;
        vis_step(v, child->access, owner_below(child, pv->owner));
        any = v->kind == VIS_ANY;
        owned = v->kind == VIS_OWNER;
        for ( d = parent; d && d->priv; d = d->priv->parent )
        {
            struct hypfs_dir_priv *p = d->priv;

            p->gens.all = g;
            if ( any )
                p->gens.any = g;
            if ( owned && p->dvis.owner.set &&
                 p->dvis.owner.domid == v->owner )
                p->gens.owner = g;
        }
    }
    else
    {
        n = chain_up(parent, chain, &dd_at, &control);
        vis_down(chain, n, dd_at, control, child, v);
        bump_chain(chain, n, dd_at, v, g);
    }
    if ( fs->hook )
        fs->hook(fs->hook_arg, path ? path : "/", g);
    return g;
}

uint64_t gen_of_leaf(const struct hypfs *fs, const struct hypfs_entry *e)
{
    return fs->gen - (uint32_t)((uint32_t)fs->gen - e->gen);
}

void gen_path_of(const struct hypfs_entry_dir *dir, const char *name,
                 char *buf, size_t len)
{
    const struct hypfs_entry_dir *chain[CHAIN_MAX], *d;
    unsigned int n = 0;
    size_t off = 0;

    for ( d = dir; d && d->priv && d->priv->parent && n < CHAIN_MAX;
          d = d->priv->parent )
    {
        /* A template's: every instance changed; say the dynamic dir's. */
        if ( d->e.flags & EF_DYNDIR && n )
        {
            n = 0;
            name = NULL;
        }
        chain[n++] = d;
    }
    buf[0] = '\0';
    while ( n-- && off < len )
        off += (size_t)snprintf(buf + off, len - off, "/%s", chain[n]->e.name);
    if ( name && off < len )
        off += (size_t)snprintf(buf + off, len - off, "/%s", name);
    if ( !off )
        snprintf(buf, len, "/");
}

/* ---- What domains are shown ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for ( i = 7; i >= 0; i-- )
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while ( 0 )

/* Aumasson and Bernstein's SipHash-2-4 (2012), as specified. */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    uint64_t m, b = (uint64_t)len << 56;
    size_t left = len & 7, i;

    for ( ; len >= 8; len -= 8, p += 8 )
    {
        m = le64(p);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for ( i = 0; i < left; i++ )
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static void put_le(uint8_t *p, uint64_t v, unsigned int n)
{
    unsigned int i;

    for ( i = 0; i < n; i++ )
        p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t gen_mask(const struct hypfs *fs, uint32_t domid, uint32_t tag,
                  uint64_t a, uint64_t b)
{
    uint8_t msg[24];
    uint64_t h;

    put_le(msg, domid, 4);
    put_le(msg + 4, tag, 4);
    put_le(msg + 8, a, 8);
    put_le(msg + 16, b, 8);
    h = siphash24(fs->mask_key, msg, sizeof(msg));
    /* 0 is what a watcher that knows nothing says it knows. */
    return h ? h : 1;
}

void gen_init_key(struct hypfs *fs)
{
    size_t got = 0;

    while ( got < sizeof(fs->mask_key) )
    {
        ssize_t n = getrandom(fs->mask_key + got, sizeof(fs->mask_key) - got,
                              0);

        if ( n < 0 && errno == EINTR )
            continue;
        if ( n <= 0 )
            break;
        got += (size_t)n;
    }
    if ( got < sizeof(fs->mask_key) )
    {
        /* No getrandom (an old kernel): not secret, but not constant. */
        struct timespec ts;
        uint64_t x;

        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
            (uint64_t)(uintptr_t)fs;
        put_le(fs->mask_key, x, 8);
        put_le(fs->mask_key + 8, x * 0x9e3779b97f4a7c15ull, 8);
    }
}

void hypfs_testing_set_key(struct hypfs *fs, const uint8_t key[16])
{
    memcpy(fs->mask_key, key, sizeof(fs->mask_key));
}

/* ---- Tombstones ---- */

static uint32_t tomb_slot(const struct tomb_map *t, uint32_t domid)
{
    return (domid * 0x9e3779b1u) & (t->cap - 1);
}

int tomb_reserve(struct hypfs_entry_dir *dir)
{
    struct tomb_map *t = &dir->priv->tombs, nt;
    uint32_t i;

    if ( (uint64_t)(t->n + 1) * 2 <= t->cap )
        return 0;
    if ( t->cap > UINT32_MAX / 4 )
        return -ENOMEM;
    nt.cap = t->cap ? t->cap * 2 : 8;
    nt.n = 0;
    nt.ids = core_calloc(nt.cap, sizeof(*nt.ids));
    nt.stamps = core_calloc(nt.cap, sizeof(*nt.stamps));
    if ( !nt.ids || !nt.stamps )
    {
        core_free(nt.ids);
        core_free(nt.stamps);
        return -ENOMEM;
    }
    for ( i = 0; i < t->cap; i++ )
    {
        uint32_t j;

        if ( !t->stamps[i] )
            continue;
        for ( j = tomb_slot(&nt, t->ids[i]); nt.stamps[j];
              j = (j + 1) & (nt.cap - 1) )
            ;
        nt.ids[j] = t->ids[i];
        nt.stamps[j] = t->stamps[i];
        nt.n++;
    }
    core_free(t->ids);
    core_free(t->stamps);
    *t = nt;
    return 0;
}

void tomb_record(struct hypfs *fs, struct hypfs_entry_dir *dir,
                 uint32_t domid, uint64_t stamp)
{
    struct hypfs_dir_priv *p = dir->priv;
    struct tomb_map *t = &p->tombs;
    uint32_t j;

    for ( j = tomb_slot(t, domid); t->stamps[j] && t->ids[j] != domid;
          j = (j + 1) & (t->cap - 1) )
        ;
    if ( !t->stamps[j] )
        t->n++;
    t->ids[j] = domid;
    t->stamps[j] = stamp;
    if ( !p->is_tomb_parent )
    {
        p->is_tomb_parent = true;
        p->next_tomb_parent = fs->tomb_parents;
        fs->tomb_parents = dir;
    }
}

uint64_t tomb_get(const struct hypfs_entry_dir *dir, uint32_t domid)
{
    const struct tomb_map *t = &dir->priv->tombs;
    uint32_t j;

    if ( !t->cap )
        return 0;
    for ( j = tomb_slot(t, domid); t->stamps[j];
          j = (j + 1) & (t->cap - 1) )
        if ( t->ids[j] == domid )
            return t->stamps[j];
    return 0;
}

/*
 * Remove @domid's tombstone from @t, shifting the later members of its
 * probe run back so that lookups still find them (linear probing has no
 * "deleted" marks here).
 */
void tomb_delete(struct tomb_map *t, uint32_t domid)
{
    uint32_t i, j, k, mask = t->cap - 1;

    if ( !t->cap )
        return;
    for ( i = tomb_slot(t, domid); t->stamps[i] && t->ids[i] != domid;
          i = (i + 1) & mask )
        ;
    if ( !t->stamps[i] )
        return;
    t->n--;
    for ( j = i; ; )
    {
        t->stamps[i] = 0;
        for ( ; ; )
        {
            j = (j + 1) & mask;
            if ( !t->stamps[j] )
                return;
            k = tomb_slot(t, t->ids[j]);
            /* Stays if its home lies cyclically in (i, j]. */
            if ( i <= j ? (i < k && k <= j) : (i < k || k <= j) )
                continue;
            break;
        }
        t->ids[i] = t->ids[j];
        t->stamps[i] = t->stamps[j];
        i = j;
    }
}

void tomb_forget(struct hypfs *fs, struct hypfs_entry_dir *dir)
{
    struct hypfs_dir_priv *p = dir->priv;
    struct hypfs_entry_dir **pp;

    if ( !p )
        return;
    if ( p->is_tomb_parent && fs )
        for ( pp = &fs->tomb_parents; *pp;
              pp = &(*pp)->priv->next_tomb_parent )
            if ( *pp == dir )
            {
                *pp = p->next_tomb_parent;
                break;
            }
    p->is_tomb_parent = false;
    p->next_tomb_parent = NULL;
    core_free(p->tombs.ids);
    core_free(p->tombs.stamps);
    memset(&p->tombs, 0, sizeof(p->tombs));
}
