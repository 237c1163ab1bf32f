/*
 * UTF-8 validation, for the tools that must print valid UTF-8 whatever an
 * entry holds (xenhypfs's JSON and dump, hypfs-exporter's labels).
 * Header-only: the tools link different builds of the libraries.
 */
#ifndef HYPFS_UTF8_H
#define HYPFS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Length of the valid UTF-8 sequence at @s (@n > 0 bytes left), or 0 when
 * it is not one: overlong forms, surrogates and code points beyond
 * U+10FFFF are not.
 */
static inline size_t hypfs_utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

#endif /* HYPFS_UTF8_H */
