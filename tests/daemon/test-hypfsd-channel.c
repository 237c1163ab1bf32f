/*
 * Guests' channels without a virtual machine: the host's side spoken
 * directly on a domain's channel socket (as a VMM would forward a
 * guest's bytes), and the guest's side (src/client/channel.c) through a
 * pseudo-terminal in raw mode standing in for the virtio-serial port,
 * relayed to the channel.  Cheap enough for every sanitizer build; the
 * guest suite (tests/guest) does the same with real VMs.
 *
 * Checked: identity is the channel's domain whatever the connecting
 * user (root here); garbage, a partial frame and a frame with a wrong CRC
 * before a request never keep it from being answered, on the same
 * connection; a destroyed domain's channel answers -EPERM and its socket
 * is gone; a guest client skips stale replies and noise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

static struct daemon d;
static char chan[PATH_MAX + 64];
static unsigned int domid;

static int ctl(const char *const *argv, int argc, char **text)
{
    struct hypfs_client c;
    const char *t;
    uint32_t len;
    int status = -1;

    assert_int_equal(tclient_open(&c, d.socket), 0);
    assert_int_equal(hypfs_client_ctl(&c, argc, argv, &status, &t, &len), 0);
    if (text)
        *text = strdup(t);
    hypfs_client_close(&c);
    return status;
}

static int setup(void **state)
{
    const char *create[] = { "domain-create", "name=web", "vcpus=2",
                             "channel=1" };
    const char *where[] = { "domain-channel", "id=web" };
    char *text;

    (void)state;
    if (daemon_start(&d, NULL, NULL))
        return -1;
    assert_int_equal(ctl(create, 4, &text), 0);
    domid = (unsigned int)strtoul(text, NULL, 10);
    free(text);
    assert_int_equal(ctl(where, 2, &text), 0);
    text[strcspn(text, "\n")] = '\0';
    snprintf(chan, sizeof(chan), "%s", text);
    free(text);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return daemon_stop(&d) ? -1 : 0;
}

static int chan_connect(void)
{
    int fd = hypfs_client_connect_path(chan);

    assert_true(fd >= 0);
    return fd;
}

/* A channel frame: header, fixed part, body, CRC. */
static void send_frame(int fd, uint16_t type, uint32_t seq, const void *a,
                       size_t alen, const void *b, size_t blen)
{
    struct hypfs_msg_hdr hdr;
    struct iovec v[3] = { { &hdr, sizeof(hdr) }, { (void *)a, alen },
                          { (void *)b, blen } };

    hypfs_msg_hdr_init(&hdr, type, (uint32_t)(alen + blen), seq);
    assert_int_equal(hypfs_msg_write_chan(fd, v, 3), 0);
}

static void send_read(int fd, uint32_t seq, const char *path)
{
    struct hypfs_msg_op op = {
        .cmd = XEN_HYPFS_OP_read, .path_len = (uint32_t)strlen(path) + 1,
        .arg1 = 0x1000, .arg2 = strlen(path) + 1, .arg3 = 0x2000,
        .arg4 = 4096,
    };

    send_frame(fd, HYPFS_MSG_OP, seq, &op, sizeof(op), path, op.path_len);
}

/* The next frame (30 s at most): its header, payload (malloc'd), CRC checked. */
static void recv_frame(int fd, struct hypfs_msg_hdr *hdr, uint8_t **payload)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct iovec v[2];
    uint32_t crc;

    assert_int_equal(poll(&p, 1, 30000), 1);
    assert_int_equal(hypfs_msg_read_all(fd, hdr, sizeof(*hdr)), 0);
    assert_int_equal(hypfs_msg_hdr_check(hdr), 0);
    assert_true(hdr->len < (1u << 20));
    *payload = malloc(hdr->len + 1);
    assert_non_null(*payload);
    assert_int_equal(hypfs_msg_read_all(fd, *payload, hdr->len), 0);
    assert_int_equal(hypfs_msg_read_all(fd, &crc, sizeof(crc)), 0);
    v[0].iov_base = hdr;
    v[0].iov_len = sizeof(*hdr);
    v[1].iov_base = *payload;
    v[1].iov_len = hdr->len;
    assert_int_equal(crc, hypfs_msg_crc(0, v, 2));
}

/* The result of the read sent with @seq, and its content if it is a string. */
static long read_result(int fd, uint32_t seq, char *content, size_t cap)
{
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_op_reply r;
    uint8_t *p;
    long ret;

    recv_frame(fd, &hdr, &p);
    assert_int_equal(hdr.type, HYPFS_MSG_OP_REPLY);
    assert_int_equal(hdr.seq, seq);
    memcpy(&r, p, sizeof(r));
    ret = (long)r.ret;
    if (content && !ret && r.out_len > sizeof(struct xen_hypfs_direntry)) {
        size_t n = r.out_len - sizeof(struct xen_hypfs_direntry);

        n = n < cap - 1 ? n : cap - 1;
        memcpy(content, p + sizeof(r) + sizeof(struct xen_hypfs_direntry), n);
        content[n] = '\0';
    }
    free(p);
    return ret;
}

static void test_identity_is_the_channel(void **state)
{
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_hello_reply hr;
    struct hypfs_msg_ctl_reply cr;
    char name[64], path[64];
    uint8_t *p;
    int fd = chan_connect();

    (void)state;
    send_frame(fd, HYPFS_MSG_HELLO, 77, NULL, 0, NULL, 0);
    recv_frame(fd, &hdr, &p);
    assert_int_equal(hdr.type, HYPFS_MSG_HELLO_REPLY);
    assert_int_equal(hdr.seq, 77);
    memcpy(&hr, p, sizeof(hr));
    free(p);
    assert_int_equal(hr.ret, 0);
    assert_int_equal(hr.domid, domid);

    snprintf(path, sizeof(path), "/domain/%u/name", domid);
    send_read(fd, 78, path);
    assert_int_equal(read_result(fd, 78, name, sizeof(name)), 0);
    assert_string_equal(name, "web");
    /* Root connected, but this is domain 1: control-only is invisible. */
    send_read(fd, 79, "/params/loglvl");
    assert_int_equal(read_result(fd, 79, NULL, 0), -ENOENT);
    send_read(fd, 80, "/domain/0/name");
    assert_int_equal(read_result(fd, 80, NULL, 0), -ENOENT);
    send_frame(fd, HYPFS_MSG_CTL, 81, "domain-list", 12, NULL, 0);
    recv_frame(fd, &hdr, &p);
    assert_int_equal(hdr.type, HYPFS_MSG_CTL_REPLY);
    memcpy(&cr, p, sizeof(cr));
    free(p);
    assert_int_equal(cr.ret, -EACCES);
    close(fd);
}

static void test_garbage_is_skipped(void **state)
{
    static const uint8_t noise[] = "HYPHYPF\x01\x00 noise HYPF";
    struct hypfs_msg_hdr big;
    char name[64], path[64];
    uint8_t bad[160];
    int fd = chan_connect();

    (void)state;
    snprintf(path, sizeof(path), "/domain/%u/name", domid);
    /* Noise, including the magic's start. */
    assert_int_equal(hypfs_msg_write_all(fd, noise, sizeof(noise)), 0);
    send_read(fd, 1, path);
    assert_int_equal(read_result(fd, 1, name, sizeof(name)), 0);
    assert_string_equal(name, "web");
    /* A frame whose CRC is wrong is not taken: the next one is. */
    {
        struct hypfs_msg_op op = { .cmd = XEN_HYPFS_OP_read,
                                   .path_len = (uint32_t)strlen(path) + 1,
                                   .arg2 = strlen(path) + 1, .arg4 = 4096 };
        size_t n = 0;

        hypfs_msg_hdr_init((struct hypfs_msg_hdr *)bad, HYPFS_MSG_OP,
                           (uint32_t)(sizeof(op) + op.path_len), 2);
        n += sizeof(struct hypfs_msg_hdr);
        memcpy(bad + n, &op, sizeof(op));
        n += sizeof(op);
        memcpy(bad + n, path, op.path_len);
        n += op.path_len;
        memset(bad + n, 0xee, 4);
        n += 4;
        assert_true(n <= sizeof(bad));
        assert_int_equal(hypfs_msg_write_all(fd, bad, n), 0);
    }
    send_read(fd, 3, path);
    assert_int_equal(read_result(fd, 3, name, sizeof(name)), 0);
    /*
     * The head of a frame promising more than ever comes (a tool killed
     * while sending): the request after it is answered all the same, once
     * the daemon gives up on the stalled frame.
     */
    hypfs_msg_hdr_init(&big, HYPFS_MSG_OP, 60000, 4);
    assert_int_equal(hypfs_msg_write_all(fd, &big, sizeof(big)), 0);
    send_read(fd, 5, path);
    assert_int_equal(read_result(fd, 5, name, sizeof(name)), 0);
    assert_string_equal(name, "web");
    close(fd);
}

/* "watches N" of hypfsd's stats. */
static unsigned long watches_now(void)
{
    const char *stats[] = { "stats" };
    char *text, *w;
    unsigned long n;

    assert_int_equal(ctl(stats, 1, &text), 0);
    w = strstr(text, "\nwatches ");
    assert_non_null(w);
    n = strtoul(w + 9, NULL, 10);
    free(text);
    return n;
}

/* Watches on a channel: events with their CRC; a new session ends them. */
static void test_watch_and_hello(void **state)
{
    char path[64], write_path[64];
    const char value[] = "changed";
    struct hypfs_client host;
    struct hypfs_msg_op op = { .cmd = XEN_HYPFS_OP_write_contents };
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_event ev;
    const uint8_t *out;
    uint32_t out_len;
    uint8_t *p;
    long ret;
    int fd = chan_connect();

    (void)state;
    snprintf(path, sizeof(path), "/domain/%u/guest-status", domid);
    {
        struct hypfs_msg_op w = {
            .cmd = XEN_HYPFS_OP_watch, .path_len = (uint32_t)strlen(path) + 1,
            .arg1 = 0x1000, .arg2 = strlen(path) + 1, .arg3 = 4242,
            .arg4 = 0,      /* knows no generation: the first change tells */
        };

        send_frame(fd, HYPFS_MSG_OP, 1, &w, sizeof(w), path, w.path_len);
        assert_int_equal(read_result(fd, 1, NULL, 0), 0);
    }
    assert_int_equal(watches_now(), 1);
    /* The control domain writes it: the guest hears, on its channel. */
    snprintf(write_path, sizeof(write_path), "%s", path);
    op.path_len = (uint32_t)strlen(write_path) + 1;
    op.arg1 = 0x1000;
    op.arg2 = op.path_len;
    op.arg3 = 0x2000;
    op.arg4 = op.data_len = sizeof(value);
    assert_int_equal(tclient_open(&host, d.socket), 0);
    assert_int_equal(tclient_op(&host, &op, write_path, value, &ret, &out,
                                &out_len), 0);
    assert_int_equal(ret, 0);
    hypfs_client_close(&host);
    recv_frame(fd, &hdr, &p);
    assert_int_equal(hdr.type, HYPFS_MSG_EVENT);
    memcpy(&ev, p, sizeof(ev));
    free(p);
    assert_int_equal(ev.token, 4242);
    assert_int_equal(ev.status, 0);
    /*
     * A new guest process: the old one's watch ends with HELLO.  Events
     * of the old session may still come before its reply (a watch told
     * at once that it knew no generation, then the write's).
     */
    send_frame(fd, HYPFS_MSG_HELLO, 2, NULL, 0, NULL, 0);
    for (;;) {
        recv_frame(fd, &hdr, &p);
        if (hdr.type != HYPFS_MSG_EVENT)
            break;
        memcpy(&ev, p, sizeof(ev));
        free(p);
        assert_int_equal(ev.token, 4242);
    }
    free(p);
    assert_int_equal(hdr.type, HYPFS_MSG_HELLO_REPLY);
    assert_int_equal(hdr.seq, 2);
    assert_int_equal(watches_now(), 0);
    close(fd);
}

/* Is an event waiting on @fd within @ms?  Its token in *token. */
static bool event_within(int fd, int ms, uint64_t *token)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_event ev;
    uint8_t *payload;

    if (poll(&p, 1, ms) != 1)
        return false;
    recv_frame(fd, &hdr, &payload);
    assert_int_equal(hdr.type, HYPFS_MSG_EVENT);
    memcpy(&ev, payload, sizeof(ev));
    free(payload);
    *token = ev.token;
    return true;
}

/*
 * A channel's watches are checked as the channel's domain, never as the
 * VMM's user (root here, the control domain): changes hidden from the
 * guest tell it nothing, and its own do.
 */
static void test_watch_sees_as_the_guest(void **state)
{
    const char *hidden[] = { "domain-create", "name=hidden" };
    const char *gone[] = { "domain-destroy", "id=hidden" };
    const char value[] = "ready";
    struct hypfs_msg_op w = {
        .cmd = XEN_HYPFS_OP_watch, .path_len = sizeof("/domain"),
        .arg1 = 0x1000, .arg2 = sizeof("/domain"), .arg3 = 77, .arg4 = 0,
    };
    struct hypfs_msg_op op = { .cmd = XEN_HYPFS_OP_write_contents };
    char path[64];
    uint64_t token;
    int fd = chan_connect();

    (void)state;
    send_frame(fd, HYPFS_MSG_OP, 1, &w, sizeof(w), "/domain", w.path_len);
    assert_int_equal(read_result(fd, 1, NULL, 0), 0);
    /* It knew no generation: told the current one at once (events go out
     * between frames: after the reply). */
    assert_true(event_within(fd, 5000, &token));
    assert_int_equal(token, 77);
    /* Another domain made and destroyed: not in the guest's /domain. */
    assert_int_equal(ctl(hidden, 2, NULL), 0);
    assert_int_equal(ctl(gone, 2, NULL), 0);
    assert_false(event_within(fd, 500, &token));
    /* Its own entry, written through its own channel: its /domain moves. */
    snprintf(path, sizeof(path), "/domain/%u/guest-status", domid);
    op.path_len = (uint32_t)strlen(path) + 1;
    op.arg1 = 0x1000;
    op.arg2 = op.path_len;
    op.arg3 = 0x2000;
    op.arg4 = op.data_len = sizeof(value);
    {
        uint8_t body[sizeof(op) + 64 + sizeof(value)];

        memcpy(body, &op, sizeof(op));
        memcpy(body + sizeof(op), path, op.path_len);
        memcpy(body + sizeof(op) + op.path_len, value, sizeof(value));
        send_frame(fd, HYPFS_MSG_OP, 2, body,
                   sizeof(op) + op.path_len + sizeof(value), NULL, 0);
    }
    assert_int_equal(read_result(fd, 2, NULL, 0), 0);
    assert_true(event_within(fd, 5000, &token));
    assert_int_equal(token, 77);
    close(fd);
}

/* ---- The guest's side, through a raw pseudo-terminal ---- */

struct relay {
    int pty, sock;
    int stop[2];
    const uint8_t *inject;      /* sent to the guest first (stale bytes) */
    size_t inject_len;
};

static void *relay_thread(void *arg)
{
    struct relay *r = arg;
    uint8_t buf[65536];

    if (r->inject_len && write(r->pty, r->inject, r->inject_len) < 0)
        return NULL;
    for (;;) {
        struct pollfd p[3] = { { r->pty, POLLIN, 0 }, { r->sock, POLLIN, 0 },
                               { r->stop[0], POLLIN, 0 } };
        ssize_t n;

        if (poll(p, 3, -1) < 0)
            return NULL;
        if (p[2].revents)
            return NULL;
        if (p[0].revents & POLLIN) {
            n = read(r->pty, buf, sizeof(buf));
            if (n <= 0 || hypfs_msg_write_all(r->sock, buf, (size_t)n))
                return NULL;
        }
        if (p[1].revents & POLLIN) {
            n = read(r->sock, buf, sizeof(buf));
            if (n <= 0 || write(r->pty, buf, (size_t)n) != n)
                return NULL;
        }
    }
}

static void test_guest_client(void **state)
{
    /* What a killed predecessor may leave: a reply it never read, noise. */
    static const uint8_t stale[] = "HYPF\x01\x00\x02\x00\x10\x00\x00\x00"
                                   "\x07\x00\x00\x00 stale reply bytes";
    struct relay r = { .inject = stale, .inject_len = sizeof(stale) };
    struct hypfs_client c;
    struct hypfs_msg_op op = { .cmd = XEN_HYPFS_OP_read };
    struct termios t;
    pthread_t tid;
    const uint8_t *out;
    uint32_t out_len;
    char path[64], *slave;
    long ret;
    int sfd;

    (void)state;
    snprintf(path, sizeof(path), "/domain/%u/vcpus", domid);
    r.pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(r.pty >= 0);
    assert_int_equal(grantpt(r.pty), 0);
    assert_int_equal(unlockpt(r.pty), 0);
    slave = ptsname(r.pty);
    assert_non_null(slave);
    /* Raw both ways, and kept so while the client opens and closes it. */
    sfd = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(sfd >= 0);
    assert_int_equal(tcgetattr(sfd, &t), 0);
    cfmakeraw(&t);
    assert_int_equal(tcsetattr(sfd, TCSANOW, &t), 0);
    r.sock = chan_connect();
    assert_int_equal(pipe(r.stop), 0);
    assert_int_equal(pthread_create(&tid, NULL, relay_thread, &r), 0);

    assert_int_equal(hypfs_client_open_channel(&c, slave), 0);
    assert_int_equal(c.chan_domid, domid);
    op.path_len = (uint32_t)strlen(path) + 1;
    op.arg2 = op.path_len;
    op.arg4 = 4096;
    assert_int_equal(tclient_op(&c, &op, path, NULL, &ret, &out, &out_len), 0);
    assert_int_equal(ret, 0);
    assert_int_equal(out_len, sizeof(struct xen_hypfs_direntry) + 4);
    assert_int_equal(*(const uint32_t *)(out + sizeof(struct xen_hypfs_direntry)),
                     2);
    /* Control-only stays invisible from the guest's side too. */
    op.path_len = op.arg2 = sizeof("/params/loglvl");
    assert_int_equal(tclient_op(&c, &op, "/params/loglvl", NULL, &ret, &out,
                                &out_len), 0);
    assert_int_equal(ret, -ENOENT);
    hypfs_client_close(&c);

    assert_int_equal(write(r.stop[1], "x", 1), 1);
    pthread_join(tid, NULL);
    close(r.stop[0]);
    close(r.stop[1]);
    close(r.sock);
    close(sfd);
    close(r.pty);
}

/* Last: the domain goes, and its channel with it. */
static void test_destroyed_domain(void **state)
{
    const char *destroy[] = { "domain-destroy", "id=web" };
    struct hypfs_msg_hdr hdr;
    struct hypfs_msg_hello_reply hr;
    struct stat st;
    char path[64];
    uint8_t *p;
    int fd = chan_connect();

    (void)state;
    snprintf(path, sizeof(path), "/domain/%u/name", domid);
    send_read(fd, 1, path);
    assert_int_equal(read_result(fd, 1, NULL, 0), 0);
    assert_int_equal(ctl(destroy, 2, NULL), 0);
    assert_int_equal(stat(chan, &st), -1);
    assert_int_equal(errno, ENOENT);
    /* The connection stays, and says no from now on. */
    send_read(fd, 2, path);
    assert_int_equal(read_result(fd, 2, NULL, 0), -EPERM);
    send_frame(fd, HYPFS_MSG_HELLO, 3, NULL, 0, NULL, 0);
    recv_frame(fd, &hdr, &p);
    memcpy(&hr, p, sizeof(hr));
    free(p);
    assert_int_equal(hr.ret, -EPERM);
    /*
     * A new domain of the same name, with a channel: the old connection
     * is hung up, so that the VMM reconnects to the new one (its VM is
     * the new domain's now), and the new channel serves it.
     */
    {
        const char *again[] = { "domain-create", "name=web", "channel=1" };
        struct timeval tv = { 30, 0 };      /* a bound, not a measure */
        char b;

        assert_int_equal(ctl(again, 3, NULL), 0);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(read(fd, &b, 1), 0);
    }
    close(fd);
    fd = chan_connect();
    send_frame(fd, HYPFS_MSG_HELLO, 4, NULL, 0, NULL, 0);
    recv_frame(fd, &hdr, &p);
    memcpy(&hr, p, sizeof(hr));
    free(p);
    assert_int_equal(hr.ret, 0);
    assert_int_not_equal(hr.domid, domid);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_is_the_channel),
        cmocka_unit_test(test_garbage_is_skipped),
        cmocka_unit_test(test_watch_and_hello),
        cmocka_unit_test(test_watch_sees_as_the_guest),
        cmocka_unit_test(test_guest_client),
        cmocka_unit_test(test_destroyed_domain),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
