/*
 * test_crashpoints.c -- end the process at every step of every heap path.
 *
 * For each scenario: build the "before" arena (setup), count the steps the
 * operation takes (log records, publishes, stores, growth syscalls,
 * commit), then for every step k fork a child that opens a fresh copy,
 * runs the operation and _exit()s at step k.  The parent reopens the copy:
 * recovery must have run, fm_check must pass, and the heap (every block's
 * offset, size and bytes, and the root region) must equal the state before
 * the operation -- or, for the run that reaches the end, the state after.
 * SQLite's way of reaching the paths a random kill rarely hits.  The name
 * directory is part of the compared state (every name and its offset).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_util.h"
#include "fmalloc.h"
#include "harness.h"
#include "log.h"
#include "state_hash.h"

static char work_path[600], tmpl_path[600];
static long total_steps, total_cases;

/* ---- helpers ------------------------------------------------------------- */

static fm_off_t *slot(struct fm_info *fi, int i)
{
    return (fm_off_t *)fm_root(fi) + i;
}

static void *at(struct fm_info *fi, int i)
{
    return fm_pointer(fi, *slot(fi, i));
}

static void put(struct fm_info *fi, int i, size_t n)
{
    char *p = fm_malloc_to(fi, slot(fi, i), n);
    require_true(p != NULL);
    for (size_t j = 0; j < n; j++)
        p[j] = (char)(i * 7 + (int)j);
}

static void drop(struct fm_info *fi, int i)
{
    fm_free_from(fi, slot(fi, i));
}

/* Syncing protects against OS crashes, not process kills: skip it here. */
static const struct fm_options nosync = {.flags = FM_NOSYNC};


/* ---- call boundaries ---------------------------------------------------------
 * An operation made of several public calls marks the end of each with
 * call_done().  In the reference run that records the step count and the
 * heap; a crash inside call j must then recover to the heap before or after
 * call j. */

#define MAX_CALLS 512
static bool reference;
static int ncalls;
static long bounds[MAX_CALLS];
static struct snap after_call[MAX_CALLS];

static void call_done(struct fm_info *fi)
{
    if (!reference)
        return;
    require_true(ncalls < MAX_CALLS);
    bounds[ncalls] = fm__cp_steps();
    after_call[ncalls++] = snapshot(fi);
}

/* ---- the walk ------------------------------------------------------------ */

typedef void (*scenario_fn)(struct fm_info *fi);

static void run_scenario(const char *name, scenario_fn setup, scenario_fn op)
{
    /* The "before" arena. */
    struct fm_info *fi = fresh_arena(tmpl_path, nosync);
    if (setup)
        setup(fi);
    require_eq(fm_check(fi), 0);
    require_eq(fm_close(fi), 0);

    harness_copy_file(tmpl_path, work_path);
    fi = require_open(work_path, nosync);
    struct snap before = snapshot(fi);
    reference = true;
    ncalls = 0;
    fm__cp_arm(0);
    op(fi);
    long steps = fm__cp_steps();
    if (ncalls == 0 || bounds[ncalls - 1] != steps)
        call_done(fi); /* a single-call operation */
    fm__cp_disarm();
    reference = false;
    require_eq(fm_check(fi), 0);
    struct snap after = snapshot(fi);
    fm_close(fi);
    expect_true(steps > 0);

    int bad = 0;
    for (long k = 1; k <= steps + 1 && !bad; k++) {
        harness_copy_file(tmpl_path, work_path);
        pid_t pid = fork();
        require_true(pid >= 0);
        if (pid == 0) {
            struct fm_info *c;
            if (fm_open(work_path, &nosync, &c))
                _exit(3);
            fm__cp_arm(k);
            op(c);
            _exit(0); /* no fm_close: the arena stays dirty, as after a kill */
        }
        int status;
        require_true(waitpid(pid, &status, 0) == pid);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        bool crashed = code == FM_CP_EXIT;
        if (!(crashed ? k <= steps : k == steps + 1 && code == 0)) {
            fprintf(stderr, "%s: step %ld: child exit %d\n", name, k, code);
            bad = 1;
            break;
        }
        fi = require_open(work_path, nosync);
        struct fm_stats st;
        expect_eq(fm_stats(fi, &st), 0);
        expect_true(st.recovered);
        if (fm_check(fi) != 0) {
            fprintf(stderr, "%s: step %ld: check: %s\n", name, k, fm_check_message(fi));
            bad = 1;
        }
        struct snap s = snapshot(fi);
        /* the call the crash fell in, and the heaps on either side of it */
        int j = 0;
        while (crashed && j < ncalls - 1 && bounds[j] < k)
            j++;
        struct snap lo = j ? after_call[j - 1] : before, hi = after_call[j];
        bool ok = crashed ? (s.hash == lo.hash && s.blocks == lo.blocks) ||
                                (ncalls > 1 && s.hash == hi.hash && s.blocks == hi.blocks)
                          : s.hash == after.hash && s.blocks == after.blocks;
        if (!ok) {
            fprintf(stderr, "%s: step %ld/%ld (call %d): heap is neither before nor after it\n",
                    name, k, steps, j + 1);
            bad = 1;
        }
        /* And the recovered arena works. */
        void *p = fm_malloc(fi, 100);
        expect_true(p != NULL);
        fm_free(fi, p);
        expect_eq(fm_check(fi), 0);
        fm_close(fi);
    }
    expect_eq(bad, 0);
    printf("%-34s %4ld steps%s\n", name, steps, bad ? "  FAILED" : "");
    total_steps += steps;
    total_cases += steps + 1;
}

/* ---- scenarios ------------------------------------------------------------- */

static void s_none(struct fm_info *fi) { (void)fi; }

static void op_small_from_top(struct fm_info *fi) { put(fi, 0, 48); }

static void s_exact_bin(struct fm_info *fi) { put(fi, 0, 100), put(fi, 1, 100), drop(fi, 0); }
static void op_malloc100(struct fm_info *fi) { put(fi, 2, 100); }

static void s_small_split(struct fm_info *fi) { put(fi, 0, 400), put(fi, 1, 16), drop(fi, 0); }
static void op_malloc64(struct fm_info *fi) { put(fi, 3, 64); }

static void s_dv(struct fm_info *fi) { s_small_split(fi), put(fi, 2, 64); }

static void s_dv_replace(struct fm_info *fi)
{
    /* Two binned chunks (416, 448); the 64-byte request splits the smaller,
     * leaving a 336-byte dv; the op needs 368, splits the 448 and must put
     * the old dv into a bin. */
    put(fi, 0, 400), put(fi, 1, 16), put(fi, 4, 440), put(fi, 5, 16);
    drop(fi, 0), drop(fi, 4);
    put(fi, 2, 64);
}
static void op_malloc352(struct fm_info *fi) { put(fi, 6, 352); }

static void s_tree_small(struct fm_info *fi) { put(fi, 0, 4000), put(fi, 1, 16), drop(fi, 0); }

static void s_tree_three(struct fm_info *fi)
{
    put(fi, 0, 3000), put(fi, 1, 16), put(fi, 2, 5000), put(fi, 3, 16);
    put(fi, 4, 8000), put(fi, 5, 16);
    drop(fi, 0), drop(fi, 2), drop(fi, 4);
}
static void op_malloc4000(struct fm_info *fi) { put(fi, 6, 4000); }

static void s_tree_list(struct fm_info *fi)
{
    for (int i = 0; i < 8; i += 2)
        put(fi, i, 2000), put(fi, i + 1, 16);
    for (int i = 0; i < 8; i += 2)
        drop(fi, i);
}
static void op_malloc2000(struct fm_info *fi) { put(fi, 9, 2000); }

static void s_trie(struct fm_info *fi)
{
    /* Several sizes in one tree bin so the root has children. */
    static const size_t sizes[] = {600, 520, 700, 560, 740, 620, 530};
    for (int i = 0; i < 7; i++)
        put(fi, 2 * i, sizes[i]), put(fi, 2 * i + 1, 16);
    for (int i = 0; i < 7; i++)
        drop(fi, 2 * i);
}
static void op_malloc600(struct fm_info *fi) { put(fi, 20, 600); }
static void op_malloc500(struct fm_info *fi) { put(fi, 20, 500); }

static void s_near_full(struct fm_info *fi) { put(fi, 0, 900 * 1024); }
static void op_grow(struct fm_info *fi) { put(fi, 1, 512 * 1024); }

static void s_three(struct fm_info *fi) { put(fi, 0, 200), put(fi, 1, 200), put(fi, 2, 200), put(fi, 3, 16); }
static void op_free1(struct fm_info *fi) { drop(fi, 1); }
static void op_free0(struct fm_info *fi) { drop(fi, 0); }
static void op_free3(struct fm_info *fi) { drop(fi, 3); }
static void s_three_free0(struct fm_info *fi) { s_three(fi), drop(fi, 0); }
static void s_three_free1(struct fm_info *fi) { s_three(fi), drop(fi, 1); }
static void s_three_free02(struct fm_info *fi) { s_three(fi), drop(fi, 0), drop(fi, 2); }
static void s_three_free2(struct fm_info *fi) { s_three(fi), drop(fi, 2); }

static void s_big_pair(struct fm_info *fi) { put(fi, 0, 3000), put(fi, 1, 16), put(fi, 2, 3000), put(fi, 3, 16), put(fi, 4, 3050), put(fi, 5, 16), drop(fi, 0); }
static void op_free_big2(struct fm_info *fi) { drop(fi, 2); }
static void op_free_big4(struct fm_info *fi) { drop(fi, 4); }

static void op_realloc_shrink(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 0), 40)); }
static void op_realloc_grow(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 1), 300)); }
static void op_realloc_top(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 3), 5000)); }
static void op_realloc_top_grow(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 0), 1500 * 1024)); }
static void op_realloc_move(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 0), 9000)); }
static void op_realloc_plain(struct fm_info *fi)
{
    void *p = fm_realloc(fi, at(fi, 1), 7000);
    require_true(p != NULL);
    *slot(fi, 1) = fm_offset(fi, p); /* plain store, after: not part of the step */
}

static void op_memalign(struct fm_info *fi) { require_true(fm_memalign(fi, 4096, 1000)); }
static void op_memalign_big(struct fm_info *fi) { require_true(fm_memalign(fi, 1 << 16, 100)); }
static void op_calloc(struct fm_info *fi) { require_true(fm_calloc(fi, 10, 100)); }
static void op_calloc_to100(struct fm_info *fi) { require_true(fm_calloc_to(fi, slot(fi, 2), 1, 100)); }
static void op_calloc_to4000(struct fm_info *fi) { require_true(fm_calloc_to(fi, slot(fi, 6), 4, 1000)); }
static void op_realloc_into_tree(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 1), 4000)); }
static void s_big(struct fm_info *fi) { put(fi, 0, 100), put(fi, 1, 3 << 20), put(fi, 2, 100); }
static void s_punched(struct fm_info *fi) { s_big(fi), drop(fi, 1); }
static void s_punched_next(struct fm_info *fi) { put(fi, 0, 100), put(fi, 1, 3 << 20), put(fi, 2, 100), drop(fi, 1); }
static void op_free_big(struct fm_info *fi) { drop(fi, 1); }
static void op_malloc_from_punched(struct fm_info *fi) { put(fi, 5, 1 << 20); }
static void op_grow_into_punched(struct fm_info *fi) { require_true(fm_realloc_to(fi, slot(fi, 0), 2 << 20)); }
static void op_free_into_punched_top(struct fm_info *fi) { drop(fi, 2); }
/* Thread cache: a miss refills, a free pushes, a malloc pops. */
static void op_cache_cycle(struct fm_info *fi)
{
    char *p = fm_malloc(fi, 100); /* refill: one block out, fifteen cached */
    require_true(p != NULL);
    call_done(fi);
    fm_free(fi, p); /* push: the marker is the commit point */
    call_done(fi);
    p = fm_malloc(fi, 100); /* pop */
    require_true(p != NULL);
    call_done(fi);
    fm_free(fi, p);
    call_done(fi);
}

/* Small free blocks waiting in a bin, kept apart by uncached guards (the
 * close at the end of setup flushes the cache into the bins). */
static void s_binned_smalls(struct fm_info *fi)
{
    for (int i = 0; i < 40; i++)
        put(fi, 2 * i, 40), put(fi, 2 * i + 1, 600);
    for (int i = 0; i < 40; i++)
        drop(fi, 2 * i);
}

/* Thread cache: a miss takes one block and batches more from the bin. */
static void op_cache_refill_batch(struct fm_info *fi)
{
    char *p = fm_malloc(fi, 40);
    require_true(p != NULL);
    call_done(fi);
    char *q = fm_malloc(fi, 40); /* served from the batch */
    require_true(q != NULL);
    call_done(fi);
}

/* Thread cache: a miss with no exact fit carves a run of 16 chunks of 32
 * bytes out of the 3000-byte tree chunk, whose links lie where the run's
 * second and third blocks will be: a crash before the commit must find
 * them intact (the cache writes its own links only after the commit). */
static void op_cache_run_from_tree(struct fm_info *fi)
{
    char *p = fm_malloc(fi, 16);
    require_true(p != NULL);
    call_done(fi);
    char *q = fm_malloc(fi, 16); /* the run's second block */
    require_true(q == p + 32);
    call_done(fi);
}

/* Thread cache: a full class sends half its blocks back to the heap. */
static void op_cache_flush(struct fm_info *fi)
{
    static char *p[80];
    for (int i = 0; i < 80; i++) {
        require_true((p[i] = fm_malloc(fi, 40)) != NULL);
        call_done(fi);
    }
    for (int i = 0; i < 80; i++) {
        fm_free(fi, p[i]);
        call_done(fi);
    }
}

static void op_plain_free(struct fm_info *fi) { fm_free(fi, at(fi, 2)); }

/* Name directory: a block and n names bound to it (16 slots hold 12). */
static void bind_names(struct fm_info *fi, int n)
{
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "name %d", i);
        require_eq(fm_name_bind(fi, name, *slot(fi, 0)), 0);
    }
}
static void s_block(struct fm_info *fi) { put(fi, 0, 64); }
static void s_named3(struct fm_info *fi) { put(fi, 0, 64), bind_names(fi, 3); }
static void s_named12(struct fm_info *fi) { put(fi, 0, 64), bind_names(fi, 12); }
static void s_named3_unbound1(struct fm_info *fi)
{
    s_named3(fi);
    require_eq(fm_name_unbind(fi, "name 1"), 0);
}
static void op_bind(struct fm_info *fi) { require_eq(fm_name_bind(fi, "new", *slot(fi, 0)), 0); }
static void op_bind_again1(struct fm_info *fi) { require_eq(fm_name_bind(fi, "name 1", *slot(fi, 0)), 0); }
static void op_unbind(struct fm_info *fi) { require_eq(fm_name_unbind(fi, "name 1"), 0); }
static void op_name_malloc(struct fm_info *fi) { require_true(fm_name_malloc(fi, "object", 500) != NULL); }

static void s_trimmable(struct fm_info *fi) { put(fi, 0, 100), put(fi, 1, 3 << 20), drop(fi, 1); }
static void op_trim(struct fm_info *fi) { require_eq(fm_trim(fi, 0), 0); }

int main(void)
{
    const char *dir = harness_tmpdir();
    snprintf(work_path, sizeof work_path, "%s/work.fm", dir);
    snprintf(tmpl_path, sizeof tmpl_path, "%s/template.fm", dir);

    run_scenario("malloc small from top", s_none, op_small_from_top);
    run_scenario("malloc small exact bin", s_exact_bin, op_malloc100);
    run_scenario("malloc small split -> dv", s_small_split, op_malloc64);
    run_scenario("malloc small from dv", s_dv, op_malloc64);
    run_scenario("malloc small, dv replaced", s_dv_replace, op_malloc352);
    run_scenario("malloc small from tree", s_tree_small, op_malloc64);
    run_scenario("malloc large best fit", s_tree_three, op_malloc4000);
    run_scenario("malloc large, list promotion", s_tree_list, op_malloc2000);
    run_scenario("malloc large, trie root", s_trie, op_malloc600);
    run_scenario("malloc large, trie leaf swap", s_trie, op_malloc500);
    run_scenario("malloc with growth", s_near_full, op_grow);
    run_scenario("free, no coalescing", s_three, op_free1);
    run_scenario("free, coalesce prev", s_three_free0, op_free1);
    run_scenario("free, coalesce next", s_three_free1, op_free0);
    run_scenario("free, coalesce both", s_three_free02, op_free1);
    run_scenario("free into top", s_three, op_free3);
    run_scenario("free into top with prev", s_three_free2, op_free3);
    run_scenario("free merging dv", s_dv, op_free_big2);
    run_scenario("free large, trie list insert", s_big_pair, op_free_big2);
    run_scenario("free large, trie child insert", s_big_pair, op_free_big4);
    run_scenario("free (plain pointer)", s_three, op_plain_free);
    run_scenario("realloc shrink", s_three, op_realloc_shrink);
    run_scenario("realloc grow into next free", s_three_free2, op_realloc_grow);
    run_scenario("realloc grow into top", s_three, op_realloc_top);
    run_scenario("realloc grow with growth", s_near_full, op_realloc_top_grow);
    run_scenario("realloc move", s_three, op_realloc_move);
    run_scenario("realloc move (plain)", s_three, op_realloc_plain);
    run_scenario("memalign 4 KiB", s_three, op_memalign);
    run_scenario("memalign 64 KiB", s_none, op_memalign_big);
    run_scenario("calloc", s_three_free1, op_calloc);
    run_scenario("calloc_to, whole binned chunk", s_exact_bin, op_calloc_to100);
    run_scenario("calloc_to, split tree chunk", s_tree_three, op_calloc_to4000);
    run_scenario("realloc move into a tree chunk", s_tree_three, op_realloc_into_tree);
    run_scenario("trim", s_trimmable, op_trim);
    run_scenario("thread cache: refill, free, malloc", s_three, op_cache_cycle);
    run_scenario("thread cache: flush a full class", s_none, op_cache_flush);
    run_scenario("thread cache: batch refill from bins", s_binned_smalls, op_cache_refill_batch);
    run_scenario("thread cache: run carved from a tree chunk", s_tree_three, op_cache_run_from_tree);
    run_scenario("free 3 MiB: punch after commit", s_big, op_free_big);
    run_scenario("malloc from a punched chunk", s_punched, op_malloc_from_punched);
    run_scenario("realloc into a punched chunk", s_punched_next, op_grow_into_punched);
    run_scenario("punched chunk merges into top", s_punched, op_free_into_punched_top);

    run_scenario("name bind: first, makes the table", s_block, op_bind);
    run_scenario("name bind", s_named3, op_bind);
    run_scenario("name bind: the table grows", s_named12, op_bind);
    run_scenario("name bind into a tombstone", s_named3_unbound1, op_bind_again1);
    run_scenario("name unbind", s_named3, op_unbind);
    run_scenario("name malloc: first, makes the table", s_none, op_name_malloc);
    run_scenario("name malloc", s_named3, op_name_malloc);

    printf("crash points: %ld steps in %ld crash cases, all recovered\n", total_steps,
           total_cases);
    return harness_done();
}
