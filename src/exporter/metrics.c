/*
 * The mapping from hypfs entries to Prometheus metrics.
 *
 * Each leaf gives at most one sample.  Its metric's name is "hypfs_" and
 * the path's components joined by "_", every byte outside [A-Za-z0-9_]
 * made "_"; a component that is a number, below a directory, is not part
 * of the name but a label named after that directory (/domain/1/vcpus:
 * hypfs_domain_vcpus{domain="1"}), with a "name" label when that instance
 * has a "name" string.  What Prometheus's conventions ask for is applied
 * as a careful user would: time and size units at the end of a name are
 * converted to seconds and bytes, a component Prometheus would read as an
 * abbreviated unit gets an "x", a gauge may not end with a suffix that
 * other types own.  Whatever still collides (two paths, one name) is
 * exported once, and the rest counted as skipped: a scrape never holds
 * one series twice.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "metrics.h"
#include "paths-help.h"
#include "utf8.h"

/* ---- Growing strings ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_putn(b, small, (size_t)n);
        return;
    }
    {
        char *big = malloc((size_t)n + 1);

        if (!big) {
            b->oom = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sb_putn(b, big, (size_t)n);
        free(big);
    }
}

/* ---- Escaping: valid UTF-8 out, whatever bytes come in ---- */


enum esc_mode {
    ESC_LABEL,      /* a label value: \\ \" \n */
    ESC_HELP,       /* text format's HELP: \\ \n */
    ESC_HELP_OM,    /* OpenMetrics' HELP: \\ \" \n */
};

/*
 * @n bytes of @s, escaped for @mode.  Bytes that are not valid UTF-8, and
 * control characters other than newline, become the four characters
 * \xNN (so the output says which byte it was, as xenhypfs cat -b does).
 */
static void sb_escaped(struct sbuf *b, const char *s, size_t n,
                       enum esc_mode mode)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t l = hypfs_utf8_len(u + i, n - i);

        if (u[i] == '\\')
            sb_putn(b, "\\\\", 2);
        else if (u[i] == '\n')
            sb_putn(b, "\\n", 2);
        else if (u[i] == '"' && mode != ESC_HELP)
            sb_putn(b, "\\\"", 2);
        else if (!l || u[i] < 0x20 || u[i] == 0x7f) {
            sb_printf(b, "\\\\x%02x", u[i]);
            l = 1;
        } else {
            sb_putn(b, s + i, l);
            i += l;
            continue;
        }
        i++;
    }
}

/* ---- A set of strings, mapped to pointers ---- */

struct slot {
    char *key;
    size_t klen;
    uint64_t hash;              /* of the key: growing re-hashes nothing */
    void *val;
};

struct strmap {
    struct slot *slots;
    size_t cap, count;
};

/* Eight bytes at a time: every series' key is hashed once per scrape. */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;

    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 32);
}

static struct slot *map_find_h(struct strmap *m, const char *k, size_t n,
                               uint64_t h)
{
    size_t i;

    if (!m->cap)
        return NULL;
    for (i = h & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
        if (m->slots[i].hash == h && m->slots[i].klen == n &&
            !memcmp(m->slots[i].key, k, n))
            return &m->slots[i];
    return NULL;
}

static struct slot *map_find(struct strmap *m, const char *k, size_t n)
{
    return map_find_h(m, k, n, hash_bytes(k, n));
}

/* Insert @k (copied) unless present.  1 inserted, 0 present, -ENOMEM. */
static int map_add(struct strmap *m, const char *k, size_t n, void *val)
{
    uint64_t h = hash_bytes(k, n);
    size_t i;

    if (map_find_h(m, k, n, h))
        return 0;
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64, j;
        struct slot *s = calloc(cap, sizeof(*s));

        if (!s)
            return -ENOMEM;
        for (j = 0; j < m->cap; j++) {
            if (!m->slots[j].key)
                continue;
            for (i = m->slots[j].hash & (cap - 1); s[i].key;
                 i = (i + 1) & (cap - 1))
                ;
            s[i] = m->slots[j];
        }
        free(m->slots);
        m->slots = s;
        m->cap = cap;
    }
    for (i = h & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
        ;
    m->slots[i].hash = h;
    m->slots[i].key = malloc(n + 1);
    if (!m->slots[i].key)
        return -ENOMEM;
    memcpy(m->slots[i].key, k, n);
    m->slots[i].key[n] = '\0';
    m->slots[i].klen = n;
    m->slots[i].val = val;
    m->count++;
    return 1;
}

static void map_free(struct strmap *m, void (*free_val)(void *))
{
    size_t i;

    for (i = 0; i < m->cap; i++)
        if (m->slots[i].key) {
            free(m->slots[i].key);
            if (free_val)
                free_val(m->slots[i].val);
        }
    free(m->slots);
}

/* ---- Families ---- */

enum kind { KIND_GAUGE, KIND_INFO };

struct family {
    char *name;             /* an info family's without "_info" */
    enum kind kind;
    char *help;             /* raw: escaped when rendered */
    struct sbuf samples;
    struct family *next;    /* in order of creation */
};

/*
 * The series exported so far.  A series is known by its sample line up to
 * the value ("name{labels}"), which its family's samples hold already:
 * the set keeps where that is and a hash, not a copy (at 230,000 series,
 * copies were 15 MB and a malloc() apiece).
 */
struct series_ref {
    const struct family *f;
    uint32_t off, len;          /* the line's key in f->samples */
};

/*
 * A slot: the hash's high 32 bits, which also place it (so that growing
 * reads no key), and the ref's index + 1; 0 is free.
 */
#define SLOT_HOME(h, cap) ((size_t)((h) >> 32) & ((cap) - 1))

struct seriesset {
    uint64_t *slots;
    size_t cap, count;
    struct series_ref *refs;
};

/* Is the series @k (@n bytes, hash @h) exported already? */
static bool series_known(const struct seriesset *ss, const char *k, size_t n,
                         uint64_t h)
{
    size_t i;

    if (!ss->cap)
        return false;
    for (i = SLOT_HOME(h, ss->cap); ss->slots[i];
         i = (i + 1) & (ss->cap - 1)) {
        const struct series_ref *r = &ss->refs[(ss->slots[i] & 0xffffffffu) - 1];

        if (ss->slots[i] >> 32 == h >> 32 && r->len == n &&
            !memcmp(r->f->samples.p + r->off, k, n))
            return true;
    }
    return false;
}

/* Remember the key at @off (@n bytes, hash @h) of @f's samples. */
static int series_add(struct seriesset *ss, const struct family *f,
                      size_t off, size_t n, uint64_t h)
{
    size_t i;

    if (off > UINT32_MAX || n > UINT32_MAX || ss->count >= UINT32_MAX - 1)
        return -ENOMEM;
    if ((ss->count + 1) * 4 > ss->cap * 3) {
        size_t cap = ss->cap ? ss->cap * 2 : 1024, j;
        uint64_t *sl = calloc(cap, sizeof(*sl));
        struct series_ref *refs = realloc(ss->refs, cap * sizeof(*refs));

        if (!sl || !refs) {
            free(sl);
            if (refs)
                ss->refs = refs;
            return -ENOMEM;
        }
        ss->refs = refs;
        for (j = 0; j < ss->cap; j++) {
            if (!ss->slots[j])
                continue;
            for (i = SLOT_HOME(ss->slots[j], cap); sl[i];
                 i = (i + 1) & (cap - 1))
                ;
            sl[i] = ss->slots[j];
        }
        free(ss->slots);
        ss->slots = sl;
        ss->cap = cap;
    }
    ss->refs[ss->count] = (struct series_ref){ f, (uint32_t)off, (uint32_t)n };
    for (i = SLOT_HOME(h, ss->cap); ss->slots[i];
         i = (i + 1) & (ss->cap - 1))
        ;
    ss->slots[i] = (h >> 32 << 32) | (ss->count + 1);
    ss->count++;
    return 0;
}

static void series_free(struct seriesset *ss)
{
    free(ss->slots);
    free(ss->refs);
    *ss = (struct seriesset){ 0 };
}

/* The working strings of add_leaf() and add_sample(). */
enum { S_RAW, S_FAM, S_HELP, S_V, S_LNAMES, S_TEXT, S_KEY, S_DESC, S_PATH,
       S_OUT, S_COUNT };

/* Where metrics_next() is. */
enum stream_stage { ST_START, ST_HEAD, ST_SAMPLES, ST_TRAILER, ST_END };

struct metrics {
    struct metrics_opts opts;
    struct strmap families;     /* name -> struct family */
    struct family *first, **last;
    struct seriesset series;
    struct strmap inst_names;   /* instance path -> its name (a string) */
    struct sbuf build_labels;   /* hypfs_build_info's, rendered */
    struct strmap build_names;  /* its label names */
    struct strmap help_of;      /* path pattern -> its docs/paths.md entry */
    unsigned long entries, skipped;
    bool oom;
    /*
     * Each leaf's working strings, kept from one leaf to the next: at
     * 230,000 leaves a scrape spent more in malloc() and free() than in
     * mapping.  See take() and give().
     */
    struct sbuf scratch[S_COUNT];
    /* A leaf's components and labels: as many as its path has '/'. */
    struct comp *comps;
    struct label *labels;
    size_t *lname_off;
    size_t arrays_for;          /* the plen they are big enough for */
    /* metrics_next()'s place: the family whose part comes next. */
    enum stream_stage stage;
    struct family *at;
    struct family *sent;        /* its samples are freed at the next call */
};

struct metrics *metrics_new(const struct metrics_opts *opts)
{
    struct metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->opts = *opts;
    m->last = &m->first;
    return m;
}

static void family_free(void *p)
{
    struct family *f = p;

    free(f->name);
    free(f->help);
    free(f->samples.p);
    free(f);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    map_free(&m->families, family_free);
    series_free(&m->series);
    free(m->comps);
    free(m->labels);
    free(m->lname_off);
    map_free(&m->inst_names, free);
    map_free(&m->build_names, NULL);
    map_free(&m->help_of, NULL);
    free(m->build_labels.p);
    for (int i = 0; i < S_COUNT; i++)
        free(m->scratch[i].p);
    free(m);
}

bool metrics_openmetrics(const struct metrics *m)
{
    return m->opts.openmetrics;
}

unsigned long metrics_entries(const struct metrics *m)
{
    return m->entries;
}

unsigned long metrics_skipped(const struct metrics *m)
{
    return m->skipped;
}

/* ---- Names ---- */

struct comp {
    const char *s;
    size_t n;
};

static bool is_number(struct comp c)
{
    size_t i;

    for (i = 0; i < c.n; i++)
        if (c.s[i] < '0' || c.s[i] > '9')
            return false;
    return c.n > 0;
}

static bool comp_is(struct comp c, const char *s)
{
    return c.n == strlen(s) && !memcmp(c.s, s, c.n);
}

/* @c with every byte outside [A-Za-z0-9_] made '_'. */
static void sb_sanitized(struct sbuf *b, struct comp c)
{
    size_t i;

    for (i = 0; i < c.n; i++) {
        char ch = c.s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_';

        sb_putn(b, ok ? &ch : "_", 1);
    }
}

/*
 * Units Prometheus's conventions have a say on: abbreviations that may
 * not appear in a name, and words for which a base unit is preferred.
 * Numbers in such a unit, named so at the end of a path, are converted
 * to the base unit; elsewhere the word gets an "x" (hypfs_test_bx).
 */
struct unit {
    const char *word;
    const char *base;       /* "seconds" or "bytes"; NULL: only avoided */
    double factor;
};

static const struct unit units[] = {
    { "s", "seconds", 1 },              { "sec", "seconds", 1 },
    { "secs", "seconds", 1 },           { "ms", "seconds", 1e-3 },
    { "us", "seconds", 1e-6 },          { "ns", "seconds", 1e-9 },
    { "milliseconds", "seconds", 1e-3 },
    { "microseconds", "seconds", 1e-6 },
    { "nanoseconds", "seconds", 1e-9 },
    { "minutes", "seconds", 60 },       { "hours", "seconds", 3600 },
    { "days", "seconds", 86400 },       { "weeks", "seconds", 604800 },
    /* Sizes in a hypervisor are binary: Xen's KiB, MiB. */
    { "kb", "bytes", 1024.0 },          { "kib", "bytes", 1024.0 },
    { "kilobytes", "bytes", 1024.0 },
    { "mb", "bytes", 1048576.0 },       { "mib", "bytes", 1048576.0 },
    { "megabytes", "bytes", 1048576.0 },
    { "gb", "bytes", 1073741824.0 },    { "gib", "bytes", 1073741824.0 },
    { "gigabytes", "bytes", 1073741824.0 },
    { "tb", "bytes", 1099511627776.0 },
    { "pb", "bytes", 1125899906842624.0 },
    /* Bits or bytes, metres or minutes: nobody can tell. */
    { "b", NULL, 0 }, { "m", NULL, 0 }, { "h", NULL, 0 }, { "d", NULL, 0 },
    { "kilograms", NULL, 0 }, { "milligrams", NULL, 0 },
    { "kilometers", NULL, 0 }, { "millimeters", NULL, 0 },
    { "kilometres", NULL, 0 }, { "millimetres", NULL, 0 },
    { "milliamperes", NULL, 0 }, { "millivolts", NULL, 0 },
    { "kilojoules", NULL, 0 }, { "megajoules", NULL, 0 },
};

static const struct unit *unit_of(const char *tok, size_t n)
{
    size_t i, j;

    /* (No strlen(): this runs for every token of every leaf.) */
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        for (j = 0; j < n; j++)
            if ((tok[j] | 0x20) != units[i].word[j])
                break;
        if (j == n && !units[i].word[n])
            return &units[i];
    }
    return NULL;
}

/*
 * Entries whose unit the path does not say, known from hypfsd's and
 * Xen's documentation (docs/paths.md).
 */
static const struct {
    const char *pattern;    /* the path, instances as <id> */
    const char *base;
    double factor;
} known_units[] = {
    { "/domain/<id>/memory", "bytes", 1024.0 },
};

/*
 * Append @name's "_"-separated tokens to @out, each abbreviation or
 * non-base unit word followed by "x".  When @convert, a unit at the very
 * end is replaced by its base and *factor set instead.
 */
static void sb_name_tokens(struct sbuf *out, const char *name, size_t n,
                           bool convert, double *factor)
{
    size_t i = 0;

    while (i <= n) {
        size_t j = i;
        const struct unit *u;

        while (j < n && name[j] != '_')
            j++;
        u = j > i ? unit_of(name + i, j - i) : NULL;
        if (u && convert && j == n && u->base) {
            sb_puts(out, u->base);
            *factor = u->factor;
        } else {
            sb_putn(out, name + i, j - i);
            if (u)
                sb_putn(out, "x", 1);
        }
        if (j < n)
            sb_putn(out, "_", 1);
        i = j + 1;
    }
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);

    return n >= l && !memcmp(s + n - l, suffix, l);
}

/* Suffixes other metric types own: a gauge named so gets "_value". */
static bool reserved_suffix(const char *s, size_t n)
{
    static const char *const sfx[] = {
        "_total", "_created", "_count", "_sum", "_bucket", "_info",
        "_gcount", "_gsum",
    };
    size_t i;

    for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (ends_with(s, n, sfx[i]))
            return true;
    return false;
}

/* Names the exporter's own metrics use. */
static bool reserved_name(const char *s)
{
    return !strcmp(s, "hypfs_up") || !strncmp(s, "hypfs_scrape_", 13) ||
           !strcmp(s, "hypfs_build") || !strncmp(s, "hypfs_exporter_", 15);
}

/* A valid label name from a path component. */
static void sb_label_name(struct sbuf *b, struct comp c)
{
    size_t start = b->len;

    sb_sanitized(b, c);
    if (b->oom)
        return;
    /* Not a digit first, not "__" (Prometheus's own), not le/quantile. */
    if ((b->p[start] >= '0' && b->p[start] <= '9') ||
        !strncmp(b->p + start, "__", 2)) {
        struct sbuf t = { 0 };

        sb_putn(&t, "l", 1);
        sb_putn(&t, b->p + start, b->len - start);
        b->len = start;
        if (!t.oom)
            sb_putn(b, t.p, t.len);
        free(t.p);
    } else if (!strcmp(b->p + start, "le") ||
               !strcmp(b->p + start, "quantile"))
        sb_putn(b, "_", 1);
}

/* ---- Adding entries ---- */

struct label {
    char *name;
    const char *value;
    size_t value_len;
};

static bool under(const char *path, size_t n, const char *prefix)
{
    size_t l = strlen(prefix);

    while (l > 1 && prefix[l - 1] == '/')
        l--;
    if (l == 1 && prefix[0] == '/')
        return true;
    return n >= l && !memcmp(path, prefix, l) && (n == l || path[l] == '/');
}

/* A working string of @m's, emptied, for one leaf. */
static struct sbuf take(struct metrics *m, int which)
{
    struct sbuf b = m->scratch[which];

    m->scratch[which] = (struct sbuf){ 0 };
    b.len = 0;
    b.oom = false;
    if (b.p)
        b.p[0] = '\0';
    return b;
}

/* Back to @m for the next leaf (dropped if it ran out of memory). */
static void give(struct metrics *m, int which, struct sbuf *b)
{
    if (b->oom) {
        free(b->p);
        *b = (struct sbuf){ 0 };
    }
    m->scratch[which] = *b;
}

static const char *with_desc(struct sbuf *out, const struct path_help *ph,
                             const char *where);

/*
 * Add one sample of @fam_name (kind @kind) with @labels: @value is the
 * sample's value text.  A new family's help is what @ph says of it, then
 * @where.  Counts a skip where it cannot.
 */
static void add_sample(struct metrics *m, const char *fam_name,
                       enum kind kind, const struct path_help *ph,
                       const char *where, const struct label *labels,
                       size_t nlabels, const char *value)
{
    struct sbuf key = take(m, S_KEY), text = take(m, S_DESC);
    size_t i, j, fl = strlen(fam_name), off;
    struct slot *s;
    struct family *f;
    uint64_t h;

    if (reserved_name(fam_name)) {
        m->skipped++;
        goto out;
    }
    for (i = 0; i < nlabels; i++)
        for (j = 0; j < i; j++)
            if (!strcmp(labels[i].name, labels[j].name)) {
                m->skipped++;
                goto out;
            }
    /* The sample line's key: name[_info][{labels}]. */
    sb_putn(&key, fam_name, fl);
    if (kind == KIND_INFO)
        sb_putn(&key, "_info", 5);
    for (i = 0; i < nlabels; i++) {
        sb_putn(&key, i ? "," : "{", 1);
        sb_puts(&key, labels[i].name);
        sb_putn(&key, "=\"", 2);
        sb_escaped(&key, labels[i].value, labels[i].value_len, ESC_LABEL);
        sb_putn(&key, "\"", 1);
    }
    if (nlabels)
        sb_putn(&key, "}", 1);
    if (key.oom)
        goto oom;

    s = map_find(&m->families, fam_name, fl);
    if (s && ((struct family *)s->val)->kind != kind) {
        m->skipped++;
        goto out;
    }
    h = hash_bytes(key.p, key.len);
    if (series_known(&m->series, key.p, key.len, h)) {
        m->skipped++;
        goto out;
    }
    if (s)
        f = s->val;
    else {
        const char *help = with_desc(&text, ph, where);

        f = calloc(1, sizeof(*f));
        if (!f || !help) {
            free(f);
            goto oom;
        }
        f->name = strdup(fam_name);
        f->help = strdup(help);
        f->kind = kind;
        if (!f->name || !f->help || map_add(&m->families, fam_name, fl,
                                            f) < 0) {
            family_free(f);
            goto oom;
        }
        *m->last = f;
        m->last = &f->next;
    }
    off = f->samples.len;
    sb_putn(&f->samples, key.p, key.len);
    sb_putn(&f->samples, " ", 1);
    sb_puts(&f->samples, value);
    sb_putn(&f->samples, "\n", 1);
    if (f->samples.oom || series_add(&m->series, f, off, key.len, h))
        goto oom;
    goto out;
oom:
    m->oom = true;
out:
    give(m, S_KEY, &key);
    give(m, S_DESC, &text);
}

/* A number's text in the base unit: @text times @factor. */
static void sb_scaled(struct sbuf *b, const char *text, double factor)
{
    if (factor == 1.0)
        sb_puts(b, text);
    else
        sb_printf(b, "%.15g", strtod(text, NULL) * factor);
}

/* /buildinfo/...: labels of hypfs_build_info, or a _crc32 of its own. */
static void add_buildinfo(struct metrics *m, const struct comp *c, size_t nc,
                          const char *value, size_t len, bool hashed,
                          const char *help)
{
    struct sbuf name = { 0 };
    size_t i = 1;
    int r;

    /* compileinfo/compiler: "compiler"; version/major: "version_major". */
    if (nc > 2 && comp_is(c[1], "compileinfo"))
        i = 2;
    for (; i < nc; i++) {
        if (name.len)
            sb_putn(&name, "_", 1);
        sb_sanitized(&name, c[i]);
    }
    /* A label name: not a digit first, not "__" (Prometheus's own). */
    if (!name.oom && (name.len == 0 || (name.p[0] >= '0' && name.p[0] <= '9') ||
                      !strncmp(name.p, "__", 2))) {
        struct sbuf t = { 0 };

        sb_putn(&t, "l", 1);
        if (name.len)
            sb_putn(&t, name.p, name.len);
        free(name.p);
        name = t;
    }
    if (name.oom) {
        m->oom = true;
        free(name.p);
        return;
    }
    if (hashed) {
        struct sbuf fam = { 0 }, v = { 0 };
        double unused;

        sb_puts(&fam, "hypfs_build_");
        sb_name_tokens(&fam, name.p, name.len, false, &unused);
        sb_puts(&fam, "_crc32");
        sb_printf(&v, "%lu", crc32(0, (const Bytef *)value, (uInt)len));
        if (fam.oom || v.oom)
            m->oom = true;
        else
            add_sample(m, fam.p, KIND_GAUGE, NULL, help, NULL, 0, v.p);
        free(fam.p);
        free(v.p);
        free(name.p);
        return;
    }
    r = map_add(&m->build_names, name.p, name.len, NULL);
    if (r < 0)
        m->oom = true;
    else if (!r)
        m->skipped++;
    else {
        if (m->build_labels.len)
            sb_putn(&m->build_labels, ",", 1);
        sb_putn(&m->build_labels, name.p, name.len);
        sb_putn(&m->build_labels, "=\"", 2);
        sb_escaped(&m->build_labels, value, len, ESC_LABEL);
        sb_putn(&m->build_labels, "\"", 1);
        if (m->build_labels.oom)
            m->oom = true;
    }
    free(name.p);
}

/* What docs/paths.md says of the entries of @pattern, or NULL. */
static const struct path_help *find_help(const char *pattern)
{
    size_t i;

    for (i = 0; i < sizeof(path_help) / sizeof(path_help[0]); i++)
        if (!strcmp(path_help[i].pattern, pattern))
            return &path_help[i];
    return NULL;
}

/*
 * find_help(), remembered per pattern: a scrape asks it once per leaf, of
 * a few patterns (every domain's vcpus is /domain/<id>/vcpus).
 */
static const struct path_help no_help;

static const struct path_help *help_for(struct metrics *m, const char *pattern)
{
    size_t n = strlen(pattern);
    struct slot *s = map_find(&m->help_of, pattern, n);
    const struct path_help *ph;

    if (s)
        return s->val == &no_help ? NULL : s->val;
    ph = find_help(pattern);
    /* Not remembered if memory is short: asked again next time. */
    map_add(&m->help_of, pattern, n, (void *)(ph ? ph : &no_help));
    return ph;
}

/* The HELP text: what the entry is, then where it comes from. */
static const char *with_desc(struct sbuf *out, const struct path_help *ph,
                             const char *where)
{
    if (!ph || !ph->help[0])
        return where;
    sb_printf(out, "%s (%s)", ph->help, where);
    return out->oom ? NULL : out->p;
}

/*
 * A value a guest writes is a label value only if the operator listed it
 * (--guest-value): each distinct string would otherwise be a new series
 * that the guest, not the operator, creates.  "" is what it starts as.
 */
static bool guest_value_allowed(const struct metrics *m, const char *v)
{
    size_t i;

    if (!*v)
        return true;
    for (i = 0; i < m->opts.nguest_values; i++)
        if (!strcmp(m->opts.guest_values[i], v))
            return true;
    return false;
}

/* @m's arrays for a leaf's components and labels, for a path of @plen. */
static bool leaf_arrays(struct metrics *m, size_t plen)
{
    size_t n = plen / 2 + 3;

    if (m->comps && plen <= m->arrays_for)
        return true;
    free(m->comps);
    free(m->labels);
    free(m->lname_off);
    m->comps = calloc(n, sizeof(*m->comps));
    m->labels = calloc(n, sizeof(*m->labels));
    m->lname_off = calloc(n, sizeof(*m->lname_off));
    if (!m->comps || !m->labels || !m->lname_off) {
        free(m->comps);
        free(m->labels);
        free(m->lname_off);
        m->comps = NULL;
        m->labels = NULL;
        m->lname_off = NULL;
        return false;
    }
    m->arrays_for = plen;
    return true;
}

static void add_leaf(struct metrics *m, const char *path, size_t plen,
                     const struct xenhypfs_dirent *d, const void *content)
{
    struct comp *c;
    struct label *labels;
    struct sbuf raw = take(m, S_RAW), fam = take(m, S_FAM),
                help = take(m, S_HELP), v = take(m, S_V),
                lnames = take(m, S_LNAMES), text = take(m, S_TEXT);
    const struct path_help *ph;
    const char *h;
    size_t nc = 0, i, nlabels = 0, inst_end = 0, len;
    size_t *lname_off = NULL;
    bool number = d->type == xenhypfs_type_uint ||
                  d->type == xenhypfs_type_int ||
                  d->type == xenhypfs_type_bool;
    double factor = 1.0;
    bool hashed;
    char *value = NULL;

    if (d->type == xenhypfs_type_blob || (!number &&
                                          d->type != xenhypfs_type_string)) {
        m->skipped++;
        goto out;
    }
    value = xenhypfs_value_string(d, content);
    if (!value) {
        if (errno == ENOMEM)
            m->oom = true;
        else
            m->skipped++;
        goto out;
    }
    len = strlen(value);
    /* Compressed because it is big (/buildinfo/config): never a label. */
    hashed = !number && (d->encoding == xenhypfs_enc_gzip ||
                         len > m->opts.max_value_len);

    /* The components, and the path as a pattern for the help text. */
    if (!leaf_arrays(m, plen))
        goto oom;
    c = m->comps;
    labels = m->labels;
    lname_off = m->lname_off;
    for (i = 0; i < plen;) {
        size_t j;

        while (i < plen && path[i] == '/')
            i++;
        if (i == plen)
            break;
        for (j = i; j < plen && path[j] != '/'; j++)
            ;
        c[nc].s = path + i;
        c[nc].n = j - i;
        nc++;
        i = j;
    }
    if (!nc) {
        m->skipped++;
        goto out;
    }
    sb_puts(&help, "hypfs ");
    for (i = 0; i < nc; i++) {
        sb_putn(&help, "/", 1);
        if (i + 1 < nc && is_number(c[i]))
            sb_puts(&help, "<id>");
        else
            sb_putn(&help, c[i].s, c[i].n);
    }
    if (help.oom)
        goto oom;
    ph = help_for(m, help.p + 6);

    if (hashed) {
        sb_printf(&help, ", as the CRC-32 of its value: gzip-encoded, or "
                  "longer than %zu bytes", m->opts.max_value_len);
        if (help.oom)
            goto oom;
    }
    if (nc >= 2 && comp_is(c[0], "buildinfo")) {
        if (!(h = with_desc(&text, ph, help.p)))
            goto oom;
        add_buildinfo(m, c, nc, value, len, hashed, h);
        goto out;
    }

    /* The name's tokens and the instance labels. */
    for (i = 0; i < nc; i++) {
        if (i + 1 < nc && is_number(c[i])) {
            lname_off[nlabels] = lnames.len;
            if (i)
                sb_label_name(&lnames, c[i - 1]);
            else
                sb_puts(&lnames, "instance");
            sb_putn(&lnames, "", 1);    /* its NUL: names in a row */
            labels[nlabels].value = c[i].s;
            labels[nlabels].value_len = c[i].n;
            nlabels++;
            inst_end = (size_t)(c[i].s + c[i].n - path);
        } else {
            if (raw.len)
                sb_putn(&raw, "_", 1);
            sb_sanitized(&raw, c[i]);
        }
    }
    if (raw.oom || lnames.oom)
        goto oom;
    for (i = 0; i < nlabels; i++)
        labels[i].name = lnames.p + lname_off[i];

    if (inst_end) {
        struct slot *s;

        /* An instance's name is its label, not a metric of its own. */
        if (nc >= 2 && is_number(c[nc - 2]) && comp_is(c[nc - 1], "name") &&
            !number)
            goto out;
        s = map_find(&m->inst_names, path, inst_end);
        if (s) {
            labels[nlabels].name = "name";
            labels[nlabels].value = s->val;
            labels[nlabels].value_len = strlen(s->val);
            nlabels++;
        }
    }

    sb_puts(&fam, "hypfs_");
    if (number) {
        for (i = 0; i < sizeof(known_units) / sizeof(known_units[0]); i++)
            if (!strcmp(help.p + 6, known_units[i].pattern))
                break;
        if (i < sizeof(known_units) / sizeof(known_units[0])) {
            sb_name_tokens(&fam, raw.p, raw.len, false, &factor);
            sb_printf(&fam, "_%s", known_units[i].base);
            factor = known_units[i].factor;
        } else
            sb_name_tokens(&fam, raw.p, raw.len, true, &factor);
        if (fam.oom)
            goto oom;
        if (reserved_suffix(fam.p, fam.len))
            sb_puts(&fam, "_value");
        if (factor != 1.0)
            sb_printf(&help, ", in %s",
                      strstr(fam.p, "_seconds") ? "seconds" : "bytes");
        sb_scaled(&v, value, factor);
        if (fam.oom || v.oom || help.oom)
            goto oom;
        add_sample(m, fam.p, KIND_GAUGE, ph, help.p, labels, nlabels, v.p);
    } else if (!hashed) {
        sb_name_tokens(&fam, raw.p, raw.len, false, &factor);
        if (fam.oom)
            goto oom;
        if (reserved_suffix(fam.p, fam.len))
            sb_puts(&fam, "_value");
        labels[nlabels].name = "value";
        labels[nlabels].value = value;
        labels[nlabels].value_len = len;
        if (ph && ph->guest_writes) {
            sb_puts(&help, ", values not listed by --guest-value as "
                    "\"other\"");
            if (!guest_value_allowed(m, value)) {
                labels[nlabels].value = "other";
                labels[nlabels].value_len = 5;
            }
        }
        nlabels++;
        if (fam.oom || help.oom)
            goto oom;
        add_sample(m, fam.p, KIND_INFO, ph, help.p, labels, nlabels, "1");
    } else {
        sb_name_tokens(&fam, raw.p, raw.len, false, &factor);
        sb_puts(&fam, "_crc32");
        sb_printf(&v, "%lu", crc32(0, (const Bytef *)value, (uInt)len));
        if (fam.oom || v.oom)
            goto oom;
        add_sample(m, fam.p, KIND_GAUGE, ph, help.p, labels, nlabels, v.p);
    }
    goto out;
oom:
    m->oom = true;
out:
    free(value);
    give(m, S_RAW, &raw);
    give(m, S_FAM, &fam);
    give(m, S_HELP, &help);
    give(m, S_TEXT, &text);
    give(m, S_V, &v);
    give(m, S_LNAMES, &lnames);
}

/*
 * @b set to @root and @rel joined ("/a" + "b/c" = "/a/b/c", "/" + "" =
 * "/", "/a/" + "" = "/a").  False if out of memory.
 */
static bool sb_join(struct sbuf *b, const char *root, const char *rel)
{
    size_t rl = strlen(root);

    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    if (rl == 1 && root[0] == '/')
        rl = 0;
    b->len = 0;
    sb_putn(b, root, rl);
    if (*rel || !rl) {
        sb_putn(b, "/", 1);
        sb_puts(b, rel);
    }
    return !b->oom;
}

int metrics_add_tree(struct metrics *m, const char *root,
                     const struct xenhypfs_tree_entry *e, unsigned int n)
{
    /* Each entry's path, in one buffer kept from entry to entry. */
    struct sbuf path = take(m, S_PATH);
    unsigned int i;
    size_t k;

    /* First the instances' names, which label everything in them. */
    for (i = 0; i < n && !m->oom; i++) {
        const char *name = e[i].dirent.name;
        size_t nl = strlen(name), plen;
        char *value;
        const char *slash;
        struct comp parent;
        int r;

        if (e[i].dirent.type != xenhypfs_type_string ||
            !(nl == 4 ? !strcmp(name, "name") : ends_with(name, nl, "/name")))
            continue;
        if (!sb_join(&path, root, name)) {
            m->oom = true;
            break;
        }
        plen = path.len - 5;            /* the instance's path */
        path.p[plen] = '\0';
        slash = strrchr(path.p, '/');
        parent.s = slash ? slash + 1 : path.p;
        parent.n = strlen(parent.s);
        if (!slash || slash == path.p || !is_number(parent))
            continue;
        value = xenhypfs_value_string(&e[i].dirent, e[i].content);
        if (!value)
            continue;
        r = map_add(&m->inst_names, path.p, plen, value);
        if (r <= 0)
            free(value);
        if (r < 0)
            m->oom = true;
    }
    for (i = 0; i < n && !m->oom; i++) {
        bool excluded = false;

        m->entries++;
        if (e[i].dirent.type == xenhypfs_type_dir)
            continue;
        if (!sb_join(&path, root, e[i].dirent.name)) {
            m->oom = true;
            break;
        }
        for (k = 0; k < m->opts.nexclude; k++)
            if (under(path.p, path.len, m->opts.exclude[k]))
                excluded = true;
        if (!excluded)
            add_leaf(m, path.p, path.len, &e[i].dirent, e[i].content);
    }
    give(m, S_PATH, &path);
    return m->oom ? -ENOMEM : 0;
}

/* ---- Rendering ---- */

static void sb_help_type(struct sbuf *b, bool om, const char *name,
                         const char *help, const char *type)
{
    sb_printf(b, "# HELP %s ", name);
    sb_escaped(b, help, strlen(help), om ? ESC_HELP_OM : ESC_HELP);
    sb_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* The exporter's own families, after the hypervisor's. */
static void render_trailer(struct metrics *m, const struct metrics_meta *meta,
                           struct sbuf *b)
{
    bool om = m->opts.openmetrics;

    if (m->build_labels.len) {
        sb_help_type(b, om, om ? "hypfs_build" : "hypfs_build_info",
                     "The hypervisor's build, from hypfs /buildinfo",
                     om ? "info" : "gauge");
        sb_printf(b, "hypfs_build_info{%s} 1\n", m->build_labels.p);
    }
    sb_help_type(b, om, "hypfs_up", "Whether the hypervisor's filesystem "
                 "could be read (1) or not (0)", "gauge");
    sb_printf(b, "hypfs_up %d\n", meta->up ? 1 : 0);
    sb_help_type(b, om, "hypfs_scrape_duration_seconds",
                 "How long reading and mapping the hypervisor's filesystem "
                 "took", "gauge");
    sb_printf(b, "hypfs_scrape_duration_seconds %.6f\n", meta->duration_s);
    sb_help_type(b, om, "hypfs_scrape_entries", "Entries read from the "
                 "hypervisor's filesystem, directories included", "gauge");
    sb_printf(b, "hypfs_scrape_entries %lu\n", m->entries);
    sb_help_type(b, om, "hypfs_scrape_skipped_entries", "Leaves read but "
                 "not exported: blobs, and paths whose metric another path "
                 "already gave", "gauge");
    sb_printf(b, "hypfs_scrape_skipped_entries %lu\n", m->skipped);
    sb_help_type(b, om, om ? "hypfs_scrape_errors" :
                 "hypfs_scrape_errors_total", "Scrapes that could not read "
                 "the hypervisor's filesystem", "counter");
    sb_printf(b, "hypfs_scrape_errors_total %llu\n", meta->errors_total);
    if (meta->version) {
        sb_help_type(b, om, om ? "hypfs_exporter_build" :
                     "hypfs_exporter_build_info", "The exporter's own "
                     "version", om ? "info" : "gauge");
        sb_puts(b, "hypfs_exporter_build_info{version=\"");
        sb_escaped(b, meta->version, strlen(meta->version), ESC_LABEL);
        sb_puts(b, "\"} 1\n");
    }
    if (om)
        sb_puts(b, "# EOF\n");
}

int metrics_next(struct metrics *m, const struct metrics_meta *meta,
                 const char **piece, size_t *len)
{
    bool om = m->opts.openmetrics;
    struct sbuf *b = &m->scratch[S_OUT];
    struct family *f;

    *piece = NULL;
    *len = 0;
    if (m->oom)
        return -ENOMEM;
    if (m->stage == ST_START) {
        /* Mapping is over: what only it needed goes. */
        series_free(&m->series);
        m->at = m->first;
        m->stage = ST_HEAD;
    }
    if (m->sent) {
        /* Its samples were the last piece: sent, so no longer needed. */
        free(m->sent->samples.p);
        m->sent->samples = (struct sbuf){ 0 };
        m->sent = NULL;
    }
    b->len = 0;
    b->oom = false;
    switch (m->stage) {
    case ST_HEAD:
        f = m->at;
        if (!f) {
            m->stage = ST_TRAILER;
            return metrics_next(m, meta, piece, len);
        }
        if (f->kind == KIND_INFO && !om) {
            sb_printf(b, "# HELP %s_info ", f->name);
            sb_escaped(b, f->help, strlen(f->help), ESC_HELP);
            sb_printf(b, "\n# TYPE %s_info gauge\n", f->name);
        } else
            sb_help_type(b, om, f->name, f->help,
                         f->kind == KIND_INFO ? "info" : "gauge");
        m->stage = ST_SAMPLES;
        break;
    case ST_SAMPLES:
        f = m->at;
        m->at = f->next;
        m->stage = ST_HEAD;
        m->sent = f;
        *piece = f->samples.p ? f->samples.p : "";
        *len = f->samples.len;
        return 1;
    case ST_TRAILER:
        render_trailer(m, meta, b);
        m->stage = ST_END;
        break;
    default:
        return 0;
    }
    if (b->oom) {
        m->oom = true;
        return -ENOMEM;
    }
    *piece = b->p;
    *len = b->len;
    return 1;
}

char *metrics_render(struct metrics *m, const struct metrics_meta *meta,
                     size_t *len)
{
    struct sbuf b = { 0 };
    const char *piece;
    size_t n;
    int r;

    while ((r = metrics_next(m, meta, &piece, &n)) > 0)
        sb_putn(&b, piece, n);
    if (r < 0 || b.oom) {
        free(b.p);
        return NULL;
    }
    if (!b.p)
        sb_putn(&b, "", 0);
    if (b.oom)
        return NULL;
    *len = b.len;
    return b.p;
}
