/*
 * bracket.h -- a locked operation on an open arena: who may run it, the
 * arena lock around op.h's bracket, and where its errors go.
 *
 * Layer: bracket (above arena and op; api.c and names.c use it, so the
 * name directory needs nothing of api.c).  Every mutation passes
 * writable(); every locked one runs between locked_begin and locked_end.
 */
#ifndef FM_BRACKET_H
#define FM_BRACKET_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "arena.h"
#include "error.h"
#include "op.h"

/* The arena behind fi, if this process may use it; else NULL with the
 * last error EINVAL (no handle) or FM_EFORKED (a fork's inheritance). */
static FM_INLINE struct fm_arena *arena_here(struct fm_info *fi)
{
    if (!fi) {
        fm__set_last_error(EINVAL);
        return NULL;
    }
    struct fm_arena *a = arena_of(fi);
    if (fm_unlikely(arena_inherited(a))) {
        fm__set_last_error(FM_EFORKED);
        return NULL;
    }
    return a;
}

/* The arena, if this process may change it: also not read-only (EROFS).
 * Every mutation, the thread caches' fast paths included, passes here. */
static FM_INLINE struct fm_arena *writable(struct fm_info *fi)
{
    struct fm_arena *a = arena_here(fi);
    if (!a)
        return NULL;
    if (a->rdonly) {
        fm__set_last_error(EROFS);
        return NULL;
    }
    return a;
}

/* Take the lock: 0, or the error that refused it (a shared arena whose
 * lock cannot be taken: shared.h), then also the thread's last error with
 * the lock's words as the detail, and nothing to unlock. */
static inline int lock_or_refuse(struct fm_arena *a)
{
    int err = arena_lock(a);
    if (fm_unlikely(err))
        fm__set_last_detail(err, a->check_msg);
    return err;
}

/* Take the lock and begin one operation (op.h): true, or false as
 * lock_or_refuse refused it, with nothing to end. */
static inline bool locked_begin(struct fm_arena *a)
{
    if (lock_or_refuse(a))
        return false;
    op_begin(&a->heap);
    return true;
}

/* End it (commit if it succeeded, else roll back), unlock, report: 0 or
 * the error, which is also the thread's last error. */
int locked_end(struct fm_arena *a, bool ok);

#endif
