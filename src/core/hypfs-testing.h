/*
 * What tests may do to the core that embedders may not: make its
 * allocations fail.  In the static build of the core only (libhypfs's
 * tests link it); libhypfs.so.1 does not export it.
 */
#ifndef HYPFS_TESTING_H
#define HYPFS_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Allocation hooks, so that tests can make the Nth allocation fail.  NULL
 * restores the C library's.  Not thread-safe: set before any tree exists.
 */
struct hypfs_alloc_hooks {
    void *(*malloc)(size_t size);
    void *(*calloc)(size_t n, size_t size);
    void *(*realloc)(void *ptr, size_t size);
    void (*free)(void *ptr);
};
void hypfs_set_alloc_hooks(const struct hypfs_alloc_hooks *hooks);

struct hypfs;
/*
 * The key that hides generations from domains (normally random): tests
 * compare what two trees show.
 */
void hypfs_testing_set_key(struct hypfs *fs, const uint8_t key[16]);

/*
 * false: slab blocks come from the allocation hooks from now on, not from
 * the arena, so that their entries take the long slot form (index.c);
 * true (the default): from the arena again.  Any thread, any time.
 */
void hypfs_testing_arena(bool on);

#endif /* HYPFS_TESTING_H */
