/*
 * alloc_fmalloc.c -- the fmalloc arm.
 *
 * A new arena starts at the library's default initial size and grows on
 * demand (growing is part of what is measured); max_size is the default
 * (1 TiB of address space, less where the process may not have that, as
 * under Valgrind).  Default sync behaviour: fm_close() runs msync +
 * fdatasync (FM_NOSYNC is not used).  Links are fm_off_t offsets and
 * alloc_to is fm_malloc_to(), the crash-atomic allocate-and-link.
 * bench_fmalloc_durable(true) opens with FM_DURABLE instead (issue 16's
 * work between commits: the same workload, nothing committed until close);
 * bench_fmalloc_shared(true) opens with FM_SHARED (issue 18: several
 * processes on one arena, each opening it itself).
 */
#include <stdio.h>
#include <unistd.h>

#include "bench.h"
#include "fmalloc.h"

static struct fm_info *fmb_arena;
static unsigned fmb_mode_flags; /* 0, FM_DURABLE or FM_SHARED */

void bench_fmalloc_durable(bool on)
{
    fmb_mode_flags = on ? FM_DURABLE : 0;
}

void bench_fmalloc_shared(bool on)
{
    fmb_mode_flags = on ? FM_SHARED : 0;
}

static int fmb_open(const char *path, uint64_t capacity_bytes, bool create)
{
    struct fm_options o = {.flags = (create ? FM_CREATE | FM_EXCL : 0) | fmb_mode_flags};
    if (create) {
        char journal[4096];
        snprintf(journal, sizeof journal, "%s-journal", path);
        unlink(path);
        unlink(journal);
    }
    int err = fm_open(path, &o, &fmb_arena);
    if (err)
        fprintf(stderr, "fm_open(%s): %s\n", path, fm_strerror(err));
    return err;
}

static int fmb_close(void)
{
    int err = fm_close(fmb_arena);
    fmb_arena = NULL;
    if (err)
        fprintf(stderr, "fm_close: %s\n", fm_strerror(err));
    return err;
}

static void *fmb_malloc(size_t size)
{
    return fm_malloc(fmb_arena, size);
}

static void fmb_free(void *p)
{
    fm_free(fmb_arena, p);
}

static void *fmb_realloc(void *p, size_t size)
{
    return fm_realloc(fmb_arena, p, size);
}

static void *fmb_root(void)
{
    return fm_root(fmb_arena);
}

static uint64_t fmb_offset_of(const void *p)
{
    return fm_offset(fmb_arena, p);
}

static void *fmb_pointer_at(uint64_t off)
{
    return fm_pointer(fmb_arena, off);
}

static void *fmb_alloc_to(uint64_t link[2], size_t size)
{
    return fm_malloc_to(fmb_arena, &link[1], size);
}

static void fmb_persist(const void *p, size_t n)
{
    /* fmalloc's model: the heap is consistent after any crash, the data is
     * durable at fm_sync()/fm_close(). */
}

static int fmb_stats(struct bench_heap_stats *st)
{
    struct fm_stats s;
    int err = fm_stats(fmb_arena, &s);
    if (err)
        return err;
    st->blocks = (double)s.allocated_count;
    st->heap_bytes = (double)s.allocated_bytes;
    return 0;
}

static void *fmb_mapping(void)
{
    return fmb_arena ? fmb_arena->mem : NULL;
}

static const char *fmb_version(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "fmalloc %d.%d.%d", FM_VERSION_MAJOR, FM_VERSION_MINOR,
             FM_VERSION_PATCH);
    return buf;
}

BENCH_PERSISTENT_ARM(fmalloc, fmb);
