// The public headers are usable from C++ (an embedder or a tool written in
// C++ includes them as they are): this only has to compile, and link
// against the C libraries.
#include <hypfs/hypfs.h>
#include <hypfs/abi.h>
#include <hypfs/msg.h>
#include <xenhypfs.h>

int main()
{
    struct hypfs *fs = nullptr;

    if (hypfs_new(&fs) || !fs)
        return 1;
    hypfs_free(fs);
    return sizeof(struct hypfs_msg_hdr) == 16 && XEN_HYPFS_VERSION >= 1 ? 0 : 1;
}
