/*
 * api.h -- what the public entry points offer the compat layer beyond
 * fmalloc.h.  compat.c includes nothing else of the library, and api.c
 * calls nothing of compat.c: it runs the hook compat registered.
 */
#ifndef FM_API_H
#define FM_API_H

#include <stdbool.h>

#include "fmalloc.h"

#include "error.h"

/* Did the open that made fi create or initialise the arena? */
bool fm__arena_initialised(struct fm_info *fi);
/* fm_close() calls fn(fi) before it frees fi, so that nothing keeps fi as
 * a target.  One hook; setting it again replaces it. */
void fm__set_close_hook(void (*fn)(struct fm_info *fi));

#endif
