/*
 * shared_stress -- several processes write one arena at once (FM_SHARED)
 * while the parent SIGKILLs them at random moments.
 *
 * Each of --procs workers opens the arena itself after fork (an inherited
 * handle is unusable by design) and runs --threads threads.  The root region
 * holds a table of link slots; worker k owns a range of it, split among its
 * threads, so no two threads touch one slot and the test needs no lock of
 * its own: any conflict it sees comes from the library.
 *
 * A thread takes each block from fm_calloc_to and fills it with a pattern
 * derived from the block's 8-byte header (magic, owning slot, nonce, length
 * filled), written last: a header of 0 is a block whose filling a kill cut
 * short.  The header names its slot, so a block handed to two owners shows.
 * Before fm_realloc_to shrinks a block its header is shortened, so at every
 * instant a header claims only bytes its block holds.
 *
 * The parent kills a random worker every 0-20 ms and respawns it; the new
 * worker first re-verifies its slots and frees the unfilled blocks.  That
 * relies on fm_open returning with a dead lock holder's operation rolled
 * back.  A kill must never hang the others: a watchdog names any call or
 * phase that lasts HANG_MS, and alarm() stops a parent that hangs itself.
 *
 * At the end the workers stop and close, and the parent opens the arena
 * exclusively: it must be clean (the last closer marked it so), pass
 * fm_check, and its allocated blocks must be exactly the linked ones.
 *
 * Prints one summary line; exits 0 on success, 1 on failure, 2 on bad usage.
 * --exclusive-selftest runs one worker that opens without FM_SHARED: the
 * harness checked against the single-writer mode.
 */
#include "stress_util.h"

#include <fmalloc.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MAX_PROCS 16
#define MAX_THREADS 16
#define NSLOTS 1022
#define ROOT_MAGIC 0x7373657274736873ull /* "shstress" */
#define HDR_MAGIC 0x5eedull              /* top 16 bits of a block header */
#define HANG_MS 15000                    /* one call or phase this long: a hang */
#define OPEN_RETRY_MS 3000               /* FM_ELOCKED while others open or close */

/* Root region layout: owned by this tool. */
struct root {
    uint64_t magic;
    uint64_t reserved;
    fm_off_t slots[NSLOTS]; /* links to blocks; slot_first() says whose */
};
_Static_assert(sizeof(struct root) == 8192, "the slot table fills the 8 KiB root region");

/* ------------------------------------------------------------------------
 * The board: a MAP_SHARED page that the parent and every worker see.  Each
 * worker thread (and each worker's main thread) says what it is doing, so
 * that a hang can be named, and counts its operations.
 * ---------------------------------------------------------------------- */

enum doing {
    IDLE, FORKED, OPENING, RECHECKING, JOINING, CLOSING, /* a worker's main thread */
    CALLOC, FREE, REALLOC, USABLE, FILLING                /* its threads */
};
static const char *const doing_name[] = {
    "between operations", "forked", "in fm_open", "re-verifying its slots",
    "waiting for its threads", "in fm_close", "in fm_calloc_to", "in fm_free_from",
    "in fm_realloc_to", "in fm_usable_size or checking a block", "filling a block"};

struct activity {
    atomic_int doing; /* enum doing */
    atomic_int_least64_t since_ms;
    atomic_uint_least64_t ops; /* completed, over every incarnation */
};

struct board {
    atomic_bool stop; /* the parent's request: threads end, worker closes */
    struct activity main[MAX_PROCS], thread[MAX_PROCS][MAX_THREADS];
};

static struct board *board;

static struct {
    unsigned procs, threads, per_thread; /* slots per thread */
    long kills;
    unsigned open_flags; /* FM_SHARED, or 0 for --exclusive-selftest */
    bool quiet;
    char path[4200];
} cfg = {.procs = 3, .threads = 2, .kills = 500, .open_flags = FM_SHARED};

static int64_t now_ms(void)
{
    return (int64_t)(stress_now() * 1000);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void activity_set(struct activity *a, enum doing what)
{
    atomic_store(&a->since_ms, now_ms());
    atomic_store(&a->doing, what);
}

/* First slot of worker k's thread t; it owns cfg.per_thread of them. */
static unsigned slot_first(unsigned k, unsigned t)
{
    return (k * cfg.threads + t) * cfg.per_thread;
}

/* ------------------------------------------------------------------------
 * Blocks.  Header bits: 63-48 magic, 47-38 slot, 37-24 nonce, 23-0 bytes
 * filled (header included).  The pattern depends on the bits above the
 * length only, so a block can grow under the same header.
 * ---------------------------------------------------------------------- */

static uint64_t hdr_make(unsigned slot, uint64_t nonce, size_t len)
{
    return HDR_MAGIC << 48 | (uint64_t)slot << 38 | (nonce & 0x3fff) << 24 | len;
}

static size_t hdr_len(uint64_t hdr)
{
    return (size_t)(hdr & 0xffffff);
}

/* How much of a block to fill: all of it, up to what a header can say. */
static size_t fill_len(size_t usable)
{
    return usable < 0xffffff ? usable : 0xffffff;
}

static unsigned char pattern_byte(uint64_t hdr, size_t j)
{
    uint64_t h = (hdr >> 24) * 0x9e3779b97f4a7c15ull;
    return (unsigned char)((h >> 56) + j * ((h >> 32) | 1));
}

static void fill_body(unsigned char *p, size_t from, size_t to, uint64_t hdr)
{
    for (size_t j = from; j < to; j++)
        p[j] = pattern_byte(hdr, j);
}

/* The header goes last.  A kill stops the process at one instruction, so
 * keeping the compiler from moving the store up is all the ordering needed. */
static void header_publish(unsigned char *p, uint64_t hdr)
{
    atomic_signal_fence(memory_order_seq_cst);
    memcpy(p, &hdr, sizeof hdr);
}

enum block_state { BLOCK_OK, BLOCK_UNFILLED, BLOCK_BAD };

/* What slot `slot`'s block p holds; the damage is described in why[]. */
static enum block_state block_verify(const unsigned char *p, size_t usable, unsigned slot,
                                     char *why, size_t len)
{
    uint64_t hdr;
    if (!p || usable < sizeof hdr) {
        snprintf(why, len, "not a live block (usable size %zu)", usable);
        return BLOCK_BAD;
    }
    memcpy(&hdr, p, sizeof hdr);
    if (hdr == 0) {
        snprintf(why, len, "header is 0: unfilled");
        return BLOCK_UNFILLED;
    }
    if (hdr >> 48 != HDR_MAGIC || (hdr >> 38 & 0x3ff) != slot || hdr_len(hdr) < sizeof hdr ||
        hdr_len(hdr) > usable) {
        snprintf(why, len, "bad header %#" PRIx64 " (usable size %zu)", hdr, usable);
        return BLOCK_BAD;
    }
    for (size_t j = sizeof hdr; j < hdr_len(hdr); j++)
        if (p[j] != pattern_byte(hdr, j)) {
            snprintf(why, len, "byte %zu of %zu is 0x%02x, expected 0x%02x", j, hdr_len(hdr),
                     p[j], pattern_byte(hdr, j));
            return BLOCK_BAD;
        }
    return BLOCK_OK;
}

/* ------------------------------------------------------------------------
 * Workers
 * ---------------------------------------------------------------------- */

struct thread_ctx {
    struct fm_info *fi;
    struct root *r;
    struct activity *act;
    unsigned k, first; /* worker, first slot */
    struct stress_rng rng;
};

/* A worker's check failed: say where and end with status 1, which the
 * parent reports.  _exit: the parent's stdio buffers are not ours. */
static _Noreturn void worker_fail(unsigned k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shared_stress: worker %u (pid %d): ", k, (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(1);
}

/* Mostly small; some up to 64 KiB; rarely 1-2 MiB, so that the file grows
 * while the others run. */
static size_t random_size(struct stress_rng *rng)
{
    uint64_t dice = stress_rng_below(rng, 1000);
    if (dice < 2)
        return (1u << 20) + stress_rng_below(rng, 1u << 20);
    if (dice < 50)
        return 16 + stress_rng_below(rng, (64u << 10) - 16);
    return 16 + stress_rng_below(rng, 1985);
}

/* The block the call just linked to slot i, and its usable size. */
static size_t linked_usable(struct thread_ctx *c, unsigned i, const void *p, size_t n,
                            const char *call)
{
    activity_set(c->act, USABLE);
    size_t usable = fm_usable_size(c->fi, p);
    if (!p || usable < n || c->r->slots[i] != fm_offset(c->fi, p))
        worker_fail(c->k, "slot %u: %s(%zu): %s (usable size %zu)", i, call, n,
                    p ? "block not linked or too small" : fm_last_error_detail(), usable);
    return usable;
}

static void thread_calloc(struct thread_ctx *c, unsigned i)
{
    size_t n = random_size(&c->rng);
    activity_set(c->act, CALLOC);
    unsigned char *p = fm_calloc_to(c->fi, &c->r->slots[i], 1, n);
    size_t usable = linked_usable(c, i, p, n, "fm_calloc_to");
    activity_set(c->act, FILLING);
    if (stress_find_mismatch(p, n, 0) != n)
        worker_fail(c->k, "slot %u: calloc'd block not zero at byte %zu", i,
                    stress_find_mismatch(p, n, 0));
    uint64_t hdr = hdr_make(i, stress_rng_next(&c->rng), fill_len(usable));
    fill_body(p, sizeof hdr, fill_len(usable), hdr);
    header_publish(p, hdr);
}

static void thread_realloc(struct thread_ctx *c, unsigned i, unsigned char *p, uint64_t hdr)
{
    size_t n = random_size(&c->rng);
    size_t keep = n < hdr_len(hdr) ? n : hdr_len(hdr);
    uint64_t kept = hdr - hdr_len(hdr) + keep, now;
    /* First claim no more than the new block will hold: a kill right after
     * the call must find a header that tells the truth. */
    if (kept != hdr)
        header_publish(p, kept);
    activity_set(c->act, REALLOC);
    unsigned char *q = fm_realloc_to(c->fi, &c->r->slots[i], n);
    size_t usable = linked_usable(c, i, q, n, "fm_realloc_to");
    activity_set(c->act, FILLING);
    char why[160] = "";
    memcpy(&now, q, sizeof now);
    if (now != kept || block_verify(q, usable, i, why, sizeof why) != BLOCK_OK)
        worker_fail(c->k, "slot %u: fm_realloc_to(%zu) lost the prefix: header %#" PRIx64
                          ", expected %#" PRIx64 "; %s", i, n, now, kept, why);
    fill_body(q, keep, fill_len(usable), kept);
    header_publish(q, kept - keep + fill_len(usable));
}

/* One random operation on one of the thread's slots. */
static void thread_step(struct thread_ctx *c)
{
    unsigned i = c->first + (unsigned)stress_rng_below(&c->rng, cfg.per_thread);
    if (!c->r->slots[i]) {
        thread_calloc(c, i);
        return;
    }
    /* This thread finished every filling it began, and the restart freed
     * its predecessor's unfilled blocks: every block must be whole. */
    unsigned char *p = fm_pointer(c->fi, c->r->slots[i]);
    char why[160];
    activity_set(c->act, USABLE);
    if (block_verify(p, fm_usable_size(c->fi, p), i, why, sizeof why) != BLOCK_OK)
        worker_fail(c->k, "slot %u: block at offset %" PRIu64 ": %s", i, c->r->slots[i], why);
    if (stress_rng_below(&c->rng, 5) < 3) {
        uint64_t hdr;
        memcpy(&hdr, p, sizeof hdr);
        thread_realloc(c, i, p, hdr);
        return;
    }
    activity_set(c->act, FREE);
    fm_free_from(c->fi, &c->r->slots[i]);
    if (c->r->slots[i])
        worker_fail(c->k, "slot %u: fm_free_from left it set: %s", i, fm_last_error_detail());
}

static void *thread_main(void *arg)
{
    struct thread_ctx *c = arg;
    while (!atomic_load_explicit(&board->stop, memory_order_relaxed)) {
        thread_step(c);
        activity_set(c->act, IDLE);
        atomic_fetch_add_explicit(&c->act->ops, 1, memory_order_relaxed);
    }
    return NULL;
}

/* fm_open may see FM_ELOCKED for a moment while another process opens or
 * closes; for longer, it is a failure. */
static struct fm_info *worker_open(unsigned k)
{
    struct fm_options o = {.flags = cfg.open_flags | FM_NOSYNC};
    int64_t deadline = now_ms() + OPEN_RETRY_MS;
    for (;;) {
        struct fm_info *fi;
        int err = fm_open(cfg.path, &o, &fi);
        if (!err)
            return fi;
        if (err != FM_ELOCKED || now_ms() > deadline)
            worker_fail(k, "fm_open: %s", fm_last_error_detail());
        sleep_ms(2);
    }
}

/* A (re)started worker: each block it owns must be whole or unfilled (its
 * predecessor was killed while filling it); the unfilled ones are freed. */
static void worker_recheck(struct fm_info *fi, struct root *r, unsigned k)
{
    for (unsigned i = slot_first(k, 0); i < slot_first(k + 1, 0); i++) {
        if (!r->slots[i])
            continue;
        unsigned char *p = fm_pointer(fi, r->slots[i]);
        char why[160];
        enum block_state st = block_verify(p, fm_usable_size(fi, p), i, why, sizeof why);
        if (st == BLOCK_BAD)
            worker_fail(k, "at start, slot %u, offset %" PRIu64 ": %s", i, r->slots[i], why);
        if (st == BLOCK_UNFILLED)
            fm_free_from(fi, &r->slots[i]);
        if (r->slots[i] && st == BLOCK_UNFILLED)
            worker_fail(k, "slot %u: fm_free_from left it set", i);
    }
}

static _Noreturn void worker_main(unsigned k, uint64_t seed)
{
    activity_set(&board->main[k], OPENING);
    struct fm_info *fi = worker_open(k);
    struct root *r = fm_root(fi);
    if (r->magic != ROOT_MAGIC)
        worker_fail(k, "root magic is %#" PRIx64, r->magic);
    activity_set(&board->main[k], RECHECKING);
    worker_recheck(fi, r, k);
    activity_set(&board->main[k], JOINING);
    pthread_t tid[MAX_THREADS];
    struct thread_ctx ctx[MAX_THREADS];
    for (unsigned t = 0; t < cfg.threads; t++) {
        ctx[t] = (struct thread_ctx){fi, r, &board->thread[k][t], k, slot_first(k, t), {{0}}};
        stress_rng_seed(&ctx[t].rng, seed + t);
        if (pthread_create(&tid[t], NULL, thread_main, &ctx[t]))
            worker_fail(k, "pthread_create failed");
    }
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_join(tid[t], NULL);
    activity_set(&board->main[k], CLOSING);
    int err = fm_close(fi);
    if (err)
        worker_fail(k, "fm_close: %s", fm_strerror(err));
    _exit(0);
}

/* ------------------------------------------------------------------------
 * Parent
 * ---------------------------------------------------------------------- */

static pid_t pids[MAX_PROCS];
static const char *volatile parent_doing = "starting";
static char summary_head[128]; /* "shared_stress: 3 procs x 2 threads, " */

static pid_t worker_spawn(unsigned k, uint64_t seed)
{
    for (unsigned t = 0; t < cfg.threads; t++)
        activity_set(&board->thread[k][t], IDLE);
    activity_set(&board->main[k], FORKED);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        worker_main(k, seed);
    return pid;
}

/* Anything doing one thing for HANG_MS?  (Idle threads and a main thread
 * joining its threads are not timed.)  With f, print everyone's state. */
static bool board_hang(FILE *f, char *why, size_t len)
{
    bool hung = false;
    int64_t now = now_ms();
    for (unsigned k = 0; k < cfg.procs; k++)
        for (unsigned t = 0; t <= cfg.threads; t++) {
            struct activity *a = t ? &board->thread[k][t - 1] : &board->main[k];
            int what = atomic_load(&a->doing);
            int64_t age = now - atomic_load(&a->since_ms);
            if (f && t == 0)
                fprintf(f, "  worker %u (pid %d): %s for %" PRId64 " ms\n", k, (int)pids[k],
                        doing_name[what], age);
            else if (f)
                fprintf(f, "    thread %u: %s for %" PRId64 " ms, %" PRIu64 " ops done\n",
                        t - 1, doing_name[what], age, (uint64_t)atomic_load(&a->ops));
            if (!hung && what != IDLE && what != JOINING && age > HANG_MS) {
                char who[24] = "";
                if (t)
                    snprintf(who, sizeof who, " thread %u", t - 1);
                snprintf(why, len, "hang: worker %u%s %s for %" PRId64 " ms", k, who,
                         doing_name[what], age);
                hung = true;
            }
        }
    return hung;
}

static uint64_t board_ops(void)
{
    uint64_t sum = 0;
    for (unsigned k = 0; k < cfg.procs; k++)
        for (unsigned t = 0; t < cfg.threads; t++)
            sum += atomic_load(&board->thread[k][t].ops);
    return sum;
}

/* Worker `pid` ended with `status`: forget it, and unless `fine`, say how
 * it ended in why[] (its own reason, if any, is on stderr). */
static bool worker_reaped(pid_t pid, int status, bool fine, char *why, size_t len)
{
    int k = 0;
    while (k < (int)cfg.procs && pids[k] != pid)
        k++;
    if (k < (int)cfg.procs)
        pids[k] = 0;
    if (fine)
        return true;
    if (WIFSIGNALED(status))
        snprintf(why, len, "worker %d died of signal %d (%s)", k, WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, len, "worker %d exited with status %d", k, WEXITSTATUS(status));
    return false;
}

/* Kills reset the watchdog's clocks: a lock that stays broken shows as
 * no progress at all. */
static bool no_progress(uint64_t *last_ops, int64_t *last_ms, char *why, size_t len)
{
    if (board_ops() != *last_ops || *last_ms == 0) {
        *last_ops = board_ops();
        *last_ms = now_ms();
    } else if (now_ms() - *last_ms > HANG_MS) {
        snprintf(why, len, "hang: no operation completed for %" PRId64 " ms", now_ms() - *last_ms);
        return true;
    }
    return false;
}

static bool run_kills(struct stress_rng *rng, long *kills, char *why, size_t len)
{
    uint64_t last_ops = 0;
    int64_t last_ms = 0;
    for (*kills = 0; *kills < cfg.kills; ++*kills) {
        parent_doing = "sleeping between kills";
        sleep_ms((long)stress_rng_below(rng, 21));
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG); /* ended before its kill */
        if ((pid > 0 && !worker_reaped(pid, status, false, why, len)) ||
            board_hang(NULL, why, len) || no_progress(&last_ops, &last_ms, why, len))
            return false;
        unsigned k = (unsigned)stress_rng_below(rng, cfg.procs);
        parent_doing = "killing and reaping a worker";
        kill(pids[k], SIGKILL);
        waitpid(pids[k], &status, 0);
        if (!worker_reaped(pids[k], status, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                           why, len))
            return false;
        if ((pids[k] = worker_spawn(k, stress_rng_next(rng))) < 0) {
            snprintf(why, len, "fork: %s", strerror(errno));
            return false;
        }
        if (!cfg.quiet && (*kills + 1) % 100 == 0)
            printf("%ld kills, %" PRIu64 " operations\n", *kills + 1, board_ops());
    }
    return true;
}

/* Ask the workers to finish; each must close and exit 0. */
static bool run_stop(char *why, size_t len)
{
    parent_doing = "waiting for the workers to stop";
    atomic_store(&board->stop, true);
    for (unsigned left = cfg.procs; left;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0 && !worker_reaped(pid, status, WIFEXITED(status) && !WEXITSTATUS(status),
                                      why, len))
            return false;
        if (pid == 0 && board_hang(NULL, why, len))
            return false;
        if (pid > 0)
            left--;
        else
            sleep_ms(1);
    }
    return true;
}

/* A set of offsets as a count and a sum of their hashes: two sets that
 * match in both are the same, but for a 2^-64 chance. */
struct offset_set {
    struct fm_info *fi;
    uint64_t n, hash;
};

static void offset_set_add(struct offset_set *s, fm_off_t off)
{
    s->n++;
    s->hash += stress_splitmix64(&off);
}

static int walk_add(void *p, size_t size, void *arg)
{
    struct offset_set *s = arg;
    offset_set_add(s, fm_offset(s->fi, p));
    return 0;
}

/* Every linked block must be live and whole -- its header names one slot,
 * so no two slots link it -- and the linked blocks be the allocated ones. */
static bool slots_match(struct fm_info *fi, uint64_t allocated, char *why, size_t len)
{
    const struct root *r = fm_root(fi);
    struct offset_set linked = {fi, 0, 0}, walked = {fi, 0, 0};
    for (unsigned i = 0; i < NSLOTS; i++) {
        if (!r->slots[i])
            continue;
        unsigned char *p = fm_pointer(fi, r->slots[i]);
        char bad[160];
        if (block_verify(p, fm_usable_size(fi, p), i, bad, sizeof bad) != BLOCK_OK) {
            snprintf(why, len, "slot %u, offset %" PRIu64 ": %s", i, r->slots[i], bad);
            return false;
        }
        offset_set_add(&linked, r->slots[i]);
    }
    int err = fm_walk(fi, walk_add, &walked);
    if (err)
        snprintf(why, len, "fm_walk: %s", fm_strerror(err));
    else if (linked.n != allocated || walked.n != allocated || linked.hash != walked.hash)
        snprintf(why, len, "%" PRIu64 " blocks linked, %" PRIu64 " allocated (fm_stats), %" PRIu64
                 " walked%s", linked.n, allocated, walked.n,
                 linked.hash != walked.hash ? ", not the same ones" : "");
    else
        return true;
    return false;
}

/* After the last close, an exclusive open must find the arena clean. */
static bool final_check(char *why, size_t len)
{
    parent_doing = "checking the arena";
    struct fm_options o = {.flags = FM_NOSYNC};
    struct fm_info *fi;
    struct fm_stats st;
    int err = fm_open(cfg.path, &o, &fi);
    if (err) {
        snprintf(why, len, "exclusive fm_open after the last close: %s", fm_last_error_detail());
        return false;
    }
    if ((err = fm_check(fi)))
        snprintf(why, len, "fm_check: %s", fm_check_message(fi));
    else if ((err = fm_stats(fi, &st)))
        snprintf(why, len, "fm_stats: %s", fm_strerror(err));
    else if ((err = st.recovered))
        snprintf(why, len, "the exclusive open recovered the arena: the last close left it dirty");
    bool ok = !err && slots_match(fi, st.allocated_count, why, len);
    fm_close(fi);
    return ok;
}

static void write_str(const char *s)
{
    ssize_t n = write(STDOUT_FILENO, s, strlen(s));
    (void)n;
}

/* The safety net behind the watchdog: the parent itself is stuck. */
static void on_alarm(int sig)
{
    (void)sig;
    for (unsigned k = 0; k < cfg.procs; k++)
        if (pids[k] > 0)
            kill(pids[k], SIGKILL);
    write_str(summary_head);
    write_str("FAIL: timed out while ");
    write_str(parent_doing);
    write_str("\n");
    _exit(1);
}

/* A new arena, closed again: the workers open it themselves. */
static int arena_create(void)
{
    struct fm_options o = {.flags = FM_CREATE | FM_EXCL | FM_NOSYNC};
    struct fm_info *fi;
    int err = fm_open(cfg.path, &o, &fi);
    if (err) {
        fprintf(stderr, "shared_stress: cannot create %s: %s\n", cfg.path, fm_strerror(err));
        return err;
    }
    ((struct root *)fm_root(fi))->magic = ROOT_MAGIC;
    return fm_close(fi);
}

/* ------------------------------------------------------------------------
 * Options and main
 * ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: shared_stress [--procs N] [--threads M] [--kills K] [--seed S] [--dir D] "
               "[--quiet] [--exclusive-selftest]\n"
               "  defaults: 3 procs, 2 threads each, 500 kills, a seed from the clock, "
               "$TMPDIR or /tmp\n");
}

#define OPTION(name) stress_option_value("shared_stress", usage, argc, argv, &i, name)
#define NUMBER(min, max) stress_option_u64("shared_stress", opt, v, min, max)

static void parse_args(int argc, char **argv, uint64_t *seed, const char **dir)
{
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *v;
        if ((v = OPTION("--procs")))
            cfg.procs = (unsigned)NUMBER(1, MAX_PROCS);
        else if ((v = OPTION("--threads")))
            cfg.threads = (unsigned)NUMBER(1, MAX_THREADS);
        else if ((v = OPTION("--kills")))
            cfg.kills = (long)NUMBER(0, 100000000);
        else if ((v = OPTION("--seed")))
            *seed = NUMBER(0, UINT64_MAX);
        else if ((v = OPTION("--dir")))
            *dir = v;
        else if (strcmp(opt, "--quiet") == 0)
            cfg.quiet = true;
        else if (strcmp(opt, "--exclusive-selftest") == 0)
            cfg.open_flags = 0;
        else
            stress_option_other("shared_stress", usage, opt);
    }
}
#undef OPTION
#undef NUMBER

int main(int argc, char **argv)
{
    uint64_t seed = stress_fresh_seed();
    const char *parent_dir = getenv("TMPDIR");
    if (!parent_dir || !*parent_dir)
        parent_dir = "/tmp";
    parse_args(argc, argv, &seed, &parent_dir);
    if (!cfg.open_flags)
        cfg.procs = 1; /* exclusive opens would lock each other out */
    cfg.per_thread = NSLOTS / (cfg.procs * cfg.threads);
    snprintf(summary_head, sizeof summary_head, "shared_stress: %u procs x %u threads, ",
             cfg.procs, cfg.threads);
    printf("shared_stress: seed %" PRIu64 " (replay with --seed %" PRIu64 ")%s\n", seed, seed,
           cfg.open_flags ? "" : ", exclusive self-test");

    static char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s/shared_stress.XXXXXX", parent_dir) >= sizeof dir ||
        !mkdtemp(dir)) {
        fprintf(stderr, "shared_stress: cannot make a directory in %s\n", parent_dir);
        return 1;
    }
    snprintf(cfg.path, sizeof cfg.path, "%s/shared.fm", dir);
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (board == MAP_FAILED || arena_create())
        return 1;

    signal(SIGALRM, on_alarm);
    alarm((unsigned)(60 + cfg.kills / 20));
    struct stress_rng rng;
    stress_rng_seed(&rng, seed);
    parent_doing = "starting the workers";
    bool started = true, stopped = false, ok = false;
    for (unsigned k = 0; k < cfg.procs; k++)
        started = started && (pids[k] = worker_spawn(k, stress_rng_next(&rng))) > 0;
    long kills = 0;
    char why[512] = "fork failed";
    if (started && run_kills(&rng, &kills, why, sizeof why) && (stopped = run_stop(why, sizeof why)))
        ok = final_check(why, sizeof why);
    alarm(0);
    if (!stopped) {
        sleep_ms(200); /* a worker just respawned gets as far as it can */
        fprintf(stderr, "shared_stress: %s; then:\n", why);
        board_hang(stderr, why, 0);
        for (unsigned k = 0; k < cfg.procs; k++)
            if (pids[k] > 0 && !kill(pids[k], SIGKILL))
                waitpid(pids[k], NULL, 0);
    }
    printf("%s%ld kills, %" PRIu64 " operations survived, %s%s\n", summary_head, kills,
           board_ops(), ok ? "OK" : "FAIL: ", ok ? "" : why);
    if (!ok) {
        fprintf(stderr, "shared_stress: seed %" PRIu64 "; arena kept at %s\n", seed, cfg.path);
        return 1;
    }
    unlink(cfg.path);
    rmdir(dir);
    return 0;
}
