/*
 * bracket.c -- the end of a locked operation (bracket.h).
 */
#include "bracket.h"

#include <string.h>

int locked_end(struct fm_arena *a, bool ok)
{
    int err = op_end(&a->heap, ok);
    /* FM_DEBUG >= 2: a write after free found handing a block out is
     * reported whether or not the call succeeded. */
    char waf[160];
    bool late = op_take_notice(&a->heap, waf, sizeof waf);
    if (!err) {
        arena_unlock(a);
        if (fm_unlikely(late))
            op_report(&a->heap, FM_ECORRUPT, waf);
        return 0;
    }
    /* The handler runs without the lock: copy the message it reads. */
    char msg[sizeof a->heap.msg];
    memcpy(msg, a->heap.msg, sizeof msg);
    arena_unlock(a);
    if (fm_unlikely(late))
        op_report(&a->heap, FM_ECORRUPT, waf);
    if (err == FM_EBADPTR || err == FM_ECORRUPT)
        op_report(&a->heap, err, msg);
    fm__set_last_error(err);
    return err;
}
