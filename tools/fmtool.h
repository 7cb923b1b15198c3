/*
 * fmtool.h -- what the files of fmtool share.
 *
 * fmtool is an inspector: it never writes to the arena it looks at.  Every
 * command but `info` opens the arena through the public API with FM_RDONLY
 * (a shared lock, so no writer is active, and a dirty arena is recovered in
 * a private view by the library).  `info` reads the superblock with pread
 * and does not open the arena at all, so it works on dirty and locked files.
 *
 *   fmtool.c    command line: parsing, help, dispatch
 *   util.c      error lines, JSON strings, sizes, opening, the chunk walk
 *   inspect.c   info, stats, check
 *   map.c       map: the SVG picture of the heap
 *   names.c     names: the name directory, with sizes
 *   snapshot.c  snapshot: a consistent, sparse copy (the only file that
 *               needs _GNU_SOURCE, for FICLONE and SEEK_DATA/SEEK_HOLE)
 *
 * Exit codes, the same for every command:
 *   0  success (check: the heap is clean)
 *   1  the arena's heap is corrupt (check, stats, map, snapshot)
 *   2  usage error, or the file cannot be read or opened as an arena
 */
#ifndef FMTOOL_H
#define FMTOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fmalloc.h"

#if defined(__GNUC__)
#define TOOL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TOOL_PRINTF(a, b)
#endif

enum { EXIT_CLEAN = 0, EXIT_CORRUPT = 1, EXIT_TROUBLE = 2 };

/* The parsed command line of one command. */
struct tool_args {
    const char *cmd;    /* "info", "stats", ... */
    const char *file;   /* the arena */
    const char *copy;   /* snapshot: the destination */
    const char *output; /* map: -o FILE, NULL or "-" for stdout */
    bool json;          /* --json */
    bool force;         /* snapshot --force */
};

/* ---- util.c ---------------------------------------------------------------- */

/* One line on stderr: "fmtool: <file>: <message>". file may be NULL. */
TOOL_PRINTF(2, 3) void tool_error(const char *file, const char *fmt, ...);
/* "FM_ECHECKSUM", "ENOENT", ... or NULL for an unnamed errno value. */
const char *tool_err_name(int err);
/* Is s valid UTF-8 (no overlong forms, no surrogates)? */
bool tool_utf8_ok(const char *s);
/* s as a JSON string literal, quotes included; bytes that are not UTF-8
 * become U+FFFD. */
void json_string(FILE *out, const char *s);
/* The JSON error object of a failed command, on stdout:
 * {"file": ..., "error": {"code": ..., "name": ..., "message": ..., "reason": ...}} */
void json_error(const char *file, int err, const char *reason);
/* "1.5 MiB": n in binary units, for people (exact figures are printed too). */
const char *human_size(uint64_t n, char buf[32]);
/* "123 bytes", or "123456 bytes (120.6 KiB)" from 1 KiB on. */
const char *bytes_words(uint64_t n, char buf[64]);
/* Report a failed command: the error line (with `why` when not empty) and,
 * with --json, the error object.  Returns the exit code: 1 for
 * FM_ECORRUPT, else 2. */
int tool_fail(const struct tool_args *a, int err, const char *why);
/* Report a heap that fm_check() (or fm_stats()) found corrupt:
 * "fmtool: FILE: <what>: <msg>" and the JSON error object.  Returns 1. */
int tool_corrupt(const struct tool_args *a, const char *what, const char *msg);
/* Room for one more item in a growing array *items of *cap items of
 * item_size bytes holding n: 0 or ENOMEM (the array is then unchanged). */
int tool_reserve(void **items, size_t *cap, size_t n, size_t item_size);
/* pread exactly len bytes at off: 0, an errno, or EIO at end of file. */

/*
 * A report printed either as "label:  value" lines or as one JSON object
 * with one member per line.  A field with a NULL label is JSON-only; the
 * rep_text* lines are text-only.
 */
struct report {
    FILE *out;
    bool json;
    int members; /* JSON members printed so far */
};
void rep_begin(struct report *r, FILE *out, bool json);
void rep_end(struct report *r);
/* JSON only: start member `key` and return the stream for its value. */
FILE *rep_key(struct report *r, const char *key);
void rep_u64(struct report *r, const char *key, const char *label, uint64_t v);
/* As rep_u64, with the size for people after it in the text form. */
void rep_size(struct report *r, const char *key, const char *label, uint64_t v);
void rep_str(struct report *r, const char *key, const char *label, const char *v);
void rep_bool(struct report *r, const char *key, const char *label, bool v);
/* A number, or null ("n/a") when !valid; `note` follows it in the text form. */
void rep_real(struct report *r, const char *key, const char *label, double v, bool valid,
              const char *note);
TOOL_PRINTF(3, 4) void rep_text(struct report *r, const char *label, const char *fmt, ...);

/* fm_open(path, FM_RDONLY).  On failure prints the error line (and with
 * json the error object) and returns the exit code: 1 for FM_ECORRUPT
 * (an unrecoverable dirty arena, or an inconsistent state part), else 2. */
int tool_open(const struct tool_args *a, struct fm_info **fi);
/* tool_open, then fm_check: a corrupt heap is reported as `corrupt_what`
 * (tool_corrupt), any other failure by tool_fail; either way the arena is
 * closed and the exit status returned. */
int tool_open_checked(const struct tool_args *a, const char *corrupt_what, struct fm_info **fi);

/* Why fm_open failed with a format error, in words (fm_open itself only
 * returns the code): re-runs the header checks, and for a dirty arena the
 * recovery, on a private copy.  Empty if there is nothing to add. */
void tool_explain_open_error(const char *path, int err, char *why, size_t why_len);

enum chunk_kind { CHUNK_ALLOCATED, CHUNK_FREE, CHUNK_TOP };
/* One chunk as the walk sees it. */
struct chunk {
    uint64_t off;  /* chunk offset (its payload is at off + 16) */
    uint64_t size; /* bytes, header included */
    enum chunk_kind kind;
    bool punched; /* CH_PUNCHED: a free chunk (or the top) whose pages
                   * past its first CH_PUNCH_KEEP bytes may be holes */
};
/* Called for every chunk in address order, the top last; non-zero stops. */
typedef int (*chunk_fn)(const struct chunk *c, void *arg);
/* Walk the heap of an open arena.  Every step is bounded (sizes checked
 * against the top and the file size, at most one step per CH_MIN bytes),
 * so a damaged heap ends the walk with FM_ECORRUPT instead of a crash;
 * callers run fm_check() first all the same.  0, fn's value or FM_ECORRUPT. */
int tool_walk_chunks(const struct fm_info *fi, chunk_fn fn, void *arg);

/* ---- the commands ---------------------------------------------------------- */

int cmd_info(const struct tool_args *a);
int cmd_stats(const struct tool_args *a);
int cmd_check(const struct tool_args *a);
int cmd_map(const struct tool_args *a);
int cmd_snapshot(const struct tool_args *a);
int cmd_names(const struct tool_args *a);

#endif
