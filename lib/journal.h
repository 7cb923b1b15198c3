/*
 * journal.h -- the redo journal of an FM_DURABLE arena, `<path>-journal`:
 * the pages a commit changes, written and synced before any of them
 * reaches the arena file.
 *
 * Layer: journal (os, format).  The arena calls it; it knows nothing of
 * the heap.  Invariants (docs/crash-model.md, "The power-safe mode"):
 *   J1  the arena file's bytes change only by applying a journal that is
 *       already durable (and by punching or truncating after that apply
 *       is durable);
 *   J2  the journal on disk is invalid (its checksum fails, or it is
 *       empty) or it holds the newest commit, whose apply may be
 *       unfinished; applying it again changes nothing else;
 *   J3  every open, in any mode, applies a valid journal of its arena and
 *       makes the journal invalid durably, before it reads the heap.
 *
 * Layout (little-endian; docs/format.md, "The journal"):
 *   [0, 64)          struct jnl_header
 *   [64, 64 + 8n)    the page offsets in the arena, ascending
 *   [data_off, ...)  the n pages, in that order; data_off rounds
 *                    64 + 8n up to the page size
 * jh_checksum is XXH3-64 of header bytes [0, 56), then the offsets, then
 * the pages, as one stream.
 */
#ifndef FM_JOURNAL_H
#define FM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JNL_MAGIC "FMJRNL\0\1"
#define JNL_VERSION 1u
#define JNL_HEADER_SIZE 64u
#define JNL_SUFFIX "-journal"

struct jnl_header {
    char jh_magic[8];      /*  0 JNL_MAGIC */
    uint32_t jh_version;   /*  8 JNL_VERSION */
    uint32_t jh_page_size; /* 12 the arena's page size */
    uint8_t jh_arena_id[16]; /* 16 sb_arena_id of the arena it belongs to */
    uint64_t jh_seq;       /* 32 commits this open made, this one included */
    uint64_t jh_file_size; /* 40 sb_file_size at the commit: the file's size */
    uint64_t jh_npages;    /* 48 pages that follow */
    uint64_t jh_checksum;  /* 56 see above */
};
_Static_assert(sizeof(struct jnl_header) == JNL_HEADER_SIZE, "journal header is 64 bytes");

struct journal {
    int fd;          /* -1: not open */
    char *path;      /* malloc'd */
    uint64_t seq;
    uint64_t size;   /* bytes the file has: reused, so a sync needs no size change */
};

/* The journal's path for an arena at `arena_path` (malloc'd), or NULL. */
char *journal_path(const char *arena_path);

/* J3: if `arena_path` has a valid journal of the arena open on arena_fd,
 * apply it, sync the arena, and empty the journal durably; *applied says
 * whether it did.  A read-only open may not write: it gets EAGAIN, with
 * why saying so.  An invalid or foreign journal is left alone. */
int journal_replay(const char *arena_path, int arena_fd, uint64_t page, bool rdonly,
                   bool *applied, char *why, size_t why_len);

/* What the journal of `arena_path` holds (for fmtool): its state, and
 * for JNL_VALID its header in *h.  0 or an errno (I/O). */
enum jnl_state { JNL_NONE, JNL_EMPTY, JNL_INVALID, JNL_VALID };
int journal_state(const char *arena_path, int arena_fd, uint64_t page, enum jnl_state *st,
                  struct jnl_header *h);

/* Open (creating it with `mode`, and syncing its directory, if missing). */
int journal_open(struct journal *j, const char *arena_path, mode_t mode);
/* Write the commit of pages offs[0..n) of the mapping at base (arena
 * `id`, file size `file_size`), then fdatasync it: J1's "durable". */
int journal_write(struct journal *j, const uint8_t id[16], uint64_t page, uint64_t file_size,
                  const char *base, const uint64_t *offs, size_t n);
/* Copy those pages into the arena file, give it file_size if it is
 * shorter, and fdatasync it. */
int journal_apply(int arena_fd, uint64_t page, uint64_t file_size, const char *base,
                  const uint64_t *offs, size_t n);
/* Empty the journal durably (the arena holds its commit), then unlink it
 * if `remove`; closes it. */
int journal_close(struct journal *j, bool remove);
/* Close without touching the file (a failed open, a forked child). */
void journal_drop(struct journal *j);

#endif
