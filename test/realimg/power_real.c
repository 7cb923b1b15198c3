/*
 * power_real -- the workload and the checker of the real-image power-loss
 * test (scripts/power-real.sh; issue 16).
 *
 *   power_real run   --arena A --log L [--durable] [--every K] [--seed S]
 *                    [--pace-us U] [--trim-every T] [--trim-anywhere] [--ops N]
 *                    [--break-ordering]
 *   power_real check --arena A --log L [--durable] --min C --max C
 *
 * run: creates the arena A and changes it until SIGTERM (or N operations):
 * allocates, fills, rewrites, reallocates and frees blocks linked from the
 * root region's slots, each block's bytes derived from a tag drawn from the
 * seed, and every T operations (default 509) calls fm_trim (in durable
 * mode at the next commit point, unless --trim-anywhere).  Every K
 * operations it numbers a commit (root.commit), calls
 * fm_commit (--durable: an FM_DURABLE arena) or fm_sync (the default mode)
 * and, once that returned, appends "C HASH" to L, HASH being the state
 * hash below.  L lives on another file system: it is what the program
 * knew was committed at each instant.  Commit 1 is the empty table, logged
 * before the first operation; SIGTERM ends with a last commit.
 *
 * Beside L it writes L.slots: for each commit, the slot table (offset, size
 * and tag of every linked block) as it was committed.
 *
 * check: opens A (a crash image: its file system was just mounted, its
 * journal replayed), runs fm_check, computes the state hash and prints one
 * line, the verdict first.  min: commits logged before the image was
 * taken; max: one more than those logged after it (the one that may have
 * been in flight).  Any mode:
 *   committed C   the state of commit C, logged, min <= C <= max
 *   stale C       the state of, or past, commit C < min: a commit lost
 *   checkfail     fm_open succeeded, fm_check found the heap damaged
 *   badrefusal    fm_open failed with another error than FM_ECORRUPT or
 *                 FM_ECHECKSUM, or changed the file it refused
 * FM_DURABLE (--durable):
 *   mismatch C    a state no commit had (C: the commit it claims)
 *   refused ERR   fm_open failed
 * default mode (what docs/crash-model.md promises after a power cut:
 * opened and consistent or refused untouched; a synced block never reads
 * zero):
 *   later C       past commit C, every linked block intact: operations
 *                 the kernel wrote back after the sync
 *   torn C        past commit C, a linked block not carrying its pattern
 *                 (an operation half written back)
 *   dangling C    past commit C, a slot linking no live block (the root
 *                 page written back without the heap's)
 *   zeroed C      a block linked at the last sync before the image, still
 *                 linked from its slot, has a 512-byte sector that held
 *                 data then and reads all zero now
 *   refused ERR   FM_ECORRUPT or FM_ECHECKSUM, the file untouched
 * The exit status is 0 for what the mode allows, 1 for the rest (stale,
 * checkfail, badrefusal, zeroed; in durable mode anything but committed),
 * 2 for a usage or setup error.
 *
 * The state hash covers the whole root region (the slot table, the sizes,
 * the commit number), every linked block's bytes and the heap's allocated
 * count and bytes (so a leak or a lost free does not pass as the same
 * state).
 *
 * --break-ordering sets the library's test switch os_break_ordering (the
 * test-hooks build): the orderings that keep a power cut safe are broken on
 * purpose, which this test must catch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmalloc.h"
#include "os.h"

enum { NSLOTS = 256 };
#define SMALL_MAX 2000u          /* most blocks: 16..SMALL_MAX bytes */
#define BIG_MIN (1u << 20)       /* one allocation in 128: BIG_MIN..BIG_MAX */
#define BIG_MAX (2u << 20)       /* (frees of 1 MiB and more punch holes) */
#define ROOT_MAGIC 0x6c61657272776f70ull /* "powrreal" */

/* The root region, owned by this program. */
struct real_root {
    uint64_t magic;
    uint64_t commit;           /* number of the commit this state belongs to */
    uint64_t ops;              /* operations done when it was numbered */
    fm_off_t slots[NSLOTS];    /* links to blocks; 0 = empty */
    uint32_t sizes[NSLOTS];    /* bytes written in each block */
};
_Static_assert(sizeof(struct real_root) <= 8192, "root region is 8 KiB");

/* One commit's slot table in L.slots, at (commit - 1) * sizeof. */
struct slot_record {
    fm_off_t off[NSLOTS];
    uint64_t tag[NSLOTS];
    uint32_t size[NSLOTS];
    /* to say how an image differs from the commit it claims */
    uint64_t root_hash, allocated_count, allocated_bytes, file_size;
};

struct args {
    const char *cmd, *arena, *log;
    bool durable, break_ordering, trim_anywhere;
    unsigned every;            /* operations per commit */
    uint64_t seed, ops_max, min, max;
    unsigned pace_us;          /* pause after each operation */
    unsigned trim_every;       /* operations per fm_trim; 0: never */
};

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- block contents ------------------------------------------------------ */

/* A block holds its tag in its first 8 bytes, then bytes derived from it:
 * a block is intact when every byte matches. */
static unsigned char pattern_byte(uint64_t tag, size_t j)
{
    return (unsigned char)((tag * 0x9e3779b97f4a7c15ull) >> (8 * (j & 7))) ^
           (unsigned char)(j * 131);
}

static void block_fill(unsigned char *p, size_t n, uint64_t tag)
{
    memcpy(p, &tag, sizeof tag);
    for (size_t j = sizeof tag; j < n; j++)
        p[j] = pattern_byte(tag, j);
}

static bool block_intact(const unsigned char *p, size_t n)
{
    uint64_t tag;
    memcpy(&tag, p, sizeof tag);
    for (size_t j = sizeof tag; j < n; j++)
        if (p[j] != pattern_byte(tag, j))
            return false;
    return true;
}

/* ---- the state hash -------------------------------------------------------- */

/* 64-bit FNV-1a over 8-byte words, then the tail: not cryptographic, only
 * to tell states apart. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The hash of the arena's state; 0 with *why set when a slot links no live
 * block big enough (only a damaged image does that). */
static uint64_t state_hash(struct fm_info *fi, const char **why)
{
    const struct real_root *r = fm_root(fi);
    uint64_t h = hash_bytes(0xcbf29ce484222325ull, r, fm_root_size(fi));
    for (int k = 0; k < NSLOTS; k++) {
        if (!r->slots[k])
            continue;
        const unsigned char *p = fm_pointer(fi, r->slots[k]);
        if (!p || fm_usable_size(fi, p) < r->sizes[k]) {
            *why = "a slot links no live block of its size";
            return 0;
        }
        h = hash_bytes(h, p, r->sizes[k]);
    }
    struct fm_stats st;
    int err = fm_stats(fi, &st);
    if (err) {
        *why = fm_strerror(err);
        return 0;
    }
    h = hash_bytes(h, &st.allocated_count, sizeof st.allocated_count);
    return hash_bytes(h, &st.allocated_bytes, sizeof st.allocated_bytes) | 1;
}

/* The slot table and the figures of the arena's state. */
static void record_state(struct fm_info *fi, const struct real_root *r, struct slot_record *rec)
{
    for (int k = 0; k < NSLOTS; k++) {
        const unsigned char *p = fm_pointer(fi, r->slots[k]);
        rec->off[k] = r->slots[k];
        rec->size[k] = r->sizes[k];
        rec->tag[k] = 0;
        if (p && r->sizes[k] >= sizeof rec->tag[k])
            memcpy(&rec->tag[k], p, sizeof rec->tag[k]);
    }
    struct fm_stats st = {0};
    (void)fm_stats(fi, &st); /* a failure shows as zero figures */
    rec->root_hash = hash_bytes(0, r, fm_root_size(fi));
    rec->allocated_count = st.allocated_count;
    rec->allocated_bytes = st.allocated_bytes;
    rec->file_size = st.file_size;
}

/* ---- run --------------------------------------------------------------------- */

static size_t pick_size(uint64_t *rng)
{
    uint64_t x = rng_next(rng);
    if (x % 128 == 0)
        return BIG_MIN + (size_t)(x >> 8) % (BIG_MAX - BIG_MIN);
    return 16 + (size_t)(x >> 8) % (SMALL_MAX - 15);
}

/* One operation on a random slot.  The link and the free are one
 * crash-atomic step each (the *_to calls); the fill is the program's own
 * write, which only a commit makes durable with the link. */
static int do_op(struct fm_info *fi, struct real_root *r, uint64_t *rng)
{
    int k = (int)(rng_next(rng) % NSLOTS);
    unsigned what = (unsigned)(rng_next(rng) % 8);
    size_t n = pick_size(rng);
    uint64_t tag = rng_next(rng);
    unsigned char *p;

    if (!r->slots[k]) {
        p = fm_malloc_to(fi, &r->slots[k], n);
        if (!p)
            return errno;
        r->sizes[k] = (uint32_t)n;
        block_fill(p, n, tag);
    } else if (what < 4) {
        fm_free_from(fi, &r->slots[k]);
        r->sizes[k] = 0;
    } else if (what < 6) {
        p = fm_realloc_to(fi, &r->slots[k], n);
        if (!p)
            return errno;
        r->sizes[k] = (uint32_t)n;
        block_fill(p, n, tag);
    } else {
        /* rewrite in place: user data changing under a linked block */
        p = fm_pointer(fi, r->slots[k]);
        block_fill(p, r->sizes[k], tag);
    }
    return 0;
}

/* Number a commit, make it durable, then log it. */
static int commit_and_log(struct fm_info *fi, struct real_root *r, const struct args *a,
                          uint64_t nop, int logfd, int slotfd)
{
    r->commit++;
    r->ops = nop;
    int err = a->durable ? fm_commit(fi) : fm_sync(fi);
    if (err) {
        fprintf(stderr, "power_real: commit %" PRIu64 ": %s\n", r->commit, fm_strerror(err));
        return err;
    }
    const char *why = "";
    uint64_t h = state_hash(fi, &why);
    if (!h) {
        fprintf(stderr, "power_real: hash after commit %" PRIu64 ": %s\n", r->commit, why);
        return FM_ECORRUPT;
    }
    static struct slot_record rec;
    record_state(fi, r, &rec);
    /* the record first: a commit in L always has its slot table */
    off_t at = (off_t)((r->commit - 1) * sizeof rec);
    char line[64];
    int len = snprintf(line, sizeof line, "%" PRIu64 " %016" PRIx64 "\n", r->commit, h);
    if (pwrite(slotfd, &rec, sizeof rec, at) != (ssize_t)sizeof rec ||
        write(logfd, line, (size_t)len) != len) {
        perror("power_real: log");
        return EIO;
    }
    return 0;
}

static int cmd_run(const struct args *a)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
#ifdef FM_TEST_HOOKS
    os_break_ordering = a->break_ordering;
#endif

    char slots_path[4096];
    snprintf(slots_path, sizeof slots_path, "%s.slots", a->log);
    int logfd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    int slotfd = open(slots_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0 || slotfd < 0) {
        perror(a->log);
        return 2;
    }
    struct fm_options opt = {
        .initial_size = 1u << 20,
        .flags = FM_CREATE | FM_EXCL | FM_NOCACHE | (a->durable ? FM_DURABLE : 0),
    };
    struct fm_info *fi;
    int err = fm_open(a->arena, &opt, &fi);
    if (err) {
        fprintf(stderr, "power_real: create %s: %s\n", a->arena, fm_last_error_detail());
        return 2;
    }
    struct real_root *r = fm_root(fi);
    r->magic = ROOT_MAGIC;
    uint64_t rng = a->seed, nop = 0;
    bool trim_due = false;
    err = commit_and_log(fi, r, a, nop, logfd, slotfd);
    while (!err && !stop_requested && (!a->ops_max || nop < a->ops_max)) {
        err = do_op(fi, r, &rng);
        if (err) {
            fprintf(stderr, "power_real: operation %" PRIu64 ": %s\n", nop, fm_strerror(err));
            break;
        }
        nop++;
        trim_due |= a->trim_every && nop % a->trim_every == 0;
        if (nop % a->every == 0)
            err = commit_and_log(fi, r, a, nop, logfd, slotfd);
        /* Give the free tail back now and then: a truncate to order.  An
         * FM_DURABLE fm_trim commits what the program has not (lib/arena.c,
         * fm__arena_shrink), so there it waits for a commit point unless
         * --trim-anywhere asks to see that. */
        if (!err && trim_due && (!a->durable || a->trim_anywhere || nop % a->every == 0)) {
            trim_due = false;
            if ((err = fm_trim(fi, 0)))
                fprintf(stderr, "power_real: fm_trim: %s\n", fm_strerror(err));
        }
        if (a->pace_us) {
            struct timespec ts = {0, (long)a->pace_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!err && nop % a->every)
        err = commit_and_log(fi, r, a, nop, logfd, slotfd);
    uint64_t commits = r->commit;
    int cerr = fm_close(fi);
    close(logfd);
    close(slotfd);
    printf("power_real: %" PRIu64 " operations, %" PRIu64 " commits\n", nop, commits);
    return err || cerr ? 1 : 0;
}

/* ---- check ------------------------------------------------------------------- */

/* The hash logged for commit c, or 0 if it was not logged. */
static uint64_t logged_hash(const char *log, uint64_t c)
{
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    uint64_t n, h, found = 0;
    while (fscanf(f, "%" SCNu64 " %" SCNx64, &n, &h) == 2)
        if (n == c)
            found = h;
    fclose(f);
    return found;
}

/* Commit c's slot table from L.slots; false if it is not there. */
static bool logged_slots(const char *log, uint64_t c, struct slot_record *rec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.slots", log);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = pread(fd, rec, sizeof *rec, (off_t)((c - 1) * sizeof *rec));
    close(fd);
    return c >= 1 && n == (ssize_t)sizeof *rec;
}

/* The hash of a file's bytes and size (to see that a refused open left
 * it untouched); 0 if it cannot be read. */
static uint64_t file_hash(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    static unsigned char buf[1 << 16];
    uint64_t h = 0xcbf29ce484222325ull, total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        h = hash_bytes(h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);
    return n < 0 ? 0 : hash_bytes(h, &total, sizeof total) | 1;
}

static bool blocks_intact(struct fm_info *fi, const struct real_root *r)
{
    for (int k = 0; k < NSLOTS; k++) {
        if (!r->slots[k])
            continue;
        const unsigned char *p = fm_pointer(fi, r->slots[k]);
        if (!block_intact(p, r->sizes[k]))
            return false;
    }
    return true;
}

/* Every slot links a live block at least as large as its size. */
static bool links_live(struct fm_info *fi, const struct real_root *r)
{
    for (int k = 0; k < NSLOTS; k++) {
        if (!r->slots[k])
            continue;
        const unsigned char *p = fm_pointer(fi, r->slots[k]);
        if (!p || r->sizes[k] < 8 || fm_usable_size(fi, p) < r->sizes[k])
            return false;
    }
    return true;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* The default mode's second promise against commit `sync`'s slot table: a
 * block linked then, still linked from its slot and allocated, has no
 * 512-byte sector (of the file) reading all zero that held data then.  (A
 * sector: the heap may write its free-list words into a block freed after
 * the sync, never a whole sector of zeros; a punch or a truncation does.
 * Our patterns hold zero bytes, so "held data" is "was not all zero",
 * stricter than test/power's "had no zero byte".) */
static int zeroed_slot(struct fm_info *fi, const struct real_root *r,
                       const struct slot_record *rec)
{
    unsigned char want[512];
    for (int k = 0; k < NSLOTS; k++) {
        if (!rec->off[k] || r->slots[k] != rec->off[k])
            continue;
        const unsigned char *p = fm_pointer(fi, rec->off[k]);
        size_t n = rec->size[k];
        if (!p || fm_usable_size(fi, p) < n)
            continue;
        size_t j = (size_t)(-rec->off[k] & 511); /* first whole sector */
        for (; j + 512 <= n; j += 512) {
            if (!all_zero(p + j, 512))
                continue;
            /* as it was at the sync: the tag, then its pattern */
            for (size_t i = 0; i < 512; i++)
                want[i] = j + i < 8 ? ((const unsigned char *)&rec->tag[k])[j + i]
                                    : pattern_byte(rec->tag[k], j + i);
            if (!all_zero(want, 512))
                return k;
        }
    }
    return -1;
}

/* Say how the image differs from commit c's record (a durable mismatch). */
static void explain_mismatch(struct fm_info *fi, const struct real_root *r, uint64_t c,
                             const char *log)
{
    static struct slot_record want, got;
    if (!logged_slots(log, c, &want)) {
        printf(" (commit %" PRIu64 " has no slot record)", c);
        return;
    }
    record_state(fi, r, &got);
    int moved = 0, damaged = 0, first_moved = -1, first_damaged = -1;
    for (int k = 0; k < NSLOTS; k++) {
        if (got.off[k] != want.off[k] || got.size[k] != want.size[k] ||
            got.tag[k] != want.tag[k]) {
            if (!moved++)
                first_moved = k;
        } else if (got.off[k]) {
            const unsigned char *p = fm_pointer(fi, got.off[k]);
            if ((!p || fm_usable_size(fi, p) < got.size[k] || !block_intact(p, got.size[k])) &&
                !damaged++)
                first_damaged = k;
        }
    }
    printf(" (root region %s; %d slots differ", got.root_hash == want.root_hash ? "same" : "differs",
           moved);
    if (first_moved >= 0)
        printf(", first %d: offset %" PRIu64 "/%" PRIu64 " size %u/%u tag %016" PRIx64
               "/%016" PRIx64, first_moved, got.off[first_moved], want.off[first_moved],
               got.size[first_moved], want.size[first_moved], got.tag[first_moved],
               want.tag[first_moved]);
    printf("; %d blocks damaged", damaged);
    if (first_damaged >= 0) {
        const unsigned char *p = fm_pointer(fi, got.off[first_damaged]);
        size_t j = 8;
        if (!p || fm_usable_size(fi, p) < got.size[first_damaged])
            j = 0; /* not a live block of its size */
        else
            while (j < got.size[first_damaged] &&
                   p[j] == pattern_byte(got.tag[first_damaged], j))
                j++;
        printf(", first slot %d at offset %" PRIu64 " (%u bytes) from byte %zu",
               first_damaged, got.off[first_damaged], got.size[first_damaged], j);
    }
    printf("; allocated %" PRIu64 "/%" PRIu64 " blocks, %" PRIu64 "/%" PRIu64
           " bytes; file %" PRIu64 "/%" PRIu64 " bytes: image/commit)",
           got.allocated_count, want.allocated_count, got.allocated_bytes, want.allocated_bytes,
           got.file_size, want.file_size);
}

/* Verdict on an opened image; returns the exit status. */
static int judge(struct fm_info *fi, const struct args *a)
{
    const struct real_root *r = fm_root(fi);
    if (r->magic != ROOT_MAGIC) {
        printf("%s - root region not written (magic %016" PRIx64 ")\n",
               a->durable ? "mismatch" : "stale", r->magic);
        return 1;
    }
    uint64_t c = r->commit;
    bool live = links_live(fi, r);
    const char *why = "";
    uint64_t h = live ? state_hash(fi, &why) : 0;
    if (h && h == logged_hash(a->log, c)) {
        if (c < a->min) {
            printf("stale %" PRIu64 " (commits 1..%" PRIu64 " were logged)\n", c, a->min);
            return 1;
        }
        if (c > a->max) {
            printf("mismatch %" PRIu64 " from after the image (max %" PRIu64 ")\n", c, a->max);
            return 1;
        }
        printf("committed %" PRIu64 "\n", c);
        return 0;
    }
    if (a->durable) {
        printf("mismatch %" PRIu64 " %s", c, live ? "no commit has this state"
                                                 : "a slot links no live block of its size");
        explain_mismatch(fi, r, c, a->log);
        printf("\n");
        return 1;
    }
    if (c < a->min) {
        printf("stale %" PRIu64 " (past it, but commits 1..%" PRIu64 " were logged)\n", c,
               a->min);
        return 1;
    }
    /* The last sync before the image, when no other completed during it. */
    static struct slot_record rec;
    if (a->min + 1 == a->max && logged_slots(a->log, a->min, &rec)) {
        int k = zeroed_slot(fi, r, &rec);
        if (k >= 0) {
            printf("zeroed %" PRIu64 " slot %d (offset %" PRIu64 ", synced at commit %" PRIu64
                   ") has a sector reading zero\n", c, k, rec.off[k], a->min);
            return 1;
        }
    }
    if (!live)
        printf("dangling %" PRIu64 "\n", c);
    else
        printf("%s %" PRIu64 "\n", blocks_intact(fi, r) ? "later" : "torn", c);
    return 0;
}

static int cmd_check(const struct args *a)
{
    struct fm_options opt = {.flags = FM_NOCACHE | (a->durable ? FM_DURABLE : 0)};
    struct fm_info *fi;
    uint64_t before = file_hash(a->arena);
    int err = fm_open(a->arena, &opt, &fi);
    if (err) {
        bool expected = err == FM_ECORRUPT || err == FM_ECHECKSUM;
        bool untouched = before && file_hash(a->arena) == before;
        printf("%s %d %s%s\n", expected && untouched ? "refused" : "badrefusal", err,
               fm_last_error_detail(), untouched ? "" : " (and the file changed)");
        return a->durable || !expected || !untouched ? 1 : 0;
    }
    int rc;
    if (fm_check(fi)) {
        printf("checkfail %s\n", fm_check_message(fi));
        rc = 1;
    } else {
        rc = judge(fi, a);
    }
    fm_close(fi);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: power_real run --arena A --log L [--durable] [--every K] [--seed S]\n"
            "                      [--pace-us U] [--trim-every T] [--trim-anywhere]\n"
            "                      [--ops N] [--break-ordering]\n"
            "       power_real check --arena A --log L [--durable] --min C --max C\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct args a = {.every = 40, .seed = 1, .max = UINT64_MAX, .trim_every = 509};
    if (argc < 2)
        return usage();
    a.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--durable"))
            a.durable = true;
        else if (!strcmp(o, "--break-ordering"))
            a.break_ordering = true;
        else if (!strcmp(o, "--trim-anywhere"))
            a.trim_anywhere = true;
        else if (!v)
            return usage();
        else if (!strcmp(o, "--arena"))
            a.arena = v, i++;
        else if (!strcmp(o, "--log"))
            a.log = v, i++;
        else if (!strcmp(o, "--every"))
            a.every = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(o, "--seed"))
            a.seed = strtoull(v, NULL, 0), i++;
        else if (!strcmp(o, "--pace-us"))
            a.pace_us = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(o, "--trim-every"))
            a.trim_every = (unsigned)strtoul(v, NULL, 0), i++;
        else if (!strcmp(o, "--ops"))
            a.ops_max = strtoull(v, NULL, 0), i++;
        else if (!strcmp(o, "--min"))
            a.min = strtoull(v, NULL, 0), i++;
        else if (!strcmp(o, "--max"))
            a.max = strtoull(v, NULL, 0), i++;
        else
            return usage();
    }
    if (!a.arena || !a.log || !a.every || a.pace_us >= 1000000)
        return usage();
    if (!strcmp(a.cmd, "run"))
        return cmd_run(&a);
    if (!strcmp(a.cmd, "check"))
        return cmd_check(&a);
    return usage();
}
