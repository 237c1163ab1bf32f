/*
 * The client path as tests like to use it: open on a socket path, and one
 * hypercall whose output lands in a buffer the helper keeps (per thread,
 * valid until the thread's next call), with transport failures apart from
 * the hypercall's own result.
 */
#ifndef HYPFS_TEST_TCLIENT_H
#define HYPFS_TEST_TCLIENT_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "tclient.h"

/* hypfs_client_open() on @path, reconnecting as every tool does. */
static inline int tclient_open(struct hypfs_client *c, const char *path)
{
    struct hypfs_client_opts o = { .socket_path = path };

    return hypfs_client_open(c, &o);
}

/* The buffer goes with its thread (LeakSanitizer sees it otherwise). */
static pthread_key_t tclient_buf_key;
static pthread_once_t tclient_buf_once = PTHREAD_ONCE_INIT;

static inline void tclient_buf_key_init(void)
{
    if (pthread_key_create(&tclient_buf_key, free))
        abort();
}

/*
 * The hypercall @op (cmd, arg1..arg4, and how many bytes of @path and
 * @data the caller's memory holds: path_len, data_len).  0 with *ret its
 * result and *out / *out_len what it wrote to the caller's buffer; or the
 * transport's -errno.
 */
static inline int tclient_op(struct hypfs_client *c,
                             const struct hypfs_msg_op *op, const void *path,
                             const void *data, long *ret, const uint8_t **out,
                             uint32_t *out_len)
{
    static _Thread_local uint8_t *buf;
    static _Thread_local size_t cap;
    struct hypfs_hypercall hc = {
        .cmd = op->cmd, .arg1 = op->arg1, .arg2 = op->arg2,
        .arg3 = op->arg3, .arg4 = op->arg4,
        .path = path, .path_len = op->path_len,
        .data = data, .data_len = op->data_len,
    };
    size_t need = op->arg4 < HYPFS_MSG_REPLY_MAX ? (size_t)op->arg4
                                                 : HYPFS_MSG_REPLY_MAX;
    bool failed;
    long r;

    *ret = 0;
    *out = NULL;
    *out_len = 0;
    if (need > cap) {
        uint8_t *b = realloc(buf, need);

        if (!b)
            return -ENOMEM;
        buf = b;
        cap = need;
        pthread_once(&tclient_buf_once, tclient_buf_key_init);
        pthread_setspecific(tclient_buf_key, buf);
    }
    if (cap)
        memset(buf, 0, need);
    r = hypfs_client_hypercall(c, &hc, hypfs_client_sink_buffer, buf, &failed);
    if (failed)
        return (int)r;
    *ret = r;
    *out = buf;
    *out_len = c->out_len;
    return 0;
}

#endif
