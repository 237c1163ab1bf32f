/*
 * --web.config.file (webconfig.h): the exporter-toolkit's format, read
 * with libyaml, passwords checked with libxcrypt's bcrypt.
 */
#include <crypt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "webconfig.h"

struct load {
    yaml_document_t doc;
    const char *path;
    char *dir;                  /* the file's directory, for relative paths */
    char *err;
    size_t errlen;
};

static int fail(struct load *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct load *l, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    int k;

    k = n ? snprintf(l->err, l->errlen, "%s:%zu: ", l->path,
                     n->start_mark.line + 1)
          : snprintf(l->err, l->errlen, "%s: ", l->path);
    if (k < 0 || (size_t)k >= l->errlen)
        return -1;
    va_start(ap, fmt);
    vsnprintf(l->err + k, l->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                            : NULL;
}

/* A file's whole text, @name relative to the configuration's directory. */
static char *slurp(struct load *l, const yaml_node_t *n, const char *name)
{
    char *p = NULL, *text = NULL;
    size_t len = 0, cap = 0;
    FILE *f;

    if (asprintf(&p, "%s%s", name[0] == '/' ? "" : l->dir, name) < 0)
        return NULL;
    f = fopen(p, "re");
    if (!f) {
        fail(l, n, "cannot read %s: %s", p, strerror(errno));
        free(p);
        return NULL;
    }
    for (;;) {
        size_t got;

        if (len + 4096 + 1 > cap) {
            char *t = realloc(text, cap = cap ? cap * 2 : 8192);

            if (!t || cap > (1u << 20)) {
                fail(l, n, "%s: %s", p, t ? "larger than 1 MiB" :
                     "out of memory");
                free(t ? t : text);
                text = NULL;
                break;
            }
            text = t;
        }
        got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (!got) {
            text[len] = '\0';
            break;
        }
    }
    fclose(f);
    free(p);
    return text;
}

static const char *const versions[] = { "TLS10", "TLS11", "TLS12", "TLS13" };
static const char *const gnutls_versions[] = {
    "+VERS-TLS1.0", "+VERS-TLS1.1", "+VERS-TLS1.2", "+VERS-TLS1.3",
};

static int version(struct load *l, const yaml_node_t *n, int *out)
{
    const char *s = scalar(n);
    int i;

    for (i = 0; s && i < 4; i++)
        if (!strcmp(s, versions[i])) {
            *out = i;
            return 0;
        }
    return fail(l, n, "a TLS version is TLS10, TLS11, TLS12 or TLS13");
}

static int tls(struct load *l, yaml_node_t *m, struct web_config *w)
{
    yaml_node_pair_t *p;
    int min = 2, max = 3, i;
    size_t len;

    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "tls_server_config: a mapping is needed");
    for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        const char *key = scalar(k), *val = scalar(v);
        char **dst = NULL;
        bool file = false;

        if (!key)
            return fail(l, k, "tls_server_config: a key is a name");
        if (!strcmp(key, "cert_file") || !strcmp(key, "cert"))
            dst = &w->cert_pem, file = key[4] == '_';
        else if (!strcmp(key, "key_file") || !strcmp(key, "key"))
            dst = &w->key_pem, file = key[3] == '_';
        else if (!strcmp(key, "min_version")) {
            if (version(l, v, &min))
                return -1;
            continue;
        } else if (!strcmp(key, "max_version")) {
            if (version(l, v, &max))
                return -1;
            continue;
        } else if (!strcmp(key, "client_auth_type")) {
            if (val && !strcmp(val, "NoClientCert"))
                continue;
            return fail(l, v, "client_auth_type: hypfs-exporter takes no "
                        "client certificates (NoClientCert only); use "
                        "basic_auth_users, or a proxy in front");
        } else
            return fail(l, k, "tls_server_config: %s is not supported by "
                        "hypfs-exporter (cert_file, key_file, cert, key, "
                        "min_version, max_version are)", key);
        if (!val || !*val)
            return fail(l, v, "%s: a value is needed", key);
        if (*dst)
            return fail(l, k, "%s: the certificate or key is given twice",
                        key);
        *dst = file ? slurp(l, v, val) : strdup(val);
        if (!*dst)
            return l->err[0] ? -1 : fail(l, v, "out of memory");
    }
    if (!w->cert_pem || !w->key_pem)
        return fail(l, m, "tls_server_config: a certificate and its key are "
                    "needed (cert_file and key_file)");
    if (min > max)
        return fail(l, m, "tls_server_config: min_version is above "
                    "max_version");
    len = strlen("NORMAL:-VERS-ALL") + 4 * 16 + 1;
    w->priorities = malloc(len);
    if (!w->priorities)
        return fail(l, m, "out of memory");
    strcpy(w->priorities, "NORMAL:-VERS-ALL");
    for (i = max; i >= min; i--) {
        strcat(w->priorities, ":");
        strcat(w->priorities, gnutls_versions[i]);
    }
    return 0;
}

static int users(struct load *l, yaml_node_t *m, struct web_config *w)
{
    yaml_node_pair_t *p;
    size_t n;

    if (m->type == YAML_SCALAR_NODE && !*scalar(m))
        return 0;                   /* "basic_auth_users:" alone: none */
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "basic_auth_users: a mapping of user: bcrypt "
                    "hash is needed");
    n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    w->users = calloc(n ? n : 1, sizeof(*w->users));
    if (!w->users)
        return fail(l, m, "out of memory");
    for (p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        const char *name = scalar(k), *hash = scalar(v);
        struct web_user *u = &w->users[w->nusers];

        if (!name || !*name || strchr(name, ':'))
            return fail(l, k, "basic_auth_users: a user is a name without "
                        "':'");
        /* bcrypt: $2a$, $2b$ or $2y$, a cost, 53 characters of salt+hash. */
        if (!hash || strlen(hash) != 60 || hash[0] != '$' || hash[1] != '2' ||
            !strchr("aby", hash[2]) || hash[3] != '$')
            return fail(l, v, "basic_auth_users: %s: a bcrypt hash is "
                        "needed ($2y$10$..., 60 characters: htpasswd -nBC "
                        "10 \"\" | tr -d ':\\n')", name);
        u->name = strdup(name);
        u->hash = strdup(hash);
        w->nusers++;
        if (!u->name || !u->hash)
            return fail(l, v, "out of memory");
    }
    return 0;
}

int webconfig_load(const char *path, struct web_config *w, char *err,
                   size_t errlen)
{
    struct load l = { .path = path, .err = err, .errlen = errlen };
    yaml_parser_t parser;
    yaml_node_t *root;
    yaml_node_pair_t *p;
    const char *slash = strrchr(path, '/');
    FILE *f;
    int ret = -1;

    memset(w, 0, sizeof(*w));
    err[0] = '\0';
    f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    l.dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup("");
    if (!l.dir || !yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "out of memory");
        free(l.dir);
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &l.doc)) {
        snprintf(err, errlen, "%s:%zu: not YAML: %s", path,
                 parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "unreadable");
        yaml_parser_delete(&parser);
        free(l.dir);
        fclose(f);
        return -1;
    }
    root = yaml_document_get_root_node(&l.doc);
    if (!root)
        ret = 0;                    /* an empty file: plain HTTP, no users */
    else if (root->type != YAML_MAPPING_NODE)
        fail(&l, root, "a mapping (tls_server_config:, basic_auth_users:) "
             "is needed");
    else {
        ret = 0;
        for (p = root->data.mapping.pairs.start;
             !ret && p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(&l.doc, p->key);
            yaml_node_t *v = yaml_document_get_node(&l.doc, p->value);
            const char *key = scalar(k);

            if (key && !strcmp(key, "tls_server_config"))
                ret = tls(&l, v, w);
            else if (key && !strcmp(key, "basic_auth_users"))
                ret = users(&l, v, w);
            else
                ret = fail(&l, k, "%s is not supported by hypfs-exporter "
                           "(tls_server_config and basic_auth_users are)",
                           key ? key : "this key");
        }
    }
    yaml_document_delete(&l.doc);
    yaml_parser_delete(&parser);
    free(l.dir);
    fclose(f);
    if (ret)
        webconfig_free(w);
    return ret;
}

/* Equal, in a time that does not depend on where they differ. */
static bool same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i;
    unsigned char d = la != lb;

    for (i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return !d;
}

bool webconfig_allows(struct web_config *w, const char *user,
                      const char *password)
{
    struct crypt_data *cd;
    struct web_user *u = NULL;
    const char *h;
    bool ok;
    size_t i;

    if (!w->nusers)
        return true;
    if (!user || !password)
        return false;
    for (i = 0; i < w->nusers; i++)
        if (!strcmp(w->users[i].name, user))
            u = &w->users[i];
    if (!u)
        return false;
    /* bcrypt is slow on purpose: a scraper's every request is not. */
    if (u->verified && same(u->verified, password))
        return true;
    cd = calloc(1, sizeof(*cd));
    if (!cd)
        return false;
    /*
     * crypt_rn (libxcrypt's): NULL on failure rather than a magic string,
     * and not the crypt_r that AddressSanitizer intercepts -- which leaves
     * libcrypt unlinked and the interceptor calling nothing.
     */
    h = crypt_rn(password, u->hash, cd, (int)sizeof(*cd));
    ok = h && h[0] == '$' && same(h, u->hash);
    free(cd);
    if (ok) {
        free(u->verified);
        u->verified = strdup(password);
    }
    return ok;
}

void webconfig_free(struct web_config *w)
{
    size_t i;

    free(w->cert_pem);
    if (w->key_pem)
        explicit_bzero(w->key_pem, strlen(w->key_pem));
    free(w->key_pem);
    free(w->priorities);
    for (i = 0; i < w->nusers; i++) {
        free(w->users[i].name);
        free(w->users[i].hash);
        if (w->users[i].verified)
            explicit_bzero(w->users[i].verified,
                           strlen(w->users[i].verified));
        free(w->users[i].verified);
    }
    free(w->users);
    memset(w, 0, sizeof(*w));
}
