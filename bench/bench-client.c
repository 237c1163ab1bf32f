/*
 * bench-client: what the toolstack sees.
 *
 *   tree_100k   wall time of `xenhypfs tree` over a tree of over 100,000
 *               entries (14,300 domains of 7 entries), output discarded;
 *   lib read    p50 of xenhypfs_read() of a 4-byte leaf, in-process;
 *   channel     p50 of the same hypercall sent raw through the channel,
 *               measured interleaved with the library's, so that the
 *               difference is the library's own cost (client and daemon
 *               on one CPU: see pin() in bench-util.h).
 *
 * Run by hand: build/bench/bench-client [--quick].  hypfsd and xenhypfs are
 * taken from $HYPFSD / $XENHYPFS or the build tree around this program.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenhypfs.h>

#include "bench-util.h"
#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define LEAF "/params/gnttab_max_frames"
#define DOMAINS 14300u

int main(int argc, char **argv)
{
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    int rounds = quick ? 3 : 5, n = quick ? 5000 : 20000, i, j, r;
    const char *args[] = { "-q", NULL };
    const char *xenhypfs;
    double tree[5], *tl, *tc;
    struct daemon d;
    struct hypfs_client c;
    xenhypfs_handle *h;
    unsigned int lines = 0;

    setenv("HYPFSD", sibling_program(argv[0], "../src/daemon/hypfsd"), 0);
    xenhypfs = program_path("XENHYPFS",
                            strdup(sibling_program(argv[0], "../src/cli/xenhypfs")));
    if (daemon_start(&d, NULL, args))
        return 1;
    if (create_domains(d.socket, "bench-domain-", DOMAINS))
        return 1;
    setenv("HYPFS_SOCKET", d.socket, 1);
    setenv("HYPFS_TRANSPORT", "socket", 1);

    /* Count what tree prints, once, to report it. */
    {
        char cmd[8192];
        FILE *p;
        int ch;

        snprintf(cmd, sizeof(cmd), "HYPFS_SOCKET='%s' '%s' tree", d.socket,
                 xenhypfs);
        p = popen(cmd, "r");
        while (p && (ch = fgetc(p)) != EOF)
            lines += ch == '\n';
        if (p)
            pclose(p);
    }
    for (r = 0; r < rounds; r++) {
        const char *tree_argv[] = { xenhypfs, "tree", NULL };

        tree[r] = run_quiet(tree_argv) / 1e6;   /* HYPFS_SOCKET set above */
    }

    pin(0, 0);
    pin(d.pid, 0);
    h = xenhypfs_open(NULL, 0);
    tl = malloc((size_t)n * sizeof(*tl));
    tc = malloc((size_t)n * sizeof(*tc));
    if (!h || !tl || !tc || tclient_open(&c, d.socket))
        return 1;
    for (i = 0; i < n; i += 250) {
        for (j = i; j < n && j < i + 250; j++) {
            double t0 = now_us();
            char *v = xenhypfs_read(h, LEAF);

            tl[j] = now_us() - t0;
            if (!v)
                return 1;
            free(v);
        }
        for (j = i; j < n && j < i + 250; j++) {
            struct hypfs_msg_op op = {
                .cmd = XEN_HYPFS_OP_read, .arg1 = 0x1000,
                .arg2 = sizeof(LEAF), .arg3 = 0x100000, .arg4 = 4096,
                .path_len = sizeof(LEAF),
            };
            const uint8_t *out;
            uint32_t out_len;
            long ret;
            double t0 = now_us();

            if (tclient_op(&c, &op, LEAF, NULL, &ret, &out, &out_len) || ret)
                return 1;
            tc[j] = now_us() - t0;
        }
    }
    hypfs_client_close(&c);
    xenhypfs_close(h);
    daemon_stop(&d);

    printf("xenhypfs tree over %u entries: %.3f s (median of %d)\n", lines,
           median(tree, rounds), rounds);
    printf("xenhypfs_read() p50 %.2f us, raw channel p50 %.2f us (%.2fx)\n",
           percentile(tl, n, 50), percentile(tc, n, 50),
           percentile(tl, n, 50) / percentile(tc, n, 50));
    printf("RESULT tree_100k_s=%.3f lib_read_p50_us=%.2f channel_p50_us=%.2f "
           "tree_entries=%u\n", median(tree, rounds), percentile(tl, n, 50),
           percentile(tc, n, 50), lines);
    return 0;
}
