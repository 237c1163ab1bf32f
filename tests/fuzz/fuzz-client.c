/*
 * Fuzz target (c): libxenhypfs facing a hostile daemon.
 *
 * The input is a short list of library calls, then what "hypfsd" answers
 * to each request in turn (each a 16-bit length and that many bytes): the
 * fuzzer's bytes stand for every reply (lying lengths, wrong sequence
 * numbers, broken listings and subtrees, bad gzip, absurd results, event
 * frames between replies or malformed, a connection that ends mid-frame).
 *
 * Checked: no crash, no overread (AddressSanitizer), no leak; every call
 * either returns a result that is whole (strings terminated, listings of
 * named entries) or fails with errno set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake-daemon.h"
#include "libxenhypfs-internal.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const paths[] = {
    "/", "/params", "/params/loglvl", "/test/types/u8", "/test/types/gzip_string",
    "/buildinfo/config", "/domain", "/test/types/blob",
};

static const char *const values[] = {
    "1", "0x10", "-5", "debug", "yes", "", "18446744073709551615", "x",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fake_daemon f;
    const uint8_t *chunk[64];
    size_t chunk_len[64];
    xenhypfs_handle *h;
    size_t ncalls, i, off;
    int fd;

    if (size < 1)
        return 0;
    ncalls = data[0] % 12;
    if (size < 1 + ncalls)
        return 0;
    /* The replies: [u16 length][bytes], one per request. */
    for (off = 1 + ncalls, f.nchunks = 0; off + 2 <= size && f.nchunks < 64; ) {
        size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;

        off += 2;
        if (len > size - off)
            len = size - off;
        chunk[f.nchunks] = data + off;
        chunk_len[f.nchunks++] = len;
        off += len;
    }
    f.chunk = chunk;
    f.chunk_len = chunk_len;
    fd = fake_daemon_start(&f);
    if (fd < 0)
        abort();

    errno = 0;
    h = xenhypfs_open_socket(fd);
    if (!h) {
        CHECK(errno);
        fake_daemon_stop(&f);
        return 0;
    }
    for (i = 0; i < ncalls; i++) {
        uint8_t op = data[1 + i];
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
    xenhypfs_close(h);
    fake_daemon_stop(&f);
    return 0;
}
