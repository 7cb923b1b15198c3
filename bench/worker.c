/*
 * worker.c -- bench_worker: one allocator, one workload, one process.
 *
 *   bench_worker --alloc NAME --workload W --seed S [--scale full|quick|smoke]
 *                [--file PATH] [--phase P] [--threads N] [--timeout SECONDS]
 *                [--arena-bytes N] [--objects N]
 *   bench_worker --alloc NAME --version
 *   bench_worker --store durable|sync|lmdb|sqlite --workload commit|dirty
 *                --seed S --scale SCALE --file PATH [--txn N] [--arena-bytes N]
 *   bench_worker --store NAME --version      (exit status 3: not built)
 *
 * Workload "between" is workload 1 on the fmalloc arm opened with
 * --fm-mode durable (FM_DURABLE, no commit in the timed loop) or default.
 * Workloads "procs" and "procs2" (fmalloc with FM_SHARED, or boost only)
 * fork one or two processes that churn on one heap in the file.
 *
 * Prints one line "RESULT key=value ..." on stdout and exits 0, or says
 * what went wrong on stderr and exits 1.  bench_driver runs it (see
 * driver.c); it can be run by hand too.
 *
 * Every workload draws its whole operation sequence from the seed before
 * the clock starts (into harness memory from mmap, outside the heap under
 * test), so every arm executes the same operations and the timed loop
 * holds nothing but the allocator calls and the few stores and loads that
 * check each block's content.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

#include "bench.h"
#include "params.h"
#include "store.h"

/* ---- helpers --------------------------------------------------------------- */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool result_started;

void bench_result(const char *key, double value)
{
    printf("%s%s=%.17g", result_started ? " " : "RESULT ", key, value);
    result_started = true;
}

void bench_result_end(void)
{
    printf("\n");
    fflush(stdout);
    result_started = false;
}

void bench_die(const char *what)
{
    fprintf(stderr, "bench_worker: %s\n", what);
    exit(1);
}

/* Harness memory: anonymous, populated, never from the allocator under test. */
void *bench_harness_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED)
        bench_die("out of harness memory");
    return p;
}

void bench_harness_free(void *p, size_t bytes)
{
    munmap(p, bytes ? bytes : 1);
}

/* A kB figure ("VmRSS:", "VmHWM:") from /proc/self/status, in bytes. */
static double status_bytes(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0)
            v = strtod(line + n, NULL) * 1024;
    if (f)
        fclose(f);
    return v;
}

int bench_mapping_private(const void *addr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4352];
    int private_map = -1;
    while (f && private_map < 0 && fgets(line, sizeof line, f)) {
        unsigned long lo;
        char perms[8];
        if (sscanf(line, "%lx-%*x %7s", &lo, perms) == 2 && lo == (unsigned long)addr)
            private_map = perms[3] == 'p';
    }
    if (f)
        fclose(f);
    return private_map;
}

/* Resident bytes of every mapping of `path` in this process (/proc/self/smaps). */
static double mapped_rss_bytes(const char *path)
{
    char real[4096];
    if (!realpath(path, real))
        return -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[4352];
    bool ours = false;
    double rss = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char name[4352];
        int field = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &field) == 2 && field > 0) {
            name[0] = 0;
            sscanf(line + field, "%4351[^\n]", name);
            ours = strcmp(name, real) == 0;
        } else if (ours && strncmp(line, "Rss:", 4) == 0) {
            rss += strtod(line + 4, NULL) * 1024;
        }
    }
    if (f)
        fclose(f);
    return rss;
}

static void file_sizes(const char *path, double *file_bytes, double *disk_bytes)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        *file_bytes = *disk_bytes = -1;
        return;
    }
    *file_bytes = (double)st.st_size;
    *disk_bytes = (double)st.st_blocks * 512;
}

static void report_stats(const struct bench_alloc *A)
{
    struct bench_heap_stats st = {-1, -1};
    if (A->stats && A->stats(&st) != 0)
        bench_die("heap stats failed");
    bench_result("blocks", st.blocks);
    bench_result("heap_bytes", st.heap_bytes);
}

/* The content stamp of slot s holding a block of `size` bytes. */
static inline uint64_t stamp(uint64_t s, uint64_t size)
{
    return (s * 0x9e3779b97f4a7c15ull) ^ (size << 1) ^ 1;
}

static inline void store64(void *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static inline uint64_t load64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* ---- 1 and 5: small-object churn ------------------------------------------- */

struct churn_op {
    uint32_t slot;
    uint32_t size;
};

struct churn_job {
    const struct bench_alloc *A;
    uint32_t slots, ops;
    struct churn_op *op;
    void **slot;
    uint64_t bad; /* blocks whose stamp changed */
    bool failed;  /* an allocation returned NULL */
    pthread_barrier_t *start;
    double t_start, t_end; /* this thread's own clock readings */
    double cpu_s;          /* CPU time this thread used in the loop */
};

/* Issue 17's medium shape: density proportional to 1/size^2 over
 * [MEDIUM_MIN_SIZE, MEDIUM_MAX_SIZE], drawn by inverting its CDF. */
static uint32_t inverse_square(uint64_t *s)
{
    const double lo = 1.0 / MEDIUM_MIN_SIZE, hi = 1.0 / MEDIUM_MAX_SIZE;
    double u = (double)(bench_rng(s) >> 11) * 0x1.0p-53;
    uint32_t size = (uint32_t)(1.0 / (lo - u * (lo - hi)));
    return size < MEDIUM_MIN_SIZE ? MEDIUM_MIN_SIZE : size > MEDIUM_MAX_SIZE ? MEDIUM_MAX_SIZE : size;
}

static void churn_prepare(struct churn_job *j, const struct bench_alloc *A, uint64_t seed,
                          uint32_t slots, uint32_t ops, bool medium)
{
    *j = (struct churn_job){.A = A, .slots = slots, .ops = ops};
    j->op = bench_harness_alloc((size_t)ops * sizeof *j->op);
    j->slot = bench_harness_alloc((size_t)slots * sizeof *j->slot);
    uint64_t s = seed;
    for (uint32_t i = 0; i < ops; i++) {
        j->op[i].slot = bench_below(&s, slots);
        j->op[i].size = medium ? inverse_square(&s) : bench_range(&s, CHURN_MIN_SIZE, CHURN_MAX_SIZE);
    }
}

/* Each op picks a slot: free its block if it holds one, else allocate one. */
static void churn_loop(struct churn_job *j)
{
    const struct bench_alloc *A = j->A;
    void **slot = j->slot;
    uint64_t bad = 0;
    for (uint32_t i = 0; i < j->ops; i++) {
        uint32_t s = j->op[i].slot;
        void *p = slot[s];
        if (p) {
            bad += load64(p) != stamp(s, 0);
            A->free(p);
            slot[s] = NULL;
        } else {
            p = A->malloc(j->op[i].size);
            if (!p) {
                j->failed = true;
                break;
            }
            store64(p, stamp(s, 0));
            slot[s] = p;
        }
    }
    j->bad = bad;
}

static void churn_release(struct churn_job *j)
{
    for (uint32_t s = 0; s < j->slots; s++)
        if (j->slot[s])
            j->A->free(j->slot[s]);
    bench_harness_free(j->op, (size_t)j->ops * sizeof *j->op);
    bench_harness_free(j->slot, (size_t)j->slots * sizeof *j->slot);
}

double bench_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *churn_thread(void *arg)
{
    struct churn_job *j = arg;
    pthread_barrier_wait(j->start);
    double c0 = bench_thread_cpu();
    j->t_start = bench_now();
    churn_loop(j);
    j->t_end = bench_now();
    j->cpu_s = bench_thread_cpu() - c0;
    return NULL;
}

static uint64_t churn_capacity(uint32_t slots, uint32_t max_size, unsigned threads)
{
    return (uint64_t)threads * slots * max_size * 4 + (32ull << 20);
}

/* Workloads 1 and 5, and issue 17's medium sizes (`medium`: its slots,
 * operations and sizes instead of workload 1's). */
static int run_churn(const struct bench_alloc *A, const struct params *P, const char *path,
                     uint64_t seed, unsigned threads, bool medium)
{
    uint32_t slots = medium ? P->medium_slots : P->churn_slots;
    uint32_t nops = medium ? P->medium_ops : P->churn_ops;
    if (A->open(path, churn_capacity(slots, medium ? MEDIUM_MAX_SIZE : CHURN_MAX_SIZE, threads),
                true))
        return 1;
    struct churn_job job[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, threads + 1);
    for (unsigned t = 0; t < threads; t++) {
        /* Thread 0 runs exactly workload 1's sequence. */
        churn_prepare(&job[t], A, seed + t * 0x1000193ull, slots, nops, medium);
        job[t].start = &start;
    }
    double t0, t1;
    if (threads == 1) {
        double c0 = bench_thread_cpu();
        t0 = bench_now();
        churn_loop(&job[0]);
        t1 = bench_now();
        job[0].cpu_s = bench_thread_cpu() - c0;
    } else {
        /* The threads read the clock themselves: with 2 cores the main
         * thread may not run again until they are done. */
        pthread_t tid[MAX_THREADS];
        for (unsigned t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, churn_thread, &job[t]))
                bench_die("pthread_create failed");
        pthread_barrier_wait(&start);
        for (unsigned t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
        t0 = job[0].t_start;
        t1 = job[0].t_end;
        for (unsigned t = 1; t < threads; t++) {
            t0 = job[t].t_start < t0 ? job[t].t_start : t0;
            t1 = job[t].t_end > t1 ? job[t].t_end : t1;
        }
    }
    uint64_t bad = 0, ops = 0;
    double cpu = 0;
    for (unsigned t = 0; t < threads; t++) {
        if (job[t].failed)
            bench_die("allocation failed during churn");
        bad += job[t].bad;
        ops += job[t].ops;
        cpu += job[t].cpu_s;
    }
    if (bad) {
        fprintf(stderr, "bench_worker: %s: %llu blocks lost their content\n", A->name,
                (unsigned long long)bad);
        return 1;
    }
    bench_result("ops", (double)ops);
    bench_result("secs", t1 - t0);
    bench_result("ops_per_s", (double)ops / (t1 - t0));
    bench_result("threads", threads);
    /* Below 1: the threads waited, for a lock or for a core another
     * process had. */
    bench_result("cpu_share", cpu / (threads * (t1 - t0)));
    if (A->mapping) /* FM_DURABLE maps the arena private ("between") */
        bench_result("private_map", bench_mapping_private(A->mapping()));
    for (unsigned t = 0; t < threads; t++)
        churn_release(&job[t]);
    pthread_barrier_destroy(&start);
    bench_result_end();
    return A->close();
}

/* ---- 13: processes sharing one heap (issue 18) ----------------------------- */

/* What the processes of workloads procs and procs2 share: an anonymous
 * MAP_SHARED mapping made before the fork. */
struct procs_board {
    atomic_uint ready; /* children that have opened the heap and drawn their ops */
    atomic_int go;     /* 0 wait, 1 start, -1 a child failed: give up */
    struct {
        double t_start, t_end, cpu_s;
    } child[MAX_PROCS];
};

/* Child k: open the heap itself (a heap inherited through fork is not
 * usable by fmalloc, nor meant to be by Boost), draw its own sequence,
 * wait for the others, run workload 1's loop over its own slots. */
static _Noreturn void procs_child(const struct bench_alloc *A, const struct params *P,
                                  const char *path, uint64_t seed, struct procs_board *b,
                                  unsigned k)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a worker killed by its timeout takes us along */
    if (getppid() == 1 || A->open(path, 0, false))
        _exit(1);
    struct churn_job j;
    churn_prepare(&j, A, seed + k * 0x1000193ull, PROCS_SLOTS, P->churn_ops, false);
    atomic_fetch_add(&b->ready, 1);
    int go;
    while ((go = atomic_load(&b->go)) == 0)
        sched_yield();
    if (go < 0)
        _exit(1);
    double c0 = bench_thread_cpu();
    b->child[k].t_start = bench_now();
    churn_loop(&j);
    b->child[k].t_end = bench_now();
    b->child[k].cpu_s = bench_thread_cpu() - c0;
    if (j.failed || j.bad) {
        fprintf(stderr, "bench_worker: %s: process %u: %s\n", A->name, k,
                j.failed ? "allocation failed" : "blocks lost their content");
        _exit(1);
    }
    churn_release(&j);
    _exit(A->close() ? 1 : 0);
}

/* Until every child is ready: false if one ended first (it failed). */
static bool procs_wait_ready(struct procs_board *b, unsigned procs)
{
    while (atomic_load(&b->ready) < procs) {
        int status;
        if (waitpid(-1, &status, WNOHANG) != 0)
            return false;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return true;
}

/* `procs` processes churn small blocks on one heap, created here and
 * closed before the fork; aggregate throughput as in workload 5. */
static int run_procs(const struct bench_alloc *A, const struct params *P, const char *path,
                     uint64_t seed, unsigned procs)
{
    if (strcmp(A->name, "fmalloc") != 0 && strcmp(A->name, "boost") != 0)
        bench_die("only fmalloc and boost can share one heap between processes");
    bench_fmalloc_shared(true);
    if (A->open(path, churn_capacity(PROCS_SLOTS, CHURN_MAX_SIZE, procs), true) || A->close())
        return 1;
    struct procs_board *b =
        mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        bench_die("cannot map the processes' board");
    atomic_init(&b->ready, 0);
    atomic_init(&b->go, 0);
    fflush(NULL);
    for (unsigned k = 0; k < procs; k++) {
        pid_t pid = fork();
        if (pid < 0)
            bench_die("fork failed");
        if (pid == 0)
            procs_child(A, P, path, seed, b, k);
    }
    bool ok = procs_wait_ready(b, procs);
    atomic_store(&b->go, ok ? 1 : -1);
    int status;
    while (wait(&status) > 0)
        ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        fprintf(stderr, "bench_worker: %s: a process of %u failed\n", A->name, procs);
        return 1;
    }
    double t0 = b->child[0].t_start, t1 = b->child[0].t_end, cpu = 0;
    for (unsigned k = 0; k < procs; k++) {
        t0 = b->child[k].t_start < t0 ? b->child[k].t_start : t0;
        t1 = b->child[k].t_end > t1 ? b->child[k].t_end : t1;
        cpu += b->child[k].cpu_s;
    }
    double ops = (double)procs * P->churn_ops;
    bench_result("ops", ops);
    bench_result("secs", t1 - t0);
    bench_result("ops_per_s", ops / (t1 - t0));
    bench_result("procs", procs);
    bench_result("cpu_share", cpu / (procs * (t1 - t0)));
    bench_result_end();
    munmap(b, sizeof *b);
    return 0;
}

/* ---- 2: mixed sizes with realloc ------------------------------------------- */

#define MIXED_REALLOC 0x80000000u /* in mixed_op.size: this op is a realloc */

struct mixed_op {
    uint32_t slot;
    uint32_t size; /* | MIXED_REALLOC */
};

/* Log-uniform in [MIXED_MIN_SIZE, MIXED_MAX_SIZE]. */
static uint32_t log_uniform(uint64_t *s)
{
    double lo = log2(MIXED_MIN_SIZE), hi = log2(MIXED_MAX_SIZE);
    double u = (double)(bench_rng(s) >> 11) * 0x1.0p-53;
    uint32_t v = (uint32_t)exp2(lo + u * (hi - lo));
    return v < MIXED_MIN_SIZE ? MIXED_MIN_SIZE : v > MIXED_MAX_SIZE ? MIXED_MAX_SIZE : v;
}

/* The stamps sit in the first and last 8 bytes of every block. */
static inline void mixed_mark(void *p, uint32_t s, uint32_t size)
{
    store64(p, stamp(s, size));
    store64((char *)p + size - 8, stamp(s, size));
}

static int run_mixed(const struct bench_alloc *A, const struct params *P, const char *path,
                     uint64_t seed)
{
    uint32_t slots = P->mixed_slots, ops = P->mixed_ops;
    /* Expected live ~ slots * 7.9 KiB; leave fixed-size arms plenty of room. */
    if (A->open(path, (uint64_t)slots * 40 * 1024 + (64ull << 20), true))
        return 1;
    struct mixed_op *op = bench_harness_alloc((size_t)ops * sizeof *op);
    void **slot = bench_harness_alloc((size_t)slots * sizeof *slot);
    uint32_t *size = bench_harness_alloc((size_t)slots * sizeof *size);
    uint64_t s = seed;
    for (uint32_t i = 0; i < ops; i++) {
        op[i].slot = bench_below(&s, slots);
        op[i].size = log_uniform(&s);
        if (bench_below(&s, 10) == 0)
            op[i].size |= MIXED_REALLOC;
    }
    uint64_t bad = 0, reallocs = 0, moved = 0;
    double t0 = bench_now();
    for (uint32_t i = 0; i < ops; i++) {
        uint32_t k = op[i].slot, n = op[i].size & ~MIXED_REALLOC;
        void *p = slot[k];
        if (op[i].size & MIXED_REALLOC) {
            uint32_t old = size[k];
            void *q = A->realloc(p, n);
            if (!q)
                bench_die("realloc failed during mixed");
            if (p) {
                bad += load64(q) != stamp(k, old);
                if (n >= old)
                    bad += load64((char *)q + old - 8) != stamp(k, old);
                moved += q != p;
            }
            mixed_mark(q, k, n);
            slot[k] = q;
            size[k] = n;
            reallocs++;
        } else if (p) {
            bad += load64(p) != stamp(k, size[k]);
            bad += load64((char *)p + size[k] - 8) != stamp(k, size[k]);
            A->free(p);
            slot[k] = NULL;
        } else {
            p = A->malloc(n);
            if (!p)
                bench_die("malloc failed during mixed");
            mixed_mark(p, k, n);
            slot[k] = p;
            size[k] = n;
        }
    }
    double t1 = bench_now();
    if (bad) {
        fprintf(stderr, "bench_worker: %s: %llu content checks failed\n", A->name,
                (unsigned long long)bad);
        return 1;
    }
    bench_result("ops", ops);
    bench_result("secs", t1 - t0);
    bench_result("ops_per_s", ops / (t1 - t0));
    bench_result("reallocs", (double)reallocs);
    bench_result("moved", (double)moved);
    for (uint32_t k = 0; k < slots; k++)
        if (slot[k])
            A->free(slot[k]);
    bench_result_end();
    bench_harness_free(op, (size_t)ops * sizeof *op);
    bench_harness_free(slot, (size_t)slots * sizeof *slot);
    bench_harness_free(size, (size_t)slots * sizeof *size);
    return A->close();
}

/* ---- 3: persistent list ---------------------------------------------------- */

/* 32 bytes: a link cell (PMEMoid-sized, see bench.h), a value, its check. */
struct list_node {
    uint64_t next[2];
    uint64_t value;
    uint64_t check;
};

struct list_root {
    uint64_t head[2];
    uint64_t count;
    uint64_t sum;
};

static uint64_t list_capacity(const struct params *P)
{
    return (uint64_t)P->list_nodes * 128 + (32ull << 20);
}

static int list_build(const struct bench_alloc *A, const struct params *P, uint64_t seed)
{
    struct list_root *root = A->root();
    uint64_t *link = root->head, sum = 0, s = seed;
    for (uint32_t i = 0; i < P->list_nodes; i++) {
        struct list_node *n = A->alloc_to(link, sizeof *n);
        if (!n)
            bench_die("allocation failed while building the list");
        n->next[0] = n->next[1] = 0;
        n->value = bench_rng(&s);
        n->check = ~n->value;
        A->persist(n, sizeof *n);
        sum += n->value;
        link = n->next;
    }
    root->count = P->list_nodes;
    root->sum = sum;
    A->persist(root, sizeof *root);
    return 0;
}

static int list_traverse(const struct bench_alloc *A)
{
    const struct list_root *root = A->root();
    uint64_t count = 0, sum = 0, bad = 0;
    for (const struct list_node *n = A->pointer_at(root->head[1]); n;
         n = A->pointer_at(n->next[1])) {
        count++;
        sum += n->value;
        bad += n->check != ~n->value;
    }
    if (count != root->count || sum != root->sum || bad) {
        fprintf(stderr, "bench_worker: %s: list has %llu nodes (want %llu), %llu bad\n", A->name,
                (unsigned long long)count, (unsigned long long)root->count,
                (unsigned long long)bad);
        return 1;
    }
    return 0;
}

/* Volatile arms: build and traverse in one process. */
static int run_list_volatile(const struct bench_alloc *A, const struct params *P, uint64_t seed)
{
    if (A->open(NULL, 0, true))
        return 1;
    double t0 = bench_now();
    list_build(A, P, seed);
    double t1 = bench_now();
    if (list_traverse(A))
        return 1;
    double t2 = bench_now();
    bench_result("nodes", P->list_nodes);
    bench_result("build_s", t1 - t0);
    bench_result("ops_per_s", P->list_nodes / (t1 - t0));
    bench_result("traverse_s", t2 - t1);
    bench_result_end();
    return A->close();
}

/* Persistent arms, phase "build": create, build, close. */
static int run_list_build(const struct bench_alloc *A, const struct params *P, const char *path,
                          uint64_t seed)
{
    if (A->open(path, list_capacity(P), true))
        return 1;
    double t0 = bench_now();
    list_build(A, P, seed);
    double t1 = bench_now();
    int err = A->close();
    double t2 = bench_now();
    if (err)
        return 1;
    double file_bytes, disk_bytes;
    file_sizes(path, &file_bytes, &disk_bytes);
    bench_result("nodes", P->list_nodes);
    bench_result("build_s", t1 - t0);
    bench_result("ops_per_s", P->list_nodes / (t1 - t0));
    bench_result("close_s", t2 - t1);
    bench_result("file_bytes", file_bytes);
    bench_result("disk_bytes", disk_bytes);
    bench_result_end();
    return 0;
}

/* Persistent arms, phase "reopen": open in this fresh process, traverse. */
static int run_list_reopen(const struct bench_alloc *A, const char *path)
{
    double t0 = bench_now();
    if (A->open(path, 0, false))
        return 1;
    double t1 = bench_now();
    if (list_traverse(A))
        return 1;
    double t2 = bench_now();
    bench_result("reopen_s", t1 - t0);
    bench_result("traverse_s", t2 - t1);
    report_stats(A);
    bench_result_end();
    return A->close();
}

/* ---- 4: fragmentation ------------------------------------------------------ */

static int run_frag(const struct bench_alloc *A, const struct params *P, const char *path,
                    uint64_t seed)
{
    uint32_t n1 = P->frag_first, n2 = P->frag_second, half = n1 / 2;
    uint64_t worst = (uint64_t)n1 * FRAG_MAX_FIRST + (uint64_t)n2 * FRAG_MAX_SECOND;
    if (A->open(path, worst + worst / 4 + (64ull << 20), true))
        return 1;
    void **blk = bench_harness_alloc((size_t)(n1 + n2) * sizeof *blk);
    uint32_t *size = bench_harness_alloc((size_t)(n1 + n2) * sizeof *size);
    uint32_t *order = bench_harness_alloc((size_t)n1 * sizeof *order);
    uint64_t s = seed;
    for (uint32_t i = 0; i < n1; i++)
        size[i] = bench_range(&s, FRAG_MIN_SIZE, FRAG_MAX_FIRST);
    for (uint32_t i = 0; i < n2; i++)
        size[n1 + i] = bench_range(&s, FRAG_MIN_SIZE, FRAG_MAX_SECOND);
    for (uint32_t i = 0; i < n1; i++)
        order[i] = i;
    for (uint32_t i = n1 - 1; i > 0; i--) { /* Fisher-Yates: a random half */
        uint32_t j = bench_below(&s, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    double rss0 = status_bytes("VmRSS:");
    double t0 = bench_now();
    for (uint32_t i = 0; i < n1 + n2; i++) {
        if (i == n1) /* between the phases: free the random half */
            for (uint32_t k = 0; k < half; k++) {
                A->free(blk[order[k]]);
                blk[order[k]] = NULL;
            }
        if (!(blk[i] = A->malloc(size[i])))
            bench_die("allocation failed during frag");
        store64(blk[i], stamp(i, size[i]));
    }
    double t1 = bench_now();
    double live = 0;
    uint64_t bad = 0;
    for (uint32_t i = 0; i < n1 + n2; i++)
        if (blk[i]) {
            live += size[i];
            bad += load64(blk[i]) != stamp(i, size[i]);
        }
    if (bad)
        bench_die("content check failed during frag");
    double ops = (double)n1 + half + n2;
    bench_result("ops", ops);
    bench_result("secs", t1 - t0);
    bench_result("ops_per_s", ops / (t1 - t0));
    bench_result("live_bytes", live);
    if (A->persistent) {
        double file_bytes, disk_bytes, rss = mapped_rss_bytes(path);
        file_sizes(path, &file_bytes, &disk_bytes);
        bench_result("file_bytes", file_bytes);
        bench_result("disk_bytes", disk_bytes);
        bench_result("rss_bytes", rss);
        /* A PMDK pool is allocated whole at creation: its file blocks say
         * nothing about the heap, the pages it touched do. */
        bool prealloc = disk_bytes >= 0.98 * file_bytes && strcmp(A->name, "fmalloc") != 0;
        bench_result("footprint_bytes", prealloc ? rss : disk_bytes);
        bench_result("footprint_is_rss", prealloc);
    } else {
        double hwm = status_bytes("VmHWM:");
        bench_result("rss_bytes", hwm - rss0);
        bench_result("footprint_bytes", hwm - rss0);
        bench_result("footprint_is_rss", 1);
    }
    report_stats(A);
    bench_result_end();
    for (uint32_t i = 0; i < n1 + n2; i++)
        if (blk[i])
            A->free(blk[i]);
    return A->close();
}

/* ---- main ------------------------------------------------------------------ */

static const struct bench_alloc *const arms[] = {
    &bench_alloc_glibc,   &bench_alloc_jemalloc, &bench_alloc_mimalloc,
    &bench_alloc_fmalloc, &bench_alloc_boost,    &bench_alloc_pmdk,
};

/*
 * The jemalloc and mimalloc arms need their library preloaded, the PMDK arm
 * needs PMEM_IS_PMEM_FORCE=1 before libpmem initialises: set what is
 * missing and execute this program again, once.
 */
static void ensure_environment(const char *arm, char **argv)
{
    const char *preload = strcmp(arm, "jemalloc") == 0   ? "libjemalloc.so.2"
                          : strcmp(arm, "mimalloc") == 0 ? "libmimalloc.so.2"
                                                         : NULL;
    const char *probe = preload ? (preload[3] == 'j' ? "mallctl" : "mi_malloc") : NULL;
    bool need = (probe && !dlsym(RTLD_DEFAULT, probe)) ||
                (strcmp(arm, "pmdk") == 0 &&
                 !(getenv("PMEM_IS_PMEM_FORCE") && strcmp(getenv("PMEM_IS_PMEM_FORCE"), "1") == 0));
    if (!need)
        return;
    if (getenv("BENCH_WORKER_REEXEC"))
        bench_die("cannot set up the environment for this arm");
    if (preload)
        setenv("LD_PRELOAD", preload, 1);
    if (strcmp(arm, "pmdk") == 0)
        setenv("PMEM_IS_PMEM_FORCE", "1", 1);
    setenv("BENCH_WORKER_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    perror("bench_worker: execv /proc/self/exe");
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_worker --alloc glibc|jemalloc|mimalloc|fmalloc|boost|pmdk\n"
                    "         --workload churn|mixed|list|frag|threads|reopen|medium|medium2|prodcons|\n"
                    "                    bigreuse|procs|procs2 --seed S\n"
                    "         [--scale full|quick|smoke] [--file PATH] [--phase P] [--threads N]\n"
                    "         [--arena-bytes N] [--objects N] [--timeout SECONDS]\n"
                    "         [--fm-mode default|durable]\n"
                    "       bench_worker --alloc NAME --version\n"
                    "       bench_worker --store durable|sync|lmdb|sqlite --workload commit|dirty\n"
                    "         --seed S --scale SCALE --file PATH [--txn N] [--arena-bytes N]\n"
                    "       bench_worker --store NAME --version\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *alloc = NULL, *workload = NULL, *scale = "full", *file = NULL, *phase = "";
    const char *store = NULL, *fm_mode = "default";
    uint64_t seed = 1, arena_bytes = 0, objects = 0, txn = 0;
    unsigned threads = 2, timeout = 0;
    bool version = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--version") == 0) {
            version = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--alloc") == 0)
            alloc = v;
        else if (strcmp(a, "--workload") == 0)
            workload = v;
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--scale") == 0)
            scale = v;
        else if (strcmp(a, "--file") == 0)
            file = v;
        else if (strcmp(a, "--phase") == 0)
            phase = v;
        else if (strcmp(a, "--threads") == 0)
            threads = (unsigned)strtoul(v, NULL, 0);
        else if (strcmp(a, "--arena-bytes") == 0)
            arena_bytes = strtoull(v, NULL, 0);
        else if (strcmp(a, "--objects") == 0)
            objects = strtoull(v, NULL, 0);
        else if (strcmp(a, "--timeout") == 0)
            timeout = (unsigned)strtoul(v, NULL, 0);
        else if (strcmp(a, "--store") == 0)
            store = v;
        else if (strcmp(a, "--txn") == 0)
            txn = strtoull(v, NULL, 0);
        else if (strcmp(a, "--fm-mode") == 0)
            fm_mode = v;
        else
            usage();
    }
    if (store) {
        if (timeout)
            alarm(timeout);
        return bench_commit_main(version ? NULL : workload, store, scale, file, arena_bytes, txn,
                                 seed);
    }
    if (strcmp(fm_mode, "durable") == 0)
        bench_fmalloc_durable(true);
    else if (strcmp(fm_mode, "default") != 0)
        usage();
    const struct bench_alloc *A = NULL;
    for (size_t i = 0; alloc && i < sizeof arms / sizeof arms[0]; i++)
        if (strcmp(arms[i]->name, alloc) == 0)
            A = arms[i];
    if (!A)
        usage();
    ensure_environment(A->name, argv);
    if (version) {
        if (!A->persistent && A->open(NULL, 0, true))
            return 1;
        printf("%s\n", A->version());
        return 0;
    }
    const struct params *P = params_for(scale);
    if (!workload || !P || threads < 1 || threads > MAX_THREADS)
        usage();
    if (timeout)
        alarm(timeout); /* a hung arm dies of SIGALRM; the driver reports it */
    if (A->persistent && !file && strcmp(workload, "reopen") != 0)
        bench_die("persistent arms need --file");
    const char *path = A->persistent ? file : NULL;

    if (strcmp(workload, "churn") == 0 || strcmp(workload, "between") == 0)
        return run_churn(A, P, path, seed, 1, false);
    if (strcmp(workload, "threads") == 0)
        return run_churn(A, P, path, seed, threads, false);
    if (strcmp(workload, "medium") == 0)
        return run_churn(A, P, path, seed, 1, true);
    if (strcmp(workload, "medium2") == 0)
        return run_churn(A, P, path, seed, threads, true);
    if (strcmp(workload, "prodcons") == 0)
        return bench_run_prodcons(A, P, path, seed);
    if (strcmp(workload, "bigreuse") == 0)
        return bench_run_bigreuse(A, P, path, seed);
    if (strcmp(workload, "procs") == 0)
        return run_procs(A, P, path, seed, 1);
    if (strcmp(workload, "procs2") == 0)
        return run_procs(A, P, path, seed, 2);
    if (strcmp(workload, "mixed") == 0)
        return run_mixed(A, P, path, seed);
    if (strcmp(workload, "frag") == 0)
        return run_frag(A, P, path, seed);
    if (strcmp(workload, "list") == 0) {
        if (!A->persistent)
            return run_list_volatile(A, P, seed);
        if (strcmp(phase, "build") == 0)
            return run_list_build(A, P, path, seed);
        if (strcmp(phase, "reopen") == 0)
            return run_list_reopen(A, path);
        bench_die("list needs --phase build|reopen on a persistent arm");
    }
    if (strcmp(workload, "reopen") == 0) {
        if (strcmp(A->name, "fmalloc") != 0 || !file)
            bench_die("the reopen workload is fmalloc's only and needs --file");
        return bench_reopen_phase(phase, file, arena_bytes ? arena_bytes : P->reopen_bytes,
                                  objects ? objects : P->reopen_objects, seed);
    }
    usage();
}
