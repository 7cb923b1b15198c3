/*
 * gen_corpus.c -- writes the seed corpora of the fuzz targets.
 *
 *   gen_corpus OPEN_DIR OPS_DIR
 *
 * OPEN_DIR gets arena files (64 KiB, the smallest arena) of several shapes
 * for fuzz_open: fresh, with blocks, with free chunks in small and tree
 * bins and a designated victim, dirty without and with an operation in the
 * undo log (a child stopped at a crash point, lib/log.h), and a few
 * non-arenas (empty, zero-filled, truncated header).  OPS_DIR gets
 * operation programs for fuzz_ops (fuzz_ops_format.h): one of each
 * operation, and workloads aimed at each part of the heap.
 *
 * The arena id is random at creation, so two runs never write the same
 * bytes; the shapes are the same.  Run through make_corpus.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_util.h"
#include "fmalloc.h"
#include "fuzz_ops_format.h"
#include "log.h"

static char open_dir[512], ops_dir[512], work[600], base_path[600];

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void copy_file(const char *from, const char *to)
{
    static char buf[1 << 16];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0)
        die(from);
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            die(to);
    close(in);
    close(out);
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len))
        die(p);
    close(fd);
    printf("  %s (%zu bytes)\n", p, len);
}

static void keep(const char *from, const char *name)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", open_dir, name);
    copy_file(from, p);
    struct stat st;
    stat(p, &st);
    printf("  %s (%lld bytes)\n", p, (long long)st.st_size);
}

/* ---- arena shapes ------------------------------------------------------------ */

static fm_off_t *slot(struct fm_info *fi, int i)
{
    return (fm_off_t *)fm_root(fi) + i;
}

/* Small arenas: the seeds stay small files. */
static struct fm_options seed_options(unsigned flags)
{
    return (struct fm_options){.initial_size = 65536, .max_size = 64u << 20, .flags = flags};
}

static void put(struct fm_info *fi, int i, size_t n)
{
    char *p = fm_malloc_to(fi, slot(fi, i), n);
    if (!p)
        die("fm_malloc_to");
    for (size_t j = 0; j < n; j++)
        p[j] = (char)(i * 31 + (int)j);
}

static void finish(struct fm_info *fi)
{
    if (fm_check(fi) != 0) {
        fprintf(stderr, "gen_corpus: shape fails fm_check: %s\n", fm_check_message(fi));
        exit(1);
    }
    fm_close(fi);
}

/* Blocks of every class, all in use. */
static void shape_blocks(struct fm_info *fi)
{
    static const size_t sizes[] = {0, 8, 24, 40, 100, 200, 480, 520, 1000, 3000, 9000};
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++)
        put(fi, i, sizes[i]);
}

/*
 * Free chunks in small bins (two of one size: a list), in tree bins (two of
 * 600 bytes: a trie node with a list member; 1000, 3000 and 8000: nodes in
 * other bins), a designated victim, and in-use guards between them so that
 * nothing coalesces.  Slots: 2i the chunk, 2i+1 its guard.
 */
static const size_t bin_sizes[] = {40, 40, 100, 300, 600, 600, 640, 1000, 3000, 3000, 8000, 400};
#define NBIN (int)(sizeof bin_sizes / sizeof bin_sizes[0])

static void shape_bins(struct fm_info *fi)
{
    for (int i = 0; i < NBIN; i++) {
        put(fi, 2 * i, bin_sizes[i]);
        put(fi, 2 * i + 1, 16);
    }
    put(fi, 2 * NBIN, 2000); /* stays: keeps the last chunks off the top */
    for (int i = 0; i < NBIN; i++)
        if (i != 2) /* one stays in use */
            fm_free_from(fi, slot(fi, 2 * i));
    /* A small request split from the 400-byte chunk leaves a dv behind. */
    put(fi, 2 * NBIN + 1, 64);
}

typedef void (*op_fn)(struct fm_info *fi);

/* Operations whose crash leaves a full undo log in a bins-shaped arena. */
static void op_free_merge(struct fm_info *fi) { fm_free_from(fi, slot(fi, 2 * 4 + 1)); }
static void op_malloc_tree(struct fm_info *fi) { put(fi, 40, 560); }
static void op_malloc_small(struct fm_info *fi) { put(fi, 40, 40); }
static void op_realloc_move(struct fm_info *fi)
{
    if (!fm_realloc_to(fi, slot(fi, 2 * 2), 5000))
        die("fm_realloc_to");
}
static void op_memalign(struct fm_info *fi)
{
    if (!fm_memalign(fi, 1024, 200))
        die("fm_memalign");
}
static void op_free_big(struct fm_info *fi) { fm_free_from(fi, slot(fi, 2 * NBIN)); }

/* Steps op takes on a copy of base_path. */
static long count_steps(op_fn op)
{
    copy_file(base_path, work);
    struct fm_info *fi = require_open(work, seed_options(0));
    fm__cp_arm(0);
    op(fi);
    long n = fm__cp_disarm();
    fm_close(fi);
    return n;
}

/* A copy of base_path on which a child ran op and stopped at step k. */
static void crash_at(op_fn op, long k, const char *name)
{
    copy_file(base_path, work);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        struct fm_info *fi = require_open(work, seed_options(0));
        fm__cp_arm(k);
        op(fi);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        die("waitpid");
    if (WEXITSTATUS(st) != FM_CP_EXIT && WEXITSTATUS(st) != 0) {
        fprintf(stderr, "gen_corpus: crash child exited %d\n", WEXITSTATUS(st));
        exit(1);
    }
    keep(work, name);
}

static void make_open_corpus(void)
{
    struct fm_info *fi;
    char name[64];

    printf("%s:\n", open_dir);
    fi = fresh_arena(work, seed_options(FM_EXCL));
    finish(fi);
    keep(work, "fresh_clean.arena");

    /* Dirty with an empty log: opened read-write, never closed. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        require_open(work, seed_options(0));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    keep(work, "fresh_dirty.arena");

    fi = fresh_arena(work, seed_options(FM_EXCL));
    shape_blocks(fi);
    finish(fi);
    keep(work, "blocks_clean.arena");

    fi = fresh_arena(base_path, seed_options(FM_EXCL));
    shape_bins(fi);
    finish(fi);
    keep(base_path, "bins_clean.arena");

    /* The same, dirty: its state part is not checksummed, so a fuzzer can
     * change bin heads and the top directly. */
    copy_file(base_path, work);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        require_open(work, seed_options(0));
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    keep(work, "bins_dirty.arena");

    /* Dirty with an operation in flight: half way, and at its commit. */
    static const struct {
        const char *name;
        op_fn op;
    } ops[] = {
        {"free_merge", op_free_merge},   {"malloc_tree", op_malloc_tree},
        {"malloc_small", op_malloc_small}, {"realloc_move", op_realloc_move},
        {"memalign", op_memalign},       {"free_to_top", op_free_big},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        long steps = count_steps(ops[i].op);
        snprintf(name, sizeof name, "log_%s_half.arena", ops[i].name);
        crash_at(ops[i].op, steps / 2, name);
        snprintf(name, sizeof name, "log_%s_commit.arena", ops[i].name);
        crash_at(ops[i].op, steps, name); /* the step before the log is cleared */
    }

    /* Not arenas, or not whole ones. */
    static unsigned char buf[65536];
    write_bytes(open_dir, "empty.bin", buf, 0);
    write_bytes(open_dir, "zero_4k.bin", buf, 4096);
    int fd = open(base_path, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
        die(base_path);
    close(fd);
    write_bytes(open_dir, "header_only.bin", buf, 4096);
    write_bytes(open_dir, "magic_only.bin", buf, 8);
}

/* ---- operation programs ---------------------------------------------------- */

struct prog {
    unsigned char b[4096];
    size_t n;
};

static void emit(struct prog *p, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (int i = 0; i < count && p->n < sizeof p->b; i++)
        p->b[p->n++] = (unsigned char)va_arg(ap, int);
    va_end(ap);
}

/* size2 encoding (fuzz_ops_format.h) */
static int sz_hi(size_t n)
{
    if (n < 64)
        return 0;
    if (n < 512)
        return 0x40 | (int)(n >> 8);
    if (n < 512 + 16384)
        return 0x80 | (int)((n - 512) >> 8);
    return 0xc0 | (int)((n >> 3) >> 8 & 63);
}

static int sz_lo(size_t n)
{
    if (n < 512)
        return (int)(n & 255);
    if (n < 512 + 16384)
        return (int)((n - 512) & 255);
    return (int)((n >> 3) & 255);
}

#define SZ(n) sz_hi(n), sz_lo(n)

static uint64_t rng = 0x2545f4914f6cdd1dull;

static unsigned rnd(unsigned below)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned)((rng * 0x2545f4914f6cdd1dull) >> 33) % below;
}

static void save(struct prog *p, const char *name)
{
    write_bytes(ops_dir, name, p->b, p->n);
    p->n = 0;
}

static void make_ops_corpus(void)
{
    struct prog p = {{0}, 0};
    printf("%s:\n", ops_dir);

    /* Every operation once. */
    emit(&p, 4, OP_MALLOC, 0, SZ(100));
    emit(&p, 5, OP_CALLOC, 1, 7, SZ(30));
    emit(&p, 4, OP_REALLOC, 0, SZ(700));
    emit(&p, 5, OP_MEMALIGN, 2, 12, SZ(200));
    emit(&p, 4, OP_MALLOC_TO, 3, SZ(5000));
    emit(&p, 4, OP_REALLOC_TO, 3, SZ(9000));
    emit(&p, 2, OP_REWRITE, 3);
    emit(&p, 1, OP_CHECK);
    emit(&p, 2, OP_FREE, 1);
    emit(&p, 2, OP_FREE_FROM, 3);
    emit(&p, 3, OP_BAD_FREE, 0, 1);
    emit(&p, 3, OP_BAD_FREE, 0, 2);
    emit(&p, 4, OP_MALLOC, 5, SZ(100000));
    emit(&p, 2, OP_FREE, 5);
    emit(&p, 2, OP_TRIM, 0);
    emit(&p, 2, OP_TOO_BIG, 1);
    emit(&p, 11, OP_POKE, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8);
    emit(&p, 4, OP_MALLOC, 6, SZ(40));
    emit(&p, 11, OP_UAF_WRITE, 6, 0, 64, 0, 0, 0, 0, 0, 0, 0);
    emit(&p, 7, OP_CRASH, 0, 6, SZ(300), 5, 0);
    emit(&p, 2, OP_REOPEN, 1);
    emit(&p, 1, OP_CHECK);
    save(&p, "each_op.bin");

    /* Small-bin churn: many sizes, frees in between, then reuse. */
    for (int i = 0; i < 120; i++) {
        int k = (int)rnd(NSLOTS);
        if (rnd(3) == 0)
            emit(&p, 2, OP_FREE, k);
        else
            emit(&p, 4, OP_MALLOC, k, SZ(rnd(500)));
    }
    emit(&p, 1, OP_CHECK);
    save(&p, "small_churn.bin");

    /* Tree bins: sizes from 512 to 16 KiB, equal sizes, splits and merges. */
    for (int i = 0; i < 120; i++) {
        int k = (int)rnd(NSLOTS);
        size_t n = 512 + 16 * rnd(4) + (rnd(2) ? 0 : rnd(12000));
        switch (rnd(4)) {
        case 0: emit(&p, 2, OP_FREE, k); break;
        case 1: emit(&p, 4, OP_REALLOC, k, SZ(n)); break;
        default: emit(&p, 4, OP_MALLOC, k, SZ(n)); break;
        }
    }
    emit(&p, 1, OP_CHECK);
    save(&p, "tree_churn.bin");

    /* Growth and trim. */
    for (int i = 0; i < 24; i++) {
        int k = (int)rnd(8);
        emit(&p, 4, OP_MALLOC, k, SZ(20000 + rnd(110000)));
        if (rnd(2))
            emit(&p, 2, OP_FREE, (int)rnd(8));
        if (rnd(4) == 0)
            emit(&p, 2, OP_TRIM, (int)rnd(4));
    }
    emit(&p, 2, OP_REOPEN, 0);
    save(&p, "grow_trim.bin");

    /* Realloc chains, in place and moving, plain and linked. */
    for (int i = 0; i < 100; i++) {
        int k = (int)rnd(6);
        size_t n = rnd(3) ? rnd(600) : rnd(20000);
        emit(&p, 4, rnd(2) ? OP_REALLOC : OP_REALLOC_TO, k, SZ(n));
    }
    emit(&p, 1, OP_CHECK);
    save(&p, "realloc_chain.bin");

    /* Aligned blocks of every alignment. */
    for (int a = 0; a <= 16; a++)
        emit(&p, 5, OP_MEMALIGN, a % NSLOTS, a, SZ(rnd(3000)));
    for (int a = 0; a <= 16; a += 2)
        emit(&p, 2, OP_FREE, a);
    emit(&p, 1, OP_CHECK);
    save(&p, "memalign.bin");

    /* Linked operations stopped at crash points. */
    for (int i = 0; i < 6; i++)
        emit(&p, 4, OP_MALLOC_TO, i, SZ(100 + 300 * (size_t)i));
    for (int i = 0; i < 8; i++)
        emit(&p, 7, OP_CRASH, i % 3, (int)rnd(8), SZ(rnd(2) ? rnd(500) : 512 + rnd(4000)),
             (int)rnd(80), 0);
    save(&p, "crash_linked.bin");

    /* Invalid frees of every kind between valid operations. */
    for (int i = 0; i < 8; i++) {
        emit(&p, 4, OP_MALLOC, i, SZ(16 + 50 * (size_t)i));
        emit(&p, 3, OP_BAD_FREE, i, i % 4);
    }
    for (int i = 0; i < 8; i++) /* user data in the words a free chunk uses for links */
        emit(&p, 11, OP_POKE, i, i, (int)rnd(256), (int)rnd(256), 0, 0, 0, 0, 0, i ? 0 : 0x80);
    for (int i = 0; i < 8; i++)
        emit(&p, 2, OP_FREE, i);
    emit(&p, 2, OP_TOO_BIG, 0);
    emit(&p, 2, OP_TOO_BIG, 2);
    emit(&p, 2, OP_TOO_BIG, 3);
    save(&p, "bad_frees.bin");


    /* Random programs. */
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 500; i++)
            emit(&p, 1, (int)rnd(256));
        char name[32];
        snprintf(name, sizeof name, "random_%d.bin", r);
        save(&p, name);
    }

    /* (After the random programs, whose bytes stay as they were.)
     * Writes after free over a cached block's link and marker (tcache.h T4):
     * into the superblock, wild, zero, another block, random bytes. */
    for (int i = 0; i < 16; i++)
        emit(&p, 4, OP_MALLOC, i, SZ(16 + 40 * (size_t)(i % 8)));
    for (int i = 8; i < 16; i++)
        emit(&p, 2, OP_FREE, i);
    for (int i = 0; i < 8; i++) {
        int w = i % 2, v0 = i == 0 ? 64 : i == 3 ? 0x30 : (int)rnd(256);
        int v1 = i == 3 ? 0x30 : i == 2 ? 0 : (int)rnd(256);
        int hi = i == 1 ? 0x41 : 0;
        emit(&p, 11, OP_UAF_WRITE, i, w + 2 * (i == 7), v0, v1, 0, 0, 0, 0, 0, hi);
        emit(&p, 4, OP_MALLOC, i, SZ(16 + 40 * (size_t)i));
    }
    emit(&p, 1, OP_CHECK);
    save(&p, "use_after_free.bin");
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s OPEN_CORPUS_DIR OPS_CORPUS_DIR\n", argv[0]);
        return 2;
    }
    snprintf(open_dir, sizeof open_dir, "%s", argv[1]);
    snprintf(ops_dir, sizeof ops_dir, "%s", argv[2]);
    char tmp[] = "/tmp/fmcorpus.XXXXXX";
    if (!mkdtemp(tmp))
        die("mkdtemp");
    snprintf(work, sizeof work, "%s/work.arena", tmp);
    snprintf(base_path, sizeof base_path, "%s/base.arena", tmp);
    make_open_corpus();
    make_ops_corpus();
    unlink(work);
    unlink(base_path);
    rmdir(tmp);
    return 0;
}
