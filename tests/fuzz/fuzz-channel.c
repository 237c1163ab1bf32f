/*
 * Fuzz target (f): the guest's side of a channel (src/client/channel.c)
 * reading what comes out of its virtio-serial port.
 *
 * The port is a byte stream that outlives sessions: anything may be in
 * it -- a killed predecessor's half frames, replies nobody awaits,
 * frames with a bad CRC or a lying length, events between replies, a
 * host that goes away.  Here the fuzzer's bytes are the whole stream the
 * host side writes, made before the guest asks anything (the guest must
 * find its way through it all the same), then, if the input says so, the
 * host hangs up.
 *
 * Input:
 *   byte 0          bit 0: the host hangs up after the stream;
 *                   bits 1-7: the number of calls (mod 12)
 *   then            one byte per call (fuzz-calls.h)
 *   then, to the end, items of the stream:
 *     [k & 3 == 0][u16 n][n bytes]              raw bytes
 *     [k][type][seq][flags][u16 n][n bytes]     a frame, the n bytes its
 *                                               payload, CRC appended
 *   seq: 0 is 0 (events); otherwise session (seq >> 5) + 1 and the
 *   (seq & 31)-th seq of that session, 1 being its HELLO's.  The build
 *   makes the seqs a session uses known (channel.c: session_seq), so that
 *   replies can match what is asked.
 *   flags: bit 0 a wrong CRC, bit 1 a wrong magic, bit 2 a wrong version,
 *   bits 4-7 that many bytes cut from the frame's end.
 *
 * Time is the build's virtual clock: a stalled stream costs nothing.
 * Checked: no crash, no overread, no leak, no endless loop (libFuzzer's
 * -timeout); every call's result whole or an errno (fuzz-calls.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz-calls.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the host writes: whatever fits the socket's buffer. */
static void host_write(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w <= 0)
            return;
        p = (const uint8_t *)p + w;
        n -= (size_t)w;
    }
}

static uint32_t seq_of(uint8_t sel)
{
    if (!sel)
        return 0;
    return ((uint32_t)(sel >> 5) + 1) << 16 | (uint32_t)(sel & 31);
}

static void stream(int fd, const uint8_t *p, size_t size)
{
    static uint8_t frame[65535 + sizeof(struct hypfs_msg_hdr) + 4];
    size_t off = 0;

    while (off < size) {
        uint8_t k = p[off++];
        struct hypfs_msg_hdr h;
        uint8_t type, sel, flags;
        struct iovec v;
        uint32_t crc;
        size_t n, total, cut;

        if (!(k & 3)) {
            if (size - off < 2)
                break;
            n = (size_t)p[off] | (size_t)p[off + 1] << 8;
            off += 2;
            n = n < size - off ? n : size - off;
            host_write(fd, p + off, n);
            off += n;
            continue;
        }
        if (size - off < 5)
            break;
        type = p[off];
        sel = p[off + 1];
        flags = p[off + 2];
        n = (size_t)p[off + 3] | (size_t)p[off + 4] << 8;
        off += 5;
        n = n < size - off ? n : size - off;
        hypfs_msg_hdr_init(&h, type % 8, (uint32_t)n, seq_of(sel));
        if (flags & 2)
            h.magic ^= 0x100;
        if (flags & 4)
            h.version++;
        memcpy(frame, &h, sizeof(h));
        memcpy(frame + sizeof(h), p + off, n);
        off += n;
        v.iov_base = frame;
        v.iov_len = sizeof(h) + n;
        crc = hypfs_msg_crc(0, &v, 1) ^ (flags & 1);
        memcpy(frame + v.iov_len, &crc, sizeof(crc));
        total = v.iov_len + sizeof(crc);
        cut = flags >> 4;
        host_write(fd, frame, total - (cut < total ? cut : total));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    xenhypfs_handle *h;
    size_t ncalls;
    int sv[2];

    if (!once) {
        /* Writing to a host that hung up must be EPIPE, not death. */
        signal(SIGPIPE, SIG_IGN);
        once = true;
    }
    if (size < 1)
        return 0;
    ncalls = (size_t)(data[0] >> 1) % 12;
    if (size < 1 + ncalls)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        abort();
    /* The host never waits: what does not fit is not sent. */
    if (fcntl(sv[1], F_SETFL, O_NONBLOCK))
        abort();
    stream(sv[1], data + 1 + ncalls, size - 1 - ncalls);
    if (data[0] & 1) {
        close(sv[1]);
        sv[1] = -1;
    }
    errno = 0;
    h = xenhypfs_open_channel_fd(sv[0]);
    if (!h)
        CHECK(errno);
    else {
        fuzz_calls(h, data + 1, ncalls);
        xenhypfs_close(h);
    }
    if (sv[1] >= 0)
        close(sv[1]);
    return 0;
}
