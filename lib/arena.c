/*
 * arena.c -- opening, creating, recovering, growing and closing an arena.
 *
 * Layer: arena.  Order of trust at open: the file is locked, then its
 * header is read with pread (not mapped) and validated; only a valid
 * identity is mapped.  A dirty arena is recovered on a private
 * copy-on-write mapping first and verified with the full heap check; only
 * if that passes is the same rollback applied to the shared mapping, so a
 * file that cannot be recovered is refused byte-identical.
 */
#include "fm_config.h"
#if FM_HAVE_ADAPTIVE_MUTEX
#define _GNU_SOURCE /* PTHREAD_MUTEX_ADAPTIVE_NP */
#endif
#include "arena.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "os.h"
#include "recover.h"

/* How many fork()s lie between the first fm_open of this program and this
 * process: bumped in each child (api.c registers the handler).  A handle
 * remembers the count at its open; another count means it was inherited
 * (arena_inherited). */
atomic_uint fm__forks_seen;

static uint64_t round_up(uint64_t x, uint64_t to)
{
    return (x + to - 1) / to * to;
}

/* ---- creation -------------------------------------------------------------- */

/*
 * Lay out a new arena in fd (empty, or zero in its first 4 KiB).  The magic
 * goes in last, after everything else is durable: a crash before it leaves
 * a file whose first 4 KiB are zero, which the next FM_CREATE initialises
 * again.
 */
static int create_arena(int fd, uint64_t real_size, uint64_t initial, uint64_t page,
                        bool *wrote)
{
    uint64_t size = round_up(real_size, page);
    if (size < initial)
        size = initial;
    int err = os_truncate(fd, size);
    if (!err)
        err = os_allocate(fd, 0, size);
    if (err)
        return err;
    *wrote = true;

    static const unsigned char zeros[FMT_HEAP_OFF + CH_PAYLOAD];
    if ((err = os_pwrite(fd, zeros, sizeof zeros, 0)))
        return err;
    unsigned char sb[FMT_HEADER_SIZE];
    uint8_t id[16];
    os_random(id, sizeof id);
    fmt_init_superblock(sb, size, page, id, os_time_ns());
    uint64_t top_head = ch_tagged(FMT_HEAP_OFF, fmt_salt(sb), (size - FMT_HEAP_OFF) | CH_PINUSE);
    if ((err = os_pwrite(fd, &top_head, 8, FMT_HEAP_OFF + F_HEAD)))
        return err;
    if ((err = os_pwrite(fd, sb + FMT_MAGIC_LEN, sizeof sb - FMT_MAGIC_LEN, FMT_MAGIC_LEN)))
        return err;
    if ((err = os_fdatasync(fd)))
        return err;
    log_crashpoint(); /* a kill here leaves a whole header without its magic */
    if ((err = os_pwrite(fd, sb, FMT_MAGIC_LEN, 0)))
        return err;
    return os_fdatasync(fd);
}

/*
 * A creation that failed in a file that existed (empty or all zero: nothing
 * else is ever initialised) puts it back: its old size, and zeros where
 * create_arena wrote.  Best effort -- the failure being reported is the
 * first one -- but on a full disk neither step needs new blocks.
 */
static void uncreate_arena(int fd, uint64_t old_size, bool wrote)
{
    static const unsigned char zeros[FMT_HEAP_OFF + CH_PAYLOAD];
    uint64_t n = old_size < sizeof zeros ? old_size : sizeof zeros;
    if (wrote && n)
        (void)os_pwrite(fd, zeros, (size_t)n, 0);
    (void)os_truncate(fd, old_size);
    (void)os_fdatasync(fd);
}

/* ---- the clean flag ----------------------------------------------------------
 *
 * Invariant: at every instant, in the mapping and so in whatever a kill
 * leaves in the file, SB_DIRTY clear implies that sb_state_checksum matches
 * the state part.  So the flag is set before any state word changes (open),
 * and cleared only after the checksum of the final state is in place
 * (close).  A dirty flag over a stale checksum is harmless: a dirty arena
 * is recovered, never refused for its checksum.  Each step is a separate
 * atomic store with a compiler barrier between: plain stores may be
 * reordered, and a kill between two reordered stores is a refused file.
 */

static void store_flags(struct fmt_superblock *sb, uint32_t flags)
{
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit((_Atomic uint32_t *)(void *)&sb->sb_state_flags, flags,
                          memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    log_crashpoint();
}

static void store_state_word(uint64_t *word, uint64_t v)
{
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit((_Atomic uint64_t *)(void *)word, v, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    log_crashpoint();
}

/* Open: dirty first, then a new generation. */
static void state_mark_dirty(struct fmt_superblock *sb)
{
    store_flags(sb, sb->sb_state_flags | SB_DIRTY);
    store_state_word(&sb->sb_generation, sb->sb_generation + 1);
}

/* A failed open puts back what state_mark_dirty changed, in reverse. */
static void state_unmark_dirty(struct fmt_superblock *sb, uint32_t old_flags)
{
    store_state_word(&sb->sb_generation, sb->sb_generation - 1);
    store_flags(sb, old_flags);
}

/* Close: the checksum of the clean state first, then the clean flag. */
static void state_mark_clean(struct fmt_superblock *sb)
{
    struct fmt_superblock clean;
    memcpy(&clean, sb, sizeof clean);
    clean.sb_state_flags &= ~SB_DIRTY;
    store_state_word(&sb->sb_state_checksum, fmt_state_checksum(&clean));
    store_flags(sb, clean.sb_state_flags);
}

/* ---- holes ----------------------------------------------------------------- */

/*
 * Bytes from `hole` on that may stay a hole: the punched range of a free
 * chunk flagged CH_PUNCHED that starts exactly there (fm__arena_punch keeps
 * the chunk's head and links real, so its head lies in the page before).
 * The candidate must pass everything a forged or stale head would fail:
 * its tag, free, punched, big enough, and its size repeated in the next
 * chunk's prev_foot (or it is the top).  0 if there is no such chunk.
 */
static uint64_t punched_run_at(struct fm_arena *a, uint64_t hole, uint64_t hole_end)
{
    struct heap *h = &a->heap;
    uint64_t fsize = h->sb->sb_file_size, page = a->page_size;
    uint64_t lo = hole > page + CH_PUNCH_KEEP ? hole - page - CH_PUNCH_KEEP + CH_ALIGN : 0;
    lo = round_up(lo > FMT_HEAP_OFF ? lo : FMT_HEAP_OFF, CH_ALIGN);
    for (uint64_t c = lo; c + CH_PUNCH_KEEP <= hole; c += CH_ALIGN) {
        uint64_t head = ch_head(h, c), size = head & CH_SIZE_MASK;
        if (!ch_head_ok(c, head, h->salt) || (head & CH_CINUSE) || !(head & CH_PUNCHED) ||
            size < CH_PUNCH_MIN || size > fsize - c || round_up(c + CH_PUNCH_KEEP, page) != hole)
            continue;
        if (c != h->sb->sb_top && (c + size == fsize || hw(h, c + size + F_PREVFOOT) != size))
            continue;
        uint64_t end = (c + size) / page * page;
        return (end < hole_end ? end : hole_end) - hole;
    }
    return 0;
}

/*
 * Invariant (arena.h): every page of the file has real blocks but the
 * punched ranges of free chunks, which the heap fills before it reuses
 * them.  Growth keeps it; a file copied sparsely (cp --sparse) breaks it,
 * and a store into a hole on a full disk is SIGBUS.  So a writer
 * establishes it at open: one lseek when there are no holes.
 */
static int fill_holes(struct fm_arena *a, uint64_t end)
{
    for (uint64_t off = 0, hole, hole_end; off < end; off = hole_end) {
        int err = os_next_hole(a->fd, off, end, &hole, &hole_end);
        if (err || hole >= end)
            return err;
        uint64_t keep = hole >= FMT_HEAP_OFF ? punched_run_at(a, hole, hole_end) : 0;
        if (keep < hole_end - hole && (err = os_allocate(a->fd, hole + keep,
                                                         hole_end - hole - keep)))
            return err;
    }
    return 0;
}

/* ---- open ------------------------------------------------------------------ */

static int check_options(const struct fm_options *o, uint64_t page, struct fm_options *out)
{
    *out = o ? *o : (struct fm_options){0};
    unsigned known = FM_CREATE | FM_EXCL | FM_RDONLY | FM_NOSYNC | FM_NOCACHE | FM_DURABLE |
                     FM_SHARED;
    if (out->flags & ~known)
        return EINVAL;
    /* Shared writers write the one shared mapping; a reader or a private
     * (journalled) mapping is another mode. */
    if ((out->flags & FM_SHARED) && (out->flags & (FM_RDONLY | FM_DURABLE)))
        return EINVAL;
    if ((out->flags & FM_SHARED) && !FM_HAVE_OFD_LOCKS)
        return ENOTSUP;
    if ((out->flags & FM_RDONLY) && (out->flags & FM_CREATE))
        return EINVAL;
    if ((out->flags & FM_EXCL) && !(out->flags & FM_CREATE))
        return EINVAL;
    if ((out->flags & FM_DURABLE) && (out->flags & FM_NOSYNC))
        return EINVAL; /* a commit is its syncs */
    if (!out->initial_size)
        out->initial_size = FM_DEFAULT_INITIAL;
    if (out->initial_size < FMT_MIN_FILE)
        out->initial_size = FMT_MIN_FILE;
    out->initial_size = round_up(out->initial_size, page);
    if (!out->mode)
        out->mode = 0644;
    out->max_size = out->max_size ? round_up(out->max_size, page) : 0;
    if (out->max_size && out->max_size < out->initial_size)
        return EINVAL;
    return 0;
}

/* Open (or create) the file itself; *created when this call made it. */
static int open_file(const char *path, const struct fm_options *o, int *fd, bool *created)
{
    bool rdonly = o->flags & FM_RDONLY;
    *created = false;
    if (o->flags & FM_EXCL) {
        int err = os_open(path, false, true, o->mode, fd);
        *created = !err;
        return err;
    }
    int err = os_open(path, rdonly, false, o->mode, fd);
    if (err == ENOENT && (o->flags & FM_CREATE)) {
        err = os_open(path, false, true, o->mode, fd);
        *created = !err;
        if (err == EEXIST) /* somebody else just made it: open theirs */
            err = os_open(path, false, false, o->mode, fd);
    }
    return err;
}

/*
 * Reserve address space for the arena: max_size, or (by default) as much
 * of 1 TiB as the process may have (Valgrind, ulimit -v).  The base is
 * aligned to FM_BASE_ALIGN so that a block aligned as an offset is aligned
 * as an address too, at whatever address the next open maps the file.
 */
static int reserve(struct fm_arena *a, uint64_t want, uint64_t at_least, bool fixed_max)
{
    void *raw;
    for (;;) {
        int err = os_reserve(want + FM_BASE_ALIGN, &raw);
        if (!err)
            break;
        if (fixed_max || want / 2 < at_least || want <= (1ull << 30))
            return err;
        want /= 2;
    }
    uintptr_t r = (uintptr_t)raw, b = (r + FM_BASE_ALIGN - 1) & ~(uintptr_t)(FM_BASE_ALIGN - 1);
    if (b > r)
        os_unmap(raw, b - r);
    os_unmap((char *)b + want, FM_BASE_ALIGN - (b - r)); /* never empty: b - r < align */
    a->base = (char *)b;
    a->reserved = want;
    if (a->max_size > want)
        a->max_size = want;
    return 0;
}

/* ---- shared writers ----------------------------------------------------------
 *
 * Who has the file, told by locks that die with their process:
 *   - an exclusive writer holds the flock exclusive; a reader holds it
 *     shared and the reader mark; a shared writer holds it shared and the
 *     writer mark.  A shared writer and a reader each set their own mark
 *     before they look for the other's, so of two that race at least one
 *     sees the other and fails with FM_ELOCKED;
 *   - a shared opener or closer holds the setup mark, exclusive, while it
 *     decides whether it is the first or the last of the set.  The first
 *     (its flock could be made exclusive: nobody else has the file) opens
 *     as an exclusive writer does -- recovery of a dead set included --
 *     then gives the set its lock (shared_setup) and only then makes its
 *     flock shared; the last (its flock could be made exclusive again)
 *     frees the lock and marks the arena clean.  A dead process's flock
 *     and marks go with it, so a set whose members all died is a fresh set
 *     to the next opener.
 * The marks are open-file-description byte locks far past any file's end.
 */
#define MARK_SETUP (1ull << 62)
#define MARK_WRITER (MARK_SETUP + 1)
#define MARK_READER (MARK_SETUP + 2)

/* Set our mark, then look for the other kind's: FM_ELOCKED if it is there.
 * Where the marks cannot be set (a system or file system without
 * open-file-description locks) no shared writer can open either, so a
 * reader there goes on without them, as before the marks existed. */
static int mark_and_look(int fd, uint64_t ours, uint64_t theirs)
{
    bool held;
    int err = os_mark_set(fd, ours, false, false);
    if (!err)
        err = os_mark_held(fd, theirs, &held);
    if (err)
        return ours == MARK_READER ? 0 : err;
    return held ? FM_ELOCKED : 0;
}

/* The flock of an opener: exclusive for a writer, shared for a reader; a
 * shared writer's, exclusive if it is the first of its set (a->locked_excl),
 * else shared. */
static int lock_file(struct fm_arena *a, const struct fm_options *o)
{
    bool rdonly = o->flags & FM_RDONLY;
    int err;
    if (!(o->flags & FM_SHARED)) {
        if ((err = os_lock(a->fd, !rdonly)))
            return err == EWOULDBLOCK ? FM_ELOCKED : err;
        a->locked_excl = !rdonly;
        return rdonly ? mark_and_look(a->fd, MARK_READER, MARK_WRITER) : 0;
    }
    if ((err = os_mark_set(a->fd, MARK_SETUP, true, true)))
        return err;
    err = os_lock(a->fd, true);
    a->locked_excl = !err;
    if (err == EWOULDBLOCK && (err = os_lock(a->fd, false)) == EWOULDBLOCK)
        return FM_ELOCKED; /* an exclusive writer has it */
    return err ? err : mark_and_look(a->fd, MARK_WRITER, MARK_READER);
}

/*
 * Open and lock the file.  Whoever locks it must find that the path still
 * names what it locked: a creator that failed may have unlinked it between
 * our open and our lock (it unlinks only while it holds the exclusive lock,
 * see fm__arena_open), and an arena laid out in an unlinked file is lost.
 */
static int open_locked(struct fm_arena *a, const char *path, const struct fm_options *o)
{
    for (int tries = 0;; tries++) {
        uint64_t real;
        int err = open_file(path, o, &a->fd, &a->created_file);
        if (err)
            return err;
        if ((err = os_file_size(a->fd, &real)))
            return err == ENODEV ? FM_ENOTFILE : err;
        if ((err = lock_file(a, o)))
            return err;
        err = os_same_file(path, a->fd);
        if (err != ESTALE || tries == 100)
            return err;
        os_close(a->fd); /* releases the lock: start again with what the path names now */
        a->fd = -1;
        a->locked_excl = a->created_file = false;
    }
}

/* 0 (needs_init says whether to lay out a new arena) or why not; a wrong
 * version is described in msg. */
static int validate_header(int fd, uint64_t real_size, uint64_t page, unsigned char *hdr,
                           bool *needs_init, char *msg, size_t msg_len)
{
    size_t n = real_size < FMT_HEADER_SIZE ? (size_t)real_size : FMT_HEADER_SIZE;
    memset(hdr, 0, FMT_HEADER_SIZE);
    int err = n ? os_pread(fd, hdr, n, 0) : 0;
    if (err)
        return err;
    /* Only a file that is zero throughout is laid out anew: a disk image
     * with a zero boot sector is somebody's data. */
    *needs_init = fmt_all_zero(hdr, n);
    if (*needs_init && real_size > n && (err = os_is_zero(fd, n, real_size, needs_init)))
        return err;
    if (*needs_init)
        return 0;
    if (n == FMT_HEADER_SIZE && fmt_all_zero(hdr, FMT_MAGIC_LEN)) {
        /* Creation writes the magic last: a header that is whole and
         * checksums with the magic in place is a creation a crash cut
         * short, and FM_CREATE may lay it out again. */
        unsigned char probe[FMT_HEADER_SIZE];
        memcpy(probe, hdr, sizeof probe);
        memcpy(probe, FMT_MAGIC, FMT_MAGIC_LEN);
        if (fmt_check_identity(probe, page) == 0 && fmt_is_pristine(probe)) {
            *needs_init = true;
            return 0;
        }
    }
    err = fmt_classify_header(hdr, n, page);
    if (err == FM_EVERSION) {
        uint32_t v;
        memcpy(&v, hdr + offsetof(struct fmt_superblock, sb_version), sizeof v);
        snprintf(msg, msg_len, "the file is format version %u; this library reads version %u",
                 (unsigned)v, (unsigned)FMT_VERSION);
    }
    return err;
}

/* Truncate the tail a growth or trim left beyond sb_file_size (its
 * header already on disk) and unmap it. */
static int cut_stale_tail(struct fm_arena *a, uint64_t map_size)
{
    uint64_t fsize = a->heap.sb->sb_file_size;
    int err = os_truncate(a->fd, fsize);
    if (err)
        return err;
    os_unmap_to_reserve(a->base + fsize, map_size - fsize);
    a->heap.mapped_size = fsize;
    return 0;
}

/*
 * The rest of an FM_DURABLE open, after recovery (which ran in the private
 * mapping, so the file still holds the last commit).  What recovery changed
 * is committed before the file may shrink to the size it recovered (J1);
 * the dirty mark reaches the file with the first commit.
 */
static int open_durable(struct fm_arena *a, const char *path, mode_t mode, bool recovered,
                        uint64_t real)
{
    struct fmt_superblock *sb = a->heap.sb;
    uint64_t *probe;
    size_t n;
    /* No way to find the written pages (not Linux): no durable mode. */
    int err = os_pagemap_open(&a->pagemap_fd);
    if (!err)
        err = os_written_pages(a->pagemap_fd, a->base, a->page_size, a->page_size, &probe, &n);
    if (err)
        return err == ENOSYS ? ENOTSUP : err;
    free(probe);
    if ((err = journal_open(&a->jnl, path, mode, sb->sb_arena_id, a->page_size)))
        return err;
    /* The arena's own name must survive the power cut too. */
    if (a->created_file && (err = os_sync_dir(path)))
        return err;
    a->heap.fresh = a->initialised_empty ? FMT_HEAP_OFF + CH_PAYLOAD : sb->sb_file_size;
    state_mark_dirty(sb);
    /* A stale tail makes this commit a checkpoint, which truncates it. */
    if ((recovered || real > sb->sb_file_size) && (err = fm__arena_commit(a)))
        return err;
    return 0;
}

/* The heap's view of the mapping at a->base, map_size bytes of it mapped. */
static void heap_at_base(struct fm_arena *a, uint64_t map_size)
{
    a->heap.base = a->base;
    a->heap.sb = (struct fmt_superblock *)(void *)a->base;
    a->heap.grow = fm__arena_grow;
    a->heap.fill = fm__arena_fill;
    a->heap.punch = fm__arena_punch;
    a->heap.report = fm__arena_report;
    a->heap.ctx = a;
    a->heap.mapped_size = map_size;
    a->heap.salt = fmt_salt(a->base);
}

static void shared_view(struct fm_arena *a)
{
    a->shared.h = &a->heap;
    a->shared.fd = a->fd;
    a->shared.page_size = a->page_size;
    a->shared.reserved = a->reserved;
    a->shared.verify = a->verify;
    a->shared.why = a->check_msg;
    a->shared.why_len = sizeof a->check_msg;
}

/* The whole reserved range maps the file, so that what another process
 * adds is there at once; past the file's end an access is SIGBUS, but the
 * heap goes only as far as the size in its header. */
static int map_whole_range(struct fm_arena *a)
{
    return os_map_file(a->base, a->reserved, a->fd, 0, false, false);
}

/*
 * A shared writer that joins a running set.  The set's first opener
 * validated and recovered the arena; a later one checks the identity
 * (it reads the file without the lock: the state changes under it) and
 * that the set's lock is one it can take.
 */
static int join_arena(struct fm_arena *a, const struct fm_options *o)
{
    uint64_t page = a->page_size, real;
    unsigned char hdr[FMT_HEADER_SIZE];
    int err = os_file_size(a->fd, &real);
    if (!err && real < FMT_HEADER_SIZE)
        err = FM_ETRUNCATED;
    if (!err)
        err = os_pread(a->fd, hdr, sizeof hdr, 0);
    if (!err)
        err = fmt_classify_header(hdr, sizeof hdr, page);
    if (err)
        return err;
    uint64_t map_size = round_up(real, page);
    a->max_size = o->max_size ? o->max_size : FM_DEFAULT_MAX;
    if (a->max_size < map_size)
        a->max_size = map_size;
    if ((err = reserve(a, a->max_size, map_size, o->max_size != 0)) || (err = map_whole_range(a)))
        return err;
    heap_at_base(a, map_size < a->reserved ? map_size : a->reserved);
    a->heap.fresh = a->heap.mapped_size; /* the first lock rereads it (S3) */
    shared_view(a);
    if ((err = shared_attach(&a->shared)))
        return err;
    /* Taken once before the open returns: an operation a dead member left
     * half-done is rolled back before this process reads anything (S2). */
    if ((err = shared_lock(&a->shared)))
        return err;
    shared_unlock(&a->shared);
    return 0;
}

/* The first shared writer of a set, once it has opened the arena as an
 * exclusive writer: the set's lock, the whole range mapped, and then the
 * flock made shared for the others. */
static int begin_set(struct fm_arena *a)
{
    shared_view(a);
    int err = shared_setup(&a->shared);
    if (!err)
        err = map_whole_range(a);
    if (!err && (err = os_lock(a->fd, false)) == 0)
        a->locked_excl = false;
    return err;
}

static int open_arena(struct fm_arena *a, const char *path, const struct fm_options *o)
{
    bool needs_init, rdonly = o->flags & FM_RDONLY;
    uint64_t page = a->page_size, real;
    unsigned char hdr[FMT_HEADER_SIZE];
    int err = open_locked(a, path, o);
    if (err)
        return err;
    if ((o->flags & FM_SHARED) && !a->locked_excl)
        return join_arena(a, o);
    /* J3: a commit a power cut interrupted is finished before anything is read. */
    bool replayed;
    if ((err = journal_replay(path, a->fd, page, rdonly, &replayed, a->check_msg,
                              sizeof a->check_msg)))
        return err;
    if ((err = os_file_size(a->fd, &real)))
        return err;
    if ((err = validate_header(a->fd, real, page, hdr, &needs_init, a->check_msg,
                               sizeof a->check_msg)))
        return err;
    if (needs_init) {
        if (!(o->flags & FM_CREATE))
            return FM_EEMPTY;
        a->initialised = true;
        a->old_size = real;
        if ((err = create_arena(a->fd, real, o->initial_size, page, &a->init_wrote)))
            return err;
        a->initialised_empty = real == 0;
        if ((err = os_file_size(a->fd, &real)) ||
            (err = validate_header(a->fd, real, page, hdr, &needs_init, a->check_msg,
                                   sizeof a->check_msg)))
            return err;
    }
    const struct fmt_superblock *hsb = (const void *)hdr;
    err = fmt_check_state(hdr, real, page, a->check_msg, sizeof a->check_msg);
    if (err)
        return err;
    bool dirty = hsb->sb_state_flags & SB_DIRTY;

    uint64_t map_size = round_up(real, page);
    a->max_size = o->max_size ? o->max_size : FM_DEFAULT_MAX;
    if (a->max_size < map_size)
        a->max_size = map_size;
    if ((err = reserve(a, a->max_size, map_size, o->max_size != 0)))
        return err;
    /* A dirty read-only open recovers in a private mapping: the file's
     * bytes stay as they are, the reader sees the recovered heap. */
    bool private_view = rdonly && dirty;
    if ((err = os_map_file(a->base, map_size, a->fd, 0, rdonly && !private_view,
                           private_view || a->durable)))
        return err;
    heap_at_base(a, map_size);
    if (dirty && (err = recover_log(&a->heap, a->fd, page, map_size, private_view || a->durable,
                                    a->verify, a->check_msg, sizeof a->check_msg)))
        return err;
    a->recovered = dirty;
    if (!rdonly) {
        uint64_t fsize = a->heap.sb->sb_file_size;
        if ((err = fill_holes(a, fsize < map_size ? fsize : map_size)))
            return err;
    }
    /* Blocks that thread caches held when the process died are free. */
    uint64_t swept;
    if (dirty && (err = recover_sweep(&a->heap, TC_MAX_CHUNK, &swept)))
        return err;
    if (private_view)
        return os_protect_read(a->base, map_size);
    if (rdonly)
        return 0;
    /* A shared set that died left its lock's block: an exclusive writer
     * frees it (a clean arena has none); a new set takes it over. */
    if (a->heap.sb->sb_shared && !(o->flags & FM_SHARED)) {
        struct shared gone = {.h = &a->heap, .why = a->check_msg, .why_len = sizeof a->check_msg};
        if ((err = shared_teardown(&gone)))
            return err;
    }

    if (a->durable)
        return open_durable(a, path, o->mode, dirty, real);
    struct fmt_superblock *sb = a->heap.sb;
    if (real > sb->sb_file_size) {
        /* A growth or trim that a crash or rollback left behind: the
         * (rolled back) header goes to disk before the smaller size. */
        if (!a->nosync && ((err = os_msync(a->base, map_size)) || (err = os_fdatasync(a->fd))))
            return err;
        if ((err = cut_stale_tail(a, map_size)))
            return err;
    }
    a->heap.fresh = a->initialised_empty ? FMT_HEAP_OFF + CH_PAYLOAD : sb->sb_file_size;
    uint32_t flags = sb->sb_state_flags;
    state_mark_dirty(sb);
    /* The dirty mark must reach the disk before anything it protects. */
    if (!a->nosync && (err = os_msync(a->base, page))) {
        state_unmark_dirty(sb, flags); /* a failed open leaves the file as it was */
        return err;
    }
    return (o->flags & FM_SHARED) ? begin_set(a) : 0;
}

/* The arena lock is held for a few microseconds at a time (a heap
 * operation, a cache refill): a thread that finds it taken spins a little
 * before it sleeps, where the C library can. */
static int init_lock(pthread_mutex_t *m)
{
#if FM_HAVE_ADAPTIVE_MUTEX
    pthread_mutexattr_t attr;
    int err = pthread_mutexattr_init(&attr);
    if (err)
        return err;
    err = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (!err)
        err = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return err;
#else
    return pthread_mutex_init(m, NULL);
#endif
}

/* The caches' question at a thread's exit (struct tc_pool). */
static bool was_inherited(void *arena)
{
    return arena_inherited(arena);
}

/* Close FM_DURABLE's own descriptors, the journal's and the page map's,
 * leaving the journal file as it is. */
static void durable_drop(struct fm_arena *a)
{
    journal_drop(&a->jnl);
    if (a->pagemap_fd >= 0)
        os_close(a->pagemap_fd);
    a->pagemap_fd = -1;
}

int fm__arena_open(const char *path, const struct fm_options *opt,
                   int (*verify)(struct heap *h, char *why, size_t why_len),
                   struct fm_arena **out)
{
    uint64_t page = os_page_size();
    struct fm_options o;
    int err = check_options(opt, page, &o);
    if (err)
        return err;
    if (!path)
        return EINVAL;
    struct fm_arena *a = aligned_alloc(64, sizeof *a); /* the lock's line (arena.h) */
    if (!a)
        return ENOMEM;
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->jnl.fd = -1;
    a->pagemap_fd = -1;
    a->verify = verify;
    a->page_size = page;
    a->rdonly = o.flags & FM_RDONLY;
    a->nosync = o.flags & FM_NOSYNC;
    a->durable = (o.flags & FM_DURABLE) && !a->rdonly;
    err = init_lock(&a->lock);
    if (!err && (err = open_arena(a, path, &o)))
        pthread_mutex_destroy(&a->lock);
    if (!err && !a->rdonly && !(o.flags & (FM_NOCACHE | FM_SHARED)) && (err = tc_init(&a->tc, &a->heap, &a->lock, was_inherited, a)))
        pthread_mutex_destroy(&a->lock);
    if (err) {
        fm__set_last_detail(err, a->check_msg);
        if (a->base)
            os_unmap(a->base, a->reserved);
        /* Undo only what is provably ours: a file this call created is
         * unlinked while we still hold its exclusive lock and the path still
         * names it (a racing creator that lost the lock never unlinks the
         * winner's file); an existing file we began to lay out is put back. */
        if (a->created_file && a->locked_excl && os_same_file(path, a->fd) == 0)
            os_unlink(path);
        else if (a->initialised && a->locked_excl)
            uncreate_arena(a->fd, a->old_size, a->init_wrote);
        durable_drop(a);
        if (a->fd >= 0)
            os_close(a->fd);
        free(a);
        return err;
    }
    if (o.flags & FM_SHARED)
        os_mark_clear(a->fd, MARK_SETUP); /* the next opener or closer may decide */
    a->pub.mem = a->base;
    *out = a;
    return 0;
}

/* ---- growth ---------------------------------------------------------------- */

int fm__arena_grow(void *arena, uint64_t min_size, uint64_t *new_size)
{
    struct fm_arena *a = arena;
    uint64_t cur = a->heap.mapped_size;
    if (a->rdonly)
        return EROFS;
    if (min_size <= cur) { /* the file is already there (a rolled-back growth) */
        *new_size = cur;
        return 0;
    }
    if (min_size > a->max_size)
        return ENOMEM;
    /* Geometric: 1/16 of the file at a time, at least 1 MiB, at most 1 GiB. */
    uint64_t step = cur / 16;
    if (step < (1u << 20))
        step = 1u << 20;
    if (step > FM_GROW_CAP)
        step = FM_GROW_CAP;
    uint64_t target = round_up(cur + step > min_size ? cur + step : min_size, a->page_size);
    if (target > a->max_size)
        target = a->max_size;
    log_crashpoint();
    int err = os_truncate(a->fd, target);
    if (err)
        return err;
    log_crashpoint();
    err = os_allocate(a->fd, cur, target - cur);
    /* The new size must be on disk before the heap records it in
     * sb_file_size: a power cut that kept that header page but not the
     * size would leave a file shorter than its header (FM_ETRUNCATED).
     * Growth is geometric, so this sync is rare. */
    if (!err && !a->nosync && !a->durable && !os_break_ordering)
        err = os_fdatasync(a->fd); /* durable: the commit's apply syncs the size */
    if (!err && !a->shared.blk) { /* shared: the whole range is mapped already */
        log_crashpoint();
        err = os_map_file(a->base + cur, target - cur, a->fd, cur, false, a->durable);
    }
    if (err) {
        os_truncate(a->fd, cur);
        return err;
    }
    log_crashpoint();
    a->heap.mapped_size = target;
    *new_size = target;
    return 0;
}

int fm__arena_fill(void *arena, uint64_t off, uint64_t len)
{
    struct fm_arena *a = arena;
    log_crashpoint();
    int err = os_allocate(a->fd, off, len);
    log_crashpoint();
    return err;
}

/*
 * Punching, ordered after the free it follows.  Invariant: no hole is
 * punched into a chunk before a sync has made the free that released it
 * durable -- else a power cut can bring back the old heap, where the block
 * is allocated and linked, over pages that now read zero (synced user data
 * lost, silently).  So a free only queues its chunk; fm__arena_sync punches
 * what is queued once the heap is on disk, each chunk re-validated (still a
 * free, punched chunk of at least that size: it may have been reused since).
 * FM_NOSYNC arenas promise nothing across an OS crash and punch at once.
 * A full queue syncs: a program that never syncs (fmalloc_init's users)
 * still gets its space back.
 */
static void punch_now(struct fm_arena *a, uint64_t off, uint64_t len)
{
    uint64_t start = round_up(off + CH_PUNCH_KEEP, a->page_size);
    uint64_t end = (off + len) / a->page_size * a->page_size;
    /* A file system that cannot punch keeps the blocks: nothing is lost
     * but space, and the chunk's flag only says "may be holes". */
    if (end > start)
        (void)os_punch_hole(a->fd, start, end - start);
}

/* Is [c, c+len) still inside a free chunk flagged punched, starting at c? */
static bool still_punchable(struct fm_arena *a, uint64_t c, uint64_t len)
{
    struct heap *h = &a->heap;
    uint64_t fsize = h->sb->sb_file_size;
    if (c < FMT_HEAP_OFF || c + CH_MIN > fsize)
        return false;
    uint64_t head = ch_head(h, c), size = head & CH_SIZE_MASK;
    if (!ch_head_ok(c, head, h->salt) || (head & CH_CINUSE) || !(head & CH_PUNCHED) ||
        size < len || size > fsize - c)
        return false;
    return c == h->sb->sb_top || (c + size < fsize && hw(h, c + size + F_PREVFOOT) == size);
}

static void punch_queued(struct fm_arena *a)
{
    for (unsigned i = 0; i < a->npunch; i++)
        if (still_punchable(a, a->punch_q[i].off, a->punch_q[i].len))
            punch_now(a, a->punch_q[i].off, a->punch_q[i].len);
    a->npunch = 0;
}

void fm__arena_punch(void *arena, uint64_t off, uint64_t len)
{
    struct fm_arena *a = arena;
    if (a->nosync || os_break_ordering) {
        punch_now(a, off, len);
        return;
    }
    /* Durable: only a commit may sync, at a quiescent point; an overflow
     * keeps its blocks (the chunk's flag says only "may be holes"). */
    if (a->npunch == FM_PUNCH_QUEUE && !a->durable)
        (void)fm__arena_sync(a); /* punches the queue if the sync succeeds */
    if (a->npunch < FM_PUNCH_QUEUE)
        a->punch_q[a->npunch++] = (struct fm_punch){off, len};
}

void fm__arena_report(void *arena, int err, const char *msg)
{
    struct fm_arena *a = arena;
    pthread_mutex_lock(&a->lock);
    fm_error_handler fn = a->err_fn;
    void *arg = a->err_arg;
    pthread_mutex_unlock(&a->lock);
    fm__report(&a->pub, fn, arg, err, msg);
}

int fm__arena_shrink(struct fm_arena *a, uint64_t new_size)
{
    uint64_t cur = a->heap.mapped_size;
    if (new_size >= cur)
        return 0;
    if (a->durable) {
        /* Nothing reaches the file between commits: the next commit
         * truncates, after the header allowing it is applied. */
        if (a->heap.fresh > new_size)
            a->heap.fresh = new_size;
        return 0;
    }
    /* The heap that no longer needs the tail reaches the disk before the
     * smaller size does (else a power cut leaves a header that says the
     * file is longer than it is: FM_ETRUNCATED). */
    int err = a->nosync || os_break_ordering ? 0 : fm__arena_sync(a);
    if (!err)
        err = os_truncate(a->fd, new_size);
    if (err)
        return err; /* the file just stays larger; the next open trims it */
    if (!a->shared.blk) /* shared: the range stays the file's, for its next growth */
        os_unmap_to_reserve(a->base + new_size, cur - new_size);
    a->heap.mapped_size = new_size;
    /* Regrowing past new_size reads zeros again. */
    if (a->heap.fresh > new_size)
        a->heap.fresh = new_size;
    return 0;
}

void fm__arena_abandon(struct fm_arena *a)
{
    durable_drop(a);
    os_unmap(a->base, a->reserved);
    os_close(a->fd);
    free(a); /* not the mutex: a parent thread may have held it at the fork */
}

/* ---- sync and close -------------------------------------------------------- */

int fm__arena_sync(struct fm_arena *a)
{
    if (a->rdonly)
        return EROFS;
    if (a->durable)
        return fm__arena_commit(a);
    int err = os_msync(a->base, a->heap.sb->sb_file_size);
    if (!err)
        err = os_fdatasync(a->fd);
    if (!err)
        punch_queued(a);
    return err;
}

/* Drop the private copies of the pages just applied.  The scan walks
 * every page-table entry of the mapping (about 9 ms for 1 GiB read
 * throughout), so a large arena is mapped afresh instead: that frees the
 * page tables reads populated too, and the next scan walks only what is
 * touched after this commit -- a commit's cost follows the pages it
 * writes, not the arena's size.  A small one (the scan costs less than
 * refaulting what the program reads) drops just the written pages, as
 * does a large one whose new mapping fails. */
#define FM_REMAP_MIN (16ull << 20)

static void discard_applied(struct fm_arena *a, const uint64_t *offs, size_t n)
{
    uint64_t page = a->page_size;
    if (a->heap.mapped_size >= FM_REMAP_MIN &&
        os_map_file(a->base, a->heap.mapped_size, a->fd, 0, false, true) == 0)
        return;
    for (size_t i = 0, k; i < n; i += k) {
        for (k = 1; i + k < n && offs[i + k] == offs[i] + k * page; k++)
            ;
        (void)os_discard(a->base + offs[i], k * page); /* kept: rewritten next time */
    }
}

/* The arena file is synced and no record can be replayed any more: only
 * now may it lose blocks (J1) -- the queued punches, and a tail that a
 * trim (or a growth rolled back) left beyond sb_file_size. */
static void release_space(struct fm_arena *a)
{
    uint64_t fsize = a->heap.sb->sb_file_size;
    punch_queued(a);
    if (a->heap.mapped_size > fsize && !os_truncate(a->fd, fsize)) {
        os_unmap_to_reserve(a->base + fsize, a->heap.mapped_size - fsize);
        a->heap.mapped_size = fsize;
    }
}

/* A checkpoint: the applies so far reach the disk, then a new epoch voids
 * the records that carried them (J2).  A failure is sticky: after a
 * failed sync the page cache cannot be trusted to hold the applies, so
 * only a reopen's replay may go on. */
static int checkpoint(struct fm_arena *a)
{
    /* The deliberate break voids the records before their applies are
     * durable. */
    int err = os_break_ordering ? journal_restart(&a->jnl) : os_fdatasync(a->fd);
    log_crashpoint();
    if (!err)
        err = os_break_ordering ? os_fdatasync(a->fd) : journal_restart(&a->jnl);
    log_crashpoint();
    if (err)
        return a->commit_err = err;
    release_space(a);
    return 0;
}

/* Append the commit to the journal, then apply it to the file. */
static int journal_then_apply(struct fm_arena *a, const uint64_t *offs, size_t n)
{
    uint64_t page = a->page_size, fsize = a->heap.sb->sb_file_size;
    int err;
    if (os_break_ordering) {
        /* The deliberate break: the file moves, durably, before the
         * journal does (synced, so that real disks show it too). */
        err = journal_apply(a->fd, page, a->base, offs, n);
        if (!err)
            err = os_fdatasync(a->fd);
        return err ? err : journal_append(&a->jnl, fsize, a->base, offs, n);
    }
    if ((err = journal_append(&a->jnl, fsize, a->base, offs, n)))
        return err; /* the file is untouched: the next commit retries */
    log_crashpoint();
    /* From here the file is the journal's to finish: a failure stays
     * until a reopen replays it (J2's "the arena holds that sync's state
     * plus part of the applies" must keep holding). */
    if ((err = journal_apply(a->fd, page, a->base, offs, n)))
        a->commit_err = err;
    return err;
}

/* A commit; `last` (fm_close) ends with the arena synced and the journal
 * removed instead of a new epoch. */
static int commit(struct fm_arena *a, bool last)
{
    if (a->rdonly)
        return EROFS;
    if (a->commit_err)
        return a->commit_err;
    struct fmt_superblock *sb = a->heap.sb;
    fm_assert(sb->sb_log_count == 0);
    uint64_t page = a->page_size, fsize = sb->sb_file_size, *offs;
    size_t n;
    int err = os_written_pages(a->pagemap_fd, a->base, a->heap.mapped_size, page, &offs, &n);
    if (err)
        return err;
    while (n && offs[n - 1] >= fsize) /* beyond the heap: not part of it */
        n--;
    /* A trim waits for a checkpoint to reach the file; so does a close. */
    bool shrink = a->heap.mapped_size > fsize;
    log_crashpoint();
    if (n && journal_full(&a->jnl, n))
        err = checkpoint(a);
    if (!err && n)
        err = journal_then_apply(a, offs, n);
    log_crashpoint();
    if (!err && n)
        discard_applied(a, offs, n);
    free(offs);
    if (err || !(shrink || last))
        return err;
    if (!last)
        return checkpoint(a);
    if ((err = os_fdatasync(a->fd)))
        return a->commit_err = err;
    log_crashpoint();
    if ((err = journal_close(&a->jnl, true)))
        return err;
    release_space(a);
    return 0;
}

int fm__arena_commit(struct fm_arena *a)
{
    return commit(a, false);
}

/* The clean close of a writer that is alone: sync, the clean mark, sync it. */
static int close_clean(struct fm_arena *a)
{
    struct fmt_superblock *sb = a->heap.sb;
    fm_assert(sb->sb_log_count == 0);
    int err = a->nosync ? 0 : fm__arena_sync(a);
    if (!err) {
        state_mark_clean(sb);
        if (!a->nosync && !(err = os_msync(a->base, a->page_size)))
            err = os_fdatasync(a->fd);
        if (err) /* not known durable: let the next open check it */
            store_flags(sb, sb->sb_state_flags | SB_DIRTY);
    }
    return err;
}

/*
 * A shared writer's close ("shared writers" above).  It syncs what it
 * wrote; if its flock can be made exclusive it is the last of its set:
 * it takes the lock once more (a member that died holding it is repaired
 * first), frees the lock's block and closes as an exclusive writer does.
 * A failed conversion gives up the flock (flock(2)), which only the close
 * that follows needs anyway; the setup mark keeps a new opener out until
 * then.  A lock left unrecoverable leaves the arena dirty, for the next
 * fresh set's recovery to judge.
 */
static int close_shared(struct fm_arena *a)
{
    int err = os_mark_set(a->fd, MARK_SETUP, true, true);
    if (err)
        return err; /* the descriptor's close gives up the rest */
    int lerr = shared_lock(&a->shared);
    if (!lerr) {
        if (!a->nosync)
            err = fm__arena_sync(a);
        shared_unlock(&a->shared);
    }
    if (lerr || os_lock(a->fd, true) != 0)
        return err ? err : lerr;
    if ((lerr = shared_lock(&a->shared)) != 0)
        return lerr;
    shared_unlock(&a->shared); /* nobody else can take it now */
    int terr = shared_teardown(&a->shared);
    return terr ? terr : close_clean(a);
}

int fm__arena_close(struct fm_arena *a)
{
    int err = 0;
    if (a->shared.blk) {
        err = close_shared(a);
    } else if (a->durable) {
        /* The clean state is the last commit; then the journal goes. */
        state_mark_clean(a->heap.sb);
        err = commit(a, true);
        durable_drop(a);
    } else if (!a->rdonly) {
        err = close_clean(a);
    }
    os_unmap(a->base, a->reserved);
    os_close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
    return err;
}
