/*
 * power_workloads.c -- the scenarios (power_workloads.h), each a short,
 * seeded program of heap operations with its own sync cadence.
 */
#include "power_workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "power_image.h" /* sim_random */

enum { KIB = 1024, MIB = 1024 * 1024 };

fm_off_t *slots(struct fm_info *fi)
{
    return fm_root(fi);
}

/* A non-zero byte, another one each call: a block's contents say which
 * write they came from, and never read zero. */
static int next_fill(void)
{
    static int last;
    last = last % 255 + 1;
    return last;
}

static void *must(void *p, const char *what, size_t size)
{
    if (!p) {
        fprintf(stderr, "power workload: %s(%zu) failed: %s\n", what, size,
                fm_strerror(fm_last_error()));
        exit(1);
    }
    return p;
}

void alloc_filled(struct fm_info *fi, int slot, size_t size)
{
    void *p = must(fm_malloc_to(fi, &slots(fi)[slot], size), "fm_malloc_to", size);
    memset(p, next_fill(), size);
}

void realloc_filled(struct fm_info *fi, int slot, size_t size)
{
    void *p = must(fm_realloc_to(fi, &slots(fi)[slot], size), "fm_realloc_to", size);
    memset(p, next_fill(), size);
}

void rewrite(struct fm_info *fi, int slot)
{
    void *p = fm_pointer(fi, slots(fi)[slot]);
    memset(p, next_fill(), fm_usable_size(fi, p));
}

/* fm_sync, then a crash point. */
static void sync_ticked(struct fm_info *fi, struct record *r)
{
    int err = fm_sync(fi);
    if (err) {
        fprintf(stderr, "power workload: fm_sync: %s\n", fm_strerror(err));
        exit(1);
    }
    rec_tick(r);
}

size_t small_size(uint64_t *rng)
{
    uint64_t x = sim_random(rng);
    return x % 8 == 0 ? 16 * KIB + (size_t)(x >> 8) % (112 * KIB) : 16 + (size_t)(x >> 8) % 4000;
}

/* One random operation on a random slot of [lo, hi). */
void churn_step(struct fm_info *fi, uint64_t *rng, int lo, int hi)
{
    int slot = lo + (int)(sim_random(rng) % (uint64_t)(hi - lo));
    uint64_t what = sim_random(rng) % 10;
    if (!slots(fi)[slot])
        alloc_filled(fi, slot, small_size(rng));
    else if (what < 4)
        fm_free_from(fi, &slots(fi)[slot]);
    else if (what < 6)
        realloc_filled(fi, slot, small_size(rng));
    else
        rewrite(fi, slot);
}

/* n random operations on slots [lo, hi), a crash point after each. */
void churn_ticked(struct fm_info *fi, struct record *r, uint64_t *rng, int n, int lo, int hi)
{
    for (int i = 0; i < n; i++) {
        churn_step(fi, rng, lo, hi);
        rec_tick(r);
    }
}

/* ---- the scenarios ------------------------------------------------------------ */

static void run_churn(struct fm_info *fi, struct record *r, uint64_t *rng)
{
    for (int op = 1; op <= 400; op++) {
        churn_step(fi, rng, 0, POWER_SLOTS);
        rec_tick(r);
        if (op % 16 == 0) {
            sync_ticked(fi, r);
        }
    }
}

/* Issue 16's silent loss: a durable, linked 3 MiB block, then an unsynced
 * fm_free_from; the punch must wait for the sync that makes the free
 * durable. */
static void run_free_big(struct fm_info *fi, struct record *r, uint64_t *rng)
{
    for (int round = 0; round < 3; round++) {
        alloc_filled(fi, 0, 3 * MIB);
        rec_tick(r);
        churn_ticked(fi, r, rng, 6, 1, 16);
        sync_ticked(fi, r);
        fm_free_from(fi, &slots(fi)[0]);
        rec_tick(r);
        churn_ticked(fi, r, rng, 8, 1, 16);
        if (round < 2) {
            sync_ticked(fi, r);
        }
    }
}

/* Frees at the top of the heap, then fm_trim: the smaller size must not
 * reach the disk before the header that allows it. */
static void run_trim(struct fm_info *fi, struct record *r, uint64_t *rng)
{
    for (int round = 0; round < 4; round++) {
        for (int i = 16; i < 40; i++) {
            alloc_filled(fi, i, 64 * KIB + (size_t)(sim_random(rng) % (16 * KIB)));
            rec_tick(r);
        }
        sync_ticked(fi, r);
        for (int i = 39; i >= 16; i--) {
            fm_free_from(fi, &slots(fi)[i]);
            rec_tick(r);
        }
        int err = fm_trim(fi, 0);
        if (err) {
            fprintf(stderr, "power workload: fm_trim: %s\n", fm_strerror(err));
            exit(1);
        }
        rec_tick(r);
        churn_ticked(fi, r, rng, 6, 0, 16);
        sync_ticked(fi, r);
    }
}

/* The file grows from 256 KiB to about 3.5 MiB, syncing every 4 blocks. */
static void run_grow(struct fm_info *fi, struct record *r, uint64_t *rng)
{
    for (int i = 0; i < 48; i++) {
        int slot = i % POWER_SLOTS;
        if (slots(fi)[slot])
            fm_free_from(fi, &slots(fi)[slot]);
        alloc_filled(fi, slot, 32 * KIB + (size_t)(sim_random(rng) % (64 * KIB)));
        rec_tick(r);
        if (sim_random(rng) % 6 == 0) {
            fm_free_from(fi, &slots(fi)[sim_random(rng) % (uint64_t)(i + 1)]);
            rec_tick(r);
        }
        if (i % 4 == 3) {
            sync_ticked(fi, r);
        }
    }
}

/* One block grown by half again up to 3 MiB (in place, or moved when a
 * neighbour is in the way), then shrunk; small blocks in between. */
static void run_realloc(struct fm_info *fi, struct record *r, uint64_t *rng)
{
    size_t size = 64 * KIB;
    alloc_filled(fi, 0, size);
    rec_tick(r);
    for (int step = 0; size < 3 * MIB; step++) {
        size += size / 2;
        if (size > 3 * MIB)
            size = 3 * MIB;
        realloc_filled(fi, 0, size);
        rec_tick(r);
        churn_step(fi, rng, 1, 8);
        rec_tick(r);
        if (step % 2 == 1) {
            sync_ticked(fi, r);
        }
    }
    sync_ticked(fi, r);
    for (; size > 128 * KIB; size /= 3) {
        realloc_filled(fi, 0, size / 3);
        rec_tick(r);
        churn_step(fi, rng, 1, 8);
        rec_tick(r);
    }
    sync_ticked(fi, r);
}

const struct workload power_workloads[] = {
    {"churn", "small objects, fm_sync every 16 operations", 1 * MIB, run_churn},
    {"free_big", "a synced 3 MiB block, then an unsynced fm_free_from", 1 * MIB, run_free_big},
    {"trim", "frees at the top, then fm_trim", 1 * MIB, run_trim},
    {"grow", "the file grows from 256 KiB to ~3.5 MiB", 256 * KIB, run_grow},
    {"realloc", "a block realloc'ed up to 3 MiB and back", 1 * MIB, run_realloc},
};
const int power_nworkloads = (int)(sizeof power_workloads / sizeof *power_workloads);
