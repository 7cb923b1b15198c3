/*
 * arena_hash.h -- an arena's state as one number, written once (the
 * crash-point test and the power-loss simulator compare states by it).
 *
 * The hash covers the root region, every allocated block's offset, size
 * and bytes (through fm_walk: offsets, not addresses, since the mapping
 * moves between opens; cached blocks count as free), and the name
 * directory (every name and its offset, in table order).
 */
#ifndef FM_TEST_ARENA_HASH_H
#define FM_TEST_ARENA_HASH_H

#include <stdint.h>
#include <string.h>

#include "fmalloc.h"

struct arena_state {
    struct fm_info *fi;
    uint64_t hash;
    uint64_t blocks;
};

/* A word at a time, each mixed down as well as up: arenas hold megabytes
 * and a test hashes thousands of them (a byte-wise FNV took a third of the
 * power simulator's time). */
static inline uint64_t arena_fnv(const void *p, size_t n, uint64_t h)
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

static inline int arena_hash_block(void *p, size_t size, void *arg)
{
    struct arena_state *s = arg;
    uint64_t meta[2] = {fm_offset(s->fi, p), size};
    s->hash = arena_fnv(meta, sizeof meta, s->hash);
    s->hash = arena_fnv(p, size, s->hash);
    s->blocks++;
    return 0;
}

static inline int arena_hash_name(const char *name, fm_off_t off, void *arg)
{
    struct arena_state *s = arg;
    s->hash = arena_fnv(name, strlen(name) + 1, s->hash);
    s->hash = arena_fnv(&off, sizeof off, s->hash);
    return 0;
}

/* The state of fi; 0, or the error of fm_walk / fm_name_iterate. */
static inline int arena_hash(struct fm_info *fi, struct arena_state *s)
{
    *s = (struct arena_state){fi, 0xcbf29ce484222325ull, 0};
    s->hash = arena_fnv(fm_root(fi), fm_root_size(fi), s->hash);
    int err = fm_walk(fi, arena_hash_block, s);
    return err ? err : fm_name_iterate(fi, arena_hash_name, s);
}

#endif
