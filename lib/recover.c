/*
 * recover.c -- recovery of a crashed arena's heap: the rollback of its
 * undo log, checked on a private copy first, and the sweep of the blocks
 * thread caches held.  See recover.h.
 *
 * Layer: recover.  The arena's open runs both for a dirty file; the caches
 * run the sweep at close after a dropped list (T4).
 */
#include "recover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"
#include "os.h"

/* The pages a rollback will store into get their blocks first (the heap
 * is not trusted yet, so the arena's hole filling cannot run before it). */
static int fill_log_pages(int fd, const struct fmt_superblock *sb, uint64_t page_size)
{
    for (uint64_t i = 0; i < sb->sb_log_count; i++) {
        uint64_t page_off = sb->sb_log[i].off / page_size * page_size;
        int err = os_allocate(fd, page_off, page_size);
        if (err)
            return err;
    }
    return 0;
}

/* heap_check, then verify, of the rolled-back heap mapped at base. */
static int check_rolled_back(const struct heap *h, char *base, uint64_t real_size,
                             recover_verify_fn verify, char *why, size_t why_len)
{
    struct heap_totals tot;
    int err = heap_check(base, real_size, &tot, why, why_len);
    if (err || !verify)
        return err;
    /* The same heap, seen at this mapping. */
    struct heap *view = malloc(sizeof *view);
    if (!view)
        return ENOMEM;
    memcpy(view, h, sizeof *view);
    view->base = base;
    view->sb = (struct fmt_superblock *)(void *)base;
    view->err = 0;
    err = verify(view, why, why_len);
    free(view);
    return err;
}

int recover_log(struct heap *h, int fd, uint64_t page_size, uint64_t real_size, bool in_place,
                recover_verify_fn verify, char *why, size_t why_len)
{
    char *base = h->base;
    int err = fmt_check_log(base, real_size, why, why_len);
    if (err)
        return err;
    if (in_place) { /* a private mapping already: nothing reaches the file */
        log_rollback(base);
        err = check_rolled_back(h, base, real_size, verify, why, why_len);
    } else {
        void *priv;
        if ((err = os_map_private(fd, real_size, &priv)))
            return err;
        log_rollback(priv);
        err = check_rolled_back(h, priv, real_size, verify, why, why_len);
        os_unmap(priv, real_size);
    }
    if (err)
        return err == ENOMEM ? err : FM_ECORRUPT;
    if (!in_place) {
        if ((err = fill_log_pages(fd, h->sb, page_size)))
            return err;
        log_rollback(base);
    }
    return 0;
}

int recover_sweep(struct heap *h, uint64_t max_chunk, uint64_t *swept)
{
    uint64_t *marked = NULL;
    size_t n = 0, cap = 0;
    int err = 0;
    *swept = 0;
    /* First find them all (freeing merges chunks under the walk), ... */
    struct chunk_iter it;
    chunk_iter_init(&it, h->base, h->sb->sb_top);
    for (enum chunk_step step; (step = chunk_next(&it)) != CHUNK_END;) {
        uint64_t c = it.c;
        if (step == CHUNK_BAD) {
            err = FM_ECORRUPT; /* recovery checked the heap: cannot happen */
            goto out;
        }
        if (!(it.head & CH_CINUSE) || it.size > max_chunk || !ch_marked(h->base, c, h->salt))
            continue;
        if (n == cap) {
            uint64_t *m = realloc(marked, (cap = cap ? 2 * cap : 256) * sizeof *m);
            if (!m) {
                err = ENOMEM;
                goto out;
            }
            marked = m;
        }
        marked[n++] = c;
    }
    /* ... then free each, one committed operation at a time. */
    for (size_t i = 0; i < n; i++) {
        op_begin(h);
        heap_free(h, marked[i] + CH_PAYLOAD);
        if (op_end(h, true)) {
            err = FM_ECORRUPT;
            goto out;
        }
        ++*swept;
    }
out:
    free(marked);
    return err;
}
