/*
 * target.h -- the fmalloc-compatible API's current arena: one per thread,
 * and a process default.
 *
 * Layer: target, below api: api.c's fmalloc_init makes a new arena the
 * default and fm_close forgets a closing one, so that no thread keeps a
 * closed arena as its target.  compat.c reads the target through the
 * public fmalloc_target() only.
 */
#ifndef FM_TARGET_H
#define FM_TARGET_H

#include "fmalloc.h"

/* fi, just opened by fmalloc_init: the process default and the calling
 * thread's target. */
void target_opened(struct fm_info *fi);
/* fi is about to be freed: no longer the default, nor this thread's
 * target (other threads' choices are theirs: fmalloc.h). */
void target_forget(struct fm_info *fi);

#endif
