/*
 * hypfsd internals: the hypervisor model, its filesystem, parameters,
 * caller mapping, control commands and the socket server.
 *
 * Locks, outermost first:
 *   the hypfs tree lock (the core's; per operation);
 *   model.lock: the lists of domains and cpupools and every field of them,
 *     except pool->gran, which a hypfs write changes under the tree's
 *     writer lock and the model's reader lock, and is therefore atomic;
 *   callers.lock: the uid -> domain mapping (replaced on SIGHUP);
 *   chan.lock: the guests' channels (channel.c);
 *   server.lock: the set of connections.
 * Parameters live under the tree lock: only hypfs reads and writes touch
 * them after start-up.
 */
#ifndef HYPFSD_H
#define HYPFSD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hypfs/hypfs.h>

#include "wire.h"

/* ---- Logging (log.c) ---- */

enum { L_ERR = 3, L_WARNING = 4, L_NOTICE = 5, L_INFO = 6, L_DEBUG = 7 };

extern int log_threshold;
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * For messages a peer can trigger: at most a burst of them per interval,
 * then one line saying how many were left out.  One per kind of message,
 * static: LOG_RATELIMIT_INIT.
 */
struct log_ratelimit {
    pthread_mutex_t lock;
    int64_t window_start_ms;
    unsigned int in_window;
    unsigned long suppressed;
};
#define LOG_RATELIMIT_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 }
void log_limited(struct log_ratelimit *rl, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t monotonic_ms(void);
#define log_err(...)     log_msg(L_ERR, __VA_ARGS__)
#define log_warn(...)    log_msg(L_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(L_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(L_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(L_DEBUG, __VA_ARGS__)

/* ---- The hypervisor model (model.c) ---- */

#define MAX_CPUS        1024
#define NAME_MAX_LEN    63
#define DOMID_MAX       32751u      /* Xen's DOMID_FIRST_RESERVED - 1 */
#define DOMAIN_STATUS_MAX 128u      /* /domain/<id>/guest-status, NUL too */

enum gran { GRAN_CPU, GRAN_CORE, GRAN_SOCKET };
enum dom_state { DOM_RUNNING, DOM_PAUSED };

struct cpupool {
    uint32_t id;
    char name[NAME_MAX_LEN + 1];
    char sched[16];
    atomic_int gran;                /* enum gran */
    unsigned int ncpus;
    unsigned int ndomains;
    uint64_t cpus[MAX_CPUS / 64];
    struct hypfs_gens gens;         /* the core's, under the tree lock */
};

struct domain {
    uint32_t id;
    uint64_t serial;                /* this incarnation: never reused */
    char name[NAME_MAX_LEN + 1];
    uint8_t uuid[16];
    uint32_t vcpus;
    uint64_t memory_kib;
    uint32_t pool;
    enum dom_state state;
    char status[DOMAIN_STATUS_MAX];  /* the guest's own; the tree lock */
    struct hypfs_gens gens;         /* the core's, under the tree lock */
    struct domain *name_next;       /* model.by_name's chain */
};

struct model {
    pthread_rwlock_t lock;
    unsigned int host_cpus;
    int cpu_pool[MAX_CPUS];         /* pool id of each cpu, -1: none */
    struct cpupool **pools;         /* sorted by id */
    size_t npools;
    struct domain **domains;        /* sorted by id */
    size_t ndomains;
    /*
     * Domains by name, hashed: every create looks its name up, and at
     * 32,751 domains a scan of them all was most of a create's time.
     */
    struct domain **by_name;
    size_t name_buckets;            /* a power of two, or 0 */
    /*
     * The ids in use, a bit each: when every id is taken but a few, the
     * next free one is found in 512 words, not 32,751 lookups.
     */
    uint64_t domid_used[(DOMID_MAX + 64) / 64];
    uint32_t next_domid;
    uint32_t next_poolid;
    uint64_t next_serial;
};

extern struct model model;

int model_init(void);
void model_fini(void);
/* Read-side locking that nests within one thread (dynamic directories). */
void model_read_lock(void);
void model_read_unlock(void);
struct cpupool *model_find_pool(uint32_t id);     /* model.lock held */
struct domain *model_find_domain(uint32_t id);    /* model.lock held */
/* By name (names are unique); NULL if none.  model.lock held. */
struct cpupool *model_find_pool_named(const char *name);
struct domain *model_find_domain_named(const char *name);
/*
 * The first free domain id from @from on, wrapping round past DOMID_MAX
 * to 1, as Xen hands them out; 0 if none is free.  model.lock held.
 */
uint32_t model_free_domid(uint32_t from);
/* Mark @id used or free (model.lock held for writing). */
void model_domid_mark(uint32_t id, bool used);
/*
 * Enter @d (its name set) in, or take it out of, the index by name
 * (model.lock held for writing).  0, or -ENOMEM (then nothing changed).
 */
int model_name_add(struct domain *d);
void model_name_remove(struct domain *d);
bool model_domain_exists(uint32_t id);            /* takes model.lock */
const char *gran_name(int gran);
int gran_parse(const char *s);
/* Format a cpu set as ranges ("0-3,6"). */
void cpus_format(const uint64_t *cpus, char *buf, size_t len);
void uuid_format(const uint8_t uuid[16], char out[37]);

/* The tree hypfsd serves (set once at start). */
extern struct hypfs *hypfsd_fs;

/*
 * Tell the tree what changed in the model (interface version 2): after
 * the change, with model.lock released.  @fmt names the path.
 */
void model_changed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void model_gone(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Control commands (ctl.c) ---- */

/* Output and status of one command; text is NUL-terminated. */
struct ctl_result {
    int status;                     /* 0 or -errno */
    char *text;                     /* owned, may be NULL */
    size_t len;
};

void ctl_run(int argc, const char **argv, struct ctl_result *res);

/* ---- Parameters (params.c) ---- */

/* Every parameter back to its default (at start; and for tests). */
void params_reset(void);
/* Apply a Xen-style command line.  0, or -1 with *err set (static). */
int params_cmdline(const char *cmdline, char *err, size_t errlen);
void params_add(struct hypfs_entry_dir *dir);

/* ---- The filesystem (fstree.c) ---- */

int fstree_build(struct hypfs *fs);
/* /test/: every kind of entry, for testing tools (--test-tree). */
int fstree_add_test(struct hypfs *fs);

/* ---- Callers (callers.c) ---- */

/*
 * Load the mapping from @path (NULL: defaults only) and publish it.
 * 0 or -1 (logged; the old mapping stays).
 */
int callers_load(const char *path);
/*
 * Around a change of the list of domains, with model.lock held for
 * writing (so that no request sees a destroyed domain as live, nor a new
 * one as absent): begin takes what publishing will need and may fail
 * (-ENOMEM: then change nothing); end publishes the mapping as the
 * domains now are, and cannot fail.  Between them the publication lock
 * is held.
 */
int callers_change_begin(void);
void callers_change_end(void);

/* An immutable snapshot of the mapping; see callers.c. */
struct callers_snap;
/* A reference to the current snapshot (released with callers_put()). */
struct callers_snap *callers_get(void);
void callers_put(struct callers_snap *s);
/* Is @s still the current snapshot?  One atomic load, no lock. */
bool callers_current(const struct callers_snap *s);
/* The caller a peer with @uid is: flags 0 if it has no hypfs right. */
void callers_lookup(const struct callers_snap *s, uid_t uid, uint32_t *domid,
                    unsigned int *flags);
unsigned int callers_limit_per_uid(const struct callers_snap *s);
void callers_free(void);

/* ---- Requests as they arrive (frames.c) ---- */

/*
 * Check a request's header before reading its payload: magic, version,
 * and a payload length within the bound for its type.  0 or -EPROTO.
 */
int hypfsd_check_request_hdr(const struct hypfs_msg_hdr *hdr);

/*
 * Take apart the payload of a HYPFS_MSG_OP frame (@len bytes).  Every
 * length must agree with the others and with the bounds of msg.h.  On
 * success *op is a copy of the fixed part and *path / *data point into
 * @payload.  0 or -EPROTO.
 */
int hypfsd_parse_op(const void *payload, size_t len, struct hypfs_msg_op *op,
                    const uint8_t **path, const uint8_t **data);

/*
 * The caller's memory for one HYPFS_MSG_OP: the path bytes sent at arg1,
 * the data bytes sent at arg3 (reads of anything else fault), and an
 * output buffer of arg4 bytes at arg3 that grows as the core writes to it
 * (never beyond HYPFS_MSG_REPLY_MAX: past it the buffer faults).
 */
struct watchset;
struct hypfsd_guest {
    struct watchset *watches;   /* the connection's (NULL: none) */
    uint64_t arg1, arg3, arg4;
    const uint8_t *path;
    uint32_t path_len;
    const uint8_t *data;
    uint32_t data_len;
    uint8_t *out;               /* owned; reused between requests */
    size_t out_len;             /* highest byte written + 1 */
    size_t out_cap;
    struct dbudget *domain;     /* out is counted against it (NULL: none) */
    size_t out_charged;
};

extern const struct hypfs_guest_ops hypfsd_guest_ops;

/* Prepare @g for the request @op (keeps the output buffer). */
void hypfsd_guest_init(struct hypfsd_guest *g, const struct hypfs_msg_op *op,
                       const uint8_t *path, const uint8_t *data);
/* Release the output buffer. */
void hypfsd_guest_fini(struct hypfsd_guest *g);

/*
 * Parse the words of a HYPFS_MSG_CTL payload into @argv (at most @max,
 * pointing into @payload).  Returns the count, or -EPROTO if the payload
 * is not NUL-terminated words or has too many.
 */
int hypfsd_parse_ctl(const char *payload, size_t len, const char **argv,
                     int max);

/* ---- The main loop's event sources (listen.c) ---- */

enum loop_kind { SRC_LISTEN, SRC_PRIV, SRC_SIGNAL, SRC_WAKE, SRC_PENDING,
                 SRC_CHANNEL };
/* The first member of whatever the main loop's epoll data points to. */
struct loop_source {
    enum loop_kind kind;
};

/* ---- Guests' channels (channel.c) ---- */

struct channel;
struct sock_place;
/*
 * Channels are made in @sp's directory (NULL: nowhere; then creating one
 * fails), listened on by the main loop's @epfd, and connectable by
 * hypfsd's user, root and the group @gid ((gid_t)-1: none).
 */
void channels_init(const struct sock_place *sp, int epfd, gid_t gid);
/*
 * A channel for the domain to be named @name: its socket is made and
 * listening, but nobody is accepted before channel_publish().  0, or
 * -errno with @err saying why (naming the path).
 */
int channel_open(const char *name, struct channel **out, char *err,
                 size_t errlen);
/* Whose it is (model.lock held for writing, with the domain inserted). */
void channel_bind_domain(struct channel *ch, uint32_t domid, uint64_t serial);
/* Accept on it from now on.  The registry owns @ch from then on. */
void channel_publish(struct channel *ch);
/* A channel never published: its socket goes, and it is freed. */
void channel_discard(struct channel *ch);
/*
 * The domain @domid of incarnation @serial is destroyed (model.lock held
 * for writing): its channel's requests get -EPERM from now on and its
 * socket is removed at once.  True if it had one: then server_wake(),
 * once no lock is held, has the main loop close it.
 */
bool channel_domain_gone(uint32_t domid, uint64_t serial);
/* The channel path of domain @domid: 0, or -ENOENT if it has none. */
int channel_of_domain(uint32_t domid, char *path, size_t len);
/* A connection's reference. */
void channel_get(struct channel *ch);
void channel_put(struct channel *ch);
/* The channel's domain in *domid; false once the domain is gone. */
bool channel_identity(const struct channel *ch, uint32_t *domid);
uint32_t channel_domid(const struct channel *ch);
/* The domain's name it was made for (its socket's). */
const char *channel_name(const struct channel *ch);
/* The main loop's part: accept what waits; close what was retired. */
void channels_accept(struct channel *ch);
void channels_reap(void);
/* At stop: every channel's socket removed and closed. */
void channels_fini(void);
/*
 * A channel of domain @domid (incarnation @serial) with no socket and in
 * no list, for tests and fuzzing; released with channel_put().
 */
struct channel *channel_detached(uint32_t domid, uint64_t serial);

/* ---- Server (server.c) ---- */

struct server_opts {
    const char *socket_path;
    unsigned int max_clients;       /* connections of other domains */
    unsigned int max_control;       /* connections of the control domain */
    unsigned int max_pending;       /* unmapped peers awaiting their answer */
    unsigned int idle_timeout_s;    /* other domains' idle connections */
    size_t guest_buffer_max;        /* what each of them may make us hold */
    unsigned int max_watches;       /* per connection */
    gid_t channel_gid;              /* may connect to channels; -1: none */
};

/* One toolstack connection can watch every domain's directory. */
#define WATCHES_PER_CONN_DEFAULT 65536u
#define SERVER_OPTS_DEFAULT \
    { NULL, 256, 256, 64, 60, GUEST_BUDGET_DEFAULT, WATCHES_PER_CONN_DEFAULT, \
      (gid_t)-1 }

/* ---- Each domain's memory budget (budget.c) ---- */

/* --guest-buffer's default: what one domain may make hypfsd hold. */
#define GUEST_BUDGET_DEFAULT    (4u << 20)

struct dbudget;
/*
 * Domain @domid's budget, with a reference (budget_put() drops it); NULL
 * for domain 0 (and without memory): no budget, every charge succeeds.
 */
struct dbudget *budget_get(uint32_t domid);
struct dbudget *budget_ref(struct dbudget *b);
void budget_put(struct dbudget *b);
/* Count @n more bytes: 0, or -ENOSPC (nothing counted) beyond the budget. */
int budget_charge(struct dbudget *b, size_t n);
/* The same, waiting until @deadline_ms (monotonic) for room to come. */
int budget_charge_wait(struct dbudget *b, size_t n, int64_t deadline_ms);
void budget_uncharge(struct dbudget *b, size_t n);
/* What an allocation really costs: its usable size and its header. */
size_t budget_cost(const void *p);
void budget_set_max(size_t max);
size_t budget_max(void);
uint32_t budget_domid(const struct dbudget *b);
struct budget_stats {
    size_t max;                 /* each domain's budget */
    size_t total;               /* held now, all domains together */
    size_t most;                /* held now by the domain holding most */
    size_t peak_domain;         /* the most one domain ever held */
    size_t domains;             /* holding anything now */
    size_t refused;             /* charges refused so far */
    size_t paced;               /* writes made to wait so far */
};
void budget_stats(struct budget_stats *s);
/*
 * A write by @b's domain is coming: how long (microseconds) it must wait
 * for its turn first, its turn taken (0 for the control domain's).
 */
int64_t budget_write_pace(struct dbudget *b);

/* ---- Watches (watch.c) ---- */

/*
 * A connection's watches.  Made with its connection: the peer's uid (whom
 * its watches are checked as, through the mapping), or its channel (then
 * its domain is the caller, and events go out as channel frames); whether
 * it is the control domain's; its domain's budget (a reference is taken),
 * charged for every byte its watches hold.  Closed with it.
 */
struct watchset *watchset_new(uid_t uid, struct channel *ch, bool control,
                              struct dbudget *b);
void watchset_close(struct watchset *ws);
/* Watches in the set, and the descriptor readable when events are due. */
size_t watchset_count(const struct watchset *ws);
int watchset_fd(const struct watchset *ws);
/*
 * After a watch or unwatch operation (in the connection's thread, with no
 * tree lock held): apply what it staged, and check a new watch once.
 * 0 or -errno (no memory: the watch is not made).
 */
int watch_apply(struct watchset *ws, const struct hypfs_caller *caller);
/* Send the events due on @fd (blocking): 0, or -1 if it failed. */
int watch_flush(struct watchset *ws, int fd);
/*
 * Register the core's watch ops and change hook, and start the notifier
 * thread.  0 or -errno.
 */
int watch_start(struct hypfs *fs, unsigned int max_watches);
void watch_stop(void);
/* Who is who changed (a reload, a domain created or destroyed). */
void watch_everything_changed(void);
void watch_stats(size_t *sets_watching, size_t *watches);

/* ---- The audit trail (audit.c) ---- */

/*
 * The value at @path as the audit shows it (bounded, escaped), in @out,
 * and its generation as the control domain sees it (0: none) in @gen: a
 * write changed something exactly when that moved.
 */
void audit_value(struct hypfs *fs, const char *path, char *out, size_t cap,
                 uint64_t *gen);
/*
 * A write by @uid as @c: logged when it succeeded (@ret 0) and @changed
 * something, at the audit's rate (audit.c), debug if refused.
 * AUDIT_UID_CHANNEL for a guest's, through its domain's channel.
 */
#define AUDIT_UID_CHANNEL ((uid_t)-1)
void audit_write(const struct hypfs_caller *c, uid_t uid, const char *path,
                 const char *before, const char *after, long ret,
                 bool changed);
/* A control command that changes something: as audit_write(). */
void audit_ctl(uid_t uid, int argc, const char *const *argv, int status);
/* The thread that says coalesced changes; audit_stop() says what waits. */
int audit_start(void);
void audit_stop(void);
struct audit_stats {
    unsigned long lines;        /* audit lines logged */
    unsigned long coalesced;    /* changes coalesced into a summary */
    unsigned int waiting;       /* entries with changes waiting */
};
void audit_stats(struct audit_stats *s);

/* ---- Server internals (server.c, listen.c, sockdir.c) ---- */

/* Connections of domains (server.c). */
void server_init(struct hypfs *fs, const struct server_opts *opts,
                 int wake_fd);
const struct server_opts *server_opts(void);
/* Stop signalling the wake eventfd (before it is closed). */
void server_forget_wake(void);
/*
 * Serve @fd, whose peer @cred is mapped to a domain (the control domain
 * if @control), in a thread of its own if its class's budget allows;
 * else close it.  Whenever a connection ends, @wake_fd is signalled.
 */
struct ucred;
void server_start_conn(int fd, const struct ucred *cred, bool control,
                       unsigned int limit_per_uid);
/*
 * Serve @fd, accepted on the channel @ch (a VMM, peer @cred): a guest's
 * connection whose identity is the channel's domain.
 */
void server_start_channel(int fd, const struct ucred *cred,
                          struct channel *ch);
/* Wake the main loop (a channel was retired). */
void server_wake(void);
/*
 * A new channel named @name is published: hang up the VMMs still
 * connected to an earlier channel of that name, whose domain is gone, so
 * that they reconnect (QEMU's reconnect=) to the new one.  No lock held.
 */
void server_hang_up_old_channels(const char *name);
/* Connections now, and the most there were at once (@peak may be NULL). */
void server_counts(unsigned int *control, unsigned int *guests,
                   unsigned int *peak);
/* Hypercalls hypfsd ran, from every caller, since it started. */
unsigned long server_ops_served(void);
/* End every connection and wait (5 s) for their threads: 0, or 1. */
int server_drain(void);
extern struct log_ratelimit rl_refused;

/* The socket's place (sockdir.c). */
struct sock_place {
    int dirfd;
    char dir[4096];
    char name[256];
    char lock_name[256];
    char priv_name[256];
    dev_t dev, priv_dev;        /* the socket files we bound */
    ino_t ino, priv_ino;
    bool inherited;             /* systemd's sockets: never removed */
};
/*
 * Take the socket at @path and the control domain's own beside it
 * (*priv_fd): the listening socket for everyone, or -1 (logged).
 */
int sockdir_take(const char *path, struct sock_place *sp, int *lock_fd,
                 int *priv_fd);
/* Sockets passed by systemd (@n from descriptor @first); as above. */
int sockdir_inherit(int first, int n, struct sock_place *sp, int *priv_fd);
/*
 * Bind and listen on the socket @name in the place (@mask as the umask,
 * given to group @gid unless (gid_t)-1): its descriptor, or -1 (logged).
 */
int sockdir_bind(const struct sock_place *sp, const char *name, mode_t mask,
                 gid_t gid, int backlog, dev_t *dev, ino_t *ino);
/* Remove our socket and lock, and nothing that is not ours any more. */
void sockdir_release(struct sock_place *sp, int lock_fd);
/*
 * Remove the sockets named @prefix... in the socket directory that are
 * ours and that nobody serves: left by a hypfsd killed before it could
 * (its guests' channels).  Only while holding the lock.  How many went.
 */
int sockdir_sweep(const struct sock_place *sp, const char *prefix);

/* 0 after a clean stop, -1 if it could not start, 1 if threads remain. */
int server_run(struct hypfs *fs, const struct server_opts *opts,
               const char *config_path);

/*
 * Serve the connection @fd (whose peer is user @uid) in this thread until
 * the peer closes it or breaks the protocol, then close it: exactly what a
 * connection thread does.  For tests and fuzzing.  0, or -ENOMEM when it
 * could not start (@fd is closed either way).
 */
int server_serve_fd(struct hypfs *fs, int fd, uid_t uid);
/* The same for a connection to the channel @ch (see channel_detached()). */
int server_serve_channel_fd(struct hypfs *fs, int fd, struct channel *ch);

#endif /* HYPFSD_H */
