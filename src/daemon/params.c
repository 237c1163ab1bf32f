/*
 * Runtime parameters: /params/, set at boot from a Xen-style command line
 * and changed at run time through hypfs.
 *
 * Each parameter has one validator used for both: a bad value on the
 * command line stops the start with a clear message; a bad value written at
 * run time is refused and changes nothing.  String parameters have their
 * own parsers (loglvl and guest_loglvl take "<level>[/<rate-limited
 * level>]" like Xen's); numbers are written in binary, as libxenhypfs
 * sends them, and checked against their range by the entry's handler.
 *
 * All values are read and written under the hypfs tree lock only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypfsd.h"

/* ---- loglvl, guest_loglvl ---- */

static const char *const levels[] = {
    "none", "error", "warning", "info", "debug", "all",
};
#define NLEVELS ((int)(sizeof(levels) / sizeof(levels[0])))

struct loglvl {
    int lower;      /* printed */
    int upper;      /* printed, rate-limited */
};

/* Values are set by params_reset(), the one place defaults live. */
static struct loglvl loglvl;
static struct loglvl guest_loglvl;

static int level_parse(const char *s, size_t len)
{
    int i;

    for (i = 0; i < NLEVELS; i++)
        if (strlen(levels[i]) == len && !strncmp(s, levels[i], len))
            return i;
    return -1;
}

static int loglvl_parse(const char *s, struct loglvl *out)
{
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);

    out->lower = level_parse(s, len);
    out->upper = slash ? level_parse(slash + 1, strlen(slash + 1))
                       : out->lower;
    return out->lower < 0 || out->upper < 0 ? -EINVAL : 0;
}

static int loglvl_render(const struct loglvl *l, struct hypfs_buf *b)
{
    if (l->lower == l->upper)
        return hypfs_buf_put_string(b, levels[l->lower]);
    return hypfs_buf_printf(b, "%s/%s", levels[l->lower], levels[l->upper]);
}

static int loglvl_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return loglvl_render(&loglvl, b);
}

static int guest_loglvl_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return loglvl_render(&guest_loglvl, b);
}

static int loglvl_set(const char *val)
{
    struct loglvl l;
    int ret = loglvl_parse(val, &l);

    if (!ret)
        loglvl = l;
    return ret;
}

static int guest_loglvl_set(const char *val)
{
    struct loglvl l;
    int ret = loglvl_parse(val, &l);

    if (!ret)
        guest_loglvl = l;
    return ret;
}

/* ---- console_timestamps ---- */

static const char *const stamps[] = { "none", "date", "datems", "boot", "raw" };
static int console_timestamps;

static int bool_parse(const char *s);

static int timestamps_set(const char *val)
{
    int i, b = bool_parse(val);

    /* Xen also takes booleans: false is none, true is date. */
    if (b == 0)
        val = "none";
    else if (b == 1)
        val = "date";
    for (i = 0; i < (int)(sizeof(stamps) / sizeof(stamps[0])); i++)
        if (!strcmp(val, stamps[i])) {
            console_timestamps = i;
            return 0;
        }
    return -EINVAL;
}

static int timestamps_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, stamps[console_timestamps]);
}

/* The write handler of every string parameter: parse, then apply. */
struct string_param {
    struct hypfs_entry_leaf leaf;
    int (*set)(const char *val);
};

static int string_write(struct hypfs_entry_leaf *leaf, const void *val,
                        unsigned int len)
{
    const struct string_param *p = (const struct string_param *)leaf;

    (void)len;      /* the core checked: one NUL-terminated string */
    return p->set(val);
}

/*
 * Xen's contract for a parameter with its own parser: it reports as its
 * max_write_len the size of the buffer its current value is shown from,
 * but its handler takes any value up to the parameter size limit
 * (MAX_PARAM_SIZE, 128), so that "disable" (8 bytes) can be written to
 * console_timestamps (7).  The sizes reported are Xen's.
 */
#define PARAM_SIZE_MAX  128u

static const struct hypfs_funcs loglvl_funcs = {
    loglvl_read, string_write, PARAM_SIZE_MAX, 0,
};
static const struct hypfs_funcs guest_loglvl_funcs = {
    guest_loglvl_read, string_write, PARAM_SIZE_MAX, 0,
};
static const struct hypfs_funcs timestamps_funcs = {
    timestamps_read, string_write, PARAM_SIZE_MAX, 0,
};

#define STRING_PARAM(var, nam, fn, setter, shown) \
    static struct string_param var = { \
        .leaf = { HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_STRING, \
                                    XEN_HYPFS_ENC_PLAIN, nam, 0, shown, fn) }, \
        .set = setter }

/* Xen: LOGLVL_VAL_SZ (16) and the longest timestamp mode with its NUL (7). */
STRING_PARAM(p_loglvl, "loglvl", &loglvl_funcs, loglvl_set, 16);
STRING_PARAM(p_guest_loglvl, "guest_loglvl", &guest_loglvl_funcs,
             guest_loglvl_set, 16);
STRING_PARAM(p_timestamps, "console_timestamps", &timestamps_funcs,
             timestamps_set, 7);

/* ---- Numbers and booleans ---- */

static uint32_t gnttab_max_frames;
static uint32_t gnttab_max_maptrack_frames;
static int32_t sched_credit_tslice_ms;
static uint8_t sync_console;

struct num_param {
    struct hypfs_entry_leaf leaf;
    int64_t min, max;
};

/* Range check of a number written in binary (the core checked the size). */
static int num_write(struct hypfs_entry_leaf *leaf, const void *val,
                     unsigned int len)
{
    const struct num_param *p = (const struct num_param *)leaf;
    int64_t v;

    if (leaf->e.type == XEN_HYPFS_TYPE_INT) {
        int32_t i;

        memcpy(&i, val, sizeof(i));
        v = i;
    } else {
        uint32_t u;

        memcpy(&u, val, sizeof(u));
        v = u;
    }
    if (v < p->min || v > p->max)
        return -EINVAL;
    memcpy(leaf->u.write_ptr, val, len);
    return 0;
}

static const struct hypfs_funcs num_funcs = { .write = num_write };

#define NUM_PARAM(var, typ, nam, contvar, lo, hi) \
    static struct num_param var = { \
        .leaf = { HYPFS_INIT_COMMON(typ, XEN_HYPFS_ENC_PLAIN, nam, \
                                    sizeof(contvar), sizeof(contvar), \
                                    &num_funcs), \
                  .u.content = &(contvar) }, \
        .min = (lo), .max = (hi) }

NUM_PARAM(p_gnttab_frames, XEN_HYPFS_TYPE_UINT, "gnttab_max_frames",
          gnttab_max_frames, 4, 65536);
NUM_PARAM(p_gnttab_maptrack, XEN_HYPFS_TYPE_UINT, "gnttab_max_maptrack_frames",
          gnttab_max_maptrack_frames, 0, 1 << 20);
NUM_PARAM(p_tslice, XEN_HYPFS_TYPE_INT, "sched_credit_tslice_ms",
          sched_credit_tslice_ms, 1, 1000);
static HYPFS_BOOL_INIT_WRITABLE(p_sync_console, "sync_console", sync_console);

/* ---- The table the command line is parsed against ---- */

enum kind { K_STRING, K_NUM, K_BOOL };

static const struct param {
    const char *name;
    enum kind kind;
    struct string_param *str;
    struct num_param *num;
} params[] = {
    { "loglvl", K_STRING, &p_loglvl, NULL },
    { "guest_loglvl", K_STRING, &p_guest_loglvl, NULL },
    { "console_timestamps", K_STRING, &p_timestamps, NULL },
    { "gnttab_max_frames", K_NUM, NULL, &p_gnttab_frames },
    { "gnttab_max_maptrack_frames", K_NUM, NULL, &p_gnttab_maptrack },
    { "sched_credit_tslice_ms", K_NUM, NULL, &p_tslice },
    { "sync_console", K_BOOL, NULL, NULL },
};

void params_add(struct hypfs_entry_dir *dir)
{
    size_t i;

    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        hypfs_add_leaf(dir, params[i].kind == K_STRING ? &params[i].str->leaf :
                            params[i].kind == K_NUM ? &params[i].num->leaf :
                            &p_sync_console, true);
}

static int bool_parse(const char *s)
{
    static const char *const yes[] = { "1", "on", "yes", "true", "enable" };
    static const char *const no[] = { "0", "off", "no", "false", "disable" };
    size_t i;

    for (i = 0; i < 5; i++) {
        if (!strcmp(s, yes[i]))
            return 1;
        if (!strcmp(s, no[i]))
            return 0;
    }
    return -1;
}

/* Apply one "name[=value]" word. */
static int apply_word(const char *word, char *err, size_t errlen)
{
    const char *eq = strchr(word, '=');
    size_t nlen = eq ? (size_t)(eq - word) : strlen(word);
    const char *val = eq ? eq + 1 : NULL;
    bool negated = false;
    size_t i;

    /* Boolean "no-name" form. */
    if (!eq && !strncmp(word, "no-", 3)) {
        negated = true;
        word += 3;
        nlen -= 3;
    }
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        const struct param *p = &params[i];
        char *end;
        long long v;
        int b;

        if (strlen(p->name) != nlen || strncmp(p->name, word, nlen))
            continue;
        switch (p->kind) {
        case K_STRING:
            if (!val || p->str->set(val)) {
                snprintf(err, errlen, "%s: invalid value '%s'", p->name,
                         val ? val : "");
                return -1;
            }
            return 0;
        case K_NUM:
            errno = 0;
            v = val ? strtoll(val, &end, 0) : 0;
            if (!val || !*val || *end || errno || v < p->num->min ||
                v > p->num->max) {
                snprintf(err, errlen, "%s: '%s' is not a number from %lld to "
                         "%lld", p->name, val ? val : "",
                         (long long)p->num->min, (long long)p->num->max);
                return -1;
            }
            if (p->num->leaf.e.type == XEN_HYPFS_TYPE_INT) {
                int32_t i32 = (int32_t)v;

                memcpy(p->num->leaf.u.write_ptr, &i32, sizeof(i32));
            } else {
                uint32_t u32 = (uint32_t)v;

                memcpy(p->num->leaf.u.write_ptr, &u32, sizeof(u32));
            }
            return 0;
        case K_BOOL:
            b = val ? bool_parse(val) : 1;
            if (b < 0 || (negated && val)) {
                snprintf(err, errlen, "%s: '%s' is not a boolean", p->name,
                         val ? val : "");
                return -1;
            }
            sync_console = (uint8_t)(negated ? !b : b);
            return 0;
        }
    }
    /* Xen ignores options it does not know, and says so. */
    log_warn("unknown command line option '%.*s' ignored", (int)nlen, word);
    return 0;
}

void params_reset(void)
{
    loglvl = (struct loglvl){ 2, 2 };          /* warning */
    guest_loglvl = (struct loglvl){ 0, 2 };    /* none/warning */
    console_timestamps = 0;                    /* none */
    gnttab_max_frames = 64;
    gnttab_max_maptrack_frames = 1024;
    sched_credit_tslice_ms = 30;
    sync_console = 0;
}

int params_cmdline(const char *cmdline, char *err, size_t errlen)
{
    char word[256];
    const char *p = cmdline;

    while (p && *p) {
        size_t n = 0;
        bool quoted = false;

        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        /* A word ends at a space outside double quotes; quotes go. */
        for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if (*p == '"') {
                quoted = !quoted;
                continue;
            }
            if (n + 1 >= sizeof(word)) {
                snprintf(err, errlen, "option too long");
                return -1;
            }
            word[n++] = *p;
        }
        if (quoted) {
            snprintf(err, errlen, "unterminated quote");
            return -1;
        }
        word[n] = '\0';
        if (apply_word(word, err, errlen))
            return -1;
    }
    return 0;
}
