/*
 * heap.h -- the dlmalloc-style heap inside the arena.
 *
 * Layer: heap (no system calls; asks the arena to grow the file through
 * heap.grow).  Every metadata store goes through log_set(), so the caller
 * (api.c) brackets each operation with log_commit() or log_rollback().
 *
 * Glossary
 *   chunk     a run of the heap with a boundary tag (format.h); offsets are
 *             chunk offsets unless named `p`/`payload` (chunk + 16)
 *   small     chunk size < 512: exact-size bins, a LIFO list per size,
 *             sb_smallmap says which are non-empty
 *   tree      chunk size >= 512: 32 bins by size range, each a bitwise trie
 *             keyed on the size bits below the range; equal sizes hang off
 *             the trie node in a list (heap_tree.c)
 *   dv        designated victim: the remainder of the last split for a small
 *             request, kept out of the bins so consecutive small requests
 *             carve from one place
 *   top       the last chunk, never in a bin, always >= CH_MIN; growing the
 *             file grows it
 *
 * Invariants (fm_check verifies each):
 *   H1 chunks tile [heap_off, file_size) exactly; top is the last chunk
 *   H2 every size is a multiple of 16 and >= CH_MIN
 *   H3 PINUSE of a chunk == CINUSE of its predecessor; the first chunk has it
 *   H4 a free chunk's size is repeated in the next chunk's prev_foot
 *   H5 no two adjacent free chunks (top included)
 *   H6 every free chunk but dv and top is in exactly the bin its size names
 *   H7 bitmaps are set exactly for the non-empty bins
 *   H8 tries: parent/child links agree, each node lies on the path its size
 *      bits name, list members have the node's size
 */
#ifndef FM_HEAP_H
#define FM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "log.h"

#define HEAP_POISON_SLOTS 64 /* free chunks whose poison is known (FM_DEBUG >= 2) */
#define HEAP_HINT_SLOTS 16384 /* heap.after_big_free: 128 KiB an arena */

struct heap {
    char *base;                /* start of the mapping */
    struct fmt_superblock *sb; /* == base */
    /* Grow the file to at least min_size bytes; sets *new_size.  0 or errno. */
    int (*grow)(void *ctx, uint64_t min_size, uint64_t *new_size);
    /* Give [off, off+len) real blocks again (after hole punching).  0 or errno. */
    int (*fill)(void *ctx, uint64_t off, uint64_t len);
    /* Punch the whole pages inside free chunk [off, off+len), whose free
     * has committed (op.c calls it; the arena defers it to the next sync). */
    void (*punch)(void *ctx, uint64_t off, uint64_t len);
    /* Tell the arena's error handler (no lock held). */
    void (*report)(void *ctx, int err, const char *msg);
    void *ctx;                 /* the arena, for the four calls above */
    _Atomic uint64_t mapped_size; /* bytes of the file mapped (>= file_size); read unlocked */
    uint64_t salt;             /* chunk head tags (format.h) */
    /* Written by every locked operation: kept off the line above, which the
     * thread caches' fast paths read on every call. */
    _Alignas(64) uint64_t fresh; /* every byte of the file at or above is still zero */
    uint64_t punch_off, punch_len; /* free chunk to punch once the operation commits */
    uint64_t poison_chunk, poison_off, poison_len; /* FM_DEBUG >= 2: freed bytes
                                * to poison after the commit, in free chunk poison_chunk */
    int err;                   /* why the last failed operation failed */
    char msg[256];             /* and in words, for corruption/invalid pointers */
    /* FM_DEBUG >= 2 (heap.c, "the poison of free chunks"): free chunks
     * whose bytes past their links are all poison, by offset; and a write
     * after free found handing one out, for the handler once the lock is
     * released (op_take_notice; waf_block 0: none). */
    struct heap_poisoned {
        uint64_t chunk, size;
    } poisoned[HEAP_POISON_SLOTS];
    uint64_t waf_block, waf_byte;
    /* A hint for the thread caches' free (tcache.c, borders_big_free): offsets
     * of chunks that follow a free chunk of CH_TREE_MIN bytes or more,
     * direct-mapped by offset.  That size sits in the chunk's prev_foot,
     * but the word is user data once the chunk before is in use, and the
     * caches read without the lock; this table is only ever the heap's.
     * set_foot writes it under the lock.  An entry lost to a collision, or
     * stale after a rollback (which restores words, not this), only sends
     * one free down the other, equally correct, path; nothing else reads it. */
    _Alignas(64) _Atomic uint64_t after_big_free[HEAP_HINT_SLOTS];
};

static inline _Atomic uint64_t *heap_hint_slot(struct heap *h, uint64_t c)
{
    return &h->after_big_free[(c / CH_ALIGN) % HEAP_HINT_SLOTS];
}

/* Chunk fields, as offsets from the chunk */
#define F_PREVFOOT 0
#define F_HEAD 8
#define F_FD 16
#define F_BK 24
#define F_CHILD0 32
#define F_CHILD1 40
#define F_PARENT 48
#define F_INDEX 56
#define TREE_NODE_FLAG 0x100u /* in F_INDEX: this chunk is a trie node */

static inline uint64_t hw(const struct heap *h, uint64_t off)
{
    return word_load(h->base, off);
}
/* Record why the operation fails: the first error (and heap_failf's
 * message) is kept, later ones are consequences of it.  The one way the
 * heap and its callers set h->err. */
void heap_fail(struct heap *h, int err);
FM_PRINTF(3, 4) void heap_failf(struct heap *h, int err, const char *fmt, ...);
static inline void hset(struct heap *h, uint64_t off, uint64_t v)
{
    /* Last line of defence against a damaged heap: never store outside the
     * state part and the mapped file (the checks before it should catch
     * every such case with a better message). */
    if (fm_unlikely(off < FMT_STATE_CHECKED_OFF || off > h->mapped_size - 8)) {
        heap_failf(h, FM_ECORRUPT, "refused a store at offset %llu, outside the heap",
                  (unsigned long long)off);
        return;
    }
    log_set(h->base, off, v);
}

static inline uint64_t ch_head(const struct heap *h, uint64_t c) { return hw(h, c + F_HEAD); }
static inline uint64_t ch_size(const struct heap *h, uint64_t c) { return ch_head(h, c) & CH_SIZE_MASK; }
static inline bool ch_tag_ok(const struct heap *h, uint64_t c)
{
    return ch_head_ok(c, ch_head(h, c), h->salt);
}
static inline bool ch_cinuse(const struct heap *h, uint64_t c) { return ch_head(h, c) & CH_CINUSE; }
static inline bool ch_pinuse(const struct heap *h, uint64_t c) { return ch_head(h, c) & CH_PINUSE; }
static inline uint64_t ch_punched(const struct heap *h, uint64_t c) { return ch_head(h, c) & CH_PUNCHED; }

/* Does chunk c hold its thread-cache marker (T1, tcache.h)?  The one test
 * of the marker; whether a cache really lists c is tc_holds's question. */
static inline bool ch_marked(const char *base, uint64_t c, uint64_t salt)
{
    return word_load(base, c + CH_MARKER_OFF) == ch_cache_marker(c, salt);
}

/*
 * The one walk of the chunks below the top, for every reader of a heap
 * that may be damaged (the checker, fm_walk, the sweep of marked chunks,
 * fmtool, the tests): chunk_next steps to the next chunk and says
 *   CHUNK_NEXT  it->c is a chunk, it->head its head, it->size its size
 *               (>= CH_MIN, aligned, not past the top);
 *   CHUNK_END   the chunks end exactly at the top;
 *   CHUNK_BAD   it->c cannot be a chunk (it overlaps the top, or its size
 *               is impossible): corruption; the walk stops.
 * Bounded: every step advances at least CH_MIN bytes.  Reads only.
 */
enum chunk_step { CHUNK_END, CHUNK_NEXT, CHUNK_BAD };
struct chunk_iter {
    const char *base;
    uint64_t top, next;
    uint64_t c, head, size;
};
static inline void chunk_iter_init(struct chunk_iter *it, const char *base, uint64_t top)
{
    *it = (struct chunk_iter){.base = base, .top = top, .next = FMT_HEAP_OFF};
}
static inline enum chunk_step chunk_next(struct chunk_iter *it)
{
    uint64_t c = it->next;
    if (c >= it->top)
        return CHUNK_END;
    it->c = c;
    it->head = it->size = 0;
    if (it->top - c < CH_MIN)
        return CHUNK_BAD;
    it->head = word_load(it->base, c + F_HEAD);
    it->size = it->head & CH_SIZE_MASK;
    if (it->size < CH_MIN || it->size % CH_ALIGN || it->size > it->top - c)
        return CHUNK_BAD;
    it->next = c + it->size;
    return CHUNK_NEXT;
}
/*
 * FM_DEBUG >= 2: freed payloads are filled with FM_POISON once the free is
 * final (after its commit: a rollback must find the user's bytes intact),
 * and the poison is checked when the block is handed out again -- by a
 * thread cache, or by the heap for a free chunk whose poison it knows
 * (heap.c) -- so a write after free is reported (FM_ECORRUPT), not
 * inherited.  Only
 * words the allocator does not use are poisoned (not a free chunk's head,
 * links or foot; not a cached block's link and marker, T4).
 */
#define FM_POISON 0xdbu
#define FM_POISON_WORD 0xdbdbdbdbdbdbdbdbull
static inline void poison_fill(char *base, uint64_t off, uint64_t len)
{
    memset(base + off, FM_POISON, (size_t)len);
}
/* The first word of [off, off+len) (8-aligned) that is not poison, or 0. */
static inline uint64_t poison_find(const char *base, uint64_t off, uint64_t len)
{
    for (uint64_t o = off; o + 8 <= off + len; o += 8)
        if (word_load(base, o) != FM_POISON_WORD)
            return o;
    return 0;
}

static inline unsigned small_index(uint64_t size) { return (unsigned)(size >> 4); }
static inline bool is_small(uint64_t size) { return size < CH_TREE_MIN; }
unsigned tree_index(uint64_t size);
/* Left shift that brings the first size bit that steers the trie of bin i to bit 63. */
unsigned tree_key_shift(unsigned i);

/* Chunk size for a request: payload + 8, rounded to 16, at least CH_MIN.
 * Returns 0 if the request cannot be a chunk at all. */
static inline uint64_t request_to_size(size_t n)
{
    if (n > (1ull << 46)) /* a head holds sizes below 2^48 */
        return 0;
    uint64_t s = ((uint64_t)n + CH_OVERHEAD + CH_ALIGN - 1) & ~(uint64_t)(CH_ALIGN - 1);
    return s < CH_MIN ? CH_MIN : s;
}

/* Bins (heap.c / heap_tree.c) */
void bin_insert(struct heap *h, uint64_t c, uint64_t size);
void bin_unlink(struct heap *h, uint64_t c, uint64_t size);
void tree_insert(struct heap *h, uint64_t c, uint64_t size);
void tree_unlink(struct heap *h, uint64_t c);
/* Smallest chunk >= nb in the tree bins, 0 if none. */
uint64_t tree_best_fit(struct heap *h, uint64_t nb);

/* Operations: return a payload offset (0 on failure, reason in h->err).
 * None commits: the caller commits or rolls back the log. */
uint64_t heap_malloc(struct heap *h, size_t n);
/* heap_malloc that also says from where on the payload is already zero
 * (fresh from the file's growth): calloc clears only below *zero_from. */
uint64_t heap_malloc_fresh(struct heap *h, size_t n, uint64_t *zero_from);
uint64_t heap_memalign(struct heap *h, size_t alignment, size_t n);
/* A chunk of exactly small size nb (or 16 more) from a small bin, 0 if
 * those bins are empty: carves nothing new (thread-cache refills). */
uint64_t heap_take_binned(struct heap *h, uint64_t nb);
/* Up to kmax in-use chunks of size nb carved side by side from the start of
 * the free chunk or top at x (no growth); returns how many (thread caches). */
unsigned heap_extend_run(struct heap *h, uint64_t x, uint64_t nb, unsigned kmax);
/* Resize in place if possible, else allocate, copy, free.  0 on failure
 * (the old block is untouched once the caller rolls back). */
uint64_t heap_realloc(struct heap *h, uint64_t p, size_t n);
/* Zero a block heap_malloc just returned, inside the same operation (its
 * old free-chunk words are logged first, so a rollback restores them). */
void heap_zero_block(struct heap *h, uint64_t p, uint64_t zero_from);
/* Free a payload that heap_validate_block() accepted. */
void heap_free(struct heap *h, uint64_t p);
/* FM_DEBUG >= 2, after the commit: poison what the operation's last free
 * released, if it still lies in that free chunk (the operation may have
 * carved a new block from it after the free). */
void heap_poison_freed(struct heap *h);
/* Is p the payload of a live block?  0, or FM_EBADPTR with h->msg set. */
int heap_validate_block(struct heap *h, uint64_t p);
size_t heap_usable(const struct heap *h, uint64_t p);
/* Shrink the top so that at most `pad` free bytes (rounded down to a page;
 * never less than a minimal top, nor a file under FMT_MIN_FILE) end the
 * file; sets *new_file_size (the caller truncates after commit). */
void heap_trim(struct heap *h, uint64_t pad, uint64_t page_size, uint64_t *new_file_size);

/* check.c: whole-heap validation; 0 or FM_ECORRUPT with the reason in msg.
 * Reads only, bounds every walk: safe on any bytes. */
struct heap_totals {
    uint64_t alloc_bytes, alloc_count, free_bytes, free_count, largest_free, top_size;
    uint64_t punched_bytes; /* in free chunks flagged CH_PUNCHED */
    uint64_t cached_bytes, cached_count; /* in-use chunks held by thread caches */
};
int heap_check(const char *base, uint64_t mapped_size, struct heap_totals *tot, char *msg,
               size_t msg_len);
/* The same for an open arena: `cached` (sorted, ncached offsets) names the
 * chunks thread caches hold, instead of reading their markers. */
int heap_check_live(const char *base, uint64_t mapped_size, const uint64_t *cached,
                    size_t ncached, struct heap_totals *tot, char *msg, size_t msg_len);

#endif
