/*
 * Forced into a test-only build of hypfsd's and libxenhypfs's sources
 * (-include): every allocation they make goes through a counter that can
 * make the Nth one fail (failmalloc.c).  Nothing else changes.
 */
#ifndef HYPFS_FAILMALLOC_H
#define HYPFS_FAILMALLOC_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *fm_malloc(size_t size);
void *fm_calloc(size_t n, size_t size);
void *fm_realloc(void *p, size_t size);
char *fm_strdup(const char *s);
int fm_asprintf(char **out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fm_vasprintf(char **out, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
FILE *fm_open_memstream(char **buf, size_t *len);

/* failmalloc.c itself calls the real ones. */
#ifndef FAILMALLOC_IMPL
#undef strdup
#define malloc fm_malloc
#define calloc fm_calloc
#define realloc fm_realloc
#define strdup fm_strdup
#define asprintf fm_asprintf
#define vasprintf fm_vasprintf
#define open_memstream fm_open_memstream
#endif

#endif
