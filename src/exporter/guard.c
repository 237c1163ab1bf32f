/*
 * Slow and idle clients must not keep Prometheus out.
 *
 * libmicrohttpd closes a connection that makes no progress at all for a
 * while, but one byte every few seconds is progress: a local user holding
 * hundreds of such connections used to fill every slot.  So each
 * connection is followed here from the moment it is accepted:
 *
 *   waiting      connected, or its previous answer taken, and its next
 *                request's headers not all in: closed after
 *                header_timeout_s (a scraper sends its request at once);
 *   in request   closed if its answer is not taken within
 *                request_timeout_s.
 *
 * And there is always room for a new client: when one more connection
 * than max_connections (or than max_per_ip from its address) is open, the
 * one that has been waiting longest is closed for it, one that never had
 * an answer first (a scraper's kept-alive connection has had one); only
 * when none is waiting (all are being answered) is the new one refused.  A connection
 * whose whole request is already in its socket, not yet read, is not
 * waiting: it is about to be answered.  That is how a scraper's
 * connection looks from the moment it is accepted (its request follows
 * the handshake at once), so an attacker who opens connections faster
 * than this loop reads them still cannot have it closed; the attacker's
 * own are closed instead, oldest first.
 *
 * Closing is shutdown(2) of the connection's socket: libmicrohttpd sees
 * the end of the stream and closes it itself, in this same thread, so the
 * descriptor cannot be another one's by then.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>

#include "guard.h"

struct xconn {
    struct MHD_Connection *c;
    int fd;
    struct sockaddr_storage addr;
    int64_t since_ms;           /* connected, answered, or request began */
    bool in_request;
    bool answered;              /* has had an answer: a real client */
    bool closing;               /* shut down; libmicrohttpd will close it */
    struct xconn *prev, *next;  /* oldest first */
};

static struct {
    struct guard_opts o;
    struct xconn *head, *tail;
    unsigned long open;         /* not closing */
    struct guard_stats st;
} g;

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void guard_init(const struct guard_opts *o)
{
    memset(&g, 0, sizeof(g));
    g.o = *o;
}

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return true;        /* any other family: one "address" */
}

static void shut(struct xconn *x, unsigned long *counter)
{
    if (x->closing)
        return;
    shutdown(x->fd, SHUT_RDWR);
    x->closing = true;
    g.open--;
    (*counter)++;
}

/* Has a request's whole header arrived in @fd, not yet read? */
static bool request_in(int fd)
{
    char b[4096];
    ssize_t n = recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);

    /* Under TLS the bytes cannot be read here: any is taken as a request. */
    if (g.o.tls)
        return n > 0;
    return n >= 2 && (memmem(b, (size_t)n, "\r\n\r\n", 4) ||
                      memmem(b, (size_t)n, "\n\n", 2));
}

/*
 * The connection to close for @n (of @n's address only if @same_ip), the
 * first there is of: the one waiting longest that never had an answer;
 * the one waiting longest (a client's kept-alive connection between two
 * requests); one whose answer has been pending longer than a header
 * timeout.  NULL if none may go.
 */
static struct xconn *victim(const struct xconn *n, bool same_ip)
{
    int64_t now = now_ms();
    struct xconn *x, *idle = NULL, *slow = NULL;

    for (x = g.head; x; x = x->next) {
        if (x == n || x->closing ||
            (same_ip && !same_address(&x->addr, &n->addr)))
            continue;
        if (x->in_request) {
            if (!slow &&
                now - x->since_ms > (int64_t)g.o.header_timeout_s * 1000)
                slow = x;
        } else if (!request_in(x->fd)) {
            if (!x->answered)
                return x;
            if (!idle)
                idle = x;
        }
    }
    return idle ? idle : slow;
}

static void admit(struct xconn *n)
{
    unsigned int from_ip = 0;
    struct xconn *x;

    for (x = g.head; x; x = x->next)
        if (!x->closing && same_address(&x->addr, &n->addr))
            from_ip++;
    if (from_ip > g.o.max_per_ip) {
        x = victim(n, true);
        if (!x) {
            shut(n, &g.st.refused);
            return;
        }
        shut(x, &g.st.closed_for_room);
    }
    if (g.open > g.o.max_connections) {
        x = victim(n, false);
        shut(x ? x : n, x ? &g.st.closed_for_room : &g.st.refused);
    }
}

void guard_connection(void *cls, struct MHD_Connection *c,
                      void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    const union MHD_ConnectionInfo *fd, *addr;
    struct xconn *x = *socket_context;

    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!x)
            return;
        if (!x->closing)
            g.open--;
        if (x->prev)
            x->prev->next = x->next;
        else
            g.head = x->next;
        if (x->next)
            x->next->prev = x->prev;
        else
            g.tail = x->prev;
        free(x);
        *socket_context = NULL;
        return;
    }
    fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    x = fd ? calloc(1, sizeof(*x)) : NULL;
    if (!x) {
        /* Not followed, so not kept: libmicrohttpd closes it. */
        if (fd)
            shutdown(fd->connect_fd, SHUT_RDWR);
        g.st.refused++;
        return;
    }
    x->c = c;
    x->fd = fd->connect_fd;
    if (addr && addr->client_addr) {
        socklen_t len = addr->client_addr->sa_family == AF_INET6
                        ? sizeof(struct sockaddr_in6)
                        : sizeof(struct sockaddr_in);

        memcpy(&x->addr, addr->client_addr, len);
    }
    x->since_ms = now_ms();
    x->prev = g.tail;
    if (g.tail)
        g.tail->next = x;
    else
        g.head = x;
    g.tail = x;
    g.open++;
    *socket_context = x;
    admit(x);
}

static struct xconn *of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return i ? i->socket_context : NULL;
}

void guard_request(struct MHD_Connection *c)
{
    struct xconn *x = of(c);

    if (x && !x->in_request) {
        x->in_request = true;
        x->since_ms = now_ms();
    }
}

void guard_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                     enum MHD_RequestTerminationCode code)
{
    struct xconn *x = of(c);

    (void)cls;
    (void)req_cls;
    (void)code;
    if (x) {
        x->answered |= code == MHD_REQUEST_TERMINATED_COMPLETED_OK;
        x->in_request = false;
        x->since_ms = now_ms();
    }
}

void guard_sweep(void)
{
    int64_t now = now_ms();
    struct xconn *x;

    for (x = g.head; x; x = x->next) {
        int64_t age = now - x->since_ms;

        if (x->closing)
            continue;
        if (!x->in_request && age > (int64_t)g.o.header_timeout_s * 1000)
            shut(x, &g.st.closed_header_timeout);
        else if (x->in_request &&
                 age > (int64_t)g.o.request_timeout_s * 1000)
            shut(x, &g.st.closed_request_timeout);
    }
}

void guard_stats(struct guard_stats *s)
{
    *s = g.st;
    s->open = g.open;
}
