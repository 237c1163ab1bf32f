/*
 * The index of a directory's children.
 *
 * Two structures over the same children, because hypfs needs two things
 * from a directory and no single structure gives both cheaply:
 *
 *   lookup by name   an open-addressing hash table (linear probing) of
 *                    8-byte slots, each an entry and bits of its name's
 *                    hash.  The top 19 bits are both the tag's first part
 *                    and all the home slot is made from (h19 * nslots >>
 *                    19), so that an entry is moved, and a cluster
 *                    shifted, without reading the entry: in a directory
 *                    of a million entries each such read was a cache
 *                    miss, two per add.  How the entry is said leaves the
 *                    tag more or fewer bits.  An entry the core made is
 *                    in the arena (alloc.c) and takes 32 bits, its offset
 *                    there, leaving 12 more bits of tag: a probe then
 *                    reads an entry whose name is not the one looked for
 *                    once in 4,096 times it would otherwise.  Any other
 *                    (the embedder's own) takes its whole address: it is
 *                    8-byte aligned and user-space pointers have 47
 *                    significant bits on every 64-bit Linux port unless a
 *                    mapping is explicitly placed higher, so 44 bits (one
 *                    that does not fit is refused with -EOVERFLOW), and
 *                    its tag is the 19 home bits alone: past 2^19 slots
 *                    entries whose 19 bits agree share a home and a tag,
 *                    and a lookup there may read one more.  Deletion
 *                    shifts later members back (no tombstones).  The
 *                    table grows by 1.5x.
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
 * Growing without stopping readers.  Moving every entry of a large table
 * to a bigger one at once would hold the writer lock for as long as that
 * takes (29 ms at 880,000 entries), and every reader would wait.  As in
 * Redis's dictRehash, the table grows incrementally instead: a new table
 * is made (zeroed by the kernel, not by a loop), new entries go there, and
 * every insertion or removal moves MOVE_STEP slots of the old one over.
 * Until it is done, lookups probe the new table, then the old one.  Old
 * slots are never shifted (chains stay whole): a slot already moved
 * ([0, old_done)) is skipped without being touched (its entry may be gone
 * by now), and an entry removed before being moved leaves a tombstone.
 * The new table is 1.5x the old and growth starts at 7/8 load, so 0.44 x
 * the old size of insertions come before the next growth must start.  The
 * old table lives for its size / MOVE_STEP of them, and each probes it for
 * a duplicate at 7/8 load (some 31 slots a probe): at 16 slots a step 14%
 * of the insertions, growing to a million, made 188,000 such probes
 * reading 5.9 million old slots; at 64, 3.6% made 47,000 reading 1.5
 * million, and each of those holds the lock for 48 placements more.
 * Large tables (and the order array) are mappings of their own (alloc.c):
 * a new one is made zeroed by the kernel, not by a loop, ahead of time
 * (past 13/16 load) and faulted in a few pages after each insertion with
 * the lock let go, since its first writes would be page faults under the
 * lock (one kept from a freed directory has its pages: it is zeroed a
 * piece per insertion instead); the old one is given back a page at a
 * time as its slots are moved, after the lock is let go, so lookups in it
 * never read below old_done (or kept whole, if it is small enough to be
 * kept for another directory); the order array grows into address space
 * kept for it, without a copy.
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
/* Old slots moved by each insertion or removal while growing. */
#define MOVE_STEP     64u
/*
 * The next table is made once the load passes 13/16 (growth is at 7/8),
 * if it is at least this big (smaller ones come from the heap), and
 * PREFAULT_STEP bytes of it are faulted in after each insertion: 12 MB
 * take 770 insertions, and 1/16 of the table's size come before it is due.
 */
#define PREPARE_MIN   (128u * 1024u)
#define PREFAULT_STEP (16u * 1024u)

/*
 * A slot, bit by bit:
 *   63      set if the entry is in the arena (alloc.c)
 *   44..62  hash >> 13: the home bits, and the tag, in either form
 *   arena:  32..43 hash & 0xfff, more of the tag; 0..31 its offset / 8
 *   other:  0..43 its address / 8
 * 0 is an empty slot.
 */
#define SLOT_ARENA    (UINT64_C(1) << 63)
#define HOME_SHIFT    44
#define HOME_BITS     19
#define HOME_MASK     (((UINT64_C(1) << HOME_BITS) - 1) << HOME_SHIFT)
#define EXTRA_SHIFT   32
#define EXTRA_BITS    12
#define EXTRA_MASK    (((UINT64_C(1) << EXTRA_BITS) - 1) << EXTRA_SHIFT)
#define PTR_MASK      ((UINT64_C(1) << HOME_SHIFT) - 1)
#define OFF_MASK      ((UINT64_C(1) << EXTRA_SHIFT) - 1)
#define PTR_BITS      47      /* of a user-space address */
/* An old slot whose entry was removed before it was moved. */
#define TOMBSTONE     UINT64_C(1)

int name_cmp(const char *a, const char *b)
{
    /* Byte-wise, as unsigned char: the ABI's sort order. */
    return strcmp(a, b);
}

/* The bits of @hash a home slot is made from. */
static uint32_t hash_home(uint32_t hash)
{
    return hash >> (32 - HOME_BITS);
}

/* The bits of @hash a slot may keep, where they are kept. */
static uint64_t hash_key(uint32_t hash)
{
    return (uint64_t)hash_home(hash) << HOME_SHIFT |
           (uint64_t)(hash & ((1u << EXTRA_BITS) - 1)) << EXTRA_SHIFT;
}

static uint64_t slot_make(const struct hypfs_entry *e, uint32_t hash,
                          const char *base)
{
    if ( core_in_arena(base, e) )
        return SLOT_ARENA | hash_key(hash) |
               (uint64_t)((const char *)e - base) >> 3;
    return (hash_key(hash) & HOME_MASK) | (uint64_t)(uintptr_t)e >> 3;
}

/* @base: core_arena_base(), if @slot may be of the arena. */
static struct hypfs_entry *slot_entry(uint64_t slot, const char *base)
{
    if ( slot & SLOT_ARENA )
        return (struct hypfs_entry *)(uintptr_t)(base +
                                                 ((slot & OFF_MASK) << 3));
    return (struct hypfs_entry *)(uintptr_t)((slot & PTR_MASK) << 3);
}

/* Whether @slot's entry may be named by a hash of key @key. */
static bool slot_matches(uint64_t slot, uint64_t key)
{
    uint64_t mask = HOME_MASK | (EXTRA_MASK & (UINT64_C(0) - (slot >> 63)));

    return !((slot ^ key) & mask);
}

static uint32_t slot_home(uint64_t slot)
{
    return (uint32_t)(slot >> HOME_SHIFT) & ((1u << HOME_BITS) - 1);
}

static bool slot_live(uint64_t slot)
{
    return slot > TOMBSTONE;
}

static uint32_t home_slot(uint32_t home, uint32_t nslots)
{
    return (uint32_t)(((uint64_t)home * nslots) >> HOME_BITS);
}

static uint32_t next_slot(uint32_t i, uint32_t nslots)
{
    return i + 1 == nslots ? 0 : i + 1;
}

/* Put @slot (an entry and its hash bits) in the table @slots. */
static void table_place(uint64_t *slots, uint32_t nslots, uint64_t slot)
{
    uint32_t i = home_slot(slot_home(slot), nslots);

    while ( slots[i] )
        i = next_slot(i, nslots);
    slots[i] = slot;
}

static size_t table_bytes(uint32_t nslots)
{
    return (size_t)nslots * sizeof(uint64_t);
}

/*
 * Move up to @n old slots over, giving back the old table's pages as they
 * are done with (so that its end costs no more than any other step);
 * free the rest once all are moved.
 */
static void move_some(struct hypfs_dir_index *idx, uint32_t n)
{
    while ( idx->old_slots && n )
    {
        uint32_t k, m;

        if ( idx->old_done == idx->old_nslots )
        {
            core_array_free_rest(idx->old_slots, table_bytes(idx->old_nslots),
                                 idx->old_released);
            idx->old_slots = NULL;
            idx->old_nslots = idx->old_done = 0;
            idx->old_released = 0;
            break;
        }
        /* A slot moves as it is: its home bits say where, no entry is read. */
        m = idx->old_nslots - idx->old_done;
        m = m < n ? m : n;
        for ( k = 0; k < m; k++ )
        {
            uint64_t slot = idx->old_slots[idx->old_done + k];

            if ( slot_live(slot) )
                table_place(idx->slots, idx->nslots, slot);
        }
        idx->old_done += m;
        n -= m;
    }
    if ( idx->old_slots )
        idx->old_released = core_array_release(
            idx->old_slots, table_bytes(idx->old_nslots), idx->old_released,
            (size_t)idx->old_done * sizeof(uint64_t));
}

/* Start growing (the previous growth is finished first, if need be). */
static uint32_t grown_nslots(uint32_t nslots)
{
    return nslots ? nslots + nslots / 2 : MIN_SLOTS;
}

static void next_drop(struct hypfs_dir_index *idx)
{
    core_array_free(idx->next_slots, table_bytes(idx->next_nslots));
    idx->next_slots = NULL;
    idx->next_nslots = idx->next_faulted = 0;
}

/* Make the next table ahead, and fault a little more of it in. */
static void next_prepare(struct hypfs_dir_index *idx)
{
    uint32_t n = grown_nslots(idx->nslots);
    size_t bytes = table_bytes(n);

    if ( !idx->next_slots )
    {
        if ( bytes < PREPARE_MIN || n < idx->nslots || idx->old_slots ||
             (uint64_t)idx->nr * 16 <= (uint64_t)idx->nslots * 13 )
            return;
        /* Without memory now, growth tries again when it is due. */
        idx->next_slots = core_array_alloc_dirty(bytes, &idx->next_dirty);
        if ( !idx->next_slots )
            return;
        idx->next_nslots = n;
        idx->next_faulted = 0;
    }
    if ( idx->next_faulted < bytes )
    {
        size_t step = bytes - idx->next_faulted < PREFAULT_STEP
                      ? bytes - idx->next_faulted : PREFAULT_STEP;
        char *p = (char *)idx->next_slots + idx->next_faulted;

        /* Its pages are there: zeroing a piece costs less than a fault. */
        if ( idx->next_dirty )
            memset(p, 0, step);
        else
            core_prefault_later(p, step);
        idx->next_faulted += step;
    }
}

static int table_grow(struct hypfs_dir_index *idx)
{
    uint32_t nslots = grown_nslots(idx->nslots);
    uint64_t *slots;

    if ( nslots < idx->nslots )
        return -E2BIG;
    if ( idx->next_slots && idx->next_nslots == nslots )
    {
        size_t bytes = table_bytes(nslots);

        /* Only removals in between leave some not zeroed yet. */
        if ( idx->next_dirty && idx->next_faulted < bytes )
            memset((char *)idx->next_slots + idx->next_faulted, 0,
                   bytes - idx->next_faulted);
        slots = idx->next_slots;
        idx->next_slots = NULL;
        idx->next_nslots = idx->next_faulted = 0;
    }
    else
        slots = core_array_alloc(table_bytes(nslots));
    if ( !slots )
        return -ENOMEM;
    /* Rarely needed: only removals in between could have stalled it. */
    while ( idx->old_slots )
        move_some(idx, UINT32_MAX);
    if ( !idx->nslots )
    {
        idx->slots = slots;
        idx->nslots = nslots;
        return 0;
    }
    idx->old_slots = idx->slots;
    idx->old_nslots = idx->nslots;
    idx->old_done = 0;
    idx->old_released = 0;
    idx->slots = slots;
    idx->nslots = nslots;
    return 0;
}

/*
 * The first slot of the table being left where @hash's cluster may still
 * hold an entry not moved yet.  Slots below old_done are moved (and their
 * pages may be given back): never read.  An entry not moved sits at or
 * after its home in a run of non-empty slots, so starting past the moved
 * ones finds it; a run that wraps past the end goes on at old_done.
 */
static uint32_t old_start(const struct hypfs_dir_index *idx, uint32_t home)
{
    uint32_t i = home_slot(home, idx->old_nslots);

    return i < idx->old_done ? idx->old_done : i;
}

static uint32_t old_next(const struct hypfs_dir_index *idx, uint32_t i)
{
    i = next_slot(i, idx->old_nslots);
    return i < idx->old_done ? idx->old_done : i;
}

/*
 * The table being left: moved slots skipped, tombstones passed over.  Kept
 * out of index_find(): a lookup comes here only while a directory grows,
 * and inlined it made every lookup save and reload registers for it.
 */
static __attribute__((noinline, cold))
struct hypfs_entry *probe_old(const struct hypfs_dir_index *idx,
                              uint32_t hash, const char *name, size_t len)
{
    const uint64_t *slots = idx->old_slots;
    const char *base = core_arena_base();
    uint64_t key = hash_key(hash);
    uint32_t i, left = idx->old_nslots - idx->old_done;

    for ( i = old_start(idx, hash_home(hash)); left-- && slots[i];
          i = old_next(idx, i) )
    {
        const struct hypfs_entry *e;

        if ( !slot_live(slots[i]) || !slot_matches(slots[i], key) )
            continue;
        e = slot_entry(slots[i], base);
        if ( !strncmp(e->name, name, len) && e->name[len] == '\0' )
            return (struct hypfs_entry *)e;
    }
    return NULL;
}

/*
 * The current table: no tombstones, nothing to skip.  Inlined into
 * index_find(), which is on every lookup's path.
 */
static inline __attribute__((always_inline))
struct hypfs_entry *probe_current(const uint64_t *slots, uint32_t nslots,
                                  uint32_t hash, const char *name, size_t len)
{
    const char *base = core_arena_base();
    uint64_t key = hash_key(hash);
    uint32_t i;

    for ( i = home_slot(hash_home(hash), nslots); slots[i];
          i = next_slot(i, nslots) )
    {
        const struct hypfs_entry *e;

        if ( !slot_matches(slots[i], key) )
            continue;
        e = slot_entry(slots[i], base);
        __builtin_prefetch((const char *)e + sizeof(struct hypfs_entry_leaf));
        if ( !strncmp(e->name, name, len) && e->name[len] == '\0' )
            return (struct hypfs_entry *)e;
    }
    return NULL;
}

struct hypfs_entry *index_find(const struct hypfs_dir_index *idx,
                               uint32_t hash, const char *name, size_t len)
{
    struct hypfs_entry *e;

    if ( !idx || !idx->nr )
        return NULL;
    e = probe_current(idx->slots, idx->nslots, hash, name, len);
    if ( !e && idx->old_slots && idx->old_done < idx->old_nslots )
        e = probe_old(idx, hash, name, len);
    return e;
}

static int order_reserve(struct hypfs_dir_index *idx)
{
    size_t page, room;
    uint32_t cap;
    struct hypfs_entry **order;

    if ( idx->nr < idx->order_cap )
        return 0;
    page = core_page_size();
    cap = idx->order_cap ? idx->order_cap + idx->order_cap / 2 : 4;
    if ( cap < idx->order_cap )
        return -E2BIG;
    room = (size_t)idx->order_room_pages * page;
    order = core_array_resize(idx->order,
                              (size_t)idx->order_cap * sizeof(*order),
                              (size_t)cap * sizeof(*order), &room);
    if ( !order )
        return -ENOMEM;
    idx->order = order;
    idx->order_cap = cap;
    idx->order_room_pages = (uint32_t)(room / page);
    return 0;
}

int index_insert(struct hypfs_dir_index *idx, struct hypfs_entry *entry,
                 uint32_t hash)
{
    const char *base = core_arena_base();
    int ret;

    if ( idx->nr == UINT32_MAX - 1 )
        return -E2BIG;
    if ( (uintptr_t)entry & 7 || ((uint64_t)(uintptr_t)entry >> PTR_BITS &&
                                  !core_in_arena(base, entry)) )
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

    table_place(idx->slots, idx->nslots, slot_make(entry, hash, base));
    move_some(idx, MOVE_STEP);
    next_prepare(idx);

    if ( idx->order_sorted == idx->nr &&
         (!idx->nr || name_cmp(idx->order[idx->nr - 1]->name, entry->name) < 0) )
        idx->order_sorted++;
    else
        __atomic_store_n(&idx->order_dirty, 1, __ATOMIC_RELAXED);
    idx->order[idx->nr++] = entry;
    return 0;
}

/* Take @entry out of the (new) table @slots, if it is there: 1 if so. */
static int table_remove(uint64_t *slots, uint32_t n, struct hypfs_entry *entry,
                        uint32_t home, const char *base)
{
    uint32_t i, j;

    for ( i = home_slot(home, n); slot_entry(slots[i], base) != entry;
          i = next_slot(i, n) )
        if ( !slots[i] )
            return 0;

    /*
     * Backward-shift deletion: move up every later member of the cluster
     * whose home slot does not lie cyclically in (i, j], so that no probe
     * sequence is broken by the hole.
     */
    for ( j = next_slot(i, n); slots[j]; j = next_slot(j, n) )
    {
        uint32_t k = home_slot(slot_home(slots[j]), n);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);

        if ( stays )
            continue;
        slots[i] = slots[j];
        i = j;
    }
    slots[i] = 0;
    return 1;
}

/* An entry not moved yet leaves a tombstone in the old table. */
static void old_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry,
                       uint32_t home, const char *base)
{
    uint32_t i, left = idx->old_nslots - idx->old_done;

    for ( i = old_start(idx, home); left-- && idx->old_slots[i];
          i = old_next(idx, i) )
        if ( slot_entry(idx->old_slots[i], base) == entry &&
             slot_live(idx->old_slots[i]) )
        {
            idx->old_slots[i] = TOMBSTONE;
            return;
        }
}

void index_remove(struct hypfs_dir_index *idx, struct hypfs_entry *entry)
{
    uint32_t lo = 0, hi = idx->order_sorted, pos = UINT32_MAX;
    uint32_t home = hash_home(name_hash(entry->name, strlen(entry->name)));
    const char *base = core_arena_base();

    if ( !table_remove(idx->slots, idx->nslots, entry, home, base) &&
         idx->old_slots )
        old_remove(idx, entry, home, base);
    move_some(idx, MOVE_STEP);

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
    /* Shrunk back: the table made ahead is not wanted for long. */
    if ( idx->next_slots && (uint64_t)idx->nr * 2 < idx->nslots )
        next_drop(idx);

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

    if ( !idx )
    {
        *order = NULL;
        *nr = 0;
        return 0;
    }
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
    next_drop(idx);
    core_array_free(idx->slots, table_bytes(idx->nslots));
    if ( idx->old_slots )
        core_array_free_rest(idx->old_slots, table_bytes(idx->old_nslots),
                             idx->old_released);
    core_array_free_room(idx->order,
                         (size_t)idx->order_cap * sizeof(*idx->order),
                         (size_t)idx->order_room_pages *
                         core_page_size());
    memset(idx, 0, sizeof(*idx));
}
