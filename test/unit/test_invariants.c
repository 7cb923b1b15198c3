/*
 * test_invariants.c -- each heap invariant (H1..H8, heap.h) broken on
 * purpose must be caught by heap_check with a message that says what broke;
 * plus the log's rollback and the size-class functions.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "arena_util.h"
#include "harness.h"

static char path[600];

static struct fm_info *arena_with_free_chunks(void)
{
    /* No thread caches: they would carve the small blocks in runs, and the
     * frees would merge into a few big chunks instead of this pattern. */
    struct fm_info *fi = fresh_arena(path, (struct fm_options){.flags = FM_NOCACHE});
    /* in use / free pattern with small, tree-bin and list chunks */
    void *p[40];
    static const size_t sizes[] = {24, 100, 400, 600, 3000, 3000, 9000, 64};
    for (int i = 0; i < 40; i++)
        require_true((p[i] = fm_malloc(fi, sizes[i % 8])) != NULL);
    for (int i = 0; i < 40; i += 2)
        fm_free(fi, p[i]);
    require_eq(fm_close(fi), 0);
    fi = require_open(path, (struct fm_options){0});
    require_eq(fm_check(fi), 0);
    return fi;
}

static struct heap *heap_of(struct fm_info *fi)
{
    return &arena_of(fi)->heap;
}

/* Break one word, expect heap_check to fail mentioning `needle`, restore. */
static void expect_caught(struct fm_info *fi, uint64_t off, uint64_t val, const char *needle,
                          const char *what)
{
    struct heap *h = heap_of(fi);
    uint64_t *w = (uint64_t *)(void *)(h->base + off);
    uint64_t old = *w;
    *w = val;
    struct heap_totals tot;
    char msg[256];
    int err = heap_check(h->base, h->mapped_size, &tot, msg, sizeof msg);
    *w = old;
    if (!expect_eq(err, FM_ECORRUPT) || !expect_true(strstr(msg, needle) != NULL))
        fprintf(stderr, "  %s: got %d \"%s\", wanted \"%s\"\n", what, err, msg, needle);
    else
        printf("%-40s caught: %s\n", what, msg);
    expect_eq(heap_check(h->base, h->mapped_size, &tot, msg, sizeof msg), 0);
}

/* First chunk satisfying a predicate, walking from the heap start. */
static uint64_t find_chunk(struct heap *h, int want_free, uint64_t min_size)
{
    struct chunk_iter it;
    chunk_iter_init(&it, h->base, h->sb->sb_top);
    while (chunk_next(&it) == CHUNK_NEXT)
        if (!!(it.head & CH_CINUSE) == !want_free && it.size >= min_size && it.c != h->sb->sb_dv)
            return it.c;
    return 0;
}

static void test_invariants(void)
{
    struct fm_info *fi = arena_with_free_chunks();
    struct heap *h = heap_of(fi);
    struct fmt_superblock *sb = h->sb;
    uint64_t used = find_chunk(h, 0, 0);
    uint64_t fsmall = find_chunk(h, 1, 0);
    uint64_t flarge = find_chunk(h, 1, CH_TREE_MIN);
    require_true(used && fsmall && flarge);
    uint64_t head = ch_head(h, used);

    /* H1: chunks tile the heap up to the top */
    expect_caught(fi, offsetof(struct fmt_superblock, sb_top), sb->sb_top + 16, "",
                  "H1 top moved");
    /* H2: sizes multiple of 16 and >= CH_MIN */
    expect_caught(fi, used + F_HEAD, ch_tagged(used, h->salt, 8 | CH_CINUSE | CH_PINUSE),
                  "impossible size", "H2 size below minimum");
    expect_caught(fi, used + F_HEAD, ch_tagged(used, h->salt, head + 0x20000), "",
                  "H2 size off the tiling");
    /* tags: a header that does not belong at its offset, or whose size or
     * flags changed without a new tag (a stray store, a flipped bit) */
    expect_caught(fi, used + F_HEAD, head ^ (1ull << 50), "damaged header", "header tag");
    expect_caught(fi, used + F_HEAD, head ^ 0x100, "damaged header", "size bit flipped");
    expect_caught(fi, used + F_HEAD, head ^ CH_CINUSE, "damaged header", "CINUSE bit flipped");
    /* H3: PINUSE agrees with the previous chunk */
    uint64_t next = used + ch_size(h, used);
    expect_caught(fi, next + F_HEAD, ch_tagged(next, h->salt, ch_head(h, next) ^ CH_PINUSE),
                  "PINUSE", "H3 PINUSE flipped");
    /* H4: a free chunk's footer */
    expect_caught(fi, fsmall + ch_size(h, fsmall), 48, "footer", "H4 footer");
    /* H5: no adjacent free chunks (mark an in-use chunk after a free one free) */
    uint64_t after_free = fsmall + ch_size(h, fsmall);
    expect_caught(fi, after_free + F_HEAD,
                  ch_tagged(after_free, h->salt, ch_head(h, after_free) & ~(uint64_t)CH_CINUSE),
                  "", "H5 adjacent free");
    /* H6: every free chunk in its bin */
    unsigned si = small_index(ch_size(h, fsmall));
    expect_caught(fi, offsetof(struct fmt_superblock, sb_smallbins) + 8u * si, 0, "",
                  "H6 small bin emptied");
    expect_caught(fi, fsmall + F_BK, fsmall, "bk", "H6 small list bk");
    /* H7: bitmaps */
    expect_caught(fi, offsetof(struct fmt_superblock, sb_smallmap),
                  (sb->sb_smallmap ^ (1u << 3)) | (uint64_t)sb->sb_treemap << 32, "small bin 3",
                  "H7 small map bit");
    /* H8: trie links */
    expect_caught(fi, flarge + F_PARENT, flarge, "", "H8 parent link");
    expect_caught(fi, flarge + F_INDEX, 31 | TREE_NODE_FLAG, "", "H8 bin index");
    /* link to something that is not a free chunk */
    expect_caught(fi, fsmall + F_FD, used, "not a free chunk", "bin link to a used chunk");
    fm_close(fi);
}

static void test_log_rollback(void)
{
    struct fm_info *fi = arena_with_free_chunks();
    struct heap *h = heap_of(fi);
    char *root = fm_root(fi);
    uint64_t before[4];
    memcpy(before, root, sizeof before);
    log_set(h->base, FMT_ROOT_OFF, 11);
    log_set(h->base, FMT_ROOT_OFF + 8, 22);
    log_set(h->base, FMT_ROOT_OFF, 33); /* the same word twice: oldest wins */
    log_save(h->base, FMT_ROOT_OFF + 16);
    memset(root + 16, 0xee, 8);
    expect_eq(h->sb->sb_log_count, 4);
    log_rollback(h->base);
    expect_eq(h->sb->sb_log_count, 0);
    expect_true(memcmp(before, root, sizeof before) == 0);
    /* unchanged stores are not logged */
    log_set(h->base, FMT_ROOT_OFF, before[0]);
    expect_eq(h->sb->sb_log_count, 0);
    log_commit(h->base);
    fm_close(fi);
}

static void test_size_classes(void)
{
    expect_eq(request_to_size(0), CH_MIN);
    expect_eq(request_to_size(24), 32);
    expect_eq(request_to_size(25), 48);
    expect_eq(request_to_size(SIZE_MAX), 0);
    expect_eq(tree_index(512), 0);
    expect_eq(tree_index(767), 0);
    expect_eq(tree_index(768), 1);
    expect_eq(tree_index(1024), 2);
    expect_eq(tree_index((1ull << 24) + (1ull << 23)), 31);
    expect_eq(tree_index(1ull << 40), 31);
    for (unsigned i = 0; i + 1 < FMT_NTREEBINS; i++) {
        /* the smallest size of bin i: its top bit and the half bit */
        uint64_t k = i >> 1, lo = (1ull << (k + 9)) | ((uint64_t)(i & 1) << (k + 8));
        expect_eq(tree_index(lo), i);
        expect_eq(tree_index(lo - 16), i ? i - 1 : 0);
        /* the key's first bit is the one just below the half bit */
        expect_eq((lo | (1ull << (k + 7))) << tree_key_shift(i) >> 63, 1);
    }
}

static void test_format_checks(void)
{
    unsigned char sb[FMT_HEADER_SIZE];
    uint8_t id[16] = {1, 2, 3};
    fmt_init_superblock(sb, 1 << 20, 4096, id, 1);
    char why[128];
    expect_eq(fmt_check_identity(sb, 4096), 0);
    expect_eq(fmt_check_identity(sb, 65536), FM_EPAGESIZE);
    expect_eq(fmt_check_state(sb, 1 << 20, 4096, why, sizeof why), 0);
    expect_eq(fmt_check_state(sb, (1 << 20) - 4096, 4096, why, sizeof why), FM_ETRUNCATED);
    sb[200] ^= 1; /* state damaged while clean */
    expect_eq(fmt_check_state(sb, 1 << 20, 4096, why, sizeof why), FM_ECHECKSUM);
    sb[200] ^= 1;
    sb[30] ^= 1;
    expect_eq(fmt_check_identity(sb, 4096), FM_ECHECKSUM);
    sb[30] ^= 1;
    sb[8] = FMT_VERSION - 1; /* version 1 tagged heads without their size and flags */
    expect_eq(fmt_check_identity(sb, 4096), FM_EVERSION);
    sb[8] = FMT_VERSION + 1;
    expect_eq(fmt_check_identity(sb, 4096), FM_EVERSION);
    sb[0] = 'X';
    expect_eq(fmt_check_identity(sb, 4096), FM_EBADMAGIC);
    /* the log may not restore the identity part or itself */
    fmt_init_superblock(sb, 1 << 20, 4096, id, 1);
    struct fmt_superblock *s = (void *)sb;
    s->sb_log_count = 1;
    s->sb_log[0].off = 64;
    expect_eq(fmt_check_log(sb, 1 << 20, why, sizeof why), FM_ECORRUPT);
    s->sb_log[0].off = offsetof(struct fmt_superblock, sb_log_count);
    expect_eq(fmt_check_log(sb, 1 << 20, why, sizeof why), FM_ECORRUPT);
    s->sb_log[0].off = 1 << 20;
    expect_eq(fmt_check_log(sb, 1 << 20, why, sizeof why), FM_ECORRUPT);
    s->sb_log[0].off = FMT_HEAP_OFF + 8;
    expect_eq(fmt_check_log(sb, 1 << 20, why, sizeof why), 0);
    s->sb_log_count = FMT_LOG_CAP + 1;
    expect_eq(fmt_check_log(sb, 1 << 20, why, sizeof why), FM_ECORRUPT);
}

int main(void)
{
    snprintf(path, sizeof path, "%s/inv.fm", harness_tmpdir());
    test_invariants();
    test_log_rollback();
    test_size_classes();
    test_format_checks();
    unlink(path);
    return harness_done();
}
