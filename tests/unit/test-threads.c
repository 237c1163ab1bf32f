/*
 * Concurrency: 8 threads read different paths while writers change values
 * and the shape of the tree.  Each reader must get its own path's answer
 * (a shared path buffer, as in Xen's dispatcher, would mix them up), and no
 * reader may see a half-written value or an inconsistent listing.  Built
 * also with ThreadSanitizer in CI.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "core-internal.h"

#define READERS     8
#define ITERATIONS  20000
#define BLOB_SIZE   256

static struct hypfs *fs;
static struct hypfs_entry_dir *churn;
static atomic_int stop;
/* Writes done so far: readers keep going until writers had their turn. */
static atomic_uint value_writes, shape_changes;
#define MIN_WRITES  2000u
static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail_once(const char *what, int reader)
{
    pthread_mutex_lock(&fail_lock);
    if ( !failures++ )
        fprintf(stderr, "reader %d: %s\n", reader, what);
    pthread_mutex_unlock(&fail_lock);
}

/* Every byte of a value equal: anything else is a torn read. */
static bool uniform(const unsigned char *p, size_t n)
{
    size_t i;

    for ( i = 1; i < n; i++ )
        if ( p[i] != p[0] )
            return false;
    return true;
}

static bool listing_consistent(const unsigned char *buf)
{
    struct xen_hypfs_direntry d;
    size_t off = 0, sum = 0;

    memcpy(&d, buf, sizeof(d));
    if ( !d.content_len )
        return true;
    for ( ;; )
    {
        struct xen_hypfs_dirlistentry rec;
        const char *name = (const char *)buf + 12 + off + 14;

        memcpy(&rec, buf + 12 + off, 14);
        sum += XEN_HYPFS_DIRENTRY_SIZE(strlen(name));
        if ( !rec.off_next )
            break;
        if ( rec.off_next != XEN_HYPFS_DIRENTRY_SIZE(strlen(name)) )
            return false;
        off += rec.off_next;
        if ( off >= d.content_len )
            return false;
    }
    return sum == d.content_len;
}

static void *reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    char own[32];
    unsigned char *buf = malloc(64 * 1024);
    struct guest g;
    struct hypfs_caller c;
    int i;

    snprintf(own, sizeof(own), "/r/%d", id);
    for ( i = 0; buf && (i < ITERATIONS || value_writes < MIN_WRITES ||
                         shape_changes < MIN_WRITES); i++ )
    {
        struct xen_hypfs_direntry d;
        uint32_t v;
        long ret;

        guest_reset(&g);
        c = caller_control(&g);
        switch ( i % 4 )
        {
        case 0:     /* my own leaf: value 1000 + my id */
        case 2:
            ret = op_read(fs, &c, own, buf, 64);
            memcpy(&v, buf + 12, 4);
            if ( ret || v != 1000u + (unsigned int)id )
                fail_once("wrong answer for own path", id);
            break;
        case 1:     /* a blob being rewritten */
            ret = op_read(fs, &c, "/w/blob", buf, 64 * 1024);
            memcpy(&d, buf, sizeof(d));
            if ( ret || d.content_len != BLOB_SIZE ||
                 !uniform(buf + 12, BLOB_SIZE) )
                fail_once("torn blob", id);
            ret = op_read(fs, &c, "/w/str", buf, 64 * 1024);
            memcpy(&d, buf, sizeof(d));
            if ( ret || !d.content_len || buf[12 + d.content_len - 1] ||
                 !uniform(buf + 12, d.content_len - 1) )
                fail_once("torn string", id);
            break;
        case 3:     /* a directory whose entries come and go */
            ret = op_read(fs, &c, "/churn", buf, 64 * 1024);
            if ( ret || !listing_consistent(buf) )
                fail_once("inconsistent listing", id);
            break;
        }
    }
    free(buf);
    return NULL;
}

static void *value_writer(void *arg)
{
    unsigned char blob[BLOB_SIZE];
    char str[200];
    struct guest g;
    struct hypfs_caller c;
    unsigned int n = 0;

    (void)arg;
    while ( !stop )
    {
        size_t len = 1 + n % 150;

        memset(blob, n & 1 ? 0xaa : 0x55, sizeof(blob));
        memset(str, 'a' + (int)(n % 26), len);
        str[len] = '\0';
        guest_reset(&g);
        c = caller_control(&g);
        if ( op_write(fs, &c, "/w/blob", blob, sizeof(blob)) ||
             op_write_str(fs, &c, "/w/str", str) )
            fail_once("write failed", -1);
        n++;
        value_writes++;
    }
    return NULL;
}

static void *shape_writer(void *arg)
{
    unsigned int n = 0;

    (void)arg;
    while ( !stop )
    {
        char name[32];
        struct hypfs_entry_leaf *l;
        uint8_t v = 1;

        snprintf(name, sizeof(name), "e%u", n % 97);
        if ( !hypfs_leaf_new(churn, name, XEN_HYPFS_TYPE_UINT, &v, 1, 0, &l) )
        {
            if ( n % 3 )
                hypfs_remove(churn, &l->e);
        }
        else
        {
            /* Exists already: remove whatever has that name. */
            unsigned int i;

            hypfs_write_lock(fs);
            for ( i = 0; i < dir_index(churn)->nr; i++ )
                if ( !strcmp(dir_index(churn)->order[i]->name, name) )
                    break;
            l = i < dir_index(churn)->nr ?
                (struct hypfs_entry_leaf *)dir_index(churn)->order[i]
                                  : NULL;
            hypfs_write_unlock(fs);
            if ( l )
                hypfs_remove(churn, &l->e);
        }
        n++;
        shape_changes++;
    }
    return NULL;
}

static void test_readers_and_writers(void **state)
{
    pthread_t r[READERS], w[2];
    struct hypfs_entry_dir *rd, *wd;
    unsigned char blob[BLOB_SIZE];
    int i;

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "r", &rd), 0);
    for ( i = 0; i < READERS; i++ )
    {
        char name[8];
        uint32_t v = 1000u + (unsigned int)i;

        snprintf(name, sizeof(name), "%d", i);
        assert_int_equal(hypfs_leaf_new(rd, name, XEN_HYPFS_TYPE_UINT, &v, 4, 0,
                                        NULL), 0);
    }
    memset(blob, 0x55, sizeof(blob));
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "w", &wd), 0);
    assert_int_equal(hypfs_leaf_new(wd, "blob", XEN_HYPFS_TYPE_BLOB, blob,
                                    BLOB_SIZE, BLOB_SIZE, NULL), 0);
    assert_int_equal(hypfs_leaf_new(wd, "str", XEN_HYPFS_TYPE_STRING, "a", 2,
                                    200, NULL), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "churn", &churn), 0);

    assert_int_equal(pthread_create(&w[0], NULL, value_writer, NULL), 0);
    assert_int_equal(pthread_create(&w[1], NULL, shape_writer, NULL), 0);
    for ( i = 0; i < READERS; i++ )
        assert_int_equal(pthread_create(&r[i], NULL, reader,
                                        (void *)(intptr_t)i), 0);
    for ( i = 0; i < READERS; i++ )
        pthread_join(r[i], NULL);
    stop = 1;
    pthread_join(w[0], NULL);
    pthread_join(w[1], NULL);
    assert_int_equal(failures, 0);
    assert_true(value_writes >= MIN_WRITES);
    assert_true(shape_changes >= MIN_WRITES);
    hypfs_free(fs);
}

/*
 * A write the caller may not make is refused without the writer lock: a
 * read in progress (a callback holding the reader lock until told) does
 * not delay the refusal.  (Before, the write waited for the writer lock
 * first, so a guest's write flood stopped every reader.)
 */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cond = PTHREAD_COND_INITIALIZER;
static bool slow_inside, slow_release, refusals_done;
static long refusal[2];

static int slow_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    (void)e;
    pthread_mutex_lock(&slow_lock);
    slow_inside = true;
    pthread_cond_broadcast(&slow_cond);
    while ( !slow_release )
        pthread_cond_wait(&slow_cond, &slow_lock);
    pthread_mutex_unlock(&slow_lock);
    return hypfs_buf_put_string(b, "slow");
}

static const struct hypfs_funcs slow_funcs = { .read = slow_read };
static HYPFS_VARSIZE_INIT(leaf_slow, XEN_HYPFS_TYPE_STRING, "slow", 0,
                          &slow_funcs);

static void *slow_reader(void *arg)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[64];

    (void)arg;
    guest_reset(&g);
    c = caller_control(&g);
    assert_int_equal(op_read(fs, &c, "/slow", buf, sizeof(buf)), 0);
    return NULL;
}

static void *guest_writer(void *arg)
{
    struct guest g;
    struct hypfs_caller c;

    (void)arg;
    guest_reset(&g);
    c = caller_domain(&g, 1);
    refusal[0] = op_write_str(fs, &c, "/w/public", "x");
    refusal[1] = op_write_str(fs, &c, "/w/hidden", "x");
    pthread_mutex_lock(&slow_lock);
    refusals_done = true;
    pthread_cond_broadcast(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    return NULL;
}

static void test_refusal_needs_no_writer_lock(void **state)
{
    struct hypfs_entry_dir *w;
    struct hypfs_entry_leaf *pub;
    struct timespec until;
    pthread_t r, g;
    bool done_while_reading;

    (void)state;
    assert_int_equal(hypfs_new(&fs), 0);
    hypfs_set_access(&hypfs_root(fs)->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    hypfs_string_set_reference(&leaf_slow, "slow");
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &leaf_slow, false), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "w", &w), 0);
    hypfs_set_access(&w->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    assert_int_equal(hypfs_leaf_new(w, "public", XEN_HYPFS_TYPE_STRING, "a", 2,
                                    16, &pub), 0);
    hypfs_set_access(&pub->e, HYPFS_RIGHT_ANY, HYPFS_RIGHT_CONTROL);
    assert_int_equal(hypfs_leaf_new(w, "hidden", XEN_HYPFS_TYPE_STRING, "a", 2,
                                    16, NULL), 0);

    assert_int_equal(pthread_create(&r, NULL, slow_reader, NULL), 0);
    pthread_mutex_lock(&slow_lock);
    while ( !slow_inside )
        pthread_cond_wait(&slow_cond, &slow_lock);
    pthread_mutex_unlock(&slow_lock);

    /* The reader holds the reader lock now, until released. */
    assert_int_equal(pthread_create(&g, NULL, guest_writer, NULL), 0);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&slow_lock);
    while ( !refusals_done &&
            !pthread_cond_timedwait(&slow_cond, &slow_lock, &until) )
        ;
    done_while_reading = refusals_done;
    slow_release = true;
    pthread_cond_broadcast(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    pthread_join(r, NULL);
    pthread_join(g, NULL);

    assert_true(done_while_reading);
    assert_int_equal(refusal[0], -EACCES);
    assert_int_equal(refusal[1], -ENOENT);
    hypfs_free(fs);
}

/*
 * A directory growing past the size where its tables are mappings of
 * their own (moved incrementally, given back page by page) while readers
 * look up what is there: every name added is found by every reader, all
 * the way through.  How long a reader waits is bench-core's to measure;
 * here: it completes, and nothing is ever missing.
 */
#define GROW_N 150000u
static atomic_uint grown;

static void grow_name(char *out, uint32_t i)
{
    snprintf(out, 32, "/g/entry%06u", i);
}

static void *grow_lookups(void *arg)
{
    uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    char path[32];
    unsigned int n = 0;

    while ( atomic_load(&grown) < GROW_N || n < 20000 )
    {
        uint32_t have = atomic_load(&grown), v = 0;

        if ( !have )
            continue;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        grow_name(path, (uint32_t)(x % have));
        if ( read_content(fs, path, &v, sizeof(v)) != 4 ||
             v != (uint32_t)(x % have) )
        {
            fail_once("an entry added before went missing while the "
                      "directory grew", (int)(uintptr_t)arg);
            break;
        }
        n++;
    }
    return NULL;
}

static void test_growth_under_readers(void **state)
{
    struct hypfs_entry_dir *g;
    pthread_t r[2];
    uint32_t i;

    (void)state;
    failures = 0;
    atomic_store(&grown, 0);
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_dir_new(hypfs_root(fs), "g", &g), 0);
    for ( i = 0; i < 2; i++ )
        assert_int_equal(pthread_create(&r[i], NULL, grow_lookups,
                                        (void *)(uintptr_t)i), 0);
    for ( i = 0; i < GROW_N; i++ )
    {
        char path[32];

        grow_name(path, i);
        assert_int_equal(hypfs_leaf_new(g, path + 3, XEN_HYPFS_TYPE_UINT, &i,
                                        4, 0, NULL), 0);
        atomic_store(&grown, i + 1);
    }
    for ( i = 0; i < 2; i++ )
        pthread_join(r[i], NULL);
    assert_int_equal(failures, 0);
    assert_int_equal(dir_index(g)->nr, GROW_N);
    hypfs_free(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_and_writers),
        cmocka_unit_test(test_refusal_needs_no_writer_lock),
        cmocka_unit_test(test_growth_under_readers),
    };

    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
