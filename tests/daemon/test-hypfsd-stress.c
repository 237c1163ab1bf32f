/*
 * 64 clients at once for 10 s (HYPFS_STRESS_SECONDS): reads of every kind,
 * writes of parameters, listings, and a control client creating and
 * destroying domains.  No request may fail, and every value read must be
 * one of the values written whole: a torn or mixed value fails the test.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "daemon.h"
#include "client.h"
#include "tclient.h"

#define CLIENTS 64

static struct daemon d;
static atomic_int stop, errors;
static atomic_long ops, writes, domain_changes;

static const char *const levels[] = { "debug", "all/info", "error/warning" };
/* How each reads back (Xen's form: both levels, "debug" shown as "all"). */
static const char *const shown[] = { "all/all", "all/all", "error/warning" };
static const int32_t slices[] = { 30, 100, 1000 };

static void report(const char *what, const char *path, long ret)
{
    if (atomic_fetch_add(&errors, 1) < 10)
        fprintf(stderr, "%s %s: %ld\n", what, path, ret);
}

static long call(struct hypfs_client *c, unsigned int cmd, const char *path,
                 const void *data, uint32_t dlen, uint64_t bufsize,
                 const uint8_t **out, uint32_t *out_len)
{
    struct hypfs_msg_op op = {
        .cmd = cmd, .arg1 = 0x1000, .arg2 = strlen(path) + 1,
        .arg3 = 0x100000, .arg4 = cmd == XEN_HYPFS_OP_read ? bufsize : dlen,
        .path_len = (uint32_t)strlen(path) + 1, .data_len = dlen,
    };
    long ret;
    int err = tclient_op(c, &op, path, data, &ret, out, out_len);

    return err ? err : ret;
}

static void *client(void *arg)
{
    unsigned int id = (unsigned int)(uintptr_t)arg, seed = id * 7919u + 1;
    struct hypfs_client c;
    const uint8_t *out;
    uint32_t out_len;

    if (tclient_open(&c, d.socket)) {
        report("connect", d.socket, -1);
        return NULL;
    }
    while (!atomic_load(&stop)) {
        unsigned int r = (unsigned int)rand_r(&seed) % 10;
        long ret;
        size_t i;

        switch (r) {
        case 0: case 1: {     /* a string parameter: one of those written */
            bool known = false;

            ret = call(&c, XEN_HYPFS_OP_read, "/params/loglvl", NULL, 0, 4096,
                       &out, &out_len);
            for (i = 0; !ret && i < 3; i++)
                known |= out_len == 12 + strlen(shown[i]) + 1 &&
                         !strcmp((const char *)out + 12, shown[i]);
            known |= !ret && !strcmp((const char *)out + 12,
                                     "warning/warning");
            if (ret || !known)
                report("read", "/params/loglvl", ret);
            break;
        }
        case 2: {
            int32_t v = 0;
            bool known = false;

            ret = call(&c, XEN_HYPFS_OP_read, "/params/sched_credit_tslice_ms",
                       NULL, 0, 64, &out, &out_len);
            if (!ret && out_len == 16)
                memcpy(&v, out + 12, 4);
            for (i = 0; i < 3; i++)
                known |= v == slices[i];
            if (ret || !known)
                report("read", "/params/sched_credit_tslice_ms", ret);
            break;
        }
        case 3:
            ret = call(&c, XEN_HYPFS_OP_read, "/", NULL, 0, 65536, &out,
                       &out_len);
            if (ret)
                report("list", "/", ret);
            break;
        case 4:     /* a dynamic listing that changes under it */
            ret = call(&c, XEN_HYPFS_OP_read, "/domain", NULL, 0, 65536, &out,
                       &out_len);
            if (ret)
                report("list", "/domain", ret);
            break;
        case 5:
            ret = call(&c, XEN_HYPFS_OP_read, "/buildinfo/config", NULL, 0,
                       65536, &out, &out_len);
            if (ret || out[12] != 0x1f)
                report("read", "/buildinfo/config", ret);
            break;
        case 6:
            ret = call(&c, XEN_HYPFS_OP_read, "/domain/0/name", NULL, 0, 64,
                       &out, &out_len);
            if (ret || strcmp((const char *)out + 12, "Domain-0"))
                report("read", "/domain/0/name", ret);
            break;
        case 7: {
            const char *v = levels[rand_r(&seed) % 3];

            ret = call(&c, XEN_HYPFS_OP_write_contents, "/params/loglvl", v,
                       (uint32_t)strlen(v) + 1, 0, &out, &out_len);
            if (ret)
                report("write", "/params/loglvl", ret);
            atomic_fetch_add(&writes, 1);
            break;
        }
        case 8: {
            int32_t v = slices[rand_r(&seed) % 3];

            ret = call(&c, XEN_HYPFS_OP_write_contents,
                       "/params/sched_credit_tslice_ms", &v, 4, 0, &out,
                       &out_len);
            if (ret)
                report("write", "/params/sched_credit_tslice_ms", ret);
            atomic_fetch_add(&writes, 1);
            break;
        }
        default:
            ret = call(&c, XEN_HYPFS_OP_read, "/cpupool/0/sched-gran", NULL,
                       0, 64, &out, &out_len);
            if (ret || strcmp((const char *)out + 12, "cpu"))
                report("read", "/cpupool/0/sched-gran", ret);
        }
        atomic_fetch_add(&ops, 1);
    }
    hypfs_client_close(&c);
    return NULL;
}

/* The control domain's toolstack: domains come and go meanwhile. */
static void *controller(void *arg)
{
    struct hypfs_client c;
    unsigned int n = 0;

    (void)arg;
    if (tclient_open(&c, d.socket)) {
        report("connect", "ctl", -1);
        return NULL;
    }
    while (!atomic_load(&stop)) {
        char name[32], id[32];
        const char *argv[3] = { "domain-create", name, NULL };
        const char *text;
        uint32_t len;
        int status;

        snprintf(name, sizeof(name), "name=stress%u", n++);
        if (hypfs_client_ctl(&c, 2, argv, &status, &text, &len) || status ||
            len >= 20) {
            report("ctl", "domain-create", -1);
            break;
        }
        snprintf(id, sizeof(id), "id=%.*s", (int)len - 1, text);
        argv[0] = "domain-destroy";
        argv[1] = id;
        if (hypfs_client_ctl(&c, 2, argv, &status, &text, &len) || status) {
            report("ctl", "domain-destroy", -1);
            break;
        }
        atomic_fetch_add(&domain_changes, 2);
    }
    hypfs_client_close(&c);
    return NULL;
}

static void test_stress(void **state)
{
    const char *s = getenv("HYPFS_STRESS_SECONDS");
    unsigned int seconds = s ? (unsigned int)atoi(s) : 10;
    pthread_t t[CLIENTS + 1];
    struct timespec ts = { seconds, 0 };
    int i;

    (void)state;
    assert_int_equal(daemon_start(&d, NULL, NULL), 0);
    for (i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client,
                                        (void *)(uintptr_t)i), 0);
    assert_int_equal(pthread_create(&t[CLIENTS], NULL, controller, NULL), 0);
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (i = 0; i <= CLIENTS; i++)
        pthread_join(t[i], NULL);
    printf("%u s, %d clients: %ld requests (%ld writes), %ld domain "
           "changes, %d errors\n", seconds, CLIENTS, atomic_load(&ops),
           atomic_load(&writes), atomic_load(&domain_changes),
           atomic_load(&errors));
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(atomic_load(&writes) > 0);
    assert_true(atomic_load(&domain_changes) > 0);
    assert_int_equal(daemon_stop(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };

    return cmocka_run_group_tests_name("hypfsd-stress", tests, NULL, NULL);
}
