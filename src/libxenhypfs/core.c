/*
 * libxenhypfs: the six functions of Xen's xenhypfs.h.
 *
 * Behaviour follows Xen's library where callers can see it (a 4 KiB first
 * read then one of the exact size after -ENOBUFS; EISDIR, EDOM, ENOTDIR,
 * EACCES, ENAMETOOLONG; gzip inflated; the dirent's name as Xen forms it),
 * with three corrections a caller can rely on: a value that is not a
 * number is EINVAL (Xen's returns -1 with errno 0); an out-of-range number
 * is ERANGE for every size (Xen's accepts some and truncates, and refuses
 * every 8-byte uint); and nothing the hypervisor returns is trusted: every
 * length and every listing record is checked, so a broken or hostile
 * peer gives EIO, never an overrun.
 *
 * Every function keeps errno across its cleanup, and everything returned
 * is released with one free().
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <hypfs/abi.h>

#include "libxenhypfs-internal.h"
#include "privcmd-abi.h"

#define FIRST_READ      4096u
#define READ_ATTEMPTS   8       /* a directory may grow between attempts */
#define INFLATE_MAX     HYPFS_MSG_REPLY_MAX

static xenhypfs_handle *open_common(const struct xenhypfs_open_args *args,
                                    int sock)
{
    xenhypfs_handle *h = calloc(1, sizeof(*h));
    char err[320];
    long ret;

    err[0] = '\0';
    if (!h) {
        /* A socket handed to us is ours whatever happens: fail as below. */
        if (sock >= 0)
            close(sock);
        snprintf(err, sizeof(err), "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    pthread_mutex_init(&h->lock, NULL);
    ret = transport_open(h, args, sock, err, sizeof(err));
    if (ret)
        goto fail;
    /* Any interface version speaks version 1 (the seed's rule). */
    ret = hypercall(h, XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0);
    if (ret >= 1)
        return h;
    if (h->err[0])
        snprintf(err, sizeof(err), "%s", h->err);
    else if (ret == -EPERM && h->client.chan)
        snprintf(err, sizeof(err), "the hypervisor gives this guest no hypfs "
                 "right through %s (its domain is gone)",
                 h->client.socket_path);
    else if (ret == -EPERM)
        snprintf(err, sizeof(err), "the hypervisor gives this caller no "
                 "hypfs right (not mapped to a live domain)");
    else if (ret == -ENOSYS && h->privcmd_fd >= 0)
        snprintf(err, sizeof(err), "the hypervisor does not speak hypfs "
                 "(a Xen older than 4.14, or built without CONFIG_HYPFS)");
    else if (ret < 0 && h->privcmd_fd >= 0)
        snprintf(err, sizeof(err), "the hypfs hypercall through %s failed: "
                 "%s", PRIVCMD_PATH, strerror((int)-ret));
    else
        snprintf(err, sizeof(err), "the hypervisor does not speak hypfs: %s",
                 ret < 0 ? strerror((int)-ret) : "no interface version");
    if (ret >= 0)
        ret = -EOPNOTSUPP;
 fail:
    transport_close(h);
    pthread_mutex_destroy(&h->lock);
    free(h);
 out:
    if (args && args->err && args->errlen)
        snprintf(args->err, args->errlen, "%s", err);
    errno = (int)-ret;
    return NULL;
}

/*
 * Xen's logger, as much of it as we call (xentoollog.h): the first member
 * of struct xentoollog_logger, and its levels.
 */
struct xentoollog_logger {
    void (*vmessage)(struct xentoollog_logger *logger, int level,
                     int errnoval, const char *context, const char *format,
                     va_list al);
};
#define XTL_ERROR   8

static void logger_call(struct xentoollog_logger *logger, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    logger->vmessage(logger, XTL_ERROR, -1, "xenhypfs", fmt, ap);
    va_end(ap);
}

/*
 * Why the library could not be opened, as Xen's does it: through the
 * caller's logger, or without one to standard error in the form of Xen's
 * default logger ("xencall: error: Could not obtain handle on privileged
 * command interface: ..."), so that the tool's own one-line verdict that
 * follows ("Could not open libxenhypfs") has its reason before it.
 */
static void log_open_error(struct xentoollog_logger *logger, const char *why)
{
    int err = errno;

    if (logger && logger->vmessage)
        logger_call(logger, "%s", why);
    else
        fprintf(stderr, "xenhypfs: error: %s\n", why);
    errno = err;
}

int xenhypfs_transport_from_env(enum xenhypfs_transport *t, char *err,
                                size_t errlen)
{
    const char *force = getenv("HYPFS_TRANSPORT");

    *t = XENHYPFS_TRANSPORT_AUTO;
    if (!force || !*force)
        return 0;
    if (!strcmp(force, "socket"))
        *t = XENHYPFS_TRANSPORT_SOCKET;
    else if (!strcmp(force, "privcmd"))
        *t = XENHYPFS_TRANSPORT_PRIVCMD;
    else if (!strcmp(force, "channel"))
        *t = XENHYPFS_TRANSPORT_CHANNEL;
    else {
        snprintf(err, errlen, "HYPFS_TRANSPORT=%s: expected socket, privcmd "
                 "or channel", force);
        return -EINVAL;
    }
    return 0;
}

xenhypfs_handle *xenhypfs_open(struct xentoollog_logger *logger,
                               unsigned int open_flags)
{
    struct xenhypfs_open_args args = { XENHYPFS_TRANSPORT_AUTO };
    xenhypfs_handle *h;
    char why[320];

    (void)open_flags;
    if (xenhypfs_transport_from_env(&args.transport, why, sizeof(why))) {
        errno = EINVAL;
        log_open_error(logger, why);
        return NULL;
    }
    args.err = why;
    args.errlen = sizeof(why);
    h = open_common(&args, -1);
    if (!h)
        log_open_error(logger, why);
    return h;
}

xenhypfs_handle *xenhypfs_open_ext(const struct xenhypfs_open_args *args)
{
    if (!args) {
        errno = EINVAL;
        return NULL;
    }
    return open_common(args, -1);
}

xenhypfs_handle *xenhypfs_open_socket(int sock)
{
    struct xenhypfs_open_args args = { XENHYPFS_TRANSPORT_SOCKET };

    return open_common(&args, sock);
}

xenhypfs_handle *xenhypfs_open_channel_fd(int fd)
{
    struct xenhypfs_open_args args = { XENHYPFS_TRANSPORT_CHANNEL };

    return open_common(&args, fd);
}

int xenhypfs_find_channel(char *path, size_t len)
{
    return hypfs_client_find_channel(path, len);
}

const char *xenhypfs_socket_path(const char *explicit_path)
{
    return hypfs_msg_socket_path(explicit_path);
}

enum xenhypfs_transport xenhypfs_transport_of(xenhypfs_handle *h)
{
    if (h->privcmd_fd >= 0)
        return XENHYPFS_TRANSPORT_PRIVCMD;
    return h->client.chan ? XENHYPFS_TRANSPORT_CHANNEL
                          : XENHYPFS_TRANSPORT_SOCKET;
}

const char *xenhypfs_transport_error(xenhypfs_handle *h)
{
    return h ? lib_thread_err : "";
}

int xenhypfs_close(xenhypfs_handle *h)
{
    if (!h)
        return 0;
    transport_close(h);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return 0;
}

long lib_path_size(xenhypfs_handle *h, const char *path)
{
    size_t n;

    if (!h) {
        errno = EBADF;
        return -1;
    }
    if (!path) {
        errno = EINVAL;
        return -1;
    }
    n = strlen(path) + 1;
    if (n > XEN_HYPFS_MAX_PATHLEN) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return (long)n;
}

/*
 * Is @e a directory as callers will see it?  An unknown encoding makes
 * anything a blob (lib_set_attrs()), so a "directory" with one is not one.
 */
static bool is_dir(const struct xen_hypfs_direntry *e)
{
    return e->type == XEN_HYPFS_TYPE_DIR &&
           (e->encoding == XEN_HYPFS_ENC_PLAIN ||
            e->encoding == XEN_HYPFS_ENC_GZIP);
}

void lib_set_attrs(const struct xen_hypfs_direntry *e,
                   struct xenhypfs_dirent *d)
{
    d->size = e->content_len;
    /* Unknown types read as blobs, unknown encodings as plain blobs. */
    d->type = e->type <= XEN_HYPFS_TYPE_BOOL ? e->type : xenhypfs_type_blob;
    switch (e->encoding) {
    case XEN_HYPFS_ENC_PLAIN:
        d->encoding = xenhypfs_enc_plain;
        break;
    case XEN_HYPFS_ENC_GZIP:
        d->encoding = xenhypfs_enc_gzip;
        break;
    default:
        d->encoding = xenhypfs_enc_plain;
        d->type = xenhypfs_type_blob;
    }
    d->flags = e->max_write_len ? XENHYPFS_FLAG_WRITABLE : 0;
}

/*
 * Read @path: the direntry into *e and the content into a new buffer of
 * e->content_len bytes (plus a NUL, so that strings end even if the peer
 * forgot).  With @dir_head, a directory's listing is not fetched: its
 * content comes back empty (e->content_len still says its size).  NULL with
 * errno on error.
 */
static void *read_entry(xenhypfs_handle *h, const char *path, size_t plen,
                        struct xen_hypfs_direntry *e, bool dir_head)
{
    size_t size = FIRST_READ;
    unsigned char *buf = NULL, *content;
    int attempt;
    long ret = -ENOBUFS;

    for (attempt = 0; attempt < READ_ATTEMPTS && ret == -ENOBUFS; attempt++) {
        free(buf);
        /* One more byte for the NUL that ends the content below. */
        buf = calloc(1, size + 1);
        if (!buf) {
            errno = ENOMEM;
            return NULL;
        }
        ret = hypercall(h, XEN_HYPFS_OP_read, path, plen, buf, size);
        if (ret && ret != -ENOBUFS)
            break;
        memcpy(e, buf, sizeof(*e));
        if (ret == -ENOBUFS && dir_head && is_dir(e)) {
            buf[0] = '\0';
            return buf;
        }
        if (ret == -ENOBUFS) {
            /* The exact size, unless the peer claims something absurd. */
            if (e->content_len > HYPFS_MSG_REPLY_MAX - sizeof(*e) ||
                sizeof(*e) + e->content_len <= size) {
                ret = -EIO;
                break;
            }
            size = sizeof(*e) + e->content_len;
        }
    }
    if (ret) {
        free(buf);
        errno = (int)(ret == -ENOBUFS ? EAGAIN : ret > 0 ? EIO : -ret);
        return NULL;
    }
    if (e->content_len > size - sizeof(*e)) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    if (size == FIRST_READ) {
        /* A small value: a buffer of its own size, not the 4 KiB one. */
        content = malloc((size_t)e->content_len + 1);
        if (!content) {
            free(buf);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(content, buf + sizeof(*e), e->content_len);
        free(buf);
    } else {
        /*
         * A large one (the buffer is its exact size) moves to the front of
         * the same buffer: never two copies of a reply at once, whatever
         * its size (SECURITY.md's bound).
         */
        content = memmove(buf, buf + sizeof(*e), e->content_len);
    }
    content[e->content_len] = '\0';
    return content;
}

/* The dirent's name, as Xen's library forms it from the path. */
static const char *dirent_name(const char *path)
{
    const char *name = strrchr(path, '/');

    if (!name)
        return path;
    name++;
    return *name ? name : name - 1;
}

void *xenhypfs_read_raw(xenhypfs_handle *h, const char *path,
                        struct xenhypfs_dirent **dirent)
{
    struct xen_hypfs_direntry e;
    const char *name;
    void *content;
    long plen;

    if (dirent)
        *dirent = NULL;
    plen = lib_path_size(h, path);
    if (plen < 0)
        return NULL;
    if (!dirent) {
        errno = EINVAL;
        return NULL;
    }
    content = read_entry(h, path, (size_t)plen, &e, false);
    if (!content)
        return NULL;
    name = dirent_name(path);
    *dirent = calloc(1, sizeof(**dirent) + strlen(name) + 1);
    if (!*dirent) {
        free(content);
        errno = ENOMEM;
        return NULL;
    }
    (*dirent)->name = (char *)(*dirent + 1);
    strcpy((*dirent)->name, name);
    lib_set_attrs(&e, *dirent);
    return content;
}

/*
 * zlib's allocations through ours: the same malloc as everything else here
 * (so that the allocation-failure tests reach them too).
 */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

/*
 * Inflate gzip content; *len in: compressed, out: inflated.  NUL added.
 * Input and output together stay within HYPFS_MSG_REPLY_MAX.
 */
static char *inflate_gzip(const void *in, size_t *len)
{
    z_stream z;
    size_t cap = *len * 4 + 64, out = 0;
    size_t limit = *len < INFLATE_MAX ? INFLATE_MAX - *len : 0;
    char *buf;

    if (cap > limit)
        cap = limit;
    buf = malloc(cap + 1);
    int zret;

    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    memset(&z, 0, sizeof(z));
    z.zalloc = z_alloc;
    z.zfree = z_free;
    if (inflateInit2(&z, MAX_WBITS + 32) != Z_OK) {
        free(buf);
        errno = ENOMEM;
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)*len;
    do {
        if (out == cap) {
            char *n;

            if (cap >= limit) {
                zret = Z_MEM_ERROR;
                break;
            }
            cap = cap * 2 < limit ? cap * 2 : limit;
            n = realloc(buf, cap + 1);
            if (!n) {
                zret = Z_MEM_ERROR;
                break;
            }
            buf = n;
        }
        z.next_out = (Bytef *)buf + out;
        z.avail_out = (uInt)(cap - out);
        zret = inflate(&z, Z_NO_FLUSH);
        out = cap - z.avail_out;
    } while (zret == Z_OK);
    inflateEnd(&z);
    if (zret != Z_STREAM_END) {
        free(buf);
        errno = zret == Z_MEM_ERROR ? ENOMEM : EIO;
        return NULL;
    }
    buf[out] = '\0';
    *len = out;
    return buf;
}

static char *number_string(const void *p, size_t size, bool is_signed)
{
    char *s = NULL;
    int n;

    switch (size) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        n = is_signed ? asprintf(&s, "%" PRId8, (int8_t)v)
                      : asprintf(&s, "%" PRIu8, v);
        break;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        n = is_signed ? asprintf(&s, "%" PRId16, (int16_t)v)
                      : asprintf(&s, "%" PRIu16, v);
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        n = is_signed ? asprintf(&s, "%" PRId32, (int32_t)v)
                      : asprintf(&s, "%" PRIu32, v);
        break;
    }
    case 8: {
        uint64_t v;
        memcpy(&v, p, 8);
        n = is_signed ? asprintf(&s, "%" PRId64, (int64_t)v)
                      : asprintf(&s, "%" PRIu64, v);
        break;
    }
    default:
        errno = EDOM;
        return NULL;
    }
    if (n < 0) {
        errno = ENOMEM;
        return NULL;
    }
    return s;
}

/*
 * @d's value (@buf, plain: inflated already) as xenhypfs_read() returns
 * it.  Consumes @buf.  NULL with errno (EISDIR, EDOM, ENOMEM).
 */
static char *format_value(const struct xenhypfs_dirent *d, char *buf)
{
    char *ret = NULL;

    switch (d->type) {
    case xenhypfs_type_dir:
        errno = EISDIR;
        break;
    case xenhypfs_type_blob:
        errno = EDOM;
        break;
    case xenhypfs_type_string:
        return buf;     /* NUL-terminated by read_entry()/inflate_gzip() */
    case xenhypfs_type_uint:
    case xenhypfs_type_bool:
        ret = number_string(buf, d->size, false);
        break;
    case xenhypfs_type_int:
        ret = number_string(buf, d->size, true);
        break;
    }
    free(buf);
    return ret;
}

void *xenhypfs_value_bytes(const struct xenhypfs_dirent *dirent,
                           const void *content, size_t *len)
{
    char *buf;

    if (!dirent || !len || (!content && dirent->size)) {
        errno = EINVAL;
        return NULL;
    }
    if (dirent->type == xenhypfs_type_dir) {
        errno = EISDIR;
        return NULL;
    }
    *len = dirent->size;
    if (dirent->encoding == xenhypfs_enc_gzip)
        return inflate_gzip(content, len);
    buf = malloc(*len + 1);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    if (*len)
        memcpy(buf, content, *len);
    buf[*len] = '\0';
    return buf;
}

char *xenhypfs_value_string(const struct xenhypfs_dirent *dirent,
                            const void *content)
{
    struct xenhypfs_dirent plain;
    size_t len;
    char *buf;

    buf = xenhypfs_value_bytes(dirent, content, &len);
    if (!buf)
        return NULL;
    plain = *dirent;
    plain.size = len;
    plain.encoding = xenhypfs_enc_plain;
    return format_value(&plain, buf);
}

char *xenhypfs_read(xenhypfs_handle *h, const char *path)
{
    struct xenhypfs_dirent *d;
    char *buf, *ret;
    int err;

    buf = xenhypfs_read_plain(h, path, &d);
    if (!buf)
        return NULL;
    ret = format_value(d, buf);
    err = errno;
    free(d);
    errno = err;
    return ret;
}

struct xenhypfs_dirent *xenhypfs_readdir(xenhypfs_handle *h, const char *path,
                                         unsigned int *num_entries)
{
    struct xenhypfs_dirent *d, *ret = NULL;
    unsigned char *buf;
    size_t off, names = 0, n = 0, i;
    char *name_out;
    int err;

    buf = xenhypfs_read_raw(h, path, &d);
    if (!buf)
        return NULL;
    if (d->type != xenhypfs_type_dir || d->encoding != xenhypfs_enc_plain) {
        errno = ENOTDIR;
        goto out;
    }
    /*
     * Walk the records once to check them and count: each must hold its
     * header and a NUL-terminated name inside the content and inside its
     * own length, and the chain must end with off_next == 0.
     */
    for (off = 0; off < d->size; ) {
        struct xen_hypfs_dirlistentry rec;
        size_t room = d->size - off, nlen;

        if (room < XEN_HYPFS_DIRENTRY_NAME_OFF + 1)
            goto bad;
        memcpy(&rec, buf + off, XEN_HYPFS_DIRENTRY_NAME_OFF);
        if (rec.off_next && (rec.off_next < XEN_HYPFS_DIRENTRY_NAME_OFF + 1 ||
                             rec.off_next >= room))
            goto bad;
        if (rec.off_next)
            room = rec.off_next;
        nlen = strnlen((char *)buf + off + XEN_HYPFS_DIRENTRY_NAME_OFF,
                       room - XEN_HYPFS_DIRENTRY_NAME_OFF);
        if (nlen == room - XEN_HYPFS_DIRENTRY_NAME_OFF)
            goto bad;
        names += nlen + 1;
        n++;
        if (!rec.off_next)
            break;
        off += rec.off_next;
    }
    if (d->size && off >= d->size)
        goto bad;
    /* The listing and the array made from it, together, stay bounded. */
    if (n > UINT_MAX || n > (HYPFS_MSG_REPLY_MAX - names) / sizeof(*ret) ||
        n * sizeof(*ret) + names + 1 > HYPFS_MSG_REPLY_MAX - d->size) {
        errno = ENOMEM;
        goto out;
    }

    ret = malloc(n * sizeof(*ret) + names + 1);
    if (!ret) {
        errno = ENOMEM;
        goto out;
    }
    name_out = (char *)(ret + n);
    for (off = 0, i = 0; i < n; i++) {
        struct xen_hypfs_dirlistentry rec;
        const char *name = (const char *)buf + off + XEN_HYPFS_DIRENTRY_NAME_OFF;
        size_t nlen = strlen(name);

        memcpy(&rec, buf + off, XEN_HYPFS_DIRENTRY_NAME_OFF);
        lib_set_attrs(&rec.e, &ret[i]);
        ret[i].name = name_out;
        memcpy(name_out, name, nlen + 1);
        name_out += nlen + 1;
        off += rec.off_next;
    }
    *num_entries = (unsigned int)n;
    goto out;

 bad:
    errno = EIO;
 out:
    err = errno;
    free(buf);
    free(d);
    errno = err;
    return ret;
}

/* Parse @val for an integer entry of @size bytes into @out (native). */
static int parse_number(const char *val, size_t size, bool is_signed,
                        void *out)
{
    char *end;
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
    } v;

    if (size != 1 && size != 2 && size != 4 && size != 8)
        return EDOM;
    errno = 0;
    if (is_signed) {
        long long x = strtoll(val, &end, 0);
        long long max = size == 8 ? LLONG_MAX : (1ll << (8 * size - 1)) - 1;

        /* White space around the number, as before it ("5 " as " 5"). */
        if (end != val)
            while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
                end++;
        if (!*val || end == val || *end)
            return EINVAL;
        if (errno == ERANGE || x > max || x < -max - 1)
            return ERANGE;
        v.u64 = (uint64_t)x;
    } else {
        unsigned long long x;
        const char *p = val;

        while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
            p++;
        x = strtoull(val, &end, 0);
        if (end != val)
            while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
                end++;
        if (!*val || end == val || *end)
            return EINVAL;
        /* strtoull() negates "-1" into a huge value: not in range. */
        if (*p == '-' || errno == ERANGE ||
            (size < 8 && x >> (8 * size)))
            return ERANGE;
        v.u64 = x;
    }
    switch (size) {
    case 1: v.u8 = (uint8_t)v.u64; break;
    case 2: v.u16 = (uint16_t)v.u64; break;
    case 4: v.u32 = (uint32_t)v.u64; break;
    }
    memcpy(out, &v, size);
    return 0;
}

static int parse_bool(const char *val, uint8_t *out)
{
    static const char *const yes[] = { "1", "on", "yes", "true", "enable" };
    static const char *const no[] = { "0", "off", "no", "false", "disable" };
    size_t i;

    for (i = 0; i < 5; i++) {
        if (!strcmp(val, yes[i])) {
            *out = 1;
            return 0;
        }
        if (!strcmp(val, no[i])) {
            *out = 0;
            return 0;
        }
    }
    return EDOM;
}

int xenhypfs_write(xenhypfs_handle *h, const char *path, const char *val)
{
    struct xen_hypfs_direntry e;
    unsigned char head[sizeof(e)];
    void *buf = NULL;
    size_t size;
    long plen, ret;
    int err = 0;

    plen = lib_path_size(h, path);
    if (plen < 0)
        return -1;
    if (!val) {
        errno = EINVAL;
        return -1;
    }
    /* The direntry alone says the type: -ENOBUFS is the expected answer. */
    ret = hypercall(h, XEN_HYPFS_OP_read, path, (size_t)plen, head,
                    sizeof(head));
    if (ret && ret != -ENOBUFS) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    memcpy(&e, head, sizeof(e));
    if (!e.max_write_len) {
        errno = EACCES;
        return -1;
    }
    if (e.encoding != XEN_HYPFS_ENC_PLAIN) {
        errno = EDOM;       /* compressed content is not written */
        return -1;
    }

    switch (e.type) {
    case XEN_HYPFS_TYPE_STRING:
        size = strlen(val) + 1;
        buf = malloc(size);
        if (buf)
            memcpy(buf, val, size);
        break;
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_INT:
        size = e.content_len;
        buf = malloc(8);
        if (buf)
            err = parse_number(val, size, e.type == XEN_HYPFS_TYPE_INT, buf);
        break;
    case XEN_HYPFS_TYPE_BOOL:
        size = 1;
        buf = malloc(1);
        if (buf)
            err = parse_bool(val, buf);
        break;
    default:
        errno = EDOM;       /* blobs (and unknown types) are not written */
        return -1;
    }
    if (!buf)
        err = ENOMEM;
    if (!err) {
        ret = hypercall(h, XEN_HYPFS_OP_write_contents, path, (size_t)plen,
                        buf, size);
        if (ret)
            err = (int)(ret > 0 ? EIO : -ret);
    }
    free(buf);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

void *xenhypfs_read_plain(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent **dirent)
{
    void *buf = xenhypfs_read_raw(h, path, dirent), *plain;
    int err;

    if (!buf || (*dirent)->encoding != xenhypfs_enc_gzip)
        return buf;
    plain = inflate_gzip(buf, &(*dirent)->size);
    err = errno;
    free(buf);
    if (!plain) {
        free(*dirent);
        *dirent = NULL;
    }
    errno = err;
    return plain;
}

int xenhypfs_write_raw(xenhypfs_handle *h, const char *path, const void *data,
                       size_t len)
{
    long plen = lib_path_size(h, path), ret;
    void *buf;

    if (plen < 0)
        return -1;
    buf = malloc(len ? len : 1);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(buf, data, len);
    ret = hypercall(h, XEN_HYPFS_OP_write_contents, path, (size_t)plen, buf,
                    len);
    free(buf);
    if (ret) {
        errno = (int)(ret > 0 ? EIO : -ret);
        return -1;
    }
    return 0;
}

void *xenhypfs_stat_value(xenhypfs_handle *h, const char *path,
                          struct xenhypfs_dirent *d, size_t *len,
                          char **text)
{
    struct xen_hypfs_direntry e;
    void *content;
    long plen = lib_path_size(h, path);
    int err;

    *text = NULL;
    if (plen < 0)
        return NULL;
    content = read_entry(h, path, (size_t)plen, &e, true);
    if (!content)
        return NULL;
    memset(d, 0, sizeof(*d));
    lib_set_attrs(&e, d);
    if (d->type == xenhypfs_type_dir) {
        *len = 0;
        return content;
    }
    if (d->encoding == xenhypfs_enc_gzip) {
        char *plain = inflate_gzip(content, &d->size);

        free(content);
        content = plain;
        if (!content)
            return NULL;
    }
    *len = d->size;
    if (d->type != xenhypfs_type_blob) {
        /* format_value() consumes its buffer: give it a copy. */
        char *copy = malloc(d->size + 1);

        if (!copy) {
            free(content);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(copy, content, d->size + 1);
        *text = format_value(d, copy);
        if (!*text) {
            err = errno;
            free(content);
            errno = err;
            return NULL;
        }
    }
    return content;
}
