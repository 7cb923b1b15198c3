/*
 * arena.h -- an open arena: the file, its mapping, its lock, its heap.
 *
 * Layer: arena (ties os, format, log and heap together).  Invariants:
 *   - base never moves while the arena is open: the whole max_size range
 *     is reserved at open and the file is mapped at its start;
 *   - mapped >= sb_file_size; the file has real blocks for [0, mapped)
 *     (growth allocates them, so a full disk fails a growth, not a store);
 *   - a read-write arena holds an exclusive flock and has SB_DIRTY set in
 *     the file until fm_close() has synced it;
 *   - an FM_SHARED arena holds a shared flock and the writer mark
 *     (arena.c, "shared writers"), maps the file over its whole reserved
 *     range (growth by any process is there at once), and takes the lock in
 *     the file (shared.h) instead of `lock`; SB_DIRTY stays set until the
 *     last of its set closes.
 */
#ifndef FM_ARENA_H
#define FM_ARENA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fmalloc.h"
#include "heap.h"
#include "journal.h"
#include "shared.h"
#include "tcache.h"

#define FM_PUNCH_QUEUE 64 /* frees waiting to punch; a full queue syncs */

struct fm_arena {
    struct fm_info pub;          /* pub.mem == base; must stay first */
    char *base;
    int fd;
    bool rdonly;
    bool nosync;
    bool durable;                /* FM_DURABLE: a private mapping, committed through the journal */
    int commit_err;              /* an apply failed: the file waits for a reopen's replay (J3) */
    struct journal jnl;          /* FM_DURABLE's redo journal (journal.h) */
    int pagemap_fd;              /* FM_DURABLE: os_pagemap_open's, -1 if none */
    int (*verify)(struct heap *h, char *why, size_t why_len); /* fm__arena_open's */
    bool recovered;              /* this open rolled back a crashed operation */
    bool created_file;           /* this open created the file (unlinked if it fails) */
    bool locked_excl;            /* this open holds the file's exclusive lock */
    bool initialised;            /* this open laid out a new arena */
    bool init_wrote;             /* ... and wrote into the file (a failure zeroes it again) */
    uint64_t old_size;           /* size of the file before it was laid out */
    bool initialised_empty;      /* ... in a file that was empty: its heap reads zero */
    uint64_t page_size;
    uint64_t reserved;           /* bytes of address space reserved at base */
    uint64_t max_size;           /* most the file may grow to */
    struct tc_pool tc;           /* the thread caches (tcache.h); tc.caches NULL if none */
    struct shared shared;        /* FM_SHARED: the lock in the file (shared.h); shared.blk NULL if not */
    unsigned forks;              /* the process's fork count at open: another is a child's (api.c) */
    struct heap heap;
    /* Frees whose punch waits for the sync that makes them durable
     * (fm__arena_punch).  Under the arena lock. */
    struct fm_punch {
        uint64_t off, len;
    } punch_q[FM_PUNCH_QUEUE];
    unsigned npunch;
    fm_error_handler err_fn;
    void *err_arg;
    char check_msg[256];         /* last check's message (under the lock); callers read a copy (api.c) */
    uint64_t check_key;          /* unique per open in this process: keys that copy */
    /* One locked operation at a time (the log is single).  On a cache line
     * of its own: taking it must not evict what the fast paths read. */
    _Alignas(64) pthread_mutex_t lock;
};

static inline struct fm_arena *arena_of(struct fm_info *fi)
{
    return (struct fm_arena *)(void *)fi;
}

/* The arena lock around every operation: the file's for an FM_SHARED
 * arena (shared.h), else the process's.  0, or (shared) why no operation
 * may run: the caller returns that error. */
static inline int arena_lock(struct fm_arena *a)
{
    if (a->shared.blk)
        return shared_lock(&a->shared);
    pthread_mutex_lock(&a->lock);
    return 0;
}

static inline void arena_unlock(struct fm_arena *a)
{
    if (a->shared.blk)
        shared_unlock(&a->shared);
    else
        pthread_mutex_unlock(&a->lock);
}

/* Does offset off lie in the file as this process may see it without the
 * lock?  In a shared arena another process may have grown it since this
 * one last held the lock: the header's size says (the word is read
 * without the lock, so a growth just begun may be missed -- and then the
 * offset is not one any process was given yet). */
static inline bool arena_covers(struct fm_arena *a, uint64_t off)
{
    if (fm_likely(off < a->heap.mapped_size))
        return true;
    if (!a->shared.blk)
        return false;
    uint64_t f = atomic_load_explicit((_Atomic uint64_t *)(void *)&a->heap.sb->sb_file_size,
                                      memory_order_relaxed);
    return off < f && off < a->reserved;
}

/* fork() count of this process, bumped in every child (api.c). */
extern atomic_uint fm__forks_seen;

/* Was a inherited through fork()?  Then this process must not touch its
 * lock, caches or heap: they are the parent's. */
static inline bool arena_inherited(const struct fm_arena *a)
{
    return a->forks != atomic_load_explicit(&fm__forks_seen, memory_order_relaxed);
}

/* verify: what recovery checks of a rolled-back heap besides the heap
 * (recover.h's recover_verify_fn; the api passes the name directory's
 * check), or NULL. */
int fm__arena_open(const char *path, const struct fm_options *opt,
                   int (*verify)(struct heap *h, char *why, size_t why_len),
                   struct fm_arena **out);
int fm__arena_close(struct fm_arena *a);
/* In a forked child: unmap and close this process's descriptor, nothing
 * else -- no sync, no flag, no unlock (the flock is the parent's too). */
void fm__arena_abandon(struct fm_arena *a);
/* fm_sync: msync + fdatasync; in an FM_DURABLE arena, fm__arena_commit.
 * Durable: arena lock held, thread caches stopped, no operation in flight. */
int fm__arena_sync(struct fm_arena *a);
/* FM_DURABLE: journal the pages written since the last commit, sync the
 * journal, apply them to the file, sync it, then punch what waits (J1). */
int fm__arena_commit(struct fm_arena *a);
/* Grow the file (and mapping) to at least min_size; geometric, capped. */
int fm__arena_grow(void *arena, uint64_t min_size, uint64_t *new_size);
/* Give [off, off+len) of the file real blocks (heap.fill). */
int fm__arena_fill(void *arena, uint64_t off, uint64_t len);
/* After a committed free: punch the whole pages inside free chunk [off, off+len)
 * once that free is durable (at the next sync; at once with FM_NOSYNC). */
void fm__arena_punch(void *arena, uint64_t off, uint64_t len);
/* An error for the handler fm_set_error_handler installed (heap.report;
 * arena lock not held). */
void fm__arena_report(void *arena, int err, const char *msg);
/* After a committed heap_trim: sync, then shrink the file and unmap its old tail. */
int fm__arena_shrink(struct fm_arena *a, uint64_t new_size);

#define FM_DEFAULT_INITIAL (1ull << 20)
#define FM_DEFAULT_MAX (1ull << 40)
#define FM_GROW_CAP (1ull << 30) /* geometric growth adds at most this much at once */
#define FM_BASE_ALIGN (1ull << 30) /* mapping base alignment: fm_memalign's limit */

#endif
