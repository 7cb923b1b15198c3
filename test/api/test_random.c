/*
 * test_random.c -- the differential test of the heap.
 *
 * Public API only.  A seeded random workload (malloc 40 %, free 30 %,
 * realloc 15 %, calloc 10 %, memalign 5 %) over 20,000 slots, with sizes
 * log-uniform from 1 B to 64 KiB and now and then 256 KiB to 4 MiB.  The
 * process keeps its own model of every slot (offset, size, generation); each
 * block holds a pattern derived from (slot, generation) that is verified
 * before the block is freed or resized, and after a realloc the preserved
 * prefix is verified too.  fm_check() runs every 100,000 operations.  Half
 * way the arena is closed, its old address range is blocked, and it is
 * reopened elsewhere: the model (offsets only) must still match.
 *
 * FM_TEST_SEED replays a run; FM_TEST_OPS changes the operation count
 * (default 1,000,000).
 */
#include <fmalloc.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "api_util.h"
#include "harness.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)

enum { NSLOTS = 20000, CHECK_EVERY = 100000, MAX_REPORTS = 10 };
#define FRAG_MAX 1.70 /* file size / peak live bytes, full run */

struct slot {
    fm_off_t off; /* 0: empty */
    size_t size;  /* requested bytes */
    uint32_t gen; /* generation of the pattern in the block */
    int live_pos; /* index in live[] or -1 */
};

static struct slot slots[NSLOTS];
static int live[NSLOTS];
static int nlive;
static uint64_t live_bytes, peak_live_bytes;
static uint64_t seed_mix;
static uint32_t next_gen = 1;
static long errors;
static long op_no;

enum { OP_MALLOC, OP_FREE, OP_REALLOC, OP_CALLOC, OP_MEMALIGN, OP_KINDS };
static long op_count[OP_KINDS];

static uint64_t slot_key(int s, uint32_t gen)
{
    return seed_mix ^ ((uint64_t)(uint32_t)s << 32 | gen);
}

static void report(const char *what, int s, size_t detail)
{
    errors++;
    if (errors <= MAX_REPORTS)
        fprintf(stderr, "op %ld slot %d: %s (%zu)\n", op_no, s, what, detail);
    harness_checks++;
    harness_failures++;
}

/* Sizes log-uniform over 1 B .. 64 KiB; one in a thousand 256 KiB .. 4 MiB. */
static size_t rand_size(uint64_t *r)
{
    unsigned b;
    if (harness_rand(r) % 1000 == 0) {
        b = 18 + (unsigned)(harness_rand(r) % 4);
    } else {
        b = (unsigned)(harness_rand(r) % 16);
    }
    return ((size_t)1 << b) + (size_t)(harness_rand(r) % ((size_t)1 << b));
}

static void live_add(int s)
{
    slots[s].live_pos = nlive;
    live[nlive++] = s;
    live_bytes += slots[s].size;
    if (live_bytes > peak_live_bytes)
        peak_live_bytes = live_bytes;
}

static void live_remove(int s)
{
    int pos = slots[s].live_pos, last = live[--nlive];
    live[pos] = last;
    slots[last].live_pos = pos;
    slots[s].live_pos = -1;
    live_bytes -= slots[s].size;
}

/* Verify the first n bytes of slot s against its pattern; the block pointer. */
static char *slot_verify(struct fm_info *fi, int s, size_t n)
{
    char *p = fm_pointer(fi, slots[s].off);
    size_t bad;
    if (!p) {
        report("offset does not map", s, (size_t)slots[s].off);
        return NULL;
    }
    bad = pat_check(p, n, slot_key(s, slots[s].gen));
    if (bad != SIZE_MAX)
        report("pattern mismatch at byte", s, bad);
    return p;
}

/* A block just returned for n bytes (aligned to align). */
static int block_ok(struct fm_info *fi, int s, const char *p, size_t n, size_t align)
{
    if (!p) {
        report("allocation failed, errno", s, (size_t)errno);
        return 0;
    }
    if ((uintptr_t)p % 16 != 0 || (uintptr_t)p % align != 0)
        report("misaligned block", s, (size_t)((uintptr_t)p % (align > 16 ? align : 16)));
    if (fm_usable_size(fi, p) < n)
        report("usable size too small", s, fm_usable_size(fi, p));
    return 1;
}

static void slot_store(struct fm_info *fi, int s, char *p, size_t n)
{
    slots[s].off = fm_offset(fi, p);
    slots[s].size = n;
    slots[s].gen = next_gen++;
    pat_fill(p, n, slot_key(s, slots[s].gen));
    live_add(s);
}

static void slot_free(struct fm_info *fi, int s)
{
    char *p = slot_verify(fi, s, slots[s].size);
    live_remove(s);
    slots[s].off = 0;
    if (p)
        fm_free(fi, p);
}

static void verify_all(struct fm_info *fi, const char *when)
{
    long before = errors;
    for (int i = 0; i < nlive; i++)
        slot_verify(fi, live[i], slots[live[i]].size);
    if (errors != before)
        fprintf(stderr, "verify_all (%s): %ld errors\n", when, errors - before);
}

static void check_heap(struct fm_info *fi, const char *when)
{
    struct fm_stats st;
    int rc = fm_check(fi);
    if (!expect_true(rc == 0))
        fprintf(stderr, "fm_check at op %ld (%s): %d: %s\n", op_no, when, rc,
                fm_check_message(fi));
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, nlive);
    expect_eq(st.allocated_bytes + st.free_bytes, st.heap_size);
    if (st.allocated_count != (uint64_t)nlive)
        fprintf(stderr, "  at op %ld (%s)\n", op_no, when);
}

struct walk_state {
    long calls;
    long mismatches;
    const fm_off_t *sorted;
    long n;
    struct fm_info *fi;
};

static int walk_cb(void *p, size_t size, void *arg)
{
    struct walk_state *w = arg;
    fm_off_t off = fm_offset(w->fi, p);
    if (w->calls >= w->n || w->sorted[w->calls] != off)
        w->mismatches++;
    (void)size;
    w->calls++;
    return 0;
}

static int cmp_off(const void *a, const void *b)
{
    fm_off_t x = *(const fm_off_t *)a, y = *(const fm_off_t *)b;
    return x < y ? -1 : x > y;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One random operation. */
static void step(struct fm_info *fi, uint64_t *r)
{
    unsigned pick = (unsigned)(harness_rand(r) % 100);
    int kind = pick < 40   ? OP_MALLOC
               : pick < 70 ? OP_FREE
               : pick < 85 ? OP_REALLOC
               : pick < 95 ? OP_CALLOC
                           : OP_MEMALIGN;
    int s;
    char *p;

    if ((kind == OP_FREE || kind == OP_REALLOC) && nlive == 0)
        kind = OP_MALLOC;
    op_count[kind]++;

    switch (kind) {
    case OP_FREE:
        slot_free(fi, live[harness_rand(r) % (uint64_t)nlive]);
        return;

    case OP_REALLOC: {
        size_t n = rand_size(r), old;
        uint32_t old_gen;
        s = live[harness_rand(r) % (uint64_t)nlive];
        old = slots[s].size;
        old_gen = slots[s].gen;
        p = slot_verify(fi, s, old);
        if (!p)
            return;
        p = fm_realloc(fi, p, n);
        if (!block_ok(fi, s, p, n, 1))
            return; /* the old block stays: the model is unchanged */
        {
            size_t keep = n < old ? n : old, bad = pat_check(p, keep, slot_key(s, old_gen));
            if (bad != SIZE_MAX)
                report("realloc lost content at byte", s, bad);
        }
        live_remove(s);
        slot_store(fi, s, p, n);
        return;
    }

    case OP_MALLOC:
    case OP_CALLOC:
    case OP_MEMALIGN: {
        size_t n = rand_size(r), align = 1;
        s = (int)(harness_rand(r) % NSLOTS);
        if (slots[s].off)
            slot_free(fi, s); /* the slot is reused: its old block goes */
        if (kind == OP_MALLOC) {
            p = fm_malloc(fi, n);
        } else if (kind == OP_CALLOC) {
            size_t elems = 1 + (size_t)(harness_rand(r) % 8), each = n / elems;
            if (each == 0)
                each = 1;
            n = elems * each;
            p = fm_calloc(fi, elems, each);
            if (p && !all_zero(p, n))
                report("calloc block not zeroed", s, n);
        } else {
            align = harness_rand(r) % 100 == 0 ? MiB : (size_t)1 << (harness_rand(r) % 17);
            p = fm_memalign(fi, align, n);
        }
        if (block_ok(fi, s, p, n, align))
            slot_store(fi, s, p, n);
        return;
    }
    }
}

int main(void)
{
    const char *path = tpath("random.fm");
    struct fm_info *fi = NULL;
    struct fm_stats st;
    uint64_t seed = harness_seed(), r = pat_mix(seed);
    long ops = 1000000;
    void *oldbase, *blocker = MAP_FAILED;
    const size_t blocker_size = 1 * GiB;
    double t0 = now_seconds();

    if (getenv("FM_TEST_OPS"))
        ops = atol(getenv("FM_TEST_OPS"));
    seed_mix = pat_mix(seed);
    for (int i = 0; i < NSLOTS; i++)
        slots[i].live_pos = -1;

    fi = fresh_arena(path, (struct fm_options){0});

    for (op_no = 0; op_no < ops; op_no++) {
        if (op_no > 0 && op_no % CHECK_EVERY == 0)
            check_heap(fi, "periodic");

        if (op_no == ops / 2) {
            /* Close, block the old address, reopen elsewhere. */
            check_heap(fi, "before reopen");
            memcpy(fm_root(fi), &op_no, sizeof op_no);
            oldbase = fi->mem;
            require_eq(fm_close(fi), 0);
            fi = NULL;
            blocker = mmap(oldbase, blocker_size, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            require_true(blocker != MAP_FAILED);
            if (!expect_true(blocker == oldbase))
                fprintf(stderr, "could not map at the old base %p (got %p): "
                                "was the arena's range unmapped by fm_close?\n",
                        oldbase, blocker);
            fi = require_open(path, (struct fm_options){0});
            if (!expect_true(fi->mem != oldbase))
                fprintf(stderr, "reopened at the blocked old base %p\n", oldbase);
            printf("reopen at op %ld: base %p -> %p\n", op_no, oldbase, fi->mem);
            {
                long stored;
                memcpy(&stored, fm_root(fi), sizeof stored);
                expect_eq(stored, op_no);
            }
            fm_stats(fi, &st);
            expect_true(!st.recovered);
            verify_all(fi, "after reopen");
            check_heap(fi, "after reopen");
        }
        step(fi, &r);
        if (errors > 1000) {
            fprintf(stderr, "too many errors, stopping at op %ld\n", op_no);
            break;
        }
    }

    verify_all(fi, "end");
    check_heap(fi, "end");

    /* fm_walk sees exactly the model's live blocks. */
    {
        fm_off_t *sorted = malloc((size_t)(nlive ? nlive : 1) * sizeof *sorted);
        struct walk_state w;
        require_true(sorted != NULL);
        for (int i = 0; i < nlive; i++)
            sorted[i] = slots[live[i]].off;
        qsort(sorted, (size_t)nlive, sizeof *sorted, cmp_off);
        memset(&w, 0, sizeof w);
        w.sorted = sorted;
        w.n = nlive;
        w.fi = fi;
        expect_eq(fm_walk(fi, walk_cb, &w), 0);
        expect_eq(w.calls, nlive);
        expect_eq(w.mismatches, 0);
        free(sorted);
    }

    expect_eq(fm_stats(fi, &st), 0);
    printf("ops executed: %ld (malloc %ld, free %ld, realloc %ld, calloc %ld, memalign %ld)\n",
           op_no, op_count[OP_MALLOC], op_count[OP_FREE], op_count[OP_REALLOC],
           op_count[OP_CALLOC], op_count[OP_MEMALIGN]);
    printf("live at end: %d blocks, %" PRIu64 " bytes\n", nlive, live_bytes);
    printf("peak live bytes (requested): %" PRIu64 "\n", peak_live_bytes);
    printf("final file size: %" PRIu64 " bytes (heap %" PRIu64 ", allocated %" PRIu64
           ", free %" PRIu64 " in %" PRIu64 " chunks, top %" PRIu64 ")\n",
           st.file_size, st.heap_size, st.allocated_bytes, st.free_bytes, st.free_blocks,
           st.top_size);
    double frag = peak_live_bytes ? (double)st.file_size / (double)peak_live_bytes : 0.0;
    printf("file size / peak live bytes: %.3f\n", frag);
    /* Fragmentation, as a ratio (the file never shrinks here, so its size
     * is its high-water mark).  Over seeds 1-25 it is 1.28-1.59 (mean
     * 1.43) with the thread caches on; before caches stopped pinning
     * blocks next to big free chunks and memalign looked for aligned room
     * in free chunks it was 1.75-1.94 (seeds 1-3).  The bound leaves room
     * for the seeds CI draws from the clock.  Issue 17's target is 1.15.
     * Only the full run: a short one has not reached its steady state. */
    if (ops >= 1000000 && !expect_true(frag <= FRAG_MAX))
        fprintf(stderr, "file size / peak live %.3f is above %.2f\n", frag, FRAG_MAX);
    printf("errors: %ld, time %.1f s\n", errors, now_seconds() - t0);

    /* Free everything: the heap is empty and still consistent. */
    while (nlive > 0)
        slot_free(fi, live[nlive - 1]);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    if (blocker != MAP_FAILED)
        munmap(blocker, blocker_size);
    unlink(path);
    return api_done();
}
