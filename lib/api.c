/*
 * api.c -- the public entry points.
 *
 * Layer: api.  Checks arguments, takes the arena lock, runs one heap
 * operation and then either commits its log (success) or rolls it back
 * (any failure, so a failed call leaves the heap exactly as it was).
 * Invalid pointers and corruption found during an operation go to the
 * arena's error handler after the lock is released.
 *
 * fork(): a handle the child inherited refuses every call but fm_close()
 * and the address helpers (fm_root, fm_offset, fm_pointer), before it
 * touches the arena lock or a thread cache (either may have been copied
 * held by a parent thread that does not exist in the child), and closing
 * it only unmaps: the file, its lock, its heap and the parent's caches
 * are the parent's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "bracket.h"
#include "error.h"
#include "names.h"
#include "op.h"
#include "target.h"

/* ---- fork ------------------------------------------------------------------ */

/* fm__forks_seen (arena.c) is bumped in each child once the first fm_open
 * has registered this handler. */
static pthread_once_t fork_watch_once = PTHREAD_ONCE_INIT;
static int fork_watch_err;

static void fork_counted(void)
{
    atomic_fetch_add_explicit(&fm__forks_seen, 1, memory_order_relaxed);
}

static void fork_watch(void)
{
    fork_watch_err = pthread_atfork(NULL, NULL, fork_counted);
}

/* ---- check messages ---------------------------------------------------------- */

/* a->check_msg is rewritten by every thread's next check: fm_check_message
 * hands each thread its own copy, taken under the lock, of the message its
 * last check (fm_check, fm_stats, fm_walk) of that arena left.  key names
 * the open it belongs to (check_key: never 0, never reused in the process). */
static atomic_uint_fast64_t check_keys;
static _Thread_local struct {
    uint64_t key;
    char msg[sizeof ((struct fm_arena *)0)->check_msg];
} my_check;

/* Keep this thread's copy of a's message (arena lock held). */
static void keep_check_msg(struct fm_arena *a)
{
    my_check.key = a->check_key;
    memcpy(my_check.msg, a->check_msg, sizeof my_check.msg);
}

/* ---- pointers -------------------------------------------------------------- */

/* Does p lie in the mapped file?  Its offset goes to *off. */
static bool in_arena(struct fm_arena *a, const void *p, uint64_t *off)
{
    uintptr_t b = (uintptr_t)a->base, q = (uintptr_t)p;
    *off = (uint64_t)(q - b);
    return q >= b && arena_covers(a, (uint64_t)(q - b));
}

/* Offset of a caller's pointer if it lies in the mapped file, else 0. */
static uint64_t offset_in(struct fm_arena *a, const void *p)
{
    uint64_t off;
    return in_arena(a, p, &off) ? off : 0;
}

/* Validate a block pointer (lock held): 0 or FM_EBADPTR with heap.msg set. */
static int block_of(struct fm_arena *a, const void *p, uint64_t *off)
{
    if (!in_arena(a, p, off)) {
        heap_failf(&a->heap, FM_EBADPTR, "pointer %p is outside the arena mapped at %p", p,
                   (void *)a->base);
        return FM_EBADPTR;
    }
    int err = heap_validate_block(&a->heap, *off);
    if (err)
        return err;
    /* fm_walk shows it, but it is the shared writers' lock: freeing it
     * would pull the lock from under every process of the set. */
    if (fm_unlikely(*off == a->heap.sb->sb_shared)) {
        heap_failf(&a->heap, FM_EBADPTR,
                   "pointer at offset %llu is the shared writers' lock block, not the caller's",
                   (unsigned long long)*off);
        return FM_EBADPTR;
    }
    /* A block holding its thread-cache marker was freed into a cache --
     * if a cache's list says so.  The lists are the truth: the marker lives
     * in bytes a user could have written (and so do the lists' links: a
     * damaged list is corruption, reported, not followed). */
    struct heap *h = &a->heap;
    uint64_t c = *off - CH_PAYLOAD;
    bool held = false;
    if (a->tc.caches && ch_size(h, c) <= CH_CACHE_MAX &&
        ch_marked(h->base, c, h->salt) &&
        (err = tc_holds(&a->tc, c, &held, h->msg, sizeof h->msg)) != 0) {
        heap_fail(h, err);
        return err;
    }
    if (held) {
        heap_failf(h, FM_EBADPTR,
                   "pointer at offset %llu (0x%llx) is not allocated (already freed, into a "
                   "thread cache)",
                   (unsigned long long)*off, (unsigned long long)*off);
        return FM_EBADPTR;
    }
    return 0;
}

/* Validate a link slot: 8-byte aligned, in the root region or the heap. */
static int slot_of(struct fm_arena *a, const fm_off_t *slot, uint64_t *off)
{
    *off = offset_in(a, slot);
    if (*off < FMT_ROOT_OFF || *off % 8 || *off + 8 > a->heap.sb->sb_file_size) {
        fm__set_last_error(EINVAL);
        return EINVAL;
    }
    return 0;
}

/* n * size, or false (ENOMEM recorded) when it overflows. */
static bool calloc_size(size_t n, size_t size, size_t *total)
{
    if (size && n > SIZE_MAX / size) {
        fm__set_last_error(ENOMEM);
        return false;
    }
    *total = n * size;
    return true;
}

static void *ptr_at(struct fm_arena *a, uint64_t off)
{
    return off ? a->base + off : NULL;
}

/* ---- open / close ---------------------------------------------------------- */

int fm_open(const char *path, const struct fm_options *opt, struct fm_info **out)
{
    struct fm_arena *a;
    if (!out) {
        fm__set_last_error(EINVAL);
        return EINVAL;
    }
    fm__set_last_error(0);
    pthread_once(&fork_watch_once, fork_watch);
    if (fork_watch_err) {
        fm__set_last_error(fork_watch_err);
        return fork_watch_err;
    }
    unsigned forks = atomic_load_explicit(&fm__forks_seen, memory_order_relaxed);
    int err = fm__arena_open(path, opt, fm__names_check_heap, &a); /* late failures set a detail */
    if (err) {
        if (fm_last_error() != err) /* an early failure: no detail to give */
            fm__set_last_error(err);
        return err;
    }
    a->forks = forks;
    a->check_key = atomic_fetch_add_explicit(&check_keys, 1, memory_order_relaxed) + 1;
    *out = &a->pub;
    return 0;
}

/* fm_open for the fmalloc-compatible API, which then targets the arena
 * (target.h). */
struct fm_info *fmalloc_init(const char *filepath, bool *init)
{
    struct fm_options o = {.flags = FM_CREATE};
    struct fm_info *fi;
    int err = fm_open(filepath, &o, &fi);
    if (err) {
        errno = fm__errno_of(err); /* fm_open kept the code and its detail */
        return NULL;
    }
    if (init)
        *init = arena_of(fi)->initialised;
    target_opened(fi);
    return fi;
}

int fm_close(struct fm_info *fi)
{
    if (!fi)
        return 0;
    struct fm_arena *a = arena_of(fi);
    target_forget(fi); /* no thread keeps it as its fmalloc target */
    if (arena_inherited(a)) { /* only this process's mapping and descriptor go */
        tc_forget(&a->tc);
        fm__arena_abandon(a);
        return 0;
    }
    tc_fini(&a->tc); /* a clean arena holds no cached blocks */
    return fm__arena_close(a);
}

/* fm_sync and fm_commit.  A durable commit reads every page the arena
 * wrote since the last one, so the thread caches' fast paths (which store
 * without the lock) are stopped as for a check. */
int fm_commit(struct fm_info *fi)
{
    struct fm_arena *a = arena_here(fi);
    if (!a)
        return fm_last_error();
    int err = lock_or_refuse(a);
    if (err)
        return err;
    if (a->durable)
        tc_lock_all(&a->tc);
    err = fm__arena_sync(a);
    if (a->durable)
        tc_unlock_all(&a->tc);
    arena_unlock(a);
    return err;
}

int fm_sync(struct fm_info *fi)
{
    return fm_commit(fi);
}

void fm_set_error_handler(struct fm_info *fi, fm_error_handler fn, void *arg)
{
    struct fm_arena *a = arena_here(fi);
    if (!a)
        return;
    /* The process's own lock even in a shared arena: the handler is ours. */
    pthread_mutex_lock(&a->lock);
    a->err_fn = fn;
    a->err_arg = arg;
    pthread_mutex_unlock(&a->lock);
}

/* ---- allocation ------------------------------------------------------------ */

void *fm_malloc(struct fm_info *fi, size_t size)
{
    struct fm_arena *a = writable(fi);
    if (!a)
        return NULL;
    void *fast = tc_malloc(&a->tc, size);
    if (fast)
        return fast;
    if (!locked_begin(a))
        return NULL;
    uint64_t p = heap_malloc(&a->heap, size);
    return locked_end(a, p != 0) ? NULL : ptr_at(a, p);
}

void *fm_calloc(struct fm_info *fi, size_t n, size_t size)
{
    size_t total;
    struct fm_arena *a = writable(fi);
    if (!a || !calloc_size(n, size, &total))
        return NULL;
    char *fast = tc_malloc(&a->tc, total);
    if (fast) {
        /* A cached block holds its list link, its marker and the bytes of
         * its last owner.  Our head's size is fixed while we hold the
         * block; a neighbour's free rewrites only its PINUSE, atomically. */
        uint64_t head = word_load(a->base, (uint64_t)(fast - a->base) - CH_PAYLOAD + F_HEAD);
        memset(fast, 0, (head & CH_SIZE_MASK) - CH_OVERHEAD);
        return fast;
    }
    if (!locked_begin(a))
        return NULL;
    uint64_t zero_from;
    uint64_t p = heap_malloc_fresh(&a->heap, total, &zero_from);
    /* Read the size under the lock: a neighbour's free rewrites our head. */
    size_t len = p ? heap_usable(&a->heap, p) : 0;
    if (locked_end(a, p != 0))
        return NULL;
    /* The block is ours now; memory fresh from growth is zero already. */
    if (zero_from < p + len)
        len = zero_from > p ? (size_t)(zero_from - p) : 0;
    memset(a->base + p, 0, len);
    return a->base + p;
}

void *fm_memalign(struct fm_info *fi, size_t alignment, size_t size)
{
    struct fm_arena *a = writable(fi);
    if (!a)
        return NULL;
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > ((size_t)1 << 30)) {
        fm__set_last_error(EINVAL);
        return NULL;
    }
    if (!locked_begin(a))
        return NULL;
    uint64_t p = heap_memalign(&a->heap, alignment, size);
    return locked_end(a, p != 0) ? NULL : ptr_at(a, p);
}

void fm_free(struct fm_info *fi, void *ptr)
{
    uint64_t p;
    if (!ptr)
        return;
    struct fm_arena *a = writable(fi);
    if (!a || tc_free(&a->tc, ptr))
        return;
    if (!locked_begin(a))
        return;
    if (block_of(a, ptr, &p) == 0)
        heap_free(&a->heap, p);
    locked_end(a, true);
}

void *fm_realloc(struct fm_info *fi, void *ptr, size_t size)
{
    uint64_t p;
    if (!ptr)
        return fm_malloc(fi, size);
    if (size == 0) {
        fm_free(fi, ptr);
        return NULL;
    }
    struct fm_arena *a = writable(fi);
    if (!a)
        return NULL;
    if (!locked_begin(a))
        return NULL;
    uint64_t q = block_of(a, ptr, &p) ? 0 : heap_realloc(&a->heap, p, size);
    return locked_end(a, q != 0) ? NULL : ptr_at(a, q);
}

size_t fm_usable_size(struct fm_info *fi, const void *ptr)
{
    uint64_t p;
    struct fm_arena *a = ptr ? arena_here(fi) : NULL;
    if (!a)
        return 0;
    if (arena_lock(a) != 0)
        return 0;
    size_t n = block_of(a, ptr, &p) ? 0 : heap_usable(&a->heap, p);
    a->heap.err = 0;
    arena_unlock(a);
    return n;
}

/* ---- allocate-and-link ----------------------------------------------------- */

void *fm_malloc_to(struct fm_info *fi, fm_off_t *slot, size_t size)
{
    uint64_t s;
    struct fm_arena *a = writable(fi);
    if (!a || slot_of(a, slot, &s))
        return NULL;
    if (!locked_begin(a))
        return NULL;
    uint64_t p = heap_malloc(&a->heap, size);
    if (p)
        hset(&a->heap, s, p);
    return locked_end(a, p != 0) ? NULL : ptr_at(a, p);
}

void *fm_calloc_to(struct fm_info *fi, fm_off_t *slot, size_t n, size_t size)
{
    uint64_t s;
    size_t total;
    struct fm_arena *a = writable(fi);
    if (!a || slot_of(a, slot, &s) || !calloc_size(n, size, &total))
        return NULL;
    if (!locked_begin(a))
        return NULL;
    uint64_t zero_from;
    uint64_t p = heap_malloc_fresh(&a->heap, total, &zero_from);
    if (p) {
        heap_zero_block(&a->heap, p, zero_from);
        hset(&a->heap, s, p);
    }
    return locked_end(a, p != 0) ? NULL : ptr_at(a, p);
}

/*
 * Free the block that the slot at offset s links, and clear the link (lock
 * held).  The slot is read here, under the lock: a thread that lost a race
 * to free it finds 0, and a cleared slot is a no-op.
 */
static void free_linked(struct fm_arena *a, uint64_t s)
{
    uint64_t p, linked = hw(&a->heap, s);
    if (linked && block_of(a, a->base + linked, &p) == 0) {
        /* Clear first: the slot may lie inside the block being freed. */
        hset(&a->heap, s, 0);
        heap_free(&a->heap, p);
    }
}

void fm_free_from(struct fm_info *fi, fm_off_t *slot)
{
    uint64_t s;
    struct fm_arena *a = writable(fi);
    if (!a || slot_of(a, slot, &s))
        return;
    if (!locked_begin(a))
        return;
    free_linked(a, s);
    locked_end(a, true);
}

void *fm_realloc_to(struct fm_info *fi, fm_off_t *slot, size_t size)
{
    uint64_t s, p;
    struct fm_arena *a = writable(fi);
    if (!a || slot_of(a, slot, &s))
        return NULL;
    if (!locked_begin(a))
        return NULL;
    /* What the slot links decides, read under the lock (see free_linked):
     * nothing -- fm_malloc_to; a block and size 0 -- fm_free_from. */
    uint64_t linked = hw(&a->heap, s), q = 0;
    if (linked && size == 0) {
        free_linked(a, s);
        locked_end(a, true);
        return NULL;
    }
    if (!linked)
        q = heap_malloc(&a->heap, size);
    else if (block_of(a, a->base + linked, &p) == 0) {
        if (s >= p && s < p + heap_usable(&a->heap, p))
            heap_fail(&a->heap, EINVAL); /* the link would move with the block */
        else
            q = heap_realloc(&a->heap, p, size);
    }
    if (q)
        hset(&a->heap, s, q);
    return locked_end(a, q != 0) ? NULL : ptr_at(a, q);
}

/* ---- addresses ------------------------------------------------------------- */

void *fm_root(struct fm_info *fi)
{
    return fi ? (char *)fi->mem + FMT_ROOT_OFF : NULL;
}

size_t fm_root_size(struct fm_info *fi)
{
    (void)fi;
    return FMT_ROOT_SIZE;
}

fm_off_t fm_offset(struct fm_info *fi, const void *p)
{
    return p && fi ? offset_in(arena_of(fi), p) : 0;
}

void *fm_pointer(struct fm_info *fi, fm_off_t off)
{
    if (!off || !fi)
        return NULL;
    struct fm_arena *a = arena_of(fi);
    return arena_covers(a, off) ? a->base + off : NULL;
}

/* ---- inspection ------------------------------------------------------------ */

/* Full check with the arena lock held; leaves every thread cache locked
 * (the caller unlocks them) so that what it counted stays true. */
static int check_locked(struct fm_arena *a, struct heap_totals *tot)
{
    uint64_t *cached;
    size_t n;
    tc_lock_all(&a->tc);
    int err = tc_collect(&a->tc, &cached, &n, a->check_msg, sizeof a->check_msg);
    if (!err)
        err = heap_check_live(a->base, a->heap.mapped_size, cached, n,
                              tot, a->check_msg, sizeof a->check_msg);
    free(cached);
    return err;
}

int fm_check(struct fm_info *fi)
{
    struct heap_totals tot;
    struct fm_arena *a = arena_here(fi);
    if (!a)
        return fm_last_error();
    int err = lock_or_refuse(a);
    if (err)
        return err;
    err = check_locked(a, &tot);
    if (!err)
        err = tc_verify(&a->tc, tot.cached_count, a->check_msg, sizeof a->check_msg);
    if (!err)
        err = fm__names_check(a, a->check_msg, sizeof a->check_msg);
    keep_check_msg(a);
    tc_unlock_all(&a->tc);
    arena_unlock(a);
    return err;
}

const char *fm_check_message(struct fm_info *fi)
{
    if (!fi)
        return fm_last_error_detail();
    struct fm_arena *a = arena_of(fi);
    if (my_check.key != a->check_key) {
        /* No check of this open by this thread: the arena's last message
         * (another thread's, or the open's).  Not in a forked child, where
         * the lock may have been copied held. */
        if (arena_inherited(a) || arena_lock(a) != 0)
            return "";
        keep_check_msg(a);
        arena_unlock(a);
    }
    return my_check.msg;
}

int fm_stats(struct fm_info *fi, struct fm_stats *st)
{
    struct heap_totals tot;
    struct fm_arena *a = st ? arena_here(fi) : NULL;
    if (!a)
        return st ? fm_last_error() : EINVAL;
    int err = lock_or_refuse(a);
    if (err)
        return err;
    err = check_locked(a, &tot);
    keep_check_msg(a);
    tc_unlock_all(&a->tc);
    const struct fmt_superblock *sb = a->heap.sb;
    memset(st, 0, sizeof *st);
    st->file_size = sb->sb_file_size;
    st->heap_size = sb->sb_file_size - FMT_HEAP_OFF;
    st->allocated_bytes = tot.alloc_bytes;
    st->allocated_count = tot.alloc_count;
    st->free_bytes = tot.free_bytes + tot.cached_bytes; /* cached blocks are free to the user */
    st->free_blocks = tot.free_count + tot.cached_count;
    st->largest_free = tot.largest_free;
    st->top_size = tot.top_size;
    st->punched_bytes = tot.punched_bytes;
    st->generation = sb->sb_generation;
    st->recovered = a->recovered;
    arena_unlock(a);
    return err;
}

int fm_walk(struct fm_info *fi, int (*fn)(void *p, size_t size, void *arg), void *arg)
{
    struct fm_arena *a = fn ? arena_here(fi) : NULL;
    if (!a)
        return fn ? fm_last_error() : EINVAL;
    struct heap *h = &a->heap;
    int ret = lock_or_refuse(a);
    if (ret)
        return ret;
    tc_lock_all(&a->tc);
    uint64_t *cached;
    size_t ncached, next_cached = 0;
    if ((ret = tc_collect(&a->tc, &cached, &ncached, a->check_msg, sizeof a->check_msg)) != 0) {
        keep_check_msg(a);
        tc_unlock_all(&a->tc);
        arena_unlock(a);
        return ret;
    }
    struct chunk_iter it;
    chunk_iter_init(&it, h->base, h->sb->sb_top);
    for (enum chunk_step step; !ret && (step = chunk_next(&it)) != CHUNK_END;) {
        if (step == CHUNK_BAD) {
            snprintf(a->check_msg, sizeof a->check_msg, "chunk at %llu has impossible size",
                     (unsigned long long)it.c);
            ret = FM_ECORRUPT;
            break;
        }
        /* the cached chunks come in address order, like the walk */
        while (next_cached < ncached && cached[next_cached] < it.c)
            next_cached++;
        bool is_cached = next_cached < ncached && cached[next_cached] == it.c;
        if ((it.head & CH_CINUSE) && !is_cached)
            ret = fn(a->base + it.c + CH_PAYLOAD, (size_t)(it.size - CH_OVERHEAD), arg);
    }
    free(cached);
    keep_check_msg(a);
    tc_unlock_all(&a->tc);
    arena_unlock(a);
    return ret;
}

int fm_trim(struct fm_info *fi, size_t pad)
{
    uint64_t new_size;
    struct fm_arena *a = writable(fi);
    if (!a)
        return fm_last_error();
    char why[sizeof a->heap.msg];
    int err = lock_or_refuse(a);
    if (err)
        return err;
    bool damaged = tc_flush_all(&a->tc, why, sizeof why); /* cached blocks coalesce first */
    op_begin(&a->heap);
    heap_trim(&a->heap, pad, a->page_size, &new_size);
    err = op_end(&a->heap, true);
    /* Still under the lock: nobody may carve the top before it shrinks.
     * Durable: the shrink commits first, with the caches stopped. */
    bool stop = !err && a->durable;
    if (stop)
        tc_lock_all(&a->tc);
    if (!err)
        err = fm__arena_shrink(a, new_size);
    if (stop)
        tc_unlock_all(&a->tc);
    arena_unlock(a);
    if (damaged)
        op_report(&a->heap, FM_ECORRUPT, why);
    return err;
}

