/*
 * test_regress.c -- one test per bug found in review, each of which failed
 * before its fix.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena_util.h"
#include "fmalloc.h"
#include "harness.h"

#define MiB (1u << 20)
static char path[600];

/* realloc of the block below the top, when the file may not grow: it must
 * move into free space instead of failing. */
static void realloc_moves_when_top_cannot_grow(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.max_size = 4 * MiB});
    char *x = fm_malloc(fi, 2 * MiB), *a = fm_malloc(fi, MiB);
    require_true(x && a);
    memset(a, 0x5c, MiB);
    fm_free(fi, x);
    char *b = fm_realloc(fi, a, MiB + MiB / 2);
    expect_true(b != NULL);
    if (b)
        expect_true(b[0] == 0x5c && b[MiB - 1] == 0x5c);
    expect_eq(fm_check(fi), 0);
    fm_close(fi);
}

/* fm_free_from / fm_realloc_to with the slot inside the block itself. */
static void slot_inside_the_block(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    fm_off_t *root = fm_root(fi);
    fm_off_t *self = fm_malloc_to(fi, &root[0], 80);
    require_true(self != NULL);
    *self = root[0]; /* the block links itself */
    fm_free_from(fi, self);
    expect_eq(fm_check(fi), 0);

    fm_off_t *blk = fm_malloc_to(fi, &root[1], 200);
    require_true(blk != NULL);
    blk[3] = root[1];
    errno = 0;
    expect_true(fm_realloc_to(fi, &blk[3], 5000) == NULL);
    expect_eq(errno, EINVAL);
    expect_eq(fm_check(fi), 0);
    fm_close(fi);
}

/* A used arena whose magic was zeroed is not an interrupted creation:
 * FM_CREATE must refuse it, not lay a new arena over its data.  (The
 * interrupted creation itself is tested in test/crash/test_faults.c.) */
static void zeroed_magic_is_not_recreated(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    fm_off_t *root = fm_root(fi);
    require_true(fm_malloc_to(fi, &root[0], 100) != NULL);
    expect_eq(fm_close(fi), 0);
    int fd = open(path, O_WRONLY);
    require_true(fd >= 0);
    static const char zero[8];
    require_true(pwrite(fd, zero, 8, 0) == 8);
    close(fd);
    struct fm_options o = {.flags = FM_CREATE};
    expect_eq(fm_open(path, NULL, &fi), FM_EBADMAGIC);
    expect_eq(fm_open(path, &o, &fi), FM_EBADMAGIC);
}

/* The reason for a refused dirty arena survives the failed open. */
/* An arena whose recovery must fail: dirty flag on, a chunk header damaged. */
static void make_unrecoverable(void)
{
    struct fm_info *fi = fresh_arena(path, (struct fm_options){0});
    fm_off_t *root = fm_root(fi);
    require_true(fm_malloc_to(fi, &root[0], 100) != NULL);
    fm_off_t block = root[0];
    expect_eq(fm_close(fi), 0);
    int fd = open(path, O_RDWR);
    require_true(fd >= 0);
    uint32_t dirty = 1;
    uint64_t junk = 0x1234;
    require_true(pwrite(fd, &dirty, 4, 152) == 4);
    require_true(pwrite(fd, &junk, 8, (off_t)block - 8) == 8);
    close(fd);
}

static void corrupt_reason_kept(void)
{
    struct fm_info *fi;
    make_unrecoverable();
    expect_eq(fm_open(path, NULL, &fi), FM_ECORRUPT);
    const char *why = fm_last_error_detail();
    printf("refused: %s\n", why);
    expect_true(strstr(why, "chunk") != NULL);
    expect_true(strstr(fm_check_message(NULL), "chunk") != NULL);
}

/* fmalloc_init keeps the reason its fm_open found (docs/api.md said it did
 * not), and an early fm_open failure records its code. */
static void init_reason_kept(void)
{
    struct fm_info *fi;
    make_unrecoverable();
    errno = 0;
    expect_true(fmalloc_init(path, NULL) == NULL);
    expect_eq(errno, EIO);
    expect_eq(fm_last_error(), FM_ECORRUPT);
    printf("fmalloc_init refused: %s\n", fm_last_error_detail());
    expect_true(strstr(fm_last_error_detail(), "chunk") != NULL);

    expect_eq(fm_open(NULL, NULL, &fi), EINVAL);
    expect_eq(fm_last_error(), EINVAL);
    expect_true(strcmp(fm_last_error_detail(), fm_strerror(EINVAL)) == 0);
}

/* FM_NOCACHE: a small free reaches the heap at once and coalesces. */
static void no_cache(void)
{
    struct fm_options o = {.initial_size = MiB, .flags = FM_CREATE | FM_NOCACHE};
    struct fm_info *fi;
    unlink(path);
    require_eq(fm_open(path, &o, &fi), 0);
    void *p[100];
    for (int i = 0; i < 100; i++)
        require_true((p[i] = fm_malloc(fi, 40)) != NULL);
    for (int i = 0; i < 100; i++)
        fm_free(fi, p[i]);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.free_blocks, 1); /* everything back in the top, no trim needed */
    expect_eq(fm_close(fi), 0);
    o.flags = 0x1000; /* unknown flags are refused */
    expect_eq(fm_open(path, &o, &fi), EINVAL);
}

static void null_arenas(void)
{
    struct fm_stats st;
    expect_eq(fm_check(NULL), EINVAL);
    expect_eq(fm_stats(NULL, &st), EINVAL);
    expect_eq(fm_trim(NULL, 0), EINVAL);
    fm_set_error_handler(NULL, NULL, NULL);
    expect_true(fm_malloc(NULL, 1) == NULL);
}

int main(void)
{
    snprintf(path, sizeof path, "%s/regress.fm", harness_tmpdir());
    realloc_moves_when_top_cannot_grow();
    slot_inside_the_block();
    zeroed_magic_is_not_recreated();
    corrupt_reason_kept();
    init_reason_kept();
    no_cache();
    null_arenas();
    unlink(path);
    return harness_done();
}
