/*
 * fuzz_ops.c -- a sequence of heap operations, checked against a model.
 *
 * Each input is a program: one opcode byte, then that operation's
 * arguments (slot, size, ...), repeated until the input ends.  It runs on a
 * fresh 64 KiB arena; the model remembers, for each of NSLOTS slots, the
 * block's offset, the size that was asked for, the seed of the pattern
 * written into it, and whether the app root region links it (root word k
 * holds its offset, as fm_malloc_to leaves it).
 *
 * After every operation: a block it returned is aligned, new (no live
 * slot has it) and at least the size asked (fm_usable_size), the first and
 * last bytes of every block still hold their pattern, and every root word
 * matches the model; after every fourth, fm_check passes.  CHECK and
 * REOPEN compare everything: every block's bytes, fm_stats' block count,
 * and fm_walk's blocks against the slots.  Any divergence, an unexpected
 * NULL, or an error handler call that the operation did not ask for is a
 * finding (abort).
 *
 * POKE writes arbitrary bytes into the first words of a block: user data
 * that the heap must never mistake for its own metadata.
 *
 * UAF_WRITE frees a thread-cached block and then writes into it, over the
 * cache list's link or marker: the damage must be reported, never followed
 * (op_uaf_write says what is checked).
 *
 * CRASH runs a linked operation in a child that a crash point stops at
 * step k (lib/log.h), then reopens: the heap must be exactly the model
 * before the operation (the child stopped) or after it (it finished).
 *
 * The input language is in fuzz_ops_format.h (shared with gen_corpus.c).
 * An input that ends in the middle of an operation stops there.  The run
 * is deterministic (see getrandom below), so a saved input replays.
 * FUZZ_TRACE=1 prints each operation as it runs.
 */
/* OP_TOO_BIG asks for impossible sizes on purpose: without this the
 * compiler's alloc_size checks warn about them. */
#define FM_NO_ALLOC_ATTRIBUTES
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "fuzz_ops_format.h"
#include "fuzz_util.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Deterministic arena ids.  The library takes a new arena's id -- and so
 * the salt of every chunk tag and thread-cache marker -- from getrandom().
 * This definition takes precedence over the C library's in this program,
 * so that every run of an input is the same run: findings replay, and the
 * fuzzer can learn tag and marker values from the comparisons it traces.
 */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    unsigned char *b = buf;
    (void)flags;
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(0xa5u ^ (unsigned)i * 37u);
    return (ssize_t)len;
}

#define MAX_OPS 2000
#define MAX_CRASHES 8
#define ARENA_INITIAL (64u * 1024)
#define ARENA_MAX (256u << 20)

struct slot {
    bool used;
    bool linked;   /* root word k holds off */
    uint64_t off;  /* payload offset */
    size_t size;   /* bytes asked for (and patterned) */
    uint32_t seed; /* pattern */
    uint8_t poke_mask; /* words 0..3 that OP_POKE overwrote, with ... */
    uint64_t poke[4];  /* ... the values it wrote */
};

static struct slot slots[NSLOTS];
static struct fm_info *fi;
static struct fuzz_errors errs;
static uint32_t next_seed;
static int crashes;
static const char *path;

/* ---- input --------------------------------------------------------------- */

struct input {
    const uint8_t *p, *end;
    bool short_read;
};

static uint8_t in_byte(struct input *in)
{
    if (in->p == in->end) {
        in->short_read = true;
        return 0;
    }
    return *in->p++;
}

/* Sizes by class: tiny, small bins, tree bins, large (grows the file). */
static size_t decode_size(struct input *in)
{
    unsigned b0 = in_byte(in), b1 = in_byte(in);
    unsigned v = (b0 & 63u) << 8 | b1;
    switch (b0 >> 6) {
    case 0:
        return b1 % 64;
    case 1:
        return v % 512;
    case 2:
        return 512 + v;
    default:
        return (size_t)v << 3; /* up to 128 KiB: grows the file */
    }
}

/* ---- the arena and the model ------------------------------------------- */

static fm_off_t *root_word(int k)
{
    return (fm_off_t *)fm_root(fi) + k;
}

static void *ptr_of(int k)
{
    return fm_pointer(fi, slots[k].off);
}

static void arena_open(unsigned flags)
{
    struct fm_options o = {.initial_size = ARENA_INITIAL, .max_size = ARENA_MAX,
                           .flags = flags | FM_NOSYNC};
    int err = fm_open(path, &o, &fi);
    FUZZ_REQUIRE(err == 0, "fm_open(flags 0x%x): %s", flags, fm_strerror(err));
    fm_set_error_handler(fi, fuzz_record_error, &errs);
}

/* First byte of b[from, to) that is not what slot s's block must hold --
 * its pattern, except the words OP_POKE wrote -- or `to`. */
FUZZ_NOCOV static size_t slot_verify(const struct slot *s, const uint8_t *b, size_t from, size_t to)
{
    size_t i = from;
    for (; i < to && i < 32; i++) {
        uint8_t want = (s->poke_mask >> (i / 8)) & 1 ? (uint8_t)(s->poke[i / 8] >> (8 * (i % 8)))
                                                      : fuzz_pattern_byte(s->seed, i);
        if (b[i] != want)
            return i;
    }
    return i < to ? fuzz_verify_from(b, i, to, s->seed) : to;
}

/* Root word k links the block the model says, or holds 0. */
static void verify_root_word(int k, const char *when)
{
    const struct slot *s = &slots[k];
    FUZZ_REQUIRE(*root_word(k) == (s->linked ? s->off : 0),
                 "%s: root word %d is %llu, model says %llu", when, k,
                 (unsigned long long)*root_word(k),
                 (unsigned long long)(s->linked ? s->off : 0));
}

static void verify_slot(int k, const char *when)
{
    struct slot *s = &slots[k];
    verify_root_word(k, when);
    if (!s->used)
        return;
    void *p = ptr_of(k);
    FUZZ_REQUIRE(p != NULL, "%s: slot %d offset %llu is outside the file", when, k,
                 (unsigned long long)s->off);
    size_t u = fm_usable_size(fi, p);
    FUZZ_REQUIRE(u >= s->size, "%s: slot %d: usable size %zu < %zu asked", when, k, u, s->size);
    size_t bad = slot_verify(s, p, 0, s->size);
    FUZZ_REQUIRE(bad == s->size, "%s: slot %d (offset %llu, %zu bytes): byte %zu changed", when,
                 k, (unsigned long long)s->off, s->size, bad);
}

/* Root words, and the first and last bytes of every block: cheap enough
 * for every operation, and an overlapping allocation shows at once. */
static void quick_verify(const char *when)
{
    for (int k = 0; k < NSLOTS; k++) {
        struct slot *s = &slots[k];
        verify_root_word(k, when);
        if (!s->used)
            continue;
        const uint8_t *b = ptr_of(k);
        FUZZ_REQUIRE(b != NULL, "%s: slot %d is outside the file", when, k);
        size_t head = s->size < 32 ? s->size : 32;
        size_t bad = slot_verify(s, b, 0, head);
        if (bad == head)
            bad = slot_verify(s, b, s->size > 64 ? s->size - 32 : head, s->size);
        FUZZ_REQUIRE(bad == s->size,
                     "%s: slot %d (offset %llu, %zu bytes): byte %zu changed", when, k,
                     (unsigned long long)s->off, s->size, bad);
    }
}

struct walk_cmp {
    size_t blocks;
    bool stray;
    uint64_t stray_off;
};

static int walk_cmp_fn(void *p, size_t size, void *arg)
{
    struct walk_cmp *w = arg;
    uint64_t off = fm_offset(fi, p);
    w->blocks++;
    for (int k = 0; k < NSLOTS; k++)
        if (slots[k].used && slots[k].off == off && size >= slots[k].size)
            return 0;
    w->stray = true;
    w->stray_off = off;
    return 1;
}

static void verify_all(const char *when)
{
    size_t used = 0;
    FUZZ_REQUIRE(fm_check(fi) == 0, "%s: fm_check: %s", when, fm_check_message(fi));
    for (int k = 0; k < NSLOTS; k++) {
        verify_slot(k, when);
        used += slots[k].used;
    }
    struct fm_stats st;
    FUZZ_REQUIRE(fm_stats(fi, &st) == 0, "%s: fm_stats failed", when);
    FUZZ_REQUIRE(st.allocated_count == used, "%s: %llu blocks allocated, model has %zu", when,
                 (unsigned long long)st.allocated_count, used);
    FUZZ_REQUIRE(st.allocated_bytes + st.free_bytes == st.heap_size, "%s: stats do not add up",
                 when);
    struct walk_cmp w = {0};
    FUZZ_REQUIRE(fm_walk(fi, walk_cmp_fn, &w) == (w.stray ? 1 : 0), "%s: fm_walk failed", when);
    FUZZ_REQUIRE(!w.stray, "%s: fm_walk found block %llu that no slot owns", when,
                 (unsigned long long)w.stray_off);
    FUZZ_REQUIRE(w.blocks == used, "%s: walk saw %zu blocks, model has %zu", when, w.blocks,
                 used);
}

static void expect_no_errors(const char *what)
{
    FUZZ_REQUIRE(errs.count == 0, "%s called the error handler: %s", what, errs.last_msg);
}

/* A new block landed in slot k (which is empty in the model). */
static void adopt(int k, void *p, size_t size, bool linked, const char *what)
{
    FUZZ_REQUIRE(p != NULL, "%s(%zu) into slot %d returned NULL: %s", what, size, k,
                 fm_strerror(fm_last_error()));
    FUZZ_REQUIRE((fm_offset(fi, p) & 15) == 0, "%s returned a misaligned block", what);
    FUZZ_REQUIRE(fm_usable_size(fi, p) >= size, "%s(%zu): usable size %zu", what, size,
                 fm_usable_size(fi, p));
    for (int j = 0; j < NSLOTS; j++)
        FUZZ_REQUIRE(!slots[j].used || j == k || slots[j].off != fm_offset(fi, p),
                     "%s returned slot %d's live block", what, j);
    struct slot *s = &slots[k];
    s->used = true;
    s->linked = linked;
    s->off = fm_offset(fi, p);
    s->size = size;
    s->seed = next_seed++;
    s->poke_mask = 0;
    fuzz_fill(p, size, s->seed);
}

/* Empty slot k the way it was filled. */
static void release(int k)
{
    struct slot *s = &slots[k];
    if (!s->used)
        return;
    if (s->linked)
        fm_free_from(fi, root_word(k));
    else
        fm_free(fi, ptr_of(k));
    memset(s, 0, sizeof *s);
    expect_no_errors("free");
}

/* After a resize of slot k to `size` that returned q (NULL: freed or failed). */
static void resized(int k, void *q, size_t size, const char *what)
{
    struct slot *s = &slots[k];
    FUZZ_REQUIRE(q != NULL, "%s of slot %d to %zu returned NULL: %s", what, k, size,
                 fm_strerror(fm_last_error()));
    size_t keep = s->size < size ? s->size : size;
    size_t bad = slot_verify(s, q, 0, keep);
    FUZZ_REQUIRE(bad == keep, "%s of slot %d (%zu -> %zu bytes) lost byte %zu", what, k,
                 s->size, size, bad);
    FUZZ_REQUIRE(fm_usable_size(fi, q) >= size, "%s(%zu): usable size %zu", what, size,
                 fm_usable_size(fi, q));
    s->off = fm_offset(fi, q);
    /* Refill the whole block under a new seed so the next check is exact. */
    s->size = size;
    s->seed = next_seed++;
    s->poke_mask = 0;
    fuzz_fill(q, size, s->seed);
}

/* ---- operations ---------------------------------------------------------- */

static void op_reopen(struct input *in)
{
    uint8_t how = in_byte(in);
    FUZZ_REQUIRE(fm_close(fi) == 0, "fm_close failed");
    if (how & 1) {
        /* A read-only look in between: same heap, no allocation. */
        arena_open(FM_RDONLY);
        verify_all("read-only reopen");
        errno = 0;
        FUZZ_REQUIRE(fm_malloc(fi, 8) == NULL && errno == EROFS, "read-only arena allocated");
        fm_close(fi);
    }
    arena_open(0);
    verify_all("reopen");
}

static void op_bad_free(struct input *in)
{
    int k = in_byte(in) % NSLOTS;
    uint8_t kind = in_byte(in) % 4;
    struct slot *s = &slots[k];
    int before = errs.count;
    int local;
    switch (kind) {
    case 0: /* not in the arena at all */
        fm_free(fi, &local);
        break;
    case 1: /* misaligned: inside a live block */
        if (!s->used)
            return;
        fm_free(fi, (char *)ptr_of(k) + 8);
        break;
    case 2: /* double free: free it, then again */
        if (!s->used)
            return;
        {
            void *p = ptr_of(k);
            if (s->linked)
                *root_word(k) = 0;
            fm_free(fi, p);
            memset(s, 0, sizeof *s);
            expect_no_errors("the first free");
            fm_free(fi, p);
        }
        break;
    default: /* in the free top (the top is at least 32 bytes) */
        {
            struct fm_stats st;
            FUZZ_REQUIRE(fm_stats(fi, &st) == 0, "fm_stats failed");
            fm_free(fi, (char *)fi->mem + st.file_size - 32);
        }
        break;
    }
    FUZZ_REQUIRE(errs.count == before + 1 && errs.last_err == FM_EBADPTR,
                 "bad free (kind %u) was not reported as FM_EBADPTR (%d calls, last %d)", kind,
                 errs.count - before, errs.last_err);
    errs.count = 0;
    quick_verify("after a bad free");
}

/* ---- writes after free ------------------------------------------------ */

/* Blocks the list of chunk size nb holds in this thread's cache. */
static uint32_t cache_count(uint64_t nb)
{
    struct fm_arena *a = arena_of(fi);
    struct tcache *tc = a->tc.caches ? pthread_getspecific(a->tc.key) : NULL;
    return tc ? tc->counts[nb >> 4] : 0;
}

/* Is block p the first of this thread's cached blocks of chunk size nb? */
static bool cache_heads(uint64_t nb, const void *p)
{
    struct fm_arena *a = arena_of(fi);
    struct tcache *tc = a->tc.caches ? pthread_getspecific(a->tc.key) : NULL;
    return tc && tc->heads[nb >> 4] + CH_PAYLOAD == (uint64_t)((const char *)p - a->base);
}

/*
 * Free slot k's block into this thread's cache, then store v into its word
 * w, as a program that kept the pointer would: over the list's link (word
 * 0), its marker (1), or user bytes (2, 3).  Every call must return, the
 * readers (fm_check, fm_stats) with 0 or FM_ECORRUPT; draining the class
 * must hand out only new blocks inside the heap; damage (a changed link or
 * marker) must reach the error handler as FM_ECORRUPT, and nothing else
 * may.  Then the block itself is freed if its lost marker left it looking
 * live, and a close and reopen (whose sweep frees what a dropped list
 * held) must leave exactly the model.
 */
static void op_uaf_write(struct input *in)
{
    int k = in_byte(in) % NSLOTS;
    unsigned w = in_byte(in) % 4;
    uint64_t v = 0, was;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in_byte(in) << (8 * i);
    struct slot *s = &slots[k];
    if (in->short_read || !s->used || request_to_size(s->size) > TC_MAX_CHUNK)
        return;
    uint8_t *p = ptr_of(k);
    size_t usable = fm_usable_size(fi, p);
    if (s->linked)
        *root_word(k) = 0;
    fm_free(fi, p);
    memset(s, 0, sizeof *s);
    uint64_t nb = usable + CH_OVERHEAD;
    /* A block next to a big free chunk merges into it instead (tcache.c,
     * borders_big_free): then its bytes are the heap's, not the list's. */
    if (!cache_heads(nb, p))
        return;
    FUZZ_REQUIRE(cache_count(nb) > 0, "a block of %zu bytes was cached but not counted", usable);
    if (8 * (w + 1) > usable)
        return;
    memcpy(&was, p + 8 * w, 8);
    memcpy(p + 8 * w, &v, 8);
    bool damaged = w < 2 && v != was;

    int err = fm_check(fi);
    FUZZ_REQUIRE(err == 0 || err == FM_ECORRUPT, "fm_check after a write after free: %d", err);
    FUZZ_REQUIRE(!damaged || err == FM_ECORRUPT, "fm_check missed a damaged cache list");
    struct fm_stats st;
    err = fm_stats(fi, &st);
    FUZZ_REQUIRE(err == 0 || err == FM_ECORRUPT, "fm_stats after a write after free: %d", err);
    (void)fm_usable_size(fi, p);

    enum { MOST = TC_CAP + 1 };
    void *taken[MOST];
    int n = 0;
    while (n < MOST && cache_count(nb) > 0 && errs.count == 0) {
        uint8_t *q = fm_malloc(fi, usable);
        uint64_t off = fm_offset(fi, q);
        FUZZ_REQUIRE(q && off >= FMT_HEAP_OFF && off % 16 == 0 &&
                         fm_usable_size(fi, q) >= usable,
                     "fm_malloc after a write after free returned offset %llu",
                     (unsigned long long)off);
        for (int j = 0; j < NSLOTS; j++)
            FUZZ_REQUIRE(!slots[j].used || slots[j].off != off,
                         "fm_malloc after a write after free returned slot %d's block", j);
        memset(q, 0xdd, usable); /* an overlap shows in quick_verify */
        taken[n++] = q;
    }
    FUZZ_REQUIRE(errs.count == 0 || errs.last_err == FM_ECORRUPT,
                 "a write after free reported as %d: %s", errs.last_err, errs.last_msg);
    FUZZ_REQUIRE(!damaged || errs.count > 0, "a damaged cache list was not reported");
    errs.count = 0;
    bool p_taken = false;
    for (int i = 0; i < n; i++) {
        p_taken |= taken[i] == p;
        fm_free(fi, taken[i]);
    }
    if (!p_taken && fm_usable_size(fi, p) != 0)
        fm_free(fi, p); /* dropped without its marker: it looks like a live block */
    expect_no_errors("freeing after a write after free");
    quick_verify("after a write after free");
    FUZZ_REQUIRE(fm_close(fi) == 0, "fm_close failed");
    expect_no_errors("fm_close after a write after free");
    arena_open(0);
    verify_all("reopen after a write after free");
}

/* ---- crash points ----------------------------------------------------- */

/*
 * POKE writes arbitrary bytes into the first words of a block: user data
 * that the heap must never mistake for its own metadata.
 *
 * CRASH runs a linked operation in a child that a crash point stops at
 * step `step` (or that finishes and exits without closing).  Forking the
 * fuzzer itself costs more than everything else it does (its page tables
 * grow with the corpus), so a small fork server, started before the first
 * arena is opened, forks the children instead.
 */
struct crash_req {
    uint8_t kind; /* 0 fm_malloc_to, 1 fm_free_from, 2 fm_realloc_to */
    int k;
    size_t size;
    long step;
    uint32_t seed;   /* pattern for the new block */
    struct slot old; /* the block fm_realloc_to resizes */
};

/* Exit codes of a crash child besides 0 (finished) and FM_CP_EXIT. */
enum { CHILD_NOOPEN = 3, CHILD_NULL = 4, CHILD_LOST = 5 };

static void crash_child(const struct crash_req *r)
{
    struct fm_options o = {.max_size = ARENA_MAX, .flags = FM_NOSYNC};
    if (fm_open(path, &o, &fi) != 0)
        _exit(CHILD_NOOPEN);
    fm__cp_arm(r->step);
    void *p = NULL;
    fm_off_t *w = root_word(r->k);
    if (r->kind == 0)
        p = fm_malloc_to(fi, w, r->size);
    else if (r->kind == 1)
        fm_free_from(fi, w);
    else
        p = fm_realloc_to(fi, w, r->size);
    fm__cp_disarm();
    if (r->kind != 1 && !p && !(r->kind == 2 && r->size == 0 && r->old.used))
        _exit(CHILD_NULL);
    if (p && r->kind == 2 && r->old.used) {
        size_t keep = r->old.size < r->size ? r->old.size : r->size;
        if (slot_verify(&r->old, p, 0, keep) != keep)
            _exit(CHILD_LOST);
    }
    if (p)
        fuzz_fill(p, r->size, r->seed);
    _exit(0); /* no fm_close: dirty, as after a kill */
}

static int srv_req = -1, srv_resp = -1;

/* All n bytes through the pipe, or false.  libFuzzer's timeout timer
 * interrupts blocking calls: retry them. */
static bool pipe_full(int fd, void *buf, size_t n, bool writing)
{
    char *b = buf;
    while (n > 0) {
        ssize_t r = writing ? write(fd, b, n) : read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= (size_t)r;
    }
    return true;
}

static bool read_full(int fd, void *buf, size_t n)
{
    return pipe_full(fd, buf, n, false);
}

static bool write_full(int fd, const void *buf, size_t n)
{
    return pipe_full(fd, (void *)(uintptr_t)buf, n, true);
}

static void crash_server(int in, int out)
{
    struct crash_req r;
    while (read_full(in, &r, sizeof r)) {
        pid_t pid = fork();
        if (pid == 0)
            crash_child(&r);
        int status = 0, code = -1;
        pid_t w = -1;
        while (pid > 0 && (w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        if (pid > 0 && w == pid)
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (!write_full(out, &code, sizeof code))
            break;
    }
    _exit(0); /* the fuzzer has gone */
}

/* Start the server; no arena may be open (its lock would be inherited). */
static void crash_server_start(void)
{
    int req[2], resp[2];
    if (srv_req >= 0)
        return;
    FUZZ_REQUIRE(pipe(req) == 0 && pipe(resp) == 0, "pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    FUZZ_REQUIRE(pid >= 0, "fork failed");
    if (pid == 0) {
        close(req[1]);
        close(resp[0]);
        crash_server(req[0], resp[1]);
    }
    close(req[0]);
    close(resp[1]);
    srv_req = req[1];
    srv_resp = resp[0];
}

static int crash_run(const struct crash_req *r)
{
    int code;
    FUZZ_REQUIRE(write_full(srv_req, r, sizeof *r), "crash server gone");
    FUZZ_REQUIRE(read_full(srv_resp, &code, sizeof code), "crash server gone");
    return code;
}

/* The parent's side: the model before, the child, the model after. */
static void op_crash(struct input *in)
{
    struct crash_req r = {0};
    r.kind = in_byte(in) % 3;
    r.k = in_byte(in) % NSLOTS;
    r.size = decode_size(in);
    r.step = 1 + in_byte(in) + 256L * (in_byte(in) % 4);
    struct slot *s = &slots[r.k];
    if (in->short_read || crashes >= MAX_CRASHES || (r.kind == 1 && !s->used))
        return;
    crashes++;
    if (r.kind == 0)
        release(r.k); /* fm_malloc_to overwrites the link without freeing */
    if (s->used && !s->linked) {
        *root_word(r.k) = s->off;
        s->linked = true;
    }
    r.seed = next_seed++;
    r.old = *s;

    FUZZ_REQUIRE(fm_close(fi) == 0, "fm_close failed");
    fi = NULL;
    int code = crash_run(&r);
    FUZZ_REQUIRE(code == 0 || code == FM_CP_EXIT,
                 "crash child (op %u, slot %d, size %zu, step %ld) exited %d", r.kind, r.k,
                 r.size, r.step, code);

    arena_open(0);
    struct fm_stats st;
    FUZZ_REQUIRE(fm_stats(fi, &st) == 0 && st.recovered, "dirty arena not recovered");
    if (code == 0) { /* the child finished: the model moves on */
        uint64_t off = *root_word(r.k);
        bool gone = r.kind == 1 || (r.kind == 2 && r.size == 0 && r.old.used);
        FUZZ_REQUIRE(gone == (off == 0), "finished op %u left link %llu", r.kind,
                     (unsigned long long)off);
        memset(s, 0, sizeof *s);
        if (!gone) {
            s->used = true;
            s->linked = true;
            s->off = off;
            s->size = r.size;
            s->seed = r.seed;
        }
    }
    verify_all(code == 0 ? "after a finished crash op" : "after a crash");
}

static const char *const op_names[OP_COUNT] = {
    "malloc", "calloc", "realloc", "memalign", "free", "malloc_to", "free_from",
    "realloc_to", "reopen", "check", "trim", "bad_free", "crash", "rewrite", "too_big", "poke",
    "uaf_write",
};

static void run(struct input *in)
{
    int ops = 0;
    bool trace = getenv("FUZZ_TRACE") != NULL; /* print each operation */
    while (in->p < in->end && ops++ < MAX_OPS) {
        const uint8_t *at = in->p;
        uint8_t op = in_byte(in) % OP_COUNT;
        if (trace) {
            fprintf(stderr, "op %d: %s", ops, op_names[op]);
            for (const uint8_t *b = at + 1; b < in->end && b < at + 8; b++)
                fprintf(stderr, " %02x", *b);
            fputc('\n', stderr);
        }
        int k;
        size_t size;
        void *p;
        errs.count = 0;
        switch (op) {
        case OP_MALLOC:
            k = in_byte(in) % NSLOTS;
            size = decode_size(in);
            release(k);
            adopt(k, fm_malloc(fi, size), size, false, "fm_malloc");
            break;
        case OP_CALLOC: {
            k = in_byte(in) % NSLOTS;
            size_t n = in_byte(in) % 17;
            size = decode_size(in) % 4096;
            release(k);
            p = fm_calloc(fi, n, size);
            FUZZ_REQUIRE(p != NULL, "fm_calloc(%zu, %zu) returned NULL", n, size);
            size_t nz = fuzz_first_nonzero(p, n * size);
            FUZZ_REQUIRE(nz == n * size, "fm_calloc(%zu, %zu): byte %zu is %u", n, size, nz,
                         ((uint8_t *)p)[nz]);
            adopt(k, p, n * size, false, "fm_calloc");
            break;
        }
        case OP_REALLOC:
            k = in_byte(in) % NSLOTS;
            size = decode_size(in);
            if (!slots[k].used) {
                adopt(k, fm_realloc(fi, NULL, size), size, false, "fm_realloc(NULL)");
            } else if (size == 0) {
                p = fm_realloc(fi, ptr_of(k), 0);
                FUZZ_REQUIRE(p == NULL, "fm_realloc(p, 0) returned a block");
                if (slots[k].linked)
                    *root_word(k) = 0;
                memset(&slots[k], 0, sizeof slots[k]);
            } else {
                p = fm_realloc(fi, ptr_of(k), size);
                if (p && slots[k].linked)
                    *root_word(k) = fm_offset(fi, p);
                resized(k, p, size, "fm_realloc");
            }
            break;
        case OP_MEMALIGN: {
            k = in_byte(in) % NSLOTS;
            size_t align = (size_t)1 << (in_byte(in) % 17); /* 1 .. 64 KiB */
            size = decode_size(in);
            release(k);
            p = fm_memalign(fi, align, size);
            FUZZ_REQUIRE(p != NULL, "fm_memalign(%zu, %zu) returned NULL", align, size);
            FUZZ_REQUIRE(fm_offset(fi, p) % align == 0 && (uintptr_t)p % align == 0,
                         "fm_memalign(%zu) returned offset %llu", align,
                         (unsigned long long)fm_offset(fi, p));
            adopt(k, p, size, false, "fm_memalign");
            break;
        }
        case OP_FREE:
            k = in_byte(in) % NSLOTS;
            if (slots[k].used) {
                if (slots[k].linked)
                    *root_word(k) = 0;
                fm_free(fi, ptr_of(k));
                memset(&slots[k], 0, sizeof slots[k]);
            }
            break;
        case OP_MALLOC_TO:
            k = in_byte(in) % NSLOTS;
            size = decode_size(in);
            release(k);
            p = fm_malloc_to(fi, root_word(k), size);
            FUZZ_REQUIRE(!p || *root_word(k) == fm_offset(fi, p),
                         "fm_malloc_to did not link the block");
            adopt(k, p, size, true, "fm_malloc_to");
            break;
        case OP_FREE_FROM:
            k = in_byte(in) % NSLOTS;
            if (slots[k].used && !slots[k].linked) /* link it, then free through the link */
                *root_word(k) = slots[k].off;
            fm_free_from(fi, root_word(k));
            FUZZ_REQUIRE(*root_word(k) == 0, "fm_free_from left the link");
            memset(&slots[k], 0, sizeof slots[k]);
            break;
        case OP_REALLOC_TO:
            k = in_byte(in) % NSLOTS;
            size = decode_size(in);
            if (slots[k].used && !slots[k].linked)
                *root_word(k) = slots[k].off;
            if (slots[k].used)
                slots[k].linked = true;
            p = fm_realloc_to(fi, root_word(k), size);
            if (!slots[k].used) {
                adopt(k, p, size, true, "fm_realloc_to(0)");
            } else if (size == 0) {
                FUZZ_REQUIRE(p == NULL && *root_word(k) == 0, "fm_realloc_to(0) kept the block");
                memset(&slots[k], 0, sizeof slots[k]);
            } else {
                FUZZ_REQUIRE(!p || *root_word(k) == fm_offset(fi, p),
                             "fm_realloc_to did not relink the block");
                resized(k, p, size, "fm_realloc_to");
            }
            break;
        case OP_REOPEN:
            op_reopen(in);
            break;
        case OP_CHECK:
            verify_all("check");
            break;
        case OP_TRIM: {
            size_t pad = (size_t)in_byte(in) * 4096;
            struct fm_stats before, after;
            FUZZ_REQUIRE(fm_stats(fi, &before) == 0, "fm_stats failed");
            FUZZ_REQUIRE(fm_trim(fi, pad) == 0, "fm_trim(%zu) failed", pad);
            FUZZ_REQUIRE(fm_stats(fi, &after) == 0, "fm_stats failed");
            FUZZ_REQUIRE(after.file_size <= before.file_size &&
                             after.allocated_bytes == before.allocated_bytes,
                         "fm_trim changed the allocated bytes or grew the file");
            FUZZ_REQUIRE(after.top_size <= pad + 4096 + 32 || after.top_size == before.top_size ||
                             after.file_size == ARENA_INITIAL,
                         "fm_trim(%zu) left %llu bytes of top", pad,
                         (unsigned long long)after.top_size);
            verify_all("trim");
            break;
        }
        case OP_BAD_FREE:
            op_bad_free(in);
            break;
        case OP_CRASH:
            op_crash(in);
            break;
        case OP_REWRITE:
            k = in_byte(in) % NSLOTS;
            if (slots[k].used) {
                slots[k].seed = next_seed++;
                slots[k].poke_mask = 0;
                fuzz_fill(ptr_of(k), slots[k].size, slots[k].seed);
            }
            break;
        case OP_POKE: {
            /* Any user data, written into the first words of a block: the
             * heap must never read it as its own metadata. */
            k = in_byte(in) % NSLOTS;
            unsigned w = in_byte(in) % 4;
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v |= (uint64_t)in_byte(in) << (8 * i);
            if (slots[k].used && 8 * (w + 1) <= slots[k].size) {
                memcpy((char *)ptr_of(k) + 8 * w, &v, 8);
                slots[k].poke[w] = v;
                slots[k].poke_mask |= (uint8_t)(1u << w);
            }
            break;
        }
        case OP_UAF_WRITE:
            op_uaf_write(in);
            break;
        case OP_TOO_BIG: {
            uint8_t how = in_byte(in) % 4;
            errno = 0;
            if (how == 0)
                p = fm_malloc(fi, SIZE_MAX - 4096);
            else if (how == 1)
                p = fm_calloc(fi, SIZE_MAX / 3, 5);
            else if (how == 2)
                p = fm_malloc(fi, (size_t)ARENA_MAX * 2);
            else
                p = fm_memalign(fi, 48, 100); /* not a power of two */
            FUZZ_REQUIRE(p == NULL, "impossible allocation %u succeeded", how);
            FUZZ_REQUIRE(errno == (how == 3 ? EINVAL : ENOMEM),
                         "impossible allocation %u: errno %d", how, errno);
            quick_verify("after a failed allocation");
            break;
        }
        }
        if (in->short_read)
            break;
        expect_no_errors("a valid operation");
        /* fm_check is the costliest part of an operation (the thread-cache
         * scan most of all): every fourth, and after every failed call. */
        if (ops % 4 == 0 || op == OP_BAD_FREE || op == OP_TOO_BIG)
            FUZZ_REQUIRE(fm_check(fi) == 0, "op %d (%s): fm_check: %s", ops, op_names[op],
                         fm_check_message(fi));
        quick_verify("after an operation");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    path = fuzz_path("fuzz_ops");
    crash_server_start();
    fuzz_write_file(path, NULL, 0); /* empty: FM_CREATE lays out a new arena */
    memset(slots, 0, sizeof slots);
    memset(&errs, 0, sizeof errs);
    next_seed = 1;
    crashes = 0;
    arena_open(FM_CREATE);

    struct input in = {data, data + size, false};
    run(&in);

    verify_all("end");
    for (int k = 0; k < NSLOTS; k++)
        release(k);
    verify_all("after freeing everything");
    fm_close(fi);
    fi = NULL;
    return 0;
}
