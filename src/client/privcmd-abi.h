/*
 * Linux's privcmd interface (include/uapi/xen/privcmd.h), the part hypfs
 * uses: the hypercall ioctl.  One definition for libxenhypfs, which makes
 * real hypercalls through it, and for the LD_PRELOAD emulation, which
 * answers them.
 */
#ifndef HYPFS_PRIVCMD_ABI_H
#define HYPFS_PRIVCMD_ABI_H

#include <stdint.h>
#include <sys/ioctl.h>

struct privcmd_hypercall {
    uint64_t op;
    uint64_t arg[5];
};

#define IOCTL_PRIVCMD_HYPERCALL \
    _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

/* Where a Xen control domain has the device. */
#define PRIVCMD_PATH            "/dev/xen/privcmd"
#define PRIVCMD_PATH_OLD        "/proc/xen/privcmd"

_Static_assert(sizeof(struct privcmd_hypercall) == 48, "privcmd_hypercall");
_Static_assert(IOCTL_PRIVCMD_HYPERCALL == 0x305000, "IOCTL_PRIVCMD_HYPERCALL");

#endif /* HYPFS_PRIVCMD_ABI_H */
