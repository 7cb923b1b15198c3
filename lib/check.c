/*
 * check.c -- whole-heap validation (H1..H8 in heap.h) and totals.
 *
 * Layer: check.  Reads only; takes any bytes (fuzzed files, a half-written
 * crash) and never follows an offset it has not bounded first: every chunk
 * is visited in address order below the top, and a bin link is followed only
 * once it is known to be one of the free chunks found by that walk.  Every
 * walk is bounded by the number of chunks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

struct checker {
    bool live;              /* an open arena: the cache lists, not markers, say what is cached */
    const uint64_t *cached; /* sorted offsets of the chunks thread caches hold */
    size_t ncached;
    const char *base;
    const struct fmt_superblock *sb;
    uint64_t *free_offs; /* every free chunk but top, in address order */
    uint8_t *seen;       /* found in a bin (or as dv) */
    size_t nfree, cap;
    uint64_t salt;
    char *msg;
    size_t msg_len;
};

FM_PRINTF(2, 3) static int bad(struct checker *k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->msg, k->msg_len, fmt, ap);
    va_end(ap);
    return FM_ECORRUPT;
}

static uint64_t rd(const struct checker *k, uint64_t off)
{
    uint64_t v;
    memcpy(&v, k->base + off, sizeof v);
    return v;
}

static int push_free(struct checker *k, uint64_t c)
{
    if (k->nfree == k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 1024;
        uint64_t *n = realloc(k->free_offs, ncap * sizeof *n);
        if (!n)
            return ENOMEM;
        k->free_offs = n;
        k->cap = ncap;
    }
    k->free_offs[k->nfree++] = c;
    return 0;
}

/* Index of x in the sorted v[0..n), or -1. */
static long find_sorted(const uint64_t *v, size_t n, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && v[lo] == x ? (long)lo : -1;
}

/* Index of free chunk c in free_offs, or -1. */
static long find_free(const struct checker *k, uint64_t c)
{
    return find_sorted(k->free_offs, k->nfree, c);
}

/* Mark c as binned exactly once. */
static int claim(struct checker *k, uint64_t c, const char *where)
{
    long i = find_free(k, c);
    if (i < 0)
        return bad(k, "%s links offset %llu, which is not a free chunk", where,
                   (unsigned long long)c);
    if (k->seen[i])
        return bad(k, "free chunk %llu is linked twice (%s)", (unsigned long long)c, where);
    k->seen[i] = 1;
    return 0;
}

/* Is in-use chunk c held by a thread cache?  A live arena says so from its
 * cache lists: reading the marker word would race with the user writing
 * that word of a live block.  Recovery (single-threaded) reads markers. */
static bool is_cached(const struct checker *k, uint64_t c)
{
    if (!k->live)
        return ch_marked(k->base, c, k->salt);
    return find_sorted(k->cached, k->ncached, c) >= 0;
}

/* H1-H5: walk every chunk, gather the free ones and the totals. */
static int walk_chunks(struct checker *k, struct heap_totals *tot)
{
    const struct fmt_superblock *sb = k->sb;
    uint64_t top = sb->sb_top;
    bool prev_inuse = true;
    struct chunk_iter it;
    chunk_iter_init(&it, k->base, top);
    for (enum chunk_step step; (step = chunk_next(&it)) != CHUNK_END;) {
        uint64_t c = it.c, head = it.head, size = it.size;
        if (top - c < CH_MIN)
            return bad(k, "chunk at %llu overlaps the top", (unsigned long long)c);
        if (!ch_head_ok(c, head, k->salt))
            return bad(k, "chunk at %llu has a damaged header (tag 0x%04llx, expected 0x%04llx)",
                       (unsigned long long)c, (unsigned long long)(head >> CH_TAG_SHIFT),
                       (unsigned long long)ch_tag(c, head, k->salt));
        if (step == CHUNK_BAD)
            return bad(k, "chunk at %llu has impossible size %llu", (unsigned long long)c,
                       (unsigned long long)size);
        if (head & (CH_FLAGS & ~(uint64_t)(CH_PINUSE | CH_CINUSE | CH_PUNCHED)))
            return bad(k, "chunk at %llu has unknown flags 0x%llx", (unsigned long long)c,
                       (unsigned long long)(head & CH_FLAGS));
        if ((head & CH_CINUSE) && (head & CH_PUNCHED))
            return bad(k, "chunk at %llu is in use but flagged as punched", (unsigned long long)c);
        if (!!(head & CH_PINUSE) != prev_inuse)
            return bad(k, "chunk at %llu: PINUSE says %d, previous chunk is %s",
                       (unsigned long long)c, !!(head & CH_PINUSE),
                       prev_inuse ? "in use" : "free");
        if (head & CH_CINUSE) {
            if (is_cached(k, c)) {
                /* held by a thread cache: free to the user (tcache.h T1) */
                tot->cached_bytes += size;
                tot->cached_count++;
            } else {
                tot->alloc_bytes += size;
                tot->alloc_count++;
            }
            prev_inuse = true;
        } else {
            if (!prev_inuse)
                return bad(k, "adjacent free chunks at %llu", (unsigned long long)c);
            if (rd(k, c + size + F_PREVFOOT) != size)
                return bad(k, "free chunk at %llu: footer %llu != size %llu",
                           (unsigned long long)c,
                           (unsigned long long)rd(k, c + size + F_PREVFOOT),
                           (unsigned long long)size);
            if (push_free(k, c))
                return ENOMEM;
            tot->free_bytes += size;
            tot->free_count++;
            if (head & CH_PUNCHED)
                tot->punched_bytes += size;
            if (size > tot->largest_free)
                tot->largest_free = size;
            prev_inuse = false;
        }
    }
    uint64_t tsize = sb->sb_file_size - top;
    uint64_t thead = rd(k, top + F_HEAD);
    if (thead != ch_tagged(top, k->salt, tsize | CH_PINUSE | (thead & CH_PUNCHED)))
        return bad(k, "top at %llu: head 0x%llx, expected size %llu with PINUSE",
                   (unsigned long long)top, (unsigned long long)thead, (unsigned long long)tsize);
    if (!prev_inuse)
        return bad(k, "free chunk before the top at %llu", (unsigned long long)top);
    tot->top_size = tsize;
    tot->free_bytes += tsize;
    tot->free_count++;
    if (tsize > tot->largest_free)
        tot->largest_free = tsize;
    return 0;
}

/* H6, H7 for small bins. */
static int check_small_bins(struct checker *k)
{
    for (unsigned i = 0; i < FMT_NSMALLBINS; i++) {
        uint64_t c = k->sb->sb_smallbins[i], prev = 0;
        size_t n = 0;
        while (c) {
            char where[32];
            snprintf(where, sizeof where, "small bin %u", i);
            int err = claim(k, c, where);
            if (err)
                return err;
            if ((rd(k, c + F_HEAD) & CH_SIZE_MASK) != (uint64_t)i << 4)
                return bad(k, "chunk %llu of size %llu is in small bin %u", (unsigned long long)c,
                           (unsigned long long)(rd(k, c + F_HEAD) & CH_SIZE_MASK), i);
            if (rd(k, c + F_BK) != prev)
                return bad(k, "small bin %u: chunk %llu has bk %llu, expected %llu", i,
                           (unsigned long long)c, (unsigned long long)rd(k, c + F_BK),
                           (unsigned long long)prev);
            if (++n > k->nfree)
                return bad(k, "small bin %u has a cycle", i);
            prev = c;
            c = rd(k, c + F_FD);
        }
    }
    return 0;
}

/* H6, H8 for one trie node (and its same-size list), then its children. */
static int check_tree_node(struct checker *k, unsigned i, uint64_t t, uint64_t parent,
                           uint64_t path, unsigned depth)
{
    if (depth > 64)
        return bad(k, "tree bin %u deeper than 64", i);
    int err = claim(k, t, "a size trie");
    if (err)
        return err;
    uint64_t size = rd(k, t + F_HEAD) & CH_SIZE_MASK;
    if (is_small(size) || tree_index(size) != i)
        return bad(k, "chunk %llu of size %llu is in tree bin %u", (unsigned long long)t,
                   (unsigned long long)size, i);
    if (rd(k, t + F_INDEX) != (i | TREE_NODE_FLAG) || rd(k, t + F_PARENT) != parent ||
        rd(k, t + F_BK) != 0)
        return bad(k, "tree node %llu: index, parent or bk wrong", (unsigned long long)t);
    /* The node's key must start with the path that leads to it. */
    uint64_t key = size << tree_key_shift(i);
    if (depth && (key >> (64 - depth)) != path)
        return bad(k, "tree node %llu (size %llu) is off its path in bin %u",
                   (unsigned long long)t, (unsigned long long)size, i);
    uint64_t prev = t;
    for (uint64_t m = rd(k, t + F_FD); m; m = rd(k, m + F_FD)) {
        if ((err = claim(k, m, "a size list")))
            return err;
        if ((rd(k, m + F_HEAD) & CH_SIZE_MASK) != size || rd(k, m + F_BK) != prev ||
            rd(k, m + F_INDEX) != i)
            return bad(k, "size list of node %llu broken at %llu", (unsigned long long)t,
                       (unsigned long long)m);
        prev = m;
    }
    for (unsigned d = 0; d < 2; d++) {
        uint64_t c = rd(k, t + F_CHILD0 + 8u * d);
        if (c && (err = check_tree_node(k, i, c, t, (path << 1) | d, depth + 1)))
            return err;
    }
    return 0;
}

/* sb_shared, when set, names an allocated block that can hold the lock
 * (format.h): a chunk head that passes its tag is one the walk found. */
static int check_shared_block(struct checker *k)
{
    uint64_t p = k->sb->sb_shared, c = p - CH_PAYLOAD;
    uint64_t head = p % CH_ALIGN || p < FMT_HEAP_OFF + CH_PAYLOAD ||
                    p >= k->sb->sb_file_size ? 0 : rd(k, c + F_HEAD);
    if (!ch_head_ok(c, head, k->salt) || !(head & CH_CINUSE) ||
        (head & CH_SIZE_MASK) < sizeof(struct fmt_shared) + CH_OVERHEAD)
        return bad(k, "sb_shared %llu names no allocated block of %zu bytes",
                   (unsigned long long)p, sizeof(struct fmt_shared));
    return 0;
}

/* The whole check, for either kind of checker. */
static int check_all(struct checker k, uint64_t mapped_size, struct heap_totals *tot)
{
    const struct fmt_superblock *sb = k.sb;
    char *msg = k.msg;
    size_t msg_len = k.msg_len;
    memset(tot, 0, sizeof *tot);
    if (msg_len)
        msg[0] = 0;
    if (sb->sb_file_size > mapped_size)
        return bad(&k, "file size %llu beyond the %llu bytes mapped",
                   (unsigned long long)sb->sb_file_size, (unsigned long long)mapped_size);
    int err = fmt_check_heap_fields(sb, msg, msg_len);
    if (err)
        return err;
    if ((err = walk_chunks(&k, tot)))
        goto out;
    if (sb->sb_shared && (err = check_shared_block(&k)))
        goto out;
    k.seen = calloc(k.nfree ? k.nfree : 1, 1);
    if (!k.seen) {
        err = ENOMEM;
        goto out;
    }
    if (sb->sb_dv && (err = claim(&k, sb->sb_dv, "the designated victim")))
        goto out;
    if ((err = check_small_bins(&k)))
        goto out;
    for (unsigned i = 0; i < FMT_NTREEBINS; i++) {
        uint64_t root = sb->sb_treebins[i];
        if (root && (err = check_tree_node(&k, i, root, 0, 0, 0)))
            goto out;
    }
    for (size_t i = 0; i < k.nfree; i++)
        if (!k.seen[i]) {
            err = bad(&k, "free chunk %llu (size %llu) is in no bin",
                      (unsigned long long)k.free_offs[i],
                      (unsigned long long)(rd(&k, k.free_offs[i] + F_HEAD) & CH_SIZE_MASK));
            goto out;
        }
    if (tot->alloc_bytes + tot->cached_bytes + tot->free_bytes != sb->sb_file_size - FMT_HEAP_OFF)
        err = bad(&k, "chunk sizes add up to %llu, the heap has %llu",
                  (unsigned long long)(tot->alloc_bytes + tot->cached_bytes + tot->free_bytes),
                  (unsigned long long)(sb->sb_file_size - FMT_HEAP_OFF));
out:
    free(k.free_offs);
    free(k.seen);
    return err;
}

int heap_check(const char *base, uint64_t mapped_size, struct heap_totals *tot, char *msg,
               size_t msg_len)
{
    const struct fmt_superblock *sb = (const struct fmt_superblock *)(const void *)base;
    struct checker k = {.base = base, .sb = sb, .msg = msg, .msg_len = msg_len,
                        .salt = fmt_salt(sb)};
    return check_all(k, mapped_size, tot);
}

int heap_check_live(const char *base, uint64_t mapped_size, const uint64_t *cached,
                    size_t ncached, struct heap_totals *tot, char *msg, size_t msg_len)
{
    const struct fmt_superblock *sb = (const struct fmt_superblock *)(const void *)base;
    struct checker k = {.base = base, .sb = sb, .msg = msg, .msg_len = msg_len,
                        .salt = fmt_salt(sb), .live = true, .cached = cached,
                        .ncached = ncached};
    return check_all(k, mapped_size, tot);
}
