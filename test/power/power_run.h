/*
 * power_run.h -- what the two runners of test_power share: the options,
 * the directory the files go to, the drawing of crash instants.
 * test_power.c runs the default-mode scenarios and main();
 * power_run_durable.c the FM_DURABLE ones.
 */
#ifndef FM_POWER_RUN_H
#define FM_POWER_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "power_durable.h"
#include "power_record.h"

struct options {
    long images; /* per scenario */
    uint64_t seed;
    const char *only;
    bool expect_mismatches;
};

/* The test's directory: recordings in power_dir/rec, images in
 * power_dir/img, dur_recover's second-level recordings in power_dir/rec2. */
extern char power_dir[512];

/* n crash instants (indices of POINT records after r->first_point),
 * drawn with rng, sorted; *npoints: how many there were to draw from. */
size_t *power_cuts(const struct record *r, long n, uint64_t *rng, size_t *npoints);
double power_seconds(const struct timespec *from, const struct timespec *to);

/* Images of the FM_DURABLE scenario w, counted into c.  inside: images
 * cut inside a commit (between its marks); replayed: dur_recover's
 * first-level images whose open replayed a journal. */
struct dur_counts {
    long images, inside, at_last, at_next, refused, mismatches, replayed;
};
void run_durable(const struct dur_workload *w, const struct options *o, struct dur_counts *c);

#endif
