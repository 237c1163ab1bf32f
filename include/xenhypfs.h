/*
 * libxenhypfs: the toolstack's access to the hypervisor filesystem.
 *
 * API- and ABI-compatible with Xen's libxenhypfs.so.1 (symbol version
 * VERS_1.0): a program built against Xen's xenhypfs.h runs unchanged
 * against this library, which reaches the hypervisor through the Linux
 * privcmd device in a Xen control domain, or hypfsd's socket elsewhere
 * ($HYPFS_SOCKET, else /run/hypfs/hypfsd.sock).
 *
 * Errors: functions returning pointers return NULL, the others -1, with
 * errno set (the hypervisor's errno values pass through unchanged).
 * A handle may be used from several threads at once.
 */
#ifndef XENHYPFS_H
#define XENHYPFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Callers who do not log need not include <xentoollog.h>. */
struct xentoollog_logger;

typedef struct xenhypfs_handle xenhypfs_handle;

enum xenhypfs_type {
    xenhypfs_type_dir,
    xenhypfs_type_blob,
    xenhypfs_type_string,
    xenhypfs_type_uint,
    xenhypfs_type_int,
    xenhypfs_type_bool,
};

enum xenhypfs_encoding {
    xenhypfs_enc_plain,
    xenhypfs_enc_gzip
};

struct xenhypfs_dirent {
    char *name;
    size_t size;                /* content length in bytes */
    unsigned short type;        /* enum xenhypfs_type */
    unsigned short encoding;    /* enum xenhypfs_encoding */
    unsigned int flags;
#define XENHYPFS_FLAG_WRITABLE  0x00000001
};

/*
 * Open a handle; @logger and @open_flags are accepted for compatibility
 * (this library never logs; no flags are defined).  Checks that the
 * hypervisor speaks hypfs.  Close with xenhypfs_close().
 */
xenhypfs_handle *xenhypfs_open(struct xentoollog_logger *logger,
                               unsigned int open_flags);
/* Close a handle (NULL is fine).  Returns 0. */
int xenhypfs_close(xenhypfs_handle *fshdl);

/*
 * The raw content of the entry at @path, and in *dirent its name, size,
 * type and encoding.  Returned buffer and dirent should be freed via
 * free(); on error both are NULL.
 */
void *xenhypfs_read_raw(xenhypfs_handle *fshdl, const char *path,
                        struct xenhypfs_dirent **dirent);

/*
 * The content of the entry at @path as a string: strings as they are,
 * numbers in decimal, gzip content inflated.  A directory gives EISDIR, a
 * blob EDOM.  Returned buffer should be freed via free().
 */
char *xenhypfs_read(xenhypfs_handle *fshdl, const char *path);

/*
 * The entries of the directory at @path (ENOTDIR if it is not one), and
 * their number in *num_entries.  Returned buffer (the array and the names
 * after it) should be freed via free().
 */
struct xenhypfs_dirent *xenhypfs_readdir(xenhypfs_handle *fshdl,
                                         const char *path,
                                         unsigned int *num_entries);

/*
 * Write @val to the entry at @path, converted to the entry's type: uint
 * and int in any base strtoull() accepts (ERANGE if it does not fit,
 * EINVAL if it is not a number), bool as 1/on/yes/true/enable or
 * 0/off/no/false/disable (else EDOM).  Read-only: EACCES; compressed:
 * EDOM.  Returns 0 or -1.
 */
int xenhypfs_write(xenhypfs_handle *fshdl, const char *path, const char *val);

/* ------------------------------------------------------------------------
 * hypfs extensions (symbol version VERS_1.1): interface version 2 of the
 * hypervisor filesystem (hypfs/abi.h).  Against a hypervisor that speaks
 * only version 1 (Xen, or an older hypfsd), each fails with EOPNOTSUPP,
 * and a tool falls back to the functions above.  Programs that use only
 * the functions above are unaffected by these.
 */
#define XENHYPFS_HAVE_V2 1

/* One entry of a subtree, as xenhypfs_read_tree() returns it. */
struct xenhypfs_tree_entry {
    /*
     * name: the path relative to the subtree's top ("" for the top, then
     * "a", "a/b"); size, type, encoding, flags as xenhypfs_read_raw()
     * gives them (for a directory, size is that of its listing).
     */
    struct xenhypfs_dirent dirent;
    const void *content;        /* a leaf's raw content (gzip stays
                                 * compressed), dirent.size bytes; NULL
                                 * for a directory */
    uint64_t generation;        /* see xenhypfs_get_generation() */
    unsigned int depth;         /* 0 for the top, 1 below it, ... */
};

/*
 * Everything at and below @path that the caller may read, in one
 * consistent snapshot: the entry itself first, then depth first, children
 * in name order.  *num_entries says how many.  The array, its names and
 * contents are one allocation: free() it.
 */
struct xenhypfs_tree_entry *xenhypfs_read_tree(xenhypfs_handle *fshdl,
                                               const char *path,
                                               unsigned int *num_entries);

/*
 * The longest value @path accepts in a write, in bytes, into
 * *max_write_len (0: read-only for the caller), as the hypervisor reports
 * it.  Works on every interface version.  Returns 0 or -1 with errno.
 */
int xenhypfs_write_limit(xenhypfs_handle *fshdl, const char *path,
                         unsigned int *max_write_len);

/*
 * The generation of @path as the caller sees it: a number that changes
 * when the entry does (for a directory: anything below it).  Compare it
 * for equality only.  Returns 0 or -1.
 */
int xenhypfs_get_generation(xenhypfs_handle *fshdl, const char *path,
                            uint64_t *generation);

/*
 * Be told when the generation of @path differs from @known (0: at once,
 * with the current one), and every time it changes after that: events
 * carry @token, which names the watch (watching with a token in use
 * re-arms it).  Events coalesce, but after the last change there is
 * always one.  Socket transport only (hypfsd).  Returns 0 or -1 (ENOSPC:
 * too many watches on this handle).
 */
int xenhypfs_watch(xenhypfs_handle *fshdl, const char *path, uint64_t token,
                   uint64_t known);
/* Remove the watch @token: no event for it after this returns. */
int xenhypfs_unwatch(xenhypfs_handle *fshdl, uint64_t token);

/*
 * A descriptor that poll()/select()/epoll report readable when events may
 * be waiting: then call xenhypfs_read_events().  The handle's; it stays
 * the same for the handle's life (reconnections included).
 */
int xenhypfs_event_fd(xenhypfs_handle *fshdl);

struct xenhypfs_event {
    uint64_t token;             /* the watch's */
    uint64_t generation;        /* the path's now (0 with a status) */
    int status;                 /* 0, or a negative errno: -ENOENT, the
                                 * path is gone (or hidden) for the caller */
    unsigned int flags;
#define XENHYPFS_EVENT_GAP      0x00000001  /* the connection was lost and
                                             * made again: changes may have
                                             * been missed; read again */
};

/*
 * A leaf's bytes from its dirent and raw content (as xenhypfs_read_tree()
 * or xenhypfs_read_raw() return them): gzip inflated, within the bound of
 * a reply (256 MiB); *len bytes, and a NUL after them.  EISDIR for a
 * directory.  Returned buffer should be freed via free().  Needs no
 * hypervisor.
 */
void *xenhypfs_value_bytes(const struct xenhypfs_dirent *dirent,
                           const void *content, size_t *len);

/*
 * A value as xenhypfs_read() would give it, from its dirent and raw
 * content (as xenhypfs_read_tree() or xenhypfs_read_raw() return them):
 * gzip inflated, numbers in decimal; EISDIR, EDOM (a blob) as there.
 * Returned buffer should be freed via free().  Needs no hypervisor.
 */
char *xenhypfs_value_string(const struct xenhypfs_dirent *dirent,
                            const void *content);

/*
 * Take up to @max waiting events into @events, without waiting.  Returns
 * how many (0: none), or -1: ECONNRESET when the hypervisor cannot be
 * reached now (try again later: once it can, each watch is re-armed and
 * gets an event with XENHYPFS_EVENT_GAP).
 */
int xenhypfs_read_events(xenhypfs_handle *fshdl, struct xenhypfs_event *events,
                         unsigned int max);

#ifdef __cplusplus
}
#endif

#endif /* XENHYPFS_H */
