/*
 * Who is calling: the mapping from a peer's user id, which the kernel
 * reports for the socket (SO_PEERCRED) and the peer cannot forge, to the
 * domain it acts as.
 *
 * Without a configuration, root and the user running hypfsd are domain 0,
 * the control domain; everyone else is unmapped and has no hypfs right.
 * A mapping to a domain that does not exist (yet) gives no right either:
 * in a hypervisor every caller is a live domain.  The configuration is
 * read at start and again on SIGHUP (a bad file keeps the old mapping).
 * The same file sets how many connections one user may hold; root and the
 * user running hypfsd are not limited (only by the total).
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hypfsd.h"

#define LIMIT_PER_UID_DEFAULT  32u

struct mapping {
    uid_t uid;
    uint32_t domid;
};

struct table {
    struct mapping *map;
    size_t n;
    unsigned int limit_per_uid;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct table current;

static int table_add(struct table *t, uid_t uid, uint32_t domid)
{
    struct mapping *m;
    size_t i;

    for (i = 0; i < t->n; i++)
        if (t->map[i].uid == uid) {
            t->map[i].domid = domid;    /* the last word wins */
            return 0;
        }
    m = realloc(t->map, (t->n + 1) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    t->map = m;
    t->map[t->n].uid = uid;
    t->map[t->n].domid = domid;
    t->n++;
    return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno || *end || *out > max ? -1 : 0;
}

static int parse_user(const char *s, uid_t *uid)
{
    unsigned long v;
    struct passwd *pw;

    if (!parse_uint(s, (uid_t)-2, &v)) {
        *uid = (uid_t)v;
        return 0;
    }
    pw = getpwnam(s);
    if (!pw)
        return -1;
    *uid = pw->pw_uid;
    return 0;
}

static int load_file(const char *path, struct table *t)
{
    char line[512];
    FILE *f = fopen(path, "re");
    unsigned int lineno = 0;
    int ret = 0;

    if (!f) {
        log_err("cannot read configuration %s: %s", path, strerror(errno));
        return -1;
    }
    while (!ret && fgets(line, sizeof(line), f)) {
        char *words[4], *save = NULL, *w;
        int n = 0;
        unsigned long v;
        uid_t uid;

        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            log_err("%s:%u: line too long", path, lineno);
            ret = -1;
            break;
        }
        if (strchr(line, '#'))
            *strchr(line, '#') = '\0';
        for (w = strtok_r(line, " \t\r\n", &save); w && n < 4;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (!n)
            continue;
        if (!strcmp(words[0], "map") && n == 3) {
            if (parse_user(words[1], &uid)) {
                log_err("%s:%u: unknown user '%s'", path, lineno, words[1]);
                ret = -1;
            } else if (parse_uint(words[2], 32751, &v)) {
                log_err("%s:%u: '%s' is not a domain id (0-32751)", path,
                        lineno, words[2]);
                ret = -1;
            } else if (table_add(t, uid, (uint32_t)v)) {
                log_err("out of memory");
                ret = -1;
            }
        } else if (!strcmp(words[0], "limit-per-uid") && n == 2) {
            if (parse_uint(words[1], 4096, &v) || !v) {
                log_err("%s:%u: limit-per-uid needs a number from 1 to 4096",
                        path, lineno);
                ret = -1;
            } else
                t->limit_per_uid = (unsigned int)v;
        } else {
            log_err("%s:%u: expected 'map USER DOMID' or 'limit-per-uid N'",
                    path, lineno);
            ret = -1;
        }
    }
    fclose(f);
    return ret;
}

int callers_load(const char *path)
{
    struct table t = { NULL, 0, LIMIT_PER_UID_DEFAULT };

    /* Defaults first, so that the file can override them. */
    if (table_add(&t, 0, 0) || (getuid() && table_add(&t, getuid(), 0)) ||
        (path && load_file(path, &t))) {
        free(t.map);
        return -1;
    }
    pthread_mutex_lock(&lock);
    free(current.map);
    current = t;
    pthread_mutex_unlock(&lock);
    log_debug("caller mapping: %zu entries, %u connections per user",
              t.n, t.limit_per_uid);
    return 0;
}

void callers_identify(uid_t uid, uint32_t *domid, unsigned int *flags)
{
    bool mapped = false;
    size_t i;

    pthread_mutex_lock(&lock);
    for (i = 0; i < current.n; i++)
        if (current.map[i].uid == uid) {
            *domid = current.map[i].domid;
            mapped = true;
            break;
        }
    pthread_mutex_unlock(&lock);
    *flags = 0;
    if (!mapped) {
        *domid = UINT32_MAX;
        return;
    }
    if (model_domain_exists(*domid))
        *flags = HYPFS_CALLER_HYPFS | (*domid ? 0 : HYPFS_CALLER_CONTROL);
}

unsigned int callers_limit_per_uid(void)
{
    unsigned int n;

    pthread_mutex_lock(&lock);
    n = current.limit_per_uid ? current.limit_per_uid : LIMIT_PER_UID_DEFAULT;
    pthread_mutex_unlock(&lock);
    return n;
}

void callers_free(void)
{
    pthread_mutex_lock(&lock);
    free(current.map);
    memset(&current, 0, sizeof(current));
    pthread_mutex_unlock(&lock);
}
