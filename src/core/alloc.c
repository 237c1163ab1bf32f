/*
 * Memory for the core: the replaceable allocation hooks and the per-tree
 * slab that core-owned entries are carved from.
 *
 * Every allocation of the core goes through core_malloc() and friends, so
 * that tests can fail the Nth one (hypfs_set_alloc_hooks(), in
 * hypfs-testing.h: the static build's only, not libhypfs.so's).  Entries made
 * at run time (hypfs_leaf_new(), hypfs_dir_new()) come from a slab of 8-byte
 * size classes: a directory of a million small leaves then costs the bytes
 * of its entries and not a malloc header plus 16-byte rounding for each.
 * Under AddressSanitizer free slab objects are poisoned, so a use after
 * removal is still caught.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "core-internal.h"
#include "hypfs-testing.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif

#ifdef HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)    ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)  ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)    ((void)(p), (void)(n))
#define UNPOISON(p, n)  ((void)(p), (void)(n))
#endif

static struct hypfs_alloc_hooks hooks = { malloc, calloc, realloc, free };

void hypfs_set_alloc_hooks(const struct hypfs_alloc_hooks *h)
{
    if ( h )
        hooks = *h;
    else
    {
        hooks.malloc = malloc;
        hooks.calloc = calloc;
        hooks.realloc = realloc;
        hooks.free = free;
    }
}

void *core_malloc(size_t size)
{
    return hooks.malloc(size ? size : 1);
}

void *core_calloc(size_t n, size_t size)
{
    /* The C library's: large zeroed blocks come from the kernel as is. */
    return hooks.calloc(n ? n : 1, size ? size : 1);
}

void *core_realloc(void *ptr, size_t size)
{
    return hooks.realloc(ptr, size ? size : 1);
}

void core_free(void *ptr)
{
    if ( ptr )
        hooks.free(ptr);
}

/* ---- Arrays that grow large ----
 *
 * A directory's hash table and order array grow with it, and the writer
 * lock is held while they do: stopping every reader.  From the C library
 * a large array costs O(size) at the wrong moments: realloc() copies it
 * (glibc's dynamic mmap threshold moves large blocks into the heap after
 * the first are freed), calloc() may clear it by hand, free() of a
 * mapping gives back every page at once (50 us per MiB measured here).
 * Above ARRAY_MAP_MIN an array is a mapping of its own instead: made
 * zeroed by the kernel and given back a piece at a time
 * (core_array_release()).  One that grows (a directory's order array)
 * reserves address space beyond its size, inaccessible and not committed
 * (PROT_NONE), and grows into it by mprotect(): no page moves, no TLB is
 * flushed.  mremap() moved the page tables of the whole array at every
 * 1.5x, under the writer lock (54 us at 2.4 MB, 73 us at 5.6 MB), and a
 * copy from the heap into fresh pages at 128 KiB cost 80 us: a growing
 * array crosses at 16 KiB (GROW_MAP_MIN), copying 16 KiB.  Tables, which
 * are made whole and never grown, stay in the heap below 128 KiB, where
 * their pages are used again rather than faulted in.  Small arrays stay
 * the C library's, and the allocation hooks' (tests make those fail; they
 * never grow a directory this far).
 */
#define ARRAY_MAP_MIN   (128u * 1024u)
#define GROW_MAP_MIN    (16u * 1024u)
/* Address space reserved for a growing array: 8x its size, 32 MiB least. */
#define ARRAY_ROOM_MIN  (32u * 1024u * 1024u)
#define ARRAY_ROOM_MUL  8u

/*
 * sysconf() is a call into the C library and a switch: it showed in the
 * profile of every add, which asks for the page size more than once.
 */
size_t core_page_size(void)
{
    static size_t pg;
    size_t v = __atomic_load_n(&pg, __ATOMIC_RELAXED);

    if ( !v )
    {
        v = (size_t)sysconf(_SC_PAGESIZE);
        __atomic_store_n(&pg, v, __ATOMIC_RELAXED);
    }
    return v;
}

static size_t page_round(size_t n)
{
    size_t pg = core_page_size();

    return (n + pg - 1) & ~(pg - 1);
}

static bool array_mapped(size_t size)
{
    return size >= ARRAY_MAP_MIN;
}

/* Bytes of array mappings and of arena blocks out: hypfs_mapped_bytes(). */
static size_t mapped_bytes;

size_t hypfs_mapped_bytes(void)
{
    return __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
}

static void count_mapped(size_t add, size_t sub)
{
    __atomic_add_fetch(&mapped_bytes, add, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&mapped_bytes, sub, __ATOMIC_RELAXED);
}

/*
 * Tables kept for the next directory.  A process that builds trees and
 * frees them (a toolstack's tests; hypfsd, whose domains come and go)
 * would map each table afresh, fault its pages in and give them back:
 * 65,536 entries added into a process that had held a million spent 15%
 * of their time in the kernel (munmap(), page faults, populating),
 * against 2% when tables came from the C library's heap, which reuses
 * its pages.  So a mapped table of up to CACHE_TABLE_MAX freed whole is
 * kept here instead, CACHE_BYTES_MAX in all (not counted in
 * hypfs_mapped_bytes() while kept, as the C library's statistics do not
 * count its free memory as in use), and one of the same size is taken
 * from here before a new one is mapped: table sizes follow one sequence
 * (index.c), so directories of any tree ask for the same few.  What was
 * kept is not zero: core_array_alloc() clears it,
 * core_array_alloc_dirty() says so and leaves it to the caller (a
 * directory clears the table it makes ahead a piece per insertion, as it
 * would fault in a new one).  Under AddressSanitizer a kept table is
 * poisoned until it is taken.
 */
#define CACHE_TABLE_MAX (1024u * 1024u)
#define CACHE_BYTES_MAX (4u * 1024u * 1024u)
#define CACHE_SLOTS     16u

struct unmapping
{
    void *p;
    size_t len;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct unmapping cache[CACHE_SLOTS];        /* under cache_lock */
static unsigned int ncached;                       /* under cache_lock */
static size_t cached_bytes;                        /* atomic; cache_lock */

size_t core_array_kept_bytes(void)
{
    return __atomic_load_n(&cached_bytes, __ATOMIC_RELAXED);
}

static bool cache_fits(size_t len)
{
    return len <= CACHE_TABLE_MAX && ncached < CACHE_SLOTS &&
           cached_bytes + len <= CACHE_BYTES_MAX;
}

static void *cache_take(size_t len)
{
    void *p = NULL;
    unsigned int i;

    if ( len > CACHE_TABLE_MAX )
        return NULL;
    pthread_mutex_lock(&cache_lock);
    for ( i = ncached; i--; )
        if ( cache[i].len == len )
        {
            p = cache[i].p;
            cache[i] = cache[--ncached];
            __atomic_store_n(&cached_bytes, cached_bytes - len,
                             __ATOMIC_RELAXED);
            break;
        }
    pthread_mutex_unlock(&cache_lock);
    if ( p )
    {
        UNPOISON(p, len);
        count_mapped(len, 0);
    }
    return p;
}

void core_array_kept_drop(void)
{
    pthread_mutex_lock(&cache_lock);
    while ( ncached )
    {
        ncached--;
        UNPOISON(cache[ncached].p, cache[ncached].len);
        munmap(cache[ncached].p, cache[ncached].len);
    }
    __atomic_store_n(&cached_bytes, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cache_lock);
}

/* Whether [@p, @p + @len), a whole table, was kept. */
static bool cache_put(void *p, size_t len)
{
    bool kept = false;

    if ( len > CACHE_TABLE_MAX )
        return false;
    pthread_mutex_lock(&cache_lock);
    if ( cache_fits(len) )
    {
        POISON(p, len);
        cache[ncached].p = p;
        cache[ncached].len = len;
        ncached++;
        __atomic_store_n(&cached_bytes, cached_bytes + len, __ATOMIC_RELAXED);
        kept = true;
    }
    pthread_mutex_unlock(&cache_lock);
    if ( kept )
        count_mapped(0, len);
    return kept;
}

/*
 * Whether a table of @len bytes freed now would likely be kept: asked at
 * every step of a growth, so without the lock.  If it is not kept after
 * all, it is given back whole once the lock is let go.
 */
static bool cache_would_keep(size_t len)
{
    return len <= CACHE_TABLE_MAX &&
           core_array_kept_bytes() + len <= CACHE_BYTES_MAX;
}

void *core_array_alloc_dirty(size_t size, bool *dirty)
{
    size_t len = page_round(size);
    void *p;

    *dirty = false;
    if ( !array_mapped(size) )
        return core_calloc(1, size);
    p = cache_take(len);
    if ( p )
    {
        *dirty = true;
        return p;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
             -1, 0);
    if ( p == MAP_FAILED )
        return NULL;
    count_mapped(len, 0);
    return p;
}

void *core_array_alloc(size_t size)
{
    bool dirty;
    void *p = core_array_alloc_dirty(size, &dirty);

    if ( p && dirty )
        memset(p, 0, page_round(size));
    return p;
}

/*
 * Address space given back while this thread holds the writer lock goes
 * once it let go (core_unmap_deferred(), from tree_unlock()): an munmap()
 * takes 3 to 14 us on this VM, more when the other CPU must flush its
 * TLB, and every reader waited for it (a directory's growth gives its old
 * table back a page at a time).  Nothing is read there meanwhile: the
 * pages were given back because they never will be.
 */
#define DEFER_MAX 8

static CORE_TLS struct unmapping deferred[DEFER_MAX];
static CORE_TLS unsigned int ndeferred;

static void unmap(void *p, size_t len)
{
    if ( core_lock_state == WRITE_LOCKED )
    {
        struct unmapping *last = ndeferred ? &deferred[ndeferred - 1] : NULL;

        /* A table given back page after page: one range. */
        if ( last && (char *)last->p + last->len == (char *)p )
        {
            last->len += len;
            return;
        }
        if ( ndeferred < DEFER_MAX )
        {
            deferred[ndeferred].p = p;
            deferred[ndeferred].len = len;
            ndeferred++;
            return;
        }
    }
    munmap(p, len);
}

/*
 * A page of a new table touched under the writer lock is a page fault
 * there (zeroed by the guest, and on this VM often by the host too: tens
 * of us), and a growing table's first writes are to random pages.  So a
 * directory makes its next table ahead of time and has it faulted in, a
 * few pages after each change, with the lock let go.  MADV_POPULATE_WRITE
 * (Linux 5.14) changes no byte, and on a range unmapped meanwhile it only
 * fails: nothing here can go wrong if the table went away in between.
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static CORE_TLS struct unmapping prefault;

void core_prefault_later(void *p, size_t len)
{
    prefault.p = p;
    prefault.len = len;
}

void core_unmap_deferred(void)
{
    while ( ndeferred )
    {
        ndeferred--;
        munmap(deferred[ndeferred].p, deferred[ndeferred].len);
    }
    if ( prefault.len )
    {
        madvise(prefault.p, prefault.len, MADV_POPULATE_WRITE);
        prefault.len = 0;
    }
}

/* @n bytes usable at the start of a reservation for it: *@room set. */
static void *map_with_room(size_t n, size_t *room)
{
    size_t r = n > SIZE_MAX / ARRAY_ROOM_MUL ? n : n * ARRAY_ROOM_MUL;
    void *p;

    if ( r < ARRAY_ROOM_MIN )
        r = ARRAY_ROOM_MIN;
    p = mmap(NULL, r, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    if ( p == MAP_FAILED )
        return NULL;
    if ( mprotect(p, n, PROT_READ | PROT_WRITE) )
    {
        munmap(p, r);
        return NULL;
    }
    *room = r;
    return p;
}

void *core_array_resize(void *p, size_t old_size, size_t new_size,
                        size_t *room)
{
    size_t o = page_round(old_size), n = page_round(new_size), nr;
    void *q;

    if ( !p )
    {
        *room = 0;
        return core_array_alloc(new_size);
    }
    /* A mapping with room (made below): grown into it, or moved. */
    if ( *room && new_size >= GROW_MAP_MIN )
    {
        if ( n <= *room )
        {
            /* The pages were never there: nothing moves, nothing flushes. */
            if ( n > o &&
                 mprotect((char *)p + o, n - o, PROT_READ | PROT_WRITE) )
                return NULL;
            count_mapped(n, o);
            return p;
        }
        /* Past it (8x grown): a new room, the pages moved there. */
        {
            q = map_with_room(n, &nr);
            if ( !q )
                return NULL;
            if ( mremap(p, o, o, MREMAP_MAYMOVE | MREMAP_FIXED, q) ==
                 MAP_FAILED )
            {
                munmap(q, nr);
                return NULL;
            }
            if ( *room > o )
                unmap((char *)p + o, *room - o);
            count_mapped(n, o);
            *room = nr;
            return q;
        }
    }
    if ( !*room && !array_mapped(old_size) && new_size < GROW_MAP_MIN )
        return core_realloc(p, new_size);
    /* Across the line, either way: once, and small. */
    if ( new_size >= GROW_MAP_MIN )
    {
        q = map_with_room(n, &nr);
        if ( !q )
            return NULL;
        count_mapped(n, 0);
    }
    else
    {
        q = core_calloc(1, new_size);
        nr = 0;
        if ( !q )
            return NULL;
    }
    memcpy(q, p, old_size < new_size ? old_size : new_size);
    core_array_free_room(p, old_size, *room);
    *room = nr;
    return q;
}

void core_array_free_room(void *p, size_t size, size_t room)
{
    if ( !p )
        return;
    if ( room )
    {
        unmap(p, room);
        count_mapped(0, page_round(size));
    }
    else
        core_array_free(p, size);
}

void core_array_free(void *p, size_t size)
{
    if ( !p )
        return;
    if ( !array_mapped(size) )
        core_free(p);
    else if ( !cache_put(p, page_round(size)) )
    {
        unmap(p, page_round(size));
        count_mapped(0, page_round(size));
    }
}

size_t core_array_release(void *p, size_t size, size_t done, size_t upto)
{
    size_t pg = core_page_size();
    size_t end = upto & ~(pg - 1);

    /* Kept whole if it will be kept: pages given back are not. */
    if ( !p || !array_mapped(size) || end <= done ||
         (!done && cache_would_keep(page_round(size))) )
        return done;
    unmap((char *)p + done, end - done);
    count_mapped(0, end - done);
    return end;
}

void core_array_free_rest(void *p, size_t size, size_t released)
{
    if ( !p )
        return;
    if ( !array_mapped(size) || !released )
        core_array_free(p, size);
    else if ( released < page_round(size) )
    {
        unmap((char *)p + released, page_round(size) - released);
        count_mapped(0, page_round(size) - released);
    }
}

/* Blocks are 64 KiB; the first 16 bytes link them. */
#define SLAB_BLOCK      (64u * 1024u)
#define SLAB_BLOCK_HDR  16u

/* ---- The arena: where slab blocks live ----
 *
 * A directory's hash table keeps, in each 8-byte slot, an entry's address
 * and as many bits of its name's hash as are left over (index.c).  A whole
 * address leaves 19 (and a bit saying which form), which in a table of a
 * million slots are no more than the home slot already says: a lookup
 * there read, on average, one entry whose bits agreed but whose name did
 * not, a cache miss, 80 ns of every add into a million.  An entry the
 * core makes is said in 32 bits instead, as its offset in this one
 * reservation of address space (8 GiB: some 100 million leaves), which
 * leaves 31 bits of hash.  The reservation is made once per process, not
 * committed (PROT_NONE, MAP_NORESERVE), opened 2 MiB at a time as blocks
 * are handed out; a block given back goes on a bitmap of free ones, its
 * pages to the kernel (MADV_FREE: taken back only under memory pressure,
 * so the next tree built here does not fault them in again), but for
 * the first 8 MiB of them (ARENA_KEEP).  Without the reservation (an
 * address-space limit, say), or with test allocation hooks set, blocks
 * come from core_malloc() and their entries take the long form: slower
 * past a million entries, not wrong.  Under
 * AddressSanitizer a block given back stays poisoned until it is handed
 * out again, so that a use of an entry of a freed tree is still caught.
 */
#define ARENA_BLOCKS    (CORE_ARENA_BYTES / SLAB_BLOCK)
#define ARENA_CHUNK     (32u * SLAB_BLOCK)      /* opened at once: 2 MiB */

/* arena_lock protects all of these; core_arena_start is also read without. */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
char *core_arena_start;             /* written once (release) */
static bool arena_tried;
static bool arena_off;              /* hypfs_testing_arena() */
static uint32_t arena_used;         /* [0, arena_used): handed out once */
static uint32_t arena_open;         /* blocks [0, arena_open) readable */
static uint32_t arena_nfree;
static uint32_t arena_free_hint;    /* no free block in words below it */
static uint64_t arena_free[ARENA_BLOCKS / 64 ? ARENA_BLOCKS / 64 : 1];
/*
 * Free blocks whose pages were not given to the kernel (MADV_FREE): the
 * first ARENA_KEEP blocks' worth freed.  MADV_FREE walks and flushes
 * every page of a block and moves it to the kernel's lazy-free list; for
 * a tree of 65,536 entries freed and made again, that was 1.6% of the
 * time, for memory used again at once.  Blocks are handed out lowest
 * first; those kept are the first freed while fewer than ARENA_KEEP are.
 */
#define ARENA_KEEP      128u                    /* 8 MiB */
static uint32_t arena_nkept;
static uint64_t arena_kept[ARENA_BLOCKS / 64 ? ARENA_BLOCKS / 64 : 1];

void hypfs_testing_arena(bool on)
{
    pthread_mutex_lock(&arena_lock);
    arena_off = !on;
    pthread_mutex_unlock(&arena_lock);
}

static void arena_reserve(void)
{
    void *p;

    arena_tried = true;
    if ( !CORE_ARENA_BYTES )
        return;
    p = mmap(NULL, CORE_ARENA_BYTES, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if ( p != MAP_FAILED )
        __atomic_store_n(&core_arena_start, (char *)p, __ATOMIC_RELEASE);
}

/* A block from the arena, or NULL if there is none (the caller mallocs). */
static char *arena_block_alloc(void)
{
    char *block = NULL;
    uint32_t w, b;

    if ( hooks.malloc != malloc )
        return NULL;
    pthread_mutex_lock(&arena_lock);
    if ( !arena_tried )
        arena_reserve();
    if ( !core_arena_start || arena_off )
        goto out;
    if ( arena_nfree )
    {
        for ( w = arena_free_hint; !arena_free[w]; w++ )
            ;
        b = (uint32_t)__builtin_ctzll(arena_free[w]);
        arena_free[w] &= arena_free[w] - 1;
        if ( arena_kept[w] & UINT64_C(1) << b )
        {
            arena_kept[w] &= ~(UINT64_C(1) << b);
            arena_nkept--;
        }
        arena_free_hint = w;
        arena_nfree--;
        block = core_arena_start + ((size_t)w * 64 + b) * SLAB_BLOCK;
        goto out;
    }
    if ( arena_used == ARENA_BLOCKS )
        goto out;
    if ( arena_used == arena_open )
    {
        if ( mprotect(core_arena_start + (size_t)arena_open * SLAB_BLOCK,
                      ARENA_CHUNK, PROT_READ | PROT_WRITE) )
            goto out;
        arena_open += ARENA_CHUNK / SLAB_BLOCK;
    }
    block = core_arena_start + (size_t)arena_used++ * SLAB_BLOCK;
out:
    pthread_mutex_unlock(&arena_lock);
    if ( block )
    {
        UNPOISON(block, SLAB_BLOCK);
        count_mapped(SLAB_BLOCK, 0);
    }
    return block;
}

#ifndef MADV_FREE
#define MADV_FREE 8
#endif

/* Give back [@p, @p + @n * SLAB_BLOCK): arena blocks, adjacent. */
static void arena_blocks_free(char *p, size_t n)
{
    size_t first = (size_t)(p - core_arena_base()) / SLAB_BLOCK, i, keep;

    pthread_mutex_lock(&arena_lock);
    keep = ARENA_KEEP - arena_nkept < n ? ARENA_KEEP - arena_nkept : n;
    for ( i = first; i < first + keep; i++ )
        arena_kept[i / 64] |= UINT64_C(1) << (i % 64);
    arena_nkept += (uint32_t)keep;
    pthread_mutex_unlock(&arena_lock);
    /* Not free yet: nobody takes these pages while they are given back. */
    if ( keep < n &&
         madvise(p + keep * SLAB_BLOCK, (n - keep) * SLAB_BLOCK, MADV_FREE) )
        madvise(p + keep * SLAB_BLOCK, (n - keep) * SLAB_BLOCK,
                MADV_DONTNEED);
    pthread_mutex_lock(&arena_lock);
    for ( i = first; i < first + n; i++ )
        arena_free[i / 64] |= UINT64_C(1) << (i % 64);
    if ( first / 64 < arena_free_hint )
        arena_free_hint = (uint32_t)(first / 64);
    arena_nfree += (uint32_t)n;
    pthread_mutex_unlock(&arena_lock);
    count_mapped(0, n * SLAB_BLOCK);
}

static size_t slab_round(size_t size)
{
    return (size + SLAB_CLASS_STEP - 1) & ~(size_t)(SLAB_CLASS_STEP - 1);
}

void *slab_alloc(struct slab *slab, size_t size)
{
    size_t rounded = slab_round(size);
    unsigned int cls;
    void *obj;

    if ( !size || rounded > SLAB_MAX_OBJECT )
        return NULL;
    cls = (unsigned int)(rounded / SLAB_CLASS_STEP) - 1;

    obj = slab->free_list[cls];
    if ( obj )
    {
        UNPOISON(obj, rounded);
        memcpy(&slab->free_list[cls], obj, sizeof(void *));
    }
    else
    {
        if ( slab->bump_left < rounded )
        {
            char *block = arena_block_alloc();

            if ( !block )
                block = core_malloc(SLAB_BLOCK);

            if ( !block )
                return NULL;
            /*
             * The tail of the old block is too small for this class; hand it
             * to the class it fits so that nothing is wasted.
             */
            if ( slab->bump_left >= SLAB_CLASS_STEP )
                slab_release(slab, slab->bump,
                             slab->bump_left & ~(size_t)(SLAB_CLASS_STEP - 1));
            memcpy(block, &slab->blocks, sizeof(void *));
            slab->blocks = block;
            slab->bump = block + SLAB_BLOCK_HDR;
            slab->bump_left = SLAB_BLOCK - SLAB_BLOCK_HDR;
            POISON(slab->bump, slab->bump_left);
        }
        obj = slab->bump;
        slab->bump += rounded;
        slab->bump_left -= rounded;
        UNPOISON(obj, rounded);
    }
    slab->bytes_in_use += rounded;
    return obj;
}

void slab_release(struct slab *slab, void *ptr, size_t size)
{
    size_t rounded = slab_round(size);
    unsigned int cls;

    if ( !ptr || !size || rounded > SLAB_MAX_OBJECT )
        return;
    cls = (unsigned int)(rounded / SLAB_CLASS_STEP) - 1;
    /*
     * The free-list link lives in the first word.  Poison the whole object
     * so that any access until it is handed out again is reported; the
     * allocator unpoisons it before reading the link.
     */
    UNPOISON(ptr, sizeof(void *));
    memcpy(ptr, &slab->free_list[cls], sizeof(void *));
    slab->free_list[cls] = ptr;
    POISON(ptr, rounded);
    if ( slab->bytes_in_use >= rounded )
        slab->bytes_in_use -= rounded;
}

void slab_destroy(struct slab *slab)
{
    char *block = slab->blocks, *run = NULL;
    const char *base = core_arena_base();
    size_t nrun = 0;

    /*
     * Blocks are chained newest first, so the arena's come in descending
     * runs: each run given back in one call.
     */
    while ( block )
    {
        char *next;

        UNPOISON(block, SLAB_BLOCK);
        memcpy(&next, block, sizeof(void *));
        if ( !core_in_arena(base, block) )
        {
            core_free(block);
            block = next;
            continue;
        }
        POISON(block, SLAB_BLOCK);
        if ( run && block + SLAB_BLOCK == run )
            nrun++;
        else
        {
            if ( run )
                arena_blocks_free(run, nrun);
            nrun = 1;
        }
        run = block;
        block = next;
    }
    if ( run )
        arena_blocks_free(run, nrun);
    memset(slab, 0, sizeof(*slab));
}
