/*
 * The access-rights matrix, from the documentation: every kind of caller
 * x every documented path x every command gives exactly the result that
 * docs/paths.md's tags and SPEC section 1 say.
 *
 * docs/paths.md is parsed for its paths and tags; <id> is instantiated
 * with every live domain (0, 1, 2) and cpupool (0, 1).  Callers, each a
 * process running as its own uid (so that the kernel, not the test, says
 * who is calling): the control domain (root), domain 1 and domain 2
 * (users mapped to them) and an unmapped user.  Expected, for a domain:
 * an entry is visible when it and every directory above it is tagged
 * `any`, or `owner` with the domain's own <id>; the control domain sees
 * everything; an unmapped caller gets -EPERM for every command.  Then:
 *   get_version  the interface version (or -EPERM);
 *   read         0 and the entry, with max_write_len > 0 exactly when the
 *                caller may write it; -ENOENT when invisible;
 *   listing      exactly the documented children the caller can see, and
 *                records that add up to content_len;
 *   write        of the entry's own current content: 0 for the control
 *                domain on a `w` entry, and for the owning domain on an
 *                `owner-w` one (-EBUSY for sched-gran of a pool with
 *                cpus, as documented), and the value unchanged;
 *                -EACCES for anything else visible; -ENOENT when invisible.
 * Needs root (to run callers as other users); skipped otherwise.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define UID_DOM1        65534
#define UID_DOM2        65533
#define UID_UNMAPPED    65532
#define MAX_DOC         256
#define MAX_PATHS       1024
#define BUF             (1 << 20)

/* ---- The document ---- */

struct doc_entry {
    char pattern[256];          /* as written, <id> and all */
    bool dir, w, any, owner, owner_w;
};

static struct doc_entry doc[MAX_DOC];
static size_t ndoc;

static void parse_doc(void)
{
    const char *root = getenv("SOURCE_ROOT");
    char file[4096], line[1024];
    FILE *f;

    snprintf(file, sizeof(file), "%s/docs/paths.md", root ? root : ".");
    f = fopen(file, "r");
    if (!f)
        fail_msg("cannot read %s", file);
    while (fgets(line, sizeof(line), f)) {
        struct doc_entry *e = &doc[ndoc];
        char *p, *end, *tags = NULL;

        if (strncmp(line, "#### /", 6))
            continue;
        assert_true(ndoc < MAX_DOC);
        memset(e, 0, sizeof(*e));
        p = line + 5;
        end = p + strcspn(p, " \n");
        snprintf(e->pattern, sizeof(e->pattern), "%.*s", (int)(end - p), p);
        e->dir = end[-1] == '/';
        /* Tags: the last [...] of the line. */
        end = strrchr(line, ']');
        if (end && (p = strrchr(line, '[')) && p < end) {
            *end = '\0';
            tags = p + 1;
        }
        for (p = tags ? strtok(tags, ",") : NULL; p; p = strtok(NULL, ",")) {
            e->w |= !strcmp(p, "w");
            e->any |= !strcmp(p, "any");
            e->owner |= !strcmp(p, "owner");
            e->owner_w |= !strcmp(p, "owner-w");
        }
        ndoc++;
    }
    fclose(f);
    assert_true(ndoc > 20);
}

static const struct doc_entry *doc_find(const char *pattern)
{
    size_t i;

    for (i = 0; i < ndoc; i++)
        if (!strcmp(doc[i].pattern, pattern))
            return &doc[i];
    return NULL;
}

/* ---- Live paths, with what the document says of each ---- */

struct path {
    char path[256];             /* live: <id> replaced */
    char pattern[256];
    const struct doc_entry *e;
    int id;                     /* the <id>, or -1 */
    bool domain;                /* the <id> is a domain's */
};

static struct path paths[MAX_PATHS];
static size_t npaths;

static const int domain_ids[] = { 0, 1, 2 };
static const int pool_ids[] = { 0, 1 };

static void instantiate(void)
{
    size_t i, k;

    for (i = 0; i < ndoc; i++) {
        const char *at = strstr(doc[i].pattern, "<id>");
        bool dom = !strncmp(doc[i].pattern, "/domain/", 8);
        size_t n = !at ? 1 : dom ? 3 : 2;

        for (k = 0; k < n; k++) {
            struct path *p = &paths[npaths++];

            assert_true(npaths <= MAX_PATHS);
            p->e = &doc[i];
            memcpy(p->pattern, doc[i].pattern, sizeof(p->pattern));
            p->id = !at ? -1 : dom ? domain_ids[k] : pool_ids[k];
            p->domain = at && dom;
            if (!at)
                memcpy(p->path, doc[i].pattern, sizeof(p->path));
            else if (snprintf(p->path, sizeof(p->path), "%.*s%d%s",
                              (int)(at - doc[i].pattern), doc[i].pattern,
                              p->id, at + 4) >= (int)sizeof(p->path))
                fail_msg("%s: too long", doc[i].pattern);
        }
    }
}

/* ---- In the caller's process ---- */

static struct daemon d;
static FILE *report;
static unsigned int checks, mismatches;

static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void mismatch(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(report, fmt, ap);
    va_end(ap);
    fputc('\n', report);
    mismatches++;
}

/* ---- What a caller should get ---- */

enum caller { CONTROL, DOM1, DOM2, UNMAPPED };

static const char *const caller_names[] = {
    "the control domain", "domain 1", "domain 2", "an unmapped user",
};

/* May @c read the documented entry @e (instantiated with @p's id)? */
static bool readable(enum caller c, const struct doc_entry *e,
                     const struct path *p)
{
    if (c == CONTROL)
        return true;
    if (e->any)
        return true;
    return e->owner && p->domain && p->id == (c == DOM1 ? 1 : 2);
}

/* The entry and every documented directory above it. */
static bool visible(enum caller c, const struct path *p)
{
    char pattern[256];
    char *slash;

    if (!readable(c, p->e, p))
        return false;
    snprintf(pattern, sizeof(pattern), "%s", p->pattern);
    for (;;) {
        const struct doc_entry *up;
        size_t len = strlen(pattern);

        if (len <= 1)
            return true;
        if (pattern[len - 1] == '/')
            pattern[len - 1] = '\0';
        slash = strrchr(pattern, '/');
        slash[1] = '\0';
        up = doc_find(pattern);
        if (!up) {
            mismatch("%s: its directory %s is not documented", p->pattern,
                     pattern);
            return false;
        }
        if (!readable(c, up, p))
            return false;
    }
}

static long op(struct hypfs_client *cl, unsigned int cmd, const char *path,
               const void *data, uint32_t dlen, uint64_t bufsize,
               const uint8_t **out, uint32_t *out_len)
{
    struct hypfs_msg_op o = {
        .cmd = cmd,
        .arg1 = path ? 0x1000 : 0,
        .arg2 = path ? strlen(path) + 1 : 0,
        .arg3 = cmd == XEN_HYPFS_OP_get_version ? 0 : 0x100000,
        .arg4 = cmd == XEN_HYPFS_OP_read ? bufsize : dlen,
        .path_len = path ? (uint32_t)strlen(path) + 1 : 0,
        .data_len = dlen,
    };
    long ret;
    int err = tclient_op(cl, &o, path, data, &ret, out, out_len);

    if (err) {
        mismatch("%s: transport error %d", path ? path : "get_version", err);
        return err;
    }
    return ret;
}

static void expect(const char *what, const char *path, long got, long want)
{
    checks++;
    if (got != want)
        mismatch("%s %s: %ld, expected %ld", what, path, got, want);
}

/* The names a listing holds, checked to add up to content_len. */
static void listing_names(const char *path, const uint8_t *content,
                          uint32_t len, char names[][64], size_t *n)
{
    uint32_t off = 0;

    *n = 0;
    while (off < len) {
        struct xen_hypfs_dirlistentry r;
        const char *name = (const char *)content + off +
                           XEN_HYPFS_DIRENTRY_NAME_OFF;
        size_t nl;

        memcpy(&r, content + off, sizeof(r));
        nl = strnlen(name, len - off - XEN_HYPFS_DIRENTRY_NAME_OFF);
        if (*n < 64)
            snprintf(names[(*n)++], 64, "%s%s", name,
                     r.e.type == XEN_HYPFS_TYPE_DIR ? "/" : "");
        if (!r.off_next) {
            if (off + XEN_HYPFS_DIRENTRY_SIZE(nl) != len)
                mismatch("listing %s: records do not add up to content_len",
                         path);
            return;
        }
        if (r.off_next != XEN_HYPFS_DIRENTRY_SIZE(nl))
            mismatch("listing %s: a record's off_next is wrong", path);
        off += r.off_next;
    }
    if (len)
        mismatch("listing %s: no last record", path);
}

/* The documented children of @dir (a live directory path) @c can see. */
static size_t expected_children(enum caller c, const struct path *dir,
                                char names[][64])
{
    size_t i, n = 0, dl = strlen(dir->path);

    for (i = 0; i < npaths; i++) {
        const struct path *p = &paths[i];
        const char *rest;

        if (strncmp(p->path, dir->path, dl) || !p->path[dl])
            continue;
        rest = p->path + dl;
        /* One level down: "name" or "name/". */
        if (strchr(rest, '/') && strchr(rest, '/')[1])
            continue;
        if (visible(c, p) && n < 64)
            snprintf(names[n++], 64, "%s", rest);
    }
    return n;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void check_listing(enum caller c, const struct path *p,
                          const uint8_t *content, uint32_t len)
{
    char got[64][64], want[64][64];
    size_t ngot, nwant, i;

    listing_names(p->path, content, len, got, &ngot);
    nwant = expected_children(c, p, want);
    /* As sets: the order itself is the unit tests' to check. */
    qsort(got, ngot, sizeof(got[0]), cmp_name);
    qsort(want, nwant, sizeof(want[0]), cmp_name);
    checks++;
    if (ngot != nwant) {
        mismatch("listing %s: %zu entries, expected %zu", p->path, ngot,
                 nwant);
        return;
    }
    for (i = 0; i < ngot; i++)
        if (strcmp(got[i], want[i]))
            mismatch("listing %s: '%s' where '%s' was expected",
                     p->path, got[i], want[i]);
}

static void check_path(struct hypfs_client *cl, enum caller c,
                       const struct path *p)
{
    bool vis = c != UNMAPPED && visible(c, p);
    bool may_write = (c == CONTROL && p->e->w) ||
                     (c != UNMAPPED && p->e->owner_w && p->domain &&
                      p->id == (c == DOM1 ? 1 : c == DOM2 ? 2 : 0));
    struct xen_hypfs_direntry e;
    const uint8_t *out;
    uint32_t out_len;
    uint8_t *before = NULL;
    long want, ret;

    /* Read. */
    ret = op(cl, XEN_HYPFS_OP_read, p->path, NULL, 0, BUF, &out, &out_len);
    want = c == UNMAPPED ? -EPERM : vis ? 0 : -ENOENT;
    expect("read", p->path, ret, want);
    if (!ret && vis) {
        memcpy(&e, out, sizeof(e));
        checks++;
        if ((e.max_write_len != 0) != may_write)
            mismatch("read %s: max_write_len %u, but %s %s write it",
                     p->path, e.max_write_len, caller_names[c],
                     may_write ? "may" : "may not");
        if ((e.type == XEN_HYPFS_TYPE_DIR) != p->e->dir)
            mismatch("read %s: a %s, documented as a %s", p->path,
                     e.type == XEN_HYPFS_TYPE_DIR ? "directory" : "leaf",
                     p->e->dir ? "directory" : "leaf");
        if (p->e->dir)
            check_listing(c, p, out + sizeof(e), e.content_len);
        before = malloc(e.content_len ? e.content_len : 1);
        if (!before)
            _exit(103);
        memcpy(before, out + sizeof(e), e.content_len);
    }

    /* Write its own content back. */
    if (before) {
        ret = op(cl, XEN_HYPFS_OP_write_contents, p->path, before,
                 e.content_len, 0, &out, &out_len);
        if (!may_write)
            want = -EACCES;
        else if (!strcmp(p->pattern, "/cpupool/<id>/sched-gran") && p->id == 0)
            want = -EBUSY;      /* pool 0 has cpus */
        else
            want = 0;
        expect("write", p->path, ret, want);
        ret = op(cl, XEN_HYPFS_OP_read, p->path, NULL, 0, BUF, &out, &out_len);
        checks++;
        if (ret || memcmp(out, &e, sizeof(e)) ||
            memcmp(out + sizeof(e), before, e.content_len))
            mismatch("write %s: the value changed", p->path);
        free(before);
    } else {
        ret = op(cl, XEN_HYPFS_OP_write_contents, p->path, "x", 2, 0, &out,
                 &out_len);
        expect("write", p->path, ret, c == UNMAPPED ? -EPERM : -ENOENT);
    }
}

static void run_caller(enum caller c, int out_fd)
{
    static const uid_t uids[] = { 0, UID_DOM1, UID_DOM2, UID_UNMAPPED };
    struct hypfs_client cl;
    const uint8_t *out;
    uint32_t out_len;
    size_t i;

    report = fdopen(out_fd, "w");
    if (!report)
        _exit(100);
    if (uids[c] && (setgid(uids[c]) || setuid(uids[c]))) {
        fprintf(report, "cannot become uid %u\n", (unsigned int)uids[c]);
        _exit(101);
    }
    if (tclient_open(&cl, d.socket)) {
        fprintf(report, "cannot connect\n");
        _exit(102);
    }
    expect("get_version", "", op(&cl, XEN_HYPFS_OP_get_version, NULL, NULL,
                                 0, 0, &out, &out_len),
           c == UNMAPPED ? -EPERM : XEN_HYPFS_VERSION);
    for (i = 0; i < npaths; i++)
        check_path(&cl, c, &paths[i]);
    hypfs_client_close(&cl);
    fprintf(report, "%u checks, %u mismatches\n", checks, mismatches);
    fclose(report);
    _exit(mismatches ? 1 : 0);
}

static void check_caller(enum caller c)
{
    char text[65536];
    size_t len = 0;
    ssize_t n;
    int fds[2], status;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (!pid) {
        close(fds[0]);
        run_caller(c, fds[1]);
    }
    close(fds[1]);
    while (len < sizeof(text) - 1 &&
           (n = read(fds[0], text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    printf("%s: %s", caller_names[c], text);
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        fail_msg("%s: results differ from the documentation", caller_names[c]);
}

/* ---- The tests ---- */

static int setup(void **state)
{
    static const char *const args[] = { "--test-tree", "--quiet", NULL };
    char config[128];
    struct hypfs_client cl;
    const char *text;
    uint32_t len;
    int st1 = -1, st2 = -1, st3 = -1;
    const char *a[] = { "domain-create", "name=one" };
    const char *b[] = { "domain-create", "name=two" };
    const char *p[] = { "pool-create", "name=empty" };

    (void)state;
    if (geteuid() != 0) {
        printf("skipped: needs root to run callers as other users\n");
        exit(77);
    }
    parse_doc();
    instantiate();
    snprintf(config, sizeof(config), "map %d 1\nmap %d 2\n", UID_DOM1,
             UID_DOM2);
    if (daemon_start(&d, config, args))
        return -1;
    if (tclient_open(&cl, d.socket) ||
        hypfs_client_ctl(&cl, 2, a, &st1, &text, &len) ||
        hypfs_client_ctl(&cl, 2, b, &st2, &text, &len) ||
        hypfs_client_ctl(&cl, 2, p, &st3, &text, &len) || st1 || st2 || st3)
        return -1;
    hypfs_client_close(&cl);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return daemon_stop(&d) ? -1 : 0;
}

static void test_control_domain(void **state)
{
    (void)state;
    check_caller(CONTROL);
}

static void test_domain_1(void **state)
{
    (void)state;
    check_caller(DOM1);
}

static void test_domain_2(void **state)
{
    (void)state;
    check_caller(DOM2);
}

static void test_unmapped(void **state)
{
    (void)state;
    check_caller(UNMAPPED);
}

/*
 * Every command reads a name of digits alone as an id (as xl does), so
 * such a name would later stand for another domain: refused at creation,
 * by the daemon itself whatever the client.
 */
static void test_names_not_ids(void **state)
{
    static const char *const bad[][2] = {
        { "domain-create", "name=1" },
        { "domain-create", "name=007" },
        { "pool-create", "name=22" },
    };
    const char *fine[] = { "domain-create", "name=1a" };
    struct hypfs_client cl;
    const char *text;
    uint32_t len;
    size_t i;
    int st;

    (void)state;
    assert_int_equal(tclient_open(&cl, d.socket), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(hypfs_client_ctl(&cl, 2, bad[i], &st, &text, &len),
                         0);
        assert_int_equal(st, -EINVAL);
        assert_non_null(strstr(text, "digits alone"));
    }
    assert_int_equal(hypfs_client_ctl(&cl, 2, fine, &st, &text, &len), 0);
    assert_int_equal(st, 0);
    hypfs_client_close(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_domain),
        cmocka_unit_test(test_domain_1),
        cmocka_unit_test(test_domain_2),
        cmocka_unit_test(test_unmapped),
        /* Last: it adds a domain. */
        cmocka_unit_test(test_names_not_ids),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
