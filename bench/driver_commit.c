/*
 * driver_commit.c -- issue 16's commit workloads in the driver: running
 * them (one bench_worker per store and case, like the allocator
 * workloads) and their sections of the report.
 *
 *   commit   every store (store.h) on transactions of 1, 10 and 100
 *            inserts: commits per second
 *   dirty    fmalloc FM_DURABLE + fm_commit and default mode + fm_sync, on
 *            a 1 MiB and a large arena: commit time against pages dirtied
 *   between  workload 1 (churn) on the fmalloc arm in an FM_DURABLE arena
 *            against the default mode: the work between commits
 *
 * Their files go to opt.disk_dir: a commit's cost is the disk's, and on a
 * tmpfs an fdatasync costs nothing.  The stores take turns, their order
 * rotated from run to run, as the arms do.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"

const char *const store_name[N_STORES] = {"durable", "sync", "lmdb", "sqlite"};
static const char *const store_title[N_STORES] = {
    "fmalloc `FM_DURABLE` + `fm_commit`", "fmalloc default mode + `fm_sync`",
    "LMDB (default flags)", "SQLite (WAL, `synchronous=FULL`)"};

static const unsigned txn_sizes[N_COMMIT_TXN_SIZES] = COMMIT_TXN_SIZES;
static const unsigned page_counts[N_DIRTY_PAGE_COUNTS] = DIRTY_PAGE_COUNTS;

/* What `bench_worker --store NAME --version` said; "" when not built. */
static char store_version[N_STORES][96];

bool commit_workload(int w)
{
    return w == W_COMMIT || w == W_DIRTY || w == W_BETWEEN;
}

static bool commit_on(int w)
{
    return opt.wl_on[w] && opt.arm_on[A_FMALLOC];
}

void commit_setup(void)
{
    if (!commit_on(W_COMMIT) && !commit_on(W_DIRTY))
        return;
    for (int s = 0; s < N_STORES; s++) {
        const char *argv[] = {opt.worker, "--store", store_name[s], "--version", NULL};
        char out[sizeof store_version[0]];
        int st = spawn_capture(argv, out, sizeof out);
        out[strcspn(out, "\n")] = 0;
        bool built = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        snprintf(store_version[s], sizeof store_version[s], "%s", built ? out : "");
        if (!built)
            fprintf(stderr, "[setup]   commit   %-9s not built (its library was not found)\n",
                    store_name[s]);
    }
}

static void store_file(char *buf, size_t n, int w, int s)
{
    snprintf(buf, n, "%s/fmbench-%ld-%s-%s", opt.disk_dir, (long)getpid(), wl_name[w],
             store_name[s]);
}

/* The files a store may leave when its worker fails. */
static void store_unlink(const char *path)
{
    static const char *const suffixes[] = {"",     "-journal",       "-lock", "-wal",
                                           "-shm", "-small-journal", "-small"};
    char name[4200];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
        unlink(name);
    }
}

/* This slice's ratio of the durable store's commits/s to store s's. */
static void record_pair(const char *key, int s, const char *ratio_key)
{
    double d = last(W_COMMIT, S_DURABLE, key), o = last(W_COMMIT, s, key);
    if (!isnan(d) && !isnan(o) && o > 0)
        record(W_COMMIT, S_DURABLE, ratio_key, d / o);
}

/*
 * Each (store, size) runs in `commit_slices` short slices, the stores
 * taking turns within each: a disk's latency drifts on a shared machine,
 * and stores that run seconds apart see nearly the same disk.  The
 * ratios to LMDB and SQLite are taken per slice (paired), then their
 * median.
 */
static void run_commit(int run)
{
    unsigned long long seed = opt.seed + (unsigned long long)run;
    for (int t = 0; t < N_COMMIT_TXN_SIZES; t++) {
        char txn[16], prefix[16], key[32], file[4096], vs[2][40];
        snprintf(txn, sizeof txn, "%u", txn_sizes[t]);
        snprintf(prefix, sizeof prefix, "t%u_", txn_sizes[t]);
        snprintf(key, sizeof key, "t%u_commits_per_s", txn_sizes[t]);
        snprintf(vs[0], sizeof vs[0], "t%u_vs_lmdb", txn_sizes[t]);
        snprintf(vs[1], sizeof vs[1], "t%u_vs_sqlite", txn_sizes[t]);
        for (unsigned slice = 0; slice < opt.P->commit_slices; slice++) {
            bool ran[N_STORES] = {false};
            for (int k = 0; k < N_STORES; k++) {
                int s = (k + run + (int)slice) % N_STORES;
                if (!store_version[s][0])
                    continue;
                store_file(file, sizeof file, W_COMMIT, s);
                const char *extra[] = {"--txn", txn, NULL};
                ran[s] = run_worker(W_COMMIT, s, prefix, NULL, file, seed + slice, extra) == 0;
                store_unlink(file);
                progress(run, W_COMMIT, s, "%3u inserts/txn, slice %u: %.4g commits/s",
                         txn_sizes[t], slice + 1, last(W_COMMIT, s, key));
            }
            if (ran[S_DURABLE] && ran[S_LMDB])
                record_pair(key, S_LMDB, vs[0]);
            if (ran[S_DURABLE] && ran[S_SQLITE])
                record_pair(key, S_SQLITE, vs[1]);
        }
    }
}

static const char *const arena_label[2] = {"small", "large"};

static void run_dirty(int run)
{
    unsigned long long seed = opt.seed + (unsigned long long)run;
    char bytes[32], file[4096];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)opt.P->dirty_large_bytes);
    for (int i = 0; i < 2; i++) {
        int s = (i + run) % 2 ? S_SYNC : S_DURABLE;
        store_file(file, sizeof file, W_DIRTY, s);
        const char *extra[] = {"--arena-bytes", bytes, NULL};
        run_worker(W_DIRTY, s, "", NULL, file, seed, extra);
        store_unlink(file);
        unsigned n = page_counts[N_DIRTY_PAGE_COUNTS - 1];
        char ks[40], kl[40];
        snprintf(ks, sizeof ks, "small_p%u_commit_s", n);
        snprintf(kl, sizeof kl, "large_p%u_commit_s", n);
        progress(run, W_DIRTY, s, "%u pages: commit %.3g ms in the small arena, %.3g in the large",
                 n, last(W_DIRTY, s, ks) * 1e3, last(W_DIRTY, s, kl) * 1e3);
    }
}

static void run_between(int run)
{
    unsigned long long seed = opt.seed + (unsigned long long)run;
    for (int i = 0; i < 2; i++) {
        int s = (i + run) % 2 ? S_SYNC : S_DURABLE;
        char file[4096];
        store_file(file, sizeof file, W_BETWEEN, s);
        const char *extra[] = {"--fm-mode", s == S_DURABLE ? "durable" : "default", NULL};
        run_worker(W_BETWEEN, s, "", NULL, file, seed, extra);
        store_unlink(file);
        progress(run, W_BETWEEN, s, "%.3g Mops/s", last(W_BETWEEN, s, "ops_per_s") / 1e6);
    }
}

void commit_run(int run, int w)
{
    if (!commit_on(w))
        return;
    if (w == W_COMMIT)
        run_commit(run);
    else if (w == W_DIRTY)
        run_dirty(run);
    else
        run_between(run);
}

/* ---- the report ------------------------------------------------------------ */

/* A file system's name from statfs, for the report. */
static const char *fs_name(const char *dir)
{
    static const struct {
        long magic;
        const char *name;
    } known[] = {{0xEF53, "ext2/3/4"},
                 {0x58465342, "xfs"},
                 {0x9123683E, "btrfs"},
                 {0x01021994, "tmpfs: not a disk"},
                 {0x858458f6, "ramfs: not a disk"},
                 {0x2FC12FC1, "zfs"},
                 {0x794c7630, "overlayfs"},
                 {0x6969, "nfs"}};
    static char buf[32];
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return "?";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if ((long)sf.f_type == known[i].magic)
            return known[i].name;
    snprintf(buf, sizeof buf, "f_type 0x%lx", (unsigned long)sf.f_type);
    return buf;
}

/* "1 MiB", "1 GiB", "256 MiB": an arena's size. */
static const char *size_label(uint64_t bytes)
{
    static char ring[4][32];
    static int next;
    char *b = ring[next++ % 4];
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        snprintf(b, 32, "%llu GiB", (unsigned long long)(bytes >> 30));
    else if (bytes % (1ull << 20) == 0)
        snprintf(b, 32, "%llu MiB", (unsigned long long)(bytes >> 20));
    else
        snprintf(b, 32, "%s MiB", num((double)bytes / 1048576));
    return b;
}

/* "median (lo–hi)" of key under (w, s) times scale, or "n/a". */
static const char *with_range(int w, int s, const char *key, double scale)
{
    static char ring[16][80];
    static int next;
    char *b = ring[next++ % 16];
    double m = median(w, s, key);
    if (isnan(m))
        snprintf(b, 80, "n/a");
    else
        snprintf(b, 80, "%s (%s–%s)", num(m * scale), num(extreme(w, s, key, false) * scale),
                 num(extreme(w, s, key, true) * scale));
    return b;
}

/* The median of the slices' FM_DURABLE ÷ `peer` ratios, size t. */
static double paired(int t, const char *peer)
{
    char key[40];
    snprintf(key, sizeof key, "t%u_vs_%s", txn_sizes[t], peer);
    return median(W_COMMIT, S_DURABLE, key);
}

static void section_commit(FILE *o)
{
    int w = W_COMMIT;
    section_head(
        o, "7. Commits per second (issue 16)",
        "Transactions of 1, 10 and 100 inserts of a %u-byte record under a new key, each "
        "ended by the store's commit; every store on the same disk (`%s`, %s). Each "
        "(store, size) runs in %u slices per run, each in a fresh process on a new file for "
        "at least %s s and %u transactions; within a slice the stores take turns, seconds "
        "apart, so that they see the disk alike (its latency drifts on a shared machine). "
        "fmalloc: the record is a block allocated with `fm_malloc_to` at the "
        "tail of a list whose head is in the root, then filled; `FM_DURABLE` commits with "
        "`fm_commit` (redo journal, atomic across a power cut), the default mode with "
        "`fm_sync` (durable, not atomic). LMDB: one write transaction, `mdb_put` of each "
        "record under an ascending big-endian key, `mdb_txn_commit` (default flags: it "
        "syncs). SQLite: `BEGIN`, one prepared `INSERT` per record into a table with an "
        "`INTEGER PRIMARY KEY`, `COMMIT`. Cells: median commits per second over all slices "
        "(slowest–fastest slice); the ratios are the medians of each slice's ratio.",
        COMMIT_RECORD_BYTES, opt.disk_dir, fs_name(opt.disk_dir), opt.P->commit_slices,
        num(opt.P->commit_secs), opt.P->commit_min_txns);
    char titles[512] = "| inserts per transaction |";
    char align[16] = "l";
    for (int s = 0; s < N_STORES; s++) {
        size_t n = strlen(titles);
        snprintf(titles + n, sizeof titles - n, " %s |", store_title[s]);
        strcat(align, "r");
    }
    strcat(titles, " `FM_DURABLE` ÷ LMDB | `FM_DURABLE` ÷ SQLite |");
    strcat(align, "rr");
    table_head(o, titles, align);
    for (int t = 0; t < N_COMMIT_TXN_SIZES; t++) {
        char key[32];
        snprintf(key, sizeof key, "t%u_commits_per_s", txn_sizes[t]);
        fprintf(o, "| %u |", txn_sizes[t]);
        for (int s = 0; s < N_STORES; s++)
            fprintf(o, " %s |", store_version[s][0] ? with_range(w, s, key, 1) : "not built");
        fprintf(o, " %s | %s |\n", ratio(paired(t, "lmdb")), ratio(paired(t, "sqlite")));
    }
    fprintf(o, "\nVersions: ");
    for (int s = 0; s < N_STORES; s++) /* both fmalloc stores are one library */
        if (s != S_SYNC)
            fprintf(o, "%s%s", s ? ", " : "", store_version[s][0] ? store_version[s] : "not built");
    fprintf(o, ".\n\n");
}

/* Median of the dirty workload's `what` for store s, arena k (0 small,
 * 1 large), `pages` pages dirtied. */
static double dirty_median(int s, int k, unsigned pages, const char *what)
{
    char key[48];
    snprintf(key, sizeof key, "%s_p%u_%s", arena_label[k], pages, what);
    return median(W_DIRTY, s, key);
}

static void section_dirty(FILE *o)
{
    section_head(
        o, "8. Commit cost against pages dirtied (issue 16)",
        "One arena of %s and one of %s (`initial_size`), on `%s` (%s), filled with "
        "allocated 64 KiB blocks to about 90%% of the file (the small arena grows to hold "
        "1000 whole pages for the last row: its file size is beside it). For each count, "
        "%u times (after one untimed round): write one byte in each of that many distinct "
        "random pages of those blocks, then time the commit. \"Same pages\": the pages "
        "are drawn from the first max(count, 200) pages of the blocks in both arenas, so "
        "that the disk sees writes equally scattered and only the arena's size differs; "
        "the commit's cost must not follow it (large ÷ small). Both arenas are open in one "
        "process, their rounds alternating, so that both see the disk alike. "
        "\"Anywhere\": drawn from "
        "the whole large arena (rounds: %u), what scattered writes cost this disk. Cells: "
        "median commit time in ms (the median of each run's median).",
        size_label(DIRTY_SMALL_BYTES), size_label(opt.P->dirty_large_bytes), opt.disk_dir,
        fs_name(opt.disk_dir), opt.P->dirty_rounds,
        opt.P->dirty_rounds / 3 ? opt.P->dirty_rounds / 3 : 1);
    char titles[512];
    snprintf(titles, sizeof titles,
             "| pages dirtied | small arena MiB | `fm_commit`, small | `fm_commit`, %s, same "
             "pages | %s ÷ small | `fm_commit`, %s, anywhere | `fm_sync` (default mode), "
             "small | `fm_sync`, %s, same pages | `fm_sync`, %s, anywhere |",
             size_label(opt.P->dirty_large_bytes), size_label(opt.P->dirty_large_bytes),
             size_label(opt.P->dirty_large_bytes), size_label(opt.P->dirty_large_bytes),
             size_label(opt.P->dirty_large_bytes));
    table_head(o, titles, "lrrrrrrrr");
    for (int c = 0; c < N_DIRTY_PAGE_COUNTS; c++) {
        unsigned n = page_counts[c];
        double s = dirty_median(S_DURABLE, 0, n, "commit_s");
        double l = dirty_median(S_DURABLE, 1, n, "commit_s");
        fprintf(o, "| %u | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
                num(dirty_median(S_DURABLE, 0, n, "file_bytes") / 1048576), num(s * 1e3),
                num(l * 1e3), ratio(l / s),
                num(dirty_median(S_DURABLE, 1, n, "spread_commit_s") * 1e3),
                num(dirty_median(S_SYNC, 0, n, "commit_s") * 1e3),
                num(dirty_median(S_SYNC, 1, n, "commit_s") * 1e3),
                num(dirty_median(S_SYNC, 1, n, "spread_commit_s") * 1e3));
    }
    fprintf(o, "\n");
}

static void section_between(FILE *o)
{
    int w = W_BETWEEN;
    section_head(o, "9. Work between commits (issue 16)",
                 "Workload 1 (small-object churn, %s slots, %s operations) on the fmalloc arm, its "
                 "arena on `%s` (%s), opened with `FM_DURABLE` (a private mapping: the first store "
                 "to a page since the last commit copies it) and in the default mode (a shared "
                 "mapping). No commit inside the timed loop; `fm_close` commits after it.",
                 count(opt.P->churn_slots), count(opt.P->churn_ops), opt.disk_dir,
                 fs_name(opt.disk_dir));
    table_head(o, "| mode | Mops/s | ÷ default mode |", "lrr");
    double base = median(w, S_SYNC, "ops_per_s");
    fprintf(o, "| default mode | %s | %s |\n", with_range(w, S_SYNC, "ops_per_s", 1e-6), ratio(1));
    fprintf(o, "| `FM_DURABLE` | %s | %s |\n\n", with_range(w, S_DURABLE, "ops_per_s", 1e-6),
            ratio(median(w, S_DURABLE, "ops_per_s") / base));
}

/*
 * A library whose FM_DURABLE does nothing yet maps the arena shared: its
 * "FM_DURABLE" figures are the default mode's, and the report says so.
 */
static void durable_warning(FILE *o)
{
    bool shared = false;
    for (int w = W_COMMIT; w <= W_BETWEEN; w++)
        shared |= median(w, S_DURABLE, "private_map") == 0;
    if (shared)
        fprintf(o, "**Not the power-safe mode.** The library measured here maps an "
                   "`FM_DURABLE` arena shared, as in its default mode: its `fm_commit` is "
                   "not issue 16's journaled commit, and the `FM_DURABLE` figures below are "
                   "the default mode's under another name.\n\n");
}

void commit_report(FILE *o)
{
    durable_warning(o);
    if (commit_on(W_COMMIT))
        section_commit(o);
    if (commit_on(W_DIRTY))
        section_dirty(o);
    if (commit_on(W_BETWEEN))
        section_between(o);
}

void commit_targets(FILE *o)
{
    if (!commit_on(W_COMMIT) && !commit_on(W_DIRTY) && !commit_on(W_BETWEEN))
        return;
    fprintf(o, "### Targets (issue 16)\n\n");
    durable_warning(o);
    table_head(o, "| target | measured | status |", "lll");
    char m[256];
    for (int t = 0; t < 2; t++) { /* the small transactions: 1 and 10 inserts */
        char key[32], what[96];
        snprintf(key, sizeof key, "t%u_commits_per_s", txn_sizes[t]);
        double d = median(W_COMMIT, S_DURABLE, key), l = median(W_COMMIT, S_LMDB, key);
        snprintf(what, sizeof what, "commits/s, %u insert%s per transaction, ≥ LMDB's",
                 txn_sizes[t], txn_sizes[t] == 1 ? "" : "s");
        double r = paired(t, "lmdb");
        snprintf(m, sizeof m, "%s vs %s commits/s; paired ratio %s", num(d), num(l), ratio(r));
        target(o, what, m, r, 1, false);
    }
    double worst = NAN;
    for (int c = 0; c < N_DIRTY_PAGE_COUNTS; c++) {
        double r = dirty_median(S_DURABLE, 1, page_counts[c], "commit_s") /
                   dirty_median(S_DURABLE, 0, page_counts[c], "commit_s");
        if (!isnan(r) && (isnan(worst) || r > worst))
            worst = r;
    }
    snprintf(m, sizeof m, "large ÷ small at most %s", ratio(worst));
    target(o,
           "commit cost does not grow with the arena (read as: large ÷ small, same pages, "
           "≤ 1.5× at every count)",
           m, worst, 1.5, true);
    double b = median(W_BETWEEN, S_DURABLE, "ops_per_s") / median(W_BETWEEN, S_SYNC, "ops_per_s");
    snprintf(m, sizeof m, "%s", ratio(b));
    target(o, "work between commits ≥ 0.8× the default mode", m, b, 0.8, false);
    fprintf(o, "\n");
}
