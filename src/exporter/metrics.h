/*
 * From a hypfs subtree to the Prometheus exposition formats.
 *
 * The mapping (documented in hypfs-exporter(8)): numbers become gauges,
 * strings _info metrics with the value as a label, a directory named by a
 * number (an instance of a dynamic directory: /domain/<id>, /cpupool/<id>)
 * a label named after its parent and, if it has a "name" string, a name
 * label; /buildinfo becomes one hypfs_build_info.  Names and label values
 * are always valid and escaped, whatever bytes the entries hold.
 *
 * Not thread-safe: one struct metrics per scrape, used by one thread.
 */
#ifndef HYPFS_EXPORTER_METRICS_H
#define HYPFS_EXPORTER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include <xenhypfs.h>

struct metrics_opts {
    bool openmetrics;           /* OpenMetrics 1.0.0, else text 0.0.4 */
    size_t max_value_len;       /* longer strings: a _crc32 gauge instead */
    const char *const *exclude; /* absolute paths left out, with all below */
    size_t nexclude;
    /* Values of entries a guest writes that may be label values. */
    const char *const *guest_values;
    size_t nguest_values;
};

/* What the exporter says about the scrape itself. */
struct metrics_meta {
    bool up;                    /* the hypervisor was read */
    double duration_s;          /* the scrape, reading and mapping */
    unsigned long long errors_total;    /* failed scrapes since start */
    const char *version;        /* the exporter's, for its build_info */
};

struct metrics;

/* A new, empty scrape; NULL if out of memory.  The options are copied. */
struct metrics *metrics_new(const struct metrics_opts *opts);

/*
 * Add the @n entries xenhypfs_read_tree() gave for the absolute path
 * @root.  The entries are only read during the call.  0, or -ENOMEM.
 */
int metrics_add_tree(struct metrics *m, const char *root,
                     const struct xenhypfs_tree_entry *e, unsigned int n);

/* Whether @m is in OpenMetrics' format (its options'). */
bool metrics_openmetrics(const struct metrics *m);

/* Entries added so far, and leaves among them that were not exported. */
unsigned long metrics_entries(const struct metrics *m);
unsigned long metrics_skipped(const struct metrics *m);

/*
 * The exposition, piece by piece, for sending as it is made: every family,
 * then the exporter's own metrics from @meta.  Each call sets *piece to
 * the next *len bytes, which belong to @m and stay valid until the next
 * call (a family's samples are freed once the call after them is made, so
 * memory shrinks as the response goes).  1 for a piece, 0 at the end,
 * -ENOMEM.  No more entries may be added once it was called.
 */
int metrics_next(struct metrics *m, const struct metrics_meta *meta,
                 const char **piece, size_t *len);

/*
 * The whole exposition at once (metrics_next() concatenated).  The text
 * is malloc()ed, *len bytes (NUL-terminated too): the caller frees it.
 * NULL if out of memory.
 */
char *metrics_render(struct metrics *m, const struct metrics_meta *meta,
                     size_t *len);

void metrics_free(struct metrics *m);

#endif /* HYPFS_EXPORTER_METRICS_H */
