/*
 * Each domain's memory budget: every byte a domain other than the control
 * domain makes hypfsd hold is counted against its domain's budget, at its
 * real size (the allocator's usable size and its header), and refused
 * beyond it (--guest-buffer per domain):
 *
 *   its watches        each watch, its group (the watchers of one path on
 *                      one connection) and the index nodes it made
 *                      (watch.c);
 *   buffered requests  a frame's payload held while it is served
 *                      (server.c), and input buffers grown beyond the
 *                      first RBUF_INITIAL bytes;
 *   replies            the buffer a reply is built in (frames.c).
 *
 * Events coalesce into a flag per watch and are built on the stack when
 * sent: they hold nothing more.  One domain's use never counts against
 * another's, and the control domain has no budget (a NULL one: charging
 * it always succeeds), so what hypfsd holds for others is at most the
 * budget times the domains they are, plus what each connection costs in
 * any case (listen.c bounds the connections; hypfsd(8), "Limits").
 *
 * A domain's writes are paced here too (budget_write_pace): each takes
 * the tree's writer lock, under which every reader waits, so a guest
 * writing in a loop from many threads made the control domain's reads
 * 17 times slower at the 99th percentile.  Beyond WRITE_BURST at once, a
 * domain's writes go at most one per WRITE_EVERY_US; the guest's own
 * connection thread waits for its turn, nobody else does.
 *
 * Budgets are made when a domain first holds something and freed when it
 * holds nothing, nobody refers to it and its writes' pace is back to a
 * whole burst (so that a new connection per write gains nothing).  All under one mutex: a charge is
 * a few instructions, and it happens per allocation, not per request.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "hypfsd.h"

#define WRITE_BURST     100
#define WRITE_EVERY_US  2000    /* 500 a second */

struct dbudget {
    uint32_t domid;
    unsigned int refs;          /* holders of a pointer to it */
    size_t used;
    int64_t write_tat_us;       /* the writes' pace (GCRA) */
    struct dbudget *next;
};

static struct {
    pthread_mutex_t lock;       /* everything below */
    pthread_cond_t freed;       /* some budget went down */
    struct dbudget *list;
    size_t max;                 /* each domain's */
    size_t total;               /* all domains' together */
    size_t peak_domain;         /* the most one domain ever held */
    size_t refused;             /* charges refused */
    size_t paced;               /* writes made to wait */
} budgets = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .freed = PTHREAD_COND_INITIALIZER,
    .max = GUEST_BUDGET_DEFAULT,
};

void budget_set_max(size_t max)
{
    pthread_mutex_lock(&budgets.lock);
    budgets.max = max;
    pthread_mutex_unlock(&budgets.lock);
}

size_t budget_max(void)
{
    return budgets.max;
}

size_t budget_cost(const void *p)
{
    /* glibc's chunk header is one size_t before what it hands out. */
    return p ? malloc_usable_size((void *)p) + sizeof(size_t) : 0;
}

static int64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool forgettable(const struct dbudget *b, int64_t now_us)
{
    return !b->refs && !b->used && b->write_tat_us <= now_us;
}

struct dbudget *budget_get(uint32_t domid)
{
    struct dbudget *b, **pp;
    int64_t now = monotonic_us();

    if (!domid)
        return NULL;
    pthread_mutex_lock(&budgets.lock);
    for (pp = &budgets.list; (b = *pp);) {
        if (b->domid == domid)
            break;
        /* Kept for their writes' pace: forgotten once it is whole. */
        if (forgettable(b, now)) {
            *pp = b->next;
            free(b);
        } else
            pp = &b->next;
    }
    if (!b && (b = calloc(1, sizeof(*b)))) {
        b->domid = domid;
        b->next = budgets.list;
        budgets.list = b;
    }
    if (b)
        b->refs++;
    pthread_mutex_unlock(&budgets.lock);
    return b;
}

struct dbudget *budget_ref(struct dbudget *b)
{
    if (b) {
        pthread_mutex_lock(&budgets.lock);
        b->refs++;
        pthread_mutex_unlock(&budgets.lock);
    }
    return b;
}

/* Free @b if nothing refers to it and it holds nothing; lock held. */
static void maybe_free_locked(struct dbudget *b)
{
    struct dbudget **pp;

    if (!forgettable(b, monotonic_us()))
        return;
    for (pp = &budgets.list; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            free(b);
            return;
        }
}

void budget_put(struct dbudget *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&budgets.lock);
    b->refs--;
    maybe_free_locked(b);
    pthread_mutex_unlock(&budgets.lock);
}

/* Charge @n if it fits; lock held. */
static bool charge_locked(struct dbudget *b, size_t n)
{
    if (n > budgets.max || b->used > budgets.max - n)
        return false;
    b->used += n;
    budgets.total += n;
    if (b->used > budgets.peak_domain)
        budgets.peak_domain = b->used;
    return true;
}

int budget_charge(struct dbudget *b, size_t n)
{
    bool ok;

    if (!b || !n)
        return 0;
    pthread_mutex_lock(&budgets.lock);
    ok = charge_locked(b, n);
    if (!ok)
        budgets.refused++;
    pthread_mutex_unlock(&budgets.lock);
    return ok ? 0 : -ENOSPC;
}

int budget_charge_wait(struct dbudget *b, size_t n, int64_t deadline_ms)
{
    struct timespec until;
    int64_t ms;
    int ret = 0;

    if (!b || !n)
        return 0;
    ms = deadline_ms - monotonic_ms();
    if (ms < 0)
        ms = 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&budgets.lock);
    while (!charge_locked(b, n)) {
        /* Never fits: no point waiting. */
        if (n > budgets.max ||
            pthread_cond_timedwait(&budgets.freed, &budgets.lock, &until)) {
            budgets.refused++;
            ret = -ENOSPC;
            break;
        }
    }
    pthread_mutex_unlock(&budgets.lock);
    return ret;
}

void budget_uncharge(struct dbudget *b, size_t n)
{
    if (!b || !n)
        return;
    pthread_mutex_lock(&budgets.lock);
    b->used -= n < b->used ? n : b->used;
    budgets.total -= n < budgets.total ? n : budgets.total;
    pthread_cond_broadcast(&budgets.freed);
    maybe_free_locked(b);
    pthread_mutex_unlock(&budgets.lock);
}

int64_t budget_write_pace(struct dbudget *b)
{
    int64_t now = monotonic_us(), wait;

    if (!b)
        return 0;
    pthread_mutex_lock(&budgets.lock);
    if (b->write_tat_us < now)
        b->write_tat_us = now;
    wait = b->write_tat_us - now - (int64_t)(WRITE_BURST - 1) * WRITE_EVERY_US;
    b->write_tat_us += WRITE_EVERY_US;
    if (wait > 0)
        budgets.paced++;
    pthread_mutex_unlock(&budgets.lock);
    return wait > 0 ? wait : 0;
}

uint32_t budget_domid(const struct dbudget *b)
{
    return b ? b->domid : 0;
}

void budget_stats(struct budget_stats *s)
{
    struct dbudget *b;

    pthread_mutex_lock(&budgets.lock);
    s->max = budgets.max;
    s->total = budgets.total;
    s->peak_domain = budgets.peak_domain;
    s->refused = budgets.refused;
    s->paced = budgets.paced;
    s->domains = 0;
    s->most = 0;
    for (b = budgets.list; b; b = b->next) {
        if (b->used)
            s->domains++;
        if (b->used > s->most)
            s->most = b->used;
    }
    pthread_mutex_unlock(&budgets.lock);
}
