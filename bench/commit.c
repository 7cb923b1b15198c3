/*
 * commit.c -- issue 16's commit workloads, one (store, case) per process:
 *
 *   commit  transactions of `txn_inserts` inserts of a 100-byte record,
 *           each ended by the store's commit, for at least commit_secs and
 *           commit_min_txns transactions: commits per second
 *   dirty   fmalloc only: an arena of 1 MiB and one of arena_bytes, each
 *           filled with allocated
 *           64 KiB blocks; for 1, 10, 100 and 1000 pages, dirty_rounds
 *           times: write one byte in each of that many random pages of
 *           those blocks, then time the commit (fm_commit, or fm_sync for
 *           the default-mode store).  The pages come from the first
 *           max(count, 200) pages of the blocks, in every arena, so that
 *           only the arena's size differs between a small and a large one
 *           (the commit's cost must not follow it); then, fewer times,
 *           from anywhere in the large arena (the disk's cost of scattered
 *           writes).  Both arenas are open in one process, their rounds
 *           alternating
 *
 * (The third, work between commits, is workload 1 in an FM_DURABLE arena:
 * worker.c's "between".)  Records and page choices come from the seed,
 * drawn before the clock starts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "fmalloc.h"
#include "params.h"
#include "store.h"

#define COMMIT_RECORD_POOL 64 /* distinct records, reused in turn */
#define DIRTY_PAGE_BYTES   4096u
#define DIRTY_BLOCK_BYTES  (64u << 10) /* 15 whole pages each */
#define DIRTY_WINDOW_PAGES 200u        /* pages the 1 MiB arena's blocks hold, about */

void store_remove_files(const char *path, const char *const *suffixes)
{
    char name[4096];
    unlink(path);
    for (int i = 0; suffixes[i]; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        unlink(name);
    }
}

static const struct bench_store *store_named(const char *name)
{
    const struct bench_store *all[] = {&bench_store_durable, &bench_store_sync, bench_store_lmdb,
                                       bench_store_sqlite};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i] && strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

static int commit_fail(const char *what)
{
    fprintf(stderr, "bench_worker: %s\n", what);
    return 1;
}

/* ---- commit: transactions per second --------------------------------------- */

static int run_commit(const struct bench_store *S, const struct params *P, const char *path,
                      uint64_t txn_inserts, uint64_t seed)
{
    static unsigned char pool[COMMIT_RECORD_POOL][STORE_RECORD_BYTES];
    uint64_t s = seed;
    for (int i = 0; i < COMMIT_RECORD_POOL; i++)
        for (unsigned b = 0; b < STORE_RECORD_BYTES; b++)
            pool[i][b] = (unsigned char)bench_rng(&s);
    if (S->open(path))
        return 1;
    if (S->mapping)
        bench_result("private_map", bench_mapping_private(S->mapping()));
    uint64_t key = 0, txns = 0;
    double t0 = bench_now(), t1 = t0;
    while (t1 - t0 < P->commit_secs || txns < P->commit_min_txns) {
        if (S->begin())
            return 1;
        for (uint64_t i = 0; i < txn_inserts; i++, key++)
            if (S->insert(key, pool[key % COMMIT_RECORD_POOL]))
                return 1;
        if (S->commit())
            return 1;
        txns++;
        t1 = bench_now();
    }
    if (S->close())
        return 1;
    S->remove(path);
    bench_result("txn_inserts", (double)txn_inserts);
    bench_result("txns", (double)txns);
    bench_result("secs", t1 - t0);
    bench_result("commits_per_s", (double)txns / (t1 - t0));
    bench_result("inserts_per_s", (double)key / (t1 - t0));
    bench_result_end();
    return 0;
}

/* ---- dirty: commit cost against pages dirtied ------------------------------- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Harness memory (outside the arena under test). */
static void *dirty_harness(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* The blocks the dirty workload writes into, and the whole pages in them. */
struct dirty_set {
    struct fm_info *fi;
    size_t block_bytes;
    unsigned char **pages; /* harness memory, cap entries */
    size_t n, cap;
    size_t blocks;
};

/*
 * Allocate blocks until the set has at least want_pages whole pages and,
 * while the arena holds them without growing, until about 90% of
 * arena_bytes is in blocks.  false when an allocation fails.
 */
static bool dirty_fill(struct dirty_set *d, uint64_t arena_bytes, size_t want_pages)
{
    size_t fit = (size_t)(arena_bytes / 10 * 9 / d->block_bytes); /* blocks */
    while ((d->blocks < fit || d->n < want_pages) && d->n < d->cap) {
        unsigned char *b = fm_malloc(d->fi, d->block_bytes);
        if (!b)
            return false;
        d->blocks++;
        uintptr_t lo = ((uintptr_t)b + DIRTY_PAGE_BYTES - 1) & ~(uintptr_t)(DIRTY_PAGE_BYTES - 1);
        for (uintptr_t p = lo;
             p + DIRTY_PAGE_BYTES <= (uintptr_t)b + d->block_bytes && d->n < d->cap;
             p += DIRTY_PAGE_BYTES)
            d->pages[d->n++] = (unsigned char *)p;
    }
    return d->n >= want_pages;
}

static int dirty_error(const char *what, int err)
{
    fprintf(stderr, "bench_worker: dirty: %s: %s\n", what, fm_strerror(err));
    return 1;
}

/* Report arena `name`'s size for `count` pages. */
static int dirty_size(const char *name, struct fm_info *fi, unsigned count)
{
    struct fm_stats st;
    int err = fm_stats(fi, &st);
    if (err)
        return dirty_error("fm_stats", err);
    char key[40];
    snprintf(key, sizeof key, "%s_p%u_file_bytes", name, count);
    bench_result(key, (double)st.file_size);
    return 0;
}

/*
 * One round: write one byte in each of `count` distinct random pages
 * drawn from the first `window` pages of the set (which stay its own:
 * they are only permuted among themselves), then commit; the commit's
 * time in *took.
 */
static int dirty_round(struct dirty_set *d, int (*commit)(struct fm_info *), unsigned count,
                       size_t window, unsigned r, uint64_t *s, double *took)
{
    for (unsigned i = 0; i < count; i++) { /* partial shuffle */
        size_t j = i + bench_below(s, (uint32_t)(window - i));
        unsigned char *t = d->pages[i];
        d->pages[i] = d->pages[j];
        d->pages[j] = t;
        d->pages[i][bench_below(s, DIRTY_PAGE_BYTES)] ^= (unsigned char)(r | 1);
    }
    double t0 = bench_now();
    int err = commit(d->fi);
    *took = bench_now() - t0;
    return err ? dirty_error("commit", err) : 0;
}

static void dirty_report_median(const char *name, unsigned count, const char *what, double *took,
                                unsigned n)
{
    char key[48];
    qsort(took, n, sizeof *took, cmp_double);
    snprintf(key, sizeof key, "%s_p%u_%s", name, count, what);
    bench_result(key, took[n / 2]);
}

static int dirty_open(struct dirty_set *d, const char *path, uint64_t bytes, bool durable,
                      unsigned most)
{
    struct fm_options o = {
        .initial_size = bytes,
        .flags = FM_CREATE | FM_EXCL | (durable ? FM_DURABLE : 0),
    };
    *d = (struct dirty_set){.block_bytes = DIRTY_BLOCK_BYTES};
    bench_store_durable.remove(path);
    int err = fm_open(path, &o, &d->fi);
    if (err)
        return dirty_error("fm_open", err);
    d->cap = (size_t)(bytes / DIRTY_PAGE_BYTES) + 2 * most;
    d->pages = dirty_harness(d->cap * sizeof *d->pages);
    return d->pages ? 0 : commit_fail("dirty: out of harness memory");
}

/*
 * The small arena at `path`-small, the large one at `path`.  Their rounds
 * alternate, so that both see the disk in the same mood: on a shared
 * machine its latency drifts by several times within minutes.
 */
static int run_dirty(const struct bench_store *S, const struct params *P, const char *path,
                     uint64_t large_bytes, uint64_t seed)
{
    bool durable = S == &bench_store_durable;
    if (!durable && S != &bench_store_sync)
        return commit_fail("the dirty workload is fmalloc's only (--store durable|sync)");
    static const unsigned counts[] = DIRTY_PAGE_COUNTS;
    static const char *const name[2] = {"small", "large"};
    unsigned most = counts[N_DIRTY_PAGE_COUNTS - 1], rounds = P->dirty_rounds;
    char small_path[4096];
    snprintf(small_path, sizeof small_path, "%s-small", path);
    const char *paths[2] = {small_path, path};
    uint64_t bytes[2] = {DIRTY_SMALL_BYTES, large_bytes};
    struct dirty_set d[2];
    for (int k = 0; k < 2; k++)
        if (dirty_open(&d[k], paths[k], bytes[k], durable, most))
            return 1;
    bench_result("private_map", bench_mapping_private(d[1].fi->mem));
    double *took[2] = {dirty_harness(rounds * sizeof(double)),
                       dirty_harness(rounds * sizeof(double))};
    if (!took[0] || !took[1])
        return commit_fail("dirty: out of harness memory");
    int (*commit)(struct fm_info *) = durable ? fm_commit : fm_sync;
    uint64_t s = seed;
    for (int c = 0; c < N_DIRTY_PAGE_COUNTS; c++) {
        for (int k = 0; k < 2; k++) {
            /* An arena grows only when it has fewer whole pages in blocks
             * than this count (the 1 MiB arena, for 1000). */
            if (!dirty_fill(&d[k], bytes[k], counts[c]))
                return commit_fail("dirty: could not allocate the blocks");
            if (dirty_size(name[k], d[k].fi, counts[c]))
                return 1;
        }
        /* The same window of pages in both arenas: the disk sees the same
         * spread of writes, and only the arena's size differs.  Round 0
         * is untimed (it commits the blocks just allocated). */
        size_t window = counts[c] > DIRTY_WINDOW_PAGES ? counts[c] : DIRTY_WINDOW_PAGES;
        for (unsigned r = 0; r <= rounds; r++)
            for (int i = 0; i < 2; i++) {
                int k = (int)(r + (unsigned)i) % 2; /* who goes first alternates */
                size_t w = window < d[k].n ? window : d[k].n;
                double t;
                if (dirty_round(&d[k], commit, counts[c], w, r, &s, &t))
                    return 1;
                if (r)
                    took[k][r - 1] = t;
            }
        for (int k = 0; k < 2; k++)
            dirty_report_median(name[k], counts[c], "commit_s", took[k], rounds);
    }
    /* Then pages from anywhere in the large arena: what scattered writes
     * cost this disk. */
    unsigned spread = rounds / 3 ? rounds / 3 : 1;
    for (int c = 0; c < N_DIRTY_PAGE_COUNTS; c++) {
        for (unsigned r = 0; r <= spread; r++) {
            double t;
            if (dirty_round(&d[1], commit, counts[c], d[1].n, r, &s, &t))
                return 1;
            if (r)
                took[1][r - 1] = t;
        }
        dirty_report_median("large", counts[c], "spread_commit_s", took[1], spread);
    }
    bench_result_end();
    for (int k = 0; k < 2; k++) {
        int err = fm_close(d[k].fi);
        if (err)
            return dirty_error("fm_close", err);
        bench_store_durable.remove(paths[k]);
    }
    return 0;
}

int bench_commit_main(const char *workload, const char *store, const char *scale, const char *path,
                      uint64_t arena_bytes, uint64_t txn_inserts, uint64_t seed)
{
    const struct params *P = params_for(scale);
    const struct bench_store *S = store_named(store);
    if (!S) {
        if (workload) /* the driver's --version probe needs no words */
            fprintf(stderr, "bench_worker: store %s was not built\n", store);
        return 3; /* the driver's "not built" */
    }
    if (!workload) { /* --version */
        printf("%s\n", S->version());
        return 0;
    }
    if (!P || !path)
        return commit_fail("the commit workloads need --scale and --file");
    if (strcmp(workload, "commit") == 0)
        return run_commit(S, P, path, txn_inserts ? txn_inserts : 1, seed);
    if (strcmp(workload, "dirty") == 0)
        return run_dirty(S, P, path, arena_bytes ? arena_bytes : P->dirty_large_bytes, seed);
    return commit_fail("--store goes with --workload commit|dirty");
}
