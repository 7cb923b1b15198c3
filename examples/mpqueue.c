/*
 * mpqueue.c -- a message queue between processes: any number of producers
 * and consumers, each its own process, share one arena opened with
 * FM_SHARED.  Any of them may be killed (SIGKILL) at any instruction; the
 * others go on, no message that was reported put is lost, no block leaks.
 *
 *   mpqueue FILE put TEXT...          queue one message (the words joined by spaces)
 *   mpqueue FILE get                  take the oldest message and print it (exit 1: empty)
 *   mpqueue FILE produce N [LABEL]    queue LABEL-1 .. LABEL-N (LABEL: p<pid>), printing
 *                                     "put #SEQ TEXT" for each once it is queued
 *   mpqueue FILE consume N            take N messages, printing "got #SEQ TEXT" for each
 *   mpqueue FILE drain                take messages until none is queued or in flight
 *   mpqueue FILE list                 the queued messages, oldest first
 *   mpqueue FILE stats                ready and in-flight messages, repairs so far
 *   mpqueue FILE check                with no other process in the queue: fm_check, and
 *                                     every allocated block is a queued message (no leak)
 *
 *   produce, consume and drain take --quiet (one summary line instead),
 *   --pause MS (sleep between messages) and --wait S (give up after S
 *   seconds without progress, default 10: a full queue for a producer, an
 *   empty one for a consumer).  put waits 10 s for room; get never waits.
 *
 * Layout.  fm_root() holds struct mq_root: a sequence counter and MQ_SLOTS
 * slots.  A slot is a claim word and the offset of a message block
 * (struct mq_msg), 0 when the slot is free.
 *
 * Claims.  fm_calloc_to() allocates a block and links it into a slot in one
 * crash-atomic step, but it overwrites whatever the slot holds: two
 * producers filling one slot would leak a block, and a producer filling a
 * slot a consumer is freeing could lose a message.  So a slot's link is
 * changed only by the process that holds the slot's claim -- its pid, set
 * by a compare-and-swap from 0 -- and the library's lock orders the calls
 * themselves.  Without the claim a process only reads, and what it reads
 * is a hint, read again once it holds the claim.
 *   put:  claim a free slot, fm_calloc_to() a message into it (state 0),
 *         fill it in, take a seq from the counter, store state = MQ_READY
 *         (release) last, drop the claim.  Only then is it reported.
 *   take: find the unclaimed ready message with the smallest seq, claim its
 *         slot, check that the slot still links that block (it may have
 *         been taken and the slot refilled meanwhile), count a delivery,
 *         print the text, fm_free_from() the slot, drop the claim.
 * A consumer's claim is what a "taken" state in the message would be, so
 * the message has none: it is being written (0) or complete (MQ_READY).
 *
 * Death.  A claim whose process is gone (kill(pid, 0) fails with ESRCH, or
 * the process is a zombie) is taken over by whoever finds it, with a
 * compare-and-swap from the dead pid.  The heir first takes the arena lock
 * (fm_check(): any call that takes it would do): if the dead process died
 * inside fm_calloc_to() or fm_free_from(), holding the lock, the lock's
 * next taker rolls that call back -- and until then the slot may show the
 * call half done (fm_free_from clears the link before it frees the block).
 * Then the slot tells what to do:
 *   free                        nothing (a producer died before linking,
 *                               or a consumer after freeing)
 *   a message in state 0        its producer died writing it: free it
 *   a message in state MQ_READY its producer died after finishing it, or
 *                               its consumer died before freeing it: leave
 *                               it queued
 * and the heir drops the claim.
 *
 * Delivery is at least once.  A consumer killed after printing a message
 * but before freeing it leaves the message queued, and it is delivered
 * again; its deliveries count is then above 1, and the next consumer marks
 * it "(redelivered)" (it may also have died before printing: the mark
 * means "maybe seen before").  A queued message is removed only by
 * fm_free_from() after it was printed, so none is lost.  Order is by seq
 * among the ready messages; a message whose consumer died stays behind
 * the dead claim until a process with nothing else to do settles it, so
 * it may come after newer ones.
 *
 * Limits.  Pids name processes: every process of a queue must live in one
 * pid namespace, and a dead process's claim whose pid the system has
 * already given to a new, live process waits until that one exits.  The
 * words shared with other processes are lock-free atomics (checked at
 * start): the library's stores into a slot are plain aligned 8-byte
 * stores made under its lock, which such loads read whole.
 */
#define _POSIX_C_SOURCE 200809L /* kill, nanosleep, clock_gettime */

#include <fmalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MQ_MAGIC    UINT64_C(0x3171704d6d66)     /* "fmMpq1" */
#define MQ_READY    UINT64_C(0x5944414552716d66) /* "fmqREADY": a complete message */
#define MQ_SLOTS    500u
#define MQ_TEXT_MAX (1u << 20) /* bytes of one message's text */
#define MQ_NAP_NS   1000000L   /* between tries: 1 ms */

/*
 * A message block.  state is 0 from fm_calloc_to() until the producer has
 * written everything else, then MQ_READY, never anything else.  The words
 * another process may read without the slot's claim are atomic.
 */
struct mq_msg {
    _Atomic uint64_t state;      /* 0: being written; MQ_READY: complete */
    _Atomic uint64_t seq;        /* order in the queue: smaller is older */
    _Atomic uint64_t deliveries; /* consumers that took it; above 1: one died holding it */
    uint64_t producer;           /* pid of the process that put it */
    uint64_t len;                /* bytes of text, the NUL not counted */
    char text[];                 /* len bytes, then a NUL */
};

/*
 * msg changes only while claim holds the pid of the process changing it
 * (claim 0: nobody).  A free slot is claim 0 and msg 0; an unclaimed slot
 * with a message holds a MQ_READY one.
 */
struct mq_slot {
    _Atomic uint64_t claim; /* pid of the process working on the slot, 0: none */
    _Atomic fm_off_t msg;   /* the message, 0: the slot is free */
};

/* Lives in fm_root(); all zero (an empty queue) when the arena is created. */
struct mq_root {
    _Atomic uint64_t magic;      /* MQ_MAGIC once the arena is a queue */
    _Atomic uint64_t last_seq;   /* seq of the newest message */
    _Atomic uint64_t taken_over; /* claims of dead processes taken over */
    _Atomic uint64_t dropped;    /* unfinished messages of dead producers freed */
    uint64_t unused[4];
    struct mq_slot slot[MQ_SLOTS];
};

_Static_assert(sizeof(struct mq_root) <= 8192, "the root fits the root region");
_Static_assert(sizeof(_Atomic fm_off_t) == sizeof(fm_off_t), "msg is an fm_off_t slot");
_Static_assert(sizeof(struct mq_msg) % 8 == 0, "text starts on a word");

/* An open queue, and what its commands were asked to do. */
struct mq {
    struct fm_info *fi;
    struct mq_root *root;
    const char *path;
    uint64_t pid;
    bool quiet;
    long pause_ms;
    long wait_s;
};

static const char *prog = "mpqueue";

/* Report a failed library call (its last error says why); returns -1. */
static int mq_fail(const struct mq *q, const char *what)
{
    fprintf(stderr, "%s: %s: %s: %s\n", prog, q->path, what, fm_last_error_detail());
    return -1;
}

static int mq_damaged(const struct mq *q, unsigned i, const char *why)
{
    fprintf(stderr, "%s: %s: slot %u: %s (the arena is damaged)\n", prog, q->path, i, why);
    return -1;
}

/* ---- processes ------------------------------------------------------------- */

/*
 * Is the process that wrote `pid` into a claim gone?  A zombie is: it runs
 * no more code, and the kernel has released its robust futexes (so a
 * library lock it held reads "owner died"), but kill() finds it until its
 * parent reaps it.  Our own pid in a claim is a dead process's we inherited
 * (callers hold no claim while they ask).  A value no pid can have is
 * nobody's.
 */
static bool pid_gone(const struct mq *q, uint64_t pid)
{
    if (pid == 0 || pid > INT32_MAX || pid == q->pid)
        return true;
    if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
        return true;
    char path[40], buf[512];
    snprintf(path, sizeof path, "/proc/%" PRIu64 "/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT; /* exited since; else assume alive */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold anything */
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nap(long ns)
{
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- slots ----------------------------------------------------------------- */

static bool slot_claim(const struct mq *q, struct mq_slot *s, uint64_t holder)
{
    return atomic_compare_exchange_strong_explicit(&s->claim, &holder, q->pid, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

static void slot_release(struct mq_slot *s)
{
    atomic_store_explicit(&s->claim, 0, memory_order_release);
}

/* The message at off, if its header lies in the file; NULL otherwise (a
 * stale hint, or damage: the caller tells which). */
static struct mq_msg *msg_at(const struct mq *q, fm_off_t off)
{
    if (!off || off % 8 || !fm_pointer(q->fi, off + sizeof(struct mq_msg) - 1))
        return NULL;
    return fm_pointer(q->fi, off);
}

/*
 * The message slot i links, checked (claim held, so it cannot go away):
 * a live block that holds its header and, once ready, its text.  NULL
 * when the slot is free; *bad when it links something else.
 */
static struct mq_msg *msg_claimed(const struct mq *q, unsigned i, bool *bad)
{
    fm_off_t off = atomic_load_explicit(&q->root->slot[i].msg, memory_order_acquire);
    struct mq_msg *m = msg_at(q, off);
    *bad = off && !m;
    if (!m)
        return NULL;
    size_t size = fm_usable_size(q->fi, m); /* 0: not a live block */
    uint64_t state = atomic_load_explicit(&m->state, memory_order_acquire);
    *bad = size <= sizeof *m || (state != 0 && state != MQ_READY) ||
           (state == MQ_READY && (m->len > size - sizeof *m - 1 || m->text[m->len] != '\0'));
    return *bad ? NULL : m;
}

/* ---- repair ---------------------------------------------------------------- */

/*
 * Settle slot i, whose claim this process took over from a dead one (see
 * the file comment).  0, or -1 on error.
 */
static int slot_settle(struct mq *q, unsigned i)
{
    struct mq_slot *s = &q->root->slot[i];
    /* Take the arena lock: the dead process's call in flight, if any, is
     * rolled back before we read the slot. */
    if (fm_check(q->fi) != 0) {
        fprintf(stderr, "%s: %s: check after a process died: %s (%s)\n", prog, q->path,
                fm_last_error_detail(), fm_check_message(q->fi));
        return -1;
    }
    bool bad;
    struct mq_msg *m = msg_claimed(q, i, &bad);
    if (bad)
        return mq_damaged(q, i, "links a block that is not a message");
    if (m && atomic_load_explicit(&m->state, memory_order_acquire) == 0) {
        fm_free_from(q->fi, (fm_off_t *)&s->msg);
        if (atomic_load(&s->msg) != 0)
            return mq_fail(q, "cannot free a dead producer's unfinished message");
        atomic_fetch_add(&q->root->dropped, 1);
    }
    atomic_fetch_add(&q->root->taken_over, 1);
    return 0;
}

/*
 * Take over and settle every claim whose process is gone.  Called when
 * there is nothing else to do (a full or empty queue), never while this
 * process holds a claim.  0, or -1 on error.
 */
static int mq_reap(struct mq *q)
{
    for (unsigned i = 0; i < MQ_SLOTS; i++) {
        struct mq_slot *s = &q->root->slot[i];
        uint64_t holder = atomic_load_explicit(&s->claim, memory_order_relaxed);
        if (!holder || !pid_gone(q, holder) || !slot_claim(q, s, holder))
            continue;
        int err = slot_settle(q, i);
        slot_release(s);
        if (err)
            return -1;
    }
    return 0;
}

/* ---- put and take ---------------------------------------------------------- */

/*
 * Queue one message.  1 queued (its seq in *seq), 0 the queue is full,
 * -1 on error.  Producers start looking at different slots (by pid) so
 * that they seldom race for the same one.
 */
static int mq_put(struct mq *q, const char *text, size_t len, uint64_t *seq)
{
    unsigned start = (unsigned)(q->pid % MQ_SLOTS);
    for (unsigned k = 0; k < MQ_SLOTS; k++) {
        struct mq_slot *s = &q->root->slot[(start + k) % MQ_SLOTS];
        if (atomic_load_explicit(&s->claim, memory_order_relaxed) ||
            atomic_load_explicit(&s->msg, memory_order_relaxed) || !slot_claim(q, s, 0))
            continue;
        if (atomic_load_explicit(&s->msg, memory_order_acquire)) {
            slot_release(s); /* filled, and released, since we looked */
            continue;
        }
        struct mq_msg *m = fm_calloc_to(q->fi, (fm_off_t *)&s->msg, 1, sizeof *m + len + 1);
        if (!m) {
            slot_release(s);
            return mq_fail(q, "cannot allocate a message");
        }
        m->producer = q->pid;
        m->len = len;
        memcpy(m->text, text, len);
        *seq = atomic_fetch_add(&q->root->last_seq, 1) + 1;
        atomic_store_explicit(&m->seq, *seq, memory_order_relaxed);
        atomic_store_explicit(&m->state, MQ_READY, memory_order_release); /* the commit */
        slot_release(s);
        return 1;
    }
    return 0;
}

/* The unclaimed ready slot with the smallest seq (a hint), or -1. */
static int mq_oldest(const struct mq *q, fm_off_t *off_out)
{
    int best = -1;
    uint64_t best_seq = UINT64_MAX;
    for (unsigned i = 0; i < MQ_SLOTS; i++) {
        struct mq_slot *s = &q->root->slot[i];
        if (atomic_load_explicit(&s->claim, memory_order_relaxed))
            continue;
        fm_off_t off = atomic_load_explicit(&s->msg, memory_order_acquire);
        struct mq_msg *m = msg_at(q, off);
        if (!m || atomic_load_explicit(&m->state, memory_order_acquire) != MQ_READY)
            continue;
        uint64_t seq = atomic_load_explicit(&m->seq, memory_order_relaxed);
        if (seq < best_seq) {
            best = (int)i;
            best_seq = seq;
            *off_out = off;
        }
    }
    return best;
}

enum mq_show { SHOW_TEXT, SHOW_LINE, SHOW_NONE };

/* Print a taken message; false if it could not be written out. */
static bool msg_show(const struct mq_msg *m, uint64_t deliveries, enum mq_show show)
{
    if (show == SHOW_NONE)
        return true;
    if (show == SHOW_LINE)
        printf("got #%" PRIu64 " ", atomic_load_explicit(&m->seq, memory_order_relaxed));
    fwrite(m->text, 1, m->len, stdout);
    if (show == SHOW_LINE && deliveries > 1)
        fputs(" (redelivered)", stdout);
    putchar('\n');
    /* Out before the message is freed: that is what makes delivery at
     * least once. */
    return fflush(stdout) == 0 && !ferror(stdout);
}

/*
 * Take the oldest ready message: print it, then free it.  1 taken (its
 * deliveries in *deliveries), 0 nothing ready, -1 on error.
 */
static int mq_take(struct mq *q, enum mq_show show, uint64_t *deliveries)
{
    for (;;) {
        fm_off_t off = 0;
        int i = mq_oldest(q, &off);
        if (i < 0)
            return 0;
        struct mq_slot *s = &q->root->slot[i];
        if (!slot_claim(q, s, 0))
            continue; /* another process is at it: look again */
        if (atomic_load_explicit(&s->msg, memory_order_acquire) != off) {
            slot_release(s); /* taken and refilled meanwhile */
            continue;
        }
        bool bad;
        struct mq_msg *m = msg_claimed(q, (unsigned)i, &bad);
        if (!m || atomic_load_explicit(&m->state, memory_order_acquire) != MQ_READY) {
            slot_release(s);
            return mq_damaged(q, (unsigned)i, "an unclaimed message is not a complete one");
        }
        *deliveries = atomic_fetch_add(&m->deliveries, 1) + 1;
        if (!msg_show(m, *deliveries, show)) {
            slot_release(s); /* still queued, for another consumer */
            fprintf(stderr, "%s: cannot write the message out: %s\n", prog, strerror(errno));
            return -1;
        }
        fm_free_from(q->fi, (fm_off_t *)&s->msg);
        bool freed = atomic_load(&s->msg) == 0;
        slot_release(s);
        return freed ? 1 : mq_fail(q, "cannot free a taken message");
    }
}

/* ---- commands -------------------------------------------------------------- */

/*
 * Wait for room (a producer) or a message (a consumer): settle what dead
 * processes left, then sleep a little.  false once `wait_s` seconds have
 * passed since *since (the last progress), or on error (*err set).
 */
static bool mq_wait(struct mq *q, uint64_t since, int *err)
{
    if (mq_reap(q) != 0) {
        *err = -1;
        return false;
    }
    if (now_ms() - since >= (uint64_t)q->wait_s * 1000)
        return false;
    nap(MQ_NAP_NS);
    return true;
}

/* Queue one message, waiting while the queue is full.  0 or -1. */
static int cmd_put_one(struct mq *q, const char *text, bool report)
{
    size_t len = strlen(text);
    if (len > MQ_TEXT_MAX) {
        fprintf(stderr, "%s: a message holds at most %u bytes\n", prog, MQ_TEXT_MAX);
        return -1;
    }
    uint64_t seq, since = now_ms();
    int r, err = 0;
    while ((r = mq_put(q, text, len, &seq)) == 0)
        if (!mq_wait(q, since, &err)) {
            if (!err)
                fprintf(stderr, "%s: %s: the queue stayed full for %ld s\n", prog, q->path,
                        q->wait_s);
            return -1;
        }
    if (r < 0)
        return -1;
    if (report) {
        printf("put #%" PRIu64 " %s\n", seq, text);
        fflush(stdout);
    }
    return 0;
}

static int cmd_put(struct mq *q, int argc, char **argv)
{
    size_t total = 1;
    for (int i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    char *text = malloc(total), *end = text;
    if (!text) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        memcpy(end, argv[i], len);
        end += len;
        *end++ = i + 1 < argc ? ' ' : '\0';
    }
    int err = cmd_put_one(q, text, false);
    free(text);
    return err ? 1 : 0;
}

static int cmd_produce(struct mq *q, long n, const char *label)
{
    char text[128];
    for (long i = 1; i <= n; i++) {
        snprintf(text, sizeof text, "%s-%ld", label, i);
        if (cmd_put_one(q, text, !q->quiet) != 0)
            return 1;
        if (q->pause_ms && i < n)
            nap(q->pause_ms * 1000000L);
    }
    if (q->quiet)
        printf("produced %ld messages (%s-1 .. %s-%ld)\n", n, label, label, n);
    return 0;
}

/* Is any slot claimed or holding a message?  (A snapshot.) */
static bool mq_busy(const struct mq *q)
{
    for (unsigned i = 0; i < MQ_SLOTS; i++)
        if (atomic_load(&q->root->slot[i].claim) || atomic_load(&q->root->slot[i].msg))
            return true;
    return false;
}

/*
 * consume N (n >= 0): take n messages, waiting for each.  drain (n < 0):
 * take messages until none is ready and no slot is claimed -- a claimed
 * slot may become a ready message (a live producer finishing, or a dead
 * process's claim to settle).
 */
static int cmd_consume(struct mq *q, long n)
{
    long got = 0, again = 0;
    uint64_t since = now_ms();
    int err = 0;
    while (n < 0 || got < n) {
        uint64_t deliveries;
        int r = mq_take(q, q->quiet ? SHOW_NONE : SHOW_LINE, &deliveries);
        if (r < 0)
            return 1;
        if (r > 0) {
            got++;
            again += deliveries > 1;
            since = now_ms();
            if (q->pause_ms)
                nap(q->pause_ms * 1000000L);
            continue;
        }
        if (n < 0 && !mq_busy(q))
            break;
        if (!mq_wait(q, since, &err)) {
            if (!err)
                fprintf(stderr, "%s: %s: nothing to take for %ld s (took %ld)\n", prog, q->path,
                        q->wait_s, got);
            return 1;
        }
    }
    if (q->quiet)
        printf("consumed %ld messages (%ld redelivered)\n", got, again);
    return 0;
}

static int cmd_get(struct mq *q)
{
    uint64_t deliveries;
    int r = mq_take(q, SHOW_TEXT, &deliveries);
    if (r == 0) /* a dead process's claim may hide a message */
        r = mq_reap(q) == 0 ? mq_take(q, SHOW_TEXT, &deliveries) : -1;
    if (r == 0)
        fprintf(stderr, "%s: %s: the queue is empty\n", prog, q->path);
    if (r > 0 && deliveries > 1)
        fprintf(stderr,
                "%s: note: that message may have been delivered before (its consumer "
                "died)\n",
                prog);
    return r > 0 ? 0 : 1;
}

struct mq_item {
    uint64_t seq, producer;
    char *text;
};

static int item_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct mq_item *)a)->seq, y = ((const struct mq_item *)b)->seq;
    return (x > y) - (x < y);
}

/* Copy the ready message of slot i into *it, holding its claim meanwhile
 * so that it cannot be freed under us.  1 copied, 0 none, -1 error. */
static int slot_copy(struct mq *q, unsigned i, struct mq_item *it)
{
    struct mq_slot *s = &q->root->slot[i];
    if (!atomic_load(&s->msg) || !slot_claim(q, s, 0))
        return 0; /* free, or in flight */
    bool bad;
    struct mq_msg *m = msg_claimed(q, i, &bad);
    int r = 0;
    if (bad || (m && atomic_load(&m->state) != MQ_READY)) {
        r = mq_damaged(q, i, "an unclaimed message is not a complete one");
    } else if (m) {
        it->seq = atomic_load(&m->seq);
        it->producer = m->producer;
        it->text = malloc(m->len + 1);
        r = it->text ? 1 : -1;
        if (it->text)
            memcpy(it->text, m->text, m->len + 1);
    }
    slot_release(s);
    return r;
}

static int cmd_list(struct mq *q)
{
    struct mq_item *items = calloc(MQ_SLOTS, sizeof *items);
    size_t n = 0;
    int r = items ? 0 : -1;
    for (unsigned i = 0; i < MQ_SLOTS && r >= 0; i++)
        if ((r = slot_copy(q, i, &items[n])) > 0)
            n++;
    if (r >= 0) {
        qsort(items, n, sizeof *items, item_cmp);
        for (size_t k = 0; k < n; k++)
            printf("#%" PRIu64 " from %" PRIu64 ": %s\n", items[k].seq, items[k].producer,
                   items[k].text);
    } else if (!items) {
        fprintf(stderr, "%s: out of memory\n", prog);
    }
    for (size_t k = 0; k < n; k++)
        free(items[k].text);
    free(items);
    return r < 0;
}

/* A snapshot: other processes change the slots while we count. */
static int cmd_stats(struct mq *q)
{
    unsigned ready = 0, writing = 0, taking = 0, dead = 0;
    for (unsigned i = 0; i < MQ_SLOTS; i++) {
        struct mq_slot *s = &q->root->slot[i];
        uint64_t holder = atomic_load(&s->claim);
        struct mq_msg *m = msg_at(q, atomic_load(&s->msg));
        bool complete = m && atomic_load(&m->state) == MQ_READY;
        if (!holder) {
            ready += complete;
            continue;
        }
        dead += pid_gone(q, holder);
        if (complete)
            taking++;
        else
            writing++; /* a claimed free slot too: mostly a producer about to write */
    }
    printf("ready: %u\n", ready);
    printf("in flight: %u (being written %u, being taken %u; held by dead processes %u)\n",
           writing + taking, writing, taking, dead);
    printf("slots: %u\n", MQ_SLOTS);
    printf("messages put: %" PRIu64 "\n", atomic_load(&q->root->last_seq));
    printf("claims taken over from dead processes: %" PRIu64 "\n",
           atomic_load(&q->root->taken_over));
    printf("unfinished messages freed: %" PRIu64 "\n", atomic_load(&q->root->dropped));
    return 0;
}

/* Alone in the arena (opened without FM_SHARED): every allocated block
 * must be a message that a slot links. */
static int cmd_check(struct mq *q)
{
    unsigned linked = 0, claims = 0;
    for (unsigned i = 0; i < MQ_SLOTS; i++) {
        struct mq_slot *s = &q->root->slot[i];
        claims += atomic_load(&s->claim) != 0; /* all of dead processes now */
        bool bad;
        linked += msg_claimed(q, i, &bad) != NULL;
        if (bad) {
            mq_damaged(q, i, "links a block that is not a message");
            return 1;
        }
    }
    struct fm_stats st;
    if (fm_stats(q->fi, &st) != 0) {
        mq_fail(q, "fm_stats");
        return 1;
    }
    printf("messages: %u\n", linked);
    printf("claims left by dead processes: %u\n", claims);
    printf("allocated: %" PRIu64 " blocks (%" PRIu64 " bytes)\n", st.allocated_count,
           st.allocated_bytes);
    int err = fm_check(q->fi);
    if (err) {
        printf("check: FAILED: %s (%s)\n", fm_strerror(err), fm_check_message(q->fi));
        return 1;
    }
    if (st.allocated_count != linked) {
        printf("check: FAILED: %" PRIu64 " blocks allocated, %u linked (a leak)\n",
               st.allocated_count, linked);
        return 1;
    }
    printf("check: ok\n");
    return 0;
}

/* ---- main ------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr,
            "usage: %s FILE put TEXT...\n"
            "       %s FILE produce N [LABEL] [OPTIONS]\n"
            "       %s FILE consume N [OPTIONS] | drain [OPTIONS]\n"
            "       %s FILE get | list | stats | check\n"
            "options: --quiet, --pause MS, --wait S\n",
            prog, prog, prog, prog);
    return 2;
}

static bool parse_long(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < 0 || v > max)
        return false;
    *out = v;
    return true;
}

/* Split the arguments after the command into options (into q; *seen
 * says whether there were any) and the rest (into pos).  false on a bad
 * option. */
static bool parse_options(struct mq *q, int argc, char **argv, char **pos, int *npos, bool *seen)
{
    *npos = 0;
    *seen = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long *value = strcmp(a, "--pause") == 0  ? &q->pause_ms
                      : strcmp(a, "--wait") == 0 ? &q->wait_s
                                                 : NULL;
        if (strcmp(a, "--quiet") == 0)
            q->quiet = true;
        else if (value && !parse_long(i + 1 < argc ? argv[++i] : NULL, 3600000, value))
            return false;
        else if (!value && a[0] == '-' && a[1] == '-')
            return false;
        else if (!value) {
            pos[(*npos)++] = argv[i];
            continue;
        }
        *seen = true;
    }
    return true;
}

/* Open (or create) the queue.  0, or 1 with a message. */
static int mq_open(struct mq *q, bool alone)
{
    struct fm_options opt = {0};
    /* check wants the arena to itself: an exclusive open fails while
     * any other process has the queue open. */
    opt.flags = alone ? 0 : FM_SHARED | FM_CREATE;
    int err = fm_open(q->path, &opt, &q->fi);
    if (err) {
        fprintf(stderr, "%s: %s: %s\n", prog, q->path, fm_last_error_detail());
        if (alone && err == FM_ELOCKED)
            fprintf(stderr, "%s: check runs when no other process has the queue open\n", prog);
        return 1;
    }
    q->root = fm_root(q->fi);
    if (!atomic_is_lock_free(&q->root->last_seq)) {
        /* A lock-based atomic's lock would be this process's, not the file's. */
        fprintf(stderr, "%s: this machine has no lock-free 64-bit atomics\n", prog);
        return 1;
    }
    /* A new arena's root is all zero: an empty queue, which the first
     * process to get here marks as one. */
    uint64_t magic = 0;
    if (!alone)
        atomic_compare_exchange_strong(&q->root->magic, &magic, MQ_MAGIC);
    else
        magic = atomic_load(&q->root->magic);
    if (magic != 0 && magic != MQ_MAGIC) {
        fprintf(stderr, "%s: %s: the arena holds something other than a queue\n", prog, q->path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    struct mq q = {.path = argv[1], .pid = (uint64_t)getpid(), .wait_s = 10};
    const char *cmd = argv[2];
    char **pos = calloc((size_t)argc, sizeof *pos);
    int npos;
    if (!pos)
        return 1;
    /* put takes every word as text; the others take options */
    bool is_put = strcmp(cmd, "put") == 0, options = false;
    bool takes_options =
        strcmp(cmd, "produce") == 0 || strcmp(cmd, "consume") == 0 || strcmp(cmd, "drain") == 0;
    if (is_put)
        npos = argc - 3;
    else if (!parse_options(&q, argc - 3, argv + 3, pos, &npos, &options))
        return usage();
    long n = 0;
    bool ok = (is_put && npos >= 1) ||
              (strcmp(cmd, "produce") == 0 && (npos == 1 || npos == 2) &&
               parse_long(pos[0], 100000000, &n)) ||
              (strcmp(cmd, "consume") == 0 && npos == 1 && parse_long(pos[0], 100000000, &n)) ||
              ((strcmp(cmd, "drain") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "list") == 0 ||
                strcmp(cmd, "stats") == 0 || strcmp(cmd, "check") == 0) &&
               npos == 0);
    if (!ok || (options && !takes_options))
        return usage();

    bool check = strcmp(cmd, "check") == 0;
    int status = mq_open(&q, check);
    if (status) {
        /* nothing more */
    } else if (is_put) {
        status = cmd_put(&q, argc - 3, argv + 3);
    } else if (strcmp(cmd, "produce") == 0) {
        char label[32];
        snprintf(label, sizeof label, "p%" PRIu64, q.pid);
        status = cmd_produce(&q, n, npos == 2 ? pos[1] : label);
    } else if (strcmp(cmd, "consume") == 0) {
        status = cmd_consume(&q, n);
    } else if (strcmp(cmd, "drain") == 0) {
        status = cmd_consume(&q, -1);
    } else if (strcmp(cmd, "get") == 0) {
        status = cmd_get(&q);
    } else if (strcmp(cmd, "list") == 0) {
        status = cmd_list(&q);
    } else if (strcmp(cmd, "stats") == 0) {
        status = cmd_stats(&q);
    } else {
        status = cmd_check(&q);
    }
    free(pos);
    if (q.fi && fm_close(q.fi) != 0 && !status) {
        fprintf(stderr, "%s: %s: cannot close: %s\n", prog, q.path, fm_last_error_detail());
        status = 1;
    }
    return status;
}
