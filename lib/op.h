/*
 * op.h -- the one bracket of every operation that changes the heap.
 *
 * Layer: op (above heap and log; the caches and the api use it).  An
 * operation is the logged stores between op_begin and op_end, made with
 * the arena lock held, and this file alone applies the crash rules
 * (docs/crash-model.md):
 *   - an operation starts with no error and nothing to punch;
 *   - it commits only if it succeeded and recorded no error, else its
 *     log is rolled back: a failed call leaves the heap as it was;
 *   - the chunk a free released is punched only after the commit (the
 *     free is final) and before the lock is released (nobody carves from
 *     it first);
 *   - errors found during it go to the arena's handler through
 *     op_report, once no lock is held.
 * Several operations may run under one hold of the lock (a cache flush
 * frees block by block); each has its own bracket.
 */
#ifndef FM_OP_H
#define FM_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"

static inline void op_begin(struct heap *h)
{
    h->err = 0;
    h->punch_len = 0;
    h->poison_len = 0;
}

/* Roll the operation back (its stores are undone). */
void op_abort(struct heap *h);

/* End the operation: commit it (and punch what its free released) if `ok`
 * and no error was recorded, else roll it back.  0, or the error: h->err,
 * or ENOMEM for a failure that recorded none (no fit, no room). */
int op_end(struct heap *h, bool ok);

/* An error for the arena's handler (FM_EBADPTR, FM_ECORRUPT), with no
 * lock held. */
void op_report(struct heap *h, int err, const char *msg);

/* FM_DEBUG >= 2: the handler's words for a block handed out again whose
 * payload byte `byte` lost its poison (a thread cache's or the heap's). */
void op_write_after_free(char *why, size_t why_len, uint64_t block, uint64_t byte);
/* A write after free the heap found while the lock was held (heap.h
 * waf_block): true, its words in why, and cleared; the caller reports it
 * (FM_ECORRUPT, the call itself succeeds) once it has released the lock. */
bool op_take_notice(struct heap *h, char *why, size_t why_len);

#endif
