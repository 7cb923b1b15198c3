/*
 * test_durable.c -- the power-safe mode (FM_DURABLE) against process
 * kills: a kill loses exactly the work since the last commit; a kill at
 * every step of a commit, a trim and a close leaves the state before it or
 * after it; a kill at every step of the next open's replay and recovery
 * (a crash while recovering from a crash) does too.  Also: a failed apply
 * is sticky and the reopen replays it; a damaged or foreign journal is
 * never applied; a read-only open refuses a journal it may not apply.
 * Power cuts are test/power's job; this is the same machinery under the
 * kills that test_crashpoints gives the default mode.
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
#include "journal.h"
#include "log.h"
#include "os.h"
#include "state_hash.h"

static char tmpl[600], work[600], work2[600], work3[600];
static const struct fm_options durable = {.flags = FM_DURABLE};
static long total_runs;

enum { SLOTS = 64, BIG = 40, HUGE = 41, GROWN = 42 };

static fm_off_t *slot(struct fm_info *fi, int i)
{
    return (fm_off_t *)fm_root(fi) + i;
}

static void put(struct fm_info *fi, int i, size_t n, int salt)
{
    unsigned char *p = fm_malloc_to(fi, slot(fi, i), n);
    require_true(p != NULL);
    for (size_t j = 0; j < n; j++)
        p[j] = (unsigned char)(i * 7 + (int)j + salt) | 1;
}

/* An arena and its journal, copied as a power cut would not: whole. */
static void copy_pair(const char *from, const char *to)
{
    char jf[640], jt[640];
    snprintf(jf, sizeof jf, "%s-journal", from);
    snprintf(jt, sizeof jt, "%s-journal", to);
    harness_copy_file(from, to);
    if (access(jf, F_OK) == 0)
        harness_copy_file(jf, jt);
    else
        unlink(jt);
}

static uint64_t journal_size(const char *path)
{
    char j[640];
    struct stat st;
    snprintf(j, sizeof j, "%s-journal", path);
    return stat(j, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- scenarios ------------------------------------------------------------- */

static void setup(struct fm_info *fi)
{
    for (int i = 0; i < BIG; i++)
        put(fi, i, 16 + (size_t)i * 24, 0);
    put(fi, BIG, 300 << 10, 0);
    put(fi, HUGE, 2 << 20, 0);
}

/* Between commits: churn, a change in place, a big free (punch), growth,
 * a large realloc. */
static void churn(struct fm_info *fi)
{
    for (int i = 0; i < 10; i++)
        fm_free_from(fi, slot(fi, i));
    for (int i = 0; i < 10; i++)
        put(fi, i, 40 + (size_t)i * 100, 1);
    memset(fm_pointer(fi, *slot(fi, 20)), 0x5a, 16 + 20 * 24);
    fm_free_from(fi, slot(fi, HUGE));
    put(fi, GROWN, 3 << 20, 2);
    require_true(fm_realloc_to(fi, slot(fi, BIG), 600 << 10) != NULL);
}

static void act_commit(struct fm_info *fi)
{
    require_eq(fm_commit(fi), 0);
}

static void act_trim(struct fm_info *fi)
{
    fm_free_from(fi, slot(fi, GROWN));
    require_eq(fm_trim(fi, 0), 0);
    require_eq(fm_commit(fi), 0);
}

static void act_close(struct fm_info *fi)
{
    require_eq(fm_close(fi), 0);
}

/* ---- the walk ---------------------------------------------------------------- */

/* Open `path` (durable or default mode), check it, and say whether its
 * state is one of the two allowed. */
static bool state_is(const char *path, bool as_durable, uint64_t a, uint64_t b, const char *what)
{
    struct fm_info *fi = require_open(path, as_durable ? durable : (struct fm_options){0});
    bool ok = fm_check(fi) == 0;
    if (!ok)
        fprintf(stderr, "%s: check: %s\n", what, fm_check_message(fi));
    uint64_t h = snapshot(fi).hash;
    if (h != a && h != b) {
        fprintf(stderr, "%s: the state is neither before nor after\n", what);
        ok = false;
    }
    require_eq(fm_close(fi), 0);
    return ok;
}

/* Kill the reopen of `crashed` (a copy in work2) at every step; each must
 * still open at a or b. */
static bool kill_the_replay(uint64_t a, uint64_t b, const char *name, long k)
{
    copy_pair(work2, work3);
    fm__cp_arm(0);
    struct fm_info *fi = require_open(work3, durable);
    long steps = fm__cp_disarm();
    require_eq(fm_close(fi), 0);
    for (long j = 1; j <= steps; j++) {
        copy_pair(work2, work3);
        pid_t pid = fork();
        require_true(pid >= 0);
        if (pid == 0) {
            struct fm_info *c;
            fm__cp_arm(j);
            fm_open(work3, &durable, &c);
            _exit(0);
        }
        int status;
        require_true(waitpid(pid, &status, 0) == pid);
        char what[160];
        snprintf(what, sizeof what, "%s: step %ld, then the reopen's step %ld", name, k, j);
        total_runs++;
        if (!state_is(work3, j % 2 == 0, a, b, what))
            return false;
    }
    return true;
}

static void run(const char *name, void (*act)(struct fm_info *))
{
    /* The last commit: the template, closed. */
    unlink(tmpl);
    struct fm_info *fi = fresh_arena(tmpl, durable);
    setup(fi);
    require_eq(fm_close(fi), 0);

    /* The reference run: the state the action commits, and its steps. */
    copy_pair(tmpl, work);
    fi = require_open(work, durable);
    uint64_t before = snapshot(fi).hash;
    churn(fi);
    uint64_t after = snapshot(fi).hash;
    fm__cp_arm(0);
    act(fi);
    long steps = fm__cp_disarm();
    if (act != act_close) {
        after = snapshot(fi).hash; /* the trim frees a block first */
        fm_close(fi);
    }
    expect_true(steps > 3);
    expect_true(before != after);

    long replays = 0;
    for (long k = 1; k <= steps + 1; k++) {
        copy_pair(tmpl, work);
        pid_t pid = fork();
        require_true(pid >= 0);
        if (pid == 0) {
            struct fm_info *c = require_open(work, durable);
            churn(c);
            fm__cp_arm(k);
            act(c);
            _exit(0); /* no close (unless the action was one): a kill */
        }
        int status;
        require_true(waitpid(pid, &status, 0) == pid);
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code != (k <= steps ? FM_CP_EXIT : 0)) {
            fprintf(stderr, "%s: step %ld: child exit %d\n", name, k, code);
            (void)expect_true(false);
            return;
        }
        total_runs++;
        if (getenv("FM_TEST_VERBOSE"))
            fprintf(stderr, "%s: step %ld/%ld\n", name, k, steps);
        char what[120];
        snprintf(what, sizeof what, "%s: step %ld/%ld", name, k, steps);
        copy_pair(work, work2);
        bool pending = journal_size(work) > 0;
        /* Half the images reopen in the default mode: J3 holds in any mode. */
        if (!state_is(work, k % 2 == 0, before, after, what)) {
            (void)expect_true(false);
            return;
        }
        if (pending && k <= steps) {
            replays++;
            if (!kill_the_replay(before, after, name, k)) {
                (void)expect_true(false);
                return;
            }
        }
    }
    printf("%s: %ld steps, %ld with a journal to replay, every one before or after\n", name,
           steps, replays);
    expect_true(replays > 0);
}

/* ---- the rest ------------------------------------------------------------------ */

/* A kill loses what was not committed, exactly that.  In an arena of
 * `size` bytes: from 16 MiB a commit maps the file afresh (arena.c). */
static void kill_loses_the_uncommitted(uint64_t size)
{
    int fds[2];
    require_eq(pipe(fds), 0);
    unlink(work);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        struct fm_info *c = fresh_arena(work, (struct fm_options){.flags = FM_DURABLE,
                                                                  .initial_size = size});
        setup(c);
        require_eq(fm_commit(c), 0);
        churn(c);
        require_eq(fm_commit(c), 0); /* a second commit after the first's remap */
        uint64_t h = snapshot(c).hash;
        require_true(write(fds[1], &h, sizeof h) == (ssize_t)sizeof h);
        churn(c);
        _exit(0);
    }
    int status;
    require_true(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    uint64_t committed = 0;
    require_true(read(fds[0], &committed, sizeof committed) == (ssize_t)sizeof committed);
    close(fds[0]);
    close(fds[1]);
    expect_true(state_is(work, true, committed, committed, "kill after a commit"));
}

/* A failed journal write is not sticky: the next commit writes the
 * record again.  A failed checkpoint (the arena's sync) is: that commit
 * and every later one fail, and the reopen replays the journal, whose
 * records are all still there. */
static void failed_commits(void)
{
    jnl_checkpoint_commits = 4;
    struct fm_info *fi = fresh_arena(work, durable);
    setup(fi);
    require_eq(fm_commit(fi), 0); /* record 1 */
    churn(fi);
    os_fault_set(OS_FAULT_FSYNC, EIO, 0); /* the journal's sync */
    expect_eq(fm_commit(fi), EIO);
    expect_eq(fm_commit(fi), 0); /* record 2 */
    for (int i = 3; i <= 4; i++) {
        put(fi, 50 + i, 100, i);
        require_eq(fm_commit(fi), 0);
    }
    uint64_t after = snapshot(fi).hash;
    put(fi, 60, 100, 0);
    /* The fifth commit checkpoints first: the arena's sync fails. */
    os_fault_set(OS_FAULT_FSYNC, EIO, 0);
    expect_eq(fm_commit(fi), EIO);
    expect_eq(fm_commit(fi), EIO);
    expect_eq(fm_close(fi), EIO);
    expect_true(journal_size(work) > 0);
    expect_true(state_is(work, true, after, after, "after a failed checkpoint"));
    expect_eq(journal_size(work), 0);
    jnl_checkpoint_commits = JNL_CHECKPOINT_COMMITS;
}

/* A journal that is damaged, or another arena's, is left alone. */
static void bad_journals(void)
{
    char jw[700], jo[700], other[640];
    snprintf(other, sizeof other, "%s.other", work);
    snprintf(jw, sizeof jw, "%s-journal", work);
    snprintf(jo, sizeof jo, "%s-journal", other);
    struct fm_info *fi = fresh_arena(other, durable);
    setup(fi);
    uint64_t other_state = snapshot(fi).hash;
    require_eq(fm_close(fi), 0);

    /* A journal waiting in work: committed, not applied (a failed apply). */
    fi = fresh_arena(work, durable);
    uint64_t empty = snapshot(fi).hash;
    require_eq(fm_commit(fi), 0);
    setup(fi);
    uint64_t full = snapshot(fi).hash;
    os_fault_set(OS_FAULT_FSYNC, EIO, 1);
    expect_eq(fm_close(fi), EIO);
    copy_pair(work, work2);

    /* Another arena ignores it. */
    harness_copy_file(jw, jo);
    expect_true(state_is(other, false, other_state, other_state, "a foreign journal"));
    expect_true(journal_size(other) > 0); /* not applied, so not emptied */
    unlink(jo);

    /* A read-only open may not apply it: it says so. */
    struct fm_info *ro;
    expect_eq(open_flags(work, FM_RDONLY, &ro), EAGAIN);
    expect_true(strstr(fm_last_error_detail(), "journal") != NULL);

    /* Damaged: one byte of a page.  The pages that did reach the file
     * (the apply's writes, not its sync, failed) stay; the journal is
     * never replayed. */
    int fd = open(jw, O_RDWR);
    require_true(fd >= 0);
    unsigned char b;
    require_true(pread(fd, &b, 1, 8192) == 1);
    b ^= 0xff;
    require_true(pwrite(fd, &b, 1, 8192) == 1);
    close(fd);
    fi = require_open(work, (struct fm_options){0});
    expect_eq(fm_check(fi), 0);
    fm_close(fi);
    expect_true(journal_size(work) > 0);

    /* The undamaged copy: a read-write open applies it. */
    expect_true(state_is(work2, false, full, full, "a waiting journal"));
    expect_true(full != empty);
    unlink(other);
}

static void options(void)
{
    struct fm_info *fi;
    expect_eq(open_flags(work, FM_CREATE | FM_DURABLE | FM_NOSYNC, &fi), EINVAL);
}

int main(void)
{
    const char *dir = harness_tmpdir();
    snprintf(tmpl, sizeof tmpl, "%s/fm_durable_tmpl_%d", dir, (int)getpid());
    snprintf(work, sizeof work, "%s/fm_durable_work_%d", dir, (int)getpid());
    snprintf(work2, sizeof work2, "%s/fm_durable_work2_%d", dir, (int)getpid());
    snprintf(work3, sizeof work3, "%s/fm_durable_work3_%d", dir, (int)getpid());

    options();
    kill_loses_the_uncommitted(0);
    kill_loses_the_uncommitted(32 << 20);
    failed_commits();
    bad_journals();
    run("commit", act_commit);
    run("trim", act_trim);
    run("close", act_close);
    printf("%ld killed runs in all\n", total_runs);

    const char *paths[] = {tmpl, work, work2, work3};
    for (int i = 0; i < 4; i++) {
        char j[640];
        snprintf(j, sizeof j, "%s-journal", paths[i]);
        unlink(paths[i]);
        unlink(j);
    }
    return harness_done();
}
