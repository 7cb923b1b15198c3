/*
 * test_tcache.c -- the thread caches' internals: a checker (fm_check,
 * fm_stats) running while other threads use their caches, in both ways of
 * stopping the fast paths (membarrier and spin locks); the periodic trim
 * of blocks a class stopped using; refills carving runs of adjacent blocks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "arena_util.h"
#include "harness.h"
#include "os.h"

extern bool fm__tc_no_barrier;

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1 /* the library uses the spin locks: TSan cannot see membarrier */
#else
#define UNDER_TSAN 0
#endif

static char path[600];
static uint64_t rng;

/* ---- a checker beside busy fast paths ------------------------------------ */

enum { WORKERS = 3, WSLOTS = 256 };
static atomic_int workers_left;

struct worker {
    struct fm_info *fi;
    uint64_t seed;
    long ops, errors;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    uint64_t r = w->seed;
    static _Thread_local struct {
        unsigned char *p;
        unsigned char v;
        size_t n;
    } slot[WSLOTS];
    for (long op = 0; op < w->ops; op++) {
        unsigned s = (unsigned)(harness_rand(&r) % WSLOTS);
        if (slot[s].p) {
            if (slot[s].p[0] != slot[s].v || slot[s].p[slot[s].n - 1] != slot[s].v)
                w->errors++;
            fm_free(w->fi, slot[s].p);
            slot[s].p = NULL;
        } else {
            size_t n = 1 + (size_t)(harness_rand(&r) % 1000); /* all cached sizes */
            unsigned char *p = fm_malloc(w->fi, n);
            if (!p) {
                w->errors++;
                continue;
            }
            slot[s].p = p, slot[s].n = n, slot[s].v = (unsigned char)op;
            memset(p, slot[s].v, n);
        }
    }
    for (unsigned s = 0; s < WSLOTS; s++)
        if (slot[s].p) {
            fm_free(w->fi, slot[s].p);
            slot[s].p = NULL;
        }
    atomic_fetch_sub(&workers_left, 1);
    return NULL;
}

/* fm_check and fm_stats stop every cache's fast path while they read the
 * lists: each must see a consistent heap, however busy the threads are. */
static void checker_beside_workers(bool spin_locks)
{
    fm__tc_no_barrier = spin_locks;
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.flags = FM_NOSYNC});
    struct fm_arena *a = arena_of(fi);
    if (!spin_locks && !UNDER_TSAN && os_barrier_available() == 0)
        expect_true(a->tc.asym); /* the membarrier path is the one under test */
    if (spin_locks)
        expect_true(!a->tc.asym);
    const char *mode = a->tc.asym ? "membarrier" : "spin locks";
    static struct worker w[WORKERS];
    pthread_t th[WORKERS];
    atomic_store(&workers_left, WORKERS);
    for (int t = 0; t < WORKERS; t++) {
        w[t] = (struct worker){fi, harness_rand(&rng) | 1, 200000, 0};
        require_eq(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
    }
    long checks = 0, bad = 0;
    do { /* at least once: under Valgrind the workers may be done first */
        struct fm_stats st;
        if (fm_check(fi) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "  fm_check during the run: %s\n", fm_check_message(fi));
        }
        if (fm_stats(fi, &st) != 0)
            bad++;
        checks++;
        usleep(20); /* let the workers run between stops */
    } while (atomic_load(&workers_left) > 0);
    for (int t = 0; t < WORKERS; t++) {
        require_eq(pthread_join(th[t], NULL), 0);
        expect_eq(w[t].errors, 0);
    }
    expect_eq(bad, 0);
    expect_true(checks > 0);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    printf("checker beside %d threads (%s): %ld checks, %ld inconsistent\n", WORKERS, mode, checks,
           bad);
    fm__tc_no_barrier = false;
}

/* The cache this (single-threaded) test's calls claimed. */
static struct tcache *owned_cache(struct fm_arena *a)
{
    struct tcache *tc = NULL;
    for (unsigned i = 0; i < TC_MAX; i++)
        if (a->tc.caches[i].owned)
            tc = &a->tc.caches[i];
    require_true(tc != NULL);
    return tc;
}

/* ---- trim ------------------------------------------------------------------ */

/* Blocks a class has not needed for TC_TRIM_OPS operations go back to the
 * heap (three quarters of them at each trim); a class in use keeps its own. */
static void trim_gives_back_idle_blocks(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.flags = FM_NOSYNC});
    struct fm_arena *a = arena_of(fi);
    enum { N = 100 };
    void *p[N];
    for (int i = 0; i < N; i++)
        require_true((p[i] = fm_malloc(fi, 200)) != NULL);
    for (int i = 0; i < N; i++)
        fm_free(fi, p[i]);
    struct tcache *tc = owned_cache(a);
    unsigned idle = (unsigned)(request_to_size(200) >> 4);
    uint32_t held = tc->counts[idle];
    expect_true(held >= N);
    /* Two trims' worth of operations on another class only. */
    for (unsigned k = 0; k < 2 * TC_TRIM_OPS; k += 2) {
        void *q = fm_malloc(fi, 40);
        require_true(q != NULL);
        fm_free(fi, q);
    }
    /* The first trim sets the low-water mark, the second acts on it. */
    printf("trim: an idle class went from %u cached blocks to %u\n", held, tc->counts[idle]);
    expect_true(tc->counts[idle] <= held / 4 + 1);
    expect_true(tc->counts[request_to_size(40) >> 4] > 0); /* the busy class keeps some */
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

/* ---- calloc ---------------------------------------------------------------- */

/* fm_calloc is served by the caches like fm_malloc: the block this thread
 * just freed comes back, its marker, link and old bytes cleared through
 * its last usable byte. */
static void calloc_takes_a_cached_block(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.flags = FM_NOSYNC});
    struct fm_arena *a = arena_of(fi);
    unsigned cls = (unsigned)(request_to_size(200) >> 4);
    unsigned char *p = fm_malloc(fi, 200);
    require_true(p != NULL);
    size_t usable = fm_usable_size(fi, p);
    memset(p, 0xab, usable);
    fm_free(fi, p);
    struct tcache *tc = owned_cache(a);
    require_true(tc->heads[cls] + CH_PAYLOAD == (uint64_t)(p - (unsigned char *)a->base));
    uint32_t held = tc->counts[cls];
    unsigned char *q = fm_calloc(fi, 4, 50);
    expect_true(q == p);
    expect_eq(tc->counts[cls], held - 1);
    require_true(q != NULL);
    size_t nonzero = 0;
    for (size_t i = 0; i < usable; i++)
        nonzero += q[i] != 0;
    expect_eq(nonzero, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

/* ---- runs ------------------------------------------------------------------ */

/* A miss with no free chunk of the size carves from the top: the block and
 * the ones cached after it sit side by side, and come out in address order.
 * Each refill of a class takes twice as many blocks as the one before (up
 * to TC_REFILL), until the class overflows and flushes. */
static void refill_carves_a_run(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.flags = FM_NOSYNC});
    struct fm_arena *a = arena_of(fi);
    size_t nb = request_to_size(100);
    unsigned cls = (unsigned)(nb >> 4);
    char *first = fm_malloc(fi, 100);
    require_true(first != NULL);
    struct tcache *tc = owned_cache(a);
    unsigned run = 4096 / (unsigned)nb; /* the first refill: about 4 KiB */
    expect_eq(tc->counts[cls], run - 1);
    for (unsigned i = 1; i < run; i++) {
        char *q = fm_malloc(fi, 100);
        expect_true(q == first + (size_t)i * nb);
    }
    expect_eq(tc->counts[cls], 0);
    char *next = fm_malloc(fi, 100); /* the second refill takes twice as many */
    require_true(next != NULL);
    unsigned second = 2 * run > TC_REFILL ? TC_REFILL : 2 * run;
    expect_eq(tc->counts[cls], second - 1);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    rng = harness_seed();
    snprintf(path, sizeof path, "%s/tcache.fm", harness_tmpdir());
    checker_beside_workers(false);
    checker_beside_workers(true);
    trim_gives_back_idle_blocks();
    refill_carves_a_run();
    calloc_takes_a_cached_block();
    return harness_done();
}
