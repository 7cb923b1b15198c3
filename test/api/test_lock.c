/*
 * test_lock.c -- exclusive writers, shared readers, read-only arenas.
 *
 * Public API only.  A forked child holds the arena open (synchronised over
 * pipes) while the parent tries to open it: a second writer, or a reader
 * beside a writer, gets FM_ELOCKED at once; readers share.  A read-only
 * arena refuses every allocation with EROFS, is mapped read-only, and is
 * left byte-identical by an open and close.
 */
#include <fmalloc.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_util.h"
#include "harness.h"

static const char root_text[] = "lock test root";

/* A forked process holding the arena open. */
struct holder {
    pid_t pid;
    int to_child;   /* write a byte: close and exit */
    int from_child; /* reads 'O' once open (or 'E'), then 'C' once closed */
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fork a child that opens path with flags and holds it until released. */
static int holder_start(struct holder *h, const char *path, unsigned flags)
{
    int down[2], up[2];
    char c = 0;

    require_eq(pipe(down), 0);
    require_eq(pipe(up), 0);
    fflush(NULL);
    h->pid = fork();
    require_true(h->pid >= 0);
    if (h->pid == 0) {
        struct fm_info *fi = NULL;
        int rc;
        close(down[1]);
        close(up[0]);
        alarm(60);
        rc = open_flags(path, flags, &fi);
        c = rc == 0 ? 'O' : 'E';
        if (write(up[1], &c, 1) != 1)
            _exit(3);
        if (rc != 0)
            _exit(2);
        if (read(down[0], &c, 1) != 1)
            _exit(4);
        if (fm_close(fi) != 0)
            _exit(5);
        c = 'C';
        if (write(up[1], &c, 1) != 1)
            _exit(6);
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    h->to_child = down[1];
    h->from_child = up[0];
    if (read(h->from_child, &c, 1) != 1)
        c = 0;
    return c == 'O' ? 0 : -1;
}

/* Tell the child to close, wait for it, and check it exited cleanly. */
static void holder_release(struct holder *h)
{
    char c = 'x';
    int status = 0;
    expect_eq(write(h->to_child, &c, 1), 1);
    c = 0;
    expect_eq(read(h->from_child, &c, 1), 1);
    expect_eq(c, 'C');
    expect_eq(waitpid(h->pid, &status, 0), h->pid);
    expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(h->to_child);
    close(h->from_child);
}

/* fm_open must fail with FM_ELOCKED at once and leave the file as it was. */
static void expect_locked(const char *what, const char *path, unsigned flags)
{
    size_t len0, len1;
    unsigned char *before = file_read_all(path, &len0);
    struct fm_info *fi = NULL;
    double t0 = now_seconds(), dt;
    int rc = open_flags(path, flags, &fi);
    unsigned char *after;

    dt = now_seconds() - t0;
    if (!expect_true(rc == FM_ELOCKED))
        fprintf(stderr, "  %s: fm_open returned %d (%s), wanted FM_ELOCKED\n", what, rc,
                fm_strerror(rc));
    if (rc == 0)
        fm_close(fi);
    if (!expect_true(dt < 1.0))
        fprintf(stderr, "  %s: fm_open took %.2f s (must not wait for the lock)\n", what, dt);
    after = file_read_all(path, &len1);
    if (!expect_true(before && after && len0 == len1 && memcmp(before, after, len0) == 0))
        fprintf(stderr, "  %s: file modified by a refused open\n", what);
    free(before);
    free(after);
}

static void make_arena(const char *path)
{
    struct fm_info *fi = NULL;
    char *blk;
    fm_off_t *slots;

    unlink(path);
    require_eq(open_flags(path, FM_CREATE, &fi), 0);
    memcpy(fm_root(fi), root_text, sizeof root_text);
    slots = (fm_off_t *)(void *)((char *)fm_root(fi) + 64);
    blk = fm_malloc_to(fi, &slots[0], 3000);
    require_true(blk != NULL);
    pat_fill(blk, 3000, 31337);
    require_eq(fm_close(fi), 0);
}

/* --------------------------------------------------------------------------
 * A writer in another process excludes everyone.
 * ------------------------------------------------------------------------ */
static void test_writer_excludes(const char *path)
{
    struct holder h;
    struct fm_info *fi = NULL;

    require_eq(holder_start(&h, path, 0), 0);
    expect_locked("second writer", path, 0);
    expect_locked("second writer with FM_CREATE", path, FM_CREATE);
    expect_locked("reader beside a writer", path, FM_RDONLY);
    holder_release(&h);

    expect_eq(open_flags(path, 0, &fi), 0);
    if (fi) {
        expect_true(memcmp(fm_root(fi), root_text, sizeof root_text) == 0);
        expect_eq(fm_close(fi), 0);
    }
}

/* --------------------------------------------------------------------------
 * Readers share; a writer is refused while any reader holds the arena.
 * ------------------------------------------------------------------------ */
static void test_readers_share(const char *path)
{
    struct holder h;
    struct fm_info *r = NULL, *r2 = NULL, *fi = NULL;

    require_eq(holder_start(&h, path, FM_RDONLY), 0);
    expect_eq(open_flags(path, FM_RDONLY, &r), 0);
    if (r) {
        fm_off_t *slots = (fm_off_t *)(void *)((char *)fm_root(r) + 64);
        char *blk = fm_pointer(r, slots[0]);
        expect_true(memcmp(fm_root(r), root_text, sizeof root_text) == 0);
        expect_true(blk != NULL && pat_check(blk, 3000, 31337) == SIZE_MAX);
    }
    /* A second reader in the same process, too. */
    expect_eq(open_flags(path, FM_RDONLY, &r2), 0);
    if (r2)
        expect_eq(fm_close(r2), 0);

    expect_locked("writer beside two readers", path, 0);
    if (r)
        expect_eq(fm_close(r), 0);
    expect_locked("writer beside the child's reader", path, 0);
    holder_release(&h);

    expect_eq(open_flags(path, 0, &fi), 0);
    if (fi)
        expect_eq(fm_close(fi), 0);
}

/* --------------------------------------------------------------------------
 * Two opens in one process: still exclusive.
 * ------------------------------------------------------------------------ */
static void test_same_process(const char *path)
{
    struct fm_info *a = NULL, *b = NULL;

    require_eq(open_flags(path, 0, &a), 0);
    expect_locked("second writer, same process", path, 0);
    expect_locked("reader beside a writer, same process", path, FM_RDONLY);
    expect_eq(fm_close(a), 0);

    expect_eq(open_flags(path, 0, &b), 0);
    if (b)
        expect_eq(fm_close(b), 0);
}

/* --------------------------------------------------------------------------
 * A writer killed with SIGKILL releases its lock.
 * ------------------------------------------------------------------------ */
static void test_killed_writer(const char *path)
{
    struct holder h;
    struct fm_info *fi = NULL;
    struct fm_stats st;
    int status = 0;

    require_eq(holder_start(&h, path, 0), 0);
    expect_locked("writer while another is alive", path, 0);
    kill(h.pid, SIGKILL);
    expect_eq(waitpid(h.pid, &status, 0), h.pid);
    expect_true(WIFSIGNALED(status));
    close(h.to_child);
    close(h.from_child);

    expect_eq(open_flags(path, 0, &fi), 0);
    if (fi) {
        expect_eq(fm_stats(fi, &st), 0);
        expect_true(st.recovered);
        expect_eq(fm_check(fi), 0);
        expect_true(memcmp(fm_root(fi), root_text, sizeof root_text) == 0);
        expect_eq(fm_close(fi), 0);
    }
}

/* --------------------------------------------------------------------------
 * A read-only arena.
 * ------------------------------------------------------------------------ */
static int count_block(void *p, size_t size, void *arg)
{
    (void)p;
    (void)size;
    ++*(int *)arg;
    return 0;
}

static void test_readonly(const char *path)
{
    struct fm_info *fi = NULL;
    struct fm_stats st;
    size_t len0, len1;
    unsigned char *before, *after;
    int blocks = 0;

    before = file_read_all(path, &len0);
    require_true(before != NULL);
    require_eq(open_flags(path, FM_RDONLY, &fi), 0);

    expect_true(memcmp(fm_root(fi), root_text, sizeof root_text) == 0);
    expect_true((char *)fi->mem + 4096 == (char *)fm_root(fi));
    expect_eq(fm_root_size(fi), 8192);
    {
        fm_off_t *slots = (fm_off_t *)(void *)((char *)fm_root(fi) + 64);
        char *blk = fm_pointer(fi, slots[0]);
        expect_true(blk != NULL);
        if (blk) {
            expect_eq(pat_check(blk, 3000, 31337), SIZE_MAX);
            expect_true(fm_usable_size(fi, blk) >= 3000);
            expect_eq(fm_offset(fi, blk), slots[0]);
        }
    }

    errno = 0;
    expect_true(fm_malloc(fi, 100) == NULL);
    expect_eq(errno, EROFS);
    errno = 0;
    expect_true(fm_calloc(fi, 10, 10) == NULL);
    expect_eq(errno, EROFS);
    errno = 0;
    expect_true(fm_memalign(fi, 64, 100) == NULL);
    expect_eq(errno, EROFS);
    errno = 0;
    expect_true(fm_realloc(fi, NULL, 100) == NULL);
    expect_eq(errno, EROFS);
    expect_eq(fm_sync(fi), EROFS);
    expect_eq(fm_trim(fi, 0), EROFS);

    expect_eq(fm_check(fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    expect_eq(st.allocated_count, 1);
    expect_eq(fm_walk(fi, count_block, &blocks), 0);
    expect_eq(blocks, 1);
    expect_eq(fm_close(fi), 0);

    /* Opening and closing read-only writes nothing. */
    after = file_read_all(path, &len1);
    expect_true(after && len0 == len1 && memcmp(before, after, len0) == 0);
    free(before);
    free(after);

    /* The mapping itself is read-only: a store faults. */
    fflush(NULL);
    {
        int status = 0;
        pid_t pid = fork();
        require_true(pid >= 0);
        if (pid == 0) {
            struct fm_info *c = NULL;
            alarm(30);
            if (open_flags(path, FM_RDONLY, &c) != 0)
                _exit(2);
            /* Sanitizers catch SIGSEGV themselves; let the signal kill us. */
            signal(SIGSEGV, SIG_DFL);
            signal(SIGBUS, SIG_DFL);
            *(volatile char *)fm_root(c) = 'X';
            _exit(0); /* the store did not fault */
        }
        expect_eq(waitpid(pid, &status, 0), pid);
        if (!expect_true(WIFSIGNALED(status) &&
                         (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS)))
            fprintf(stderr, "  a store into a read-only arena did not fault (status %#x)\n",
                    status);
    }
    /* ... and did not reach the file. */
    require_eq(open_flags(path, FM_RDONLY, &fi), 0);
    expect_true(memcmp(fm_root(fi), root_text, sizeof root_text) == 0);
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    const char *path = tpath("lock.fm");

    (void)harness_seed();
    make_arena(path);
    test_writer_excludes(path);
    test_readers_share(path);
    test_same_process(path);
    test_readonly(path);
    test_killed_writer(path);
    return api_done();
}
