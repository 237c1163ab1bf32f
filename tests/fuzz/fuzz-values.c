/*
 * Fuzz target (d): parsing values for writes, on both sides.
 *
 * Library: xenhypfs_write() of a fuzzed string to an entry of a fuzzed
 * type and size, answered by a scripted daemon.  What the library sends is
 * read back off the socket and checked: a write goes out only when the
 * string is a clean value of the entry's type, as exactly the bytes of that
 * value and no others; otherwise nothing is sent and errno says why.
 *
 * Daemon: fuzzed strings written to hypfsd's runtime parameters through
 * the hypercall, and a fuzzed boot command line: a refused write changes
 * nothing, an accepted one reads back as a valid value, and whatever the
 * command line says, every parameter holds a valid value afterwards.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake-daemon.h"
#include "hypfsd.h"
#include "libxenhypfs-internal.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_threshold = L_ERR - 1;
    return 0;
}

/* ---- Library side ---- */

/* A reply frame for request @seq into @buf; its length. */
static size_t make_reply(uint8_t *buf, uint32_t seq, int64_t ret,
                         const void *out, uint32_t out_len)
{
    struct hypfs_msg_hdr h = {
        HYPFS_MSG_MAGIC, HYPFS_MSG_VERSION, HYPFS_MSG_OP_REPLY,
        (uint32_t)(sizeof(struct hypfs_msg_op_reply) + out_len), seq,
    };
    struct hypfs_msg_op_reply r = { ret, out_len, 0 };

    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &r, sizeof(r));
    if (out_len)
        memcpy(buf + sizeof(h) + sizeof(r), out, out_len);
    return sizeof(h) + sizeof(r) + out_len;
}

/*
 * Is @s, as a whole, a number strtoull/strtoll accepts, with white space
 * allowed after it as before it?
 */
static bool clean_number(const char *s)
{
    char *end;

    if (!*s)
        return false;
    errno = 0;
    (void)strtoull(s, &end, 0);
    if (end == s)
        return false;
    while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
        end++;
    return !*end;
}

static void library_write(uint8_t type, uint8_t size, const char *val)
{
    static const uint32_t sizes[] = { 1, 2, 4, 8, 3, 0 };
    struct xen_hypfs_direntry e = { 0 };
    static struct fake_daemon f;
    static uint8_t replies[3][64];
    const uint8_t *chunk[3] = { replies[0], replies[1], replies[2] };
    size_t chunk_len[3];
    xenhypfs_handle *h;
    const uint8_t *frames = f.requests;
    size_t got, off;
    int fd, ret, err;
    unsigned int nframes = 0;
    bool wrote = false;
    uint8_t sent[64];
    uint32_t sent_len = 0;

    e.type = type % 6;
    e.encoding = (type & 0x40) ? XEN_HYPFS_ENC_GZIP : XEN_HYPFS_ENC_PLAIN;
    e.content_len = sizes[size % 6];
    e.max_write_len = (type & 0x80) ? 0 : 64;
    chunk_len[0] = make_reply(replies[0], 1, 1, NULL, 0);          /* version */
    chunk_len[1] = make_reply(replies[1], 2, -ENOBUFS, &e, sizeof(e));
    chunk_len[2] = make_reply(replies[2], 3, 0, NULL, 0);          /* the write */
    f.chunk = chunk;
    f.chunk_len = chunk_len;
    f.nchunks = 3;
    fd = fake_daemon_start(&f);
    if (fd < 0)
        abort();
    h = xenhypfs_open_socket(fd);
    CHECK(h);
    errno = 0;
    ret = xenhypfs_write(h, "/x", val);
    err = errno;
    xenhypfs_close(h);
    fake_daemon_stop(&f);

    /* What did the library send? */
    got = f.requests_len;
    for (off = 0; off + sizeof(struct hypfs_msg_hdr) <= got; ) {
        struct hypfs_msg_hdr fh;
        struct hypfs_msg_op op;

        memcpy(&fh, frames + off, sizeof(fh));
        CHECK(fh.magic == HYPFS_MSG_MAGIC && fh.type == HYPFS_MSG_OP);
        memcpy(&op, frames + off + sizeof(fh), sizeof(op));
        nframes++;
        if (op.cmd == XEN_HYPFS_OP_write_contents) {
            wrote = true;
            CHECK(op.data_len == op.arg4 && op.data_len <= sizeof(sent));
            sent_len = op.data_len;
            memcpy(sent, frames + off + sizeof(fh) + sizeof(op) + op.path_len,
                   sent_len);
        }
        off += sizeof(fh) + fh.len;
    }
    CHECK(off == got);

    if (ret) {
        CHECK(ret == -1 && err && !wrote);
        return;
    }
    CHECK(wrote && e.max_write_len && !e.encoding);
    switch (e.type) {
    case XEN_HYPFS_TYPE_STRING:
        CHECK(sent_len == strlen(val) + 1 && !memcmp(sent, val, sent_len));
        break;
    case XEN_HYPFS_TYPE_BOOL:
        CHECK(sent_len == 1 && sent[0] <= 1);
        break;
    case XEN_HYPFS_TYPE_UINT: {
        uint64_t v = 0;

        CHECK(sent_len == e.content_len && clean_number(val));
        CHECK(!strchr(val, '-'));
        memcpy(&v, sent, sent_len);     /* little-endian */
        CHECK(v == strtoull(val, NULL, 0));
        break;
    }
    case XEN_HYPFS_TYPE_INT: {
        int64_t v = 0;

        CHECK(sent_len == e.content_len && clean_number(val));
        memcpy(&v, sent, sent_len);
        if (sent_len < 8 && (sent[sent_len - 1] & 0x80))
            v |= (int64_t)(~UINT64_C(0) << (8 * sent_len));
        CHECK(v == strtoll(val, NULL, 0));
        break;
    }
    default:
        CHECK(!"blob or dir written");
    }
}

/* ---- Daemon side ---- */

static long op(struct hypfs *fs, unsigned int cmd, const char *path,
               const void *buf, size_t len)
{
    struct hypfs_caller c = {
        0, HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL, &hypfs_local_mem, NULL,
    };

    return hypfs_do_op(fs, &c, cmd, (uintptr_t)path, strlen(path) + 1,
                       (uintptr_t)buf, len);
}

static void read_param(struct hypfs *fs, const char *path, void *out, size_t n)
{
    uint8_t buf[256];
    struct xen_hypfs_direntry e;

    CHECK(!op(fs, XEN_HYPFS_OP_read, path, buf, sizeof(buf)));
    memcpy(&e, buf, sizeof(e));
    CHECK(e.content_len <= n);
    memcpy(out, buf + 12, e.content_len);
}

/* As Xen shows it: both levels, the second never below the first. */
static bool valid_level(const char *s)
{
    static const char *const lv[] = {
        "none", "error", "warning", "info", "all",
    };
    const char *slash = strchr(s, '/');
    size_t i, j, len = slash ? (size_t)(slash - s) : 0;

    if (!slash)
        return false;
    for (i = 0; i < 5; i++)
        if (strlen(lv[i]) == len && !strncmp(s, lv[i], len))
            break;
    for (j = 0; j < 5; j++)
        if (!strcmp(slash + 1, lv[j]))
            break;
    return i < 5 && j < 5 && j >= i;
}

/* A gnttab limit as Xen shows it: decimal, at most INT_MAX. */
static bool valid_frames(const char *s)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    return *s >= '0' && *s <= '9' && !*end && !errno && v <= 2147483647ul;
}

static void check_params(struct hypfs *fs)
{
    static const char *const stamps[] = { "none", "date", "datems", "boot", "raw" };
    static const char *const pcids[] = { "off", "on", "xpti", "noxpti" };
    char v[256];
    int32_t i;
    size_t k;
    bool ok = false;

    memset(v, 0, sizeof(v));
    read_param(fs, "/params/loglvl", v, sizeof(v));
    CHECK(valid_level(v));
    read_param(fs, "/params/guest_loglvl", v, sizeof(v));
    CHECK(valid_level(v));
    read_param(fs, "/params/console_timestamps", v, sizeof(v));
    for (k = 0; k < 5; k++)
        ok |= !strcmp(v, stamps[k]);
    CHECK(ok);
    read_param(fs, "/params/gnttab_max_frames", v, sizeof(v));
    CHECK(valid_frames(v));
    read_param(fs, "/params/gnttab_max_maptrack_frames", v, sizeof(v));
    CHECK(valid_frames(v));
    read_param(fs, "/params/pcid", v, sizeof(v));
    for (ok = false, k = 0; k < 4; k++)
        ok |= !strcmp(v, pcids[k]);
    CHECK(ok);
    read_param(fs, "/params/conswitch", v, sizeof(v));
    CHECK(strlen(v) <= 2);
    read_param(fs, "/params/ept", v, sizeof(v));
    CHECK(!*v);
    read_param(fs, "/params/global-pages", v, 1);
    CHECK((uint8_t)v[0] <= 1);
    read_param(fs, "/params/sched_credit_tslice_ms", &i, 4);
    CHECK(i >= 1 && i <= 1000);
    read_param(fs, "/params/sync_console", v, 1);
    CHECK((uint8_t)v[0] <= 1);
}

static void daemon_values(struct hypfs *fs, uint8_t which, const uint8_t *p,
                          size_t n)
{
    static const char *const params[] = {
        "/params/loglvl", "/params/guest_loglvl", "/params/console_timestamps",
        "/params/gnttab_max_frames", "/params/gnttab_max_maptrack_frames",
        "/params/sched_credit_tslice_ms", "/params/sync_console",
        "/params/pcid", "/params/conswitch", "/params/ept",
        "/params/global-pages", "/params/crash-debug-panic",
    };
    const char *path = params[which % (sizeof(params) / sizeof(params[0]))];
    uint8_t before[256], after[256];
    long r;

    CHECK(!op(fs, XEN_HYPFS_OP_read, path, before, sizeof(before)));
    r = op(fs, XEN_HYPFS_OP_write_contents, path, p, n);
    CHECK(!op(fs, XEN_HYPFS_OP_read, path, after, sizeof(after)));
    if (r) {
        struct xen_hypfs_direntry e;

        memcpy(&e, before, sizeof(e));
        CHECK(!memcmp(before, after, 12 + e.content_len));
    }
    check_params(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hypfs *fs;
    char *s;
    char err[256];

    if (size < 3)
        return 0;
    s = malloc(size - 2);
    if (!s)
        return 0;
    memcpy(s, data + 3, size - 3);
    s[size - 3] = '\0';

    switch (data[0] % 3) {
    case 0:
        if (strlen(s) < 60)
            library_write(data[1], data[2], s);
        break;
    case 1:
        if (model_init())
            abort();
        params_reset();
        if (hypfs_new(&fs) || fstree_build(fs))
            abort();
        daemon_values(fs, data[1], data + 3, size - 3);
        hypfs_free(fs);
        model_fini();
        break;
    default:
        if (model_init())
            abort();
        params_reset();
        (void)params_cmdline(s, err, sizeof(err));
        if (hypfs_new(&fs) || fstree_build(fs))
            abort();
        check_params(fs);
        hypfs_free(fs);
        model_fini();
    }
    free(s);
    return 0;
}
