/*
 * test_punch.c -- large free chunks give their pages back to the file
 * system, and get them back (without SIGBUS) when reused.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmalloc.h"
#include "arena_util.h"
#include "harness.h"

#define MiB (1ull << 20)

static char path[600];

static long long file_bytes(void)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

static struct fm_stats stats(struct fm_info *fi)
{
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    return st;
}

int main(void)
{
    snprintf(path, sizeof path, "%s/punch.fm", harness_tmpdir());
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});

    /* guards over 1040 bytes: smaller blocks come in thread-cache runs */
    char *a = fm_malloc(fi, 2000), *big = fm_malloc(fi, 32 * MiB), *b = fm_malloc(fi, 2000);
    require_true(a && big && b);
    memset(big, 0x77, 32 * MiB);
    memset(a, 1, 100), memset(b, 2, 100);
    long long full = file_bytes();

    /* The punch waits for the sync that makes the free durable: a power
     * cut before it brings back the block, whose pages must still hold
     * its bytes. */
    fm_free(fi, big);
    long long unsynced = file_bytes();
    expect_true(unsynced >= full - (long long)MiB);
    require_eq(fm_sync(fi), 0);
    long long punched = file_bytes();
    struct fm_stats st = stats(fi);
    printf("file blocks: %lld MiB in use -> %lld MiB after freeing 32 MiB, %lld MiB after "
           "fm_sync (punched %llu)\n",
           full >> 20, unsynced >> 20, punched >> 20, (unsigned long long)st.punched_bytes);
    expect_true(full - punched >= (long long)(30 * MiB));
    expect_true(st.punched_bytes >= 32 * MiB);
    expect_eq(fm_check(fi), 0);

    /* Reuse part of it: the blocks come back, the bytes are writable. */
    char *c = fm_malloc(fi, 8 * MiB);
    require_true(c != NULL);
    memset(c, 0x33, 8 * MiB);
    long long reused = file_bytes();
    printf("after reusing 8 MiB of it: %lld MiB\n", reused >> 20);
    expect_true(reused - punched >= (long long)(7 * MiB));
    expect_true(stats(fi).punched_bytes >= 23 * MiB); /* the rest stays punched */
    expect_eq(fm_check(fi), 0);

    /* A realloc growing into the punched remainder, then a calloc from it. */
    c = fm_realloc(fi, c, 12 * MiB);
    require_true(c != NULL);
    expect_true(c[0] == 0x33 && c[8 * MiB - 1] == 0x33);
    memset(c + 8 * MiB, 0x44, 4 * MiB);
    char *z = fm_calloc(fi, 1, 4 * MiB);
    require_true(z != NULL);
    for (size_t i = 0; i < 4 * MiB; i += 4096)
        if (z[i]) {
            expect_true(z[i] == 0);
            break;
        }
    memset(z, 0x55, 4 * MiB);
    expect_eq(fm_check(fi), 0);

    /* Survives a reopen. */
    fm_off_t oa = fm_offset(fi, a), ob = fm_offset(fi, b), oc = fm_offset(fi, c);
    expect_eq(fm_close(fi), 0);
    require_eq(fm_open(path, NULL, &fi), 0);
    a = fm_pointer(fi, oa), b = fm_pointer(fi, ob), c = fm_pointer(fi, oc);
    expect_true(a[99] == 1 && b[99] == 2 && c[12 * MiB - 1] == 0x44);
    expect_eq(fm_check(fi), 0);

    /* Everything freed: the punched chunk merges into the top, which must
     * not stay flagged (its pages are real again). */
    fm_free(fi, c);
    fm_free(fi, z);
    fm_free(fi, b);
    st = stats(fi);
    expect_eq(st.punched_bytes, 0);
    char *again = fm_malloc(fi, 20 * MiB);
    require_true(again != NULL);
    memset(again, 9, 20 * MiB);
    expect_eq(fm_check(fi), 0);
    fm_free(fi, again);

    /* A program that never syncs (fmalloc_init's users) still gets space
     * back: a full queue of waiting punches syncs and punches. */
    enum { N = 80 };
    char *blk[N], *guard[N];
    for (int i = 0; i < N; i++) {
        blk[i] = fm_malloc(fi, MiB + 64 * 1024);
        guard[i] = fm_malloc(fi, 2000);
        require_true(blk[i] && guard[i]);
        memset(blk[i], 0x21, MiB + 64 * 1024);
    }
    require_eq(fm_sync(fi), 0);
    long long before = file_bytes();
    for (int i = 0; i < N; i++)
        fm_free(fi, blk[i]);
    long long after = file_bytes();
    printf("%d frees of 1.06 MiB without a sync: %lld MiB -> %lld MiB\n", N, before >> 20,
           after >> 20);
    expect_true(before - after >= (long long)(60 * MiB));
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    unlink(path);
    return harness_done();
}
