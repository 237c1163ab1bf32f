/*
 * Fuzz target (e): hypfs-exporter's mapping, whatever the tree holds.
 *
 * The input is a subtree: records of type, encoding, a relative path
 * (any bytes but NUL, '/' separating components) and content.  Both
 * exposition formats are rendered and parsed back with a strict reader
 * of the text format's grammar: every line a comment (# HELP, # TYPE,
 * # EOF) or a sample "name{label="value",...} value"; metric and label
 * names of the allowed characters; label values only with the escapes the
 * format knows; everything valid UTF-8; no series twice.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "utf8.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant: %s (line %d)\n", #cond, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0, l;

    while (i < n) {
        l = hypfs_utf8_len(s + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* A sample line (without its newline): its series key goes to @key. */
static void check_sample(const char *l, size_t n, char *key, size_t *klen)
{
    size_t i = 0;

    CHECK(n > 0 && name_char(l[0], true));
    while (i < n && name_char(l[i], i == 0))
        i++;
    if (i < n && l[i] == '{') {
        i++;
        while (i < n && l[i] != '}') {
            size_t start = i;

            CHECK(name_char(l[i], true));
            while (i < n && name_char(l[i], i == start))
                i++;
            CHECK(i + 1 < n && l[i] == '=' && l[i + 1] == '"');
            i += 2;
            while (i < n && l[i] != '"') {
                if (l[i] == '\\') {
                    CHECK(i + 1 < n && (l[i + 1] == '\\' || l[i + 1] == '"' ||
                                        l[i + 1] == 'n'));
                    i++;
                }
                CHECK(l[i] != '\n');
                i++;
            }
            CHECK(i < n && l[i] == '"');
            i++;
            CHECK(i < n && (l[i] == ',' || l[i] == '}'));
            if (l[i] == ',')
                i++;
        }
        CHECK(i < n && l[i] == '}');
        i++;
    }
    memcpy(key, l, i);
    *klen = i;
    CHECK(i < n && l[i] == ' ');
    i++;
    /* A number: digits, sign, point, exponent. */
    CHECK(i < n);
    for (; i < n; i++)
        CHECK(strchr("0123456789+-.eE", l[i]));
}

static void check(const char *text, size_t len, bool om)
{
    size_t i = 0, nkeys = 0, k;
    char **keys = NULL;
    bool eof = false;

    CHECK(strlen(text) == len);
    CHECK(valid_utf8((const unsigned char *)text, len));
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n;

        CHECK(nl);              /* every line ends */
        CHECK(!eof);            /* nothing after # EOF */
        n = (size_t)(nl - (text + i));
        if (text[i] == '#') {
            CHECK(!strncmp(text + i, "# HELP ", 7) ||
                  !strncmp(text + i, "# TYPE ", 7) ||
                  (om && n == 5 && !strncmp(text + i, "# EOF", 5)));
            eof = n == 5 && !strncmp(text + i, "# EOF", 5);
        } else {
            char *key = malloc(n + 1);
            size_t kl;

            CHECK(key);
            check_sample(text + i, n, key, &kl);
            key[kl] = '\0';
            for (k = 0; k < nkeys; k++)
                CHECK(strcmp(keys[k], key));
            keys = realloc(keys, (nkeys + 1) * sizeof(*keys));
            CHECK(keys);
            keys[nkeys++] = key;
        }
        i += n + 1;
    }
    CHECK(eof == om);
    for (k = 0; k < nkeys; k++)
        free(keys[k]);
    free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xenhypfs_tree_entry e[64];
    char *names[64];
    unsigned int n = 0, i;
    size_t at = 0;
    int om;

    /* Records: type, encoding, name length, name, content length, content. */
    while (n < 64 && at + 4 <= size) {
        size_t nl = data[at + 2], cl = data[at + 3];

        memset(&e[n], 0, sizeof(e[n]));
        e[n].dirent.type = (enum xenhypfs_type)(data[at] % 6);
        e[n].dirent.encoding = (enum xenhypfs_encoding)(data[at + 1] % 2);
        at += 4;
        if (at + nl + cl > size)
            break;
        names[n] = malloc(nl + 1);
        CHECK(names[n]);
        memcpy(names[n], data + at, nl);
        names[n][nl] = '\0';
        e[n].dirent.name = names[n];
        at += nl;
        e[n].content = e[n].dirent.type == xenhypfs_type_dir ? NULL
                                                             : data + at;
        e[n].dirent.size = e[n].content ? cl : 0;
        at += cl;
        n++;
    }
    for (om = 0; om < 2; om++) {
        struct metrics_opts o = { .openmetrics = om, .max_value_len = 16 };
        struct metrics_meta meta = { .up = true, .duration_s = 0.001 };
        struct metrics *m = metrics_new(&o);
        size_t len;
        char *text;

        CHECK(m);
        CHECK(!metrics_add_tree(m, "/", e, n));
        CHECK(metrics_entries(m) == n);
        text = metrics_render(m, &meta, &len);
        CHECK(text);
        check(text, len, om);
        free(text);
        metrics_free(m);
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    return 0;
}
