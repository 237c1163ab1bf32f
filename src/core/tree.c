/*
 * Trees: creating and freeing them, adding and removing entries, and the
 * checks that keep every entry in a tree valid, so that the dispatcher
 * (dispatch.c) can trust what it finds.
 *
 * An entry is either the embedder's (static, HYPFS_*_INIT) or the core's
 * (hypfs_*_new(), EF_CORE_OWNED).  Core-owned entries are one allocation:
 * the struct followed by the name, and for uint/int/bool the value sits in
 * the leaf itself (EF_INLINE).  Inside a tree they come from the tree's
 * slab; built detached (a template), from core_malloc().
 *
 * Every change to a tree happens under its writer lock; a detached
 * directory (not in a tree) belongs to whoever is building it and needs
 * none.  What the core keeps for a directory (index, parent, generations)
 * is a struct hypfs_dir_priv it allocates when the directory first needs
 * it (a child, or joining a tree), and frees when it is removed.  Every
 * change to a tree records a generation (gen.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/random.h>
#include <sys/syscall.h>

#include "core-internal.h"

CORE_TLS enum lock_state core_lock_state;

void core_lock_violation(const char *what, const char *func)
{
    fprintf(stderr, "hypfs: lock misuse in %s: %s\n", func, what);
    abort();
}

/*
 * The tree lock is a reader/writer lock that prefers writers (a stream of
 * readers cannot starve a write), with a hand-off so that writers cannot
 * starve readers either.  Without it, a thread making many changes in a
 * row (a thousand domains created) takes the lock again as soon as it lets
 * it go, before a reader woken by the release has even been scheduled: the
 * reader waits for the whole burst (milliseconds measured; bench-core).
 *
 * So readers that find the lock taken count themselves arriving and
 * entering (gate.arrived, gate.entered), and a writer that finds readers
 * waiting lets in those that arrived before it: it sleeps on gate.entered
 * until as many entered, then takes the lock.  Readers arriving later do
 * not hold it up.  A hand-off costs the writer a wake-up round trip (tens
 * of us), so it is made at most once per HANDOFF_NS: a reader waits at
 * most that long plus one change, and a burst of changes slows by a
 * fraction, not by a factor.  Each side does its store, then reads the
 * other's (sequentially consistent), so a wake-up cannot be lost.
 */
#define HANDOFF_NS  20000u
/* How long a writer waits, spinning, for readers that spin themselves. */
#define WRITER_SPIN_NS  5000u

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(uint32_t *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/*
 * Operations hold the lock for a microsecond or so: a thread that finds
 * it taken tries again for a while before sleeping, since being woken
 * costs more (a futex wake-up and a cross-CPU schedule: 50-100 us on a VM
 * whose other CPU was idle) than the operation it waits for.
 */
#define LOCK_SPIN_NS  60000u

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Take the lock with @try, spinning up to LOCK_SPIN_NS, then @wait. */
static void spin_acquire(struct hypfs *fs, int (*try)(pthread_rwlock_t *),
                         int (*wait)(pthread_rwlock_t *))
{
    uint64_t t0 = 0;
    unsigned int i;

    for ( i = 0; try(&fs->lock); i++ )
    {
        if ( (i & 63) == 0 )
        {
            uint64_t t = mono_ns();

            if ( !t0 )
                t0 = t;
            else if ( t - t0 >= LOCK_SPIN_NS )
            {
                wait(&fs->lock);
                return;
            }
        }
        cpu_relax();
    }
}

/*
 * The reader lock for a reader that did not get in at once (the fast path
 * is tree_read_lock(), inline).  Only readers that wait are counted for
 * the gate: counting every reader cost two locked operations on every
 * read.
 */
void tree_read_lock_wait(struct hypfs *fs)
{
    __atomic_add_fetch(&fs->gate.arrived, 1, __ATOMIC_SEQ_CST);
    spin_acquire(fs, pthread_rwlock_tryrdlock, pthread_rwlock_rdlock);
    __atomic_add_fetch(&fs->gate.entered, 1, __ATOMIC_SEQ_CST);
    if ( __atomic_load_n(&fs->gate.writers_waiting, __ATOMIC_SEQ_CST) )
        futex_wake_all(&fs->gate.entered);
}

/*
 * Let in the readers that arrived before this writer: true when they all
 * got in.  Readers spinning for the lock get in at once, so the writer
 * spins a little first; only with @may_sleep does it wait longer, asleep.
 */
static bool writer_gate(struct hypfs *fs, bool may_sleep)
{
    uint32_t target = __atomic_load_n(&fs->gate.arrived, __ATOMIC_SEQ_CST);
    uint64_t t0 = mono_ns();
    unsigned int i;

    for ( i = 0;; i++ )
    {
        uint32_t in = __atomic_load_n(&fs->gate.entered, __ATOMIC_SEQ_CST);

        if ( (int32_t)(in - target) >= 0 )
            return true;
        if ( (i & 63) == 0 && mono_ns() - t0 >= WRITER_SPIN_NS )
            break;
        cpu_relax();
    }
    if ( !may_sleep )
        return false;
    for ( ;; )
    {
        uint32_t in = __atomic_load_n(&fs->gate.entered, __ATOMIC_SEQ_CST);

        if ( (int32_t)(in - target) >= 0 )
            return true;
        __atomic_add_fetch(&fs->gate.writers_waiting, 1, __ATOMIC_SEQ_CST);
        in = __atomic_load_n(&fs->gate.entered, __ATOMIC_SEQ_CST);
        if ( (int32_t)(in - target) < 0 )
            futex_wait(&fs->gate.entered, in);
        __atomic_sub_fetch(&fs->gate.writers_waiting, 1, __ATOMIC_SEQ_CST);
    }
}

void tree_write_lock(struct hypfs *fs)
{
    LOCK_ASSERT(core_lock_state == UNLOCKED,
                "the tree lock taken again by a thread that holds it");
    if ( __atomic_load_n(&fs->gate.arrived, __ATOMIC_SEQ_CST) !=
         __atomic_load_n(&fs->gate.entered, __ATOMIC_SEQ_CST) )
    {
        uint64_t last = __atomic_load_n(&fs->gate.last_handoff_ns,
                                        __ATOMIC_RELAXED);

        if ( writer_gate(fs, mono_ns() - last >= HANDOFF_NS) )
            __atomic_store_n(&fs->gate.last_handoff_ns, mono_ns(),
                             __ATOMIC_RELAXED);
    }
    spin_acquire(fs, pthread_rwlock_trywrlock, pthread_rwlock_wrlock);
    core_lock_state = WRITE_LOCKED;
}

void hypfs_write_lock(struct hypfs *fs)
{
    LOCK_ASSERT(core_lock_state == UNLOCKED,
                "hypfs_write_lock() by a thread that holds the tree lock "
                "(from a callback?): it would deadlock");
    tree_write_lock(fs);
}

void hypfs_write_unlock(struct hypfs *fs)
{
    LOCK_ASSERT(core_lock_state == WRITE_LOCKED,
                "hypfs_write_unlock() without hypfs_write_lock()");
    tree_unlock(fs);
}

static uint64_t hash_seed;
static bool hash_seeded;
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

static void hash_seed_init(void)
{
    /*
     * One secret seed per process keeps lookups O(1) whatever names an
     * embedder uses, and lets detached directories be hashed before they
     * know their tree.
     */
    if ( getrandom(&hash_seed, sizeof(hash_seed), GRND_NONBLOCK) !=
         sizeof(hash_seed) )
        hash_seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&hash_seed;
    __atomic_store_n(&hash_seeded, true, __ATOMIC_RELEASE);
}

/* The 128-bit product of @a and @b, folded to 64 bits. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load8(const char *p)
{
    uint64_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

static inline uint64_t load4(const char *p)
{
    uint32_t w;

    memcpy(&w, p, sizeof(w));
    return w;
}

/*
 * Eight bytes at a time, each word folded in with a 64x64->128-bit
 * multiply (the construction of wyhash and of Go's runtime hash): a name
 * of 11 bytes costs two multiplies, not the eleven dependent ones of a
 * byte-wise hash.  Hashing is on every lookup, and on every entry moved
 * when a table grows (the hash is not stored).  The bytes after the last
 * whole word are read as wyhash does, in fixed-size loads that may
 * overlap bytes already hashed, never as a copy of variable length (a
 * call to memcpy(), through the PLT in libhypfs.so); the length is
 * hashed too, so names that share those bytes still differ.
 */
uint32_t name_hash(const char *name, size_t len)
{
    const uint64_t k0 = 0xa0761d6478bd642full, k1 = 0xe7037ed1a0b428dbull;
    const char *end = name + len;
    uint64_t h, w;

    /* Checked first: pthread_once() is a call through the PLT. */
    if ( !__atomic_load_n(&hash_seeded, __ATOMIC_ACQUIRE) )
        pthread_once(&hash_seed_once, hash_seed_init);
    h = hash_seed ^ ((uint64_t)len * k0);
    if ( len >= 8 )
    {
        for ( ; end - name > 8; name += 8 )
            h = fold_mul(h ^ load8(name), k1);
        w = load8(end - 8);
    }
    else if ( len >= 4 )
        w = load4(name) | load4(end - 4) << 32;
    else if ( len )
        w = (uint64_t)(unsigned char)name[0] |
            (uint64_t)(unsigned char)name[len / 2] << 8 |
            (uint64_t)(unsigned char)name[len - 1] << 16;
    else
        w = 0;
    h = fold_mul(h ^ w, k0);
    h = fold_mul(h ^ (h >> 29), k1);
    return (uint32_t)(h ^ (h >> 32));
}

size_t entry_record_size(const struct hypfs_entry *entry)
{
    return XEN_HYPFS_DIRENTRY_SIZE(strlen(entry->name));
}

struct hypfs_dir_priv *dir_priv_get(struct hypfs_entry_dir *dir)
{
    if ( !dir->priv )
        dir->priv = core_calloc(1, sizeof(*dir->priv));
    return dir->priv;
}

/*
 * One pass: every add of a leaf checks its name, and learns its length
 * (*@lenp) from the same read.  0 or -EINVAL.
 */
static int check_name(const char *name, size_t *lenp)
{
    size_t len;

    if ( !name )
        return -EINVAL;
    for ( len = 0; name[len]; len++ )
    {
        unsigned char c = (unsigned char)name[len];

        if ( len == HYPFS_NAME_MAX || c == '/' || c < 0x20 || c == 0x7f )
            return -EINVAL;
    }
    if ( !len || (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.'))) )
        return -EINVAL;
    *lenp = len;
    return 0;
}

static bool fixed_size_type(unsigned int type)
{
    return type == XEN_HYPFS_TYPE_UINT || type == XEN_HYPFS_TYPE_INT ||
           type == XEN_HYPFS_TYPE_BOOL;
}

static bool valid_fixed_size(unsigned int type, unsigned int size)
{
    if ( type == XEN_HYPFS_TYPE_BOOL )
        return size == 1;
    return size == 1 || size == 2 || size == 4 || size == 8;
}

static bool valid_access(uint8_t access)
{
    return RIGHT_READ(access) <= HYPFS_RIGHT_OWNER &&
           RIGHT_WRITE(access) <= HYPFS_RIGHT_OWNER && !(access >> 4);
}

/* The checks that make a leaf safe for the dispatcher to serve. */
static int check_leaf(const struct hypfs_entry_leaf *leaf)
{
    const struct hypfs_entry *e = &leaf->e;
    bool custom_read = entry_rendered(e);
    bool custom_write = e->funcs && e->funcs->write;
    const void *content = leaf_value(leaf);

    if ( e->type == XEN_HYPFS_TYPE_DIR || e->type > XEN_HYPFS_TYPE_BOOL )
        return -EINVAL;
    if ( e->encoding != XEN_HYPFS_ENC_PLAIN &&
         e->encoding != XEN_HYPFS_ENC_GZIP )
        return -EINVAL;
    if ( e->size > HYPFS_CONTENT_MAX || e->max_size > HYPFS_CONTENT_MAX )
        return -EINVAL;
    /*
     * Compressed content is never written (a writer would send plain) and
     * only strings and blobs are compressed.
     */
    if ( e->encoding == XEN_HYPFS_ENC_GZIP &&
         (e->max_size || (e->type != XEN_HYPFS_TYPE_STRING &&
                          e->type != XEN_HYPFS_TYPE_BLOB)) )
        return -EINVAL;

    if ( fixed_size_type(e->type) && e->encoding == XEN_HYPFS_ENC_PLAIN )
    {
        if ( !valid_fixed_size(e->type, e->size) )
            return -EINVAL;
        if ( e->max_size && e->max_size != e->size )
            return -EINVAL;
    }

    if ( !custom_read )
    {
        if ( e->size && !content )
            return -EINVAL;
        if ( e->type == XEN_HYPFS_TYPE_STRING &&
             e->encoding == XEN_HYPFS_ENC_PLAIN &&
             (!e->size || ((const char *)content)[e->size - 1] != '\0') )
            return -EINVAL;
        if ( e->type == XEN_HYPFS_TYPE_BOOL &&
             e->encoding == XEN_HYPFS_ENC_PLAIN &&
             *(const uint8_t *)content > 1 )
            return -EINVAL;
    }

    if ( e->max_size )
    {
        bool has_storage = (e->flags & EF_INLINE) || leaf->u.write_ptr;

        /* Plain writes copy into the content; it must have the room. */
        if ( !custom_write && (custom_read || !has_storage) )
            return -EINVAL;
        if ( !custom_write && !fixed_size_type(e->type) && e->size > e->max_size )
            return -EINVAL;
    }
    else if ( custom_write )
        return -EINVAL;

    return 0;
}

/* An entry's checks but its name's (made by the core, or checked). */
static int check_entry_fields(const struct hypfs_entry *e)
{
    if ( !valid_access(e->access) )
        return -EINVAL;
    if ( e->type != XEN_HYPFS_TYPE_DIR )
        return check_leaf((const struct hypfs_entry_leaf *)e);
    if ( e->encoding != XEN_HYPFS_ENC_PLAIN || e->max_size || e->funcs )
        return -EINVAL;
    return 0;
}

/* *@lenp: its name's length, as check_name(). */
static int check_entry(const struct hypfs_entry *e, size_t *lenp)
{
    int ret = check_name(e->name, lenp);

    return ret ? ret : check_entry_fields(e);
}

/* ---- Places in the tree ---- */

static bool owner_root(const struct hypfs_entry_dir *dir)
{
    return (dir->e.flags & EF_HAS_OWNER) ||
           ((dir->e.flags & EF_DYNDIR) &&
            (((const struct hypfs_dyndir *)dir)->flags &
             HYPFS_DYNDIR_OWNER_IS_ID));
}

static void owner_root_link(struct hypfs *fs, struct hypfs_entry_dir *dir)
{
    if ( dir->priv->is_owner_root )
        return;
    dir->priv->is_owner_root = true;
    dir->priv->next_owner_root = fs->owner_roots;
    fs->owner_roots = dir;
}

static void owner_root_unlink(struct hypfs *fs, struct hypfs_entry_dir *dir)
{
    struct hypfs_entry_dir **pp;

    if ( !fs || !dir->priv || !dir->priv->is_owner_root )
        return;
    for ( pp = &fs->owner_roots; *pp; pp = &(*pp)->priv->next_owner_root )
        if ( *pp == dir )
        {
            *pp = dir->priv->next_owner_root;
            break;
        }
    dir->priv->is_owner_root = false;
    dir->priv->next_owner_root = NULL;
}

/*
 * Attach the subtree below @dir to @fs as a child of @parent (fs NULL:
 * detach it).  Every directory in it has its private state already.  A
 * dynamic directory's template hangs below the dynamic directory; owner
 * roots inside templates are not registered (what changes inside an
 * instance is recorded in the instance's own generations).
 */
static void set_tree(struct hypfs_entry_dir *dir, struct hypfs *fs,
                     struct hypfs_entry_dir *parent, bool in_template)
{
    struct hypfs_dir_index *idx = dir_index(dir);
    uint32_t i;

    dir->priv->fs = fs;
    dir->priv->parent = fs ? parent : NULL;
    /* What was worked out for its old place, if it had one. */
    dir->priv->dvis.epoch = 0;
    if ( fs && !in_template && owner_root(dir) )
        owner_root_link(fs, dir);
    if ( dir->e.flags & EF_DYNDIR )
        set_tree(((struct hypfs_dyndir *)dir)->tmpl, fs, dir, true);
    for ( i = 0; idx && i < idx->nr; i++ )
        if ( idx->order[i]->type == XEN_HYPFS_TYPE_DIR )
            set_tree((struct hypfs_entry_dir *)idx->order[i], fs, dir,
                     in_template);
}

/* Is @dir inside a dynamic directory's template? */
static bool in_template(const struct hypfs_entry_dir *dir)
{
    const struct hypfs_entry_dir *d;

    for ( d = dir; d && d->priv; d = d->priv->parent )
        if ( d->priv->parent && (d->priv->parent->e.flags & EF_DYNDIR) &&
             ((const struct hypfs_dyndir *)d->priv->parent)->tmpl == d )
            return true;
    return false;
}

/*
 * Every directory of the subtree below @dir gets its private state (a
 * static directory may have none yet), so that attaching it cannot fail
 * half-way.  0 or -ENOMEM (what was allocated stays: it is harmless).
 */
static int prepare_subtree(struct hypfs_entry_dir *dir)
{
    struct hypfs_dir_index *idx;
    uint32_t i;
    int ret;

    if ( !dir_priv_get(dir) )
        return -ENOMEM;
    if ( (dir->e.flags & EF_DYNDIR) &&
         (ret = prepare_subtree(((struct hypfs_dyndir *)dir)->tmpl)) )
        return ret;
    idx = dir_index(dir);
    for ( i = 0; idx && i < idx->nr; i++ )
        if ( idx->order[i]->type == XEN_HYPFS_TYPE_DIR &&
             (ret = prepare_subtree((struct hypfs_entry_dir *)idx->order[i])) )
            return ret;
    return 0;
}

/*
 * Record that @child of @parent appeared (@added) or is going, for those
 * who could see it.  Nothing to record outside a tree.
 */
static void record_change(struct hypfs_entry_dir *parent,
                          struct hypfs_entry *child, bool added)
{
    struct hypfs *fs = dir_fs(parent);
    char path[XEN_HYPFS_MAX_PATHLEN];
    struct vis vis;
    uint64_t g;

    if ( !fs )
        return;
    /* The path is for the hook alone: not made when nobody listens. */
    if ( fs->hook )
        gen_path_of(parent, child->name, path, sizeof(path));
    g = gen_bump_child(fs, parent, child, fs->hook ? path : NULL, &vis);
    if ( !added )
    {
        /*
         * Its owner's view of the directories above must still move when
         * the region it owned is gone (hypfs_remove() made the room).
         */
        if ( vis.kind == VIS_OWNER )
            tomb_record(fs, parent, vis.owner, g);
        return;
    }
    /* A new entry starts at this change. */
    if ( child->type == XEN_HYPFS_TYPE_DIR )
    {
        struct hypfs_gens *gs = &((struct hypfs_entry_dir *)child)->priv->gens;

        gs->all = gs->any = gs->owner = fs->gen;
    }
    else
        child->gen = (uint32_t)fs->gen;
}

/*
 * Add @entry (already checked; @len: its name's) to @parent; caller holds
 * the lock if any.
 */
static int add_entry_locked(struct hypfs_entry_dir *parent,
                            struct hypfs_entry *entry, size_t len)
{
    struct hypfs_dir_priv *pp;
    uint32_t hash;
    uint64_t size;
    int ret;

    if ( entry->flags & EF_LINKED )
        return -EBUSY;
    if ( (parent->e.flags & (EF_DYNDIR | EF_INSTANCE)) ||
         entry == &parent->e )
        return -EINVAL;
    pp = dir_priv_get(parent);
    if ( !pp )
        return -ENOMEM;
    if ( entry->type == XEN_HYPFS_TYPE_DIR &&
         (ret = prepare_subtree((struct hypfs_entry_dir *)entry)) )
        return ret;
    hash = name_hash(entry->name, len);
    if ( index_find(&pp->idx, hash, entry->name, len) )
        return -EEXIST;
    size = (uint64_t)parent->e.size + XEN_HYPFS_DIRENTRY_SIZE(len);
    if ( size > UINT32_MAX - sizeof(struct xen_hypfs_direntry) )
        return -E2BIG;

    ret = index_insert(&pp->idx, entry, hash);
    if ( ret )
        return ret;
    parent->e.size = (unsigned int)size;
    entry->flags |= EF_LINKED;
    if ( entry->type == XEN_HYPFS_TYPE_DIR )
        set_tree((struct hypfs_entry_dir *)entry, pp->fs, parent,
                 in_template(parent));
    record_change(parent, entry, true);
    return 0;
}

static int lock_for_change(struct hypfs_entry_dir *parent)
{
    if ( !dir_fs(parent) )
        return 0;
    if ( core_lock_state != UNLOCKED )
        return -EDEADLK;
    tree_write_lock(dir_fs(parent));
    return 0;
}

static void unlock_after_change(struct hypfs *fs)
{
    if ( fs )
        tree_unlock(fs);
}

static int nofault_check(int ret, bool nofault, const char *what,
                         const char *name)
{
    if ( ret && nofault )
    {
        /* A static setup that cannot fail did: nothing sane to go on with. */
        fprintf(stderr, "hypfs: adding %s \"%s\" failed: %s\n", what,
                name ? name : "(null)", strerror(-ret));
        abort();
    }
    return ret;
}

static int add_dir_common(struct hypfs_entry_dir *parent,
                          struct hypfs_entry_dir *dir, bool dyn)
{
    struct hypfs_dyndir *dd = (struct hypfs_dyndir *)dir;
    struct hypfs *fs;
    size_t len;
    int ret;

    if ( !parent || !dir )
        return -EINVAL;
    ret = check_entry(&dir->e, &len);
    if ( ret )
        return ret;
    if ( dyn && (!dd->tmpl || !dd->ops || !dd->ops->foreach_id ||
                 !dd->ops->find_id) )
        return -EINVAL;

    fs = dir_fs(parent);
    ret = lock_for_change(parent);
    if ( ret )
        return ret;
    if ( dir->e.flags & EF_LINKED )
        ret = -EBUSY;
    else if ( dyn && (dd->tmpl->e.type != XEN_HYPFS_TYPE_DIR ||
                      (dd->tmpl->e.flags & (EF_LINKED | EF_DYNDIR)) ||
                      !valid_access(dd->tmpl->e.access)) )
        ret = -EINVAL;
    if ( !ret && dyn )
    {
        /* Marked first, so that attaching it links the template too. */
        dir->e.flags |= EF_DYNDIR;
        ret = add_entry_locked(parent, &dir->e, len);
        if ( ret )
            dir->e.flags &= (uint8_t)~EF_DYNDIR;
        else
            dd->tmpl->e.flags |= EF_LINKED;
    }
    else if ( !ret )
        ret = add_entry_locked(parent, &dir->e, len);
    unlock_after_change(fs);
    return ret;
}

int hypfs_add_dir(struct hypfs_entry_dir *parent, struct hypfs_entry_dir *dir,
                  bool nofault)
{
    int ret = add_dir_common(parent, dir, false);

    return nofault_check(ret, nofault, "directory", dir ? dir->e.name : NULL);
}

int hypfs_add_dyndir(struct hypfs_entry_dir *parent, struct hypfs_dyndir *dd,
                     bool nofault)
{
    int ret = add_dir_common(parent, dd ? &dd->dir : NULL, true);

    return nofault_check(ret, nofault, "dynamic directory",
                         dd ? dd->dir.e.name : NULL);
}

int hypfs_add_leaf(struct hypfs_entry_dir *parent,
                   struct hypfs_entry_leaf *leaf, bool nofault)
{
    struct hypfs *fs;
    size_t len;
    int ret = -EINVAL;

    if ( parent && leaf )
    {
        fs = dir_fs(parent);
        ret = check_entry(&leaf->e, &len);
        if ( !ret && leaf->e.type == XEN_HYPFS_TYPE_DIR )
            ret = -EINVAL;
        if ( !ret )
            ret = lock_for_change(parent);
        if ( !ret )
        {
            ret = add_entry_locked(parent, &leaf->e, len);
            unlock_after_change(fs);
        }
    }
    return nofault_check(ret, nofault, "leaf", leaf ? leaf->e.name : NULL);
}

/* ---- Core-owned entries ---- */

static size_t core_entry_size(const struct hypfs_entry *e)
{
    size_t base = e->type == XEN_HYPFS_TYPE_DIR ?
                  sizeof(struct hypfs_entry_dir) : sizeof(struct hypfs_entry_leaf);

    return base + strlen(e->name) + 1;
}

static void *core_entry_alloc(struct hypfs *fs, size_t size, uint8_t *flags)
{
    void *p;

    if ( fs && size <= SLAB_MAX_OBJECT )
    {
        p = slab_alloc(&fs->slab, size);
        *flags = EF_CORE_OWNED | EF_SLAB;
    }
    else
    {
        p = core_malloc(size);
        *flags = EF_CORE_OWNED;
    }
    if ( p )
        memset(p, 0, size);
    return p;
}

static void release_entry(struct hypfs *fs, struct hypfs_entry *e);

static void release_dir_children(struct hypfs *fs, struct hypfs_entry_dir *dir)
{
    struct hypfs_dir_index *idx = dir_index(dir);
    uint32_t i;

    for ( i = 0; idx && i < idx->nr; i++ )
        release_entry(fs, idx->order[i]);
    if ( idx )
        index_destroy(idx);
    dir->e.size = 0;
}

/* Detach @e and everything below; free what the core owns. */
static void release_entry(struct hypfs *fs, struct hypfs_entry *e)
{
    uint8_t flags = e->flags;

    if ( e->type == XEN_HYPFS_TYPE_DIR )
    {
        struct hypfs_entry_dir *dir = (struct hypfs_entry_dir *)e;

        if ( flags & EF_DYNDIR )
        {
            struct hypfs_entry_dir *tmpl = ((struct hypfs_dyndir *)e)->tmpl;

            tmpl->e.flags &= (uint8_t)~EF_LINKED;
            release_entry(fs, &tmpl->e);
        }
        release_dir_children(fs, dir);
        owner_root_unlink(fs, dir);
        tomb_forget(fs, dir);
        core_free(dir->priv);
        dir->priv = NULL;
    }
    else if ( flags & EF_OWNED_DATA )
        core_free(((struct hypfs_entry_leaf *)e)->u.write_ptr);

    e->flags &= (uint8_t)~(EF_LINKED | EF_DYNDIR);
    if ( !(flags & EF_CORE_OWNED) )
        return;
    if ( flags & EF_SLAB )
        slab_release(&fs->slab, e, core_entry_size(e));
    else
        core_free(e);
}

/* Room for the tombstone the removal of @entry may need. */
static int removal_room(struct hypfs_entry_dir *parent,
                        const struct hypfs_entry *entry)
{
    struct vis v;

    gen_vis_of_child(parent, entry, &v);
    return v.kind == VIS_OWNER ? tomb_reserve(parent) : 0;
}

int hypfs_remove(struct hypfs_entry_dir *parent, struct hypfs_entry *entry)
{
    struct hypfs *fs;
    size_t len;
    int ret;

    if ( !parent || !entry || !entry->name )
        return -ENOENT;
    fs = dir_fs(parent);
    ret = lock_for_change(parent);
    if ( ret )
        return ret;
    len = strlen(entry->name);
    if ( index_find(dir_index(parent), name_hash(entry->name, len),
                    entry->name, len) != entry )
        ret = -ENOENT;
    else if ( fs && (ret = removal_room(parent, entry)) )
        ;
    else
    {
        /* Who could see it is told, before it is gone. */
        record_change(parent, entry, false);
        index_remove(dir_index(parent), entry);
        parent->e.size -= (unsigned int)XEN_HYPFS_DIRENTRY_SIZE(len);
        release_entry(fs, entry);
    }
    unlock_after_change(fs);
    return ret;
}

int hypfs_dir_new(struct hypfs_entry_dir *parent, const char *name,
                  struct hypfs_entry_dir **out)
{
    struct hypfs *fs = parent ? dir_fs(parent) : NULL;
    struct hypfs_entry_dir *dir;
    uint8_t flags;
    size_t len;
    int ret = check_name(name, &len);

    if ( ret )
        return ret;
    ret = parent ? lock_for_change(parent) : 0;
    if ( ret )
        return ret;
    dir = core_entry_alloc(fs, sizeof(*dir) + len + 1, &flags);
    if ( !dir || !dir_priv_get(dir) )
        ret = -ENOMEM;
    else
    {
        memcpy(dir + 1, name, len + 1);
        dir->e.type = XEN_HYPFS_TYPE_DIR;
        dir->e.name = (const char *)(dir + 1);
        dir->e.flags = flags;
        if ( parent )
            ret = add_entry_locked(parent, &dir->e, len);
    }
    if ( ret && dir )
    {
        core_free(dir->priv);
        if ( flags & EF_SLAB )
            slab_release(&fs->slab, dir, sizeof(*dir) + len + 1);
        else
            core_free(dir);
    }
    else if ( !ret && out )
        *out = dir;
    if ( parent )
        unlock_after_change(fs);
    return ret;
}

/* Shared by hypfs_leaf_new() and hypfs_leaf_new_gzip(). */
static int leaf_new(struct hypfs_entry_dir *parent, const char *name,
                    unsigned int type, unsigned int encoding,
                    const void *content, unsigned int size,
                    unsigned int max_size, struct hypfs_entry_leaf **out)
{
    struct hypfs *fs = parent ? dir_fs(parent) : NULL;
    struct hypfs_entry_leaf *leaf;
    void *data = NULL;
    uint8_t flags;
    size_t len, cap;
    int ret = check_name(name, &len);

    if ( ret )
        return ret;
    if ( !parent || type == XEN_HYPFS_TYPE_DIR || type > XEN_HYPFS_TYPE_BOOL ||
         (size && !content) || size > HYPFS_CONTENT_MAX ||
         max_size > HYPFS_CONTENT_MAX )
        return -EINVAL;

    ret = lock_for_change(parent);
    if ( ret )
        return ret;
    leaf = core_entry_alloc(fs, sizeof(*leaf) + len + 1, &flags);
    if ( !leaf )
    {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(leaf + 1, name, len + 1);
    leaf->e.type = (uint8_t)type;
    leaf->e.encoding = (uint8_t)encoding;
    leaf->e.name = (const char *)(leaf + 1);
    leaf->e.size = size;
    leaf->e.max_size = max_size;

    if ( fixed_size_type(type) && encoding == XEN_HYPFS_ENC_PLAIN &&
         size <= sizeof(leaf->u.val) )
    {
        flags |= EF_INLINE;
        if ( size )
            memcpy(&leaf->u.val, content, size);
    }
    else
    {
        cap = size > max_size ? size : max_size;
        data = core_malloc(cap);
        if ( !data )
        {
            ret = -ENOMEM;
            goto out_free;
        }
        if ( size )
            memcpy(data, content, size);
        leaf->u.write_ptr = data;
        flags |= EF_OWNED_DATA;
    }
    leaf->e.flags = flags;

    /* Its name was checked above, and copied. */
    ret = check_entry_fields(&leaf->e);
    if ( !ret )
        ret = add_entry_locked(parent, &leaf->e, len);
    if ( !ret )
    {
        if ( out )
            *out = leaf;
        goto out;
    }

 out_free:
    core_free(data);
    if ( flags & EF_SLAB )
        slab_release(&fs->slab, leaf, sizeof(*leaf) + len + 1);
    else
        core_free(leaf);
 out:
    unlock_after_change(fs);
    return ret;
}

int hypfs_leaf_new(struct hypfs_entry_dir *parent, const char *name,
                   unsigned int type, const void *content, unsigned int size,
                   unsigned int max_size, struct hypfs_entry_leaf **leaf)
{
    return leaf_new(parent, name, type, XEN_HYPFS_ENC_PLAIN, content, size,
                    max_size, leaf);
}

int hypfs_leaf_new_gzip(struct hypfs_entry_dir *parent, const char *name,
                        unsigned int type, const void *data, size_t len,
                        struct hypfs_entry_leaf **leaf)
{
    void *z;
    size_t zlen;
    int ret;

    if ( type != XEN_HYPFS_TYPE_STRING && type != XEN_HYPFS_TYPE_BLOB )
        return -EINVAL;
    if ( type == XEN_HYPFS_TYPE_STRING &&
         (!len || ((const char *)data)[len - 1] != '\0') )
        return -EINVAL;
    ret = core_gzip(data, len, &z, &zlen);
    if ( ret )
        return ret;
    if ( zlen > HYPFS_CONTENT_MAX )
        ret = -E2BIG;
    else
        ret = leaf_new(parent, name, type, XEN_HYPFS_ENC_GZIP, z,
                       (unsigned int)zlen, 0, leaf);
    core_free(z);
    return ret;
}

const void *hypfs_leaf_content(const struct hypfs_entry_leaf *leaf)
{
    return leaf_value(leaf);
}

int hypfs_set_access(struct hypfs_entry *entry, unsigned int read_right,
                     unsigned int write_right)
{
    if ( read_right > HYPFS_RIGHT_OWNER || write_right > HYPFS_RIGHT_OWNER )
        return -EINVAL;
    entry->access = (uint8_t)(read_right | (write_right << 2));
    if ( entry->type == XEN_HYPFS_TYPE_DIR )
        gen_vis_changed();
    return 0;
}

void hypfs_dir_set_owner(struct hypfs_entry_dir *dir, uint32_t domid)
{
    dir->owner = domid;
    dir->e.flags |= EF_HAS_OWNER;
    gen_vis_changed();
    /* In a tree already (the writer lock held): it begins ownership now. */
    if ( dir->priv && dir->priv->fs && (dir->e.flags & EF_LINKED) &&
         !in_template(dir) )
        owner_root_link(dir->priv->fs, dir);
}

/* ---- Trees ---- */

int hypfs_new(struct hypfs **out)
{
    struct hypfs *fs = core_malloc(sizeof(*fs));
    pthread_rwlockattr_t attr;

    if ( !fs )
        return -ENOMEM;
    memset(fs, 0, sizeof(*fs));
    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
    /*
     * Readers never take the lock recursively, so writers can be preferred:
     * a stream of readers must not starve a write.  (glibc's default
     * prefers readers, and the constant is an enum, not a macro.)
     */
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&fs->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&fs->sort_lock, NULL);

    fs->root.e.type = XEN_HYPFS_TYPE_DIR;
    fs->root.e.name = "";
    fs->root.e.flags = EF_LINKED;
    fs->root.priv = &fs->root_priv;
    fs->root_priv.fs = fs;
    gen_init_key(fs);
    *out = fs;
    return 0;
}

struct hypfs_entry_dir *hypfs_root(struct hypfs *fs)
{
    return &fs->root;
}

void hypfs_free(struct hypfs *fs)
{
    if ( !fs )
        return;
    release_dir_children(fs, &fs->root);
    tomb_forget(fs, &fs->root);
    slab_destroy(&fs->slab);
    pthread_mutex_destroy(&fs->sort_lock);
    pthread_rwlock_destroy(&fs->lock);
    core_free(fs);
}

void hypfs_set_change_hook(struct hypfs *fs, hypfs_change_hook hook, void *arg)
{
    fs->hook = hook;
    fs->hook_arg = arg;
}

void hypfs_set_watch_ops(struct hypfs *fs, const struct hypfs_watch_ops *ops,
                         void *arg)
{
    fs->watch_ops = ops;
    fs->watch_arg = arg;
}
