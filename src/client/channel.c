/*
 * The guest's side of a channel (msg.h, "Guest channels"): a process in a
 * virtual machine reaching hypfsd through a virtio-serial port.
 *
 * The port is a byte stream that outlives the processes using it: what a
 * killed predecessor sent half of, or a reply it never read, may be in
 * it; and the host's side comes and goes (the VMM reconnects, hypfsd
 * restarts).  So nothing read is trusted to be where a frame begins:
 *
 *   - a session starts with HELLO carrying a random seq, and everything
 *     before the HELLO_REPLY with that seq is skipped;
 *   - a frame counts only whole, with its CRC right, and of the type and
 *     seq awaited (or an event); otherwise one byte goes and the search
 *     goes on, as hypfsd does on its side;
 *   - when the host's side is gone (read gives end-of-file, poll says
 *     POLLHUP), the call waits for it to come back, starts a new session
 *     and sends the hypercall again (safe: a read changes nothing, a
 *     write sets the same value again); a control command is never sent
 *     twice;
 *   - every wait is bounded: HYPFS_CHANNEL_TIMEOUT seconds (default 30)
 *     for a call in all, after which it fails with -ETIMEDOUT.
 *
 * The descriptor is non-blocking: a write to a port whose host side is
 * away would otherwise block without bound.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define HELLO_WAIT_MS       3000    /* > HYPFS_CHAN_STALL_MS: see msg.h */
#define REPLY_WAIT_MS       15000   /* then the session starts again */
#define HOST_POLL_MS        50
#define TIMEOUT_DEFAULT_S   30

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/*
 * The fuzz target's build (tests/fuzz/fuzz-channel.c): time passes only
 * where this code waits, and all of the wait at once, so a stream that
 * stalls or a host that never comes back costs no real time, and every
 * input behaves the same on every run, on a loaded machine too.
 */
static int64_t fuzz_clock_ms;

static int64_t now_ms(void)
{
    return fuzz_clock_ms;
}

static int wait_ms(struct pollfd *p, nfds_t n, int ms)
{
    int ret = poll(p, n, 0);

    if (!ret)
        fuzz_clock_ms += ms > 0 ? ms : 1;
    return ret;
}
#else
static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_ms(struct pollfd *p, nfds_t n, int ms)
{
    return poll(p, n, ms);
}
#endif

static int left_ms(int64_t deadline)
{
    int64_t l = deadline - now_ms();

    return l <= 0 ? 0 : l > 60000 ? 60000 : (int)l;
}

/* ---- Finding the port ---- */

int hypfs_client_find_channel(char *path, size_t len)
{
    const char *env = getenv(HYPFS_CHANNEL_ENV);
    DIR *d;
    struct dirent *e;

    if (env && *env) {
        snprintf(path, len, "%s", env);
        return 0;
    }
    /* With udev: a link by the port's name. */
    snprintf(path, len, "/dev/virtio-ports/%s", HYPFS_CHAN_PORT_NAME);
    if (!access(path, F_OK))
        return 0;
    /* Without: the port whose name sysfs gives. */
    d = opendir("/sys/class/virtio-ports");
    if (!d)
        return -ENOENT;
    while ((e = readdir(d))) {
        char p[512], name[128];
        FILE *f;
        bool match = false;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
        f = fopen(p, "re");
        if (!f)
            continue;
        if (fgets(name, sizeof(name), f)) {
            name[strcspn(name, "\n")] = '\0';
            match = !strcmp(name, HYPFS_CHAN_PORT_NAME);
        }
        fclose(f);
        if (match) {
            snprintf(path, len, "/dev/%s", e->d_name);
            closedir(d);
            return 0;
        }
    }
    closedir(d);
    return -ENOENT;
}

/* ---- Bytes in and out ---- */

/* Drop @n bytes of what was read. */
static void consume(struct hypfs_client *c, size_t n)
{
    c->cstart += n;
    if (c->cstart == c->cend)
        c->cstart = c->cend = 0;
}

/*
 * Read what is there, or wait until @deadline for something.  0 when
 * bytes came, -ETIMEDOUT, -EPIPE when the host's side is gone, -ENOMEM,
 * or another -errno.
 */
static int read_some(struct hypfs_client *c, size_t want, int64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        ssize_t got;

        if (c->ccap - c->cstart < want || c->ccap == c->cend) {
            size_t cap;
            uint8_t *b;

            memmove(c->cbuf, c->cbuf + c->cstart, c->cend - c->cstart);
            c->cend -= c->cstart;
            c->cstart = 0;
            cap = c->ccap < 65536 ? 65536 : c->ccap;
            while (cap < want)
                cap *= 2;
            if (cap != c->ccap) {
                b = realloc(c->cbuf, cap);
                if (!b)
                    return -ENOMEM;
                c->cbuf = b;
                c->ccap = cap;
            }
        }
        got = read(c->fd, c->cbuf + c->cend, c->ccap - c->cend);
        if (got > 0) {
            c->cend += (size_t)got;
            return 0;
        }
        if (!got)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        if (!left_ms(deadline))
            return -ETIMEDOUT;
        if (wait_ms(&p, 1, left_ms(deadline)) < 0 && errno != EINTR)
            return -errno;
        if (p.revents & POLLHUP)
            return -EPIPE;
    }
}

/* The frame @iov (with its CRC appended), whole, by @deadline. */
static int send_frame(struct hypfs_client *c, const struct iovec *iov, int n,
                      int64_t deadline)
{
    uint32_t crc = hypfs_msg_crc(0, iov, n);
    size_t total = sizeof(crc), off = 0;
    uint8_t *buf, *p;
    int i, ret = 0;

    for (i = 0; i < n; i++)
        total += iov[i].iov_len;
    /* One buffer, so that a frame goes out in as few writes as can be. */
    p = buf = malloc(total);
    if (!buf)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        if (iov[i].iov_len)
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    memcpy(p, &crc, sizeof(crc));
    while (off < total) {
        struct pollfd pf = { .fd = c->fd, .events = POLLOUT };
        ssize_t w = write(c->fd, buf + off, total - off);

        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN) {
            ret = -errno;
            break;
        }
        if (!left_ms(deadline)) {
            ret = -ETIMEDOUT;
            break;
        }
        if (wait_ms(&pf, 1, left_ms(deadline)) < 0 && errno != EINTR) {
            ret = -errno;
            break;
        }
    }
    free(buf);
    return ret;
}

/*
 * The next frame of @type and @seq (or, between them, events, which are
 * queued): its payload at cbuf + cstart, *len bytes, consumed by the
 * caller.  Anything else is skipped a byte at a time.  0 or -errno.
 */
static int await_frame(struct hypfs_client *c, uint16_t type, uint32_t seq,
                       size_t max_len, size_t *len, int64_t deadline)
{
    static const uint32_t magic = HYPFS_MSG_MAGIC;
    int ret;

    for (;;) {
        struct hypfs_msg_hdr hdr;
        size_t have = c->cend - c->cstart, total, i;
        const uint8_t *p = c->cbuf + c->cstart;
        uint32_t crc;
        struct iovec v;
        bool event;

        /* Up to something that may be a magic. */
        for (i = 0; i < have; i++) {
            size_t k = have - i < 4 ? have - i : 4;

            if (!memcmp(p + i, &magic, k))
                break;
        }
        consume(c, i);
        if (c->cend - c->cstart < sizeof(hdr)) {
            ret = read_some(c, sizeof(hdr), deadline);
            if (ret)
                return ret;
            continue;
        }
        memcpy(&hdr, c->cbuf + c->cstart, sizeof(hdr));
        event = hdr.type == HYPFS_MSG_EVENT && !hdr.seq &&
                hdr.len == sizeof(struct hypfs_msg_event);
        if (hypfs_msg_hdr_check(&hdr) ||
            (!event && (hdr.type != type || hdr.seq != seq ||
                        hdr.len > max_len))) {
            consume(c, 1);
            continue;
        }
        total = sizeof(hdr) + hdr.len + HYPFS_CHAN_TRAILER;
        while (c->cend - c->cstart < total) {
            /*
             * The rest must keep coming: a frame that stops is a false
             * start (hypfsd sends a frame in one go).
             */
            int64_t stall = now_ms() + HYPFS_CHAN_STALL_MS;

            ret = read_some(c, total, stall < deadline ? stall : deadline);
            if (ret == -ETIMEDOUT && now_ms() < deadline)
                break;
            if (ret)
                return ret;
        }
        if (c->cend - c->cstart < total) {
            consume(c, 1);
            continue;
        }
        v.iov_base = c->cbuf + c->cstart;
        v.iov_len = total - HYPFS_CHAN_TRAILER;
        memcpy(&crc, c->cbuf + c->cstart + v.iov_len, sizeof(crc));
        if (crc != hypfs_msg_crc(0, &v, 1)) {
            consume(c, 1);
            continue;
        }
        if (event) {
            struct hypfs_msg_event ev;

            memcpy(&ev, c->cbuf + c->cstart + sizeof(hdr), sizeof(ev));
            consume(c, total);
            if (c->chan_session)
                hypfs_client_queue_event(c, &ev);
            continue;
        }
        consume(c, sizeof(hdr));
        *len = hdr.len;
        return 0;
    }
}

/* Wait until the host's side is there again (POLLHUP ends). */
static int await_host(struct hypfs_client *c, int64_t deadline)
{
    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };

        if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP))
            return 0;
        if (!left_ms(deadline))
            return -ETIMEDOUT;
        wait_ms(NULL, 0, HOST_POLL_MS);
    }
}

/*
 * A HELLO's seq: only unlike the seqs of earlier sessions, not secret: a
 * guest just booted must not wait for the kernel's entropy (a second
 * under TCG), so the clock and pid do when getrandom() would block.
 */
static uint32_t session_seq(const struct hypfs_client *c)
{
    uint32_t seq;

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Known to the fuzz target, so that its replies can match. */
    seq = (uint32_t)(c->epoch + 1) << 16;
#else
    (void)c;
    if (getrandom(&seq, sizeof(seq), GRND_NONBLOCK) != sizeof(seq)) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        seq = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec << 20 ^
              (uint32_t)getpid() << 8;
    }
#endif
    return seq | 1;
}

/* A new session: HELLO until its reply comes.  0 or -errno. */
static int hello(struct hypfs_client *c, int64_t deadline)
{
    int ret = -ETIMEDOUT;

    c->chan_session = false;
    /* hypfsd's side is new: what was queued is of watches that ended. */
    if (c->epoch)
        c->events_lost = true;
    c->nevents = 0;
    while (left_ms(deadline)) {
        struct hypfs_msg_hdr hdr;
        struct hypfs_msg_hello_reply r;
        struct iovec v = { &hdr, sizeof(hdr) };
        int64_t wait = now_ms() + HELLO_WAIT_MS;
        uint32_t seq;
        size_t len;

        seq = session_seq(c);
        hypfs_msg_hdr_init(&hdr, HYPFS_MSG_HELLO, 0, seq);
        ret = send_frame(c, &v, 1, deadline);
        if (!ret)
            ret = await_frame(c, HYPFS_MSG_HELLO_REPLY, seq, sizeof(r), &len,
                              wait < deadline ? wait : deadline);
        if (!ret && len == sizeof(r)) {
            memcpy(&r, c->cbuf + c->cstart, sizeof(r));
            consume(c, sizeof(r) + HYPFS_CHAN_TRAILER);
            c->chan_domid = r.domid;
            c->chan_session = true;
            c->epoch++;         /* hypfsd's side is new: watches again */
            c->seq = seq;
            return 0;
        }
        if (!ret) {
            consume(c, len + HYPFS_CHAN_TRAILER);
            ret = -EPROTO;
        }
        if (ret == -EPIPE)
            ret = await_host(c, deadline);
        else if (ret != -ETIMEDOUT)
            return ret;
    }
    return ret;
}

/* ---- Opening ---- */

/* @fd: the port already open (ours from here on), or -1: open @device. */
static int open_channel(struct hypfs_client *c, const char *device, int fd)
{
    const char *t = getenv("HYPFS_CHANNEL_TIMEOUT");
    char *end;
    long s;
    int ret;

    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->chan = true;
    c->chan_timeout_ms = TIMEOUT_DEFAULT_S * 1000;
    if (t && *t) {
        errno = 0;
        s = strtol(t, &end, 10);
        if (*end || errno || s < 1 || s > 86400) {
            snprintf(c->err, sizeof(c->err), "HYPFS_CHANNEL_TIMEOUT=%.40s: "
                     "expected seconds, from 1 to 86400", t);
            ret = -EINVAL;
            goto fail;
        }
        c->chan_timeout_ms = (int)s * 1000;
    }
    c->socket_path = strdup(device);
    c->ccap = 65536;
    c->cbuf = malloc(c->ccap);
    if (!c->socket_path || !c->cbuf) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        ret = -ENOMEM;
        goto fail;
    }
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);

        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            ret = -errno;
            snprintf(c->err, sizeof(c->err), "%s: %s", device, strerror(-ret));
            goto fail;
        }
    } else
        c->fd = open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (c->fd < 0) {
        ret = -errno;
        snprintf(c->err, sizeof(c->err), "cannot open the hypfs channel %s: "
                 "%s%s", device, strerror(-ret), ret == -EBUSY ?
                 " (another process has it open: one process at a time "
                 "per port)" : "");
        goto fail;
    }
    ret = hello(c, now_ms() + c->chan_timeout_ms);
    if (ret) {
        snprintf(c->err, sizeof(c->err), "no answer from hypfsd through the "
                 "channel %s: %s", device, strerror(-ret));
        goto fail;
    }
    return 0;

 fail:
    {
        char err[sizeof(c->err)];

        memcpy(err, c->err, sizeof(err));
        hypfs_client_close(c);
        memcpy(c->err, err, sizeof(err));
    }
    return ret;
}

int hypfs_client_open_channel(struct hypfs_client *c, const char *device)
{
    return open_channel(c, device, -1);
}

int hypfs_client_open_channel_fd(struct hypfs_client *c, int fd,
                                 const char *name)
{
    return open_channel(c, name, fd);
}

/* ---- One exchange ---- */

/*
 * Send the frame @iov (header first, its seq set here) and await the
 * reply of @type: its payload at cbuf + cstart, *len bytes (the caller
 * consumes it with hypfs_client_chan_done()).  With @resend, a request
 * whose reply did not come is sent again in a new session; without, a
 * lost reply is -ECONNABORTED.
 */
int hypfs_client_chan_exchange(struct hypfs_client *c, struct iovec *iov,
                               int n, uint16_t type, size_t max_len,
                               bool resend, size_t *len)
{
    struct hypfs_msg_hdr *hdr = iov[0].iov_base;
    int64_t deadline = now_ms() + c->chan_timeout_ms;
    bool sent = false;
    int ret = -ETIMEDOUT;

    while (left_ms(deadline)) {
        int64_t wait = now_ms() + REPLY_WAIT_MS;

        if (!c->chan_session) {
            ret = hello(c, deadline);
            if (ret)
                break;
        }
        if (sent && !resend) {
            ret = -ECONNABORTED;
            break;
        }
        hdr->seq = ++c->seq;
        ret = send_frame(c, iov, n, deadline);
        if (!ret) {
            sent = true;
            ret = await_frame(c, type, hdr->seq, max_len, len,
                              wait < deadline ? wait : deadline);
        }
        if (!ret)
            return 0;
        /* Out of step, or the host's side went away: a new session. */
        c->chan_session = false;
        if (ret == -EPIPE)
            ret = await_host(c, deadline);
        else if (ret != -ETIMEDOUT)
            break;
        if (ret)
            break;
    }
    if (ret == -ECONNABORTED)
        snprintf(c->err, sizeof(c->err), "the channel %s lost hypfsd's "
                 "answer: the command may or may not have been carried out",
                 c->socket_path);
    else
        snprintf(c->err, sizeof(c->err), "no answer from hypfsd through the "
                 "channel %s: %s", c->socket_path, strerror(-ret));
    return ret;
}

void hypfs_client_chan_done(struct hypfs_client *c, size_t len)
{
    consume(c, len + HYPFS_CHAN_TRAILER);
}

int hypfs_client_chan_pump(struct hypfs_client *c)
{
    size_t len;
    int ret;

    /* Whatever is there: events are queued, nothing else is awaited. */
    ret = await_frame(c, HYPFS_MSG_EVENT + 100, 0, 0, &len, now_ms());
    if (ret == -ETIMEDOUT)
        return 0;
    if (ret == -EPIPE) {
        c->chan_session = false;
        snprintf(c->err, sizeof(c->err), "the host's side of the channel %s "
                 "went away", c->socket_path);
        return -ECONNRESET;
    }
    return ret;
}
