/*
 * test_power_model.c -- the simulator's model checked on a record written
 * by hand (power_image.h): what is durable after a sync and after an
 * msync, which bytes a pending write, punch or size change may leave, and
 * that every allowed outcome does occur; and the directory model
 * (power_files.h) on a record of two paths, one created, unlinked and
 * created again.  No arena: if this fails, the images test_power opens
 * are not the ones the model describes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "power_files.h"

enum { PAGE = 4096, SECTOR = 512, IMAGES = 3000 };

static struct record rec;

static void add(enum rec_kind kind, uint64_t off, uint64_t len, int fill, bool from_map)
{
    if (rec.n == rec.cap) {
        rec.cap = rec.cap ? 2 * rec.cap : 64;
        rec.recs = realloc(rec.recs, rec.cap * sizeof *rec.recs);
        require_true(rec.recs != NULL);
    }
    struct rec *e = &rec.recs[rec.n++];
    *e = (struct rec){.kind = kind, .file = kind == REC_POINT ? -1 : 0, .off = off, .len = len,
                      .from_map = from_map};
    if (kind == REC_WRITE) {
        e->data = malloc((size_t)len);
        require_true(e->data != NULL);
        memset(e->data, fill, (size_t)len);
    }
}

/* The byte every sector of [off, off+len) of an image holds, as a bit set
 * over the allowed values: set bits say which values were seen. */
static unsigned seen_values(const struct disk *d, uint64_t off, uint64_t len, const int *allowed,
                            int nallowed)
{
    unsigned seen = 0;
    for (uint64_t s = off; s < off + len; s += SECTOR) {
        int v = d->buf[s];
        int k = 0;
        while (k < nallowed && allowed[k] != v)
            k++;
        bool whole = true;
        for (uint64_t i = s; i < s + SECTOR; i++)
            whole &= d->buf[i] == v;
        if (!expect_true(k < nallowed && whole) && harness_failures < 5)
            fprintf(stderr, "  sector at %llu holds %d\n", (unsigned long long)s, v);
        seen |= 1u << k;
    }
    return seen;
}

/* Draw IMAGES images at record `point`; the allowed sizes and, per page,
 * the allowed fills; each must be seen at least once. */
static void expect_images(struct replay *rp, size_t point, const uint64_t *sizes, int nsizes,
                          const int allowed[][4], const int *nallowed, int npages)
{
    replay_to(rp, point);
    uint64_t rng = 12345;
    struct disk img = {0};
    unsigned seen_size = 0, seen[8] = {0};
    for (int k = 0; k < IMAGES; k++) {
        struct crash_odds odds;
        image_build(rp, &rng, &img, &odds);
        int s = 0;
        while (s < nsizes && sizes[s] != img.size)
            s++;
        if (!expect_true(s < nsizes))
            fprintf(stderr, "  point %zu: image of %llu bytes\n", point,
                    (unsigned long long)img.size);
        seen_size |= 1u << s;
        for (int p = 0; p < npages && (uint64_t)(p + 1) * PAGE <= img.size; p++)
            seen[p] |= seen_values(&img, (uint64_t)p * PAGE, PAGE, allowed[p], nallowed[p]);
    }
    expect_eq(seen_size, (1u << nsizes) - 1);
    for (int p = 0; p < npages; p++)
        if (!expect_eq(seen[p], (1u << nallowed[p]) - 1))
            fprintf(stderr, "  point %zu, page %d: not every allowed value seen\n", point, p);
    disk_free(&img);
}

/* ---- the directory model ------------------------------------------------ */

static struct record drec;

static void dadd(enum rec_kind kind, int file, int fill)
{
    if (drec.n == drec.cap) {
        drec.cap = drec.cap ? 2 * drec.cap : 64;
        drec.recs = realloc(drec.recs, drec.cap * sizeof *drec.recs);
        require_true(drec.recs != NULL);
    }
    struct rec *e = &drec.recs[drec.n++];
    *e = (struct rec){.kind = kind, .file = kind == REC_POINT ? -1 : file};
    if (kind == REC_WRITE) {
        e->len = PAGE;
        e->data = malloc(PAGE);
        require_true(e->data != NULL);
        memset(e->data, fill, PAGE);
    }
}

/* At `point`, path 1 ("j") must name one of the files in `files` (-1:
 * none), each seen; path 0 ("a") always file 0, its page 'A'.  A file's
 * page holds `fill` (its only write, synced). */
static void expect_paths(struct image_set *set, size_t point, const int *files, const int *fills,
                         int n)
{
    set_replay_to(set, point);
    uint64_t rng = 777;
    unsigned seen = 0;
    for (int k = 0; k < 300; k++) {
        struct crash_odds odds;
        set_build(set, &rng, &odds);
        expect_eq(set->chosen[0], 0);
        expect_true(set->disk[0].size == PAGE && set->disk[0].buf[0] == 'A');
        int i = 0;
        while (i < n && files[i] != set->chosen[1])
            i++;
        if (!expect_true(i < n)) {
            fprintf(stderr, "  point %zu: j names file %d\n", point, set->chosen[1]);
            continue;
        }
        if (files[i] >= 0)
            expect_true(set->disk[1].size == PAGE && set->disk[1].buf[0] == fills[i]);
        seen |= 1u << i;
    }
    if (!expect_eq(seen, (1u << n) - 1))
        fprintf(stderr, "  point %zu: not every allowed file seen\n", point);
}

/* "a" existed before; "j" is created (file 1), made durable by a DIRSYNC,
 * unlinked, created again (file 2), and that made durable. */
static void test_directory_model(void)
{
    drec.paths[0] = "d/a";
    drec.paths[1] = drec.paths[2] = "d/j";
    drec.nfiles = 3;
    dadd(REC_CREATE, 0, 0);
    dadd(REC_WRITE, 0, 'A');
    dadd(REC_SYNC, 0, 0);
    dadd(REC_DIRSYNC, 0, 0);
    size_t p1 = drec.n;
    dadd(REC_POINT, -1, 0);
    dadd(REC_CREATE, 1, 0);
    dadd(REC_WRITE, 1, 'J');
    dadd(REC_SYNC, 1, 0);
    size_t created = drec.n;
    dadd(REC_POINT, -1, 0);
    dadd(REC_DIRSYNC, 1, 0);
    size_t dirsynced = drec.n;
    dadd(REC_POINT, -1, 0);
    dadd(REC_UNLINK, 1, 0);
    size_t unlinked = drec.n;
    dadd(REC_POINT, -1, 0);
    dadd(REC_CREATE, 2, 0);
    dadd(REC_WRITE, 2, 'K');
    dadd(REC_SYNC, 2, 0);
    size_t again = drec.n;
    dadd(REC_POINT, -1, 0);
    dadd(REC_DIRSYNC, 2, 0);
    size_t again_synced = drec.n;
    dadd(REC_POINT, -1, 0);

    struct image_set set;
    set_init(&set, &drec);
    expect_eq(set.npaths, 2);
    expect_paths(&set, p1, (int[]){-1}, (int[]){0}, 1);
    /* Created and synced, its entry not: there or not. */
    expect_paths(&set, created, (int[]){-1, 1}, (int[]){0, 'J'}, 2);
    expect_paths(&set, dirsynced, (int[]){1}, (int[]){'J'}, 1);
    /* Unlinked, not durably: still there with its bytes, or gone. */
    expect_paths(&set, unlinked, (int[]){1, -1}, (int[]){'J', 0}, 2);
    /* Created again: the old file, none, or the new one (in order). */
    expect_paths(&set, again, (int[]){1, -1, 2}, (int[]){'J', 0, 'K'}, 3);
    expect_paths(&set, again_synced, (int[]){2}, (int[]){'K'}, 1);
    set_free(&set);
    for (size_t i = 0; i < drec.n; i++)
        free(drec.recs[i].data);
    free(drec.recs);
}

int main(void)
{
    /* A file of two pages of 'A', synced; then page versions B and C of
     * page 0, a punch of page 1, a growth to three pages and D written in
     * the third; an msync of everything; then E over page 0 and a shrink
     * to one page; an fdatasync. */
    add(REC_WRITE, 0, 2 * PAGE, 'A', false);
    add(REC_SYNC, 0, 0, 0, false);
    add(REC_POINT, 0, 0, 0, false);
    add(REC_WRITE, 0, PAGE, 'B', true);
    add(REC_POINT, 0, 0, 0, false);
    add(REC_WRITE, 0, PAGE, 'C', true);
    add(REC_PUNCH, PAGE, PAGE, 0, false);
    add(REC_SIZE, 3 * PAGE, 0, 0, false);
    add(REC_WRITE, 2 * PAGE, PAGE, 'D', true);
    size_t before_msync = rec.n;
    add(REC_POINT, 0, 0, 0, false);
    add(REC_MSYNC, 0, 3 * PAGE, 0, false);
    size_t after_msync = rec.n;
    add(REC_POINT, 0, 0, 0, false);
    add(REC_WRITE, 0, PAGE, 'E', true);
    add(REC_SIZE, PAGE, 0, 0, false);
    size_t before_sync = rec.n;
    add(REC_POINT, 0, 0, 0, false);
    add(REC_SYNC, 0, 0, 0, false);
    size_t after_sync = rec.n;
    add(REC_POINT, 0, 0, 0, false);

    struct replay rp;
    for (int weak = 0; weak <= 1; weak++) {
        power_weak_msync = weak;
        replay_init(&rp, &rec, 0);
        /* Right after the first sync: exactly the durable file. */
        expect_images(&rp, 2, (uint64_t[]){2 * PAGE}, 1, (const int[][4]){{'A'}, {'A'}},
                      (int[]){1, 1}, 2);
        /* Before the msync: page 0 any of its versions, page 1 punched or
         * not, the growth landed or not (and D with it, or zero). */
        expect_images(&rp, before_msync, (uint64_t[]){2 * PAGE, 3 * PAGE}, 2,
                      (const int[][4]){{'A', 'B', 'C'}, {'A', 0}, {0, 'D'}}, (int[]){3, 2, 2}, 3);
        if (!weak) {
            /* An msync is a sync: nothing is pending any more. */
            expect_images(&rp, after_msync, (uint64_t[]){3 * PAGE}, 1,
                          (const int[][4]){{'C'}, {0}, {'D'}}, (int[]){1, 1, 1}, 3);
            expect_images(&rp, before_sync, (uint64_t[]){3 * PAGE, PAGE}, 2,
                          (const int[][4]){{'C', 'E'}, {0}, {'D'}}, (int[]){2, 1, 1}, 3);
        } else {
            /* Only the fdatasync makes anything durable. */
            expect_images(&rp, before_sync, (uint64_t[]){2 * PAGE, 3 * PAGE, PAGE}, 3,
                          (const int[][4]){{'A', 'B', 'C', 'E'}, {'A', 0}, {0, 'D'}},
                          (int[]){4, 2, 2}, 3);
        }
        /* The fdatasync makes the shrink durable; E, which no msync
         * covered, stays pending. */
        expect_images(&rp, after_sync, (uint64_t[]){PAGE}, 1, (const int[][4]){{'C', 'E'}},
                      (int[]){2}, 1);
        /* What the shrink cut off reads zero if the file grows again. */
        expect_true(rp.durable.used <= PAGE);
        replay_free(&rp);
    }
    for (size_t i = 0; i < rec.n; i++)
        free(rec.recs[i].data);
    free(rec.recs);
    test_directory_model();
    return harness_done();
}
