/*
 * The index of a directory's children.
 *
 * Two structures over the same children, because hypfs needs two things
 * from a directory and no single structure gives both cheaply:
 *
 *   lookup by name   an open-addressing hash table (linear probing) of
 *                    8-byte slots, each an entry pointer with 16 bits of the
 *                    name's hash in its unused top bits.  A probe compares
 *                    tags in the slot and touches an entry only on a match,
 *                    so a lookup in a directory of a million entries costs
 *                    one slot line and one entry.  (User-space pointers
 *                    have 48 significant bits on every 64-bit Linux port
 *                    unless a mapping is explicitly placed higher; an
 *                    entry that does not fit is refused with -EOVERFLOW.)
 *                    Deletion shifts later members back (no tombstones).
 *                    Slots are mapped from the hash by multiplication
 *                    (hash * nslots >> 32), so the table grows by 1.5x.
 *
 *   listing in order the "order" array of entry pointers: a sorted prefix
 *                    [0, order_sorted) followed by an unsorted tail.  Adding
 *                    a name that sorts after the last one (the usual case:
 *                    cpus, domains, generated names) extends the prefix;
 *                    any other add goes to the tail and marks the array
 *                    dirty.  The first listing after that sorts the tail and
 *                    merges it in: n adds cost O(n log n) in total whatever
 *                    their order.
 *
 * Locking: insert and remove run under the tree's writer lock.  Lookups run
 * under the reader lock and only read.  The lazy merge is the one change
 * made under the reader lock: index_sorted() does it under the tree's
 * sort_lock, and readers that find the array clean (acquire load of
 * order_dirty) read it without that lock, which is safe because only a
 * writer can make it dirty again, and writers exclude all readers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core-internal.h"

#define MIN_SLOTS     8u
/* Grow when more than 7/8 of the slots are used. */
#define LOAD_NUM      7u
#define LOAD_DEN      8u

#define TAG_SHIFT     48
#define PTR_MASK      ((UINT64_C(1) << TAG_SHIFT) - 1)

int name_cmp(const char *a, const char *b)
{
    /* Byte-wise, as unsigned char: the ABI's sort order. */
    return strcmp(a, b);
}

/* The tag uses the hash's low bits; the home slot uses its high bits. */
static uint64_t slot_make(const struct hypfs_entry *e)
{
    return (uint64_t)(uintptr_t)e | ((uint64_t)(e->hash & 0xffffu) << TAG_SHIFT);
}

static struct hypfs_entry *slot_entry(uint64_t slot)
{
    return (struct hypfs_entry *)(uintptr_t)(slot & PTR_MASK);
}

static bool slot_tag_is(uint64_t slot, uint32_t hash)
{
    return (slot >> TAG_SHIFT) == (hash & 0xffffu);
}

static uint32_t home_slot(uint32_t hash, uint32_t nslots)
{
    return (uint32_t)(((uint64_t)hash * nslots) >> 32);
}

static uint32_t next_slot(uint32_t i, uint32_t nslots)
{
    return i + 1 == nslots ? 0 : i + 1;
}

static void table_place(uint64_t *slots, uint32_t nslots,
                        const struct hypfs_entry *entry)
{
    uint32_t i = home_slot(entry->hash, nslots);

    while ( slots[i] )
        i = next_slot(i, nslots);
    slots[i] = slot_make(entry);
}

static int table_grow(struct hypfs_dir_index *idx)
{
    uint32_t nslots = idx->nslots ? idx->nslots + idx->nslots / 2 : MIN_SLOTS;
    uint64_t *slots;
    uint32_t i;

    if ( nslots < idx->nslots )
        return -E2BIG;
    slots = core_malloc((size_t)nslots * sizeof(*slots));
    if ( !slots )
        return -ENOMEM;
    memset(slots, 0, (size_t)nslots * sizeof(*slots));
    for ( i = 0; i < idx->nslots; i++ )
        if ( idx->slots[i] )
            table_place(slots, nslots, slot_entry(idx->slots[i]));
    core_free(idx->slots);
    idx->slots = slots;
    idx->nslots = nslots;
    return 0;
}

struct hypfs_entry *index_find(const struct hypfs_dir_index *idx,
                               uint32_t hash, const char *name, size_t len)
{
    uint32_t i;

    if ( !idx->nr )
        return NULL;
    for ( i = home_slot(hash, idx->nslots); idx->slots[i];
          i = next_slot(i, idx->nslots) )
    {
        const struct hypfs_entry *e;

        if ( !slot_tag_is(idx->slots[i], hash) )
            continue;
        e = slot_entry(idx->slots[i]);
        /*
         * An inline name follows the struct, usually on the next cache
         * line: ask for both at once rather than one after the other.
         */
        __builtin_prefetch((const char *)e + sizeof(struct hypfs_entry_leaf));
        if ( e->hash == hash && !strncmp(e->name, name, len) &&
             e->name[len] == '\0' )
            return (struct hypfs_entry *)e;
    }
    return NULL;
}

static int order_reserve(struct hypfs_dir_index *idx)
{
    uint32_t cap;
    struct hypfs_entry **order;

    if ( idx->nr < idx->order_cap )
        return 0;
    cap = idx->order_cap ? idx->order_cap + idx->order_cap / 2 : 4;
    if ( cap < idx->order_cap )
        return -E2BIG;
    order = core_realloc(idx->order, (size_t)cap * sizeof(*order));
    if ( !order )
        return -ENOMEM;
    idx->order = order;
    idx->order_cap = cap;
    return 0;
}

int index_insert(struct hypfs_dir_index *idx, struct hypfs_entry *entry)
{
    int ret;

    if ( idx->nr == UINT32_MAX - 1 )
        return -E2BIG;
    if ( (uint64_t)(uintptr_t)entry & ~PTR_MASK )
        return -EOVERFLOW;
    /* Reserve both structures first so that a failure changes nothing. */
    ret = order_reserve(idx);
    if ( ret )
        return ret;
    if ( (uint64_t)(idx->nr + 1) * LOAD_DEN > (uint64_t)idx->nslots * LOAD_NUM )
    {
        ret = table_grow(idx);
        if ( ret )
            return ret;
    }

    table_place(idx->slots, idx->nslots, entry);

    if ( idx->order_sorted == idx->nr &&
         (!idx->nr || name_cmp(idx->order[idx->nr - 1]->name, entry->name) < 0) )
        idx->order_sorted++;
    else
        __atomic_store_n(&idx->order_dirty, 1, __ATOMIC_RELAXED);
    idx->order[idx->nr++] = entry;
    return 0;
}

static void table_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry)
{
    uint32_t n = idx->nslots, i, j;

    for ( i = home_slot(entry->hash, n); slot_entry(idx->slots[i]) != entry;
          i = next_slot(i, n) )
        if ( !idx->slots[i] )
            return;

    /*
     * Backward-shift deletion: move up every later member of the cluster
     * whose home slot does not lie cyclically in (i, j], so that no probe
     * sequence is broken by the hole.
     */
    for ( j = next_slot(i, n); idx->slots[j]; j = next_slot(j, n) )
    {
        uint32_t k = home_slot(slot_entry(idx->slots[j])->hash, n);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);

        if ( stays )
            continue;
        idx->slots[i] = idx->slots[j];
        i = j;
    }
    idx->slots[i] = 0;
}

void index_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry)
{
    uint32_t lo = 0, hi = idx->order_sorted, pos = UINT32_MAX;

    table_remove(idx, entry);

    /* Binary search in the sorted prefix, then a scan of the tail. */
    while ( lo < hi )
    {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(idx->order[mid]->name, entry->name);

        if ( !c )
        {
            pos = mid;
            break;
        }
        if ( c < 0 )
            lo = mid + 1;
        else
            hi = mid;
    }
    if ( pos == UINT32_MAX )
        for ( pos = idx->order_sorted; pos < idx->nr; pos++ )
            if ( idx->order[pos] == entry )
                break;
    if ( pos >= idx->nr )
        return;

    memmove(&idx->order[pos], &idx->order[pos + 1],
            (size_t)(idx->nr - pos - 1) * sizeof(*idx->order));
    if ( pos < idx->order_sorted )
        idx->order_sorted--;
    idx->nr--;
    if ( idx->order_sorted == idx->nr )
        __atomic_store_n(&idx->order_dirty, 0, __ATOMIC_RELAXED);

    if ( !idx->nr )
        index_destroy(idx);
}

static int entry_ptr_cmp(const void *a, const void *b)
{
    const struct hypfs_entry *const *x = a, *const *y = b;

    return name_cmp((*x)->name, (*y)->name);
}

/* Sort the tail and merge it into the prefix.  Nothing changes on error. */
static int order_merge(struct hypfs_dir_index *idx)
{
    uint32_t s = idx->order_sorted, k = idx->nr - s, i, j, out;
    struct hypfs_entry **tail;

    if ( !k )
        return 0;
    tail = core_malloc((size_t)k * sizeof(*tail));
    if ( !tail )
        return -ENOMEM;
    memcpy(tail, &idx->order[s], (size_t)k * sizeof(*tail));
    qsort(tail, k, sizeof(*tail), entry_ptr_cmp);

    /* Merge from the top down: the prefix stays in place until consumed. */
    i = s;
    j = k;
    out = idx->nr;
    while ( j )
    {
        if ( i && name_cmp(idx->order[i - 1]->name, tail[j - 1]->name) > 0 )
            idx->order[--out] = idx->order[--i];
        else
            idx->order[--out] = tail[--j];
    }
    core_free(tail);
    idx->order_sorted = idx->nr;
    return 0;
}

int index_sorted(struct hypfs *fs, struct hypfs_dir_index *idx,
                 struct hypfs_entry ***order, uint32_t *nr)
{
    int ret = 0;

    if ( __atomic_load_n(&idx->order_dirty, __ATOMIC_ACQUIRE) )
    {
        pthread_mutex_lock(&fs->sort_lock);
        if ( __atomic_load_n(&idx->order_dirty, __ATOMIC_RELAXED) )
        {
            ret = order_merge(idx);
            if ( !ret )
                __atomic_store_n(&idx->order_dirty, 0, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&fs->sort_lock);
    }
    *order = idx->order;
    *nr = idx->nr;
    return ret;
}

void index_destroy(struct hypfs_dir_index *idx)
{
    core_free(idx->slots);
    core_free(idx->order);
    memset(idx, 0, sizeof(*idx));
}
