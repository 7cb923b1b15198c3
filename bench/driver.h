/*
 * driver.h -- what the driver's parts share: the arms and workloads, the
 * options, running a worker, the results and the Markdown helpers.
 * driver.c runs the allocator workloads and writes the report;
 * driver_commit.c runs and reports issue 16's commit workloads;
 * driver_shapes.c and driver_procs.c report issues 17's and 18's.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "params.h"

enum { A_GLIBC, A_JEMALLOC, A_MIMALLOC, A_FMALLOC, A_BOOST, A_PMDK, N_ARMS };
extern const char *const arm_name[N_ARMS];

/* commit, dirty and between are the commit workloads (driver_commit.c). */
enum {
    W_CHURN,
    W_MIXED,
    W_LIST,
    W_FRAG,
    W_THREADS,
    W_REOPEN,
    W_COMMIT,
    W_DIRTY,
    W_BETWEEN,
    W_MEDIUM,   /* issue 17's shapes */
    W_MEDIUM2,
    W_PRODCONS,
    W_BIGREUSE,
    W_PROCS,    /* issue 18: one process, then two, on one heap */
    W_PROCS2,
    N_WORKLOADS
};
extern const char *const wl_name[N_WORKLOADS];

/*
 * The commit workloads' "arms": stores (store.h).  Their results are kept
 * under (workload, store) the way the others' are under (workload, arm).
 * In workload "between", S_DURABLE and S_SYNC are the fmalloc arm opened
 * with FM_DURABLE and in the default mode.
 */
enum { S_DURABLE, S_SYNC, S_LMDB, S_SQLITE, N_STORES };
extern const char *const store_name[N_STORES];

struct driver_options {
    const struct params *P;
    int runs;
    const char *dir;      /* the allocator workloads' files */
    const char *disk_dir; /* the commit workloads' files: a disk file system */
    unsigned long long seed;
    bool arm_on[N_ARMS];
    bool wl_on[N_WORKLOADS];
    char worker[4096];
    const char *md, *tsv;
    unsigned timeout; /* seconds per worker */
};
extern struct driver_options opt;

/* Results: every value a key took under (workload, arm or store). */
void record(int w, int a, const char *key, double v);
double median(int w, int a, const char *key);
double extreme(int w, int a, const char *key, bool want_max);
double last(int w, int a, const char *key);

/* Run argv with its stdout in out; the wait status. */
int spawn_capture(const char *const *argv, char *out, size_t cap);
/* Run one worker and record its RESULT line under (w, a), keys prefixed. */
int run_worker(int w, int a, const char *prefix, const char *phase, const char *file,
               unsigned long long seed, const char *const *extra);
__attribute__((format(printf, 4, 5))) void progress(int run, int w, int a, const char *fmt, ...);

/* The arms' titles and kinds; whether (w, a) ran (was asked for and can
 * run at all: see procs_arm); the median of a key
 * times scale (NaN if none), and its range as text. */
extern const char *const arm_title[N_ARMS];
extern const bool arm_persistent[N_ARMS];
bool on(int w, int a);
double med(int w, int a, const char *key, double scale);
const char *range(int w, int a, const char *key, double scale);
/* The arms workload w ran, from `a` on: the first, or N_ARMS. */
int arm_from(int w, int a);
#define for_each_arm(w, a) for (int a = arm_from(w, 0); a < N_ARMS; a = arm_from(w, a + 1))

/* Markdown. */
const char *num(double v);
const char *ratio(double v);
const char *count(double v);
__attribute__((format(printf, 3, 4))) void section_head(FILE *o, const char *title,
                                                        const char *intro, ...);
void table_head(FILE *o, const char *titles, const char *align);
void target(FILE *o, const char *what, const char *measured, double lhs, double rhs, bool at_most);

/* A table of one rate per arm (key ops_per_s times scale, in `unit`),
 * with its range and its ratios to glibc, Boost and PMDK. */
void table_rate(FILE *o, int w, const char *unit, double scale, const char *extra_head,
                const char *extra_key);

/* driver_shapes.c: issue 17's workloads (medium, medium2, prodcons,
 * bigreuse) -- their sections and their rows of the targets. */
void shapes_report(FILE *o);
void shapes_targets(FILE *o);

/* driver_procs.c: issue 18's workloads (procs, procs2): which arms can
 * run them (a heap several processes open at once), their section and
 * their rows of the targets. */
bool procs_arm(int w, int a);
void procs_report(FILE *o);
void procs_targets(FILE *o);

/* driver_commit.c */
bool commit_workload(int w);
void commit_setup(void);         /* which stores the worker has */
void commit_run(int run, int w); /* one run of a commit workload */
void commit_report(FILE *o);     /* their sections */
void commit_targets(FILE *o);    /* their rows of the targets */

#endif /* BENCH_DRIVER_H */
