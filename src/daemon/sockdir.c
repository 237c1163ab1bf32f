/*
 * The socket's place in the filesystem, which may be shared with other
 * users (the README's /tmp): hypfsd creates, follows, changes and removes
 * nothing there but its own socket and lock file.
 *
 *   - a directory others can write must be sticky (then only a file's
 *     owner may remove or rename it), and must belong to root or to us;
 *   - the lock file is opened without following a link, must be our own
 *     plain file with one link, and is checked to still be the file at
 *     its name once locked;
 *   - a socket found at the path is removed only if it is ours and dead
 *     (nobody answers on it);
 *   - beside the socket everyone uses (0666) is the control domain's own,
 *     SOCKET.priv (0600), so that its connections never queue behind
 *     anybody else's in the kernel's accept queue;
 *   - the socket is bound with the mode it keeps (umask, no chmod()), and
 *     checked to be ours once bound;
 *   - guests' channels (channel.c) are sockets of ours beside it,
 *     SOCKET.chan.NAME, made the same way;
 *   - at stop, the socket and the lock go only if they are still ours.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <hypfs/msg.h>
#include <unistd.h>

#include "hypfsd.h"

/*
 * Is @dir a safe place for our files?  Others may not be able to replace
 * them: a directory others can write must be sticky (then only the
 * owner of a file may remove or rename it).
 */
static int check_dir(const struct sock_place *sp)
{
    struct stat st;

    if (fstat(sp->dirfd, &st))
        return -1;
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        log_err("refusing to serve in %s: it belongs to uid %u, who could "
                "replace the socket (use a directory of root's or hypfsd's)",
                sp->dir, (unsigned int)st.st_uid);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        log_err("refusing to serve in %s: others may write there and it is "
                "not sticky, so anyone could replace the socket (use "
                "/run/hypfs or a directory only hypfsd may write)", sp->dir);
        return -1;
    }
    return 0;
}

/*
 * Is the file @name in the directory, if there, ours to reuse: a @type
 * file of our own user, with one link?  1 yes, 0 absent, -1 no (logged).
 */
static int ours(const struct sock_place *sp, const char *name, mode_t type,
                const char *what)
{
    struct stat st;

    if (fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
        if (errno == ENOENT)
            return 0;
        log_err("cannot check %s/%s: %s", sp->dir, name, strerror(errno));
        return -1;
    }
    if ((st.st_mode & S_IFMT) != type || st.st_uid != geteuid() ||
        (type == S_IFREG && st.st_nlink != 1)) {
        log_err("%s/%s exists and is not %s hypfsd left (%s of uid %u): "
                "remove it, or choose another --socket", sp->dir, name, what,
                S_ISLNK(st.st_mode) ? "a symbolic link" :
                S_ISSOCK(st.st_mode) ? "a socket" :
                S_ISREG(st.st_mode) ? "a file" : "something else",
                (unsigned int)st.st_uid);
        return -1;
    }
    return 1;
}

/*
 * The lock: two daemons starting at once agree on one.  Opened without
 * following a link, checked to be our own plain file, and re-checked to
 * still be the file at that name once locked (a stopping daemon removes
 * it).
 */
static int take_lock(const struct sock_place *sp)
{
    int attempt;

    for (attempt = 0; attempt < 5; attempt++) {
        struct stat a, b;
        int fd;

        if (ours(sp, sp->lock_name, S_IFREG, "the lock file") < 0)
            return -1;
        fd = openat(sp->dirfd, sp->lock_name,
                    O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                    0600);
        if (fd < 0) {
            log_err("cannot open %s/%s: %s", sp->dir, sp->lock_name,
                    strerror(errno));
            return -1;
        }
        if (fstat(fd, &a) || !S_ISREG(a.st_mode) || a.st_uid != geteuid() ||
            a.st_nlink != 1) {
            log_err("%s/%s is not hypfsd's lock file", sp->dir, sp->lock_name);
            close(fd);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB)) {
            log_err("another hypfsd is already serving %s/%s", sp->dir,
                    sp->name);
            close(fd);
            return -1;
        }
        if (!fstatat(sp->dirfd, sp->lock_name, &b, AT_SYMLINK_NOFOLLOW) &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return fd;
        close(fd);      /* removed under us by a daemon stopping: again */
    }
    log_err("cannot take %s/%s: it keeps changing", sp->dir, sp->lock_name);
    return -1;
}

/*
 * A stale socket of ours (nobody answering) is removed first; the socket
 * is bound with the mode it keeps (@mask as the umask: no chmod() another
 * user could race) and given to @gid before it listens (nobody can
 * connect before that), and checked to be ours once bound.
 */
int sockdir_bind(const struct sock_place *sp, const char *name, mode_t mask,
                 gid_t gid, int backlog, dev_t *dev, ino_t *ino)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old;
    int fd, probe, r;

    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", sp->dir,
                         name) >= sizeof(sa.sun_path)) {
        log_err("socket path too long: %s/%s", sp->dir, name);
        return -1;
    }
    r = ours(sp, name, S_IFSOCK, "a socket");
    if (r < 0)
        return -1;
    if (r > 0) {
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && !connect(probe, (struct sockaddr *)&sa, sizeof(sa))) {
            close(probe);
            log_err("%s is served by another process", sa.sun_path);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        if (unlinkat(sp->dirfd, name, 0) && errno != ENOENT) {
            log_err("cannot remove the stale socket %s: %s", sa.sun_path,
                    strerror(errno));
            return -1;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        return -1;
    }
    old = umask(mask);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (!r && gid != (gid_t)-1 &&
        fchownat(sp->dirfd, name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW)) {
        log_err("cannot give %s to group %u: %s (hypfsd's user must be a "
                "member of it)", sa.sun_path, (unsigned int)gid,
                strerror(errno));
        unlinkat(sp->dirfd, name, 0);
        close(fd);
        return -1;
    }
    if (r || listen(fd, backlog)) {
        log_err("cannot listen on %s: %s", sa.sun_path, strerror(errno));
        if (!r)
            unlinkat(sp->dirfd, name, 0);
        close(fd);
        return -1;
    }
    if (fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) ||
        !S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
        log_err("%s changed under us: refusing to serve it", sa.sun_path);
        close(fd);
        return -1;
    }
    *dev = st.st_dev;
    *ino = st.st_ino;
    return fd;
}

/* Remove the lock file if it is still our locked file, then unlock. */
static void drop_lock(const struct sock_place *sp, int lock_fd)
{
    struct stat a, st;

    if (lock_fd < 0)
        return;
    if (!fstat(lock_fd, &a) &&
        !fstatat(sp->dirfd, sp->lock_name, &st, AT_SYMLINK_NOFOLLOW) &&
        a.st_dev == st.st_dev && a.st_ino == st.st_ino)
        unlinkat(sp->dirfd, sp->lock_name, 0);
    close(lock_fd);
}

int sockdir_take(const char *path, struct sock_place *sp, int *lock_fd,
                 int *priv_fd)
{
    char copy[PATH_MAX];
    int fd;

    *priv_fd = -1;
    if (strlen(path) >= sizeof(copy)) {
        log_err("socket path too long: %s", path);
        return -1;
    }
    strcpy(copy, path);
    snprintf(sp->dir, sizeof(sp->dir), "%s", dirname(copy));
    strcpy(copy, path);
    snprintf(sp->name, sizeof(sp->name), "%s", basename(copy));
    if (!*sp->name || !strcmp(sp->name, "/") || !strcmp(sp->name, ".") ||
        strlen(sp->name) + 5 > NAME_MAX) {
        log_err("not a socket path: %s", path);
        return -1;
    }
    snprintf(sp->lock_name, sizeof(sp->lock_name), "%s.lock", sp->name);
    snprintf(sp->priv_name, sizeof(sp->priv_name), "%s%s", sp->name,
             HYPFS_PRIV_SUFFIX);

    if (!strcmp(path, HYPFS_DEFAULT_SOCKET) && mkdir("/run/hypfs", 0755) &&
        errno != EEXIST) {
        log_err("cannot create /run/hypfs: %s (use --socket PATH)",
                strerror(errno));
        return -1;
    }
    sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        log_err("cannot open %s: %s", sp->dir, strerror(errno));
        return -1;
    }
    if (check_dir(sp))
        return -1;
    *lock_fd = take_lock(sp);
    if (*lock_fd < 0)
        return -1;

    /*
     * The door for everyone: 0666, anyone may connect, and what they may
     * do depends on who they are.  The control domain's own door: 0600,
     * so that only our user (and root) can queue on it.
     */
    fd = sockdir_bind(sp, sp->name, 0111, (gid_t)-1, SOMAXCONN, &sp->dev,
                      &sp->ino);
    if (fd >= 0) {
        *priv_fd = sockdir_bind(sp, sp->priv_name, 0177, (gid_t)-1, 128,
                                &sp->priv_dev, &sp->priv_ino);
        if (*priv_fd >= 0)
            return fd;
        unlinkat(sp->dirfd, sp->name, 0);
        close(fd);
    }
    /* Refused (a squatter, another's file): nothing of ours stays. */
    drop_lock(sp, *lock_fd);
    *lock_fd = -1;
    return -1;
}

/*
 * Sockets systemd made and passed (socket activation, hypfsd.socket and
 * hypfsd-priv.socket): the one whose name ends in HYPFS_PRIV_SUFFIX is the
 * control domain's door.  They are systemd's: never removed here.
 */
int sockdir_inherit(int first, int n, struct sock_place *sp, int *priv_fd)
{
    int fd, lfd = -1;

    *priv_fd = -1;
    sp->dirfd = -1;
    for (fd = first; fd < first + n; fd++) {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        size_t plen, slen = strlen(HYPFS_PRIV_SUFFIX);
        int type = 0;
        socklen_t tlen = sizeof(type);

        memset(&sa, 0, sizeof(sa));
        if (getsockname(fd, (struct sockaddr *)&sa, &len) ||
            sa.sun_family != AF_UNIX ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) ||
            type != SOCK_STREAM) {
            log_err("descriptor %d passed by the service manager is not a "
                    "Unix stream socket", fd);
            return -1;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        plen = strnlen(sa.sun_path, sizeof(sa.sun_path));
        if (plen > slen && !strcmp(sa.sun_path + plen - slen, HYPFS_PRIV_SUFFIX))
            *priv_fd = fd;
        else
            lfd = fd;
    }
    if (lfd < 0 || *priv_fd < 0) {
        log_err("socket activation needs both sockets (SOCKET and SOCKET%s):"
                " see hypfsd.socket and hypfsd-priv.socket",
                HYPFS_PRIV_SUFFIX);
        return -1;
    }
    /* The sockets' directory, for the guests' channels (not for these). */
    sp->inherited = true;
    {
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        char copy[sizeof(sa.sun_path) + 1];

        memset(&sa, 0, sizeof(sa));
        if (!getsockname(lfd, (struct sockaddr *)&sa, &len)) {
            memcpy(copy, sa.sun_path, sizeof(sa.sun_path));
            copy[sizeof(sa.sun_path)] = '\0';
            snprintf(sp->dir, sizeof(sp->dir), "%s", dirname(copy));
            sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (sp->dirfd >= 0 && check_dir(sp)) {
                close(sp->dirfd);
                sp->dirfd = -1;
            }
        }
    }
    return lfd;
}

void sockdir_release(struct sock_place *sp, int lock_fd)
{
    struct stat st;

    if (sp->dirfd < 0 || sp->inherited)
        return;     /* systemd's sockets */

    if (!fstatat(sp->dirfd, sp->name, &st, AT_SYMLINK_NOFOLLOW) &&
        st.st_dev == sp->dev && st.st_ino == sp->ino)
        unlinkat(sp->dirfd, sp->name, 0);
    if (!fstatat(sp->dirfd, sp->priv_name, &st, AT_SYMLINK_NOFOLLOW) &&
        st.st_dev == sp->priv_dev && st.st_ino == sp->priv_ino)
        unlinkat(sp->dirfd, sp->priv_name, 0);
    drop_lock(sp, lock_fd);
}

int sockdir_sweep(const struct sock_place *sp, const char *prefix)
{
    size_t n = strlen(prefix);
    struct dirent *e;
    int fd = dup(sp->dirfd), swept = 0;
    DIR *d = fd < 0 ? NULL : fdopendir(fd);

    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    while ((e = readdir(d))) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int probe;

        if (strncmp(e->d_name, prefix, n) ||
            fstatat(sp->dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
            !S_ISSOCK(st.st_mode) || st.st_uid != geteuid() ||
            (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s",
                             sp->dir, e->d_name) >= sizeof(sa.sun_path))
            continue;
        /* Ours, and nobody answers on it: left by a hypfsd that died. */
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            break;
        if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) &&
            errno == ECONNREFUSED && !unlinkat(sp->dirfd, e->d_name, 0)) {
            log_info("removed %s, left by a hypfsd that did not stop cleanly",
                     sa.sun_path);
            swept++;
        }
        close(probe);
    }
    closedir(d);
    return swept;
}
