/*
 * Tests' own hypfsd: started in a fresh temporary directory with its own
 * socket (and configuration), stopped with SIGTERM, and checked to have
 * stopped cleanly and removed its socket.
 */
#ifndef HYPFS_TEST_DAEMON_H
#define HYPFS_TEST_DAEMON_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct daemon {
    pid_t pid;
    char dir[PATH_MAX];
    char socket[PATH_MAX];
    char config[PATH_MAX];
};

/*
 * Start hypfsd ($HYPFSD, else the build tree's) with @config_text as its
 * configuration (NULL: none) and @args (NULL-terminated, may be NULL).
 * Waits until it accepts connections.  0, or -1 with a message on stderr.
 */
int daemon_start(struct daemon *d, const char *config_text,
                 const char *const *args);

/*
 * Stop it with SIGTERM.  Returns its exit status (0 when clean), or -1 if
 * it had to be killed or left its socket behind.  Removes the directory.
 */
int daemon_stop(struct daemon *d);

/*
 * Stop it (SIGTERM) and start it again on the same socket and
 * configuration, with @args.  0, or -1 with a message on stderr.
 */
int daemon_restart(struct daemon *d, const char *const *args);

/* Path of a built program: $NAME if set, else @fallback. */
const char *program_path(const char *env, const char *fallback);

/*
 * Create @n domains named @prefix<i> through hypfsd at @socket over one
 * control connection (much faster than n hypfsctl runs).  0 or -1.
 */
int create_domains(const char *socket, const char *prefix, unsigned int n);

/* Create and destroy @n domains, one after the other.  0 or -1. */
int churn_domains(const char *socket, unsigned int n);

#endif
