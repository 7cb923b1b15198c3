/*
 * shared.h -- the arena lock of FM_SHARED arenas: a robust, process-shared
 * mutex in the file (format.h, struct fmt_shared), and the repair of a
 * heap whose lock holder died.
 *
 * Layer: shared (above heap, op and recover; the arena calls it).  The
 * invariants it keeps, for every process of a shared set:
 *   S1 a heap operation runs only with sh_mutex held, so the superblock's
 *      undo log holds at most the operation of the one holder;
 *   S2 a holder that dies leaves the mutex "owner died" (the kernel's
 *      robust futex list, through the C library); the next locker rolls
 *      its log back -- checked on a private copy first, as an open's
 *      recovery is -- before any other operation runs, else no operation
 *      runs again in this set (the mutex is left unrecoverable);
 *   S3 what a process keeps of the heap in its own memory (the mapped
 *      size, the fresh mark, the poison notes) is reread whenever another
 *      open held the lock since (sh_holder is not its token), so nothing
 *      another process changed is trusted from memory;
 *   S4 no waiter sleeps for good: a waiter looks at the lock again every
 *      few milliseconds, because the wake-up an unlock sends may go to a
 *      waiter that is killed before it takes the lock (shared.c).
 */
#ifndef FM_SHARED_H
#define FM_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "recover.h"

/* One process's view of the shared lock (the arena's). */
struct shared {
    struct fmt_shared *blk;   /* in the mapping; NULL: not a shared arena */
    struct heap *h;
    int fd;
    uint64_t page_size;
    uint64_t reserved;        /* bytes of address space mapped at h->base */
    uint64_t me;              /* this open's sh_holder token (shared.c) */
    bool reread;              /* the next lock rereads the heap (S3) */
    recover_verify_fn verify; /* what a repair checks beside the heap */
    char *why;                /* a failed repair says why here (the arena's check_msg) */
    size_t why_len;
};

/* The first opener of a fresh set (alone, the file's exclusive flock
 * held, no operation in flight): give the arena its block -- the one a
 * dead set left, else a new allocation -- and a new lock.  0 or an error
 * (why set). */
int shared_setup(struct shared *s);
/* A later opener: find the block of the set it joins and check that its
 * lock is one this library can take (ENOTSUP otherwise).  0 or an error. */
int shared_attach(struct shared *s);
/* Take the lock (S1), repairing a dead holder's operation (S2) and
 * rereading the heap (S3).  0; FM_ECORRUPT (a repair failed, now or
 * before: the set can do nothing more; why set); another errno. */
int shared_lock(struct shared *s);
void shared_unlock(struct shared *s);
/* The last closer (alone again, exclusive flock held, lock not held):
 * free the block and clear sb_shared.  0 or FM_ECORRUPT. */
int shared_teardown(struct shared *s);

#endif
