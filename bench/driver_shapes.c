/*
 * driver_shapes.c -- the report of issue 17's workloads: medium sizes with
 * one and two threads, producer/consumer across threads, large-block
 * reuse (the worker runs them: worker.c and shapes.c).  driver.c runs them
 * like the other allocator workloads, every arm in turn.
 */
#include <math.h>
#include <stdio.h>

#include "driver.h"
#include "params.h"

static void section_medium(FILE *o)
{
    const struct params *P = opt.P;
    section_head(o, "10. Medium sizes, one thread and two (issue 17)",
                 "Workload 1's loop with issue 17's shape: %s slots and %s operations per "
                 "thread, sizes %u B–%u KiB with density proportional to 1/size² (half the "
                 "requests at most 8 B, one in about 260 above 1 KiB, one in about 8,000 above "
                 "16 KiB). Two threads: each its own slots and sequence, on one heap; "
                 "aggregate throughput and CPU share as in workload 5.",
                 count(P->medium_slots), count(P->medium_ops), MEDIUM_MIN_SIZE,
                 MEDIUM_MAX_SIZE / 1024);
    table_head(o,
               "| allocator | 1 thread Mops/s | range | 2 threads Mops/s | range | 2 threads ÷ 1 | "
               "CPU share | 1 thread vs glibc | 2 threads vs glibc | 2 threads vs Boost | "
               "2 threads vs PMDK |",
               "lrrrrrrrrrr");
    int w1 = W_MEDIUM, w2 = W_MEDIUM2;
    double g1 = med(w1, A_GLIBC, "ops_per_s", 1), g2 = med(w2, A_GLIBC, "ops_per_s", 1),
           b2 = med(w2, A_BOOST, "ops_per_s", 1), p2 = med(w2, A_PMDK, "ops_per_s", 1);
    for (int a = 0; a < N_ARMS; a++) {
        if (!on(w1, a) && !on(w2, a))
            continue;
        double one = med(w1, a, "ops_per_s", 1), two = med(w2, a, "ops_per_s", 1);
        fprintf(o, "| %s | %s | %s | %s | %s | %s | %s%s | %s | %s | %s | %s |\n", arm_title[a],
                num(one / 1e6), range(w1, a, "ops_per_s", 1e-6), num(two / 1e6),
                range(w2, a, "ops_per_s", 1e-6), ratio(two / one),
                isnan(two) ? "n/a" : num(med(w2, a, "cpu_share", 100)), isnan(two) ? "" : "%",
                ratio(one / g1),
                ratio(two / g2), ratio(two / b2), ratio(two / p2));
    }
    fprintf(o, "\n");
}

static void section_prodcons(FILE *o)
{
    section_head(o, "11. Producer/consumer across threads (issue 17)",
                 "One thread allocates %s blocks of %u B, writes a stamp into each and passes "
                 "it through a ring of %u slots (harness memory) to a second thread, which "
                 "checks the stamp and frees the block: every free is of a block another thread "
                 "allocated. Throughput counts the mallocs and the frees (2 × %s operations) "
                 "over the wall time of both threads.",
                 count(opt.P->prodcons_blocks), PRODCONS_SIZE, PRODCONS_RING,
                 count(opt.P->prodcons_blocks));
    table_rate(o, W_PRODCONS, "Mops/s", 1e-6, NULL, NULL);
}

static void section_bigreuse(FILE *o)
{
    section_head(o, "12. Large-block reuse (issue 17)",
                 "%s rounds of: allocate a block of %u–%u MiB (uniform), write one byte in each "
                 "4 KiB page of it, free it. What an allocator that gives the pages back at "
                 "every free pays in faults and zeroing, against one that keeps them.",
                 count(opt.P->bigreuse_rounds), BIGREUSE_MIN_SIZE >> 20, BIGREUSE_MAX_SIZE >> 20);
    table_rate(o, W_BIGREUSE, "rounds/s", 1, NULL, NULL);
}

void shapes_report(FILE *o)
{
    if (opt.wl_on[W_MEDIUM] || opt.wl_on[W_MEDIUM2])
        section_medium(o);
    if (opt.wl_on[W_PRODCONS])
        section_prodcons(o);
    if (opt.wl_on[W_BIGREUSE])
        section_bigreuse(o);
}

/* One "≥ x× peer" row: fmalloc's ops_per_s in w over the peer's. */
static void peer_row(FILE *o, const char *what, int w, int peer, double min)
{
    char m[128];
    double r = med(w, A_FMALLOC, "ops_per_s", 1) / med(w, peer, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s", ratio(r));
    target(o, what, m, r, min, false);
}

void shapes_targets(FILE *o)
{
    bool any = false;
    for (int w = W_MEDIUM; w <= W_BIGREUSE; w++)
        any |= on(w, A_FMALLOC);
    if (!any)
        return;
    fprintf(o, "### Targets (issue 17)\n\n");
    table_head(o, "| target | measured | status |", "lll");
    peer_row(o, "medium sizes, 1 thread ≥ 0.8× glibc", W_MEDIUM, A_GLIBC, 0.8);
    peer_row(o, "medium sizes, 2 threads ≥ 1.0× glibc", W_MEDIUM2, A_GLIBC, 1.0);
    char m[128];
    double two = med(W_MEDIUM2, A_FMALLOC, "ops_per_s", 1) /
                 med(W_MEDIUM, A_FMALLOC, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s", ratio(two));
    target(o, "medium sizes, 2 threads ≥ 1.6× 1 thread", m, two, 1.6, false);
    peer_row(o, "producer/consumer ≥ 1.0× glibc", W_PRODCONS, A_GLIBC, 1.0);
    peer_row(o, "large-block reuse ≥ 0.8× glibc", W_BIGREUSE, A_GLIBC, 0.8);
    static const struct {
        const char *name;
        int w;
    } shape[] = {{"medium sizes, 1 thread", W_MEDIUM},
                 {"medium sizes, 2 threads", W_MEDIUM2},
                 {"producer/consumer", W_PRODCONS},
                 {"large-block reuse", W_BIGREUSE}};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s ≥ 5× PMDK", shape[i].name);
        peer_row(o, what, shape[i].w, A_PMDK, 5);
        snprintf(what, sizeof what, "%s ≥ 3× Boost", shape[i].name);
        peer_row(o, what, shape[i].w, A_BOOST, 3);
    }
    fprintf(o, "\n");
}
