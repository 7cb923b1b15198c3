/*
 * fuzz_ops_format.h -- the input language of fuzz_ops, shared with the
 * seed corpus generator (gen_corpus.c).
 *
 * An input is a sequence of operations, each an opcode byte (taken modulo
 * OP_COUNT) followed by its argument bytes:
 *
 *   OP_MALLOC      slot size2         fm_malloc into slot (freeing what it held)
 *   OP_CALLOC      slot n size2       fm_calloc(n % 17, size % 4096)
 *   OP_REALLOC     slot size2         fm_realloc (NULL slot: malloc; 0: free)
 *   OP_MEMALIGN    slot alog size2    fm_memalign(1 << (alog % 17), size)
 *   OP_FREE        slot               fm_free
 *   OP_MALLOC_TO   slot size2         fm_malloc_to(root word slot)
 *   OP_FREE_FROM   slot               fm_free_from(root word slot)
 *   OP_REALLOC_TO  slot size2         fm_realloc_to(root word slot)
 *   OP_REOPEN      how                close, (how & 1: read-only look), open
 *   OP_CHECK                          compare everything with the model
 *   OP_TRIM        pad                fm_trim(pad * 4096)
 *   OP_BAD_FREE    slot kind          an invalid free (kind % 4), must be reported
 *   OP_CRASH       kind slot size2 s0 s1
 *                                     linked op (kind % 3) in a child stopped at
 *                                     crash point 1 + s0 + 256 * (s1 % 4)
 *   OP_REWRITE     slot               write a new pattern into the block
 *   OP_TOO_BIG     how                an allocation that must fail cleanly
 *   OP_POKE        slot w v0..v7      store the 8 bytes v into word w % 4 of the
 *                                     block (user data the heap must not misread)
 *   OP_UAF_WRITE   slot w v0..v7      free the block (if thread-cached), then store
 *                                     v into its word w % 4: a write after free
 *
 * slot is taken modulo NSLOTS.  size2 is two bytes b0 b1: b0 >> 6 picks a
 * class -- 0: b1 % 64, 1: v % 512, 2: 512 + v, 3: v << 3 (v = (b0 & 63) << 8 | b1).
 */
#ifndef FM_FUZZ_OPS_FORMAT_H
#define FM_FUZZ_OPS_FORMAT_H

#define NSLOTS 32

enum op {
    OP_MALLOC,
    OP_CALLOC,
    OP_REALLOC,
    OP_MEMALIGN,
    OP_FREE,
    OP_MALLOC_TO,
    OP_FREE_FROM,
    OP_REALLOC_TO,
    OP_REOPEN,
    OP_CHECK,
    OP_TRIM,
    OP_BAD_FREE,
    OP_CRASH,
    OP_REWRITE,
    OP_TOO_BIG,
    OP_POKE,
    OP_UAF_WRITE,
    OP_COUNT
};

#endif
