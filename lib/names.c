/*
 * names.c -- the name directory: a hash table of names in the heap.
 *
 * Layer: api.  Every change (bind, unbind, a bigger table) runs inside one
 * operation of api.c's bracket, so it is undo-logged like a heap operation
 * and a crash at any step rolls it back.  Blocks this operation allocates
 * (a new entry, a new table) are filled with unlogged stores: if the
 * operation rolls back they are free space again and their bytes do not
 * matter (heap_zero_block saves the free-chunk links they overwrite).
 * Stores into blocks that existed before (slots, counts, sb_names) go
 * through hset.  The file is untrusted: every offset read from the
 * directory is bounds-checked before use, and damage is FM_ECORRUPT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "arena.h"
#include "bracket.h"
#include "error.h"
#include "names.h"

#define NT_HDR offsetof(struct fmt_names_table, nt_slots)
#define NT_(f) offsetof(struct fmt_names_table, f)
#define NE_HDR offsetof(struct fmt_name_entry, ne_name)
#define NE_(f) offsetof(struct fmt_name_entry, f)
#define SB_NAMES offsetof(struct fmt_superblock, sb_names)
#define NT_MAX_SLOTS (1ull << 32)

/* ---- names ------------------------------------------------------------------ */

static bool name_byte_ok(unsigned char c)
{
    return c >= 0x20 && c != 0x7f;
}

/* 1..FM_NAME_MAX allowed bytes; its length goes to *len. */
static bool name_ok(const char *name, size_t *len)
{
    if (!name)
        return false;
    size_t n = 0;
    for (; name[n]; n++)
        if (n == FM_NAME_MAX || !name_byte_ok((unsigned char)name[n]))
            return false;
    *len = n;
    return n > 0;
}

/* ---- reading the directory -------------------------------------------------- */

struct dir {
    struct heap *h;
    uint64_t tbl;    /* table block, 0 if none */
    uint64_t nslots;
};

/* Where a name is, or would go. */
struct probe {
    uint64_t slot;   /* offset of the slot: the match, or the first free one */
    uint64_t entry;  /* the matching entry, 0 if none */
    bool empty;      /* slot was never used (not a tombstone) */
};

static int corrupt(struct heap *h, const char *what, uint64_t off)
{
    heap_failf(h, FM_ECORRUPT, "name directory: %s (offset %llu)", what, (unsigned long long)off);
    return FM_ECORRUPT;
}

/* [off, off + len) lies in the heap, 8-byte aligned. */
static bool span_ok(const struct heap *h, uint64_t off, uint64_t len)
{
    uint64_t end = h->sb->sb_file_size;
    return off >= FMT_HEAP_OFF && off % 8 == 0 && len <= end && off <= end - len;
}

static int dir_open(struct heap *h, struct dir *d)
{
    d->h = h;
    d->tbl = h->sb->sb_names;
    d->nslots = 0;
    if (!d->tbl)
        return 0;
    if (!span_ok(h, d->tbl, NT_HDR) || hw(h, d->tbl + NT_(nt_magic)) != FMT_NAMES_MAGIC)
        return corrupt(h, "no table where sb_names points", d->tbl);
    uint64_t n = hw(h, d->tbl + NT_(nt_nslots));
    if (n < FMT_NAMES_MIN_SLOTS || n > NT_MAX_SLOTS || (n & (n - 1)) ||
        !span_ok(h, d->tbl, NT_HDR + 8 * n))
        return corrupt(h, "impossible slot count", d->tbl);
    d->nslots = n;
    return 0;
}

/* Entry e is a readable entry; its name is valid. */
static int entry_check(struct heap *h, uint64_t e)
{
    if (!span_ok(h, e, NE_HDR))
        return corrupt(h, "entry outside the heap", e);
    uint64_t len = hw(h, e + NE_(ne_len));
    if (len == 0 || len > FM_NAME_MAX || !span_ok(h, e, (NE_HDR + len + 8) & ~7ull))
        return corrupt(h, "entry with an impossible name length", e);
    const char *name = h->base + e + NE_HDR;
    if (name[len] != 0)
        return corrupt(h, "entry name not terminated", e);
    for (uint64_t i = 0; i < len; i++)
        if (!name_byte_ok((unsigned char)name[i]))
            return corrupt(h, "entry name with a control byte", e);
    return 0;
}

static int dir_find(const struct dir *d, const char *name, size_t len, uint64_t hash,
                    struct probe *pr)
{
    struct heap *h = d->h;
    uint64_t mask = d->nslots - 1;
    pr->slot = 0;
    pr->entry = 0;
    pr->empty = false;
    for (uint64_t i = 0, k = hash & mask; i < d->nslots; i++, k = (k + 1) & mask) {
        uint64_t s = d->tbl + NT_HDR + 8 * k, e = hw(h, s);
        if (e == 0 || e == FMT_NAMES_TOMB) {
            if (!pr->slot) {
                pr->slot = s;
                pr->empty = e == 0;
            }
            if (e == 0)
                return 0;
            continue;
        }
        int err = entry_check(h, e);
        if (err)
            return err;
        if (hw(h, e + NE_(ne_hash)) == hash && hw(h, e + NE_(ne_len)) == len &&
            memcmp(h->base + e + NE_HDR, name, len) == 0) {
            pr->slot = s;
            pr->entry = e;
            return 0;
        }
    }
    return 0;
}

/* ---- changing it (inside an operation) -------------------------------------- */

/* A fresh zeroed block of n bytes, or 0 (h->err, or ENOMEM). */
static uint64_t fresh_block(struct heap *h, size_t n)
{
    uint64_t zero_from;
    uint64_t p = heap_malloc_fresh(h, n, &zero_from);
    if (p)
        heap_zero_block(h, p, zero_from);
    else
        heap_fail(h, ENOMEM);
    return p;
}

/* A table with room for `count` more than now, at most half full; the
 * live entries move over, sb_names switches to it, the old one is freed. */
static int dir_rebuild(struct dir *d, uint64_t count)
{
    struct heap *h = d->h;
    uint64_t n = FMT_NAMES_MIN_SLOTS;
    while (n < 2 * (count + 1))
        n *= 2;
    if (n > NT_MAX_SLOTS)
        return heap_fail(h, ENOMEM), h->err;
    uint64_t t = fresh_block(h, NT_HDR + 8 * n);
    if (!t)
        return h->err;
    char *b = h->base;
    word_store(b, t + NT_(nt_magic), FMT_NAMES_MAGIC);
    word_store(b, t + NT_(nt_nslots), n);
    uint64_t moved = 0;
    for (uint64_t i = 0; i < d->nslots; i++) {
        uint64_t e = hw(h, d->tbl + NT_HDR + 8 * i);
        if (e == 0 || e == FMT_NAMES_TOMB)
            continue;
        if (entry_check(h, e))
            return h->err;
        uint64_t k = hw(h, e + NE_(ne_hash)) & (n - 1);
        while (word_load(b, t + NT_HDR + 8 * k))
            k = (k + 1) & (n - 1);
        word_store(b, t + NT_HDR + 8 * k, e);
        moved++;
    }
    word_store(b, t + NT_(nt_count), moved);
    word_store(b, t + NT_(nt_used), moved);
    hset(h, SB_NAMES, t);
    if (d->tbl)
        heap_free(h, d->tbl);
    d->tbl = t;
    d->nslots = n;
    return h->err;
}

static int dir_bind(struct heap *h, const char *name, size_t len, uint64_t target)
{
    struct dir d;
    struct probe pr = {0, 0, false};
    uint64_t hash = XXH3_64bits(name, len);
    int err = dir_open(h, &d);
    if (!err && d.tbl)
        err = dir_find(&d, name, len, hash, &pr);
    if (err)
        return err;
    if (pr.entry)
        return heap_fail(h, EEXIST), h->err;
    uint64_t count = d.tbl ? hw(h, d.tbl + NT_(nt_count)) : 0;
    uint64_t used = d.tbl ? hw(h, d.tbl + NT_(nt_used)) : 0;
    if (!d.tbl || (pr.empty && (used + 1) * 4 > d.nslots * 3)) {
        if (dir_rebuild(&d, count) || dir_find(&d, name, len, hash, &pr))
            return h->err;
        used = count;
    }
    if (!pr.slot)
        return corrupt(h, "table full", d.tbl);

    uint64_t e = fresh_block(h, NE_HDR + len + 1);
    if (!e)
        return h->err;
    word_store(h->base, e + NE_(ne_target), target);
    word_store(h->base, e + NE_(ne_hash), hash);
    word_store(h->base, e + NE_(ne_len), len);
    memcpy(h->base + e + NE_HDR, name, len);

    hset(h, pr.slot, e);
    hset(h, d.tbl + NT_(nt_count), count + 1);
    if (pr.empty)
        hset(h, d.tbl + NT_(nt_used), used + 1);
    return h->err;
}

static int dir_unbind(struct heap *h, const char *name, size_t len)
{
    struct dir d;
    struct probe pr = {0, 0, false};
    int err = dir_open(h, &d);
    if (!err && d.tbl)
        err = dir_find(&d, name, len, XXH3_64bits(name, len), &pr);
    if (err)
        return err;
    if (!pr.entry)
        return heap_fail(h, ENOENT), h->err;
    hset(h, pr.slot, FMT_NAMES_TOMB);
    hset(h, d.tbl + NT_(nt_count), hw(h, d.tbl + NT_(nt_count)) - 1);
    heap_free(h, pr.entry);
    return h->err;
}

/* ---- public entry points ------------------------------------------------------ */

/* Run one directory change as an operation; its error, recorded. */
static int name_op(struct fm_info *fi, const char *name, size_t *len, struct fm_arena **out)
{
    struct fm_arena *a = writable(fi);
    if (!a)
        return fm_last_error();
    if (!name_ok(name, len)) {
        fm__set_last_error(EINVAL);
        return EINVAL;
    }
    *out = a;
    if (!locked_begin(a))
        return fm_last_error();
    return 0;
}

int fm_name_bind(struct fm_info *fi, const char *name, fm_off_t off)
{
    struct fm_arena *a;
    size_t len;
    int err = name_op(fi, name, &len, &a);
    if (err)
        return err;
    if (off < FMT_ROOT_OFF || off >= a->heap.sb->sb_file_size)
        heap_fail(&a->heap, EINVAL);
    else
        dir_bind(&a->heap, name, len, off);
    return locked_end(a, true);
}

int fm_name_unbind(struct fm_info *fi, const char *name)
{
    struct fm_arena *a;
    size_t len;
    int err = name_op(fi, name, &len, &a);
    if (err)
        return err;
    dir_unbind(&a->heap, name, len);
    return locked_end(a, true);
}

void *fm_name_malloc(struct fm_info *fi, const char *name, size_t size)
{
    struct fm_arena *a;
    size_t len;
    if (name_op(fi, name, &len, &a))
        return NULL;
    struct heap *h = &a->heap;
    uint64_t p = fresh_block(h, size);
    if (p)
        dir_bind(h, name, len, p);
    return locked_end(a, p != 0) ? NULL : a->base + p;
}

int fm_name_lookup(struct fm_info *fi, const char *name, fm_off_t *off)
{
    size_t len;
    if (!fi || !off || !name_ok(name, &len)) {
        fm__set_last_error(EINVAL);
        return EINVAL;
    }
    struct fm_arena *a = arena_of(fi);
    struct heap *h = &a->heap;
    struct dir d;
    struct probe pr = {0, 0, false};
    int err = lock_or_refuse(a);
    if (err)
        return err;
    err = dir_open(h, &d);
    if (!err && d.tbl)
        err = dir_find(&d, name, len, XXH3_64bits(name, len), &pr);
    if (!err && pr.entry)
        *off = hw(h, pr.entry + NE_(ne_target));
    else if (!err)
        err = ENOENT;
    h->err = 0;
    arena_unlock(a);
    if (err)
        fm__set_last_error(err);
    return err;
}

int fm_name_iterate(struct fm_info *fi, int (*fn)(const char *name, fm_off_t off, void *arg),
                    void *arg)
{
    if (!fi || !fn) {
        fm__set_last_error(EINVAL);
        return EINVAL;
    }
    struct fm_arena *a = arena_of(fi);
    struct heap *h = &a->heap;
    struct dir d;
    int err = lock_or_refuse(a);
    if (err)
        return err;
    err = dir_open(h, &d);
    for (uint64_t i = 0; !err && i < d.nslots; i++) {
        uint64_t e = hw(h, d.tbl + NT_HDR + 8 * i);
        if (e == 0 || e == FMT_NAMES_TOMB)
            continue;
        err = entry_check(h, e);
        if (!err)
            err = fn(h->base + e + NE_HDR, hw(h, e + NE_(ne_target)), arg);
    }
    h->err = 0;
    arena_unlock(a);
    return err;
}

/* ---- fm_check's part ---------------------------------------------------------- */

/* Block p is allocated and holds at least `need` bytes. */
static int block_check(struct heap *h, uint64_t p, uint64_t need, const char *what)
{
    if (heap_validate_block(h, p))
        return corrupt(h, what, p);
    if (heap_usable(h, p) < need)
        return corrupt(h, "directory block smaller than its contents", p);
    return 0;
}

/* Every slot of the table: entries valid, findable, counted. */
static int check_slots(struct dir *d)
{
    struct heap *h = d->h;
    uint64_t count = 0, used = 0;
    for (uint64_t i = 0; i < d->nslots; i++) {
        uint64_t s = d->tbl + NT_HDR + 8 * i, e = hw(h, s);
        if (e == 0)
            continue;
        used++;
        if (e == FMT_NAMES_TOMB)
            continue;
        count++;
        if (entry_check(h, e))
            return h->err;
        uint64_t len = hw(h, e + NE_(ne_len));
        if (block_check(h, e, NE_HDR + len + 1, "entry is not an allocated block"))
            return h->err;
        const char *name = h->base + e + NE_HDR;
        if (hw(h, e + NE_(ne_hash)) != XXH3_64bits(name, len))
            return corrupt(h, "entry hash does not match its name", e);
        uint64_t t = hw(h, e + NE_(ne_target));
        if (t < FMT_ROOT_OFF || t >= h->sb->sb_file_size)
            return corrupt(h, "name bound outside the arena", e);
        struct probe pr;
        if (dir_find(d, name, len, XXH3_64bits(name, len), &pr))
            return h->err;
        if (pr.slot != s)
            return corrupt(h, "entry not reachable from its hash, or a name bound twice", e);
    }
    if (count != hw(h, d->tbl + NT_(nt_count)) || used != hw(h, d->tbl + NT_(nt_used)))
        return corrupt(h, "table counts disagree with its slots", d->tbl);
    if (used * 4 > d->nslots * 3)
        return corrupt(h, "table more than 3/4 full", d->tbl);
    return 0;
}

int fm__names_check_heap(struct heap *h, char *msg, size_t msg_len)
{
    struct dir d;
    int saved = h->err;
    h->err = 0; /* else the first error wins, and msg would be a stale one */
    int err = dir_open(h, &d);
    if (!err && d.tbl)
        err = block_check(h, d.tbl, NT_HDR + 8 * d.nslots, "table is not an allocated block");
    if (!err && d.tbl)
        err = check_slots(&d);
    if (err)
        snprintf(msg, msg_len, "%s", h->msg);
    h->err = saved;
    return err;
}

int fm__names_check(struct fm_arena *a, char *msg, size_t msg_len)
{
    return fm__names_check_heap(&a->heap, msg, msg_len);
}
