/*
 * tcache.h -- per-thread caches of small free blocks.
 *
 * Layer: tcache, above heap, op and recover, below the arena, which embeds
 * the caches' struct tc_pool (all they know of it) and sets it up at open.  A thread's fm_malloc/fm_free of blocks up to
 * TC_MAX_CHUNK bytes are served from its own lists, without the arena lock
 * and without touching heap metadata; the lists are refilled from the heap
 * (in runs of adjacent blocks), flushed to it and trimmed in batches under
 * the arena lock.
 *
 * Invariants (fm_check verifies, with every cache stopped, that each listed
 * block is an in-use chunk of its class holding its marker and that no
 * block is listed twice; it does not read unlisted blocks' bytes, which
 * belong to the user):
 *   T1 a cached block is a chunk the heap counts as in use whose payload
 *      word 1 holds ch_cache_marker(chunk) (format.h); no other in-use chunk holds its own
 *      marker (the heap clears a stale one, logged, when it hands a chunk
 *      out)
 *   T2 every cached block is on exactly one list of one cache of the
 *      process that has the arena open; a clean arena has none (fm_close
 *      flushes every cache), and a recovered one none (recovery frees every
 *      marked chunk)
 *   T3 the marker store is the commit point of a cached free, and clearing
 *      it the commit point of a cached malloc: a crash on either side of it
 *      leaves the block allocated or (once recovery frees marked chunks)
 *      free -- the state before or after the call; a block's list link is
 *      written only after the operation that cached it committed
 *   T4 a list's links and markers lie in freed blocks' first payload words,
 *      which a program that writes after free overwrites: no entry is used,
 *      nor its link followed, before it is validated (in the heap, aligned,
 *      an in-use chunk of the list's class with a good tag and its marker;
 *      a link read by a pop: in the mapping, or 0 exactly at the list's
 *      end).  A damaged list is reported as FM_ECORRUPT -- through the
 *      error handler by its owner, which then drops the whole list; by
 *      fm_check/fm_stats/fm_walk's return value, which leave it alone.  The
 *      dropped blocks stay in use (leaked) until fm_close, which sweeps
 *      the marked chunks of an arena that dropped a list, or the next
 *      recovery's sweep; a block whose marker was overwritten cannot be
 *      told from a live one and stays allocated for good.
 * Who touches a cache: its owner's fast paths (no arena lock), its owner
 * under the arena lock (refill, flush, trim), and checkers, always under the
 * arena lock, which stop the fast paths first (tc_lock_all; tcache.c says
 * how).  Lock order: arena lock, then the caches.
 */
#ifndef FM_TCACHE_H
#define FM_TCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

#define TC_MAX_CHUNK CH_CACHE_MAX /* largest cached chunk: the small bins' range */
#define TC_NCLASSES (TC_MAX_CHUNK / 16 + 1)
#define TC_CAP 128u    /* blocks per class before half go back to the heap */
#define TC_REFILL 64u /* most blocks one refill takes */
#define TC_MAX 64u    /* caches per arena: threads beyond use the locked path */
#define TC_TRIM_OPS 65536u /* fast-path operations between trims of a cache */

struct heap;

/*
 * An arena's caches and what they need of it, embedded in the arena: the
 * heap, the lock of its locked operations, and a question only the arena
 * can answer.  The caches know nothing else of the arena (they sit below
 * it: heap, op, recover and os are all they use).
 */
struct tc_pool {
    struct tcache *caches;   /* TC_MAX of them; NULL if none (read-only, FM_NOCACHE) */
    bool asym;               /* stopped with membarrier (tcache.c) */
    atomic_bool stop;        /* a checker is stopping the fast paths */
    uint64_t gen;            /* unique per open in this process: keys thread-local lookups */
    pthread_key_t key;       /* this thread's cache */
    struct heap *heap;
    pthread_mutex_t *lock;   /* the arena lock: refills, flushes, trims, claims */
    /* At a thread's exit: was the arena inherited through fork()?  Then
     * its lock and caches are the parent's (ctx: the arena). */
    bool (*inherited)(void *ctx);
    void *ctx;
};

struct tcache {
    /* index chunk size >> 4, for sizes CH_MIN..TC_MAX_CHUNK only.  Each
     * cache starts a cache line: neighbours' owners must not share one. */
    _Alignas(64) atomic_uint busy; /* the owner is in a fast path (or a checker holds it) */
    bool owned;               /* claimed by a live thread (under the arena lock) */
    struct tc_pool *pool;
    uint64_t heads[TC_NCLASSES]; /* chunk offsets; a block's payload word 0 links the next */
    uint32_t counts[TC_NCLASSES];
    uint32_t low[TC_NCLASSES]; /* fewest blocks each class held since the last trim */
    uint8_t boost[TC_NCLASSES]; /* refills since the last flush: each doubles the next */
    uint32_t ops;              /* fast-path operations since the last trim */
    bool dropped;              /* a damaged list was let go (T4): sweep at close */
};


/* Set the pool up, with no cache claimed yet. */
int tc_init(struct tc_pool *p, struct heap *h, pthread_mutex_t *lock,
            bool (*inherited)(void *ctx), void *ctx);
/* Give every cached block back to the heap (arena lock held).  True if a
 * damaged list was dropped (T4; the first one described in why). */
bool tc_flush_all(struct tc_pool *p, char *why, size_t why_len);
/* Flush every cache into the heap and free them (arena lock not held);
 * damage found is reported through the error handler. */
void tc_fini(struct tc_pool *p);
/* Free the caches themselves, leaving every block they list as it is:
 * tc_fini once it has flushed them, and fm_close in a forked child, where
 * the blocks are the parent's. */
void tc_forget(struct tc_pool *p);
/* Fast paths: tc_malloc returns 0 when it cannot serve the request (the
 * caller takes the locked path); tc_free returns false likewise. */
void *tc_malloc(struct tc_pool *p, size_t n);
bool tc_free(struct tc_pool *p, void *ptr);
/* For fm_check/fm_stats/fm_walk: stop every cache's fast path (arena lock held). */
void tc_lock_all(struct tc_pool *p);
void tc_unlock_all(struct tc_pool *p);
/* The chunks all caches hold, sorted (*out malloc'd; caches locked).
 * 0, ENOMEM, or FM_ECORRUPT with why set for a damaged list (T4). */
int tc_collect(struct tc_pool *p, uint64_t **out, size_t *n, char *why, size_t why_len);
/* Does some cache list hold chunk c (*held)?  0, or FM_ECORRUPT with why
 * set for a damaged list.  (Arena lock held; takes the cache locks.) */
int tc_holds(struct tc_pool *p, uint64_t c, bool *held, char *why, size_t why_len);
/* T2 against the heap walk's count of marked chunks; 0 or FM_ECORRUPT. */
int tc_verify(struct tc_pool *p, uint64_t marked, char *msg, size_t msg_len);

#endif
