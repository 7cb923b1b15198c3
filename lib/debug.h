/*
 * debug.h -- assertion levels, always compiled so they never rot.
 *
 * FM_DEBUG (meson option debug_level) selects which run:
 *   fm_assert            level >= 1: cheap checks on our own invariants
 *   fm_assert_internal   level >= 2: checks on every internal step
 *   fm_assert_expensive  level >= 3: whole-heap validation (slow)
 * Level 2 also poisons freed payloads and checks the poison of blocks the
 * thread caches or the heap hand out again (heap.h); level 3 also checks the whole
 * heap before every commit (op.c).  docs/design.md, "Debug levels".
 * Assertions are for our bugs only; a damaged file is an error, never an
 * assertion.
 */
#ifndef FM_DEBUG_H
#define FM_DEBUG_H

#include "fm_config.h"

#ifndef FM_DEBUG
#define FM_DEBUG 1
#endif

#if defined(__GNUC__)
#define fm_likely(x) __builtin_expect(!!(x), 1)
#define fm_unlikely(x) __builtin_expect(!!(x), 0)
#define FM_NORETURN __attribute__((noreturn))
#define FM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define FM_COLD __attribute__((cold, noinline)) /* rare: keep it out of its callers */
#define FM_INLINE inline __attribute__((always_inline)) /* on a fast path: no call */
#else
#define fm_likely(x) (x)
#define fm_unlikely(x) (x)
#define FM_NORETURN
#define FM_PRINTF(a, b)
#define FM_COLD
#define FM_INLINE inline
#endif

FM_NORETURN void fm__assert_fail(const char *what, const char *file, int line);

#define FM_ASSERT_AT_(level, cond)                                                 \
    do {                                                                           \
        if (FM_DEBUG >= (level) && fm_unlikely(!(cond)))                           \
            fm__assert_fail(#cond, __FILE__, __LINE__);                            \
    } while (0)

#define fm_assert(cond) FM_ASSERT_AT_(1, cond)
#define fm_assert_internal(cond) FM_ASSERT_AT_(2, cond)
#define fm_assert_expensive(cond) FM_ASSERT_AT_(3, cond)

#endif
