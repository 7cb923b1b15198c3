/*
 * power_image.h -- crash images from a record (power_record.h): the
 * power-loss model.
 *
 * The model, per file:
 *   - everything before the file's last completed sync is on disk: an
 *     fdatasync, or an msync (see power_weak_msync), but for pages written
 *     through a mapping: those are on disk once an msync covering them
 *     completed (power_weak_msync: an msync, then an fdatasync).  An
 *     fdatasync alone does not count them (Linux would write them back;
 *     the library always msyncs first, and the model stays on the side
 *     of fewer promises);
 *   - of every later record (the pending ones), any subset reached the
 *     disk: a page version, a pwrite, a size change (ftruncate, fallocate
 *     or a write past the end), a hole punch -- each independently, so a
 *     punch or a new size may land before the pages written before it
 *     (file systems journal such metadata early; issue 16 saw a punch land
 *     30 s before the pages);
 *   - what landed is applied in the order it was issued: of one page the
 *     disk holds the latest version that landed, never an older one over a
 *     newer one (the kernel writes back what the page holds now);
 *   - a page version or pwrite that landed may be torn: each 512-byte
 *     sector of it landed or not, independently.
 * Each image draws its own odds (how much landed, how many metadata
 * changes, how many tears) so that images range from "nothing since the
 * sync" to "everything", with mixes in between.
 *
 * Across files (power_files.h): every file is cut at the same record
 * index.  A file created during the recording exists in an image only if
 * a DIRSYNC of its path (os_sync_dir) completed before the cut, else it
 * may or may not (drawn); an unlink likewise is durable only after a
 * DIRSYNC, and before that the file may still be there, with its durable
 * bytes.  A path's creations and unlinks land in the order issued.
 */
#ifndef FM_POWER_IMAGE_H
#define FM_POWER_IMAGE_H

#include "power_record.h"

/* How an msync counts.  false (the default): a completed msync(MS_SYNC)
 * is an fdatasync of the mapped pages it covers, as on Linux (it is
 * vfs_fsync_range(datasync) on the range: those pages and the file's
 * metadata are durable).  true: it only marks the pages, and the file's
 * next fdatasync makes them durable -- the stricter reading. */
extern bool power_weak_msync;

/* The bytes of one file: [0, size) of buf; buf holds cap bytes, zero
 * from `used` on. */
struct disk {
    unsigned char *buf;
    uint64_t size, used, cap;
};

/* The odds one image was drawn with (printed when it fails). */
struct crash_odds {
    double land;  /* a pending write or page version landed */
    double meta;  /* a pending size change or punch landed */
    double tear;  /* a landed write is torn at sectors */
};

/* Walks a record forward, keeping one file's durable bytes and the records
 * still pending for it. */
struct replay {
    const struct record *r;
    int file;
    size_t next; /* the records before this one are replayed */
    struct disk durable;
    size_t *pending; /* indices into r->recs, in order */
    bool *msynced;   /* per pending entry: an msync covered it since */
    size_t npending, cap;
};

void replay_init(struct replay *rp, const struct record *r, int file);
/* Replay the records up to (not including) `end`. */
void replay_to(struct replay *rp, size_t end);
void replay_free(struct replay *rp);

/* xorshift64*: the simulator's only source of randomness. */
uint64_t sim_random(uint64_t *state);

/* What the disk may hold if the power fails now; out is (re)used. */
void image_build(const struct replay *rp, uint64_t *rng, struct disk *out,
                 struct crash_odds *odds);
void disk_free(struct disk *d);

#endif
