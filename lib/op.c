/*
 * op.c -- the operation bracket (op.h): commit with punch, or roll back.
 */
#include "op.h"

#include <errno.h>

void op_abort(struct heap *h)
{
    log_rollback(h->base);
    h->punch_len = 0;
}

int op_end(struct heap *h, bool ok)
{
    if (!ok || h->err) {
        op_abort(h);
        return h->err ? h->err : ENOMEM;
    }
    log_commit(h->base);
    if (fm_unlikely(h->punch_len)) {
        h->punch(h->ctx, h->punch_off, h->punch_len);
        h->punch_len = 0;
    }
    return 0;
}

void op_report(struct heap *h, int err, const char *msg)
{
    h->report(h->ctx, err, msg);
}
