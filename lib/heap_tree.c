/*
 * heap_tree.c -- tree bins: best-fit lookup for chunks of 512 bytes and up.
 *
 * Layer: heap.  Each of the 32 tree bins covers a size range (half a power
 * of two; the last takes everything from 24 MiB up) and is a bitwise trie:
 * a node at depth d has size bits, read from the bin's first free bit
 * downwards, equal to the path that leads to it.  Only one chunk of each
 * size is a trie node (TREE_NODE_FLAG in F_INDEX); the others of that size
 * hang off it in a list through fd/bk.  Any node of a subtree may replace
 * its root (it shares the root's path), which keeps removal O(depth).
 * Depth is at most 64, so every walk is bounded even on a damaged file.
 */
#include "heap.h"

#include <stdio.h>

#define TB_OFF(i) ((uint64_t)offsetof(struct fmt_superblock, sb_treebins) + 8u * (i))
#define MAP_OFF   ((uint64_t)offsetof(struct fmt_superblock, sb_treemap))
#define MAX_DEPTH 66

unsigned tree_index(uint64_t size)
{
    uint64_t x = size >> 9;
    if (x == 0)
        return 0;
    unsigned k = 63u - (unsigned)__builtin_clzll(x);
    if (k >= 16)
        return FMT_NTREEBINS - 1;
    unsigned i = (k << 1) + (unsigned)((size >> (k + 8)) & 1);
    return i < FMT_NTREEBINS ? i : FMT_NTREEBINS - 1;
}

unsigned tree_key_shift(unsigned i)
{
    return i == FMT_NTREEBINS - 1 ? 0 : 56u - (i >> 1);
}

static uint64_t child(const struct heap *h, uint64_t t, unsigned d)
{
    return hw(h, t + F_CHILD0 + 8u * d);
}

/* A link read from a trie node may be followed only if it is a chunk. */
static bool link_ok(struct heap *h, uint64_t c)
{
    if (c >= FMT_HEAP_OFF && c % CH_ALIGN == 0 && c < h->sb->sb_top)
        return true;
    heap_failf(h, FM_ECORRUPT, "tree link to offset %llu is not a chunk", (unsigned long long)c);
    return false;
}

static void too_deep(struct heap *h)
{
    heap_failf(h, FM_ECORRUPT, "size trie deeper than %d: cycle or damage", MAX_DEPTH);
}

static void set_map_bit(struct heap *h, unsigned i, bool on)
{
    uint32_t map = h->sb->sb_treemap;
    log_set32(h->base, MAP_OFF, on ? map | (1u << i) : map & ~(1u << i));
}

void tree_insert(struct heap *h, uint64_t x, uint64_t size)
{
    unsigned i = tree_index(size);
    uint64_t t = h->sb->sb_treebins[i];
    if (!t) {
        hset(h, TB_OFF(i), x);
        set_map_bit(h, i, true);
        hset(h, x + F_PARENT, 0);
        goto new_node;
    }
    uint64_t key = size << tree_key_shift(i);
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        if (!link_ok(h, t))
            return;
        if (ch_size(h, t) == size) {
            /* Same size: join t's list right after t. */
            uint64_t f = hw(h, t + F_FD);
            if (f && !link_ok(h, f))
                return;
            hset(h, x + F_FD, f);
            hset(h, x + F_BK, t);
            hset(h, x + F_INDEX, i);
            if (f)
                hset(h, f + F_BK, x);
            hset(h, t + F_FD, x);
            return;
        }
        unsigned d = (unsigned)(key >> 63);
        key <<= 1;
        uint64_t c = child(h, t, d);
        if (!c) {
            hset(h, t + F_CHILD0 + 8u * d, x);
            hset(h, x + F_PARENT, t);
            goto new_node;
        }
        t = c;
    }
    too_deep(h);
    return;
new_node:
    hset(h, x + F_FD, 0);
    hset(h, x + F_BK, 0);
    hset(h, x + F_CHILD0, 0);
    hset(h, x + F_CHILD1, 0);
    hset(h, x + F_INDEX, i | TREE_NODE_FLAG);
}

/* Point whatever pointed at node x (its parent, or the bin) at r instead. */
static void replace_in_parent(struct heap *h, unsigned i, uint64_t parent, uint64_t x, uint64_t r)
{
    if (!parent) {
        hset(h, TB_OFF(i), r);
        if (!r)
            set_map_bit(h, i, false);
    } else if (child(h, parent, 0) == x) {
        hset(h, parent + F_CHILD0, r);
    } else if (child(h, parent, 1) == x) {
        hset(h, parent + F_CHILD1, r);
    } else {
        heap_failf(h, FM_ECORRUPT, "tree node %llu is not a child of its parent %llu",
                  (unsigned long long)x, (unsigned long long)parent);
    }
}

/* Node r takes over node x's children and parent. */
static void take_place(struct heap *h, unsigned i, uint64_t x, uint64_t r)
{
    uint64_t parent = hw(h, x + F_PARENT);
    uint64_t c0 = child(h, x, 0), c1 = child(h, x, 1);
    if ((parent && !link_ok(h, parent)) || (c0 && !link_ok(h, c0)) || (c1 && !link_ok(h, c1)))
        return;
    hset(h, r + F_CHILD0, c0);
    hset(h, r + F_CHILD1, c1);
    if (c0)
        hset(h, c0 + F_PARENT, r);
    if (c1)
        hset(h, c1 + F_PARENT, r);
    hset(h, r + F_PARENT, parent);
    hset(h, r + F_INDEX, i | TREE_NODE_FLAG);
    replace_in_parent(h, i, parent, x, r);
}

void tree_unlink(struct heap *h, uint64_t x)
{
    uint64_t idx = hw(h, x + F_INDEX);
    uint64_t fd = hw(h, x + F_FD), bk = hw(h, x + F_BK);
    if ((fd && !link_ok(h, fd)) || (bk && !link_ok(h, bk)))
        return;
    if (!(idx & TREE_NODE_FLAG)) { /* a list member: bk is never 0 */
        if (!bk || hw(h, bk + F_FD) != x) {
            heap_failf(h, FM_ECORRUPT, "size list broken at chunk %llu", (unsigned long long)x);
            return;
        }
        hset(h, bk + F_FD, fd);
        if (fd)
            hset(h, fd + F_BK, bk);
        return;
    }
    unsigned i = (unsigned)(idx & 0xff);
    if (i >= FMT_NTREEBINS) {
        heap_failf(h, FM_ECORRUPT, "tree node %llu names bin %u", (unsigned long long)x, i);
        return;
    }
    if (fd) { /* promote the next chunk of the same size */
        hset(h, fd + F_BK, 0);
        take_place(h, i, x, fd);
        return;
    }
    uint64_t c0 = child(h, x, 0), c1 = child(h, x, 1);
    uint64_t parent = hw(h, x + F_PARENT);
    if ((parent && !link_ok(h, parent)) || (c0 && !link_ok(h, c0)) || (c1 && !link_ok(h, c1)))
        return;
    if (!c0 && !c1) {
        replace_in_parent(h, i, parent, x, 0);
        return;
    }
    /* Replace x by a leaf of its subtree. */
    uint64_t l = c1 ? c1 : c0;
    int depth = 0;
    for (;;) {
        if (!link_ok(h, l))
            return;
        uint64_t n1 = child(h, l, 1), n0 = child(h, l, 0);
        if (!n0 && !n1)
            break;
        l = n1 ? n1 : n0;
        if (++depth > MAX_DEPTH) {
            too_deep(h);
            return;
        }
    }
    uint64_t lp = hw(h, l + F_PARENT);
    if (!link_ok(h, lp))
        return;
    hset(h, lp + (child(h, lp, 0) == l ? F_CHILD0 : F_CHILD1), 0);
    take_place(h, i, x, l);
}

/* The smallest chunk in the subtree at t (walk the leftmost path). */
static uint64_t subtree_min(struct heap *h, uint64_t t)
{
    uint64_t best = t, bsize = ch_size(h, t);
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        uint64_t n = child(h, t, 0) ? child(h, t, 0) : child(h, t, 1);
        if (!n)
            return best;
        if (!link_ok(h, n))
            return 0;
        t = n;
        if (ch_size(h, t) < bsize) {
            best = t;
            bsize = ch_size(h, t);
        }
    }
    too_deep(h);
    return 0;
}

uint64_t tree_best_fit(struct heap *h, uint64_t nb)
{
    uint32_t map = h->sb->sb_treemap;
    unsigned next_bin = 0;
    if (!is_small(nb)) {
        unsigned i = tree_index(nb);
        next_bin = i + 1;
        uint64_t t = h->sb->sb_treebins[i];
        if (t) {
            uint64_t best = 0, bsize = UINT64_MAX, rst = 0;
            uint64_t key = nb << tree_key_shift(i);
            for (int depth = 0;; depth++) {
                if (depth > MAX_DEPTH) {
                    too_deep(h);
                    return 0;
                }
                if (!link_ok(h, t))
                    return 0;
                uint64_t s = ch_size(h, t);
                if (s >= nb && s < bsize) {
                    best = t;
                    bsize = s;
                    if (s == nb)
                        return best;
                }
                unsigned d = (unsigned)(key >> 63);
                key <<= 1;
                /* Where nb's bit is 0, the 1-side holds only larger sizes;
                 * the deepest such subtree holds the smallest of them. */
                uint64_t c1 = child(h, t, 1);
                if (d == 0 && c1)
                    rst = c1;
                t = child(h, t, d);
                if (!t)
                    break;
            }
            if (rst) {
                if (!link_ok(h, rst))
                    return 0;
                uint64_t m = subtree_min(h, rst);
                if (m && ch_size(h, m) < bsize)
                    best = m;
            }
            if (best || h->err)
                return best;
        }
    }
    if (next_bin >= FMT_NTREEBINS)
        return 0;
    uint32_t above = map & ~((1u << next_bin) - 1);
    if (!above)
        return 0;
    uint64_t root = h->sb->sb_treebins[__builtin_ctz(above)];
    return link_ok(h, root) ? subtree_min(h, root) : 0;
}
