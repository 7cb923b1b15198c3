/*
 * store_lmdb.c -- LMDB as a commit store: one write transaction per
 * transaction, mdb_put of each record under its key (8 bytes big-endian,
 * so that keys ascend as LMDB compares them and the B-tree grows at its
 * right edge), mdb_txn_commit.  The environment has LMDB's default flags
 * (plus MDB_NOSUBDIR: the data file is `path`, the lock file
 * `path-lock`), so a commit writes the dirty pages, fdatasyncs, writes
 * the meta page and fdatasyncs again.  Built only when meson finds
 * liblmdb (BENCH_HAVE_LMDB).
 */
#include "store.h"

#if BENCH_HAVE_LMDB
#include <lmdb.h>
#include <stdio.h>

/* Room for any run: the file grows as pages are used, not to this size. */
#define LMS_MAP_BYTES (16ull << 30)

static MDB_env *lms_env;
static MDB_txn *lms_txn;
static MDB_dbi lms_dbi;

static int lms_fail(const char *what, int rc)
{
    fprintf(stderr, "bench_worker: lmdb store: %s: %s\n", what, mdb_strerror(rc));
    return 1;
}

static const char *lms_version(void)
{
    static char buf[64];
    int major, minor, patch;
    mdb_version(&major, &minor, &patch);
    snprintf(buf, sizeof buf, "LMDB %d.%d.%d", major, minor, patch);
    return buf;
}

static void lms_remove(const char *path)
{
    static const char *const suffixes[] = {"-lock", NULL};
    store_remove_files(path, suffixes);
}

static int lms_open(const char *path)
{
    int rc;
    lms_remove(path);
    if ((rc = mdb_env_create(&lms_env)))
        return lms_fail("mdb_env_create", rc);
    if ((rc = mdb_env_set_mapsize(lms_env, LMS_MAP_BYTES)))
        return lms_fail("mdb_env_set_mapsize", rc);
    if ((rc = mdb_env_open(lms_env, path, MDB_NOSUBDIR, 0644)))
        return lms_fail("mdb_env_open", rc);
    if ((rc = mdb_txn_begin(lms_env, NULL, 0, &lms_txn)))
        return lms_fail("mdb_txn_begin", rc);
    if ((rc = mdb_dbi_open(lms_txn, NULL, 0, &lms_dbi)))
        return lms_fail("mdb_dbi_open", rc);
    if ((rc = mdb_txn_commit(lms_txn)))
        return lms_fail("mdb_txn_commit", rc);
    lms_txn = NULL;
    return 0;
}

static int lms_begin(void)
{
    int rc = mdb_txn_begin(lms_env, NULL, 0, &lms_txn);
    return rc ? lms_fail("mdb_txn_begin", rc) : 0;
}

static int lms_insert(uint64_t key, const unsigned char *rec)
{
    unsigned char k[8];
    for (int i = 0; i < 8; i++)
        k[i] = (unsigned char)(key >> (56 - 8 * i));
    MDB_val mk = {.mv_size = sizeof k, .mv_data = k};
    MDB_val mv = {.mv_size = STORE_RECORD_BYTES, .mv_data = (void *)rec};
    int rc = mdb_put(lms_txn, lms_dbi, &mk, &mv, 0);
    return rc ? lms_fail("mdb_put", rc) : 0;
}

static int lms_commit(void)
{
    int rc = mdb_txn_commit(lms_txn);
    lms_txn = NULL;
    return rc ? lms_fail("mdb_txn_commit", rc) : 0;
}

static int lms_close(void)
{
    mdb_env_close(lms_env);
    lms_env = NULL;
    return 0;
}

static const struct bench_store lms_store = {
    .name = "lmdb",
    .version = lms_version,
    .open = lms_open,
    .begin = lms_begin,
    .insert = lms_insert,
    .commit = lms_commit,
    .close = lms_close,
    .remove = lms_remove,
};
const struct bench_store *const bench_store_lmdb = &lms_store;
#else
const struct bench_store *const bench_store_lmdb = NULL;
#endif
