/*
 * test_faults.c -- I/O failures: growth that cannot happen, syncs that fail.
 *
 * Growth failing in ftruncate, fallocate or mmap (ENOSPC, EIO) must make
 * the allocation return NULL/ENOMEM and leave the heap exactly usable;
 * msync/fdatasync failing in fm_sync or fm_close must be returned to the
 * caller, and after a failed close the arena must still be marked dirty.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena_util.h"
#include "fmalloc.h"
#include "harness.h"
#include "log.h"
#include "os.h"

static char path[600];

static long long file_size(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void growth_fails(enum os_fault_op op, int err, const char *what)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    char *keep = fm_malloc(fi, 900 * 1024);
    require_true(keep != NULL);
    memset(keep, 0x5a, 900 * 1024);
    char *last = fm_malloc(fi, 2000); /* over 1040 bytes: not from a thread-cache run */
    require_true(last != NULL);
    memset(last, 0x33, 2000);
    long long before = file_size();

    os_fault_set(op, err, 0);
    errno = 0;
    expect_true(fm_malloc(fi, 4 << 20) == NULL);
    expect_eq(errno, ENOMEM);
    /* realloc of the last block: growing in place and moving both need the
     * file to grow, and both attempts fail */
    os_fault_set_times(op, err, 0, 2);
    expect_true(fm_realloc(fi, last, 4 << 20) == NULL);
    expect_eq(errno, ENOMEM);
    expect_eq(fm_check(fi), 0);
    expect_eq(file_size(), before);
    expect_true(keep[0] == 0x5a && keep[900 * 1024 - 1] == 0x5a);
    expect_true(last[0] == 0x33 && last[1999] == 0x33);

    /* The fault was one-shot: the same requests now succeed. */
    char *big = fm_malloc(fi, 4 << 20);
    expect_true(big != NULL);
    if (big)
        memset(big, 1, 4 << 20);
    expect_true(fm_realloc(fi, last, 2 << 20) != NULL);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    printf("growth with %s failing (%s): NULL/ENOMEM, heap intact\n", what, strerror(err));
}

/* Reusing a punched chunk needs its blocks back; a full disk then is ENOMEM. */
static void refill_fails(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    /* guards over 1040 bytes: smaller blocks come in thread-cache runs */
    char *a = fm_malloc(fi, 2000), *big = fm_malloc(fi, 8 << 20), *b = fm_malloc(fi, 2000);
    require_true(a && big && b);
    memset(a, 0x11, 100);
    fm_free(fi, big); /* punched */
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.punched_bytes >= (8u << 20));
    os_fault_set(OS_FAULT_ALLOCATE, ENOSPC, 0);
    errno = 0;
    expect_true(fm_malloc(fi, 4 << 20) == NULL);
    expect_eq(errno, ENOMEM);
    expect_eq(fm_check(fi), 0);
    /* grows into the punched chunk, or moves into it: both need a refill */
    os_fault_set_times(OS_FAULT_ALLOCATE, ENOSPC, 0, 2);
    expect_true(fm_realloc(fi, a, 1 << 20) == NULL);
    expect_eq(errno, ENOMEM);
    expect_true(a[0] == 0x11 && a[99] == 0x11);
    expect_eq(fm_check(fi), 0);
    char *c = fm_malloc(fi, 4 << 20);
    expect_true(c != NULL);
    if (c)
        memset(c, 1, 4 << 20);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    printf("refilling a punched chunk failing: NULL/ENOMEM, heap intact\n");
}

static void sync_fails(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    require_true(fm_malloc(fi, 1000) != NULL);
    os_fault_set(OS_FAULT_MSYNC, EIO, 0);
    expect_eq(fm_sync(fi), EIO);
    os_fault_set(OS_FAULT_FSYNC, EIO, 0);
    expect_eq(fm_sync(fi), EIO);
    expect_eq(fm_sync(fi), 0);

    /* Close: the data sync fails -> error, arena left dirty. */
    os_fault_set(OS_FAULT_MSYNC, EIO, 0);
    expect_eq(fm_close(fi), EIO);
    struct fm_stats st;
    require_eq(fm_open(path, NULL, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.recovered);
    expect_eq(st.allocated_count, 1);

    /* Close: data sync works, the superblock's sync fails -> still dirty. */
    os_fault_set(OS_FAULT_FSYNC, ENOSPC, 1);
    expect_eq(fm_close(fi), ENOSPC);
    require_eq(fm_open(path, NULL, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.recovered);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);

    /* And a clean close is clean. */
    require_eq(fm_open(path, NULL, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    expect_eq(fm_close(fi), 0);
    printf("msync/fdatasync failures returned; arena stays dirty\n");
}

/* Creation that fails gives an existing file back as it was; creation cut
 * short by a kill after the header body, before the magic, leaves a file
 * that is refused without FM_CREATE and laid out again with it. */
static void interrupted_creation(void)
{
    unlink(path);
    FILE *f = fopen(path, "w"); /* an existing empty file: not unlinked on failure */
    require_true(f != NULL);
    fclose(f);
    struct fm_options o = {.flags = FM_CREATE};
    struct fm_info *fi;
    os_fault_set(OS_FAULT_FSYNC, EIO, 0); /* the sync before the magic */
    expect_eq(fm_open(path, &o, &fi), EIO);
    expect_eq(file_size(), 0);

    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        fm__cp_arm(1); /* the first crash point of a creation: before the magic */
        fm_open(path, &o, &fi);
        _exit(0);
    }
    int status;
    require_true(waitpid(pid, &status, 0) == pid);
    expect_true(WIFEXITED(status) && WEXITSTATUS(status) == FM_CP_EXIT);
    expect_true(file_size() > 0);
    expect_eq(fm_open(path, NULL, &fi), FM_EEMPTY);
    require_eq(fm_open(path, &o, &fi), 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    printf("interrupted creation: refused without FM_CREATE, redone with it\n");
}

/* fm_trim syncs the heap that frees the tail before it shrinks the file: a
 * failing sync leaves the file its size (a power cut after a shrink that
 * came first would leave a header longer than its file). */
static void trim_syncs_first(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    void *big = fm_malloc(fi, 3 << 20);
    require_true(big != NULL);
    fm_free(fi, big);
    long long before = file_size();
    os_fault_set(OS_FAULT_MSYNC, EIO, 0);
    expect_eq(fm_trim(fi, 0), EIO);
    expect_eq(file_size(), before);
    expect_eq(fm_trim(fi, 0), 0);
    expect_true(file_size() < before);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    printf("trim: a failing sync keeps the file's size; then it shrinks\n");
}

static void open_fails_cleanly(void)
{
    /* A failing msync while marking the arena dirty fails the open and
     * leaves the file as it was. */
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    expect_eq(fm_close(fi), 0);
    os_fault_set(OS_FAULT_MSYNC, EIO, 0);
    expect_eq(fm_open(path, NULL, &fi), EIO);
    require_eq(fm_open(path, NULL, &fi), 0);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    snprintf(path, sizeof path, "%s/faults.fm", harness_tmpdir());
    growth_fails(OS_FAULT_TRUNCATE, ENOSPC, "ftruncate");
    growth_fails(OS_FAULT_TRUNCATE, EIO, "ftruncate");
    growth_fails(OS_FAULT_ALLOCATE, ENOSPC, "fallocate");
    growth_fails(OS_FAULT_ALLOCATE, EIO, "fallocate");
    growth_fails(OS_FAULT_MAP, ENOMEM, "mmap");
    growth_fails(OS_FAULT_MAP, EIO, "mmap");
    refill_fails();
    sync_fails();
    interrupted_creation();
    trim_syncs_first();
    open_fails_cleanly();
    unlink(path);
    return harness_done();
}
