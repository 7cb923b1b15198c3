/*
 * power_files.h -- crash images of every file of a record at one cut:
 * the directory half of the power-loss model (power_image.h has the bytes
 * of one file).
 *
 * The model, per path:
 *   - its directory operations (a creation, an unlink: CREATE and UNLINK
 *     records) up to the last completed DIRSYNC of the path are durable;
 *   - of the later ones, a prefix landed, in the order issued (file
 *     systems journal directory operations in order), of any length: so a
 *     file created since the path's last DIRSYNC may or may not exist, and
 *     one unlinked since may still be there;
 *   - the path then names the file (the incarnation) its last landed
 *     operation created, with that file's bytes drawn as power_image.h
 *     says, or nothing.
 * Every file is cut at the same record index.
 */
#ifndef FM_POWER_FILES_H
#define FM_POWER_FILES_H

#include "power_image.h"

/* The image of every path of a record. */
struct image_set {
    const struct record *r;
    struct replay rp[REC_MAX_FILES]; /* per file (incarnation) */
    int npaths;
    int first[REC_MAX_FILES];        /* per path: its first file (r->paths) */
    size_t ops[REC_MAX_FILES];       /* per path: CREATE/UNLINK records so far */
    size_t durable_ops[REC_MAX_FILES]; /* ... of which durable (a DIRSYNC followed) */
    size_t *op_rec[REC_MAX_FILES];   /* per path: the index of each, in order */
    size_t op_cap[REC_MAX_FILES];
    size_t next;
    /* The image drawn: per path, the file it names (-1: none) and its bytes. */
    int chosen[REC_MAX_FILES];
    struct disk disk[REC_MAX_FILES];
};

void set_init(struct image_set *s, const struct record *r);
/* Replay every file up to (not including) `end`. */
void set_replay_to(struct image_set *s, size_t end);
/* Draw an image of every path at the cut (odds: the arena's, printed). */
void set_build(struct image_set *s, uint64_t *rng, struct crash_odds *odds);
/* Write each path's image into `dir`, under the path's last component
 * (a path that names no file there is removed). */
void set_write(const struct image_set *s, const char *dir);
void set_free(struct image_set *s);
/* The path index of file f. */
int set_path_of(const struct image_set *s, int f);

#endif
