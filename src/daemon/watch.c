/*
 * Watches (interface version 2): who watches what, noticing changes, and
 * telling the watchers.
 *
 * An index of watched paths, shared by every connection: a tree of nodes,
 * one per path that is watched or lies above one.  On a node hang its
 * groups: a group is one connection's watches of that path, which all see
 * the path the same way (one caller).  A connection's watch set keeps its
 * watches by token and its groups.
 *
 * A change at a path concerns the watches of that path, of the paths above
 * it (a change below a directory moves it) and of the paths below it (a
 * directory that goes takes what was below with it): the nodes met on the
 * way down to the changed path, and the subtree under it.  So a change
 * costs work in proportion to the groups it concerns, not to all watches
 * held: a domain's own watches of its own entries, however many, are never
 * looked at for a change elsewhere, and the thousands of tokens one
 * connection may have on one path are one group, looked at once.
 *
 * Three parties:
 *
 *   the core's watch ops   (XEN_HYPFS_OP_watch / _unwatch, in the
 *                          connection's thread, under the tree's reader
 *                          lock): check the count and stage the change,
 *                          nothing more;
 *   the connection thread  applies what was staged once the operation is
 *                          over (charging its domain's budget for every
 *                          byte it makes hypfsd hold: budget.c), checks the
 *                          new watch once, and sends the events due between
 *                          frames (watch_flush): each watch of a group
 *                          whose generation moved, in its own thread, so a
 *                          connection with many watches pays for them;
 *   the notifier thread    woken by the core's change hook (which only
 *                          takes note of the path), finds the groups the
 *                          change concerns in the index, asks the core for
 *                          each one's generation as its connection's caller
 *                          sees it, and marks the group due where it moved.
 *
 * Lock order: the index (a reader-writer lock: the notifier reads it,
 * making and removing watches writes it), then a set's lock, then the
 * tree lock (the core's generations).  The watch ops run under the tree
 * lock, so they take neither: that is why they only stage.  A watch
 * applied after its operation is checked once more by the connection
 * thread: a change between the operation and the apply, which the
 * notifier could not see, is caught there.
 *
 * What a watcher learns is what the core's generations say for its caller
 * (a socket's peer as the mapping says, a channel's domain for a channel):
 * nothing about entries hidden from it.  Events coalesce (a watch is due
 * or not), so a watcher that does not read holds nothing more, and its
 * thread, blocked sending, closes it after the send timeout.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hypfsd.h"

struct watchset;
struct wgroup;

/* One path in the index. */
struct wnode {
    struct wnode *parent;
    char *path;                 /* whole, without a trailing '/' ("/" stays) */
    size_t len;
    const char *name;           /* its last component, in path */
    size_t name_len;
    uint64_t hash;              /* of name, for the parent's table */
    struct wnode *sibling;      /* in the parent's bucket */
    struct wnode **kids;        /* a hash table of children */
    size_t nkids, kbuckets;
    LIST_HEAD(, wgroup) groups; /* hung here */
};

/* One connection's watches of one path. */
struct wgroup {
    struct wnode *node;
    struct watchset *ws;
    LIST_ENTRY(wgroup) on_node;         /* the node's groups (index lock) */
    LIST_ENTRY(wgroup) in_set;          /* the set's groups (set lock) */
    LIST_ENTRY(wgroup) due_link;        /* the set's due groups (set lock) */
    LIST_HEAD(, watch) watches;         /* (set lock) */
    size_t nwatches;
    uint64_t gen;               /* what its caller saw last (set lock) */
    int32_t status;             /* 0 or -errno, idem */
    bool due;                   /* on the set's due list */
    size_t charge;              /* of its domain's budget: it and its nodes */
};

struct watch {
    uint64_t token;
    struct wgroup *g;
    struct watch *next;         /* in its bucket */
    LIST_ENTRY(watch) in_group;
    uint64_t known;             /* the generation the watcher knows */
    int32_t status;             /* what it was last told: 0 or -errno */
    bool due;                   /* on the set's list of due watches */
    LIST_ENTRY(watch) due_link;
    size_t charge;
};

enum staged_kind { STAGED_NONE, STAGED_WATCH, STAGED_UNWATCH };

struct watchset {
    pthread_mutex_t lock;       /* the watches, groups, due list */
    unsigned int refs;          /* under registry.lock */
    uid_t uid;                  /* whose (a socket's peer) */
    struct channel *ch;         /* a channel's: its domain is the caller */
    bool control;               /* the control domain's: no budget */
    struct dbudget *budget;     /* its domain's (NULL: none) */
    struct watch **buckets;
    size_t nbuckets, n;
    LIST_HEAD(, wgroup) groups;
    LIST_HEAD(, wgroup) due;    /* groups whose generation moved */
    LIST_HEAD(, watch) wdue;    /* watches due on their own (just armed) */
    int efd;                    /* eventfd: events are due */
    size_t charge;              /* the buckets' */
    struct watchset *next, *prev;       /* registry.list */
    /* What an operation staged; the connection thread's only. */
    struct {
        enum staged_kind kind;
        uint64_t token, known;
        char path[XEN_HYPFS_MAX_PATHLEN];
    } st;
};

static struct {
    pthread_mutex_t lock;       /* list, refs */
    struct watchset *list;
    unsigned int max_watches;
} registry = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .max_watches = WATCHES_PER_CONN_DEFAULT,
};

/* The index of watched paths. */
static pthread_rwlock_t index_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct wnode *index_root;

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

/* ---- Paths and the index ---- */

/*
 * @path as the index keeps it, in @out (XEN_HYPFS_MAX_PATHLEN): no empty
 * component ("//"), no trailing '/' (but "/" stays).  Its length.
 */
static size_t normalize(const char *path, char *out)
{
    size_t n = 0;

    for (; *path && n < XEN_HYPFS_MAX_PATHLEN - 1; path++)
        if (*path != '/' || !n || out[n - 1] != '/')
            out[n++] = *path;
    while (n > 1 && out[n - 1] == '/')
        n--;
    if (!n)
        out[n++] = '/';
    out[n] = '\0';
    return n;
}

/* FNV-1a: names are short, and a child table is per node. */
static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;

    while (n--)
        h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

static struct wnode *kid(const struct wnode *p, const char *name, size_t len,
                         uint64_t h)
{
    struct wnode *k;

    if (!p->kbuckets)
        return NULL;
    for (k = p->kids[h & (p->kbuckets - 1)]; k; k = k->sibling)
        if (k->hash == h && k->name_len == len && !memcmp(k->name, name, len))
            return k;
    return NULL;
}

/* Link @k into @p's table, growing it; -ENOMEM (nothing linked). */
static int kid_link(struct wnode *p, struct wnode *k, size_t *cost)
{
    if (p->nkids >= p->kbuckets) {
        size_t nb = p->kbuckets ? p->kbuckets * 4 : 4, i;
        struct wnode **t = calloc(nb, sizeof(*t));

        if (!t)
            return -ENOMEM;
        for (i = 0; i < p->kbuckets; i++)
            while (p->kids[i]) {
                struct wnode *m = p->kids[i];

                p->kids[i] = m->sibling;
                m->sibling = t[m->hash & (nb - 1)];
                t[m->hash & (nb - 1)] = m;
            }
        *cost += budget_cost(t);
        *cost -= budget_cost(p->kids) < *cost ? budget_cost(p->kids) : *cost;
        free(p->kids);
        p->kids = t;
        p->kbuckets = nb;
    }
    k->sibling = p->kids[k->hash & (p->kbuckets - 1)];
    p->kids[k->hash & (p->kbuckets - 1)] = k;
    p->nkids++;
    return 0;
}

static void kid_unlink(struct wnode *p, struct wnode *k)
{
    struct wnode **pp = &p->kids[k->hash & (p->kbuckets - 1)];

    for (; *pp; pp = &(*pp)->sibling)
        if (*pp == k) {
            *pp = k->sibling;
            p->nkids--;
            return;
        }
}

static struct wnode *node_new(struct wnode *parent, const char *path,
                              size_t len, size_t *cost)
{
    struct wnode *n = calloc(1, sizeof(*n));

    if (!n || !(n->path = malloc(len + 1))) {
        free(n);
        return NULL;
    }
    memcpy(n->path, path, len);
    n->path[len] = '\0';
    n->len = len;
    n->parent = parent;
    if (parent) {
        n->name = n->path + (parent->len == 1 ? 1 : parent->len + 1);
        n->name_len = len - (size_t)(n->name - n->path);
    } else {
        n->name = n->path;
        n->name_len = 0;
    }
    n->hash = name_hash(n->name, n->name_len);
    *cost += budget_cost(n) + budget_cost(n->path);
    return n;
}

/* Free @n and the nodes above it that hold nothing any more. */
static void node_prune(struct wnode *n)
{
    while (n && LIST_EMPTY(&n->groups) && !n->nkids) {
        struct wnode *p = n->parent;

        if (p)
            kid_unlink(p, n);
        else
            index_root = NULL;
        free(n->kids);
        free(n->path);
        free(n);
        n = p;
    }
}

/* The node of @path (@len bytes, normalized), if it is in the index. */
static struct wnode *node_find(const char *path, size_t len)
{
    struct wnode *n = index_root;
    size_t at = 1;

    while (n && at < len) {
        size_t end = at;

        while (end < len && path[end] != '/')
            end++;
        n = kid(n, path + at, end - at, name_hash(path + at, end - at));
        at = end + 1;
    }
    return n;
}

/*
 * The node of @path (@len bytes, normalized), made with the missing ones
 * above it; their cost added to *cost.  NULL without memory (anything
 * made is pruned again).  Index write-locked.
 */
static struct wnode *node_make(const char *path, size_t len, size_t *cost)
{
    struct wnode *n;
    size_t at = 1;

    if (!index_root && !(index_root = node_new(NULL, "/", 1, cost)))
        return NULL;
    n = index_root;
    while (at < len) {
        size_t end = at;
        struct wnode *k;
        uint64_t h;

        while (end < len && path[end] != '/')
            end++;
        h = name_hash(path + at, end - at);
        k = kid(n, path + at, end - at, h);
        if (!k) {
            k = node_new(n, path, end, cost);
            if (!k || kid_link(n, k, cost)) {
                if (k) {
                    free(k->path);
                    free(k);
                }
                node_prune(n);
                return NULL;
            }
        }
        n = k;
        at = end + 1;
    }
    return n;
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

struct watchset *watchset_new(uid_t uid, struct channel *ch, bool control,
                              struct dbudget *b)
{
    struct watchset *ws = calloc(1, sizeof(*ws));

    if (!ws)
        return NULL;
    pthread_mutex_init(&ws->lock, NULL);
    ws->uid = uid;
    ws->control = control;
    ws->efd = -1;
    ws->refs = 1;
    if (ch) {
        channel_get(ch);
        ws->ch = ch;
    }
    ws->budget = budget_ref(b);
    pthread_mutex_lock(&registry.lock);
    ws->next = registry.list;
    if (registry.list)
        registry.list->prev = ws;
    registry.list = ws;
    pthread_mutex_unlock(&registry.lock);
    return ws;
}

/* The caller the set's watches are checked as: who its connection is now. */
static void set_caller(const struct watchset *ws, struct callers_snap *snap,
                       struct hypfs_caller *c)
{
    memset(c, 0, sizeof(*c));
    if (ws->ch)
        c->flags = channel_identity(ws->ch, &c->domid) ? HYPFS_CALLER_HYPFS
                                                       : 0;
    else
        callers_lookup(snap, ws->uid, &c->domid, &c->flags);
}

static void group_add(struct wgroup *g, struct watch *w)
{
    w->g = g;
    LIST_INSERT_HEAD(&g->watches, w, in_group);
    g->nwatches++;
}

static void group_del(struct wgroup *g, struct watch *w)
{
    LIST_REMOVE(w, in_group);
    g->nwatches--;
}

/* Take @g off its node and free it (index write-locked, set locked). */
static void group_free(struct watchset *ws, struct wgroup *g)
{
    struct wnode *n = g->node;

    LIST_REMOVE(g, on_node);
    LIST_REMOVE(g, in_set);
    if (g->due)
        LIST_REMOVE(g, due_link);
    budget_uncharge(ws->budget, g->charge);
    free(g);
    node_prune(n);
}

/* Take @w out of its group and set, and free it (both locked). */
static void watch_free(struct watchset *ws, struct watch *w)
{
    struct wgroup *g = w->g;
    struct watch **pp = &ws->buckets[bucket_of(ws, w->token)];

    for (; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    group_del(g, w);
    if (w->due)
        LIST_REMOVE(w, due_link);
    __atomic_store_n(&ws->n, ws->n - 1, __ATOMIC_RELAXED);
    budget_uncharge(ws->budget, w->charge);
    free(w);
    if (!g->nwatches)
        group_free(ws, g);
}

/* Drop a reference; registry.lock held, index write-locked. */
static void put_locked(struct watchset *ws)
{
    if (--ws->refs)
        return;
    pthread_mutex_lock(&ws->lock);
    while (!LIST_EMPTY(&ws->groups)) {
        struct wgroup *g = LIST_FIRST(&ws->groups);

        while (g->nwatches > 1)
            watch_free(ws, LIST_FIRST(&g->watches));
        watch_free(ws, LIST_FIRST(&g->watches));        /* and the group */
    }
    pthread_mutex_unlock(&ws->lock);
    budget_uncharge(ws->budget, ws->charge);
    free(ws->buckets);
    if (ws->efd >= 0)
        close(ws->efd);
    if (ws->ch)
        channel_put(ws->ch);
    budget_put(ws->budget);
    pthread_mutex_destroy(&ws->lock);
    free(ws);
}

void watchset_close(struct watchset *ws)
{
    if (!ws)
        return;
    pthread_rwlock_wrlock(&index_lock);
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
    pthread_rwlock_unlock(&index_lock);
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

    (void)arg;
    (void)gen;      /* checked again once applied: see watch_apply() */
    if (!ws)
        return -EOPNOTSUPP;
    /* Membership changes only in this thread: read without the lock. */
    if (!find(ws, token) && ws->n >= registry.max_watches)
        return -ENOSPC;
    /* The memory is counted when it is taken (watch_apply). */
    ws->st.kind = STAGED_WATCH;
    ws->st.token = token;
    ws->st.known = known;
    normalize(path, ws->st.path);
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

/* ---- Generations and what is due ---- */

static void signal_set(struct watchset *ws)
{
    uint64_t one = 1;

    if (ws->efd >= 0 && write(ws->efd, &one, sizeof(one)) < 0) {
        /* Saturated: it is readable anyway. */
    }
}

/*
 * Ask the core what @g's path is now for @caller; if it moved, put the
 * group on its set's due list.  True if it did.  Set locked.
 */
/* What @caller sees of @g's path now: true if it moved.  Set locked. */
static bool group_refresh(struct wgroup *g, const struct hypfs_caller *caller)
{
    uint64_t gen = 0;
    long ret = hypfs_get_generation(watch_fs, caller, g->node->path, &gen);
    int32_t status = ret < 0 ? (int32_t)ret : 0;

    if (status == g->status && (status || gen == g->gen))
        return false;
    g->status = status;
    g->gen = status ? 0 : gen;
    return true;
}

static bool group_check(struct wgroup *g, const struct hypfs_caller *caller)
{
    struct watchset *ws = g->ws;

    if (!group_refresh(g, caller))
        return false;
    if (!g->due) {
        g->due = true;
        LIST_INSERT_HEAD(&ws->due, g, due_link);
    }
    return true;
}

/* Is @w told something new by its group? */
static bool watch_due(const struct watch *w)
{
    const struct wgroup *g = w->g;

    return w->status != g->status || (!g->status && w->known != g->gen);
}

/* ---- Applying, in the connection's thread ---- */

/* Four times the buckets (set locked); stays as it is without memory. */
static void grow_buckets(struct watchset *ws)
{
    size_t nb = ws->nbuckets ? ws->nbuckets * 4 : 64, i, cost;
    struct watch **b = calloc(nb, sizeof(*b)), **old = ws->buckets;
    size_t oldn = ws->nbuckets;

    if (!b)
        return;
    cost = budget_cost(b);
    if (cost > ws->charge && budget_charge(ws->budget, cost - ws->charge)) {
        free(b);
        return;
    }
    if (cost < ws->charge)
        budget_uncharge(ws->budget, ws->charge - cost);
    ws->charge = cost;
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

/*
 * The set's group of @path, made (with its nodes) and charged if it is
 * new.  NULL: -ENOMEM or -ENOSPC (its domain's budget) in *err.  Index
 * write-locked, set locked.
 */
static struct wgroup *group_of(struct watchset *ws, const char *path,
                               size_t len, const struct hypfs_caller *caller,
                               int *err)
{
    struct wnode *n;
    struct wgroup *g;
    size_t cost = 0;

    n = node_find(path, len);
    for (g = n ? LIST_FIRST(&n->groups) : NULL; g; g = LIST_NEXT(g, on_node))
        if (g->ws == ws)
            return g;
    n = node_make(path, len, &cost);
    g = n ? calloc(1, sizeof(*g)) : NULL;
    if (!g) {
        if (n)
            node_prune(n);
        *err = -ENOMEM;
        return NULL;
    }
    cost += budget_cost(g);
    if (budget_charge(ws->budget, cost)) {
        free(g);
        node_prune(n);
        *err = -ENOSPC;
        return NULL;
    }
    g->charge = cost;
    g->node = n;
    g->ws = ws;
    LIST_INSERT_HEAD(&n->groups, g, on_node);
    LIST_INSERT_HEAD(&ws->groups, g, in_set);
    /* What its caller sees now: the notifier tells it what comes next. */
    g->status = 1;      /* not a status: the first refresh always sets it */
    group_refresh(g, caller);
    return g;
}

int watch_apply(struct watchset *ws, const struct hypfs_caller *caller)
{
    struct wgroup *g;
    struct watch *w;
    size_t len;
    int ret = 0;

    if (!ws || ws->st.kind == STAGED_NONE)
        return 0;
    pthread_rwlock_wrlock(&index_lock);
    pthread_mutex_lock(&ws->lock);
    if (ws->st.kind == STAGED_UNWATCH) {
        w = find(ws, ws->st.token);
        if (w)
            watch_free(ws, w);
        goto out;
    }
    if (ws->efd < 0) {
        ws->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (ws->efd < 0) {
            ret = -errno;
            goto out;
        }
    }
    len = strlen(ws->st.path);
    w = find(ws, ws->st.token);
    if (!w && ws->n >= ws->nbuckets * 2)
        grow_buckets(ws);
    if (!ws->nbuckets) {
        ret = -ENOMEM;
        goto out;
    }
    g = group_of(ws, ws->st.path, len, caller, &ret);
    if (!g) {
        /* A re-armed watch keeps its old path. */
        goto out;
    }
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || budget_charge(ws->budget, budget_cost(w))) {
            ret = w ? -ENOSPC : -ENOMEM;
            free(w);
            if (!g->nwatches)
                group_free(ws, g);
            goto out;
        }
        w->charge = budget_cost(w);
        w->token = ws->st.token;
        w->next = ws->buckets[bucket_of(ws, w->token)];
        ws->buckets[bucket_of(ws, w->token)] = w;
        __atomic_store_n(&ws->n, ws->n + 1, __ATOMIC_RELAXED);
        group_add(g, w);
    } else if (w->g != g) {
        /* Re-armed on another path: it moves; its old group may go. */
        struct wgroup *old = w->g;

        group_del(old, w);
        group_add(g, w);
        if (!old->nwatches)
            group_free(ws, old);
    }
    w->known = ws->st.known;
    w->status = 0;
    /* Changes since the operation saw the generation: caught here. */
    group_check(g, caller);
    /* Told at once if it knows another generation than its path's now. */
    if (watch_due(w) && !w->due) {
        w->due = true;
        LIST_INSERT_HEAD(&ws->wdue, w, due_link);
    }
    if (!LIST_EMPTY(&ws->due) || !LIST_EMPTY(&ws->wdue))
        signal_set(ws);
 out:
    ws->st.kind = STAGED_NONE;
    pthread_mutex_unlock(&ws->lock);
    pthread_rwlock_unlock(&index_lock);
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
        /* Watches just armed, each on its own. */
        while (!LIST_EMPTY(&ws->wdue) && n < FLUSH_BATCH) {
            struct watch *w = LIST_FIRST(&ws->wdue);

            LIST_REMOVE(w, due_link);
            w->due = false;
            if (!watch_due(w))
                continue;
            hypfs_msg_hdr_init(&frames[n].hdr, HYPFS_MSG_EVENT,
                               sizeof(frames[n].ev), 0);
            frames[n].ev.token = w->token;
            frames[n].ev.gen = w->g->status ? 0 : w->g->gen;
            frames[n].ev.status = w->g->status;
            frames[n].ev.pad = 0;
            w->known = w->g->gen;
            w->status = w->g->status;
            n++;
        }
        /* Groups whose path moved: every watch in them. */
        while (!LIST_EMPTY(&ws->due) && n < FLUSH_BATCH) {
            struct wgroup *g = LIST_FIRST(&ws->due);
            struct watch *w;

            for (w = LIST_FIRST(&g->watches); w && n < FLUSH_BATCH;
                 w = LIST_NEXT(w, in_group)) {
                if (!watch_due(w))
                    continue;
                hypfs_msg_hdr_init(&frames[n].hdr, HYPFS_MSG_EVENT,
                                   sizeof(frames[n].ev), 0);
                frames[n].ev.token = w->token;
                frames[n].ev.gen = g->status ? 0 : g->gen;
                frames[n].ev.status = g->status;
                frames[n].ev.pad = 0;
                w->known = g->gen;
                w->status = g->status;
                n++;
            }
            if (w)
                break;          /* the batch is full: this group again */
            LIST_REMOVE(g, due_link);
            g->due = false;
        }
        pthread_mutex_unlock(&ws->lock);
        if (!n)
            return 0;
        /* Blocking, within the send timeout: a watcher that does not read
         * is closed when it runs out. */
        if (ws->ch) {
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

/* Check every group on @n (index read-locked). */
static void check_node(struct wnode *n, struct callers_snap *snap)
{
    struct wgroup *g;

    LIST_FOREACH(g, &n->groups, on_node) {
        struct watchset *ws = g->ws;
        struct hypfs_caller caller;

        set_caller(ws, snap, &caller);
        pthread_mutex_lock(&ws->lock);
        if (group_check(g, &caller))
            signal_set(ws);
        pthread_mutex_unlock(&ws->lock);
    }
}

static void check_subtree(struct wnode *n, struct callers_snap *snap)
{
    size_t b;

    check_node(n, snap);
    for (b = 0; b < n->kbuckets; b++) {
        struct wnode *k;

        for (k = n->kids[b]; k; k = k->sibling)
            check_subtree(k, snap);
    }
}

/*
 * The groups a change at @path concerns: on the nodes down to it, and in
 * the subtree under it.  Index read-locked.
 */
static void notice_path(const char *changed, struct callers_snap *snap)
{
    char path[XEN_HYPFS_MAX_PATHLEN];
    size_t len = normalize(changed, path), at = 1;
    struct wnode *n = index_root;

    while (n) {
        size_t end = at;

        if (at >= len) {
            check_subtree(n, snap);
            return;
        }
        check_node(n, snap);
        while (end < len && path[end] != '/')
            end++;
        n = kid(n, path + at, end - at, name_hash(path + at, end - at));
        at = end + 1;
    }
}

static void notice(char (*batch)[XEN_HYPFS_MAX_PATHLEN], unsigned int nb,
                   bool all)
{
    struct callers_snap *snap = callers_get();
    unsigned int k;

    pthread_rwlock_rdlock(&index_lock);
    if (all) {
        if (index_root)
            check_subtree(index_root, snap);
    } else {
        for (k = 0; k < nb; k++)
            notice_path(batch[k], snap);
    }
    pthread_rwlock_unlock(&index_lock);
    callers_put(snap);
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

int watch_start(struct hypfs *fs, unsigned int max_watches)
{
    watch_fs = fs;
    registry.max_watches = max_watches;
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
