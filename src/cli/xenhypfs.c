/*
 * hypfs (xenhypfs): the hypervisor filesystem from the command line.
 *
 * The four commands of Xen's tool behave byte for byte as Xen's
 * (tools/misc/xenhypfs.c), so that scripts keep working: the same output,
 * the same messages, the same exit codes (1 usage, 2 cannot open the
 * library or a tree traversal failed, 3 a read or write failed), and the
 * same order of checks (the library is opened before the arguments are
 * looked at).  Two of Xen's quirks are kept on purpose and documented in
 * xenhypfs(1): "cat -b" escapes bytes above 0x7f as a sign-extended char
 * ("\xffffff80"), and "tree" fails silently with status 2.
 *
 * Extensions, where Xen's tool would only print its usage: --help,
 * --version and -V, "dump [PATH]" (every value below PATH, one escaped
 * line each), "watch PATH..." (a line per change), and --json anywhere
 * for machine-readable output (always valid UTF-8; nothing on stdout when
 * it fails).  Usage errors are reported before the library is opened.
 *
 * tree and dump read the whole subtree in one call when the hypervisor
 * speaks interface version 2 (a consistent snapshot, one round trip); the
 * output is the same as the walk, which is what they fall back to on a
 * version-1 hypervisor or when the one read fails (the walk then reports
 * what it can, entry by entry, as Xen's tool does).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hypfs/abi.h>
#include <json-c/json.h>
#include <xenhypfs.h>
#include "utf8.h"

static xenhypfs_handle *hdl;

/*
 * The name this program was run as: "xenhypfs" (Xen's command, whose
 * usage and messages are printed byte for byte as Xen's tool prints them)
 * or "hypfs" (the name it is installed as).
 */
static const char *prog = "xenhypfs";

static int usage(void)
{
    fprintf(stderr, "usage: %s ls <path>\n", prog);
    fprintf(stderr, "       %s cat [-b] <path>\n", prog);
    fprintf(stderr, "       %s write <path> <val>\n", prog);
    fprintf(stderr, "       %s tree\n", prog);
    return 1;
}

static void help(void)
{
    /* A synopsis, and its explanation from column 38 ("|": a new line). */
    static const char *const lines[][2] = {
        { "ls [-l] <path>", "list a directory (-l: encoding,|size, longest "
          "value accepted)" },
        { "cat [-b] <path>", "print a value (-b: escape bytes|that are "
          "neither printable nor space)" },
        { "write <path> <val>", "set a writable value" },
        { "tree", "print every path" },
        { "dump [<path>]", "print every value below a path" },
        { "watch [--value] [-n N|--once] <path>...", "|print where each "
          "path stands, then a line|per change (and its new value), until "
          "^C|or N changes" },
        { "--json ls|cat|tree|dump|watch ...", "|the same, as JSON (valid "
          "UTF-8;|cat: paths..., tree: [<path>])" },
        { "--explain ...", "errors that say what is allowed" },
        { "-s, --socket <path> <command> ...", "|before the command: hypfsd's "
          "socket,|even where privcmd opens" },
        { "--help | --version | -V", "" },
    };
    size_t i;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        const char *d = lines[i][1];
        int col = printf("%s%s %s", i ? "       " : "usage: ", prog,
                         lines[i][0]);

        while (*d) {
            size_t n = strcspn(d, "|");

            if (n)
                printf("%*s%.*s", col < 38 ? 38 - col : 1, "", (int)n, d);
            d += n;
            if (*d == '|') {
                printf("\n");
                d++;
                col = 0;
            }
        }
        printf("\n");
    }
    printf(
"\n"
"The hypervisor is reached through /dev/xen/privcmd in a Xen control domain,\n"
"else through hypfsd's socket ($HYPFS_SOCKET, default /run/hypfs/hypfsd.sock).\n"
"Exit status, for every command: 0 success, 1 usage, 2 the hypervisor cannot\n"
"be reached (or Xen's tree could not traverse), 3 a read or write failed.\n");
}

/* ---- Xen's four commands ---- */

static void print_escaped(const char *string)
{
    const char *c;

    for (c = string; *c; c++) {
        unsigned char u = (unsigned char)*c;

        /*
         * Xen's tool tests and prints a plain (signed) char: bytes above
         * 0x7f are neither graphic nor space in the C locale, and print
         * sign-extended ("\xffffff80").  Kept, so that output matches.
         */
        if (u < 0x80 && (isgraph(u) || isspace(u)))
            printf("%c", u);
        else
            printf("\\x%02x", (unsigned int)(int)(signed char)u);
    }
    printf("\n");
}

/* --explain: messages that name the path, the reason and what is allowed. */
static bool explain;

/*
 * What Xen's parameters with their own parsers accept, as Xen's
 * command-line documentation gives it (hypfsd follows it; paths.md).
 * "*" stands for one path component (an id).
 */
static const struct {
    const char *pattern, *accepts;
} grammars[] = {
    { "/params/loglvl", "LEVEL or LEVEL/RATE-LIMITED-LEVEL, each one of "
      "none, error, warning, info, debug, all" },
    { "/params/guest_loglvl", "LEVEL or LEVEL/RATE-LIMITED-LEVEL, each one "
      "of none, error, warning, info, debug, all" },
    { "/params/console_timestamps", "none, date, datems, boot, raw (or a "
      "boolean: off is none, on is date)" },
    { "/params/pcid", "a boolean (on, off), xpti, no-xpti or xpti=BOOLEAN" },
    { "/params/gnttab_max_frames", "a number (decimal, 0x hex or 0 octal) "
      "up to 2147483647" },
    { "/params/gnttab_max_maptrack_frames", "a number (decimal, 0x hex or 0 "
      "octal) up to 2147483647" },
    { "/cpupool/*/sched-gran", "cpu, core, socket" },
};

static bool path_matches(const char *path, const char *pattern)
{
    while (*pattern) {
        if (*pattern == '*') {
            while (*path && *path != '/')
                path++;
            pattern++;
        } else if (*path++ != *pattern++)
            return false;
    }
    return !*path;
}

static const char *grammar_of(const char *path)
{
    size_t i;

    for (i = 0; i < sizeof(grammars) / sizeof(grammars[0]); i++)
        if (path_matches(path, grammars[i].pattern))
            return grammars[i].accepts;
    return NULL;
}

/*
 * The ranges of numeric parameters whose parser refuses more than their
 * type does, as Xen's command-line documentation gives them (hypfsd
 * follows it; paths.md).
 */
static const struct {
    const char *pattern;
    long long min, max;
} ranges[] = {
    { "/params/sched_credit_tslice_ms", 1, 1000 },
};

/* @path shortened for a message: an absurdly long one is not echoed whole. */
static void print_path(const char *path)
{
    size_t n = strlen(path);

    if (n > 80)
        fprintf(stderr, "%.60s... (%zu bytes)", path, n);
    else
        fprintf(stderr, "%s", path);
}

/* Does @val read as a number of the entry's kind (whatever its range)? */
static bool reads_as_number(const char *val, bool is_signed)
{
    char *end;

    while (isspace((unsigned char)*val))
        val++;
    if (!*val || (!is_signed && *val == '-'))
        return false;
    errno = 0;
    if (is_signed)
        (void)strtoll(val, &end, 0);
    else
        (void)strtoull(val, &end, 0);
    while (isspace((unsigned char)*end))
        end++;
    return !*end;
}

/* "/cpupool/1/sched-gran" -> the pool's cpus, or NULL (caller frees). */
static char *sibling(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    char *p, *v;

    if (!slash || asprintf(&p, "%.*s/%s", (int)(slash - path), path,
                           name) < 0)
        return NULL;
    v = xenhypfs_read(hdl, p);
    free(p);
    return v;
}

/*
 * Why @verb of @path (with @val) failed with @err, in terms of the entry
 * itself: its type, its size, its write limit, the parameter's documented
 * range or grammar, the state that keeps it busy.  The errno alone
 * decides nothing that the entry can say.
 */
static void explain_failure(const char *verb, const char *path,
                            const char *val, int err)
{
    static const char *const words =
        "use 0/1, on/off, yes/no, true/false, enable/disable";
    struct xenhypfs_dirent *d = NULL;
    void *raw = err == ENAMETOOLONG ? NULL : xenhypfs_read_raw(hdl, path, &d);
    unsigned int bits = d ? (unsigned int)d->size * 8 : 0;
    bool number = d && (d->type == xenhypfs_type_uint ||
                        d->type == xenhypfs_type_int);
    const char *grammar = grammar_of(path);
    size_t i;

    fprintf(stderr, "%s: cannot %s ", prog, verb);
    print_path(path);
    fprintf(stderr, ": ");
    if (err == ENAMETOOLONG || strlen(path) >= XEN_HYPFS_MAX_PATHLEN)
        fprintf(stderr, "the path is %zu bytes, %zu with its NUL; a path "
                "takes at most %d\n", strlen(path), strlen(path) + 1,
                XEN_HYPFS_MAX_PATHLEN);
    else if (!raw && err == ENOENT)
        fprintf(stderr, "no such entry (or it is hidden from you)\n");
    else if (!raw && (err == EACCES || err == EPERM))
        fprintf(stderr, "you have no right to it\n");
    else if (!raw)
        fprintf(stderr, "%s\n", strerror(err));
    else if (d->type == xenhypfs_type_dir)
        fprintf(stderr, "it is a directory (%s)\n", val ?
                "only its entries have values" : "use ls or dump");
    else if (val && !(d->flags & XENHYPFS_FLAG_WRITABLE))
        fprintf(stderr, "it is read-only for you\n");
    else if (d->type == xenhypfs_type_blob && val)
        fprintf(stderr, "it is a blob of %zu bytes (write takes typed "
                "values: a blob cannot be written from the command line)\n",
                d->size);
    else if (d->type == xenhypfs_type_blob)
        fprintf(stderr, "it is a blob of %zu bytes (dump %s shows them in "
                "hex)\n", d->size, path);
    else if (!val)
        fprintf(stderr, "%s\n", strerror(err));
    else if (d->type == xenhypfs_type_bool)
        fprintf(stderr, "\"%s\" is not a boolean (%s)\n", val, words);
    else if (number && !reads_as_number(val, d->type == xenhypfs_type_int))
        fprintf(stderr, "\"%s\" is not %s integer (decimal, 0x hex or 0 "
                "octal)\n", val, d->type == xenhypfs_type_uint
                ? "an unsigned" : "an");
    else if (number) {
        for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
            if (path_matches(path, ranges[i].pattern))
                break;
        if (i < sizeof(ranges) / sizeof(ranges[0]))
            fprintf(stderr, "%s is out of range: it takes %lld to %lld\n",
                    val, ranges[i].min, ranges[i].max);
        else if (d->type == xenhypfs_type_uint)
            fprintf(stderr, "%s is out of range: %s %u-bit unsigned "
                    "integer, 0 to %" PRIu64 "\n", val,
                    bits == 8 ? "an" : "a", bits,
                    bits >= 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1);
        else
            fprintf(stderr, "%s is out of range: %s %u-bit integer, %"
                    PRId64 " to %" PRId64 "\n", val, bits == 8 ? "an" : "a",
                    bits, bits >= 64 ? INT64_MIN : -(INT64_C(1) << (bits - 1)),
                    bits >= 64 ? INT64_MAX : (INT64_C(1) << (bits - 1)) - 1);
    } else if (err == ENOSPC) {
        unsigned int m = 0;
        size_t need = strlen(val) + 1;

        if (!xenhypfs_write_limit(hdl, path, &m) && m)
            fprintf(stderr, "the value is %zu bytes, %zu with its NUL; the "
                    "entry takes at most %u (%u characters)\n", need - 1,
                    need, m, m - 1);
        else
            fprintf(stderr, "the value (%zu bytes) is longer than the entry "
                    "takes\n", need - 1);
    } else if (err == EBUSY && path_matches(path, "/cpupool/*/sched-gran")) {
        char *cpus = sibling(path, "cpus");

        fprintf(stderr, "the pool has cpus (%s): its granularity changes "
                "only while it has none\n", cpus ? cpus : "?");
        free(cpus);
    } else if (grammar && (err == EINVAL || err == ERANGE))
        fprintf(stderr, "\"%s\" is %s: use %s\n", val, err == ERANGE ?
                "out of range" : "not accepted", grammar);
    else if (err == EINVAL)
        fprintf(stderr, "\"%s\" is not a value this entry accepts (its "
                "current value is \"%.*s\")\n", val, (int)d->size,
                (const char *)raw);
    else
        fprintf(stderr, "%s\n", strerror(err));
    free(raw);
    free(d);
}

static int cmd_cat(int argc, char *argv[])
{
    bool bin = false;
    char *path, *result;

    switch (argc) {
    case 1:
        path = argv[0];
        break;
    case 2:
        if (strcmp(argv[0], "-b"))
            return usage();
        bin = true;
        path = argv[1];
        break;
    default:
        return usage();
    }
    result = xenhypfs_read(hdl, path);
    if (!result) {
        if (explain)
            explain_failure("read", path, NULL, errno);
        else
            perror("could not read");
        return 3;
    }
    if (bin)
        print_escaped(result);
    else
        printf("%s\n", result);
    free(result);
    return 0;
}

static int cmd_write(char *path, char *val)
{
    if (xenhypfs_write(hdl, path, val)) {
        if (explain)
            explain_failure("write", path, val, errno);
        else
            perror("could not write");
        return 3;
    }
    return 0;
}

static const char *type_column(unsigned short type)
{
    switch (type) {
    case xenhypfs_type_dir:    return "<dir>   ";
    case xenhypfs_type_blob:   return "<blob>  ";
    case xenhypfs_type_string: return "<string>";
    case xenhypfs_type_uint:   return "<uint>  ";
    case xenhypfs_type_int:    return "<int>   ";
    case xenhypfs_type_bool:   return "<bool>  ";
    default:                   return "<\?\?\?>   ";
    }
}

static int cmd_ls(char *path)
{
    struct xenhypfs_dirent *ent;
    unsigned int n, i;

    ent = xenhypfs_readdir(hdl, path, &n);
    if (!ent) {
        perror("could not read dir");
        return 3;
    }
    for (i = 0; i < n; i++)
        printf("%s r%c %s\n", type_column(ent[i].type),
               ent[i].flags & XENHYPFS_FLAG_WRITABLE ? 'w' : '-',
               ent[i].name);
    free(ent);
    return 0;
}

static int tree_sub(const char *path, unsigned int depth)
{
    struct xenhypfs_dirent *ent;
    unsigned int n, i;
    int ret = 0;

    ent = xenhypfs_readdir(hdl, path, &n);
    if (!ent)
        return 2;
    for (i = 0; i < n; i++) {
        char *p;

        printf("%*s%s%s\n", depth * 2, "", ent[i].name,
               ent[i].type == xenhypfs_type_dir ? "/" : "");
        if (ent[i].type != xenhypfs_type_dir)
            continue;
        if (asprintf(&p, "%s%s%s", path, depth == 1 ? "" : "/",
                     ent[i].name) < 0) {
            ret = 2;
            break;
        }
        if (tree_sub(p, depth + 1))
            ret = 2;
        free(p);
    }
    free(ent);
    return ret;
}

/*
 * The subtree at @path in one read, or NULL (then walk instead).
 * $XENHYPFS_V1 makes it walk always (comparisons, and a way around a
 * hypervisor whose version 2 misbehaves).
 */
static struct xenhypfs_tree_entry *read_tree(const char *path,
                                             unsigned int *n)
{
    if (getenv("XENHYPFS_V1")) {
        errno = EOPNOTSUPP;
        return NULL;
    }
    return xenhypfs_read_tree(hdl, path, n);
}

/* The last component of a tree entry's relative path. */
static const char *base_name(const struct xenhypfs_tree_entry *t)
{
    const char *s = strrchr(t->dirent.name, '/');

    return s ? s + 1 : t->dirent.name;
}

static int cmd_tree(void)
{
    struct xenhypfs_tree_entry *t;
    unsigned int n, i;

    printf("/\n");
    t = read_tree("/", &n);
    if (!t)
        return tree_sub("/", 1);
    for (i = 1; i < n; i++)
        printf("%*s%s%s\n", t[i].depth * 2, "", base_name(&t[i]),
               t[i].dirent.type == xenhypfs_type_dir ? "/" : "");
    free(t);
    return 0;
}

/* ---- Extensions ---- */

static const char *type_name(unsigned short type)
{
    static const char *const names[] = {
        "dir", "blob", "string", "uint", "int", "bool",
    };

    return type <= xenhypfs_type_bool ? names[type] : "unknown";
}

static char *join(const char *dir, const char *name)
{
    char *p;
    size_t n = strlen(dir);

    if (asprintf(&p, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/",
                 name) < 0)
        return NULL;
    return p;
}

/*
 * One rule for showing a value, wherever it is shown (dump, --json,
 * watch --value): gzip content inflated, as cat and the mount give it.
 */


/* @n bytes as hex, malloc()ed. */
static char *hex_of(const unsigned char *b, size_t n)
{
    char *hex = malloc(n * 2 + 1);
    size_t i;

    if (!hex)
        return NULL;
    for (i = 0; i < n; i++)
        sprintf(hex + 2 * i, "%02x", b[i]);
    hex[2 * n] = '\0';
    return hex;
}

/*
 * @n bytes as one line of text: \\, \n, \t, and other control bytes and
 * bytes that are not UTF-8 as \xNN (malloc()ed).
 */
static char *escaped_line(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(n * 4 + 1), *o = out;
    size_t i = 0;

    if (!out)
        return NULL;
    while (i < n) {
        size_t l = hypfs_utf8_len(u + i, n - i);

        if (u[i] == '\\' || u[i] == '\n' || u[i] == '\t') {
            *o++ = '\\';
            *o++ = u[i] == '\\' ? '\\' : u[i] == '\n' ? 'n' : 't';
            i++;
        } else if (!l || u[i] < 0x20 || u[i] == 0x7f) {
            o += sprintf(o, "\\x%02x", u[i]);
            i++;
        } else {
            memcpy(o, s + i, l);
            o += l;
            i += l;
        }
    }
    *o = '\0';
    return out;
}

/*
 * A leaf's value as dump prints it, one line: numbers in decimal, strings
 * escaped, blobs as "<blob, N bytes: HEX>" (malloc()ed; NULL, errno).
 */
static char *dump_value(const struct xenhypfs_dirent *d, const void *raw)
{
    unsigned char *b;
    char *val, *hex;
    size_t len;

    if (d->type == xenhypfs_type_blob) {
        b = xenhypfs_value_bytes(d, raw, &len);
        if (!b)
            return NULL;
        hex = hex_of(b, len);
        free(b);
        if (!hex || asprintf(&val, "<blob, %zu bytes: %s>", len, hex) < 0)
            val = NULL;
        free(hex);
        return val;
    }
    b = (unsigned char *)xenhypfs_value_string(d, raw);
    if (!b)
        return NULL;
    val = escaped_line((char *)b, strlen((char *)b));
    free(b);
    return val;
}

/*
 * @n bytes as a JSON string: valid UTF-8 always, a byte that is not
 * UTF-8 replaced by U+FFFD (and *lossy set: the caller then gives the
 * exact bytes in hex too).
 */
static json_object *json_text(const char *s, size_t n, bool *lossy)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(n * 3 + 1), *o = out;
    json_object *j;
    size_t i = 0;

    if (!out)
        return NULL;
    while (i < n) {
        size_t l = hypfs_utf8_len(u + i, n - i);

        if (!l) {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            *lossy = true;
        } else {
            memcpy(o, s + i, l);
            o += l;
            i += l;
        }
    }
    j = json_object_new_string_len(out, (int)(o - out));
    free(out);
    return j;
}

/*
 * Add a leaf's value to @o as "value": numbers as numbers, strings as
 * strings (gzip inflated; with "value_hex" too when not UTF-8), blobs as
 * hex of their bytes (gzip inflated).  0, or -1 with errno.
 */
static int json_add_value(json_object *o, const struct xenhypfs_dirent *d,
                          const void *raw)
{
    json_object *j;
    unsigned char *b;
    bool lossy = false;
    char *val;
    size_t len;

    if (d->type == xenhypfs_type_blob) {
        b = xenhypfs_value_bytes(d, raw, &len);
        val = b ? hex_of(b, len) : NULL;
        free(b);
        if (!val)
            return -1;
        json_object_object_add(o, "value", json_object_new_string(val));
        free(val);
        return 0;
    }
    val = xenhypfs_value_string(d, raw);
    if (!val)
        return -1;
    switch (d->type) {
    case xenhypfs_type_uint:
        j = json_object_new_uint64(strtoull(val, NULL, 10));
        break;
    case xenhypfs_type_int:
        j = json_object_new_int64(strtoll(val, NULL, 10));
        break;
    case xenhypfs_type_bool:
        j = json_object_new_boolean(strcmp(val, "0") != 0);
        break;
    default:
        len = strlen(val);
        j = json_text(val, len, &lossy);
        if (lossy) {
            char *hex = hex_of((unsigned char *)val, len);

            json_object_object_add(o, "value_hex",
                                   json_object_new_string(hex ? hex : ""));
            free(hex);
        }
    }
    free(val);
    json_object_object_add(o, "value", j);
    return 0;
}

/* The value at @path added to @o, as json_add_value(). */
static int json_add_value_at(json_object *o, const char *path)
{
    struct xenhypfs_dirent *raw_d;
    void *raw = xenhypfs_read_raw(hdl, path, &raw_d);
    int ret;

    if (!raw)
        return -1;
    ret = json_add_value(o, raw_d, raw);
    free(raw);
    free(raw_d);
    return ret;
}

static json_object *json_entry(const struct xenhypfs_dirent *d)
{
    json_object *o = json_object_new_object();
    bool lossy = false;

    json_object_object_add(o, "name", json_text(d->name, strlen(d->name),
                                                &lossy));
    if (lossy) {
        char *hex = hex_of((const unsigned char *)d->name, strlen(d->name));

        json_object_object_add(o, "name_hex",
                               json_object_new_string(hex ? hex : ""));
        free(hex);
    }
    json_object_object_add(o, "type", json_object_new_string(type_name(d->type)));
    json_object_object_add(o, "encoding", json_object_new_string(
        d->encoding == xenhypfs_enc_gzip ? "gzip" : "plain"));
    json_object_object_add(o, "size", json_object_new_uint64(d->size));
    json_object_object_add(o, "writable", json_object_new_boolean(
        d->flags & XENHYPFS_FLAG_WRITABLE));
    return o;
}

/*
 * Walk @path.  Text: "path = value" lines (or the tree for --json).
 * Returns 0, or 2 when some part could not be read (and goes on).
 */
static int walk(const char *path, bool json, bool values, json_object *into)
{
    struct xenhypfs_dirent *ent;
    unsigned int n, i;
    int ret = 0;

    ent = xenhypfs_readdir(hdl, path, &n);
    if (!ent) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
        return 3;
    }
    for (i = 0; i < n; i++) {
        char *p = join(path, ent[i].name);
        json_object *o = json ? json_entry(&ent[i]) : NULL;

        if (!p) {
            ret = 3;
            break;
        }
        if (ent[i].type == xenhypfs_type_dir) {
            json_object *children = json ? json_object_new_array() : NULL;

            if (!json && !values)
                printf("%s/\n", p);
            if (walk(p, json, values, children))
                ret = 3;
            if (json)
                json_object_object_add(o, "entries", children);
        } else if (values) {
            if (json) {
                if (json_add_value_at(o, p)) {
                    fprintf(stderr, "%s: %s: %s\n", prog, p, strerror(errno));
                    ret = 3;
                }
            } else {
                struct xenhypfs_dirent *d;
                void *raw = xenhypfs_read_raw(hdl, p, &d);
                char *val = raw ? dump_value(d, raw) : NULL;

                if (val) {
                    printf("%s = %s\n", p, val);
                    free(val);
                } else {
                    fprintf(stderr, "%s: %s: %s\n", prog, p, strerror(errno));
                    ret = 3;
                }
                if (raw) {
                    free(raw);
                    free(d);
                }
            }
        } else if (!json)
            printf("%s\n", p);
        if (json)
            json_object_array_add(into, o);
        free(p);
    }
    free(ent);
    return ret;
}

/* A tree entry's full path, below @top. */
static char *tree_path(const char *top, const struct xenhypfs_tree_entry *t)
{
    return t->dirent.name[0] ? join(top, t->dirent.name) : strdup(top);
}

/*
 * walk(), from the entries of one read_tree (@t[*i] onwards, the children
 * of the entry at depth @depth - 1): the same output.  -1 if a value
 * cannot be formatted (the caller then walks instead).
 */
static int walk_tree(FILE *out, const char *top,
                     struct xenhypfs_tree_entry *t, unsigned int n,
                     unsigned int *i, unsigned int depth, bool json,
                     bool values, json_object *into)
{
    while (*i < n && t[*i].depth == depth) {
        struct xenhypfs_tree_entry *e = &t[(*i)++];
        char *p = tree_path(top, e);
        json_object *o = NULL;

        if (!p)
            return -1;
        if (json) {
            struct xenhypfs_dirent d = e->dirent;

            d.name = (char *)base_name(e);
            o = json_entry(&d);
        }
        if (e->dirent.type == xenhypfs_type_dir) {
            json_object *children = json ? json_object_new_array() : NULL;

            if (!json && !values)
                fprintf(out, "%s/\n", p);
            if (walk_tree(out, top, t, n, i, depth + 1, json, values,
                          children)) {
                free(p);
                json_object_put(children);
                json_object_put(o);
                return -1;
            }
            if (json)
                json_object_object_add(o, "entries", children);
        } else if (values) {
            if (json) {
                if (json_add_value(o, &e->dirent, e->content)) {
                    free(p);
                    json_object_put(o);
                    return -1;
                }
            } else {
                char *val = dump_value(&e->dirent, e->content);

                if (!val) {
                    free(p);
                    return -1;
                }
                fprintf(out, "%s = %s\n", p, val);
                free(val);
            }
        } else if (!json)
            fprintf(out, "%s\n", p);
        if (json)
            json_object_array_add(into, o);
        free(p);
    }
    return 0;
}

/* walk() of a leaf: its own line, or its object into @into. */
static int leaf_line(const char *path, const struct xenhypfs_dirent *d,
                     const void *content, bool json, bool values,
                     json_object *into)
{
    if (json) {
        struct xenhypfs_dirent named = *d;
        const char *slash = strrchr(path, '/');
        json_object *o;

        named.name = (char *)(slash ? slash + 1 : path);
        o = json_entry(&named);
        if (values && json_add_value(o, d, content)) {
            json_object_put(o);
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            return 3;
        }
        json_object_array_add(into, o);
    } else if (values) {
        char *val = dump_value(d, content);

        if (!val) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            return 3;
        }
        printf("%s = %s\n", path, val);
        free(val);
    } else
        printf("%s\n", path);
    return 0;
}

/*
 * walk() of @path, through one read_tree if the hypervisor can; else (or
 * if its answer cannot be shown) the walk itself.  Text output goes to a
 * buffer first, so that a fallback never prints anything twice.
 */
static int walk_top(const char *path, bool json, bool values,
                    json_object *into)
{
    struct xenhypfs_tree_entry *t;
    unsigned int n, i = 1;
    char *out = NULL;
    size_t len = 0;
    FILE *f = NULL;
    json_object *entries = NULL;
    int ret = -1;

    t = read_tree(path, &n);
    if (!t || (n && t[0].dirent.type != xenhypfs_type_dir)) {
        /* A leaf: its own line (or object). */
        struct xenhypfs_dirent *d = NULL;
        void *raw = t ? NULL : xenhypfs_read_raw(hdl, path, &d);

        if (t || raw) {
            const struct xenhypfs_dirent *de = t ? &t[0].dirent : d;
            const void *content = t ? t[0].content : raw;

            if (de->type != xenhypfs_type_dir) {
                ret = leaf_line(path, de, content, json, values, into);
                free(t);
                free(raw);
                free(d);
                return ret;
            }
            free(raw);
            free(d);
        } else if (errno != EOPNOTSUPP) {
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
            return 3;
        }
    }
    if (t && n && t[0].dirent.type == xenhypfs_type_dir) {
        if (json)
            entries = json_object_new_array();
        else
            f = open_memstream(&out, &len);
        if (json || f)
            ret = walk_tree(f ? f : stdout, path, t, n, &i, 1, json, values,
                            entries);
        if (f && fclose(f))
            ret = -1;
    }
    free(t);
    if (ret) {
        free(out);
        json_object_put(entries);
        return walk(path, json, values, into);
    }
    if (json) {
        size_t k;

        for (k = 0; k < json_object_array_length(entries); k++)
            json_object_array_add(into, json_object_get(
                json_object_array_get_idx(entries, k)));
        json_object_put(entries);
    } else {
        fwrite(out, 1, len, stdout);
        free(out);
    }
    return 0;
}

/* ---- watch ---- */

static volatile sig_atomic_t stop_watching;

static void on_stop(int sig)
{
    (void)sig;
    stop_watching = 1;
}

/* One line for a change of @path (generation @gen, @status). */
static void print_change(const char *path, uint64_t gen, int status,
                         bool value, bool json, bool gap)
{
    struct xenhypfs_dirent *d = NULL;
    void *raw = NULL;
    char *val = NULL;
    int err = 0;

    if (value && !status) {
        raw = xenhypfs_read_raw(hdl, path, &d);
        if (!raw)
            err = errno;
        else if (d->type != xenhypfs_type_dir && !json &&
                 !(val = dump_value(d, raw)))
            err = errno;
    }
    if (json) {
        json_object *o = json_object_new_object();
        bool lossy = false;

        json_object_object_add(o, "path", json_text(path, strlen(path), &lossy));
        if (status || err)
            json_object_object_add(o, "error", json_object_new_string(
                strerror(status ? -status : err)));
        else
            json_object_object_add(o, "generation",
                                   json_object_new_uint64(gen));
        /* Typed, as cat --json gives it. */
        if (raw && d->type != xenhypfs_type_dir)
            json_add_value(o, d, raw);
        if (gap)
            json_object_object_add(o, "gap", json_object_new_boolean(true));
        printf("%s\n", json_object_to_json_string_ext(o,
                   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else if (status || err) {
        printf("%s: %s\n", path, strerror(status ? -status : err));
    } else if (val) {
        printf("%s = %s\n", path, val);
    } else {
        printf("%s\n", path);
    }
    free(val);
    free(raw);
    free(d);
}

struct watch_opts {
    bool value;
    unsigned long count;        /* changes to print, then exit; 0: no end */
};

/*
 * watch's options (before its paths): --value, -n/--count N, --once.
 * The index of the first path, or -1 on a usage error (said).
 */
static int watch_opts(int argc, char *argv[], struct watch_opts *o)
{
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 0; i < argc && argv[i][0] == '-'; i++) {
        char *end;

        if (!strcmp(argv[i], "--value"))
            o->value = true;
        else if (!strcmp(argv[i], "--once"))
            o->count = 1;
        else if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "--count")) {
            if (i + 1 == argc) {
                fprintf(stderr, "%s: %s needs a number\n", prog, argv[i]);
                return -1;
            }
            errno = 0;
            o->count = strtoul(argv[++i], &end, 10);
            if (errno || *end || !o->count || argv[i][0] == '-') {
                fprintf(stderr, "%s: %s %s: a number of changes from 1 is "
                        "needed\n", prog, argv[i - 1], argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr, "%s: watch: unknown option '%s'\n", prog,
                    argv[i]);
            return -1;
        }
    }
    return i < argc ? i : -1;
}

/*
 * A path that does not exist (yet) is waited for through the deepest
 * ancestor that does, whose generation moves when anything below it
 * appears: token | WAITING.  hypfsd holds no watch of a path that is not
 * there, and the client holds one per path, whatever happens.
 */
#define WAITING     (UINT64_C(1) << 62)

/*
 * Watch @path (token @i) if it is there, else its deepest ancestor that
 * is (token @i | WAITING).  1: the path itself is watched, *gen its
 * generation; 0: it is waited for; -1 with errno.
 *
 * The ancestor's watch knows the generation read before it was armed, so
 * any later change below it fires; what it cannot see is a step towards
 * the path made between finding it missing and reading the ancestor's
 * generation.  So once armed, the next step is looked at again: there
 * now, everything is done again one level deeper.
 */
static int arm(const char *path, uint64_t i, uint64_t *gen)
{
    size_t len = strlen(path);
    char *anc;
    int ret = -1, tries;

    if (path[0] != '/')
        return xenhypfs_get_generation(hdl, path, gen) ? -1 :
               xenhypfs_watch(hdl, path, i, *gen) ? -1 : 1;
    anc = malloc(len + 2);
    if (!anc)
        return -1;
    /* Each try goes at least one level deeper: at most one per level. */
    for (tries = 0; tries <= (int)len; tries++) {
        size_t at;
        uint64_t g;

        if (!xenhypfs_get_generation(hdl, path, gen)) {
            xenhypfs_unwatch(hdl, i | WAITING);
            ret = xenhypfs_watch(hdl, path, i, *gen) ? -1 : 1;
            break;
        }
        if (errno != ENOENT)
            break;
        /* The deepest ancestor there is ("/" always is). */
        memcpy(anc, path, len + 1);
        for (;;) {
            char *slash = strrchr(anc, '/');

            if (slash == anc)
                slash[1] = '\0';
            else
                *slash = '\0';
            if (!xenhypfs_get_generation(hdl, anc, &g))
                break;
            if (errno != ENOENT || !strcmp(anc, "/"))
                goto out;
        }
        if (xenhypfs_watch(hdl, anc, i | WAITING, g))
            goto out;
        ret = 0;
        /* Its next step towards @path: still missing, the wait is set. */
        at = strlen(anc) + (strcmp(anc, "/") != 0);
        at += strcspn(path + at, "/");
        memcpy(anc, path, at);
        anc[at] = '\0';
        if (xenhypfs_get_generation(hdl, anc, &g))
            break;
        ret = -1;
    }
 out:
    free(anc);
    return ret;
}

static int cmd_watch(int argc, char *argv[], bool json)
{
    struct sigaction sa = { .sa_handler = on_stop };
    struct watch_opts o;
    unsigned long changes = 0;
    bool waiting = false;
    int i, fd, first = watch_opts(argc, argv, &o);

    if (first < 0)
        return usage();
    argc -= first;
    argv += first;
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* A reader that goes (watch ... | head -1) ends the watch at once. */
    signal(SIGPIPE, SIG_DFL);
    for (i = 0; i < argc; i++) {
        uint64_t gen = 0;
        const char *why = "";
        int r = arm(argv[i], (uint64_t)i, &gen), e = errno;

        if (r >= 0) {
            /* Where the path stands now, as xenstore-watch fires once. */
            print_change(argv[i], gen, r ? 0 : -ENOENT, o.value, json, false);
            continue;
        }
        /*
         * A hypervisor of version 1 has no generations; one of version 2
         * reached through privcmd has, but its events have no way to us.
         */
        if (e == EOPNOTSUPP)
            why = xenhypfs_get_generation(hdl, argv[i], &gen) ?
                  " (the hypervisor has no watches: interface version 1)" :
                  " (events cannot come through /dev/xen/privcmd: "
                  "watch through hypfsd's socket)";
        fprintf(stderr, "%s: cannot watch %s: %s%s\n", prog, argv[i],
                strerror(e), why);
        return 3;
    }
    fd = xenhypfs_event_fd(hdl);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot wait for events: %s\n", prog,
                strerror(errno));
        return 2;
    }
    while (!stop_watching) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
                               { .fd = STDOUT_FILENO, .events = 0 } };
        struct xenhypfs_event ev[64];
        int n, k;

        /* While the hypervisor is away, look again every second. */
        if (poll(p, 2, waiting ? 1000 : -1) < 0 && errno != EINTR)
            break;
        /* stdout's reader is gone: nobody to tell. */
        if (p[1].revents & (POLLERR | POLLHUP | POLLNVAL))
            break;
        if (stop_watching)
            break;
        n = xenhypfs_read_events(hdl, ev, 64);
        if (n < 0) {
            if (!waiting)
                fprintf(stderr, "%s: lost the hypervisor; waiting for "
                        "it to come back\n", prog);
            waiting = true;
            continue;
        }
        for (k = 0; k < n && !stop_watching; k++) {
            bool gap = ev[k].flags & XENHYPFS_EVENT_GAP;
            uint64_t t = ev[k].token & ~WAITING, gen = 0;
            int r;

            if (t >= (uint64_t)argc)
                continue;
            if (gap && (waiting || !k)) {
                fprintf(stderr, "%s: reconnected to the hypervisor; "
                        "changes meanwhile may have been missed\n", prog);
                waiting = false;
            }
            if (ev[k].token & WAITING) {
                /* Something appeared below: the path, or a step to it. */
                r = arm(argv[t], t, &gen);
                if (r <= 0 && !gap)
                    continue;
                print_change(argv[t], gen, r > 0 ? 0 : -ENOENT, o.value,
                             json, gap);
            } else {
                if (gap && !ev[k].status)
                    xenhypfs_get_generation(hdl, argv[t], &ev[k].generation);
                print_change(argv[t], ev[k].generation, ev[k].status,
                             o.value, json, gap);
                /* Gone: wait for it to come back. */
                if (ev[k].status == -ENOENT) {
                    xenhypfs_unwatch(hdl, t);
                    arm(argv[t], t, &gen);
                }
            }
            if (o.count && ++changes >= o.count)
                stop_watching = 1;
        }
    }
    return 0;
}

static int json_print(json_object *o, int ret)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return ret;
}

/* --json ls PATH | cat PATH... | tree [PATH] | dump [PATH] | watch ... */
static int json_cmd(int argc, char *argv[])
{
    json_object *o;
    int ret = 0, i;

    if (!strcmp(argv[0], "ls")) {
        struct xenhypfs_dirent *ent;
        unsigned int n, k;

        ent = xenhypfs_readdir(hdl, argv[1], &n);
        if (!ent) {
            fprintf(stderr, "%s: cannot list %s: %s\n", prog, argv[1],
                    strerror(errno));
            return 3;
        }
        o = json_object_new_array();
        for (k = 0; k < n; k++)
            json_object_array_add(o, json_entry(&ent[k]));
        free(ent);
        return json_print(o, 0);
    }
    if (!strcmp(argv[0], "cat")) {
        json_object *all = json_object_new_array();

        for (i = 1; i < argc; i++) {
            struct xenhypfs_dirent *d;
            void *raw = xenhypfs_read_raw(hdl, argv[i], &d);
            bool lossy = false;

            if (raw && d->type == xenhypfs_type_dir) {
                free(raw);
                free(d);
                raw = NULL;
                errno = EISDIR;
            }
            if (!raw) {
                fprintf(stderr, "%s: cannot read %s: %s\n", prog, argv[i],
                        strerror(errno));
                ret = 3;
                continue;
            }
            o = json_entry(d);
            json_object_object_add(o, "path", json_text(argv[i],
                                                        strlen(argv[i]),
                                                        &lossy));
            if (json_add_value(o, d, raw)) {
                fprintf(stderr, "%s: cannot read %s: %s\n", prog, argv[i],
                        strerror(errno));
                json_object_put(o);
                ret = 3;
            } else
                json_object_array_add(all, o);
            free(raw);
            free(d);
        }
        /* On failure nothing on stdout: "| jq" must not see half. */
        if (ret) {
            json_object_put(all);
            return ret;
        }
        if (argc == 2) {
            o = json_object_get(json_object_array_get_idx(all, 0));
            json_object_put(all);
            return json_print(o, 0);
        }
        return json_print(all, 0);
    }
    if (!strcmp(argv[0], "watch"))
        return cmd_watch(argc - 1, argv + 1, true);
    {
        const char *root = argc == 2 ? argv[1] : "/";
        json_object *entries = json_object_new_array();
        bool lossy = false;

        ret = walk_top(root, true, !strcmp(argv[0], "dump"), entries);
        if (ret) {
            json_object_put(entries);
            return 3;
        }
        o = json_object_new_object();
        json_object_object_add(o, "path", json_text(root, strlen(root),
                                                    &lossy));
        json_object_object_add(o, "entries", entries);
        return json_print(o, 0);
    }
}

/*
 * ls -l PATH: each entry's type, rights, encoding, size and the longest
 * value it accepts ("-": read-only), and for Xen's parameters with their
 * own parsers the words they accept.
 */
static int cmd_ls_long(const char *path)
{
    struct xenhypfs_dirent *ent;
    unsigned int n, i;
    int ret = 0;

    ent = xenhypfs_readdir(hdl, path, &n);
    if (!ent) {
        fprintf(stderr, "%s: cannot list %s: %s\n", prog, path,
                strerror(errno));
        return 3;
    }
    for (i = 0; i < n; i++) {
        char *p = join(path, ent[i].name), max[16] = "-";
        unsigned int m = 0;

        if (!p) {
            ret = 3;
            break;
        }
        if (ent[i].flags & XENHYPFS_FLAG_WRITABLE) {
            if (xenhypfs_write_limit(hdl, p, &m))
                snprintf(max, sizeof(max), "?");
            else if (m)
                snprintf(max, sizeof(max), "%u", m);
        }
        printf("%s r%c %-5s %8zu %6s %s%s", type_column(ent[i].type),
               ent[i].flags & XENHYPFS_FLAG_WRITABLE ? 'w' : '-',
               ent[i].encoding == xenhypfs_enc_gzip ? "gzip" : "plain",
               ent[i].size, max, ent[i].name,
               ent[i].type == xenhypfs_type_dir ? "/" : "");
        if ((ent[i].flags & XENHYPFS_FLAG_WRITABLE) && grammar_of(p))
            printf("  (%s)", grammar_of(p));
        printf("\n");
        free(p);
    }
    free(ent);
    return ret;
}

/*
 * Is this command line one xenhypfs runs?  Decided before anything is
 * opened, so that a usage error says so whatever the hypervisor's state
 * (Xen's own tool opens the library first; the same lines give the same
 * result either way when the hypervisor can be reached).
 */
static bool valid_command(int argc, char *argv[], bool json)
{
    const char *c = argv[0];

    if (!strcmp(c, "watch")) {
        struct watch_opts o;

        return watch_opts(argc - 1, argv + 1, &o) >= 0;
    }
    if (!strcmp(c, "ls"))       /* ls -l PATH: an extension */
        return argc == 2 || (argc == 3 && !strcmp(argv[1], "-l") && !json);
    /*
     * Xen's commands keep Xen's argument rules (its "cat -b" alone reads
     * the path "-b"); with --json, which Xen's tool does not have, cat
     * takes several paths and tree a path.
     */
    if (!strcmp(c, "cat"))
        return json ? argc >= 2 && strcmp(argv[1], "-b")
                    : argc == 2 || (argc == 3 && !strcmp(argv[1], "-b"));
    if (!strcmp(c, "tree"))
        return json ? argc <= 2 : argc == 1;
    if (!strcmp(c, "dump"))
        return argc <= 2;
    if (!strcmp(c, "write"))
        return argc == 3 && !json;
    return false;
}

int main(int argc, char *argv[])
{
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    const char *sock = NULL;
    bool json = false;
    int n = 0, i, ret;

    if (!args)
        return 2;
    if (argv[0] && *argv[0])
        prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    /* Extensions that need no hypervisor, and options anywhere. */
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            free(args);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("%s (hypfs) %s\n", prog, HYPFS_VERSION_STRING);
            free(args);
            return 0;
        }
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--explain"))
            explain = true;
        /*
         * Before the command, where Xen's tool takes nothing: the socket,
         * and an unknown option is named.  After it, Xen's argument rules
         * hold ("cat -x /p" is only a usage error, as there).
         */
        else if (!n && (!strcmp(argv[i], "-s") ||
                        !strcmp(argv[i], "--socket"))) {
            if (i + 1 == argc) {
                fprintf(stderr, "%s: %s needs a socket's path\n", prog,
                        argv[i]);
                free(args);
                return usage();
            }
            sock = argv[++i];
        } else if (!n && !strncmp(argv[i], "--socket=", 9))
            sock = argv[i] + 9;
        else if (!n && argv[i][0] == '-') {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, argv[i]);
            free(args);
            return usage();
        } else
            args[n++] = argv[i];
    }
    if (n && json && !strcmp(args[0], "write")) {
        fprintf(stderr, "%s: --json: write prints nothing to format\n", prog);
        free(args);
        return usage();
    }
    /* Named: that socket, even where privcmd would open. */
    if (sock && (setenv("HYPFS_SOCKET", sock, 1) ||
                 setenv("HYPFS_TRANSPORT", "socket", 1))) {
        free(args);
        return 2;
    }
    if (!n || !valid_command(n, args, json)) {
        free(args);
        return usage();
    }

    hdl = xenhypfs_open(NULL, 0);
    if (!hdl) {
        fprintf(stderr, "Could not open libxenhypfs\n");
        ret = 2;
    } else if (json)
        ret = json_cmd(n, args);
    /* Xen's four commands, as Xen's tool runs them. */
    else if (!strcmp(args[0], "cat") &&
             (n == 2 || (n == 3 && !strcmp(args[1], "-b"))))
        ret = cmd_cat(n - 1, args + 1);
    else if (!strcmp(args[0], "ls") && n == 3)
        ret = cmd_ls_long(args[2]);
    else if (!strcmp(args[0], "ls"))
        ret = cmd_ls(args[1]);
    else if (!strcmp(args[0], "write"))
        ret = cmd_write(args[1], args[2]);
    else if (!strcmp(args[0], "tree") && n == 1)
        ret = cmd_tree();
    /* Extensions. */
    else if (!strcmp(args[0], "dump"))
        ret = walk_top(n == 2 ? args[1] : "/", false, true, NULL) ? 3 : 0;
    else
        ret = cmd_watch(n - 1, args + 1, false);

    xenhypfs_close(hdl);
    free(args);
    return ret;
}
