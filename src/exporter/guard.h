/*
 * The exporter's guard against slow and idle clients (guard.c).
 *
 * Everything here runs in the one thread that runs libmicrohttpd's loop
 * (hypfs-exporter's main thread): no locks.
 */
#ifndef HYPFS_EXPORTER_GUARD_H
#define HYPFS_EXPORTER_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

struct guard_opts {
    unsigned int max_connections;       /* open at once */
    unsigned int max_per_ip;            /* open at once from one address */
    unsigned int header_timeout_s;      /* to send a request's headers */
    unsigned int request_timeout_s;     /* to take a whole answer */
    bool tls;                           /* what is in a socket is sealed */
};

void guard_init(const struct guard_opts *o);

/* MHD_OPTION_NOTIFY_CONNECTION and MHD_OPTION_NOTIFY_COMPLETED. */
void guard_connection(void *cls, struct MHD_Connection *c,
                      void **socket_context,
                      enum MHD_ConnectionNotificationCode code);
void guard_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                     enum MHD_RequestTerminationCode code);
/* A request's headers are in (the access handler's first call for it). */
void guard_request(struct MHD_Connection *c);
/* Close what overstayed; at least once a second. */
void guard_sweep(void);

struct guard_stats {
    unsigned long open;
    unsigned long closed_header_timeout, closed_request_timeout;
    unsigned long closed_for_room;      /* the oldest waiting, for a new one */
    unsigned long refused;              /* no room even so */
};
void guard_stats(struct guard_stats *s);

#endif
