/*
 * The allocation counter behind failmalloc.h: fm_arm(N) makes the Nth
 * allocation from now fail (0 disarms); fm_count() says how many were
 * made since arming, fm_failed() whether the failure was reached;
 * fm_exempt_thread() takes the calling thread out of the count (a test's
 * own client, checking what the code under test did).  The
 * core's own hooks are pointed here too, so one counter covers a request
 * from the socket to the tree.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypfs/hypfs.h>
#include "hypfs-testing.h"

#define FAILMALLOC_IMPL
#include "failmalloc.h"
#include "failmalloc-control.h"

static atomic_uint count, fail_at;
static atomic_bool failed;
static _Thread_local bool exempt;

static bool fail_now(void)
{
    unsigned int at = atomic_load(&fail_at);

    if (!at || exempt || atomic_fetch_add(&count, 1) + 1 != at)
        return false;
    atomic_store(&failed, true);
    errno = ENOMEM;
    return true;
}

void *fm_malloc(size_t size)
{
    return fail_now() ? NULL : malloc(size);
}

void *fm_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : calloc(n, size);
}

void *fm_realloc(void *p, size_t size)
{
    return fail_now() ? NULL : realloc(p, size);
}

char *fm_strdup(const char *s)
{
    return fail_now() ? NULL : strdup(s);
}

int fm_vasprintf(char **out, const char *fmt, va_list ap)
{
    if (fail_now()) {
        *out = NULL;
        return -1;
    }
    return vasprintf(out, fmt, ap);
}

int fm_asprintf(char **out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = fm_vasprintf(out, fmt, ap);
    va_end(ap);
    return n;
}

FILE *fm_open_memstream(char **buf, size_t *len)
{
    return fail_now() ? NULL : open_memstream(buf, len);
}

static const struct hypfs_alloc_hooks core_hooks = {
    fm_malloc, fm_calloc, fm_realloc, free,
};

void fm_arm(unsigned int n)
{
    atomic_store(&count, 0);
    atomic_store(&failed, false);
    atomic_store(&fail_at, n);
    hypfs_set_alloc_hooks(&core_hooks);
}

unsigned int fm_count(void)
{
    return atomic_load(&count);
}

bool fm_failed(void)
{
    return atomic_load(&failed);
}

void fm_exempt_thread(bool on)
{
    exempt = on;
}
