/*
 * log.h -- the undo log that makes every heap operation crash-atomic.
 *
 * Layer: log (no system calls).  Every store the heap makes to its
 * metadata -- superblock state words, chunk headers and footers, free-list
 * and tree links, and a caller's link slot -- goes through log_set().
 *
 * Invariant (the whole crash model rests on it):
 *   At every instruction, the arena's bytes equal the state before the
 *   current operation once the records sb_log[0 .. sb_log_count) are
 *   written back newest first.  sb_log_count == 0 between operations.
 *
 * It holds because log_set() (1) writes the record (offset, old value),
 * (2) publishes it by bumping sb_log_count, and only then (3) stores the new
 * value; log_commit() clears sb_log_count after the last store.  Each step
 * is one aligned 8-byte store, and compiler fences keep them in program
 * order.  A killed process loses no completed store to a MAP_SHARED file
 * (the page cache keeps it), so no flush is needed on this path.
 *
 * Crash-point injection: when fm__cp_armed, every step above counts, and
 * the process _exit()s at step fm__cp_target (tests walk every step).
 * Compiled only with FM_TEST_HOOKS (the tests' library, lib/meson.build);
 * elsewhere log_crashpoint() is empty.
 */
#ifndef FM_LOG_H
#define FM_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"
#include "format.h"

#define FM_CP_EXIT 86

#if FM_TEST_HOOKS
extern bool fm__cp_armed;
void fm__cp_step(void);
/* Arm crash points: exit with status FM_CP_EXIT at step `target` (0: only
 * count).  Returns the steps counted since the last call. */
long fm__cp_arm(long target);
long fm__cp_disarm(void);
/* Steps counted so far, without resetting. */
long fm__cp_steps(void);

static inline void log_crashpoint(void)
{
    if (fm_unlikely(fm__cp_armed))
        fm__cp_step();
}
#else
static inline void log_crashpoint(void) {}
#endif

/*
 * Heap words are read and written as relaxed atomics: a thread cache's fast
 * path reads chunk heads (and writes its blocks' markers) without the arena
 * lock while locked operations rewrite neighbouring heads.  On the machines
 * we support these are plain loads and stores.
 */
static inline uint64_t word_load(const char *base, uint64_t off)
{
    return atomic_load_explicit((_Atomic uint64_t *)(void *)(uintptr_t)(base + off),
                                memory_order_relaxed);
}

static inline void word_store(char *base, uint64_t off, uint64_t v)
{
    atomic_store_explicit((_Atomic uint64_t *)(void *)(base + off), v, memory_order_relaxed);
}

/* Store `val` at `off`, recording the old value first.  Stores that change
 * nothing are skipped: rolling them back would be a no-op anyway. */
static inline void log_set(char *base, uint64_t off, uint64_t val)
{
    struct fmt_superblock *sb = (struct fmt_superblock *)(void *)base;
#if FM_UNDO_LOG == 0
    /* Measurement build only (meson -Dundo_log=false): NOT crash-safe. */
    (void)sb;
    word_store(base, off, val);
    return;
#endif
    uint64_t old = word_load(base, off);
    if (old == val)
        return;
    uint64_t n = sb->sb_log_count;
    fm_assert(n < FMT_LOG_CAP);
    sb->sb_log[n].off = off;
    sb->sb_log[n].old = old;
    atomic_signal_fence(memory_order_seq_cst);
    log_crashpoint();
    sb->sb_log_count = n + 1;
    atomic_signal_fence(memory_order_seq_cst);
    log_crashpoint();
    word_store(base, off, val);
    atomic_signal_fence(memory_order_seq_cst);
}

/* Record a word the operation may overwrite without log_set (a payload
 * about to receive user data) so that a rollback restores it. */
static inline void log_save(char *base, uint64_t off)
{
    struct fmt_superblock *sb = (struct fmt_superblock *)(void *)base;
    uint64_t n = sb->sb_log_count;
    fm_assert(n < FMT_LOG_CAP);
    sb->sb_log[n].off = off;
    sb->sb_log[n].old = word_load(base, off);
    atomic_signal_fence(memory_order_seq_cst);
    sb->sb_log_count = n + 1;
    atomic_signal_fence(memory_order_seq_cst);
}

/* 32-bit fields (the bin bitmaps) share a 64-bit word; log the word. */
static inline void log_set32(char *base, uint64_t off, uint32_t val)
{
    uint64_t word_off = off & ~(uint64_t)7;
    uint64_t w = word_load(base, word_off);
    unsigned shift = (unsigned)(off - word_off) * 8;
    w = (w & ~((uint64_t)0xffffffffu << shift)) | ((uint64_t)val << shift);
    log_set(base, word_off, w);
}

/* The operation is complete: forget its records. */
static inline void log_commit(char *base)
{
    struct fmt_superblock *sb = (struct fmt_superblock *)(void *)base;
    atomic_signal_fence(memory_order_seq_cst);
    log_crashpoint();
    sb->sb_log_count = 0;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Undo the records newest first, then clear the log.  Used in-process when
 * an operation fails half way, and by recovery (on a validated log). */
void log_rollback(char *base);


#endif
