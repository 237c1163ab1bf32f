/*
 * make-seeds DIR: write the seed corpora of the fuzz targets into
 * DIR/<target>/ (run by hand; the output is committed as
 * tests/fuzz/corpus/).
 *
 * Seeds are real traffic, so that the fuzzers start from inputs that get
 * deep: frames a client sends (wire), the replies hypfsd's core gives to
 * exactly the requests libxenhypfs sends for a list of calls (client), and
 * values and command lines of every kind (values).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hypfsd.h"
#include "client.h"

static const char *outdir;
static struct hypfs *fs;

static void save(const char *target, const char *name, const void *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
        perror(path);
        exit(1);
    }
}

struct buf {
    uint8_t b[65536];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > sizeof(b->b))
        abort();
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

/* ---- wire: a client's frames ---- */

/* Frames for a guest's channel: each followed by its CRC (msg.h). */
static bool chan_mode;

static void frame_end(struct buf *b, size_t start)
{
    struct iovec v = { b->b + start, b->n - start };
    uint32_t crc;

    if (!chan_mode)
        return;
    crc = hypfs_msg_crc(0, &v, 1);
    put(b, &crc, sizeof(crc));
}

static void hello_frame(struct buf *b, uint32_t seq)
{
    struct hypfs_msg_hdr h = { HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                               HYPFS_MSG_HELLO, 0, seq };
    size_t start = b->n;

    put(b, &h, sizeof(h));
    frame_end(b, start);
}

static void op_frame(struct buf *b, uint32_t seq, unsigned int cmd,
                     const char *path, const void *data, uint32_t dlen,
                     uint64_t bufsize)
{
    struct hypfs_msg_op op = { .cmd = cmd };
    struct hypfs_msg_hdr h = { HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                               HYPFS_MSG_OP, 0, seq };
    size_t start = b->n;

    if (path) {
        op.arg1 = 0x1000;
        op.arg2 = op.path_len = (uint32_t)strlen(path) + 1;
        op.arg3 = 0x100000;
    }
    op.arg4 = cmd == XEN_HYPFS_OP_write_contents ? dlen : bufsize;
    op.data_len = cmd == XEN_HYPFS_OP_write_contents ? dlen : 0;
    h.len = (uint32_t)(sizeof(op) + op.path_len + op.data_len);
    put(b, &h, sizeof(h));
    put(b, &op, sizeof(op));
    if (path)
        put(b, path, op.path_len);
    if (op.data_len)
        put(b, data, op.data_len);
    frame_end(b, start);
}

static void ctl_frame(struct buf *b, uint32_t seq, const char *words, size_t n)
{
    struct hypfs_msg_hdr h = { HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                               HYPFS_MSG_CTL, (uint32_t)n, seq };
    size_t start = b->n;

    put(b, &h, sizeof(h));
    put(b, words, n);
    frame_end(b, start);
}

static void wire_seeds(void)
{
    static const char *const reads[] = {
        "/", "/params", "/params/loglvl", "/domain", "/domain/1/name",
        "/cpupool/0/sched-gran", "/buildinfo/config", "/test/types",
        "/test/types/u64", "/nope",
    };
    static const char ctl1[] = "domain-create\0name=x\0vcpus=2\0";
    static const char ctl2[] = "pool-create\0name=p\0gran=core\0";
    static const char ctl3[] = "cpu-move\0cpu=0\0pool=1\0";
    static const char ctl4[] = "domain-destroy\0id=1\0";
    static const char ctl5[] = "pool-list\0";
    uint8_t one = 1;
    int uid;
    size_t i;

    for (uid = 0; uid < 4; uid++) {
        struct buf b = { .n = 0 };
        char name[32];

        b.b[b.n++] = (uint8_t)uid;
        op_frame(&b, 1, XEN_HYPFS_OP_get_version, NULL, NULL, 0, 0);
        for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
            op_frame(&b, (uint32_t)i + 2, XEN_HYPFS_OP_read, reads[i], NULL, 0,
                     i % 3 ? 4096 : 12);
        snprintf(name, sizeof(name), "reads-uid%d", uid);
        save("wire", name, b.b, b.n);

        b.n = 1;
        op_frame(&b, 1, XEN_HYPFS_OP_write_contents, "/params/loglvl",
                 "debug", 6, 0);
        op_frame(&b, 2, XEN_HYPFS_OP_write_contents,
                 "/params/gnttab_max_frames", "128", 4, 0);
        op_frame(&b, 3, XEN_HYPFS_OP_write_contents, "/test/types/bool", &one,
                 1, 0);
        op_frame(&b, 4, XEN_HYPFS_OP_write_contents, "/cpupool/1/sched-gran",
                 "socket", 7, 0);
        op_frame(&b, 5, XEN_HYPFS_OP_write_contents, "/domain/1/name", "n", 2,
                 0);
        snprintf(name, sizeof(name), "writes-uid%d", uid);
        save("wire", name, b.b, b.n);

        b.n = 1;
        ctl_frame(&b, 1, ctl1, sizeof(ctl1) - 1);
        ctl_frame(&b, 2, ctl2, sizeof(ctl2) - 1);
        ctl_frame(&b, 3, ctl3, sizeof(ctl3) - 1);
        op_frame(&b, 4, XEN_HYPFS_OP_read, "/cpupool/1/cpus", NULL, 0, 4096);
        ctl_frame(&b, 5, ctl4, sizeof(ctl4) - 1);
        ctl_frame(&b, 6, ctl5, sizeof(ctl5) - 1);
        snprintf(name, sizeof(name), "control-uid%d", uid);
        save("wire", name, b.b, b.n);

        /* Interface version 2: watches, events between replies. */
        b.n = 1;
        op_frame(&b, 1, XEN_HYPFS_OP_watch, "/", NULL, 0, 1);
        op_frame(&b, 2, XEN_HYPFS_OP_watch, "/params/loglvl", NULL, 0, 0);
        op_frame(&b, 3, XEN_HYPFS_OP_read_tree, "/params", NULL, 0, 65536);
        op_frame(&b, 4, XEN_HYPFS_OP_get_generation, "/domain", NULL, 0, 8);
        op_frame(&b, 5, XEN_HYPFS_OP_write_contents, "/params/loglvl",
                 "debug", 6, 0);
        ctl_frame(&b, 6, ctl1, sizeof(ctl1) - 1);
        op_frame(&b, 7, XEN_HYPFS_OP_unwatch, NULL, NULL, 0, 0);
        snprintf(name, sizeof(name), "watches-uid%d", uid);
        save("wire", name, b.b, b.n);
    }

    /* A VMM on domain 1's channel (first byte 0xf0 and up). */
    chan_mode = true;
    {
        static const uint8_t noise[] = "HYPHYPF\x01\x00 noise";
        struct hypfs_msg_hdr head = { HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                                      HYPFS_MSG_OP, 200, 9 };
        struct buf b = { .n = 0 };

        b.b[b.n++] = 0xf0;
        hello_frame(&b, 0x51);
        for (i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
            op_frame(&b, 0x52 + (uint32_t)i, XEN_HYPFS_OP_read, reads[i], NULL,
                     0, 4096);
        op_frame(&b, 0x60, XEN_HYPFS_OP_write_contents,
                 "/domain/1/guest-status", "ready", 6, 0);
        save("wire", "channel-reads", b.b, b.n);

        b.n = 1;
        put(&b, noise, sizeof(noise));
        hello_frame(&b, 7);
        put(&b, &head, sizeof(head));   /* a killed sender's head */
        put(&b, noise, sizeof(noise));
        hello_frame(&b, 8);
        op_frame(&b, 9, XEN_HYPFS_OP_watch, "/domain/1", NULL, 0, 1);
        op_frame(&b, 10, XEN_HYPFS_OP_write_contents,
                 "/domain/1/guest-status", "x", 2, 0);
        ctl_frame(&b, 11, ctl5, sizeof(ctl5) - 1);
        hello_frame(&b, 12);
        save("wire", "channel-noise", b.b, b.n);
    }
    chan_mode = false;
}

/* ---- channel: the same replies as a guest's port carries them ---- */

/* An item of fuzz-channel's stream: a frame (its CRC made there). */
static void chan_item(struct buf *b, uint16_t type, uint8_t sel,
                      uint8_t flags, const void *payload, uint16_t n)
{
    uint8_t head[6] = { 1, (uint8_t)type, sel, flags, (uint8_t)n,
                        (uint8_t)(n >> 8) };

    put(b, head, sizeof(head));
    put(b, payload, n);
}

/*
 * fuzz-client's input @cl as fuzz-channel's: the HELLO_REPLY of session
 * 1, then each reply with the seq the channel gives its request (the
 * socket's seq k is the session's (k + 1)-th); events stay events.  With
 * @noise, a predecessor's half frame and a reply with a bad CRC come first.
 */
static void channel_seed(const char *name, const struct buf *cl, bool noise)
{
    static const uint8_t junk[] = { 0, 5, 0, 'H', 'Y', 'P', 'F', 1 };
    struct hypfs_msg_hello_reply hr = { 0, 3 };
    struct buf b = { .n = 0 };
    size_t ncalls = cl->b[0] % 12, off = 1 + ncalls;
    char cname[64];

    b.b[b.n++] = (uint8_t)(ncalls << 1);
    put(&b, cl->b + 1, ncalls);
    if (noise) {
        put(&b, junk, sizeof(junk));
        chan_item(&b, HYPFS_MSG_HELLO_REPLY, 1, 1, &hr, sizeof(hr));
    }
    chan_item(&b, HYPFS_MSG_HELLO_REPLY, 1, 0, &hr, sizeof(hr));
    while (off + 2 <= cl->n) {
        uint16_t len;
        size_t end, at;

        memcpy(&len, cl->b + off, 2);
        off += 2;
        end = off + len;
        for (at = off; at + sizeof(struct hypfs_msg_hdr) <= end; ) {
            struct hypfs_msg_hdr h;

            memcpy(&h, cl->b + at, sizeof(h));
            at += sizeof(h);
            chan_item(&b, h.type, h.type == HYPFS_MSG_EVENT ? 0 :
                      (uint8_t)(h.seq + 1), 0, cl->b + at, (uint16_t)h.len);
            at += h.len;
        }
        off = end;
    }
    snprintf(cname, sizeof(cname), "%s%s", name, noise ? "-noise" : "");
    save("channel", cname, b.b, b.n);
}

/* A fuzz-client seed, and the same as fuzz-channel's, plain and noisy. */
static void save_client(const char *name, const struct buf *b)
{
    save("client", name, b->b, b->n);
    channel_seed(name, b, false);
    channel_seed(name, b, true);
}

/* ---- client: the replies to exactly what the library will ask ---- */

/* Answer one request as hypfsd would (as the control domain). */
static void reply(struct buf *b, uint32_t seq, unsigned int cmd,
                  const char *path, const void *data, uint32_t dlen,
                  uint64_t bufsize)
{
    static struct hypfsd_guest g;
    struct hypfs_msg_op op = { .cmd = cmd };
    struct hypfs_caller c = {
        0, HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL, &hypfsd_guest_ops, &g,
    };
    struct hypfs_msg_op_reply r = { 0 };
    struct hypfs_msg_hdr h = { HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION,
                               HYPFS_MSG_OP_REPLY, 0, seq };
    uint16_t len;

    if (path) {
        op.arg1 = 0x1000;
        op.arg2 = op.path_len = (uint32_t)strlen(path) + 1;
        op.arg3 = 0x100000;
    }
    op.arg4 = bufsize;
    op.data_len = dlen;
    hypfsd_guest_init(&g, &op, (const uint8_t *)path, data);
    r.ret = hypfs_do_op(fs, &c, cmd, op.arg1, op.arg2, op.arg3, op.arg4);
    r.out_len = (uint32_t)g.out_len;
    h.len = (uint32_t)(sizeof(r) + g.out_len);
    len = (uint16_t)(sizeof(h) + h.len);
    put(b, &len, 2);
    put(b, &h, sizeof(h));
    put(b, &r, sizeof(r));
    if (g.out_len)
        put(b, g.out, g.out_len);
}

/* The path and value tables of fuzz-client.c, in its order. */
static const char *const cpaths[] = {
    "/", "/params", "/params/loglvl", "/test/types/u8",
    "/test/types/gzip_string", "/buildinfo/config", "/domain",
    "/test/types/blob",
};
static const char *const cvalues[] = {
    "1", "0x10", "-5", "debug", "yes", "", "18446744073709551615", "x",
};

static void client_seeds(void)
{
    unsigned int fn, p;

    for (fn = 0; fn < 5; fn++)
        for (p = 0; p < 8; p++) {
            struct buf b = { .n = 0 };
            const char *path = cpaths[p];
            char name[32];
            uint32_t seq = 1;
            unsigned int opcode;

            /* fuzz-calls.h: call op % 9 on path (op >> 3) % 8. */
            for (opcode = p << 3; opcode % 9 != fn || (opcode >> 3) % 8 != p;
                 opcode++)
                ;

            b.b[b.n++] = 1;         /* one call */
            b.b[b.n++] = (uint8_t)opcode;
            reply(&b, seq++, XEN_HYPFS_OP_get_version, NULL, NULL, 0, 0);
            if (fn == 3) {
                /* write: the direntry, then the write itself */
                const char *v = cvalues[(opcode >> 6) % 8];
                struct xen_hypfs_direntry e;
                uint8_t head[12], data[64] = { 16 };

                reply(&b, seq++, XEN_HYPFS_OP_read, path, NULL, 0, 12);
                memcpy(head, b.b + b.n - 12, 12);
                memcpy(&e, head, sizeof(e));
                if (e.type == XEN_HYPFS_TYPE_STRING)
                    reply(&b, seq++, XEN_HYPFS_OP_write_contents, path, v,
                          (uint32_t)strlen(v) + 1, strlen(v) + 1);
                else
                    reply(&b, seq++, XEN_HYPFS_OP_write_contents, path, data,
                          e.content_len < sizeof(data) ? e.content_len : 8,
                          e.content_len < sizeof(data) ? e.content_len : 8);
            } else {
                reply(&b, seq++, XEN_HYPFS_OP_read, path, NULL, 0, 4096);
            }
            snprintf(name, sizeof(name), "call%u-path%u", fn, p);
            save_client(name, &b);
        }
}

/* An event frame (a watch fired) after what @b holds, in the same reply. */
static void event_after(struct buf *b, size_t chunk_at, uint64_t token,
                        uint64_t gen, int32_t status)
{
    struct hypfs_msg_event ev = { token, gen, status, 0 };
    struct hypfs_msg_hdr h;
    uint16_t len;

    hypfs_msg_hdr_init(&h, HYPFS_MSG_EVENT, sizeof(ev), 0);
    memcpy(&len, b->b + chunk_at, 2);
    len = (uint16_t)(len + sizeof(h) + sizeof(ev));
    memcpy(b->b + chunk_at, &len, 2);
    put(b, &h, sizeof(h));
    put(b, &ev, sizeof(ev));
}

/*
 * Interface version 2 (fuzz-client's calls 5-8): read_tree, get_generation,
 * watch/unwatch, read_events, with event frames between replies.
 */
static void client_v2_seeds(void)
{
    unsigned int fn, p, op;

    for (fn = 5; fn < 9; fn++)
        for (p = 0; p < 8; p++) {
            struct buf b = { .n = 0 };
            const char *path = cpaths[p];
            char name[32];
            uint32_t seq = 1;
            size_t at;

            /* Replies that fit a seed's 16-bit lengths. */
            if (!strcmp(path, "/") || !strcmp(path, "/buildinfo/config"))
                continue;
            for (op = 0; op < 256 && (op % 9 != fn || (op >> 3) % 8 != p);
                 op++)
                ;
            if (op == 256)
                continue;
            b.b[b.n++] = 1;
            b.b[b.n++] = (uint8_t)op;
            /* The open's get_version, then the call's own version check. */
            reply(&b, seq++, XEN_HYPFS_OP_get_version, NULL, NULL, 0, 0);
            at = b.n;
            reply(&b, seq++, XEN_HYPFS_OP_get_version, NULL, NULL, 0, 0);
            if (fn == 8) {
                /* No request: the events are there already. */
                event_after(&b, at, 1, 7, 0);
                event_after(&b, at, 2, 0, -ENOENT);
            } else if (fn == 5) {
                reply(&b, seq++, XEN_HYPFS_OP_read_tree, path, NULL, 0,
                      64 * 1024 + 16);
            } else if (fn == 6) {
                reply(&b, seq++, XEN_HYPFS_OP_get_generation, path, NULL, 0,
                      8);
            } else {
                at = b.n;
                reply(&b, seq++, XEN_HYPFS_OP_get_version, NULL, NULL, 0, 0);
                event_after(&b, at, op & 3, 42, 0);
            }
            snprintf(name, sizeof(name), "v2-call%u-path%u", fn, p);
            save_client(name, &b);
        }
}

/* ---- values ---- */

static void values_seeds(void)
{
    static const char *const lib[] = {
        "0", "1", "255", "256", "-1", "0x10", "017", "08", "", " 5", "5 ",
        "18446744073709551615", "18446744073709551616", "-9223372036854775808",
        "yes", "no", "on", "enable", "maybe", "ten", "1e3",
    };
    static const char *const daemon[] = {
        "debug", "all/info", "loud", "none/none", "error/", "/info",
        "boot", "yes", "raw", "x",
    };
    static const char *const cmdlines[] = {
        "loglvl=all gnttab_max_frames=64",
        "no-sync_console sync_console=yes \"guest_loglvl=info/debug\"",
        "gnttab_max_frames=0x10000 sched_credit_tslice_ms=1000 unknown=1",
        "console_timestamps=datems loglvl=\"all",
        "gnttab_max_maptrack_frames=1048577",
        "pcid=no-xpti conswitch=bx crash-debug-panic=0 ept=exec-sp=1",
        "global-pages no-global-pages gnttab_max_frames=",
    };
    uint8_t seed[128];
    size_t i, k;
    char name[32];

    for (i = 0; i < sizeof(lib) / sizeof(lib[0]); i++)
        for (k = 0; k < 4; k++) {
            seed[0] = 0;
            seed[1] = (uint8_t)(k == 3 ? XEN_HYPFS_TYPE_BOOL :
                                k == 2 ? XEN_HYPFS_TYPE_INT : XEN_HYPFS_TYPE_UINT);
            seed[2] = (uint8_t)(k % 4);
            memcpy(seed + 3, lib[i], strlen(lib[i]));
            snprintf(name, sizeof(name), "lib-%zu-%zu", i, k);
            save("values", name, seed, 3 + strlen(lib[i]));
        }
    for (i = 0; i < sizeof(daemon) / sizeof(daemon[0]); i++) {
        seed[0] = 1;
        seed[1] = (uint8_t)(i % 3);
        seed[2] = 0;
        memcpy(seed + 3, daemon[i], strlen(daemon[i]) + 1);
        snprintf(name, sizeof(name), "param-%zu", i);
        save("values", name, seed, 4 + strlen(daemon[i]));
    }
    for (i = 0; i < sizeof(cmdlines) / sizeof(cmdlines[0]); i++) {
        seed[0] = 2;
        seed[1] = seed[2] = 0;
        memcpy(seed + 3, cmdlines[i], strlen(cmdlines[i]));
        snprintf(name, sizeof(name), "cmdline-%zu", i);
        save("values", name, seed, 3 + strlen(cmdlines[i]));
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }
    outdir = argv[1];
    log_threshold = L_ERR - 1;
    if (model_init())
        return 1;
    params_reset();
    if (hypfs_new(&fs) || fstree_build(fs) || fstree_add_test(fs))
        return 1;
    wire_seeds();
    client_seeds();
    client_v2_seeds();
    values_seeds();
    hypfs_free(fs);
    model_fini();
    return 0;
}
