/*
 * journal.h -- the redo journal of an FM_DURABLE arena, `<path>-journal`:
 * the pages each commit changes, appended and synced before any of them
 * reaches the arena file.  The arena file is synced only at a checkpoint,
 * every few commits; until then the journal holds every commit since the
 * last one, so a commit costs one sync, not two.
 *
 * Layer: journal (os, format).  The arena calls it; it knows nothing of
 * the heap.  Invariants (docs/crash-model.md, "The power-safe mode"):
 *   J1  the arena file's bytes change only by applying a record that is
 *       already durable in the journal (and by punching or truncating
 *       once a checkpoint has made that apply durable and the records
 *       void);
 *   J2  the journal on disk is invalid (empty, its header failing), or
 *       its header names an epoch and the records of that epoch that
 *       follow it, seq 1, 2, ... each checksummed, are every commit since
 *       the arena file was last synced, in order; the first record that
 *       fails ends them.  The arena file holds that sync's state plus any
 *       part of their applies, so applying them all again, in order,
 *       yields the last of them;
 *   J3  every open, in any mode, applies the valid records of its arena's
 *       journal, syncs the arena and empties the journal durably, before
 *       it reads the heap.
 *
 * Layout (little-endian; docs/format.md, "The journal"):
 *   [0, 64)            struct jnl_header: the epoch
 *   [page, ...)        records, each starting on a page boundary:
 *     [r, r + 64)        struct jnl_record
 *     [r + 64, + 8n)     the page offsets in the arena, ascending
 *     [r + d, + n*page)  the n pages, in that order; d rounds 64 + 8n up
 *                        to the page size
 * jh_checksum is XXH3-64 of header bytes [0, 56); jr_checksum is XXH3-64
 * of record bytes [0, 56), then the offsets, then the pages, as one
 * stream.
 */
#ifndef FM_JOURNAL_H
#define FM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JNL_MAGIC "FMJRNL\0\2"
#define JNL_REC_MAGIC "FMJREC\0\2"
#define JNL_VERSION 2u
#define JNL_HEADER_SIZE 64u
#define JNL_RECORD_SIZE 64u
#define JNL_SUFFIX "-journal"
/* A checkpoint (sync the arena, start a new epoch) comes after this many
 * commits, or before a record that would end past this many bytes: they
 * bound what a replay reads and what the page cache holds unsynced. */
#define JNL_CHECKPOINT_COMMITS 64u
#define JNL_CHECKPOINT_BYTES (8ull << 20)
#if FM_TEST_HOOKS /* only in the tests' library: the simulator checkpoints often */
extern unsigned jnl_checkpoint_commits;
#else
#define jnl_checkpoint_commits JNL_CHECKPOINT_COMMITS
#endif

struct jnl_header {
    char jh_magic[8];        /*  0 JNL_MAGIC */
    uint32_t jh_version;     /*  8 JNL_VERSION */
    uint32_t jh_page_size;   /* 12 the arena's page size */
    uint8_t jh_arena_id[16]; /* 16 sb_arena_id of the arena it belongs to */
    uint64_t jh_epoch;       /* 32 new at each checkpoint; records carry it */
    uint64_t jh_reserved[2]; /* 40 zero */
    uint64_t jh_checksum;    /* 56 XXH3-64 of bytes [0, 56) */
};
_Static_assert(sizeof(struct jnl_header) == JNL_HEADER_SIZE, "journal header is 64 bytes");

struct jnl_record {
    char jr_magic[8];        /*  0 JNL_REC_MAGIC */
    uint64_t jr_epoch;       /*  8 the header's jh_epoch */
    uint64_t jr_seq;         /* 16 1, 2, ... within the epoch */
    uint64_t jr_file_size;   /* 24 sb_file_size at the commit: the file's size */
    uint64_t jr_npages;      /* 32 pages that follow */
    uint64_t jr_commit;      /* 40 commits this open made, this one included */
    uint64_t jr_reserved;    /* 48 zero */
    uint64_t jr_checksum;    /* 56 see above */
};
_Static_assert(sizeof(struct jnl_record) == JNL_RECORD_SIZE, "journal record is 64 bytes");

struct journal {
    int fd;            /* -1: not open */
    char *path;        /* malloc'd */
    uint64_t page;
    uint8_t id[16];    /* the arena's sb_arena_id */
    uint64_t epoch;    /* of the header on disk */
    uint64_t records;  /* records of this epoch written */
    uint64_t tail;     /* where the next record goes */
    uint64_t commits;  /* records this open wrote */
    uint64_t size;     /* bytes the file has: reused, so a sync needs no size change */
};

/* The journal's path for an arena at `arena_path` (malloc'd), or NULL. */
char *journal_path(const char *arena_path);

/* J3: apply the valid records of the journal of `arena_path` to the
 * arena open on arena_fd, sync the arena, and empty the journal durably;
 * *applied says whether there were any.  A read-only open may not write:
 * it gets EAGAIN, with why saying so.  An invalid or foreign journal is
 * left alone. */
int journal_replay(const char *arena_path, int arena_fd, uint64_t page, bool rdonly,
                   bool *applied, char *why, size_t why_len);

/* What the journal of `arena_path` holds (for fmtool): its state, and for
 * JNL_VALID the last valid record in *last and how many in *nrec. */
enum jnl_state { JNL_NONE, JNL_EMPTY, JNL_INVALID, JNL_VALID };
int journal_state(const char *arena_path, int arena_fd, uint64_t page, enum jnl_state *st,
                  struct jnl_record *last, uint64_t *nrec);

/* Open (creating it with `mode`, and syncing its directory, if missing),
 * and start an epoch: a fresh header, synced. */
int journal_open(struct journal *j, const char *arena_path, mode_t mode, const uint8_t id[16],
                 uint64_t page);
/* Will the next record of n pages have to wait for a checkpoint? */
bool journal_full(const struct journal *j, size_t n);
/* Append the commit of pages offs[0..n) of the mapping at base (file
 * size `file_size`), then fdatasync the journal: J1's "durable". */
int journal_append(struct journal *j, uint64_t file_size, const char *base, const uint64_t *offs,
                   size_t n);
/* Copy those pages into the arena file; no sync (a checkpoint syncs).
 * The file is already at least the record's file size long: growth
 * extends it before the heap uses the new part. */
int journal_apply(int arena_fd, uint64_t page, const char *base, const uint64_t *offs, size_t n);
/* The arena file is synced: start a new epoch (a header, synced), which
 * voids every record before it. */
int journal_restart(struct journal *j);
/* Empty the journal durably (the arena file is synced), then unlink it
 * if `remove`; closes it. */
int journal_close(struct journal *j, bool remove);
/* Close without touching the file (a failed open, a forked child). */
void journal_drop(struct journal *j);

#endif
