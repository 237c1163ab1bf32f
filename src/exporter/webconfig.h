/*
 * --web.config.file: TLS and basic authentication for hypfs-exporter, in
 * the file format of Prometheus's exporter-toolkit (YAML), so that one
 * file serves every exporter of a fleet:
 *
 *   tls_server_config:
 *     cert_file: server.crt        (or cert: inline PEM)
 *     key_file: server.key         (or key: inline PEM)
 *     min_version: TLS12           (TLS10 .. TLS13; max_version too)
 *   basic_auth_users:
 *     alice: $2y$10$...            (bcrypt)
 *
 * What the exporter cannot honour (client certificates, cipher lists,
 * rate limits, headers) is refused with the key's name and line, never
 * ignored: a security setting silently dropped is worse than none.  Paths
 * are relative to the file's directory.  Read once, at start.
 *
 * Not thread-safe: hypfs-exporter's one thread uses it.
 */
#ifndef HYPFS_EXPORTER_WEBCONFIG_H
#define HYPFS_EXPORTER_WEBCONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct web_user {
    char *name;
    char *hash;                 /* bcrypt, as crypt(3) takes it */
    char *verified;             /* the last password that matched (cache) */
};

struct web_config {
    char *cert_pem, *key_pem;   /* both or neither: TLS */
    char *priorities;           /* GnuTLS priority string, with versions */
    struct web_user *users;     /* none: no authentication */
    size_t nusers;
};

/*
 * Read @path into @w (zeroed first).  0, or -1 with the reason, naming the
 * file, the line and the key, in @err (@errlen bytes).  @w is whole or
 * empty: nothing to free on failure.
 */
int webconfig_load(const char *path, struct web_config *w, char *err,
                   size_t errlen);

/* May @user with @password in?  Always true without users. */
bool webconfig_allows(struct web_config *w, const char *user,
                      const char *password);

void webconfig_free(struct web_config *w);

#endif /* HYPFS_EXPORTER_WEBCONFIG_H */
