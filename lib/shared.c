/*
 * shared.c -- the in-file arena lock of FM_SHARED arenas and the repair of
 * a dead holder's operation.  See shared.h for S1-S3.
 *
 * Why a pthread mutex and not a futex word of our own: only the kernel
 * knows at once that a thread died, and it tells through the robust futex
 * list, which the C library owns (one list a thread).  A robust,
 * process-shared pthread mutex is how a program reaches it.  What we rely
 * on: every process of a set uses the same C library's layout of
 * pthread_mutex_t (so sh_abi records which, and its size), and that the
 * library keeps that layout stable across its versions, as glibc does for
 * process-shared mutexes.
 */
#define _GNU_SOURCE /* pthread_mutex_consistent is POSIX 2008; getpid is POSIX */
#include "shared.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "op.h"
#include "os.h"

_Static_assert(sizeof(pthread_mutex_t) <= FMT_SHARED_MUTEX_MAX, "the lock fits its slot");

#define SB_SHARED offsetof(struct fmt_superblock, sb_shared)

static uint32_t lock_abi(void)
{
#ifdef __GLIBC__
    return FMT_SHARED_ABI_GLIBC | (uint32_t)sizeof(pthread_mutex_t);
#else
    return FMT_SHARED_ABI_OTHER | (uint32_t)sizeof(pthread_mutex_t);
#endif
}

/* Who holds the lock, for S3: an open, not a process -- two opens of one
 * arena in one process keep two views of it.  The pid, and the open's
 * number in its process. */
static uint64_t holder_token(void)
{
    static atomic_uint opens;
    unsigned n = atomic_fetch_add_explicit(&opens, 1, memory_order_relaxed) + 1;
    return (uint64_t)getpid() << 24 | (n & 0xffffffu);
}

static pthread_mutex_t *mutex_of(struct shared *s)
{
    return (pthread_mutex_t *)(void *)s->blk->sh_mutex;
}

/* The block sb_shared names: an allocated block big enough, or NULL. */
static struct fmt_shared *block_at(struct shared *s, uint64_t p)
{
    struct heap *h = s->h;
    if (!p || p % CH_ALIGN || heap_validate_block(h, p) != 0 ||
        ch_size(h, p - CH_PAYLOAD) < sizeof(struct fmt_shared) + CH_OVERHEAD)
        return NULL;
    return (struct fmt_shared *)(void *)(h->base + p);
}

int shared_setup(struct shared *s)
{
    struct heap *h = s->h;
    uint64_t p = h->sb->sb_shared;
    s->me = holder_token();
    op_begin(h);
    s->blk = block_at(s, p);
    h->err = 0; /* a block that fails is replaced, not reported */
    if (!s->blk) {
        /* None, or not one (a dead set's allocation cut short is rolled
         * back by the open's recovery: sb_shared is 0 or valid): a new one. */
        p = heap_malloc(h, sizeof(struct fmt_shared));
        if (p)
            hset(h, SB_SHARED, p);
        int err = op_end(h, p != 0);
        if (err) {
            snprintf(s->why, s->why_len, "no room for the shared-writer lock");
            return err;
        }
        s->blk = (struct fmt_shared *)(void *)(h->base + p);
    } else {
        op_end(h, true);
    }
    /* Nobody else has the file: the lock and its notes start afresh. */
    struct fmt_shared *b = s->blk;
    memset(b, 0, sizeof *b);
    pthread_mutexattr_t attr;
    int err = pthread_mutexattr_init(&attr);
    if (err)
        return err;
    err = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!err)
        err = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (!err)
        err = pthread_mutex_init(mutex_of(s), &attr);
    pthread_mutexattr_destroy(&attr);
    if (err)
        return err;
    b->sh_abi = lock_abi();
    b->sh_holder = s->me;
    /* The magic last: a block without it is never attached to. */
    atomic_thread_fence(memory_order_release);
    b->sh_magic = FMT_SHARED_MAGIC;
    return 0;
}

int shared_attach(struct shared *s)
{
    uint64_t p = atomic_load_explicit((_Atomic uint64_t *)(void *)&s->h->sb->sb_shared,
                                      memory_order_acquire);
    /* The set's lock is not ours yet, so the block is read, not validated
     * as a heap block: its first opener made it, the set keeps it. */
    if (!p || p % CH_ALIGN || p + sizeof(struct fmt_shared) > s->h->mapped_size) {
        snprintf(s->why, s->why_len, "the arena is open, but not by shared writers");
        return FM_ELOCKED;
    }
    struct fmt_shared *b = (struct fmt_shared *)(void *)(s->h->base + p);
    if (b->sh_magic != FMT_SHARED_MAGIC) {
        snprintf(s->why, s->why_len, "the arena's shared-writer block has no magic");
        return FM_ECORRUPT;
    }
    if (b->sh_abi != lock_abi()) {
        snprintf(s->why, s->why_len,
                 "the arena's lock was made by another C library (layout 0x%x, this one 0x%x)",
                 (unsigned)b->sh_abi, (unsigned)lock_abi());
        return ENOTSUP;
    }
    s->blk = b;
    s->me = holder_token();
    s->reread = true; /* a token seen before may be a dead process's: pids are reused */
    return 0;
}

/* S2: the holder died.  Its operation is rolled back the way an open
 * recovers a crashed arena: tried and checked on a private copy, then
 * done in place.  The file may be longer than the heap says (a growth
 * the dead holder had begun); the copy maps all of it. */
static int repair(struct shared *s)
{
    struct heap *h = s->h;
    uint64_t real;
    int err = os_file_size(s->fd, &real);
    if (err)
        return err;
    real = (real + s->page_size - 1) / s->page_size * s->page_size;
    if (real > s->reserved)
        real = s->reserved;
    h->mapped_size = real;
    char why[200] = "";
    err = recover_log(h, s->fd, s->page_size, real, false, s->verify, why, sizeof why);
    if (err) {
        snprintf(s->why, s->why_len,
                 "a process died holding the arena lock and its operation cannot be rolled "
                 "back: %s", why[0] ? why : fm_strerror(err));
        return err == ENOMEM ? err : FM_ECORRUPT;
    }
    s->blk->sh_repairs++;
    return 0;
}

/* S3: forget what this process kept of a heap others changed. */
static void reread(struct shared *s)
{
    struct heap *h = s->h;
    uint64_t fsize = h->sb->sb_file_size;
    /* The whole range is mapped: its end is the file's (shared_lock
     * refuses to go on past this process's range). */
    h->mapped_size = fsize < s->reserved ? fsize : s->reserved;
    h->fresh = fsize;       /* bytes past the end read zero when it grows */
    memset(h->poisoned, 0, sizeof h->poisoned);
    h->waf_block = 0;
    s->blk->sh_holder = s->me;
    s->reread = false;
}

/*
 * The wait for the lock, never for good.  A robust mutex's unlock wakes one
 * waiter; if that waiter is killed before it takes the lock, the others
 * sleep on a free lock until somebody else unlocks -- which may be never
 * (stress/shared_stress hung about once in ten runs; three processes on a
 * bare glibc robust mutex, one killed now and then, stick within a few
 * hundred rounds).  So a waiter looks again every SHARED_RECHECK_MS.  A
 * priority-inheriting mutex would hand the lock over in the kernel instead,
 * but that hand-over is a context switch per contended operation: two
 * processes churning small blocks ran 40 times slower.
 */
#define SHARED_RECHECK_MS 20
#define SPIN_TRIES 12
#define SPIN_PAUSES 64

#if defined(__SANITIZE_THREAD__)
#define FM_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FM_UNDER_TSAN 1
#endif
#endif
#ifndef FM_UNDER_TSAN
#define FM_UNDER_TSAN 0
#endif

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int lock_rechecking(pthread_mutex_t *m)
{
    int err = pthread_mutex_trylock(m);
    /* Held for a microsecond or so at a time: another processor's holder is
     * usually gone before a sleep would begin.  The pauses between tries
     * double: a waiter that keeps pulling the lock's cache line away slows
     * the holder it waits for. */
    for (int spins = 0; err == EBUSY && spins < SPIN_TRIES; spins++) {
        for (int i = 0; i < SPIN_PAUSES << (spins < 4 ? spins : 4); i++)
            cpu_relax();
        err = pthread_mutex_trylock(m);
    }
#if FM_UNDER_TSAN
    /* ThreadSanitizer's pthread_mutex_timedlock does not count an
     * EOWNERDEAD return as taking the lock (its trylock and lock do) and
     * reports the unlock that follows: its builds wait without the
     * recheck, which only the kill tests need. */
    if (err == EBUSY)
        err = pthread_mutex_lock(m);
#endif
    while (err == EBUSY) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t); /* the clock timedlock's deadline is on */
        t.tv_nsec += SHARED_RECHECK_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        err = pthread_mutex_timedlock(m, &t);
        if (err == ETIMEDOUT)
            err = EBUSY;
    }
    return err;
}

int shared_lock(struct shared *s)
{
    pthread_mutex_t *m = mutex_of(s);
    int err = lock_rechecking(m);
    if (fm_unlikely(err == EOWNERDEAD)) {
        if ((err = repair(s)) != 0) {
            pthread_mutex_unlock(m); /* not made consistent: unrecoverable from now on */
            return err;
        }
        log_crashpoint(); /* dying here leaves it "owner died" again: an empty repair */
        pthread_mutex_consistent(m);
        s->reread = true;
    } else if (fm_unlikely(err == ENOTRECOVERABLE)) {
        snprintf(s->why, s->why_len,
                 "a process died holding the arena lock and its operation could not be "
                 "rolled back; reopen the arena when every process has closed it");
        return FM_ECORRUPT;
    } else if (fm_unlikely(err)) {
        return err;
    }
    if (fm_unlikely(s->reread || s->blk->sh_holder != s->me)) {
        reread(s);
        if (fm_unlikely(s->h->sb->sb_file_size > s->reserved)) {
            s->reread = true; /* and every lock after this one checks again */
            pthread_mutex_unlock(m);
            snprintf(s->why, s->why_len,
                     "another process grew the arena past this one's max_size");
            return ENOMEM;
        }
    }
    return 0;
}

void shared_unlock(struct shared *s)
{
    pthread_mutex_unlock(mutex_of(s));
}

int shared_teardown(struct shared *s)
{
    struct heap *h = s->h;
    uint64_t p = h->sb->sb_shared;
    s->blk = NULL;
    if (!p)
        return 0;
    op_begin(h);
    heap_free(h, p);
    hset(h, SB_SHARED, 0);
    int err = op_end(h, true);
    if (err)
        snprintf(s->why, s->why_len, "%s", h->msg);
    return err;
}
