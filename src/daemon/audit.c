/*
 * The audit trail: every change made through hypfsd, logged once.
 *
 * A successful write that changed something says who (uid, domain), what
 * (the path) and the value before and after; a successful control command
 * says who and the command's words.  A write of the value an entry already
 * has changes nothing (its generation stays: the core's rule) and is not
 * logged.  Failures are logged at debug level only, rate-limited (a guest
 * trying what it may not is not news, and must not be able to fill the
 * log).  Values are bounded (AUDIT_VALUE_MAX bytes shown) and escaped, so
 * a line is one line whatever an entry holds.
 *
 * The control domain's changes are always logged, each on its own.  Other
 * domains' are rate-limited, each domain on its own and all together
 * (bursts of AUDIT_DOMAIN_BURST and AUDIT_ALL_BURST lines, then one line
 * per AUDIT_DOMAIN_EVERY_MS and AUDIT_ALL_EVERY_MS), and what does not fit
 * is coalesced per entry and writer, never dropped: once an entry has a
 * change waiting, later ones join it, and when the burst ends (no change
 * for AUDIT_QUIET_MS, or AUDIT_HOLD_MS since the first) one line says how
 * many changes there were, from which value to which.  So the trail always
 * says who last changed what to what, a guest cannot make it grow faster
 * than the limits, and one guest's flood delays others' lines at most
 * until the next summary, never loses them.  Entries waiting are bounded
 * (AUDIT_PENDING_MAX, AUDIT_PENDING_DOMAIN per domain); beyond, a domain's
 * further changes are counted and said in one line per domain, by path no
 * more (only a domain writing to more entries than that at once can cause
 * it: in hypfsd's tree a domain may write one, its guest-status).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypfsd.h"

#define AUDIT_VALUE_MAX 128

#define AUDIT_DOMAIN_BURST      10
#define AUDIT_DOMAIN_EVERY_MS   1000
#define AUDIT_ALL_BURST         100
#define AUDIT_ALL_EVERY_MS      50
#define AUDIT_QUIET_MS          1000
#define AUDIT_HOLD_MS           60000
#define AUDIT_PENDING_MAX       1024
#define AUDIT_PENDING_DOMAIN    32
#define AUDIT_TICK_MS           250
#define AUDIT_BUCKETS           256

/* @n bytes escaped into @out (@cap bytes), "..." when cut. */
static void escape(char *out, size_t cap, const unsigned char *s, size_t n)
{
    size_t o = 0, i;

    for (i = 0; i < n && i < AUDIT_VALUE_MAX && o + 5 < cap; i++) {
        unsigned char c = s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (i < n && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void audit_value(struct hypfs *fs, const char *path, char *out, size_t cap,
                 uint64_t *gen)
{
    static const struct hypfs_caller control = {
        .domid = 0, .flags = HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL,
        .mem = &hypfs_local_mem,
    };
    struct xen_hypfs_direntry e;
    unsigned char buf[sizeof(e) + AUDIT_VALUE_MAX + 16];
    const unsigned char *v = buf + sizeof(e);
    long ret;

    /* The control domain's generations move with every change. */
    if (hypfs_get_generation(fs, &control, path, gen))
        *gen = 0;
    snprintf(out, cap, "?");
    ret = hypfs_do_op(fs, &control, XEN_HYPFS_OP_read, (uintptr_t)path,
                      strlen(path) + 1, (uintptr_t)buf, sizeof(buf));
    if (ret && ret != -ENOBUFS)
        return;
    memcpy(&e, buf, sizeof(e));
    if (ret == -ENOBUFS) {
        snprintf(out, cap, "<%" PRIu32 " bytes>", e.content_len);
        return;
    }
    if (e.encoding != XEN_HYPFS_ENC_PLAIN) {
        snprintf(out, cap, "<gzip, %" PRIu32 " bytes>", e.content_len);
        return;
    }
    switch (e.type) {
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_BOOL:
    case XEN_HYPFS_TYPE_INT: {
        bool sign = e.type == XEN_HYPFS_TYPE_INT;
        uint64_t u = 0;
        int64_t s;

        if (e.content_len == 0 || e.content_len > 8)
            return;
        memcpy(&u, v, e.content_len);       /* little-endian hosts */
        s = (int64_t)(u << (64 - 8 * e.content_len)) >>
            (64 - 8 * e.content_len);
        if (sign)
            snprintf(out, cap, "%" PRId64, s);
        else
            snprintf(out, cap, "%" PRIu64, u);
        return;
    }
    case XEN_HYPFS_TYPE_STRING: {
        char esc[AUDIT_VALUE_MAX * 4 + 8];

        escape(esc, sizeof(esc), v, strnlen((const char *)v, e.content_len));
        snprintf(out, cap, "\"%s\"", esc);
        return;
    }
    default: {
        char esc[AUDIT_VALUE_MAX * 4 + 8];

        escape(esc, sizeof(esc), v, e.content_len);
        snprintf(out, cap, "<blob \"%s\">", esc);
        return;
    }
    }
}

/* ---- Rate and coalescing ---- */

/*
 * A rate as a "theoretical arrival time" (GCRA): a line may go when @tat
 * is at most (burst - 1) intervals ahead of now, and moves it one
 * interval on.
 */
static bool rate_may(int64_t tat, int64_t now, unsigned int burst,
                     int64_t every)
{
    return tat - now <= (int64_t)(burst - 1) * every;
}

static void rate_take(int64_t *tat, int64_t now, int64_t every)
{
    *tat = (*tat > now ? *tat : now) + every;
}

/* One domain's rate, and what it could not have followed one by one. */
struct arate {
    uint32_t domid;
    int64_t tat;
    unsigned int pending;       /* its entries waiting */
    unsigned long overflow;     /* changes beyond AUDIT_PENDING_DOMAIN */
    int64_t overflow_since;
    struct arate *next;
};

/* Changes to one entry by one writer, coalesced. */
struct apending {
    uint32_t domid;
    uid_t uid;                  /* or AUDIT_UID_CHANNEL */
    char *path, *before, *after;        /* escaped: as logged */
    unsigned long n;
    int64_t first_ms, last_ms;
    struct apending *next;
};

static struct {
    pthread_mutex_t lock;       /* everything here */
    pthread_cond_t wake;
    pthread_t thread;
    bool running, stopping;
    int64_t tat;                /* all domains' but the control domain's */
    struct arate *rates[AUDIT_BUCKETS];
    struct apending *pending[AUDIT_BUCKETS];
    unsigned int npending;
    unsigned long unrecorded;   /* no memory even to count them */
    unsigned long lines, coalesced;     /* for stats */
} au = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

static struct log_ratelimit rl_audit_refused = LOG_RATELIMIT_INIT;

static unsigned int hash_of(uint32_t domid, const char *path)
{
    uint32_t h = 2166136261u ^ domid;

    for (; *path; path++)
        h = (h ^ (unsigned char)*path) * 16777619u;
    return h % AUDIT_BUCKETS;
}

static struct arate *rate_of(uint32_t domid, bool make)
{
    struct arate **pp = &au.rates[domid % AUDIT_BUCKETS], *r;

    for (r = *pp; r; r = r->next)
        if (r->domid == domid)
            return r;
    if (!make || !(r = calloc(1, sizeof(*r))))
        return NULL;
    r->domid = domid;
    r->tat = INT64_MIN / 2;
    r->next = *pp;
    *pp = r;
    return r;
}

static struct apending **pending_find(uint32_t domid, uid_t uid,
                                      const char *path)
{
    struct apending **pp = &au.pending[hash_of(domid, path)];

    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->domid == domid && (*pp)->uid == uid &&
            !strcmp((*pp)->path, path))
            return pp;
    return pp;
}

static void who(char *out, size_t cap, uint32_t domid, uid_t uid)
{
    /* A guest's channel: the VMM's uid says nothing about who wrote. */
    if (uid == AUDIT_UID_CHANNEL)
        snprintf(out, cap, "domain %u's guest (its channel)",
                 (unsigned int)domid);
    else
        snprintf(out, cap, "uid %u (domain %u)", (unsigned int)uid,
                 (unsigned int)domid);
}

static void line_change(uint32_t domid, uid_t uid, const char *path,
                        const char *before, const char *after)
{
    char w[64];

    who(w, sizeof(w), domid, uid);
    log_notice("audit: write %s by %s: %s -> %s", path, w, before, after);
}

static void line_summary(const struct apending *p)
{
    char w[64];
    int64_t span = p->last_ms - p->first_ms;

    who(w, sizeof(w), p->domid, p->uid);
    log_notice("audit: write %s by %s: %lu more change%s in %" PRId64
               ".%d s, from %s to %s", p->path, w, p->n, p->n == 1 ? "" : "s",
               span / 1000, (int)(span % 1000 / 100), p->before, p->after);
}

static void pending_free(struct apending *p)
{
    free(p->path);
    free(p->before);
    free(p->after);
    free(p);
}

/*
 * Say what waits and may be said now (all of it when @all: at exit), with
 * au.lock held: a writer that would log meanwhile waits for stderr anyway.
 */
static void flush_locked(int64_t now, bool all)
{
    unsigned int b;

    for (b = 0; b < AUDIT_BUCKETS; b++) {
        struct apending **pp = &au.pending[b];

        while (*pp) {
            struct apending *p = *pp;
            struct arate *r = rate_of(p->domid, false);

            if (!all &&
                ((now - p->last_ms < AUDIT_QUIET_MS &&
                  now - p->first_ms < AUDIT_HOLD_MS) ||
                 !rate_may(au.tat, now, AUDIT_ALL_BURST, AUDIT_ALL_EVERY_MS) ||
                 (r && !rate_may(r->tat, now, AUDIT_DOMAIN_BURST,
                                 AUDIT_DOMAIN_EVERY_MS)))) {
                pp = &p->next;
                continue;
            }
            rate_take(&au.tat, now, AUDIT_ALL_EVERY_MS);
            if (r) {
                rate_take(&r->tat, now, AUDIT_DOMAIN_EVERY_MS);
                r->pending--;
            }
            *pp = p->next;
            au.npending--;
            au.lines++;
            line_summary(p);
            pending_free(p);
        }
    }
    for (b = 0; b < AUDIT_BUCKETS; b++) {
        struct arate **rp = &au.rates[b];

        while (*rp) {
            struct arate *r = *rp;

            if (r->overflow &&
                (all || (rate_may(au.tat, now, AUDIT_ALL_BURST,
                                  AUDIT_ALL_EVERY_MS) &&
                         rate_may(r->tat, now, AUDIT_DOMAIN_BURST,
                                  AUDIT_DOMAIN_EVERY_MS)))) {
                rate_take(&au.tat, now, AUDIT_ALL_EVERY_MS);
                rate_take(&r->tat, now, AUDIT_DOMAIN_EVERY_MS);
                au.lines++;
                log_notice("audit: domain %u made %lu more change%s in "
                           "%" PRId64 " s to more entries than are followed "
                           "one by one (%u)", (unsigned int)r->domid,
                           r->overflow, r->overflow == 1 ? "" : "s",
                           (now - r->overflow_since) / 1000,
                           AUDIT_PENDING_DOMAIN);
                r->overflow = 0;
            }
            /* Forgotten once it has its whole burst back. */
            if (!r->pending && !r->overflow && r->tat <= now) {
                *rp = r->next;
                free(r);
            } else
                rp = &r->next;
        }
    }
    if (au.unrecorded) {
        log_warn("audit: %lu changes by domains could not be recorded: out "
                 "of memory", au.unrecorded);
        au.unrecorded = 0;
    }
}

static void *audit_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&au.lock);
    while (!au.stopping) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += AUDIT_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&au.wake, &au.lock, &until);
        flush_locked(monotonic_ms(), false);
    }
    pthread_mutex_unlock(&au.lock);
    return NULL;
}

int audit_start(void)
{
    pthread_condattr_t ca;
    int err;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_destroy(&au.wake);
    pthread_cond_init(&au.wake, &ca);
    pthread_condattr_destroy(&ca);
    au.stopping = false;
    err = pthread_create(&au.thread, NULL, audit_thread, NULL);
    if (err)
        return -err;
    au.running = true;
    return 0;
}

void audit_stop(void)
{
    pthread_mutex_lock(&au.lock);
    au.stopping = true;
    pthread_cond_signal(&au.wake);
    pthread_mutex_unlock(&au.lock);
    if (au.running)
        pthread_join(au.thread, NULL);
    au.running = false;
    /* Nothing waiting is lost: said now, whatever the rate. */
    pthread_mutex_lock(&au.lock);
    flush_locked(monotonic_ms(), true);
    pthread_mutex_unlock(&au.lock);
}

void audit_stats(struct audit_stats *s)
{
    pthread_mutex_lock(&au.lock);
    s->lines = au.lines;
    s->coalesced = au.coalesced;
    s->waiting = au.npending;
    pthread_mutex_unlock(&au.lock);
}

/* Coalesce a change that may not be said now; au.lock held. */
static void coalesce_locked(struct arate *r, struct apending **pp,
                            uint32_t domid, uid_t uid, const char *path,
                            const char *before, const char *after,
                            int64_t now)
{
    struct apending *p = *pp;
    char *a;

    au.coalesced++;
    if (p) {
        if ((a = strdup(after))) {
            free(p->after);
            p->after = a;
        }
        p->n++;
        p->last_ms = now;
        return;
    }
    if (r->pending >= AUDIT_PENDING_DOMAIN || au.npending >= AUDIT_PENDING_MAX ||
        !(p = calloc(1, sizeof(*p))) || !(p->path = strdup(path)) ||
        !(p->before = strdup(before)) || !(p->after = strdup(after))) {
        if (p)
            pending_free(p);
        if (!r->overflow)
            r->overflow_since = now;
        r->overflow++;
        return;
    }
    p->domid = domid;
    p->uid = uid;
    p->n = 1;
    p->first_ms = p->last_ms = now;
    *pp = p;
    r->pending++;
    au.npending++;
}

void audit_write(const struct hypfs_caller *c, uid_t uid, const char *path,
                 const char *before, const char *after, long ret,
                 bool changed)
{
    char p[XEN_HYPFS_MAX_PATHLEN * 4 + 8], w[64];
    struct apending **pp;
    struct arate *r;
    int64_t now;

    escape(p, sizeof(p), (const unsigned char *)path, strlen(path));
    if (ret) {
        who(w, sizeof(w), c->domid, uid);
        log_limited(&rl_audit_refused, L_DEBUG,
                    "audit: write %s by %s refused: %s", p, w,
                    strerror((int)-ret));
        return;
    }
    if (!changed)
        return;
    /* The control domain's: always, each on its own. */
    if (uid != AUDIT_UID_CHANNEL && (c->flags & HYPFS_CALLER_CONTROL)) {
        pthread_mutex_lock(&au.lock);
        au.lines++;
        pthread_mutex_unlock(&au.lock);
        line_change(c->domid, uid, p, before, after);
        return;
    }
    now = monotonic_ms();
    pthread_mutex_lock(&au.lock);
    if (au.stopping) {
        au.lines++;
        pthread_mutex_unlock(&au.lock);
        line_change(c->domid, uid, p, before, after);
        return;
    }
    r = rate_of(c->domid, true);
    if (!r) {
        au.unrecorded++;
        pthread_mutex_unlock(&au.lock);
        return;
    }
    pp = pending_find(c->domid, uid, p);
    if (!*pp && rate_may(au.tat, now, AUDIT_ALL_BURST, AUDIT_ALL_EVERY_MS) &&
        rate_may(r->tat, now, AUDIT_DOMAIN_BURST, AUDIT_DOMAIN_EVERY_MS)) {
        rate_take(&au.tat, now, AUDIT_ALL_EVERY_MS);
        rate_take(&r->tat, now, AUDIT_DOMAIN_EVERY_MS);
        au.lines++;
        pthread_mutex_unlock(&au.lock);
        line_change(c->domid, uid, p, before, after);
        return;
    }
    coalesce_locked(r, pp, c->domid, uid, p, before, after, now);
    pthread_mutex_unlock(&au.lock);
}

void audit_ctl(uid_t uid, int argc, const char *const *argv, int status)
{
    char words[1024], esc[AUDIT_VALUE_MAX * 4 + 8];
    size_t o = 0;
    int i;

    words[0] = '\0';
    for (i = 0; i < argc && o + 2 < sizeof(words); i++) {
        escape(esc, sizeof(esc), (const unsigned char *)argv[i],
               strlen(argv[i]));
        o += (size_t)snprintf(words + o, sizeof(words) - o, "%s%s",
                              i ? " " : "", esc);
    }
    if (o >= sizeof(words))
        o = sizeof(words) - 1;
    /* Only what changes something. */
    if (!argc || strstr(argv[0], "-list") || !strcmp(argv[0], "stats") ||
        !strcmp(argv[0], "domain-channel"))
        return;
    if (status) {
        log_debug("audit: control '%s' by uid %u failed: %s", words,
                  (unsigned int)uid, strerror(-status));
        return;
    }
    pthread_mutex_lock(&au.lock);
    au.lines++;
    pthread_mutex_unlock(&au.lock);
    log_notice("audit: control '%s' by uid %u", words, (unsigned int)uid);
}
