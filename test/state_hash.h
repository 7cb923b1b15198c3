/*
 * state_hash.h -- an arena's state as one hash, for tests that compare the
 * state after a crash with the states it may legitimately be in: every
 * live block's offset, size and bytes (fm_walk), the whole root region,
 * and every name with its offset.  Offsets, not addresses: the mapping
 * moves between opens.
 */
#ifndef FM_TEST_STATE_HASH_H
#define FM_TEST_STATE_HASH_H

#include <stdint.h>
#include <string.h>

#include "fmalloc.h"
#include "harness.h"

static inline uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
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

static inline struct snap snapshot(struct fm_info *fi)
{
    struct snap s = {fi, 0xcbf29ce484222325ull, 0};
    s.hash = fnv(fm_root(fi), fm_root_size(fi), s.hash);
    expect_eq(fm_walk(fi, snap_block, &s), 0);
    expect_eq(fm_name_iterate(fi, snap_name, &s), 0);
    return s;
}

#endif
