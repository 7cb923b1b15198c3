/*
 * test_power.c -- the power-loss simulator: runs each scenario
 * (power_workloads.c) on a new arena with the os layer traced
 * (power_record.c), then cuts the power at random instants and builds what
 * the disk could hold (power_image.c), and opens every image.
 *
 * What today's default mode promises after a power cut, and what is
 * asserted for every image (docs/crash-model.md, "OS crash and power
 * loss"):
 *   - fm_open succeeds and fm_check passes, or fm_open refuses the file
 *     with FM_ECORRUPT or FM_ECHECKSUM and leaves it byte for byte as it
 *     was.  Any other outcome (FM_ETRUNCATED, another error, a crash) is a
 *     mismatch: a growth syncs the new size before the heap records it,
 *     and a shrink follows the sync of the header allowing it, so the
 *     file is never shorter than its header says.
 *   - A block linked from a root slot at the last completed sync, still
 *     linked from that slot and allocated in the opened image, never reads
 *     zero where it held data at that sync: no 512-byte sector of it that
 *     was all non-zero then reads all zero.  (Sectors, not bytes: the heap
 *     may legitimately write its free-list words into a block freed after
 *     the sync; only a punch or a truncation zeroes whole sectors.)
 * The refusals are counted: they are what the power-safe mode must remove.
 *
 * The FM_DURABLE scenarios (names dur_*) have a stricter verdict:
 * power_run_durable.c.
 *
 *   test_power [--images N] [--seed S] [--scenario NAME[,NAME...]]
 *              [--default | --durable] [--break-ordering] [--weak-msync]
 *              [--expect-mismatches]
 *
 * --images N is per scenario (default 2000, or FM_POWER_IMAGES);
 * --default / --durable run only the default-mode / FM_DURABLE scenarios;
 * --break-ordering sets os_break_ordering (punch at once, truncate before
 * syncing; a durable commit applies its pages before the journal is
 * durable); --expect-mismatches inverts the verdict (for that run: a
 * refused durable image counts as caught too);
 * --weak-msync makes msync alone make nothing durable (only a later
 * fdatasync does), the stricter reading of the model.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fmalloc.h"
#include "format.h"
#include "os.h"
#include "power_files.h"
#include "power_record.h"
#include "power_run.h"
#include "power_workloads.h"

enum { SECTOR = 512, ROOT_OFF = 4096 };

struct counts {
    long images, opened, refused_corrupt, refused_checksum, mismatches;
};

char power_dir[512];

/* Images go to tmpfs when there is one: each open syncs, and on a disk
 * 10,000 fdatasyncs would be the whole cost of the test. */
static void make_dir(void)
{
    const char *t = getenv("FM_POWER_DIR");
    if (!t)
        t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    snprintf(power_dir, sizeof power_dir, "%s/fmpower.XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(power_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    static const char *const sub[] = {"rec", "img", "rec2"};
    for (int i = 0; i < 3; i++) {
        char d[600];
        snprintf(d, sizeof d, "%s/%s", power_dir, sub[i]);
        if (mkdir(d, 0755) != 0) {
            perror(d);
            exit(1);
        }
    }
}

static void remove_dir(void)
{
    static const char *const sub[] = {"rec", "img", "rec2"};
    for (int i = 0; i < 3; i++) {
        char d[600];
        snprintf(d, sizeof d, "%s/%s", power_dir, sub[i]);
        rmdir(d);
    }
    rmdir(power_dir);
}

double power_seconds(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

size_t *power_cuts(const struct record *r, long n, uint64_t *rng, size_t *npoints)
{
    size_t np = 0;
    for (size_t i = r->first_point; i < r->n; i++)
        np += r->recs[i].kind == REC_POINT;
    size_t *all = malloc((np ? np : 1) * sizeof *all), *cut = malloc((size_t)n * sizeof *cut);
    if (!all || !cut || !np) {
        fprintf(stderr, "test_power: no crash points, or out of memory\n");
        exit(1);
    }
    np = 0;
    for (size_t i = r->first_point; i < r->n; i++)
        if (r->recs[i].kind == REC_POINT)
            all[np++] = i;
    for (long k = 0; k < n; k++)
        cut[k] = all[sim_random(rng) % np];
    qsort(cut, (size_t)n, sizeof *cut, cmp_size);
    free(all);
    *npoints = np;
    return cut;
}

/* ---- recording a scenario --------------------------------------------------- */

static void record_workload(const struct workload *w, const char *path, uint64_t seed,
                            struct record *r)
{
    unlink(path);
    rec_start(r);
    struct fm_options opt = {.initial_size = w->initial_size, .flags = FM_CREATE};
    struct fm_info *fi = NULL;
    int err = fm_open(path, &opt, &fi);
    if (err) {
        fprintf(stderr, "%s: fm_open: %s\n", w->name, fm_strerror(err));
        exit(1);
    }
    rec_arm(r); /* a cut during creation is test_openclose's business */
    uint64_t rng = seed | 1;
    w->run(fi, r, &rng);
    rec_stop(r);
    if ((err = fm_close(fi))) {
        fprintf(stderr, "%s: fm_close: %s\n", w->name, fm_strerror(err));
        exit(1);
    }
}

/* ---- checking one image ------------------------------------------------------- */

static bool file_is(const char *path, const struct disk *d)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    bool same = fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size == d->size;
    unsigned char *buf = same ? malloc((size_t)d->size + 1) : NULL;
    same = same && buf && pread(fd, buf, (size_t)d->size, 0) == (ssize_t)d->size &&
           memcmp(buf, d->buf, (size_t)d->size) == 0;
    free(buf);
    if (fd >= 0)
        close(fd);
    return same;
}

struct blocks {
    uint64_t off[4096], size[4096];
    int n;
    struct fm_info *fi;
};

static int collect_block(void *p, size_t size, void *arg)
{
    struct blocks *b = arg;
    if (b->n < 4096) {
        b->off[b->n] = fm_offset(b->fi, p);
        b->size[b->n++] = size;
    }
    return 0;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static bool none_zero(const unsigned char *p, size_t n)
{
    return memchr(p, 0, n) == NULL;
}

/* The second promise (see the top): NULL, or what broke it.  A sector is
 * looked for in the image's bytes as written (disk), then confirmed in the
 * mapping: reading every page of the mapping would double the test's time,
 * and recovery only rolls back heap words, it never zeroes a sector of a
 * block. */
static const char *check_synced_blocks(struct fm_info *fi, const struct disk *durable,
                                       const struct disk *disk, char *why, size_t why_len)
{
    static struct blocks b;
    b.n = 0;
    b.fi = fi;
    if (fm_walk(fi, collect_block, &b) != 0)
        return "fm_walk failed";
    const fm_off_t *now = fm_root(fi);
    for (int s = 0; s < POWER_SLOTS; s++) {
        uint64_t at = ROOT_OFF + 8 * (uint64_t)s, then;
        if (at + 8 > durable->size)
            break;
        memcpy(&then, durable->buf + at, 8);
        if (!then || now[s] != then)
            continue;
        int k = 0;
        while (k < b.n && b.off[k] != then)
            k++;
        if (k == b.n)
            continue; /* no longer allocated: the free reached the disk */
        const unsigned char *img = fm_pointer(fi, then);
        uint64_t end = then + b.size[k];
        if (end > durable->size)
            end = durable->size;
        if (end > disk->size)
            end = disk->size;
        for (uint64_t o = (then + SECTOR - 1) / SECTOR * SECTOR; o + SECTOR <= end; o += SECTOR)
            if (all_zero(disk->buf + o, SECTOR) && all_zero(img + (o - then), SECTOR) &&
                none_zero(durable->buf + o, SECTOR)) {
                snprintf(why, why_len,
                         "slot %d: block at %" PRIu64 " (%" PRIu64 " bytes) reads zero at %" PRIu64
                         ", synced non-zero",
                         s, then, b.size[k], o);
                return why;
            }
    }
    return NULL;
}

/* Open one image; count the outcome; NULL, or the mismatch. */
static const char *check_image(const char *path, const struct disk *img, const struct replay *rp,
                               struct counts *c, char *why, size_t why_len)
{
    const struct disk *durable = &rp->durable;
    struct fm_info *fi = NULL;
    int err = fm_open(path, &(struct fm_options){0}, &fi);
    c->images++;
    if (err == FM_ECORRUPT || err == FM_ECHECKSUM) {
        *(err == FM_ECORRUPT ? &c->refused_corrupt : &c->refused_checksum) += 1;
        return file_is(path, img) ? NULL : "refused, but the file was changed";
    }
    if (err) {
        snprintf(why, why_len, "fm_open: %s (%s)", fm_strerror(err), fm_last_error_detail());
        return why;
    }
    c->opened++;
    const char *bad = NULL;
    if (fm_check(fi) != 0) {
        snprintf(why, why_len, "opened, but fm_check: %s", fm_check_message(fi));
        bad = why;
    } else {
        bad = check_synced_blocks(fi, durable, img, why, why_len);
    }
    if ((err = fm_close(fi)) && !bad) {
        snprintf(why, why_len, "fm_close: %s", fm_strerror(err));
        bad = why;
    }
    return bad;
}

/* ---- a scenario ------------------------------------------------------------------ */

static void run_scenario(const struct workload *w, const struct options *o, struct counts *c)
{
    char arena[600], image[600], imgdir[600];
    snprintf(arena, sizeof arena, "%s/rec/%s.fm", power_dir, w->name);
    snprintf(image, sizeof image, "%s/img/%s.fm", power_dir, w->name);
    snprintf(imgdir, sizeof imgdir, "%s/img", power_dir);
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    struct record r;
    record_workload(w, arena, o->seed, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    /* The crash points: N instants drawn among those after creation. */
    uint64_t rng = o->seed ^ (uint64_t)(uintptr_t)w->name[0] << 32 ^ 0x9E3779B97F4A7C15ull;
    size_t npoints;
    size_t *cut = power_cuts(&r, o->images, &rng, &npoints);

    struct image_set set;
    set_init(&set, &r);
    struct counts before = *c;
    char why[512];
    for (long k = 0; k < o->images; k++) {
        set_replay_to(&set, cut[k]);
        struct crash_odds odds;
        uint64_t image_rng = rng ^ (uint64_t)k * 0x100000001B3ull;
        set_build(&set, &image_rng, &odds);
        set_write(&set, imgdir);
        /* The arena (path 0) was created before the first crash point. */
        const struct replay *rp = &set.rp[set.chosen[0]];
        const char *bad = check_image(image, &set.disk[0], rp, c, why, sizeof why);
        if (bad) {
            c->mismatches++;
            if (c->mismatches - before.mismatches <= 5 || !o->expect_mismatches)
                fprintf(stderr,
                        "%s: MISMATCH image %ld (record %zu of %zu, %zu pending; odds land %.2f meta %.1f "
                        "tear %.2f): %s\n",
                        w->name, k, cut[k], r.n, rp->npending, odds.land, odds.meta, odds.tear, bad);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    printf("%-11s %6ld images %6ld opened %6ld refused (%ld FM_ECORRUPT, %ld FM_ECHECKSUM)  "
           "%ld mismatches  [%zu crash points, %" PRIu64
           " page versions; record %.2f s, images %.2f s]\n",
           w->name, c->images - before.images, c->opened - before.opened,
           c->refused_corrupt + c->refused_checksum - before.refused_corrupt - before.refused_checksum,
           c->refused_corrupt - before.refused_corrupt, c->refused_checksum - before.refused_checksum,
           c->mismatches - before.mismatches, npoints, r.page_writes, power_seconds(&t0, &t1),
           power_seconds(&t1, &t2));
    fflush(stdout);
    set_free(&set);
    rec_free(&r);
    free(cut);
    unlink(arena);
    unlink(image);
}

/* Is `name` in the comma-separated list `only` (NULL: all)? */
static bool chosen(const char *only, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == 0))
            return true;
    return !only;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: test_power [--images N] [--seed S] [--scenario NAME[,NAME...]] "
                    "[--default | --durable] [--break-ordering] [--weak-msync] "
                    "[--expect-mismatches]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *env = getenv("FM_POWER_IMAGES");
    struct options o = {.images = env ? atol(env) : 2000};
    char which = 0; /* 'p': the default-mode scenarios only, 'd': the durable ones */
    const char *seed_env = getenv("FM_TEST_SEED");
    o.seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--images") == 0 && i + 1 < argc)
            o.images = atol(argv[++i]);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            o.seed = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
            o.only = argv[++i];
        else if (strcmp(argv[i], "--break-ordering") == 0)
            os_break_ordering = true;
        else if (strcmp(argv[i], "--weak-msync") == 0)
            power_weak_msync = true;
        else if (strcmp(argv[i], "--expect-mismatches") == 0)
            o.expect_mismatches = true;
        else if (strcmp(argv[i], "--default") == 0)
            which = 'p';
        else if (strcmp(argv[i], "--durable") == 0)
            which = 'd';
        else
            usage();
    }
    if (o.images < 1)
        usage();
    printf("seed %" PRIu64 " (replay with --seed %" PRIu64 ")%s%s\n", o.seed, o.seed,
           os_break_ordering ? ", ordering broken on purpose" : "",
           power_weak_msync ? ", msync alone makes nothing durable" : "");
    make_dir();

    struct counts c = {0};
    struct dur_counts dc = {0};
    int ran = 0;
    for (int i = 0; i < power_nworkloads && which != 'd'; i++)
        if (chosen(o.only, power_workloads[i].name)) {
            run_scenario(&power_workloads[i], &o, &c);
            ran++;
        }
    for (int i = 0; i < dur_nworkloads && which != 'p'; i++)
        if (chosen(o.only, dur_workloads[i].name)) {
            run_durable(&dur_workloads[i], &o, &dc);
            ran++;
        }
    remove_dir();
    if (!ran)
        usage();
    if (c.images)
        printf("total       %6ld images %6ld opened %6ld refused (%ld FM_ECORRUPT, %ld "
               "FM_ECHECKSUM)  %ld mismatches\n",
               c.images, c.opened, c.refused_corrupt + c.refused_checksum, c.refused_corrupt,
               c.refused_checksum, c.mismatches);
    if (dc.images)
        printf("total dur   %6ld images %6ld opened at a commit %4ld refused %4ld mismatched\n",
               dc.images, dc.at_last + dc.at_next, dc.refused, dc.mismatches);
    long bad = c.mismatches + dc.refused + dc.mismatches;
    if (o.expect_mismatches) {
        printf(bad ? "the broken ordering was caught\n"
                   : "FAIL: the broken ordering went unnoticed\n");
        return bad ? 0 : 1;
    }
    return bad ? 1 : 0;
}
