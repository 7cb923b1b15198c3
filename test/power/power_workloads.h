/*
 * power_workloads.h -- the scenarios the power-loss simulator cuts the
 * power in.  Each runs on an open, freshly created arena, keeps its blocks
 * linked from the root region's slots (fm_off_t root[POWER_SLOTS]), fills
 * every byte it writes with a non-zero value, and calls rec_tick() after
 * every operation so that a power cut may strike between any two.
 */
#ifndef FM_POWER_WORKLOADS_H
#define FM_POWER_WORKLOADS_H

#include <stdint.h>

#include "fmalloc.h"
#include "power_record.h"

enum { POWER_SLOTS = 64 };

struct workload {
    const char *name;
    const char *what;
    uint64_t initial_size; /* of the new arena */
    void (*run)(struct fm_info *fi, struct record *r, uint64_t *rng);
};

/* The steps scenarios are made of (power_durable.c's too). */
fm_off_t *slots(struct fm_info *fi);
/* Allocate or reallocate the block of `slot`, filled with a fresh byte. */
void alloc_filled(struct fm_info *fi, int slot, size_t size);
void realloc_filled(struct fm_info *fi, int slot, size_t size);
/* Refill the block of `slot`. */
void rewrite(struct fm_info *fi, int slot);
/* 16 B to 4 KB, one in eight 16 to 128 KiB. */
size_t small_size(uint64_t *rng);
/* One random operation on a random slot of [lo, hi). */
void churn_step(struct fm_info *fi, uint64_t *rng, int lo, int hi);
/* n of them, a crash point after each. */
void churn_ticked(struct fm_info *fi, struct record *r, uint64_t *rng, int n, int lo, int hi);

extern const struct workload power_workloads[];
extern const int power_nworkloads;

#endif
