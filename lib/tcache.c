/*
 * tcache.c -- per-thread caches of small free blocks.  See tcache.h for the
 * invariants (T1-T3) and the lock order.
 */
#include "tcache.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "op.h"
#include "os.h"
#include "recover.h"

/* ---- who may touch a cache ------------------------------------------------------
 *
 * A cache's lists are read and written by its owner's fast paths, which hold
 * no arena lock, and by checkers (fm_check, fm_stats, fm_walk, flushing every
 * cache, tc_holds), which always hold the arena lock.  So under the arena
 * lock the owner needs nothing more (refill, flush), and the only exclusion
 * needed is between one owner's fast path and a checker.
 *
 * With membarrier(2) (p->asym): the owner stores busy = 1 and then reads
 * p->stop, with only a compiler barrier between them; a checker stores
 * stop = 1, runs a barrier on every running thread of the process
 * (os_barrier_all), then waits for every busy to be 0.  The barrier falls
 * between the owner's store and its load, or before both: either the checker
 * sees busy = 1 and waits, or the owner sees stop = 1, steps back and
 * waits.  A fast path then costs two plain stores and a load instead of an
 * atomic exchange, which drains the store buffer (measured: half the fast
 * path's time with two threads).  Without membarrier (an old kernel,
 * Valgrind, ThreadSanitizer, which cannot see that ordering) busy is a spin
 * lock that a checker takes on every cache.
 */

#if defined(__SANITIZE_THREAD__)
#define FM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FM_TSAN 1
#endif
#endif
#ifndef FM_TSAN
#define FM_TSAN 0
#endif

#if FM_TEST_HOOKS
bool fm__tc_no_barrier; /* tests: use the spin locks even where membarrier works */
#else
#define fm__tc_no_barrier false
#endif

static void tc_enter(struct tc_pool *p, struct tcache *tc)
{
    if (!p->asym) {
        while (atomic_exchange_explicit(&tc->busy, 1, memory_order_acquire))
            sched_yield(); /* only a checker ever holds it long */
        return;
    }
    for (;;) {
        atomic_store_explicit(&tc->busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the CPU fence is the checker's */
        if (fm_likely(!atomic_load_explicit(&p->stop, memory_order_acquire)))
            return;
        atomic_store_explicit(&tc->busy, 0, memory_order_release);
        while (atomic_load_explicit(&p->stop, memory_order_acquire))
            sched_yield();
    }
}

static void tc_leave(struct tcache *tc)
{
    atomic_store_explicit(&tc->busy, 0, memory_order_release);
}

/* Does a thread other than the caller hold a cache?  If not, none can be
 * in a fast path: claiming a cache takes the arena lock, which the
 * caller of tc_lock_all holds -- so a single-threaded program stops its
 * caches without a membarrier. */
static bool others_hold_caches(struct tc_pool *p)
{
    const struct tcache *mine = pthread_getspecific(p->key);
    for (unsigned i = 0; i < TC_MAX; i++)
        if (p->caches[i].owned && &p->caches[i] != mine)
            return true;
    return false;
}

void tc_lock_all(struct tc_pool *p)
{
    if (!p->caches)
        return;
    if (!p->asym) {
        for (unsigned i = 0; i < TC_MAX; i++)
            tc_enter(p, &p->caches[i]);
        return;
    }
    if (!others_hold_caches(p))
        return;
    atomic_store_explicit(&p->stop, true, memory_order_relaxed);
    if (os_barrier_all() != 0) {
        /* It worked when the arena was opened: cannot happen. */
        fprintf(stderr, "fmalloc: membarrier(2) failed; cannot stop the thread caches\n");
        abort();
    }
    for (unsigned i = 0; i < TC_MAX; i++)
        while (atomic_load_explicit(&p->caches[i].busy, memory_order_acquire))
            sched_yield();
}

void tc_unlock_all(struct tc_pool *p)
{
    if (!p->caches)
        return;
    if (p->asym)
        atomic_store_explicit(&p->stop, false, memory_order_release);
    else
        for (unsigned i = 0; i < TC_MAX; i++)
            tc_leave(&p->caches[i]);
}

/* ---- claiming a cache ---------------------------------------------------------- */

/* Thread exit: the cache (and what it holds) waits for the next thread.
 * Not in a forked child: the lock may have been copied held, and the
 * cache is the parent's. */
static void tc_release(void *arg)
{
    struct tcache *tc = arg;
    struct tc_pool *p = tc->pool;
    if (p->inherited(p->ctx))
        return;
    pthread_mutex_lock(p->lock);
    tc->owned = false;
    pthread_mutex_unlock(p->lock);
}

static atomic_uint_fast64_t open_generation;

/* The caches are zero pages until a thread claims one: an open that no
 * thread allocates through pays for none of them (a clean reopen took
 * 0.12 ms with a memset of them all, 0.07 ms without caches). */
#define TC_BYTES (TC_MAX * sizeof(struct tcache))

int tc_init(struct tc_pool *p, struct heap *h, pthread_mutex_t *lock,
            bool (*inherited)(void *ctx), void *ctx)
{
    p->heap = h;
    p->lock = lock;
    p->inherited = inherited;
    p->ctx = ctx;
    p->gen = atomic_fetch_add(&open_generation, 1) + 1;
    void *mem;
    int err = os_alloc_zeroed(TC_BYTES, &mem);
    if (err)
        return err;
    p->caches = mem; /* all zero: unowned, not busy, empty lists */
    atomic_init(&p->stop, false);
    p->asym = !FM_TSAN && !fm__tc_no_barrier && os_barrier_available() == 0;
    err = pthread_key_create(&p->key, tc_release);
    if (err) {
        os_unmap(p->caches, TC_BYTES);
        p->caches = NULL;
    }
    return err;
}

/* The last arena this thread used, and its cache there: one compare on the
 * fast path.  Generations are never reused, so a closed arena never matches. */
#if defined(__GNUC__)
#define FM_TLS_FAST __attribute__((tls_model("initial-exec"))) /* no __tls_get_addr call */
#else
#define FM_TLS_FAST
#endif
static _Thread_local FM_TLS_FAST struct {
    uint64_t gen;
    struct tcache *tc;
} last_used;

static struct tcache *tc_get(struct tc_pool *p)
{
    if (fm_likely(last_used.gen == p->gen))
        return last_used.tc;
    struct tcache *tc = pthread_getspecific(p->key);
    if (tc) {
        last_used.gen = p->gen;
        last_used.tc = tc;
        return tc;
    }
    pthread_mutex_lock(p->lock);
    for (unsigned i = 0; i < TC_MAX && !tc; i++)
        if (!p->caches[i].owned) {
            tc = &p->caches[i];
            tc->owned = true;
            tc->pool = p;
        }
    pthread_mutex_unlock(p->lock);
    if (tc && pthread_setspecific(p->key, tc) != 0) {
        tc_release(tc);
        tc = NULL;
    }
    last_used.gen = p->gen; /* no cache free: this thread takes the locked path */
    last_used.tc = tc;
    return tc;
}

/* ---- validating the lists (T4) ------------------------------------------------- */

/* Is x a block that the list of class cls may hold: a chunk start in the
 * heap, its chunk below `limit`, in use, of that class, with a good tag and
 * its marker?  x's words are read only once x is known to be mapped. */
static FM_INLINE bool entry_ok(const struct tc_pool *p, uint64_t x, unsigned cls, uint64_t limit)
{
    uint64_t nb = (uint64_t)cls << 4, salt = p->heap->salt;
    if (x < FMT_HEAP_OFF || x % CH_ALIGN || x > limit || limit - x < nb)
        return false;
    uint64_t head = word_load(p->heap->base, x + F_HEAD);
    return (head & (CH_SIZE_MASK | CH_CINUSE)) == (nb | CH_CINUSE) && ch_head_ok(x, head, salt) &&
           ch_marked(p->heap->base, x, salt);
}

/* Can `next`, read from the link word of a list's first block while the
 * list counts `count` blocks, be the next one?  0 exactly at the end, else
 * a chunk start in the mapping; the rest is checked when it is popped. */
static FM_INLINE bool link_ok(uint64_t next, uint32_t count, uint64_t limit)
{
    if (count <= 1)
        return next == 0;
    return next >= FMT_HEAP_OFF && next % CH_ALIGN == 0 && next < limit;
}

/* The list of class cls of this cache, which pop refused, is damaged
 * (T4): say why, and let go of it.  Its blocks stay in use and those that
 * kept their marker are freed by the sweep at fm_close or at the next
 * recovery. */
FM_COLD static void drop_list(struct tc_pool *p, struct tcache *tc, unsigned cls, char *why,
                              size_t why_len)
{
    uint64_t c = tc->heads[cls], next = 0;
    bool entry_bad = !entry_ok(p, c, cls, p->heap->mapped_size);
    if (!entry_bad)
        next = word_load(p->heap->base, c + CH_PAYLOAD);
    if (entry_bad)
        snprintf(why, why_len,
                 "a thread cache lists offset %llu among its free %u-byte chunks, but it is "
                 "not one (a write after free?); %u cached blocks dropped",
                 (unsigned long long)c, cls << 4, tc->counts[cls]);
    else
        snprintf(why, why_len,
                 "the free %u-byte chunk at offset %llu in a thread cache links %llu, which "
                 "cannot be one (a write after free?); %u cached blocks dropped",
                 cls << 4, (unsigned long long)c, (unsigned long long)next, tc->counts[cls]);
    tc->heads[cls] = 0;
    tc->counts[cls] = 0;
    tc->low[cls] = 0;
    tc->dropped = true;
}

/* Corruption found without the arena lock held: to the arena's handler. */
FM_COLD static void report_corrupt(struct tc_pool *p, const char *why)
{
    op_report(p->heap, FM_ECORRUPT, why);
}

/* FM_DEBUG >= 2: the block at c, handed out again, lost its poison at
 * offset bad: something wrote to it after its free.  Reported, not fatal:
 * the heap's own words are intact (the block's link and marker passed). */
FM_COLD static void report_write_after_free(struct tc_pool *p, uint64_t c, uint64_t bad)
{
    char why[160];
    op_write_after_free(why, sizeof why, c + CH_PAYLOAD, bad - c - CH_PAYLOAD);
    report_corrupt(p, why);
}

/* ---- moving blocks between a cache and the heap (arena lock held) -------------- */

/* Words of a cached block below this hold its link and marker (T4); from
 * here to its end, FM_DEBUG >= 2 keeps poison (heap.h), checked by tc_malloc. */
#define TC_POISON_OFF (CH_MARKER_OFF + 8)

/* List free block c (its marker committed: its bytes are no one's). */
static void push(struct tc_pool *p, struct tcache *tc, uint64_t c, unsigned cls)
{
    if (FM_DEBUG >= 2)
        poison_fill(p->heap->base, c + TC_POISON_OFF, ((uint64_t)cls << 4) - TC_POISON_OFF);
    word_store(p->heap->base, c + CH_PAYLOAD, tc->heads[cls]);
    tc->heads[cls] = c;
    tc->counts[cls]++;
}

/* Take the first block of class cls (not empty), keeping its low-water
 * mark.  0 if the block or its link is damaged (T4): the caller drops the
 * list (drop_list). */
static FM_INLINE uint64_t pop(struct tc_pool *p, struct tcache *tc, unsigned cls)
{
    uint64_t c = tc->heads[cls], limit = p->heap->mapped_size;
    if (fm_unlikely(!entry_ok(p, c, cls, limit)))
        return 0;
    uint64_t next = word_load(p->heap->base, c + CH_PAYLOAD);
    if (fm_unlikely(!link_ok(next, tc->counts[cls], limit)))
        return 0;
    tc->heads[cls] = next;
    if (--tc->counts[cls] < tc->low[cls])
        tc->low[cls] = tc->counts[cls];
    return c;
}

/* Give the first `n` blocks of class cls back to the heap, one committed
 * free each.  A crash half way leaves the rest marked: recovery frees them.
 * False if the list was damaged (and dropped; why says so). */
static bool flush_class(struct tc_pool *p, struct tcache *tc, unsigned cls, uint32_t n,
                        char *why, size_t why_len)
{
    struct heap *h = p->heap;
    while (n-- && tc->heads[cls]) {
        uint64_t c = pop(p, tc, cls);
        if (!c) {
            drop_list(p, tc, cls, why, why_len);
            return false;
        }
        op_begin(h);
        heap_free(h, c + CH_PAYLOAD); /* overwrites the marker (logged) */
        if (op_end(h, true)) { /* a damaged neighbour: keep the block cached */
            push(p, tc, c, cls);
            break;
        }
    }
    return true;
}

void tc_forget(struct tc_pool *p)
{
    if (!p->caches)
        return;
    pthread_key_delete(p->key);
    os_unmap(p->caches, TC_BYTES);
    p->caches = NULL;
}

bool tc_flush_all(struct tc_pool *p, char *why, size_t why_len)
{
    char first[256] = "";
    bool damaged = false;
    tc_lock_all(p);
    for (unsigned i = 0; p->caches && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++)
            if (!flush_class(p, &p->caches[i], cls, UINT32_MAX, first, sizeof first) && !damaged) {
                damaged = true;
                snprintf(why, why_len, "%s", first); /* the first one found */
            }
    tc_unlock_all(p);
    return damaged;
}

void tc_fini(struct tc_pool *p)
{
    if (!p->caches)
        return;
    char why[256];
    uint64_t swept;
    pthread_mutex_lock(p->lock);
    bool damaged = tc_flush_all(p, why, sizeof why);
    bool dropped = false;
    for (unsigned i = 0; i < TC_MAX; i++)
        dropped |= p->caches[i].dropped;
    /* The blocks of dropped lists that kept their marker are the only
     * marked chunks left: free them, as recovery would (T4). */
    if (dropped)
        (void)recover_sweep(p->heap, TC_MAX_CHUNK, &swept); /* a failure leaves them allocated: a leak, no harm */
    pthread_mutex_unlock(p->lock);
    if (damaged)
        report_corrupt(p, why);
    tc_forget(p);
}

/*
 * Blocks a refill of chunk size nb takes: about 4 KiB of them (4 at
 * least), doubled for each refill of the class since its last flush, at
 * most TC_REFILL.  A thread that keeps allocating (building a structure)
 * comes back for the arena lock less and less often; one whose frees
 * overflow the class starts small again.
 */
/* A run's refill logs a head and a marker per block, after heap_malloc's
 * own records (27 at most, design.md): all in one operation. */
_Static_assert(2 * TC_REFILL + 27 <= FMT_LOG_CAP, "a refill fits in the undo log");

static unsigned refill_count(const struct tcache *tc, unsigned cls, uint64_t nb)
{
    uint64_t k = 4096 / nb;
    if (k < 4)
        k = 4;
    k <<= tc->boost[cls];
    return k > TC_REFILL ? TC_REFILL : (unsigned)k;
}

/* Mark chunk c cached (T3), logged with the rest of the operation.  Its
 * list link is written only once the operation has committed (push): the
 * word may be a free chunk's link that a rollback must find intact. */
static void mark_cached(struct heap *h, uint64_t c)
{
    hset(h, c + CH_MARKER_OFF, ch_cache_marker(c, h->salt));
}

/*
 * A miss: take up to about 4 KiB of chunks of size nb from the heap under the
 * arena lock, return one, cache the rest.  Exact fits already free come first
 * (reusing holes keeps the file small).  When there are none, one block goes
 * where the heap's best fit puts it, and more are carved right after it from
 * the same free chunk or the top, if it has room: a run of adjacent blocks, so
 * that a thread's blocks share cache lines with each other rather than with
 * another thread's.  0 if the heap had no room.
 */
static uint64_t refill(struct tc_pool *p, struct tcache *tc, uint64_t nb)
{
    struct heap *h = p->heap;
    unsigned cls = (unsigned)(nb >> 4), want = refill_count(tc, cls, nb), got = 0;
    uint64_t first = 0;
    pthread_mutex_lock(p->lock); /* all the cache needs: checkers take it too */
    while (got < want) {
        op_begin(h);
        uint64_t off = heap_take_binned(h, nb);
        uint64_t c = off - CH_PAYLOAD;
        /* The heap may hand out 16 bytes more than asked (a remainder too
         * small to split): past the largest class, give it back. */
        if (!off || h->err || ch_size(h, c) > TC_MAX_CHUNK) {
            op_abort(h);
            break;
        }
        if (got > 0)
            mark_cached(h, c);
        if (op_end(h, true))
            break;
        if (got++ == 0)
            first = c;
        else
            push(p, tc, c, (unsigned)(ch_size(h, c) >> 4));
    }
    if (got == 0) {
        op_begin(h);
        uint64_t off = heap_malloc(h, (size_t)(nb - CH_OVERHEAD));
        uint64_t c = off - CH_PAYLOAD, run = 0;
        unsigned more = 0;
        if (off && !h->err) {
            run = c + ch_size(h, c);
            more = heap_extend_run(h, run, nb, want - 1);
            for (unsigned i = 0; i < more && !h->err; i++)
                mark_cached(h, run + i * nb);
        }
        if (op_end(h, off != 0) == 0) { /* else the locked path will say why */
            first = c;
            for (unsigned i = more; i > 0; i--) /* popped in address order */
                push(p, tc, run + (i - 1) * nb, cls);
        }
    }
    if (first && tc->boost[cls] < 4) /* 4 doublings take the smallest start, 4, to TC_REFILL */
        tc->boost[cls]++;
    char why[160];
    bool waf = op_take_notice(h, why, sizeof why);
    pthread_mutex_unlock(p->lock);
    if (fm_unlikely(waf))
        report_corrupt(p, why);
    return first ? first + CH_PAYLOAD : 0;
}

/*
 * Every TC_TRIM_OPS fast-path operations: give back three quarters of the
 * blocks each class has not needed since the last trim (its low-water mark),
 * so that blocks a thread stopped using do not sit in its cache, pinning
 * holes the heap could otherwise merge, while the blocks a steady workload
 * cycles through stay.
 */
FM_COLD static void tc_trim(struct tc_pool *p, struct tcache *tc)
{
    char why[256];
    bool damaged = false;
    pthread_mutex_lock(p->lock);
    for (unsigned cls = 0; cls < TC_NCLASSES; cls++) {
        uint32_t idle = tc->low[cls] - tc->low[cls] / 4;
        if (idle) {
            if (!flush_class(p, tc, cls, idle, why, sizeof why))
                damaged = true;
            tc->boost[cls] = 0;
        }
        tc->low[cls] = tc->counts[cls];
    }
    tc->ops = 0;
    pthread_mutex_unlock(p->lock);
    if (damaged)
        report_corrupt(p, why);
}

/* ---- fast paths ------------------------------------------------------------------ */

/* The end of a fast path that served the call: count it, and trim the
 * cache when its period is up. */
static inline void leave_counted(struct tc_pool *p, struct tcache *tc)
{
    bool trim = ++tc->ops >= TC_TRIM_OPS;
    tc_leave(tc);
    if (fm_unlikely(trim))
        tc_trim(p, tc);
}

/* tc_malloc found its list damaged (its cache is entered): drop the list,
 * leave, report. */
FM_COLD static void malloc_found_damage(struct tc_pool *p, struct tcache *tc, unsigned cls)
{
    char why[256];
    drop_list(p, tc, cls, why, sizeof why);
    tc_leave(tc);
    report_corrupt(p, why);
}

/* This thread's cache, entered; NULL if it has none (the locked path
 * serves the call). */
static FM_INLINE struct tcache *enter_own(struct tc_pool *p)
{
    struct tcache *tc = tc_get(p);
    if (tc)
        tc_enter(p, tc);
    return tc;
}

void *tc_malloc(struct tc_pool *p, size_t n)
{
    uint64_t nb = request_to_size(n);
    if (!p->caches || nb == 0 || nb > TC_MAX_CHUNK) /* 0: too big for any chunk */
        return NULL;
    struct tcache *tc = enter_own(p);
    if (!tc)
        return NULL;
    unsigned cls = (unsigned)(nb >> 4);
    if (fm_likely(tc->heads[cls] != 0)) {
        uint64_t c = pop(p, tc, cls);
        if (fm_likely(c != 0)) {
            uint64_t bad = FM_DEBUG >= 2 ? poison_find(p->heap->base, c + TC_POISON_OFF,
                                                       nb - TC_POISON_OFF) : 0;
            log_crashpoint();
            word_store(p->heap->base, c + CH_MARKER_OFF, 0); /* T3: allocated from here on */
            leave_counted(p, tc);
            if (fm_unlikely(bad))
                report_write_after_free(p, c, bad);
            return p->heap->base + c + CH_PAYLOAD;
        }
        malloc_found_damage(p, tc, cls); /* then a refill serves the call */
    } else {
        tc_leave(tc);
    }
    uint64_t off = refill(p, tc, nb);
    return off ? p->heap->base + off : NULL;
}

/*
 * Does in-use chunk c (its head read as `head`) border a free chunk of at
 * least TC_COALESCE_MIN bytes, other than the top?  Then its free takes the
 * locked path and merges into it: a cached block stays in use, and one
 * sitting next to a free chunk keeps it from growing until it is flushed,
 * while other requests cut it up.  test_random's file / peak live was
 * 1.75-1.94 with every small free cached, 1.28-1.59 with these frees merged
 * (seeds 1-25).  The top is left out: a refill's run from the top ends next
 * to it.  The chunk before is known big from the heap's hint table, not
 * from c's prev_foot, which is its owner's data once that chunk is in use
 * (heap.h, after_big_free).  The words read change under the arena lock,
 * which is not held: a stale read only sends one free down the other,
 * equally correct, path.
 */
#define TC_COALESCE_MIN CH_TREE_MIN /* a hole a medium request can use */
_Static_assert(TC_COALESCE_MIN == CH_TREE_MIN, "heap.after_big_free holds the tree sizes");

static FM_INLINE bool borders_big_free(struct heap *h, uint64_t c, uint64_t head, uint64_t size)
{
    if (!(head & CH_PINUSE) &&
        atomic_load_explicit(heap_hint_slot(h, c), memory_order_relaxed) == c)
        return true;
    uint64_t next = word_load(h->base, c + size + F_HEAD);
    if ((next & CH_CINUSE) || (next & CH_SIZE_MASK) < TC_COALESCE_MIN)
        return false;
    return c + size != word_load(h->base, offsetof(struct fmt_superblock, sb_top));
}

bool tc_free(struct tc_pool *p, void *ptr)
{
    if (!p->caches) /* then the pool has no heap either */
        return false;
    struct heap *h = p->heap;
    uintptr_t b = (uintptr_t)h->base, q = (uintptr_t)ptr;
    if (q < b + FMT_HEAP_OFF + CH_PAYLOAD || q - b >= h->mapped_size || q % CH_ALIGN)
        return false;
    uint64_t c = (uint64_t)(q - b) - CH_PAYLOAD;
    uint64_t head = word_load(h->base, c + F_HEAD), size = head & CH_SIZE_MASK;
    /* Anything unusual (a large block, a bad pointer, a double free) takes
     * the locked path, which validates fully and reports.  (The bound is the
     * mapping, not sb_top: the superblock's line is written by every locked
     * operation, and reading it here would bounce it between cores.) */
    if (size > TC_MAX_CHUNK || size < CH_MIN || !(head & CH_CINUSE) ||
        c + size + CH_PAYLOAD > h->mapped_size || !ch_head_ok(c, head, h->salt) ||
        ch_marked(h->base, c, h->salt))
        return false;
    if (borders_big_free(h, c, head, size))
        return false;
    struct tcache *tc = enter_own(p);
    if (!tc)
        return false;
    unsigned cls = (unsigned)(size >> 4);
    if (fm_unlikely(tc->counts[cls] >= TC_CAP)) {
        /* Half the class goes back to the heap, under the arena lock. */
        char why[256];
        tc_leave(tc);
        pthread_mutex_lock(p->lock);
        bool damaged = !flush_class(p, tc, cls, TC_CAP / 2, why, sizeof why);
        tc->boost[cls] = 0;
        pthread_mutex_unlock(p->lock);
        if (damaged)
            report_corrupt(p, why);
        tc_enter(p, tc);
    }
    log_crashpoint();
    word_store(h->base, c + CH_MARKER_OFF, ch_cache_marker(c, h->salt)); /* T3: free from here on */
    push(p, tc, c, cls);
    leave_counted(p, tc);
    return true;
}

/* ---- checking and recovery ----------------------------------------------------- */

/*
 * The one walk of a cache list, for every checker (caches stopped, arena
 * lock held): visit the blocks of class cls in cache i in order, each
 * validated (T4) before it is visited or its link followed.  Stops at the
 * first visit that returns non-zero, and returns that.  FM_ECORRUPT, with
 * why set, for an entry that is not a cached block or a list whose length
 * is not its count; the list is left as it is (its owner drops it).
 */
static int list_walk(struct tc_pool *p, unsigned i, unsigned cls,
                     int (*visit)(uint64_t c, void *arg), void *arg, char *why, size_t why_len)
{
    const struct tcache *tc = &p->caches[i];
    uint64_t x = tc->heads[cls], top = p->heap->sb->sb_top;
    for (uint32_t k = 0; k < tc->counts[cls]; k++) {
        if (!entry_ok(p, x, cls, top)) {
            snprintf(why, why_len,
                     "thread cache %u, class %u: entry %u (chunk %llu) is not a cached block", i,
                     cls, k, (unsigned long long)x);
            return FM_ECORRUPT;
        }
        int r = visit(x, arg);
        if (r)
            return r;
        x = word_load(p->heap->base, x + CH_PAYLOAD);
    }
    if (x) {
        snprintf(why, why_len, "thread cache %u, class %u: list longer than its count", i, cls);
        return FM_ECORRUPT;
    }
    return 0;
}

static int visit_is(uint64_t c, void *arg)
{
    return c == *(const uint64_t *)arg;
}

int tc_holds(struct tc_pool *p, uint64_t c, bool *held, char *why, size_t why_len)
{
    int r = 0;
    *held = false;
    if (!p->caches)
        return 0;
    unsigned cls = (unsigned)(ch_size(p->heap, c) >> 4);
    if (cls >= TC_NCLASSES)
        return 0;
    tc_lock_all(p);
    for (unsigned i = 0; i < TC_MAX && !r; i++)
        r = list_walk(p, i, cls, visit_is, &c, why, why_len);
    tc_unlock_all(p);
    *held = r == 1;
    return r < 0 ? r : 0;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

struct gather {
    uint64_t *v;
    size_t n, cap;
};

static int visit_gather(uint64_t c, void *arg)
{
    struct gather *g = arg;
    if (g->n == g->cap)
        return FM_ECORRUPT; /* cannot happen: each list was as long as its count */
    g->v[g->n++] = c;
    return 0;
}

int tc_collect(struct tc_pool *p, uint64_t **out, size_t *n, char *why, size_t why_len)
{
    struct gather g = {0};
    int err = 0;
    *out = NULL;
    *n = 0;
    for (unsigned i = 0; p->caches && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++)
            g.cap += p->caches[i].counts[cls];
    if (!g.cap)
        return 0;
    if (!(g.v = malloc(g.cap * sizeof *g.v)))
        return ENOMEM;
    for (unsigned i = 0; i < TC_MAX && !err; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES && !err; cls++)
            err = list_walk(p, i, cls, visit_gather, &g, why, why_len);
    if (err) {
        free(g.v);
        return err;
    }
    qsort(g.v, g.n, sizeof *g.v, cmp_u64);
    *out = g.v;
    *n = g.n;
    return 0;
}

static int visit_count(uint64_t c, void *arg)
{
    (void)c;
    ++*(uint64_t *)arg;
    return 0;
}

int tc_verify(struct tc_pool *p, uint64_t marked, char *msg, size_t msg_len)
{
    uint64_t listed = 0;
    for (unsigned i = 0; p->caches && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++) {
            int err = list_walk(p, i, cls, visit_count, &listed, msg, msg_len);
            if (err)
                return err;
        }
    if (listed != marked) {
        snprintf(msg, msg_len, "%llu chunks are marked cached, thread caches list %llu",
                 (unsigned long long)marked, (unsigned long long)listed);
        return FM_ECORRUPT;
    }
    return 0;
}
