/*
 * mmap_stress.c -- a random workload that is checked across process runs.
 *
 * Every run shares two files in the working directory (or --dir D):
 *
 *   store.alloc   the arena under test;
 *   blocks.alloc  this tool's own record of what the arena must hold: each
 *                 live block's offset, size and fill value, the seed of the
 *                 next run and the allocation figures the last run left.
 *
 * The tool never takes its expectations from the arena: a run first checks
 * every block recorded by the previous run against the arena, then runs
 * "Allocate checks" (fill to LIVE_TARGET blocks, free a random selection)
 * and "Realloc checks" (the same with fm_realloc of new and live blocks),
 * frees some more, checks everything plus fm_check, closes the arena and
 * only then replaces blocks.alloc (temp file, fsync, rename, fsync of the
 * directory).  So `for i in $(seq 100); do mmap_stress; done` walks one
 * long history through 100 opens and closes.
 *
 * Each run's seed comes from blocks.alloc (drawn from the previous run's
 * generator), so every run explores a new history; `--seed N` overrides it.
 * To replay a failing run, restore the two files as they were before it and
 * run again (with the printed seed).
 *
 * Any mismatch prints what differs (block index, offset, expected, found)
 * and exits 1; bad usage exits 2.
 *
 * blocks.alloc, version 1 (all integers little-endian):
 *
 *    0   8  magic "FMSTRESS"
 *    8   4  format version (1)
 *   12   4  header size in bytes (64)
 *   16   4  record size in bytes (16)
 *   20   4  reserved, 0
 *   24   8  number of records
 *   32   8  seed of the next run
 *   40   8  runs completed
 *   48   8  fm_stats allocated_bytes when the last run ended
 *   56   8  fm_stats allocated_count when the last run ended
 *   64      records: offset (8), size (4), fill (1), 3 zero bytes
 *  end-8 8  FNV-1a 64 of every byte before it
 *
 * The file must be exactly 64 + 16 * records + 8 bytes long; anything else
 * (or a bad magic, version, checksum or record) is reported as damage.
 */
#include "stress_util.h"

#include <fmalloc.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_NAME "store.alloc"
#define BLOCKS_NAME "blocks.alloc"

#define LIVE_TARGET 4096          /* live blocks after each fill */
#define DEFAULT_ROUNDS 16         /* passes per phase */
#define DEFAULT_MAX_BLOCK 255     /* largest random block size, bytes */
#define MAX_MAX_BLOCK (1u << 24)  /* --max-block limit: sizes are stored in 32 bits */
#define ARENA_INITIAL_SIZE (1u << 20)
#define MAX_REPORTED 20           /* mismatches listed before giving up */

#define BF_MAGIC "FMSTRESS"
#define BF_VERSION 1u
#define BF_HEADER_BYTES 64u
#define BF_RECORD_BYTES 16u
#define BF_TRAILER_BYTES 8u
#define BF_MAX_RECORDS (1ull << 24)

/* One block the arena must hold: `size` bytes of `fill` at `off`. */
struct block {
    fm_off_t off;
    uint32_t size;
    uint8_t fill; /* 'a'..'z' */
};

/* What blocks.alloc says (the previous run's legacy). */
struct expectations {
    uint64_t next_seed;
    uint64_t runs;            /* runs completed before this one */
    uint64_t allocated_bytes; /* fm_stats at the end of the last run */
    uint64_t allocated_count;
    uint64_t count;           /* records */
    struct block *blocks;
};

struct config {
    const char *dir;
    bool have_seed;
    uint64_t seed;
    unsigned rounds;
    uint32_t max_block;
    bool quiet;
    bool dump_blocks;
};

/* One run: the open arena, the live block table and the generator. */
struct run {
    const struct config *cfg;
    struct fm_info *fi;
    struct block *blocks; /* live blocks, unordered */
    size_t count;
    size_t cap;
    struct stress_rng rng;
    uint64_t seed;
    uint64_t run_number; /* 1 for the first run in a directory */
    int lib_errors;      /* reports through the fm error handler */
    char store_path[4096];
    char blocks_path[4096];
    char tmp_path[4096];
};

/* ------------------------------------------------------------------------
 * Failure reporting
 * ---------------------------------------------------------------------- */

static struct run *current_run; /* for the replay hint in run_fail() */

static void run_fail(void)
{
    if (current_run)
        fprintf(stderr,
                "mmap_stress: FAILED in run %" PRIu64 " (seed %" PRIu64
                "); files kept in %s\n",
                current_run->run_number, current_run->seed, current_run->cfg->dir);
    exit(1);
}

static void run_on_lib_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    struct run *r = arg;
    (void)fi;
    r->lib_errors++;
    fprintf(stderr, "mmap_stress: library reported %s: %s\n", fm_strerror(err), msg);
}

static void run_require_no_lib_error(struct run *r, const char *what)
{
    if (r->lib_errors) {
        fprintf(stderr, "mmap_stress: the library reported an error during %s\n", what);
        run_fail();
    }
}

/* ------------------------------------------------------------------------
 * Little-endian encoding and the blocks.alloc checksum
 * ---------------------------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* ------------------------------------------------------------------------
 * blocks.alloc: load (validate everything) and save (atomically)
 * ---------------------------------------------------------------------- */

/* Read a whole file.  0, or an errno (ENOENT if it is missing). */
static int file_read_all(const char *path, unsigned char **out, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            free(buf);
            close(fd);
            return err;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

/* Complain about a damaged blocks.alloc and fail. */
static void blocks_damaged(const char *path, const char *why, uint64_t a, uint64_t b)
{
    fprintf(stderr,
            "mmap_stress: %s is damaged (%s: %" PRIu64 " vs %" PRIu64
            "); not trusting it.\n"
            "mmap_stress: remove %s and %s to start a new history.\n",
            path, why, a, b, STORE_NAME, BLOCKS_NAME);
    exit(1);
}

/*
 * Load and validate blocks.alloc.  Returns false if the file does not
 * exist; exits with a message if it cannot be read or is damaged.
 */
static bool expectations_load(const char *path, struct expectations *e)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int err = file_read_all(path, &buf, &len);
    if (err == ENOENT)
        return false;
    if (err) {
        fprintf(stderr, "mmap_stress: cannot read %s: %s\n", path, strerror(err));
        exit(1);
    }
    if (len < BF_HEADER_BYTES + BF_TRAILER_BYTES)
        blocks_damaged(path, "file shorter than header and checksum (bytes)", len,
                       BF_HEADER_BYTES + BF_TRAILER_BYTES);
    if (memcmp(buf, BF_MAGIC, 8) != 0)
        blocks_damaged(path, "bad magic (first 8 bytes as a number vs expected)",
                       get_le(buf, 8), get_le((const unsigned char *)BF_MAGIC, 8));
    if (get_le(buf + 8, 4) != BF_VERSION)
        blocks_damaged(path, "unsupported format version", get_le(buf + 8, 4), BF_VERSION);
    if (get_le(buf + 12, 4) != BF_HEADER_BYTES)
        blocks_damaged(path, "header size", get_le(buf + 12, 4), BF_HEADER_BYTES);
    if (get_le(buf + 16, 4) != BF_RECORD_BYTES)
        blocks_damaged(path, "record size", get_le(buf + 16, 4), BF_RECORD_BYTES);
    uint64_t count = get_le(buf + 24, 8);
    if (count > BF_MAX_RECORDS)
        blocks_damaged(path, "impossible record count (count vs limit)", count, BF_MAX_RECORDS);
    uint64_t want_len = BF_HEADER_BYTES + count * BF_RECORD_BYTES + BF_TRAILER_BYTES;
    if (len != want_len)
        blocks_damaged(path, "file length (bytes) does not match its record count", len,
                       want_len);
    uint64_t stored = get_le(buf + len - BF_TRAILER_BYTES, 8);
    uint64_t computed = fnv1a64(buf, len - BF_TRAILER_BYTES);
    if (stored != computed)
        blocks_damaged(path, "checksum mismatch (stored vs computed)", stored, computed);

    e->next_seed = get_le(buf + 32, 8);
    e->runs = get_le(buf + 40, 8);
    e->allocated_bytes = get_le(buf + 48, 8);
    e->allocated_count = get_le(buf + 56, 8);
    e->count = count;
    e->blocks = calloc(count ? count : 1, sizeof *e->blocks);
    if (!e->blocks) {
        fprintf(stderr, "mmap_stress: out of memory\n");
        exit(1);
    }
    for (uint64_t i = 0; i < count; i++) {
        const unsigned char *rec = buf + BF_HEADER_BYTES + i * BF_RECORD_BYTES;
        struct block *b = &e->blocks[i];
        b->off = get_le(rec, 8);
        b->size = (uint32_t)get_le(rec + 8, 4);
        b->fill = rec[12];
        if (b->off == 0 || b->fill < 'a' || b->fill > 'z' || rec[13] || rec[14] || rec[15]) {
            fprintf(stderr, "mmap_stress: %s: record %" PRIu64 " is invalid\n", path, i);
            blocks_damaged(path, "invalid record (index vs count)", i, count);
        }
    }
    free(buf);
    return true;
}

static void write_all_or_fail(int fd, const unsigned char *p, size_t n, const char *path)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mmap_stress: cannot write %s: %s\n", path, strerror(errno));
            run_fail();
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Replace blocks.alloc atomically: temp file, fsync, rename, fsync dir. */
static void expectations_save(struct run *r, const struct fm_stats *st, uint64_t next_seed)
{
    size_t len = BF_HEADER_BYTES + r->count * BF_RECORD_BYTES + BF_TRAILER_BYTES;
    unsigned char *buf = calloc(1, len);
    if (!buf) {
        fprintf(stderr, "mmap_stress: out of memory\n");
        run_fail();
    }
    memcpy(buf, BF_MAGIC, 8);
    put_le(buf + 8, BF_VERSION, 4);
    put_le(buf + 12, BF_HEADER_BYTES, 4);
    put_le(buf + 16, BF_RECORD_BYTES, 4);
    put_le(buf + 24, r->count, 8);
    put_le(buf + 32, next_seed, 8);
    put_le(buf + 40, r->run_number, 8);
    put_le(buf + 48, st->allocated_bytes, 8);
    put_le(buf + 56, st->allocated_count, 8);
    for (size_t i = 0; i < r->count; i++) {
        unsigned char *rec = buf + BF_HEADER_BYTES + i * BF_RECORD_BYTES;
        put_le(rec, r->blocks[i].off, 8);
        put_le(rec + 8, r->blocks[i].size, 4);
        rec[12] = r->blocks[i].fill;
    }
    put_le(buf + len - BF_TRAILER_BYTES, fnv1a64(buf, len - BF_TRAILER_BYTES), 8);

    int fd = open(r->tmp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "mmap_stress: cannot create %s: %s\n", r->tmp_path, strerror(errno));
        run_fail();
    }
    write_all_or_fail(fd, buf, len, r->tmp_path);
    if (fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "mmap_stress: cannot sync %s: %s\n", r->tmp_path, strerror(errno));
        run_fail();
    }
    free(buf);
    if (rename(r->tmp_path, r->blocks_path) != 0) {
        fprintf(stderr, "mmap_stress: cannot rename %s to %s: %s\n", r->tmp_path,
                r->blocks_path, strerror(errno));
        run_fail();
    }
    int dfd = open(r->cfg->dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd); /* best effort: some file systems refuse a directory fsync */
        close(dfd);
    }
}

/* ------------------------------------------------------------------------
 * The live block table
 * ---------------------------------------------------------------------- */

static void blocks_add(struct run *r, fm_off_t off, size_t size, uint8_t fill)
{
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : LIVE_TARGET;
        struct block *nb = realloc(r->blocks, ncap * sizeof *nb);
        if (!nb) {
            fprintf(stderr, "mmap_stress: out of memory\n");
            run_fail();
        }
        r->blocks = nb;
        r->cap = ncap;
    }
    r->blocks[r->count++] = (struct block){.off = off, .size = (uint32_t)size, .fill = fill};
}

/* Forget block i (the last block takes its place). */
static void blocks_remove(struct run *r, size_t i)
{
    r->blocks[i] = r->blocks[--r->count];
}

static uint8_t random_fill(struct run *r)
{
    return (uint8_t)('a' + stress_rng_below(&r->rng, 26));
}

static size_t random_size(struct run *r)
{
    return (size_t)stress_rng_below(&r->rng, (uint64_t)r->cfg->max_block + 1);
}

/*
 * Check that block i is live in the arena with at least its size usable
 * and that its first min(prefix, size) bytes hold its fill value.  On a
 * mismatch print what differs and return false.
 */
static bool block_verify(struct run *r, size_t i, size_t prefix, const char *when)
{
    const struct block *b = &r->blocks[i];
    unsigned char *p = fm_pointer(r->fi, b->off);
    if (!p) {
        fprintf(stderr,
                "mmap_stress: mismatch %s: block %zu at offset %" PRIu64
                " (size %" PRIu32 ", fill '%c'): fm_pointer() gives NULL (offset outside the arena)\n",
                when, i, b->off, b->size, b->fill);
        return false;
    }
    int errors_before = r->lib_errors;
    size_t usable = fm_usable_size(r->fi, p);
    if (r->lib_errors != errors_before || usable < b->size) {
        fprintf(stderr,
                "mmap_stress: mismatch %s: block %zu at offset %" PRIu64
                " (size %" PRIu32 ", fill '%c'): expected usable size >= %" PRIu32
                ", found %zu\n",
                when, i, b->off, b->size, b->fill, b->size, usable);
        return false;
    }
    size_t n = prefix < b->size ? prefix : b->size;
    size_t bad = stress_find_mismatch(p, n, b->fill);
    if (bad < n) {
        fprintf(stderr,
                "mmap_stress: mismatch %s: block %zu at offset %" PRIu64
                " (size %" PRIu32 "): expected '%c' (0x%02x) at byte %zu, found 0x%02x;"
                " %zu of %zu bytes differ\n",
                when, i, b->off, b->size, b->fill, b->fill, bad, p[bad],
                stress_count_mismatch(p, n, b->fill), n);
        return false;
    }
    return true;
}

static void block_require(struct run *r, size_t i, size_t prefix, const char *when)
{
    if (!block_verify(r, i, prefix, when))
        run_fail();
}

static int block_cmp_off(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * No two live blocks may overlap: sort a copy by offset and check that
 * each block's usable bytes end before the next block starts.  Catches
 * overlaps the fill values cannot (two blocks with the same fill).
 */
static bool blocks_verify_disjoint(struct run *r, const char *when)
{
    if (r->count < 2)
        return true;
    struct block *s = malloc(r->count * sizeof *s);
    if (!s) {
        fprintf(stderr, "mmap_stress: out of memory\n");
        run_fail();
    }
    memcpy(s, r->blocks, r->count * sizeof *s);
    qsort(s, r->count, sizeof *s, block_cmp_off);
    bool ok = true;
    for (size_t i = 0; i + 1 < r->count; i++) {
        size_t usable = fm_usable_size(r->fi, fm_pointer(r->fi, s[i].off));
        if (s[i].off + (usable ? usable : 1) > s[i + 1].off) {
            fprintf(stderr,
                    "mmap_stress: mismatch %s: block at offset %" PRIu64
                    " (size %" PRIu32 ", usable %zu) overlaps block at offset %" PRIu64
                    " (size %" PRIu32 ")\n",
                    when, s[i].off, s[i].size, usable, s[i + 1].off, s[i + 1].size);
            ok = false;
            break;
        }
    }
    free(s);
    return ok;
}

/* Check every live block, their disjointness and fm_check. */
static void blocks_require_all(struct run *r, const char *when)
{
    for (size_t i = 0; i < r->count; i++)
        block_require(r, i, SIZE_MAX, when);
    if (!blocks_verify_disjoint(r, when))
        run_fail();
    int rc = fm_check(r->fi);
    if (rc != 0) {
        fprintf(stderr, "mmap_stress: fm_check %s: %s: %s\n", when, fm_strerror(rc),
                fm_check_message(r->fi));
        run_fail();
    }
    run_require_no_lib_error(r, when);
}

/* ------------------------------------------------------------------------
 * The workload
 * ---------------------------------------------------------------------- */

/*
 * Allocate random blocks until LIVE_TARGET are live.  With `resize`, each
 * new block is resized with fm_realloc before it is filled (a resize to 0
 * frees it and must return NULL).  Each block is checked once filled.
 */
static void phase_fill(struct run *r, bool resize)
{
    while (r->count < LIVE_TARGET) {
        size_t size = random_size(r);
        unsigned char *p = fm_malloc(r->fi, size);
        if (!p) {
            fprintf(stderr, "mmap_stress: fm_malloc(%zu) failed with %d live blocks: %s\n",
                    size, (int)r->count, strerror(errno));
            run_fail();
        }
        if (resize) {
            size_t nsize = random_size(r);
            unsigned char *q = fm_realloc(r->fi, p, nsize);
            if (nsize == 0) {
                if (q) {
                    fprintf(stderr,
                            "mmap_stress: fm_realloc(p, 0) of a new %zu-byte block at offset %"
                            PRIu64 " returned a block (offset %" PRIu64 "), expected NULL\n",
                            size, fm_offset(r->fi, p), fm_offset(r->fi, q));
                    run_fail();
                }
                continue;
            }
            if (!q) {
                fprintf(stderr,
                        "mmap_stress: fm_realloc(%zu -> %zu) of a new block failed: %s\n",
                        size, nsize, strerror(errno));
                run_fail();
            }
            p = q;
            size = nsize;
        }
        uint8_t fill = random_fill(r);
        memset(p, fill, size);
        blocks_add(r, fm_offset(r->fi, p), size, fill);
        block_require(r, r->count - 1, SIZE_MAX, "after filling");
    }
    run_require_no_lib_error(r, "allocation");
}

/* Free a random number of live blocks at random positions, checking each. */
static void phase_free_some(struct run *r)
{
    uint64_t n = stress_rng_below(&r->rng, (uint64_t)r->count + 1);
    for (uint64_t k = 0; k < n; k++) {
        size_t i = (size_t)stress_rng_below(&r->rng, r->count);
        block_require(r, i, SIZE_MAX, "before free");
        fm_free(r->fi, fm_pointer(r->fi, r->blocks[i].off));
        blocks_remove(r, i);
    }
    run_require_no_lib_error(r, "free");
}

/*
 * Resize some live blocks: check the block, fm_realloc it to a random size,
 * check that the common prefix survived (moved or not), then refill it.
 */
static void phase_resize_some(struct run *r)
{
    uint64_t n = stress_rng_below(&r->rng, (uint64_t)r->count / 4 + 1);
    for (uint64_t k = 0; k < n && r->count; k++) {
        size_t i = (size_t)stress_rng_below(&r->rng, r->count);
        block_require(r, i, SIZE_MAX, "before realloc");
        struct block *b = &r->blocks[i];
        size_t nsize = random_size(r);
        unsigned char *q = fm_realloc(r->fi, fm_pointer(r->fi, b->off), nsize);
        if (nsize == 0) {
            if (q) {
                fprintf(stderr,
                        "mmap_stress: fm_realloc(p, 0) of block %zu at offset %" PRIu64
                        " returned a block (offset %" PRIu64 "), expected NULL\n",
                        i, b->off, fm_offset(r->fi, q));
                run_fail();
            }
            blocks_remove(r, i);
            continue;
        }
        if (!q) {
            fprintf(stderr,
                    "mmap_stress: fm_realloc(%" PRIu32 " -> %zu) of block %zu at offset %"
                    PRIu64 " failed: %s\n",
                    b->size, nsize, i, b->off, strerror(errno));
            run_fail();
        }
        fm_off_t old_off = b->off;
        uint32_t old_size = b->size;
        b->off = fm_offset(r->fi, q);
        b->size = (uint32_t)nsize;
        /* the first min(old, new) bytes keep the old fill */
        if (!block_verify(r, i, old_size, "after realloc (prefix)")) {
            fprintf(stderr,
                    "mmap_stress: (block %zu was at offset %" PRIu64 ", resized %" PRIu32
                    " -> %zu bytes)\n",
                    i, old_off, old_size, nsize);
            run_fail();
        }
        b->fill = random_fill(r);
        memset(q, b->fill, nsize);
        block_require(r, i, SIZE_MAX, "after refilling");
    }
    run_require_no_lib_error(r, "realloc");
}

static void progress(const struct run *r, const char *s)
{
    if (!r->cfg->quiet) {
        fputs(s, stdout);
        fflush(stdout);
    }
}

/* ------------------------------------------------------------------------
 * Start and end of a run
 * ---------------------------------------------------------------------- */

static void stats_require(struct run *r, struct fm_stats *st, const char *when)
{
    int rc = fm_stats(r->fi, st);
    if (rc != 0) {
        fprintf(stderr, "mmap_stress: fm_stats %s: %s: %s\n", when, fm_strerror(rc),
                fm_check_message(r->fi));
        run_fail();
    }
    if (st->allocated_bytes + st->free_bytes != st->heap_size) {
        fprintf(stderr,
                "mmap_stress: fm_stats %s: allocated %" PRIu64 " + free %" PRIu64 " = %" PRIu64
                " bytes, expected the heap size %" PRIu64 "\n",
                when, st->allocated_bytes, st->free_bytes,
                st->allocated_bytes + st->free_bytes, st->heap_size);
        run_fail();
    }
}

static void stats_print(const struct run *r, const char *label, const struct fm_stats *st)
{
    if (!r->cfg->quiet)
        printf("%s: %" PRIu64 " allocated bytes (%" PRIu64 " allocations), %" PRIu64
               " free bytes (%" PRIu64 " blocks).\n",
               label, st->allocated_bytes, st->allocated_count, st->free_bytes,
               st->free_blocks);
}

/* Check every block the previous run recorded; adopt them as live. */
static void run_verify_previous(struct run *r, const struct expectations *e)
{
    size_t failures = 0;
    for (uint64_t i = 0; i < e->count; i++) {
        blocks_add(r, e->blocks[i].off, e->blocks[i].size, e->blocks[i].fill);
        if (!block_verify(r, r->count - 1, SIZE_MAX, "in the previous run's blocks")) {
            if (++failures == MAX_REPORTED) {
                fprintf(stderr, "mmap_stress: (stopping after %d mismatches)\n", MAX_REPORTED);
                break;
            }
        }
    }
    if (failures) {
        fprintf(stderr, "mmap_stress: %zu of the %" PRIu64 " recorded blocks differ%s\n",
                failures, e->count, failures == MAX_REPORTED ? " (at least)" : "");
        run_fail();
    }
    if (!blocks_verify_disjoint(r, "in the previous run's blocks"))
        run_fail();
    run_require_no_lib_error(r, "the check of the previous run's blocks");
}

static void dump_blocks(const char *path)
{
    struct expectations e = {0};
    if (!expectations_load(path, &e)) {
        fprintf(stderr, "mmap_stress: %s does not exist\n", path);
        exit(1);
    }
    for (uint64_t i = 0; i < e.count; i++)
        printf("%" PRIu64 " %" PRIu32 " %c\n", e.blocks[i].off, e.blocks[i].size,
               e.blocks[i].fill);
    free(e.blocks);
    exit(0);
}

/* ------------------------------------------------------------------------
 * Options and main
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mmap_stress [--dir D] [--seed N] [--rounds N] [--max-block N] [--quiet]\n"
            "  Repeated runs share D/" STORE_NAME " (the arena) and D/" BLOCKS_NAME
            " (what it must hold).\n"
            "  --dir D        keep the files in D (default: the current directory)\n"
            "  --seed N       use seed N for this run instead of the recorded one\n"
            "  --rounds N     passes per phase (default %d)\n"
            "  --max-block N  largest random block, bytes (default %d)\n"
            "  --quiet        print only errors\n",
            DEFAULT_ROUNDS, DEFAULT_MAX_BLOCK);
}

#define OPTION(name) stress_option_value("mmap_stress", usage, argc, argv, &i, name)
#define NUMBER(min, max) stress_option_u64("mmap_stress", opt, v, min, max)

static void parse_args(int argc, char **argv, struct config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v;
        if ((v = OPTION("--dir"))) {
            cfg->dir = v;
        } else if ((v = OPTION("--seed"))) {
            cfg->seed = NUMBER(0, UINT64_MAX);
            cfg->have_seed = true;
        } else if ((v = OPTION("--rounds"))) {
            cfg->rounds = (unsigned)NUMBER(0, 1000000);
        } else if ((v = OPTION("--max-block"))) {
            cfg->max_block = (uint32_t)NUMBER(0, MAX_MAX_BLOCK);
        } else if (strcmp(opt, "--quiet") == 0) {
            cfg->quiet = true;
        } else if (strcmp(opt, "--dump-blocks") == 0) {
            cfg->dump_blocks = true; /* hidden: for corrupt_test.sh */
        } else {
            stress_option_other("mmap_stress", usage, opt);
        }
    }
}
#undef OPTION
#undef NUMBER

static void make_path(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "mmap_stress: path too long: %s/%s\n", dir, name);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct config cfg = {
        .dir = ".",
        .rounds = DEFAULT_ROUNDS,
        .max_block = DEFAULT_MAX_BLOCK,
    };
    parse_args(argc, argv, &cfg);

    static struct run r; /* large path buffers: keep them off the stack */
    r.cfg = &cfg;
    make_path(r.store_path, sizeof r.store_path, cfg.dir, STORE_NAME);
    make_path(r.blocks_path, sizeof r.blocks_path, cfg.dir, BLOCKS_NAME);
    make_path(r.tmp_path, sizeof r.tmp_path, cfg.dir, BLOCKS_NAME ".tmp");

    if (cfg.dump_blocks)
        dump_blocks(r.blocks_path);

    if (mkdir(cfg.dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "mmap_stress: cannot create %s: %s\n", cfg.dir, strerror(errno));
        return 1;
    }

    /* Expectations first: a damaged blocks.alloc stops us before the arena
     * is even opened. */
    struct expectations e = {0};
    bool have_expectations = expectations_load(r.blocks_path, &e);
    if (!have_expectations && access(r.store_path, F_OK) == 0) {
        fprintf(stderr,
                "mmap_stress: %s exists but %s does not: nothing to check it against.\n"
                "mmap_stress: remove %s to start a new history.\n",
                r.store_path, r.blocks_path, r.store_path);
        return 1;
    }
    r.run_number = have_expectations ? e.runs + 1 : 1;
    r.seed = cfg.have_seed ? cfg.seed : have_expectations ? e.next_seed : stress_fresh_seed();
    stress_rng_seed(&r.rng, r.seed);
    current_run = &r;
    if (!cfg.quiet)
        printf("Run %" PRIu64 ", seed %" PRIu64 ".\n", r.run_number, r.seed);

    struct fm_options opt = {.initial_size = ARENA_INITIAL_SIZE, .flags = FM_CREATE};
    int rc = fm_open(r.store_path, &opt, &r.fi);
    if (rc != 0) {
        fprintf(stderr, "mmap_stress: cannot open %s: %s\n", r.store_path, fm_strerror(rc));
        run_fail();
    }
    fm_set_error_handler(r.fi, run_on_lib_error, &r);

    /* 1. What the arena says it holds; it must be what the last run left. */
    struct fm_stats st;
    stats_require(&r, &st, "on start");
    stats_print(&r, "On start", &st);
    if (have_expectations && (st.allocated_bytes != e.allocated_bytes ||
                              st.allocated_count != e.allocated_count)) {
        fprintf(stderr,
                "mmap_stress: mismatch on start: the last run ended with %" PRIu64
                " allocated bytes (%" PRIu64 " allocations), found %" PRIu64
                " allocated bytes (%" PRIu64 " allocations)\n",
                e.allocated_bytes, e.allocated_count, st.allocated_bytes, st.allocated_count);
        run_fail();
    }

    /* 2. Every block of the previous run. */
    run_verify_previous(&r, &e);
    free(e.blocks);
    /* Blocks the library itself holds (if any) must not change: any drift in
     * allocated_count that our table does not explain is a leak or a lost
     * block. */
    if (st.allocated_count < r.count) {
        fprintf(stderr,
                "mmap_stress: mismatch on start: %zu blocks recorded live, fm_stats counts %"
                PRIu64 " allocations\n",
                r.count, st.allocated_count);
        run_fail();
    }
    uint64_t library_blocks = st.allocated_count - r.count;

    /* 3. Allocate checks. */
    progress(&r, "Allocate checks: ");
    for (unsigned pass = 0; pass < cfg.rounds; pass++) {
        phase_fill(&r, false);
        phase_free_some(&r);
        progress(&r, ".");
    }
    progress(&r, "\n");

    /* 4. Realloc checks. */
    progress(&r, "Realloc checks: ");
    for (unsigned pass = 0; pass < cfg.rounds; pass++) {
        phase_fill(&r, true);
        phase_resize_some(&r);
        phase_free_some(&r);
        progress(&r, ".");
    }
    progress(&r, "\n");

    /* 5. Free some more, check everything, record, close. */
    phase_free_some(&r);
    blocks_require_all(&r, "at the end");
    stats_require(&r, &st, "at the end");
    if (st.allocated_count != library_blocks + r.count) {
        fprintf(stderr,
                "mmap_stress: mismatch at the end: %zu blocks live (+%" PRIu64
                " held by the library on start), fm_stats counts %" PRIu64 " allocations\n",
                r.count, library_blocks, st.allocated_count);
        run_fail();
    }
    uint64_t live_bytes = 0;
    for (size_t i = 0; i < r.count; i++)
        live_bytes += r.blocks[i].size;
    if (st.allocated_bytes < live_bytes) {
        fprintf(stderr,
                "mmap_stress: mismatch at the end: live blocks hold %" PRIu64
                " bytes, fm_stats counts only %" PRIu64 " allocated bytes\n",
                live_bytes, st.allocated_bytes);
        run_fail();
    }
    stats_print(&r, "On exit", &st);

    uint64_t next_seed = stress_rng_next(&r.rng);
    rc = fm_close(r.fi);
    r.fi = NULL;
    if (rc != 0) {
        fprintf(stderr, "mmap_stress: fm_close: %s\n", fm_strerror(rc));
        run_fail();
    }
    expectations_save(&r, &st, next_seed);
    free(r.blocks);
    return 0;
}
