/*
 * The lock assertions: each misuse of the tree lock, which would
 * otherwise deadlock or corrupt silently, aborts with a message naming
 * it.  Each case runs in a child process, which must die of SIGABRT with
 * the message on its stderr.  (Builds with NDEBUG have no assertions:
 * the tests are skipped there.)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct hypfs *fs;
static int misuse;

enum {
    LOCK_TWICE,
    UNLOCK_UNLOCKED,
    WRITE_LOCK_FROM_CALLBACK,
    BUF_OUTSIDE_CALLBACK,
    BUF_PRINTF_OUTSIDE_CALLBACK,
    DYNDATA_OUTSIDE,
    DYNID_OUTSIDE,
};

static int misusing_read(const struct hypfs_entry *e, struct hypfs_buf *b)
{
    if ( misuse == WRITE_LOCK_FROM_CALLBACK )
        hypfs_write_lock(fs);
    return hypfs_buf_put_num(b, e, 1);
}

static const struct hypfs_funcs misusing_funcs = { .read = misusing_read };
static struct hypfs_entry_leaf misusing = {
    .e = { .type = XEN_HYPFS_TYPE_UINT, .name = "misusing", .size = 4,
           .funcs = &misusing_funcs },
};

/* In the child: the misuse itself.  Returning means it was not caught. */
static void commit(int what)
{
    struct guest g;
    struct hypfs_caller c;
    unsigned char buf[64];
    uint32_t id;

    misuse = what;
    assert_int_equal(hypfs_new(&fs), 0);
    assert_int_equal(hypfs_add_leaf(hypfs_root(fs), &misusing, false), 0);
    switch ( what )
    {
    case LOCK_TWICE:
        hypfs_write_lock(fs);
        hypfs_write_lock(fs);
        break;
    case UNLOCK_UNLOCKED:
        hypfs_write_unlock(fs);
        break;
    case WRITE_LOCK_FROM_CALLBACK:
        guest_reset(&g);
        c = caller_control(&g);
        op_read(fs, &c, "/misusing", buf, sizeof(buf));
        break;
    case BUF_OUTSIDE_CALLBACK:
        hypfs_buf_put(NULL, "x", 1);
        break;
    case BUF_PRINTF_OUTSIDE_CALLBACK:
        hypfs_buf_printf(NULL, "%d", 1);
        break;
    case DYNDATA_OUTSIDE:
        (void)hypfs_get_dyndata();
        break;
    case DYNID_OUTSIDE:
        (void)hypfs_get_dynid(&id);
        break;
    }
}

/* Run misuse @what in a child: it must abort, saying @message. */
static void expect_abort(int what, const char *message)
{
#ifdef NDEBUG
    (void)what;
    (void)message;
    skip();
#else
    char path[] = "/tmp/hypfs-lockassert-XXXXXX";
    char out[512] = "";
    int fd = mkstemp(path), status;
    ssize_t n;
    pid_t pid;

    assert_true(fd >= 0);
    unlink(path);
    pid = fork();
    assert_true(pid >= 0);
    if ( pid == 0 )
    {
        struct sigaction sa = { .sa_handler = SIG_DFL };

        sigaction(SIGABRT, &sa, NULL);
        dup2(fd, STDERR_FILENO);
        alarm(10);      /* a deadlock instead of an abort fails, not hangs */
        commit(what);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    n = pread(fd, out, sizeof(out) - 1, 0);
    close(fd);
    assert_true(n >= 0);
    out[n] = '\0';
    if ( !WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT )
        fail_msg("misuse %d: not aborted (status %#x): %s", what, status, out);
    if ( !strstr(out, "hypfs: lock misuse") || !strstr(out, message) )
        fail_msg("misuse %d: message \"%s\"", what, out);
#endif
}

static void test_lock_twice(void **state)
{
    (void)state;
    expect_abort(LOCK_TWICE, "by a thread that holds the tree lock");
}

static void test_unlock_unlocked(void **state)
{
    (void)state;
    expect_abort(UNLOCK_UNLOCKED, "without hypfs_write_lock()");
}

static void test_write_lock_from_callback(void **state)
{
    (void)state;
    expect_abort(WRITE_LOCK_FROM_CALLBACK, "it would deadlock");
}

static void test_buf_outside_callback(void **state)
{
    (void)state;
    expect_abort(BUF_OUTSIDE_CALLBACK, "outside a read callback");
    expect_abort(BUF_PRINTF_OUTSIDE_CALLBACK, "outside a read callback");
}

static void test_dyn_outside_operation(void **state)
{
    (void)state;
    expect_abort(DYNDATA_OUTSIDE, "hypfs_get_dyndata() outside an operation");
    expect_abort(DYNID_OUTSIDE, "hypfs_get_dynid() outside an operation");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_twice),
        cmocka_unit_test(test_unlock_unlocked),
        cmocka_unit_test(test_write_lock_from_callback),
        cmocka_unit_test(test_buf_outside_callback),
        cmocka_unit_test(test_dyn_outside_operation),
    };

    return cmocka_run_group_tests_name("lockassert", tests, NULL, NULL);
}
