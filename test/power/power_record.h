/*
 * power_record.h -- what the library did to its files, as a power cut
 * sees it: the recording half of the power-loss simulator.
 *
 * While recording, lib/os.c's trace hook reports every call that changes
 * or syncs a file and every file mapping.  The recorder turns them into a
 * list of records in the order they happened:
 *
 *   WRITE   bytes that may reach the disk: a pwrite, or one version of one
 *           page of a shared mapping (the kernel may write a dirty page
 *           back at any moment, so every version we saw is a candidate)
 *   SIZE    ftruncate to `off`;  EXTEND: fallocate up to `off` (never
 *           shrinks);  PUNCH: [off, off+len) reads zero
 *   MSYNC   the mapped pages of [off, off+len) were written back
 *   SYNC    fdatasync of the file completed
 *   POINT   an instant a power cut may strike at
 *   CREATE  the file (one incarnation of a path) got its directory entry
 *   UNLINK  the file lost it (its path may be created again: a new file)
 *   DIRSYNC the directory entries of the file's path are durable
 *   MARK    the workload's own marker, `off` its number (images ignore it)
 *
 * Files are incarnations: a path unlinked and created again is two files
 * of the record, with the same path.  A file that existed before the
 * recording (rec_know, or one first opened with bytes in it) begins with
 * CREATE, its bytes, SYNC and DIRSYNC: all of that is durable.
 *
 * Page versions are found by comparing every page of every shared writable
 * mapping with a copy taken at the previous look: at every traced event,
 * and at every rec_tick() (the workload ticks after each operation, so a
 * crash may fall between any two operations, not only at system calls).
 */
#ifndef FM_POWER_RECORD_H
#define FM_POWER_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum rec_kind {
    REC_WRITE, REC_SIZE, REC_EXTEND, REC_PUNCH, REC_MSYNC, REC_SYNC, REC_POINT,
    REC_CREATE, REC_UNLINK, REC_DIRSYNC, REC_MARK
};

struct rec {
    enum rec_kind kind;
    int file;            /* index into record.paths; -1 for POINT and MARK */
    bool from_map;       /* WRITE: a page of a mapping (never extends the file) */
    uint64_t off, len;   /* see above */
    unsigned char *data; /* WRITE: len bytes, owned */
};

enum { REC_MAX_FILES = 16 };

struct record {
    struct rec *recs;
    size_t n, cap;
    char *paths[REC_MAX_FILES];
    int nfiles;
    size_t first_point; /* the first record a crash may follow (rec_arm) */
    uint64_t page_writes, bytes_kept;
};

/* Start recording into r (zeroed first); installs the os trace hook. */
void rec_start(struct record *r);
/* Before anything opens it: if `path` exists now, it existed before the
 * recording (durable, bytes and directory entry); if not, its first open
 * creates it. */
void rec_know(struct record *r, const char *path);
/* Look at the mappings for changed pages, then add a crash point. */
void rec_tick(struct record *r);
/* Crash points start here (what came before, e.g. creation, is setup:
 * the files then live count as durably created). */
void rec_arm(struct record *r);
/* The same, but what came before is durable only as far as its own syncs
 * made it so: a file created without a directory sync may be missing. */
void rec_arm_strict(struct record *r);
/* Add a MARK numbered n. */
void rec_mark(struct record *r, uint64_t n);
/* Stop recording (removes the hook); the record stays readable. */
void rec_stop(struct record *r);
void rec_free(struct record *r);
/* The index of the first file with this path in r->paths, or -1. */
int rec_file(const struct record *r, const char *path);

#endif
