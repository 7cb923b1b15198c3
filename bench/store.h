/*
 * store.h -- the commit benchmarks' adapter interface (issue 16).
 *
 * Layer: bench, beside bench.h.  A "store" is something that makes a
 * transaction of inserts durable in one step: fmalloc with FM_DURABLE and
 * fm_commit, fmalloc in its default mode with fm_sync, LMDB (one write
 * transaction, default flags: synced at commit), SQLite (WAL,
 * synchronous=FULL, one BEGIN/COMMIT).  The commit workloads (commit.c)
 * call a store only through this table, so every store runs the same
 * loop around its calls.
 *
 * One insert = one record of STORE_RECORD_BYTES under a new 64-bit key:
 * for fmalloc a block allocated, filled and linked at the tail of a list
 * whose head is in the root; for LMDB an mdb_put; for SQLite an INSERT
 * into a table with an INTEGER PRIMARY KEY.
 */
#ifndef BENCH_STORE_H
#define BENCH_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

#define STORE_RECORD_BYTES COMMIT_RECORD_BYTES

/** Functions returning int return 0, or non-zero after printing why. */
struct bench_store {
    const char *name;
    /** Library and version, for the report ("LMDB 0.9.24"). */
    const char *(*version)(void);
    /** Create the store at path (removing what an earlier run left). */
    int (*open)(const char *path);
    int (*begin)(void);
    /** Insert rec (STORE_RECORD_BYTES) under key. */
    int (*insert)(uint64_t key, const unsigned char *rec);
    /** Make the transaction durable; when it returns, it survives a power cut. */
    int (*commit)(void);
    int (*close)(void);
    /** Unlink every file the store made at path. */
    void (*remove)(const char *path);
    /** The open arena's base address (fmalloc), or NULL: a store without one. */
    void *(*mapping)(void);
};

extern const struct bench_store bench_store_durable; /* fmalloc FM_DURABLE + fm_commit */
extern const struct bench_store bench_store_sync;    /* fmalloc default mode + fm_sync */
/* NULL when the harness was built without the library (meson found none). */
extern const struct bench_store *const bench_store_lmdb;
extern const struct bench_store *const bench_store_sqlite;

/** unlink path and path + each suffix in the NULL-terminated list. */
void store_remove_files(const char *path, const char *const *suffixes);

/** The commit workloads (commit.c): the worker's entry point for them. */
int bench_commit_main(const char *workload, const char *store, const char *scale, const char *path,
                      uint64_t arena_bytes, uint64_t txn_inserts, uint64_t seed);

#endif /* BENCH_STORE_H */
