/*
 * The hypfsd wire protocol: how local callers reach the reference
 * hypervisor over its Unix socket.  docs/protocol.md describes it in full.
 *
 * A connection carries frames: a struct hypfs_msg_hdr and `len` bytes of
 * payload.  The client sends requests, the daemon answers each with one
 * reply frame carrying the same `seq`, in order.  Integers are in the
 * machine's byte order (the socket is local).
 *
 * HYPFS_MSG_OP carries exactly one hypfs_op hypercall: the command and
 * its four arguments as the caller passed them, the bytes of the path the
 * caller could supply (at most the path length, at most 1024), and for
 * writes the bytes of the data.  The daemon runs the hypercall as if those
 * bytes were the caller's memory at arg1 and arg3: reading past what was
 * sent is a fault (-EFAULT), exactly as unreadable guest memory would be.
 * The reply carries the return value and every byte the hypervisor wrote
 * into the caller's buffer (on -ENOBUFS: the direntry).
 */
#ifndef HYPFS_MSG_H
#define HYPFS_MSG_H

#include <stdint.h>

#include <hypfs/abi.h>

#define HYPFS_MSG_MAGIC         0x46505948u   /* "HYPF" */
#define HYPFS_MSG_VERSION       1

/* Frame types. */
#define HYPFS_MSG_OP            1   /* client: a hypercall */
#define HYPFS_MSG_OP_REPLY      2   /* daemon: its result */
#define HYPFS_MSG_CTL           3   /* client: a control command */
#define HYPFS_MSG_CTL_REPLY     4   /* daemon: its result */
#define HYPFS_MSG_EVENT         5   /* daemon, unasked: a watch fired */
#define HYPFS_MSG_HELLO         6   /* guest, on a channel: a new session */
#define HYPFS_MSG_HELLO_REPLY   7   /* daemon: struct hypfs_msg_hello_reply */

/* Bounds: a frame above them ends the connection. */
#define HYPFS_MSG_DATA_MAX      (1u << 20)    /* written data per request */
#define HYPFS_MSG_CTL_MAX       4096u         /* control request payload */
#define HYPFS_MSG_REQ_MAX       (sizeof(struct hypfs_msg_op) + \
                                 XEN_HYPFS_MAX_PATHLEN + HYPFS_MSG_DATA_MAX)
/*
 * The largest reply payload: what a hypercall may write into its caller's
 * buffer (a listing of millions of names) and a control command's text.
 * The daemon never sends more (a caller's buffer beyond it faults, as
 * unmapped memory would), and clients refuse more: a peer cannot make a
 * client hold more than this for one reply.
 */
#define HYPFS_MSG_REPLY_MAX     (256u << 20)

/* Where clients look for the daemon, unless HYPFS_SOCKET says otherwise. */
#define HYPFS_DEFAULT_SOCKET    "/run/hypfs/hypfsd.sock"
#define HYPFS_SOCKET_ENV        "HYPFS_SOCKET"
/*
 * Beside it, the same service on a socket only the daemon's own user (and
 * root) may connect to, mode 0600: the control domain's door, whose
 * connections never queue behind anybody else's.  Clients running as
 * root try it first.
 */
#define HYPFS_PRIV_SUFFIX       ".priv"

/*
 * Guest channels.  A domain's channel is a byte stream without connection
 * boundaries on the guest's side (a virtio-serial port: the guest's
 * processes come and go, the VMM and hypfsd reconnect), so a frame on a
 * channel, in both directions, is followed by a CRC-32 (zlib's, IEEE
 * 802.3, in the machine's byte order) of its header and payload, and
 * either end finds its place again after garbage:
 *
 *   - hypfsd takes a frame only when its header is plausible and its CRC
 *     right; otherwise, or when a frame stops arriving for
 *     HYPFS_CHAN_STALL_MS (or is not whole 5 s after its first byte), it
 *     drops one byte and looks for the next magic in what it has (the
 *     remains of a request whose sender was killed never swallow the
 *     next one);
 *   - a guest process starts with HYPFS_MSG_HELLO carrying a random seq
 *     and ignores every frame until the HELLO_REPLY with that seq: stale
 *     replies to a killed predecessor are skipped.  HELLO also ends the
 *     watches of the previous session.  Requests then carry seq + 1, ...;
 *     a reply with another seq or a bad CRC is skipped.
 *
 * Identity on a channel is the channel's domain, whatever the bytes say.
 */
#define HYPFS_CHAN_TRAILER      4u      /* the CRC-32 after each frame */
#define HYPFS_CHAN_STALL_MS     2000
/* The name a guest finds the port by (/dev/virtio-ports/NAME). */
#define HYPFS_CHAN_PORT_NAME    "org.xenproject.hypfs.0"

struct hypfs_msg_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;          /* HYPFS_MSG_* */
    uint32_t len;           /* payload bytes after the header */
    uint32_t seq;           /* chosen by the client, echoed in the reply */
};

/* Payload of HYPFS_MSG_OP; followed by path_len + data_len bytes. */
struct hypfs_msg_op {
    uint32_t cmd;           /* XEN_HYPFS_OP_* (any value: unknown ones too) */
    uint32_t path_len;      /* path bytes sent: <= min(arg2, 1024) */
    uint64_t arg1;          /* the caller's path address (opaque) */
    uint64_t arg2;          /* the caller's path length, NUL included */
    uint64_t arg3;          /* the caller's buffer address (opaque) */
    uint64_t arg4;          /* the caller's buffer length */
    uint32_t data_len;      /* data bytes sent: <= min(arg4, DATA_MAX) */
    uint32_t flags;         /* 0 */
};

/* Payload of HYPFS_MSG_OP_REPLY; followed by out_len bytes. */
struct hypfs_msg_op_reply {
    int64_t ret;            /* the hypercall's return value */
    uint32_t out_len;       /* bytes written to the caller's buffer */
    uint32_t pad;           /* 0 */
};

/*
 * Payload of HYPFS_MSG_CTL: the command's words, each NUL-terminated
 * ("domain-create\0web\0--vcpus\0" "2\0").  The reply payload is a
 * struct hypfs_msg_ctl_reply and its text (output or error message).
 */
struct hypfs_msg_ctl_reply {
    int32_t ret;            /* 0 or a negative errno */
    uint32_t text_len;      /* bytes of text that follow, no NUL */
};

/*
 * Payload of HYPFS_MSG_EVENT (seq 0): the daemon sends one, between
 * replies, when the generation of a watched path moved past the value
 * the watcher knows (XEN_HYPFS_OP_watch).  Events coalesce: one event
 * may stand for many changes, and the last change always has one.
 */
struct hypfs_msg_event {
    uint64_t token;         /* the watch's token, as its caller chose it */
    uint64_t gen;           /* the path's generation, as the caller sees it */
    int32_t status;         /* 0, or -ENOENT: the path is gone for the caller */
    uint32_t pad;           /* 0 */
};

/* Payload of HYPFS_MSG_HELLO_REPLY (HELLO has none). */
struct hypfs_msg_hello_reply {
    int32_t ret;            /* 0, or -EPERM: the domain is gone */
    uint32_t domid;         /* the domain this channel is */
};

/* Layout checks (C11 and C++ alike). */
#ifdef __cplusplus
#define HYPFS_MSG_ASSERT static_assert
#else
#define HYPFS_MSG_ASSERT _Static_assert
#endif
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_hdr) == 16, "hdr size");
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_op) == 48, "op size");
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_op_reply) == 16, "op reply size");
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_ctl_reply) == 8, "ctl reply size");
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_event) == 24, "event size");
HYPFS_MSG_ASSERT(sizeof(struct hypfs_msg_hello_reply) == 8, "hello size");

#undef HYPFS_MSG_ASSERT

#endif /* HYPFS_MSG_H */
