/*
 * hypfs-test-mkdomains SOCKET N [PREFIX]: create N domains in the hypfsd at
 * SOCKET, for tests that need a large tree.
 * hypfs-test-mkdomains SOCKET N --churn: create and destroy N domains, one
 * after the other, to move the daemon's next domain id on (round the
 * wrap, for tests of recycled ids).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

int main(int argc, char **argv)
{
    unsigned int n;

    if (argc < 3) {
        fprintf(stderr, "usage: %s SOCKET N [PREFIX | --churn]\n", argv[0]);
        return 1;
    }
    n = (unsigned int)strtoul(argv[2], NULL, 10);
    if (argc > 3 && !strcmp(argv[3], "--churn"))
        return churn_domains(argv[1], n) ? 1 : 0;
    return create_domains(argv[1], argc > 3 ? argv[3] : "dom", n) ? 1 : 0;
}
