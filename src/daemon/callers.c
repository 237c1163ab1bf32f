/*
 * Who is calling: the mapping from a peer's user id, which the kernel
 * reports for the socket (SO_PEERCRED) and the peer cannot forge, to the
 * domain it acts as.
 *
 * Without a configuration, root and the user running hypfsd are domain 0,
 * the control domain; everyone else is unmapped and has no hypfs right.
 * The configuration maps users to domains:
 *
 *   map USER 5            the domain with id 5 (see "Binding" below)
 *   map USER web          the live domain named "web" (also name:web)
 *   map USER uuid:UUID    the live domain with that uuid
 *
 * A mapping to a domain that is not alive gives no right: in a hypervisor
 * every caller is a live domain.
 *
 * Binding.  Domain ids are recycled (they wrap round), so a mapping by id
 * is bound to one domain, not to a number: to the domain that has the id
 * when the configuration is loaded, or else to the first one created with
 * it.  When that domain is destroyed the mapping ends: a later, unrelated
 * domain with the same id does not inherit the user (until the
 * configuration is loaded again, which binds afresh).  A mapping by name
 * or uuid follows whichever live domain has that name or uuid.
 *
 * Publishing.  Every request needs its caller's identity, so the mapping
 * must cost a request no shared lock.  It is published as an immutable,
 * reference-counted snapshot: uid -> (domain id, rights), built with the
 * live domains baked in.  A new snapshot replaces it whenever something it
 * depends on changes (a reload, a domain created or destroyed).  A
 * connection keeps a reference to the snapshot it last used and checks
 * one atomic generation number per request; only when that moved does it
 * take the (uncontended) publication lock, once, to pick up the new one.
 *
 * Locks: pub_lock guards the master table (with its binding state) and
 * the hand-over of the current snapshot; it is taken after model.lock
 * when both are held.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hypfsd.h"

#define LIMIT_PER_UID_DEFAULT  32u

enum bind { BY_ID, BY_NAME, BY_UUID };
enum state { UNBOUND, BOUND, ENDED };

/* One configured mapping, with its binding state (pub_lock). */
struct mapping {
    uid_t uid;
    enum bind by;
    uint32_t id;                    /* BY_ID */
    char name[NAME_MAX_LEN + 1];    /* BY_NAME */
    uint8_t uuid[16];               /* BY_UUID */
    enum state state;               /* BY_ID: which domain it is bound to */
    uint64_t serial;                /* BY_ID, BOUND: that domain */
    unsigned int line;              /* where it was configured (0: default) */
};

struct master {
    struct mapping *map;
    size_t n;
    unsigned int limit_per_uid;
};

struct entry {
    uid_t uid;
    uint32_t domid;
    unsigned int flags;             /* HYPFS_CALLER_*: 0 if not live */
};

struct callers_snap {
    atomic_uint refs;
    uint64_t gen;
    unsigned int limit_per_uid;
    size_t n;
    struct entry e[];               /* sorted by uid */
};

static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct master master;                    /* pub_lock */
static struct callers_snap *current;            /* pub_lock; one reference */
static atomic_uint_fast64_t current_gen;        /* current->gen */
static uint64_t next_gen = 1;                   /* pub_lock */

/* ---- The configuration ---- */

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno || *end || *out > max ? -1 : 0;
}

static int parse_user(const char *s, uid_t *uid)
{
    unsigned long v;
    struct passwd *pw;

    if (!parse_uint(s, (uid_t)-2, &v)) {
        *uid = (uid_t)v;
        return 0;
    }
    pw = getpwnam(s);
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    return 0;
}

static int parse_uuid(const char *s, uint8_t u[16])
{
    int i, j = 0;

    if (strlen(s) != 36)
        return -1;
    for (i = 0; i < 36; i++) {
        unsigned int v;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]) ||
            sscanf(s + i, "%2x", &v) != 1)
            return -1;
        u[j++] = (uint8_t)v;
        i++;
    }
    return 0;
}

/* The domain part of a map line.  0, or -1 with a message logged. */
static int parse_domain(const char *path, unsigned int line, const char *s,
                        struct mapping *m)
{
    unsigned long v;

    if (!strncmp(s, "uuid:", 5)) {
        m->by = BY_UUID;
        if (!parse_uuid(s + 5, m->uuid))
            return 0;
        log_err("%s:%u: '%s' is not a uuid (uuid:xxxxxxxx-xxxx-xxxx-xxxx-"
                "xxxxxxxxxxxx)", path, line, s + 5);
        return -1;
    }
    if (!strncmp(s, "name:", 5) || !isdigit((unsigned char)*s)) {
        const char *name = strncmp(s, "name:", 5) ? s : s + 5;

        m->by = BY_NAME;
        if (*name && strlen(name) <= NAME_MAX_LEN) {
            strcpy(m->name, name);
            return 0;
        }
        log_err("%s:%u: '%s' is not a domain name (1-%d characters)", path,
                line, name, NAME_MAX_LEN);
        return -1;
    }
    m->by = BY_ID;
    if (!parse_uint(s, DOMID_MAX, &v)) {
        m->id = (uint32_t)v;
        return 0;
    }
    log_err("%s:%u: '%s' is not a domain id (0-%u), name or uuid:UUID", path,
            line, s, DOMID_MAX);
    return -1;
}

static int master_add(struct master *t, const struct mapping *m,
                      const char *path)
{
    struct mapping *arr;
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->map[i].uid == m->uid) {
            if (!t->map[i].line) {
                /* The file may say what root or our own user is. */
                t->map[i] = *m;
                return 0;
            }
            log_err("%s:%u: uid %u is already mapped on line %u: one user "
                    "is one domain", path, m->line, (unsigned int)m->uid,
                    t->map[i].line);
            return -1;
        }
    arr = realloc(t->map, (t->n + 1) * sizeof(*arr));
    if (!arr) {
        log_err("out of memory");
        return -1;
    }
    t->map = arr;
    t->map[t->n++] = *m;
    return 0;
}

static int load_file(const char *path, struct master *t)
{
    char line[512];
    FILE *f = fopen(path, "re");
    unsigned int lineno = 0;
    int ret = 0;

    if (!f) {
        log_err("cannot read configuration %s: %s", path, strerror(errno));
        return -1;
    }
    while (!ret && fgets(line, sizeof(line), f)) {
        char *words[4], *save = NULL, *w;
        struct mapping m;
        int n = 0;
        unsigned long v;

        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            log_err("%s:%u: line too long", path, lineno);
            ret = -1;
            break;
        }
        if (strchr(line, '#'))
            *strchr(line, '#') = '\0';
        for (w = strtok_r(line, " \t\r\n", &save); w && n < 4;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (!n)
            continue;
        if (!strcmp(words[0], "map") && n == 3) {
            memset(&m, 0, sizeof(m));
            m.line = lineno;
            if (parse_user(words[1], &m.uid)) {
                /*
                 * Not fatal: a user that does not exist (yet) cannot call,
                 * and every other caller is still served.
                 */
                log_warn("%s:%u: unknown user '%s': line ignored", path,
                         lineno, words[1]);
                continue;
            }
            ret = parse_domain(path, lineno, words[2], &m) ||
                  master_add(t, &m, path) ? -1 : 0;
        } else if (!strcmp(words[0], "limit-per-uid") && n == 2) {
            if (parse_uint(words[1], 4096, &v) || !v) {
                log_err("%s:%u: limit-per-uid needs a number from 1 to 4096",
                        path, lineno);
                ret = -1;
            } else
                t->limit_per_uid = (unsigned int)v;
        } else {
            log_err("%s:%u: expected 'map USER DOMAIN' or 'limit-per-uid N'",
                    path, lineno);
            ret = -1;
        }
    }
    fclose(f);
    return ret;
}

/* ---- Snapshots ---- */

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

static struct domain *find_by_uuid(const uint8_t *uuid)
{
    size_t i;

    for (i = 0; i < model.ndomains; i++)
        if (!memcmp(model.domains[i]->uuid, uuid, 16))
            return model.domains[i];
    return NULL;
}

/* The live domain @m stands for now, binding it if it can; NULL if none. */
static const struct domain *resolve(struct mapping *m)
{
    struct domain *d;

    switch (m->by) {
    case BY_NAME:
        return model_find_domain_named(m->name);
    case BY_UUID:
        return find_by_uuid(m->uuid);
    case BY_ID:
        d = model_find_domain(m->id);
        if (m->state == UNBOUND && d) {
            m->state = BOUND;
            m->serial = d->serial;
        }
        if (m->state != BOUND)
            return NULL;
        if (d && d->serial == m->serial)
            return d;
        m->state = ENDED;
        log_notice("uid %u was domain %u, which is gone: a later domain %u "
                   "does not inherit it (reload the configuration to bind "
                   "again)", (unsigned int)m->uid, m->id, m->id);
        return NULL;
    }
    return NULL;
}

static struct callers_snap *snap_alloc(size_t n)
{
    return calloc(1, sizeof(struct callers_snap) + n * sizeof(struct entry));
}

/* Fill @s, made for @t, against the model (model.lock held). */
static void fill(struct callers_snap *s, struct master *t)
{
    size_t i;

    atomic_init(&s->refs, 1);
    s->limit_per_uid = t->limit_per_uid;
    s->n = t->n;
    for (i = 0; i < t->n; i++) {
        const struct domain *d = resolve(&t->map[i]);

        s->e[i].uid = t->map[i].uid;
        s->e[i].domid = d ? d->id : UINT32_MAX;
        s->e[i].flags = !d ? 0 : HYPFS_CALLER_HYPFS |
                                 (d->id ? 0 : HYPFS_CALLER_CONTROL);
    }
    qsort(s->e, s->n, sizeof(s->e[0]), entry_cmp);
}

/* Make @s current (pub_lock held). */
static void publish(struct callers_snap *s)
{
    struct callers_snap *old = current;

    s->gen = next_gen++;
    current = s;
    atomic_store_explicit(&current_gen, s->gen, memory_order_release);
    callers_put(old);
    /* Callers may see other things now: every watch is looked at. */
    watch_everything_changed();
}

int callers_load(const char *path)
{
    struct master t = { NULL, 0, LIMIT_PER_UID_DEFAULT };
    struct mapping def = { .by = BY_ID, .id = 0 };
    struct callers_snap *s;

    /* Defaults first, so that the file can say otherwise for them. */
    if (master_add(&t, &def, "defaults") ||
        (getuid() && (def.uid = getuid(), master_add(&t, &def, "defaults"))) ||
        (path && load_file(path, &t))) {
        free(t.map);
        return -1;
    }
    s = snap_alloc(t.n);
    if (!s) {
        free(t.map);
        log_err("out of memory");
        return -1;
    }
    model_read_lock();
    pthread_mutex_lock(&pub_lock);
    free(master.map);
    master = t;
    fill(s, &master);
    publish(s);
    pthread_mutex_unlock(&pub_lock);
    model_read_unlock();
    log_debug("caller mapping: %zu %s, %u connections per user",
              t.n, t.n == 1 ? "entry" : "entries", t.limit_per_uid);
    return 0;
}

static struct callers_snap *pending;             /* pub_lock */

int callers_change_begin(void)
{
    pthread_mutex_lock(&pub_lock);
    pending = snap_alloc(master.n);
    if (pending)
        return 0;
    pthread_mutex_unlock(&pub_lock);
    return -ENOMEM;
}

void callers_change_end(void)
{
    fill(pending, &master);
    publish(pending);
    pending = NULL;
    pthread_mutex_unlock(&pub_lock);
}

struct callers_snap *callers_get(void)
{
    struct callers_snap *s;

    pthread_mutex_lock(&pub_lock);
    s = current;
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&pub_lock);
    return s;
}

void callers_put(struct callers_snap *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        free(s);
}

bool callers_current(const struct callers_snap *s)
{
    return s && s->gen == atomic_load_explicit(&current_gen,
                                               memory_order_acquire);
}

void callers_lookup(const struct callers_snap *s, uid_t uid, uint32_t *domid,
                    unsigned int *flags)
{
    size_t lo = 0, hi = s ? s->n : 0;

    *domid = UINT32_MAX;
    *flags = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->e[mid].uid == uid) {
            *domid = s->e[mid].domid;
            *flags = s->e[mid].flags;
            return;
        }
        if (s->e[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
}

unsigned int callers_limit_per_uid(const struct callers_snap *s)
{
    return s && s->limit_per_uid ? s->limit_per_uid : LIMIT_PER_UID_DEFAULT;
}

void callers_free(void)
{
    pthread_mutex_lock(&pub_lock);
    callers_put(current);
    current = NULL;
    free(master.map);
    memset(&master, 0, sizeof(master));
    pthread_mutex_unlock(&pub_lock);
}
