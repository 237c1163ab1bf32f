/*
 * A program written against Xen's xenhypfs.h, using all of it: the six
 * functions, the dirent's fields, the enums and the flag.  The ABI test
 * builds it with Xen's header, and runs it both linked against this
 * project's library and (built against Xen's library) with this project's
 * library swapped in underneath.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenhypfs.h>

int main(int argc, char **argv)
{
    xenhypfs_handle *h = xenhypfs_open(NULL, 0);
    struct xenhypfs_dirent *ent, *de;
    unsigned int n, i;
    char *v;
    void *raw;
    const char *dir = argc > 1 ? argv[1] : "/test/types";

    if (!h) {
        perror("xenhypfs_open");
        return 2;
    }
    ent = xenhypfs_readdir(h, dir, &n);
    if (!ent) {
        perror("xenhypfs_readdir");
        return 3;
    }
    for (i = 0; i < n; i++) {
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", dir, ent[i].name);
        printf("%s type=%u enc=%u size=%zu w=%d", ent[i].name, ent[i].type,
               ent[i].encoding, ent[i].size,
               !!(ent[i].flags & XENHYPFS_FLAG_WRITABLE));
        if (ent[i].type == xenhypfs_type_blob &&
            ent[i].encoding == xenhypfs_enc_plain) {
            raw = xenhypfs_read_raw(h, path, &de);
            printf(" raw=%s/%zu", raw ? de->name : "?", raw ? de->size : 0);
            free(raw);
            free(raw ? de : NULL);
        } else if (ent[i].type != xenhypfs_type_dir) {
            v = xenhypfs_read(h, path);
            printf(" value=%s", v ? v : strerror(errno));
            free(v);
        }
        printf("\n");
    }
    free(ent);
    if (xenhypfs_write(h, "/test/types/u16", "1234") ||
        !(v = xenhypfs_read(h, "/test/types/u16"))) {
        perror("write/read");
        return 3;
    }
    printf("u16 after write: %s\n", v);
    free(v);
    xenhypfs_close(h);
    return 0;
}
