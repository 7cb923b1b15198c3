/*
 * store_fmalloc.c -- fmalloc as a commit store, in two modes:
 *   durable  FM_DURABLE, a transaction ends with fm_commit (the redo
 *            journal: atomic and durable across a power cut)
 *   sync     the default mode, a transaction ends with fm_sync (msync +
 *            fdatasync: durable, not atomic against a power cut)
 * Records are blocks linked into a list: the root holds the head and a
 * count, each record's first word links the next.  fm_malloc_to allocates
 * a record and links it from the tail in one crash-atomic step.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fmalloc.h"
#include "store.h"

/* A record as it lies in the arena, STORE_RECORD_BYTES long: the link to
 * the next record (an fm_off_t), the key, then the rest of the payload. */
#define FMS_LINK_BYTES sizeof(fm_off_t)

struct fms_root {
    fm_off_t head;
    uint64_t count;
};

static struct fm_info *fms_arena;
static fm_off_t *fms_tail; /* the link the next record goes into */
static bool fms_durable;

static int fms_fail(const char *what, int err)
{
    fprintf(stderr, "bench_worker: fmalloc store: %s: %s\n", what, fm_strerror(err));
    return 1;
}

static const char *fms_version(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "fmalloc %s", fm_version(NULL, NULL, NULL, NULL));
    return buf;
}

static void fms_remove(const char *path)
{
    static const char *const suffixes[] = {"-journal", NULL};
    store_remove_files(path, suffixes);
}

static int fms_open_mode(const char *path, bool durable)
{
    struct fm_options o = {.flags = FM_CREATE | FM_EXCL | (durable ? FM_DURABLE : 0)};
    fms_remove(path);
    int err = fm_open(path, &o, &fms_arena);
    if (err)
        return fms_fail("fm_open", err);
    fms_durable = durable;
    fms_tail = &((struct fms_root *)fm_root(fms_arena))->head;
    /* The empty store is the first commit: the creation is not timed. */
    err = durable ? fm_commit(fms_arena) : fm_sync(fms_arena);
    return err ? fms_fail("first commit", err) : 0;
}

static int fms_open_durable(const char *path)
{
    return fms_open_mode(path, true);
}

static int fms_open_sync(const char *path)
{
    return fms_open_mode(path, false);
}

static int fms_begin(void)
{
    return 0; /* a transaction is whatever happens between commits */
}

static int fms_insert(uint64_t key, const unsigned char *rec)
{
    unsigned char *r = fm_malloc_to(fms_arena, fms_tail, STORE_RECORD_BYTES);
    if (!r)
        return fms_fail("fm_malloc_to", fm_last_error());
    fm_off_t *next = (fm_off_t *)r; /* blocks are 16-byte aligned */
    *next = 0;
    memcpy(r + FMS_LINK_BYTES, &key, sizeof key);
    memcpy(r + FMS_LINK_BYTES + sizeof key, rec, STORE_RECORD_BYTES - FMS_LINK_BYTES - sizeof key);
    ((struct fms_root *)fm_root(fms_arena))->count++;
    fms_tail = next;
    return 0;
}

static int fms_commit(void)
{
    int err = fms_durable ? fm_commit(fms_arena) : fm_sync(fms_arena);
    return err ? fms_fail(fms_durable ? "fm_commit" : "fm_sync", err) : 0;
}

static int fms_close(void)
{
    int err = fm_close(fms_arena);
    fms_arena = NULL;
    return err ? fms_fail("fm_close", err) : 0;
}

static void *fms_mapping(void)
{
    return fms_arena ? fms_arena->mem : NULL;
}

/* The two modes differ only in how they open (and so what commit does). */
#define FMS_STORE(mode)                                                            \
    const struct bench_store bench_store_##mode = {                                \
        .name = #mode,                                                             \
        .version = fms_version,                                                    \
        .open = fms_open_##mode,                                                   \
        .begin = fms_begin,                                                        \
        .insert = fms_insert,                                                      \
        .commit = fms_commit,                                                      \
        .close = fms_close,                                                        \
        .remove = fms_remove,                                                      \
        .mapping = fms_mapping,                                                    \
    }

FMS_STORE(durable);
FMS_STORE(sync);
