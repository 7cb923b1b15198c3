/*
 * test_shared.c -- FM_SHARED: who may open beside whom, the last closer's
 * clean mark, growth seen by every process, and a process that dies at
 * every step of its operations -- and of the repair of another's.
 *
 * The dying process is a forked child that opens the arena itself (a
 * handle inherited through fork is not usable) and ends at crash point k
 * (log.h).  The parent, open all along, must then find through its next
 * call: fm_check clean, its own blocks intact, and the child's slots
 * naming live blocks or nothing, with no block allocated but unlinked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_util.h"
#include "fmalloc.h"
#include "harness.h"
#include "log.h"

static char path[600];

static const struct fm_options shared = {.flags = FM_SHARED | FM_NOSYNC};

static fm_off_t *slot(struct fm_info *fi, int i)
{
    return (fm_off_t *)fm_root(fi) + i;
}

/* The parent's own blocks: slots 0..OWN-1, each filled with its index. */
#define OWN 8
#define CHILD_FIRST 16
#define CHILD_SLOTS 4

static void fill_own(struct fm_info *fi)
{
    for (int i = 0; i < OWN; i++) {
        size_t n = 40 + (size_t)i * 300;
        unsigned char *p = fm_malloc_to(fi, slot(fi, i), n);
        require_true(p != NULL);
        memset(p, i + 1, n);
    }
}

static bool own_intact(struct fm_info *fi)
{
    for (int i = 0; i < OWN; i++) {
        size_t n = 40 + (size_t)i * 300;
        unsigned char *p = fm_pointer(fi, *slot(fi, i));
        if (!p || fm_usable_size(fi, p) < n)
            return false;
        for (size_t j = 0; j < n; j++)
            if (p[j] != i + 1)
                return false;
    }
    return true;
}

/* The header word of the file at off, read past the mapping. */
static uint64_t header_word(size_t off, size_t len)
{
    uint64_t v = 0;
    int fd = open(path, O_RDONLY);
    require_true(fd >= 0);
    require_true(pread(fd, &v, len, (off_t)off) == (ssize_t)len);
    close(fd);
    return v;
}
#define HDR_DIRTY() (header_word(152, 4) & 1u)
#define HDR_SHARED() header_word(192, 8)

static int count_blocks(void *p, size_t size, void *arg)
{
    (void)p, (void)size;
    ++*(long *)arg;
    return 0;
}

/* Blocks allocated besides the linked ones: the name directory's table. */
static long internal_blocks;

static long linked_blocks(struct fm_info *fi)
{
    long linked = 0;
    for (int i = 0; i < CHILD_FIRST + CHILD_SLOTS; i++)
        if (*slot(fi, i)) {
            linked++;
            expect_true(fm_usable_size(fi, fm_pointer(fi, *slot(fi, i))) > 0);
        }
    return linked;
}

static long walked_blocks(struct fm_info *fi)
{
    long blocks = 0;
    expect_eq(fm_walk(fi, count_blocks, &blocks), 0);
    return blocks;
}

static void quiet_handler(struct fm_info *fi, int err, const char *msg, void *arg)
{
    (void)fi, (void)err, (void)msg, (void)arg;
}

/* ---- who opens beside whom ----------------------------------------------- */

static void test_exclusion(void)
{
    struct fm_info *a, *b, *x = NULL;
    unlink(path);
    a = require_open(path, (struct fm_options){.flags = FM_SHARED | FM_CREATE});
    b = require_open(path, (struct fm_options){.flags = FM_SHARED});
    expect_eq(open_flags(path, 0, &x), FM_ELOCKED);
    expect_eq(open_flags(path, FM_RDONLY, &x), FM_ELOCKED);
    expect_eq(open_flags(path, FM_SHARED | FM_RDONLY, &x), EINVAL);
    expect_eq(open_flags(path, FM_SHARED | FM_DURABLE, &x), EINVAL);
    expect_true(HDR_DIRTY());
    expect_ne(HDR_SHARED(), 0);

    /* Growth by one is seen by the other, without a call of its own first. */
    unsigned char *p = fm_malloc_to(a, slot(a, 0), 6u << 20);
    require_true(p != NULL);
    memset(p, 0x5a, 6u << 20);
    unsigned char *q = fm_pointer(b, *slot(b, 0));
    require_true(q != NULL);
    expect_eq(q[(6u << 20) - 1], 0x5a);
    expect_true(fm_offset(b, q + 100) == *slot(b, 0) + 100);
    fm_free_from(b, slot(b, 0));
    expect_eq(*slot(a, 0), 0);

    /* The lock's block is the set's, not the caller's: fm_walk shows it,
     * fm_free and fm_realloc refuse it. */
    void *lock_block = fm_pointer(a, (fm_off_t)HDR_SHARED());
    fm_set_error_handler(a, quiet_handler, NULL);
    fm_free(a, lock_block);
    expect_eq(fm_last_error(), FM_EBADPTR);
    expect_true(fm_realloc(a, lock_block, 4000) == NULL);
    expect_eq(fm_last_error(), FM_EBADPTR);
    if (!expect_eq(fm_check(b), 0))
        fprintf(stderr, "  %s\n", fm_check_message(b));
    expect_eq((long long)HDR_SHARED(), (long long)fm_offset(a, lock_block));

    expect_eq(fm_close(a), 0);
    expect_true(HDR_DIRTY()); /* b still has it */
    expect_eq(open_flags(path, 0, &x), FM_ELOCKED);
    expect_eq(fm_close(b), 0);
    expect_true(!HDR_DIRTY()); /* the last closer marks it clean ... */
    expect_eq(HDR_SHARED(), 0); /* ... and frees the lock's block */

    /* An exclusive writer keeps shared ones out; a reader too. */
    x = require_open(path, (struct fm_options){0});
    expect_eq(open_flags(path, FM_SHARED, &a), FM_ELOCKED);
    expect_eq(fm_check(x), 0);
    struct fm_stats st;
    expect_eq(fm_stats(x, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_close(x), 0);
    x = require_open(path, (struct fm_options){.flags = FM_RDONLY});
    expect_eq(open_flags(path, FM_SHARED, &a), FM_ELOCKED);
    expect_eq(fm_close(x), 0);
}

/* ---- a death at every step ----------------------------------------------- */

/* What the dying child does: one of each kind of locked operation, on its
 * own slots, growth and the name directory included. */
static void child_ops(struct fm_info *fi)
{
    require_true(fm_malloc_to(fi, slot(fi, CHILD_FIRST), 200) != NULL);
    require_true(fm_calloc_to(fi, slot(fi, CHILD_FIRST + 1), 10, 400) != NULL);
    require_true(fm_realloc_to(fi, slot(fi, CHILD_FIRST), 3u << 20) != NULL);
    fm_free_from(fi, slot(fi, CHILD_FIRST + 1));
    require_true(fm_malloc_to(fi, slot(fi, CHILD_FIRST + 2), 3000) != NULL);
    require_true(fm_name_bind(fi, "child", *slot(fi, CHILD_FIRST + 2)) == 0);
    require_true(fm_name_unbind(fi, "child") == 0);
    require_true(fm_realloc_to(fi, slot(fi, CHILD_FIRST + 2), 100) != NULL);
    fm_free_from(fi, slot(fi, CHILD_FIRST));
}

/* Arm the child's crash points before its fm_open, whose lock repairs a
 * dead member's operation before the open returns. */
static bool arm_at_open;

/* Fork a child that joins the set and runs `ops` armed to end at step k
 * (0: count only).  Its exit status; *steps, the steps it counted (when
 * it ran to the end: through a pipe). */
static int run_child(long k, void (*ops)(struct fm_info *), long *steps)
{
    int fds[2];
    require_true(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        struct fm_info *fi = NULL;
        if (arm_at_open)
            fm__cp_arm(k);
        if (fm_open(path, &shared, &fi) != 0)
            _exit(3);
        if (!arm_at_open)
            fm__cp_arm(k);
        ops(fi);
        long n = fm__cp_disarm();
        if (write(fds[1], &n, sizeof n) != (ssize_t)sizeof n)
            _exit(5);
        _exit(fm_close(fi) == 0 ? 0 : 4);
    }
    close(fds[1]);
    int status;
    require_true(waitpid(pid, &status, 0) == pid);
    if (steps && read(fds[0], steps, sizeof *steps) != (ssize_t)sizeof *steps)
        *steps = -1;
    close(fds[0]);
    require_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* After a child's death (or its end): the parent's next call repairs, and
 * the heap is whole; then the child's slots are emptied for the next round. */
static void check_after(struct fm_info *fi, const char *what, long k)
{
    int err = fm_check(fi);
    if (!expect_eq(err, 0))
        fprintf(stderr, "  %s, step %ld: %s\n", what, k, fm_check_message(fi));
    if (!expect_true(own_intact(fi)))
        fprintf(stderr, "  %s, step %ld: the parent's blocks changed\n", what, k);
    fm_off_t named = 0;
    if (fm_name_lookup(fi, "child", &named) == 0) /* bound, not yet unbound */
        expect_eq(fm_name_unbind(fi, "child"), 0);
    long linked = linked_blocks(fi), walked = walked_blocks(fi);
    if (!expect_eq(walked, linked + internal_blocks))
        fprintf(stderr, "  %s, step %ld: %ld blocks, %ld linked\n", what, k, walked, linked);
    for (int i = CHILD_FIRST; i < CHILD_FIRST + CHILD_SLOTS; i++)
        fm_free_from(fi, slot(fi, i));
}

/* A set whose parent stays open; the name directory made beforehand, so
 * that its table is the one block nothing links. */
static struct fm_info *open_set(void)
{
    unlink(path);
    struct fm_info *fi = require_open(path, (struct fm_options){.flags = shared.flags | FM_CREATE});
    fill_own(fi);
    require_true(fm_name_bind(fi, "made", *slot(fi, 0)) == 0);
    require_true(fm_name_unbind(fi, "made") == 0);
    internal_blocks = walked_blocks(fi) - linked_blocks(fi);
    return fi;
}

static void test_death_at_every_step(void)
{
    struct fm_info *fi = open_set();
    long steps = 0, deaths = 0;
    require_eq(run_child(0, child_ops, &steps), 0);
    require_true(steps > 20);
    check_after(fi, "reference run", 0);
    /* The reference run grew the file; the later ones may take fewer
     * steps: each k dies until one runs to the end. */
    for (long k = 1;; k++) {
        int st = run_child(k, child_ops, NULL);
        check_after(fi, st ? "child died" : "child finished", k);
        if (st == 0)
            break;
        if (!expect_eq(st, FM_CP_EXIT) || !expect_true(k <= steps))
            break;
        deaths++;
    }
    expect_true(deaths > steps / 2);
    expect_eq(fm_close(fi), 0);
    expect_true(!HDR_DIRTY());
    printf("shared: a member died at each of %ld steps; the survivor repaired each\n", deaths);
}

/* ---- a death in the repair of a death ------------------------------------ */

static long repair_target;

/* Dies holding the lock in the middle of a growing realloc (its log full
 * of records to roll back). */
static void die_mid_operation(struct fm_info *fi)
{
    require_true(fm_malloc_to(fi, slot(fi, CHILD_FIRST), 200) != NULL);
    fm__cp_arm(repair_target);
    require_true(fm_realloc_to(fi, slot(fi, CHILD_FIRST), 3u << 20) != NULL);
}

/* The next member's open repairs (armed there: arm_at_open); its call
 * finds nothing left to do. */
static void repair_by_check(struct fm_info *fi)
{
    (void)fm_check(fi);
}

static void test_death_during_repair(void)
{
    struct fm_info *fi = open_set();
    /* Steps of the realloc alone, then a death at its middle. */
    repair_target = 0;
    long ops_steps = 0;
    for (int i = 0; i < 2; i++) { /* the second: with the file grown, as later */
        require_eq(run_child(0, die_mid_operation, &ops_steps), 0);
        check_after(fi, "reference realloc", 0);
    }
    require_true(ops_steps > 4);
    long deaths = 0, repair_steps = 0;
    for (long k = 1;; k++) {
        repair_target = ops_steps - 1; /* the log at its fullest */
        require_eq(run_child(0, die_mid_operation, NULL), FM_CP_EXIT);
        long counted = 0;
        arm_at_open = true;
        int st = run_child(k, repair_by_check, &counted);
        arm_at_open = false;
        if (st == 0) {
            repair_steps = counted;
            check_after(fi, "repair finished", k);
            break;
        }
        if (!expect_eq(st, FM_CP_EXIT) || !expect_true(k < 10000))
            break;
        deaths++;
        check_after(fi, "repairer died", k);
    }
    expect_true(deaths > 0); /* the rollback has steps to die at */
    expect_eq(fm_close(fi), 0);
    printf("shared: a repairer died at each of %ld steps (%ld in all); the next one finished\n",
           deaths, repair_steps);
}

/* ---- a set whose members all died --------------------------------------- */

static void child_dies_holding_lock(struct fm_info *fi)
{
    fm__cp_arm(3); /* inside the first operation, with records in the log */
    require_true(fm_malloc_to(fi, slot(fi, CHILD_FIRST), 5000) != NULL);
}

static void test_dead_set(void)
{
    struct fm_info *fi = open_set();
    expect_eq(fm_close(fi), 0);
    /* Alone in its set, a member dies holding the lock: the next opener,
     * exclusive, recovers the arena and frees the set's block. */
    require_eq(run_child(0, child_dies_holding_lock, NULL), FM_CP_EXIT);
    expect_true(HDR_DIRTY());
    expect_ne(HDR_SHARED(), 0);
    fi = require_open(path, (struct fm_options){.flags = FM_NOSYNC});
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.recovered);
    expect_eq(fm_check(fi), 0);
    expect_true(own_intact(fi));
    expect_eq(*slot(fi, CHILD_FIRST), 0);
    expect_eq(fm_close(fi), 0);
    expect_eq(HDR_SHARED(), 0);
    /* The same death, then a new shared set: its first opener recovers and
     * takes the block over. */
    require_eq(run_child(0, child_dies_holding_lock, NULL), FM_CP_EXIT);
    fi = require_open(path, shared);
    expect_eq(fm_check(fi), 0);
    expect_true(own_intact(fi));
    expect_eq(walked_blocks(fi), linked_blocks(fi) + internal_blocks);
    expect_eq(fm_close(fi), 0);
    expect_true(!HDR_DIRTY());
    expect_eq(HDR_SHARED(), 0);
}

int main(void)
{
    snprintf(path, sizeof path, "%s/fm_shared_%d.fm", harness_tmpdir(), (int)getpid());
    test_exclusion();
    test_death_at_every_step();
    test_death_during_repair();
    test_dead_set();
    unlink(path);
    return harness_done();
}
