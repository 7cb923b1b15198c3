/*
 * heap.c -- chunks, small bins, the designated victim and the top chunk.
 *
 * Layer: heap.  Pure offset arithmetic on the mapping; every store to heap
 * metadata goes through hset() (the undo log), and nothing here commits.
 * Links read from the file are checked before they are followed, so a
 * damaged heap makes an operation fail with FM_ECORRUPT instead of making
 * it write somewhere it should not.  See heap.h for the invariants and
 * docs/design.md for the stores each operation makes.
 */
#include "heap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SB_OFF(field) ((uint64_t)offsetof(struct fmt_superblock, field))

/* ---- corruption reporting ----------------------------------------------- */

void heap_fail(struct heap *h, int err)
{
    if (!h->err)
        h->err = err; /* the first error is the one the operation reports */
}

void heap_failf(struct heap *h, int err, const char *fmt, ...)
{
    if (h->err)
        return;
    h->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->msg, sizeof h->msg, fmt, ap);
    va_end(ap);
}

/* May `c` be followed as a chunk offset (aligned, below the top)? */
static bool chunk_ok(struct heap *h, uint64_t c, const char *what)
{
    if (fm_likely(c >= FMT_HEAP_OFF && c % CH_ALIGN == 0 && c < h->sb->sb_top))
        return true;
    heap_failf(h, FM_ECORRUPT, "%s points to offset %llu, not a chunk in the heap", what,
                 (unsigned long long)c);
    return false;
}

/*
 * Before a free chunk found through a link (a bin, the designated victim, a
 * neighbour) is carved or merged: its header must belong at its offset, say
 * free, give a size that stays below the top, and be repeated in the next
 * chunk's prev_foot.  Checking the offset alone let a damaged size steer
 * the split's footer store outside the file.
 */
static bool free_chunk_ok(struct heap *h, uint64_t c, const char *what)
{
    if (!chunk_ok(h, c, what))
        return false;
    uint64_t head = ch_head(h, c), size = head & CH_SIZE_MASK, top = h->sb->sb_top;
    if (ch_tag_ok(h, c) && !(head & CH_CINUSE) && size >= CH_MIN && size <= top - c &&
        hw(h, c + size + F_PREVFOOT) == size)
        return true;
    heap_failf(h, FM_ECORRUPT, "%s: chunk %llu is not a sound free chunk (head 0x%llx)", what,
                 (unsigned long long)c, (unsigned long long)head);
    return false;
}

/* ---- FM_DEBUG >= 2: the poison of free chunks ---------------------------- */

/*
 * The bytes of a free chunk past its links (from F_INDEX + 8) are known to
 * be poison in one case only: the free that made the chunk poisoned all of
 * them -- it merged with no next chunk (whose old header and bytes would lie
 * inside), the chunk is not punched (holes read zero) and not the top.
 * heap_poison_freed remembers such a chunk until the heap next writes its
 * head, which every split, hand-out and merge into the chunk before it
 * does; a chunk merged into the one before it is no chunk start again
 * until a head is written there.  So while it is remembered no word of
 * the heap's lies in those bytes, and when it is handed out, a byte that is
 * not poison was written after its free.  A chunk the table does not hold
 * (a slot reused, a rollback, another open) is simply not checked.
 */
static struct heap_poisoned *poison_slot(struct heap *h, uint64_t c)
{
    return &h->poisoned[(c >> 4) % HEAP_POISON_SLOTS];
}

static void poison_forget(struct heap *h, uint64_t c)
{
    struct heap_poisoned *s = poison_slot(h, c);
    if (s->chunk == c)
        s->chunk = 0;
}

/* Free chunk c of `size` becomes a block of nb: check the poison of
 * [c + F_INDEX + 8, c + nb) if it is known. */
static void poison_check(struct heap *h, uint64_t c, uint64_t size, uint64_t nb)
{
    struct heap_poisoned *s = poison_slot(h, c);
    if (FM_DEBUG < 2 || s->chunk != c || s->size != size)
        return;
    s->chunk = 0;
    uint64_t from = c + F_INDEX + 8;
    uint64_t bad = nb > F_INDEX + 8 ? poison_find(h->base, from, c + nb - from) : 0;
    if (bad && !h->waf_block) {
        h->waf_block = c + CH_PAYLOAD;
        h->waf_byte = bad - h->waf_block;
    }
}

/* ---- header helpers ------------------------------------------------------ */

static void set_head(struct heap *h, uint64_t c, uint64_t head)
{
    if (FM_DEBUG >= 2)
        poison_forget(h, c);
    hset(h, c + F_HEAD, ch_tagged(c, h->salt, head));
}

/* A free chunk's size goes into the next chunk's prev_foot (and the next
 * chunk's offset into the caches' hint when the free chunk is big). */
static void set_foot(struct heap *h, uint64_t c, uint64_t size)
{
    uint64_t next = c + size;
    hset(h, next + F_PREVFOOT, size);
    _Atomic uint64_t *hint = heap_hint_slot(h, next);
    if (size >= CH_TREE_MIN)
        atomic_store_explicit(hint, next, memory_order_relaxed);
    else if (atomic_load_explicit(hint, memory_order_relaxed) == next)
        atomic_store_explicit(hint, 0, memory_order_relaxed);
}

static void set_pinuse(struct heap *h, uint64_t c, bool on)
{
    uint64_t hd = ch_head(h, c);
    set_head(h, c, on ? hd | CH_PINUSE : hd & ~(uint64_t)CH_PINUSE);
}

static uint64_t top_size(const struct heap *h)
{
    return h->sb->sb_file_size - h->sb->sb_top;
}

/*
 * Hole punching.  Invariant: only free chunks and the top carry CH_PUNCHED,
 * and a page of the file is a hole only inside such a chunk, at least
 * CH_PUNCH_KEEP bytes past its start and before its end.  So before any byte
 * of a punched chunk is written -- it becomes in use, or a split writes a
 * new header inside it -- that range gets real blocks again (fill).  Filling
 * needs no undo; punching happens only after the operation commits, so a
 * rollback never finds user data punched away.
 */
static bool fill(struct heap *h, uint64_t off, uint64_t len)
{
    if (h->fill(h->ctx, off, len) == 0)
        return true;
    heap_fail(h, ENOMEM); /* a full disk: the allocation fails, the heap is intact */
    return false;
}

/* ---- small bins: NULL-terminated doubly-linked lists, LIFO --------------- */

static void small_insert(struct heap *h, uint64_t c, uint64_t size)
{
    unsigned i = small_index(size);
    uint64_t first = h->sb->sb_smallbins[i];
    hset(h, c + F_FD, first);
    hset(h, c + F_BK, 0);
    if (first)
        hset(h, first + F_BK, c);
    else
        log_set32(h->base, SB_OFF(sb_smallmap), h->sb->sb_smallmap | (1u << i));
    hset(h, SB_OFF(sb_smallbins) + 8u * i, c);
}

static void small_unlink(struct heap *h, uint64_t c, uint64_t size)
{
    unsigned i = small_index(size);
    uint64_t fd = hw(h, c + F_FD), bk = hw(h, c + F_BK);
    if ((fd && !chunk_ok(h, fd, "free-list fd")) || (bk && !chunk_ok(h, bk, "free-list bk")))
        return;
    if (bk) {
        if (hw(h, bk + F_FD) != c) {
            heap_failf(h, FM_ECORRUPT, "free list broken at chunk %llu", (unsigned long long)bk);
            return;
        }
        hset(h, bk + F_FD, fd);
    } else {
        if (h->sb->sb_smallbins[i] != c) {
            heap_failf(h, FM_ECORRUPT, "chunk %llu claims to head small bin %u", (unsigned long long)c, i);
            return;
        }
        hset(h, SB_OFF(sb_smallbins) + 8u * i, fd);
        if (!fd)
            log_set32(h->base, SB_OFF(sb_smallmap), h->sb->sb_smallmap & ~(1u << i));
    }
    if (fd)
        hset(h, fd + F_BK, bk);
}

void bin_insert(struct heap *h, uint64_t c, uint64_t size)
{
    if (is_small(size))
        small_insert(h, c, size);
    else
        tree_insert(h, c, size);
}

void bin_unlink(struct heap *h, uint64_t c, uint64_t size)
{
    if (is_small(size))
        small_unlink(h, c, size);
    else
        tree_unlink(h, c);
}

/* ---- carving --------------------------------------------------------------- */

/* Free, unlinked chunk c of `size` becomes in use whole. */
static void use_whole(struct heap *h, uint64_t c, uint64_t size)
{
    poison_check(h, c, size, size);
    if (ch_punched(h, c) && !fill(h, c, size))
        return;
    set_head(h, c, size | CH_PINUSE | CH_CINUSE);
    set_pinuse(h, c + size, true);
}

/*
 * Free, unlinked chunk c of `size` becomes an in-use chunk of nb; returns
 * the free remainder (not in any bin yet), or 0 when it was too small to
 * split and c was used whole.
 */
static uint64_t split(struct heap *h, uint64_t c, uint64_t size, uint64_t nb)
{
    uint64_t rsize = size - nb;
    if (rsize < CH_MIN) {
        use_whole(h, c, size);
        return 0;
    }
    poison_check(h, c, size, nb);
    uint64_t punched = ch_punched(h, c);
    if (punched && !fill(h, c, nb + CH_PUNCH_KEEP)) /* the block and r's header */
        return 0;
    set_head(h, c, nb | CH_PINUSE | CH_CINUSE);
    uint64_t r = c + nb;
    set_head(h, r, rsize | CH_PINUSE | punched);
    set_foot(h, r, rsize);
    return r;
}

/* Make r (free, in no bin) the designated victim, binning the old one. */
static void replace_dv(struct heap *h, uint64_t r)
{
    uint64_t old = h->sb->sb_dv;
    if (old)
        bin_insert(h, old, ch_size(h, old));
    hset(h, SB_OFF(sb_dv), r);
}

/* Carve nb from the designated victim (the caller checked it fits). */
static uint64_t carve_dv(struct heap *h, uint64_t nb)
{
    uint64_t dv = h->sb->sb_dv;
    if (!free_chunk_ok(h, dv, "designated victim"))
        return 0;
    uint64_t r = split(h, dv, ch_size(h, dv), nb);
    hset(h, SB_OFF(sb_dv), r);
    return dv;
}

/* Make the top at least `want` bytes, growing the file if needed. */
static int top_reserve(struct heap *h, uint64_t want)
{
    uint64_t tsize = top_size(h);
    if (tsize >= want)
        return 0;
    uint64_t top = h->sb->sb_top, new_size;
    if (want > UINT64_MAX - top || h->grow(h->ctx, top + want, &new_size) != 0) {
        heap_fail(h, ENOMEM);
        return -1;
    }
    h->mapped_size = new_size > h->mapped_size ? new_size : h->mapped_size;
    hset(h, SB_OFF(sb_file_size), new_size);
    set_head(h, top, (new_size - top) | CH_PINUSE | ch_punched(h, top));
    return 0;
}

/* Carve [top, top+nb) out of the top (which has room); the rest stays top. */
static void take_from_top(struct heap *h, uint64_t c, uint64_t nb, uint64_t head_flags)
{
    uint64_t top = h->sb->sb_top;
    uint64_t punched = ch_punched(h, top);
    if (punched && !fill(h, top, c + nb + CH_PUNCH_KEEP - top))
        return;
    uint64_t rest = top_size(h) - (c + nb - top);
    set_head(h, c, nb | head_flags | CH_CINUSE);
    set_head(h, c + nb, rest | CH_PINUSE | punched);
    hset(h, SB_OFF(sb_top), c + nb);
    if (h->fresh < c + nb + CH_PAYLOAD)
        h->fresh = c + nb + CH_PAYLOAD;
}

static uint64_t alloc_from_top(struct heap *h, uint64_t nb, uint64_t *zero_from)
{
    if (top_reserve(h, nb + CH_MIN) != 0)
        return 0;
    uint64_t top = h->sb->sb_top;
    /* Everything at or above h->fresh is still zero from the file's growth. */
    *zero_from = top + CH_PAYLOAD > h->fresh ? top + CH_PAYLOAD : h->fresh;
    take_from_top(h, top, nb, CH_PINUSE);
    return h->err ? 0 : top;
}

/* Take the first chunk of small bin i and make it in use (size i*16). */
static uint64_t take_small(struct heap *h, unsigned i)
{
    uint64_t c = h->sb->sb_smallbins[i];
    uint64_t size = (uint64_t)i << 4;
    if (!free_chunk_ok(h, c, "small bin head"))
        return 0;
    if (ch_size(h, c) != size || ch_cinuse(h, c)) {
        heap_failf(h, FM_ECORRUPT, "chunk %llu in small bin %u has head 0x%llx", (unsigned long long)c, i,
                     (unsigned long long)ch_head(h, c));
        return 0;
    }
    small_unlink(h, c, size);
    return c;
}

static uint32_t bits_above(uint32_t map, unsigned i)
{
    return i >= 31 ? 0 : map & ~((2u << i) - 1);
}

/* A free chunk of at least nb for a small request, or 0 (then use the top). */
static uint64_t alloc_small(struct heap *h, uint64_t nb)
{
    struct fmt_superblock *sb = h->sb;
    unsigned i = small_index(nb);
    uint32_t bits = sb->sb_smallmap >> i;
    if (bits & 3) { /* exact fit, or 16 more: too little left to split */
        i += !(bits & 1);
        uint64_t c = take_small(h, i);
        if (c)
            use_whole(h, c, (uint64_t)i << 4);
        return c;
    }
    if (sb->sb_dv && ch_size(h, sb->sb_dv) >= nb)
        return carve_dv(h, nb);
    uint64_t c = 0, size = 0;
    uint32_t above = bits_above(sb->sb_smallmap, i);
    if (above) {
        unsigned j = (unsigned)__builtin_ctz(above);
        c = take_small(h, j);
        size = (uint64_t)j << 4;
    } else if (sb->sb_treemap) {
        c = tree_best_fit(h, nb);
        if (c && !free_chunk_ok(h, c, "tree bin"))
            return 0;
        if (c) {
            size = ch_size(h, c);
            tree_unlink(h, c);
        }
    }
    if (!c || h->err)
        return 0;
    uint64_t r = split(h, c, size, nb);
    if (r)
        replace_dv(h, r);
    return c;
}

static uint64_t alloc_large(struct heap *h, uint64_t nb)
{
    struct fmt_superblock *sb = h->sb;
    uint64_t dvsize = sb->sb_dv ? ch_size(h, sb->sb_dv) : 0;
    uint64_t c = sb->sb_treemap ? tree_best_fit(h, nb) : 0;
    if (h->err || (c && !free_chunk_ok(h, c, "tree bin")))
        return 0;
    if (c) {
        uint64_t size = ch_size(h, c);
        if (!(dvsize >= nb && dvsize <= size)) {
            tree_unlink(h, c);
            uint64_t r = split(h, c, size, nb);
            if (r)
                bin_insert(h, r, size - nb);
            return c;
        }
    }
    if (dvsize >= nb)
        return carve_dv(h, nb);
    return 0;
}

/* A chunk start handed out may hold a stale thread-cache marker (from a
 * cached block that was freed and merged): clear it, logged (T1). */
static void unmark(struct heap *h, uint64_t c)
{
    if (ch_marked(h->base, c, h->salt))
        hset(h, c + CH_MARKER_OFF, 0);
}

/* An in-use chunk of at least nb (headers written, logged), or 0. */
static uint64_t alloc_chunk(struct heap *h, uint64_t nb, uint64_t *zero_from)
{
    *zero_from = UINT64_MAX; /* recycled memory: calloc must clear it all */
    uint64_t c = is_small(nb) ? alloc_small(h, nb) : alloc_large(h, nb);
    if (h->err)
        return 0;
    if (!c)
        c = alloc_from_top(h, nb, zero_from);
    if (c)
        unmark(h, c);
    return c;
}

uint64_t heap_take_binned(struct heap *h, uint64_t nb)
{
    unsigned i = small_index(nb);
    if (!is_small(nb) || !((h->sb->sb_smallmap >> i) & 3))
        return 0;
    i += !((h->sb->sb_smallmap >> i) & 1);
    uint64_t c = take_small(h, i);
    if (c) {
        use_whole(h, c, (uint64_t)i << 4);
        unmark(h, c);
    }
    return c && !h->err ? c + CH_PAYLOAD : 0;
}

/*
 * Carve up to kmax in-use chunks of nb, side by side, from the start of the
 * free chunk (or top) at x, without growing the file.  A thread cache's
 * refill calls it right after heap_malloc(nb) with x just past that block:
 * the heap's own placement chose the spot, and the cache takes a few more
 * blocks from the same place, so that one thread's blocks share cache lines
 * with each other rather than with another thread's.  Returns how many it
 * carved (0 if x is not free or has no room); the chunks may hold stale
 * markers, which the caller overwrites.
 */
unsigned heap_extend_run(struct heap *h, uint64_t x, uint64_t nb, unsigned kmax)
{
    struct fmt_superblock *sb = h->sb;
    bool is_top = x == sb->sb_top;
    if (nb < CH_MIN || nb % CH_ALIGN || kmax == 0 || x < FMT_HEAP_OFF || x > sb->sb_top)
        return 0;
    if (!is_top && (ch_cinuse(h, x) || !free_chunk_ok(h, x, "run")))
        return 0;
    uint64_t size = is_top ? top_size(h) : ch_size(h, x);
    uint64_t room = is_top ? (size > CH_MIN ? size - CH_MIN : 0) : size;
    uint64_t k = room / nb < kmax ? room / nb : kmax;
    if (k && !is_top && size - k * nb && size - k * nb < CH_MIN)
        k--; /* no remainder too small to be a chunk */
    if (k == 0)
        return 0;
    uint64_t total = k * nb;
    if (is_top) {
        take_from_top(h, x, total, CH_PINUSE);
    } else if (x == sb->sb_dv) {
        carve_dv(h, total);
    } else {
        bin_unlink(h, x, size);
        uint64_t r = split(h, x, size, total);
        if (r)
            bin_insert(h, r, size - total);
    }
    if (h->err)
        return 0;
    for (uint64_t i = 0; i < k; i++)
        set_head(h, x + i * nb, nb | CH_PINUSE | CH_CINUSE);
    return h->err ? 0 : (unsigned)k;
}

uint64_t heap_malloc_fresh(struct heap *h, size_t n, uint64_t *zero_from)
{
    uint64_t nb = request_to_size(n);
    if (!nb) {
        heap_fail(h, ENOMEM);
        return 0;
    }
    uint64_t c = alloc_chunk(h, nb, zero_from);
    return c ? c + CH_PAYLOAD : 0;
}

uint64_t heap_malloc(struct heap *h, size_t n)
{
    uint64_t zero_from;
    return heap_malloc_fresh(h, n, &zero_from);
}

/* ---- free ------------------------------------------------------------------ */

int heap_validate_block(struct heap *h, uint64_t p)
{
    uint64_t top = h->sb->sb_top;
    const char *why = NULL;
    uint64_t c = p - CH_PAYLOAD;
    if (p >= top && p < h->sb->sb_file_size) {
        why = "lies in the free top of the heap (already freed?)";
    } else if (p < FMT_HEAP_OFF + CH_PAYLOAD || p >= top) {
        why = "is not inside the heap";
    } else if (p % CH_ALIGN) {
        why = "is misaligned (blocks are 16-byte aligned)";
    } else {
        uint64_t head = ch_head(h, c), size = head & CH_SIZE_MASK;
        bool sane = ch_tag_ok(h, c) && size >= CH_MIN && size <= top - c;
        if (!sane)
            why = "is not the start of a block";
        else if (!(head & CH_CINUSE))
            why = "is not allocated (already freed?)";
        else if (!ch_pinuse(h, c + size) || (c + size < top && !ch_tag_ok(h, c + size)))
            why = "is not the start of a block";
        else if (!(head & CH_PINUSE)) {
            uint64_t psize = hw(h, c + F_PREVFOOT);
            if (psize < CH_MIN || psize % CH_ALIGN || psize > c - FMT_HEAP_OFF ||
                ch_size(h, c - psize) != psize || ch_cinuse(h, c - psize))
                why = "is not the start of a block";
        }
    }
    if (!why)
        return 0;
    heap_failf(h, FM_EBADPTR, "pointer at offset %llu (0x%llx) %s", (unsigned long long)p,
              (unsigned long long)p, why);
    return FM_EBADPTR;
}

size_t heap_usable(const struct heap *h, uint64_t p)
{
    return (size_t)(ch_size(h, p - CH_PAYLOAD) - CH_OVERHEAD);
}

/* Unlink free chunk n (a neighbour being absorbed) from wherever it is. */
static void absorb_free(struct heap *h, uint64_t n, uint64_t nsize, bool *was_dv)
{
    if (n == h->sb->sb_dv)
        *was_dv = true;
    else
        bin_unlink(h, n, nsize);
}

/* FM_DEBUG >= 2: poison the freed block [freed, freed_end) once the free
 * commits (op_end), all but the words the free chunk m it now lies in uses:
 * m's head and the links up to F_INDEX (its foot lies at or past freed_end). */
static void poison_later(struct heap *h, uint64_t m, uint64_t freed, uint64_t freed_end)
{
    uint64_t from = freed + CH_PAYLOAD, keep = m + F_INDEX + 8;
    if (from < keep)
        from = keep;
    h->poison_chunk = m;
    h->poison_off = from;
    h->poison_len = from < freed_end ? freed_end - from : 0; /* 0: an earlier one is void */
}

void heap_poison_freed(struct heap *h)
{
    uint64_t m = h->poison_chunk, head = ch_head(h, m), size = head & CH_SIZE_MASK;
    uint64_t from = h->poison_off, end = from + h->poison_len;
    if ((head & (CH_CINUSE | CH_PUNCHED)) || from < m + F_INDEX + 8 || end > m + size)
        return;
    poison_fill(h->base, from, h->poison_len);
    if (from == m + F_INDEX + 8 && end == m + size && m != h->sb->sb_top) {
        struct heap_poisoned *s = poison_slot(h, m); /* all of it: poison_check */
        s->chunk = m;
        s->size = size;
    }
}

/* Free chunk c (validated, in use), coalescing with both neighbours. */
static void free_chunk(struct heap *h, uint64_t c)
{
    struct fmt_superblock *sb = h->sb;
    uint64_t head = ch_head(h, c);
    uint64_t size = head & CH_SIZE_MASK;
    uint64_t punched = 0; /* some part of the merged chunk may be holes */
    bool is_dv = false;
    uint64_t freed = c, freed_end = c + size; /* the block the user gave back */

    /* Clear CINUSE first, so a stale header inside a merged chunk never
     * passes for a live block (double-free detection relies on it). */
    set_head(h, c, head & ~(uint64_t)CH_CINUSE);
    if (!(head & CH_PINUSE)) {
        uint64_t psize = hw(h, c + F_PREVFOOT);
        uint64_t prev = c - psize;
        if (!chunk_ok(h, prev, "prev_foot") || ch_size(h, prev) != psize ||
            ch_cinuse(h, prev)) {
            heap_failf(h, FM_ECORRUPT, "chunk %llu: prev_foot %llu does not name a free chunk",
                         (unsigned long long)c, (unsigned long long)psize);
            return;
        }
        if (!free_chunk_ok(h, prev, "previous chunk"))
            return;
        punched |= ch_punched(h, prev);
        absorb_free(h, prev, psize, &is_dv);
        c = prev;
        size += psize;
    }
    uint64_t next = c + size;
    if (next == sb->sb_top) {
        /* Into the top: give the holes real blocks back, so the top stays
         * plain; only when that fails does the top carry the flag. */
        uint64_t top_flags = ch_punched(h, next);
        if (punched && h->fill(h->ctx, c, size) != 0)
            top_flags = CH_PUNCHED;
        uint64_t tsize = top_size(h) + size;
        hset(h, SB_OFF(sb_top), c);
        set_head(h, c, tsize | CH_PINUSE | top_flags);
        if (is_dv)
            hset(h, SB_OFF(sb_dv), 0);
        poison_later(h, c, freed, freed_end);
        return;
    }
    if (!chunk_ok(h, next, "chunk size"))
        return;
    if (!ch_cinuse(h, next)) {
        uint64_t nsize = ch_size(h, next);
        if (!free_chunk_ok(h, next, "next chunk"))
            return;
        punched |= ch_punched(h, next);
        absorb_free(h, next, nsize, &is_dv);
        size += nsize;
    } else {
        set_pinuse(h, next, false);
    }
    if (h->err)
        return;
    if (!is_dv && size >= CH_PUNCH_MIN) {
        /* Big enough to give its pages back once this operation commits. */
        punched = CH_PUNCHED;
        h->punch_off = c;
        h->punch_len = size;
    }
    set_head(h, c, size | CH_PINUSE | punched);
    set_foot(h, c, size);
    poison_later(h, c, freed, freed_end); /* not into holes: heap_poison_freed */
    if (is_dv)
        hset(h, SB_OFF(sb_dv), c);
    else
        bin_insert(h, c, size);
}

void heap_free(struct heap *h, uint64_t p)
{
    free_chunk(h, p - CH_PAYLOAD);
}

/* ---- writing into a new block inside the operation ------------------------ */

/*
 * A block just allocated may still hold, in its payload, the links and the
 * footer it had as a free chunk.  Before the operation writes user bytes
 * there (realloc's copy, calloc_to's zeroing), record those words so that a
 * rollback puts the free chunk back exactly.
 */
static void save_free_links(struct heap *h, uint64_t p)
{
    uint64_t usable = heap_usable(h, p);
    for (uint64_t off = 0; off < F_INDEX + 8 - CH_PAYLOAD && off < usable; off += 8)
        log_save(h->base, p + off);
    log_save(h->base, p + usable - 8); /* the old footer */
}

void heap_zero_block(struct heap *h, uint64_t p, uint64_t zero_from)
{
    uint64_t len = heap_usable(h, p);
    save_free_links(h, p);
    /* Memory fresh from growth is zero already. */
    if (zero_from < p + len)
        len = zero_from > p ? zero_from - p : 0;
    memset(h->base + p, 0, (size_t)len);
}

/* ---- realloc --------------------------------------------------------------- */

/* In-use chunk c of `size` keeps nb bytes; the tail (>= CH_MIN) is freed. */
static void shrink_chunk(struct heap *h, uint64_t c, uint64_t size, uint64_t nb)
{
    if (size - nb < CH_MIN)
        return;
    uint64_t pin = ch_head(h, c) & CH_PINUSE;
    set_head(h, c, nb | pin | CH_CINUSE);
    uint64_t r = c + nb;
    set_head(h, r, (size - nb) | CH_PINUSE | CH_CINUSE);
    free_chunk(h, r);
}

/* Try to grow in-use chunk c to nb in place; true if done. */
static bool grow_in_place(struct heap *h, uint64_t c, uint64_t size, uint64_t nb)
{
    struct fmt_superblock *sb = h->sb;
    uint64_t next = c + size;
    uint64_t pin = ch_head(h, c) & CH_PINUSE;
    if (next == sb->sb_top) {
        if (top_reserve(h, nb - size + CH_MIN) != 0)
            return false;
        take_from_top(h, c, nb, pin);
        return !h->err;
    }
    if (ch_cinuse(h, next))
        return false;
    uint64_t nsize = ch_size(h, next);
    if (size + nsize < nb)
        return false;
    if (!free_chunk_ok(h, next, "next chunk"))
        return false;
    /* Fill before anything changes, so that running out of disk here
     * leaves nothing half done (realloc then tries moving instead). */
    uint64_t punched = ch_punched(h, next);
    if (punched && !fill(h, next, nsize))
        return false;
    bool was_dv = false;
    absorb_free(h, next, nsize, &was_dv);
    if (was_dv)
        hset(h, SB_OFF(sb_dv), 0);
    uint64_t total = size + nsize;
    if (total - nb >= CH_MIN) {
        set_head(h, c, nb | pin | CH_CINUSE);
        uint64_t r = c + nb;
        set_head(h, r, (total - nb) | CH_PINUSE); /* filled above: no holes left */
        set_foot(h, r, total - nb);
        if (was_dv)
            hset(h, SB_OFF(sb_dv), r);
        else
            bin_insert(h, r, total - nb);
    } else {
        set_head(h, c, total | pin | CH_CINUSE);
        set_pinuse(h, c + total, true);
    }
    return true;
}

uint64_t heap_realloc(struct heap *h, uint64_t p, size_t n)
{
    uint64_t nb = request_to_size(n);
    if (!nb) {
        heap_fail(h, ENOMEM);
        return 0;
    }
    uint64_t c = p - CH_PAYLOAD;
    uint64_t size = ch_size(h, c);
    if (nb <= size) {
        shrink_chunk(h, c, size, nb);
        return h->err ? 0 : p;
    }
    if (grow_in_place(h, c, size, nb))
        return h->err ? 0 : p;
    if (h->err == ENOMEM)
        h->err = 0; /* the top could not grow: moving may still work */
    if (h->err)
        return 0;
    uint64_t q = heap_malloc(h, n);
    if (!q)
        return 0;
    uint64_t keep = size - CH_OVERHEAD;
    save_free_links(h, q);
    memcpy(h->base + q, h->base + p, (size_t)keep);
    free_chunk(h, c);
    return h->err ? 0 : q;
}

/* ---- memalign -------------------------------------------------------------- */

/* Where the chunk of an nb-byte block aligned to `alignment` would start in
 * a free chunk c of `size`, leaving before it nothing or a chunk of its
 * own (>= CH_MIN); 0 if it does not fit.  heap_memalign splits the same way. */
static uint64_t aligned_start(uint64_t c, uint64_t size, uint64_t nb, uint64_t alignment)
{
    uint64_t p = c + CH_PAYLOAD, ap = (p + alignment - 1) & ~(alignment - 1);
    if (ap != p && ap - p < CH_MIN)
        ap += alignment;
    uint64_t ac = ap - CH_PAYLOAD;
    return ac + nb <= c + size ? ac : 0;
}

/*
 * A free chunk already in a bin that holds an aligned block of nb, made in
 * use whole (heap_memalign gives back what lies around the block); 0 if
 * none of the 16 it tries does.  Asking the bins for nb + alignment, which
 * always fits, splits larger free chunks than needed, which later requests
 * then miss: the best fits for nb, nb + alignment/16, 2/16 .. 15/16 come
 * first (test_random's file ÷ peak live: 1.40 -> 1.31 on seed 1).
 * (alignment > CH_ALIGN, so each step is at least 2 bytes.)
 */
static uint64_t take_aligned_fit(struct heap *h, uint64_t nb, uint64_t alignment)
{
    struct fmt_superblock *sb = h->sb;
    for (uint64_t want = nb; want < nb + alignment; want += alignment / 16) {
        uint64_t c = 0;
        if (is_small(want)) {
            uint32_t at_least = sb->sb_smallmap & ~((1u << small_index(want)) - 1);
            if (at_least)
                c = sb->sb_smallbins[__builtin_ctz(at_least)];
        }
        if (!c && sb->sb_treemap)
            c = tree_best_fit(h, want);
        if (h->err || !c)
            return 0;
        if (!free_chunk_ok(h, c, "bin"))
            return 0;
        uint64_t size = ch_size(h, c);
        if (!aligned_start(c, size, nb, alignment))
            continue;
        bin_unlink(h, c, size);
        use_whole(h, c, size);
        if (h->err)
            return 0;
        unmark(h, c);
        return c;
    }
    return 0;
}

uint64_t heap_memalign(struct heap *h, size_t alignment, size_t n)
{
    if (alignment <= CH_ALIGN)
        return heap_malloc(h, n);
    uint64_t nb = request_to_size(n);
    if (!nb || nb > UINT64_MAX / 4 - alignment) {
        heap_fail(h, ENOMEM);
        return 0;
    }
    uint64_t zero_from;
    uint64_t c = take_aligned_fit(h, nb, alignment);
    if (!c && !h->err)
        c = alloc_chunk(h, nb + alignment + CH_MIN, &zero_from);
    if (!c)
        return 0;
    uint64_t size = ch_size(h, c);
    uint64_t p = c + CH_PAYLOAD;
    if (p % alignment) {
        uint64_t ap = (p + alignment - 1) & ~((uint64_t)alignment - 1);
        if (ap - p < CH_MIN)
            ap += alignment;
        uint64_t ac = ap - CH_PAYLOAD, lead = ac - c;
        /* Split off the leading part as an in-use chunk, then free it. */
        set_head(h, ac, (size - lead) | CH_PINUSE | CH_CINUSE);
        set_head(h, c, lead | (ch_head(h, c) & CH_PINUSE) | CH_CINUSE);
        free_chunk(h, c);
        c = ac;
        size -= lead;
        unmark(h, c);
    }
    shrink_chunk(h, c, size, nb);
    return h->err ? 0 : c + CH_PAYLOAD;
}

/* ---- trim ------------------------------------------------------------------ */

void heap_trim(struct heap *h, uint64_t pad, uint64_t page_size, uint64_t *new_file_size)
{
    struct fmt_superblock *sb = h->sb;
    uint64_t top = sb->sb_top;
    /* The file must keep a whole top chunk; beyond that, at most `pad`
     * free bytes stay at its end (rounded down to a page). */
    uint64_t least = (top + CH_MIN + page_size - 1) / page_size * page_size;
    uint64_t end = pad > sb->sb_file_size - top ? sb->sb_file_size : (top + pad) / page_size * page_size;
    if (end < least)
        end = least;
    if (end < FMT_MIN_FILE)
        end = FMT_MIN_FILE;
    *new_file_size = sb->sb_file_size;
    if (end >= sb->sb_file_size)
        return;
    set_head(h, top, (end - top) | CH_PINUSE | ch_punched(h, top));
    hset(h, SB_OFF(sb_file_size), end);
    *new_file_size = end;
}
