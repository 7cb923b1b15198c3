/*
 * api.h -- what the public entry points share with the compat layer.
 */
#ifndef FM_API_H
#define FM_API_H

#include "fmalloc.h"

#include "error.h"
/* fm_close() is about to free fi: stop using it as the default target. */
void fm__compat_forget(struct fm_info *fi);
/* Did the open that made fi create or initialise the arena? */
bool fm__arena_initialised(struct fm_info *fi);

#endif
