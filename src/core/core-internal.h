/*
 * Declarations shared by the files of src/core only.
 *
 * Who guards what:
 *   struct hypfs.lock       the shape of the tree, every leaf's content and
 *                           size, every directory's private state (index,
 *                           parent, generations) except its order array's
 *                           lazy merge, the tree's generation and the list
 *                           of owner roots;
 *   struct hypfs.sort_lock  the lazy merge of a directory's unsorted tail
 *                           into its sorted order array, done by readers
 *                           (see index.c);
 *   struct hypfs.slab       the node allocator; taken under the writer lock
 *                           or on a detached subtree only, so it needs none.
 * A detached directory (being built, or a template) is its builder's: no
 * lock.
 */
#ifndef HYPFS_CORE_INTERNAL_H
#define HYPFS_CORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hypfs/hypfs.h>

/* struct hypfs_entry.flags */
#define EF_LINKED     0x01u  /* child of some directory (or a template) */
#define EF_CORE_OWNED 0x02u  /* allocated by the core: free on removal */
#define EF_INLINE     0x04u  /* leaf content stored in u.val */
#define EF_DYNDIR     0x08u  /* a struct hypfs_dyndir */
#define EF_INSTANCE   0x10u  /* a generated instance of a dynamic dir */
#define EF_HAS_OWNER  0x20u  /* dir: owner field is set */
#define EF_SLAB       0x40u  /* core-owned memory from the tree's slab */
#define EF_OWNED_DATA 0x80u  /* leaf: u.content is core-allocated */
/* A dir with EF_HAS_OWNER, or a dyndir: EF_SLAB is never set for dirs. */

#define RIGHT_READ(access)   ((access) & 3u)
#define RIGHT_WRITE(access)  (((access) >> 2) & 3u)

/* ---- Allocation (alloc.c) ---- */

void *core_malloc(size_t size);
void *core_calloc(size_t n, size_t size);
void *core_realloc(void *ptr, size_t size);
void core_free(void *ptr);

/* The page size (sysconf(), asked once). */
size_t core_page_size(void);

/*
 * Arrays that grow with a directory (alloc.c): zeroed when made; resized
 * without copying once large; the caller says how large they are.  One
 * resized keeps its address space in *@room (bytes; 0 when it has none
 * beyond its size), which the caller keeps with it and gives back to
 * core_array_free_room().  core_array_release() gives back the whole
 * pages of [@done, @upto) that will never be read again, and returns the
 * new @done; a released array is freed with core_array_free_rest().
 */
void *core_array_alloc(size_t size);
/*
 * The same, but a table kept from a freed directory (alloc.c) is handed
 * out as it is, with *@dirty set: the caller zeroes it before use.
 */
void *core_array_alloc_dirty(size_t size, bool *dirty);
/*
 * Bytes of freed tables kept for reuse (not counted in
 * hypfs_mapped_bytes() while kept); core_array_kept_drop() gives them all
 * back (tests).
 */
size_t core_array_kept_bytes(void);
void core_array_kept_drop(void);
void *core_array_resize(void *p, size_t old_size, size_t new_size,
                        size_t *room);
void core_array_free(void *p, size_t size);
void core_array_free_room(void *p, size_t size, size_t room);
/*
 * core_prefault_later(): fault in [@p, @p + @len) of a mapped array once
 * this thread let go of the writer lock.  core_unmap_deferred(): that, and
 * the address space it gave back under the lock, unmapped (no lock).
 */
void core_prefault_later(void *p, size_t len);
void core_unmap_deferred(void);
size_t core_array_release(void *p, size_t size, size_t done, size_t upto);
void core_array_free_rest(void *p, size_t size, size_t released);

/*
 * A size-class allocator for core-owned entries, so that a leaf costs its
 * bytes and not a malloc header and rounding.  Memory goes back to the
 * free lists on release and to the system when the tree is freed.
 */
#define SLAB_CLASS_STEP   8u
#define SLAB_MAX_OBJECT   512u
#define SLAB_NCLASSES     (SLAB_MAX_OBJECT / SLAB_CLASS_STEP)

struct slab {
    void *free_list[SLAB_NCLASSES];
    void *blocks;           /* chain of blocks, first word links them */
    char *bump;             /* free space in the newest block */
    size_t bump_left;
    size_t bytes_in_use;    /* for statistics */
};

/*
 * Slab blocks come from one reservation of address space per process (the
 * arena, alloc.c), so that an entry in it is said in 32 bits: its offset
 * / 8.  core_arena_base(): its start, or NULL while there is none (it is
 * made with the first block, and never moves or goes away after).
 */
#if SIZE_MAX > UINT32_MAX
#define CORE_ARENA_BYTES  ((size_t)1 << 33)
#else
#define CORE_ARENA_BYTES  ((size_t)0)   /* no room for one: no arena */
#endif
_Static_assert(CORE_ARENA_BYTES >> 3 <= UINT64_C(1) << 32,
               "an offset in the arena / 8 takes 32 bits at most");
/* Hidden: read inline on every lookup, not through the GOT or a call. */
extern __attribute__((visibility("hidden"))) char *core_arena_start;

static inline char *core_arena_base(void)
{
    return __atomic_load_n(&core_arena_start, __ATOMIC_ACQUIRE);
}

/* Whether @p is in the arena that starts at @base (core_arena_base()). */
static inline bool core_in_arena(const char *base, const void *p)
{
#if SIZE_MAX > UINT32_MAX
    return base && (const char *)p >= base &&
           (size_t)((const char *)p - base) < CORE_ARENA_BYTES;
#else
    (void)base;
    (void)p;
    return false;
#endif
}

void *slab_alloc(struct slab *slab, size_t size);
void slab_release(struct slab *slab, void *ptr, size_t size);
void slab_destroy(struct slab *slab);

/* ---- Directories (tree.c, index.c) ---- */

/* Index of a directory's children. */
struct hypfs_dir_index {
    uint64_t *slots;                  /* hash table: tagged entry pointers */
    uint32_t nslots;
    uint32_t nr;                      /* children */
    struct hypfs_entry **order;       /* sorted prefix, then unsorted tail */
    uint32_t order_cap;
    uint32_t order_sorted;
    int order_dirty;                  /* tail not merged yet (atomic) */
    uint32_t order_room_pages;        /* its address space (alloc.c) */
    /* Incremental growth (index.c): the table being left, and how far. */
    uint64_t *old_slots;
    uint32_t old_nslots;
    uint32_t old_done;                /* old slots [0, old_done) moved */
    size_t old_released;              /* ... bytes of them given back */
    /* The next table, made ahead and faulted in outside the lock. */
    uint64_t *next_slots;
    uint32_t next_nslots;
    size_t next_faulted;              /* bytes of it asked for so far */
    bool next_dirty;                  /* kept from before: being zeroed */
};

/*
 * What an owner was told of things that went from a directory (gen.c):
 * domid -> the generation of the last such change it could see.
 */
struct tomb_map {
    uint32_t *ids;
    uint64_t *stamps;                 /* 0: free slot */
    uint32_t cap;                     /* a power of two, or 0 */
    uint32_t n;
};

/* The owner an entry inherits, if any. */
struct owner {
    bool set;
    uint32_t domid;
};

/*
 * Who may see a change: computed along its path, from the root down.
 * VIS_EACH_OWNER: inside the template of a dynamic directory whose
 * instances are owned by their ids, a change each instance's owner sees
 * in its own (recorded in the template's stamps, which every instance's
 * view includes).
 */
enum vis_kind { VIS_ANY, VIS_OWNER, VIS_CONTROL, VIS_EACH_OWNER };
struct vis {
    enum vis_kind kind;
    uint32_t owner;                   /* VIS_OWNER */
};

/*
 * Who could see a directory, and the owner in effect there, as
 * gen_bump_child() works them out for its children (gen.c): kept, since
 * every add below would walk the same path from the root again.  Valid
 * while @epoch is the process's (a right or an owner of any directory
 * changed since: bumped); a directory linked into a place is reset.
 */
struct dir_vis {
    uint64_t epoch;                   /* 0: not worked out */
    struct vis vis;
    struct owner owner;
    uint32_t depth;                   /* the root's: 0 */
    bool plain;                       /* no template above, not too deep */
};

/* What the core keeps for a directory (entry_dir.priv). */
struct hypfs_dir_priv {
    struct hypfs *fs;                 /* tree it is part of; NULL: detached */
    struct hypfs_entry_dir *parent;   /* NULL: the root, or not in a tree */
    struct hypfs_dir_index idx;
    struct hypfs_gens gens;           /* all / any / its owner's */
    struct hypfs_entry_dir *next_owner_root;  /* struct hypfs.owner_roots */
    bool is_owner_root;
    bool is_tomb_parent;
    struct hypfs_entry_dir *next_tomb_parent; /* struct hypfs.tomb_parents */
    struct tomb_map tombs;
    struct dir_vis dvis;              /* under the writer lock */
};

/* ---- Trees (tree.c) ---- */

struct hypfs {
    pthread_rwlock_t lock;
    /*
     * The lock's hand-off (tree.c): readers that arrived / got in.  On a
     * line of their own, apart from the lock's.
     */
    struct {
        uint32_t arrived;
        uint32_t entered;
        uint32_t writers_waiting;
        uint64_t last_handoff_ns;
    } __attribute__((aligned(64))) gate;
    pthread_mutex_t sort_lock;
    struct hypfs_entry_dir root;
    struct hypfs_dir_priv root_priv;
    struct slab slab;
    uint64_t gen;                     /* the last change's generation */
    uint8_t mask_key[16];             /* hides generations: see gen.c */
    hypfs_change_hook hook;
    void *hook_arg;
    const struct hypfs_watch_ops *watch_ops;
    void *watch_arg;
    /*
     * Directories in the tree where ownership begins (one with an owner,
     * a dynamic directory whose instances are owned): a domain's view of
     * a directory above one of them includes what it may see below.
     */
    struct hypfs_entry_dir *owner_roots;
    /* Directories from which owned entries went (struct tomb_map). */
    struct hypfs_entry_dir *tomb_parents;
};

/*
 * Thread-locals of the core use the initial-exec model: the library is
 * loaded at start-up (or preloaded), and the default model would cost a
 * __tls_get_addr() call on every operation.
 */
#define CORE_TLS _Thread_local __attribute__((tls_model("initial-exec")))

/* Lock state of this thread, for assertions and -EDEADLK. */
enum lock_state { UNLOCKED, READ_LOCKED, WRITE_LOCKED };
extern CORE_TLS enum lock_state core_lock_state;

/*
 * An assertion on the lock state (Xen's ASSERT(this_cpu(hypfs_locked)),
 * kernfs's lockdep_assert_held()): in builds without NDEBUG a violation
 * is reported and aborts, instead of deadlocking or corrupting silently.
 */
#ifdef NDEBUG
#define LOCK_ASSERT(cond, what) ((void)0)
#else
#define LOCK_ASSERT(cond, what) \
    ((cond) ? (void)0 : core_lock_violation(what, __func__))
#endif
void core_lock_violation(const char *what, const char *func)
    __attribute__((noreturn));

void tree_read_lock_wait(struct hypfs *fs);
void tree_write_lock(struct hypfs *fs);

/*
 * Inline: a read takes and drops the lock once, and a reader that gets in
 * at once (nearly all) needs no more than the try-lock.
 */
static inline void tree_read_lock(struct hypfs *fs)
{
    LOCK_ASSERT(core_lock_state == UNLOCKED,
                "the tree lock taken again by a thread that holds it");
    if ( pthread_rwlock_tryrdlock(&fs->lock) )
        tree_read_lock_wait(fs);
    core_lock_state = READ_LOCKED;
}

static inline void tree_unlock(struct hypfs *fs)
{
    bool wrote = core_lock_state == WRITE_LOCKED;

    LOCK_ASSERT(core_lock_state != UNLOCKED, "unlocking an unlocked tree");
    core_lock_state = UNLOCKED;
    pthread_rwlock_unlock(&fs->lock);
    if ( wrote )
        core_unmap_deferred();
}

uint32_t name_hash(const char *name, size_t len);
/* A directory's private state, made if it has none yet; NULL: no memory. */
struct hypfs_dir_priv *dir_priv_get(struct hypfs_entry_dir *dir);
/* The tree @dir is part of (NULL: detached). */
static inline struct hypfs *dir_fs(const struct hypfs_entry_dir *dir)
{
    return dir->priv ? dir->priv->fs : NULL;
}
/* Size of @entry's record in its parent's listing. */
size_t entry_record_size(const struct hypfs_entry *entry);
/*
 * hypfs_leaf_content(), for the core's own use: inline, where calling the
 * exported function went through the PLT on every read.
 */
static inline const void *leaf_value(const struct hypfs_entry_leaf *leaf)
{
    return leaf->e.flags & EF_INLINE ? (const void *)&leaf->u.val
                                     : leaf->u.content;
}

/* Whether the content of @e is rendered by its read handler, not in place. */
static inline bool entry_rendered(const struct hypfs_entry *e)
{
    return e->funcs && e->funcs->read;
}

/* ---- Directory index (index.c) ---- */

int index_insert(struct hypfs_dir_index *idx, struct hypfs_entry *entry,
                 uint32_t hash);
void index_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry);
struct hypfs_entry *index_find(const struct hypfs_dir_index *idx,
                               uint32_t hash, const char *name, size_t len);
/* The index of @dir (NULL: it has none yet, i.e. no children). */
static inline struct hypfs_dir_index *dir_index(const struct hypfs_entry_dir *dir)
{
    return dir->priv ? &dir->priv->idx : NULL;
}
/* Sorted children; merges the tail first if needed (reader-safe). */
int index_sorted(struct hypfs *fs, struct hypfs_dir_index *idx,
                 struct hypfs_entry ***order, uint32_t *nr);
void index_destroy(struct hypfs_dir_index *idx);
int name_cmp(const char *a, const char *b);

/* ---- Content rendering (buf.c) ---- */

struct hypfs_buf {
    char *data;
    size_t len;
    size_t cap;
    char small[128];        /* most values fit here: no allocation */
};

/* Inline: every operation makes one (struct call's render buffer). */
static inline void buf_init(struct hypfs_buf *buf)
{
    buf->data = buf->small;
    buf->len = 0;
    buf->cap = sizeof(buf->small);
}

static inline void buf_fini(struct hypfs_buf *buf)
{
    if ( buf->data != buf->small )
        core_free(buf->data);
    buf_init(buf);
}

void buf_reset(struct hypfs_buf *buf);
/* gzip @data (gzip header and trailer), into core_malloc() memory. */
int core_gzip(const void *data, size_t len, void **out, size_t *out_len);

/* ---- Rights and generations (gen.c) ---- */

/* The root's, then one step down to a node with @access and @owner. */
void vis_init(struct vis *v);
void vis_step(struct vis *v, uint8_t access, struct owner owner);
/*
 * Rights or an owner of a directory changed: what every directory's
 * struct dir_vis says is stale.
 */
void gen_vis_changed(void);
/* Who could see @child of @parent (a stored directory in a tree). */
void gen_vis_of_child(const struct hypfs_entry_dir *parent,
                      const struct hypfs_entry *child, struct vis *v);
/* "/a/b/@name" for @parent's child (the change hook's path). */
void gen_path_of(const struct hypfs_entry_dir *parent, const char *name,
                 char *buf, size_t len);

/* Deepest nesting of dynamic directories an operation follows. */
#define MAX_DYN_DEPTH   16u

/* Where a change happened (what a lookup found), for gen_bump(). */
struct where {
    struct hypfs_entry_dir *dir;      /* deepest stored dir on the path:
                                       * a leaf's parent, an instance's
                                       * dynamic dir, or the dir itself */
    struct hypfs_entry *leaf;         /* a stored leaf that changed */
    unsigned int ninst;               /* instances on the path, outermost */
    struct {                          /* first: their records, and whose */
        struct hypfs_gens *gens;      /* region each is in (its owner) */
        struct owner owner;
    } inst[MAX_DYN_DEPTH];
    /*
     * The length of the path up to the outermost instance: everything in
     * it has the instance's generation, so the change hook is told the
     * instance's path (whoever watches anything inside must look).
     */
    size_t inst_path_len;
    struct vis vis;
};

/*
 * Record a change at @w (writer lock held): the tree's generation moves,
 * and every record on the way up says so for those who could see it.
 * @path (may be NULL) goes to the change hook.  Returns the generation.
 */
uint64_t gen_bump(struct hypfs *fs, const struct where *w, const char *path);
/*
 * The same for @child of @parent appearing or going, and who could see it
 * (*@v, as gen_vis_of_child() says): one walk up the tree for both, on
 * the path of every add and removal.
 */
uint64_t gen_bump_child(struct hypfs *fs, struct hypfs_entry_dir *parent,
                        const struct hypfs_entry *child, const char *path,
                        struct vis *v);
/* A leaf's generation from its 32 low bits (reader or writer lock). */
uint64_t gen_of_leaf(const struct hypfs *fs, const struct hypfs_entry *e);

/*
 * A generation as domain @domid is shown it: (@a, @b) through a keyed
 * hash, so that the numbers say whether something changed and nothing
 * about how many other changes the tree saw (see gen.c).
 */
uint64_t gen_mask(const struct hypfs *fs, uint32_t domid, uint32_t tag,
                  uint64_t a, uint64_t b);
/* SipHash-2-4 of @len bytes under @key (16 bytes). */
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);
void gen_init_key(struct hypfs *fs);

/*
 * Tombstones: an owned entry (or an owned instance) went from @dir, and
 * its owner was told.  tomb_reserve() makes room first (0 or -ENOMEM),
 * so that recording cannot fail after the change is made.
 */
int tomb_reserve(struct hypfs_entry_dir *dir);
void tomb_record(struct hypfs *fs, struct hypfs_entry_dir *dir,
                 uint32_t domid, uint64_t stamp);
uint64_t tomb_get(const struct hypfs_entry_dir *dir, uint32_t domid);
/* @dir leaves the tree (or the tree is freed): forget its tombstones. */
void tomb_forget(struct hypfs *fs, struct hypfs_entry_dir *dir);
void tomb_delete(struct tomb_map *t, uint32_t domid);

#endif /* HYPFS_CORE_INTERNAL_H */
