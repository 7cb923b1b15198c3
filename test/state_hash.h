/*
 * state_hash.h -- an arena's state as one hash, for tests that compare the
 * state after a crash with the states it may legitimately be in: every
 * live block's offset, size and bytes (fm_walk), the whole root region,
 * and every name with its offset.  Offsets, not addresses: the mapping
 * moves between opens.  (The crash-point and durable tests, and the
 * power-loss simulator, which hashes thousands of arenas.)
 */
#ifndef FM_TEST_STATE_HASH_H
#define FM_TEST_STATE_HASH_H

#include <stdint.h>
#include <string.h>

#include "fmalloc.h"
#include "harness.h"

/* A word at a time, each mixed down as well as up: arenas hold megabytes
 * (a byte-wise FNV took a third of the power simulator's time). */
static inline uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

struct snap {
    struct fm_info *fi;
    uint64_t hash; /* over every block's offset, size and bytes, and the root */
    uint64_t blocks;
};

static inline int snap_block(void *p, size_t size, void *arg)
{
    struct snap *s = arg;
    /* Offsets, not addresses: the mapping moves between opens. */
    uint64_t meta[2] = {fm_offset(s->fi, p), size};
    s->hash = fnv(meta, sizeof meta, s->hash);
    s->hash = fnv(p, size, s->hash);
    s->blocks++;
    return 0;
}

/* The name directory: every name and its offset, in table order. */
static inline int snap_name(const char *name, fm_off_t off, void *arg)
{
    struct snap *s = arg;
    s->hash = fnv(name, strlen(name) + 1, s->hash);
    s->hash = fnv(&off, sizeof off, s->hash);
    return 0;
}

/* The state of fi into *s: 0, or the error of fm_walk / fm_name_iterate. */
static inline int state_hash(struct fm_info *fi, struct snap *s)
{
    *s = (struct snap){fi, 0xcbf29ce484222325ull, 0};
    s->hash = fnv(fm_root(fi), fm_root_size(fi), s->hash);
    int err = fm_walk(fi, snap_block, s);
    return err ? err : fm_name_iterate(fi, snap_name, s);
}

/* The same, a failure counted as a failed check. */
static inline struct snap snapshot(struct fm_info *fi)
{
    struct snap s;
    expect_eq(state_hash(fi, &s), 0);
    return s;
}

#endif
