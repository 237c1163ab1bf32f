/*
 * Watches (interface version 2): who watches what, noticing changes, and
 * telling the watchers.
 *
 * Each connection has a watch set: its watches by token, each with the
 * path, the generation its watcher knows, and whether an event is due.
 * Three parties touch it:
 *
 *   the core's watch ops   (XEN_HYPFS_OP_watch / _unwatch, in the
 *                          connection's thread, under the tree's reader
 *                          lock): check the limits and stage the change
 *                          in the set, nothing more;
 *   the connection thread  applies what was staged once the operation is
 *                          over, checks the new watch once, and sends
 *                          the events due between frames (watch_flush);
 *   the notifier thread    woken by the core's change hook (which only
 *                          takes note of the path), asks the core for the
 *                          generation of each watch the change may
 *                          concern, as its watcher sees it, and marks an
 *                          event due where it moved.
 *
 * Lock order: a set's lock, then the tree lock (the notifier asks the core
 * while holding the set).  So nothing takes a set's lock while holding
 * the tree lock: that is why the watch ops only stage.  A watch applied
 * after its operation is checked once more by the connection thread: a
 * change between the operation and the apply, which the notifier could
 * not see, is caught there.
 *
 * What a watcher learns is what the core's generations say for its
 * caller: nothing about entries hidden from it.  Events coalesce (one
 * flag per watch), so a watcher that does not read costs a bounded set,
 * and its thread, blocked sending, closes it after the send timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hypfsd.h"

struct watch {
    uint64_t token;
    char *path;
    size_t path_len;            /* without trailing '/' (but "/" stays) */
    uint64_t known;             /* the generation the watcher knows */
    int32_t status;             /* what it was last told: 0 or -errno */
    bool pending;               /* an event is due */
    struct watch *next;         /* in its bucket */
};

enum staged_kind { STAGED_NONE, STAGED_WATCH, STAGED_UNWATCH };

struct watchset {
    pthread_mutex_t lock;       /* the watches' fields and membership */
    unsigned int refs;          /* under registry.lock */
    uid_t uid;
    bool control;               /* no memory budget; still the count */
    bool channel;               /* events go out as channel frames */
    struct watch **buckets;
    size_t nbuckets, n;
    size_t bytes;               /* of paths, against the guests' budget */
    bool any_pending;
    int efd;                    /* eventfd: events are due */
    struct watchset *next, *prev;       /* registry.list */
    /* What an operation staged; the connection thread's only. */
    struct {
        enum staged_kind kind;
        uint64_t token, known;
        char path[XEN_HYPFS_MAX_PATHLEN];
    } st;
};

static struct {
    pthread_mutex_t lock;       /* list, refs, guest_bytes */
    struct watchset *list;
    size_t guest_bytes;         /* all guests' watch paths together */
    unsigned int max_watches;
    size_t guest_bytes_max;
} registry = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .max_watches = WATCHES_PER_CONN_DEFAULT,
    .guest_bytes_max = 16u << 20,
};

/* What changed since the notifier last looked. */
#define CHANGES_MAX 64
static struct {
    pthread_mutex_t lock;
    char paths[CHANGES_MAX][XEN_HYPFS_MAX_PATHLEN];
    unsigned int n;
    bool all;                   /* too many, or who-is-who changed */
    bool signalled;
    int efd;
    pthread_t thread;
    bool running, stop;
} changes = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .efd = -1,
};

static struct hypfs *watch_fs;

/* ---- Paths ---- */

static size_t trimmed_len(const char *path)
{
    size_t n = strlen(path);

    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

/*
 * May a change at @changed move the generation of @w's path?  When one is
 * the other, or below it: a change below a directory moves it, and a
 * directory that goes takes what was below with it.
 */
static bool concerns(const struct watch *w, const char *changed)
{
    size_t cl = trimmed_len(changed), wl = w->path_len;
    size_t n = cl < wl ? cl : wl;

    if (memcmp(w->path, changed, n))
        return false;
    if (cl == wl)
        return true;
    /* The shorter is a prefix: at a component boundary? */
    if (n == 1)
        return true;            /* "/" */
    return (cl > wl ? changed[n] : w->path[n]) == '/';
}

/* ---- Sets ---- */

static size_t bucket_of(const struct watchset *ws, uint64_t token)
{
    return (size_t)((token * 0x9e3779b97f4a7c15ull) >> 40) % ws->nbuckets;
}

static struct watch *find(const struct watchset *ws, uint64_t token)
{
    struct watch *w;

    if (!ws->nbuckets)
        return NULL;
    for (w = ws->buckets[bucket_of(ws, token)]; w; w = w->next)
        if (w->token == token)
            return w;
    return NULL;
}

void watchset_set_channel(struct watchset *ws)
{
    ws->channel = true;
}

struct watchset *watchset_new(uid_t uid, bool control)
{
    struct watchset *ws = calloc(1, sizeof(*ws));

    if (!ws)
        return NULL;
    pthread_mutex_init(&ws->lock, NULL);
    ws->uid = uid;
    ws->control = control;
    ws->efd = -1;
    ws->refs = 1;
    pthread_mutex_lock(&registry.lock);
    ws->next = registry.list;
    if (registry.list)
        registry.list->prev = ws;
    registry.list = ws;
    pthread_mutex_unlock(&registry.lock);
    return ws;
}

static void watch_free(struct watchset *ws, struct watch *w)
{
    if (!ws->control) {
        pthread_mutex_lock(&registry.lock);
        registry.guest_bytes -= w->path_len + 1;
        pthread_mutex_unlock(&registry.lock);
    }
    ws->bytes -= w->path_len + 1;
    free(w->path);
    free(w);
}

/* Drop a reference; registry.lock held. */
static void put_locked(struct watchset *ws)
{
    size_t i;

    if (--ws->refs)
        return;
    for (i = 0; i < ws->nbuckets; i++)
        while (ws->buckets[i]) {
            struct watch *w = ws->buckets[i];

            ws->buckets[i] = w->next;
            if (!ws->control)
                registry.guest_bytes -= w->path_len + 1;
            free(w->path);
            free(w);
        }
    free(ws->buckets);
    if (ws->efd >= 0)
        close(ws->efd);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}

void watchset_close(struct watchset *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&registry.lock);
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        registry.list = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->next = ws->prev = NULL;
    put_locked(ws);
    pthread_mutex_unlock(&registry.lock);
}

size_t watchset_count(const struct watchset *ws)
{
    return ws ? __atomic_load_n(&ws->n, __ATOMIC_RELAXED) : 0;
}

int watchset_fd(const struct watchset *ws)
{
    return ws ? ws->efd : -1;
}

/* ---- The core's watch ops: check and stage ---- */

static struct watchset *set_of(const struct hypfs_caller *caller)
{
    const struct hypfsd_guest *g = caller->mem_ctx;

    return caller->mem == &hypfsd_guest_ops && g ? g->watches : NULL;
}

static int op_watch(void *arg, const struct hypfs_caller *caller,
                    const char *path, uint64_t token, uint64_t known,
                    uint64_t gen)
{
    struct watchset *ws = set_of(caller);
    size_t len = trimmed_len(path);

    (void)arg;
    (void)gen;      /* checked again once applied: see watch_apply() */
    if (!ws)
        return -EOPNOTSUPP;
    /* Membership changes only in this thread: read without the lock. */
    if (!find(ws, token)) {
        if (ws->n >= registry.max_watches)
            return -ENOSPC;
        if (!ws->control) {
            bool full;

            pthread_mutex_lock(&registry.lock);
            full = registry.guest_bytes + len + 1 > registry.guest_bytes_max;
            pthread_mutex_unlock(&registry.lock);
            if (full)
                return -ENOSPC;
        }
    }
    ws->st.kind = STAGED_WATCH;
    ws->st.token = token;
    ws->st.known = known;
    memcpy(ws->st.path, path, len);
    ws->st.path[len] = '\0';
    return 0;
}

static int op_unwatch(void *arg, const struct hypfs_caller *caller,
                      uint64_t token)
{
    struct watchset *ws = set_of(caller);

    (void)arg;
    if (!ws)
        return -EOPNOTSUPP;
    if (!find(ws, token))
        return -ENOENT;
    ws->st.kind = STAGED_UNWATCH;
    ws->st.token = token;
    return 0;
}

static const struct hypfs_watch_ops watch_ops = {
    .watch = op_watch,
    .unwatch = op_unwatch,
};

/* ---- Applying, in the connection's thread ---- */

/* Mark @w due if what @caller sees now differs from what it knows. */
static bool check_one(struct watch *w, const struct hypfs_caller *caller)
{
    uint64_t gen = 0;
    long ret = hypfs_get_generation(watch_fs, caller, w->path, &gen);
    int32_t status = ret < 0 ? (int32_t)ret : 0;

    if (status == w->status && (status || gen == w->known))
        return false;
    w->status = status;
    if (!status)
        w->known = gen;
    w->pending = true;
    return true;
}

static void signal_set(struct watchset *ws)
{
    uint64_t one = 1;

    if (ws->efd >= 0 && write(ws->efd, &one, sizeof(one)) < 0) {
        /* Saturated: it is readable anyway. */
    }
}

/* Four times the buckets (lock held); stays as it is without memory. */
static void grow_buckets(struct watchset *ws)
{
    size_t nb = ws->nbuckets * 4, i;
    struct watch **b = calloc(nb, sizeof(*b)), **old = ws->buckets;
    size_t oldn = ws->nbuckets;

    if (!b)
        return;
    ws->buckets = b;
    ws->nbuckets = nb;
    for (i = 0; i < oldn; i++)
        while (old[i]) {
            struct watch *w = old[i];
            size_t k = bucket_of(ws, w->token);

            old[i] = w->next;
            w->next = b[k];
            b[k] = w;
        }
    free(old);
}

int watch_apply(struct watchset *ws, const struct hypfs_caller *caller)
{
    struct watch *w;
    size_t len;
    int ret = 0;

    if (!ws || ws->st.kind == STAGED_NONE)
        return 0;
    pthread_mutex_lock(&ws->lock);
    if (ws->st.kind == STAGED_UNWATCH) {
        struct watch **pp = &ws->buckets[bucket_of(ws, ws->st.token)];

        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->token == ws->st.token) {
                w = *pp;
                *pp = w->next;
                __atomic_store_n(&ws->n, ws->n - 1, __ATOMIC_RELAXED);
                watch_free(ws, w);
                break;
            }
        goto out;
    }
    if (ws->efd < 0) {
        ws->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ws->efd < 0) {
            ret = -errno;
            goto out;
        }
    }
    if (!ws->nbuckets) {
        ws->buckets = calloc(64, sizeof(*ws->buckets));
        if (!ws->buckets) {
            ret = -ENOMEM;
            goto out;
        }
        ws->nbuckets = 64;
    }
    len = strlen(ws->st.path);
    w = find(ws, ws->st.token);
    if (!w && ws->n >= ws->nbuckets * 2)
        grow_buckets(ws);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || !(w->path = strdup(ws->st.path))) {
            free(w);
            ret = -ENOMEM;
            goto out;
        }
        w->token = ws->st.token;
        w->path_len = len;
        w->next = ws->buckets[bucket_of(ws, w->token)];
        ws->buckets[bucket_of(ws, w->token)] = w;
        __atomic_store_n(&ws->n, ws->n + 1, __ATOMIC_RELAXED);
        ws->bytes += len + 1;
        if (!ws->control) {
            pthread_mutex_lock(&registry.lock);
            registry.guest_bytes += len + 1;
            pthread_mutex_unlock(&registry.lock);
        }
    } else if (strcmp(w->path, ws->st.path)) {
        /* Re-armed on another path. */
        char *p = strdup(ws->st.path);

        if (!p) {
            ret = -ENOMEM;
            goto out;
        }
        if (!ws->control) {
            pthread_mutex_lock(&registry.lock);
            registry.guest_bytes += len;
            registry.guest_bytes -= w->path_len;
            pthread_mutex_unlock(&registry.lock);
        }
        ws->bytes += len;
        ws->bytes -= w->path_len;
        free(w->path);
        w->path = p;
        w->path_len = len;
    }
    w->known = ws->st.known;
    w->status = 0;
    w->pending = false;
    /* Changes since the operation saw the generation: caught here. */
    if (check_one(w, caller)) {
        ws->any_pending = true;
        signal_set(ws);
    }
 out:
    ws->st.kind = STAGED_NONE;
    pthread_mutex_unlock(&ws->lock);
    return ret;
}

/* ---- Sending, in the connection's thread ---- */

#define FLUSH_BATCH 256

int watch_flush(struct watchset *ws, int fd)
{
    struct {
        struct hypfs_msg_hdr hdr;
        struct hypfs_msg_event ev;
    } frames[FLUSH_BATCH];
    uint64_t drained;
    size_t i, n;

    if (!ws || ws->efd < 0)
        return 0;
    if (read(ws->efd, &drained, sizeof(drained)) < 0) {
        /* Nothing signalled: there may still be events due (apply). */
    }
    for (;;) {
        n = 0;
        pthread_mutex_lock(&ws->lock);
        for (i = 0; ws->any_pending && i < ws->nbuckets && n < FLUSH_BATCH;
             i++) {
            struct watch *w;

            for (w = ws->buckets[i]; w && n < FLUSH_BATCH; w = w->next) {
                if (!w->pending)
                    continue;
                hypfs_msg_hdr_init(&frames[n].hdr, HYPFS_MSG_EVENT,
                                   sizeof(frames[n].ev), 0);
                frames[n].ev.token = w->token;
                frames[n].ev.gen = w->status ? 0 : w->known;
                frames[n].ev.status = w->status;
                frames[n].ev.pad = 0;
                w->pending = false;
                n++;
            }
        }
        if (n < FLUSH_BATCH)
            ws->any_pending = false;
        pthread_mutex_unlock(&ws->lock);
        if (!n)
            return 0;
        /* Blocking, within the send timeout: a watcher that does not read
         * is closed when it runs out. */
        if (ws->channel) {
            for (i = 0; i < n; i++) {
                struct iovec v = { &frames[i], sizeof(frames[i]) };

                if (hypfs_msg_write_chan(fd, &v, 1))
                    return -1;
            }
        } else if (hypfs_msg_write_all(fd, frames, n * sizeof(frames[0])))
            return -1;
    }
}

/* ---- Noticing changes ---- */

static void on_change(void *arg, const char *path, uint64_t gen)
{
    uint64_t one = 1;
    bool wake;

    (void)arg;
    (void)gen;
    pthread_mutex_lock(&changes.lock);
    if (!changes.all) {
        if (changes.n == CHANGES_MAX)
            changes.all = true;
        else
            snprintf(changes.paths[changes.n++], XEN_HYPFS_MAX_PATHLEN, "%s",
                     path);
    }
    wake = !changes.signalled;
    changes.signalled = true;
    pthread_mutex_unlock(&changes.lock);
    if (wake && changes.efd >= 0 &&
        write(changes.efd, &one, sizeof(one)) < 0) {
        /* Saturated: the notifier is awake anyway. */
    }
}

void watch_everything_changed(void)
{
    uint64_t one = 1;
    bool wake;

    pthread_mutex_lock(&changes.lock);
    changes.all = true;
    wake = !changes.signalled;
    changes.signalled = true;
    pthread_mutex_unlock(&changes.lock);
    if (wake && changes.efd >= 0 &&
        write(changes.efd, &one, sizeof(one)) < 0) {
        /* Saturated: the notifier is awake anyway. */
    }
}

/* Look at every watch @batch concerns, in every set. */
static void notice(char (*batch)[XEN_HYPFS_MAX_PATHLEN], unsigned int nb,
                   bool all)
{
    struct watchset **sets = NULL, *ws;
    struct callers_snap *snap;
    size_t nsets = 0, cap = 0, i, b;

    pthread_mutex_lock(&registry.lock);
    for (ws = registry.list; ws; ws = ws->next) {
        if (!watchset_count(ws))
            continue;
        if (nsets == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct watchset **ns = realloc(sets, nc * sizeof(*ns));

            if (!ns)
                break;      /* the rest wait for the next change */
            sets = ns;
            cap = nc;
        }
        ws->refs++;
        sets[nsets++] = ws;
    }
    pthread_mutex_unlock(&registry.lock);

    snap = callers_get();
    for (i = 0; i < nsets; i++) {
        struct hypfs_caller caller = { 0 };
        bool fire = false;

        ws = sets[i];
        callers_lookup(snap, ws->uid, &caller.domid, &caller.flags);
        pthread_mutex_lock(&ws->lock);
        for (b = 0; b < ws->nbuckets; b++) {
            struct watch *w;

            for (w = ws->buckets[b]; w; w = w->next) {
                unsigned int k;
                bool hit = all;

                for (k = 0; !hit && k < nb; k++)
                    hit = concerns(w, batch[k]);
                if (hit && check_one(w, &caller))
                    fire = true;
            }
        }
        if (fire) {
            ws->any_pending = true;
            signal_set(ws);
        }
        pthread_mutex_unlock(&ws->lock);
    }
    callers_put(snap);

    pthread_mutex_lock(&registry.lock);
    for (i = 0; i < nsets; i++)
        put_locked(sets[i]);
    pthread_mutex_unlock(&registry.lock);
    free(sets);
}

static void *notifier(void *arg)
{
    static char batch[CHANGES_MAX][XEN_HYPFS_MAX_PATHLEN];

    (void)arg;
    for (;;) {
        struct pollfd pfd = { .fd = changes.efd, .events = POLLIN };
        uint64_t v;
        unsigned int nb;
        bool all, stop;

        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            break;
        if (read(changes.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            break;
        pthread_mutex_lock(&changes.lock);
        stop = changes.stop;
        nb = changes.n;
        all = changes.all;
        memcpy(batch, changes.paths, (size_t)nb * sizeof(batch[0]));
        changes.n = 0;
        changes.all = false;
        changes.signalled = false;
        pthread_mutex_unlock(&changes.lock);
        if (stop)
            break;
        if (nb || all)
            notice(batch, nb, all);
    }
    return NULL;
}

int watch_start(struct hypfs *fs, unsigned int max_watches,
                size_t guest_bytes_max)
{
    watch_fs = fs;
    registry.max_watches = max_watches;
    registry.guest_bytes_max = guest_bytes_max;
    changes.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (changes.efd < 0)
        return -errno;
    /* What was noted before (the mapping's first load) is moot: no watch
     * exists yet, and the next change must wake the notifier. */
    pthread_mutex_lock(&changes.lock);
    changes.n = 0;
    changes.all = false;
    changes.signalled = false;
    pthread_mutex_unlock(&changes.lock);
    hypfs_set_change_hook(fs, on_change, NULL);
    hypfs_set_watch_ops(fs, &watch_ops, NULL);
    if (pthread_create(&changes.thread, NULL, notifier, NULL)) {
        hypfs_set_change_hook(fs, NULL, NULL);
        hypfs_set_watch_ops(fs, NULL, NULL);
        close(changes.efd);
        changes.efd = -1;
        return -EAGAIN;
    }
    changes.running = true;
    return 0;
}

void watch_stop(void)
{
    uint64_t one = 1;

    if (!changes.running)
        return;
    pthread_mutex_lock(&changes.lock);
    changes.stop = true;
    pthread_mutex_unlock(&changes.lock);
    if (write(changes.efd, &one, sizeof(one)) < 0) {
        /* Saturated: it wakes anyway. */
    }
    pthread_join(changes.thread, NULL);
    changes.running = false;
    hypfs_set_change_hook(watch_fs, NULL, NULL);
    hypfs_set_watch_ops(watch_fs, NULL, NULL);
    close(changes.efd);
    changes.efd = -1;
    changes.stop = false;
}

void watch_stats(size_t *sets_watching, size_t *watches)
{
    struct watchset *ws;

    *sets_watching = *watches = 0;
    pthread_mutex_lock(&registry.lock);
    for (ws = registry.list; ws; ws = ws->next)
        if (watchset_count(ws)) {
            (*sets_watching)++;
            *watches += watchset_count(ws);
        }
    pthread_mutex_unlock(&registry.lock);
}
