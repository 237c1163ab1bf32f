/*
 * hypfs core: the hypervisor side of the hypervisor filesystem.
 *
 * An embedder (a hypervisor, a VMM, hypfsd) builds a tree of directories
 * and typed leaves, then hands every hypfs_op hypercall to hypfs_do_op(),
 * which validates the arguments in Xen's order and answers with Xen's
 * errno values (see hypfs/abi.h for the wire format).
 *
 * Names follow Xen's xen/include/xen/hypfs.h where Xen has the concept
 * (hypfs_entry, hypfs_entry_leaf, hypfs_entry_dir, hypfs_add_dir,
 * hypfs_add_leaf, HYPFS_*_INIT, hypfs_string_set_reference,
 * hypfs_get_dyndata), so that code moves between the two with little change.
 *
 * ABI
 * ---
 * libhypfs.so.1 exports exactly the functions of this header (the version
 * script lists them), and CI compares the library's ABI with a baseline
 * (tests/abi/libhypfs.abi, libabigail's abidiff), so a break is seen
 * before it ships.  Structures the embedder allocates (entries,
 * directories, dynamic directories, callers) hold only what the embedder
 * sets, plus fields marked core-private, whose meaning may change between
 * releases but whose size and place do not; everything else the core keeps
 * for a directory it allocates itself (struct hypfs_dir_priv, never seen
 * here).
 *
 * Where the callback model departs from Xen's
 * -------------------------------------------
 * Xen's struct hypfs_funcs has enter, exit, read, write, getsize and
 * findentry for every entry.  Here struct hypfs_funcs has read and write
 * only, and they are optional: plain entries need none.  enter and exit
 * (and findentry, as find_id, and the listing of ids) belong to dynamic
 * directories (struct hypfs_dyndir_ops), the one place Xen needs them.
 * There is no getsize: a read callback renders the whole value once per
 * operation into a buffer the core owns, and the size is that of the
 * rendering, so size and content can never disagree (Xen asks getsize,
 * then read, and a value that changes in between is inconsistent).  Names
 * are looked up by hash, not by walking a sorted list.
 *
 * Locking
 * -------
 * Each tree has one reader/writer lock, taken once per operation by
 * hypfs_do_op(): the writer side for XEN_HYPFS_OP_write_contents, the
 * reader side otherwise, and held across every callback of that operation.
 * It protects the tree's shape (which entries exist) and every leaf's
 * content and size.  Consequences for embedders:
 *   - read callbacks run concurrently with each other, never with a write;
 *   - write callbacks run alone;
 *   - callbacks must not call any function of this header that takes the
 *     lock (hypfs_add_*, hypfs_remove, hypfs_*_new, hypfs_do_op,
 *     hypfs_notify*, ...): those return -EDEADLK when called from inside
 *     an operation;
 *   - a variable a leaf points at must be changed by the embedder only
 *     under hypfs_write_lock(), or readers may see it half written.
 * Dynamic directories take the embedder's own locks in their enter hook;
 * lock order is always: tree lock, then embedder locks.
 *
 * The lock is fair both ways: a stream of readers cannot starve a writer,
 * and a burst of changes cannot starve readers (a writer that finds
 * readers waiting lets them in first, at least every 50 us).  Waiters
 * spin briefly before sleeping, since operations are short.  No change
 * holds it for long either: a directory's index grows a few slots per
 * change, never all at once.
 *
 * The lock state is kept per thread and asserted (in builds without
 * NDEBUG, as Xen's ASSERT(this_cpu(hypfs_locked) == ...) and kernfs's
 * lockdep_assert_held()): a write callback runs under the writer lock, a
 * read callback and hypfs_buf_*() under a lock, hypfs_get_dyndata() and
 * hypfs_get_dynid() inside an operation, and hypfs_write_lock() is never
 * taken by a thread that holds the lock already (from a callback it would
 * deadlock): each of these aborts with a message instead.
 *
 * Memory
 * ------
 * Entries defined statically (HYPFS_*_INIT) or allocated by the embedder
 * stay the embedder's: the core keeps pointers to them (and to their name
 * and content) until they are removed or the tree is freed, and writes
 * only the core-private fields.  Entries made by hypfs_dir_new() and
 * hypfs_leaf_new*() belong to the core and are freed on removal.
 */
#ifndef HYPFS_HYPFS_H
#define HYPFS_HYPFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hypfs/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

struct hypfs;
struct hypfs_entry;
struct hypfs_entry_leaf;
struct hypfs_entry_dir;
struct hypfs_dyndir;
struct hypfs_buf;

/* ------------------------------------------------------------------------
 * Callers and their memory
 */

/*
 * Access to the calling guest's memory.  Both return 0, or -EFAULT for
 * memory the guest cannot reach, or another negative errno of the
 * embedder's own (-ENOMEM when its buffer cannot grow), which the
 * hypercall then returns; they copy all @len bytes or report a failure.
 * The core fetches every guest byte at most once: what it validates is
 * what it uses.
 */
struct hypfs_guest_ops {
    int (*copy_from)(void *ctx, void *dst, uint64_t addr, size_t len);
    int (*copy_to)(void *ctx, uint64_t addr, const void *src, size_t len);
};

/*
 * Guest memory that is this process's own: addresses are pointers.  For
 * in-process guests, tests and tools; it trusts every address.
 */
extern const struct hypfs_guest_ops hypfs_local_mem;

/* The caller may use hypfs at all; without it every command is -EPERM. */
#define HYPFS_CALLER_HYPFS      0x1u
/* The caller is the control domain: it holds every right. */
#define HYPFS_CALLER_CONTROL    0x2u

/* Who is calling, and how to reach their memory. */
struct hypfs_caller {
    uint32_t domid;
    unsigned int flags;                 /* HYPFS_CALLER_* */
    const struct hypfs_guest_ops *mem;
    void *mem_ctx;
};

/* ------------------------------------------------------------------------
 * Access rights
 *
 * Each entry has a read right and a write right, each one of the values
 * below.  The control domain passes every check.  An entry a caller may not
 * read does not exist for it: it is absent from listings and from the
 * directory's content_len, and looking it up gives -ENOENT.  A directory
 * the caller may not read hides everything below it.  A readable entry the
 * caller may not write reads as read-only (max_write_len 0) and writing it
 * gives -EACCES.
 *
 * The owner of an entry is inherited from the nearest directory above it
 * that has one (hypfs_dir_set_owner(), or an instance of a dynamic
 * directory made with HYPFS_DYNDIR_OWNER_IS_ID); without one, only the
 * control domain passes HYPFS_RIGHT_OWNER.
 */
#define HYPFS_RIGHT_CONTROL     0u   /* the control domain only (default) */
#define HYPFS_RIGHT_ANY         1u   /* any caller with HYPFS_CALLER_HYPFS */
#define HYPFS_RIGHT_OWNER       2u   /* the owning domain */

/* ------------------------------------------------------------------------
 * Entries
 */

/*
 * Per-entry callbacks.  Both are optional and run under the tree lock
 * (see "Locking" above): read under the reader side, write under the
 * writer side.
 *
 * read:  render the entry's current content into @buf (hypfs_buf_*()).
 *        Called once per operation, so size and content always agree.
 *        Strings must end with their NUL; uint/int/bool must be exactly
 *        e.size bytes (use hypfs_buf_put_num()).  Returns 0 or -errno.
 * write: called after the core has fetched and checked the new value.
 *        For a string entry the value is one NUL-terminated string of
 *        @len bytes (NUL included), at most max_size; the handler parses
 *        and validates it and then applies it, or returns an error
 *        (-EINVAL, ...) having changed nothing.  For other types the value
 *        has passed the plain checks of its type (size, bool 0/1) and the
 *        handler validates and applies it.  @val is the core's private
 *        copy, valid only during the call.
 */
struct hypfs_funcs {
    int (*read)(const struct hypfs_entry *entry, struct hypfs_buf *buf);
    int (*write)(struct hypfs_entry_leaf *leaf, const void *val,
                 unsigned int len);
    /*
     * With a write handler: the longest value it accepts (-ENOSPC above),
     * when that differs from the max_size the entry reports as its
     * max_write_len; 0: max_size.  Xen's runtime parameters report the
     * size of their current value's buffer (7 for console_timestamps) but
     * take values up to the parameter size limit (128).
     */
    unsigned int write_max;
    unsigned int flags;               /* HYPFS_WRITE_* */
};

/*
 * The write handler of a string entry judges the bytes itself: the core
 * does not require the NUL to be the last byte (which it otherwise
 * answers with -EDOM for a handler, as Xen's parameters do), so the
 * handler picks the errno (Xen's sched-gran says -EINVAL).
 */
#define HYPFS_WRITE_RAW_STRING  0x1u

/*
 * The common part of every entry.  type, encoding, size, max_size, name and
 * funcs are the embedder's to set before the entry is added; access through
 * hypfs_set_access().  flags and gen are the core's.
 */
struct hypfs_entry {
    uint8_t type;                     /* XEN_HYPFS_TYPE_* */
    uint8_t encoding;                 /* XEN_HYPFS_ENC_* */
    uint8_t access;                   /* read right | write right << 2 */
    uint8_t flags;                    /* core-private */
    unsigned int size;                /* leaves: content size in bytes */
    unsigned int max_size;            /* longest write; 0: read-only */
    uint32_t gen;                     /* core-private: last change */
    const char *name;
    const struct hypfs_funcs *funcs;  /* NULL: plain entry */
};

/*
 * A leaf.  Its content is u.content (size bytes), normally the embedder's
 * variable; a writable plain leaf needs max_size bytes of room there.
 * Leaves made by hypfs_leaf_new() keep small values inside the entry;
 * read those through hypfs_leaf_content().
 */
struct hypfs_entry_leaf {
    struct hypfs_entry e;
    union {
        const void *content;
        void *write_ptr;
        uint64_t val;                 /* core-private inline storage */
    } u;
};

/*
 * A directory.  What the core keeps for it (its index of children, its
 * place in the tree, its generations) it allocates itself and reaches
 * through priv, so that none of it is part of this ABI.
 */
struct hypfs_entry_dir {
    struct hypfs_entry e;
    uint32_t owner;                   /* see hypfs_dir_set_owner() */
    struct hypfs_dir_priv *priv;      /* core-private */
};

/*
 * Generations (interface version 2) of one object a dynamic directory
 * shows, kept by the embedder in the object (its struct domain, say),
 * zeroed when the object is made, written by the core only, under the
 * writer lock: the last change to anything in the object's instance, and
 * the last that every domain, or its owner, could see.  See
 * hypfs_dyndir_ops.gens.
 */
struct hypfs_gens {
    uint64_t all;
    uint64_t any;
    uint64_t owner;
};

/* ------------------------------------------------------------------------
 * Dynamic directories
 *
 * A dynamic directory has one child directory per live id of some
 * embedder object (a cpupool, a domain), generated at each access and never
 * stored: "/cpupool/<id>/".  Each such instance looks like the template
 * directory, whose children are shared by all instances; their callbacks
 * find the instance they are working on with hypfs_get_dyndata() and
 * hypfs_get_dynid().  Instances live only for one operation: nothing is
 * allocated per id and nothing leaks per access.  An entry added to or
 * removed from the template at run time appears in or goes from every
 * instance at once; version 2's generations say so to each domain that
 * may read it in an instance (with HYPFS_DYNDIR_OWNER_IS_ID, the owner of
 * each instance in its own).
 */
struct hypfs_dyndir_ops {
    /*
     * Optional.  Called before the directory's ids are used in an operation
     * (looked up, listed or counted), exit when done with them; typically
     * take and release the embedder's lock over its list of objects so
     * that a looked-up object stays alive for the whole operation.  enter
     * returns 0 or -errno (the operation then fails with it).  Calls can
     * nest (a listing sizes sub-directories while a parent is entered).
     */
    int (*enter)(const struct hypfs_dyndir *dd);
    void (*exit)(const struct hypfs_dyndir *dd);
    /*
     * Call @fn for every live id, in any order; stop and return fn's value
     * if it is not 0.  Returns 0 or -errno.
     */
    int (*foreach_id)(const struct hypfs_dyndir *dd,
                      int (*fn)(void *arg, unsigned int id), void *arg);
    /*
     * Look up one id: 0 with *data set (any pointer, handed back by
     * hypfs_get_dyndata()), or -ENOENT.
     */
    int (*find_id)(const struct hypfs_dyndir *dd, unsigned int id,
                   void **data);
    /*
     * Optional (interface version 2): where the generations of the object
     * @data (as find_id gave it) are kept.  Without it, a change inside an
     * instance counts for the control domain only: nobody else is told
     * (nothing leaks, but domains cannot watch their own instances).
     */
    struct hypfs_gens *(*gens)(const struct hypfs_dyndir *dd, void *data);
};

/* Instances belong to the domain whose id they carry (/domain/<id>/). */
#define HYPFS_DYNDIR_OWNER_IS_ID  0x1u

struct hypfs_dyndir {
    struct hypfs_entry_dir dir;       /* the directory itself */
    struct hypfs_entry_dir *tmpl;     /* shape and rights of each instance */
    const struct hypfs_dyndir_ops *ops;
    unsigned int flags;               /* HYPFS_DYNDIR_* */
    void *priv;                       /* the embedder's */
};

/*
 * Inside a callback of an operation: the data of the innermost
 * dynamic-directory instance on the operation's path (or being listed),
 * NULL when there is none; and its id: 0 with *id set, or -ENOENT when
 * there is none (every uint32_t is a valid id).
 */
void *hypfs_get_dyndata(void);
int hypfs_get_dynid(uint32_t *id);

/* ------------------------------------------------------------------------
 * Static definitions (the embedder owns the storage)
 */

#define HYPFS_INIT_COMMON(typ, enc, nam, sz, msz, fn) \
    .e.type = (typ), .e.encoding = (enc), .e.name = (nam), \
    .e.size = (sz), .e.max_size = (msz), .e.funcs = (fn)

#define HYPFS_DIR_INIT(var, nam) \
    struct hypfs_entry_dir var = { \
        HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_DIR, XEN_HYPFS_ENC_PLAIN, nam, \
                          0, 0, NULL) }

/* A directory with one generated sub-directory per live id. */
#define HYPFS_DYNDIR_INIT(var, nam, tmpl_dir, dyn_ops, fl) \
    struct hypfs_dyndir var = { \
        .dir = { HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_DIR, XEN_HYPFS_ENC_PLAIN, \
                                   nam, 0, 0, NULL) }, \
        .tmpl = (tmpl_dir), .ops = (dyn_ops), .flags = (fl) }

/*
 * A leaf of variable size (string or blob).  Content and size are set with
 * hypfs_string_set_reference() or by the embedder; a writable one needs
 * u.write_ptr to point at msz bytes.
 */
#define HYPFS_VARSIZE_INIT(var, typ, nam, msz, fn) \
    struct hypfs_entry_leaf var = { \
        HYPFS_INIT_COMMON(typ, XEN_HYPFS_ENC_PLAIN, nam, 0, msz, fn) }

#define HYPFS_STRING_INIT(var, nam) \
    HYPFS_VARSIZE_INIT(var, XEN_HYPFS_TYPE_STRING, nam, 0, NULL)

/* A leaf showing the embedder's variable @contvar (uint, int or bool). */
#define HYPFS_FIXEDSIZE_INIT(var, typ, nam, contvar, fn, wr) \
    struct hypfs_entry_leaf var = { \
        HYPFS_INIT_COMMON(typ, XEN_HYPFS_ENC_PLAIN, nam, sizeof(contvar), \
                          (wr) ? sizeof(contvar) : 0, fn), \
        .u.content = &(contvar) }

#define HYPFS_UINT_INIT(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_UINT, nam, contvar, NULL, 0)
#define HYPFS_UINT_INIT_WRITABLE(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_UINT, nam, contvar, NULL, 1)
#define HYPFS_INT_INIT(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_INT, nam, contvar, NULL, 0)
#define HYPFS_INT_INIT_WRITABLE(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_INT, nam, contvar, NULL, 1)
#define HYPFS_BOOL_INIT(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_BOOL, nam, contvar, NULL, 0)
#define HYPFS_BOOL_INIT_WRITABLE(var, nam, contvar) \
    HYPFS_FIXEDSIZE_INIT(var, XEN_HYPFS_TYPE_BOOL, nam, contvar, NULL, 1)

/*
 * Point a string leaf at @str; size becomes strlen(str) + 1.  The leaf
 * keeps the pointer: after changing *str (under hypfs_write_lock() once the
 * leaf is in a tree) call this again to update the size.
 */
static inline void hypfs_string_set_reference(struct hypfs_entry_leaf *leaf,
                                              const char *str)
{
    size_t n = 0;

    while ( str[n] )
        n++;
    leaf->u.content = str;
    leaf->e.size = (unsigned int)(n + 1);
}

/*
 * Set an entry's rights (HYPFS_RIGHT_*).  Call it before adding the entry,
 * or under hypfs_write_lock().  Returns 0 or -EINVAL (unknown right; nothing
 * changed).  On an entry in a tree, new rights are not a recorded change
 * (a caller that may now see it is not told): hypfs_notify() its path.
 */
int hypfs_set_access(struct hypfs_entry *entry, unsigned int read_right,
                     unsigned int write_right);

/*
 * Make @dir and everything below it belong to domain @domid (see "Access
 * rights").  Same calling rules as hypfs_set_access().
 */
void hypfs_dir_set_owner(struct hypfs_entry_dir *dir, uint32_t domid);

/* ------------------------------------------------------------------------
 * Trees
 */

/*
 * Create an empty tree (just "/").  Returns 0 and *fs, or -ENOMEM.
 * The tree is freed with hypfs_free().
 */
int hypfs_new(struct hypfs **fs);

/*
 * Free a tree and every core-owned entry in it.  Embedder-owned entries
 * are detached (and may be added to a tree again) but not freed.  Accepts
 * NULL.  No operation may be running.
 */
void hypfs_free(struct hypfs *fs);

/* The root directory of @fs.  Owned by the tree. */
struct hypfs_entry_dir *hypfs_root(struct hypfs *fs);

/*
 * Add @dir / @leaf / @dd as a child of @parent.  @parent may be part of a
 * tree (the tree lock is taken) or a detached directory being built (for
 * example a template).  Names are 1..HYPFS_NAME_MAX bytes of printable
 * characters without '/', and not "." or "..".
 *
 * With @nofault, any failure aborts the process (for static setup that
 * cannot go wrong).  Returns 0 or:
 *   -EINVAL  bad name, type, size, encoding or rights
 *   -EEXIST  @parent already has a child of that name
 *   -EBUSY   the entry is already part of a directory
 *   -E2BIG   @parent's listing would exceed what the ABI can describe
 *   -ENOMEM  out of memory
 *   -EOVERFLOW the entry's address has more than 48 significant bits (no
 *            64-bit Linux port places heap or data there by default)
 *   -EDEADLK called from inside an operation's callback
 * On error nothing changed.
 */
int hypfs_add_dir(struct hypfs_entry_dir *parent,
                  struct hypfs_entry_dir *dir, bool nofault);
int hypfs_add_leaf(struct hypfs_entry_dir *parent,
                   struct hypfs_entry_leaf *leaf, bool nofault);
int hypfs_add_dyndir(struct hypfs_entry_dir *parent,
                     struct hypfs_dyndir *dd, bool nofault);

/*
 * Remove @entry (and everything below it) from @parent.  Core-owned entries
 * are freed; embedder-owned ones are detached and may be reused.  Returns 0,
 * -ENOENT (not a child of @parent) or -EDEADLK.
 */
int hypfs_remove(struct hypfs_entry_dir *parent, struct hypfs_entry *entry);

/*
 * Create a core-owned directory named @name under @parent (NULL: a detached
 * directory, for instance a template, freed when the tree it is later
 * attached to is freed, or by hypfs_remove()).  Returns 0 and *dir (owned
 * by the core; valid until removed) or an error as for hypfs_add_dir().
 */
int hypfs_dir_new(struct hypfs_entry_dir *parent, const char *name,
                  struct hypfs_entry_dir **dir);

/*
 * Create a core-owned leaf under @parent holding a copy of @content
 * (@size bytes).  @max_size > 0 makes it writable: then strings and blobs
 * get room for @max_size bytes, and uint/int/bool need @max_size == @size.
 * Returns 0 and *leaf, or an error as for hypfs_add_leaf().
 */
int hypfs_leaf_new(struct hypfs_entry_dir *parent, const char *name,
                   unsigned int type, const void *content, unsigned int size,
                   unsigned int max_size, struct hypfs_entry_leaf **leaf);

/*
 * Create a core-owned read-only leaf whose content is @data (@len bytes)
 * compressed with gzip; readers see encoding XEN_HYPFS_ENC_GZIP.  @type is
 * XEN_HYPFS_TYPE_STRING (@data includes its NUL) or XEN_HYPFS_TYPE_BLOB.
 * Returns 0 and *leaf (may be NULL if not wanted) or -errno.
 */
int hypfs_leaf_new_gzip(struct hypfs_entry_dir *parent, const char *name,
                        unsigned int type, const void *data, size_t len,
                        struct hypfs_entry_leaf **leaf);

/* The content of a leaf (works for core-owned and embedder leaves). */
const void *hypfs_leaf_content(const struct hypfs_entry_leaf *leaf);

/*
 * Take / release the tree's writer lock, to change a variable that a leaf
 * points at so that no reader sees it half written.  Must not be called
 * from a callback.
 */
void hypfs_write_lock(struct hypfs *fs);
void hypfs_write_unlock(struct hypfs *fs);

/* Longest entry name accepted. */
#define HYPFS_NAME_MAX          255

/* ------------------------------------------------------------------------
 * The hypercall
 */

/*
 * Perform one hypfs_op hypercall for @caller: @cmd is XEN_HYPFS_OP_*, and
 * arg1..arg4 are as described in hypfs/abi.h (addresses in the caller's
 * memory, reached only through caller->mem).
 *
 * Returns what the hypercall returns: the interface version for
 * get_version, 0 on success, or a negative errno, checked in Xen's order:
 * -EPERM, then get_version's arguments, then the path (-EINVAL, -EFAULT),
 * the lookup (-ENOENT), the command (-EOPNOTSUPP), and the command's own
 * checks.  -ENOMEM when memory runs out; a failed write changes nothing.
 *
 * Thread-safe: reads run in parallel, writes exclusively.  Each call works
 * on its own copy of its path and data.
 */
long hypfs_do_op(struct hypfs *fs, const struct hypfs_caller *caller,
                 unsigned int cmd, uint64_t arg1, uint64_t arg2,
                 uint64_t arg3, uint64_t arg4);

/*
 * The checks of XEN_HYPFS_OP_write_contents that come before the value is
 * fetched (the caller's right, the path, the lookup, the entry's rights,
 * the value's size), under the reader lock: what hypfs_do_op() would
 * return before reading the value, or 0 if it would go on to read it.
 * For an embedder that receives the value apart from the request (hypfsd
 * reads it from a socket) and must not take in a value for a write that
 * is refused anyway.  The path is read through caller->mem as for
 * hypfs_do_op(); nothing changes.
 */
long hypfs_write_check(struct hypfs *fs, const struct hypfs_caller *caller,
                       uint64_t arg1, uint64_t arg2, uint64_t arg4);

/* ------------------------------------------------------------------------
 * Rendering content (for read callbacks)
 */

/* A growable output buffer handed to read callbacks; owned by the core. */
struct hypfs_buf;

/* Append @len bytes.  0, -ENOMEM, or -EFBIG past HYPFS_CONTENT_MAX. */
int hypfs_buf_put(struct hypfs_buf *buf, const void *data, size_t len);
/* Append @str with its terminating NUL: the content of a string entry. */
int hypfs_buf_put_string(struct hypfs_buf *buf, const char *str);
/* Append printf-formatted text followed by its NUL. */
int hypfs_buf_printf(struct hypfs_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append @val as @entry's uint/int/bool: entry->size bytes, native order. */
int hypfs_buf_put_num(struct hypfs_buf *buf, const struct hypfs_entry *entry,
                      uint64_t val);

/* Largest content a read callback may render. */
#define HYPFS_CONTENT_MAX       (16u << 20)

/* ------------------------------------------------------------------------
 * Interface version 2: generations, change notification, watches
 *
 * Every entry has a generation, which grows when it changes (for a
 * directory: when anything below it does), kept per kind of caller so that
 * a caller learns nothing about what it may not read (see abi.h).  The
 * core keeps them for its own changes (writes, entries added and
 * removed); an embedder whose values change outside hypfs (a read callback
 * rendering its own state, a dynamic directory's objects) says so with
 * hypfs_notify() / hypfs_notify_gone().  A change costs O(depth of the
 * entry) under the writer lock, whoever watches.
 */

/*
 * The entry at @path (absolute; an instance of a dynamic directory too)
 * changed outside hypfs: its value, or for a directory what is below it
 * (an instance that appeared).  Takes the writer lock.  0, -ENOENT (no
 * such entry), -EINVAL (not a path), or -EDEADLK (from a callback).
 */
int hypfs_notify(struct hypfs *fs, const char *path);

/*
 * The instance of a dynamic directory at @path ("/domain/7") went away.
 * Its parent's generation moves for those who could see it.  0, -ENOENT
 * (the parent is not a dynamic directory), -EINVAL, -EDEADLK.
 */
int hypfs_notify_gone(struct hypfs *fs, const char *path);

/*
 * Owner @domid is gone for good (a destroyed domain): forget what the
 * tree remembers of its entries that went (a record per owner and
 * directory, so that the owner's view of the directory moves when its
 * entries go).  Without this, those records grow with every owner that
 * ever was.  An owner of that id seen later starts afresh.  Takes the
 * writer lock.  0, -EINVAL, or -EDEADLK (from a callback).
 */
int hypfs_forget_owner(struct hypfs *fs, uint32_t domid);

/*
 * Bytes of memory the core holds in mappings of its own, for every tree
 * of the process: the slab blocks that entries made by hypfs_leaf_new()
 * and hypfs_dir_new() live in (from one reservation of address space),
 * and large directories' tables (not those of freed directories kept
 * for the next ones, up to 4 MiB, as the C library's figure of memory in
 * use leaves out its free memory).  The C library's statistics
 * (mallinfo2()) do not count them; together the two are what the core
 * holds.  Any thread, no lock: a moment's figure.  (HYPFS_1.1)
 */
size_t hypfs_mapped_bytes(void);

/*
 * Called after every change, under the writer lock, with the path of what
 * changed (inside an instance of a dynamic directory: the instance's,
 * since everything in it shares the instance's generation) and the tree's
 * generation: it must only take note (wake a thread that checks watches
 * with hypfs_get_generation()).  NULL: none.  Set it before the tree is
 * shared.
 */
typedef void (*hypfs_change_hook)(void *arg, const char *path, uint64_t gen);
void hypfs_set_change_hook(struct hypfs *fs, hypfs_change_hook hook,
                           void *arg);

/*
 * The generation of @path (absolute, NUL-terminated) as @caller sees it,
 * in *gen.  Returns 0, or -EPERM / -ENOENT as a read would.  Reader lock.
 */
long hypfs_get_generation(struct hypfs *fs, const struct hypfs_caller *caller,
                          const char *path, uint64_t *gen);

/*
 * Watches (XEN_HYPFS_OP_watch, XEN_HYPFS_OP_unwatch) are the embedder's to
 * keep and to deliver: the core checks the caller and the path, then
 * calls these (under the reader lock: they must only record).  @known is
 * the generation the caller knows; @gen the one it has now.  They return
 * 0 or -errno (-ENOSPC: too many watches; -ENOENT: no such token).
 * Without them both commands are -EOPNOTSUPP.  Set before the tree is
 * shared.
 */
struct hypfs_watch_ops {
    int (*watch)(void *arg, const struct hypfs_caller *caller,
                 const char *path, uint64_t token, uint64_t known,
                 uint64_t gen);
    int (*unwatch)(void *arg, const struct hypfs_caller *caller,
                   uint64_t token);
};
void hypfs_set_watch_ops(struct hypfs *fs, const struct hypfs_watch_ops *ops,
                         void *arg);

#ifdef __cplusplus
}
#endif

#endif /* HYPFS_HYPFS_H */
