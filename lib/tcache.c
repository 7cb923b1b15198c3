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
#include <string.h>

#include "arena.h"

/* ---- locks ------------------------------------------------------------------ */

static void tc_lock(struct tcache *tc)
{
    while (atomic_flag_test_and_set_explicit(&tc->busy, memory_order_acquire))
        sched_yield(); /* only a checker or a flush ever holds it long */
}

static void tc_unlock(struct tcache *tc)
{
    atomic_flag_clear_explicit(&tc->busy, memory_order_release);
}

void tc_lock_all(struct fm_arena *a)
{
    for (unsigned i = 0; a->tc && i < TC_MAX; i++)
        tc_lock(&a->tc[i]);
}

void tc_unlock_all(struct fm_arena *a)
{
    for (unsigned i = 0; a->tc && i < TC_MAX; i++)
        tc_unlock(&a->tc[i]);
}

/* ---- claiming a cache ---------------------------------------------------------- */

/* Thread exit: the cache (and what it holds) waits for the next thread. */
static void tc_release(void *p)
{
    struct tcache *tc = p;
    struct fm_arena *a = tc->arena;
    pthread_mutex_lock(&a->lock);
    tc->owned = false;
    pthread_mutex_unlock(&a->lock);
}

static atomic_uint_fast64_t open_generation;

int tc_init(struct fm_arena *a)
{
    a->gen = atomic_fetch_add(&open_generation, 1) + 1;
    a->tc = aligned_alloc(64, TC_MAX * sizeof *a->tc);
    if (!a->tc)
        return ENOMEM;
    memset(a->tc, 0, TC_MAX * sizeof *a->tc);
    for (unsigned i = 0; i < TC_MAX; i++) {
        atomic_flag_clear(&a->tc[i].busy);
        a->tc[i].arena = a;
    }
    int err = pthread_key_create(&a->tc_key, tc_release);
    if (err) {
        free(a->tc);
        a->tc = NULL;
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

static struct tcache *tc_get(struct fm_arena *a)
{
    if (fm_likely(last_used.gen == a->gen))
        return last_used.tc;
    struct tcache *tc = pthread_getspecific(a->tc_key);
    if (tc) {
        last_used.gen = a->gen;
        last_used.tc = tc;
        return tc;
    }
    pthread_mutex_lock(&a->lock);
    for (unsigned i = 0; i < TC_MAX && !tc; i++)
        if (!a->tc[i].owned) {
            tc = &a->tc[i];
            tc->owned = true;
        }
    pthread_mutex_unlock(&a->lock);
    if (tc && pthread_setspecific(a->tc_key, tc) != 0) {
        tc_release(tc);
        tc = NULL;
    }
    last_used.gen = a->gen; /* no cache free: this thread takes the locked path */
    last_used.tc = tc;
    return tc;
}

/* ---- moving blocks between a cache and the heap (arena lock held) -------------- */

static void push(struct fm_arena *a, struct tcache *tc, uint64_t c, unsigned cls)
{
    word_store(a->base, c + CH_PAYLOAD, tc->heads[cls]);
    tc->heads[cls] = c;
    tc->counts[cls]++;
}

/* Commit a free; a merged chunk big enough gives its pages back (arena.c). */
static void commit_and_punch(struct fm_arena *a)
{
    log_commit(a->base);
    if (a->heap.punch_len)
        fm__arena_punch(a, a->heap.punch_off, a->heap.punch_len);
    a->heap.punch_len = 0;
}

/* Give the first `n` blocks of class cls back to the heap, one committed
 * free each.  A crash half way leaves the rest marked: recovery frees them. */
static void flush_class(struct fm_arena *a, struct tcache *tc, unsigned cls, uint32_t n)
{
    struct heap *h = &a->heap;
    while (n-- && tc->heads[cls]) {
        uint64_t c = tc->heads[cls];
        tc->heads[cls] = word_load(a->base, c + CH_PAYLOAD);
        tc->counts[cls]--;
        h->err = 0;
        h->punch_len = 0;
        heap_free(h, c + CH_PAYLOAD); /* overwrites the marker (logged) */
        if (h->err) {
            log_rollback(a->base); /* a damaged neighbour: keep the block cached */
            push(a, tc, c, cls);
            break;
        }
        commit_and_punch(a);
    }
}

void tc_flush_all(struct fm_arena *a)
{
    tc_lock_all(a);
    for (unsigned i = 0; a->tc && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++)
            flush_class(a, &a->tc[i], cls, UINT32_MAX);
    tc_unlock_all(a);
}

void tc_fini(struct fm_arena *a)
{
    if (!a->tc)
        return;
    pthread_mutex_lock(&a->lock);
    tc_flush_all(a);
    pthread_mutex_unlock(&a->lock);
    pthread_key_delete(a->tc_key);
    free(a->tc);
    a->tc = NULL;
}

/* A miss: take TC_REFILL blocks of chunk size nb from the heap under the
 * arena lock, return one, cache the rest.  0 if the heap had none. */
static uint64_t refill(struct fm_arena *a, struct tcache *tc, uint64_t nb)
{
    struct heap *h = &a->heap;
    pthread_mutex_lock(&a->lock);
    h->err = 0;
    uint64_t first = heap_malloc(h, (size_t)(nb - CH_OVERHEAD));
    if (!first || h->err) {
        log_rollback(a->base);
        pthread_mutex_unlock(&a->lock);
        return 0; /* the locked path will say why */
    }
    log_commit(a->base);
    tc_lock(tc);
    for (unsigned i = 1; i < TC_REFILL; i++) {
        /* Only blocks already free in the exact bins: carving a batch out
         * of the top would scatter small blocks that then cannot coalesce. */
        uint64_t p = heap_take_binned(h, nb);
        uint64_t c = p - CH_PAYLOAD;
        /* The heap may hand out 16 bytes more than asked (a remainder too
         * small to split): past the largest class, give it back. */
        if (!p || h->err || ch_size(h, c) > TC_MAX_CHUNK) {
            log_rollback(a->base);
            h->err = 0;
            break;
        }
        hset(h, p + 8, ch_cache_marker(c, h->salt)); /* cached from its commit on */
        log_commit(a->base);
        push(a, tc, c, (unsigned)(ch_size(h, c) >> 4));
    }
    tc_unlock(tc);
    pthread_mutex_unlock(&a->lock);
    return first;
}

/* ---- fast paths ------------------------------------------------------------------ */

void *tc_malloc(struct fm_arena *a, size_t n)
{
    uint64_t nb = request_to_size(n);
    if (!a->tc || nb > TC_MAX_CHUNK)
        return NULL;
    struct tcache *tc = tc_get(a);
    if (!tc)
        return NULL;
    unsigned cls = (unsigned)(nb >> 4);
    tc_lock(tc);
    uint64_t c = tc->heads[cls];
    if (fm_likely(c != 0)) {
        tc->heads[cls] = word_load(a->base, c + CH_PAYLOAD);
        tc->counts[cls]--;
        log_crashpoint();
        word_store(a->base, c + CH_PAYLOAD + 8, 0); /* T3: allocated from here on */
        tc_unlock(tc);
        return a->base + c + CH_PAYLOAD;
    }
    tc_unlock(tc);
    uint64_t p = refill(a, tc, nb);
    return p ? a->base + p : NULL;
}

bool tc_free(struct fm_arena *a, void *ptr)
{
    struct heap *h = &a->heap;
    uintptr_t b = (uintptr_t)a->base, q = (uintptr_t)ptr;
    if (!a->tc || q < b + FMT_HEAP_OFF + CH_PAYLOAD || q - b >= h->mapped_size || q % CH_ALIGN)
        return false;
    uint64_t p = (uint64_t)(q - b), c = p - CH_PAYLOAD;
    uint64_t head = word_load(a->base, c + F_HEAD), size = head & CH_SIZE_MASK;
    /* Anything unusual (a large block, a bad pointer, a double free) takes
     * the locked path, which validates fully and reports.  (The bound is the
     * mapping, not sb_top: the superblock's line is written by every locked
     * operation, and reading it here would bounce it between cores.) */
    if (size > TC_MAX_CHUNK || size < CH_MIN || !(head & CH_CINUSE) ||
        c + size + CH_PAYLOAD > h->mapped_size || head >> CH_TAG_SHIFT != ch_tag(c, h->salt) ||
        !(word_load(a->base, c + size + F_HEAD) & CH_PINUSE) ||
        word_load(a->base, p + 8) == ch_cache_marker(c, h->salt))
        return false;
    struct tcache *tc = tc_get(a);
    if (!tc)
        return false;
    unsigned cls = (unsigned)(size >> 4);
    tc_lock(tc);
    if (fm_unlikely(tc->counts[cls] >= TC_CAP)) {
        /* Half the class goes back to the heap, under the arena lock. */
        tc_unlock(tc);
        pthread_mutex_lock(&a->lock);
        tc_lock(tc);
        flush_class(a, tc, cls, TC_CAP / 2);
        pthread_mutex_unlock(&a->lock);
    }
    log_crashpoint();
    word_store(a->base, p + 8, ch_cache_marker(c, h->salt)); /* T3: free from here on */
    push(a, tc, c, cls);
    tc_unlock(tc);
    return true;
}

/* ---- checking and recovery ----------------------------------------------------- */

bool tc_holds(struct fm_arena *a, uint64_t c)
{
    unsigned cls = (unsigned)(ch_size(&a->heap, c) >> 4);
    bool found = false;
    if (!a->tc || cls >= TC_NCLASSES)
        return false;
    tc_lock_all(a);
    for (unsigned i = 0; i < TC_MAX && !found; i++) {
        uint64_t x = a->tc[i].heads[cls];
        for (uint32_t k = 0; k < a->tc[i].counts[cls] && x && !found; k++) {
            found = x == c;
            x = word_load(a->base, x + CH_PAYLOAD);
        }
    }
    tc_unlock_all(a);
    return found;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int tc_collect(struct fm_arena *a, uint64_t **out, size_t *n)
{
    size_t total = 0, k = 0;
    *out = NULL;
    *n = 0;
    for (unsigned i = 0; a->tc && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++)
            total += a->tc[i].counts[cls];
    if (!total)
        return 0;
    uint64_t *v = malloc(total * sizeof *v);
    if (!v)
        return ENOMEM;
    for (unsigned i = 0; i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++) {
            uint64_t c = a->tc[i].heads[cls];
            for (uint32_t j = 0; j < a->tc[i].counts[cls] && c && k < total; j++) {
                v[k++] = c;
                c = word_load(a->base, c + CH_PAYLOAD);
            }
        }
    qsort(v, k, sizeof *v, cmp_u64);
    *out = v;
    *n = k;
    return 0;
}

int tc_verify(struct fm_arena *a, uint64_t marked, char *msg, size_t msg_len)
{
    uint64_t listed = 0;
    struct heap *h = &a->heap;
    for (unsigned i = 0; a->tc && i < TC_MAX; i++)
        for (unsigned cls = 0; cls < TC_NCLASSES; cls++) {
            uint64_t c = a->tc[i].heads[cls];
            for (uint32_t k = 0; k < a->tc[i].counts[cls]; k++) {
                if (!c || c < FMT_HEAP_OFF || c >= h->sb->sb_top || !ch_cinuse(h, c) ||
                    ch_size(h, c) >> 4 != cls ||
                    word_load(a->base, c + CH_PAYLOAD + 8) != ch_cache_marker(c, h->salt)) {
                    snprintf(msg, msg_len,
                             "thread cache %u, class %u: entry %u (chunk %llu) is not a "
                             "cached block",
                             i, cls, k, (unsigned long long)c);
                    return FM_ECORRUPT;
                }
                c = word_load(a->base, c + CH_PAYLOAD);
            }
            if (c) {
                snprintf(msg, msg_len, "thread cache %u, class %u: list longer than its count",
                         i, cls);
                return FM_ECORRUPT;
            }
            listed += a->tc[i].counts[cls];
        }
    if (listed != marked) {
        snprintf(msg, msg_len, "%llu chunks are marked cached, thread caches list %llu",
                 (unsigned long long)marked, (unsigned long long)listed);
        return FM_ECORRUPT;
    }
    return 0;
}

int tc_sweep(struct fm_arena *a, uint64_t *swept)
{
    struct heap *h = &a->heap;
    uint64_t *marked = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    *swept = 0;
    /* First find them all (freeing merges chunks under the walk), ... */
    for (uint64_t c = FMT_HEAP_OFF, size; c < h->sb->sb_top; c += size) {
        size = ch_size(h, c);
        if (size < CH_MIN || size > h->sb->sb_top - c) {
            err = FM_ECORRUPT; /* recovery checked the heap: cannot happen */
            goto out;
        }
        if (!ch_cinuse(h, c) || size > TC_MAX_CHUNK ||
            hw(h, c + CH_PAYLOAD + 8) != ch_cache_marker(c, h->salt))
            continue;
        if (n == cap) {
            uint64_t *m = realloc(marked, (cap = cap ? 2 * cap : 256) * sizeof *m);
            if (!m) {
                err = ENOMEM;
                goto out;
            }
            marked = m;
        }
        marked[n++] = c;
    }
    /* ... then free each, one committed operation at a time. */
    for (size_t i = 0; i < n; i++) {
        h->err = 0;
        h->punch_len = 0;
        heap_free(h, marked[i] + CH_PAYLOAD);
        if (h->err) {
            log_rollback(a->base);
            err = FM_ECORRUPT;
            goto out;
        }
        commit_and_punch(a);
        ++*swept;
    }
out:
    free(marked);
    return err;
}
