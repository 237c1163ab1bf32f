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
#include "fuzz-calls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fake_daemon f;
    const uint8_t *chunk[64];
    size_t chunk_len[64];
    xenhypfs_handle *h;
    size_t ncalls, off;
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
    fuzz_calls(h, data + 1, ncalls);
    xenhypfs_close(h);
    fake_daemon_stop(&f);
    return 0;
}
