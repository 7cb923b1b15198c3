/*
 * error.h -- the calling thread's last error, shared by every layer that
 * can fail a public call (arena at open, api, compat).
 */
#ifndef FM_ERROR_H
#define FM_ERROR_H

#include "fmalloc.h"

/* Record err as the calling thread's last error and set errno from it. */
void fm__set_last_error(int err);
/* The same, with a detail (a corrupt arena's first violation) for
 * fm_last_error_detail(). */
void fm__set_last_detail(int err, const char *detail);
/* The errno value that stands for an fm error code. */
int fm__errno_of(int err);
/* An invalid pointer or corruption found by a call (no lock held): to the
 * arena's handler fn, or by default a message on stderr and abort(). */
void fm__report(struct fm_info *fi, fm_error_handler fn, void *arg, int err, const char *msg);

#endif
