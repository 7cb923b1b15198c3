/*
 * test_names.c -- the name directory through the public API.
 *
 * Bind, look up, unbind and iterate; fm_name_malloc; name rules (length,
 * bytes); every error; the table growing past many names and reusing
 * unbound slots, checked against a model; names surviving a reopen (also
 * read-only); fm_check passing on a good directory and failing, without a
 * crash, on damaged ones.  Seeded: FM_TEST_SEED replays a run.
 */
#include <fmalloc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_util.h"
#include "harness.h"

static struct fm_info *open_arena(const char *path, unsigned flags)
{
    return require_open(path, (struct fm_options){.flags = flags});
}

static void test_basics(struct fm_info *fi)
{
    fm_off_t off = 1;
    expect_eq(fm_name_lookup(fi, "a", &off), ENOENT);
    expect_eq(off, 1);
    expect_eq(fm_name_unbind(fi, "a"), ENOENT);

    long *p = fm_malloc(fi, sizeof *p);
    require_true(p != NULL);
    *p = 42;
    expect_eq(fm_name_bind(fi, "answer", fm_offset(fi, p)), 0);
    expect_eq(fm_name_lookup(fi, "answer", &off), 0);
    expect_eq(off, fm_offset(fi, p));
    expect_eq(*(long *)fm_pointer(fi, off), 42);
    /* Bound already: nothing changes. */
    long *q = fm_malloc(fi, sizeof *q);
    expect_eq(fm_name_bind(fi, "answer", fm_offset(fi, q)), EEXIST);
    expect_eq(fm_last_error(), EEXIST);
    expect_eq(fm_name_lookup(fi, "answer", &off), 0);
    expect_eq(off, fm_offset(fi, p));
    /* The root region can be named too. */
    expect_eq(fm_name_bind(fi, "root", fm_offset(fi, fm_root(fi))), 0);

    expect_eq(fm_name_unbind(fi, "answer"), 0);
    expect_eq(fm_name_lookup(fi, "answer", &off), ENOENT);
    expect_eq(fm_name_bind(fi, "answer", fm_offset(fi, q)), 0);
    expect_eq(fm_name_lookup(fi, "answer", &off), 0);
    expect_eq(off, fm_offset(fi, q));
    fm_free(fi, p);

    /* fm_name_malloc: zeroed, bound, and refused for a bound name. */
    char *z = fm_name_malloc(fi, "zeroed", 1000);
    require_true(z != NULL);
    int nonzero = 0;
    for (int i = 0; i < 1000; i++)
        nonzero += z[i] != 0;
    expect_eq(nonzero, 0);
    expect_eq(fm_name_lookup(fi, "zeroed", &off), 0);
    expect_eq(off, fm_offset(fi, z));
    struct fm_stats before, after;
    expect_eq(fm_stats(fi, &before), 0);
    errno = 0;
    expect_true(fm_name_malloc(fi, "zeroed", 10) == NULL);
    expect_eq(errno, EEXIST);
    expect_eq(fm_stats(fi, &after), 0);
    expect_eq(after.allocated_count, before.allocated_count); /* rolled back */
    expect_eq(fm_check(fi), 0);
}

static void test_name_rules(struct fm_info *fi)
{
    char name[FM_NAME_MAX + 2];
    fm_off_t off = fm_offset(fi, fm_root(fi)), got;
    memset(name, 'n', sizeof name);
    name[FM_NAME_MAX] = 0; /* 255 bytes: the most */
    expect_eq(fm_name_bind(fi, name, off), 0);
    expect_eq(fm_name_lookup(fi, name, &got), 0);
    name[FM_NAME_MAX] = 'n';
    name[FM_NAME_MAX + 1] = 0; /* 256: too long */
    expect_eq(fm_name_bind(fi, name, off), EINVAL);
    expect_eq(fm_name_lookup(fi, name, &got), EINVAL);
    expect_eq(fm_name_bind(fi, "", off), EINVAL);
    expect_eq(fm_name_bind(fi, NULL, off), EINVAL);
    expect_eq(fm_name_bind(fi, "tab\there", off), EINVAL);
    expect_eq(fm_name_bind(fi, "newline\n", off), EINVAL);
    expect_eq(fm_name_bind(fi, "del\x7f", off), EINVAL);
    expect_eq(fm_name_unbind(fi, "\x01"), EINVAL);
    errno = 0;
    expect_true(fm_name_malloc(fi, "", 8) == NULL);
    expect_eq(errno, EINVAL);
    /* Spaces, punctuation and UTF-8 are fine. */
    expect_eq(fm_name_bind(fi, "a name with spaces / and: punctuation!", off), 0);
    expect_eq(fm_name_bind(fi, "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", off), 0);
    expect_eq(fm_name_lookup(fi, "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", &got), 0);
    /* Offsets outside the root region and the heap. */
    expect_eq(fm_name_bind(fi, "bad", 0), EINVAL);
    expect_eq(fm_name_bind(fi, "bad", 100), EINVAL);
    expect_eq(fm_name_bind(fi, "bad", (fm_off_t)1 << 50), EINVAL);
    expect_eq(fm_name_lookup(fi, "bad", &got), ENOENT);
    /* NULL arguments. */
    expect_eq(fm_name_bind(NULL, "x", off), EINVAL);
    expect_eq(fm_name_lookup(NULL, "x", &got), EINVAL);
    expect_eq(fm_name_lookup(fi, "x", NULL), EINVAL);
    expect_eq(fm_name_iterate(fi, NULL, NULL), EINVAL);
    expect_eq(fm_check(fi), 0);
}

/* ---- many names against a model -------------------------------------------- */

#define MODEL_N 6000
static fm_off_t model[MODEL_N]; /* bound offset per name index, 0 = unbound */

static void name_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "object/%d%s", i, i % 5 ? "" : "/with a longer suffix");
}

static int count_names(const char *name, fm_off_t off, void *arg)
{
    long *n = arg;
    int i = -1;
    if (sscanf(name, "object/%d", &i) == 1 && i >= 0 && i < MODEL_N && model[i] == off)
        n[0]++;
    else if (strncmp(name, "object/", 7) == 0)
        n[1]++; /* a model name with a wrong offset, or one that should be gone */
    return 0;
}

static void verify_model(struct fm_info *fi)
{
    long bad = 0, bound = 0;
    char name[64];
    for (int i = 0; i < MODEL_N; i++) {
        fm_off_t off = 0;
        name_of(i, name, sizeof name);
        int err = fm_name_lookup(fi, name, &off);
        if (model[i]) {
            bound++;
            bad += err != 0 || off != model[i];
        } else {
            bad += err != ENOENT;
        }
    }
    expect_eq(bad, 0);
    long n[2] = {0, 0};
    expect_eq(fm_name_iterate(fi, count_names, n), 0);
    expect_eq(n[0], bound);
    expect_eq(n[1], 0);
}

static void test_many(struct fm_info *fi, uint64_t seed)
{
    char name[64];
    srand((unsigned)seed);
    long *blocks = fm_malloc(fi, 64);
    require_true(blocks != NULL);
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < MODEL_N; k++) {
            int i = rand() % MODEL_N;
            name_of(i, name, sizeof name);
            if (model[i]) {
                expect_eq(fm_name_unbind(fi, name), 0);
                model[i] = 0;
            } else {
                fm_off_t off = fm_offset(fi, blocks) + (fm_off_t)(rand() % 64);
                expect_eq(fm_name_bind(fi, name, off), 0);
                model[i] = off;
            }
        }
        verify_model(fi);
        expect_eq(fm_check(fi), 0);
    }
}

static int stop_at_second(const char *name, fm_off_t off, void *arg)
{
    (void)name, (void)off;
    return ++*(int *)arg == 2 ? 77 : 0;
}

/* ---- damage -------------------------------------------------------------------- */

struct caught {
    int err;
    int calls;
};

static void catch_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    (void)fi, (void)msg;
    struct caught *c = arg;
    c->err = err;
    c->calls++;
}

/* The table block, found through a name bound to itself-ish: the offset of
 * the slot holding `name`'s entry is not public, so damage goes through
 * raw file words: sb_names is superblock word 184. */
static void test_damage(const char *path)
{
    struct fm_info *fi = open_arena(path, FM_CREATE);
    expect_eq(fm_name_bind(fi, "one", fm_offset(fi, fm_root(fi))), 0);
    expect_eq(fm_name_bind(fi, "two", fm_offset(fi, fm_root(fi))), 0);
    expect_eq(fm_check(fi), 0);
    uint64_t *sb_names = (uint64_t *)((char *)fi->mem + 184);
    uint64_t tbl = *sb_names;
    require_true(tbl != 0);
    uint64_t *t = (uint64_t *)((char *)fi->mem + tbl);
    struct caught c = {0, 0};
    fm_set_error_handler(fi, catch_error, &c);

    /* A wrong count. */
    t[2]++;
    expect_eq(fm_check(fi), FM_ECORRUPT);
    printf("damaged count: %s\n", fm_check_message(fi));
    t[2]--;
    expect_eq(fm_check(fi), 0);

    /* A slot pointing nowhere: lookups and binds report it, nothing crashes. */
    int s = 0;
    while (t[4 + s] == 0)
        s++;
    uint64_t saved = t[4 + s];
    t[4 + s] = 0x7777777777777770ull;
    expect_eq(fm_check(fi), FM_ECORRUPT);
    printf("damaged slot: %s\n", fm_check_message(fi));
    fm_off_t off;
    int e1 = fm_name_lookup(fi, "one", &off), e2 = fm_name_lookup(fi, "two", &off);
    expect_true(e1 == FM_ECORRUPT || e2 == FM_ECORRUPT);
    t[4 + s] = saved;

    /* A name's hash changed. */
    uint64_t *entry = (uint64_t *)((char *)fi->mem + saved);
    entry[1] ^= 1;
    expect_eq(fm_check(fi), FM_ECORRUPT);
    printf("damaged hash: %s\n", fm_check_message(fi));
    entry[1] ^= 1;

    /* sb_names pointing at a non-table. */
    *sb_names = fm_offset(fi, fm_root(fi));
    expect_eq(fm_check(fi), FM_ECORRUPT);
    expect_eq(fm_name_bind(fi, "three", fm_offset(fi, fm_root(fi))), FM_ECORRUPT);
    expect_eq(c.calls, 1);
    expect_eq(c.err, FM_ECORRUPT);
    *sb_names = tbl;

    /* The table freed by mistake. */
    expect_eq(fm_check(fi), 0);
    fm_free(fi, (char *)fi->mem + tbl);
    fm_trim(fi, SIZE_MAX); /* caches back to the heap: the block is really free */
    expect_eq(fm_check(fi), FM_ECORRUPT);
    printf("freed table: %s\n", fm_check_message(fi));
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    uint64_t seed = harness_seed();
    const char *path = tpath("names.fm");
    struct fm_info *fi = open_arena(path, FM_CREATE);
    test_basics(fi);
    test_name_rules(fi);
    test_many(fi, seed);
    int calls = 0;
    expect_eq(fm_name_iterate(fi, stop_at_second, &calls), 77);
    expect_eq(calls, 2);
    void *old_base = fi->mem;
    expect_eq(fm_close(fi), 0);

    /* After a reopen (wherever it maps), also read-only. */
    fi = open_arena(path, 0);
    printf("base %p -> %p\n", old_base, fi->mem);
    verify_model(fi);
    fm_off_t off;
    expect_eq(fm_name_lookup(fi, "zeroed", &off), 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    fi = open_arena(path, FM_RDONLY);
    verify_model(fi);
    expect_eq(fm_name_bind(fi, "ro", off), EROFS);
    expect_eq(fm_name_unbind(fi, "zeroed"), EROFS);
    expect_true(fm_name_malloc(fi, "ro", 8) == NULL);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);

    test_damage(tpath("damage.fm"));
    return harness_done();
}
