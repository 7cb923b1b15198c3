/*
 * op.c -- the operation bracket (op.h): commit with punch, or roll back.
 */
#include "op.h"

#include <errno.h>
#include <stdio.h>

void op_abort(struct heap *h)
{
    log_rollback(h->base);
    h->punch_len = 0;
    h->poison_len = 0; /* the free is undone: its block keeps the user's bytes */
}

/* FM_DEBUG >= 3: the whole heap is checked before every commit; a heap the
 * operation would leave inconsistent fails it (rolled back, FM_ECORRUPT
 * with the checker's reason), on the path every error takes. */
#if FM_DEBUG < 3 && defined(__GNUC__)
/* Below level 3 the call is compiled out; this reference keeps op's use of
 * check.c in every build, so the layer graph (docs/design.md, checked by
 * the unit test `layers` from the objects' symbols) is one for all levels. */
__attribute__((used)) static int (*const op_checker)(const char *, uint64_t, struct heap_totals *,
                                                    char *, size_t) = heap_check;
#endif

static void check_before_commit(struct heap *h)
{
    if (FM_DEBUG < 3 || h->err)
        return;
    char msg[sizeof h->msg];
    struct heap_totals tot;
    if (heap_check(h->base, h->mapped_size, &tot, msg, sizeof msg) != 0)
        heap_failf(h, FM_ECORRUPT, "heap check after the operation: %s", msg);
}

int op_end(struct heap *h, bool ok)
{
    if (ok)
        check_before_commit(h);
    if (!ok || h->err) {
        op_abort(h);
        return h->err ? h->err : ENOMEM;
    }
    log_commit(h->base);
    if (FM_DEBUG >= 2 && h->poison_len) { /* the free is final: poison before any punch */
        heap_poison_freed(h);
        h->poison_len = 0;
    }
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

void op_write_after_free(char *why, size_t why_len, uint64_t block, uint64_t byte)
{
    snprintf(why, why_len, "write after free: block at offset %llu changed at payload byte %llu",
             (unsigned long long)block, (unsigned long long)byte);
}

bool op_take_notice(struct heap *h, char *why, size_t why_len)
{
    if (FM_DEBUG < 2 || fm_likely(!h->waf_block))
        return false;
    op_write_after_free(why, why_len, h->waf_block, h->waf_byte);
    h->waf_block = 0;
    return true;
}
