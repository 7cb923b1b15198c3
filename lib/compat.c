/*
 * compat.c -- the fmalloc-compatible API: one current target per thread.
 *
 * Layer: compat, on top of the public calls: it includes only api.h
 * (fmalloc.h, error.h and two calls of api.c).  A thread that never called
 * fmalloc_set_target() uses the most recently initialised arena (the
 * process default).
 */
#include <errno.h>
#include <stdatomic.h>

#include "api.h"

static _Atomic(struct fm_info *) default_target;
static _Thread_local struct fm_info *thread_target;
static _Thread_local bool thread_chose;

/* fm_close's hook: fi is about to be freed. */
static void forget(struct fm_info *fi)
{
    struct fm_info *expected = fi;
    atomic_compare_exchange_strong(&default_target, &expected, NULL);
    if (thread_target == fi)
        thread_target = NULL;
}

struct fm_info *fmalloc_init(const char *filepath, bool *init)
{
    struct fm_options o = {.flags = FM_CREATE};
    struct fm_info *fi;
    int err = fm_open(filepath, &o, &fi);
    if (err) {
        errno = fm__errno_of(err); /* fm_open kept the code and its detail */
        return NULL;
    }
    if (init)
        *init = fm__arena_initialised(fi);
    fm__set_close_hook(forget);
    atomic_store(&default_target, fi);
    thread_target = fi;
    thread_chose = true;
    return fi;
}

void fmalloc_set_target(struct fm_info *fi)
{
    fm__set_close_hook(forget);
    thread_target = fi;
    thread_chose = fi != NULL;
}

struct fm_info *fmalloc_target(void)
{
    return thread_chose ? thread_target : atomic_load(&default_target);
}

/* The current target, or NULL with errno EINVAL when there is none. */
static struct fm_info *target(void)
{
    struct fm_info *fi = fmalloc_target();
    if (!fi)
        fm__set_last_error(EINVAL);
    return fi;
}

void *fmalloc(size_t size)
{
    struct fm_info *fi = target();
    return fi ? fm_malloc(fi, size) : NULL;
}

void ffree(void *p)
{
    struct fm_info *fi = p ? target() : NULL;
    if (fi)
        fm_free(fi, p);
}

void *fcalloc(size_t n, size_t size)
{
    struct fm_info *fi = target();
    return fi ? fm_calloc(fi, n, size) : NULL;
}

void *frealloc(void *p, size_t size)
{
    struct fm_info *fi = target();
    return fi ? fm_realloc(fi, p, size) : NULL;
}
