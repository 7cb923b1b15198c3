/*
 * test_compat_threads.c -- the fmalloc-compatible API: one current target
 * arena per thread.
 *
 *   - fmalloc_init() makes its arena the target of the calling thread and
 *     of every thread that never chose one (the most recently initialised);
 *   - two threads, each fmalloc_set_target() to its own arena, allocate,
 *     link (FM_PTR_TSET) and verify 10k blocks at the same time, with
 *     fcalloc, frealloc and ffree mixed in; each block lies in its thread's
 *     arena and nowhere else;
 *   - fmalloc_set_target(NULL) goes back to the default;
 *   - a failed fmalloc_init() returns NULL with errno and fm_last_error();
 *   - reopening with fmalloc_init() finds the lists and reports init false.
 */
#include <fmalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define BLOCKS 10000

struct blk;
typedef FM_PTR(struct blk) blk_ptr; /* one named type, so links can be copied */

struct blk {
    blk_ptr next;
    uint64_t id;
    uint32_t len; /* payload bytes */
    uint32_t zeroed;
    unsigned char payload[];
};

struct troot {
    blk_ptr head;
    uint64_t count;
};

struct worker {
    const char *name;
    struct fm_info *fi; /* the arena this thread targets */
    uint64_t seed;
    int failures;       /* counted here: the harness counters are not thread-safe */
};

static unsigned char pattern_byte(uint64_t id, size_t i)
{
    return (unsigned char)((id * 131u + i * 7u) ^ (id >> 3));
}

/* True if p lies in fi's heap (fm_pointer() is NULL past the end of the file). */
static int in_arena(struct fm_info *fi, const void *p)
{
    uintptr_t base = (uintptr_t)fi->mem, addr = (uintptr_t)p;
    return addr >= base + 12288 && fm_pointer(fi, (fm_off_t)(addr - base)) == p;
}

#define WFAIL(w, ...)                                                                 \
    do {                                                                              \
        fprintf(stderr, "%s: ", (w)->name);                                           \
        fprintf(stderr, __VA_ARGS__);                                                 \
        fputc('\n', stderr);                                                          \
        (w)->failures++;                                                              \
    } while (0)

/* Walk the list; every block checked.  Returns the number of blocks. */
static uint64_t verify_list(struct worker *w, struct troot *r)
{
    uint64_t n = 0, prev_id = UINT64_MAX;
    for (struct blk *b = FM_PTR_TGET(r->head); b; b = FM_PTR_TGET(b->next)) {
        if (b->id >= prev_id) {
            WFAIL(w, "block ids out of order: %" PRIu64 " after %" PRIu64, b->id, prev_id);
            return n;
        }
        prev_id = b->id;
        for (uint32_t i = 0; i < b->len; i++) {
            if (b->payload[i] != pattern_byte(b->id, i)) {
                WFAIL(w, "block %" PRIu64 " byte %u damaged", b->id, i);
                break;
            }
        }
        n++;
    }
    return n;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = w->seed;

    fmalloc_set_target(w->fi);
    if (fmalloc_target() != w->fi)
        WFAIL(w, "fmalloc_target() is not the arena just set");

    struct troot *r = fm_root(w->fi);
    for (uint64_t id = 0; id < BLOCKS; id++) {
        uint32_t len = (uint32_t)(harness_rand(&rng) % 300);
        struct blk *b;
        if (id % 10 == 0) {
            b = fcalloc(1, sizeof *b + len);
            if (b) {
                for (uint32_t i = 0; i < len; i++)
                    if (b->payload[i]) {
                        WFAIL(w, "fcalloc block %" PRIu64 " not zeroed", id);
                        break;
                    }
            }
        } else {
            b = fmalloc(sizeof *b + len);
        }
        if (!b) {
            WFAIL(w, "allocation %" PRIu64 " failed: %s", id, fm_strerror(fm_last_error()));
            return NULL;
        }
        if (!in_arena(w->fi, b))
            WFAIL(w, "block %" PRIu64 " at %p is outside the target arena", id, (void *)b);
        b->id = id;
        b->len = len;
        for (uint32_t i = 0; i < len; i++)
            b->payload[i] = pattern_byte(id, i);
        if (id % 7 == 0) {
            /* Grow it: the pattern must move along. */
            uint32_t more = len + 200;
            struct blk *nb = frealloc(b, sizeof *b + more);
            if (!nb) {
                WFAIL(w, "frealloc %" PRIu64 " failed", id);
                return NULL;
            }
            b = nb;
            for (uint32_t i = 0; i < len; i++)
                if (b->payload[i] != pattern_byte(id, i)) {
                    WFAIL(w, "frealloc lost byte %u of block %" PRIu64, i, id);
                    break;
                }
            for (uint32_t i = len; i < more; i++)
                b->payload[i] = pattern_byte(id, i);
            b->len = more;
        }
        b->next = r->head; /* link at the head: ids descend along the list */
        FM_PTR_TSET(r->head, b);
        r->count++;
        /* Churn: a short-lived block freed at once. */
        void *tmp = fmalloc(harness_rand(&rng) % 512);
        if (!tmp)
            WFAIL(w, "short-lived allocation failed");
        ffree(tmp);
    }

    uint64_t n = verify_list(w, r);
    if (n != BLOCKS)
        WFAIL(w, "list has %" PRIu64 " blocks, want %d", n, BLOCKS);

    /* Free every other block, unlinking it first; verify what is left. */
    blk_ptr *link = &r->head;
    for (struct blk *b = FM_PTR_TGET(*link); b; b = FM_PTR_TGET(*link)) {
        if (b->id % 2 == 0) {
            link->off = b->next.off;
            ffree(b);
            r->count--;
        } else {
            link = &b->next;
        }
    }
    n = verify_list(w, r);
    if (n != BLOCKS / 2 || r->count != BLOCKS / 2)
        WFAIL(w, "after freeing half: %" PRIu64 " linked, count %" PRIu64, n, r->count);
    int err = fm_check(w->fi);
    if (err)
        WFAIL(w, "fm_check: %s", fm_check_message(w->fi));
    if (fmalloc_target() != w->fi)
        WFAIL(w, "the target changed under the thread");
    return NULL;
}

struct probe {
    struct fm_info *want_default;
    struct fm_info *other;
    int failures;
};

/* A thread that never sets a target sees the default; NULL restores it. */
static void *probe_main(void *arg)
{
    struct probe *p = arg;
    if (fmalloc_target() != p->want_default)
        p->failures++;
    void *q = fmalloc(64);
    if (!q || !in_arena(p->want_default, q))
        p->failures++;
    ffree(q);
    fmalloc_set_target(p->other);
    if (fmalloc_target() != p->other)
        p->failures++;
    fmalloc_set_target(NULL);
    if (fmalloc_target() != p->want_default)
        p->failures++;
    return NULL;
}

int main(void)
{
    uint64_t seed = harness_seed();
    char path_a[600], path_b[600];
    snprintf(path_a, sizeof path_a, "%s/a.fm", harness_tmpdir());
    snprintf(path_b, sizeof path_b, "%s/b.fm", harness_tmpdir());

    expect_true(fmalloc_target() == NULL);

    bool init_a = false, init_b = false;
    struct fm_info *fa = fmalloc_init(path_a, &init_a);
    require_true(fa != NULL);
    expect_true(init_a);
    expect_true(fmalloc_target() == fa);
    struct fm_info *fb = fmalloc_init(path_b, &init_b);
    require_true(fb != NULL);
    expect_true(init_b);
    expect_true(fa->mem != fb->mem);

    /* The main thread never calls fmalloc_set_target(): latest init wins. */
    expect_true(fmalloc_target() == fb);
    void *p = fmalloc(100);
    require_true(p != NULL);
    expect_true(in_arena(fb, p));
    expect_true(!in_arena(fa, p));
    expect_true(fm_usable_size(fb, p) >= 100);
    ffree(p);

    struct worker wa = {"thread-a", fa, seed, 0};
    struct worker wb = {"thread-b", fb, seed ^ 0x5555, 0};
    struct probe pr = {fb, fa, 0};
    pthread_t ta, tb, tp;
    require_eq(pthread_create(&ta, NULL, worker_main, &wa), 0);
    require_eq(pthread_create(&tb, NULL, worker_main, &wb), 0);
    require_eq(pthread_create(&tp, NULL, probe_main, &pr), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_join(tp, NULL);
    expect_eq(wa.failures, 0);
    expect_eq(wb.failures, 0);
    expect_eq(pr.failures, 0);
    /* The threads' choices did not change the main thread's target. */
    expect_true(fmalloc_target() == fb);

    /* Failures: NULL, errno and fm_last_error() say why; target unchanged. */
    errno = 0;
    bool init = true;
    struct fm_info *bad = fmalloc_init(harness_tmpdir(), &init);
    expect_true(bad == NULL);
    expect_ne(errno, 0);
    expect_ne(fm_last_error(), 0);
    printf("fmalloc_init(directory): errno %d, fm_last_error %d: %s\n", errno, fm_last_error(),
           fm_strerror(fm_last_error()));
    expect_true(strlen(fm_strerror(fm_last_error())) > 0);
    expect_true(fmalloc_target() == fb);

    errno = 0;
    bad = fmalloc_init(path_b, NULL); /* already open here: locked */
    expect_true(bad == NULL);
    expect_ne(errno, 0);
    expect_eq(fm_last_error(), FM_ELOCKED);
    expect_true(fmalloc_target() == fb);

    /* Reopen a: init is false, the surviving half of its list is there. */
    expect_eq(fm_close(fa), 0);
    init = true;
    fa = fmalloc_init(path_a, &init);
    require_true(fa != NULL);
    expect_true(!init);
    expect_true(fmalloc_target() == fa);
    struct worker wv = {"reopened-a", fa, 0, 0};
    struct troot *ra = fm_root(fa);
    expect_eq(verify_list(&wv, ra), BLOCKS / 2);
    expect_eq(ra->count, BLOCKS / 2);
    expect_eq(wv.failures, 0);

    expect_eq(fm_close(fa), 0);
    expect_eq(fm_close(fb), 0);
    return harness_done();
}
