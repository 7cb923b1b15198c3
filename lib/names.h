/*
 * names.h -- the name directory: names bound to offsets, in the arena.
 *
 * Layer: names (above bracket.h's operation bracket, below api.c, whose
 * fm_check runs its check).  Owns the
 * directory blocks (format.h: struct fmt_names_table, fmt_name_entry) and
 * the invariants written there.  The public functions are fm_name_* in
 * fmalloc.h; this header is what the rest of the library calls.
 */
#ifndef FM_NAMES_H
#define FM_NAMES_H

#include <stddef.h>

#include "arena.h"

/* fm_check's part: verify the directory (lock held).  0, or FM_ECORRUPT
 * with the first violation in msg. */
int fm__names_check(struct fm_arena *a, char *msg, size_t msg_len);
/* The same on any view of a heap (recovery's rolled-back copy). */
int fm__names_check_heap(struct heap *h, char *msg, size_t msg_len);

#endif
