/*
 * xenhypfs: the hypervisor filesystem from the command line.
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
 * --version, "dump [PATH]" (every value below PATH), and --json before
 * ls, cat, tree or dump for machine-readable output.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <xenhypfs.h>

static xenhypfs_handle *hdl;

static int usage(void)
{
    fprintf(stderr, "usage: xenhypfs ls <path>\n");
    fprintf(stderr, "       xenhypfs cat [-b] <path>\n");
    fprintf(stderr, "       xenhypfs write <path> <val>\n");
    fprintf(stderr, "       xenhypfs tree\n");
    return 1;
}

static void help(void)
{
    printf(
"usage: xenhypfs ls <path>             list a directory\n"
"       xenhypfs cat [-b] <path>       print a value (-b: escape bytes\n"
"                                      that are neither printable nor space)\n"
"       xenhypfs write <path> <val>    set a writable value\n"
"       xenhypfs tree                  print every path\n"
"       xenhypfs dump [<path>]         print every value below a path\n"
"       xenhypfs --json ls|cat|tree|dump ...\n"
"                                      the same, as JSON\n"
"       xenhypfs --help | --version\n"
"\n"
"The hypervisor is reached through /dev/xen/privcmd in a Xen control domain,\n"
"else through hypfsd's socket ($HYPFS_SOCKET, default /run/hypfs/hypfsd.sock).\n"
"Exit status: 0 success, 1 usage, 2 cannot open or traverse, 3 the read or\n"
"write failed.\n");
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

static int cmd_tree(void)
{
    printf("/\n");
    return tree_sub("/", 1);
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

/* A leaf's value as JSON: numbers as numbers, blobs as hex. */
static json_object *json_value(const char *path, const struct xenhypfs_dirent *d)
{
    char *val;
    json_object *j;

    if (d->type == xenhypfs_type_blob) {
        struct xenhypfs_dirent *raw;
        unsigned char *b = xenhypfs_read_raw(hdl, path, &raw);
        char *hex;
        size_t i;

        if (!b)
            return NULL;
        hex = malloc(raw->size * 2 + 1);
        if (!hex) {
            free(b);
            free(raw);
            return NULL;
        }
        for (i = 0; i < raw->size; i++)
            sprintf(hex + 2 * i, "%02x", b[i]);
        hex[2 * raw->size] = '\0';
        j = json_object_new_string(hex);
        free(hex);
        free(b);
        free(raw);
        return j;
    }
    val = xenhypfs_read(hdl, path);
    if (!val)
        return NULL;
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
        j = json_object_new_string(val);
    }
    free(val);
    return j;
}

static json_object *json_entry(const struct xenhypfs_dirent *d)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(d->name));
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
        fprintf(stderr, "xenhypfs: %s: %s\n", path, strerror(errno));
        return 2;
    }
    for (i = 0; i < n; i++) {
        char *p = join(path, ent[i].name);
        json_object *o = json ? json_entry(&ent[i]) : NULL;

        if (!p) {
            ret = 2;
            break;
        }
        if (ent[i].type == xenhypfs_type_dir) {
            json_object *children = json ? json_object_new_array() : NULL;

            if (!json && !values)
                printf("%s/\n", p);
            if (walk(p, json, values, children))
                ret = 2;
            if (json)
                json_object_object_add(o, "entries", children);
        } else if (values) {
            if (json) {
                json_object *v = json_value(p, &ent[i]);

                if (!v) {
                    fprintf(stderr, "xenhypfs: %s: %s\n", p, strerror(errno));
                    ret = 2;
                }
                json_object_object_add(o, "value", v);
            } else if (ent[i].type == xenhypfs_type_blob) {
                printf("%s = <blob, %zu bytes>\n", p, ent[i].size);
            } else {
                char *val = xenhypfs_read(hdl, p);

                if (val) {
                    printf("%s = %s\n", p, val);
                    free(val);
                } else {
                    fprintf(stderr, "xenhypfs: %s: %s\n", p, strerror(errno));
                    ret = 2;
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

static int json_print(json_object *o, int ret)
{
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return ret;
}

static int json_cmd(int argc, char *argv[])
{
    json_object *o;
    int ret = 0;

    if (argc == 2 && !strcmp(argv[0], "ls")) {
        struct xenhypfs_dirent *ent;
        unsigned int n, i;

        ent = xenhypfs_readdir(hdl, argv[1], &n);
        if (!ent) {
            perror("could not read dir");
            return 3;
        }
        o = json_object_new_array();
        for (i = 0; i < n; i++)
            json_object_array_add(o, json_entry(&ent[i]));
        free(ent);
        return json_print(o, 0);
    }
    if (argc == 2 && !strcmp(argv[0], "cat")) {
        struct xenhypfs_dirent *d;
        void *raw = xenhypfs_read_raw(hdl, argv[1], &d);
        json_object *v;

        if (!raw) {
            perror("could not read");
            return 3;
        }
        free(raw);
        if (d->type == xenhypfs_type_dir) {
            free(d);
            errno = EISDIR;
            perror("could not read");
            return 3;
        }
        v = json_value(argv[1], d);
        if (!v) {
            perror("could not read");
            free(d);
            return 3;
        }
        o = json_entry(d);
        json_object_object_add(o, "path", json_object_new_string(argv[1]));
        json_object_object_add(o, "value", v);
        free(d);
        return json_print(o, 0);
    }
    if ((argc == 1 && !strcmp(argv[0], "tree")) ||
        ((argc == 1 || argc == 2) && !strcmp(argv[0], "dump"))) {
        const char *root = argc == 2 ? argv[1] : "/";
        json_object *entries = json_object_new_array();

        ret = walk(root, true, !strcmp(argv[0], "dump"), entries);
        o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(root));
        json_object_object_add(o, "entries", entries);
        return json_print(o, ret);
    }
    return usage();
}

int main(int argc, char *argv[])
{
    int ret;

    /* Extensions that need no hypervisor. */
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        help();
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("xenhypfs (hypfs) %s\n", HYPFS_VERSION_STRING);
        return 0;
    }

    hdl = xenhypfs_open(NULL, 0);
    if (!hdl) {
        fprintf(stderr, "Could not open libxenhypfs\n");
        ret = 2;
    } else if (argc >= 3 && !strcmp(argv[1], "cat"))
        ret = cmd_cat(argc - 2, argv + 2);
    else if (argc == 3 && !strcmp(argv[1], "ls"))
        ret = cmd_ls(argv[2]);
    else if (argc == 4 && !strcmp(argv[1], "write"))
        ret = cmd_write(argv[2], argv[3]);
    else if (argc == 2 && !strcmp(argv[1], "tree"))
        ret = cmd_tree();
    else if ((argc == 2 || argc == 3) && !strcmp(argv[1], "dump"))
        ret = walk(argc == 3 ? argv[2] : "/", false, true, NULL);
    else if (argc >= 3 && !strcmp(argv[1], "--json"))
        ret = json_cmd(argc - 2, argv + 2);
    else
        ret = usage();

    xenhypfs_close(hdl);
    return ret;
}
