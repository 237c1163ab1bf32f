/*
 * The machinery of one call, shared by the files of the dispatcher
 * (dispatch.c: version 1 and the common path; v2.c: interface version 2).
 * Private to src/core.
 */
#ifndef HYPFS_CALL_H
#define HYPFS_CALL_H

#include "core-internal.h"

#define STAGE_SIZE      4096u
#define ID_NAME_MAX     11u    /* "4294967295" and its NUL */

/* An instance of a dynamic directory, generated for one call. */
struct dyninst {
    struct hypfs_entry_dir dir;
    const struct hypfs_dyndir *dd;
    void *data;
    struct hypfs_gens *gens;          /* the object's, or NULL */
    uint32_t id;
    char name[ID_NAME_MAX];
};

/* Everything one call needs; on its stack. */
struct call {
    struct hypfs *fs;
    const struct hypfs_caller *caller;
    bool control;
    bool changes;                     /* may change the tree: see lookup() */
    const struct hypfs_dyndir *entered[MAX_DYN_DEPTH];
    unsigned int nentered;
    struct dyninst inst[MAX_DYN_DEPTH];
    unsigned int ninst;
    struct hypfs_buf render;
};

/* What a lookup found. */
struct resolved {
    struct hypfs_entry *entry;
    struct owner owner;
    bool in_inst;                     /* inside an instance */
    struct where w;                   /* where a change of it is recorded */
};

struct idname {
    uint32_t id;
    uint8_t len;
    char name[ID_NAME_MAX];
};

struct idlist {
    struct idname *v;
    size_t n, cap;
};

/* The children of one directory as seen by one caller. */
struct view {
    struct hypfs_entry_dir *dir;      /* as looked up (maybe an instance) */
    struct owner owner;               /* of dir: inherited by children */
    const struct hypfs_dyndir *dd;    /* dynamic: ids; else order */
    struct idlist ids;
    struct hypfs_entry **order;
    uint32_t nr;
};

/* One child of a view, static or instance. */
struct child {
    const struct hypfs_entry *entry;  /* NULL: an instance (of id) */
    uint32_t id;
    const char *name;
    size_t len;
    uint8_t access;
    struct owner owner;
};

/* Where the records go: a staging buffer flushed to the guest. */
struct stage {
    struct call *c;
    uint64_t addr;          /* guest address of the next flush */
    size_t used;
    /* Records end with up to 3 bytes of padding written as 4: slack. */
    unsigned char buf[STAGE_SIZE + 4];
};

/* The call this thread is in (NULL: none). */
struct call *call_current(void);

int to_guest(const struct hypfs_caller *caller, uint64_t addr,
             const void *src, size_t len);
int from_guest(const struct hypfs_caller *caller, void *dst, uint64_t addr,
               size_t len);

/* Inline: these are on every call's path. */
static inline bool may(const struct call *c, unsigned int right,
                       struct owner o)
{
    if ( c->control )
        return true;
    switch ( right )
    {
    case HYPFS_RIGHT_ANY:
        return true;
    case HYPFS_RIGHT_OWNER:
        return o.set && o.domid == c->caller->domid;
    default:
        return false;
    }
}

/* The owner of @e when its parent's owner is @inherited. */
static inline struct owner owner_of(const struct hypfs_entry *e,
                                    struct owner inherited)
{
    if ( e->type == XEN_HYPFS_TYPE_DIR && (e->flags & EF_HAS_OWNER) )
    {
        struct owner o = { true, ((const struct hypfs_entry_dir *)e)->owner };

        return o;
    }
    return inherited;
}

static inline unsigned int max_write_len(const struct call *c,
                                         const struct hypfs_entry *e,
                                         struct owner o)
{
    if ( e->type == XEN_HYPFS_TYPE_DIR || !may(c, RIGHT_WRITE(e->access), o) )
        return 0;
    return e->max_size;
}

int enter_dyndir(struct call *c, const struct hypfs_dyndir *dd);
void exit_dyndir(struct call *c);
bool entered(const struct call *c, const struct hypfs_dyndir *dd);
/*
 * Enter @dir if it is a dynamic directory this call has not entered yet:
 * *dd is then what exit_dyndir() must undo (NULL: nothing to undo).
 */
int enter_dir(struct call *c, const struct hypfs_entry_dir *dir,
              const struct hypfs_dyndir **dd);
bool parse_id(const char *s, size_t len, uint32_t *id);
/* Generate the instance @id of @dd for this call (pushed on c->inst). */
int make_instance(struct call *c, const struct hypfs_dyndir *dd, uint32_t id,
                  void *data, struct owner parent, struct hypfs_entry **out);
/* The directory whose index holds @dir's children. */
static inline struct hypfs_entry_dir *index_dir(struct hypfs_entry_dir *dir)
{
    if ( dir->e.flags & EF_INSTANCE )
        return ((struct dyninst *)dir)->dd->tmpl;
    return dir;
}

int lookup(struct call *c, const char *path, struct resolved *r);
/* The content of leaf @e: rendered into c->render, or in place. */
int leaf_content(struct call *c, const struct hypfs_entry *e,
                 const void **data, uint32_t *size);

int view_open(struct call *c, struct hypfs_entry_dir *dir, struct owner owner,
              struct view *v);
void view_close(struct view *v);
bool view_child(const struct view *v, size_t *i, struct child *ch);
int view_size(struct call *c, const struct view *v, uint32_t *size,
              size_t *count);
int dir_size(struct call *c, struct hypfs_entry_dir *dir, struct owner o,
             uint32_t *size);
int child_direntry(struct call *c, const struct view *v,
                   const struct child *ch, struct xen_hypfs_direntry *d);

int stage_flush(struct stage *s);
int stage_reserve(struct stage *s, size_t len, unsigned char **p);

void call_begin(struct call *c, struct hypfs *fs,
                const struct hypfs_caller *caller, bool write);
void call_end(struct call *c);

/* Interface version 2's commands (v2.c), after the lookup. */
long do_read_tree(struct call *c, const struct resolved *r, const char *path,
                  uint64_t addr, uint64_t len);
long do_get_generation(struct call *c, const struct resolved *r,
                       uint64_t addr, uint64_t len);
long do_watch(struct call *c, const struct resolved *r, const char *path,
              uint64_t token, uint64_t known);
/* unwatch takes no path: before the path checks. */
long do_unwatch(struct hypfs *fs, const struct hypfs_caller *caller,
                uint64_t arg1, uint64_t arg2, uint64_t token, uint64_t arg4);

#endif /* HYPFS_CALL_H */
