/*
 * A hostile daemon against libxenhypfs's memory: replies as large as the
 * protocol allows, a listing of millions of tiny records, a gzip bomb.
 * SECURITY.md promises that no reply makes the library hold more than
 * HYPFS_MSG_REPLY_MAX (256 MiB) at once.  Each case runs in a child of
 * its own, whose peak resident size (VmHWM: the buffers are touched) must
 * stay under that plus a margin for the program itself.
 *
 * Run in the plain build only (the hostile suite): sanitizers change what
 * a process's peak size means.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <hypfs/msg.h>

#include "xenhypfs-ext.h"

#define MARGIN      (24u << 20)     /* the program, libc, zlib, stacks */

enum kind { BIG_BLOB, TINY_RECORDS, GZIP_BOMB };

struct fake {
    int fd;
    enum kind kind;
    uint8_t *content;
    size_t content_len;
};

static int read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;

    while (n) {
        ssize_t r = read(fd, b, n);

        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n) {
        ssize_t w = write(fd, b, n);

        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answer every request: get_version 1, reads with the content. */
static void serve(struct fake *f)
{
    uint8_t req[sizeof(struct hypfs_msg_op) + 2048];

    for (;;) {
        struct hypfs_msg_hdr h;
        struct hypfs_msg_op op;
        struct hypfs_msg_op_reply rep = { 0 };
        struct xen_hypfs_direntry d = { 0 };
        size_t out;

        if (read_all(f->fd, &h, sizeof(h)) || h.len > sizeof(req) ||
            read_all(f->fd, req, h.len))
            break;
        memcpy(&op, req, sizeof(op));
        d.type = f->kind == TINY_RECORDS ? XEN_HYPFS_TYPE_DIR :
                 f->kind == GZIP_BOMB ? XEN_HYPFS_TYPE_STRING :
                 XEN_HYPFS_TYPE_BLOB;
        d.encoding = f->kind == GZIP_BOMB ? XEN_HYPFS_ENC_GZIP : 0;
        d.content_len = (uint32_t)f->content_len;
        if (op.cmd == XEN_HYPFS_OP_get_version) {
            rep.ret = 1;
            out = 0;
        } else if (op.arg4 < sizeof(d) + f->content_len) {
            rep.ret = -ENOBUFS;
            out = sizeof(d);
        } else {
            out = sizeof(d) + f->content_len;
        }
        rep.out_len = (uint32_t)out;
        h.type = HYPFS_MSG_OP_REPLY;
        h.len = (uint32_t)(sizeof(rep) + out);
        if (write_all(f->fd, &h, sizeof(h)) ||
            write_all(f->fd, &rep, sizeof(rep)) ||
            (out && write_all(f->fd, &d, sizeof(d))) ||
            (out > sizeof(d) && write_all(f->fd, f->content, f->content_len)))
            break;
    }
}

static long peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmHWM:", 6))
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

/* The fake daemon's content for @kind (in its own process). */
static void make_content(struct fake *f)
{
    if (f->kind == GZIP_BOMB) {
        /* 64 MiB of compressed zeros: gigabytes inflated. */
        z_stream z = { 0 };
        size_t in = 64u << 20;
        uint8_t *zeros = calloc(1, 1u << 20);
        int i;

        f->content = malloc(in);
        if (!f->content || !zeros)
            _exit(2);
        deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        z.next_out = f->content;
        z.avail_out = (uInt)in;
        for (i = 0; i < 4096 && z.avail_out > 1024; i++) {
            z.next_in = zeros;
            z.avail_in = 1u << 20;
            deflate(&z, Z_NO_FLUSH);
        }
        f->content_len = in - z.avail_out;
        free(zeros);
        return;
    }
    /* As large as a reply may be. */
    f->content_len = HYPFS_MSG_REPLY_MAX - sizeof(struct xen_hypfs_direntry);
    f->content = calloc(1, f->content_len);
    if (!f->content)
        _exit(2);
    if (f->kind == TINY_RECORDS) {
        /* Records of an empty name, 18 bytes each, chained to the end. */
        size_t off;
        uint16_t next = 18;

        for (off = 0; off + 36 <= f->content_len; off += 18)
            memcpy(f->content + off + 12, &next, 2);
    }
}

/*
 * One case: the library in a fresh child, the fake daemon in another.
 * The library's peak growth during the call (KiB), or -1.
 */
static long run_case(enum kind kind, const char *what)
{
    int p[2];
    pid_t pid;
    long peak = -1;

    if (pipe(p))
        return -1;
    pid = fork();
    if (!pid) {
        struct fake f = { .kind = kind };
        struct xenhypfs_dirent *d;
        xenhypfs_handle *h;
        unsigned int n;
        void *r = NULL;
        long before;
        int sv[2];

        close(p[0]);
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
            _exit(2);
        if (!fork()) {
            close(sv[0]);
            f.fd = sv[1];
            make_content(&f);
            serve(&f);
            _exit(0);
        }
        close(sv[1]);
        h = xenhypfs_open_socket(sv[0]);
        if (!h)
            _exit(2);
        before = peak_kib();
        if (kind == BIG_BLOB)
            r = xenhypfs_read_raw(h, "/x", &d);
        else if (kind == TINY_RECORDS)
            r = xenhypfs_readdir(h, "/x", &n);
        else
            r = xenhypfs_read(h, "/x");
        before = peak_kib() - before;
        fprintf(stderr, "  %s: %s%s\n", what, r ? "returned" : "refused: ",
                r ? "" : strerror(errno));
        xenhypfs_close(h);
        if (write(p[1], &before, sizeof(before)) != sizeof(before))
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], &peak, sizeof(peak)) != sizeof(peak))
        peak = -1;
    close(p[0]);
    while (wait(NULL) > 0)
        ;
    return peak;
}

int main(void)
{
    static const struct {
        enum kind kind;
        const char *what;
    } cases[] = {
        { BIG_BLOB, "a 256 MiB blob" },
        { TINY_RECORDS, "a 256 MiB listing of 18-byte records" },
        { GZIP_BOMB, "a gzip bomb (64 MiB inflating to gigabytes)" },
    };
    long bound = (long)((HYPFS_MSG_REPLY_MAX + MARGIN) >> 10);
    int failures = 0;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long peak = run_case(cases[i].kind, cases[i].what);

        printf("%-46s the library's peak grew %ld MiB (bound %ld MiB)\n",
               cases[i].what, peak < 0 ? -1 : peak / 1024, bound / 1024);
        if (peak < 0 || peak > bound)
            failures++;
    }
    return failures ? 1 : 0;
}
