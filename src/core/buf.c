/*
 * Content rendering for read callbacks (struct hypfs_buf), and gzip.
 *
 * A read callback renders the whole value into a hypfs_buf once per
 * operation; the dispatcher takes content_len from it and copies it out, so
 * a computed value can never change between "how big" and "what".  Values
 * up to the inline size need no allocation.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core-internal.h"

void buf_reset(struct hypfs_buf *buf)
{
    buf->len = 0;
}

static int buf_reserve(struct hypfs_buf *buf, size_t more)
{
    size_t need, cap;
    char *data;

    if ( more > HYPFS_CONTENT_MAX - buf->len )
        return -EFBIG;
    need = buf->len + more;
    if ( need <= buf->cap )
        return 0;
    cap = buf->cap * 2;
    if ( cap < need )
        cap = need;
    if ( cap > HYPFS_CONTENT_MAX )
        cap = HYPFS_CONTENT_MAX;
    if ( buf->data == buf->small )
    {
        data = core_malloc(cap);
        if ( data )
            memcpy(data, buf->small, buf->len);
    }
    else
        data = core_realloc(buf->data, cap);
    if ( !data )
        return -ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int hypfs_buf_put(struct hypfs_buf *buf, const void *data, size_t len)
{
    int ret;

    LOCK_ASSERT(core_lock_state != UNLOCKED,
                "hypfs_buf_*() outside a read callback");
    ret = buf_reserve(buf, len);

    if ( ret )
        return ret;
    if ( len )
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

int hypfs_buf_put_string(struct hypfs_buf *buf, const char *str)
{
    return hypfs_buf_put(buf, str, strlen(str) + 1);
}

int hypfs_buf_printf(struct hypfs_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int n, ret;

    LOCK_ASSERT(core_lock_state != UNLOCKED,
                "hypfs_buf_*() outside a read callback");
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if ( n < 0 )
        return -EINVAL;
    ret = buf_reserve(buf, (size_t)n + 1);
    if ( ret )
        return ret;
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n + 1;
    return 0;
}

int hypfs_buf_put_num(struct hypfs_buf *buf, const struct hypfs_entry *entry,
                      uint64_t val)
{
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
    } v;

    switch ( entry->size )
    {
    case 1: v.u8 = (uint8_t)val; break;
    case 2: v.u16 = (uint16_t)val; break;
    case 4: v.u32 = (uint32_t)val; break;
    case 8: v.u64 = val; break;
    default: return -EINVAL;
    }
    return hypfs_buf_put(buf, &v, entry->size);
}

int core_gzip(const void *data, size_t len, void **out, size_t *out_len)
{
    z_stream z;
    uLong bound;
    unsigned char *dst;
    int ret;

    memset(&z, 0, sizeof(z));
    /* 15 + 16: a gzip header and trailer, as Xen's tools expect to inflate. */
    if ( deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                      Z_DEFAULT_STRATEGY) != Z_OK )
        return -ENOMEM;
    if ( len > UINT32_MAX )
    {
        deflateEnd(&z);
        return -E2BIG;
    }
    bound = deflateBound(&z, (uLong)len);
    dst = core_malloc(bound);
    if ( !dst )
    {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = dst;
    z.avail_out = (uInt)bound;
    ret = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if ( ret != Z_STREAM_END )
    {
        core_free(dst);
        return -EIO;
    }
    *out = dst;
    *out_len = z.total_out;
    return 0;
}
