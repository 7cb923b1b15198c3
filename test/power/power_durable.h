/*
 * power_durable.h -- the scenarios the simulator cuts the power in for
 * FM_DURABLE arenas.  Each runs on an arena opened with FM_DURABLE, calls
 * fm_commit at points of its own (dur_commit), and rec_tick()s after
 * every operation.  Commit k is framed in the record by MARK 2k (it
 * begins) and MARK 2k+1 (it returned), and its state -- the arena's hash
 * (test/state_hash.h) when it returned -- is kept in hash[k].  Commit 0 is the
 * state the arena opened with; the runner frames fm_close, which commits,
 * as the last one.
 */
#ifndef FM_POWER_DURABLE_H
#define FM_POWER_DURABLE_H

#include <stdint.h>

#include "fmalloc.h"
#include "power_record.h"

enum { DUR_MAX_COMMITS = 256 };

struct dur_run {
    struct record *r;
    struct fm_info *fi;
    const char *path; /* the arena's */
    int ncommits;
    uint64_t hash[DUR_MAX_COMMITS];
};

/* MARK the beginning of commit d->ncommits. */
void dur_begin(struct dur_run *d);
/* MARK its end, with the arena's state now as its hash. */
void dur_end(struct dur_run *d);
/* fm_commit, framed; a crash point after it. */
void dur_commit(struct dur_run *d);

/* fm_close, framed as the last commit (its state: the arena's before). */
void dur_close(struct dur_run *d);
/* fm_open of d->path with FM_DURABLE, framed as a commit (its state: the
 * arena's after): the open of an arena closed in the same recording. */
void dur_reopen(struct dur_run *d);

struct dur_workload {
    const char *name;
    const char *what;
    uint64_t initial_size; /* of the new arena */
    void (*run)(struct dur_run *d, uint64_t *rng);
    unsigned checkpoint_every; /* commits per journal epoch; 0: the library's */
};

extern const struct dur_workload dur_workloads[];
extern const int dur_nworkloads;
/* dur_recover's second level: what runs after the open that recovers. */
extern const struct dur_workload dur_after_recovery;

#endif
