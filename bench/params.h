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

struct params {
    const char *scale;
    uint32_t churn_slots, churn_ops; /* per thread in workload 5 too */
    uint32_t mixed_slots, mixed_ops;
    uint32_t list_nodes;
    uint32_t frag_first, frag_second; /* blocks allocated before / after freeing half */
    uint64_t reopen_bytes, reopen_objects;
    uint64_t small_bytes, small_objects; /* the small arena reopened for comparison */
};

static const struct params bench_params[] = {
    {"full", 10000, 5000000, 10000, 1000000, 1000000, 1000000, 500000, 1ull << 30, 10000000,
     1ull << 20, 1000},
    {"quick", 10000, 1000000, 10000, 200000, 200000, 200000, 100000, 256ull << 20, 2500000,
     1ull << 20, 1000},
    {"smoke", 1000, 20000, 1000, 10000, 10000, 10000, 5000, 16ull << 20, 100000, 1ull << 20, 1000},
};

static inline const struct params *params_for(const char *scale)
{
    for (size_t i = 0; i < sizeof bench_params / sizeof bench_params[0]; i++)
        if (strcmp(bench_params[i].scale, scale) == 0)
            return &bench_params[i];
    return NULL;
}

#endif /* BENCH_PARAMS_H */
