/*
 * hypfsd: the reference hypervisor.  It owns a hypfs tree and the state
 * the tree reports, and serves the hypfs_op hypercall to local callers
 * over a Unix socket (see hypfsd(8), docs/protocol.md, docs/paths.md).
 *
 * Start-up order: options, the model (CPUs, pool 0, domain 0), the boot
 * command line (a bad value stops here), the caller mapping, the tree,
 * then the socket.  It needs no configuration and runs in the foreground.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buildinfo.h"
#include "changeset.h"
#include "hypfsd.h"

#define DEFAULT_CONFIG  "/etc/hypfs/hypfsd.conf"

static void usage(FILE *f)
{
    fprintf(f,
"usage: hypfsd [options]\n"
"\n"
"The reference hypervisor: serves the hypervisor filesystem (hypfs) to local\n"
"callers over a Unix socket.  Runs in the foreground; SIGTERM or SIGINT stop\n"
"it, SIGHUP reloads the configuration.\n"
"\n"
"  -s, --socket PATH       socket to serve (default %s,\n"
"                          or $%s)\n"
"  -c, --config FILE       caller mapping (default %s if present)\n"
"  -C, --cmdline STRING    boot parameters, Xen-style:\n"
"                          \"loglvl=all gnttab_max_frames=64 no-sync_console\"\n"
"  -m, --max-clients N     connections of domains other than the control\n"
"                          domain served at once (default 256)\n"
"      --max-control-clients N\n"
"                          connections of the control domain (default 256),\n"
"                          which no other caller can take\n"
"      --max-pending N     unmapped peers awaiting their refusal (default 64)\n"
"      --idle-timeout SECONDS\n"
"                          close other domains' connections idle this long\n"
"                          (default 60; 0: never)\n"
"      --guest-buffer BYTES\n"
"                          what each domain but the control domain may make\n"
"                          hypfsd hold: its watches, requests, replies\n"
"                          (default 4194304)\n"
"      --max-watches N     watches one connection may have (default 65536)\n"
"      --channel-group GROUP\n"
"                          guests' channels (domain-create --channel) may be\n"
"                          connected to by this group too (the VMM's), not\n"
"                          only by hypfsd's user and root\n"
"  -T, --test-tree         add /test/: every type and encoding, writable\n"
"                          entries, odd names (for testing tools)\n"
"  -v, --verbose           log every connection (debug)\n"
"  -q, --quiet             log warnings and errors only\n"
"  -V, --version           print the version and exit\n"
"  -h, --help              print this help and exit\n",
            HYPFS_DEFAULT_SOCKET, HYPFS_SOCKET_ENV, DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "cmdline", required_argument, NULL, 'C' },
        { "max-clients", required_argument, NULL, 'm' },
        { "max-control-clients", required_argument, NULL, 1 },
        { "max-pending", required_argument, NULL, 2 },
        { "idle-timeout", required_argument, NULL, 3 },
        { "guest-buffer", required_argument, NULL, 4 },
        { "max-watches", required_argument, NULL, 5 },
        { "channel-group", required_argument, NULL, 6 },
        { "test-tree", no_argument, NULL, 'T' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct server_opts opts = SERVER_OPTS_DEFAULT;
    const char *config = NULL, *cmdline = NULL;
    bool test_tree = false;
    struct hypfs *fs;
    char err[256];
    int opt, ret;

    while ((opt = getopt_long(argc, argv, "s:c:C:m:TvqVh", longopts, NULL)) != -1) {
        char *end;
        unsigned long n;

        switch (opt) {
        case 's':
            opts.socket_path = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'C':
            cmdline = optarg;
            break;
        case 'm':
        case 1:
        case 2:
        case 3:
        case 4:
        case 5: {
            static const struct {
                const char *name;
                unsigned long min, max;
            } lim[] = {
                ['m'] = { "--max-clients", 1, 65536 },
                [1] = { "--max-control-clients", 1, 65536 },
                [2] = { "--max-pending", 1, 65536 },
                [3] = { "--idle-timeout", 0, 86400 },
                [4] = { "--guest-buffer", 1u << 21, 1u << 30 },
                [5] = { "--max-watches", 1, 1000000 },
            };

            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (!*optarg || *end || errno || n < lim[opt].min ||
                n > lim[opt].max) {
                fprintf(stderr, "hypfsd: error: %s needs a number from %lu "
                        "to %lu\n", lim[opt].name, lim[opt].min, lim[opt].max);
                return 1;
            }
            if (opt == 'm')
                opts.max_clients = (unsigned int)n;
            else if (opt == 1)
                opts.max_control = (unsigned int)n;
            else if (opt == 2)
                opts.max_pending = (unsigned int)n;
            else if (opt == 3)
                opts.idle_timeout_s = (unsigned int)n;
            else if (opt == 4)
                opts.guest_buffer_max = n;
            else
                opts.max_watches = (unsigned int)n;
            break;
        }
        case 6: {
            struct group *g = getgrnam(optarg);

            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (g)
                opts.channel_gid = g->gr_gid;
            else if (*optarg && !*end && !errno && n < (gid_t)-1)
                opts.channel_gid = (gid_t)n;
            else {
                fprintf(stderr, "hypfsd: error: --channel-group: no group "
                        "'%s'\n", optarg);
                return 1;
            }
            break;
        }
        case 'T':
            test_tree = true;
            break;
        case 'v':
            log_threshold = L_DEBUG;
            break;
        case 'q':
            log_threshold = L_WARNING;
            break;
        case 'V':
            /* Every hypfs tool's first line: NAME (hypfs) VERSION. */
            printf("hypfsd (hypfs) %s\nchangeset %s\n", HYPFS_VERSION_STRING,
                   HYPFS_CHANGESET);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hypfsd: error: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return 1;
    }
    opts.socket_path = hypfs_msg_socket_path(opts.socket_path);
    if (!config && !access(DEFAULT_CONFIG, F_OK))
        config = DEFAULT_CONFIG;

    if (model_init()) {
        log_err("out of memory");
        return 1;
    }
    params_reset();
    if (cmdline && params_cmdline(cmdline, err, sizeof(err))) {
        log_err("bad boot parameter: %s", err);
        model_fini();
        return 1;
    }
    if (callers_load(config)) {
        model_fini();
        return 1;
    }
    if (hypfs_new(&fs) || fstree_build(fs) || (test_tree && fstree_add_test(fs))) {
        log_err("cannot build the filesystem: out of memory");
        model_fini();
        return 1;
    }

    ret = server_run(fs, &opts, config);
    if (ret > 0) {
        /* Threads still hold the tree: leave it to the process exit. */
        return 1;
    }
    hypfs_free(fs);
    model_fini();
    callers_free();
    return ret ? 1 : 0;
}
