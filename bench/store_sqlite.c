/*
 * store_sqlite.c -- SQLite as a commit store: journal_mode=WAL,
 * synchronous=FULL (the WAL is fsynced at every commit), one
 * BEGIN ... COMMIT per transaction, each record an INSERT of a 100-byte
 * blob under an INTEGER PRIMARY KEY through one prepared statement.  The
 * WAL's automatic checkpoints (every 1000 pages, SQLite's default) are
 * part of the cost.  Built only when meson finds sqlite3
 * (BENCH_HAVE_SQLITE).
 */
#include "store.h"

#if BENCH_HAVE_SQLITE
#include <sqlite3.h>
#include <stdio.h>

static sqlite3 *sqs_db;
static sqlite3_stmt *sqs_insert_stmt;

static int sqs_fail(const char *what)
{
    fprintf(stderr, "bench_worker: sqlite store: %s: %s\n", what,
            sqs_db ? sqlite3_errmsg(sqs_db) : "out of memory");
    return 1;
}

static const char *sqs_version(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "SQLite %s", sqlite3_libversion());
    return buf;
}

static void sqs_remove(const char *path)
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal", NULL};
    store_remove_files(path, suffixes);
}

static int sqs_exec(const char *sql)
{
    return sqlite3_exec(sqs_db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : sqs_fail(sql);
}

static int sqs_open(const char *path)
{
    sqs_remove(path);
    if (sqlite3_open(path, &sqs_db) != SQLITE_OK)
        return sqs_fail("sqlite3_open");
    if (sqs_exec("PRAGMA journal_mode=WAL") || sqs_exec("PRAGMA synchronous=FULL") ||
        sqs_exec("CREATE TABLE r(k INTEGER PRIMARY KEY, v BLOB NOT NULL)"))
        return 1;
    if (sqlite3_prepare_v2(sqs_db, "INSERT INTO r(k, v) VALUES(?1, ?2)", -1, &sqs_insert_stmt,
                           NULL) != SQLITE_OK)
        return sqs_fail("prepare INSERT");
    return 0;
}

static int sqs_begin(void)
{
    return sqs_exec("BEGIN");
}

static int sqs_insert(uint64_t key, const unsigned char *rec)
{
    if (sqlite3_bind_int64(sqs_insert_stmt, 1, (sqlite3_int64)key) != SQLITE_OK ||
        sqlite3_bind_blob(sqs_insert_stmt, 2, rec, STORE_RECORD_BYTES, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_step(sqs_insert_stmt) != SQLITE_DONE)
        return sqs_fail("INSERT");
    sqlite3_reset(sqs_insert_stmt);
    return 0;
}

static int sqs_commit(void)
{
    return sqs_exec("COMMIT");
}

static int sqs_close(void)
{
    sqlite3_finalize(sqs_insert_stmt);
    sqs_insert_stmt = NULL;
    int rc = sqlite3_close(sqs_db);
    sqs_db = NULL;
    return rc == SQLITE_OK ? 0 : sqs_fail("sqlite3_close");
}

static const struct bench_store sqs_store = {
    .name = "sqlite",
    .version = sqs_version,
    .open = sqs_open,
    .begin = sqs_begin,
    .insert = sqs_insert,
    .commit = sqs_commit,
    .close = sqs_close,
    .remove = sqs_remove,
};
const struct bench_store *const bench_store_sqlite = &sqs_store;
#else
const struct bench_store *const bench_store_sqlite = NULL;
#endif
