/*
 * fuzz_open.c -- any byte sequence, opened as an arena file.
 *
 * The input is the whole file.  It is written to one temporary path per
 * process and opened read-only, then read-write (never with FM_CREATE).
 * When an open succeeds, fm_check, fm_stats and fm_walk run on it, and --
 * only when fm_check passed -- a few allocations, reallocs, frees and a
 * trim, fm_check again, close, and one more open.  SPEC section 5:
 * "opening or checking any byte sequence never crashes, hangs or writes
 * outside the mapping".
 *
 * Checksums: the identity part (and the state part of a cleanly closed
 * arena) is covered by XXH3, so almost every mutation of the superblock
 * stops at FM_ECHECKSUM.  When an input has the magic and a wrong
 * checksum, the target runs a second time on a copy with the checksums
 * recomputed, so that the fuzzer reaches the validation behind them.
 *
 * Oracles (a violation is a finding, reported by fuzz_fail):
 *   O1 a failed read-write open leaves the file byte-identical
 *   O2 the read-only and read-write opens of the same bytes agree
 *   O3 an arena that was dirty and opened passes fm_check (recovery
 *      verifies the rolled-back heap before it accepts it)
 *   O4 when fm_check passes, fm_stats and fm_walk succeed and agree with
 *      it, and every block's usable size is what the walk says
 *   O5 on a heap that passed fm_check, valid operations succeed, never
 *      call the error handler, keep what was written, and leave a heap
 *      that passes fm_check, closes and opens again
 *   O6 a read-only arena refuses allocations with EROFS
 *
 * FUZZ_OPEN_DAMAGED=1 also runs operations on heaps that fail fm_check
 * (exercise_damaged below): outside the contract, off by default.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "format.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BLOCKS 64

struct walk_state {
    size_t count;
    uint64_t bytes;
    void *ptr[MAX_BLOCKS];
    size_t size[MAX_BLOCKS];
    unsigned sum; /* touches every walked byte range's ends */
};

static int walk_fn(void *p, size_t size, void *arg)
{
    struct walk_state *w = arg;
    const volatile uint8_t *b = p;
    /* Read both ends: a block reaching outside the mapping faults here. */
    w->sum += b[0];
    if (size)
        w->sum += b[size - 1];
    if (w->count < MAX_BLOCKS) {
        w->ptr[w->count] = p;
        w->size[w->count] = size;
    }
    w->count++;
    w->bytes += size;
    return 0;
}

static int name_fn(const char *name, fm_off_t off, void *arg)
{
    (void)arg;
    return name[0] == 0 || off == 0; /* fm_check guarantees neither */
}

/* fm_check, fm_stats, fm_walk, the name directory; returns fm_check's result. */
static int inspect(struct fm_info *fi, struct walk_state *w, const char *how)
{
    int check = fm_check(fi);
    struct fm_stats st;
    int serr = fm_stats(fi, &st);
    memset(w, 0, sizeof *w);
    int werr = fm_walk(fi, walk_fn, w);
    (void)fm_check_message(fi);
    (void)fm_root_size(fi);
    /* The name directory is read from the file too: never a crash. */
    fm_off_t named;
    int nerr = fm_name_iterate(fi, name_fn, NULL);
    (void)fm_name_lookup(fi, "a name", &named);
    if (check != 0)
        return check;
    FUZZ_REQUIRE(nerr == 0, "%s: fm_check passed, fm_name_iterate failed: %d", how, nerr);

    /* O4 */
    FUZZ_REQUIRE(serr == 0, "%s: fm_check passed, fm_stats failed: %d", how, serr);
    FUZZ_REQUIRE(werr == 0, "%s: fm_check passed, fm_walk failed: %d", how, werr);
    FUZZ_REQUIRE(st.allocated_bytes + st.free_bytes == st.heap_size,
                 "%s: allocated %llu + free %llu != heap %llu", how,
                 (unsigned long long)st.allocated_bytes, (unsigned long long)st.free_bytes,
                 (unsigned long long)st.heap_size);
    FUZZ_REQUIRE(st.heap_size + 12288 == st.file_size, "%s: heap %llu in a file of %llu", how,
                 (unsigned long long)st.heap_size, (unsigned long long)st.file_size);
    FUZZ_REQUIRE(w->count == st.allocated_count, "%s: walk saw %zu blocks, stats say %llu", how,
                 w->count, (unsigned long long)st.allocated_count);
    FUZZ_REQUIRE(w->bytes + 8 * w->count == st.allocated_bytes,
                 "%s: walk saw %llu usable bytes in %zu blocks, stats say %llu", how,
                 (unsigned long long)w->bytes, w->count,
                 (unsigned long long)st.allocated_bytes);
    FUZZ_REQUIRE(st.largest_free <= st.free_bytes && st.top_size <= st.largest_free,
                 "%s: largest free %llu, top %llu, free %llu", how,
                 (unsigned long long)st.largest_free, (unsigned long long)st.top_size,
                 (unsigned long long)st.free_bytes);
    size_t n = w->count < MAX_BLOCKS ? w->count : MAX_BLOCKS;
    for (size_t i = 0; i < n; i++) {
        size_t u = fm_usable_size(fi, w->ptr[i]);
        FUZZ_REQUIRE(u == w->size[i], "%s: block %zu: usable %zu, walk said %zu", how, i, u,
                     w->size[i]);
    }
    return 0;
}

/* O5: operations on a heap that passed fm_check. */
static void exercise(struct fm_info *fi, struct walk_state *w, struct fuzz_errors *errs)
{
    static const size_t sizes[] = {0, 1, 24, 100, 496, 512, 600, 4000, 20000, 70000};
    enum { NNEW = sizeof sizes / sizeof sizes[0] + 2 };
    void *nw[NNEW];
    size_t nsz[NNEW];
    size_t n = w->count < MAX_BLOCKS ? w->count : MAX_BLOCKS;

    /* Free every third old block, resize every third + 1 (keeping its head). */
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0) {
            fm_free(fi, w->ptr[i]);
            w->ptr[i] = NULL;
        } else if (i % 3 == 1) {
            uint8_t keep[64];
            size_t k = w->size[i] < sizeof keep ? w->size[i] : sizeof keep;
            memcpy(keep, w->ptr[i], k);
            size_t to = i % 2 ? w->size[i] * 2 + 1 : w->size[i] / 2;
            void *q = fm_realloc(fi, w->ptr[i], to);
            if (to == 0) {
                w->ptr[i] = NULL;
                continue;
            }
            FUZZ_REQUIRE(q != NULL, "realloc of a walked block to %zu failed: %s", to,
                         fm_strerror(fm_last_error()));
            FUZZ_REQUIRE(memcmp(q, keep, k < to ? k : to) == 0, "realloc lost the block's bytes");
            w->ptr[i] = q;
            w->size[i] = to;
        }
    }
    FUZZ_REQUIRE(errs->count == 0, "valid frees/reallocs called the error handler: %s",
                 errs->last_msg);

    for (size_t i = 0; i < NNEW; i++) {
        if (i < NNEW - 2) {
            nsz[i] = sizes[i];
            nw[i] = fm_malloc(fi, nsz[i]);
        } else if (i == NNEW - 2) {
            nsz[i] = 300;
            nw[i] = fm_memalign(fi, 4096, nsz[i]);
            FUZZ_REQUIRE(!nw[i] || fm_offset(fi, nw[i]) % 4096 == 0, "memalign misaligned");
        } else {
            nsz[i] = 10 * 77;
            nw[i] = fm_calloc(fi, 10, 77);
            FUZZ_REQUIRE(!nw[i] || fuzz_first_nonzero(nw[i], nsz[i]) == nsz[i],
                         "calloc block not zero");
        }
        FUZZ_REQUIRE(nw[i] != NULL, "allocation %zu of %zu bytes failed: %s", i, nsz[i],
                     fm_strerror(fm_last_error()));
        FUZZ_REQUIRE(fm_usable_size(fi, nw[i]) >= nsz[i], "usable size %zu < %zu",
                     fm_usable_size(fi, nw[i]), nsz[i]);
        fuzz_fill(nw[i], nsz[i], (uint32_t)i);
    }
    FUZZ_REQUIRE(fm_check(fi) == 0, "heap damaged by valid operations: %s",
                 fm_check_message(fi));
    for (size_t i = 0; i < NNEW; i++)
        FUZZ_REQUIRE(fuzz_verify(nw[i], nsz[i], (uint32_t)i) == nsz[i],
                     "new block %zu lost its contents", i);
    for (size_t i = 0; i < NNEW; i += 2)
        fm_free(fi, nw[i]);
    FUZZ_REQUIRE(fm_trim(fi, 0) == 0, "fm_trim failed");
    FUZZ_REQUIRE(fm_check(fi) == 0, "heap damaged by free/trim: %s", fm_check_message(fi));
    for (size_t i = 1; i < NNEW; i += 2)
        FUZZ_REQUIRE(fuzz_verify(nw[i], nsz[i], (uint32_t)i) == nsz[i],
                     "new block %zu lost its contents after frees", i);
    FUZZ_REQUIRE(errs->count == 0, "valid operations called the error handler: %s",
                 errs->last_msg);
}

/*
 * FUZZ_OPEN_DAMAGED=1 in the environment: run operations on heaps that
 * failed fm_check too.  SPEC section 5 promises only that opening and
 * checking are safe; heap.c promises more -- links are checked before they
 * are followed, so a damaged heap makes an operation fail with FM_ECORRUPT
 * instead of writing somewhere it should not -- and this mode fuzzes that.
 * Its oracles are the sanitizers and the PROT_NONE reservation around the
 * mapping: every block an operation returns must be writable for the size
 * asked.  Off by default: it is outside the contract.
 */
static void exercise_damaged(struct fm_info *fi, struct walk_state *w)
{
    static const size_t sizes[] = {24, 100, 600, 5000, 70000};
    size_t n = w->count < MAX_BLOCKS ? w->count : MAX_BLOCKS;
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0) {
            fm_free(fi, w->ptr[i]);
        } else if (i % 3 == 1) {
            size_t to = w->size[i] * 2 + 1;
            void *q = fm_realloc(fi, w->ptr[i], to);
            if (q)
                memset(q, 0xa5, to);
        }
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = fm_malloc(fi, sizes[i]);
        if (p)
            memset(p, 0x5a, sizes[i]);
        void *q = fm_memalign(fi, 256, sizes[i]);
        if (q)
            memset(q, 0x3c, sizes[i]);
        fm_free(fi, p);
    }
    (void)fm_check(fi);
    (void)fm_trim(fi, 0);
}

static bool damaged_mode(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("FUZZ_OPEN_DAMAGED");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

static bool is_dirty(const uint8_t *data, size_t size)
{
    uint32_t flags;
    if (size < FMT_HEADER_SIZE)
        return false;
    memcpy(&flags, data + offsetof(struct fmt_superblock, sb_state_flags), sizeof flags);
    return flags & SB_DIRTY;
}

static void run_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("fuzz_open");
    struct fuzz_errors errs = {0};
    struct walk_state w;
    struct fm_info *fi;
    bool dirty = is_dirty(data, size);
    /* A small reservation keeps each open cheap; the file may still grow. */
    struct fm_options ro = {.flags = FM_RDONLY, .max_size = 64u << 20};
    struct fm_options rw = {.flags = FM_NOSYNC, .max_size = 64u << 20};

    fuzz_write_file(path, data, size);

    /* ---- read-only ---- */
    int ro_err = fm_open(path, &ro, &fi);
    int ro_check = -1;
    if (ro_err == 0) {
        fm_set_error_handler(fi, fuzz_record_error, &errs);
        ro_check = inspect(fi, &w, "read-only");
        FUZZ_REQUIRE(!dirty || ro_check == 0, "O3: recovered read-only arena fails fm_check: %s",
                     fm_check_message(fi));
        errno = 0;
        void *p = fm_malloc(fi, 16);
        FUZZ_REQUIRE(p == NULL && errno == EROFS, "O6: read-only arena allocated");
        fm_close(fi);
    }
    FUZZ_REQUIRE(fuzz_file_equals(path, data, size), "a read-only open changed the file");

    /* ---- read-write ---- */
    int rw_err = fm_open(path, &rw, &fi);
    if (rw_err != 0) {
        FUZZ_REQUIRE(fuzz_file_equals(path, data, size),
                     "O1: failed open (%d: %s) modified the file", rw_err, fm_strerror(rw_err));
        FUZZ_REQUIRE(rw_err == ro_err, "O2: read-only open gave %d, read-write open %d (%s)",
                     ro_err, rw_err, fm_strerror(rw_err));
        return;
    }
    FUZZ_REQUIRE(ro_err == 0, "O2: read-only open failed with %d (%s), read-write open worked",
                 ro_err, fm_strerror(ro_err));
    fm_set_error_handler(fi, fuzz_record_error, &errs);
    int check = inspect(fi, &w, "read-write");
    FUZZ_REQUIRE(!dirty || check == 0, "O3: recovered arena fails fm_check: %s",
                 fm_check_message(fi));
    FUZZ_REQUIRE((check == 0) == (ro_check == 0),
                 "O2: fm_check gave %d read-only, %d read-write", ro_check, check);
    if (check != 0) {
        if (damaged_mode())
            exercise_damaged(fi, &w);
        fm_close(fi);
        return;
    }
    exercise(fi, &w, &errs);
    fm_close(fi);

    /* O5: what was closed opens again, clean and consistent. */
    int err = fm_open(path, &rw, &fi);
    FUZZ_REQUIRE(err == 0, "O5: reopening a closed arena failed: %d (%s)", err, fm_strerror(err));
    fm_set_error_handler(fi, fuzz_record_error, &errs);
    FUZZ_REQUIRE(inspect(fi, &w, "reopened") == 0, "O5: reopened arena fails fm_check: %s",
                 fm_check_message(fi));
    fm_close(fi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_one(data, size);

    /* The same bytes with valid checksums, when they were not. */
    if (size < FMT_HEADER_SIZE || memcmp(data, FMT_MAGIC, FMT_MAGIC_LEN) != 0)
        return 0;
    static uint8_t *copy;
    static size_t copy_cap;
    if (copy_cap < size) {
        free(copy);
        copy = malloc(size);
        copy_cap = copy ? size : 0;
        if (!copy)
            return 0;
    }
    memcpy(copy, data, size);
    struct fmt_superblock *sb = (struct fmt_superblock *)(void *)copy;
    bool changed = false;
    uint64_t id = fmt_id_checksum(copy);
    if (sb->sb_id_checksum != id) {
        sb->sb_id_checksum = id;
        changed = true;
    }
    if (!(sb->sb_state_flags & SB_DIRTY)) {
        uint64_t st = fmt_state_checksum(copy);
        if (sb->sb_state_checksum != st) {
            sb->sb_state_checksum = st;
            changed = true;
        }
    }
    if (changed)
        run_one(copy, size);
    return 0;
}
