/*
 * hypfs wire ABI, interface version 1.
 *
 * This is the binary contract between a hypervisor and its callers.  Every
 * number and every struct layout here is identical to Xen's public
 * xen/include/public/hypfs.h (version 1), so that tools built for Xen work
 * against hypfs and vice versa.  All integers are in the machine's native
 * byte order.  The compile-time checks at the bottom pin the layout.
 */
#ifndef HYPFS_ABI_H
#define HYPFS_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Hypercall number of hypfs_op (Xen's __HYPERVISOR_hypfs_op). */
#define __HYPERVISOR_hypfs_op          42

/* Highest interface version this implementation speaks. */
#define XEN_HYPFS_VERSION              1

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
 *   >0       the highest interface version supported (1)
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

#ifdef __cplusplus
#undef _Static_assert
#undef _Alignof
#endif

#endif /* HYPFS_ABI_H */
