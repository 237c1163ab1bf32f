/*
 * A scripted hypfsd for the library's fuzz targets: it reads one request
 * frame, answers with the next chunk of the script, and so on, then hangs
 * up.  Like a real daemon it never speaks before it is asked, so what the
 * client reads is always "the reply" -- whatever the script makes of it.
 * It keeps the requests, for the targets that check what was sent.
 */
#ifndef HYPFS_FAKE_DAEMON_H
#define HYPFS_FAKE_DAEMON_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hypfs/msg.h>

struct fake_daemon {
    int fd;                         /* the daemon's end */
    const uint8_t *const *chunk;    /* the replies, in order */
    const size_t *chunk_len;
    size_t nchunks;
    uint8_t requests[1 << 16];      /* every request frame received */
    size_t requests_len;
    pthread_t thread;
};

/*
 * Read exactly @n bytes, waiting as long as the client takes: it either
 * sends its next request or hangs up.  It is never left waiting for us,
 * because a reply the script cuts short ends the script (below), so no
 * timing guess is needed -- a guess fails on a loaded machine.
 */
static int fake_read(int fd, uint8_t *p, size_t n)
{
    while (n) {
        ssize_t r = read(fd, p, n);

        /* libFuzzer's -timeout alarm (SIGALRM) interrupts read(). */
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void *fake_daemon_run(void *arg)
{
    struct fake_daemon *f = arg;
    size_t i;

    for (i = 0; i < f->nchunks; i++) {
        struct hypfs_msg_hdr h;
        uint8_t *at = f->requests + f->requests_len;

        if (f->requests_len + sizeof(h) > sizeof(f->requests) ||
            fake_read(f->fd, at, sizeof(h)))
            break;
        memcpy(&h, at, sizeof(h));
        if (h.len > sizeof(f->requests) - f->requests_len - sizeof(h) ||
            fake_read(f->fd, at + sizeof(h), h.len))
            break;
        f->requests_len += sizeof(h) + h.len;
        if (f->chunk_len[i] && send(f->fd, f->chunk[i], f->chunk_len[i],
                                    MSG_NOSIGNAL) < 0)
            break;
        /*
         * The client waits until it has a frame that is not an event (its
         * reply): if the chunk holds only events, or is cut short, hang
         * up now, since the client would wait for the rest.
         */
        {
            size_t off = 0;
            bool replied = false;

            while (!replied && f->chunk_len[i] - off >= sizeof(h)) {
                memcpy(&h, f->chunk[i] + off, sizeof(h));
                if (f->chunk_len[i] - off - sizeof(h) < h.len)
                    break;
                replied = h.type != HYPFS_MSG_EVENT;
                off += sizeof(h) + h.len;
            }
            if (!replied)
                break;
        }
    }
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

/* Start it on a new socketpair; returns the client's end, or -1. */
static int fake_daemon_start(struct fake_daemon *f)
{
    int sv[2];

    f->requests_len = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -1;
    f->fd = sv[1];
    if (pthread_create(&f->thread, NULL, fake_daemon_run, f)) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    return sv[0];
}

/* Wait for it to finish (the client must have closed its end). */
static void fake_daemon_stop(struct fake_daemon *f)
{
    pthread_join(f->thread, NULL);
    close(f->fd);
}

#endif
