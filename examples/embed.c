/*
 * embed: the smallest useful embedding of the hypfs core.
 *
 * Builds a tree the way a hypervisor would (static entries pointing at its
 * variables, a runtime parameter with its own parser, a gzip-encoded
 * string), then walks it through hypfs_do_op() exactly as a guest would,
 * printing every path with its type and value, and finally changes the
 * parameter through the hypercall.  Guest memory is this process's own.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypfs/hypfs.h>

/* ---- The "hypervisor": its variables and one runtime parameter ---- */

static unsigned int major = 4, minor = 17;
static char extra[] = ".0-hypfs";
static uint8_t sync_console;
static char loglvl[16] = "warning";

static int loglvl_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    return hypfs_buf_put_string(b, loglvl);
}

static int loglvl_write(struct hypfs_entry_leaf *leaf, const void *val,
                        unsigned int len)
{
    static const char *const levels[] = {
        "none", "error", "warning", "info", "debug", "all",
    };
    size_t i;

    (void)leaf;
    (void)len;
    for ( i = 0; i < sizeof(levels) / sizeof(levels[0]); i++ )
        if ( !strcmp(val, levels[i]) )
        {
            strcpy(loglvl, val);
            return 0;
        }
    return -EINVAL;
}

static const struct hypfs_funcs loglvl_funcs = {
    .read = loglvl_read,
    .write = loglvl_write,
};

static HYPFS_DIR_INIT(buildinfo, "buildinfo");
static HYPFS_DIR_INIT(version, "version");
static HYPFS_UINT_INIT(v_major, "major", major);
static HYPFS_UINT_INIT(v_minor, "minor", minor);
static HYPFS_STRING_INIT(v_extra, "extra");
static HYPFS_DIR_INIT(params, "params");
static HYPFS_BOOL_INIT_WRITABLE(p_sync, "sync_console", sync_console);
static HYPFS_VARSIZE_INIT(p_loglvl, XEN_HYPFS_TYPE_STRING, "loglvl",
                          sizeof(loglvl), &loglvl_funcs);

/* ---- The "guest": reaches hypfs only through the hypercall ---- */

static const struct hypfs_caller dom0 = {
    0, HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL, &hypfs_local_mem, NULL,
};

/* Read @path, growing the buffer on -ENOBUFS as a real caller does. */
static long hypfs_read(struct hypfs *fs, const char *path, unsigned char **out,
                       struct xen_hypfs_direntry *d)
{
    size_t size = 64;
    long ret;

    for ( ;; )
    {
        unsigned char *buf = realloc(*out, size);

        if ( !buf )
            return -ENOMEM;
        *out = buf;
        ret = hypfs_do_op(fs, &dom0, XEN_HYPFS_OP_read, (uintptr_t)path,
                          strlen(path) + 1, (uintptr_t)buf, size);
        memcpy(d, buf, sizeof(*d));
        if ( ret != -ENOBUFS )
            return ret;
        size = sizeof(*d) + d->content_len;
    }
}

static void print_value(const struct xen_hypfs_direntry *d,
                        const unsigned char *c)
{
    uint64_t u = 0;

    if ( d->encoding == XEN_HYPFS_ENC_GZIP )
    {
        printf("(gzip, %" PRIu32 " bytes)", d->content_len);
        return;
    }
    switch ( d->type )
    {
    case XEN_HYPFS_TYPE_STRING:
        printf("\"%s\"", (const char *)c);
        break;
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_BOOL:
        memcpy(&u, c, d->content_len);
        printf("%" PRIu64, u);
        break;
    default:
        printf("(%" PRIu32 " bytes)", d->content_len);
    }
}

static int walk(struct hypfs *fs, const char *path, int depth)
{
    unsigned char *buf = NULL, *list;
    struct xen_hypfs_direntry d;
    size_t off = 0;
    long ret = hypfs_read(fs, path, &buf, &d);

    if ( ret )
    {
        fprintf(stderr, "read %s: %s\n", path, strerror((int)-ret));
        free(buf);
        return 1;
    }
    list = malloc(d.content_len ? d.content_len : 1);
    if ( !list )
    {
        free(buf);
        return 1;
    }
    memcpy(list, buf + sizeof(d), d.content_len);
    while ( off < d.content_len )
    {
        struct xen_hypfs_dirlistentry rec;
        const char *name = (const char *)list + off + XEN_HYPFS_DIRENTRY_NAME_OFF;
        char child[XEN_HYPFS_MAX_PATHLEN];
        struct xen_hypfs_direntry cd;

        memcpy(&rec, list + off, XEN_HYPFS_DIRENTRY_NAME_OFF);
        snprintf(child, sizeof(child), "%s%s%s", path, depth ? "/" : "", name);
        printf("%*s%s%s", 2 * depth + 2, "", name,
               rec.e.type == XEN_HYPFS_TYPE_DIR ? "/\n" : " = ");
        if ( rec.e.type == XEN_HYPFS_TYPE_DIR )
            walk(fs, child, depth + 1);
        else if ( !hypfs_read(fs, child, &buf, &cd) )
        {
            print_value(&cd, buf + sizeof(cd));
            printf("%s\n", cd.max_write_len ? "  [w]" : "");
        }
        if ( !rec.off_next )
            break;
        off += rec.off_next;
    }
    free(list);
    free(buf);
    return 0;
}

int main(void)
{
    static const char config[] = "CONFIG_HYPFS=y\nCONFIG_HYPFS_CONFIG=y\n";
    struct hypfs *fs;
    const char *path = "/params/loglvl";
    long ret;

    if ( hypfs_new(&fs) )
        return 1;
    hypfs_set_access(&hypfs_root(fs)->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    hypfs_string_set_reference(&v_extra, extra);
    hypfs_add_dir(hypfs_root(fs), &buildinfo, true);
    hypfs_add_dir(&buildinfo, &version, true);
    hypfs_add_leaf(&version, &v_major, true);
    hypfs_add_leaf(&version, &v_minor, true);
    hypfs_add_leaf(&version, &v_extra, true);
    if ( hypfs_leaf_new_gzip(&buildinfo, "config", XEN_HYPFS_TYPE_STRING,
                             config, sizeof(config), NULL) )
        return 1;
    hypfs_add_dir(hypfs_root(fs), &params, true);
    hypfs_add_leaf(&params, &p_sync, true);
    hypfs_add_leaf(&params, &p_loglvl, true);

    printf("/\n");
    walk(fs, "/", 0);

    ret = hypfs_do_op(fs, &dom0, XEN_HYPFS_OP_write_contents, (uintptr_t)path,
                      strlen(path) + 1, (uintptr_t)"loud", 5);
    printf("\nwrite %s = \"loud\": %s\n", path, strerror((int)-ret));
    ret = hypfs_do_op(fs, &dom0, XEN_HYPFS_OP_write_contents, (uintptr_t)path,
                      strlen(path) + 1, (uintptr_t)"debug", 6);
    printf("write %s = \"debug\": %s; now \"%s\"\n", path,
           ret ? strerror((int)-ret) : "ok", loglvl);
    hypfs_free(fs);
    return 0;
}
