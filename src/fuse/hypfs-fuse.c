/*
 * hypfs-fuse: the hypervisor filesystem as a mounted filesystem, for the
 * tools people use on sysfs (ls, cat, echo >, find, grep -r, stat).
 *
 * Directories are directories; a leaf is a regular file holding its value
 * as `xenhypfs cat` prints it and a newline (numbers in decimal, gzip
 * content inflated), a blob its raw bytes.  A file is 0444, or 0644 when the
 * caller may write it; st_size is the true length.  Writing a file sets the
 * entry: the value is one write at offset 0 (as on sysfs), one trailing
 * newline is dropped, and it is converted and checked by libxenhypfs, so an
 * invalid value fails with the library's errno and changes nothing.
 *
 * Everything is live: no attribute or page is cached (names for a second,
 * see op_lookup), so every stat and read asks the hypervisor, two reads see
 * a change made between them and dynamic directories appear and vanish.
 * A file's content is taken once when it is opened, so one open reads one
 * consistent value.
 *
 * Access is never widened.  Without -o allow_other only the mounting user
 * can use the mount (FUSE's rule).  With it, every request is made with
 * the rights of the user who makes it: running as root, hypfs-fuse opens
 * one hypfsd connection per user, connected by a short-lived child that
 * has switched to that user, so hypfsd identifies the user itself (its
 * SO_PEERCRED); not running as root, it refuses every other user.  Modes
 * and owners are reported for the calling user.
 *
 * One thread serves the session; the connections of other users are kept
 * in a small cache.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xenhypfs-ext.h"

/* ---- Inodes: one per path seen, as long as the kernel holds it ---- */

struct node {
    fuse_ino_t ino;
    uint64_t nlookup;
    struct node *next_path, *next_ino;   /* hash chains */
    char path[];
};

#define BUCKETS 4096u
static struct node *by_path[BUCKETS], *by_ino[BUCKETS];
static fuse_ino_t next_ino = 2;

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct node *node_by_ino(fuse_ino_t ino)
{
    struct node *n;

    for (n = by_ino[ino % BUCKETS]; n; n = n->next_ino)
        if (n->ino == ino)
            return n;
    return NULL;
}

/* The node of @path, made if new; NULL when out of memory. */
static struct node *node_get(const char *path)
{
    uint32_t h = hash_str(path) % BUCKETS;
    struct node *n;

    for (n = by_path[h]; n; n = n->next_path)
        if (!strcmp(n->path, path))
            return n;
    n = calloc(1, sizeof(*n) + strlen(path) + 1);
    if (!n)
        return NULL;
    strcpy(n->path, path);
    n->ino = strcmp(path, "/") ? next_ino++ : FUSE_ROOT_ID;
    n->next_path = by_path[h];
    by_path[h] = n;
    n->next_ino = by_ino[n->ino % BUCKETS];
    by_ino[n->ino % BUCKETS] = n;
    return n;
}

static void node_forget(struct node *n, uint64_t count)
{
    struct node **pp;

    n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
    if (n->nlookup || n->ino == FUSE_ROOT_ID)
        return;
    for (pp = &by_path[hash_str(n->path) % BUCKETS]; *pp != n;
         pp = &(*pp)->next_path)
        ;
    *pp = n->next_path;
    for (pp = &by_ino[n->ino % BUCKETS]; *pp != n; pp = &(*pp)->next_ino)
        ;
    *pp = n->next_ino;
    free(n);
}

/* ---- Whose rights: a connection per calling user ---- */

struct user_conn {
    uid_t uid;
    xenhypfs_handle *h;         /* NULL: this user has no hypfs right */
    time_t made;
};

#define USER_CACHE 64
#define NEGATIVE_SECONDS 2

static struct {
    const char *socket;
    bool allow_other;
    bool as_root;
    uid_t uid;
    gid_t gid;
    xenhypfs_handle *own;
    struct user_conn users[USER_CACHE];
    time_t mounted;
} fs;

/* Connect to hypfsd as @uid/@gid, from a child that becomes that user. */
static int connect_as(uid_t uid, gid_t gid)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = { 0 };
    struct iovec iov;
    struct cmsghdr *cm;
    char byte = 0;
    int sv[2], fd = -1, status;
    pid_t pid;

    if (strlen(fs.socket) >= sizeof(sa.sun_path) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return -1;
    memcpy(sa.sun_path, fs.socket, strlen(fs.socket) + 1);
    pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (!pid) {
        int s;

        close(sv[0]);
        if (setgroups(0, NULL) || setgid(gid) || setuid(uid) ||
            getuid() != uid)
            _exit(1);
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)))
            _exit(1);
        iov.iov_base = &byte;
        iov.iov_len = 1;
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);
        cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &s, sizeof(int));
        _exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 1);
    }
    close(sv[1]);
    iov.iov_base = &byte;
    iov.iov_len = 1;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof(cbuf);
    if (recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC) == 1 &&
        (cm = CMSG_FIRSTHDR(&msg)) && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    close(sv[0]);
    waitpid(pid, &status, 0);
    return fd;
}

/*
 * The handle to serve @req with, or NULL with *err: the mounting user's
 * own, or a connection made as the caller.
 */
static xenhypfs_handle *handle_for(fuse_req_t req, int *err)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    time_t now = time(NULL);
    struct user_conn *slot = NULL, *oldest = &fs.users[0];
    int i, fd;

    if (ctx->uid == fs.uid)
        return fs.own;
    if (!fs.as_root) {
        /* We cannot act as that user: never lend it our rights. */
        *err = EACCES;
        return NULL;
    }
    for (i = 0; i < USER_CACHE; i++) {
        struct user_conn *u = &fs.users[i];

        if (u->made && u->uid == ctx->uid &&
            (u->h || now - u->made < NEGATIVE_SECONDS)) {
            if (!u->h)
                *err = EACCES;
            return u->h;
        }
        if (!u->made && !slot)
            slot = u;
        if (u->made < oldest->made)
            oldest = u;
    }
    if (!slot) {
        slot = oldest;
        xenhypfs_close(slot->h);
    }
    fd = connect_as(ctx->uid, ctx->gid);
    slot->uid = ctx->uid;
    slot->made = now;
    slot->h = fd >= 0 ? xenhypfs_open_socket(fd) : NULL;
    if (!slot->h)       /* no hypfs right (EPERM), or no socket */
        *err = EACCES;
    return slot->h;
}

/*
 * What a request on @ino works on: its node, and the handle to ask the
 * hypervisor with.  0, or the errno to reply (ESTALE: a forgotten inode).
 */
static int request_target(fuse_req_t req, fuse_ino_t ino, struct node **n,
                          xenhypfs_handle **h)
{
    int err = 0;

    *n = node_by_ino(ino);
    if (!*n)
        return ESTALE;
    *h = handle_for(req, &err);
    return *h ? 0 : err;
}

/* ---- Entries as files ---- */

struct value {
    bool dir;
    bool writable;
    unsigned short type;
    char *data;                 /* the file's content */
    size_t len;
};

static void value_free(struct value *v)
{
    free(v->data);
    v->data = NULL;
}

/*
 * What @path is and holds, for this caller, in one hypercall (a directory's
 * listing is not fetched).  0 or an errno.
 */
static int get_value(xenhypfs_handle *h, const char *path, struct value *v)
{
    struct xenhypfs_dirent d;
    size_t len;
    char *raw, *text;

    memset(v, 0, sizeof(*v));
    raw = xenhypfs_stat_value(h, path, &d, &len, &text);
    if (!raw)
        return errno;
    v->dir = d.type == xenhypfs_type_dir;
    v->writable = d.flags & XENHYPFS_FLAG_WRITABLE;
    v->type = d.type;
    if (v->dir) {
        free(raw);
    } else if (!text) {
        v->data = raw;      /* a blob: its bytes */
        v->len = len;
    } else {
        /* Exactly what xenhypfs cat prints: the text and a newline. */
        free(raw);
        v->len = strlen(text) + 1;
        v->data = realloc(text, v->len + 1);
        if (!v->data) {
            free(text);
            return ENOMEM;
        }
        v->data[v->len - 1] = '\n';
        v->data[v->len] = '\0';
    }
    return 0;
}

static void fill_stat(fuse_req_t req, fuse_ino_t ino, const struct value *v,
                      struct stat *st)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);

    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = v->dir ? S_IFDIR | 0555 : S_IFREG | (v->writable ? 0644 : 0444);
    /*
     * 1 for directories too: we do not count their subdirectories, and 2
     * would tell find(1) that there are none (its leaf optimisation).
     */
    st->st_nlink = 1;
    st->st_size = v->dir ? 0 : (off_t)v->len;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    /* The caller's, so that the mode tells the caller what it may do. */
    st->st_uid = ctx->uid;
    st->st_gid = ctx->gid;
    st->st_atime = st->st_mtime = st->st_ctime = fs.mounted;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);

    if (!p)
        return NULL;
    memcpy(p, dir, a);
    if (!a || dir[a - 1] != '/')
        p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

/* ---- Operations ---- */

#define ENTRY_TIMEOUT 1.0

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* No page cache across opens: values are live. */
    conn->want &= ~(unsigned int)FUSE_CAP_AUTO_INVAL_DATA;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e = { 0 };
    struct node *p, *n;
    xenhypfs_handle *h;
    struct value v;
    char *path;
    int err = request_target(req, parent, &p, &h);

    if (err)
        return (void)fuse_reply_err(req, err);
    path = join(p->path, name);
    if (!path)
        return (void)fuse_reply_err(req, ENOMEM);
    err = get_value(h, path, &v);
    if (!err) {
        n = node_get(path);
        if (!n)
            err = ENOMEM;
        else {
            n->nlookup++;
            e.ino = n->ino;
            fill_stat(req, n->ino, &v, &e.attr);
            /*
             * Names may be cached a moment, attributes never: every stat
             * and open asks the hypervisor again with the caller's rights,
             * so a name that went away (or is not the caller's to see)
             * only leads to a fresh ENOENT.
             */
            e.attr_timeout = 0;
            e.entry_timeout = ENTRY_TIMEOUT;
        }
        value_free(&v);
    }
    free(path);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct node *n = node_by_ino(ino);

    if (n)
        node_forget(n, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    size_t i;

    for (i = 0; i < count; i++) {
        struct node *n = node_by_ino(forgets[i].ino);

        if (n)
            node_forget(n, forgets[i].nlookup);
    }
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n;
    xenhypfs_handle *h;
    struct value v;
    struct stat st;
    int err = request_target(req, ino, &n, &h);

    (void)fi;
    if (err)
        return (void)fuse_reply_err(req, err);
    err = get_value(h, n->path, &v);
    if (err)
        return (void)fuse_reply_err(req, err);
    fill_stat(req, ino, &v, &st);
    value_free(&v);
    fuse_reply_attr(req, &st, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    (void)attr;
    /*
     * Truncation (O_TRUNC from `echo >`) is accepted and does nothing: a
     * write replaces the whole value anyway.  Times are ignored.  Owners
     * and modes are the hypervisor's.
     */
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
        return (void)fuse_reply_err(req, EPERM);
    op_getattr(req, ino, fi);
}

/* A snapshot of an open file's content, or of a directory's listing. */
struct open_file {
    struct value v;
    unsigned int n;
    struct xenhypfs_dirent *ents;
};

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n;
    struct open_file *of;
    xenhypfs_handle *h;
    int err = request_target(req, ino, &n, &h);

    if (err)
        return (void)fuse_reply_err(req, err);
    of = calloc(1, sizeof(*of));
    if (!of)
        return (void)fuse_reply_err(req, ENOMEM);
    err = get_value(h, n->path, &of->v);
    if (!err && of->v.dir)
        err = EISDIR;
    if (!err && (fi->flags & O_ACCMODE) != O_RDONLY && !of->v.writable)
        err = EACCES;
    if (err) {
        value_free(&of->v);
        free(of);
        return (void)fuse_reply_err(req, err);
    }
    fi->fh = (uintptr_t)of;
    fi->direct_io = 1;      /* content from the snapshot, never a cache */
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

    (void)ino;
    if (off < 0 || (size_t)off >= of->v.len)
        return (void)fuse_reply_buf(req, NULL, 0);
    if (size > of->v.len - (size_t)off)
        size = of->v.len - (size_t)off;
    fuse_reply_buf(req, of->v.data + off, size);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    struct node *n = node_by_ino(ino);
    xenhypfs_handle *h;
    size_t len = size;
    char *val;
    int err = 0, ret;

    if (!n)
        return (void)fuse_reply_err(req, ESTALE);
    /* A value is written whole, in one write at the start, as on sysfs. */
    if (off != 0)
        return (void)fuse_reply_err(req, EINVAL);
    h = handle_for(req, &err);
    if (!h)
        return (void)fuse_reply_err(req, err);
    if (of->v.type == xenhypfs_type_blob) {
        ret = xenhypfs_write_raw(h, n->path, buf, size);
    } else {
        if (len && buf[len - 1] == '\n')
            len--;
        if (memchr(buf, '\0', len))
            return (void)fuse_reply_err(req, EINVAL);
        val = malloc(len + 1);
        if (!val)
            return (void)fuse_reply_err(req, ENOMEM);
        memcpy(val, buf, len);
        val[len] = '\0';
        ret = xenhypfs_write(h, n->path, val);
        free(val);
    }
    if (ret)
        fuse_reply_err(req, errno);
    else
        fuse_reply_write(req, size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;

    (void)ino;
    if (of) {
        value_free(&of->v);
        free(of->ents);
        free(of);
    }
    fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n;
    struct open_file *of;
    xenhypfs_handle *h;
    int err = request_target(req, ino, &n, &h);

    if (err)
        return (void)fuse_reply_err(req, err);
    of = calloc(1, sizeof(*of));
    if (!of)
        return (void)fuse_reply_err(req, ENOMEM);
    of->ents = xenhypfs_readdir(h, n->path, &of->n);
    if (!of->ents) {
        err = errno;
        free(of);
        return (void)fuse_reply_err(req, err);
    }
    fi->fh = (uintptr_t)of;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
    struct node *n = node_by_ino(ino);
    char *buf = malloc(size ? size : 1);
    size_t used = 0;
    off_t i;

    if (!buf)
        return (void)fuse_reply_err(req, ENOMEM);
    /* Offsets: 0 ".", 1 "..", then the entries. */
    for (i = off; i < (off_t)of->n + 2; i++) {
        struct stat st = { 0 };
        const char *name;
        char *path = NULL;
        size_t need;

        if (i < 2) {
            name = i ? ".." : ".";
            st.st_mode = S_IFDIR;
            st.st_ino = ino;
        } else {
            const struct xenhypfs_dirent *e = &of->ents[i - 2];

            name = e->name;
            st.st_mode = e->type == xenhypfs_type_dir ? S_IFDIR : S_IFREG;
            path = n ? join(n->path, name) : NULL;
            /* A stable, non-zero number; lookup gives the real one. */
            st.st_ino = path ? (hash_str(path) | 1u) + ((fuse_ino_t)1 << 32) : 1;
            free(path);
        }
        need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    op_release(req, ino, fi);
}

/* The tree's shape is the hypervisor's. */
static void op_no_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                         mode_t mode, struct fuse_file_info *fi)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)fi;
    fuse_reply_err(req, EPERM);
}

static void op_no_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode)
{
    (void)parent;
    (void)name;
    (void)mode;
    fuse_reply_err(req, EPERM);
}

static void op_no_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent;
    (void)name;
    fuse_reply_err(req, EPERM);
}

static void op_no_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                        mode_t mode, dev_t rdev)
{
    (void)rdev;
    op_no_mkdir(req, parent, name, mode);
}

static void op_no_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                         fuse_ino_t newparent, const char *newname,
                         unsigned int flags)
{
    (void)newparent;
    (void)newname;
    (void)flags;
    op_no_unlink(req, parent, name);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st = { 0 };

    (void)ino;
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .create = op_no_create,
    .mkdir = op_no_mkdir,
    .mknod = op_no_mknod,
    .unlink = op_no_unlink,
    .rmdir = op_no_unlink,
    .rename = op_no_rename,
    .statfs = op_statfs,
};

/* ---- Start ---- */

struct options {
    char *socket;
    int help;
};

static const struct fuse_opt option_spec[] = {
    { "--socket=%s", offsetof(struct options, socket), 1 },
    { "-s %s", offsetof(struct options, socket), 1 },
    { "--help", offsetof(struct options, help), 1 },
    { "-h", offsetof(struct options, help), 1 },
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
    printf("usage: %s [options] MOUNTPOINT\n"
           "\n"
           "Mount the hypervisor filesystem of a running hypfsd.\n"
           "\n"
           "    -s, --socket=PATH      hypfsd's socket (default $HYPFS_SOCKET or\n"
           "                           %s)\n"
           "    -f                     stay in the foreground\n"
           "    -d                     debug output (implies -f)\n"
           "    -o allow_other         let other users use the mount, each with\n"
           "                           their own rights (needs root to act as them)\n"
           "    -o OPTION              other FUSE mount options\n"
           "\n"
           "Unmount with `fusermount3 -u MOUNTPOINT` or SIGTERM.\n",
           prog, xenhypfs_socket_path(NULL));
}

/* Did the user ask for allow_other (in any -o list)? */
static bool has_allow_other(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *o = NULL;

        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            o = argv[i + 1];
        else if (!strncmp(argv[i], "-o", 2))
            o = argv[i] + 2;
        if (o && strstr(o, "allow_other"))
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct xenhypfs_open_args open_args = { XENHYPFS_TRANSPORT_SOCKET };
    char open_err[320];
    struct fuse_cmdline_opts opts;
    struct options o = { 0 };
    struct fuse_session *se;
    int ret = 1, i;

    fs.allow_other = has_allow_other(argc, argv);
    if (fuse_opt_parse(&args, &o, option_spec, NULL) == -1)
        return 1;
    if (o.help) {
        usage(argv[0]);
        fuse_opt_free_args(&args);
        return 0;
    }
    if (fuse_parse_cmdline(&args, &opts) != 0)
        return 1;
    if (!opts.mountpoint) {
        fprintf(stderr, "hypfs-fuse: no mountpoint (try --help)\n");
        goto out_args;
    }
    fs.socket = xenhypfs_socket_path(o.socket);
    fs.uid = getuid();
    fs.gid = getgid();
    fs.as_root = geteuid() == 0;
    fs.mounted = time(NULL);

    if (access("/dev/fuse", R_OK | W_OK)) {
        fprintf(stderr, "hypfs-fuse: /dev/fuse: %s (is the fuse module "
                "loaded, and may this user use it?)\n", strerror(errno));
        goto out_args;
    }
    open_args.transport = XENHYPFS_TRANSPORT_SOCKET;
    open_args.socket_path = fs.socket;
    open_args.err = open_err;
    open_args.errlen = sizeof(open_err);
    fs.own = xenhypfs_open_ext(&open_args);
    if (!fs.own) {
        fprintf(stderr, "hypfs-fuse: %s\n", open_err);
        goto out_args;
    }
    if (!node_get("/"))
        goto out_close;

    /* fsname and subtype show in mount(8) and /proc/mounts. */
    fuse_opt_add_arg(&args, "-ofsname=hypfs,subtype=hypfs");
    se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!se)
        goto out_close;
    if (fuse_set_signal_handlers(se) || fuse_session_mount(se, opts.mountpoint)) {
        fprintf(stderr, "hypfs-fuse: cannot mount on %s\n", opts.mountpoint);
        goto out_session;
    }
    fuse_daemonize(opts.foreground);
    ret = fuse_session_loop(se);
    /* A signal (SIGTERM, SIGINT, SIGHUP) is a clean stop, not a failure. */
    ret = ret && ret != SIGTERM && ret != SIGINT && ret != SIGHUP ? 1 : 0;
    fuse_session_unmount(se);
 out_session:
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
 out_close:
    xenhypfs_close(fs.own);
    for (i = 0; i < USER_CACHE; i++)
        xenhypfs_close(fs.users[i].h);
 out_args:
    free(opts.mountpoint);
    free(o.socket);
    fuse_opt_free_args(&args);
    return ret;
}
