/*
 * arena_util.h -- opening arenas in tests, written once (every test
 * directory: unit, api, crash, examples, fuzz's seed generator).
 *
 * require_open() stops the test, saying why, when an open fails;
 * fresh_arena() removes whatever file is at the path first, so each test
 * starts from an empty heap; open_flags() returns the error for tests that
 * check it.
 */
#ifndef FM_TEST_ARENA_UTIL_H
#define FM_TEST_ARENA_UTIL_H

#include <unistd.h>

#include "fmalloc.h"
#include "harness.h"

/* fm_open with only `flags` set (every other option its default). */
static inline int open_flags(const char *path, unsigned flags, struct fm_info **out)
{
    struct fm_options opt;
    memset(&opt, 0, sizeof opt);
    opt.flags = flags;
    return fm_open(path, &opt, out);
}

/* Open `path` with `opt`; on failure the test ends, printing the reason. */
static inline struct fm_info *require_open(const char *path, struct fm_options opt)
{
    struct fm_info *fi = NULL;
    int err = fm_open(path, &opt, &fi);
    if (err)
        fprintf(stderr, "fm_open(%s, flags 0x%x): %s: %s\n", path, opt.flags, fm_strerror(err),
                fm_last_error_detail());
    require_true(err == 0 && fi != NULL);
    return fi;
}

/* A new, empty arena at `path` (a file already there is removed), opened
 * with `opt` plus FM_CREATE. */
static inline struct fm_info *fresh_arena(const char *path, struct fm_options opt)
{
    unlink(path);
    opt.flags |= FM_CREATE;
    return require_open(path, opt);
}

#endif
