/*
 * Guests' channels: a stream socket per domain that the domain's VMM
 * connects to (QEMU's -chardev socket + virtserialport, libvirt's
 * <channel type='unix'>), so that a real virtual machine reaches hypfs
 * through a virtio-serial port.
 *
 * Identity.  Whatever arrives on domain N's channel is a request by
 * domain N: the channel is the identity, never the bytes and never the
 * VMM's uid (a VMM serves many domains as one user).  A connection keeps
 * the channel it came through; when the domain is destroyed the channel
 * is marked gone at once (under the model's writer lock, before the
 * change is published), so its connections' requests get -EPERM from
 * then on, and a later domain with the same name or id inherits nothing.
 *
 * Place.  SOCKET.chan.NAME beside hypfsd's socket (NAME: the domain's
 * name, which the VMM's configuration can say before the domain exists,
 * and which stays the same when the toolstack creates the domain again
 * after a restart of hypfsd), made like hypfsd's own sockets (sockdir.c):
 * mode 0600, or 0660 and group --channel-group, so that only hypfsd's
 * user, root and that group (the VMM's) can connect.  Removed with the
 * domain, and at stop.
 *
 * Life cycle and locks.  chan.lock guards the list.  A channel is made by
 * a control command (a connection's thread), accepted on by the main loop
 * (listen.c), and retired by a control command: the retiring thread
 * unlinks the socket and hands the channel to the main loop, which alone
 * takes it out of epoll and closes its descriptor (before its next
 * epoll_wait, so no event can name a freed channel).  Connections hold a
 * reference; the last one frees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hypfsd.h"

#define CHAN_SUFFIX     ".chan."
#define CHAN_BACKLOG    8

struct channel {
    struct loop_source src;     /* first: the main loop's epoll data */
    atomic_uint refs;
    atomic_bool gone;
    uint32_t domid;
    uint64_t serial;
    char name[NAME_MAX_LEN + 1];
    char file[256];             /* in the socket directory */
    int lfd;
    dev_t dev;
    ino_t ino;
    struct channel *next;
};

static struct {
    pthread_mutex_t lock;
    const struct sock_place *sp;    /* NULL: no place for channels */
    int epfd;
    gid_t gid;
    struct channel *live;           /* published */
    struct channel *retired;        /* for the main loop to close */
} chan = { .lock = PTHREAD_MUTEX_INITIALIZER, .epfd = -1, .gid = (gid_t)-1 };

void channels_init(const struct sock_place *sp, int epfd, gid_t gid)
{
    char prefix[sizeof(sp->name) + sizeof(CHAN_SUFFIX)];

    pthread_mutex_lock(&chan.lock);
    chan.sp = sp && sp->dirfd >= 0 ? sp : NULL;
    chan.epfd = epfd;
    chan.gid = gid;
    /* Channels a killed predecessor left: no domain has them now. */
    if (chan.sp) {
        snprintf(prefix, sizeof(prefix), "%s%s", chan.sp->name, CHAN_SUFFIX);
        sockdir_sweep(chan.sp, prefix);
    }
    pthread_mutex_unlock(&chan.lock);
}

const char *channel_name(const struct channel *ch)
{
    return ch->name;
}

static int file_name(const char *name, char *buf, size_t len)
{
    const char *base = chan.sp->name;
    size_t n;

    n = (size_t)snprintf(buf, len, "%s" CHAN_SUFFIX "%s", base, name);
    return n >= len ? -ENAMETOOLONG : 0;
}

void channel_get(struct channel *ch)
{
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
}

void channel_put(struct channel *ch)
{
    if (ch && atomic_fetch_sub_explicit(&ch->refs, 1,
                                        memory_order_acq_rel) == 1) {
        if (ch->lfd >= 0)
            close(ch->lfd);
        free(ch);
    }
}

bool channel_identity(const struct channel *ch, uint32_t *domid)
{
    *domid = ch->domid;
    return !atomic_load_explicit(&ch->gone, memory_order_acquire);
}

uint32_t channel_domid(const struct channel *ch)
{
    return ch->domid;
}

/* Unlink @ch's socket if the file there is still the one we bound. */
static void unlink_ours(const struct channel *ch)
{
    struct stat st;

    if (chan.sp && !fstatat(chan.sp->dirfd, ch->file, &st,
                            AT_SYMLINK_NOFOLLOW) &&
        st.st_dev == ch->dev && st.st_ino == ch->ino)
        unlinkat(chan.sp->dirfd, ch->file, 0);
}

int channel_open(const char *name, struct channel **out, char *err,
                 size_t errlen)
{
    struct channel *ch = calloc(1, sizeof(*ch));
    char path[4096 + 256];
    int ret;

    *out = NULL;
    if (!ch) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ch->src.kind = SRC_CHANNEL;
    atomic_init(&ch->refs, 1);
    atomic_init(&ch->gone, false);
    ch->lfd = -1;
    snprintf(ch->name, sizeof(ch->name), "%s", name);
    pthread_mutex_lock(&chan.lock);
    if (!chan.sp) {
        ret = -EOPNOTSUPP;
        snprintf(err, errlen, "this hypfsd has no directory of its own for "
                 "guests' channels");
        goto fail;
    }
    ret = file_name(name, ch->file, sizeof(ch->file));
    snprintf(path, sizeof(path), "%s/%s", chan.sp->dir, ch->file);
    if (ret || strlen(path) >= 108) {
        ret = -ENAMETOOLONG;
        snprintf(err, errlen, "the channel's socket path would be too long: "
                 "%s", path);
        goto fail;
    }
    /* A channel of a domain of that name that is still ours and alive? */
    for (struct channel *it = chan.live; it; it = it->next)
        if (!strcmp(it->name, name)) {
            ret = -EEXIST;
            snprintf(err, errlen, "%s is in use by domain %u", path,
                     it->domid);
            goto fail;
        }
    ch->lfd = sockdir_bind(chan.sp, ch->file, chan.gid == (gid_t)-1 ? 0177
                                                                    : 0117,
                           chan.gid, CHAN_BACKLOG, &ch->dev, &ch->ino);
    if (ch->lfd < 0) {
        ret = -EIO;
        snprintf(err, errlen, "cannot make the channel %s (hypfsd's log "
                 "says why)", path);
        goto fail;
    }
    pthread_mutex_unlock(&chan.lock);
    *out = ch;
    return 0;

 fail:
    pthread_mutex_unlock(&chan.lock);
    free(ch);
    return ret;
}

void channel_bind_domain(struct channel *ch, uint32_t domid, uint64_t serial)
{
    ch->domid = domid;
    ch->serial = serial;
}

void channel_publish(struct channel *ch)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ch->src };

    pthread_mutex_lock(&chan.lock);
    ch->next = chan.live;
    chan.live = ch;
    if (epoll_ctl(chan.epfd, EPOLL_CTL_ADD, ch->lfd, &ev))
        log_err("channel of domain %u: epoll: %s", ch->domid, strerror(errno));
    pthread_mutex_unlock(&chan.lock);
    log_info("domain %u (%s): channel %s/%s", ch->domid, ch->name,
             chan.sp->dir, ch->file);
}

void channel_discard(struct channel *ch)
{
    pthread_mutex_lock(&chan.lock);
    unlink_ours(ch);
    pthread_mutex_unlock(&chan.lock);
    channel_put(ch);
}

bool channel_domain_gone(uint32_t domid, uint64_t serial)
{
    struct channel **pp, *ch = NULL;
    char file[sizeof(ch->file)];

    pthread_mutex_lock(&chan.lock);
    for (pp = &chan.live; *pp; pp = &(*pp)->next)
        if ((*pp)->domid == domid && (*pp)->serial == serial) {
            ch = *pp;
            *pp = ch->next;
            break;
        }
    if (ch) {
        atomic_store_explicit(&ch->gone, true, memory_order_release);
        unlink_ours(ch);
        /* Once retired it is the main loop's to free, at any moment. */
        memcpy(file, ch->file, sizeof(file));
        ch->next = chan.retired;
        chan.retired = ch;
    }
    pthread_mutex_unlock(&chan.lock);
    if (ch)
        log_info("domain %u: channel %s removed", domid, file);
    return ch != NULL;
}

int channel_of_domain(uint32_t domid, char *path, size_t len)
{
    struct channel *ch;
    int ret = -ENOENT;

    pthread_mutex_lock(&chan.lock);
    for (ch = chan.live; ch; ch = ch->next)
        if (ch->domid == domid) {
            snprintf(path, len, "%s/%s", chan.sp->dir, ch->file);
            ret = 0;
            break;
        }
    pthread_mutex_unlock(&chan.lock);
    return ret;
}

void channels_reap(void)
{
    struct channel *ch, *next;

    pthread_mutex_lock(&chan.lock);
    ch = chan.retired;
    chan.retired = NULL;
    pthread_mutex_unlock(&chan.lock);
    for (; ch; ch = next) {
        next = ch->next;
        epoll_ctl(chan.epfd, EPOLL_CTL_DEL, ch->lfd, NULL);
        close(ch->lfd);
        ch->lfd = -1;
        channel_put(ch);
    }
}

void channels_accept(struct channel *ch)
{
    int i;

    for (i = 0; i < 8; i++) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        int fd = accept4(ch->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN)
                log_limited(&rl_refused, L_WARNING, "channel %s: accept: %s",
                            ch->file, strerror(errno));
            return;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) ||
            atomic_load(&ch->gone)) {
            close(fd);
            continue;
        }
        server_start_channel(fd, &cred, ch);
    }
}

void channels_fini(void)
{
    struct channel *ch;

    pthread_mutex_lock(&chan.lock);
    while ((ch = chan.live)) {
        chan.live = ch->next;
        atomic_store(&ch->gone, true);
        unlink_ours(ch);
        ch->next = chan.retired;
        chan.retired = ch;
    }
    pthread_mutex_unlock(&chan.lock);
    channels_reap();
    pthread_mutex_lock(&chan.lock);
    chan.sp = NULL;
    pthread_mutex_unlock(&chan.lock);
}

struct channel *channel_detached(uint32_t domid, uint64_t serial)
{
    struct channel *ch = calloc(1, sizeof(*ch));

    if (!ch)
        return NULL;
    ch->src.kind = SRC_CHANNEL;
    atomic_init(&ch->refs, 1);
    atomic_init(&ch->gone, false);
    ch->lfd = -1;
    ch->domid = domid;
    ch->serial = serial;
    snprintf(ch->name, sizeof(ch->name), "detached");
    return ch;
}
