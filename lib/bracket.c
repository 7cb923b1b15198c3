/*
 * bracket.c -- the end of a locked operation (bracket.h).
 */
#include "bracket.h"

#include <string.h>

int locked_end(struct fm_arena *a, bool ok)
{
    int err = op_end(&a->heap, ok);
    if (!err) {
        pthread_mutex_unlock(&a->lock);
        return 0;
    }
    /* The handler runs without the lock: copy the message it reads. */
    char msg[sizeof a->heap.msg];
    memcpy(msg, a->heap.msg, sizeof msg);
    pthread_mutex_unlock(&a->lock);
    if (err == FM_EBADPTR || err == FM_ECORRUPT)
        op_report(&a->heap, err, msg);
    fm__set_last_error(err);
    return err;
}
