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

extern const struct workload power_workloads[];
extern const int power_nworkloads;

#endif
