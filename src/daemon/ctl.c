/*
 * Control commands: what Xen's toolstack does with domctl and sysctl,
 * reduced to what makes the filesystem's dynamic entries come and go.
 *
 * A command is a verb and key=value words (hypfsctl builds them from its
 * command line); every word is checked and unknown or repeated keys are
 * refused, so a command either does exactly what it says or nothing.
 * Only the control domain may run them (server.c checks).  Each runs under
 * the writer side of model.lock.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "hypfsd.h"

#define ID_TEXT     12u         /* "4294967295\n" and its NUL */
#define VCPUS_MAX   512u
#define MEMORY_MAX  (1u << 24)  /* MiB */

struct args {
    int argc;
    const char **argv;
    unsigned int used;          /* bit i: argv[i] consumed */
};

static void fail(struct ctl_result *res, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct ctl_result *res, int err, const char *fmt, ...)
{
    char *raw = NULL, *t;
    const unsigned char *c;
    va_list ap;

    free(res->text);
    res->text = NULL;
    res->status = err;
    va_start(ap, fmt);
    if (vasprintf(&raw, fmt, ap) < 0)
        raw = NULL;
    va_end(ap);
    /*
     * The words are ASCII; what a caller sent, echoed in them ("no domain
     * w\xffb"), is shown byte by byte, never passed on raw to a terminal.
     */
    if (raw && (t = malloc(strlen(raw) * 4 + 1))) {
        res->text = t;
        for (c = (const unsigned char *)raw; *c; c++)
            if (*c >= 0x20 && *c < 0x7f && *c != '\\')
                *t++ = (char)*c;
            else
                t += sprintf(t, "\\x%02x", *c);
        *t = '\0';
    }
    free(raw);
    res->len = res->text ? strlen(res->text) : 0;
}

/*
 * Success.  Nothing is allocated here: a command has done its work by now,
 * and running out of memory for its report must not turn into a failure.
 */
static void succeed(struct ctl_result *res)
{
    free(res->text);
    res->status = 0;
    res->text = NULL;
    res->len = 0;
}

/* Success, with @text (@len bytes, NUL-terminated) as its output. */
static void succeed_text(struct ctl_result *res, char *text, size_t len)
{
    free(res->text);
    res->status = 0;
    res->text = text;
    res->len = len;
}

/* Success, reporting a new id in @text, allocated before the change. */
static void succeed_id(struct ctl_result *res, char *text, uint32_t id)
{
    succeed(res);
    snprintf(text, ID_TEXT, "%u\n", id);
    res->text = text;
    res->len = strlen(text);
}

/* The value of key=..., or NULL; -EINVAL in *err if given twice. */
static const char *arg(struct args *a, const char *key, int *err)
{
    size_t klen = strlen(key);
    const char *val = NULL;
    int i;

    for (i = 1; i < a->argc; i++)
        if (!strncmp(a->argv[i], key, klen) && a->argv[i][klen] == '=') {
            if (val)
                *err = -EINVAL;
            val = a->argv[i] + klen + 1;
            a->used |= 1u << i;
        }
    return val;
}

/* Every word was a known key?  Otherwise name the first stray one. */
static const char *stray(const struct args *a)
{
    int i;

    for (i = 1; i < a->argc; i++)
        if (!(a->used & (1u << i)))
            return a->argv[i];
    return NULL;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    unsigned long long v = 0;

    if (!s || !*s || strlen(s) > 10)
        return -EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned int)(*s - '0');
    }
    if (v > max)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/*
 * The domain or cpupool @s names, as xl takes them: an id if it is a
 * number, else a name.  NULL if there is none.  model.lock held.
 */
static struct domain *domain_named(const char *s)
{
    uint32_t id;

    return parse_u32(s, UINT32_MAX, &id) ? model_find_domain_named(s)
                                         : model_find_domain(id);
}

static struct cpupool *pool_named(const char *s)
{
    uint32_t id;

    return parse_u32(s, UINT32_MAX, &id) ? model_find_pool_named(s)
                                         : model_find_pool(id);
}

/*
 * A name a domain or cpupool may take.  Not digits alone: every command
 * that names one reads digits as an id (as xl does), so "1" would be a
 * name that later commands silently take for another domain.
 */
static bool valid_name(const char *s)
{
    size_t n = strlen(s), i;
    bool letter = false;

    if (!n || n > NAME_MAX_LEN)
        return false;
    for (i = 0; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9')
            continue;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
        letter = true;
    }
    return letter;
}

#define NAME_RULE "a name of 1-%d letters, digits, '-', '_' or '.', not " \
                  "digits alone (those name an id), is needed"

static int parse_uuid(const char *s, uint8_t u[16])
{
    int i, j = 0;

    if (strlen(s) != 36)
        return -EINVAL;
    for (i = 0; i < 36; i++) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -EINVAL;
            continue;
        }
        hi = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
             s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 :
             s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : -1;
        i++;
        lo = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' :
             s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 :
             s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 10 : -1;
        if (hi < 0 || lo < 0)
            return -EINVAL;
        u[j++] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Insert @p into the sorted array @arr of @n pointers with ids. */
#define SORTED_INSERT(arr, n, p) do {                                       \
        size_t i_ = (n);                                                    \
        while (i_ && (arr)[i_ - 1]->id > (p)->id) {                         \
            (arr)[i_] = (arr)[i_ - 1];                                      \
            i_--;                                                           \
        }                                                                   \
        (arr)[i_] = (p);                                                    \
        (n)++;                                                              \
    } while (0)

#define SORTED_REMOVE(arr, n, p) do {                                       \
        size_t i_;                                                          \
        for (i_ = 0; i_ < (n) && (arr)[i_] != (p); i_++)                    \
            ;                                                               \
        memmove(&(arr)[i_], &(arr)[i_ + 1], ((n) - i_ - 1) * sizeof(*(arr))); \
        (n)--;                                                              \
    } while (0)

static void domain_create(struct args *a, struct ctl_result *res)
{
    int err = 0;
    const char *name = arg(a, "name", &err), *s_vcpus = arg(a, "vcpus", &err);
    const char *s_mem = arg(a, "memory", &err), *s_pool = arg(a, "pool", &err);
    const char *s_uuid = arg(a, "uuid", &err), *s_chan = arg(a, "channel", &err);
    const char *bad = stray(a);
    uint32_t vcpus = 1, mem = 256, pool = 0, id;
    struct domain *d, *other, **arr;
    struct cpupool *p;
    struct channel *ch = NULL;
    char *text, why[600];

    if (err || bad) {
        fail(res, -EINVAL, bad ? "unknown option '%s'" : "option given twice",
             bad);
        return;
    }
    if (!name || !valid_name(name)) {
        fail(res, -EINVAL, NAME_RULE, NAME_MAX_LEN);
        return;
    }
    if (s_vcpus && parse_u32(s_vcpus, VCPUS_MAX, &vcpus)) {
        fail(res, -EINVAL, "vcpus: a number from 1 to %u is needed", VCPUS_MAX);
        return;
    }
    if (s_mem && parse_u32(s_mem, MEMORY_MAX, &mem)) {
        fail(res, -EINVAL, "memory: a number of MiB from 1 to %u is needed",
             MEMORY_MAX);
        return;
    }
    if (!vcpus || !mem) {
        fail(res, -EINVAL, "vcpus and memory must be at least 1");
        return;
    }
    /* A pool by id here; by name, once the model is locked below. */
    if (s_pool && parse_u32(s_pool, UINT32_MAX, &pool) && !valid_name(s_pool)) {
        fail(res, -EINVAL, "pool: a cpupool's name or id is needed");
        return;
    }
    if (s_chan && strcmp(s_chan, "1")) {
        fail(res, -EINVAL, "channel: no value is needed (channel=1)");
        return;
    }
    /*
     * The channel first: making a socket can fail for reasons of its own
     * (the directory, a stale file), and then no domain is made.
     */
    if (s_chan) {
        int r = channel_open(name, &ch, why, sizeof(why));

        if (r) {
            fail(res, r, "%s", why);
            return;
        }
    }
    d = calloc(1, sizeof(*d));
    text = malloc(ID_TEXT);
    if (!d || !text) {
        free(d);
        free(text);
        if (ch)
            channel_discard(ch);
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    if (s_uuid) {
        if (parse_uuid(s_uuid, d->uuid)) {
            free(d);
            free(text);
            if (ch)
                channel_discard(ch);
            fail(res, -EINVAL, "uuid: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx "
                 "is needed");
            return;
        }
    } else {
        if (getrandom(d->uuid, sizeof(d->uuid), 0) != sizeof(d->uuid))
            memset(d->uuid, 0x5a, sizeof(d->uuid));
        d->uuid[6] = (uint8_t)((d->uuid[6] & 0x0f) | 0x40);    /* version 4 */
        d->uuid[8] = (uint8_t)((d->uuid[8] & 0x3f) | 0x80);
    }

    pthread_rwlock_wrlock(&model.lock);
    p = s_pool ? pool_named(s_pool) : model_find_pool(pool);
    if (p)
        pool = p->id;
    else {
        fail(res, -ENOENT, "no cpupool %s", s_pool ? s_pool : "0");
        goto out_free;
    }
    if ((other = model_find_domain_named(name))) {
        fail(res, -EEXIST, "a domain named '%s' exists (id %u)", name,
             other->id);
        goto out_free;
    }
    /* Like Xen, hand out increasing ids and wrap round past the last. */
    id = model_free_domid(model.next_domid);
    if (!id) {
        fail(res, -ENOSPC, "no free domain id");
        goto out_free;
    }
    arr = realloc(model.domains, (model.ndomains + 1) * sizeof(*arr));
    if (arr)
        model.domains = arr;
    strcpy(d->name, name);
    if (!arr || model_name_add(d)) {
        fail(res, -ENOMEM, "out of memory");
        goto out_free;
    }
    if (callers_change_begin()) {
        model_name_remove(d);
        fail(res, -ENOMEM, "out of memory");
        goto out_free;
    }
    d->id = id;
    d->serial = model.next_serial++;
    d->vcpus = vcpus;
    d->memory_kib = (uint64_t)mem * 1024;
    d->pool = pool;
    d->state = DOM_RUNNING;
    SORTED_INSERT(model.domains, model.ndomains, d);
    model_domid_mark(id, true);
    p->ndomains++;
    model.next_domid = id >= DOMID_MAX ? 1 : id + 1;
    if (ch)
        channel_bind_domain(ch, id, d->serial);
    callers_change_end();
    pthread_rwlock_unlock(&model.lock);
    if (ch) {
        channel_publish(ch);
        /* The VM of an earlier domain of this name: this one's now. */
        server_hang_up_old_channels(name);
    }
    model_changed("/domain/%u", id);
    log_info("domain %u (%s) created in cpupool %u", id, name, pool);
    succeed_id(res, text, id);
    return;

 out_free:
    pthread_rwlock_unlock(&model.lock);
    if (ch)
        channel_discard(ch);
    free(d);
    free(text);
}

/* Look up the domain named by id=, with the writer lock held on success. */
static struct domain *domain_arg(struct args *a, struct ctl_result *res)
{
    int err = 0;
    const char *s = arg(a, "id", &err), *bad = stray(a);
    struct domain *d;

    if (err || bad || !s || !*s) {
        fail(res, -EINVAL, "a domain is needed (its name or id)");
        return NULL;
    }
    pthread_rwlock_wrlock(&model.lock);
    d = domain_named(s);
    if (!d) {
        pthread_rwlock_unlock(&model.lock);
        fail(res, -ENOENT, "no domain %s", s);
    }
    return d;
}

static void domain_destroy(struct args *a, struct ctl_result *res)
{
    struct domain *d = domain_arg(a, res);
    struct cpupool *p;
    bool had_channel;
    uint32_t id;

    if (!d)
        return;
    id = d->id;
    if (!id) {
        pthread_rwlock_unlock(&model.lock);
        fail(res, -EPERM, "domain 0 is the control domain: it cannot be "
             "destroyed");
        return;
    }
    if (callers_change_begin()) {
        pthread_rwlock_unlock(&model.lock);
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    p = model_find_pool(d->pool);
    if (p)
        p->ndomains--;
    /* Its channel's requests are refused before anyone sees it gone. */
    had_channel = channel_domain_gone(id, d->serial);
    SORTED_REMOVE(model.domains, model.ndomains, d);
    model_name_remove(d);
    model_domid_mark(id, false);
    callers_change_end();
    pthread_rwlock_unlock(&model.lock);
    if (had_channel)
        server_wake();      /* not under pub_lock: srv.lock comes first */
    free(d);
    model_gone("/domain/%u", id);
    /*
     * Its callers are unmapped from now on, so nobody needs the record
     * of its entries' going; kept, such records would grow with every
     * domain there ever was.
     */
    if (hypfsd_fs)
        hypfs_forget_owner(hypfsd_fs, id);
    log_info("domain %u destroyed", id);
    succeed(res);
}

static void domain_channel(struct args *a, struct ctl_result *res)
{
    struct domain *d = domain_arg(a, res);
    char path[4400], *text;
    uint32_t id;
    int r;

    if (!d)
        return;
    id = d->id;
    pthread_rwlock_unlock(&model.lock);
    r = channel_of_domain(id, path, sizeof(path));
    if (r) {
        fail(res, r, "domain %u has no channel (domain-create --channel)", id);
        return;
    }
    if (asprintf(&text, "%s\n", path) < 0) {
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    succeed_text(res, text, strlen(text));
}

static void domain_pause(struct args *a, struct ctl_result *res, bool pause)
{
    struct domain *d = domain_arg(a, res);
    uint32_t id;

    if (!d)
        return;
    if (!d->id && pause) {
        pthread_rwlock_unlock(&model.lock);
        fail(res, -EPERM, "the control domain cannot be paused");
        return;
    }
    d->state = pause ? DOM_PAUSED : DOM_RUNNING;
    id = d->id;
    pthread_rwlock_unlock(&model.lock);
    model_changed("/domain/%u/state", id);
    succeed(res);
}

static void domain_list(struct args *a, struct ctl_result *res)
{
    char *buf = NULL;
    size_t len = 0, i, w;
    FILE *f;

    if (stray(a)) {
        fail(res, -EINVAL, "unknown option '%s'", stray(a));
        return;
    }
    f = open_memstream(&buf, &len);
    if (!f) {
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    model_read_lock();
    /* As wide as the longest name (up to 63): columns stay columns. */
    for (i = 0, w = 24; i < model.ndomains; i++)
        if (strlen(model.domains[i]->name) > w)
            w = strlen(model.domains[i]->name);
    fprintf(f, "%-*s %5s %5s %10s %4s %s\n", (int)w, "Name", "ID", "VCPUs",
            "Mem(MiB)", "Pool", "State");
    for (i = 0; i < model.ndomains; i++) {
        const struct domain *d = model.domains[i];

        fprintf(f, "%-*s %5u %5u %10llu %4u %s\n", (int)w, d->name, d->id,
                d->vcpus, (unsigned long long)(d->memory_kib / 1024), d->pool,
                d->state == DOM_PAUSED ? "paused" : "running");
    }
    model_read_unlock();
    /* The stream's buffer grows as it is written: that can fail too. */
    if (ferror(f) | fclose(f)) {
        free(buf);
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    succeed_text(res, buf, len);
}

static void pool_create(struct args *a, struct ctl_result *res)
{
    static const char *const scheds[] = {
        "credit", "credit2", "rtds", "arinc653", "null",
    };
    int err = 0, gran = GRAN_CPU;
    const char *name = arg(a, "name", &err), *sched = arg(a, "sched", &err);
    const char *s_gran = arg(a, "gran", &err), *bad = stray(a);
    struct cpupool *p, *other, **arr;
    char *text;
    size_t i;
    bool known = false;

    if (err || bad) {
        fail(res, -EINVAL, bad ? "unknown option '%s'" : "option given twice",
             bad);
        return;
    }
    if (!name || !valid_name(name)) {
        fail(res, -EINVAL, NAME_RULE, NAME_MAX_LEN);
        return;
    }
    if (!sched)
        sched = "credit2";
    for (i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++)
        known |= !strcmp(sched, scheds[i]);
    if (!known) {
        fail(res, -EINVAL, "sched: one of credit, credit2, rtds, arinc653, "
             "null is needed");
        return;
    }
    if (s_gran && (gran = gran_parse(s_gran)) < 0) {
        fail(res, -EINVAL, "gran: one of cpu, core, socket is needed");
        return;
    }
    p = calloc(1, sizeof(*p));
    text = malloc(ID_TEXT);
    if (!p || !text) {
        free(p);
        free(text);
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->sched, sizeof(p->sched), "%s", sched);
    atomic_init(&p->gran, gran);

    pthread_rwlock_wrlock(&model.lock);
    if ((other = model_find_pool_named(name))) {
        fail(res, -EEXIST, "a cpupool named '%s' exists (id %u)", name,
             other->id);
        goto out_free;
    }
    arr = realloc(model.pools, (model.npools + 1) * sizeof(*arr));
    if (!arr) {
        fail(res, -ENOMEM, "out of memory");
        goto out_free;
    }
    model.pools = arr;
    while (model_find_pool(model.next_poolid))
        model.next_poolid++;
    p->id = model.next_poolid++;
    SORTED_INSERT(model.pools, model.npools, p);
    pthread_rwlock_unlock(&model.lock);
    model_changed("/cpupool/%u", p->id);
    log_info("cpupool %u (%s, %s) created", p->id, name, sched);
    succeed_id(res, text, p->id);
    return;

 out_free:
    pthread_rwlock_unlock(&model.lock);
    free(p);
    free(text);
}

static struct cpupool *pool_arg(struct args *a, const char *key,
                                struct ctl_result *res, uint32_t *id)
{
    int err = 0;
    const char *s = arg(a, key, &err);
    struct cpupool *p;

    if (err || !s || !*s) {
        fail(res, -EINVAL, "a cpupool is needed (its name or id)");
        return NULL;
    }
    p = pool_named(s);
    if (p)
        *id = p->id;
    else
        fail(res, -ENOENT, "no cpupool %s", s);
    return p;
}

static void pool_destroy(struct args *a, struct ctl_result *res)
{
    struct cpupool *p;
    uint32_t id;

    pthread_rwlock_wrlock(&model.lock);
    p = pool_arg(a, "id", res, &id);
    if (!p)
        goto out;
    if (stray(a)) {
        fail(res, -EINVAL, "unknown option '%s'", stray(a));
        goto out;
    }
    if (!id) {
        fail(res, -EPERM, "cpupool 0 cannot be destroyed");
        goto out;
    }
    if (p->ncpus || p->ndomains) {
        fail(res, -EBUSY, "cpupool %u still has %u cpus and %u domains", id,
             p->ncpus, p->ndomains);
        goto out;
    }
    SORTED_REMOVE(model.pools, model.npools, p);
    free(p);
    succeed(res);
    log_info("cpupool %u destroyed", id);
    pthread_rwlock_unlock(&model.lock);
    model_gone("/cpupool/%u", id);
    return;
 out:
    pthread_rwlock_unlock(&model.lock);
}

/* cpu-move cpu=N pool=M, or cpu-remove cpu=N (no pool). */
static void cpu_move(struct args *a, struct ctl_result *res, bool to_pool)
{
    int err = 0;
    const char *s_cpu = arg(a, "cpu", &err);
    struct cpupool *to = NULL, *from;
    uint32_t cpu, id = 0;

    pthread_rwlock_wrlock(&model.lock);
    if (to_pool && !(to = pool_arg(a, "pool", res, &id)))
        goto out;
    if (err || stray(a) || !s_cpu || parse_u32(s_cpu, MAX_CPUS - 1, &cpu) ||
        cpu >= model.host_cpus) {
        fail(res, -EINVAL, "a cpu is needed: a number from 0 to %u (this "
             "host has %u)", model.host_cpus - 1, model.host_cpus);
        goto out;
    }
    from = model.cpu_pool[cpu] < 0 ? NULL : model_find_pool((uint32_t)model.cpu_pool[cpu]);
    if (from == to) {
        succeed(res);
        goto out;
    }
    if (from && from->ncpus == 1 && (from->ndomains || !from->id)) {
        fail(res, -EBUSY, "cpu %u is the last of cpupool %u, which has "
             "domains", cpu, from->id);
        goto out;
    }
    if (from) {
        from->cpus[cpu / 64] &= ~(1ull << (cpu % 64));
        from->ncpus--;
    }
    if (to) {
        to->cpus[cpu / 64] |= 1ull << (cpu % 64);
        to->ncpus++;
    }
    model.cpu_pool[cpu] = to ? (int)to->id : -1;
    succeed(res);
    log_info("cpu %u moved to %s%u", cpu, to ? "cpupool " : "no pool", to ? id : 0);
    {
        uint32_t from_id = from ? from->id : 0;

        pthread_rwlock_unlock(&model.lock);
        if (from)
            model_changed("/cpupool/%u/cpus", from_id);
        if (to)
            model_changed("/cpupool/%u/cpus", id);
    }
    return;
 out:
    pthread_rwlock_unlock(&model.lock);
}

static void pool_list(struct args *a, struct ctl_result *res)
{
    char *buf = NULL, cpus[512];
    size_t len = 0, i, w;
    FILE *f;

    if (stray(a)) {
        fail(res, -EINVAL, "unknown option '%s'", stray(a));
        return;
    }
    f = open_memstream(&buf, &len);
    if (!f) {
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    model_read_lock();
    for (i = 0, w = 16; i < model.npools; i++)
        if (strlen(model.pools[i]->name) > w)
            w = strlen(model.pools[i]->name);
    fprintf(f, "%-*s %4s %-9s %-6s %7s %s\n", (int)w, "Name", "ID", "Sched",
            "Gran", "Domains", "CPUs");
    for (i = 0; i < model.npools; i++) {
        const struct cpupool *p = model.pools[i];

        cpus_format(p->cpus, cpus, sizeof(cpus));
        fprintf(f, "%-*s %4u %-9s %-6s %7u %s\n", (int)w, p->name, p->id,
                p->sched,
                gran_name(atomic_load_explicit(&p->gran, memory_order_relaxed)),
                p->ndomains, *cpus ? cpus : "-");
    }
    model_read_unlock();
    /* The stream's buffer grows as it is written: that can fail too. */
    if (ferror(f) | fclose(f)) {
        free(buf);
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    succeed_text(res, buf, len);
}

/*
 * What the daemon holds: the heap in use (what a leak would grow: the C
 * library's caches are not in it), and its connections.  For operators,
 * and for the soak's leak check.
 */
/* How many arenas glibc's allocator has made (each has a fixed header). */
static unsigned int malloc_arenas(void)
{
    char *xml = NULL, *p;
    size_t len = 0;
    unsigned int n = 0;
    FILE *f = open_memstream(&xml, &len);

    if (!f)
        return 0;
    malloc_info(0, f);
    fclose(f);
    for (p = xml; p && (p = strstr(p, "<heap nr=")); p++)
        n++;
    free(xml);
    return n;
}

/*
 * How long the last DURATIONS domain-creates and domain-destroys took in
 * hypfsd, for stats: what the toolstack waits for at scale, without the
 * round trip.
 */
#define DURATIONS 4096
enum { D_CREATE, D_DESTROY };
static struct {
    pthread_mutex_t lock;
    uint32_t us[2][DURATIONS];
    size_t n[2];
} durations = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t ctl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void note_duration(int which, int64_t t0)
{
    int64_t us = (ctl_now_ns() - t0) / 1000;

    pthread_mutex_lock(&durations.lock);
    durations.us[which][durations.n[which]++ % DURATIONS] =
        us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    pthread_mutex_unlock(&durations.lock);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The p99 of the durations kept, in µs; 0 if none. */
static uint32_t duration_p99(int which)
{
    uint32_t *v = malloc(sizeof(durations.us[which])), r = 0;
    size_t n;

    if (!v)
        return 0;
    pthread_mutex_lock(&durations.lock);
    n = durations.n[which] < DURATIONS ? durations.n[which] : DURATIONS;
    memcpy(v, durations.us[which], n * sizeof(*v));
    pthread_mutex_unlock(&durations.lock);
    if (n) {
        qsort(v, n, sizeof(*v), cmp_u32);
        r = v[n * 99 / 100 < n ? n * 99 / 100 : n - 1];
    }
    free(v);
    return r;
}

static void stats(struct args *a, struct ctl_result *res)
{
    struct mallinfo2 mi;
    unsigned int ncontrol, nguest, peak;
    size_t watching, watches;
    struct budget_stats bs;
    struct audit_stats as;
    char *text = NULL;

    if (stray(a)) {
        fail(res, -EINVAL, "unknown option '%s'", stray(a));
        return;
    }
    mi = mallinfo2();
    server_counts(&ncontrol, &nguest, &peak);
    watch_stats(&watching, &watches);
    budget_stats(&bs);
    audit_stats(&as);
    if (asprintf(&text, "heap_in_use_bytes %zu\nheap_free_bytes %zu\n"
                 "heap_arenas %u\ncore_mapped_bytes %zu\n"
                 "connections_control %u\n"
                 "connections_guest %u\nconnections_peak %u\n"
                 "connections_watching %zu\nwatches %zu\n"
                 "domain_budget_bytes %zu\ndomains_holding %zu\n"
                 "domains_held_bytes %zu\ndomain_most_held_bytes %zu\n"
                 "domain_peak_held_bytes %zu\ndomain_budget_refusals %zu\n"
                 "domain_writes_paced %zu\n"
                 "audit_lines %lu\naudit_changes_coalesced %lu\n"
                 "audit_entries_waiting %u\n"
                 "domain_create_p99_us %u\ndomain_destroy_p99_us %u\n"
                 "hypercalls_served %lu\n",
                 mi.uordblks + mi.hblkhd, mi.fordblks, malloc_arenas(),
                 hypfs_mapped_bytes(), ncontrol, nguest, peak, watching,
                 watches, bs.max, bs.domains, bs.total, bs.most,
                 bs.peak_domain, bs.refused, bs.paced, as.lines, as.coalesced,
                 as.waiting, duration_p99(D_CREATE),
                 duration_p99(D_DESTROY), server_ops_served()) < 0) {
        fail(res, -ENOMEM, "out of memory");
        return;
    }
    succeed_text(res, text, strlen(text));
}

void ctl_run(int argc, const char **argv, struct ctl_result *res)
{
    struct args a = { argc, argv, 0 };
    const char *verb = argc ? argv[0] : "";

    memset(res, 0, sizeof(*res));
    if (argc > 32) {
        fail(res, -E2BIG, "too many words");
        return;
    }
    if (!strcmp(verb, "domain-create")) {
        int64_t t0 = ctl_now_ns();

        domain_create(&a, res);
        note_duration(D_CREATE, t0);
    }
    else if (!strcmp(verb, "domain-channel"))
        domain_channel(&a, res);
    else if (!strcmp(verb, "domain-destroy")) {
        int64_t t0 = ctl_now_ns();

        domain_destroy(&a, res);
        note_duration(D_DESTROY, t0);
    }
    else if (!strcmp(verb, "domain-pause"))
        domain_pause(&a, res, true);
    else if (!strcmp(verb, "domain-unpause"))
        domain_pause(&a, res, false);
    else if (!strcmp(verb, "domain-list"))
        domain_list(&a, res);
    else if (!strcmp(verb, "pool-create"))
        pool_create(&a, res);
    else if (!strcmp(verb, "pool-destroy"))
        pool_destroy(&a, res);
    else if (!strcmp(verb, "pool-list"))
        pool_list(&a, res);
    else if (!strcmp(verb, "cpu-move"))
        cpu_move(&a, res, true);
    else if (!strcmp(verb, "cpu-remove"))
        cpu_move(&a, res, false);
    else if (!strcmp(verb, "stats"))
        stats(&a, res);
    else
        fail(res, -EOPNOTSUPP, "unknown command '%s'", verb);
}
