/*
 * crash_stress -- kill a worker with SIGKILL at random moments, then prove
 * the arena survived.
 *
 * The worker runs random fm_malloc_to / fm_free_from / fm_realloc_to on a
 * table of link slots in the root region and fills each block with a
 * pattern derived from a tag stored in its first 8 bytes.  Before each
 * operation it notes the slot it works on (`inflight`); that slot's block
 * may be old or new, filled or not, but must be a live block or nothing.
 *
 * After each kill the parent reopens the arena (recovery runs) and requires:
 *   - fm_check passes;
 *   - every other linked block is live and carries its full pattern;
 *   - the allocated blocks are exactly the linked ones: nothing leaked,
 *     nothing dangles.
 *
 * --plain: the worker uses fm_malloc / fm_free / fm_realloc and stores the
 * link itself, as most programs do (and as the thread caches serve).  Then
 * the in-flight slot may also dangle (freed, not yet cleared) and one block
 * may be allocated but not yet linked; both are repaired before the next
 * round.
 *
 * usage: crash_stress [--rounds N] [--seed S] [--dir D] [--plain] [--quiet]
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fmalloc.h"

#define NSLOTS 512
#define MAX_BLOCK 3000

/* Root region layout: owned by this tool. */
struct root {
    uint64_t magic;
    int64_t inflight;        /* slot being changed, -1 when none */
    fm_off_t slots[NSLOTS];  /* links to blocks */
};
#define ROOT_MAGIC 0x7373657274737263ull /* "crstress" */

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static unsigned char pattern_byte(uint64_t tag, size_t j)
{
    return (unsigned char)((tag * 0x9e3779b97f4a7c15ull) >> 56) ^ (unsigned char)(j * 131);
}

static void fill(unsigned char *p, size_t n, uint64_t tag)
{
    memcpy(p, &tag, sizeof tag);
    for (size_t j = sizeof tag; j < n; j++)
        p[j] = pattern_byte(tag, j);
}

/* Request sizes are always >= 8, and the full usable size is filled. */
static bool plain;

/* One operation on slot k with the library's plain calls. */
static void plain_op(struct fm_info *fi, struct root *r, int k, size_t n, unsigned what,
                     uint64_t *tag)
{
    unsigned char *p = fm_pointer(fi, r->slots[k]);
    if (what == 2 && p) {
        p = fm_realloc(fi, p, n);
        if (p) {
            r->slots[k] = fm_offset(fi, p);
            fill(p, fm_usable_size(fi, p), ++*tag);
        }
    } else if (p) {
        fm_free(fi, p);
        r->slots[k] = 0;
    } else {
        p = fm_malloc(fi, n);
        if (p) {
            fill(p, fm_usable_size(fi, p), ++*tag);
            r->slots[k] = fm_offset(fi, p);
        }
    }
}

static void worker(const char *path, uint64_t seed)
{
    struct fm_info *fi;
    int err = fm_open(path, NULL, &fi);
    if (err) {
        fprintf(stderr, "worker: open: %s\n", fm_strerror(err));
        _exit(2);
    }
    struct root *r = fm_root(fi);
    uint64_t tag = seed << 20;
    for (;;) {
        int k = (int)(rng(&seed) % NSLOTS);
        size_t n = 8 + rng(&seed) % (rng(&seed) % 8 ? 256 : MAX_BLOCK);
        r->inflight = k;
        unsigned char *p;
        unsigned what = (unsigned)(rng(&seed) % 3);
        if (plain) {
            plain_op(fi, r, k, n, what, &tag);
            r->inflight = -1;
            continue;
        }
        switch (what) {
        case 0:
            if (!r->slots[k]) {
                p = fm_malloc_to(fi, &r->slots[k], n);
                if (p)
                    fill(p, fm_usable_size(fi, p), ++tag);
                break;
            }
            fm_free_from(fi, &r->slots[k]); /* occupied slots get freed */
            break;
        case 1:
            fm_free_from(fi, &r->slots[k]);
            break;
        default:
            p = fm_realloc_to(fi, &r->slots[k], n);
            if (p)
                fill(p, fm_usable_size(fi, p), ++tag);
            break;
        }
        r->inflight = -1;
    }
}

struct verify {
    struct fm_info *fi;
    struct root *r;
    int64_t inflight;
    long live, errors;
    uint64_t leaked; /* plain mode: the one block allocated but not linked */
};

static int slot_of_block(struct verify *v, uint64_t off)
{
    for (int i = 0; i < NSLOTS; i++)
        if (v->r->slots[i] == off)
            return i;
    return -1;
}

static int check_block(void *p, size_t size, void *arg)
{
    struct verify *v = arg;
    uint64_t off = fm_offset(v->fi, p);
    int k = slot_of_block(v, off);
    v->live++;
    if (k < 0) {
        if (plain && v->inflight >= 0 && !v->leaked) {
            v->leaked = off; /* allocated, the store of its link cut short */
            v->live--;
            return 0;
        }
        fprintf(stderr, "leak: block at offset %" PRIu64 " (%zu bytes) is linked nowhere\n", off,
                size);
        v->errors++;
        return 0;
    }
    if (k == v->inflight)
        return 0; /* may be half filled: its operation was cut short */
    const unsigned char *b = p;
    uint64_t tag;
    memcpy(&tag, b, sizeof tag);
    for (size_t j = sizeof tag; j < size; j++)
        if (b[j] != pattern_byte(tag, j)) {
            fprintf(stderr,
                    "slot %d: block at offset %" PRIu64 " byte %zu is 0x%02x, expected 0x%02x\n",
                    k, off, j, b[j], pattern_byte(tag, j));
            v->errors++;
            return 0;
        }
    return 0;
}

/* Undo records left in the file by the kill (docs/format.md: sb_log_count
 * at offset 736): non-zero means the worker died inside an operation. */
static uint64_t log_count_in_file(const char *path)
{
    uint64_t n = 0;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, &n, sizeof n, 736) != (ssize_t)sizeof n)
            n = 0;
        close(fd);
    }
    return n;
}

/* 0 if the arena is consistent after a kill. */
static int verify(const char *path, bool *recovered)
{
    struct fm_info *fi;
    int err = fm_open(path, NULL, &fi);
    if (err) {
        fprintf(stderr, "reopen: %s\n", fm_strerror(err));
        return 1;
    }
    struct fm_stats st;
    if (fm_check(fi) || fm_stats(fi, &st)) {
        fprintf(stderr, "fm_check: %s\n", fm_check_message(fi));
        fm_close(fi);
        return 1;
    }
    *recovered = st.recovered;
    struct verify v = {.fi = fi, .r = fm_root(fi), .inflight = ((struct root *)fm_root(fi))->inflight};
    fm_walk(fi, check_block, &v);
    long linked = 0;
    for (int i = 0; i < NSLOTS; i++) {
        if (!v.r->slots[i])
            continue;
        if (fm_usable_size(fi, fm_pointer(fi, v.r->slots[i])) == 0 && plain && i == v.inflight) {
            v.r->slots[i] = 0; /* freed, the clearing of its link cut short */
            continue;
        }
        linked++;
        if (fm_usable_size(fi, fm_pointer(fi, v.r->slots[i])) == 0) {
            fprintf(stderr, "dangling: slot %d links offset %" PRIu64 ", not a live block\n", i,
                    v.r->slots[i]);
            v.errors++;
        }
    }
    if (linked != v.live) {
        fprintf(stderr, "%ld blocks linked, %ld allocated\n", linked, v.live);
        v.errors++;
    }
    /* The in-flight slot's block may be half filled: give it a whole
     * pattern, or the next round would (rightly) find it damaged. */
    if (v.inflight >= 0 && v.inflight < NSLOTS && v.r->slots[v.inflight]) {
        unsigned char *p = fm_pointer(fi, v.r->slots[v.inflight]);
        fill(p, fm_usable_size(fi, p), 0xf111ull << 40 | (uint64_t)v.inflight);
    }
    if (v.leaked)
        fm_free(fi, fm_pointer(fi, v.leaked));
    v.r->inflight = -1;
    fm_close(fi);
    return v.errors ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: crash_stress [--rounds N] [--seed S] [--dir D] [--plain] [--quiet]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long rounds = 200;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    const char *dir = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--quiet"))
            quiet = true;
        else if (!strcmp(argv[i], "--plain"))
            plain = true;
        else
            usage();
    }
    char tmpl[] = "/tmp/crash_stress.XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl))) {
        perror("mkdtemp");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/crash.fm", dir);
    unlink(path);
    printf("crash_stress: seed %" PRIu64 " (replay with --seed %" PRIu64 "), %ld rounds\n", seed,
           seed, rounds);

    struct fm_options o = {.flags = FM_CREATE | FM_EXCL};
    struct fm_info *fi;
    int err = fm_open(path, &o, &fi);
    if (err) {
        fprintf(stderr, "create %s: %s\n", path, fm_strerror(err));
        return 2;
    }
    struct root *r = fm_root(fi);
    r->magic = ROOT_MAGIC;
    r->inflight = -1;
    fm_close(fi);

    long recovered_runs = 0, mid_op = 0;
    for (long round = 1; round <= rounds; round++) {
        uint64_t wseed = rng(&seed);
        long delay_us = 1000 + (long)(rng(&seed) % 29000);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0)
            worker(path, wseed);
        struct timespec ts = {0, delay_us * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            fprintf(stderr, "round %ld: worker ended on its own (status %d)\n", round, status);
            return 1;
        }
        bool rec = false;
        mid_op += log_count_in_file(path) != 0;
        if (verify(path, &rec)) {
            fprintf(stderr, "round %ld FAILED (seed %" PRIu64 ", worker seed %" PRIu64
                            ", killed after %ld us); arena kept at %s\n",
                    round, seed, wseed, delay_us, path);
            return 1;
        }
        recovered_runs += rec;
        if (!quiet && round % 50 == 0)
            printf("round %ld ok\n", round);
    }
    printf("crash_stress: %ld rounds passed: %ld recoveries, %ld kills inside an operation\n",
           rounds, recovered_runs, mid_op);
    unlink(path);
    if (dir == tmpl)
        rmdir(tmpl);
    return 0;
}
