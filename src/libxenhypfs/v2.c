/*
 * libxenhypfs, VERS_1.1: interface version 2 (a subtree in one read,
 * generations, watches and their events).
 *
 * Against a version-1 hypervisor every function fails with EOPNOTSUPP
 * (the version is asked once per connection).  Replies are untrusted: a
 * subtree's records are checked one by one (lengths, NULs, padding, their
 * count), and anything out of place is EIO.
 *
 * Events arrive on hypfsd's socket between replies; the client queues
 * those that come while a reply is awaited.  The descriptor handed out
 * is an epoll set of the socket and an eventfd that says "queued", so it
 * stays the same across reconnections and never misses an event that was
 * read early.  The library keeps every watch (token, path, last
 * generation) and, after a reconnection (hypfsd restarted), arms them
 * again on the new connection and reports a gap for each.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <hypfs/abi.h>

#include "libxenhypfs-internal.h"

#define TREE_FIRST      (64u * 1024u)
#define TREE_ATTEMPTS   8

/* The interface version (lock held): asked once per connection. */
static int version_locked(xenhypfs_handle *h)
{
    long v;

    if (h->version && (h->privcmd_fd >= 0 ||
                       h->version_epoch == h->client.epoch))
        return h->version;
    v = hypercall_locked(h, XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0);
    if (v < 0)
        return (int)v;
    h->version = (int)v;
    h->version_epoch = h->client.epoch;
    return h->version;
}

/* 0 if the hypervisor speaks version 2, else -1 with errno. */
static int need_v2_locked(xenhypfs_handle *h)
{
    int v = version_locked(h);

    if (v < 0) {
        errno = -v;
        return -1;
    }
    if (v < 2) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return 0;
}

/* ---- A subtree ---- */

/*
 * Check the records at @recs (@len bytes, @n of them) and fill @out.
 * 0, or -1 (EIO) if anything does not add up.
 */
static int parse_tree(unsigned char *recs, size_t len, size_t n,
                      struct xenhypfs_tree_entry *out)
{
    size_t off = 0, i;

    for (i = 0; i < n; i++) {
        struct xen_hypfs_treeentry r;
        size_t ppad, clen, cpad;
        char *path;

        if (len - off < sizeof(r))
            return -1;
        memcpy(&r, recs + off, sizeof(r));
        if (!r.path_len || r.pad)
            return -1;
        ppad = XEN_HYPFS_TREE_PAD(r.path_len);
        clen = r.e.type == XEN_HYPFS_TYPE_DIR ? 0 : r.e.content_len;
        cpad = XEN_HYPFS_TREE_PAD(clen);
        if (r.rec_len != sizeof(r) + ppad + cpad ||
            r.rec_len > len - off)
            return -1;
        path = (char *)recs + off + sizeof(r);
        if (memchr(path, '\0', r.path_len) != path + r.path_len - 1)
            return -1;
        /* The first is the top, and only the first. */
        if ((i == 0) != (r.path_len == 1) || (i == 0) != (r.depth == 0))
            return -1;
        memset(&out[i], 0, sizeof(out[i]));
        out[i].dirent.name = path;
        lib_set_attrs(&r.e, &out[i].dirent);
        /*
         * A directory has no content in the record; one that would read
         * as a blob (an unknown encoding) would claim content it has not:
         * a broken peer.
         */
        if ((out[i].dirent.type == xenhypfs_type_dir) !=
            (r.e.type == XEN_HYPFS_TYPE_DIR))
            return -1;
        out[i].content = r.e.type == XEN_HYPFS_TYPE_DIR ? NULL :
                         recs + off + sizeof(r) + ppad;
        out[i].generation = r.gen;
        out[i].depth = r.depth;
        off += r.rec_len;
    }
    return off == len ? 0 : -1;
}

struct xenhypfs_tree_entry *xenhypfs_read_tree(xenhypfs_handle *h,
                                               const char *path,
                                               unsigned int *num_entries)
{
    size_t recs_len = TREE_FIRST, slots = TREE_FIRST / 32;
    struct xen_hypfs_treehdr hdr;
    unsigned char *buf = NULL;
    long plen = lib_path_size(h, path), ret = -ENOBUFS;
    int attempt, err;

    if (plen < 0)
        return NULL;
    if (!num_entries) {
        errno = EINVAL;
        return NULL;
    }
    pthread_mutex_lock(&h->lock);
    if (need_v2_locked(h)) {
        err = errno;
        pthread_mutex_unlock(&h->lock);
        errno = err;
        return NULL;
    }
    for (attempt = 0; attempt < TREE_ATTEMPTS && ret == -ENOBUFS; attempt++) {
        size_t head = slots * sizeof(struct xenhypfs_tree_entry);

        free(buf);
        /* The entries first, then the header and records they point to. */
        buf = malloc(head + sizeof(hdr) + recs_len);
        if (!buf) {
            ret = -ENOMEM;
            break;
        }
        ret = hypercall_locked(h, XEN_HYPFS_OP_read_tree, path, (size_t)plen,
                               buf + head, sizeof(hdr) + recs_len);
        if (ret && ret != -ENOBUFS)
            break;
        memcpy(&hdr, buf + head, sizeof(hdr));
        if (hdr.e.content_len > HYPFS_MSG_REPLY_MAX - sizeof(hdr) ||
            (size_t)hdr.nr_entries > hdr.e.content_len / 32 + 1) {
            ret = -EIO;
            break;
        }
        if (ret == -ENOBUFS) {
            if (hdr.e.content_len <= recs_len) {
                ret = -EIO;     /* too small, yet it would fit? */
                break;
            }
            recs_len = hdr.e.content_len;
            slots = hdr.nr_entries + 16;
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (!ret) {
        size_t head = slots * sizeof(struct xenhypfs_tree_entry);

        if (hdr.e.content_len > recs_len || hdr.nr_entries > slots ||
            !hdr.nr_entries ||
            parse_tree(buf + head + sizeof(hdr), hdr.e.content_len,
                       hdr.nr_entries, (struct xenhypfs_tree_entry *)buf))
            ret = -EIO;
    }
    if (ret) {
        free(buf);
        errno = (int)(ret == -ENOBUFS ? EAGAIN : ret > 0 ? EIO : -ret);
        return NULL;
    }
    *num_entries = hdr.nr_entries;
    return (struct xenhypfs_tree_entry *)buf;
}

int xenhypfs_get_generation(xenhypfs_handle *h, const char *path,
                            uint64_t *generation)
{
    long plen = lib_path_size(h, path), ret;
    uint64_t g = 0;

    if (plen < 0)
        return -1;
    if (!generation) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&h->lock);
    ret = need_v2_locked(h) ? -errno
                            : hypercall_locked(h, XEN_HYPFS_OP_get_generation,
                                               path, (size_t)plen, &g,
                                               sizeof(g));
    pthread_mutex_unlock(&h->lock);
    if (ret) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    *generation = g;
    return 0;
}

int xenhypfs_write_limit(xenhypfs_handle *h, const char *path,
                         unsigned int *max_write_len)
{
    struct xen_hypfs_direntry e = { 0 };
    long plen = lib_path_size(h, path), ret;

    if (plen < 0)
        return -1;
    if (!max_write_len) {
        errno = EINVAL;
        return -1;
    }
    /* A read with room for the direntry only: -ENOBUFS still writes it. */
    ret = hypercall(h, XEN_HYPFS_OP_read, path, (size_t)plen, &e, sizeof(e));
    if (ret && ret != -ENOBUFS) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    *max_write_len = e.max_write_len;
    return 0;
}

/* ---- Watches ---- */

static struct lib_watch *find_watch(xenhypfs_handle *h, uint64_t token)
{
    size_t i;

    for (i = 0; i < h->nwatches; i++)
        if (h->watches[i].token == token)
            return &h->watches[i];
    return NULL;
}

static void drop_watch(xenhypfs_handle *h, struct lib_watch *w)
{
    free(w->path);
    *w = h->watches[--h->nwatches];
}

/* Queue an event to report before the client's (lock held). */
static void add_pending(xenhypfs_handle *h, uint64_t token, uint64_t gen,
                        int status, unsigned int flags)
{
    struct xenhypfs_event *g = realloc(h->pending,
                                       (h->npending + 1) * sizeof(*g));

    /* Without memory the event is lost: it is only ever a "read again". */
    if (!g)
        return;
    h->pending = g;
    g[h->npending].token = token;
    g[h->npending].generation = status ? 0 : gen;
    g[h->npending].status = status;
    g[h->npending].flags = flags;
    h->npending++;
}

static void add_gap(xenhypfs_handle *h, uint64_t token, int status)
{
    add_pending(h, token, 0, status, XENHYPFS_EVENT_GAP);
}

/*
 * The watches were armed on a connection that is gone: arm them on the
 * current one (connecting if need be), each with a gap event.  A path
 * that is gone now is dropped, its event saying so.  0, or -errno of the
 * transport (then try again later).
 */
static int rearm_locked(xenhypfs_handle *h)
{
    size_t i;

    if (h->privcmd_fd >= 0 || !h->nwatches ||
        (h->watch_epoch == h->client.epoch && h->client.fd >= 0))
        return 0;
    for (i = 0; i < h->nwatches;) {
        struct lib_watch *w = &h->watches[i];
        long ret = hypercall_args_locked(h, XEN_HYPFS_OP_watch, w->path,
                                         strlen(w->path) + 1, w->token,
                                         w->known);

        /* The transport failed (it says why): try again later. */
        if (ret < 0 && h->err[0])
            return (int)ret;
        add_gap(h, w->token, ret < 0 ? (int)ret : 0);
        if (ret < 0)
            drop_watch(h, w);
        else
            i++;
    }
    h->watch_epoch = h->client.epoch;
    return 0;
}

int xenhypfs_watch(xenhypfs_handle *h, const char *path, uint64_t token,
                   uint64_t known)
{
    long plen = lib_path_size(h, path), ret;
    struct lib_watch *w;
    char *copy;

    if (plen < 0)
        return -1;
    copy = strdup(path);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_lock(&h->lock);
    if (h->privcmd_fd >= 0) {
        /* A hypervisor delivers events through an event channel; this
         * library has none to offer. */
        ret = need_v2_locked(h) ? -errno : -EOPNOTSUPP;
        goto out;
    }
    if (need_v2_locked(h)) {
        ret = -errno;
        goto out;
    }
    rearm_locked(h);
    w = find_watch(h, token);
    if (!w && h->nwatches == h->watches_cap) {
        size_t cap = h->watches_cap ? h->watches_cap * 2 : 16;
        struct lib_watch *n = realloc(h->watches, cap * sizeof(*n));

        if (!n) {
            ret = -ENOMEM;
            goto out;
        }
        h->watches = n;
        h->watches_cap = cap;
    }
    ret = hypercall_args_locked(h, XEN_HYPFS_OP_watch, path, (size_t)plen,
                                token, known);
    if (ret)
        goto out;
    if (!h->nwatches)
        h->watch_epoch = h->client.epoch;
    if (!w) {
        w = &h->watches[h->nwatches++];
        w->token = token;
    } else {
        free(w->path);
    }
    w->path = copy;
    w->known = known;
    copy = NULL;
 out:
    pthread_mutex_unlock(&h->lock);
    free(copy);
    if (ret) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    return 0;
}

int xenhypfs_unwatch(xenhypfs_handle *h, uint64_t token)
{
    struct lib_watch *w;
    long ret;
    size_t i;

    if (!h) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&h->lock);
    w = find_watch(h, token);
    if (!w) {
        ret = -ENOENT;
    } else if (h->watch_epoch != h->client.epoch || h->client.fd < 0) {
        /* Armed on a connection that is gone: nothing to undo there. */
        drop_watch(h, w);
        ret = 0;
    } else {
        ret = hypercall_args_locked(h, XEN_HYPFS_OP_unwatch, NULL, 0, token,
                                    0);
        /* Gone with a restart in between, or removed: ours is gone. */
        if (!ret || ret == -ENOENT) {
            w = find_watch(h, token);
            if (w)
                drop_watch(h, w);
            ret = 0;
        }
    }
    /* No event for it after this returns: not even one queued. */
    if (!ret) {
        struct hypfs_msg_event ev[64];
        size_t n, kept = 0, j;

        for (i = 0; i < h->npending; i++)
            if (h->pending[i].token != token)
                h->pending[kept++] = h->pending[i];
        h->npending = kept;
        /* The client's queue: the others' move to ours, in order. */
        while ((n = hypfs_client_take_events(&h->client, ev, 64, NULL)))
            for (j = 0; j < n; j++)
                if (ev[j].token != token)
                    add_pending(h, ev[j].token, ev[j].gen, ev[j].status, 0);
    }
    pthread_mutex_unlock(&h->lock);
    if (ret) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    return 0;
}

/* ---- Events ---- */

void events_sync(xenhypfs_handle *h)
{
    uint64_t one = 1;

    if (h->epfd < 0)
        return;
    if (h->client.fd != h->ep_sock) {
        struct epoll_event ev = { .events = EPOLLIN };

        if (h->ep_sock >= 0)
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->ep_sock, NULL);
        h->ep_sock = -1;
        ev.data.fd = h->client.fd;
        if (h->client.fd >= 0 &&
            !epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->client.fd, &ev))
            h->ep_sock = h->client.fd;
    }
    if ((h->client.nevents || h->npending ||
         (h->nwatches && h->watch_epoch != h->client.epoch)) &&
        write(h->evfd, &one, sizeof(one)) < 0) {
        /* Saturated: readable anyway. */
    }
}

void events_fini(xenhypfs_handle *h)
{
    size_t i;

    for (i = 0; i < h->nwatches; i++)
        free(h->watches[i].path);
    free(h->watches);
    h->watches = NULL;
    h->nwatches = h->watches_cap = 0;
    free(h->pending);
    h->pending = NULL;
    h->npending = 0;
    if (h->epfd >= 0)
        close(h->epfd);
    if (h->evfd >= 0)
        close(h->evfd);
    h->epfd = h->evfd = h->ep_sock = -1;
}

int xenhypfs_event_fd(xenhypfs_handle *h)
{
    struct epoll_event ev = { .events = EPOLLIN };
    int ret;

    if (!h) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&h->lock);
    if (h->privcmd_fd >= 0) {
        pthread_mutex_unlock(&h->lock);
        errno = EOPNOTSUPP;
        return -1;
    }
    if (h->epfd < 0) {
        h->epfd = epoll_create1(EPOLL_CLOEXEC);
        h->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ev.data.fd = h->evfd;
        if (h->epfd < 0 || h->evfd < 0 ||
            epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->evfd, &ev)) {
            int err = errno;

            if (h->epfd >= 0)
                close(h->epfd);
            if (h->evfd >= 0)
                close(h->evfd);
            h->epfd = h->evfd = -1;
            pthread_mutex_unlock(&h->lock);
            errno = err;
            return -1;
        }
        h->ep_sock = -1;
        events_sync(h);
    }
    ret = h->epfd;
    pthread_mutex_unlock(&h->lock);
    return ret;
}

int xenhypfs_read_events(xenhypfs_handle *h, struct xenhypfs_event *events,
                         unsigned int max)
{
    unsigned int n = 0;
    uint64_t v;
    int ret = 0;

    if (!h || (!events && max)) {
        errno = h ? EINVAL : EBADF;
        return -1;
    }
    pthread_mutex_lock(&h->lock);
    if (h->privcmd_fd >= 0) {
        ret = -EOPNOTSUPP;
        goto out;
    }
    if (h->evfd >= 0 && read(h->evfd, &v, sizeof(v)) < 0) {
        /* Nothing signalled. */
    }
    /* A connection that is gone shows as fd -1: re-armed below. */
    if (h->client.fd >= 0)
        (void)hypfs_client_pump(&h->client);
    /* A connection lost, or made anew: arm the watches on the new one. */
    if (h->nwatches && (h->client.fd < 0 ||
                        h->watch_epoch != h->client.epoch)) {
        ret = rearm_locked(h);
        if (ret) {
            events_sync(h);
            goto out;
        }
    }
    while (n < max && h->npending) {
        events[n++] = h->pending[0];
        memmove(h->pending, h->pending + 1, --h->npending * sizeof(*h->pending));
    }
    while (n < max) {
        struct hypfs_msg_event ev;
        struct lib_watch *w;
        bool lost = false;

        if (!hypfs_client_take_events(&h->client, &ev, 1, &lost)) {
            if (lost) {
                size_t i;

                /* Some were dropped: say so for every watch. */
                for (i = 0; i < h->nwatches; i++)
                    add_gap(h, h->watches[i].token, 0);
                while (n < max && h->npending) {
                    events[n++] = h->pending[0];
                    memmove(h->pending, h->pending + 1,
                            --h->npending * sizeof(*h->pending));
                }
            }
            break;
        }
        w = find_watch(h, ev.token);
        if (!w)
            continue;       /* removed since */
        if (!ev.status)
            w->known = ev.gen;
        /* A watch whose path is gone stays armed: it may come back. */
        events[n].token = ev.token;
        events[n].generation = ev.status ? 0 : ev.gen;
        events[n].status = ev.status;
        events[n].flags = 0;
        n++;
    }
    events_sync(h);
 out:
    pthread_mutex_unlock(&h->lock);
    if (ret) {
        errno = ret == -EOPNOTSUPP ? EOPNOTSUPP : ECONNRESET;
        return -1;
    }
    return (int)n;
}
