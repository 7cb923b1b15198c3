/*
 * recover.h -- bringing the heap of a crashed arena back to a consistent
 * state: the undo log rolled back, then the blocks thread caches held
 * freed.
 *
 * Layer: recover (above heap, op and os; below the caches and the arena,
 * which call it).  It works on a struct heap and the file's descriptor, not
 * on an arena, so neither the arena nor the caches need each other for it.
 */
#ifndef FM_RECOVER_H
#define FM_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"

/* What the layers above recovery check of a rolled-back heap besides
 * the heap itself (the name directory, which lives in its blocks): 0 or
 * FM_ECORRUPT with why set.  Passed down, so recovery depends on no layer
 * above it. */
typedef int (*recover_verify_fn)(struct heap *h, char *why, size_t why_len);

/* Roll back the log of a dirty arena whose heap h is mapped at h->base
 * (real_size bytes of the file fd).  Unless in_place (h->base is a private
 * mapping already), the rollback is first tried and checked on a private
 * mapping, so a file that cannot be recovered is left byte-identical.
 * The check is heap_check's, then verify's (if not NULL).
 * 0, ENOMEM, FM_ECORRUPT (why set) or an os error. */
int recover_log(struct heap *h, int fd, uint64_t page_size, uint64_t real_size, bool in_place,
                recover_verify_fn verify, char *why, size_t why_len);
/* Free every in-use chunk of at most max_chunk bytes that holds its cache
 * marker: a thread cache held it (the arena is not shared yet, or the
 * arena lock is held).  *swept counts them. */
int recover_sweep(struct heap *h, uint64_t max_chunk, uint64_t *swept);

#endif
