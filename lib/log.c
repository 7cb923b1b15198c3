/*
 * log.c -- rollback and the crash-point test hook.  See log.h for the
 * invariant; the fast path (log_set, log_commit) is inline there.
 */
#include "log.h"

#include <unistd.h>

#if FM_TEST_HOOKS
bool fm__cp_armed;
static long cp_target;
static long cp_steps;

void fm__cp_step(void)
{
    cp_steps++;
    if (cp_target && cp_steps == cp_target)
        _exit(FM_CP_EXIT);
}

long fm__cp_arm(long target)
{
    long n = cp_steps;
    cp_steps = 0;
    cp_target = target;
    fm__cp_armed = true;
    return n;
}

long fm__cp_steps(void)
{
    return cp_steps;
}

long fm__cp_disarm(void)
{
    long n = cp_steps;
    fm__cp_armed = false;
    cp_steps = 0;
    cp_target = 0;
    return n;
}
#endif

void log_rollback(char *base)
{
    struct fmt_superblock *sb = (struct fmt_superblock *)(void *)base;
    uint64_t n = sb->sb_log_count;
    while (n-- > 0) {
        word_store(base, sb->sb_log[n].off, sb->sb_log[n].old);
        atomic_signal_fence(memory_order_seq_cst);
        /* Shrinking the count record by record keeps a crash during the
         * rollback itself recoverable: the rest is still to undo. */
        sb->sb_log_count = n;
        atomic_signal_fence(memory_order_seq_cst);
        log_crashpoint(); /* a rollback cut short is finished by the next (shared.h S2) */
    }
}
