/*
 * Preloaded into hypfsd by the hostile suite: the first
 * $HYPFS_DROP_CTL_REPLIES control replies are never sent; the connection
 * is cut instead, after the command was carried out.  This is the fault
 * "between apply and reply" that a client must not answer by sending the
 * command again.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <hypfs/msg.h>

static atomic_int dropped;

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    static ssize_t (*real)(int, const struct msghdr *, int);
    const char *env = getenv("HYPFS_DROP_CTL_REPLIES");
    struct hypfs_msg_hdr h;

    if (!real)
        real = (ssize_t (*)(int, const struct msghdr *, int))
               dlsym(RTLD_NEXT, "sendmsg");
    if (env && msg->msg_iovlen && msg->msg_iov[0].iov_len >= sizeof(h)) {
        memcpy(&h, msg->msg_iov[0].iov_base, sizeof(h));
        if (h.magic == HYPFS_MSG_MAGIC && h.type == HYPFS_MSG_CTL_REPLY &&
            atomic_fetch_add(&dropped, 1) < atoi(env)) {
            shutdown(fd, SHUT_RDWR);
            errno = EPIPE;
            return -1;
        }
    }
    return real(fd, msg, flags);
}
