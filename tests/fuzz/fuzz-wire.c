/*
 * Fuzz target (b): hypfsd's wire protocol.
 *
 * Each input is a byte stream from one client, served by hypfsd's own
 * connection code (server_serve_fd(), what a connection thread runs) over
 * a socketpair, against the daemon's full filesystem and model with two
 * guest domains.  The first byte picks who the client is (root, a user
 * mapped to domain 1 or 2, or an unmapped user; from 0xf0 on, a VMM on
 * domain 1's channel, whose frames carry a CRC and whose stream is
 * searched for frames); the rest is whatever the fuzzer writes: frames,
 * half frames, lies about lengths, control commands.
 *
 * Checked: the daemon survives; every byte it sends back is a well-formed
 * reply frame (magic, version, a reply type, a length that matches its
 * payload, a result in range); it answers requests in order and never
 * more than it was asked; and afterwards the model is consistent.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hypfsd.h"
#include "client.h"

#define STALL_MS 30000   /* no byte moved either way for this long: a hang */

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/hypfs-fuzz-wire-XXXXXX";
    int fd = mkstemp(path);
    static const char conf[] = "map 1000 1\nmap 1001 2\n";

    (void)argc;
    (void)argv;
    log_threshold = L_ERR - 1;      /* silent */
    if (fd < 0 || write(fd, conf, sizeof(conf) - 1) != sizeof(conf) - 1 ||
        callers_load(path))
        abort();
    close(fd);
    unlink(path);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct serve {
    struct hypfs *fs;
    int fd;
    uid_t uid;
    struct channel *ch;
};

static void *serve_thread(void *arg)
{
    struct serve *s = arg;

    if (s->ch)
        server_serve_channel_fd(s->fs, s->fd, s->ch);
    else
        server_serve_fd(s->fs, s->fd, s->uid);
    return NULL;
}

/*
 * Check one reply stream: frames back to back, nothing else (on a
 * channel, each followed by its CRC, which must be right).
 */
static void check_replies(const uint8_t *p, size_t n, bool chan)
{
    while (n) {
        struct hypfs_msg_hdr h;

        CHECK(n >= sizeof(h));
        memcpy(&h, p, sizeof(h));
        CHECK(h.magic == HYPFS_MSG_MAGIC && h.version == HYPFS_MSG_VERSION);
        CHECK(h.type == HYPFS_MSG_OP_REPLY || h.type == HYPFS_MSG_CTL_REPLY ||
              h.type == HYPFS_MSG_EVENT ||
              (chan && h.type == HYPFS_MSG_HELLO_REPLY));
        CHECK(n - sizeof(h) >= h.len + (chan ? HYPFS_CHAN_TRAILER : 0));
        if (chan) {
            struct iovec v = { (void *)p, sizeof(h) + h.len };
            uint32_t crc;

            memcpy(&crc, p + v.iov_len, sizeof(crc));
            CHECK(crc == hypfs_msg_crc(0, &v, 1));
        }
        if (h.type == HYPFS_MSG_HELLO_REPLY) {
            struct hypfs_msg_hello_reply r;

            CHECK(h.len == sizeof(r));
            memcpy(&r, p + sizeof(h), sizeof(r));
            CHECK(r.ret == 0 && r.domid == 1);
        } else if (h.type == HYPFS_MSG_EVENT) {
            struct hypfs_msg_event e;

            /* A watch fired: between replies, whole, as specified. */
            CHECK(h.len == sizeof(e) && h.seq == 0);
            memcpy(&e, p + sizeof(h), sizeof(e));
            CHECK(e.pad == 0 && e.status <= 0 && (e.status || e.gen));
        } else if (h.type == HYPFS_MSG_OP_REPLY) {
            struct hypfs_msg_op_reply r;

            CHECK(h.len >= sizeof(r));
            memcpy(&r, p + sizeof(h), sizeof(r));
            CHECK(r.pad == 0 && h.len == sizeof(r) + r.out_len);
            CHECK(r.ret >= -4095 && r.ret <= XEN_HYPFS_VERSION);
        } else {
            struct hypfs_msg_ctl_reply r;

            CHECK(h.len >= sizeof(r));
            memcpy(&r, p + sizeof(h), sizeof(r));
            CHECK(h.len == sizeof(r) + r.text_len);
            CHECK(r.ret <= 0 && r.ret >= -4095);
        }
        p += sizeof(h) + h.len + (chan ? HYPFS_CHAN_TRAILER : 0);
        n -= sizeof(h) + h.len + (chan ? HYPFS_CHAN_TRAILER : 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uid_t uids[4] = { 0, 1000, 1001, 1002 };
    static uint8_t replies[4 << 20];
    struct ctl_result res;
    struct serve s;
    pthread_t t;
    size_t sent = 0, got = 0, i;
    int sv[2];
    bool wr_open = true;
    int64_t last;

    if (!size)
        return 0;
    if (model_init())
        abort();
    params_reset();
    {
        const char *a[] = { "domain-create", "name=one" };
        const char *b[] = { "domain-create", "name=two" };

        ctl_run(2, a, &res);
        free(res.text);
        ctl_run(2, b, &res);
        free(res.text);
    }
    if (hypfs_new(&s.fs) || fstree_build(s.fs) || fstree_add_test(s.fs))
        abort();
    /* Watches too: the notifier thread and events between replies. */
    budget_set_max(1u << 21);
    if (watch_start(s.fs, 64))
        abort();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        abort();
    s.fd = sv[1];
    s.uid = uids[data[0] & 3];
    s.ch = NULL;
    if (data[0] >= 0xf0) {
        const struct domain *d = model_find_domain(1);

        s.ch = channel_detached(1, d ? d->serial : 0);
        if (!s.ch)
            abort();
    }
    data++;
    size--;
    if (pthread_create(&t, NULL, serve_thread, &s))
        abort();

    /*
     * Write the stream and drain the replies at once, so neither blocks.
     * libFuzzer's -timeout alarm (SIGALRM, every timeout/2 + 1 s) lands on
     * any thread and interrupts these calls: EINTR is a retry, never a
     * verdict, and the stall watchdog counts from the last progress.
     */
    last = now_ms();
    for (;;) {
        struct pollfd pfd = { .fd = sv[0], .events = POLLIN };
        int64_t left;
        ssize_t n;
        int ready;

        if (wr_open && sent == size) {
            shutdown(sv[0], SHUT_WR);   /* the whole stream is out: EOF */
            wr_open = false;
        }
        if (wr_open)
            pfd.events |= POLLOUT;
        left = last + STALL_MS - now_ms();
        ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            /* Stuck: the daemon neither reads nor answers. */
            fprintf(stderr, "stalled: %zu of %zu bytes sent, %zu received\n",
                    sent, size, got);
            abort();
        }
        if (pfd.revents & POLLOUT) {
            n = send(sv[0], data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent += (size_t)n;
                last = now_ms();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR)
                wr_open = false;        /* the daemon hung up on us */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            n = recv(sv[0], replies + got, sizeof(replies) - got, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0) {
                got += (size_t)n;
                last = now_ms();
            }
            CHECK(got < sizeof(replies));
        }
    }
    pthread_join(t, NULL);
    watch_stop();
    close(sv[0]);
    check_replies(replies, got, s.ch != NULL);
    channel_put(s.ch);

    /* The model is whole: sorted lists, counts that add up. */
    for (i = 1; i < model.npools; i++)
        CHECK(model.pools[i - 1]->id < model.pools[i]->id);
    for (i = 1; i < model.ndomains; i++)
        CHECK(model.domains[i - 1]->id < model.domains[i]->id);
    {
        unsigned int cpus = 0, doms = 0;

        for (i = 0; i < model.npools; i++) {
            cpus += model.pools[i]->ncpus;
            doms += model.pools[i]->ndomains;
        }
        CHECK(cpus <= model.host_cpus);
        CHECK(doms == model.ndomains);
        CHECK(model_find_domain(0));
    }
    hypfs_free(s.fs);
    model_fini();
    return 0;
}
