/*
 * compat.c -- the fmalloc-compatible allocation calls: fm_* on the
 * calling thread's current target.
 *
 * Layer: compat, on top of the public API alone: it includes fmalloc.h
 * and nothing of lib/, and calls only what fmalloc.h declares (the unit
 * test `layers` holds it to that).  With no target, the fm_* call gets a
 * NULL handle and fails with EINVAL, as fmalloc.h says these do.
 */
#include "fmalloc.h"

void *fmalloc(size_t size)
{
    return fm_malloc(fmalloc_target(), size);
}

void ffree(void *p)
{
    if (p)
        fm_free(fmalloc_target(), p);
}

void *fcalloc(size_t n, size_t size)
{
    return fm_calloc(fmalloc_target(), n, size);
}

void *frealloc(void *p, size_t size)
{
    return fm_realloc(fmalloc_target(), p, size);
}
