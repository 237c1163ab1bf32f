/*
 * The daemon's side of the wire protocol: taking requests apart, checking
 * every length before trusting it, and modelling the caller's memory for
 * the core.  (Replies are built in server.c; the header in src/wire.)
 *
 * Every length in a request is checked against the others and against the
 * bounds of msg.h before anything is read through it (the order ntpd's
 * imsg code uses: header length first, then payload).  The guest model
 * reproduces what the hypervisor would see: the path and data the caller
 * could supply, and nothing else, at the addresses the caller named.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hypfsd.h"

int hypfsd_check_request_hdr(const struct hypfs_msg_hdr *hdr)
{
    if (hypfs_msg_hdr_check(hdr))
        return -EPROTO;
    switch (hdr->type) {
    case HYPFS_MSG_OP:
        if (hdr->len < sizeof(struct hypfs_msg_op) ||
            hdr->len > HYPFS_MSG_REQ_MAX)
            return -EPROTO;
        return 0;
    case HYPFS_MSG_CTL:
        if (!hdr->len || hdr->len > HYPFS_MSG_CTL_MAX)
            return -EPROTO;
        return 0;
    default:
        return -EPROTO;
    }
}

int hypfsd_parse_op(const void *payload, size_t len, struct hypfs_msg_op *op,
                 const uint8_t **path, const uint8_t **data)
{
    if (len < sizeof(*op))
        return -EPROTO;
    memcpy(op, payload, sizeof(*op));
    if (op->flags)
        return -EPROTO;
    if (op->path_len > XEN_HYPFS_MAX_PATHLEN || op->path_len > op->arg2)
        return -EPROTO;
    if (op->data_len > HYPFS_MSG_DATA_MAX || op->data_len > op->arg4)
        return -EPROTO;
    if (len != sizeof(*op) + (size_t)op->path_len + op->data_len)
        return -EPROTO;
    *path = (const uint8_t *)payload + sizeof(*op);
    *data = *path + op->path_len;
    return 0;
}

void hypfsd_guest_init(struct hypfsd_guest *g, const struct hypfs_msg_op *op,
                    const uint8_t *path, const uint8_t *data)
{
    g->arg1 = op->arg1;
    g->arg3 = op->arg3;
    g->arg4 = op->arg4;
    g->path = path;
    g->path_len = op->path_len;
    g->data = data;
    g->data_len = op->data_len;
    g->out_len = 0;
}

void hypfsd_guest_fini(struct hypfsd_guest *g)
{
    free(g->out);
    budget_uncharge(g->domain, g->out_charged);
    g->out_charged = 0;
    g->out = NULL;
    g->out_cap = g->out_len = 0;
}

/* Is [addr, addr + len) inside [base, base + avail)?  Overflow-safe. */
static bool in_range(uint64_t addr, size_t len, uint64_t base, uint64_t avail,
                     uint64_t *off)
{
    if (addr < base)
        return false;
    *off = addr - base;
    return *off <= avail && len <= avail - *off;
}

static int guest_copy_from(void *ctx, void *dst, uint64_t addr, size_t len)
{
    struct hypfsd_guest *g = ctx;
    uint64_t off;

    if (in_range(addr, len, g->arg1, g->path_len, &off)) {
        memcpy(dst, g->path + off, len);
        return 0;
    }
    if (in_range(addr, len, g->arg3, g->data_len, &off)) {
        memcpy(dst, g->data + off, len);
        return 0;
    }
    return -EFAULT;
}

static int guest_copy_to(void *ctx, uint64_t addr, const void *src, size_t len)
{
    struct hypfsd_guest *g = ctx;
    uint64_t off;
    size_t end;

    if (!in_range(addr, len, g->arg3, g->arg4, &off))
        return -EFAULT;
    if (off + len > HYPFS_MSG_REPLY_MAX)
        return -EFAULT;    /* cannot be sent back: as good as unmapped */
    end = (size_t)off + len;
    if (end > g->out_cap) {
        size_t cap = g->out_cap ? g->out_cap : 4096;
        uint8_t *out;

        while (cap < end)
            cap *= 2;
        /*
         * A reply is memory its domain makes us hold: counted before it
         * is taken (its size and the allocator's header), then as taken.
         */
        if (cap + sizeof(size_t) > g->out_charged) {
            if (budget_charge(g->domain,
                              cap + sizeof(size_t) - g->out_charged))
                return -ENOMEM;
            g->out_charged = cap + sizeof(size_t);
        }
        out = realloc(g->out, cap);
        if (!out)
            return -ENOMEM;     /* our buffer, not the caller's memory */
        g->out = out;
        g->out_cap = cap;
        if (budget_cost(out) > g->out_charged &&
            !budget_charge(g->domain, budget_cost(out) - g->out_charged))
            g->out_charged = budget_cost(out);
    }
    /* The core writes front to back; any gap reads as zeroes. */
    if (off > g->out_len)
        memset(g->out + g->out_len, 0, (size_t)off - g->out_len);
    memcpy(g->out + off, src, len);
    if (end > g->out_len)
        g->out_len = end;
    return 0;
}

const struct hypfs_guest_ops hypfsd_guest_ops = {
    .copy_from = guest_copy_from,
    .copy_to = guest_copy_to,
};

int hypfsd_parse_ctl(const char *payload, size_t len, const char **argv, int max)
{
    size_t off = 0;
    int n = 0;

    if (!len || payload[len - 1] != '\0')
        return -EPROTO;
    while (off < len) {
        if (n == max)
            return -EPROTO;
        argv[n++] = payload + off;
        off += strlen(payload + off) + 1;
    }
    return n;
}
