/*
 * Starting and stopping a private hypfsd for a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

const char *program_path(const char *env, const char *fallback)
{
    const char *p = getenv(env);

    return p && *p ? p : fallback;
}

static bool accepting(const char *path)
{
    int fd = hypfs_client_connect_path(path);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

    nanosleep(&ts, NULL);
}

/* Run hypfsd on d->socket (and d->config, if any) and wait until it serves. */
static int spawn(struct daemon *d, const char *const *args)
{
    const char *argv[64];
    int argc = 0, i, status;

    argv[argc++] = program_path("HYPFSD", "src/daemon/hypfsd");
    argv[argc++] = "--socket";
    argv[argc++] = d->socket;
    if (d->config[0]) {
        argv[argc++] = "--config";
        argv[argc++] = d->config;
    }
    for (i = 0; args && args[i] && argc < 62; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;

    d->pid = fork();
    if (d->pid < 0) {
        perror("fork");
        return -1;
    }
    if (!d->pid) {
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    for (i = 0; i < 500; i++) {
        if (accepting(d->socket))
            return 0;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            fprintf(stderr, "hypfsd exited during start-up (status %d)\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            d->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "hypfsd did not start within 5 s\n");
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
    return -1;
}

int daemon_restart(struct daemon *d, const char *const *args)
{
    int status;

    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        waitpid(d->pid, &status, 0);
        d->pid = 0;
    }
    return spawn(d, args);
}

int daemon_start(struct daemon *d, const char *config_text,
                 const char *const *args)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "%s/hypfs-test-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(d->dir)) {
        perror("mkdtemp");
        return -1;
    }
    /* Others must reach the socket in the privilege tests. */
    chmod(d->dir, 0755);
    if (snprintf(d->socket, sizeof(d->socket), "%s/hypfsd.sock", d->dir) >=
        (int)sizeof(d->socket))
        return -1;
    if (config_text) {
        FILE *f;

        if (snprintf(d->config, sizeof(d->config), "%s/hypfsd.conf", d->dir) >=
            (int)sizeof(d->config))
            return -1;
        f = fopen(d->config, "w");
        if (!f || fputs(config_text, f) < 0 || fclose(f)) {
            perror("config");
            return -1;
        }
    }
    return spawn(d, args);
}

static void remove_dir(const char *dir)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) {
        /* Nothing more to do: the directory is temporary. */
    }
}

int daemon_stop(struct daemon *d)
{
    int status, i, ret = -1;

    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (i = 0; i < 1000; i++) {
            if (waitpid(d->pid, &status, WNOHANG) == d->pid)
                break;
            sleep_ms(10);
        }
        if (i == 1000) {
            fprintf(stderr, "hypfsd did not stop within 10 s\n");
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
        } else if (WIFEXITED(status)) {
            ret = WEXITSTATUS(status);
        }
        if (!access(d->socket, F_OK)) {
            fprintf(stderr, "hypfsd left its socket behind\n");
            ret = -1;
        }
    }
    if (d->dir[0])
        remove_dir(d->dir);
    memset(d, 0, sizeof(*d));
    return ret;
}

int create_domains(const char *socket, const char *prefix, unsigned int n)
{
    struct hypfs_client c;
    unsigned int i;
    int ret = 0;

    if (tclient_open(&c, socket))
        return -1;
    for (i = 0; i < n && !ret; i++) {
        char name[96];
        const char *argv[2] = { "domain-create", name };
        const char *text;
        uint32_t len;
        int status;

        snprintf(name, sizeof(name), "name=%s%u", prefix, i);
        if (hypfs_client_ctl(&c, 2, argv, &status, &text, &len) || status) {
            fprintf(stderr, "domain-create %s: %.*s\n", name,
                    status ? (int)len : 0, status ? text : "");
            ret = -1;
        }
    }
    hypfs_client_close(&c);
    return ret;
}

int churn_domains(const char *socket, unsigned int n)
{
    struct hypfs_client c;
    unsigned int i;
    int ret = 0;

    if (tclient_open(&c, socket))
        return -1;
    for (i = 0; i < n && !ret; i++) {
        const char *create[2] = { "domain-create", "name=churn" };
        const char *destroy[2] = { "domain-destroy", NULL };
        char id[32];
        const char *text;
        uint32_t len;
        int status;

        if (hypfs_client_ctl(&c, 2, create, &status, &text, &len) || status ||
            len > 12) {
            ret = -1;
            break;
        }
        snprintf(id, sizeof(id), "id=%.*s", (int)len - 1, text);
        destroy[1] = id;
        if (hypfs_client_ctl(&c, 2, destroy, &status, &text, &len) || status)
            ret = -1;
    }
    hypfs_client_close(&c);
    return ret;
}
