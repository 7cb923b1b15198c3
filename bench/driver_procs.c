/*
 * driver_procs.c -- the report of issue 18's workloads: one process and
 * two processes churning small blocks on one heap in a file (the worker
 * runs them: run_procs in worker.c).  Only a heap that several processes
 * can open at once takes part: fmalloc with FM_SHARED and a Boost
 * managed_mapped_file.  glibc, jemalloc and mimalloc heaps belong to one
 * process, and a PMDK pool admits one process at a time, so driver.c
 * neither runs nor shows them here (procs_arm).
 */
#include <math.h>
#include <stdio.h>

#include "driver.h"
#include "params.h"

bool procs_arm(int w, int a)
{
    return (w != W_PROCS && w != W_PROCS2) || a == A_FMALLOC || a == A_BOOST;
}

/* The median CPU share of (w, a) as "87%", or n/a. */
static const char *share(int w, int a)
{
    static char ring[4][16];
    static int next;
    char *b = ring[next++ % 4];
    double v = med(w, a, "cpu_share", 100);
    snprintf(b, 16, isnan(v) ? "n/a" : "%.0f%%", v);
    return b;
}

void procs_report(FILE *o)
{
    int w1 = W_PROCS, w2 = W_PROCS2;
    if (!opt.wl_on[w1] && !opt.wl_on[w2])
        return;
    section_head(o, "13. Processes sharing one heap (issue 18)",
                 "1 process, then 2 at once, on one heap in a file in the arena directory: "
                 "fmalloc opened with `FM_SHARED` (no thread caches in this mode: every call "
                 "takes the lock in the file), Boost `managed_mapped_file`. The worker creates "
                 "the heap and closes it; each process then opens it itself (`fm_open` with "
                 "`FM_SHARED`; `open_only`), draws its own sequence, and all start together. "
                 "Each runs workload 1's loop on its own %u slots (about %u blocks live), sizes "
                 "%u–%u B, %s operations per process. Aggregate throughput = all processes' "
                 "operations ÷ (last end − first start). CPU share = the processes' CPU time in "
                 "the loop ÷ (processes × that wall time): below 100%% they waited, for the "
                 "heap's lock or for a core another program had. glibc, jemalloc, mimalloc and "
                 "PMDK cannot share a heap between processes and are not run.",
                 PROCS_SLOTS, PROCS_SLOTS / 2, CHURN_MIN_SIZE, CHURN_MAX_SIZE,
                 count(opt.P->churn_ops));
    table_head(o,
               "| allocator | 1 process Mops/s | range | CPU share | 2 processes Mops/s | range | "
               "CPU share | 2 processes ÷ 1 | 2 processes vs Boost |",
               "lrrrrrrrr");
    double b2 = med(w2, A_BOOST, "ops_per_s", 1);
    for (int a = 0; a < N_ARMS; a++) {
        if (!on(w1, a) && !on(w2, a))
            continue;
        double one = med(w1, a, "ops_per_s", 1), two = med(w2, a, "ops_per_s", 1);
        fprintf(o, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", arm_title[a], num(one / 1e6),
                range(w1, a, "ops_per_s", 1e-6), share(w1, a), num(two / 1e6),
                range(w2, a, "ops_per_s", 1e-6), share(w2, a), ratio(two / one), ratio(two / b2));
    }
    fprintf(o, "\n");
}

void procs_targets(FILE *o)
{
    if (!on(W_PROCS, A_FMALLOC) && !on(W_PROCS2, A_FMALLOC))
        return;
    fprintf(o, "### Targets (issue 18)\n\n");
    table_head(o, "| target | measured | status |", "lll");
    char m[128];
    double two = med(W_PROCS2, A_FMALLOC, "ops_per_s", 1);
    double r = two / med(W_PROCS2, A_BOOST, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s", ratio(r));
    target(o, "2 processes on one heap ≥ 10× Boost (aggregate)", m, r, 10, false);
    r = two / med(W_PROCS, A_FMALLOC, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s", ratio(r));
    target(o, "2 processes ≥ 1.6× 1 process", m, r, 1.6, false);
    fprintf(o, "\n");
}
