/*
 * Declarations shared by the files of src/core only.
 *
 * Who guards what:
 *   struct hypfs.lock       the shape of the tree, every leaf's content and
 *                           size, every directory index except its order
 *                           array's lazy merge;
 *   struct hypfs.sort_lock  the lazy merge of a directory's unsorted tail
 *                           into its sorted order array, done by readers
 *                           (see index.c);
 *   struct hypfs.slab       the node allocator; taken under the writer lock
 *                           or on a detached subtree only, so it needs none.
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

#define RIGHT_READ(access)   ((access) & 3u)
#define RIGHT_WRITE(access)  (((access) >> 2) & 3u)

/* ---- Allocation (alloc.c) ---- */

void *core_malloc(size_t size);
void *core_realloc(void *ptr, size_t size);
void core_free(void *ptr);

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

void *slab_alloc(struct slab *slab, size_t size);
void slab_release(struct slab *slab, void *ptr, size_t size);
void slab_destroy(struct slab *slab);

/* ---- Trees (tree.c) ---- */

struct hypfs {
    pthread_rwlock_t lock;
    pthread_mutex_t sort_lock;
    struct hypfs_entry_dir root;
    struct slab slab;
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

void tree_read_lock(struct hypfs *fs);
void tree_write_lock(struct hypfs *fs);
void tree_unlock(struct hypfs *fs);

uint32_t name_hash(const char *name, size_t len);
/* Size of @entry's record in its parent's listing. */
size_t entry_record_size(const struct hypfs_entry *entry);

/* ---- Directory index (index.c) ---- */

int index_insert(struct hypfs_dir_index *idx, struct hypfs_entry *entry);
void index_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry);
struct hypfs_entry *index_find(const struct hypfs_dir_index *idx,
                               uint32_t hash, const char *name, size_t len);
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

void buf_init(struct hypfs_buf *buf);
void buf_reset(struct hypfs_buf *buf);
void buf_fini(struct hypfs_buf *buf);

#endif /* HYPFS_CORE_INTERNAL_H */
