/*
 * test_open.c -- opening, creating and validating arena files (foundation).
 *
 * Public API only.  Covers: create / close / reopen with the root region;
 * the root and offset helpers; every way fm_open() must refuse a file, each
 * time proving the file is byte-identical afterwards; fm_strerror(); growth
 * past 256 MiB with reopen; max_size; clean and dirty (crashed) arenas.
 */
#include <fmalloc.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_util.h"
#include "harness.h"

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)

/* Superblock fields this test touches (docs/format.md). */
#define SB_VERSION_OFF  8  /* uint32 little-endian */
#define SB_PAGESIZE_OFF 16 /* uint32 little-endian */

static uint64_t rng;

/*
 * fm_open(path, opt) must fail with want_a or want_b, leave *out untouched,
 * and leave the file exactly as it was (bytes and size; a missing file stays
 * missing).  Returns the code it got.
 */
static int open_must_fail(const char *what, const char *path, const struct fm_options *opt,
                          int want_a, int want_b)
{
    size_t len0 = 0, len1 = 0;
    unsigned char *before = file_read_all(path, &len0);
    long long size0 = file_size(path);
    int existed = file_exists(path);
    struct fm_info sentinel_info;
    struct fm_info *out = &sentinel_info;
    int rc = fm_open(path, opt, &out);
    unsigned char *after;

    if (rc == 0) {
        harness_checks++;
        HARNESS_FAIL_("%s: fm_open succeeded, wanted %d (%s)", what, want_a, fm_strerror(want_a));
        if (out && out != &sentinel_info)
            fm_close(out);
    } else if (rc != want_a && rc != want_b) {
        harness_checks++;
        HARNESS_FAIL_("%s: fm_open returned %d (%s), wanted %d (%s)", what, rc, fm_strerror(rc),
                      want_a, fm_strerror(want_a));
    } else {
        harness_checks++;
        expect_true(out == &sentinel_info); /* untouched on failure */
    }

    after = file_read_all(path, &len1);
    if (!existed) {
        if (file_exists(path)) {
            harness_checks++;
            HARNESS_FAIL_("%s: failed open created %s", what, path);
        }
    } else {
        if (file_size(path) != size0) {
            harness_checks++;
            HARNESS_FAIL_("%s: size changed %lld -> %lld", what, size0, file_size(path));
        }
        if (before || after) {
            harness_checks++;
            if (!before || !after || len0 != len1 || memcmp(before, after, len0) != 0)
                HARNESS_FAIL_("%s: file %s modified by a failed open", what, path);
        }
    }
    free(before);
    free(after);
    return rc;
}

static int open_flags_must_fail(const char *what, const char *path, unsigned flags, int want_a,
                                int want_b)
{
    struct fm_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = flags;
    return open_must_fail(what, path, &opt, want_a, want_b);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A fresh, cleanly closed arena at path (default options). */
static void make_arena(const char *path)
{
    struct fm_info *fi = NULL;
    unlink(path);
    require_eq(open_flags(path, FM_CREATE, &fi), 0);
    require_true(fi != NULL);
    memcpy(fm_root(fi), "seed arena", 11);
    require_eq(fm_close(fi), 0);
}

/* --------------------------------------------------------------------------
 * Create, root region, offsets, reopen.
 * ------------------------------------------------------------------------ */
static void test_create_reopen(void)
{
    const char *path = tpath("basic.fm");
    struct fm_info *fi = NULL;
    struct fm_stats st;
    unsigned char msg[300];
    char *root, *blk;
    fm_off_t blk_off;
    struct stat sb;

    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(harness_rand(&rng) >> 24);

    require_eq(open_flags(path, FM_CREATE, &fi), 0);
    require_true(fi != NULL && fi->mem != NULL);
    root = fm_root(fi);
    expect_true(root != NULL);
    expect_true((char *)fi->mem + 4096 == root);
    expect_eq(fm_root_size(fi), 8192);
    expect_true(all_zero(root, 8192));

    /* Defaults: 1 MiB file, mode 0644 (umask is 022 here). */
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.file_size, 1 * MiB);
    expect_eq(st.heap_size, st.file_size - 12288);
    expect_true(!st.recovered);
    expect_eq(st.allocated_count, 0);
    expect_eq(file_size(path), (long long)st.file_size);
    expect_eq(stat(path, &sb), 0);
    expect_eq(sb.st_mode & 0777, 0644);

    /* Offsets and pointers. */
    expect_eq(fm_offset(fi, NULL), 0);
    expect_true(fm_pointer(fi, 0) == NULL);
    expect_eq(fm_offset(fi, root), 4096);
    expect_true(fm_pointer(fi, 4096) == root);
    expect_eq(fm_offset(fi, root + 100), 4196);
    expect_true(fm_pointer(fi, 4196) == root + 100);
    expect_true(fm_pointer(fi, 1) == (char *)fi->mem + 1);
    expect_true(fm_pointer(fi, st.file_size + 4096) == NULL);
    expect_true(fm_pointer(fi, UINT64_MAX) == NULL);

    blk = fm_malloc(fi, 1000);
    require_true(blk != NULL);
    blk_off = fm_offset(fi, blk);
    expect_true(blk_off >= 12288 && blk_off < st.file_size);
    expect_eq(blk_off % 16, 0);
    expect_true(fm_pointer(fi, blk_off) == blk);
    expect_eq(fm_offset(fi, fm_pointer(fi, blk_off + 17)), blk_off + 17);
    pat_fill(blk, 1000, 42);

    memcpy(root, msg, sizeof msg);
    memcpy(root + 8192 - 8, &blk_off, 8); /* the last bytes of the root too */
    require_eq(fm_close(fi), 0);

    /* Reopen with NULL options: existing file, read-write. */
    fi = NULL;
    require_eq(fm_open(path, NULL, &fi), 0);
    root = fm_root(fi);
    expect_true((char *)fi->mem + 4096 == root);
    expect_true(memcmp(root, msg, sizeof msg) == 0);
    expect_true(all_zero(root + sizeof msg, 8192 - 8 - sizeof msg));
    {
        fm_off_t got;
        memcpy(&got, root + 8192 - 8, 8);
        expect_eq(got, blk_off);
        blk = fm_pointer(fi, got);
        require_true(blk != NULL);
        expect_eq(pat_check(blk, 1000, 42), SIZE_MAX);
        expect_true(fm_usable_size(fi, blk) >= 1000);
    }
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 1);
    expect_true(!st.recovered);
    expect_eq(fm_check(fi), 0);
    require_eq(fm_close(fi), 0);

    /* A mode for a new file. */
    {
        struct fm_options opt;
        const char *p2 = tpath("mode.fm");
        memset(&opt, 0, sizeof opt);
        opt.flags = FM_CREATE;
        opt.mode = 0600;
        opt.initial_size = 256 * KiB;
        require_eq(fm_open(p2, &opt, &fi), 0);
        expect_eq(fm_stats(fi, &st), 0);
        expect_eq(st.file_size, 256 * KiB);
        expect_eq(fm_close(fi), 0);
        expect_eq(stat(p2, &sb), 0);
        expect_eq(sb.st_mode & 0777, 0600);
        expect_eq(sb.st_size, 256 * KiB);
    }
}

/* --------------------------------------------------------------------------
 * Missing, existing, empty and zero-headed files.
 * ------------------------------------------------------------------------ */
static void test_create_rules(void)
{
    const char *missing = tpath("missing.fm");
    const char *existing = tpath("existing.fm");
    const char *empty = tpath("empty.fm");
    const char *zero = tpath("zero4m.fm");
    struct fm_info *fi = NULL;
    struct fm_stats st;
    int fd;

    /* Missing file without FM_CREATE: ENOENT, nothing created. */
    unlink(missing);
    open_flags_must_fail("missing, no flags", missing, 0, ENOENT, ENOENT);
    open_must_fail("missing, NULL options", missing, NULL, ENOENT, ENOENT);
    open_flags_must_fail("missing, FM_RDONLY", missing, FM_RDONLY, ENOENT, ENOENT);
    expect_true(!file_exists(missing));

    /* FM_CREATE|FM_EXCL: creates a missing file, refuses an existing one. */
    require_eq(open_flags(missing, FM_CREATE | FM_EXCL, &fi), 0);
    expect_eq(fm_close(fi), 0);
    make_arena(existing);
    open_flags_must_fail("existing, FM_CREATE|FM_EXCL", existing, FM_CREATE | FM_EXCL, EEXIST,
                         EEXIST);
    /* ... and FM_CREATE alone opens it without reinitialising. */
    require_eq(open_flags(existing, FM_CREATE, &fi), 0);
    expect_true(memcmp(fm_root(fi), "seed arena", 11) == 0);
    expect_eq(fm_close(fi), 0);

    /* Empty file. */
    unlink(empty);
    require_eq(file_write_all(empty, "", 0), 0);
    open_flags_must_fail("empty, no flags", empty, 0, FM_EEMPTY, FM_EEMPTY);
    open_flags_must_fail("empty, FM_RDONLY", empty, FM_RDONLY, FM_EEMPTY, FM_EEMPTY);
    open_flags_must_fail("empty, FM_CREATE|FM_EXCL", empty, FM_CREATE | FM_EXCL, EEXIST, EEXIST);
    expect_eq(file_size(empty), 0);
    require_eq(open_flags(empty, FM_CREATE, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.file_size, 1 * MiB);
    expect_true(all_zero(fm_root(fi), 8192));
    expect_true(fm_malloc(fi, 100) != NULL);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    expect_eq(file_size(empty), 1 * MiB);
    require_eq(open_flags(empty, 0, &fi), 0); /* now an arena */
    expect_eq(fm_close(fi), 0);

    /* 4 MiB of zeros (ftruncate, like dd if=/dev/zero). */
    unlink(zero);
    fd = open(zero, O_RDWR | O_CREAT | O_TRUNC, 0644);
    require_true(fd >= 0);
    require_eq(ftruncate(fd, (off_t)(4 * MiB)), 0);
    close(fd);
    open_flags_must_fail("zero 4 MiB, no flags", zero, 0, FM_EEMPTY, FM_EEMPTY);
    require_eq(open_flags(zero, FM_CREATE, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.file_size, 4 * MiB);
    expect_eq(st.heap_size, 4 * MiB - 12288);
    expect_eq(file_size(zero), 4 * MiB);
    expect_true(all_zero(fm_root(fi), 8192));
    {
        /* The whole heap is usable: a 3 MiB block fits without growth. */
        void *big = fm_malloc(fi, 3 * MiB);
        expect_true(big != NULL);
        expect_eq(fm_stats(fi, &st), 0);
        expect_eq(st.file_size, 4 * MiB);
    }
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    expect_eq(file_size(zero), 4 * MiB);

    /* Zero first 4 KiB but data after it (a disk image with a zero boot
     * sector): somebody's data, refused byte-identical, never laid out. */
    {
        const char *zh = tpath("zerohead.fm");
        unsigned char *buf = calloc(1, 2 * MiB);
        require_true(buf != NULL);
        memset(buf + 8192, 0x5a, 1000);
        require_eq(file_write_all(zh, buf, 2 * MiB), 0);
        struct fm_options create = {.flags = FM_CREATE};
        open_must_fail("zero head, data at 8 KiB", zh, &create, FM_EBADMAGIC, FM_EBADMAGIC);
        /* the same with the data in the last byte of a 64 MiB sparse file */
        memset(buf + 8192, 0, 1000);
        require_eq(file_write_all(zh, buf, 2 * MiB), 0);
        fd = open(zh, O_WRONLY);
        require_true(fd >= 0 && pwrite(fd, "x", 1, 64 * MiB - 1) == 1);
        close(fd);
        open_must_fail("zero head, data in the last byte", zh, &create, FM_EBADMAGIC,
                       FM_EBADMAGIC);
        /* all zero but sparse: laid out, size kept */
        fd = open(zh, O_WRONLY);
        require_true(fd >= 0 && pwrite(fd, "", 1, 64 * MiB - 1) == 1);
        close(fd);
        free(buf);
        require_eq(open_flags(zh, FM_CREATE, &fi), 0);
        expect_eq(fm_stats(fi, &st), 0);
        expect_eq(st.file_size, 64 * MiB);
        expect_eq(fm_check(fi), 0);
        expect_eq(fm_close(fi), 0);
    }
}

/* --------------------------------------------------------------------------
 * Files that are not (valid) arenas.
 * ------------------------------------------------------------------------ */
static void test_refusals(void)
{
    const char *good = tpath("good.fm");
    const char *bad = tpath("bad.fm");
    const char *dir = tpath("adir");
    unsigned char *img, *copy;
    size_t len;
    struct fm_info *fi = NULL;

    /* Random bytes: not an arena, and FM_CREATE must not overwrite it. */
    {
        size_t n = 64 * KiB;
        unsigned char *g = malloc(n);
        require_true(g != NULL);
        for (size_t i = 0; i < n; i++)
            g[i] = (unsigned char)(harness_rand(&rng) >> 32);
        g[0] = 0x7f; /* never all-zero head by chance */
        require_eq(file_write_all(bad, g, n), 0);
        open_flags_must_fail("garbage, no flags", bad, 0, FM_EBADMAGIC, FM_EBADMAGIC);
        open_flags_must_fail("garbage, FM_CREATE", bad, FM_CREATE, FM_EBADMAGIC, FM_EBADMAGIC);
        open_flags_must_fail("garbage, FM_RDONLY", bad, FM_RDONLY, FM_EBADMAGIC, FM_EBADMAGIC);
        /* A tiny non-arena file: refused too (which code is the library's choice). */
        require_eq(file_write_all(bad, "hello, world\n", 13), 0);
        open_flags_must_fail("13-byte text, FM_CREATE", bad, FM_CREATE, FM_EBADMAGIC,
                             FM_ETRUNCATED);
        /* A text file of 8 KiB whose head is not zero. */
        memset(g, 'x', 8192);
        require_eq(file_write_all(bad, g, 8192), 0);
        open_flags_must_fail("8 KiB text, FM_CREATE", bad, FM_CREATE, FM_EBADMAGIC, FM_EBADMAGIC);
        free(g);
    }

    /* A directory. */
    rmdir(dir);
    require_eq(mkdir(dir, 0755), 0);
    open_flags_must_fail("directory", dir, 0, EISDIR, EISDIR);
    open_flags_must_fail("directory, FM_CREATE", dir, FM_CREATE, EISDIR, EISDIR);
    open_flags_must_fail("directory, FM_RDONLY", dir, FM_RDONLY, EISDIR, EISDIR);

    /* A character device is not a regular file. */
    if (file_exists("/dev/null"))
        open_flags_must_fail("/dev/null", "/dev/null", 0, FM_ENOTFILE, FM_ENOTFILE);

    /* Damaged copies of a valid arena. */
    make_arena(good);
    {
        /* Allocate a little so the heap is not pristine. */
        require_eq(open_flags(good, 0, &fi), 0);
        for (int i = 0; i < 50; i++)
            require_true(fm_malloc(fi, (size_t)(i * 37 + 1)) != NULL);
        require_eq(fm_close(fi), 0);
    }
    img = file_read_all(good, &len);
    require_true(img != NULL && len >= 64 * KiB);
    copy = malloc(len);
    require_true(copy != NULL);

    /* The pristine copy opens (the damage below is what makes them fail). */
    require_eq(file_write_all(bad, img, len), 0);
    require_eq(open_flags(bad, 0, &fi), 0);
    expect_eq(fm_close(fi), 0);

    /* Truncated to half. */
    require_eq(file_write_all(bad, img, len / 2), 0);
    open_flags_must_fail("truncated to half", bad, 0, FM_ETRUNCATED, FM_ETRUNCATED);
    open_flags_must_fail("truncated to half, FM_CREATE", bad, FM_CREATE, FM_ETRUNCATED,
                         FM_ETRUNCATED);
    open_flags_must_fail("truncated to half, FM_RDONLY", bad, FM_RDONLY, FM_ETRUNCATED,
                         FM_ETRUNCATED);
    /* Truncated inside the superblock / root region. */
    require_eq(file_write_all(bad, img, 6000), 0);
    open_flags_must_fail("truncated to 6000 bytes", bad, 0, FM_ETRUNCATED, FM_ETRUNCATED);

    /* A flipped bit in the checksummed identity part (bytes 20..63). */
    for (size_t at = 20; at < 64; at += 5) {
        char what[64];
        memcpy(copy, img, len);
        copy[at] ^= 0x10;
        require_eq(file_write_all(bad, copy, len), 0);
        snprintf(what, sizeof what, "identity byte %zu flipped", at);
        open_flags_must_fail(what, bad, 0, FM_ECHECKSUM, FM_ECHECKSUM);
    }
    memcpy(copy, img, len);
    copy[63] ^= 0x80;
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("identity byte 63 flipped, FM_CREATE", bad, FM_CREATE, FM_ECHECKSUM,
                         FM_ECHECKSUM);

    /* Version 99: reported as a version problem, before the checksum. */
    memcpy(copy, img, len);
    expect_eq(get_le32(copy + SB_VERSION_OFF), FM_FORMAT_VERSION);
    put_le32(copy + SB_VERSION_OFF, 99);
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("version 99", bad, 0, FM_EVERSION, FM_EVERSION);
    open_flags_must_fail("version 99, FM_RDONLY", bad, FM_RDONLY, FM_EVERSION, FM_EVERSION);
    /* Version 1, the format before chunk tags covered size and flags: refused,
     * and the detail says which version the file has. */
    put_le32(copy + SB_VERSION_OFF, 1);
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("version 1", bad, 0, FM_EVERSION, FM_EVERSION);
    expect_true(strstr(fm_last_error_detail(), "format version 1") != NULL);

    /* Another page size. */
    memcpy(copy, img, len);
    expect_eq(get_le32(copy + SB_PAGESIZE_OFF), (uint32_t)sysconf(_SC_PAGESIZE));
    put_le32(copy + SB_PAGESIZE_OFF, get_le32(copy + SB_PAGESIZE_OFF) == 65536 ? 4096 : 65536);
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("page size changed", bad, 0, FM_EPAGESIZE, FM_ECHECKSUM);

    /* A flipped magic, first and last byte. */
    memcpy(copy, img, len);
    copy[0] ^= 0x01;
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("magic byte 0 flipped", bad, 0, FM_EBADMAGIC, FM_EBADMAGIC);
    open_flags_must_fail("magic byte 0 flipped, FM_CREATE", bad, FM_CREATE, FM_EBADMAGIC,
                         FM_EBADMAGIC);
    memcpy(copy, img, len);
    copy[7] ^= 0x40;
    require_eq(file_write_all(bad, copy, len), 0);
    open_flags_must_fail("magic byte 7 flipped", bad, 0, FM_EBADMAGIC, FM_EBADMAGIC);

    /* The original is still a good arena after all that. */
    require_eq(open_flags(good, 0, &fi), 0);
    expect_true(memcmp(fm_root(fi), "seed arena", 11) == 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);

    free(copy);
    free(img);
}

/* --------------------------------------------------------------------------
 * fm_strerror
 * ------------------------------------------------------------------------ */
static void test_strerror(void)
{
    static const int codes[] = {
        FM_EBADMAGIC, FM_EVERSION, FM_ECHECKSUM, FM_ETRUNCATED, FM_ECORRUPT, FM_ELOCKED,
        FM_EPAGESIZE, FM_EEMPTY,   FM_EGEOMETRY, FM_EBADPTR,    FM_ENOTFILE, ENOENT,
    };
    enum { N = sizeof codes / sizeof codes[0] };
    char text[N][256];

    for (int i = 0; i < N; i++) {
        const char *s = fm_strerror(codes[i]);
        expect_true(s != NULL);
        if (!s)
            s = "";
        if (!expect_true(strlen(s) > 0))
            fprintf(stderr, "  fm_strerror(%d) is empty\n", codes[i]);
        snprintf(text[i], sizeof text[i], "%s", s);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (!expect_true(strcmp(text[i], text[j]) != 0))
                fprintf(stderr, "  codes %d and %d share \"%s\"\n", codes[i], codes[j], text[i]);
    /* Unknown codes still give a string. */
    expect_true(fm_strerror(-29999) != NULL);
    expect_true(fm_strerror(-31000) != NULL);
    expect_true(fm_strerror(123456) != NULL);
    expect_true(fm_strerror(0) != NULL);
}

/* --------------------------------------------------------------------------
 * Growth past 256 MiB, then reopen and verify everything through offsets.
 * ------------------------------------------------------------------------ */
enum { GROW_BLOCKS = 300 };

static void test_growth(void)
{
    const char *path = tpath("grow.fm");
    struct fm_options opt;
    struct fm_info *fi = NULL;
    struct fm_stats st;
    fm_off_t *offs;
    void *base;
    size_t bad = 0;

    unlink(path);
    memset(&opt, 0, sizeof opt);
    opt.flags = FM_CREATE;
    opt.initial_size = 1 * MiB;
    require_eq(fm_open(path, &opt, &fi), 0);
    base = fi->mem;
    offs = fm_root(fi);
    for (int i = 0; i < GROW_BLOCKS; i++) {
        char *p = fm_malloc(fi, (size_t)MiB);
        if (!p) {
            harness_checks++;
            HARNESS_FAIL_("growth: fm_malloc(1 MiB) #%d failed: %s", i, strerror(errno));
            break;
        }
        expect_eq((uintptr_t)p % 16, 0);
        pat_fill(p, (size_t)MiB, 1000u + (uint64_t)i);
        offs[i] = fm_offset(fi, p);
        /* The base never moves while the arena is open. */
        if (fi->mem != base) {
            harness_checks++;
            HARNESS_FAIL_("growth: base moved at block %d", i);
            base = fi->mem;
        }
    }
    expect_eq(fm_stats(fi, &st), 0);
    printf("growth: %d x 1 MiB -> file %" PRIu64 " bytes, %" PRIu64 " blocks\n", GROW_BLOCKS,
           st.file_size, st.allocated_count);
    expect_true(st.file_size > 300 * MiB);
    expect_true(st.file_size < 1024 * MiB); /* geometric growth, capped: not wildly over */
    expect_eq(st.allocated_count, GROW_BLOCKS);
    expect_eq(st.allocated_bytes + st.free_bytes, st.heap_size);
    expect_eq(fm_check(fi), 0);
    require_eq(fm_close(fi), 0);
    expect_true(file_size(path) > (long long)(300 * MiB));

    require_eq(open_flags(path, 0, &fi), 0);
    offs = fm_root(fi);
    for (int i = 0; i < GROW_BLOCKS; i++) {
        char *p = fm_pointer(fi, offs[i]);
        if (!p || pat_check(p, (size_t)MiB, 1000u + (uint64_t)i) != SIZE_MAX) {
            if (bad++ < 5)
                fprintf(stderr, "growth: block %d (offset %" PRIu64 ") wrong after reopen\n", i,
                        offs[i]);
        }
    }
    expect_eq(bad, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, GROW_BLOCKS);
    for (int i = 0; i < GROW_BLOCKS; i++)
        fm_free(fi, fm_pointer(fi, offs[i]));
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    unlink(path);
}

/* --------------------------------------------------------------------------
 * max_size
 * ------------------------------------------------------------------------ */
static void test_max_size(void)
{
    const char *path = tpath("max.fm");
    struct fm_options opt;
    struct fm_info *fi = NULL;
    struct fm_stats st;
    void *blocks[16];
    int got = 0, failed_errno = 0;

    unlink(path);
    memset(&opt, 0, sizeof opt);
    opt.flags = FM_CREATE;
    opt.initial_size = 1 * MiB;
    opt.max_size = 8 * MiB;
    require_eq(fm_open(path, &opt, &fi), 0);

    errno = 0;
    expect_true(fm_malloc(fi, 16 * MiB) == NULL);
    expect_eq(errno, ENOMEM);
    expect_eq(fm_check(fi), 0);

    for (int i = 0; i < 16; i++) {
        errno = 0;
        blocks[got] = fm_malloc(fi, (size_t)MiB);
        if (!blocks[got]) {
            failed_errno = errno;
            break;
        }
        pat_fill(blocks[got], (size_t)MiB, 7000u + (uint64_t)got);
        got++;
    }
    printf("max_size 8 MiB: %d blocks of 1 MiB fit\n", got);
    expect_true(got < 16);
    expect_eq(failed_errno, ENOMEM);
    expect_true(got >= 6); /* the arena does grow up to max_size */
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.file_size <= 8 * MiB);
    expect_true(file_size(path) <= (long long)(8 * MiB));
    expect_eq(st.allocated_count, got);

    /* Still usable for what fits; the blocks are intact. */
    {
        void *s = fm_malloc(fi, 1000);
        expect_true(s != NULL);
        fm_free(fi, s);
    }
    for (int i = 0; i < got; i++)
        expect_eq(pat_check(blocks[i], (size_t)MiB, 7000u + (uint64_t)i), SIZE_MAX);
    /* Free one, and a 1 MiB block fits again. */
    if (got > 0) {
        fm_free(fi, blocks[got - 1]);
        blocks[got - 1] = fm_malloc(fi, (size_t)MiB);
        expect_true(blocks[got - 1] != NULL);
    }
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
    expect_true(file_size(path) <= (long long)(8 * MiB));
    unlink(path);
}

/* --------------------------------------------------------------------------
 * Clean and dirty closes.
 * ------------------------------------------------------------------------ */
static void test_clean_dirty(void)
{
    const char *path = tpath("dirty.fm");
    struct fm_info *fi = NULL;
    struct fm_stats st;
    uint64_t gen;
    pid_t pid;
    int status = 0;

    make_arena(path);
    require_eq(open_flags(path, 0, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    gen = st.generation;
    expect_eq(fm_close(fi), 0);

    require_eq(open_flags(path, 0, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    expect_eq(st.generation, gen + 1);
    gen = st.generation;
    expect_eq(fm_close(fi), 0);

    /* A read-only open is not a read-write open. */
    require_eq(open_flags(path, FM_RDONLY, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.generation, gen);
    expect_true(!st.recovered);
    expect_eq(fm_close(fi), 0);

    /* A child opens read-write and exits without fm_close. */
    fflush(NULL);
    pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        struct fm_info *c = NULL;
        fm_off_t *slots;
        char *p;
        alarm(60);
        if (open_flags(path, 0, &c) != 0)
            _exit(2);
        slots = fm_root(c);
        p = fm_malloc_to(c, &slots[100], 5000);
        if (!p)
            _exit(3);
        pat_fill(p, 5000, 77);
        for (int i = 0; i < 20; i++)
            if (!fm_malloc(c, (size_t)(i * 100 + 1)))
                _exit(4);
        _exit(0);
    }
    require_eq(waitpid(pid, &status, 0), pid);
    require_true(WIFEXITED(status));
    require_eq(WEXITSTATUS(status), 0);

    require_eq(open_flags(path, 0, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(st.recovered);
    expect_eq(fm_check(fi), 0);
    {
        fm_off_t *slots = fm_root(fi);
        char *p = fm_pointer(fi, slots[100]);
        expect_true(p != NULL);
        if (p) {
            expect_eq(pat_check(p, 5000, 77), SIZE_MAX);
            expect_true(fm_usable_size(fi, p) >= 5000);
        }
        expect_eq(st.allocated_count, 21);
    }
    expect_eq(fm_close(fi), 0);

    /* Recovered and closed cleanly: the next open is clean. */
    require_eq(open_flags(path, 0, &fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_true(!st.recovered);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    rng = harness_seed();
    umask(022);
    test_create_reopen();
    test_create_rules();
    test_refusals();
    test_strerror();
    test_max_size();
    test_clean_dirty();
    test_growth();
    return api_done();
}
