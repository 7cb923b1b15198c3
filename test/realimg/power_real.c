/*
 * power_real -- the workload and the checker of the real-image power-loss
 * test (scripts/power-real.sh; issue 16).
 *
 *   power_real run   --arena A --log L [--durable] [--every K] [--seed S]
 *                    [--pace-us U] [--ops N] [--break-ordering]
 *   power_real check --arena A --log L [--durable] --min C --max C
 *
 * run: creates the arena A and changes it until SIGTERM (or N operations):
 * allocates, fills, rewrites, reallocates and frees blocks linked from the
 * root region's slots, each block's bytes derived from a tag drawn from the
 * seed.  Every K operations it numbers a commit (root.commit), calls
 * fm_commit (--durable: an FM_DURABLE arena) or fm_sync (the default mode)
 * and, once that returned, appends "C HASH" to L, HASH being the state
 * hash below.  L lives on another file system: it is what the program
 * knew was committed at each instant.  Commit 1 is the empty table, logged
 * before the first operation; SIGTERM ends with a last commit.
 *
 * check: opens A (a crash image: its file system was just mounted, its
 * journal replayed), runs fm_check, computes the state hash and prints one
 * line, the verdict first:
 *   committed C      the state of commit C, logged, with min <= C <= max
 *                    (min: commits logged before the image was taken;
 *                    max: one more than those logged after, the one that
 *                    may have been in flight)
 *   stale C          the state of commit C, but C < min: a commit lost
 *   later C          (default mode) past commit C, every block intact:
 *                    operations the kernel wrote back after the sync
 *   torn C           (default mode) past commit C, a linked block not
 *                    carrying its pattern (an operation half written back)
 *   mismatch C       (durable) a state no commit had
 *   refused ERR      fm_open failed: ERR is fm_strerror's code and detail
 *   checkfail        fm_open succeeded, fm_check found the heap damaged
 * and exits 0 for committed, later and torn, 1 otherwise (2: usage/setup).
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
#define BIG_MAX (512u << 10)     /* one allocation in 32: up to 512 KiB */
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

struct args {
    const char *cmd, *arena, *log;
    bool durable, break_ordering;
    unsigned every;            /* operations per commit */
    uint64_t seed, ops_max, min, max;
    unsigned pace_us;          /* pause after each operation */
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

/* ---- run --------------------------------------------------------------------- */

static size_t pick_size(uint64_t *rng)
{
    uint64_t x = rng_next(rng);
    if (x % 32 == 0)
        return 16 + (size_t)(x >> 8) % BIG_MAX;
    return 16 + (size_t)(x >> 8) % (SMALL_MAX - 15);
}

/* One operation on a random slot.  The link and the free are one
 * crash-atomic step each (the *_to calls); the fill is the program's own
 * write, which only a commit makes durable with the link. */
static int do_op(struct fm_info *fi, struct real_root *r, uint64_t *rng, uint64_t nop)
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
    /* now and then give the free tail back: a truncate to order */
    if (nop % 509 == 508) {
        int err = fm_trim(fi, 0);
        if (err)
            return err;
    }
    return 0;
}

/* Number a commit, make it durable, then log it. */
static int commit_and_log(struct fm_info *fi, struct real_root *r, const struct args *a,
                          uint64_t nop, int logfd)
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
    char line[64];
    int len = snprintf(line, sizeof line, "%" PRIu64 " %016" PRIx64 "\n", r->commit, h);
    if (write(logfd, line, (size_t)len) != len) {
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

    int logfd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
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
    err = commit_and_log(fi, r, a, nop, logfd);
    while (!err && !stop_requested && (!a->ops_max || nop < a->ops_max)) {
        err = do_op(fi, r, &rng, nop);
        if (err) {
            fprintf(stderr, "power_real: operation %" PRIu64 ": %s\n", nop, fm_strerror(err));
            break;
        }
        nop++;
        if (nop % a->every == 0)
            err = commit_and_log(fi, r, a, nop, logfd);
        if (a->pace_us) {
            struct timespec ts = {0, (long)a->pace_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (!err && nop % a->every)
        err = commit_and_log(fi, r, a, nop, logfd);
    uint64_t commits = r->commit;
    int cerr = fm_close(fi);
    close(logfd);
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

static bool blocks_intact(struct fm_info *fi, const struct real_root *r)
{
    for (int k = 0; k < NSLOTS; k++) {
        if (!r->slots[k])
            continue;
        const unsigned char *p = fm_pointer(fi, r->slots[k]);
        if (!p || fm_usable_size(fi, p) < r->sizes[k] || r->sizes[k] < 8 ||
            !block_intact(p, r->sizes[k]))
            return false;
    }
    return true;
}

static int cmd_check(const struct args *a)
{
    struct fm_options opt = {.flags = FM_NOCACHE | (a->durable ? FM_DURABLE : 0)};
    struct fm_info *fi;
    int err = fm_open(a->arena, &opt, &fi);
    if (err) {
        printf("refused %d %s\n", err, fm_last_error_detail());
        return 1;
    }
    if (fm_check(fi)) {
        printf("checkfail %s\n", fm_check_message(fi));
        fm_close(fi);
        return 1;
    }
    const struct real_root *r = fm_root(fi);
    const char *why = "";
    uint64_t h = state_hash(fi, &why);
    uint64_t c = r->commit;
    int rc = 0;
    if (r->magic != ROOT_MAGIC) {
        printf("mismatch - root region not written (magic %016" PRIx64 ")\n", r->magic);
        rc = 1;
    } else if (h && h == logged_hash(a->log, c)) {
        if (c < a->min) {
            printf("stale %" PRIu64 " (commits 1..%" PRIu64 " were logged)\n", c, a->min);
            rc = 1;
        } else if (c > a->max) {
            printf("mismatch %" PRIu64 " from after the image was taken (max %" PRIu64 ")\n",
                   c, a->max);
            rc = 1;
        } else {
            printf("committed %" PRIu64 "\n", c);
        }
    } else if (a->durable || !h) {
        printf("mismatch %" PRIu64 " %s\n", c, h ? "no commit has this state" : why);
        rc = 1;
    } else if (c < a->min) {
        printf("stale %" PRIu64 " (past it, but commits 1..%" PRIu64 " were logged)\n", c,
               a->min);
        rc = 1;
    } else {
        printf("%s %" PRIu64 "\n", blocks_intact(fi, r) ? "later" : "torn", c);
    }
    fm_close(fi);
    return rc;
}

/* ---- main ------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr,
            "usage: power_real run --arena A --log L [--durable] [--every K] [--seed S]\n"
            "                      [--pace-us U] [--ops N] [--break-ordering]\n"
            "       power_real check --arena A --log L [--durable] --min C --max C\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct args a = {.every = 40, .seed = 1, .max = UINT64_MAX};
    if (argc < 2)
        return usage();
    a.cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--durable"))
            a.durable = true;
        else if (!strcmp(o, "--break-ordering"))
            a.break_ordering = true;
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
