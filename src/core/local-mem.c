/*
 * An accessor for callers whose memory is this process's own: a guest
 * emulated in-process, a test, a benchmark, an embedder's own tools.
 * Addresses are pointers; nothing can fault, so nothing is checked.
 */
#include <string.h>

#include <hypfs/hypfs.h>

static int local_copy_from(void *ctx, void *dst, uint64_t addr, size_t len)
{
    (void)ctx;
    memcpy(dst, (const void *)(uintptr_t)addr, len);
    return 0;
}

static int local_copy_to(void *ctx, uint64_t addr, const void *src, size_t len)
{
    (void)ctx;
    memcpy((void *)(uintptr_t)addr, src, len);
    return 0;
}

const struct hypfs_guest_ops hypfs_local_mem = {
    .copy_from = local_copy_from,
    .copy_to = local_copy_to,
};
