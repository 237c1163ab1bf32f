/*
 * The hypervisor hypfsd plays: the machine's CPUs, cpupools and domains.
 *
 * At start the machine's online CPUs form cpupool 0 ("Pool-0", credit2)
 * and domain 0 ("Domain-0") is the control domain, as after a Xen boot.
 * Control commands (ctl.c) change the lists under the writer side of
 * model.lock; the filesystem reads them under the reader side, taken in
 * the enter hook of /cpupool/ and /domain/ for a whole operation.
 *
 * The reader side nests within one thread (a listing of "/" sizes both
 * dynamic directories) through a per-thread depth, so that the lock can
 * prefer writers without a nested read deadlocking behind a waiting one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "hypfsd.h"

struct model model;
struct hypfs *hypfsd_fs;

/*
 * A path below /domain or /cpupool changed (or went): the core moves its
 * generations for those who may see it, and watchers are told.  -ENOENT
 * is fine: what changed may be gone again already.
 */
static void model_notify(bool gone, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void model_notify(bool gone, const char *fmt, va_list ap)
{
    char path[XEN_HYPFS_MAX_PATHLEN];
    int ret;

    if (!hypfsd_fs)
        return;
    vsnprintf(path, sizeof(path), fmt, ap);
    ret = gone ? hypfs_notify_gone(hypfsd_fs, path)
               : hypfs_notify(hypfsd_fs, path);
    if (ret && ret != -ENOENT)
        log_warn("cannot record a change of %s: %s", path, strerror(-ret));
}

void model_changed(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    model_notify(false, fmt, ap);
    va_end(ap);
}

void model_gone(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    model_notify(true, fmt, ap);
    va_end(ap);
}

static _Thread_local unsigned int read_depth;

void model_read_lock(void)
{
    if (!read_depth++)
        pthread_rwlock_rdlock(&model.lock);
}

void model_read_unlock(void)
{
    if (!--read_depth)
        pthread_rwlock_unlock(&model.lock);
}

static const char *const gran_names[] = { "cpu", "core", "socket" };

const char *gran_name(int gran)
{
    return gran >= 0 && gran <= GRAN_SOCKET ? gran_names[gran] : "cpu";
}

int gran_parse(const char *s)
{
    int i;

    for (i = 0; i <= GRAN_SOCKET; i++)
        if (!strcmp(s, gran_names[i]))
            return i;
    return -EINVAL;
}

void cpus_format(const uint64_t *cpus, char *buf, size_t len)
{
    size_t off = 0;
    int cpu = 0, first = 1;

    buf[0] = '\0';
    while (cpu < MAX_CPUS) {
        int end;

        if (!(cpus[cpu / 64] & (1ull << (cpu % 64)))) {
            cpu++;
            continue;
        }
        for (end = cpu; end + 1 < MAX_CPUS &&
             (cpus[(end + 1) / 64] & (1ull << ((end + 1) % 64))); end++)
            ;
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, end > cpu ?
                                    "%s%d-%d" : "%s%d", first ? "" : ",",
                                    cpu, end);
        first = 0;
        cpu = end + 1;
    }
}

/*
 * By hand, not snprintf(): a tree of every domain renders each uuid, and
 * sixteen "%02x" conversions were 15% of hypfsd's time serving it.
 */
void uuid_format(const uint8_t u[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = '\0';
}

struct cpupool *model_find_pool(uint32_t id)
{
    size_t lo = 0, hi = model.npools;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (model.pools[mid]->id == id)
            return model.pools[mid];
        if (model.pools[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct domain *model_find_domain(uint32_t id)
{
    size_t lo = 0, hi = model.ndomains;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (model.domains[mid]->id == id)
            return model.domains[mid];
        if (model.domains[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

struct cpupool *model_find_pool_named(const char *name)
{
    size_t i;

    for (i = 0; i < model.npools; i++)
        if (!strcmp(model.pools[i]->name, name))
            return model.pools[i];
    return NULL;
}

uint32_t model_free_domid(uint32_t from)
{
    uint32_t id = from < 1 || from > DOMID_MAX ? 1 : from, n;

    /* At most DOMID_MAX ids, a word at a time where the bits allow. */
    for (n = 0; n < DOMID_MAX;) {
        uint64_t w = ~model.domid_used[id / 64] >> (id % 64);

        if (w) {
            uint32_t k = id + (uint32_t)__builtin_ctzll(w);

            if (k <= DOMID_MAX && k / 64 == id / 64)
                return k;
        }
        /* Nothing free in the rest of this word: the next one (or 1). */
        n += 64 - id % 64;
        id = (id / 64 + 1) * 64;
        if (id > DOMID_MAX)
            id = 1;
    }
    return 0;
}

void model_domid_mark(uint32_t id, bool used)
{
    if (used)
        model.domid_used[id / 64] |= 1ull << (id % 64);
    else
        model.domid_used[id / 64] &= ~(1ull << (id % 64));
}

/* FNV-1a: names are short and chosen by the toolstack, not by guests. */
static size_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ull;
    return (size_t)h;
}

struct domain *model_find_domain_named(const char *name)
{
    struct domain *d;

    if (!model.name_buckets)
        return NULL;
    for (d = model.by_name[name_hash(name) & (model.name_buckets - 1)]; d;
         d = d->name_next)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}

int model_name_add(struct domain *d)
{
    size_t b;

    /* Twice the buckets when as many domains: chains stay short. */
    if (model.ndomains + 1 > model.name_buckets) {
        size_t n = model.name_buckets ? model.name_buckets * 2 : 64, i;
        struct domain **t = calloc(n, sizeof(*t));

        if (!t)
            return -ENOMEM;
        for (i = 0; i < model.name_buckets; i++)
            while (model.by_name[i]) {
                struct domain *x = model.by_name[i];

                model.by_name[i] = x->name_next;
                b = name_hash(x->name) & (n - 1);
                x->name_next = t[b];
                t[b] = x;
            }
        free(model.by_name);
        model.by_name = t;
        model.name_buckets = n;
    }
    b = name_hash(d->name) & (model.name_buckets - 1);
    d->name_next = model.by_name[b];
    model.by_name[b] = d;
    return 0;
}

void model_name_remove(struct domain *d)
{
    struct domain **pp;

    if (!model.name_buckets)
        return;
    for (pp = &model.by_name[name_hash(d->name) & (model.name_buckets - 1)];
         *pp; pp = &(*pp)->name_next)
        if (*pp == d) {
            *pp = d->name_next;
            break;
        }
}

bool model_domain_exists(uint32_t id)
{
    bool ret;

    model_read_lock();
    ret = model_find_domain(id) != NULL;
    model_read_unlock();
    return ret;
}

int model_init(void)
{
    pthread_rwlockattr_t attr;
    struct cpupool *pool;
    struct domain *dom;
    struct sysinfo si;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned int cpu;

    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__
    /* Control commands must not wait behind an endless stream of reads. */
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&model.lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    model.host_cpus = n < 1 ? 1 : n > MAX_CPUS ? MAX_CPUS : (unsigned int)n;
    pool = calloc(1, sizeof(*pool));
    dom = calloc(1, sizeof(*dom));
    model.pools = malloc(sizeof(*model.pools));
    model.domains = malloc(sizeof(*model.domains));
    if (!pool || !dom || !model.pools || !model.domains) {
        free(pool);
        free(dom);
        return -ENOMEM;
    }

    pool->id = 0;
    strcpy(pool->name, "Pool-0");
    strcpy(pool->sched, "credit2");
    atomic_init(&pool->gran, GRAN_CPU);
    for (cpu = 0; cpu < MAX_CPUS; cpu++)
        model.cpu_pool[cpu] = -1;
    for (cpu = 0; cpu < model.host_cpus; cpu++) {
        pool->cpus[cpu / 64] |= 1ull << (cpu % 64);
        model.cpu_pool[cpu] = 0;
    }
    pool->ncpus = model.host_cpus;
    pool->ndomains = 1;

    dom->id = 0;
    strcpy(dom->name, "Domain-0");
    dom->vcpus = model.host_cpus;
    dom->memory_kib = sysinfo(&si) ? 0 :
                      (uint64_t)si.totalram * si.mem_unit / 1024;
    dom->pool = 0;
    dom->state = DOM_RUNNING;

    model.pools[0] = pool;
    model.npools = 1;
    if (model_name_add(dom)) {
        free(pool);
        free(dom);
        return -ENOMEM;
    }
    model.domains[0] = dom;
    model.ndomains = 1;
    model_domid_mark(0, true);
    model.next_domid = 1;
    model.next_poolid = 1;
    model.next_serial = 1;
    return 0;
}

void model_fini(void)
{
    size_t i;

    for (i = 0; i < model.npools; i++)
        free(model.pools[i]);
    for (i = 0; i < model.ndomains; i++)
        free(model.domains[i]);
    free(model.pools);
    free(model.domains);
    free(model.by_name);
    pthread_rwlock_destroy(&model.lock);
    memset(&model, 0, sizeof(model));
}
