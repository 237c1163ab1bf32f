/*
 * hypfs-fuse: the hypervisor filesystem as a mounted filesystem, for the
 * tools people use on sysfs (ls, cat, echo >, find, grep -r, stat).
 *
 * Directories are directories; a leaf is a regular file holding its value
 * as `xenhypfs cat` prints it and a newline (numbers in decimal, gzip
 * content inflated), a blob its raw bytes.  A file is 0444, or 0644 when the
 * caller may write it; st_size is the true length.  Writing a file sets the
 * entry: the value is one write at offset 0 (as on sysfs), one trailing
 * newline is dropped, and it is converted and checked by libxenhypfs, so an
 * invalid value fails with the library's errno and changes nothing.
 *
 * Everything is live.  Pages are never cached.  A file's content is taken
 * when it is opened, and again by every read at offset 0, so one read
 * through the file sees one consistent value, and reading it again from
 * the start (tail -f, a poller) sees the current one, whose length is what
 * stat says.  Where the hypervisor speaks interface version 2, hypfs-fuse
 * watches what the kernel holds, and names and attributes are cached until
 * their entry changes: then the kernel is told to forget them (the watch
 * thread, below), so ls and stat are never stale and cost no request.  A
 * mount shared by several users (-o allow_other, as root) caches nothing,
 * since what the kernel caches is the same for every caller and what they
 * may see is not; without version 2, nothing is cached either (names for a
 * second).
 *
 * poll(), select() and epoll on an open file wake with POLLPRI|POLLERR when
 * its value changes, as sysfs_notify() does; reading it from offset 0
 * clears that, as on sysfs.
 *
 * -o cache_values (version 2, one user) keeps values in the kernel's page
 * cache too, so that reading an unchanged value never leaves the kernel.
 * Opening a file is the round trip that remains, so hypfs-fuse answers
 * the first open with ENOSYS: the kernel then opens every file itself
 * (FUSE's no_open, FOPEN_KEEP_CACHE for all) and never asks again.  What
 * that costs: no per-open state, so reads come with no file handle, a
 * write learns the entry's type itself, and poll is refused (ENOSYS: the
 * kernel then reports every file readable, as for a plain file).  A value
 * is dropped from the page cache with its attributes when its watch fires
 * (node_event).  A node whose watch could not be made is never cached for
 * long: its modification time changes at every getattr, attributes expire
 * at once, and the kernel (FUSE_CAP_AUTO_INVAL_DATA) drops its pages when
 * it sees that.
 *
 * Access is never widened.  Without -o allow_other only the mounting user
 * can use the mount (FUSE's rule).  With it, every request is made with
 * the rights of the user who makes it: running as root, hypfs-fuse opens
 * one hypfsd connection per user, connected by a short-lived child that
 * has switched to that user, so hypfsd identifies the user itself (its
 * SO_PEERCRED); not running as root, it refuses every other user.  Through
 * Xen's privcmd the hypervisor sees one domain whoever calls, so such a
 * mount serves its own user only (allow_other is refused).  Modes and
 * owners are reported for the calling user.
 *
 * Requests are served by libfuse's multi-threaded loop, so that one user's
 * requests never wait behind another's.  Per-user connections are kept in
 * a bounded cache and reused; each reconnects by itself after hypfsd
 * restarts.  A connection is made as its user without forking: the
 * serving thread switches its own effective ids for the connect() (the
 * raw setresuid/setresgid system calls change only the calling thread),
 * so that hypfsd's SO_PEERCRED sees that user, and switches back.
 *
 * Shared state and its locks: the inode table (nodes_lock), the user
 * cache (users_lock), the watches of open files (polls_lock); a request
 * copies the path it works on, so nothing it holds can be freed by a
 * concurrent forget.  Handles are thread-safe.  Lock order: polls_lock,
 * then nodes_lock, then users_lock.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hypfs/abi.h>

#include "xenhypfs-ext.h"

/* ---- Inodes: one per path seen, as long as the kernel holds it ---- */

struct node {
    fuse_ino_t ino;
    uint64_t nlookup;
    bool watched;               /* cached, and watched for changes */
    struct node *next_path, *next_ino;   /* hash chains */
    char path[];
};

#define BUCKETS 4096u
static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node *by_path[BUCKETS], *by_ino[BUCKETS];     /* nodes_lock */
static fuse_ino_t next_ino = 2;                             /* nodes_lock */

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* nodes_lock held. */
static struct node *node_by_ino(fuse_ino_t ino)
{
    struct node *n;

    for (n = by_ino[ino % BUCKETS]; n; n = n->next_ino)
        if (n->ino == ino)
            return n;
    return NULL;
}

/* The node of @path, made if new; NULL when out of memory.  nodes_lock. */
static struct node *node_get(const char *path)
{
    uint32_t h = hash_str(path) % BUCKETS;
    struct node *n;

    for (n = by_path[h]; n; n = n->next_path)
        if (!strcmp(n->path, path))
            return n;
    n = calloc(1, sizeof(*n) + strlen(path) + 1);
    if (!n)
        return NULL;
    strcpy(n->path, path);
    n->ino = strcmp(path, "/") ? next_ino++ : FUSE_ROOT_ID;
    n->next_path = by_path[h];
    by_path[h] = n;
    n->next_ino = by_ino[n->ino % BUCKETS];
    by_ino[n->ino % BUCKETS] = n;
    return n;
}

/* Watches of nodes the kernel forgot, to undo outside nodes_lock. */
static pthread_mutex_t unwatch_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *unwatch_list;                              /* unwatch_lock */
static size_t unwatch_n, unwatch_cap;                       /* unwatch_lock */

#define NODE_TOKEN (1ull << 63)

static void unwatch_later(fuse_ino_t ino)
{
    pthread_mutex_lock(&unwatch_lock);
    if (unwatch_n == unwatch_cap) {
        size_t cap = unwatch_cap ? unwatch_cap * 2 : 64;
        uint64_t *l = realloc(unwatch_list, cap * sizeof(*l));

        if (l) {
            unwatch_list = l;
            unwatch_cap = cap;
        }
    }
    /* Without memory the watch stays: an event for a gone inode is
     * harmless (the kernel says it has no such inode). */
    if (unwatch_n < unwatch_cap)
        unwatch_list[unwatch_n++] = ino | NODE_TOKEN;
    pthread_mutex_unlock(&unwatch_lock);
}

/* nodes_lock held. */
static void node_forget(struct node *n, uint64_t count)
{
    struct node **pp;

    n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
    if (n->nlookup || n->ino == FUSE_ROOT_ID)
        return;
    if (n->watched)
        unwatch_later(n->ino);
    for (pp = &by_path[hash_str(n->path) % BUCKETS]; *pp != n;
         pp = &(*pp)->next_path)
        ;
    *pp = n->next_path;
    for (pp = &by_ino[n->ino % BUCKETS]; *pp != n; pp = &(*pp)->next_ino)
        ;
    *pp = n->next_ino;
    free(n);
}

/* A copy of @ino's path (free() it), or NULL: ESTALE in *err, or ENOMEM. */
static char *ino_path(fuse_ino_t ino, int *err)
{
    struct node *n;
    char *path = NULL;

    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    if (n)
        path = strdup(n->path);
    pthread_mutex_unlock(&nodes_lock);
    if (!path)
        *err = n ? ENOMEM : ESTALE;
    return path;
}

/* Count a lookup of @path: its inode number, or 0 when out of memory. */
static fuse_ino_t node_looked_up(const char *path)
{
    struct node *n;
    fuse_ino_t ino = 0;

    pthread_mutex_lock(&nodes_lock);
    n = node_get(path);
    if (n) {
        n->nlookup++;
        ino = n->ino;
    }
    pthread_mutex_unlock(&nodes_lock);
    return ino;
}

/* ---- Whose rights: a connection per calling user ---- */

struct connector {
    uid_t uid;
    gid_t gid;
};

struct user_conn {
    uid_t uid;
    gid_t gid;
    xenhypfs_handle *h;         /* NULL: this user has no hypfs right */
    struct connector *who;      /* h's, freed with it */
    time_t made;
    unsigned int busy;          /* requests using h now */
};

#define USER_CACHE 64
#define NEGATIVE_SECONDS 2

static struct {
    const char *socket;
    bool allow_other;
    bool as_root;
    bool privcmd;               /* through Xen's privcmd: one domain */
    bool guest;                 /* in a VM: the channel, one domain */
    char channel[300];          /* its port */
    bool cache;                 /* names and attributes cached, watched */
    bool cache_values;          /* -o cache_values: values too */
    bool no_open;               /* ... and the kernel opens files itself */
    struct fuse_session *se;
    uid_t uid;
    gid_t gid;
    uid_t euid;                 /* what this thread switches back to */
    gid_t egid;
    xenhypfs_handle *own;
    time_t mounted;
} fs;

static pthread_mutex_t users_lock = PTHREAD_MUTEX_INITIALIZER;
static struct user_conn users[USER_CACHE];                  /* users_lock */

/*
 * Connect to hypfsd as @uid/@gid: this thread takes those effective ids
 * for the connect() alone.  The raw system calls change the calling
 * thread's credentials only (glibc's wrappers would change every
 * thread's); the saved ids stay root's, so it can switch back.
 */
static int connect_as(uid_t uid, gid_t gid)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, err = 0;

    if (strlen(fs.socket) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, fs.socket, strlen(fs.socket) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (syscall(SYS_setresgid, -1, gid, -1) ||
        syscall(SYS_setresuid, -1, uid, -1)) {
        err = -errno;
    } else {
        int r;

        do
            r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        while (r < 0 && errno == EINTR);
        if (r < 0)
            err = -errno;
    }
    /* Back to ours, whatever happened: a failure here must not go on. */
    if (syscall(SYS_setresuid, -1, fs.euid, -1) ||
        syscall(SYS_setresgid, -1, fs.egid, -1))
        abort();
    if (err) {
        close(fd);
        return err;
    }
    return fd;
}

/* The handle's connector: every (re)connection is made as its user. */
static int connect_user(void *arg)
{
    const struct connector *who = arg;

    return connect_as(who->uid, who->gid);
}

/*
 * A handle connected as @uid.  Its connector (*whop) serves every
 * reconnection: the caller frees it after closing the handle.
 */
static xenhypfs_handle *open_as(uid_t uid, gid_t gid, struct connector **whop)
{
    struct xenhypfs_open_args args = { XENHYPFS_TRANSPORT_SOCKET };
    struct connector *who = malloc(sizeof(*who));
    xenhypfs_handle *h;

    *whop = NULL;
    if (!who)
        return NULL;
    who->uid = uid;
    who->gid = gid;
    args.socket_path = fs.socket;
    args.connect = connect_user;
    args.connect_arg = who;
    h = xenhypfs_open_ext(&args);
    if (!h)
        free(who);
    else
        *whop = who;
    return h;
}

/*
 * Handles made for one request when every cached one was busy, with
 * their connectors (under users_lock).
 */
static struct spare {
    xenhypfs_handle *h;
    struct connector *who;
    struct spare *next;
} *spares;

/*
 * The handle to serve @req with, or NULL with *err: the mounting user's
 * own, or a connection made as the caller (cached; release it with
 * put_handle()).
 */
static xenhypfs_handle *get_handle(fuse_req_t req, struct user_conn **slotp,
                                   int *err)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    time_t now = time(NULL);
    struct user_conn *slot = NULL, *victim = NULL;
    struct connector *who;
    xenhypfs_handle *h;
    int i;

    *slotp = NULL;
    /* In a guest every process is the same domain, and one has the port. */
    if (ctx->uid == fs.uid || fs.guest)
        return fs.own;
    if (!fs.as_root || fs.privcmd) {
        /* We cannot act as that user: never lend it our rights. */
        *err = EACCES;
        return NULL;
    }
    pthread_mutex_lock(&users_lock);
    for (i = 0; i < USER_CACHE; i++) {
        struct user_conn *u = &users[i];

        if (u->made && u->uid == ctx->uid &&
            (u->h || now - u->made < NEGATIVE_SECONDS)) {
            if (!u->h) {
                pthread_mutex_unlock(&users_lock);
                *err = EACCES;
                return NULL;
            }
            u->busy++;
            *slotp = u;
            pthread_mutex_unlock(&users_lock);
            return u->h;
        }
        if (!u->made && !slot)
            slot = u;
        if (!u->busy && (!victim || u->made < victim->made))
            victim = u;
    }
    if (!slot)
        slot = victim;      /* the least recent that no request is using */
    if (slot) {
        xenhypfs_close(slot->h);
        free(slot->who);
        memset(slot, 0, sizeof(*slot));
        slot->uid = ctx->uid;
        slot->made = now;
        slot->busy = 1;     /* ours while it connects */
    }
    pthread_mutex_unlock(&users_lock);

    /* Connecting takes time: not under the lock. */
    h = open_as(ctx->uid, ctx->gid, &who);
    if (!h)
        *err = EACCES;      /* no hypfs right (EPERM), or no socket */
    if (slot) {
        pthread_mutex_lock(&users_lock);
        slot->h = h;
        slot->who = who;
        if (!h)
            slot->busy = 0;
        pthread_mutex_unlock(&users_lock);
        if (h)
            *slotp = slot;
    } else if (h) {
        /* Every cached connection is busy: this one is for this request. */
        struct spare *sp = malloc(sizeof(*sp));

        if (!sp) {
            xenhypfs_close(h);
            free(who);
            *err = ENOMEM;
            return NULL;
        }
        sp->h = h;
        sp->who = who;
        pthread_mutex_lock(&users_lock);
        sp->next = spares;
        spares = sp;
        pthread_mutex_unlock(&users_lock);
        *slotp = NULL;
    }
    return h;
}

static void put_handle(xenhypfs_handle *h, struct user_conn *slot)
{
    if (h == fs.own || !h)
        return;
    if (!slot) {
        struct spare **pp, *sp = NULL;

        pthread_mutex_lock(&users_lock);
        for (pp = &spares; *pp; pp = &(*pp)->next)
            if ((*pp)->h == h) {
                sp = *pp;
                *pp = sp->next;
                break;
            }
        pthread_mutex_unlock(&users_lock);
        xenhypfs_close(h);
        if (sp) {
            free(sp->who);
            free(sp);
        }
        return;
    }
    pthread_mutex_lock(&users_lock);
    slot->busy--;
    pthread_mutex_unlock(&users_lock);
}

/*
 * What a request on @ino works on: a copy of its path, and the handle to
 * ask the hypervisor with.  0, or the errno to reply (ESTALE: a forgotten
 * inode).  Release with release_target().
 */
struct target {
    char *path;
    xenhypfs_handle *h;
    struct user_conn *slot;
};

static int request_target(fuse_req_t req, fuse_ino_t ino, struct target *t)
{
    int err = 0;

    memset(t, 0, sizeof(*t));
    t->path = ino_path(ino, &err);
    if (!t->path)
        return err;
    t->h = get_handle(req, &t->slot, &err);
    if (!t->h) {
        free(t->path);
        t->path = NULL;
        return err;
    }
    return 0;
}

static void release_target(struct target *t)
{
    put_handle(t->h, t->slot);
    free(t->path);
}

/* ---- Entries as files ---- */

struct value {
    bool dir;
    bool writable;
    unsigned short type;
    char *data;                 /* the file's content */
    size_t len;
};

static void value_free(struct value *v)
{
    free(v->data);
    v->data = NULL;
}

/*
 * What @path is and holds, for this caller, in one hypercall (a directory's
 * listing is not fetched).  0 or an errno.
 */
/*
 * An outage of hypfsd: every request fails with EIO (the root stays a
 * directory), logged once when it starts and once when it ends.
 */
static atomic_bool in_outage;

/* @err from a call on @h, EIO instead if hypfsd could not be reached. */
static int fs_errno(xenhypfs_handle *h, int err)
{
    const char *why = xenhypfs_transport_error(h);

    if (why && *why) {
        if (!atomic_exchange(&in_outage, true))
            fprintf(stderr, "hypfs-fuse: %s; every request fails with EIO "
                    "until it is back\n", why);
        return EIO;
    }
    return err;
}

/* A call on @h worked: an outage, if there was one, is over. */
static void fs_reached(void)
{
    if (atomic_load(&in_outage) && atomic_exchange(&in_outage, false))
        fprintf(stderr, "hypfs-fuse: hypfsd can be reached again\n");
}

static int get_value(xenhypfs_handle *h, const char *path, struct value *v)
{
    struct xenhypfs_dirent d;
    size_t len;
    char *raw, *text;

    memset(v, 0, sizeof(*v));
    raw = xenhypfs_stat_value(h, path, &d, &len, &text);
    if (!raw)
        return fs_errno(h, errno);
    fs_reached();
    v->dir = d.type == xenhypfs_type_dir;
    v->writable = d.flags & XENHYPFS_FLAG_WRITABLE;
    v->type = d.type;
    if (v->dir) {
        free(raw);
    } else if (!text) {
        v->data = raw;      /* a blob: its bytes */
        v->len = len;
    } else {
        /* Exactly what xenhypfs cat prints: the text and a newline. */
        free(raw);
        v->len = strlen(text) + 1;
        v->data = realloc(text, v->len + 1);
        if (!v->data) {
            free(text);
            return ENOMEM;
        }
        v->data[v->len - 1] = '\n';
        v->data[v->len] = '\0';
    }
    return 0;
}

static void fill_stat(fuse_req_t req, fuse_ino_t ino, const struct value *v,
                      struct stat *st)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);

    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = v->dir ? S_IFDIR | 0555 : S_IFREG | (v->writable ? 0644 : 0444);
    /*
     * 1 for directories too: we do not count their subdirectories, and 2
     * would tell find(1) that there are none (its leaf optimisation).
     */
    st->st_nlink = 1;
    st->st_size = v->dir ? 0 : (off_t)v->len;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    /* The caller's, so that the mode tells the caller what it may do. */
    st->st_uid = ctx->uid;
    st->st_gid = ctx->gid;
    st->st_atime = st->st_mtime = st->st_ctime = fs.mounted;
}

/*
 * With -o cache_values, a file whose node is not watched: a new
 * modification time at every getattr, so that the kernel drops its
 * cached pages before every read (see the top of the file).
 */
static void never_cached(struct stat *st)
{
    static atomic_ulong ticks;

    if (fs.cache_values && !S_ISDIR(st->st_mode))
        st->st_mtim.tv_nsec = (long)(atomic_fetch_add(&ticks, 1) % 1000000000);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);

    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (!a || dir[a - 1] != '/')
        p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

/* A snapshot of an open file's content, or of a directory's listing. */
struct open_file {
    struct value v;
    unsigned int n;
    struct xenhypfs_dirent *ents;
    pthread_mutex_t vlock;      /* v, read_once: reads may be concurrent */
    bool read_once;             /* a read at 0 now takes the value again */
    /* Polled (op_poll): its watch, and what the watch thread says. */
    uint64_t token;             /* 0: not watched */
    xenhypfs_handle *wh;        /* the caller's handle that watches */
    struct user_conn *wslot;    /* ... pinned while it does */
    struct fuse_pollhandle *ph; /* polls_lock */
    bool changed;               /* polls_lock */
    struct open_file *next_polled;      /* polls_lock */
};

/* ---- Watching: what the kernel caches, and what is polled ---- */

/*
 * One thread takes the events of every handle that watches (each has one
 * descriptor, in one epoll set) and acts on them:
 *   a node's watch (token NODE_TOKEN | inode, on the mounting user's
 *   handle, made by lookup when caching): the kernel forgets the inode's
 *   attributes, and if the entry is gone its name too;
 *   an open file's (token from next_poll_token, on the caller's handle):
 *   it is marked changed and its poller woken.
 * A gap (hypfsd restarted) forgets everything cached and wakes every
 * poller: changes may have been missed.
 */
#define CACHE_TIMEOUT 3600.0

static pthread_mutex_t polls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct open_file *polled;                            /* polls_lock */
static uint64_t next_poll_token = 1;                        /* polls_lock */

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    xenhypfs_handle *h;
    unsigned int watches;
} ep_handles[USER_CACHE + 1];                               /* ep_lock */
static int watch_ep = -1;
/* Written at unmount: the watch thread ends (an epoll entry of no handle). */
static int watch_stop = -1;

/* Count a watch on @h; its descriptor joins the set with the first. */
static int ep_add(xenhypfs_handle *h)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = h };
    size_t i, free_i = SIZE_MAX;
    int fd, ret = 0;

    pthread_mutex_lock(&ep_lock);
    for (i = 0; i <= USER_CACHE; i++) {
        if (ep_handles[i].h == h) {
            ep_handles[i].watches++;
            goto out;
        }
        if (!ep_handles[i].h && free_i == SIZE_MAX)
            free_i = i;
    }
    fd = xenhypfs_event_fd(h);
    if (free_i == SIZE_MAX || fd < 0 ||
        epoll_ctl(watch_ep, EPOLL_CTL_ADD, fd, &ev)) {
        ret = free_i == SIZE_MAX ? ENOSPC : errno;
        goto out;
    }
    ep_handles[free_i].h = h;
    ep_handles[free_i].watches = 1;
 out:
    pthread_mutex_unlock(&ep_lock);
    return ret;
}

/* A watch on @h gone; with the last, its descriptor leaves the set. */
static void ep_drop(xenhypfs_handle *h)
{
    size_t i;

    pthread_mutex_lock(&ep_lock);
    for (i = 0; i <= USER_CACHE; i++)
        if (ep_handles[i].h == h) {
            if (!--ep_handles[i].watches) {
                epoll_ctl(watch_ep, EPOLL_CTL_DEL, xenhypfs_event_fd(h), NULL);
                ep_handles[i].h = NULL;
            }
            break;
        }
    pthread_mutex_unlock(&ep_lock);
}

/* The parent's inode and the name, for telling the kernel a name went. */
static void forget_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    char parent[XEN_HYPFS_MAX_PATHLEN];
    struct node *p;
    fuse_ino_t pino = 0;
    size_t n;

    if (!slash || !slash[1])
        return;
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof(parent))
        return;
    memcpy(parent, path, n);
    parent[n] = '\0';
    pthread_mutex_lock(&nodes_lock);
    p = node_get(parent);
    if (p)
        pino = p->ino;
    pthread_mutex_unlock(&nodes_lock);
    if (pino)
        fuse_lowlevel_notify_inval_entry(fs.se, pino, slash + 1,
                                         strlen(slash + 1));
}

static void node_event(fuse_ino_t ino, int status)
{
    struct node *n;
    char *path = NULL;

    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    if (n && n->watched)
        path = strdup(n->path);
    pthread_mutex_unlock(&nodes_lock);
    if (!path)
        return;
    /* Outside every lock: the kernel may call back into us. */
    fuse_lowlevel_notify_inval_inode(fs.se, ino, 0, 0);
    if (status)
        forget_name(path);
    free(path);
}

/* Mark @token's file changed and wake its poller (0: every file). */
static void poll_event(uint64_t token)
{
    struct open_file *of;

    pthread_mutex_lock(&polls_lock);
    for (of = polled; of; of = of->next_polled)
        if (!token || of->token == token) {
            of->changed = true;
            if (of->ph) {
                fuse_lowlevel_notify_poll(of->ph);
                fuse_pollhandle_destroy(of->ph);
                of->ph = NULL;
            }
        }
    pthread_mutex_unlock(&polls_lock);
}

/* Every watched node: the kernel forgets what it cached. */
static void forget_all_cached(void)
{
    fuse_ino_t *inos = NULL;
    size_t n = 0, cap = 0, b;
    struct node *nd;

    pthread_mutex_lock(&nodes_lock);
    for (b = 0; b < BUCKETS; b++)
        for (nd = by_ino[b]; nd; nd = nd->next_ino) {
            if (!nd->watched)
                continue;
            if (n == cap) {
                size_t c = cap ? cap * 2 : 256;
                fuse_ino_t *l = realloc(inos, c * sizeof(*l));

                if (!l)
                    break;
                inos = l;
                cap = c;
            }
            inos[n++] = nd->ino;
        }
    pthread_mutex_unlock(&nodes_lock);
    for (b = 0; b < n; b++)
        fuse_lowlevel_notify_inval_inode(fs.se, inos[b], 0, 0);
    free(inos);
}

static void *watch_thread(void *arg)
{
    (void)arg;
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(watch_ep, evs, 16, -1), k;

        if (n < 0 && errno != EINTR)
            break;
        for (k = 0; k < n; k++) {
            xenhypfs_handle *h = evs[k].data.ptr;
            struct xenhypfs_event ev[64];
            bool known = false;
            size_t i;
            int got, j;

            if (!h)
                return NULL;

            /* Still ours?  (Its file may have been released since.) */
            pthread_mutex_lock(&ep_lock);
            for (i = 0; i <= USER_CACHE && !known; i++)
                known = ep_handles[i].h == h;
            got = known ? xenhypfs_read_events(h, ev, 64) : 0;
            pthread_mutex_unlock(&ep_lock);
            for (j = 0; j < got; j++) {
                if (ev[j].flags & XENHYPFS_EVENT_GAP) {
                    forget_all_cached();
                    poll_event(0);
                } else if (ev[j].token & NODE_TOKEN) {
                    node_event((fuse_ino_t)(ev[j].token & ~NODE_TOKEN),
                               ev[j].status);
                } else {
                    poll_event(ev[j].token);
                }
            }
        }
    }
    return NULL;
}

/* Undo the watches of nodes the kernel forgot (no lock held). */
static void unwatch_forgotten(void)
{
    uint64_t tokens[256];
    size_t n, i;

    do {
        pthread_mutex_lock(&unwatch_lock);
        n = unwatch_n < 256 ? unwatch_n : 256;
        unwatch_n -= n;
        memcpy(tokens, unwatch_list + unwatch_n, n * sizeof(*tokens));
        pthread_mutex_unlock(&unwatch_lock);
        for (i = 0; i < n; i++)
            xenhypfs_unwatch(fs.own, tokens[i]);
    } while (n);
}

/*
 * Cache @path's node: watch it on the mounting user's handle, from
 * generation @gen (taken before its value was).  True if it is watched.
 */
static bool watch_node(fuse_ino_t ino, const char *path, uint64_t gen)
{
    struct node *n;
    bool was;

    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    was = n && n->watched;
    pthread_mutex_unlock(&nodes_lock);
    if (!n)
        return false;
    if (was)
        return true;
    if (xenhypfs_watch(fs.own, path, ino | NODE_TOKEN, gen))
        return false;
    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    if (n)
        n->watched = true;
    pthread_mutex_unlock(&nodes_lock);
    return n != NULL;
}

/* Is @ino cached (watched)? */
static bool node_watched(fuse_ino_t ino)
{
    struct node *n;
    bool w;

    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    w = n && n->watched;
    pthread_mutex_unlock(&nodes_lock);
    return w;
}

/* ---- Operations ---- */

#define ENTRY_TIMEOUT 1.0
#define MAX_THREADS   64
#define IDLE_THREADS  8

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (!fs.cache_values) {
        /* No page cache across opens: values are live. */
        conn->want &= ~(unsigned int)FUSE_CAP_AUTO_INVAL_DATA;
        return;
    }
    /* Pages of unwatched nodes go when their times change. */
    conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    fs.no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
    if (!fs.no_open)
        fprintf(stderr, "hypfs-fuse: -o cache_values: this kernel cannot "
                "open files without asking hypfs-fuse (FUSE no_open, Linux "
                "5.1), so every open still does; reads are cached\n");
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e = { 0 };
    struct target t;
    struct value v;
    uint64_t gen = 0;
    bool gen_ok;
    char *path;
    int err = request_target(req, parent, &t);

    if (err)
        return (void)fuse_reply_err(req, err);
    path = join(t.path, name);
    /* To cache it, its generation first: a change after it is told. */
    gen_ok = path && fs.cache && !xenhypfs_get_generation(t.h, path, &gen);
    err = path ? get_value(t.h, path, &v) : ENOMEM;
    if (!err) {
        e.ino = node_looked_up(path);
        if (!e.ino)
            err = ENOMEM;
        else {
            fill_stat(req, e.ino, &v, &e.attr);
            if (gen_ok && watch_node(e.ino, path, gen)) {
                /* Until it changes: the watch thread tells the kernel. */
                e.attr_timeout = e.entry_timeout = CACHE_TIMEOUT;
            } else {
                never_cached(&e.attr);
                /*
                 * Names may be cached a moment, attributes never: every
                 * stat and open asks the hypervisor again with the
                 * caller's rights, so a name that went away (or is not the
                 * caller's to see) only leads to a fresh ENOENT.
                 */
                e.attr_timeout = 0;
                e.entry_timeout = ENTRY_TIMEOUT;
            }
        }
        value_free(&v);
    }
    free(path);
    release_target(&t);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct node *n;

    pthread_mutex_lock(&nodes_lock);
    n = node_by_ino(ino);
    if (n)
        node_forget(n, nlookup);
    pthread_mutex_unlock(&nodes_lock);
    unwatch_forgotten();
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    size_t i;

    pthread_mutex_lock(&nodes_lock);
    for (i = 0; i < count; i++) {
        struct node *n = node_by_ino(forgets[i].ino);

        if (n)
            node_forget(n, forgets[i].nlookup);
    }
    pthread_mutex_unlock(&nodes_lock);
    unwatch_forgotten();
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct target t;
    struct value v;
    struct stat st;
    int err = request_target(req, ino, &t);

    (void)fi;
    if (err)
        return (void)fuse_reply_err(req, err);
    err = get_value(t.h, t.path, &v);
    release_target(&t);
    if (err == EIO && ino == FUSE_ROOT_ID) {
        /* hypfsd is away: the mountpoint stays a directory meanwhile. */
        memset(&v, 0, sizeof(v));
        v.dir = true;
        err = 0;
    }
    if (err)
        return (void)fuse_reply_err(req, err);
    fill_stat(req, ino, &v, &st);
    value_free(&v);
    if (fs.cache && node_watched(ino))
        return (void)fuse_reply_attr(req, &st, CACHE_TIMEOUT);
    never_cached(&st);
    fuse_reply_attr(req, &st, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    (void)attr;
    /*
     * Truncation (O_TRUNC from `echo >`) is accepted and does nothing: a
     * write replaces the whole value anyway.  Times are ignored.  Owners
     * and modes are the hypervisor's.
     */
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
        return (void)fuse_reply_err(req, EPERM);
    op_getattr(req, ino, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct open_file *of;
    struct target t;
    int err;

    /* The kernel opens every file from now on, keeping its pages. */
    if (fs.no_open)
        return (void)fuse_reply_err(req, ENOSYS);
    err = request_target(req, ino, &t);
    if (err)
        return (void)fuse_reply_err(req, err);
    of = calloc(1, sizeof(*of));
    err = of ? get_value(t.h, t.path, &of->v) : ENOMEM;
    release_target(&t);
    if (!err && of->v.dir)
        err = EISDIR;
    if (!err && (fi->flags & O_ACCMODE) != O_RDONLY && !of->v.writable)
        err = EACCES;
    if (err) {
        if (of)
            value_free(&of->v);
        free(of);
        return (void)fuse_reply_err(req, err);
    }
    pthread_mutex_init(&of->vlock, NULL);
    fi->fh = (uintptr_t)of;
    if (fs.cache_values) {
        /* A kernel without no_open: the pages still stay (watched). */
        fi->direct_io = 0;
        fi->keep_cache = 1;
    } else {
        fi->direct_io = 1;  /* content from the snapshot, never a cache */
        fi->keep_cache = 0;
    }
    fuse_reply_open(req, fi);
}

/*
 * Reading from the start again takes the value again (the first read
 * after open uses open's): a re-read sees the current value, whose length
 * stat gives.  As on sysfs, it also clears what poll reports.
 */
static int refresh(fuse_req_t req, fuse_ino_t ino, struct open_file *of)
{
    struct target t;
    struct value v;
    int err = request_target(req, ino, &t);

    if (err)
        return err;
    err = get_value(t.h, t.path, &v);
    release_target(&t);
    if (err)
        return err;
    if (v.dir) {
        value_free(&v);
        return EISDIR;
    }
    pthread_mutex_lock(&polls_lock);
    of->changed = false;
    pthread_mutex_unlock(&polls_lock);
    value_free(&of->v);
    of->v = v;
    return 0;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    int err = 0;

    if (!of) {
        /* Opened by the kernel (no_open): the kernel caches the reply. */
        struct target t;
        struct value v;

        err = request_target(req, ino, &t);
        if (err)
            return (void)fuse_reply_err(req, err);
        err = get_value(t.h, t.path, &v);
        release_target(&t);
        if (!err && v.dir) {
            value_free(&v);
            err = EISDIR;
        }
        if (err)
            return (void)fuse_reply_err(req, err);
        if (off < 0 || (size_t)off >= v.len)
            size = 0;
        else if (size > v.len - (size_t)off)
            size = v.len - (size_t)off;
        fuse_reply_buf(req, size ? v.data + off : NULL, size);
        return value_free(&v);
    }
    pthread_mutex_lock(&of->vlock);
    if (off == 0 && of->read_once)
        err = refresh(req, ino, of);
    of->read_once = true;
    if (err) {
        pthread_mutex_unlock(&of->vlock);
        return (void)fuse_reply_err(req, err);
    }
    if (off < 0 || (size_t)off >= of->v.len)
        size = 0;
    else if (size > of->v.len - (size_t)off)
        size = of->v.len - (size_t)off;
    fuse_reply_buf(req, size ? of->v.data + off : NULL, size);
    pthread_mutex_unlock(&of->vlock);
}

/*
 * poll: always readable (and writable if it may be written), and
 * POLLPRI|POLLERR once the value changed since it was last read from the
 * start.  The first poll of an open file watches it.
 */
static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    unsigned int revents;
    bool need_watch;

    /* Opened by the kernel (no_open): nothing to keep a poll's state in. */
    if (!of) {
        if (ph)
            fuse_pollhandle_destroy(ph);
        return (void)fuse_reply_err(req, ENOSYS);
    }
    pthread_mutex_lock(&polls_lock);
    need_watch = !of->token;
    pthread_mutex_unlock(&polls_lock);
    if (need_watch) {
        struct target t;
        struct value now;
        uint64_t gen;

        if (!request_target(req, ino, &t)) {
            /* Its generation, then its value: no change falls between. */
            if (!xenhypfs_get_generation(t.h, t.path, &gen) &&
                !get_value(t.h, t.path, &now)) {
                bool differs;
                uint64_t token;

                pthread_mutex_lock(&of->vlock);
                differs = now.len != of->v.len ||
                          memcmp(now.data, of->v.data, now.len);
                pthread_mutex_unlock(&of->vlock);
                value_free(&now);
                pthread_mutex_lock(&polls_lock);
                token = next_poll_token++;
                pthread_mutex_unlock(&polls_lock);
                if (!xenhypfs_watch(t.h, t.path, token, gen) &&
                    !ep_add(t.h)) {
                    pthread_mutex_lock(&polls_lock);
                    of->token = token;
                    of->changed |= differs;
                    of->next_polled = polled;
                    polled = of;
                    pthread_mutex_unlock(&polls_lock);
                    /* The handle stays with the file while it watches. */
                    of->wh = t.h;
                    of->wslot = t.slot;
                    t.h = NULL;
                }
            }
            release_target(&t);
        }
    }
    pthread_mutex_lock(&polls_lock);
    revents = POLLIN | POLLRDNORM |
              (of->v.writable ? POLLOUT | POLLWRNORM : 0) |
              (of->changed ? POLLPRI | POLLERR : 0);
    if (ph) {
        if (of->ph)
            fuse_pollhandle_destroy(of->ph);
        of->ph = of->token ? ph : NULL;
        if (!of->token)
            fuse_pollhandle_destroy(ph);
    }
    pthread_mutex_unlock(&polls_lock);
    fuse_reply_poll(req, revents);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    struct target t;
    size_t len = size;
    unsigned short type = of ? of->v.type : 0;
    char *val;
    int err, ret;

    /*
     * Each write is a whole value, as on sysfs, wherever it lands:
     * "echo x >> file" sets x.  A write of nothing but a newline after
     * the start (bash's printf may split 'a\n\n' into two writes) is
     * the end of the value just written, not a value of its own.
     */
    if (off > 0 && size && !memchr(buf, 0, size) &&
        strspn(buf, "\n") >= size)
        return (void)fuse_reply_write(req, size);
    err = request_target(req, ino, &t);
    if (err)
        return (void)fuse_reply_err(req, err);
    if (!of) {
        /* Opened by the kernel (no_open): the entry's type, asked now. */
        struct value v;

        err = get_value(t.h, t.path, &v);
        if (!err && v.dir)
            err = EISDIR;
        type = v.type;
        value_free(&v);
        if (err) {
            release_target(&t);
            return (void)fuse_reply_err(req, err);
        }
    }
    if (type == xenhypfs_type_blob) {
        ret = xenhypfs_write_raw(t.h, t.path, buf, size);
        err = ret ? fs_errno(t.h, errno) : 0;
    } else {
        if (len && buf[len - 1] == '\n')
            len--;
        val = memchr(buf, '\0', len) ? NULL : malloc(len + 1);
        if (!val) {
            err = memchr(buf, '\0', len) ? EINVAL : ENOMEM;
        } else {
            memcpy(val, buf, len);
            val[len] = '\0';
            ret = xenhypfs_write(t.h, t.path, val);
            err = ret ? fs_errno(t.h, errno) : 0;
            free(val);
        }
    }
    release_target(&t);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_write(req, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

    (void)ino;
    if (of && of->token) {
        struct open_file **pp;

        xenhypfs_unwatch(of->wh, of->token);
        pthread_mutex_lock(&polls_lock);
        for (pp = &polled; *pp; pp = &(*pp)->next_polled)
            if (*pp == of) {
                *pp = of->next_polled;
                break;
            }
        if (of->ph)
            fuse_pollhandle_destroy(of->ph);
        pthread_mutex_unlock(&polls_lock);
        ep_drop(of->wh);
        put_handle(of->wh, of->wslot);
    }
    if (of) {
        /*
         * The kernel sends RELEASE once the last read's reply is in, which
         * can be while that read's thread is still returning from
         * writev(): wait until it let go of the value.
         */
        pthread_mutex_lock(&of->vlock);
        pthread_mutex_unlock(&of->vlock);
        value_free(&of->v);
        free(of->ents);
        pthread_mutex_destroy(&of->vlock);
        free(of);
    }
    fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct open_file *of;
    struct target t;
    int err = request_target(req, ino, &t);

    if (err)
        return (void)fuse_reply_err(req, err);
    of = calloc(1, sizeof(*of));
    if (of) {
        pthread_mutex_init(&of->vlock, NULL);
        of->ents = xenhypfs_readdir(t.h, t.path, &of->n);
        err = of->ents ? 0 : fs_errno(t.h, errno);
        /* The directory's path, for readdir's inode numbers. */
        of->v.data = err ? NULL : t.path;
        if (!err)
            t.path = NULL;
    } else {
        err = ENOMEM;
    }
    release_target(&t);
    if (err) {
        if (of)
            pthread_mutex_destroy(&of->vlock);
        free(of);
        return (void)fuse_reply_err(req, err);
    }
    fi->fh = (uintptr_t)of;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    const char *dir = of->v.data;
    char *buf = malloc(size ? size : 1);
    size_t used = 0;
    off_t i;

    if (!buf)
        return (void)fuse_reply_err(req, ENOMEM);
    /* Offsets: 0 ".", 1 "..", then the entries. */
    for (i = off; i < (off_t)of->n + 2; i++) {
        struct stat st = { 0 };
        const char *name;
        char *path = NULL;
        size_t need;

        if (i < 2) {
            name = i ? ".." : ".";
            st.st_mode = S_IFDIR;
            st.st_ino = ino;
        } else {
            const struct xenhypfs_dirent *e = &of->ents[i - 2];

            name = e->name;
            st.st_mode = e->type == xenhypfs_type_dir ? S_IFDIR : S_IFREG;
            path = join(dir, name);
            /* A stable, non-zero number; lookup gives the real one. */
            st.st_ino = path ? (hash_str(path) | 1u) + ((fuse_ino_t)1 << 32) : 1;
            free(path);
        }
        need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    op_release(req, ino, fi);
}

/* The tree's shape is the hypervisor's. */
static void op_no_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                         mode_t mode, struct fuse_file_info *fi)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)fi;
    fuse_reply_err(req, EPERM);
}

static void op_no_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode)
{
    (void)parent;
    (void)name;
    (void)mode;
    fuse_reply_err(req, EPERM);
}

static void op_no_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent;
    (void)name;
    fuse_reply_err(req, EPERM);
}

static void op_no_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode, dev_t rdev)
{
    (void)rdev;
    op_no_mkdir(req, parent, name, mode);
}

static void op_no_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                         fuse_ino_t newparent, const char *newname,
                         unsigned int flags)
{
    (void)newparent;
    (void)newname;
    (void)flags;
    op_no_unlink(req, parent, name);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st = { 0 };

    (void)ino;
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .poll = op_poll,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .create = op_no_create,
    .mkdir = op_no_mkdir,
    .mknod = op_no_mknod,
    .unlink = op_no_unlink,
    .rmdir = op_no_unlink,
    .rename = op_no_rename,
    .statfs = op_statfs,
};

/* ---- Start ---- */

struct options {
    char *socket;
    int cache_values;
    int help;
    int version;
};

static const struct fuse_opt option_spec[] = {
    { "--socket=%s", offsetof(struct options, socket), 1 },
    { "socket=%s", offsetof(struct options, socket), 1 },   /* -o, fstab */
    { "cache_values", offsetof(struct options, cache_values), 1 },
    { "-s %s", offsetof(struct options, socket), 1 },
    { "--help", offsetof(struct options, help), 1 },
    { "-h", offsetof(struct options, help), 1 },
    { "--version", offsetof(struct options, version), 1 },
    { "-V", offsetof(struct options, version), 1 },
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
    printf("usage: %s [options] MOUNTPOINT\n"
           "\n"
           "Mount the hypervisor filesystem: of a running hypfsd, of Xen\n"
           "through /dev/xen/privcmd in a Xen control domain, or in a guest\n"
           "through its hypfs port.\n"
           "\n"
           "    -s, --socket=PATH      hypfsd's socket (default $HYPFS_SOCKET or\n"
           "                           %s)\n"
           "    -f                     stay in the foreground\n"
           "    -d                     debug output (implies -f)\n"
           "    -o allow_other         let other users use the mount, each with\n"
           "                           their own rights (needs root to act as them)\n"
           "    -o socket=PATH         the same as --socket (for mount(8), fstab)\n"
           "    -o cache_values        keep values in the kernel's page cache until\n"
           "                           they change (interface version 2, a mount\n"
           "                           for one user; poll is not offered)\n"
           "    -o OPTION              other FUSE mount options\n"
           "    -V, --version          print the version and exit\n"
           "    -h, --help             print this help and exit\n"
           "\n"
           "Unmount with `fusermount3 -u MOUNTPOINT` or SIGTERM.  From fstab:\n"
           "  hypfs /mnt/hypfs fuse.hypfs-fuse socket=/run/hypfs/hypfsd.sock 0 0\n",
           prog, xenhypfs_socket_path(NULL));
}

/* Did the user ask for allow_other (in any -o list)? */
static bool has_allow_other(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *o = NULL;

        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            o = argv[i + 1];
        else if (!strncmp(argv[i], "-o", 2))
            o = argv[i] + 2;
        if (o && strstr(o, "allow_other"))
            return true;
    }
    return false;
}

/*
 * mount(8) and fstab run "hypfs-fuse SOURCE MOUNTPOINT -o OPTIONS" (type
 * fuse.hypfs-fuse): the source names nothing here, so it is dropped when
 * two non-option arguments are given.
 */
static int drop_source(int argc, char **argv)
{
    int i, first = -1, n = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "-s")) {
            i++;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        if (!n++)
            first = i;
    }
    if (n != 2)
        return argc;
    memmove(&argv[first], &argv[first + 1],
            (size_t)(argc - first) * sizeof(*argv));
    return argc - 1;
}

/* Is @path already a hypfs mount?  (Mounting again would stack them.) */
static bool hypfs_mounted_at(const char *path)
{
    char real[PATH_MAX], line[4096];
    bool found = false;
    FILE *f;

    if (!realpath(path, real))
        return false;
    f = fopen("/proc/self/mountinfo", "r");
    while (f && !found && fgets(line, sizeof(line), f)) {
        char mnt[PATH_MAX];
        const char *sep = strstr(line, " - ");

        /* Field 5 is the mount point (octal escapes for spaces aside). */
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && sep &&
            !strcmp(mnt, real) && !strncmp(sep + 3, "fuse.hypfs", 10))
            found = true;
    }
    if (f)
        fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    int nargs = drop_source(argc, argv);
    struct fuse_args args = FUSE_ARGS_INIT(nargs, argv);
    struct xenhypfs_open_args open_args = { XENHYPFS_TRANSPORT_SOCKET };
    char open_err[320];
    struct fuse_cmdline_opts opts;
    struct options o = { 0 };
    struct fuse_loop_config *loop_cfg;
    struct fuse_session *se;
    pthread_t watcher;
    bool watching = false;
    int ret = 1, i;

    fs.allow_other = has_allow_other(nargs, argv);
    if (fuse_opt_parse(&args, &o, option_spec, NULL) == -1)
        return 1;
    if (o.version) {
        printf("hypfs-fuse (hypfs) %s\n", HYPFS_VERSION_STRING);
        fuse_opt_free_args(&args);
        free(o.socket);
        return 0;
    }
    if (o.help) {
        usage(argv[0]);
        fuse_opt_free_args(&args);
        return 0;
    }
    if (fuse_parse_cmdline(&args, &opts) != 0)
        return 1;
    if (!opts.mountpoint) {
        fprintf(stderr, "hypfs-fuse: no mountpoint (try --help)\n");
        goto out_args;
    }
    if (hypfs_mounted_at(opts.mountpoint)) {
        fprintf(stderr, "hypfs-fuse: %s: hypfs is mounted there already "
                "(unmount it first: fusermount3 -u %s)\n", opts.mountpoint,
                opts.mountpoint);
        goto out_args;
    }
    fs.socket = xenhypfs_socket_path(o.socket);
    fs.uid = getuid();
    fs.gid = getgid();
    fs.euid = geteuid();
    fs.egid = getegid();
    fs.as_root = geteuid() == 0;
    fs.mounted = time(NULL);

    if (access("/dev/fuse", R_OK | W_OK)) {
        fprintf(stderr, "hypfs-fuse: /dev/fuse: %s (is the fuse module "
                "loaded, and may this user use it?)\n", strerror(errno));
        goto out_args;
    }
    /*
     * As xenhypfs chooses: $HYPFS_TRANSPORT if set; a socket if one is
     * named; inside a virtual machine with hypfs's port, the channel (one
     * connection for the whole guest: it is one domain); else privcmd in
     * a Xen control domain, or hypfsd's default socket.
     */
    open_args.socket_path = fs.socket;
    if (xenhypfs_transport_from_env(&open_args.transport, open_err,
                                    sizeof(open_err))) {
        fprintf(stderr, "hypfs-fuse: %s\n", open_err);
        goto out_args;
    }
    if (open_args.transport == XENHYPFS_TRANSPORT_AUTO) {
        if (o.socket || getenv("HYPFS_SOCKET"))
            open_args.transport = XENHYPFS_TRANSPORT_SOCKET;
        else if (!xenhypfs_find_channel(fs.channel, sizeof(fs.channel)))
            open_args.transport = XENHYPFS_TRANSPORT_CHANNEL;
    }
    if (open_args.transport == XENHYPFS_TRANSPORT_CHANNEL) {
        open_args.channel_path = fs.channel[0] ? fs.channel : NULL;
        open_args.socket_path = NULL;
    }
    open_args.err = open_err;
    open_args.errlen = sizeof(open_err);
    fs.own = xenhypfs_open_ext(&open_args);
    if (!fs.own) {
        fprintf(stderr, "hypfs-fuse: %s\n", open_err);
        goto out_args;
    }
    fs.guest = xenhypfs_transport_of(fs.own) == XENHYPFS_TRANSPORT_CHANNEL;
    fs.privcmd = xenhypfs_transport_of(fs.own) == XENHYPFS_TRANSPORT_PRIVCMD;
    /*
     * Through privcmd the hypervisor sees this domain, whoever asks: a
     * mount for other users would lend them the control domain's rights.
     */
    if (fs.privcmd && fs.allow_other) {
        fprintf(stderr, "hypfs-fuse: -o allow_other: through %s the "
                "hypervisor cannot tell users apart, so other users would "
                "act with this domain's rights; mount without it\n",
                "/dev/xen/privcmd");
        goto out_close;
    }
    if (!node_get("/"))
        goto out_close;
    /*
     * Interface version 2: watch what the kernel caches, and polled
     * files.  Cache only for one user: the kernel's cache is the same for
     * every caller of a shared mount, and what each may see is not.
     */
    {
        uint64_t g;
        bool v2, shared = fs.allow_other && fs.as_root;
        int why = 0;

        watch_ep = epoll_create1(EPOLL_CLOEXEC);
        v2 = !xenhypfs_get_generation(fs.own, "/", &g);
        if (watch_ep < 0 || !v2 || shared)
            fs.cache = false;
        else if ((why = ep_add(fs.own)) != 0)
            fs.cache = false;
        else
            fs.cache = true;
        if (o.cache_values && !fs.cache) {
            if (!v2 || why == EOPNOTSUPP)
                fprintf(stderr, "hypfs-fuse: -o cache_values: the hypervisor "
                        "offers no watches here (interface version 1, or "
                        "Xen's privcmd), so nothing would tell when a "
                        "cached value changes; mount without it\n");
            else if (shared)
                fprintf(stderr, "hypfs-fuse: -o cache_values: with "
                        "allow_other the kernel's cache would be shared by "
                        "users who may see different values; mount one of "
                        "them without allow_other\n");
            else
                fprintf(stderr, "hypfs-fuse: -o cache_values: cannot "
                        "watch for changes: %s\n",
                        strerror(why ? why : errno));
            goto out_close;
        }
        fs.cache_values = o.cache_values;
    }

    /* fsname and subtype show in mount(8) and /proc/mounts. */
    fuse_opt_add_arg(&args, "-ofsname=hypfs,subtype=hypfs");
    se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!se)
        goto out_close;
    if (fuse_set_signal_handlers(se) || fuse_session_mount(se, opts.mountpoint)) {
        fprintf(stderr, "hypfs-fuse: cannot mount on %s\n", opts.mountpoint);
        goto out_session;
    }
    fuse_daemonize(opts.foreground);
    fs.se = se;
    if (watch_ep >= 0) {
        struct epoll_event stop_ev = { .events = EPOLLIN, .data.ptr = NULL };

        watch_stop = eventfd(0, EFD_CLOEXEC);
        if (watch_stop < 0 ||
            epoll_ctl(watch_ep, EPOLL_CTL_ADD, watch_stop, &stop_ev) ||
            pthread_create(&watcher, NULL, watch_thread, NULL)) {
            /* Without it nothing may be cached, nor polled. */
            fs.cache = false;
            close(watch_ep);
            watch_ep = -1;
            if (fs.cache_values) {
                fprintf(stderr, "hypfs-fuse: -o cache_values: cannot start "
                        "the thread that watches for changes: %s\n",
                        strerror(errno));
                fuse_session_unmount(se);
                goto out_session;
            }
        } else
            watching = true;
    }
    /*
     * Many threads, so that a slow or busy user delays only its own
     * requests.  (libfuse starts them as requests come, up to the maximum,
     * and lets the idle ones beyond a few go.)
     */
    loop_cfg = fuse_loop_cfg_create();
    if (!loop_cfg) {
        fprintf(stderr, "hypfs-fuse: out of memory\n");
        ret = 1;
        fuse_session_unmount(se);
        goto out_session;
    }
    fuse_loop_cfg_set_max_threads(loop_cfg, MAX_THREADS);
    fuse_loop_cfg_set_idle_threads(loop_cfg, IDLE_THREADS);
    ret = fuse_session_loop_mt(se, loop_cfg);
    fuse_loop_cfg_destroy(loop_cfg);
    /* The watch thread uses the session and the handles: it ends first. */
    if (watching) {
        uint64_t one = 1;

        if (write(watch_stop, &one, sizeof(one)) == sizeof(one))
            pthread_join(watcher, NULL);
    }
    /* A signal (SIGTERM, SIGINT, SIGHUP) is a clean stop, not a failure. */
    ret = ret && ret != SIGTERM && ret != SIGINT && ret != SIGHUP ? 1 : 0;
    fuse_session_unmount(se);
 out_session:
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
 out_close:
    xenhypfs_close(fs.own);
    for (i = 0; i < USER_CACHE; i++) {
        xenhypfs_close(users[i].h);
        free(users[i].who);
    }
 out_args:
    free(opts.mountpoint);
    free(o.socket);
    fuse_opt_free_args(&args);
    return ret;
}
