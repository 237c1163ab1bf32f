/*
 * hypfs wire ABI, interface version 2.
 *
 * This is the binary contract between a hypervisor and its callers.
 * Version 1 is identical, number for number and layout for layout, to
 * Xen's public xen/include/public/hypfs.h (version 1), so that tools built
 * for Xen work against hypfs and vice versa.  Version 2 follows Xen's rule
 * for growing it: get_version returns the highest version supported, every
 * addition is a new sub-command (numbered after write_contents), and every
 * earlier version stays supported unchanged.  Version 2 adds a consistent
 * read of a whole subtree and change notification (generations and
 * watches).  All integers are in the machine's native byte order.  The
 * compile-time checks at the bottom pin the layout.
 */
#ifndef HYPFS_ABI_H
#define HYPFS_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Hypercall number of hypfs_op (Xen's __HYPERVISOR_hypfs_op). */
#define __HYPERVISOR_hypfs_op          42

/* Highest interface version this implementation speaks. */
#define XEN_HYPFS_VERSION              2

/* Longest path accepted, terminating NUL included. */
#define XEN_HYPFS_MAX_PATHLEN          1024

/* Entry types (xen_hypfs_direntry.type). */
#define XEN_HYPFS_TYPE_DIR             0
#define XEN_HYPFS_TYPE_BLOB            1
#define XEN_HYPFS_TYPE_STRING          2
#define XEN_HYPFS_TYPE_UINT            3
#define XEN_HYPFS_TYPE_INT             4
#define XEN_HYPFS_TYPE_BOOL            5

/* Content encodings (xen_hypfs_direntry.encoding). */
#define XEN_HYPFS_ENC_PLAIN            0
#define XEN_HYPFS_ENC_GZIP             1

/*
 * Header of every entry returned by XEN_HYPFS_OP_read, and of every record
 * of a directory listing.
 */
struct xen_hypfs_direntry {
    uint8_t type;            /* XEN_HYPFS_TYPE_* */
    uint8_t encoding;        /* XEN_HYPFS_ENC_* */
    uint16_t pad;            /* always 0 */
    uint32_t content_len;    /* current length of the content in bytes */
    uint32_t max_write_len;  /* longest accepted write; 0: read-only */
};

/*
 * One record of a directory's content.  Records follow each other; a
 * record is XEN_HYPFS_DIRENTRY_SIZE(strlen(name)) bytes long, so records
 * after the first are generally not naturally aligned: read them with
 * memcpy().
 */
struct xen_hypfs_dirlistentry {
    struct xen_hypfs_direntry e;
    uint16_t off_next;       /* bytes to the next record; 0 on the last */
    char name[];             /* NUL-terminated, padded to a multiple of 4 */
};

/* Offset of the name in a record, and a record's size for a name length. */
#define XEN_HYPFS_DIRENTRY_NAME_OFF    offsetof(struct xen_hypfs_dirlistentry, name)
#define XEN_HYPFS_DIRENTRY_SIZE(name_len) \
    (XEN_HYPFS_DIRENTRY_NAME_OFF + (((name_len) + 1 + 3) & ~(size_t)3))

/*
 * XEN_HYPFS_OP_get_version
 *
 * arg1..arg4: must all be 0.
 *
 * Returns:
 *   >0       the highest interface version supported (2; 1 on Xen)
 *   -EPERM   the caller has no hypfs right
 *   -EINVAL  an argument is not 0
 */
#define XEN_HYPFS_OP_get_version       0

/*
 * XEN_HYPFS_OP_read
 *
 * arg1: address of the path, arg2: its length including the NUL,
 * arg3: address of the data buffer, arg4: its size.
 *
 * Writes a struct xen_hypfs_direntry followed by the content to the buffer.
 * A directory's content is its list of struct xen_hypfs_dirlistentry
 * records, sorted by name (byte-wise).  A string's content includes its
 * terminating NUL.
 *
 * Returns:
 *   0            success
 *   -EPERM       the caller has no hypfs right
 *   -EINVAL      bad path (too long, not NUL-terminated exactly at
 *                arg2 - 1, not absolute) or arg4 < sizeof(direntry)
 *   -EFAULT      guest memory could not be accessed
 *   -ENOENT      no such entry (or not visible to this caller)
 *   -ENOBUFS     buffer too small for the content; the direntry was
 *                written and holds the size needed
 *   -EOPNOTSUPP  unknown command
 */
#define XEN_HYPFS_OP_read              1

/*
 * XEN_HYPFS_OP_write_contents
 *
 * arg1/arg2: path as for read; arg3: address of the new content,
 * arg4: its length.  Type and encoding never change; only strings and blobs
 * change their size (to arg4).
 *
 * Returns:
 *   0          success
 *   -EPERM     the caller has no hypfs right
 *   -EINVAL    bad path; a string not NUL-terminated exactly at its last
 *              byte; a bool other than 0 or 1; a value a handler rejects
 *   -EFAULT    guest memory could not be accessed
 *   -ENOENT    no such entry (or not visible to this caller)
 *   -EACCES    directory, read-only entry, or no write right
 *   -ENOSPC    arg4 above the entry's max_write_len
 *   -EDOM      wrong size for a fixed-size entry, or a handler's value that
 *              is not a single NUL-terminated string
 *   other      the entry's own write handler's error
 */
#define XEN_HYPFS_OP_write_contents    2

/* ------------------------------------------------------------------------
 * Interface version 2
 *
 * Every command below checks, in this order and as version 1 does: the
 * caller's right to use hypfs (-EPERM), then the path (-EINVAL for its
 * length, NUL or leading '/'; -EFAULT), then the lookup (-ENOENT: missing,
 * or not visible to this caller), then its own arguments.  A failed call
 * changes nothing.
 *
 * Generations.  Every entry has a generation: a 64-bit number that moves
 * when the entry changes (a leaf's value; for a directory, anything below
 * it, entries appearing and going included).  Writing the value an entry
 * already has is no change.  What a caller is told is the
 * generation as it sees it: changes to entries it may not read never move
 * it, so it learns nothing about them, not even when they happened.  Only
 * "differs from the value you know" has a meaning: a domain's values are
 * opaque (a keyed hash: two of them say nothing about how many changes
 * happened in between), the control domain's grow with every change;
 * values of different entries cannot be compared; a view never comes back
 * to a value it had.  0 is never a generation: "I know nothing" is 0.
 * Inside an instance of a dynamic directory (/domain/<id>/...), every
 * entry has the instance's generation.
 */

/*
 * XEN_HYPFS_OP_read_tree
 *
 * arg1/arg2: the path of a directory (or a leaf), as for read; arg3: the
 * address of a buffer, arg4: its size.
 *
 * Reads the entry at the path and everything below it that the caller
 * may see, all under one lock: a consistent snapshot.  The buffer gets a
 * struct xen_hypfs_treehdr, then one struct xen_hypfs_treeentry per entry
 * (the path's own first, then depth-first, children in name order), each
 * followed by its relative path ("" for the first; "a/b" below it),
 * NUL-terminated and padded to 8 bytes, and for a leaf its content
 * (exactly what read gives: gzip content stays compressed), padded to 8
 * bytes.  A directory's record has no content; its e.content_len is the
 * size of its listing, as read gives it.  Each record's direntry is what
 * read would give this caller, and its gen the entry's generation.
 *
 * Returns:
 *   0             success
 *   -EPERM, -EINVAL, -EFAULT, -ENOENT   as for read
 *   -EINVAL       arg4 < sizeof(struct xen_hypfs_treehdr)
 *   -ENOBUFS      buffer too small: the header was written and its
 *                 e.content_len holds the size of the records (the buffer
 *                 needs sizeof(struct xen_hypfs_treehdr) more); what
 *                 follows the header in the buffer is undefined
 *   -ENAMETOOLONG an entry's path (the directory's and its own) would not
 *                 fit XEN_HYPFS_MAX_PATHLEN: no caller could name it
 *   -E2BIG        the records would exceed 4 GiB
 *   -ELOOP        the subtree is more than 127 levels deep, or nests
 *                 dynamic directories deeper than the hypervisor follows
 *                 (16): the walk's depth is bounded
 */
#define XEN_HYPFS_OP_read_tree         3

/*
 * XEN_HYPFS_OP_get_generation
 *
 * arg1/arg2: the path; arg3: the address of a buffer, arg4: its size.
 * Writes the entry's generation (uint64_t, as this caller sees it).
 *
 * Returns:
 *   0             success
 *   -EPERM, -EINVAL, -EFAULT, -ENOENT   as for read
 *   -EINVAL       arg4 < 8
 */
#define XEN_HYPFS_OP_get_generation    4

/*
 * XEN_HYPFS_OP_watch
 *
 * arg1/arg2: the path of the entry to watch; arg3: a token the caller
 * chooses, which names the watch; arg4: the generation the caller knows.
 * The caller is told (asynchronously: an event channel in a hypervisor; a
 * HYPFS_MSG_EVENT frame on its connection to hypfsd) as soon as the
 * entry's generation, as it sees it, differs from the one it knows, and
 * then whenever it moves again; changes may be coalesced into one event,
 * but after the last change there is always an event, and reading the
 * entry then gives its latest value.  If the entry goes (or the caller may
 * no longer see it), the event says so (-ENOENT).  Watching with a token
 * already in use re-arms that watch (a new path and generation).
 *
 * Returns:
 *   0             success
 *   -EPERM, -EINVAL, -EFAULT, -ENOENT   as for read
 *   -ENOSPC       the caller watches as many paths as it may already
 *   -EOPNOTSUPP   this hypervisor cannot notify this caller
 */
#define XEN_HYPFS_OP_watch             5

/*
 * XEN_HYPFS_OP_unwatch
 *
 * arg1, arg2, arg4: 0; arg3: the token of the watch to remove (the
 * watched path may be gone).  No event for it arrives after this returns.
 *
 * Returns:
 *   0             success
 *   -EPERM        the caller has no hypfs right
 *   -EINVAL       arg1, arg2 or arg4 is not 0
 *   -ENOENT       no watch of this caller has that token
 */
#define XEN_HYPFS_OP_unwatch           6

/* What XEN_HYPFS_OP_read_tree writes first. */
struct xen_hypfs_treehdr {
    struct xen_hypfs_direntry e; /* type dir; content_len: bytes of records */
    uint32_t nr_entries;         /* records that follow */
};

/* One record of XEN_HYPFS_OP_read_tree; 8-byte aligned. */
struct xen_hypfs_treeentry {
    struct xen_hypfs_direntry e; /* as XEN_HYPFS_OP_read gives it */
    uint32_t rec_len;            /* bytes to the next record */
    uint64_t gen;                /* the entry's generation, as seen */
    uint16_t path_len;           /* bytes of the path, NUL included */
    uint16_t depth;              /* 0: the path's own entry */
    uint32_t pad;                /* 0 */
    /* char path[path_len], padded to 8; then the content, padded to 8 */
};

#define XEN_HYPFS_TREE_ALIGN           8u
#define XEN_HYPFS_TREE_PAD(n)          (((n) + 7u) & ~(size_t)7u)

/* Layout checks: these are the wire format, they must never change. */
#ifdef __cplusplus
#define _Static_assert static_assert
#define _Alignof alignof
#endif
_Static_assert(sizeof(struct xen_hypfs_direntry) == 12, "direntry size");
_Static_assert(offsetof(struct xen_hypfs_direntry, type) == 0, "type");
_Static_assert(offsetof(struct xen_hypfs_direntry, encoding) == 1, "encoding");
_Static_assert(offsetof(struct xen_hypfs_direntry, pad) == 2, "pad");
_Static_assert(offsetof(struct xen_hypfs_direntry, content_len) == 4, "content_len");
_Static_assert(offsetof(struct xen_hypfs_direntry, max_write_len) == 8, "max_write_len");
_Static_assert(offsetof(struct xen_hypfs_dirlistentry, e) == 0, "e");
_Static_assert(offsetof(struct xen_hypfs_dirlistentry, off_next) == 12, "off_next");
_Static_assert(offsetof(struct xen_hypfs_dirlistentry, name) == 14, "name");
_Static_assert(sizeof(struct xen_hypfs_dirlistentry) == 16, "dirlistentry size");
_Static_assert(_Alignof(struct xen_hypfs_direntry) == 4, "direntry align");
_Static_assert(XEN_HYPFS_DIRENTRY_SIZE(0) == 18, "record of empty name");
_Static_assert(XEN_HYPFS_DIRENTRY_SIZE(3) == 18, "record of 3-byte name");
_Static_assert(XEN_HYPFS_DIRENTRY_SIZE(4) == 22, "record of 4-byte name");
_Static_assert(sizeof(struct xen_hypfs_treehdr) == 16, "treehdr size");
_Static_assert(sizeof(struct xen_hypfs_treeentry) == 32, "treeentry size");
_Static_assert(offsetof(struct xen_hypfs_treeentry, rec_len) == 12, "rec_len");
_Static_assert(offsetof(struct xen_hypfs_treeentry, gen) == 16, "gen");
_Static_assert(offsetof(struct xen_hypfs_treeentry, path_len) == 24, "path_len");
_Static_assert(offsetof(struct xen_hypfs_treeentry, depth) == 26, "depth");

#ifdef __cplusplus
#undef _Static_assert
#undef _Alignof
#endif

#endif /* HYPFS_ABI_H */
