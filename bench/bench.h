/*
 * bench.h -- the benchmark worker's adapter interface and shared helpers.
 *
 * Layer: bench (outside the library; uses only the public fmalloc.h and the
 * peers' public APIs).  One worker process runs one allocator ("arm") on
 * one workload.  The workload code in worker.c calls the allocator only
 * through a struct bench_alloc, so every arm runs the same instructions
 * around the allocator calls, including one indirect call per operation.
 *
 * Glossary
 *   arm        one allocator under test: glibc, jemalloc, mimalloc (volatile)
 *              or fmalloc, boost, pmdk (persistent: the heap is a file)
 *   arena      the persistent arms' file, or nothing for the volatile ones
 *   slot       a harness-owned cell that holds one live block (or NULL);
 *              harness arrays live in anonymous mmaps, never in the heap
 *              under test, so they do not disturb it or its footprint
 *   link       an 8-byte offset (word [1] of a 16-byte link cell) that a
 *              persistent structure stores instead of a pointer; word [0] is
 *              PMDK's pool id and 0 for the others
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What an arm says about its own heap (fields it cannot tell stay -1). */
struct bench_heap_stats {
    double blocks;     /* allocated blocks */
    double heap_bytes; /* bytes the allocator counts as in use, headers included */
};

/**
 * One allocator.  A worker process holds at most one open arena, so the
 * adapters keep it in a file-static variable and the calls take no handle.
 * Functions returning int return 0 or an errno-style code (the adapter has
 * printed why).
 */
struct bench_alloc {
    const char *name;
    bool persistent;
    /** Library and version, for the report ("glibc 2.36"). */
    const char *(*version)(void);
    /**
     * Create (create=true, the file must not exist) or open a heap.
     * capacity_bytes is what the workload may need at most: arms with a
     * fixed-size file (Boost, PMDK) size their file from it; fmalloc and
     * the volatile arms ignore it.  path is NULL for volatile arms.
     */
    int (*open)(const char *path, uint64_t capacity_bytes, bool create);
    /** Close the heap (persistent arms: the file stays). */
    int (*close)(void);
    void *(*malloc)(size_t size);
    void (*free)(void *p);
    void *(*realloc)(void *p, size_t size);
    /** A 64-byte, 8-byte aligned root area that survives a reopen. */
    void *(*root)(void);
    /** Offset of p (a persistent link), 0 for NULL. */
    uint64_t (*offset_of)(const void *p);
    /** Pointer for a link offset, NULL for 0. */
    void *(*pointer_at)(uint64_t off);
    /**
     * Allocate size bytes and store the new block's link in link[0..1] --
     * in one crash-atomic step where the allocator offers one (fmalloc's
     * fm_malloc_to, PMDK's pmemobj_alloc into a PMEMoid); link lies in the
     * root area or in a live block.
     */
    void *(*alloc_to)(uint64_t link[2], size_t size);
    /** Make [p, p+n) durable now if the arm's model requires it (PMDK). */
    void (*persist)(const void *p, size_t n);
    /** Heap counts after a workload; NULL if the arm has none. */
    int (*stats)(struct bench_heap_stats *st);
    /** Base address of the arena's mapping (NULL for volatile arms). */
    void *(*mapping)(void);
};

/*
 * The table of a persistent arm written in C whose functions are all named
 * P_<member> (bench_alloc_NAME, named "NAME"): one spelling of the member
 * list for every such arm, so none can miss a member.
 */
#define BENCH_MEMBER(P, m) .m = P##_##m,
#define BENCH_PERSISTENT_ARM(NAME, P)                                                              \
    const struct bench_alloc bench_alloc_##NAME = {                                                \
        .name = #NAME, .persistent = true, BENCH_MEMBER(P, version) BENCH_MEMBER(P, open)          \
        BENCH_MEMBER(P, close) BENCH_MEMBER(P, malloc) BENCH_MEMBER(P, free)                       \
        BENCH_MEMBER(P, realloc) BENCH_MEMBER(P, root) BENCH_MEMBER(P, offset_of)                  \
        BENCH_MEMBER(P, pointer_at) BENCH_MEMBER(P, alloc_to) BENCH_MEMBER(P, persist)             \
        BENCH_MEMBER(P, stats) BENCH_MEMBER(P, mapping)                                            \
    }

extern const struct bench_alloc bench_alloc_glibc;
extern const struct bench_alloc bench_alloc_jemalloc;
extern const struct bench_alloc bench_alloc_mimalloc;
extern const struct bench_alloc bench_alloc_fmalloc;
extern const struct bench_alloc bench_alloc_boost;
extern const struct bench_alloc bench_alloc_pmdk;

/** Open the fmalloc arm's arenas with FM_DURABLE (workload "between"). */
void bench_fmalloc_durable(bool on);
/** Open the fmalloc arm's arenas with FM_SHARED (workloads procs, procs2). */
void bench_fmalloc_shared(bool on);

/** Run the fmalloc-only reopen/recovery phases (reopen.c). */
int bench_reopen_phase(const char *phase, const char *path, uint64_t arena_bytes, uint64_t objects,
                       uint64_t seed);

/** Print a result line "RESULT key=value ..." piece by piece. */
void bench_result(const char *key, double value);
void bench_result_end(void);

/**
 * 1 if the mapping that starts at addr is private (/proc/self/maps), 0 if
 * shared, -1 if there is none: tells a real FM_DURABLE arena (private
 * until each commit) from one opened by a library whose flag does nothing.
 */
int bench_mapping_private(const void *addr);

/** Monotonic time in seconds. */
double bench_now(void);
/** CPU time this thread has used, in seconds. */
double bench_thread_cpu(void);

/** Say what went wrong and exit(1). */
__attribute__((noreturn)) void bench_die(const char *what);
/** Harness memory: anonymous, populated, never from the allocator under test. */
void *bench_harness_alloc(size_t bytes);
void bench_harness_free(void *p, size_t bytes);

struct params;
/** Issue 17's shapes (shapes.c): producer/consumer across two threads,
 * and large blocks freed and allocated again. */
int bench_run_prodcons(const struct bench_alloc *A, const struct params *P, const char *path,
                       uint64_t seed);
int bench_run_bigreuse(const struct bench_alloc *A, const struct params *P, const char *path,
                       uint64_t seed);

/** splitmix64: one word of state, fast, and the same sequence everywhere. */
static inline uint64_t bench_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/** Uniform in [0, n) for n < 2^32 (multiply-shift, no division). */
static inline uint32_t bench_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((bench_rng(s) >> 32) * (uint64_t)n) >> 32);
}

/** Uniform in [lo, hi]. */
static inline uint32_t bench_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + bench_below(s, hi - lo + 1);
}

#ifdef __cplusplus
}
#endif
#endif /* BENCH_H */
