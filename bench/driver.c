/*
 * driver.c -- bench_driver: runs every arm on every workload, each in its
 * own bench_worker process, and reports medians and ratios in Markdown.
 *
 *   bench_driver [--smoke | --quick] [--runs N] [--dir DIR] [--seed S]
 *                [--arms a,b,...] [--workloads w,...] [--worker PATH]
 *                [--md FILE] [--tsv FILE] [--disk-dir DIR]
 *
 * Order: for each run, for each workload, every arm that can run it once
 * (procs and procs2: only fmalloc and Boost), the arms' order rotated by
 * one per run so that no arm always goes first or last (drift on a
 * shared machine then spreads over all of them).  Run r uses
 * seed S + r for every arm, so within a run all arms execute the same
 * operation sequence.  The reported figure is the median over the runs,
 * with the range beside it.
 *
 * The commit workloads (commit, dirty, between: issue 16) are run and
 * reported by driver_commit.c, their files in --disk-dir.  The workloads
 * of several processes on one heap (procs, procs2: issue 18) are reported
 * by driver_procs.c.
 *
 * Exit status: 0 if every worker succeeded, 1 otherwise (the tables then
 * show what did run).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "params.h"

/* ---- arms and workloads ---------------------------------------------------- */

const char *const arm_name[N_ARMS] = {"glibc", "jemalloc", "mimalloc", "fmalloc", "boost", "pmdk"};
const char *const arm_title[N_ARMS] = {
    "glibc malloc", "jemalloc", "mimalloc", "fmalloc", "Boost.Interprocess", "PMDK libpmemobj"};
const bool arm_persistent[N_ARMS] = {false, false, false, true, true, true};

const char *const wl_name[N_WORKLOADS] = {
    "churn",   "mixed",  "list",   "frag",    "threads",  "reopen",  "commit",
    "dirty",   "between", "medium", "medium2", "prodcons", "bigreuse", "procs",
    "procs2"};

#define MAX_RUNS   100
#define MAX_SERIES 1024

/* ---- results --------------------------------------------------------------- */

/* Every value one key of one (workload, arm) took, one per run. */
struct series {
    int w, a;
    char key[48];
    double v[MAX_RUNS];
    int n;
};

static struct series store[MAX_SERIES];
static int n_series;

static struct series *series_find(int w, int a, const char *key, bool make)
{
    for (int i = 0; i < n_series; i++)
        if (store[i].w == w && store[i].a == a && strcmp(store[i].key, key) == 0)
            return &store[i];
    if (!make || n_series == MAX_SERIES)
        return NULL;
    struct series *s = &store[n_series++];
    s->w = w;
    s->a = a;
    snprintf(s->key, sizeof s->key, "%s", key);
    s->n = 0;
    return s;
}

void record(int w, int a, const char *key, double v)
{
    struct series *s = series_find(w, a, key, true);
    if (s && s->n < MAX_RUNS)
        s->v[s->n++] = v;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double median(int w, int a, const char *key)
{
    struct series *s = series_find(w, a, key, false);
    if (!s || s->n == 0)
        return NAN;
    double v[MAX_RUNS];
    memcpy(v, s->v, (size_t)s->n * sizeof v[0]);
    qsort(v, (size_t)s->n, sizeof v[0], cmp_double);
    return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

double extreme(int w, int a, const char *key, bool want_max)
{
    struct series *s = series_find(w, a, key, false);
    if (!s || s->n == 0)
        return NAN;
    double m = s->v[0];
    for (int i = 1; i < s->n; i++)
        if (want_max ? s->v[i] > m : s->v[i] < m)
            m = s->v[i];
    return m;
}

/* ---- options ----------------------------------------------------------- */

struct driver_options opt;

static int failures, cases;

static void usage(void)
{
    fprintf(stderr, "usage: bench_driver [--smoke|--quick] [--runs N] [--dir DIR] [--seed S]\n"
                    "                    [--arms a,b,...] [--workloads w,...] [--worker PATH]\n"
                    "                    [--md FILE] [--tsv FILE] [--disk-dir DIR]\n"
                    "  arms: glibc jemalloc mimalloc fmalloc boost pmdk\n"
                    "  workloads: churn mixed list frag threads reopen commit dirty between\n"
                    "             medium medium2 prodcons bigreuse procs procs2\n"
                    "  --disk-dir: where the commit workloads' files go (a disk, not a tmpfs;\n"
                    "              default $TMPDIR, else /var/tmp)\n");
    exit(2);
}

/* Turn on the names in a comma-separated list; false on an unknown name. */
static bool parse_list(const char *list, const char *const *names, int n, bool *on)
{
    for (int i = 0; i < n; i++)
        on[i] = false;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = 0;
        while (i < n && strcmp(names[i], t) != 0)
            i++;
        if (i == n)
            return false;
        on[i] = true;
    }
    return true;
}

/* ---- running a worker ------------------------------------------------------ */

/* What ran: the arm, or for the commit workloads the store or mode. */
static const char *case_name(int w, int a)
{
    if (w == W_BETWEEN)
        return a == S_DURABLE ? "durable" : "default";
    return commit_workload(w) ? store_name[a] : arm_name[a];
}

/* Run argv with stdout captured into out (NUL-terminated); the wait status. */
int spawn_capture(const char *const *argv, char *out, size_t cap)
{
    int fds[2];
    if (pipe(fds)) {
        perror("bench_driver: pipe");
        exit(1);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_driver: fork");
        exit(1);
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        unsetenv("LD_PRELOAD"); /* the worker sets its own */
        execv(argv[0], (char *const *)argv);
        perror("bench_driver: exec bench_worker");
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], out + len, cap - 1 - len)) > 0 || (got < 0 && errno == EINTR))
        if (got > 0)
            len += (size_t)got;
    out[len] = 0;
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/*
 * Run one worker; record every key of its RESULT line under (w, a) with
 * `prefix` before it.  Returns 0, or 1 after reporting the failure.
 */
int run_worker(int w, int a, const char *prefix, const char *phase, const char *file,
               unsigned long long seed, const char *const *extra)
{
    char seed_s[32], timeout_s[32];
    snprintf(seed_s, sizeof seed_s, "%llu", seed);
    snprintf(timeout_s, sizeof timeout_s, "%u", opt.timeout);
    const char *argv[24];
    int n = 0;
    argv[n++] = opt.worker;
    if (w == W_COMMIT || w == W_DIRTY) {
        argv[n++] = "--store";
        argv[n++] = store_name[a];
    } else {
        argv[n++] = "--alloc";
        argv[n++] = w == W_BETWEEN ? "fmalloc" : arm_name[a];
    }
    argv[n++] = "--workload";
    argv[n++] = wl_name[w];
    argv[n++] = "--seed";
    argv[n++] = seed_s;
    argv[n++] = "--scale";
    argv[n++] = opt.P->scale;
    argv[n++] = "--timeout";
    argv[n++] = timeout_s;
    if (file) {
        argv[n++] = "--file";
        argv[n++] = file;
    }
    if (phase) {
        argv[n++] = "--phase";
        argv[n++] = phase;
    }
    for (int i = 0; extra && extra[i] && n < 22; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    cases++;
    char out[8192];
    int status = spawn_capture(argv, out, sizeof out);
    char *line = strstr(out, "RESULT ");
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && line;
    if (!ok) {
        failures++;
        fprintf(stderr, "bench_driver: FAILED: %s %s%s%s (", case_name(w, a), wl_name[w],
                phase ? " " : "", phase ? phase : "");
        if (WIFSIGNALED(status))
            fprintf(stderr, "killed by signal %d%s)\n", WTERMSIG(status),
                    WTERMSIG(status) == SIGALRM ? ", timed out" : "");
        else
            fprintf(stderr, "exit status %d)\n", WEXITSTATUS(status));
        return 1;
    }
    line += strlen("RESULT ");
    line[strcspn(line, "\n")] = 0;
    for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = 0;
        char key[48];
        snprintf(key, sizeof key, "%s%s", prefix, t);
        record(w, a, key, strtod(eq + 1, NULL));
    }
    return 0;
}

static void arena_path(char *buf, size_t n, int w, int a, const char *what)
{
    snprintf(buf, n, "%s/fmbench-%ld-%s-%s%s.arena", opt.dir, (long)getpid(), arm_name[a],
             wl_name[w], what);
}

void progress(int run, int w, int a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[run %d/%d] %-8s %-9s ", run + 1, opt.runs, wl_name[w], case_name(w, a));
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

double last(int w, int a, const char *key)
{
    struct series *s = series_find(w, a, key, false);
    return s && s->n ? s->v[s->n - 1] : NAN;
}

static void run_case(int run, int w, int a)
{
    unsigned long long seed = opt.seed + (unsigned long long)run;
    char file[4096];
    arena_path(file, sizeof file, w, a, "");
    const char *f = arm_persistent[a] ? file : NULL;
    if (w == W_LIST && arm_persistent[a]) {
        if (run_worker(w, a, "", "build", f, seed, NULL) == 0)
            run_worker(w, a, "", "reopen", f, seed, NULL);
        progress(run, w, a, "%.3g Mnodes/s build, %.3g ms reopen, %.3g ms traverse",
                 last(w, a, "ops_per_s") / 1e6, last(w, a, "reopen_s") * 1e3,
                 last(w, a, "traverse_s") * 1e3);
    } else if (w == W_LIST) {
        run_worker(w, a, "", NULL, NULL, seed, NULL);
        progress(run, w, a, "%.3g Mnodes/s build, %.3g ms traverse", last(w, a, "ops_per_s") / 1e6,
                 last(w, a, "traverse_s") * 1e3);
    } else if (w == W_FRAG) {
        run_worker(w, a, "", NULL, f, seed, NULL);
        progress(run, w, a, "%.3g Mops/s, footprint/live %.3f", last(w, a, "ops_per_s") / 1e6,
                 last(w, a, "footprint_bytes") / last(w, a, "live_bytes"));
    } else if (w == W_BIGREUSE) {
        run_worker(w, a, "", NULL, f, seed, NULL);
        progress(run, w, a, "%.3g rounds/s, %.3g MiB/s touched", last(w, a, "ops_per_s"),
                 last(w, a, "mib_per_s"));
    } else {
        run_worker(w, a, "", NULL, f, seed, NULL);
        progress(run, w, a, "%.3g Mops/s", last(w, a, "ops_per_s") / 1e6);
    }
    if (f)
        unlink(f);
}

/* Workload 6: fmalloc's reopen and recovery, on a small and a big arena. */
static char reopen_file[2][4096];

static void reopen_setup(void)
{
    static const char *const which[2] = {"small", "large"};
    for (int k = 0; k < 2; k++) {
        char bytes[32], objects[32], prefix[16];
        arena_path(reopen_file[k], sizeof reopen_file[k], W_REOPEN, A_FMALLOC, which[k]);
        snprintf(bytes, sizeof bytes, "%llu",
                 (unsigned long long)(k ? opt.P->reopen_bytes : opt.P->small_bytes));
        snprintf(objects, sizeof objects, "%llu",
                 (unsigned long long)(k ? opt.P->reopen_objects : opt.P->small_objects));
        snprintf(prefix, sizeof prefix, "%s_", which[k]);
        fprintf(stderr,
                "[setup]   reopen   fmalloc   building the %s arena (%s bytes, %s objects)\n",
                which[k], bytes, objects);
        const char *extra[] = {"--arena-bytes", bytes, "--objects", objects, NULL};
        run_worker(W_REOPEN, A_FMALLOC, prefix, "build", reopen_file[k], opt.seed, extra);
    }
}

static void reopen_run(int run)
{
    static const char *const which[2] = {"small", "large"};
    for (int k = 0; k < 2; k++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "%s_", which[k]);
        run_worker(W_REOPEN, A_FMALLOC, prefix, "reopen", reopen_file[k], opt.seed, NULL);
        if (run_worker(W_REOPEN, A_FMALLOC, prefix, "crash", reopen_file[k], opt.seed, NULL) == 0)
            run_worker(W_REOPEN, A_FMALLOC, prefix, "recover", reopen_file[k], opt.seed, NULL);
        char key_r[32], key_c[32];
        snprintf(key_r, sizeof key_r, "%sreopen_s", prefix);
        snprintf(key_c, sizeof key_c, "%srecover_s", prefix);
        progress(run, W_REOPEN, A_FMALLOC, "%s arena: reopen %.3g ms, recovery %.3g ms", which[k],
                 last(W_REOPEN, A_FMALLOC, key_r) * 1e3, last(W_REOPEN, A_FMALLOC, key_c) * 1e3);
    }
}

/* ---- the report ------------------------------------------------------------ */

/* A number for a table: "n/a" for NaN, 3 significant digits, no exponent. */
const char *num(double v)
{
    static char ring[32][32];
    static int next;
    char *b = ring[next++ % 32];
    if (isnan(v))
        snprintf(b, 32, "n/a");
    else if (fabs(v) >= 100)
        snprintf(b, 32, "%.0f", v);
    else if (fabs(v) >= 10)
        snprintf(b, 32, "%.1f", v);
    else if (fabs(v) >= 1)
        snprintf(b, 32, "%.2f", v);
    else if (v == 0 || fabs(v) >= 0.001)
        snprintf(b, 32, "%.3g", v);
    else /* no exponent: 0.0000629 */
        snprintf(b, 32, "%.*f", 2 - (int)floor(log10(fabs(v))), v);
    return b;
}

const char *ratio(double v)
{
    static char ring[16][32];
    static int next;
    char *b = ring[next++ % 16];
    snprintf(b, 32, isnan(v) ? "n/a" : "%s×", num(v));
    return b;
}

/* A thousands-separated count. */
const char *count(double v)
{
    static char ring[8][32];
    static int next;
    char *b = ring[next++ % 8];
    char raw[32];
    snprintf(raw, sizeof raw, "%.0f", v);
    size_t n = strlen(raw), j = 0;
    for (size_t i = 0; i < n && j < 30; i++) {
        if (i && (n - i) % 3 == 0)
            b[j++] = ',';
        b[j++] = raw[i];
    }
    b[j] = 0;
    return b;
}

bool on(int w, int a)
{
    return opt.wl_on[w] && opt.arm_on[a] && procs_arm(w, a);
}

/* Median of key scaled, or NaN. */
double med(int w, int a, const char *key, double scale)
{
    return on(w, a) ? median(w, a, key) * scale : NAN;
}

const char *range(int w, int a, const char *key, double scale)
{
    static char ring[8][64];
    static int next;
    char *b = ring[next++ % 8];
    double lo = extreme(w, a, key, false), hi = extreme(w, a, key, true);
    if (!on(w, a) || isnan(lo))
        snprintf(b, 64, "n/a");
    else
        snprintf(b, 64, "%s–%s", num(lo * scale), num(hi * scale));
    return b;
}

/* The arms workload w ran, from `a` on: the first, or N_ARMS. */
int arm_from(int w, int a)
{
    while (a < N_ARMS && !on(w, a))
        a++;
    return a;
}

/* "### title", then the paragraph that says what was measured. */
void section_head(FILE *o, const char *title, const char *intro, ...)
{
    va_list ap;
    fprintf(o, "### %s\n\n", title);
    va_start(ap, intro);
    vfprintf(o, intro, ap);
    va_end(ap);
    fprintf(o, "\n\n");
}

/* A table's first two rows: `titles` ("| a | b |"), then one "---" per
 * letter of `align`: l for text, r for numbers (right-aligned). */
void table_head(FILE *o, const char *titles, const char *align)
{
    fprintf(o, "%s\n|", titles);
    for (const char *c = align; *c; c++)
        fprintf(o, *c == 'r' ? " ---: |" : " --- |");
    fprintf(o, "\n");
}

/* Throughput table with ratios: workloads 1 and 2, and issue 17's. */
void table_rate(FILE *o, int w, const char *unit, double scale, const char *extra_head,
                       const char *extra_key)
{
    char titles[160];
    snprintf(titles, sizeof titles, "| allocator | kind | %s | range | vs glibc | vs Boost | "
             "vs PMDK |%s", unit, extra_head ? extra_head : "");
    table_head(o, titles, extra_head ? "llrrrrrr" : "llrrrrr");
    double g = med(w, A_GLIBC, "ops_per_s", 1), b = med(w, A_BOOST, "ops_per_s", 1),
           p = med(w, A_PMDK, "ops_per_s", 1);
    for_each_arm(w, a) {
        double v = med(w, a, "ops_per_s", 1);
        fprintf(o, "| %s | %s | %s | %s | %s | %s | %s |", arm_title[a],
                arm_persistent[a] ? "persistent" : "volatile", num(v * scale),
                range(w, a, "ops_per_s", scale), ratio(v / g), ratio(v / b), ratio(v / p));
        if (extra_key)
            fprintf(o, " %s |", count(med(w, a, extra_key, 1)));
        fprintf(o, "\n");
    }
    fprintf(o, "\n");
}

static void table_throughput(FILE *o, int w, const char *extra_head, const char *extra_key)
{
    table_rate(o, w, "Mops/s", 1e-6, extra_head, extra_key);
}

static void section_churn(FILE *o, const struct params *P)
{
    section_head(o, "1. Small-object churn",
            "%s slots, %s operations, sizes %u–%u B uniform. Each operation picks a slot at "
            "random: frees its block if it holds one, else allocates one and writes its first "
            "8 bytes (checked again at the free).",
            count(P->churn_slots), count(P->churn_ops), CHURN_MIN_SIZE, CHURN_MAX_SIZE);
    table_throughput(o, W_CHURN, NULL, NULL);
}

static void section_mixed(FILE *o, const struct params *P)
{
    section_head(o, "2. Mixed sizes with realloc",
            "%s slots, %s operations, sizes %u B–%u KiB log-uniform. 10%% of the operations are "
            "`realloc` of the slot's block to a new size (of NULL when the slot is empty); the "
            "rest free a held block or allocate one. Every block carries a stamp in its first "
            "and last 8 bytes, checked after each realloc (the old contents must survive) and "
            "before each free.",
            count(P->mixed_slots), count(P->mixed_ops), MIXED_MIN_SIZE, MIXED_MAX_SIZE / 1024);
    table_throughput(o, W_MIXED, " reallocs |", "reallocs");
}

static void section_list(FILE *o, const struct params *P, int w)
{
    section_head(o, "3. Persistent linked list",
            "%s nodes of %u B appended to a list whose head is in the arena's root. "
            "Persistent arms: one process builds the list and closes the arena, a fresh process "
            "reopens it and traverses it (checking every node and the count and sum kept in the "
            "root). Links are offsets; each node is allocated and linked with the arm's "
            "crash-atomic call where it has one (`fm_malloc_to`; `pmemobj_alloc` into the "
            "previous node's PMEMoid, then `pmemobj_persist` of the node). Volatile arms build "
            "and traverse in one process (no reopen). Times are medians; \"on disk\" is "
            "`st_blocks × 512`; blocks and heap bytes are what the allocator itself reports "
            "after the reopen.",
            count(P->list_nodes), LIST_NODE_SIZE);
    table_head(o,
               "| allocator | build Mnodes/s | build ms | close ms | reopen ms | traverse ms | "
               "file MiB | on disk MiB | blocks | heap MiB |",
               "lrrrrrrrrr");
    for_each_arm(w, a) {
        double blocks = med(w, a, "blocks", 1), heap = med(w, a, "heap_bytes", 1.0 / 1048576);
        fprintf(o, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", arm_title[a],
                num(med(w, a, "ops_per_s", 1e-6)), num(med(w, a, "build_s", 1e3)),
                num(med(w, a, "close_s", 1e3)), num(med(w, a, "reopen_s", 1e3)),
                num(med(w, a, "traverse_s", 1e3)), num(med(w, a, "file_bytes", 1.0 / 1048576)),
                num(med(w, a, "disk_bytes", 1.0 / 1048576)), blocks >= 0 ? count(blocks) : "n/a",
                heap >= 0 ? num(heap) : "n/a");
    }
    fprintf(o, "\n");
}

static void section_frag(FILE *o, const struct params *P, int w)
{
    section_head(o, "4. Fragmentation",
            "%s blocks of %u–%u B, a random half of them freed, then %s blocks of %u–%u B. "
            "Live bytes = the bytes asked for by the blocks still held. Footprint = file blocks "
            "(`st_blocks × 512`) for fmalloc and Boost; for PMDK, whose pool file is allocated "
            "whole at creation, the resident pages of its mapping; for the volatile arms, the "
            "growth of peak RSS (VmHWM) over the RSS before the first allocation.",
            count(P->frag_first), FRAG_MIN_SIZE, FRAG_MAX_FIRST, count(P->frag_second),
            FRAG_MIN_SIZE, FRAG_MAX_SECOND);
    table_head(o, "| allocator | Mops/s | live MiB | footprint MiB | footprint ÷ live | measured as |",
               "lrrrrl");
    for_each_arm(w, a) {
        double live = med(w, a, "live_bytes", 1), foot = med(w, a, "footprint_bytes", 1);
        const char *how = !arm_persistent[a]                       ? "peak RSS growth"
                          : med(w, a, "footprint_is_rss", 1) > 0.5 ? "mapped pages resident"
                                                                   : "file blocks";
        fprintf(o, "| %s | %s | %s | %s | %s | %s |\n", arm_title[a],
                num(med(w, a, "ops_per_s", 1e-6)), num(live / 1048576), num(foot / 1048576),
                num(foot / live), how);
    }
    fprintf(o, "\n");
}

static void section_threads(FILE *o, const struct params *P, int w)
{
    section_head(o, "5. Two threads, one heap",
            "Workload 1 run by 2 threads at once on one heap (one arena for the persistent "
            "arms), each thread with its own %s slots and %s operations. Aggregate throughput = "
            "all operations ÷ (last thread's end − first thread's start). \"1 thread\" is "
            "workload 1's figure. CPU share = the threads' CPU time ÷ (2 × that wall time): "
            "below 100%% the threads waited, for a lock or for a core that another process "
            "had (the volatile arms, which share no lock, show how free the cores were).",
            count(P->churn_slots), count(P->churn_ops));
    table_head(o,
               "| allocator | 2 threads Mops/s | range | 1 thread Mops/s | 2 threads ÷ 1 | "
               "CPU share | vs glibc | vs Boost | vs PMDK |",
               "lrrrrrrrr");
    double g = med(w, A_GLIBC, "ops_per_s", 1), b = med(w, A_BOOST, "ops_per_s", 1),
           p = med(w, A_PMDK, "ops_per_s", 1);
    for_each_arm(w, a) {
        double v = med(w, a, "ops_per_s", 1), one = med(W_CHURN, a, "ops_per_s", 1);
        fprintf(o, "| %s | %s | %s | %s | %s | %.0f%% | %s | %s | %s |\n", arm_title[a],
                num(v / 1e6), range(w, a, "ops_per_s", 1e-6), num(one / 1e6), ratio(v / one),
                med(w, a, "cpu_share", 100), ratio(v / g), ratio(v / b), ratio(v / p));
    }
    fprintf(o, "\n");
}

static void section_reopen(FILE *o)
{
    int w = W_REOPEN, a = A_FMALLOC;
    section_head(o, "6. fmalloc: reopen and recovery",
            "Two arenas built once (blocks of %u–%u B, `fm_close` with the default sync). "
            "Per run, each in a fresh process: time `fm_open` of the cleanly closed arena; then "
            "a child opens it read-write, allocates one block and is killed with SIGKILL; then "
            "time `fm_open` of the dirty arena, which recovers it (the open checks the whole "
            "heap before it trusts it).",
            REOPEN_MIN_SIZE, REOPEN_MAX_SIZE);
    table_head(o,
               "| arena | file MiB | objects | build s | clean reopen ms | range | recovery ms | "
               "range | recovery s per GiB |",
               "lrrrrrrrr");
    static const char *const which[2] = {"small", "large"};
    for (int k = 0; k < 2; k++) {
        char key[8][40];
        const char *names[] = {"file_bytes", "objects", "build_s", "reopen_s", "recover_s"};
        for (int i = 0; i < 5; i++)
            snprintf(key[i], sizeof key[i], "%s_%s", which[k], names[i]);
        double file = med(w, a, key[0], 1);
        fprintf(o, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", which[k],
                num(file / 1048576), count(med(w, a, key[1], 1)), num(med(w, a, key[2], 1)),
                num(med(w, a, key[3], 1e3)), range(w, a, key[3], 1e3), num(med(w, a, key[4], 1e3)),
                range(w, a, key[4], 1e3), num(med(w, a, key[4], 1) / (file / 1073741824.0)));
    }
    fprintf(o, "\n");
}

void target(FILE *o, const char *what, const char *measured, double lhs, double rhs,
                   bool at_most)
{
    const char *met = isnan(lhs) || isnan(rhs)              ? "n/a"
                      : (at_most ? lhs <= rhs : lhs >= rhs) ? "**met**"
                                                            : "not met";
    fprintf(o, "| %s | %s | %s |\n", what, measured, met);
}

/* How fmalloc fares against one peer over the workloads: the rows with a
 * ratio, those below `min`, and their names. */
struct peer_tally {
    double min;
    int rated, below;
    char below_list[256];
};

/* Counts ratio r (fmalloc ÷ the peer) of workload `title`; its mark. */
static const char *tally(struct peer_tally *t, double r, const char *title)
{
    if (isnan(r))
        return "n/a";
    t->rated++;
    if (r >= t->min)
        return "yes";
    t->below++;
    size_t n = strlen(t->below_list);
    snprintf(t->below_list + n, sizeof t->below_list - n, "%s%s", n ? ", " : "", title);
    return "**no**";
}

static void section_targets(FILE *o)
{
    int f = A_FMALLOC;
    double churn = med(W_CHURN, f, "ops_per_s", 1), mixed = med(W_MIXED, f, "ops_per_s", 1);
    section_head(o, "fmalloc against the persistent peers, per workload",
                 "Speed-up of fmalloc over each peer (throughput ratio, or time ratio for reopen "
                 "and traverse). The issue asks for at least 3× Boost and 5× PMDK everywhere.");
    table_head(o, "| workload | fmalloc ÷ Boost | ≥ 3× | fmalloc ÷ PMDK | ≥ 5× |", "lrlrl");
    struct {
        const char *title;
        int w;
        const char *key;
        bool is_time;
    } rows[] = {
        {"1. churn", W_CHURN, "ops_per_s", false},
        {"2. mixed", W_MIXED, "ops_per_s", false},
        {"3. list build", W_LIST, "ops_per_s", false},
        {"3. list reopen", W_LIST, "reopen_s", true},
        {"3. list traverse", W_LIST, "traverse_s", true},
        {"4. fragmentation (speed)", W_FRAG, "ops_per_s", false},
        {"5. two threads", W_THREADS, "ops_per_s", false},
    };
    int n_rows = (int)(sizeof rows / sizeof rows[0]);
    struct peer_tally boost = {.min = 3}, pmdk = {.min = 5};
    for (int i = 0; i < n_rows; i++) {
        double fv = med(rows[i].w, f, rows[i].key, 1);
        double rb = rows[i].is_time ? med(rows[i].w, A_BOOST, rows[i].key, 1) / fv
                                    : fv / med(rows[i].w, A_BOOST, rows[i].key, 1);
        double rp = rows[i].is_time ? med(rows[i].w, A_PMDK, rows[i].key, 1) / fv
                                    : fv / med(rows[i].w, A_PMDK, rows[i].key, 1);
        const char *mb = tally(&boost, rb, rows[i].title + 3);
        const char *mp = tally(&pmdk, rp, rows[i].title + 3);
        fprintf(o, "| %s | %s | %s | %s | %s |\n", rows[i].title, ratio(rb), mb, ratio(rp), mp);
    }
    fprintf(o, "\n### Targets (issue 7)\n\n");
    table_head(o, "| target | measured | status |", "lll");
    char m[512];
    double g1 = med(W_CHURN, A_GLIBC, "ops_per_s", 1), b1 = med(W_CHURN, A_BOOST, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s of glibc", ratio(churn / g1));
    target(o, "small-object churn ≥ 0.5× glibc", m, churn / g1, 0.5, false);
    snprintf(m, sizeof m, "%s Boost", ratio(churn / b1));
    target(o, "small-object churn ≥ 5× Boost", m, churn / b1, 5, false);
    double g2 = med(W_MIXED, A_GLIBC, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s of glibc", ratio(mixed / g2));
    target(o, "mixed sizes ≥ 0.7× glibc", m, mixed / g2, 0.7, false);
    snprintf(m, sizeof m, "below in %d of %d: %s", pmdk.below, pmdk.rated,
             pmdk.below ? pmdk.below_list : "none");
    target(o, "every workload ≥ 5× PMDK", m, pmdk.rated ? -pmdk.below : NAN, 0, false);
    snprintf(m, sizeof m, "below in %d of %d: %s", boost.below, boost.rated,
             boost.below ? boost.below_list : "none");
    target(o, "every workload ≥ 3× Boost", m, boost.rated ? -boost.below : NAN, 0, false);
    double two = med(W_THREADS, f, "ops_per_s", 1);
    snprintf(m, sizeof m, "%s", ratio(two / churn));
    target(o, "two threads ≥ 1.6× one thread", m, two / churn, 1.6, false);
    double frag = med(W_FRAG, f, "footprint_bytes", 1) / med(W_FRAG, f, "live_bytes", 1);
    snprintf(m, sizeof m, "%s", num(frag));
    target(o, "fragmentation (file ÷ live) ≤ 1.10", m, frag, 1.10, true);
    double rs = med(W_REOPEN, f, "small_reopen_s", 1e3),
           rl = med(W_REOPEN, f, "large_reopen_s", 1e3);
    double fl = med(W_REOPEN, f, "large_file_bytes", 1.0 / 1073741824);
    snprintf(m, sizeof m, "%s ms (%s MiB arena), %s ms (%s GiB arena)", num(rs),
             num(med(W_REOPEN, f, "small_file_bytes", 1.0 / 1048576)), num(rl), num(fl));
    /* "well under 1 ms, independent of size": both under 0.5 ms. */
    target(o, "clean reopen well under 1 ms, independent of size (read as: both < 0.5 ms)", m,
           isnan(rs) || isnan(rl) ? NAN : (rs > rl ? rs : rl), 0.5, true);
    double rec = med(W_REOPEN, f, "large_recover_s", 1) / fl;
    snprintf(m, sizeof m, "%s s per GiB (%s ms for %s GiB)", num(rec),
             num(med(W_REOPEN, f, "large_recover_s", 1e3)), num(fl));
    target(o, "recovery ≤ 1 s per GiB", m, rec, 1, true);
    fprintf(o, "\n");
    commit_targets(o);
    shapes_targets(o);
    procs_targets(o);
}

static void write_report(FILE *o)
{
    fprintf(o, "## Results\n\n");
    fprintf(o,
            "Scale `%s`; medians of %d run%s (range = fastest–slowest run); seeds %llu–%llu. "
            "\"vs X\" = this allocator's throughput ÷ X's (higher is faster).\n\n",
            opt.P->scale, opt.runs, opt.runs == 1 ? "" : "s", opt.seed,
            opt.seed + (unsigned long long)opt.runs - 1);
    fprintf(o, "| allocator | kind | library |\n| --- | --- | --- |\n");
    for (int a = 0; a < N_ARMS; a++) {
        if (!opt.arm_on[a])
            continue;
        const char *argv[] = {opt.worker, "--alloc", arm_name[a], "--version", NULL};
        char out[256];
        int st = spawn_capture(argv, out, sizeof out);
        out[strcspn(out, "\n")] = 0;
        fprintf(o, "| %s | %s | %s |\n", arm_title[a],
                arm_persistent[a] ? "persistent" : "volatile",
                WIFEXITED(st) && WEXITSTATUS(st) == 0 ? out : "?");
    }
    fprintf(o, "\n");
    if (opt.wl_on[W_CHURN])
        section_churn(o, opt.P);
    if (opt.wl_on[W_MIXED])
        section_mixed(o, opt.P);
    if (opt.wl_on[W_LIST])
        section_list(o, opt.P, W_LIST);
    if (opt.wl_on[W_FRAG])
        section_frag(o, opt.P, W_FRAG);
    if (opt.wl_on[W_THREADS])
        section_threads(o, opt.P, W_THREADS);
    if (on(W_REOPEN, A_FMALLOC))
        section_reopen(o);
    commit_report(o);
    shapes_report(o);
    procs_report(o);
    bool allocator_workloads = false;
    for (int w = 0; w < N_WORKLOADS; w++)
        allocator_workloads |= opt.wl_on[w] && !commit_workload(w);
    if (opt.arm_on[A_FMALLOC] && allocator_workloads)
        section_targets(o);
    else if (opt.arm_on[A_FMALLOC])
        commit_targets(o);
    if (failures)
        fprintf(o, "**%d of %d worker runs failed**; see the log.\n\n", failures, cases);
}

/* Median Mops/s per workload (rows) and arm (columns), for gnuplot. */
static void write_tsv(FILE *o)
{
    fprintf(o, "workload");
    for (int a = 0; a < N_ARMS; a++)
        if (opt.arm_on[a])
            fprintf(o, "\t%s", arm_name[a]);
    fprintf(o, "\n");
    struct {
        const char *label;
        int w;
    } rows[] = {{"churn", W_CHURN},
                {"mixed", W_MIXED},
                {"list-build", W_LIST},
                {"fragmentation", W_FRAG},
                {"2-threads", W_THREADS},
                {"medium", W_MEDIUM},
                {"medium-2t", W_MEDIUM2},
                {"prod/cons", W_PRODCONS}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!opt.wl_on[rows[i].w])
            continue;
        fprintf(o, "%s", rows[i].label);
        for (int a = 0; a < N_ARMS; a++) {
            if (!opt.arm_on[a])
                continue;
            double v = med(rows[i].w, a, "ops_per_s", 1e-6);
            if (isnan(v))
                fprintf(o, "\t?");
            else
                fprintf(o, "\t%.6g", v);
        }
        fprintf(o, "\n");
    }
}

/* ---- main ------------------------------------------------------------------ */

/* Writes `path` with `write` (nothing when path is NULL); false, having
 * said why, when the file cannot be created. */
static bool write_file(const char *path, void (*print)(FILE *))
{
    if (!path)
        return true;
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return false;
    }
    print(f);
    fclose(f);
    return true;
}

static void find_worker(void)
{
    char self[sizeof opt.worker - 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(opt.worker, sizeof opt.worker, "./bench_worker");
        return;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    snprintf(opt.worker, sizeof opt.worker, "%s/bench_worker", self);
}

int main(int argc, char **argv)
{
    opt.P = params_for("full");
    opt.runs = 0;
    opt.seed = 42;
    opt.dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    opt.disk_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
    for (int a = 0; a < N_ARMS; a++)
        opt.arm_on[a] = true;
    for (int w = 0; w < N_WORKLOADS; w++)
        opt.wl_on[w] = true;
    find_worker();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--smoke") == 0 || strcmp(a, "--quick") == 0) {
            opt.P = params_for(a + 2);
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--runs") == 0)
            opt.runs = atoi(v);
        else if (strcmp(a, "--dir") == 0)
            opt.dir = v;
        else if (strcmp(a, "--disk-dir") == 0)
            opt.disk_dir = v;
        else if (strcmp(a, "--seed") == 0)
            opt.seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--arms") == 0) {
            if (!parse_list(v, arm_name, N_ARMS, opt.arm_on))
                usage();
        } else if (strcmp(a, "--workloads") == 0) {
            if (!parse_list(v, wl_name, N_WORKLOADS, opt.wl_on))
                usage();
        } else if (strcmp(a, "--worker") == 0)
            snprintf(opt.worker, sizeof opt.worker, "%s", v);
        else if (strcmp(a, "--md") == 0)
            opt.md = v;
        else if (strcmp(a, "--tsv") == 0)
            opt.tsv = v;
        else
            usage();
    }
    bool smoke = strcmp(opt.P->scale, "smoke") == 0, quick = strcmp(opt.P->scale, "quick") == 0;
    if (opt.runs == 0)
        opt.runs = smoke ? 1 : quick ? 3 : 5;
    if (opt.runs < 1 || opt.runs > MAX_RUNS)
        usage();
    opt.timeout = smoke ? 120 : quick ? 600 : 1800;
    if (access(opt.worker, X_OK) != 0) {
        fprintf(stderr, "bench_driver: no worker at %s (use --worker)\n", opt.worker);
        return 1;
    }

    bool reopen = on(W_REOPEN, A_FMALLOC);
    double t0 = (double)time(NULL);
    if (reopen)
        reopen_setup();
    commit_setup();
    for (int run = 0; run < opt.runs; run++) {
        for (int w = 0; w < N_WORKLOADS; w++) {
            if (!opt.wl_on[w])
                continue;
            if (w == W_REOPEN) {
                if (reopen)
                    reopen_run(run);
                continue;
            }
            if (commit_workload(w)) {
                commit_run(run, w);
                continue;
            }
            int order[N_ARMS], n = 0; /* the arms asked for that can run w */
            for_each_arm(w, a)
                order[n++] = a;
            for (int k = 0; k < n; k++)
                run_case(run, w, order[(k + run) % n]);
        }
    }
    if (reopen)
        for (int k = 0; k < 2; k++)
            unlink(reopen_file[k]);
    fprintf(stderr, "bench_driver: %d worker runs, %d failed, %.0f s\n", cases, failures,
            (double)time(NULL) - t0);

    write_report(stdout);
    if (!write_file(opt.md, write_report) || !write_file(opt.tsv, write_tsv))
        return 1;
    return failures ? 1 : 0;
}
