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

#ifdef __cplusplus
}
#endif

#endif /* XENHYPFS_H */
