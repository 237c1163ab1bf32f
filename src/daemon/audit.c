/*
 * The audit trail: every change made through hypfsd, logged once.
 *
 * A successful write says who (uid, domain), what (the path) and the
 * value before and after; a successful control command says who and the
 * command's words.  Failures are logged at debug level only (a guest
 * trying what it may not is not news, and must not be able to fill the
 * log).  Values are bounded (AUDIT_VALUE_MAX bytes shown) and escaped, so
 * a line is one line whatever an entry holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hypfsd.h"

#define AUDIT_VALUE_MAX 128

/* @n bytes escaped into @out (@cap bytes), "..." when cut. */
static void escape(char *out, size_t cap, const unsigned char *s, size_t n)
{
    size_t o = 0, i;

    for (i = 0; i < n && i < AUDIT_VALUE_MAX && o + 5 < cap; i++) {
        unsigned char c = s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f)
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    if (i < n && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

void audit_value(struct hypfs *fs, const char *path, char *out, size_t cap)
{
    static const struct hypfs_caller control = {
        .domid = 0, .flags = HYPFS_CALLER_HYPFS | HYPFS_CALLER_CONTROL,
        .mem = &hypfs_local_mem,
    };
    struct xen_hypfs_direntry e;
    unsigned char buf[sizeof(e) + AUDIT_VALUE_MAX + 16];
    const unsigned char *v = buf + sizeof(e);
    long ret;

    snprintf(out, cap, "?");
    ret = hypfs_do_op(fs, &control, XEN_HYPFS_OP_read, (uintptr_t)path,
                      strlen(path) + 1, (uintptr_t)buf, sizeof(buf));
    if (ret && ret != -ENOBUFS)
        return;
    memcpy(&e, buf, sizeof(e));
    if (ret == -ENOBUFS) {
        snprintf(out, cap, "<%" PRIu32 " bytes>", e.content_len);
        return;
    }
    if (e.encoding != XEN_HYPFS_ENC_PLAIN) {
        snprintf(out, cap, "<gzip, %" PRIu32 " bytes>", e.content_len);
        return;
    }
    switch (e.type) {
    case XEN_HYPFS_TYPE_UINT:
    case XEN_HYPFS_TYPE_BOOL:
    case XEN_HYPFS_TYPE_INT: {
        bool sign = e.type == XEN_HYPFS_TYPE_INT;
        uint64_t u = 0;
        int64_t s;

        if (e.content_len == 0 || e.content_len > 8)
            return;
        memcpy(&u, v, e.content_len);       /* little-endian hosts */
        s = (int64_t)(u << (64 - 8 * e.content_len)) >>
            (64 - 8 * e.content_len);
        if (sign)
            snprintf(out, cap, "%" PRId64, s);
        else
            snprintf(out, cap, "%" PRIu64, u);
        return;
    }
    case XEN_HYPFS_TYPE_STRING: {
        char esc[AUDIT_VALUE_MAX * 4 + 8];

        escape(esc, sizeof(esc), v, strnlen((const char *)v, e.content_len));
        snprintf(out, cap, "\"%s\"", esc);
        return;
    }
    default: {
        char esc[AUDIT_VALUE_MAX * 4 + 8];

        escape(esc, sizeof(esc), v, e.content_len);
        snprintf(out, cap, "<blob \"%s\">", esc);
        return;
    }
    }
}

void audit_write(const struct hypfs_caller *c, uid_t uid, const char *path,
                 const char *before, const char *after, long ret)
{
    char p[XEN_HYPFS_MAX_PATHLEN * 4 + 8];

    escape(p, sizeof(p), (const unsigned char *)path, strlen(path));
    /* A guest's channel: the VMM's uid says nothing about who wrote. */
    if (uid == AUDIT_UID_CHANNEL && ret)
        log_debug("audit: write %s by domain %u's guest (its channel) "
                  "refused: %s", p, (unsigned int)c->domid,
                  strerror((int)-ret));
    else if (uid == AUDIT_UID_CHANNEL)
        log_notice("audit: write %s by domain %u's guest (its channel): "
                   "%s -> %s", p, (unsigned int)c->domid, before, after);
    else if (ret)
        log_debug("audit: write %s by uid %u (domain %u) refused: %s", p,
                  (unsigned int)uid, (unsigned int)c->domid,
                  strerror((int)-ret));
    else
        log_notice("audit: write %s by uid %u (domain %u): %s -> %s", p,
                   (unsigned int)uid, (unsigned int)c->domid, before, after);
}

void audit_ctl(uid_t uid, int argc, const char *const *argv, int status)
{
    char words[1024], esc[AUDIT_VALUE_MAX * 4 + 8];
    size_t o = 0;
    int i;

    words[0] = '\0';
    for (i = 0; i < argc && o + 2 < sizeof(words); i++) {
        escape(esc, sizeof(esc), (const unsigned char *)argv[i],
               strlen(argv[i]));
        o += (size_t)snprintf(words + o, sizeof(words) - o, "%s%s",
                              i ? " " : "", esc);
    }
    if (o >= sizeof(words))
        o = sizeof(words) - 1;
    /* Only what changes something. */
    if (!argc || strstr(argv[0], "-list") || !strcmp(argv[0], "stats") ||
        !strcmp(argv[0], "domain-channel"))
        return;
    if (status)
        log_debug("audit: control '%s' by uid %u failed: %s", words,
                  (unsigned int)uid, strerror(-status));
    else
        log_notice("audit: control '%s' by uid %u", words,
                   (unsigned int)uid);
}
