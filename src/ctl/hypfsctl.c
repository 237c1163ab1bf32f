/*
 * hypfsctl: the control command of the reference hypervisor, as Xen's xl
 * is for Xen.  Creates and destroys domains and cpupools and moves CPUs
 * between pools while hypfsd runs, so that /domain/<id>/ and
 * /cpupool/<id>/ appear and vanish.  See hypfsctl(8).
 *
 * It turns its command line into the canonical words of a control request
 * (verb, then key=value) and prints what the daemon answers.  Exit status:
 * 0 success, 1 usage, 2 cannot reach hypfsd, 3 the command failed.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: hypfsctl [-s SOCKET] COMMAND [ARGS]\n"
"\n"
"Domains:\n"
"  domain-create NAME [--vcpus N] [--memory MIB] [--pool POOL] [--uuid UUID]\n"
"                [--channel]    create a domain; prints its id (--channel:\n"
"                               and a socket its VMM connects the guest's\n"
"                               virtio-serial port to: docs/guests.md)\n"
"  domain-channel DOMAIN        print the path of a domain's channel\n"
"  domain-destroy DOMAIN        destroy a domain (by name or id)\n"
"  domain-pause DOMAIN          pause a domain\n"
"  domain-unpause DOMAIN        let a paused domain run again\n"
"  domain-list                  list the domains\n"
"Cpupools:\n"
"  pool-create NAME [--sched SCHED] [--gran cpu|core|socket]\n"
"                               create an empty cpupool; prints its id\n"
"  pool-destroy POOL            destroy an empty cpupool (by name or id)\n"
"  pool-list                    list the cpupools\n"
"  cpu-move CPU POOL            move a cpu into a cpupool\n"
"  cpu-remove CPU               take a cpu out of its cpupool\n"
"Daemon:\n"
"  stats                        heap in use and connections of hypfsd\n"
"\n"
"  -s, --socket PATH            hypfsd's socket (default $%s or %s)\n"
"  -h, --help                   this help (after a command: that command's)\n"
"  -V, --version                print the version\n"
"      --json                   domain-list, pool-list and stats as JSON\n"
"Options may come before or after the command.\n",
            HYPFS_SOCKET_ENV, HYPFS_DEFAULT_SOCKET);
}

/* One command's lines of the help (COMMAND --help). */
static void usage_of(const char *name)
{
    char *text = NULL, *line, *save = NULL;
    size_t len = 0, n = strlen(name);
    FILE *f = open_memstream(&text, &len);
    bool in = false;

    if (!f)
        return;
    usage(f);
    fclose(f);
    printf("usage: hypfsctl [-s SOCKET] %s%s\n", name,
           strcmp(name, "stats") ? " ..." : "");
    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        /* Its line, and the indented one that may continue it. */
        if (!strncmp(line, "  ", 2) && !strncmp(line + 2, name, n) &&
            (line[2 + n] == ' ' || !line[2 + n])) {
            printf("%s\n", line);
            in = true;
        } else if (in && !strncmp(line, "    ", 4))
            printf("%s\n", line);      /* its options and description */
        else
            in = false;
    }
    free(text);
}

/*
 * A list's table (a header line of column names, then one line per row,
 * columns separated by spaces; the last may be empty) as a JSON array of
 * objects, numbers as numbers.  0, or 3 if the table cannot be read.
 */
static int print_json_table(const char *text, uint32_t len)
{
    char *copy = strndup(text, len), *line, *save = NULL;
    char *cols[16];
    int ncols = 0, ret = 0;
    json_object *rows = json_object_new_array();

    if (!copy || !rows) {
        free(copy);
        json_object_put(rows);
        return 3;
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[16], *fsave = NULL, *tok;
        int n = 0, k;
        json_object *o;

        for (tok = strtok_r(line, " ", &fsave); tok && n < 16;
             tok = strtok_r(NULL, " ", &fsave))
            f[n++] = tok;
        if (!ncols) {
            for (k = 0; k < n; k++)
                cols[k] = f[k];
            ncols = n;
            continue;
        }
        o = json_object_new_object();
        for (k = 0; k < ncols; k++) {
            const char *v = k < n ? f[k] : "";
            char *end;
            long long num = strtoll(v, &end, 10);
            char key[64];
            size_t i, o2 = 0;

            /* "Mem(MiB)" -> "mem_mib": keys as a JSON user expects. */
            for (i = 0; cols[k][i] && o2 + 1 < sizeof(key); i++) {
                char ch = cols[k][i];

                if (ch >= 'A' && ch <= 'Z')
                    key[o2++] = (char)(ch - 'A' + 'a');
                else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
                    key[o2++] = ch;
                else if (o2 && key[o2 - 1] != '_')
                    key[o2++] = '_';
            }
            while (o2 && key[o2 - 1] == '_')
                o2--;
            key[o2] = '\0';
            /* Counts and ids are numbers; names and cpu lists text. */
            json_object_object_add(o, key, *v && !*end &&
                                   strcmp(key, "name") && strcmp(key, "cpus")
                                   ? json_object_new_int64(num)
                                   : json_object_new_string(v));
        }
        json_object_array_add(rows, o);
    }
    if (!ncols)
        ret = 3;
    else
        printf("%s\n", json_object_to_json_string_ext(rows,
               JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(rows);
    free(copy);
    return ret;
}

/*
 * stats' lines ("name value", the value a number) as one JSON object.
 * 0, or 3 if a line cannot be read.
 */
static int print_json_stats(const char *text, uint32_t len)
{
    json_object *o = json_object_new_object();
    char *copy = strndup(text, len), *line, *save = NULL;
    int ret = 0;

    if (!o || !copy) {
        ret = 3;
        goto out;
    }
    for (line = strtok_r(copy, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' '), *end;
        long long v;

        errno = 0;
        v = sp ? strtoll(sp + 1, &end, 10) : 0;
        if (!sp || errno || end == sp + 1 || *end) {
            fprintf(stderr, "hypfsctl: stats: cannot read the line '%s'\n",
                    line);
            ret = 3;
            goto out;
        }
        *sp = '\0';
        json_object_object_add(o, line, json_object_new_int64(v));
    }
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
 out:
    json_object_put(o);
    free(copy);
    return ret;
}

/* The words of one request, with their storage. */
struct words {
    const char *argv[32];
    char *owned[32];
    int argc, nowned;
};

static int add(struct words *w, const char *word)
{
    if (w->argc == 32)
        return -1;
    w->argv[w->argc++] = word;
    return 0;
}

static int add_kv(struct words *w, const char *key, const char *val)
{
    char *s;

    if (w->nowned == 32 || asprintf(&s, "%s=%s", key, val) < 0)
        return -1;
    w->owned[w->nowned++] = s;
    return add(w, s);
}

/* A positional argument as the help names it. */
static const char *shown(const char *key)
{
    return !strcmp(key, "name") ? "NAME" : !strcmp(key, "id") ? "DOMAIN" :
           !strcmp(key, "pool") ? "POOL" : !strcmp(key, "cpu") ? "CPU" : key;
}

static bool digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/*
 * What the daemon would refuse for its form alone is a usage error here,
 * said before anything is sent (exit 1); ranges and names that exist are
 * the daemon's to judge (exit 3).  0, or -1 with the reason printed.
 */
static int check_value(const char *key, const char *val, bool option)
{
    const char *why = NULL;
    size_t i, n = strlen(val);

    if (!strcmp(key, "vcpus") || !strcmp(key, "memory") ||
        !strcmp(key, "cpu")) {
        if (!digits(val) || n > 10)
            why = "a number is needed";
    } else if (!strcmp(key, "name")) {
        bool other = false;

        for (i = 0; i < n; i++)
            if (!((val[i] >= 'a' && val[i] <= 'z') ||
                  (val[i] >= 'A' && val[i] <= 'Z') ||
                  (val[i] >= '0' && val[i] <= '9') || val[i] == '-' ||
                  val[i] == '_' || val[i] == '.'))
                other = true;
        if (!n || n > 63 || other)
            why = "a name is 1 to 63 letters, digits, '-', '_' or '.'";
        else if (digits(val))
            why = "a name of digits alone would read as an id";
    } else if (!strcmp(key, "gran")) {
        if (strcmp(val, "cpu") && strcmp(val, "core") && strcmp(val, "socket"))
            why = "cpu, core or socket is needed";
    } else if (!strcmp(key, "uuid")) {
        bool dash;

        for (i = 0; i < n; i++) {
            dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? val[i] != '-' : !isxdigit((unsigned char)val[i]))
                break;
        }
        if (n != 36 || i != n)
            why = "a uuid (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) is needed";
    }
    if (!why)
        return 0;
    fprintf(stderr, "hypfsctl: %s%s '%s': %s\n", option ? "--" : "",
            option ? key : shown(key), val, why);
    return -1;
}

/*
 * Options after the command: --key VALUE (or --key=VALUE) for those in
 * @keys, positional arguments for @pos in order.  -1 on a usage error.
 */
static int build(struct words *w, int argc, char **argv, const char *const *pos,
                 int npos, const char *const *keys, const char *flag)
{
    int i, p = 0;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];

        /* A switch without a value: key=1. */
        if (flag && !strncmp(a, "--", 2) && !strcmp(a + 2, flag)) {
            if (add_kv(w, flag, "1"))
                return -1;
        } else if (!strncmp(a, "--", 2)) {
            const char *eq = strchr(a, '=');
            size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            char key[32] = "";
            int k, known = 0;

            if (klen < sizeof(key)) {
                memcpy(key, a + 2, klen);
                key[klen] = '\0';
                for (k = 0; keys && keys[k]; k++)
                    known |= !strcmp(keys[k], key);
            }
            if (!known && flag && !strcmp(key, flag)) {
                fprintf(stderr, "hypfsctl: --%s takes no value\n", flag);
                return -1;
            }
            if (!known) {
                fprintf(stderr, "hypfsctl: unknown option %.*s\n",
                        (int)(klen + 2), a);
                return -1;
            }
            if (!val) {
                fprintf(stderr, "hypfsctl: %s needs a value\n", a);
                return -1;
            }
            if (check_value(key, val, true) || add_kv(w, key, val))
                return -1;
        } else if (p < npos) {
            if (check_value(pos[p], a, false) || add_kv(w, pos[p], a))
                return -1;
            p++;
        } else {
            fprintf(stderr, "hypfsctl: unexpected argument '%s'\n", a);
            return -1;
        }
    }
    if (p < npos) {
        fprintf(stderr, "hypfsctl: missing %s\n", shown(pos[p]));
        return -1;
    }
    return 0;
}

static const struct command {
    const char *name;
    const char *pos[2];
    int npos;
    const char *keys[5];
    const char *flag;           /* a --switch without a value */
} commands[] = {
    { "domain-create", { "name" }, 1, { "vcpus", "memory", "pool", "uuid" },
      "channel" },
    { "domain-channel", { "id" }, 1, { NULL } },
    { "domain-destroy", { "id" }, 1, { NULL } },
    { "domain-pause", { "id" }, 1, { NULL } },
    { "domain-unpause", { "id" }, 1, { NULL } },
    { "domain-list", { NULL }, 0, { NULL } },
    { "pool-create", { "name" }, 1, { "sched", "gran" } },
    { "pool-destroy", { "id" }, 1, { NULL } },
    { "pool-list", { NULL }, 0, { NULL } },
    { "cpu-move", { "cpu", "pool" }, 2, { NULL } },
    { "cpu-remove", { "cpu" }, 1, { NULL } },
    { "stats", { NULL }, 0, { NULL } },
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { "json", no_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    char **rest = NULL;
    bool json = false;
    int nrest = 0, j;
    const char *socket_path = NULL, *text;
    const struct command *cmd = NULL;
    struct hypfs_client_opts opts = { NULL };
    struct hypfs_client c;
    struct words w = { .argc = 0 };
    uint32_t text_len;
    size_t i;
    int opt, status, err, ret = 0;

    /* Options before the command only: the command's own follow it. */
    while ((opt = getopt_long(argc, argv, "+s:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("hypfsctl (hypfs) %s\n", HYPFS_VERSION_STRING);
            return 0;
        case 'j':
            json = true;
            break;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 1;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[optind], commands[i].name))
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "hypfsctl: unknown command '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }
    /* The general options after the command too. */
    rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return 2;
    for (j = optind + 1; j < argc; j++) {
        if (!strcmp(argv[j], "--help") || !strcmp(argv[j], "-h")) {
            usage_of(cmd->name);
            free(rest);
            return 0;
        }
        if (!strcmp(argv[j], "--version") || !strcmp(argv[j], "-V")) {
            printf("hypfsctl (hypfs) %s\n", HYPFS_VERSION_STRING);
            free(rest);
            return 0;
        }
        if ((!strcmp(argv[j], "--socket") || !strcmp(argv[j], "-s")) &&
            j + 1 < argc)
            socket_path = argv[++j];
        else if (!strncmp(argv[j], "--socket=", 9))
            socket_path = argv[j] + 9;
        else if (!strcmp(argv[j], "--json"))
            json = true;
        else
            rest[nrest++] = argv[j];
    }
    add(&w, cmd->name);
    if (build(&w, nrest, rest, cmd->pos, cmd->npos, cmd->keys, cmd->flag)) {
        ret = 1;
        goto out;
    }

    opts.socket_path = socket_path;
    err = hypfs_client_open(&c, &opts);
    if (err) {
        fprintf(stderr, "hypfsctl: %s\n", c.err);
        ret = 2;
        goto out;
    }
    err = hypfs_client_ctl(&c, w.argc, w.argv, &status, &text, &text_len);
    if (err) {
        fprintf(stderr, "hypfsctl: %s: %s\n", cmd->name, c.err);
        ret = 2;
    } else if (status) {
        fprintf(stderr, "hypfsctl: %s: %.*s (%s)\n", cmd->name, (int)text_len,
                text, strerror(-status));
        /* No right to hypfsd's control door: as when it cannot be reached. */
        ret = status == -EACCES ? 2 : 3;
    } else if (json && !strcmp(cmd->name + strlen(cmd->name) - 5, "-list"))
        ret = print_json_table(text, text_len);
    else if (json && !strcmp(cmd->name, "stats"))
        ret = print_json_stats(text, text_len);
    else
        fwrite(text, 1, text_len, stdout);
    hypfs_client_close(&c);
 out:
    for (i = 0; i < (size_t)w.nowned; i++)
        free(w.owned[i]);
    free(rest);
    return ret;
}
