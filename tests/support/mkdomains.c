/*
 * hypfs-test-mkdomains SOCKET N [PREFIX]: create N domains in the hypfsd at
 * SOCKET, for tests that need a large tree.
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SOCKET N [PREFIX]\n", argv[0]);
        return 1;
    }
    return create_domains(argv[1], argc > 3 ? argv[3] : "dom",
                          (unsigned int)strtoul(argv[2], NULL, 10)) ? 1 : 0;
}
