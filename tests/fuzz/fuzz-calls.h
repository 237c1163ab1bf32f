/*
 * The library calls of the libxenhypfs fuzz targets (fuzz-client over a
 * socket, fuzz-channel over a guest's port): each input byte one call,
 * every result checked to be whole (strings terminated, listings of named
 * entries, sizes that hold) or a failure with errno set.
 */
#ifndef HYPFS_FUZZ_CALLS_H
#define HYPFS_FUZZ_CALLS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libxenhypfs-internal.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

static const char *const paths[] = {
    "/", "/params", "/params/loglvl", "/test/types/u8", "/test/types/gzip_string",
    "/buildinfo/config", "/domain", "/test/types/blob",
};

static const char *const values[] = {
    "1", "0x10", "-5", "debug", "yes", "", "18446744073709551615", "x",
};

static void fuzz_calls(xenhypfs_handle *h, const uint8_t *ops, size_t ncalls)
{
    size_t i;

    for (i = 0; i < ncalls; i++) {
        uint8_t op = ops[i];
        const char *path = paths[(op >> 3) % 8];
        struct xenhypfs_dirent *d, stat;
        unsigned int n, k;
        char *s, *text;
        void *raw;
        size_t len;

        errno = 0;
        switch (op % 9) {
        case 5: {
            struct xenhypfs_tree_entry *t = xenhypfs_read_tree(h, path, &n);

            if (t) {
                CHECK(n >= 1 && !t[0].dirent.name[0]);
                for (k = 0; k < n; k++) {
                    CHECK(strlen(t[k].dirent.name) < 1024);
                    if (t[k].dirent.type != xenhypfs_type_dir &&
                        t[k].dirent.size)
                        CHECK(((volatile const char *)t[k].content)
                              [t[k].dirent.size - 1] || 1);
                }
                free(t);
            } else
                CHECK(errno);
            break;
        }
        case 6: {
            uint64_t g;

            if (xenhypfs_get_generation(h, path, &g))
                CHECK(errno);
            break;
        }
        case 7:
            if (op & 0x80 ? xenhypfs_unwatch(h, op & 3)
                          : xenhypfs_watch(h, path, op & 3, op))
                CHECK(errno);
            break;
        case 8: {
            struct xenhypfs_event ev[8];
            int got = xenhypfs_read_events(h, ev, 8);

            CHECK(got >= -1 && got <= 8);
            if (got < 0)
                CHECK(errno);
            break;
        }
        case 0:
            s = xenhypfs_read(h, path);
            if (s) {
                (void)strlen(s);
                free(s);
            } else
                CHECK(errno);
            break;
        case 1:
            raw = xenhypfs_read_raw(h, path, &d);
            if (raw) {
                CHECK(d && d->name && d->type <= xenhypfs_type_bool);
                if (d->size)
                    CHECK(((volatile const char *)raw)[d->size - 1] || 1);
                free(raw);
                free(d);
            } else
                CHECK(errno && !d);
            break;
        case 2:
            d = xenhypfs_readdir(h, path, &n);
            if (d) {
                for (k = 0; k < n; k++)
                    CHECK(d[k].name && strlen(d[k].name) < 65536);
                free(d);
            } else
                CHECK(errno);
            break;
        case 3:
            if (xenhypfs_write(h, path, values[(op >> 6) % 8]))
                CHECK(errno);
            break;
        default:
            raw = xenhypfs_stat_value(h, path, &stat, &len, &text);
            if (raw) {
                if (len)
                    CHECK(((volatile const char *)raw)[len - 1] || 1);
                if (text)
                    (void)strlen(text);
                free(text);
                free(raw);
            } else
                CHECK(errno);
        }
    }
}

#endif /* HYPFS_FUZZ_CALLS_H */
