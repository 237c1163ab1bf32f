/*
 * The hypfsd wire format as code: what both ends of a connection share.
 *
 * include/hypfs/msg.h is the contract (frame layouts and bounds); this is
 * the one place a frame header is built and the one place its fixed
 * fields are checked.  Everything else about a frame belongs to the side
 * that sends or receives it: requests are encoded in src/client and
 * decoded in src/daemon, replies the other way round.  Nothing here
 * allocates, prints or keeps state; errors are negative errno values.
 */
#ifndef HYPFS_WIRE_H
#define HYPFS_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <hypfs/msg.h>

/* A header for a frame of @type with @len payload bytes. */
void hypfs_msg_hdr_init(struct hypfs_msg_hdr *hdr, uint16_t type, uint32_t len,
                        uint32_t seq);

/*
 * Are magic and version right?  0 or -EPROTO.  Type and length are for
 * the receiving side to judge: their bounds depend on who receives.
 */
int hypfs_msg_hdr_check(const struct hypfs_msg_hdr *hdr);

/*
 * Write / read exactly @len bytes on a socket, retrying on EINTR.  0 or
 * -errno; a peer that closes first gives -ECONNRESET.  Writes never raise
 * SIGPIPE.
 */
int hypfs_msg_write_all(int fd, const void *buf, size_t len);
/* The same for the pieces of a frame (@iov is consumed). */
int hypfs_msg_writev_all(int fd, struct iovec *iov, int n);
int hypfs_msg_read_all(int fd, void *buf, size_t len);

/*
 * The CRC-32 a channel frame carries after it (see msg.h): of the @n
 * pieces, in order.  Extend a sum with @crc (0 to start).
 */
uint32_t hypfs_msg_crc(uint32_t crc, const struct iovec *iov, int n);

/*
 * Write a channel frame: the @n pieces and their CRC-32, with write()
 * (a device or a socket alike).  0 or -errno.
 */
int hypfs_msg_write_chan(int fd, const struct iovec *iov, int n);

/*
 * The socket to use: @explicit_path, else $HYPFS_SOCKET, else the
 * default.  The returned string is @explicit_path, the environment's or a
 * constant: never freed by the caller.
 */
const char *hypfs_msg_socket_path(const char *explicit_path);

#endif /* HYPFS_WIRE_H */
