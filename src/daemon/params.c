/*
 * Runtime parameters: /params/, set at boot from a Xen-style command line
 * and changed at run time through hypfs.
 *
 * The set is Xen 4.17's, as the real hypervisor publishes it (checked
 * against Debian's Xen 4.17 booted under QEMU: tests/xen), with Xen's
 * three kinds of runtime parameter:
 *
 *   string   a buffer of N bytes written as it is (conswitch, crash-debug-*):
 *            any NUL-terminated string of up to N bytes, N its write limit;
 *   boolean  one byte, 0 or 1 (global-pages);
 *   custom   a parser of its own (loglvl, pcid, gnttab_max_frames, ...):
 *            shown as a string from a buffer whose size it reports as its
 *            write limit, yet taking any value up to Xen's parameter size
 *            limit (128 bytes, its NUL included), as Xen's handler does.
 *
 * Each parser is Xen's grammar, written here, with two corrections a
 * caller can rely on (docs/xen-tools.md lists them with their evidence):
 * a value refused is refused whole (Xen's loglvl parser sets the levels
 * before it finds the trailing garbage it refuses), and a number too large
 * for any integer is out of range (Xen's simple_strtoul() wraps it).
 *
 * Two parameters are hypfsd's own, beyond Xen's runtime set:
 * sched_credit_tslice_ms (int, 1 to 1000) and sync_console (bool).
 *
 * A bad value on the command line stops the start with a clear message; a
 * bad value written at run time is refused and changes nothing.  All
 * values are read and written under the hypfs tree lock only.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypfsd.h"

/* Xen's MAX_PARAM_SIZE: the longest value a custom parameter takes. */
#define PARAM_SIZE_MAX  128u

/* ---- Xen's boolean grammar (xen/common/kernel.c) ---- */

/* 1, 0, or -1 for anything but one of Xen's ten words. */
static int parse_bool(const char *s)
{
    static const char *const yes[] = { "1", "on", "yes", "true", "enable" };
    static const char *const no[] = { "0", "no", "off", "false", "disable" };
    size_t i;

    for (i = 0; i < 5; i++) {
        if (!strcmp(s, yes[i]))
            return 1;
        if (!strcmp(s, no[i]))
            return 0;
    }
    return -1;
}

/*
 * "NAME", "no-NAME" or "NAME=BOOL": 1 or 0; -2 for "NAME=" and something
 * that is not a boolean; -1 for anything else.
 */
static int parse_boolean(const char *name, const char *s)
{
    size_t n = strlen(name);
    bool no = !strncmp(s, "no-", 3);
    int b;

    if (no)
        s += 3;
    if (strncmp(s, name, n))
        return -1;
    if (!s[n])
        return !no;
    if (no || s[n] != '=')
        return -1;
    b = parse_bool(s + n + 1);
    return b >= 0 ? b : -2;
}

/* ---- loglvl, guest_loglvl (Xen: drivers/char/console.c) ---- */

struct loglvl {
    int lower;      /* printed */
    int upper;      /* printed, rate-limited */
};

/* Values are set by params_reset(), the one place defaults live. */
static struct loglvl loglvl;
static struct loglvl guest_loglvl;

/*
 * One level at *s, by prefix as Xen matches it ("debug" is "all"), *s
 * moved past it; an unknown word is "warning", *s unmoved.
 */
static int level_at(const char **s)
{
    static const struct {
        const char *word;
        int level;
    } words[] = {
        { "none", 0 }, { "error", 1 }, { "warning", 2 }, { "info", 3 },
        { "debug", 4 }, { "all", 4 },
    };
    size_t i, n;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        n = strlen(words[i].word);
        if (!strncmp(*s, words[i].word, n)) {
            *s += n;
            return words[i].level;
        }
    }
    return 2;
}

/* "LEVEL[/RATE-LIMITED-LEVEL]", the upper never below the lower. */
static int loglvl_parse(const char *s, struct loglvl *out)
{
    out->lower = out->upper = level_at(&s);
    if (*s == '/') {
        const char *after = s + 1;
        int upper = level_at(&after);

        /* Xen moves on only past a level it knows. */
        if (after != s + 1)
            s = after;
        out->upper = upper;
    }
    if (out->upper < out->lower)
        out->upper = out->lower;
    return *s ? -EINVAL : 0;
}

static int loglvl_render(const struct loglvl *l, struct hypfs_buf *b)
{
    static const char *const shown[] = {
        "none", "error", "warning", "info", "all",
    };

    return hypfs_buf_printf(b, "%s/%s", shown[l->lower], shown[l->upper]);
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

/* ---- console_timestamps (Xen: drivers/char/console.c) ---- */

static const char *const stamps[] = { "none", "date", "datems", "boot", "raw" };
static int console_timestamps;

static int timestamps_set(const char *val)
{
    int i, b = parse_bool(val);

    /* A boolean: false is none, true is date; so is "" (Xen's compat). */
    if (b == 0)
        val = "none";
    else if (b == 1 || !*val)
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

/* ---- pcid (Xen: arch/x86/pv/domain.c) ---- */

static const char *const pcids[] = { "off", "on", "xpti", "noxpti" };
enum { PCID_OFF, PCID_ALL, PCID_XPTI, PCID_NOXPTI };
static int pcid;

static int pcid_set(const char *val)
{
    int b = parse_bool(val);

    if (b >= 0) {
        pcid = b ? PCID_ALL : PCID_OFF;
        return 0;
    }
    b = parse_boolean("xpti", val);
    if (b < 0)
        return -EINVAL;
    pcid = b ? PCID_XPTI : PCID_NOXPTI;
    return 0;
}

static int pcid_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, pcids[pcid]);
}

/* ---- gnttab_max_frames, gnttab_max_maptrack_frames (common/grant_table.c) */

static unsigned int gnttab_max_frames;
static unsigned int gnttab_max_maptrack_frames;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/*
 * Xen's simple_strtoul() with base 0, whole string: no sign, no white
 * space; "" is 0.  -EINVAL for anything after the digits, -ERANGE above
 * INT_MAX (Xen's limit; Xen wraps what does not fit an unsigned long
 * first, we do not).
 */
static int gnttab_parse(const char *s, unsigned int *out)
{
    unsigned long long v = 0;
    unsigned int base = 10;
    bool big = false;
    int d;

    if (*s == '0') {
        base = 8;
        s++;
        if ((*s == 'x' || *s == 'X') && hexval(s[1]) < 16) {
            s++;
            base = 16;
        }
    }
    for (; (d = hexval(*s)) < (int)base; s++) {
        v = v * base + (unsigned int)d;
        if (v > INT_MAX) {
            big = true;
            v = (unsigned long long)INT_MAX + 1;  /* no overflow, ever */
        }
    }
    if (*s)
        return -EINVAL;
    if (big)
        return -ERANGE;
    *out = (unsigned int)v;
    return 0;
}

static int gnttab_frames_set(const char *val)
{
    return gnttab_parse(val, &gnttab_max_frames);
}

static int gnttab_maptrack_set(const char *val)
{
    return gnttab_parse(val, &gnttab_max_maptrack_frames);
}

static int gnttab_frames_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_printf(b, "%u", gnttab_max_frames);
}

static int gnttab_maptrack_read(const struct hypfs_entry *e,
                                struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_printf(b, "%u", gnttab_max_maptrack_frames);
}

/* ---- ept (Xen: arch/x86/hvm/vmx/vmcs.c) ---- */

/*
 * As Xen on a host without Intel EPT in use (an AMD host, or QEMU's
 * emulated CPU): nothing to show, and whatever is written is accepted and
 * ignored ("VMX: EPT not available, or not in use - ignoring").
 */
static int ept_set(const char *val)
{
    (void)val;
    return 0;
}

static int ept_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, "");
}

/* ---- The custom parameters' entries ---- */

struct custom_param {
    struct hypfs_entry_leaf leaf;
    int (*set)(const char *val);
};

static int custom_write(struct hypfs_entry_leaf *leaf, const void *val,
                        unsigned int len)
{
    const struct custom_param *p = (const struct custom_param *)leaf;

    (void)len;      /* the core checked: one NUL-terminated string */
    return p->set(val);
}

#define CUSTOM_FUNCS(var, reader) \
    static const struct hypfs_funcs var = { \
        reader, custom_write, PARAM_SIZE_MAX, 0, }

CUSTOM_FUNCS(loglvl_funcs, loglvl_read);
CUSTOM_FUNCS(guest_loglvl_funcs, guest_loglvl_read);
CUSTOM_FUNCS(timestamps_funcs, timestamps_read);
CUSTOM_FUNCS(pcid_funcs, pcid_read);
CUSTOM_FUNCS(gnttab_frames_funcs, gnttab_frames_read);
CUSTOM_FUNCS(gnttab_maptrack_funcs, gnttab_maptrack_read);
CUSTOM_FUNCS(ept_funcs, ept_read);

/* @shown: the size of Xen's buffer for the value, its write limit. */
#define CUSTOM_PARAM(var, nam, fn, setter, shown) \
    static struct custom_param var = { \
        .leaf = { HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_STRING, \
                                    XEN_HYPFS_ENC_PLAIN, nam, 0, shown, fn) }, \
        .set = setter }

/* Xen's sizes: LOGLVL_VAL_SZ, "datems", "noxpti", GRANT_CUSTOM_VAL_SZ, ... */
CUSTOM_PARAM(p_loglvl, "loglvl", &loglvl_funcs, loglvl_set, 16);
CUSTOM_PARAM(p_guest_loglvl, "guest_loglvl", &guest_loglvl_funcs,
             guest_loglvl_set, 16);
CUSTOM_PARAM(p_timestamps, "console_timestamps", &timestamps_funcs,
             timestamps_set, 7);
CUSTOM_PARAM(p_pcid, "pcid", &pcid_funcs, pcid_set, 7);
CUSTOM_PARAM(p_gnttab_frames, "gnttab_max_frames", &gnttab_frames_funcs,
             gnttab_frames_set, 12);
CUSTOM_PARAM(p_gnttab_maptrack, "gnttab_max_maptrack_frames",
             &gnttab_maptrack_funcs, gnttab_maptrack_set, 12);
CUSTOM_PARAM(p_ept, "ept", &ept_funcs, ept_set, 10);

/* ---- String parameters: a buffer written as it is ---- */

/* conswitch: CTRL-<first> switches the console; a second "x": no auto-switch. */
static char conswitch[3];
static char crash_debug_debugkey[32];
static char crash_debug_hwdom[32];
static char crash_debug_kexeccmd[32];
static char crash_debug_panic[32];
static char crash_debug_watchdog[32];

#define STRING_PARAM(var, nam, buf) \
    static struct hypfs_entry_leaf var = { \
        HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_STRING, XEN_HYPFS_ENC_PLAIN, nam, \
                          1, sizeof(buf), NULL), \
        .u.write_ptr = (buf) }

STRING_PARAM(p_conswitch, "conswitch", conswitch);
STRING_PARAM(p_cd_debugkey, "crash-debug-debugkey", crash_debug_debugkey);
STRING_PARAM(p_cd_hwdom, "crash-debug-hwdom", crash_debug_hwdom);
STRING_PARAM(p_cd_kexeccmd, "crash-debug-kexeccmd", crash_debug_kexeccmd);
STRING_PARAM(p_cd_panic, "crash-debug-panic", crash_debug_panic);
STRING_PARAM(p_cd_watchdog, "crash-debug-watchdog", crash_debug_watchdog);

/* Set a string parameter (not yet in a tree, or under the writer lock). */
static int string_param_set(struct hypfs_entry_leaf *leaf, const char *val)
{
    size_t n = strlen(val) + 1;

    if (n > leaf->e.max_size)
        return -ENOSPC;
    memcpy(leaf->u.write_ptr, val, n);
    leaf->e.size = (unsigned int)n;
    return 0;
}

/* ---- Numbers and booleans ---- */

static int32_t sched_credit_tslice_ms;      /* hypfsd's own */
static uint8_t sync_console;                /* hypfsd's own */
static uint8_t global_pages;

struct num_param {
    struct hypfs_entry_leaf leaf;
    int64_t min, max;
};

/* Range check of a number written in binary (the core checked the size). */
static int num_write(struct hypfs_entry_leaf *leaf, const void *val,
                     unsigned int len)
{
    const struct num_param *p = (const struct num_param *)leaf;
    int32_t v;

    memcpy(&v, val, sizeof(v));
    if (v < p->min || v > p->max)
        return -EINVAL;
    memcpy(leaf->u.write_ptr, val, len);
    return 0;
}

static const struct hypfs_funcs num_funcs = { .write = num_write };

static struct num_param p_tslice = {
    .leaf = { HYPFS_INIT_COMMON(XEN_HYPFS_TYPE_INT, XEN_HYPFS_ENC_PLAIN,
                                "sched_credit_tslice_ms",
                                sizeof(sched_credit_tslice_ms),
                                sizeof(sched_credit_tslice_ms), &num_funcs),
              .u.content = &sched_credit_tslice_ms },
    .min = 1, .max = 1000,
};
static HYPFS_BOOL_INIT_WRITABLE(p_sync_console, "sync_console", sync_console);
static HYPFS_BOOL_INIT_WRITABLE(p_global_pages, "global-pages", global_pages);

/* ---- The table the command line is parsed against ---- */

enum kind { K_CUSTOM, K_STRING, K_INT, K_BOOL };

static const struct param {
    const char *name;
    enum kind kind;
    struct hypfs_entry_leaf *leaf;
    struct custom_param *custom;    /* K_CUSTOM */
    uint8_t *flag;                  /* K_BOOL */
} params[] = {
    { "console_timestamps", K_CUSTOM, &p_timestamps.leaf, &p_timestamps, NULL },
    { "conswitch", K_STRING, &p_conswitch, NULL, NULL },
    { "crash-debug-debugkey", K_STRING, &p_cd_debugkey, NULL, NULL },
    { "crash-debug-hwdom", K_STRING, &p_cd_hwdom, NULL, NULL },
    { "crash-debug-kexeccmd", K_STRING, &p_cd_kexeccmd, NULL, NULL },
    { "crash-debug-panic", K_STRING, &p_cd_panic, NULL, NULL },
    { "crash-debug-watchdog", K_STRING, &p_cd_watchdog, NULL, NULL },
    { "ept", K_CUSTOM, &p_ept.leaf, &p_ept, NULL },
    { "global-pages", K_BOOL, &p_global_pages, NULL, &global_pages },
    { "gnttab_max_frames", K_CUSTOM, &p_gnttab_frames.leaf, &p_gnttab_frames,
      NULL },
    { "gnttab_max_maptrack_frames", K_CUSTOM, &p_gnttab_maptrack.leaf,
      &p_gnttab_maptrack, NULL },
    { "guest_loglvl", K_CUSTOM, &p_guest_loglvl.leaf, &p_guest_loglvl, NULL },
    { "loglvl", K_CUSTOM, &p_loglvl.leaf, &p_loglvl, NULL },
    { "pcid", K_CUSTOM, &p_pcid.leaf, &p_pcid, NULL },
    { "sched_credit_tslice_ms", K_INT, &p_tslice.leaf, NULL, NULL },
    { "sync_console", K_BOOL, &p_sync_console, NULL, &sync_console },
};

void params_add(struct hypfs_entry_dir *dir)
{
    size_t i;

    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        hypfs_add_leaf(dir, params[i].leaf, true);
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
        if (negated && p->kind != K_BOOL)
            break;
        switch (p->kind) {
        case K_CUSTOM: {
            /* A custom parameter named alone gets "", as on Xen. */
            int ret = strlen(val ? val : "") >= PARAM_SIZE_MAX
                      ? -ENOSPC : p->custom->set(val ? val : "");

            if (ret) {
                snprintf(err, errlen, "%s: invalid value '%s' (%s)", p->name,
                         val ? val : "", strerror(-ret));
                return -1;
            }
            return 0;
        }
        case K_STRING:
            if (string_param_set(p->leaf, val ? val : "")) {
                snprintf(err, errlen, "%s: '%s' is longer than its %u bytes "
                         "(its NUL included)", p->name, val ? val : "",
                         p->leaf->e.max_size);
                return -1;
            }
            return 0;
        case K_INT:
            errno = 0;
            v = val ? strtoll(val, &end, 0) : 0;
            if (!val || !*val || *end || errno || v < p_tslice.min ||
                v > p_tslice.max) {
                snprintf(err, errlen, "%s: '%s' is not a number from %lld to "
                         "%lld", p->name, val ? val : "",
                         (long long)p_tslice.min, (long long)p_tslice.max);
                return -1;
            }
            sched_credit_tslice_ms = (int32_t)v;
            return 0;
        case K_BOOL:
            b = val ? parse_bool(val) : 1;
            if (b < 0 || (negated && val)) {
                snprintf(err, errlen, "%s: '%s' is not a boolean", p->name,
                         val ? val : "");
                return -1;
            }
            *p->flag = (uint8_t)(negated ? !b : b);
            return 0;
        }
    }
    /* Xen ignores options it does not know, and says so. */
    log_warn("unknown command line option '%.*s' ignored", (int)nlen, word);
    return 0;
}

void params_reset(void)
{
    /* Xen 4.17's defaults, as its release build (NDEBUG) has them. */
    loglvl = (struct loglvl){ 2, 2 };          /* warning/warning */
    guest_loglvl = (struct loglvl){ 0, 2 };    /* none/warning */
    console_timestamps = 0;                    /* none */
    pcid = PCID_XPTI;
    gnttab_max_frames = 64;
    gnttab_max_maptrack_frames = 1024;
    string_param_set(&p_conswitch, "a");
    string_param_set(&p_cd_debugkey, "");
    string_param_set(&p_cd_hwdom, "");
    string_param_set(&p_cd_kexeccmd, "");
    string_param_set(&p_cd_panic, "");
    string_param_set(&p_cd_watchdog, "");
    /* Off, as Xen decides when running virtualized (its CI host). */
    global_pages = 0;
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
