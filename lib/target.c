/*
 * target.c -- the current target arena of the fmalloc-compatible API
 * (target.h).  A thread that never called fmalloc_set_target() uses the
 * most recently initialised arena (the process default).
 */
#include "target.h"

#include <stdatomic.h>

static _Atomic(struct fm_info *) default_target;
static _Thread_local struct fm_info *thread_target;
static _Thread_local bool thread_chose;

void target_opened(struct fm_info *fi)
{
    atomic_store(&default_target, fi);
    thread_target = fi;
    thread_chose = true;
}

void target_forget(struct fm_info *fi)
{
    struct fm_info *expected = fi;
    atomic_compare_exchange_strong(&default_target, &expected, NULL);
    if (thread_target == fi)
        thread_target = NULL;
}

void fmalloc_set_target(struct fm_info *fi)
{
    thread_target = fi;
    thread_chose = fi != NULL;
}

struct fm_info *fmalloc_target(void)
{
    return thread_chose ? thread_target : atomic_load(&default_target);
}
