/*
 * test_check_message.c -- fm_check_message() is per thread.
 *
 * The names directory's count is damaged, which fm_check reports and
 * fm_stats (a heap walk only) does not.  One thread checks and must read
 * its own FM_ECORRUPT message every time; another runs fm_stats and must
 * read "" every time, though both share one arena: a message kept in the
 * arena alone would be cleared or replaced under either of them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "api_util.h"

#define ROUNDS 3000

static struct fm_info *arena;
static char expected[256];
static atomic_int wrong_corrupt, wrong_clean;

static void *checker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int err = fm_check(arena);
        if (err != FM_ECORRUPT || strcmp(fm_check_message(arena), expected) != 0)
            atomic_fetch_add(&wrong_corrupt, 1);
    }
    return NULL;
}

static void *statter(void *arg)
{
    (void)arg;
    struct fm_stats st;
    for (int i = 0; i < ROUNDS; i++) {
        int err = fm_stats(arena, &st);
        if (err != 0 || fm_check_message(arena)[0] != 0)
            atomic_fetch_add(&wrong_clean, 1);
    }
    return NULL;
}

int main(void)
{
    struct fm_options opt = {0};
    arena = fresh_arena(tpath("check_message.fm"), opt);
    expect_eq(fm_name_bind(arena, "one", fm_offset(arena, fm_root(arena))), 0);
    expect_eq(fm_check(arena), 0);
    expect_str(fm_check_message(arena), "");
    /* sb_names is superblock word 184; the table's word 2 its count. */
    uint64_t tbl = *(uint64_t *)((char *)arena->mem + 184);
    require_true(tbl != 0);
    uint64_t *t = (uint64_t *)((char *)arena->mem + tbl);
    t[2]++;
    expect_eq(fm_check(arena), FM_ECORRUPT);
    snprintf(expected, sizeof expected, "%s", fm_check_message(arena));
    printf("damaged count: %s\n", expected);
    expect_true(expected[0] != 0);

    pthread_t a, b;
    require_eq(pthread_create(&a, NULL, checker, NULL), 0);
    require_eq(pthread_create(&b, NULL, statter, NULL), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("wrong messages: checker %d, stats %d (of %d each)\n", atomic_load(&wrong_corrupt),
           atomic_load(&wrong_clean), ROUNDS);
    expect_eq(atomic_load(&wrong_corrupt), 0);
    expect_eq(atomic_load(&wrong_clean), 0);
    /* This thread's copy is its own last check's, whatever ran since. */
    expect_str(fm_check_message(arena), expected);
    /* No handle: the thread's last error detail. */
    expect_str(fm_check_message(NULL), fm_last_error_detail());

    t[2]--;
    expect_eq(fm_check(arena), 0);
    expect_str(fm_check_message(arena), "");
    expect_eq(fm_close(arena), 0);
    return harness_done();
}
