/*
 * params.h -- workload sizes, shared by the driver (for the report) and
 * the worker (to run them).  "full" is what the issue specifies; "quick"
 * is about a fifth of it; "smoke" runs every path at toy sizes.
 */
#ifndef BENCH_PARAMS_H
#define BENCH_PARAMS_H

#include <stdint.h>
#include <string.h>

#define MAX_THREADS 16
#define MAX_PROCS   16 /* issue 18: processes on one heap */

#define CHURN_MIN_SIZE  16u /* bytes */
#define CHURN_MAX_SIZE  512u
#define MIXED_MIN_SIZE  16u
#define MIXED_MAX_SIZE  65536u
#define FRAG_MIN_SIZE   16u
#define FRAG_MAX_FIRST  1024u
#define FRAG_MAX_SECOND 2048u
#define REOPEN_MIN_SIZE 16u
#define REOPEN_MAX_SIZE 64u
#define LIST_NODE_SIZE  32u
#define MEDIUM_MIN_SIZE 4u /* issue 17: inverse-square sizes per thread */
#define MEDIUM_MAX_SIZE 32768u
#define PRODCONS_SIZE   64u
#define PRODCONS_RING   1024u /* blocks in flight between the two threads, at most */
#define BIGREUSE_MIN_SIZE (5u << 20)
#define BIGREUSE_MAX_SIZE (25u << 20)
#define PROCS_SLOTS 128u /* per process, about half of them live at a time */

struct params {
    const char *scale;
    uint32_t churn_slots, churn_ops; /* per thread in workload 5 too */
    uint32_t mixed_slots, mixed_ops;
    uint32_t list_nodes;
    uint32_t frag_first, frag_second; /* blocks allocated before / after freeing half */
    uint64_t reopen_bytes, reopen_objects;
    uint64_t small_bytes, small_objects; /* the small arena reopened for comparison */
    /* issue 16's commit workloads */
    double commit_secs;          /* each slice of a (store, transaction size) runs this long */
    uint32_t commit_min_txns;    /* ... and at least this many transactions */
    uint32_t dirty_rounds;       /* timed commits per count of dirtied pages */
    uint64_t dirty_large_bytes;  /* the large arena of the dirty-pages workload */
    uint32_t commit_slices;      /* slices per (store, transaction size) and run */
    /* issue 17's shapes */
    uint32_t medium_slots, medium_ops; /* per thread */
    uint32_t prodcons_blocks;          /* passed from one thread to the other */
    uint32_t bigreuse_rounds;          /* large blocks allocated, touched and freed */
};

#define COMMIT_RECORD_BYTES 100u /* one insert: store.h's STORE_RECORD_BYTES */
#define COMMIT_TXN_SIZES   {1u, 10u, 100u} /* inserts per transaction */
#define N_COMMIT_TXN_SIZES 3
#define DIRTY_PAGE_COUNTS  {1u, 10u, 100u, 1000u}
#define N_DIRTY_PAGE_COUNTS 4
#define DIRTY_SMALL_BYTES  (1ull << 20) /* the small arena of the dirty-pages workload */

static const struct params bench_params[] = {
    {"full", 10000, 5000000, 10000, 1000000, 1000000, 1000000, 500000, 1ull << 30, 10000000,
     1ull << 20, 1000, 0.4, 5, 30, 1ull << 30, 5, 2000, 2000000, 2000000, 200},
    {"quick", 10000, 1000000, 10000, 200000, 200000, 200000, 100000, 256ull << 20, 2500000,
     1ull << 20, 1000, 0.2, 5, 10, 256ull << 20, 3, 2000, 400000, 400000, 40},
    {"smoke", 1000, 20000, 1000, 10000, 10000, 10000, 5000, 16ull << 20, 100000, 1ull << 20, 1000,
     0.02, 2, 1, 16ull << 20, 1, 200, 10000, 10000, 3},
};

static inline const struct params *params_for(const char *scale)
{
    for (size_t i = 0; i < sizeof bench_params / sizeof bench_params[0]; i++)
        if (strcmp(bench_params[i].scale, scale) == 0)
            return &bench_params[i];
    return NULL;
}

#endif /* BENCH_PARAMS_H */
