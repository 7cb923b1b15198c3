/*
 * api.h -- what the public entry points share with the compat layer.
 */
#ifndef FM_API_H
#define FM_API_H

#include "fmalloc.h"

/* Record err as the calling thread's last error and set errno from it. */
void fm__set_last_error(int err);
/* The same, with a detail (a corrupt arena's first violation) for
 * fm_last_error_detail(). */
void fm__set_last_detail(int err, const char *detail);
/* The errno value that stands for an fm error code. */
int fm__errno_of(int err);
/* fm_close() is about to free fi: stop using it as the default target. */
void fm__compat_forget(struct fm_info *fi);
/* Did the open that made fi create or initialise the arena? */
bool fm__arena_initialised(struct fm_info *fi);

#endif
