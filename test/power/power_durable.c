/*
 * power_durable.c -- the FM_DURABLE scenarios (power_durable.h): the
 * steps of power_workloads.c with commits between them.
 */
#include "power_durable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_hash.h"
#include "power_image.h" /* sim_random */
#include "power_workloads.h"

enum { KIB = 1024, MIB = 1024 * 1024 };

void dur_begin(struct dur_run *d)
{
    if (d->ncommits == DUR_MAX_COMMITS) {
        fprintf(stderr, "power durable: more than %d commits\n", DUR_MAX_COMMITS);
        exit(1);
    }
    rec_mark(d->r, 2 * (uint64_t)d->ncommits);
}

void dur_end(struct dur_run *d)
{
    rec_mark(d->r, 2 * (uint64_t)d->ncommits + 1);
    struct snap s;
    int err = state_hash(d->fi, &s);
    if (err) {
        fprintf(stderr, "power durable: hashing the arena: %s\n", fm_strerror(err));
        exit(1);
    }
    d->hash[d->ncommits++] = s.hash;
}

void dur_commit(struct dur_run *d)
{
    dur_begin(d);
    int err = fm_commit(d->fi);
    if (err) {
        fprintf(stderr, "power durable: fm_commit: %s\n", fm_strerror(err));
        exit(1);
    }
    dur_end(d);
    rec_tick(d->r);
}

void dur_close(struct dur_run *d)
{
    dur_begin(d);
    struct snap s;
    int err = state_hash(d->fi, &s);
    if (!err)
        err = fm_close(d->fi);
    if (err) {
        fprintf(stderr, "power durable: closing: %s\n", fm_strerror(err));
        exit(1);
    }
    d->fi = NULL;
    rec_mark(d->r, 2 * (uint64_t)d->ncommits + 1);
    d->hash[d->ncommits++] = s.hash;
}

void dur_reopen(struct dur_run *d)
{
    dur_begin(d);
    int err = fm_open(d->path, &(struct fm_options){.flags = FM_DURABLE}, &d->fi);
    if (err) {
        fprintf(stderr, "power durable: reopening: %s\n", fm_strerror(err));
        exit(1);
    }
    dur_end(d);
    rec_tick(d->r);
}

/* ---- the scenarios ------------------------------------------------------------ */

/* Small objects, a commit every 10 operations. */
static void run_churn(struct dur_run *d, uint64_t *rng)
{
    for (int op = 1; op <= 300; op++) {
        churn_step(d->fi, rng, 0, 64);
        rec_tick(d->r);
        if (op % 10 == 0)
            dur_commit(d);
    }
}

/* The file grows from 256 KiB to about 3.5 MiB: commits every 4 blocks,
 * then one transaction of 12 blocks that grows it by more than half. */
static void run_grow(struct dur_run *d, uint64_t *rng)
{
    struct fm_info *fi = d->fi;
    for (int i = 0; i < 48; i++) {
        int slot = i % 40;
        if (slots(fi)[slot])
            fm_free_from(fi, &slots(fi)[slot]);
        alloc_filled(fi, slot, 32 * KIB + (size_t)(sim_random(rng) % (64 * KIB)));
        rec_tick(d->r);
        if (sim_random(rng) % 6 == 0) {
            fm_free_from(fi, &slots(fi)[sim_random(rng) % (uint64_t)(slot + 1)]);
            rec_tick(d->r);
        }
        if (i % 4 == 3 && i < 36)
            dur_commit(d);
    }
    dur_commit(d);
}

/* A committed 3 MiB block freed (its pages punched), blocks at the top
 * freed and fm_trim'ed, each committed: no punch and no shrink may reach
 * the disk before the commit that frees. */
static void run_trim(struct dur_run *d, uint64_t *rng)
{
    struct fm_info *fi = d->fi;
    for (int round = 0; round < 3; round++) {
        alloc_filled(fi, 0, 3 * MIB);
        rec_tick(d->r);
        for (int i = 16; i < 36; i++) {
            alloc_filled(fi, i, 64 * KIB + (size_t)(sim_random(rng) % (16 * KIB)));
            rec_tick(d->r);
        }
        dur_commit(d);
        fm_free_from(fi, &slots(fi)[0]);
        rec_tick(d->r);
        churn_ticked(fi, d->r, rng, 4, 1, 16);
        dur_commit(d);
        for (int i = 35; i >= 16; i--) {
            fm_free_from(fi, &slots(fi)[i]);
            rec_tick(d->r);
        }
        int err = fm_trim(fi, 0);
        if (err) {
            fprintf(stderr, "power durable: fm_trim: %s\n", fm_strerror(err));
            exit(1);
        }
        rec_tick(d->r);
        dur_commit(d);
        churn_ticked(fi, d->r, rng, 4, 1, 16);
    }
}

/* One block realloc'ed up to 3 MiB (moving, or in place) and back, a
 * commit every other step: commits of a few pages and of hundreds. */
static void run_realloc(struct dur_run *d, uint64_t *rng)
{
    size_t size = 64 * KIB;
    alloc_filled(d->fi, 0, size);
    rec_tick(d->r);
    for (int step = 0; size < 3 * MIB; step++) {
        size += size / 2;
        if (size > 3 * MIB)
            size = 3 * MIB;
        realloc_filled(d->fi, 0, size);
        rec_tick(d->r);
        churn_step(d->fi, rng, 1, 8);
        rec_tick(d->r);
        if (step % 2 == 1)
            dur_commit(d);
    }
    dur_commit(d);
    for (; size > 128 * KIB; size /= 3) {
        realloc_filled(d->fi, 0, size / 3);
        rec_tick(d->r);
        churn_step(d->fi, rng, 1, 8);
        rec_tick(d->r);
        dur_commit(d);
    }
}

/* Plain fm_malloc/fm_free/fm_realloc (the thread caches' paths), the
 * links stored by hand, and names bound and unbound: a commit must hold
 * the caches' marker stores and the name directory too.  Now and then a
 * commit with nothing new. */
static void run_plain(struct dur_run *d, uint64_t *rng)
{
    struct fm_info *fi = d->fi;
    for (int op = 1; op <= 240; op++) {
        int slot = (int)(sim_random(rng) % 48);
        uint64_t what = sim_random(rng) % 10;
        void *p = slots(fi)[slot] ? fm_pointer(fi, slots(fi)[slot]) : NULL;
        size_t size = 16 + (size_t)(sim_random(rng) % 2000);
        if (!p || what >= 6) {
            if (!p && !(p = fm_malloc(fi, size))) {
                fprintf(stderr, "power durable: fm_malloc(%zu) failed\n", size);
                exit(1);
            }
            memset(p, (int)(sim_random(rng) % 255) + 1, fm_usable_size(fi, p));
            slots(fi)[slot] = fm_offset(fi, p);
        } else if (what < 4) {
            fm_free(fi, p);
            slots(fi)[slot] = 0;
        } else if (!(p = fm_realloc(fi, p, size))) {
            fprintf(stderr, "power durable: fm_realloc(%zu) failed\n", size);
            exit(1);
        } else {
            slots(fi)[slot] = fm_offset(fi, p);
        }
        rec_tick(d->r);
        if (op % 30 == 0) {
            char name[16];
            snprintf(name, sizeof name, "n%d", (int)(sim_random(rng) % 4));
            if (fm_name_unbind(fi, name) == ENOENT && !fm_name_malloc(fi, name, 100)) {
                fprintf(stderr, "power durable: fm_name_malloc failed\n");
                exit(1);
            }
            rec_tick(d->r);
        }
        if (op % 8 == 0)
            dur_commit(d);
        if (op % 80 == 0)
            dur_commit(d); /* nothing written since the last one */
    }
}

/* Closed and opened again, three times: the journal is emptied and
 * removed at each close and created again at each open (a new file of the
 * same path, durable only once its directory is synced). */
static void run_reopen(struct dur_run *d, uint64_t *rng)
{
    for (int round = 0; round < 4; round++) {
        if (round) {
            dur_close(d);
            dur_reopen(d);
        }
        for (int op = 1; op <= 30; op++) {
            churn_step(d->fi, rng, 0, 32);
            rec_tick(d->r);
            if (op % 10 == 0)
                dur_commit(d);
        }
        churn_ticked(d->fi, d->r, rng, 3, 0, 32);
    }
}

/* The second level of dur_recover: after the open that recovered, a few
 * operations and a commit (fm_close commits again). */
static void run_after_recovery(struct dur_run *d, uint64_t *rng)
{
    churn_ticked(d->fi, d->r, rng, 6, 0, 64);
    dur_commit(d);
    churn_ticked(d->fi, d->r, rng, 4, 0, 64);
}

const struct dur_workload dur_workloads[] = {
    {"dur_churn", "small objects, fm_commit every 10 operations, a checkpoint every 4", 1 * MIB,
     run_churn, 4},
    {"dur_grow", "the file grows from 256 KiB to ~3.5 MiB, the end in one commit", 256 * KIB,
     run_grow, 0},
    {"dur_trim", "a 3 MiB block freed, the top freed and trimmed, committed", 1 * MIB, run_trim, 0},
    {"dur_realloc", "a block realloc'ed up to 3 MiB and back", 1 * MIB, run_realloc, 0},
    {"dur_plain",
     "fm_malloc/fm_free/fm_realloc through the caches, names, commits every 8, a checkpoint "
     "every 3",
     1 * MIB, run_plain, 3},
    {"dur_reopen", "closed and opened again 3 times, the journal removed and created again",
     1 * MIB, run_reopen, 0},
    {"dur_recover", "cut inside commits of dur_churn, then inside the recovery", 1 * MIB,
     run_churn, 4},
};
const int dur_nworkloads = (int)(sizeof dur_workloads / sizeof *dur_workloads);
const struct dur_workload dur_after_recovery = {"dur_recover", "after the recovery", 0,
                                                run_after_recovery, 0};
