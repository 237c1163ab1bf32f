/*
 * hypfs-exporter: the hypervisor filesystem as Prometheus metrics.
 *
 * Serves /metrics over HTTP (libmicrohttpd).  Each scrape reads the tree
 * through libxenhypfs, as the exporter's own user: it sees what that
 * user's domain sees, and writes nothing.  With interface version 2 one
 * subtree read per --include path is the whole scrape (a consistent
 * snapshot); with version 1 it walks entry by entry.
 *
 * One thread, the main one, runs libmicrohttpd's epoll loop, scrapes in
 * it and waits for signals in it: scrapes are short and one at a time, and
 * no client can hold the loop (requests are bounded in size by
 * libmicrohttpd, in time and number by guard.c).  The handle is kept
 * between scrapes; when the hypervisor cannot be read the scrape says
 * hypfs_up 0 and the next one opens a new handle.
 */
#include <errno.h>
#include <malloc.h>
#include <pwd.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <zlib.h>

#include "guard.h"
#include "webconfig.h"
#include "metrics.h"
#include "xenhypfs-ext.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int unset, const char *state)
{
    (void)unset;
    (void)state;
    return 0;
}
#endif

/* Outside the exporters' range 9100-9999 (all allocated): see the man page. */
#define DEFAULT_PORT        "10155"
#define REQUEST_MEMORY      (32 * 1024)     /* a request's headers, at most */

struct options {
    const char *listen;
    const char *socket;
    const char *path;
    const char **include;
    size_t ninclude;
    const char **exclude;
    size_t nexclude;
    const char *web_config;             /* --web.config.file */
    const char **guest_values;          /* --guest-value */
    size_t nguest_values;
    size_t max_value_len;
    bool walk;                  /* $XENHYPFS_V1: the v1 walk, always */
    enum xenhypfs_transport transport;  /* --socket, $HYPFS_TRANSPORT */
    struct guard_opts guard;
    unsigned int idle_timeout_s;        /* no progress at all */
};

static struct options opts = {
    .listen = ":" DEFAULT_PORT,
    .path = "/metrics",
    .max_value_len = 256,
    .guard = {
        .max_connections = 64,
        .max_per_ip = 16,
        .header_timeout_s = 5,
        .request_timeout_s = 30,
    },
    .idle_timeout_s = 10,
};

static xenhypfs_handle *hdl;
static struct web_config web;
static bool last_up = true;             /* to log changes only */
static unsigned long long errors_total;

static void help(void)
{
    printf(
"usage: hypfs-exporter [options]\n"
"\n"
"Serves the hypervisor filesystem as Prometheus metrics over HTTP.\n"
"\n"
"  -l, --listen [HOST]:PORT  where to listen (default :" DEFAULT_PORT ",\n"
"                            every address; 127.0.0.1:0 picks a free port);\n"
"                            also --web.listen-address, as Prometheus's\n"
"                            exporters call it\n"
"  -s, --socket PATH         hypfsd's socket (default $HYPFS_SOCKET, else\n"
"                            /run/hypfs/hypfsd.sock; privcmd under Xen)\n"
"      --include PATH        export this subtree (repeatable; default /)\n"
"      --exclude PATH        leave this subtree out (repeatable)\n"
"      --max-value-length N  strings longer than this are exported as a\n"
"                            CRC-32 (default 256)\n"
"      --guest-value WORD    a value a guest may write (guest-status) that\n"
"                            is exported as itself; others are \"other\"\n"
"                            (repeatable; default none but \"\")\n"
"      --telemetry-path PATH the metrics' URL path (default /metrics; also\n"
"                            --web.telemetry-path)\n"
"      --web.config.file FILE  TLS and basic authentication, in the format\n"
"                            of Prometheus's exporter-toolkit\n"
"      --max-connections N   connections open at once (default 64); one\n"
"                            more closes the one waiting longest\n"
"      --max-connections-per-ip N\n"
"                            the same, from one address (default 16)\n"
"      --header-timeout S    seconds a connection may take to send its\n"
"                            request (default 5)\n"
"      --idle-timeout S      seconds a connection may make no progress\n"
"                            (default 10)\n"
"      --request-timeout S   seconds an answer may take to be taken\n"
"                            (default 30)\n"
"  -V, --version             print the version and exit\n"
"  -h, --help                print this help and exit\n");
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Reading the tree ---- */

/* Did the last failed call fail for want of a path, not of a hypervisor? */
static bool path_missing(void)
{
    const char *te = xenhypfs_transport_error(hdl);

    return errno == ENOENT && !(te && *te);
}

/* The v1 walk's result, in xenhypfs_read_tree()'s form. */
struct walk {
    struct xenhypfs_tree_entry *e;
    unsigned int n, cap;
    int err;
};

static void walk_free(struct walk *w)
{
    unsigned int i;

    for (i = 0; i < w->n; i++) {
        free((void *)w->e[i].dirent.name);
        free((void *)w->e[i].content);
    }
    free(w->e);
}

static int walk_add(struct walk *w, const char *rel,
                    const struct xenhypfs_dirent *d, void *content,
                    unsigned int depth)
{
    struct xenhypfs_tree_entry *t;

    if (w->n == w->cap) {
        unsigned int cap = w->cap ? w->cap * 2 : 256;

        t = realloc(w->e, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        w->e = t;
        w->cap = cap;
    }
    t = &w->e[w->n];
    memset(t, 0, sizeof(*t));
    t->dirent = *d;
    t->dirent.name = strdup(rel);
    if (!t->dirent.name)
        return -ENOMEM;
    t->content = content;
    t->depth = depth;
    w->n++;
    return 0;
}

/* Everything below @path (@rel relative to the walk's top). */
static int walk_dir(struct walk *w, const char *path, const char *rel,
                    unsigned int depth)
{
    struct xenhypfs_dirent *ents;
    unsigned int n, i;
    int ret = 0;

    if (depth > 64)
        return -ELOOP;
    ents = xenhypfs_readdir(hdl, path, &n);
    if (!ents)
        return path_missing() || errno == EACCES ? 0 : -errno;
    for (i = 0; i < n && !ret; i++) {
        char *cpath = NULL, *crel = NULL;

        if (asprintf(&cpath, "%s%s%s", path, strcmp(path, "/") ? "/" : "",
                     ents[i].name) < 0)
            cpath = NULL;
        if (asprintf(&crel, "%s%s%s", rel, *rel ? "/" : "", ents[i].name) < 0)
            crel = NULL;
        if (!cpath || !crel)
            ret = -ENOMEM;
        else if (ents[i].type == xenhypfs_type_dir) {
            ret = walk_add(w, crel, &ents[i], NULL, depth + 1);
            if (!ret)
                ret = walk_dir(w, cpath, crel, depth + 1);
        } else {
            struct xenhypfs_dirent *d;
            void *raw = xenhypfs_read_raw(hdl, cpath, &d);

            if (!raw) {
                /* Gone meanwhile, or hidden: not an error of the scrape. */
                if (!path_missing() && errno != EACCES)
                    ret = -errno;
            } else {
                d->name = ents[i].name;
                ret = walk_add(w, crel, d, raw, depth + 1);
                if (ret)
                    free(raw);
                free(d);
            }
        }
        free(cpath);
        free(crel);
    }
    free(ents);
    return ret;
}

/*
 * Add the subtree at @root to @m.  0 (a missing @root adds nothing), or
 * -errno when the hypervisor could not be read.
 */
static int scrape_root(struct metrics *m, const char *root)
{
    struct xenhypfs_tree_entry *t;
    unsigned int n;
    struct walk w = { 0 };
    int ret;

    if (!opts.walk) {
        t = xenhypfs_read_tree(hdl, root, &n);
        if (t) {
            ret = metrics_add_tree(m, root, t, n);
            free(t);
            return ret;
        }
        if (path_missing())
            return 0;
        if (errno != EOPNOTSUPP)
            return -errno;
    }
    /* Version 1: the top, then everything below it. */
    {
        struct xenhypfs_dirent *d;
        void *raw = xenhypfs_read_raw(hdl, root, &d);

        if (!raw)
            return path_missing() ? 0 : -errno;
        d->name = "";
        if (d->type == xenhypfs_type_dir) {
            free(raw);
            ret = walk_add(&w, "", d, NULL, 0);
        } else {
            ret = walk_add(&w, "", d, raw, 0);
            if (ret)
                free(raw);
        }
        if (!ret && d->type == xenhypfs_type_dir)
            ret = walk_dir(&w, root, "", 0);
        free(d);
    }
    if (!ret)
        ret = metrics_add_tree(m, root, w.e, w.n);
    walk_free(&w);
    return ret;
}

/*
 * One scrape: the hypervisor read and mapped into a struct metrics, and
 * what to say of the scrape in *meta.  NULL if out of memory.
 */
static struct metrics *scrape(bool openmetrics, struct metrics_meta *meta)
{
    struct metrics_opts mo = {
        .openmetrics = openmetrics,
        .max_value_len = opts.max_value_len,
        .exclude = opts.exclude,
        .nexclude = opts.nexclude,
        .guest_values = opts.guest_values,
        .nguest_values = opts.nguest_values,
    };
    double t0 = now_s();
    struct metrics *m;
    const char *why = NULL;
    char reason[512] = "";
    size_t i;
    int ret = 0;

    m = metrics_new(&mo);
    if (!m)
        return NULL;
    if (!hdl) {
        struct xenhypfs_open_args a = {
            .transport = opts.transport,
            .socket_path = opts.socket,
            .err = reason,
            .errlen = sizeof(reason),
        };

        hdl = xenhypfs_open_ext(&a);
        if (!hdl) {
            ret = errno ? -errno : -EIO;    /* never "up" without a handle */
            why = reason[0] ? reason : strerror(-ret);
        }
    }
    for (i = 0; hdl && i < opts.ninclude && !ret; i++) {
        ret = scrape_root(m, opts.include[i]);
        if (ret == -ENOMEM)
            break;
        if (ret) {
            const char *te = xenhypfs_transport_error(hdl);

            snprintf(reason, sizeof(reason), "%s: %s", opts.include[i],
                     te && *te ? te : strerror(-ret));
            why = reason;
        }
    }
    if (ret == -ENOMEM) {
        metrics_free(m);
        return NULL;
    }
    if (ret) {
        /* Nothing half-read is shown: a failed scrape has no families. */
        metrics_free(m);
        m = metrics_new(&mo);
        if (!m)
            return NULL;
        errors_total++;
        if (hdl) {
            xenhypfs_close(hdl);
            hdl = NULL;
        }
        if (last_up) {
            struct passwd *pw = getpwuid(geteuid());

            fprintf(stderr, "hypfs-exporter: cannot read the hypervisor: "
                    "%s (hypfs_up 0 until it can)\n", why);
            /* No domain's right: under hypfsd, say how to give one. */
            if (ret == -EPERM)
                fprintf(stderr, "hypfs-exporter: hint: under hypfsd, a line "
                        "'map %s 0' in its configuration (/etc/hypfs/"
                        "hypfsd.conf) lets the exporter read as the control "
                        "domain; see hypfsd(8)\n", pw ? pw->pw_name : "USER");
        }
    } else if (!last_up)
        fprintf(stderr, "hypfs-exporter: the hypervisor can be read again\n");
    last_up = !ret;
    *meta = (struct metrics_meta){ .up = !ret, .errors_total = errors_total,
                                   .duration_s = now_s() - t0,
                                   .version = HYPFS_VERSION_STRING };
    return m;
}

/*
 * A response's body, made as it is sent: the families one after another,
 * through gzip if asked, so that the text is never whole in memory (at
 * 32,751 domains it is tens of MB) and each family's samples go once
 * sent.
 */
struct body {
    struct metrics *m;
    struct metrics_meta meta;
    const char *piece;          /* what is left of the current piece */
    size_t left;
    bool gz, in_done, finished;
    z_stream z;
};

static ssize_t body_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct body *b = cls;
    size_t out = 0;
    int r;

    (void)pos;
    if (b->finished)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (max > UINT_MAX)
        max = UINT_MAX;
    if (!b->gz) {
        while (out < max) {
            size_t n;

            if (!b->left) {
                r = metrics_next(b->m, &b->meta, &b->piece, &b->left);
                if (r < 0)
                    return MHD_CONTENT_READER_END_WITH_ERROR;
                if (!r) {
                    b->finished = true;
                    break;
                }
                continue;
            }
            n = b->left < max - out ? b->left : max - out;
            memcpy(buf + out, b->piece, n);
            b->piece += n;
            b->left -= n;
            out += n;
        }
        return out ? (ssize_t)out : MHD_CONTENT_READER_END_OF_STREAM;
    }
    b->z.next_out = (Bytef *)buf;
    b->z.avail_out = (uInt)max;
    while (b->z.avail_out) {
        if (!b->z.avail_in && !b->in_done) {
            const char *piece;
            size_t len;

            r = metrics_next(b->m, &b->meta, &piece, &len);
            if (r < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            if (!r)
                b->in_done = true;
            b->z.next_in = (Bytef *)piece;
            b->z.avail_in = (uInt)len;     /* a family's samples < 4 GiB */
            continue;
        }
        r = deflate(&b->z, b->in_done ? Z_FINISH : Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            b->finished = true;
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    out = max - b->z.avail_out;
    return out ? (ssize_t)out : MHD_CONTENT_READER_END_OF_STREAM;
}

static void body_free(void *cls)
{
    struct body *b = cls;

    if (b->gz)
        deflateEnd(&b->z);
    metrics_free(b->m);
    free(b);
    /*
     * A scrape of a big tree allocates tens of MB and frees them: hand
     * them back, or the heap keeps them between scrapes (and grows with
     * fragmentation, 30 to 90 MB at 32,751 domains).
     */
    malloc_trim(0);
}

/* ---- HTTP ---- */

/*
 * Did the client list @token in header @name (a comma-separated list of
 * "token;param=...;q=N"), with a weight above 0?
 */
static bool accepts(struct MHD_Connection *c, const char *name,
                    const char *token)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    size_t n = strlen(token);

    while (v && *v) {
        const char *end = v + strcspn(v, ",");

        v += strspn(v, " \t");
        if ((size_t)(end - v) >= n && !strncasecmp(v, token, n) &&
            strchr(" \t;,", v[n])) {
            const char *p = v + n;
            double q = 1.0;

            while (p < end && (p = memchr(p, ';', (size_t)(end - p)))) {
                p++;
                p += strspn(p, " \t");
                if (p < end && (*p == 'q' || *p == 'Q') && p[1] == '=')
                    q = strtod(p + 2, NULL);
            }
            if (q > 0)
                return true;
        }
        v = *end ? end + 1 : NULL;
    }
    return false;
}

/* @body (malloc()ed, taken) as plain text; metrics go by body_read(). */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
                             char *body, size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=utf-8");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c,
                                  unsigned int status, const char *text)
{
    char *body = strdup(text);

    if (!body)
        return MHD_NO;
    return reply(c, status, body, strlen(body));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    static int headers_seen;
    struct MHD_Response *r;
    enum MHD_Result ret;
    struct body *b;

    (void)cls;
    (void)version;
    (void)upload;
    /* The first call has the headers only; answer once the body is in. */
    if (!*state) {
        *state = &headers_seen;
        guard_request(c);
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;       /* a body is read and dropped */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) &&
        strcmp(method, MHD_HTTP_METHOD_HEAD))
        return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                          "only GET and HEAD\n");
    if (web.nusers) {
        char *pass = NULL, *user = MHD_basic_auth_get_username_password(c,
                                                                   &pass);
        bool ok = webconfig_allows(&web, user, pass);

        if (pass)
            explicit_bzero(pass, strlen(pass));
        MHD_free(user);
        MHD_free(pass);
        if (!ok) {
            static const char msg[] = "unauthorized\n";

            r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                                MHD_RESPMEM_PERSISTENT);
            if (!r)
                return MHD_NO;
            ret = MHD_queue_basic_auth_fail_response(c, "hypfs-exporter", r);
            MHD_destroy_response(r);
            return ret;
        }
    }
    if (!strcmp(url, "/")) {
        char *page;
        int n = asprintf(&page, "hypfs-exporter %s: the hypervisor "
                         "filesystem's metrics are at %s (hypfs-exporter(8))"
                         "\n", HYPFS_VERSION_STRING, opts.path);

        if (n < 0)
            return MHD_NO;
        return reply(c, MHD_HTTP_OK, page, (size_t)n);
    }
    if (strcmp(url, opts.path))
        return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");

    b = calloc(1, sizeof(*b));
    if (!b)
        return MHD_NO;
    b->m = scrape(accepts(c, MHD_HTTP_HEADER_ACCEPT,
                          "application/openmetrics-text"), &b->meta);
    if (!b->m) {
        free(b);
        return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "out of memory\n");
    }
    /* Level 1: at 32,751 domains, 9 costs seconds for a few % less. */
    b->gz = accepts(c, MHD_HTTP_HEADER_ACCEPT_ENCODING, "gzip") &&
            deflateInit2(&b->z, 1, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) == Z_OK;
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                          body_read, b, body_free);
    if (!r) {
        body_free(b);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            metrics_openmetrics(b->m)
                            ? "application/openmetrics-text; version=1.0.0; "
                              "charset=utf-8"
                            : "text/plain; version=0.0.4; charset=utf-8");
    if (b->gz)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap;
    /*
     * libmicrohttpd reports every malformed request and dropped client;
     * those are the clients' business, and an attacker could fill the log
     * with them.  Our own errors are reported where they happen.
     */
}

/* ---- Listening ---- */

/* A listening socket for "[HOST]:PORT"; -1 after saying why. */
static int listen_on(const char *spec, char *shown, size_t shown_len)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    }, *res, *ai;
    char host[256], port[16];
    const char *colon = strrchr(spec, ':');
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char h[NI_MAXHOST], p[NI_MAXSERV];
    int fd = -1, err, one = 1, zero = 0;
    size_t hl;

    if (!colon || strlen(colon + 1) >= sizeof(port) || !colon[1]) {
        fprintf(stderr, "hypfs-exporter: --listen %s: expected [HOST]:PORT\n",
                spec);
        return -1;
    }
    hl = (size_t)(colon - spec);
    if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
        spec++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        fprintf(stderr, "hypfs-exporter: --listen: host name too long\n");
        return -1;
    }
    memcpy(host, spec, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    /* getaddrinfo() takes 99999 and listens on 99999 mod 65536. */
    if (strspn(port, "0123456789") != strlen(port) ||
        strtoul(port, NULL, 10) > 65535) {
        fprintf(stderr, "hypfs-exporter: --listen %s: the port is a number "
                "from 0 to 65535\n", spec);
        return -1;
    }
    err = getaddrinfo(hl ? host : NULL, port, &hints, &res);
    if (err) {
        fprintf(stderr, "hypfs-exporter: --listen %s: %s\n", host[0] ? host :
                "(any)", gai_strerror(err));
        return -1;
    }
    /* With no host, prefer IPv6 with IPv4 mapped: one socket for both. */
    for (ai = res; ai; ai = ai->ai_next)
        if (!hl && ai->ai_family == AF_INET6)
            break;
    if (!ai)
        ai = res;
    for (; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ai->ai_family == AF_INET6 && !hl)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 128))
            break;
        err = errno;
        close(fd);
        fd = -1;
        errno = err;
    }
    if (fd < 0) {
        fprintf(stderr, "hypfs-exporter: cannot listen on %s: %s\n", spec,
                strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    if (!getsockname(fd, (struct sockaddr *)&ss, &sl) &&
        !getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), p, sizeof(p),
                     NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(shown, shown_len, ss.ss_family == AF_INET6 ? "[%s]:%s"
                                                            : "%s:%s", h, p);
    else
        snprintf(shown, shown_len, "%s", spec);
    return fd;
}

/* ---- Options ---- */

static int add_path(const char ***list, size_t *n, const char *opt,
                    const char *path)
{
    const char **l;

    if (path[0] != '/') {
        fprintf(stderr, "hypfs-exporter: %s %s: not an absolute path\n", opt,
                path);
        return -1;
    }
    l = realloc(*list, (*n + 1) * sizeof(*l));
    if (!l) {
        fprintf(stderr, "hypfs-exporter: out of memory\n");
        return -1;
    }
    l[(*n)++] = path;
    *list = l;
    return 0;
}

/* @arg as a number from @min to @max, or 1 after saying what @opt takes. */
static int number(const char *opt, const char *arg, unsigned int min,
                  unsigned int max, const char *what, unsigned int *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(arg, &end, 10);
    if (errno || *end || !*arg || arg[0] == '-' || v < min || v > max) {
        fprintf(stderr, "hypfs-exporter: %s %s: expected %s from %u to %u\n",
                opt, arg, what, min, max);
        return 1;
    }
    *out = (unsigned int)v;
    return 0;
}

static int parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "socket", required_argument, NULL, 's' },
        { "include", required_argument, NULL, 1 },
        { "exclude", required_argument, NULL, 2 },
        { "max-value-length", required_argument, NULL, 3 },
        { "telemetry-path", required_argument, NULL, 4 },
        { "web.telemetry-path", required_argument, NULL, 4 },
        { "web.listen-address", required_argument, NULL, 'l' },
        { "guest-value", required_argument, NULL, 10 },
        { "web.config.file", required_argument, NULL, 11 },
        { "max-connections", required_argument, NULL, 5 },
        { "max-connections-per-ip", required_argument, NULL, 6 },
        { "header-timeout", required_argument, NULL, 7 },
        { "idle-timeout", required_argument, NULL, 8 },
        { "request-timeout", required_argument, NULL, 9 },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "l:s:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            opts.listen = optarg;
            break;
        case 's':
            opts.socket = optarg;
            break;
        case 1:
            if (add_path(&opts.include, &opts.ninclude, "--include", optarg))
                return 1;
            break;
        case 2:
            if (add_path(&opts.exclude, &opts.nexclude, "--exclude", optarg))
                return 1;
            break;
        case 3: {
            unsigned int v;

            if (number("--max-value-length", optarg, 0, 65536,
                       "a number of bytes", &v))
                return 1;
            opts.max_value_len = v;
            break;
        }
        case 11:
            opts.web_config = optarg;
            break;
        case 10: {
            const char **l = realloc(opts.guest_values,
                                     (opts.nguest_values + 1) * sizeof(*l));

            if (!l) {
                fprintf(stderr, "hypfs-exporter: out of memory\n");
                return 1;
            }
            l[opts.nguest_values++] = optarg;
            opts.guest_values = l;
            break;
        }
        case 5:
            if (number("--max-connections", optarg, 1, 65536,
                       "a number of connections", &opts.guard.max_connections))
                return 1;
            break;
        case 6:
            if (number("--max-connections-per-ip", optarg, 1, 65536,
                       "a number of connections", &opts.guard.max_per_ip))
                return 1;
            break;
        case 7:
            if (number("--header-timeout", optarg, 1, 3600, "seconds",
                       &opts.guard.header_timeout_s))
                return 1;
            break;
        case 8:
            if (number("--idle-timeout", optarg, 1, 3600, "seconds",
                       &opts.idle_timeout_s))
                return 1;
            break;
        case 9:
            if (number("--request-timeout", optarg, 1, 3600, "seconds",
                       &opts.guard.request_timeout_s))
                return 1;
            break;
        case 4:
            if (optarg[0] != '/' || !strcmp(optarg, "/")) {
                fprintf(stderr, "hypfs-exporter: --telemetry-path %s: "
                        "expected a path below / (like /metrics)\n", optarg);
                return 1;
            }
            opts.path = optarg;
            break;
        case 'V':
            printf("hypfs-exporter (hypfs) %s\n", HYPFS_VERSION_STRING);
            exit(0);
        case 'h':
            help();
            exit(0);
        default:
            fprintf(stderr, "Try 'hypfs-exporter --help'.\n");
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hypfs-exporter: unexpected argument '%s'\n"
                "Try 'hypfs-exporter --help'.\n", argv[optind]);
        return 1;
    }
    if (!opts.ninclude && add_path(&opts.include, &opts.ninclude,
                                   "--include", "/"))
        return 1;
    opts.walk = getenv("XENHYPFS_V1") != NULL;
    {
        char err[200];

        if (xenhypfs_transport_from_env(&opts.transport, err, sizeof(err))) {
            fprintf(stderr, "hypfs-exporter: %s\n", err);
            return 1;
        }
    }
    if (opts.socket && opts.transport == XENHYPFS_TRANSPORT_AUTO)
        opts.transport = XENHYPFS_TRANSPORT_SOCKET;
    return 0;
}

/*
 * Serve until SIGTERM or SIGINT (SIGHUP: nothing to reload); the loop
 * wakes at least once a second for the guard.  0, or 1 after saying why.
 */
static int serve(struct MHD_Daemon *d, int sfd, int *sig)
{
    const union MHD_DaemonInfo *ep =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);

    if (!ep) {
        fprintf(stderr, "hypfs-exporter: libmicrohttpd has no epoll "
                "descriptor\n");
        return 1;
    }
    for (;;) {
        struct pollfd p[2] = { { ep->epoll_fd, POLLIN, 0 },
                               { sfd, POLLIN, 0 } };
        MHD_UNSIGNED_LONG_LONG to;
        int ms = 1000;

        if (MHD_get_timeout(d, &to) == MHD_YES && to < (unsigned)ms)
            ms = (int)to;
        if (poll(p, 2, ms) < 0 && errno != EINTR) {
            fprintf(stderr, "hypfs-exporter: poll: %s\n", strerror(errno));
            return 1;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
                si.ssi_signo != SIGHUP) {
                *sig = (int)si.ssi_signo;
                return 0;
            }
        }
        MHD_run(d);
        guard_sweep();
    }
}

int main(int argc, char **argv)
{
    struct MHD_OptionItem tls_ops[4] = { { MHD_OPTION_END, 0, NULL } };
    struct MHD_Daemon *d;
    char shown[300];
    sigset_t set;
    int fd, sfd, sig = SIGTERM, ret;

    if (parse_args(argc, argv))
        return 1;
    /*
     * A fixed threshold: a scrape's big buffers are always mapped apart
     * and unmapped when freed (glibc's dynamic one would raise itself
     * after the first and keep them in the heap).
     */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    if (opts.web_config) {
        char err[512];

        if (webconfig_load(opts.web_config, &web, err, sizeof(err))) {
            fprintf(stderr, "hypfs-exporter: --web.config.file: %s\n", err);
            return 1;
        }
        if (web.cert_pem && MHD_is_feature_supported(MHD_FEATURE_TLS) !=
                            MHD_YES) {
            fprintf(stderr, "hypfs-exporter: --web.config.file %s: this "
                    "libmicrohttpd has no TLS\n", opts.web_config);
            webconfig_free(&web);
            return 1;
        }
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Taken from a signalfd by the loop. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, "hypfs-exporter: signalfd: %s\n", strerror(errno));
        return 1;
    }

    fd = listen_on(opts.listen, shown, sizeof(shown));
    if (fd < 0) {
        close(sfd);
        webconfig_free(&web);
        return 1;
    }
    opts.guard.tls = web.cert_pem != NULL;
    guard_init(&opts.guard);
    if (web.cert_pem) {
        tls_ops[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
                                              web.key_pem };
        tls_ops[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
                                              web.cert_pem };
        tls_ops[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              web.priorities };
        tls_ops[3] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    }
    /*
     * libmicrohttpd's own limit is above ours: the guard sees a new
     * connection, then closes the one waiting longest, rather than
     * libmicrohttpd refusing the newcomer.
     */
    d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         (web.cert_pem ? MHD_USE_TLS : 0),
                         0, NULL, NULL, handle, NULL,
                         MHD_OPTION_ARRAY, tls_ops,
                         MHD_OPTION_LISTEN_SOCKET, fd,
                         MHD_OPTION_CONNECTION_LIMIT,
                         opts.guard.max_connections * 2 + 16,
                         MHD_OPTION_CONNECTION_TIMEOUT, opts.idle_timeout_s,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)REQUEST_MEMORY,
                         MHD_OPTION_NOTIFY_CONNECTION, guard_connection, NULL,
                         MHD_OPTION_NOTIFY_COMPLETED, guard_completed, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "hypfs-exporter: cannot start the HTTP server on %s%s"
                "\n", shown, web.cert_pem ? " (is the key the certificate's, "
                "both PEM?)" : "");
        close(fd);
        close(sfd);
        webconfig_free(&web);
        return 1;
    }
    fprintf(stderr, "hypfs-exporter: listening on %s, metrics at %s%s%s\n",
            shown, opts.path, web.cert_pem ? ", TLS" : "",
            web.nusers ? ", basic authentication" : "");
    sd_notify(0, "READY=1");
    ret = serve(d, sfd, &sig);
    sd_notify(0, "STOPPING=1");
    MHD_stop_daemon(d);
    close(fd);
    close(sfd);
    if (hdl)
        xenhypfs_close(hdl);
    free(opts.include);
    free(opts.exclude);
    free(opts.guest_values);
    webconfig_free(&web);
    if (!ret)
        fprintf(stderr, "hypfs-exporter: %s: stopped\n", strsignal(sig));
    return ret;
}
