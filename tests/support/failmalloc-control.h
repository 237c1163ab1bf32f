/* Controls of the allocation counter (failmalloc.c), for tests. */
#ifndef HYPFS_FAILMALLOC_CONTROL_H
#define HYPFS_FAILMALLOC_CONTROL_H

#include <stdbool.h>

/* The Nth allocation from now fails with ENOMEM; 0: none does. */
void fm_arm(unsigned int n);
/* Allocations made since fm_arm(). */
unsigned int fm_count(void);
/* Was the armed failure reached? */
bool fm_failed(void);
/* Allocations of the calling thread neither count nor fail (while @on). */
void fm_exempt_thread(bool on);

#endif
