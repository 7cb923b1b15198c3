/*
 * mem_stress.c -- the mmap_stress workload in one process, checked as it
 * goes, optionally on several threads sharing one arena.
 *
 * The arena is a fresh file in a new directory under $TMPDIR (or /tmp),
 * removed at the end unless something failed.  Each thread keeps its own
 * table of live blocks and fills every block with a pattern derived from
 * the thread's id and a per-block random byte, so a block handed to two
 * threads, or overwritten by a neighbour, shows up as a pattern mismatch.
 *
 * A thread alternates between filling up to --live blocks and draining to a
 * random level; along the way it resizes random blocks (the common prefix
 * must survive), takes some blocks from fm_calloc (must be zero) or
 * fm_memalign (must be aligned), checks each block when it is filled and
 * before it is resized or freed, checks all its blocks every CHECK_EVERY
 * operations and runs fm_check every FM_CHECK_EVERY.  At the end every
 * thread checks and frees its blocks; fm_check must pass and fm_stats must
 * count as many allocations as before the threads started.
 *
 * Prints one summary line; exits 1 on any mismatch, 2 on bad usage.
 */
#include "stress_util.h"

#include <fmalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_OPS 1000000 /* per thread */
#define DEFAULT_LIVE 4096  /* live blocks per thread when full */
#define DEFAULT_MAX_BLOCK 255
#define MAX_THREADS 256
#define CHECK_EVERY 4096      /* ops between checks of all of a thread's blocks */
#define FM_CHECK_EVERY 65536  /* ops between fm_check calls, per thread */
#define ARENA_NAME "arena.fm"

struct config {
    unsigned threads;
    uint64_t ops; /* per thread */
    uint64_t seed;
    size_t live;
    size_t max_block;
    bool keep; /* keep the temporary directory */
};

/* A live block of one thread: `size` bytes of the pattern made from `tag`. */
struct tblock {
    unsigned char *p;
    size_t size;
    uint8_t tag;
};

struct worker {
    pthread_t thread;
    unsigned id;
    const struct config *cfg;
    struct stress_rng rng;
    struct tblock *blocks;
    size_t count;
    uint64_t ops;
};

static struct fm_info *arena;
static atomic_int failed;

/* ------------------------------------------------------------------------
 * Failure reporting
 * ---------------------------------------------------------------------- */

static void on_lib_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    (void)fi;
    (void)arg;
    fprintf(stderr, "mem_stress: library reported %s: %s\n", fm_strerror(err), msg);
    atomic_store(&failed, 1);
}

static void worker_fail(struct worker *w)
{
    (void)w;
    atomic_store(&failed, 1);
}

/* ------------------------------------------------------------------------
 * Patterns: byte j of a block of thread `id` with tag t is
 *   t + 0x3b * id + (2 * id + 1) * j   (mod 256)
 * An odd stride makes the pattern of each thread distinct and non-constant.
 * ---------------------------------------------------------------------- */

static unsigned char pattern_byte(unsigned id, uint8_t tag, size_t j)
{
    return (unsigned char)(tag + 0x3bu * id + (2u * id + 1u) * (unsigned)j);
}

static void pattern_fill(unsigned id, unsigned char *p, size_t n, uint8_t tag)
{
    for (size_t j = 0; j < n; j++)
        p[j] = pattern_byte(id, tag, j);
}

/* Index of the first byte of p[0..n) off the pattern, or n. */
static size_t pattern_mismatch(unsigned id, const unsigned char *p, size_t n, uint8_t tag)
{
    unsigned acc = 0;
    for (size_t j = 0; j < n; j++)
        acc |= (unsigned)(p[j] ^ pattern_byte(id, tag, j));
    if (acc == 0)
        return n;
    for (size_t j = 0; j < n; j++)
        if (p[j] != pattern_byte(id, tag, j))
            return j;
    return n;
}

/* Check the first min(prefix, size) bytes of block i and its usable size. */
static bool worker_verify(struct worker *w, size_t i, size_t prefix, const char *when)
{
    const struct tblock *b = &w->blocks[i];
    size_t usable = fm_usable_size(arena, b->p);
    if (usable < b->size) {
        fprintf(stderr,
                "mem_stress: thread %u: mismatch %s: block %zu at offset %" PRIu64
                " (size %zu): expected usable size >= %zu, found %zu\n",
                w->id, when, i, fm_offset(arena, b->p), b->size, b->size, usable);
        return false;
    }
    size_t n = prefix < b->size ? prefix : b->size;
    size_t bad = pattern_mismatch(w->id, b->p, n, b->tag);
    if (bad < n) {
        fprintf(stderr,
                "mem_stress: thread %u: mismatch %s: block %zu at offset %" PRIu64
                " (size %zu): expected 0x%02x at byte %zu, found 0x%02x\n",
                w->id, when, i, fm_offset(arena, b->p), b->size,
                pattern_byte(w->id, b->tag, bad), bad, b->p[bad]);
        return false;
    }
    return true;
}

static bool worker_verify_all(struct worker *w, const char *when)
{
    for (size_t i = 0; i < w->count; i++)
        if (!worker_verify(w, i, SIZE_MAX, when))
            return false;
    return true;
}

/* ------------------------------------------------------------------------
 * Operations
 * ---------------------------------------------------------------------- */

static size_t worker_random_size(struct worker *w)
{
    return (size_t)stress_rng_below(&w->rng, (uint64_t)w->cfg->max_block + 1);
}

/* Allocate one block (malloc, calloc, memalign, or malloc + realloc). */
static bool worker_alloc(struct worker *w)
{
    size_t size = worker_random_size(w);
    unsigned kind = (unsigned)stress_rng_below(&w->rng, 16);
    unsigned char *p;
    if (kind == 0) {
        p = fm_calloc(arena, 1, size);
        if (p) {
            size_t bad = stress_find_mismatch(p, size, 0);
            if (bad < size) {
                fprintf(stderr,
                        "mem_stress: thread %u: fm_calloc(1, %zu) at offset %" PRIu64
                        ": expected 0 at byte %zu, found 0x%02x\n",
                        w->id, size, fm_offset(arena, p), bad, p[bad]);
                return false;
            }
        }
    } else if (kind == 1) {
        size_t align = (size_t)16 << stress_rng_below(&w->rng, 9); /* 16 .. 4096 */
        p = fm_memalign(arena, align, size);
        if (p && (uintptr_t)p % align != 0) {
            fprintf(stderr,
                    "mem_stress: thread %u: fm_memalign(%zu, %zu) gave offset %" PRIu64
                    ", not aligned\n",
                    w->id, align, size, fm_offset(arena, p));
            return false;
        }
    } else if (kind == 2) {
        /* resize a fresh block before it is filled, as mmap_stress does */
        p = fm_malloc(arena, size);
        if (p) {
            size_t nsize = worker_random_size(w);
            unsigned char *q = fm_realloc(arena, p, nsize);
            if (nsize == 0) {
                if (q) {
                    fprintf(stderr, "mem_stress: thread %u: fm_realloc(p, 0) returned a block\n",
                            w->id);
                    return false;
                }
                return true;
            }
            if (!q) {
                fprintf(stderr, "mem_stress: thread %u: fm_realloc(%zu -> %zu) failed: %s\n",
                        w->id, size, nsize, strerror(errno));
                return false;
            }
            p = q;
            size = nsize;
        }
    } else {
        p = fm_malloc(arena, size);
    }
    if (!p) {
        fprintf(stderr, "mem_stress: thread %u: allocating %zu bytes failed (kind %u): %s\n",
                w->id, size, kind, strerror(errno));
        return false;
    }
    struct tblock *b = &w->blocks[w->count++];
    b->p = p;
    b->size = size;
    b->tag = (uint8_t)stress_rng_next(&w->rng);
    pattern_fill(w->id, p, size, b->tag);
    return worker_verify(w, w->count - 1, SIZE_MAX, "after filling");
}

static bool worker_free_one(struct worker *w)
{
    size_t i = (size_t)stress_rng_below(&w->rng, w->count);
    if (!worker_verify(w, i, SIZE_MAX, "before free"))
        return false;
    fm_free(arena, w->blocks[i].p);
    w->blocks[i] = w->blocks[--w->count];
    return true;
}

static bool worker_resize_one(struct worker *w)
{
    size_t i = (size_t)stress_rng_below(&w->rng, w->count);
    if (!worker_verify(w, i, SIZE_MAX, "before realloc"))
        return false;
    struct tblock *b = &w->blocks[i];
    size_t nsize = worker_random_size(w);
    unsigned char *q = fm_realloc(arena, b->p, nsize);
    if (nsize == 0) {
        if (q) {
            fprintf(stderr, "mem_stress: thread %u: fm_realloc(p, 0) returned a block\n", w->id);
            return false;
        }
        w->blocks[i] = w->blocks[--w->count];
        return true;
    }
    if (!q) {
        fprintf(stderr, "mem_stress: thread %u: fm_realloc(%zu -> %zu) failed: %s\n", w->id,
                b->size, nsize, strerror(errno));
        return false;
    }
    size_t old_size = b->size;
    b->p = q;
    b->size = nsize;
    /* the first min(old, new) bytes keep the old pattern */
    if (!worker_verify(w, i, old_size, "after realloc (prefix)"))
        return false;
    b->tag = (uint8_t)stress_rng_next(&w->rng);
    pattern_fill(w->id, q, nsize, b->tag);
    return worker_verify(w, i, SIZE_MAX, "after refilling");
}

static bool arena_check(const char *who)
{
    int rc = fm_check(arena);
    if (rc != 0) {
        fprintf(stderr, "mem_stress: fm_check (%s): %s: %s\n", who, fm_strerror(rc),
                fm_check_message(arena));
        return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->cfg;
    bool filling = true;
    uint64_t drain_to = 0;
    bool ok = true;

    while (ok && w->ops < cfg->ops && !atomic_load_explicit(&failed, memory_order_relaxed)) {
        if (filling && w->count >= cfg->live) {
            filling = false;
            drain_to = stress_rng_below(&w->rng, cfg->live);
        } else if (!filling && w->count <= drain_to) {
            filling = true;
        }
        if (w->count > 0 && stress_rng_below(&w->rng, 8) == 0)
            ok = worker_resize_one(w);
        else if (filling)
            ok = worker_alloc(w);
        else
            ok = worker_free_one(w);
        w->ops++;
        if (ok && w->ops % CHECK_EVERY == 0)
            ok = worker_verify_all(w, "in a periodic check");
        if (ok && w->ops % FM_CHECK_EVERY == 0)
            ok = arena_check("periodic");
    }
    if (ok && !atomic_load(&failed))
        ok = worker_verify_all(w, "at the end");
    if (ok) {
        while (w->count)
            fm_free(arena, w->blocks[--w->count].p);
    }
    if (!ok) {
        fprintf(stderr, "mem_stress: thread %u failed after %" PRIu64 " operations\n", w->id,
                w->ops);
        worker_fail(w);
    }
    return NULL;
}

/* ------------------------------------------------------------------------
 * Options and main
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mem_stress [--threads N] [--ops N] [--seed N] [--live N] [--max-block N] "
            "[--keep]\n"
            "  --threads N    threads sharing one arena (default 1)\n"
            "  --ops N        operations per thread (default %d)\n"
            "  --seed N       seed (default: from the clock; printed)\n"
            "  --live N       live blocks per thread when full (default %d)\n"
            "  --max-block N  largest random block, bytes (default %d)\n"
            "  --keep         keep the temporary arena\n",
            DEFAULT_OPS, DEFAULT_LIVE, DEFAULT_MAX_BLOCK);
}

#define OPTION(name) stress_option_value("mem_stress", usage, argc, argv, &i, name)
#define NUMBER(min, max) stress_option_u64("mem_stress", opt, v, min, max)

static void parse_args(int argc, char **argv, struct config *cfg, bool *have_seed)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v;
        if ((v = OPTION("--threads"))) {
            cfg->threads = (unsigned)NUMBER(1, MAX_THREADS);
        } else if ((v = OPTION("--ops"))) {
            cfg->ops = NUMBER(0, UINT64_MAX);
        } else if ((v = OPTION("--seed"))) {
            cfg->seed = NUMBER(0, UINT64_MAX);
            *have_seed = true;
        } else if ((v = OPTION("--live"))) {
            cfg->live = (size_t)NUMBER(1, 1u << 24);
        } else if ((v = OPTION("--max-block"))) {
            cfg->max_block = (size_t)NUMBER(0, 1u << 24);
        } else if (strcmp(opt, "--keep") == 0) {
            cfg->keep = true;
        } else {
            stress_option_other("mem_stress", usage, opt);
        }
    }
}
#undef OPTION
#undef NUMBER

int main(int argc, char **argv)
{
    struct config cfg = {
        .threads = 1,
        .ops = DEFAULT_OPS,
        .live = DEFAULT_LIVE,
        .max_block = DEFAULT_MAX_BLOCK,
    };
    bool have_seed = false;
    parse_args(argc, argv, &cfg, &have_seed);
    if (!have_seed)
        cfg.seed = stress_fresh_seed();
    printf("mem_stress: seed %" PRIu64 " (replay with --seed %" PRIu64 ")\n", cfg.seed,
           cfg.seed);
    fflush(stdout);

    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    static char dir[4096], path[4096 + sizeof ARENA_NAME + 1];
    if ((size_t)snprintf(dir, sizeof dir, "%s/mem_stress.XXXXXX", tmp) >= sizeof dir) {
        fprintf(stderr, "mem_stress: TMPDIR too long\n");
        return 2;
    }
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mem_stress: cannot create a directory in %s: %s\n", tmp,
                strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, ARENA_NAME);

    struct fm_options opt = {.initial_size = 1u << 20, .flags = FM_CREATE | FM_EXCL | FM_NOSYNC};
    int rc = fm_open(path, &opt, &arena);
    if (rc != 0) {
        fprintf(stderr, "mem_stress: cannot create %s: %s\n", path, fm_strerror(rc));
        return 1;
    }
    fm_set_error_handler(arena, on_lib_error, NULL);

    struct fm_stats before, after;
    if ((rc = fm_stats(arena, &before)) != 0) {
        fprintf(stderr, "mem_stress: fm_stats: %s\n", fm_strerror(rc));
        return 1;
    }

    struct worker *workers = calloc(cfg.threads, sizeof *workers);
    if (!workers) {
        fprintf(stderr, "mem_stress: out of memory\n");
        return 1;
    }
    double t0 = stress_now();
    unsigned started = 0;
    for (unsigned t = 0; t < cfg.threads; t++) {
        struct worker *w = &workers[t];
        w->id = t;
        w->cfg = &cfg;
        stress_rng_seed(&w->rng, cfg.seed + 0x9e3779b97f4a7c15ull * t);
        w->blocks = malloc((cfg.live + 1) * sizeof *w->blocks);
        if (!w->blocks) {
            fprintf(stderr, "mem_stress: out of memory\n");
            atomic_store(&failed, 1);
            break;
        }
        if (cfg.threads == 1) {
            started++; /* run inline: a single-threaded run needs no thread */
            break;
        }
        int err = pthread_create(&w->thread, NULL, worker_main, w);
        if (err) {
            fprintf(stderr, "mem_stress: pthread_create: %s\n", strerror(err));
            atomic_store(&failed, 1);
            break;
        }
        started++;
    }
    if (cfg.threads == 1 && started == 1)
        worker_main(&workers[0]);
    else
        for (unsigned t = 0; t < started; t++)
            pthread_join(workers[t].thread, NULL);
    double seconds = stress_now() - t0;

    uint64_t total_ops = 0;
    for (unsigned t = 0; t < cfg.threads; t++) {
        total_ops += workers[t].ops;
        free(workers[t].blocks);
    }
    free(workers);

    bool ok = !atomic_load(&failed) && arena_check("final");
    if (ok) {
        rc = fm_stats(arena, &after);
        if (rc != 0) {
            fprintf(stderr, "mem_stress: fm_stats: %s\n", fm_strerror(rc));
            ok = false;
        } else if (after.allocated_count != before.allocated_count ||
                   after.allocated_bytes != before.allocated_bytes) {
            fprintf(stderr,
                    "mem_stress: every block was freed, but fm_stats counts %" PRIu64
                    " allocations (%" PRIu64 " bytes); before the run %" PRIu64 " (%" PRIu64
                    " bytes)\n",
                    after.allocated_count, after.allocated_bytes, before.allocated_count,
                    before.allocated_bytes);
            ok = false;
        } else if (after.allocated_bytes + after.free_bytes != after.heap_size) {
            fprintf(stderr,
                    "mem_stress: fm_stats: allocated %" PRIu64 " + free %" PRIu64
                    " bytes != heap size %" PRIu64 "\n",
                    after.allocated_bytes, after.free_bytes, after.heap_size);
            ok = false;
        }
    }
    if (!ok) {
        fprintf(stderr, "mem_stress: FAILED (seed %" PRIu64 "); arena kept in %s\n", cfg.seed,
                path);
        return 1; /* the arena stays open and dirty: as found */
    }

    printf("mem_stress: %" PRIu64 " ops, %u thread%s, %.2f seconds, file size %" PRIu64
           " bytes\n",
           total_ops, cfg.threads, cfg.threads == 1 ? "" : "s", seconds, after.file_size);
    rc = fm_close(arena);
    if (rc != 0) {
        fprintf(stderr, "mem_stress: fm_close: %s\n", fm_strerror(rc));
        return 1;
    }
    if (cfg.keep) {
        printf("mem_stress: arena kept in %s\n", path);
    } else if (unlink(path) != 0 || rmdir(dir) != 0) {
        fprintf(stderr, "mem_stress: cannot remove %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return 0;
}
