/*
 * test_heap.c -- the heap through the public API.
 *
 * Public API only.  Boundary cases of malloc/calloc/realloc/memalign, the
 * in-place guarantees of realloc, invalid frees reported through the error
 * handler (and never corrupting the heap), fm_walk and fm_stats against a
 * model, fm_trim, and four threads hammering one arena.
 */
/* Impossible sizes and forged headers (bytes read before a block) are what
 * this file tests: the compiler's alloc_size checks would warn about them. */
#define FM_NO_ALLOC_ATTRIBUTES
#include <fmalloc.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_util.h"
#include "harness.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define HEAP_START 12288

static uint64_t rng;

static struct fm_info *open_fresh(const char *name, uint64_t max_size)
{
    return fresh_arena(tpath(name), (struct fm_options){.flags = FM_NOSYNC, .max_size = max_size});
}

/* The heap passes fm_check and holds what `before` says: the same blocks,
 * free bytes and file size. */
static void expect_heap_as(struct fm_info *fi, const struct fm_stats *before)
{
    struct fm_stats now;
    expect_eq(fm_stats(fi, &now), 0);
    expect_eq(now.allocated_count, before->allocated_count);
    expect_eq(now.allocated_bytes, before->allocated_bytes);
    expect_eq(now.free_bytes, before->free_bytes);
    expect_eq(now.file_size, before->file_size);
    expect_eq(fm_check(fi), 0);
}

static void close_and_remove(struct fm_info *fi, const char *name)
{
    expect_eq(fm_close(fi), 0);
    unlink(tpath(name));
}

/* A returned block: 16-byte aligned, at least n usable bytes, in the heap. */
static int block_ok(struct fm_info *fi, const void *p, size_t n)
{
    fm_off_t off = fm_offset(fi, p);
    int ok = p != NULL && (uintptr_t)p % 16 == 0 && fm_usable_size(fi, p) >= n &&
             off >= HEAP_START;
    if (!ok)
        fprintf(stderr, "  bad block %p (offset %llu) for %zu bytes: usable %zu\n", p,
                (unsigned long long)off, n, p ? fm_usable_size(fi, p) : 0);
    return ok;
}

static uint64_t allocated_count(struct fm_info *fi)
{
    struct fm_stats st;
    if (fm_stats(fi, &st) != 0)
        return UINT64_MAX;
    return st.allocated_count;
}

/* Expect NULL with errno `want` from an allocation expression. */
#define expect_fail(expr, want)                                                    \
    do {                                                                           \
        void *r_;                                                                  \
        errno = 0;                                                                 \
        r_ = (expr);                                                               \
        if (!expect_true(r_ == NULL && errno == (want)))                           \
            fprintf(stderr, "  %s: got %p, errno %d, wanted NULL, errno %d\n",     \
                    #expr, r_, errno, (want));                                     \
    } while (0)

/* --------------------------------------------------------------------------
 * Boundaries
 * ------------------------------------------------------------------------ */
static void test_boundaries(void)
{
    struct fm_info *fi = open_fresh("bounds.fm", 0);
    struct fm_stats a;
    void *z1, *z2;

    /*
     * fm_malloc(0) returns a unique minimum-size block (as glibc does): not
     * NULL, distinct each time, usable for 24 bytes (fmalloc.h).
     */
    z1 = fm_malloc(fi, 0);
    z2 = fm_malloc(fi, 0);
    expect_true(block_ok(fi, z1, 1));
    expect_true(block_ok(fi, z2, 1));
    expect_true(z1 != z2);
    if (z1 && z2) {
        size_t u1 = fm_usable_size(fi, z1), u2 = fm_usable_size(fi, z2);
        printf("fm_malloc(0): usable size %zu\n", u1);
        expect_eq(u1, 24);
        pat_fill(z1, u1, 1);
        pat_fill(z2, u2, 2);
        expect_eq(pat_check(z1, u1, 1), SIZE_MAX);
        expect_eq(pat_check(z2, u2, 2), SIZE_MAX);
        /* Small requests share the minimum block size. */
        {
            void *one = fm_malloc(fi, 1);
            expect_true(block_ok(fi, one, 1));
            fm_free(fi, one);
        }
    }
    expect_eq(fm_usable_size(fi, NULL), 0);

    /* Impossible sizes: NULL with ENOMEM, heap untouched. */
    expect_eq(fm_stats(fi, &a), 0);
    expect_fail(fm_malloc(fi, SIZE_MAX), ENOMEM);
    expect_fail(fm_malloc(fi, SIZE_MAX - 15), ENOMEM);
    expect_fail(fm_malloc(fi, SIZE_MAX / 2 + 1), ENOMEM);
    expect_fail(fm_malloc(fi, (size_t)1 << 62), ENOMEM);
    expect_fail(fm_malloc(fi, (size_t)2 << 40), ENOMEM); /* 2 TiB > default max_size */
    expect_fail(fm_calloc(fi, SIZE_MAX / 2, 3), ENOMEM);
    expect_fail(fm_calloc(fi, 3, SIZE_MAX / 2), ENOMEM);
    expect_fail(fm_calloc(fi, SIZE_MAX, SIZE_MAX), ENOMEM);
    expect_fail(fm_calloc(fi, (size_t)1 << 32, (size_t)1 << 32), ENOMEM);
    expect_fail(fm_memalign(fi, 16, SIZE_MAX), ENOMEM);
    expect_fail(fm_memalign(fi, 4096, SIZE_MAX - 4096), ENOMEM);
    expect_heap_as(fi, &a);

    /* fm_free(NULL) does nothing. */
    fm_free(fi, NULL);
    expect_heap_as(fi, &a);

    fm_free(fi, z1);
    fm_free(fi, z2);
    expect_eq(allocated_count(fi), 0);
    close_and_remove(fi, "bounds.fm");

    /* Larger than max_size. */
    fi = open_fresh("small.fm", 16 * MiB);
    expect_fail(fm_malloc(fi, 32 * MiB), ENOMEM);
    expect_fail(fm_malloc(fi, 16 * MiB), ENOMEM);
    expect_fail(fm_calloc(fi, 4, 8 * MiB), ENOMEM);
    expect_fail(fm_memalign(fi, 1 * MiB, 16 * MiB), ENOMEM);
    expect_eq(fm_stats(fi, &a), 0);
    expect_true(a.file_size <= 16 * MiB);
    expect_eq(fm_check(fi), 0);
    {
        void *p = fm_malloc(fi, 8 * MiB); /* what fits still works */
        expect_true(block_ok(fi, p, 8 * MiB));
        expect_fail(fm_realloc(fi, p, 17 * MiB), ENOMEM);
        fm_free(fi, p);
    }
    expect_eq(fm_check(fi), 0);
    close_and_remove(fi, "small.fm");
}

/* --------------------------------------------------------------------------
 * calloc returns zeroed memory, also when it reuses dirty free chunks.
 * ------------------------------------------------------------------------ */
static void test_calloc(void)
{
    static const size_t sizes[] = {1, 24, 40, 100, 1000, 4000, 5000, 70000, 300000, 2 * MiB};
    struct fm_info *fi = open_fresh("calloc.fm", 0);
    enum { K = 8 };
    void *blk[K];
    size_t nonzero = 0;

    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        for (int round = 0; round < 20; round++) {
            for (int k = 0; k < K; k++) {
                blk[k] = fm_malloc(fi, n);
                require_true(block_ok(fi, blk[k], n));
                memset(blk[k], 0xAA, fm_usable_size(fi, blk[k]));
            }
            for (int k = 0; k < K; k++) {
                int j = (int)(harness_rand(&rng) % K);
                void *t = blk[k];
                blk[k] = blk[j];
                blk[j] = t;
            }
            for (int k = 0; k < K; k++)
                fm_free(fi, blk[k]);
            for (int k = 0; k < K; k++) {
                /* Split the request as n = 1 * n or as n/2 * 2 when even. */
                blk[k] = (k & 1) && n % 2 == 0 ? fm_calloc(fi, n / 2, 2) : fm_calloc(fi, 1, n);
                require_true(block_ok(fi, blk[k], n));
                if (!all_zero(blk[k], n) && nonzero++ < 5)
                    fprintf(stderr, "  fm_calloc(%zu) not zeroed (round %d)\n", n, round);
                memset(blk[k], 0xAA, n);
            }
            for (int k = 0; k < K; k++)
                fm_free(fi, blk[k]);
        }
    }
    expect_eq(nonzero, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(allocated_count(fi), 0);
    close_and_remove(fi, "calloc.fm");
}

/* --------------------------------------------------------------------------
 * realloc
 * ------------------------------------------------------------------------ */
static void test_realloc(void)
{
    struct fm_info *fi = open_fresh("realloc.fm", 0);
    char *p, *q, *a, *b, *c;
    uint64_t count;

    /* realloc(NULL, n) is malloc(n). */
    p = fm_realloc(fi, NULL, 100);
    expect_true(block_ok(fi, p, 100));
    expect_eq(allocated_count(fi), 1);

    /* realloc(p, 0) frees p and returns NULL. */
    expect_true(fm_realloc(fi, p, 0) == NULL);
    expect_eq(allocated_count(fi), 0);
    expect_eq(fm_check(fi), 0);

    /* Grow into the top: the last block grows in place, even past the file end.
     * (Blocks over 1040 bytes: smaller ones come in thread-cache runs.) */
    {
        char *x = fm_malloc(fi, 100);
        a = fm_malloc(fi, 2000);
        require_true(x && a);
        pat_fill(a, 256, 10);
        q = fm_realloc(fi, a, 100000);
        expect_true(q == a);
        expect_eq(pat_check(q, 256, 10), SIZE_MAX);
        pat_fill(q, 100000, 11);
        q = fm_realloc(fi, a, 4 * MiB); /* beyond the 1 MiB file: the top grows */
        if (!expect_true(q == a))
            fprintf(stderr, "  realloc of the last block to 4 MiB moved it\n");
        require_true(q != NULL);
        expect_eq(pat_check(q, 100000, 11), SIZE_MAX);
        expect_true(block_ok(fi, q, 4 * MiB));
        fm_free(fi, q);
        fm_free(fi, x);
    }

    /* Shrink keeps the address and the content. */
    p = fm_malloc(fi, 1000);
    c = fm_malloc(fi, 64); /* keeps p off the top */
    require_true(p && c);
    pat_fill(p, 1000, 20);
    pat_fill(c, 64, 21);
    q = fm_realloc(fi, p, 100);
    expect_true(q == p);
    expect_eq(pat_check(p, 100, 20), SIZE_MAX);
    expect_true(block_ok(fi, p, 100));
    q = fm_realloc(fi, p, 1);
    expect_true(q == p);
    expect_eq(pat_check(p, 1, 20), SIZE_MAX);
    fm_free(fi, p);
    p = fm_malloc(fi, 200000);
    require_true(p != NULL);
    pat_fill(p, 200000, 22);
    q = fm_realloc(fi, p, 50000);
    expect_true(q == p);
    expect_eq(pat_check(p, 50000, 22), SIZE_MAX);
    expect_eq(fm_check(fi), 0);
    /* The freed tail is usable: a 100000-byte block fits without growing. */
    {
        struct fm_stats s0, s1;
        void *t;
        expect_eq(fm_stats(fi, &s0), 0);
        t = fm_malloc(fi, 100000);
        expect_true(block_ok(fi, t, 100000));
        expect_eq(fm_stats(fi, &s1), 0);
        expect_eq(s1.file_size, s0.file_size);
        fm_free(fi, t);
    }
    fm_free(fi, p);
    expect_eq(pat_check(c, 64, 21), SIZE_MAX);

    /*
     * Grow into a following free chunk keeps the address.  In a fresh arena
     * a, b and the guard are carved from the top one after the other, so b
     * is a's neighbour (a is over 1040 bytes: smaller blocks come in
     * thread-cache runs).
     */
    {
        struct fm_info *f2 = open_fresh("realloc2.fm", 0);
        a = fm_malloc(f2, 2000);
        b = fm_malloc(f2, 4096);
        p = fm_malloc(f2, 64); /* guard: b is not next to the top */
        require_true(a && b && p);
        expect_true(a < b && b < p);
        pat_fill(a, 256, 30);
        pat_fill(p, 64, 31);
        fm_free(f2, b);
        q = fm_realloc(f2, a, 2048);
        expect_true(q == a);
        expect_eq(pat_check(a, 256, 30), SIZE_MAX);
        expect_true(block_ok(f2, a, 2048));
        /* ... and again up to (about) the whole free neighbour. */
        q = fm_realloc(f2, a, 600 + 4096 - 64);
        expect_true(q == a);
        expect_eq(pat_check(a, 256, 30), SIZE_MAX);
        expect_eq(pat_check(p, 64, 31), SIZE_MAX);
        expect_eq(fm_check(f2), 0);
        fm_free(f2, a);
        fm_free(f2, p);
        expect_eq(allocated_count(f2), 0);
        close_and_remove(f2, "realloc2.fm");
    }

    /*
     * Moving preserves the content and frees the old block.  In a fresh
     * arena a is the first block and b its in-use neighbour, so a growing
     * a must move.
     */
    {
        struct fm_info *f3 = open_fresh("realloc3.fm", 0);
        a = fm_malloc(f3, 256);
        b = fm_malloc(f3, 256);
        require_true(a && b);
        expect_true(a < b);
        pat_fill(a, 256, 40);
        pat_fill(b, 256, 41);
        count = allocated_count(f3);
        expect_eq(count, 2);
        q = fm_realloc(f3, a, 100000);
        require_true(q != NULL);
        expect_true(q != a);
        expect_true(block_ok(f3, q, 100000));
        expect_eq(pat_check(q, 256, 40), SIZE_MAX);
        expect_eq(pat_check(b, 256, 41), SIZE_MAX);
        expect_eq(allocated_count(f3), count);
        a = q;
        pat_fill(a, 100000, 42);
        q = fm_realloc(f3, a, 3 * MiB);
        require_true(q != NULL);
        expect_eq(pat_check(q, 100000, 42), SIZE_MAX);
        a = q;

        /* A failed realloc leaves the block alone. */
        expect_fail(fm_realloc(f3, a, SIZE_MAX), ENOMEM);
        expect_fail(fm_realloc(f3, a, (size_t)2 << 40), ENOMEM);
        expect_eq(pat_check(a, 100000, 42), SIZE_MAX);
        expect_true(block_ok(f3, a, 3 * MiB));
        expect_eq(allocated_count(f3), count);
        fm_free(f3, a);
        fm_free(f3, b);
        expect_eq(allocated_count(f3), 0);
        expect_eq(fm_check(f3), 0);
        close_and_remove(f3, "realloc3.fm");
    }

    /* A random chain of reallocs among live neighbours. */
    {
        enum { NB = 64 };
        char *blk[NB];
        size_t len[NB];
        uint64_t key[NB];
        size_t bad = 0;

        for (int i = 0; i < NB; i++) {
            len[i] = 1 + (size_t)(harness_rand(&rng) % 3000);
            key[i] = 500 + (uint64_t)i;
            blk[i] = fm_malloc(fi, len[i]);
            require_true(block_ok(fi, blk[i], len[i]));
            pat_fill(blk[i], len[i], key[i]);
        }
        for (int r = 0; r < 5000; r++) {
            int i = (int)(harness_rand(&rng) % NB);
            size_t n = 1 + (size_t)(harness_rand(&rng) % (harness_rand(&rng) % 8 == 0 ? 200000 : 3000));
            size_t keep = n < len[i] ? n : len[i];
            if (pat_check(blk[i], len[i], key[i]) != SIZE_MAX)
                bad++;
            q = fm_realloc(fi, blk[i], n);
            require_true(q != NULL);
            if (!block_ok(fi, q, n) || pat_check(q, keep, key[i]) != SIZE_MAX)
                bad++;
            blk[i] = q;
            len[i] = n;
            key[i] = 1000 + (uint64_t)r;
            pat_fill(q, n, key[i]);
        }
        for (int i = 0; i < NB; i++) {
            if (pat_check(blk[i], len[i], key[i]) != SIZE_MAX)
                bad++;
            fm_free(fi, blk[i]);
        }
        expect_eq(bad, 0);
    }
    fm_free(fi, c);
    expect_eq(allocated_count(fi), 0);
    expect_eq(fm_check(fi), 0);
    close_and_remove(fi, "realloc.fm");
}

/* --------------------------------------------------------------------------
 * memalign
 * ------------------------------------------------------------------------ */
/*
 * Open path (flags) so that its base is congruent to `residue` modulo
 * 16 MiB, where the kernel lets us: probe where a default reservation
 * (1 TiB) would go, then occupy the top of that gap with a PROT_NONE pad
 * sized so the arena's reservation lands at the wanted residue below it.
 * Where this does not work out the arena opens wherever the kernel puts
 * it; the caller prints the base.  This keeps the alignment tests from
 * passing only because the kernel happened to give an aligned base.
 */
#define TIB ((uint64_t)1 << 40)
static void *pad;
static size_t pad_len;

static void pad_release(void)
{
    if (pad)
        munmap(pad, pad_len);
    pad = NULL;
    pad_len = 0;
}

static struct fm_info *open_at_residue(const char *path, unsigned flags, uintptr_t residue)
{
    const size_t probe_len = (size_t)TIB + 32 * MiB;
    struct fm_options opt;
    struct fm_info *fi = NULL;
    char *probe;

    pad_release();
    probe = mmap(NULL, probe_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (probe != MAP_FAILED) {
        uintptr_t top = (uintptr_t)probe + probe_len;
        uintptr_t target = (((uintptr_t)probe + 30 * MiB) & ~(uintptr_t)(16 * MiB - 1)) | residue;
        size_t len;
        if (target > (uintptr_t)probe + 30 * MiB)
            target -= 16 * MiB;
        len = top - target - (size_t)TIB;
        munmap(probe, probe_len);
        pad = mmap((void *)(top - len), len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (pad == MAP_FAILED) {
            pad = NULL;
        } else if (pad != (void *)(top - len)) {
            munmap(pad, len);
            pad = NULL;
        } else {
            pad_len = len;
        }
    }
    memset(&opt, 0, sizeof opt);
    opt.flags = flags;
    require_eq(fm_open(path, &opt, &fi), 0);
    return fi;
}

static void test_memalign(void)
{
    static const size_t sizes[] = {1, 100, 5000};
    static const size_t bad_align[] = {0, 3, 24, 48, 1000, 3 * MiB, (size_t)1 << 31};
    const char *path = tpath("memalign.fm");
    struct fm_info *fi;
    enum { MAXB = 3 * 22 };
    /* Kept in the root region, so the blocks can be checked after a reopen. */
    struct aligned_block {
        fm_off_t off;
        uint64_t align;
        uint64_t len;
    } *blk;
    int nb = 0;
    size_t bad = 0;
    uintptr_t first_residue;

    /* A base that is not 16 MiB aligned (alignment is the library's job). */
    unlink(path);
    fi = open_at_residue(path, FM_CREATE | FM_NOSYNC, 8 * MiB);
    blk = fm_root(fi);
    first_residue = (uintptr_t)fi->mem % (16 * MiB);
    printf("memalign: arena base %p\n", fi->mem);
    for (size_t align = 1; align <= 16 * MiB; align *= 2) {
        if (align > MiB && align != 16 * MiB)
            continue;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            void *p = fm_memalign(fi, align, sizes[si]);
            if (!p || (uintptr_t)p % align != 0 || !block_ok(fi, p, sizes[si])) {
                if (bad++ < 5)
                    fprintf(stderr, "  fm_memalign(%zu, %zu) = %p (offset %#llx)\n", align,
                            sizes[si], p, (unsigned long long)fm_offset(fi, p));
                if (!p)
                    continue;
            }
            pat_fill(p, sizes[si], (uint64_t)nb);
            blk[nb].off = fm_offset(fi, p);
            blk[nb].align = align;
            blk[nb].len = sizes[si];
            nb++;
        }
    }
    expect_eq(bad, 0);
    expect_eq(allocated_count(fi), nb);
    expect_eq(fm_check(fi), 0);

    /*
     * An aligned block stays aligned in the next mapping of the file (the
     * alignment is a property of the block, not of one process's mapping).
     */
    expect_eq(fm_close(fi), 0);
    fi = NULL;
    fi = open_at_residue(path, 0, first_residue == 4 * MiB ? 12 * MiB : 4 * MiB);
    printf("memalign: reopened at %p\n", fi->mem);
    blk = fm_root(fi);
    bad = 0;
    for (int i = 0; i < nb; i++) {
        char *p = fm_pointer(fi, blk[i].off);
        if (!p || (uintptr_t)p % blk[i].align != 0 ||
            pat_check(p, blk[i].len, (uint64_t)i) != SIZE_MAX) {
            if (bad++ < 5)
                fprintf(stderr, "  after reopen: %" PRIu64 "-aligned block %p is not (or damaged)\n",
                        blk[i].align, (void *)p);
        }
        fm_free(fi, p);
    }
    expect_eq(bad, 0);
    expect_eq(allocated_count(fi), 0);
    expect_eq(fm_check(fi), 0);

    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++)
        expect_fail(fm_memalign(fi, bad_align[i], 100), EINVAL);
    expect_eq(allocated_count(fi), 0);
    close_and_remove(fi, "memalign.fm");
    pad_release();
}

/* --------------------------------------------------------------------------
 * Invalid frees
 * ------------------------------------------------------------------------ */
struct recorder {
    int calls;
    int last_err;
    char last_msg[512];
};

static void record_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    struct recorder *r = arg;
    (void)fi;
    r->calls++;
    r->last_err = err;
    snprintf(r->last_msg, sizeof r->last_msg, "%s", msg ? msg : "");
}

enum { LIVE = 24 };

struct live_set {
    char *p[LIVE];
    size_t n[LIVE];
};

static int live_intact(const struct live_set *ls)
{
    for (int i = 0; i < LIVE; i++)
        if (pat_check(ls->p[i], ls->n[i], 9000u + (uint64_t)i) != SIZE_MAX)
            return 0;
    return 1;
}

/* One invalid call: the handler runs once with FM_EBADPTR and a message. */
#define expect_reported(rec, what, call)                                           \
    do {                                                                           \
        int before_ = (rec).calls;                                                 \
        (rec).last_err = 0;                                                        \
        (rec).last_msg[0] = 0;                                                     \
        call;                                                                      \
        if (!expect_true((rec).calls == before_ + 1 && (rec).last_err == FM_EBADPTR && \
                         (rec).last_msg[0] != 0))                                  \
            fprintf(stderr, "  %s: handler calls %d (want 1), err %d, msg \"%s\"\n", \
                    what, (rec).calls - before_, (rec).last_err, (rec).last_msg);  \
        else                                                                       \
            printf("  %s -> \"%s\"\n", what, (rec).last_msg);                      \
    } while (0)

static void test_bad_free(void)
{
    struct fm_info *fi = open_fresh("badfree.fm", 0);
    struct fm_info *other = open_fresh("other.fm", 0);
    struct recorder rec;
    struct live_set ls;
    struct fm_stats st;
    uint64_t count;
    char *p, *q, *a, *b, *c;
    int local = 0;
    char *libc_block = malloc(64);

    memset(&rec, 0, sizeof rec);
    fm_set_error_handler(fi, record_error, &rec);
    for (int i = 0; i < LIVE; i++) {
        ls.n[i] = 1 + (size_t)(harness_rand(&rng) % 700);
        ls.p[i] = fm_malloc(fi, ls.n[i]);
        require_true(ls.p[i] != NULL);
        pat_fill(ls.p[i], ls.n[i], 9000u + (uint64_t)i);
    }
    p = fm_malloc(fi, 256);
    require_true(p != NULL);
    pat_fill(p, 256, 77);
    count = allocated_count(fi);
    expect_eq(fm_stats(fi, &st), 0);

#define AFTER_BAD_CALL(extra_live)                                                 \
    do {                                                                           \
        expect_eq(fm_check(fi), 0);                                                \
        expect_true(live_intact(&ls));                                             \
        expect_eq(pat_check(p, 256, 77), SIZE_MAX);                                \
        expect_eq(allocated_count(fi), count + (extra_live));                      \
    } while (0)

    expect_reported(rec, "stack address", fm_free(fi, &local));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "libc heap address", fm_free(fi, libc_block));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "misaligned p+1", fm_free(fi, p + 1));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "inside a block p+32", fm_free(fi, p + 32));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "inside a block p+16", fm_free(fi, p + 16));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "inside a block p+128", fm_free(fi, p + 128));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "root region", fm_free(fi, fm_root(fi)));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "superblock", fm_free(fi, fi->mem));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "heap start", fm_free(fi, (char *)fi->mem + HEAP_START));
    AFTER_BAD_CALL(0);
    expect_reported(rec, "past the file end",
                    fm_free(fi, (char *)fi->mem + st.file_size + 4096));
    AFTER_BAD_CALL(0);
    {
        char *x = fm_malloc(other, 100);
        require_true(x != NULL);
        expect_reported(rec, "block of another arena", fm_free(fi, x));
        AFTER_BAD_CALL(0);
        fm_free(other, x);
        expect_eq(fm_check(other), 0);
    }

    /* Double frees. */
    q = fm_malloc(fi, 100);
    require_true(q != NULL);
    fm_free(fi, q);
    expect_reported(rec, "double free", fm_free(fi, q));
    AFTER_BAD_CALL(0);

    /* Double free after coalescing: b merged into a's free chunk. */
    a = fm_malloc(fi, 200);
    b = fm_malloc(fi, 200);
    c = fm_malloc(fi, 200);
    require_true(a && b && c);
    pat_fill(c, 200, 78);
    fm_free(fi, a);
    fm_free(fi, b);
    expect_reported(rec, "double free of a coalesced block", fm_free(fi, b));
    AFTER_BAD_CALL(1);
    expect_reported(rec, "double free of the coalesced head", fm_free(fi, a));
    AFTER_BAD_CALL(1);
    expect_eq(pat_check(c, 200, 78), SIZE_MAX);
    fm_free(fi, c);
    expect_reported(rec, "double free next to the top", fm_free(fi, c));
    AFTER_BAD_CALL(0);

    /* realloc of a bad pointer: reported, NULL with EINVAL, p untouched. */
    {
        void *r;
        int before = rec.calls;
        errno = 0;
        r = fm_realloc(fi, p + 32, 100);
        expect_true(r == NULL);
        expect_eq(errno, EINVAL);
        expect_eq(rec.calls, before + 1);
        expect_eq(rec.last_err, FM_EBADPTR);
        AFTER_BAD_CALL(0);
    }

    /* Still a working heap. */
    q = fm_malloc(fi, 300);
    expect_true(block_ok(fi, q, 300));
    fm_free(fi, q);
    fm_free(fi, p);
    for (int i = 0; i < LIVE; i++)
        fm_free(fi, ls.p[i]);
    expect_eq(allocated_count(fi), 0);
    expect_eq(fm_check(fi), 0);
#undef AFTER_BAD_CALL

    free(libc_block);
    close_and_remove(other, "other.fm");
    close_and_remove(fi, "badfree.fm");
}

/*
 * A forged chunk: the bytes in front of p+32 are a copy of the bytes in
 * front of a real block, so a header-only check would accept it.  "Not a
 * chunk start" must still be detected, and the heap not corrupted.
 */
static void test_forged_free(void)
{
    struct fm_info *fi = open_fresh("forged.fm", 0);
    struct recorder rec;
    char *real, *host, *after;
    size_t span;
    int before;

    memset(&rec, 0, sizeof rec);
    fm_set_error_handler(fi, record_error, &rec);
    real = fm_malloc(fi, 40);
    after = fm_malloc(fi, 40);
    host = fm_malloc(fi, 1024);
    require_true(real && after && host);
    pat_fill(after, 40, 5);
    span = (size_t)(after - real) + 32; /* real's header, body, and after's header */
    if (after > real && span + 64 <= 1024) {
        memcpy(host, real - 32, span);
        before = rec.calls;
        fm_free(fi, host + 32);
        if (!expect_true(rec.calls == before + 1 && rec.last_err == FM_EBADPTR))
            fprintf(stderr, "  free of a forged chunk inside a live block was not reported\n");
        expect_eq(fm_check(fi), 0);
        expect_eq(allocated_count(fi), 3);
        /* Nothing may now be handed out inside host. */
        for (int i = 0; i < 50; i++) {
            char *x = fm_malloc(fi, 40);
            require_true(x != NULL);
            if (!expect_true(x + 40 <= host || x >= host + 1024)) {
                fprintf(stderr, "  block %p handed out inside the live block %p\n", (void *)x,
                        (void *)host);
                break;
            }
        }
    } else {
        printf("forged free: blocks not adjacent, case skipped\n");
    }
    close_and_remove(fi, "forged.fm");
}

/* The default handler prints a message naming the pointer and aborts. */
static void test_default_handler(void)
{
    int fds[2], status = 0;
    pid_t pid;
    char out[1024];
    ssize_t got, total = 0;

    require_eq(pipe(fds), 0);
    fflush(NULL);
    pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        struct fm_options opt;
        struct fm_info *fi = NULL;
        char *x;
        const char *path = tpath("abort.fm");
        close(fds[0]);
        dup2(fds[1], 2);
        alarm(30);
        unlink(path);
        memset(&opt, 0, sizeof opt);
        opt.flags = FM_CREATE;
        if (fm_open(path, &opt, &fi) != 0)
            _exit(2);
        x = fm_malloc(fi, 100);
        if (!x)
            _exit(3);
        fm_free(fi, x);
        fm_free(fi, x); /* must abort */
        _exit(0);
    }
    close(fds[1]);
    while (total < (ssize_t)sizeof out - 1 &&
           (got = read(fds[0], out + total, sizeof out - 1 - (size_t)total)) > 0)
        total += got;
    out[total] = 0;
    close(fds[0]);
    expect_eq(waitpid(pid, &status, 0), pid);
    if (!expect_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        fprintf(stderr, "  default handler: child status %#x, wanted SIGABRT\n", status);
    expect_true(total > 0);
    printf("default handler said: %s", out);
    if (total > 0 && out[total - 1] != '\n')
        printf("\n");
    unlink(tpath("abort.fm"));
}

/* --------------------------------------------------------------------------
 * fm_walk and fm_stats against a model.
 * ------------------------------------------------------------------------ */
struct walk_log {
    int calls;
    int stop_at; /* return 7 at this call (1-based), 0: never */
    size_t cap;
    void **p;
    size_t *size;
};

static int walk_record(void *p, size_t size, void *arg)
{
    struct walk_log *w = arg;
    if ((size_t)w->calls < w->cap) {
        w->p[w->calls] = p;
        w->size[w->calls] = size;
    }
    w->calls++;
    return w->stop_at && w->calls == w->stop_at ? 7 : 0;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static void test_walk_stats(void)
{
    enum { N = 1500 };
    struct fm_info *fi = open_fresh("walk.fm", 0);
    void **model = calloc(N, sizeof *model);
    size_t *req = calloc(N, sizeof *req);
    void **live = calloc(N, sizeof *live);
    struct walk_log w;
    struct fm_stats st;
    size_t nlive = 0, sum_usable = 0, sum_req = 0;
    int rc;

    require_true(model && req && live);
    memset(&w, 0, sizeof w);
    w.cap = N;
    w.p = calloc(N, sizeof *w.p);
    w.size = calloc(N, sizeof *w.size);
    require_true(w.p && w.size);

    /* Empty heap: no calls. */
    expect_eq(fm_walk(fi, walk_record, &w), 0);
    expect_eq(w.calls, 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(st.allocated_bytes, 0);
    expect_eq(st.free_bytes, st.heap_size);

    for (int i = 0; i < N; i++) {
        size_t n = harness_rand(&rng) % 16 == 0 ? 1 + (size_t)(harness_rand(&rng) % 300000)
                                                 : 1 + (size_t)(harness_rand(&rng) % 2000);
        model[i] = fm_malloc(fi, n);
        require_true(block_ok(fi, model[i], n));
        req[i] = n;
    }
    for (int i = 0; i < N; i++)
        if (harness_rand(&rng) % 10 < 4) {
            fm_free(fi, model[i]);
            model[i] = NULL;
        }
    for (int i = 0; i < N; i++)
        if (model[i]) {
            live[nlive++] = model[i];
            sum_usable += fm_usable_size(fi, model[i]);
            sum_req += req[i];
        }
    qsort(live, nlive, sizeof *live, cmp_ptr);

    rc = fm_walk(fi, walk_record, &w);
    expect_eq(rc, 0);
    expect_eq(w.calls, nlive);
    if ((size_t)w.calls == nlive) {
        size_t mism = 0, wsum = 0;
        for (size_t i = 0; i < nlive; i++) {
            if (w.p[i] != live[i] || w.size[i] != fm_usable_size(fi, live[i]))
                mism++;
            wsum += w.size[i];
        }
        expect_eq(mism, 0); /* address order, exactly the live blocks, usable sizes */
        expect_eq(wsum, sum_usable);
    }

    /* Early stop: the callback's value comes back, no further calls. */
    memset(w.p, 0, N * sizeof *w.p);
    w.calls = 0;
    w.stop_at = 10;
    expect_eq(fm_walk(fi, walk_record, &w), 7);
    expect_eq(w.calls, 10);
    w.stop_at = 1;
    w.calls = 0;
    expect_eq(fm_walk(fi, walk_record, &w), 7);
    expect_eq(w.calls, 1);
    w.stop_at = 0;

    /* Stats. */
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, nlive);
    expect_eq(st.allocated_bytes + st.free_bytes, st.heap_size);
    expect_eq(st.heap_size, st.file_size - HEAP_START);
    expect_true(st.allocated_bytes >= sum_usable);
    expect_true(sum_usable >= sum_req);
    expect_true(st.top_size <= st.free_bytes);
    expect_true(st.largest_free <= st.free_bytes);
    expect_true(st.largest_free >= st.top_size);
    expect_true(st.free_blocks >= 1);
    expect_true(st.allocated_bytes <= sum_usable + 64 * (uint64_t)nlive); /* headers are small */
    expect_eq(file_size(tpath("walk.fm")), (long long)st.file_size);
    printf("walk: %zu live blocks, %zu requested bytes, %" PRIu64 " allocated, %" PRIu64
           " free in %" PRIu64 " chunks, file %" PRIu64 "\n",
           nlive, sum_req, st.allocated_bytes, st.free_bytes, st.free_blocks, st.file_size);

    for (int i = 0; i < N; i++)
        fm_free(fi, model[i]);
    expect_eq(fm_trim(fi, SIZE_MAX), 0); /* thread caches give their blocks back */
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(st.allocated_bytes, 0);
    expect_eq(st.free_bytes, st.heap_size);
    expect_eq(st.free_blocks, 1); /* everything coalesced into the top */
    w.calls = 0;
    expect_eq(fm_walk(fi, walk_record, &w), 0);
    expect_eq(w.calls, 0);
    expect_eq(fm_check(fi), 0);

    free(w.p);
    free(w.size);
    free(model);
    free(req);
    free(live);
    close_and_remove(fi, "walk.fm");
}

/* --------------------------------------------------------------------------
 * fm_trim
 * ------------------------------------------------------------------------ */
static void test_trim(void)
{
    enum { NB = 200 };
    const char *path = tpath("trim.fm");
    struct fm_info *fi = open_fresh("trim.fm", 0);
    struct fm_stats st0, st1;
    void *blk[NB];
    char *keep;

    keep = fm_malloc(fi, 1000);
    require_true(keep != NULL);
    pat_fill(keep, 1000, 3);
    for (int i = 0; i < NB; i++) {
        blk[i] = fm_malloc(fi, 256 * KiB);
        require_true(blk[i] != NULL);
        memset(blk[i], i, 256 * KiB);
    }
    for (int i = 0; i < NB; i++)
        fm_free(fi, blk[i]);
    expect_eq(fm_stats(fi, &st0), 0);
    expect_true(st0.file_size >= 50 * MiB);

    expect_eq(fm_trim(fi, 0), 0);
    expect_eq(fm_stats(fi, &st1), 0);
    printf("trim: file %" PRIu64 " -> %" PRIu64 " bytes (top %" PRIu64 ")\n", st0.file_size,
           st1.file_size, st1.top_size);
    expect_true(st1.file_size < st0.file_size);
    expect_true(st1.file_size <= 2 * MiB);
    expect_eq(file_size(path), (long long)st1.file_size);
    expect_eq(st1.allocated_bytes + st1.free_bytes, st1.heap_size);
    expect_eq(st1.allocated_count, 1);
    expect_eq(pat_check(keep, 1000, 3), SIZE_MAX);
    expect_eq(fm_check(fi), 0);

    /* Grows again after a trim. */
    for (int i = 0; i < NB; i++) {
        blk[i] = fm_malloc(fi, 256 * KiB);
        require_true(blk[i] != NULL);
        pat_fill(blk[i], 256 * KiB, 100u + (uint64_t)i);
    }
    /* Keep the first 40, free the rest, trim to a 4 MiB pad. */
    for (int i = 40; i < NB; i++)
        fm_free(fi, blk[i]);
    expect_eq(fm_trim(fi, 4 * MiB), 0);
    expect_eq(fm_stats(fi, &st1), 0);
    /* "at most pad bytes stay free at its end" (fmalloc.h) */
    if (!expect_true(st1.top_size <= 4 * MiB))
        fprintf(stderr, "  fm_trim(4 MiB): top chunk %" PRIu64 " bytes, file %" PRIu64 "\n",
                st1.top_size, st1.file_size);
    expect_eq(file_size(path), (long long)st1.file_size);
    for (int i = 0; i < 40; i++)
        expect_eq(pat_check(blk[i], 256 * KiB, 100u + (uint64_t)i), SIZE_MAX);
    /* A live block at the end: trim cannot cut it. */
    {
        struct fm_stats s2;
        expect_eq(fm_trim(fi, 0), 0);
        expect_eq(fm_stats(fi, &s2), 0);
        expect_true(s2.file_size <= st1.file_size);
        expect_eq(pat_check(blk[39], 256 * KiB, 139), SIZE_MAX);
        expect_eq(fm_check(fi), 0);
    }
    expect_eq(fm_close(fi), 0);

    /* The trimmed file reopens with everything in place. */
    {
        struct fm_options opt;
        memset(&opt, 0, sizeof opt);
        fi = NULL;
        require_eq(fm_open(path, &opt, &fi), 0);
        expect_eq(fm_check(fi), 0);
        expect_eq(allocated_count(fi), 41);
        expect_eq(fm_stats(fi, &st1), 0);
        expect_eq(file_size(path), (long long)st1.file_size);
        close_and_remove(fi, "trim.fm");
    }
}

/* --------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------ */
enum { THREADS = 4, TSLOTS = 512 };

struct worker {
    struct fm_info *fi;
    int tid;
    long ops;
    uint64_t seed;
    long errors;
    char first_error[200];
    struct {
        char *p;
        size_t n;
        uint64_t key;
    } slot[TSLOTS];
};

static void worker_error(struct worker *w, const char *what, long op, int s)
{
    if (w->errors++ == 0)
        snprintf(w->first_error, sizeof w->first_error, "thread %d op %ld slot %d: %s", w->tid,
                 op, s, what);
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    uint64_t r = w->seed, serial = 0;

    for (long op = 0; op < w->ops; op++) {
        int s = (int)(harness_rand(&r) % TSLOTS);
        size_t n = 1 + (size_t)(harness_rand(&r) % 2000);
        uint64_t key = (uint64_t)w->tid << 56 | (uint64_t)s << 40 | ++serial;
        unsigned kind = (unsigned)(harness_rand(&r) % 4);
        char *p = w->slot[s].p;

        if (!p) {
            p = kind == 0 ? fm_calloc(w->fi, 1, n) : fm_malloc(w->fi, n);
            if (!p || (uintptr_t)p % 16 != 0 || fm_usable_size(w->fi, p) < n) {
                worker_error(w, "bad block from malloc/calloc", op, s);
                if (!p)
                    continue;
            }
            if (kind == 0 && !all_zero(p, n))
                worker_error(w, "calloc not zeroed", op, s);
        } else {
            if (pat_check(p, w->slot[s].n, w->slot[s].key) != SIZE_MAX)
                worker_error(w, "pattern damaged", op, s);
            if (kind < 2) {
                fm_free(w->fi, p);
                w->slot[s].p = NULL;
                continue;
            }
            {
                size_t keep = n < w->slot[s].n ? n : w->slot[s].n;
                char *q = fm_realloc(w->fi, p, n);
                if (!q) {
                    worker_error(w, "realloc failed", op, s);
                    continue;
                }
                if ((uintptr_t)q % 16 != 0 || fm_usable_size(w->fi, q) < n)
                    worker_error(w, "bad block from realloc", op, s);
                if (pat_check(q, keep, w->slot[s].key) != SIZE_MAX)
                    worker_error(w, "realloc lost content", op, s);
                p = q;
            }
        }
        pat_fill(p, n, key);
        w->slot[s].p = p;
        w->slot[s].n = n;
        w->slot[s].key = key;
    }
    return NULL;
}

static void test_threads(void)
{
    struct fm_info *fi = open_fresh("threads.fm", 0);
    static struct worker w[THREADS];
    pthread_t th[THREADS];
    long ops = 200000;
    struct fm_stats st;
    size_t bad = 0;

    if (getenv("FM_TEST_THREAD_OPS"))
        ops = atol(getenv("FM_TEST_THREAD_OPS"));
    for (int t = 0; t < THREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].fi = fi;
        w[t].tid = t;
        w[t].ops = ops;
        w[t].seed = harness_rand(&rng) | 1;
        require_eq(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        require_eq(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < THREADS; t++) {
        expect_eq(w[t].errors, 0);
        if (w[t].errors)
            fprintf(stderr, "  %ld errors, first: %s\n", w[t].errors, w[t].first_error);
    }
    expect_eq(fm_check(fi), 0);
    {
        uint64_t live = 0;
        for (int t = 0; t < THREADS; t++)
            for (int s = 0; s < TSLOTS; s++)
                if (w[t].slot[s].p) {
                    live++;
                    if (pat_check(w[t].slot[s].p, w[t].slot[s].n, w[t].slot[s].key) != SIZE_MAX)
                        bad++;
                }
        expect_eq(allocated_count(fi), live);
    }
    expect_eq(bad, 0);
    for (int t = 0; t < THREADS; t++)
        for (int s = 0; s < TSLOTS; s++)
            fm_free(fi, w[t].slot[s].p);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_check(fi), 0);
    printf("threads: %d x %ld ops, file %" PRIu64 " bytes\n", THREADS, ops, st.file_size);
    close_and_remove(fi, "threads.fm");
}

int main(void)
{
    rng = harness_seed();
    test_boundaries();
    test_calloc();
    test_realloc();
    test_memalign();
    test_walk_stats();
    test_trim();
    test_bad_free();
    test_default_handler();
    test_threads();
    test_forged_free(); /* last: a library that accepts the forgery corrupts that arena */
    return api_done();
}
