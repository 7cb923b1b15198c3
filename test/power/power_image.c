/*
 * power_image.c -- replaying a record and drawing crash images from it,
 * under the model power_image.h states.
 *
 * Invariant of struct replay: durable = the file as of its last fdatasync
 * among records [0, next); pending = that file's WRITE/SIZE/EXTEND/PUNCH
 * records in [0, next) not yet durable, in order.
 */
#include "power_image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SECTOR = 512 };

bool power_weak_msync;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "power_image: out of memory\n");
        abort();
    }
    return p;
}

uint64_t sim_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* A draw in [0, 1). */
static double chance(uint64_t *rng)
{
    return (double)(sim_random(rng) >> 11) / 9007199254740992.0;
}

/* ---- applying records to a disk ------------------------------------------- */

static void disk_reserve(struct disk *d, uint64_t n)
{
    if (n <= d->cap)
        return;
    uint64_t cap = d->cap ? d->cap : 1u << 20;
    while (cap < n)
        cap *= 2;
    d->buf = xrealloc(d->buf, (size_t)cap);
    memset(d->buf + d->cap, 0, (size_t)(cap - d->cap));
    d->cap = cap;
}

/* Bytes up to `end` may be non-zero from now on. */
static void disk_touch(struct disk *d, uint64_t end)
{
    disk_reserve(d, end);
    if (end > d->used)
        d->used = end;
}

static void disk_copy(struct disk *to, const struct disk *from)
{
    /* All of [0, size) is written out, and size may exceed used. */
    disk_reserve(to, from->size > from->used ? from->size : from->used);
    if (from->used) /* an empty file (a journal emptied) may have no buffer */
        memcpy(to->buf, from->buf, (size_t)from->used);
    if (to->used > from->used)
        memset(to->buf + from->used, 0, (size_t)(to->used - from->used));
    to->used = from->used;
    to->size = from->size;
}

void disk_free(struct disk *d)
{
    free(d->buf);
    *d = (struct disk){0};
}

/* Apply e; a WRITE only where keep_sector says (NULL: all of it).  Bytes
 * past the size are kept in buf: a later size change makes them visible,
 * as the blocks a page's writeback filled would be. */
static void apply(struct disk *d, const struct rec *e, uint64_t *rng, double tear)
{
    switch (e->kind) {
    case REC_WRITE:
        disk_touch(d, e->off + e->len);
        if (tear > 0 && chance(rng) < tear) {
            for (uint64_t s = 0; s < e->len; s += SECTOR)
                if (sim_random(rng) & 1)
                    memcpy(d->buf + e->off + s, e->data + s,
                           (size_t)(e->len - s < SECTOR ? e->len - s : SECTOR));
        } else {
            memcpy(d->buf + e->off, e->data, (size_t)e->len);
        }
        if (!e->from_map && e->off + e->len > d->size)
            d->size = e->off + e->len;
        break;
    case REC_SIZE:
        disk_reserve(d, e->off);
        if (e->off < d->used) { /* what a shrink cuts off reads zero if regrown */
            memset(d->buf + e->off, 0, (size_t)(d->used - e->off));
            d->used = e->off;
        }
        d->size = e->off;
        break;
    case REC_EXTEND:
        disk_reserve(d, e->off);
        if (e->off > d->size)
            d->size = e->off;
        break;
    case REC_PUNCH: {
        uint64_t end = e->off + e->len < d->used ? e->off + e->len : d->used;
        if (e->off < end)
            memset(d->buf + e->off, 0, (size_t)(end - e->off));
        break;
    }
    default:
        break;
    }
}

/* ---- replay ------------------------------------------------------------------ */

void replay_init(struct replay *rp, const struct record *r, int file)
{
    memset(rp, 0, sizeof *rp);
    rp->r = r;
    rp->file = file;
}

static void pending_add(struct replay *rp, size_t i)
{
    if (rp->npending == rp->cap) {
        rp->cap = rp->cap ? 2 * rp->cap : 1024;
        rp->pending = xrealloc(rp->pending, rp->cap * sizeof *rp->pending);
        rp->msynced = xrealloc(rp->msynced, rp->cap * sizeof *rp->msynced);
    }
    rp->pending[rp->npending] = i;
    rp->msynced[rp->npending++] = false;
}

/* fdatasync: what it covers becomes durable, in order; the page versions
 * no msync covered stay pending (they are all newer than any that did). */
static void replay_sync(struct replay *rp)
{
    size_t kept = 0;
    for (size_t k = 0; k < rp->npending; k++) {
        const struct rec *e = &rp->r->recs[rp->pending[k]];
        if (!e->from_map || rp->msynced[k]) {
            apply(&rp->durable, e, NULL, 0);
        } else {
            rp->pending[kept] = rp->pending[k];
            rp->msynced[kept++] = false;
        }
    }
    rp->npending = kept;
}

/* msync(MS_SYNC): the page versions it covers are written back.  On
 * Linux it is vfs_fsync_range(datasync): those pages, and the file's
 * metadata (size, punches), are durable when it returns; with
 * power_weak_msync only a later fdatasync makes them so. */
static void replay_msync(struct replay *rp, const struct rec *m)
{
    size_t kept = 0;
    for (size_t k = 0; k < rp->npending; k++) {
        const struct rec *w = &rp->r->recs[rp->pending[k]];
        bool covered = w->from_map && w->off >= m->off && w->off + w->len <= m->off + m->len;
        if (!power_weak_msync && (covered || !w->from_map)) {
            apply(&rp->durable, w, NULL, 0);
            continue;
        }
        rp->pending[kept] = rp->pending[k];
        rp->msynced[kept++] = rp->msynced[k] || covered;
    }
    rp->npending = kept;
}

void replay_to(struct replay *rp, size_t end)
{
    for (; rp->next < end && rp->next < rp->r->n; rp->next++) {
        const struct rec *e = &rp->r->recs[rp->next];
        if (e->file != rp->file)
            continue;
        if (e->kind == REC_SYNC) {
            replay_sync(rp);
        } else if (e->kind == REC_MSYNC) {
            replay_msync(rp, e);
        } else if (e->kind <= REC_PUNCH) { /* WRITE, SIZE, EXTEND, PUNCH */
            pending_add(rp, rp->next);
        }
    }
}

void replay_free(struct replay *rp)
{
    disk_free(&rp->durable);
    free(rp->pending);
    free(rp->msynced);
    memset(rp, 0, sizeof *rp);
}

/* ---- images ------------------------------------------------------------------ */

void image_build(const struct replay *rp, uint64_t *rng, struct disk *out,
                 struct crash_odds *odds)
{
    static const double land[] = {0, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 1};
    static const double meta[] = {0, 0.5, 1};
    static const double tear[] = {0, 0.05, 0.3};
    odds->land = land[sim_random(rng) % (sizeof land / sizeof *land)];
    odds->meta = meta[sim_random(rng) % (sizeof meta / sizeof *meta)];
    odds->tear = tear[sim_random(rng) % (sizeof tear / sizeof *tear)];
    disk_copy(out, &rp->durable);
    for (size_t k = 0; k < rp->npending; k++) {
        const struct rec *e = &rp->r->recs[rp->pending[k]];
        double p = e->kind == REC_WRITE ? odds->land : odds->meta;
        if (chance(rng) < p)
            apply(out, e, rng, odds->tear);
    }
}
