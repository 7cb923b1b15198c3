/*
 * power_run_durable.c -- the simulator's runner for FM_DURABLE arenas.
 *
 * What is asserted for every image (docs/crash-model.md, "OS crash and
 * power loss"): fm_open succeeds (a refusal of any kind is a failure),
 * fm_check passes, and the arena's state (test/state_hash.h) is the state of
 * commit k, the last one that returned before the cut -- or of commit
 * k+1 if it had begun (the cut fell inside it).  The images hold every
 * file of the record (the arena, its journal) cut at one instant
 * (power_files.h).  Three images in four are opened with FM_DURABLE, the
 * fourth in the default mode: every open must replay a valid journal.
 *
 * dur_recover cuts twice: images of dur_churn cut inside its commits
 * (where the journal may be half written, complete, or half applied) are
 * opened while recording, and that recording -- the recovery, a commit,
 * the close -- is cut again; its commit 0 is the state the recovering
 * open found, which must itself be commit k or k+1 of the first level.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state_hash.h"
#include "fmalloc.h"
#include "journal.h"
#include "power_files.h"
#include "power_run.h"

enum { RECOVER_FIRST_CUTS = 20 };

static void path_in(char *out, size_t n, const char *sub, const char *name, const char *suffix)
{
    snprintf(out, n, "%s/%s/%s.fm%s", power_dir, sub, name, suffix);
}

/* Run w on the arena at `arena` (created if fresh, else recovered from
 * what is there), the os layer recorded; 0, or the error of fm_open. */
static int record_durable(const struct dur_workload *w, const char *arena, bool fresh,
                          uint64_t seed, struct record *r, struct dur_run *d)
{
    char journal[1100];
    snprintf(journal, sizeof journal, "%s-journal", arena);
    if (fresh) {
        unlink(arena);
        unlink(journal);
    }
    rec_start(r);
    rec_know(r, arena);
    rec_know(r, journal);
    if (!fresh)
        rec_arm_strict(r); /* the recovery is what the second level cuts */
    *d = (struct dur_run){.r = r, .path = arena};
    dur_begin(d);
    jnl_checkpoint_commits = w->checkpoint_every ? w->checkpoint_every : JNL_CHECKPOINT_COMMITS;
    struct fm_options opt = {.initial_size = w->initial_size,
                             .flags = FM_DURABLE | (fresh ? FM_CREATE : 0)};
    int err = fm_open(arena, &opt, &d->fi);
    if (err) {
        rec_stop(r);
        return err;
    }
    /* A cut during creation is test_openclose's business; but the
     * creation must be durable when the open returns, directory entry
     * included (FM_DURABLE syncs the directory). */
    if (fresh)
        rec_arm_strict(r);
    dur_end(d);
    uint64_t rng = seed | 1;
    w->run(d, &rng);
    dur_close(d);
    rec_stop(r);
    return 0;
}

/* Which commits the cut at record `cut` allows: walks the MARKs. */
struct commit_walk {
    size_t next;
    long done;  /* the last commit that returned, -1: none */
    long begun; /* the last commit that began */
};

static void walk_to(struct commit_walk *cw, const struct record *r, size_t cut)
{
    for (; cw->next < cut; cw->next++) {
        const struct rec *e = &r->recs[cw->next];
        if (e->kind != REC_MARK)
            continue;
        if (e->off % 2)
            cw->done = (long)(e->off / 2);
        else
            cw->begun = (long)(e->off / 2);
    }
}

/* Open the image at `arena`: 0 at commit k, 1 at commit k+1, -1 refused,
 * -2 any other mismatch (why says what). */
static int check_image(const char *arena, unsigned flags, const struct dur_run *d,
                       const struct commit_walk *cw, char *why, size_t why_len)
{
    struct fm_info *fi = NULL;
    int err = fm_open(arena, &(struct fm_options){.flags = flags}, &fi);
    if (err) {
        snprintf(why, why_len, "refused (%s open): %s (%s)",
                 flags & FM_DURABLE ? "FM_DURABLE" : "default", fm_strerror(err),
                 fm_last_error_detail());
        return -1;
    }
    int verdict = -2;
    struct snap s;
    if (fm_check(fi) != 0) {
        snprintf(why, why_len, "opened (%s), but fm_check: %s",
                 flags & FM_DURABLE ? "FM_DURABLE" : "default", fm_check_message(fi));
    } else if ((err = state_hash(fi, &s)) != 0) {
        snprintf(why, why_len, "hashing: %s", fm_strerror(err));
    } else if (cw->done >= 0 && s.hash == d->hash[cw->done]) {
        verdict = 0;
    } else if (cw->begun > cw->done && s.hash == d->hash[cw->begun]) {
        verdict = 1;
    } else {
        long at = -1;
        for (int k = 0; k < d->ncommits; k++)
            if (d->hash[k] == s.hash)
                at = k;
        snprintf(why, why_len, "%s open: at commit %ld (-1: none), not at commit %ld%s",
                 flags & FM_DURABLE ? "FM_DURABLE" : "default", at, cw->done,
                 cw->begun > cw->done ? " or the one in flight" : "");
    }
    if ((err = fm_close(fi)) != 0 && verdict >= 0) {
        snprintf(why, why_len, "fm_close: %s", fm_strerror(err));
        verdict = -2;
    }
    return verdict;
}

static void count(struct dur_counts *c, int verdict)
{
    c->images++;
    if (verdict == 0)
        c->at_last++;
    else if (verdict == 1)
        c->at_next++;
    else if (verdict == -1)
        c->refused++;
    else
        c->mismatches++;
}

/* n images of the record r (of the run d), each opened and judged. */
static void cut_images(const char *name, const struct record *r, const struct dur_run *d, long n,
                       uint64_t *rng, const struct options *o, struct dur_counts *c)
{
    char arena[1100], journal[1100], imgdir[600];
    path_in(arena, sizeof arena, "img", name, "");
    path_in(journal, sizeof journal, "img", name, "-journal");
    snprintf(imgdir, sizeof imgdir, "%s/img", power_dir);
    unlink(journal);
    size_t npoints;
    size_t *cut = power_cuts(r, n, rng, &npoints);
    struct image_set set;
    set_init(&set, r);
    struct commit_walk cw = {0, -1, -1};
    char why[512];
    for (long k = 0; k < n; k++) {
        set_replay_to(&set, cut[k]);
        walk_to(&cw, r, cut[k]);
        struct crash_odds odds;
        uint64_t image_rng = *rng ^ (uint64_t)k * 0x100000001B3ull;
        set_build(&set, &image_rng, &odds);
        set_write(&set, imgdir);
        /* Every open replays a valid journal (J3), in either mode: one
         * image in four is opened in the default mode. */
        unsigned flags = k % 4 == 3 ? 0 : FM_DURABLE;
        int verdict = check_image(arena, flags, d, &cw, why, sizeof why);
        long bad_before = c->refused + c->mismatches;
        count(c, verdict);
        c->inside += cw.begun > cw.done;
        /* The first few say what went wrong; thousands would bury them. */
        if (verdict < 0 && bad_before < (o->expect_mismatches ? 5 : 40))
            fprintf(stderr,
                    "%s: %s image %ld (record %zu of %zu; commit %ld done, %ld begun; odds land "
                    "%.2f meta %.1f tear %.2f): %s\n",
                    name, verdict == -1 ? "REFUSED" : "MISMATCH", k, cut[k], r->n, cw.done,
                    cw.begun, odds.land, odds.meta, odds.tear, why);
    }
    set_free(&set);
    free(cut);
    unlink(arena);
    unlink(journal);
}

/* dur_recover: first-level images cut inside commits, each opened (the
 * recovery) while recording, and that recording cut again. */
static void run_recover(const struct dur_workload *w, const struct options *o,
                        struct dur_counts *c, uint64_t *rng, const struct record *r1,
                        const struct dur_run *d1)
{
    /* The instants inside a commit. */
    size_t *inside = malloc(r1->n * sizeof *inside), ninside = 0;
    struct commit_walk cw = {0, -1, -1};
    for (size_t i = r1->first_point; i < r1->n; i++) {
        walk_to(&cw, r1, i);
        if (r1->recs[i].kind == REC_POINT && cw.begun > cw.done)
            inside[ninside++] = i;
    }
    char rec2dir[600], arena2[1100];
    snprintf(rec2dir, sizeof rec2dir, "%s/rec2", power_dir);
    path_in(arena2, sizeof arena2, "rec2", w->name, "");
    struct image_set set;
    set_init(&set, r1);
    cw = (struct commit_walk){0, -1, -1};
    long per = (o->images + RECOVER_FIRST_CUTS - 1) / RECOVER_FIRST_CUTS;
    for (int j = 0; j < RECOVER_FIRST_CUTS && ninside; j++) {
        /* Spread over the record, in order (the replay only goes forward). */
        size_t lo = ninside * (size_t)j / RECOVER_FIRST_CUTS;
        size_t hi = ninside * (size_t)(j + 1) / RECOVER_FIRST_CUTS;
        size_t at = inside[lo + (hi > lo ? sim_random(rng) % (hi - lo) : 0)];
        set_replay_to(&set, at);
        walk_to(&cw, r1, at);
        struct crash_odds odds;
        set_build(&set, rng, &odds);
        set_write(&set, rec2dir);
        struct record r2;
        struct dur_run d2;
        int err = record_durable(&dur_after_recovery, arena2, false, sim_random(rng), &r2, &d2);
        if (err) {
            count(c, -1);
            fprintf(stderr, "%s: first-level image %d (record %zu) REFUSED: %s (%s)\n", w->name, j,
                    at, fm_strerror(err), fm_last_error_detail());
            rec_free(&r2);
            continue;
        }
        /* Did the open replay a journal (write the arena before it returned)? */
        for (size_t i = r2.first_point;
             i < r2.n && !(r2.recs[i].kind == REC_MARK && r2.recs[i].off == 1); i++)
            if (r2.recs[i].kind == REC_WRITE && strcmp(r2.paths[r2.recs[i].file], arena2) == 0) {
                c->replayed++;
                break;
            }
        uint64_t found = d2.hash[0];
        if ((cw.done < 0 || found != d1->hash[cw.done]) && found != d1->hash[cw.begun]) {
            count(c, -2);
            fprintf(stderr, "%s: first-level image %d (record %zu): MISMATCH: opened at no commit "
                            "%ld or %ld\n", w->name, j, at, cw.done, cw.begun);
        }
        cut_images(w->name, &r2, &d2, per, rng, o, c);
        rec_free(&r2);
        unlink(arena2);
        char journal2[1200];
        snprintf(journal2, sizeof journal2, "%s-journal", arena2);
        unlink(journal2);
    }
    set_free(&set);
    free(inside);
}

void run_durable(const struct dur_workload *w, const struct options *o, struct dur_counts *c)
{
    char arena[1100];
    path_in(arena, sizeof arena, "rec", w->name, "");
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct record r;
    struct dur_run d;
    int err = record_durable(w, arena, true, o->seed, &r, &d);
    if (err) {
        fprintf(stderr, "%s: fm_open: %s\n", w->name, fm_strerror(err));
        exit(1);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct dur_counts before = *c;
    uint64_t rng = o->seed ^ (uint64_t)(uintptr_t)w->name[4] << 32 ^ 0x9E3779B97F4A7C15ull;
    if (strcmp(w->name, "dur_recover") == 0)
        run_recover(w, o, c, &rng, &r, &d);
    else
        cut_images(w->name, &r, &d, o->images, &rng, o, c);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    size_t npoints = 0;
    for (size_t i = r.first_point; i < r.n; i++)
        npoints += r.recs[i].kind == REC_POINT;
    if (c->replayed > before.replayed)
        printf("%-11s %d first-level images cut inside a commit: %ld opened by replaying a "
               "journal\n", w->name, RECOVER_FIRST_CUTS, c->replayed - before.replayed);
    printf("%-11s %6ld images (%ld cut inside a commit) %6ld opened at a commit (%ld the last, "
           "%ld the one in flight) %4ld refused %4ld mismatched  [%d commits, %zu crash points, "
           "%d files; record %.2f s, images %.2f s]\n",
           w->name, c->images - before.images, c->inside - before.inside,
           c->at_last + c->at_next - before.at_last - before.at_next, c->at_last - before.at_last,
           c->at_next - before.at_next, c->refused - before.refused,
           c->mismatches - before.mismatches, d.ncommits, npoints, r.nfiles, power_seconds(&t0, &t1),
           power_seconds(&t1, &t2));
    fflush(stdout);
    rec_free(&r);
    unlink(arena);
    char journal[1200];
    snprintf(journal, sizeof journal, "%s-journal", arena);
    unlink(journal);
}
