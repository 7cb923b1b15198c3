/*
 * test_misuse.c -- what a careless program does to an arena, and what it
 * must get back instead of a crash or a damaged heap (issue 13):
 *
 *   - writes into a block it freed, over the thread cache's list link or
 *     marker: fm_check reports FM_ECORRUPT, allocation never hands out an
 *     address outside the heap, the error handler hears of it, and the
 *     dropped blocks come back at close or at recovery;
 *   - threads racing fm_free_from / fm_realloc_to on the same slots;
 *   - fork(): the child's inherited handle refuses to change the arena,
 *     never deadlocks, and its fm_close only unmaps.
 *
 * Each case runs in a child process of its own, so that a crash is a
 * failure of that case (with its signal) and not the end of the program.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_util.h"
#include "fmalloc.h"

static const char *path;
static uint64_t seed;

static struct fm_info *open_arena(unsigned flags)
{
    return require_open(path, (struct fm_options){.flags = flags | FM_NOSYNC});
}

static struct fm_info *fresh(void)
{
    return fresh_arena(path, (struct fm_options){.flags = FM_NOSYNC});
}

struct errors {
    atomic_int count;
    int last;
    char msg[256];
};

static void record_error(struct fm_info *fi, int err, const char *msg, void *arg)
{
    struct errors *e = arg;
    (void)fi;
    e->last = err;
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "");
    atomic_fetch_add(&e->count, 1);
}

/* Run fn in a child; its exit status is the verdict.  A signal fails the
 * case (the signal is named), unless it is want_signal. */
static void isolated(const char *name, void (*fn)(void), int want_signal)
{
    fflush(NULL);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(harness_failures ? 1 : 0);
    }
    int st;
    require_eq(waitpid(pid, &st, 0), pid);
    harness_checks++;
    bool ok = want_signal ? WIFSIGNALED(st) && WTERMSIG(st) == want_signal
                          : WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok) {
        harness_failures++;
        if (WIFSIGNALED(st))
            fprintf(stderr, "FAIL: %s: killed by signal %d (%s)\n", name, WTERMSIG(st),
                    strsignal(WTERMSIG(st)));
        else
            fprintf(stderr, "FAIL: %s: exit status %d\n", name, WEXITSTATUS(st));
    } else {
        printf("ok: %s\n", name);
    }
}

/* Is p a payload address inside the heap of fi (past the root region)? */
static bool in_heap(struct fm_info *fi, const void *p)
{
    struct fm_stats st;
    fm_off_t off = fm_offset(fi, p);
    return p && fm_stats(fi, &st) != EINVAL && off >= 12288 && off < st.file_size;
}

/* ---- writes after free into a cached block -------------------------------- */

enum { UAF_SIZE = 40 }; /* a 48-byte chunk: thread-cached */

/*
 * Free two blocks into this thread's cache (q first, so p heads the list
 * and links q), then store `value` into word `word` of p, as a program
 * that still holds p would.
 */
static void free_then_write(struct fm_info *fi, int word, uint64_t value, void **p_out,
                            void **q_out)
{
    void *q = fm_malloc(fi, UAF_SIZE), *p = fm_malloc(fi, UAF_SIZE);
    require_true(p && q);
    fm_free(fi, q);
    fm_free(fi, p);
    require_eq(fm_check(fi), 0);
    memcpy((char *)p + 8 * word, &value, 8);
    *p_out = p;
    *q_out = q;
}

/* fm_check must report it, fm_malloc must stay in the heap and tell the
 * handler; then the heap is sound again, and the dropped blocks are free
 * after close and reopen. */
static void uaf_case(int word, uint64_t value)
{
    struct errors e = {0};
    struct fm_info *fi = fresh();
    fm_set_error_handler(fi, record_error, &e);
    void *p, *q;
    free_then_write(fi, word, value, &p, &q);
    expect_eq(fm_check(fi), FM_ECORRUPT);
    expect_true(fm_check_message(fi)[0] != 0);
    printf("  fm_check: %s\n", fm_check_message(fi));
    expect_eq(fm_usable_size(fi, q), 0); /* follows p's link, or refuses to */
    for (int i = 0; i < 4; i++) {
        unsigned char *r = fm_malloc(fi, UAF_SIZE);
        require_true(in_heap(fi, r));
        memset(r, 0xee, UAF_SIZE); /* what broke the arena: a store through a bad block */
    }
    expect_true(atomic_load(&e.count) >= 1);
    expect_eq(e.last, FM_ECORRUPT);
    printf("  handler: %d call(s): %s\n", atomic_load(&e.count), e.msg);
    expect_eq(fm_check(fi), 0); /* the list was dropped, not followed */
    if (fm_check(fi))
        printf("  %s\n", fm_check_message(fi));
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    uint64_t held = 4 + (word == 1); /* p lost its marker: it cannot be told from a live block */
    expect_eq(fm_close(fi), 0);
    fi = open_arena(0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.recovered, 0);
    expect_eq(st.allocated_count, held); /* the dropped, still marked blocks came back */
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

static void uaf_link_in_superblock(void) { uaf_case(0, 64); }
static void uaf_link_wild(void) { uaf_case(0, 0x4141414141414141ull); }
static void uaf_link_zero(void) { uaf_case(0, 0); }
static void uaf_marker(void) { uaf_case(1, 0x1234); }

/* Without a handler: a message and abort(), as for an invalid free. */
static void uaf_default_aborts(void)
{
    struct fm_info *fi = fresh();
    void *p, *q;
    free_then_write(fi, 0, 64, &p, &q);
    for (int i = 0; i < 4; i++)
        memset(fm_malloc(fi, UAF_SIZE), 0xee, UAF_SIZE);
    fm_close(fi);
}

/* A process that dropped a list and then died (the case returns without
 * closing: `isolated` ends the child with _exit): recovery's sweep frees
 * the dropped blocks, which still hold their markers. */
static void uaf_then_crash(void)
{
    struct errors e = {0};
    struct fm_info *fi = fresh();
    fm_set_error_handler(fi, record_error, &e);
    void *p, *q;
    free_then_write(fi, 0, 0x4141414141414141ull, &p, &q);
    void *r = fm_malloc(fi, UAF_SIZE);
    require_true(in_heap(fi, r));
    expect_true(atomic_load(&e.count) >= 1);
}

static void uaf_recovered(void)
{
    struct fm_info *fi = open_arena(0);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.recovered, 1);
    expect_eq(st.allocated_count, 1); /* r only: p and q were swept */
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

/* ---- threads racing on one slot ------------------------------------------------- */

enum { RACE_SLOTS = 64, RACE_THREADS = 3, RACE_ROUNDS = 3000 };

struct racer {
    struct fm_info *fi;
    pthread_barrier_t *start;
    int id;
    bool realloc_too;
    uint64_t rng;
};

static void *race_run(void *arg)
{
    struct racer *r = arg;
    fm_off_t *root = fm_root(r->fi);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_wait(r->start); /* the slots are full */
        for (int k = 0; k < RACE_SLOTS; k++) {
            if (r->realloc_too && (harness_rand(&r->rng) & 1))
                fm_realloc_to(r->fi, &root[k], 16 + harness_rand(&r->rng) % 200);
            else
                fm_free_from(r->fi, &root[k]);
        }
        pthread_barrier_wait(r->start); /* everyone is done with the slots */
        pthread_barrier_wait(r->start); /* main has checked them */
    }
    return NULL;
}

static void race_slots(bool realloc_too)
{
    struct errors e = {0};
    struct fm_info *fi = fresh();
    fm_set_error_handler(fi, record_error, &e);
    fm_off_t *root = fm_root(fi);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACE_THREADS + 1);
    struct racer r[RACE_THREADS];
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i] = (struct racer){fi, &start, i, realloc_too, seed + (uint64_t)i};
        require_eq(pthread_create(&t[i], NULL, race_run, &r[i]), 0);
    }
    long bad = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        for (int k = 0; k < RACE_SLOTS; k++)
            if (!root[k] && !fm_malloc_to(fi, &root[k], 24 + (size_t)k))
                bad++;
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&start);
        for (int k = 0; k < RACE_SLOTS; k++) /* a block, or nothing */
            if (root[k] && fm_usable_size(fi, fm_pointer(fi, root[k])) == 0)
                bad++;
        pthread_barrier_wait(&start);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    expect_eq(bad, 0);
    expect_eq(atomic_load(&e.count), 0);
    if (atomic_load(&e.count))
        printf("  %d handler calls, last: %s\n", atomic_load(&e.count), e.msg);
    for (int k = 0; k < RACE_SLOTS; k++)
        fm_free_from(fi, &root[k]);
    struct fm_stats st;
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.allocated_count, 0);
    expect_eq(fm_close(fi), 0);
    pthread_barrier_destroy(&start);
}

static void race_free_from(void) { race_slots(false); }
static void race_free_and_realloc_to(void) { race_slots(true); }

/* ---- fork ------------------------------------------------------------------------- */

enum { FORK_LIVE = 50 };

/* A parent with live blocks (patterned) and full thread caches. */
static struct fm_info *busy_parent(void *live[FORK_LIVE])
{
    struct fm_info *fi = fresh();
    void *tmp[200];
    for (int i = 0; i < 200; i++)
        tmp[i] = fm_malloc(fi, 16 + (size_t)i % 300);
    for (int i = 0; i < FORK_LIVE; i++) {
        live[i] = fm_malloc_to(fi, (fm_off_t *)fm_root(fi) + i, 24 + (size_t)i);
        require_true(live[i] != NULL);
        pat_fill(live[i], 24 + (size_t)i, (uint64_t)i);
    }
    for (int i = 0; i < 200; i++)
        fm_free(fi, tmp[i]);
    return fi;
}

/* The parent, after its child: keep working from the caches, check,
 * close, and find the arena clean at the next open. */
static void parent_carries_on(struct fm_info *fi, void *live[FORK_LIVE])
{
    void *tmp[300];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 300; i++) {
            tmp[i] = fm_malloc(fi, 16 + (size_t)i % 300);
            require_true(in_heap(fi, tmp[i]));
            memset(tmp[i], 0x77, 16);
        }
        expect_eq(fm_check(fi), 0);
        for (int i = 0; i < 300; i++)
            fm_free(fi, tmp[i]);
    }
    expect_eq(fm_check(fi), 0);
    if (fm_check(fi))
        printf("  %s\n", fm_check_message(fi));
    for (int i = 0; i < FORK_LIVE; i++)
        expect_eq(pat_check(live[i], 24 + (size_t)i, (uint64_t)i), SIZE_MAX);
    expect_eq(fm_close(fi), 0);
    fi = open_arena(0);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.recovered, 0);
    expect_eq(st.allocated_count, FORK_LIVE);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

/* Run child() in a fork of this process; it must exit 0 within 10 s. */
static void in_forked_child(struct fm_info *fi, void (*child)(struct fm_info *))
{
    fflush(NULL);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        alarm(10); /* a deadlock is a failure, not a hang */
        child(fi);
        fflush(NULL);
        _exit(harness_failures ? 1 : 0);
    }
    int st;
    require_eq(waitpid(pid, &st, 0), pid);
    expect_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (WIFSIGNALED(st))
        printf("  child killed by signal %d\n", WTERMSIG(st));
}

static void child_closes(struct fm_info *fi)
{
    expect_eq(fm_close(fi), 0); /* what an exit handler does */
}

static void fork_child_closes(void)
{
    void *live[FORK_LIVE];
    struct fm_info *fi = busy_parent(live);
    in_forked_child(fi, child_closes);
    /* The child's close released nothing of the parent's: not the flock. */
    struct fm_options o = {.flags = FM_NOSYNC};
    struct fm_info *other;
    expect_eq(fm_open(path, &o, &other), FM_ELOCKED);
    parent_carries_on(fi, live);
}

static void child_tries_everything(struct fm_info *fi)
{
    fm_off_t *root = fm_root(fi);
    void *live = fm_pointer(fi, root[0]);
    errno = 0;
    expect_true(fm_malloc(fi, 40) == NULL);
    expect_eq(fm_last_error(), FM_EFORKED);
    expect_eq(errno, EPERM);
    expect_true(fm_malloc(fi, 100000) == NULL);
    expect_true(fm_calloc(fi, 2, 40) == NULL);
    expect_true(fm_memalign(fi, 64, 40) == NULL);
    expect_true(fm_realloc(fi, live, 4000) == NULL);
    expect_true(fm_malloc_to(fi, &root[FORK_LIVE], 40) == NULL);
    expect_true(fm_realloc_to(fi, &root[1], 400) == NULL);
    fm_free(fi, live);
    fm_free_from(fi, &root[2]);
    expect_eq(root[2] != 0, 1);
    expect_eq(fm_trim(fi, 0), FM_EFORKED);
    expect_eq(fm_sync(fi), FM_EFORKED);
    expect_eq(fm_check(fi), FM_EFORKED);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), FM_EFORKED);
    expect_eq(fm_usable_size(fi, live), 0);
    fmalloc_set_target(fi);
    errno = 0;
    expect_true(fmalloc(40) == NULL);
    expect_eq(errno, EPERM);
    ffree(live);
    expect_true(strstr(fm_strerror(FM_EFORKED), "fork") != NULL);
    expect_eq(fm_close(fi), 0);
}

static void fork_child_refused(void)
{
    void *live[FORK_LIVE];
    struct fm_info *fi = busy_parent(live);
    in_forked_child(fi, child_tries_everything);
    parent_carries_on(fi, live);
}

/* The flock belongs to the open file, which a child shares until it closes
 * its handle or exits: the parent cannot reopen before that (Caveats in
 * fmalloc.h), and can after. */
static void fork_child_keeps_lock(void)
{
    void *live[FORK_LIVE];
    struct fm_info *fi = busy_parent(live);
    int go[2];
    require_eq(pipe(go), 0);
    fflush(NULL);
    pid_t pid = fork();
    require_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        (void)!read(go[0], &c, 1); /* holds the inherited handle until told */
        fm_close(fi);
        _exit(0);
    }
    close(go[0]);
    expect_eq(fm_close(fi), 0);
    struct fm_options o = {.flags = FM_NOSYNC};
    expect_eq(fm_open(path, &o, &fi), FM_ELOCKED);
    close(go[1]);
    waitpid(pid, NULL, 0);
    require_eq(fm_open(path, &o, &fi), 0);
    struct fm_stats st;
    expect_eq(fm_stats(fi, &st), 0);
    expect_eq(st.recovered, 0);
    expect_eq(st.allocated_count, FORK_LIVE);
    expect_eq(fm_close(fi), 0);
}

/* A thread of the parent holds the arena lock (inside fm_walk's callback)
 * when another forks: the child's calls must return, not wait for a lock
 * that nobody in the child will ever release. */
static atomic_int walk_state; /* 1: in the callback, 2: may leave */

static int hold_lock(void *p, size_t size, void *arg)
{
    (void)p, (void)size, (void)arg;
    atomic_store(&walk_state, 1);
    while (atomic_load(&walk_state) != 2)
        usleep(1000);
    return 1;
}

static void *walker(void *arg)
{
    fm_walk(arg, hold_lock, NULL);
    return NULL;
}

static void child_under_held_lock(struct fm_info *fi)
{
    expect_eq(fm_check(fi), FM_EFORKED);
    expect_true(fm_malloc(fi, 40) == NULL);
    expect_true(fm_malloc(fi, 100000) == NULL);
    fm_set_error_handler(fi, NULL, NULL);
    expect_eq(fm_close(fi), 0);
}

static void fork_while_locked(void)
{
    void *live[FORK_LIVE];
    struct fm_info *fi = busy_parent(live);
    pthread_t t;
    atomic_store(&walk_state, 0);
    require_eq(pthread_create(&t, NULL, walker, fi), 0);
    while (atomic_load(&walk_state) != 1)
        usleep(1000);
    in_forked_child(fi, child_under_held_lock);
    atomic_store(&walk_state, 2);
    pthread_join(t, NULL);
    parent_carries_on(fi, live);
}

/* A worker thread with a thread cache forks while another parent thread
 * holds the lock; in the child that worker is the only thread, and when it
 * ends, its cache's thread-exit destructor must not wait for the lock. */
static atomic_int worker_state; /* 1: has its cache, 2: may fork, 3: child ended */
static int child_status;

/* The child's exit: the parent's threads' memory is not a leak there. */
static void exit_unchecked(void)
{
    _exit(0);
}

static void *fork_and_exit(void *arg)
{
    struct fm_info *fi = arg;
    fm_free(fi, fm_malloc(fi, 40)); /* claims this thread's cache */
    atomic_store(&worker_state, 1);
    while (atomic_load(&worker_state) != 2)
        usleep(1000);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        atexit(exit_unchecked); /* runs before LeakSanitizer's check */
        pthread_exit(NULL); /* the last thread: destructors, then exit(0) */
    }
    child_status = -1;
    waitpid(pid, &child_status, 0);
    atomic_store(&worker_state, 3);
    return NULL; /* its own exit waits for the lock (tc_release): after the walk */
}

static void fork_from_a_cached_thread(void)
{
    void *live[FORK_LIVE];
    struct fm_info *fi = busy_parent(live);
    pthread_t t, w;
    atomic_store(&worker_state, 0);
    atomic_store(&walk_state, 0);
    require_eq(pthread_create(&w, NULL, fork_and_exit, fi), 0);
    while (atomic_load(&worker_state) != 1)
        usleep(1000);
    require_eq(pthread_create(&t, NULL, walker, fi), 0);
    while (atomic_load(&walk_state) != 1)
        usleep(1000);
    atomic_store(&worker_state, 2);
    while (atomic_load(&worker_state) != 3) /* the child has ended (or its alarm has) */
        usleep(1000);
    atomic_store(&walk_state, 2);
    pthread_join(t, NULL);
    pthread_join(w, NULL);
    int status = child_status;
    expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFSIGNALED(status))
        printf("  child killed by signal %d\n", WTERMSIG(status));
    parent_carries_on(fi, live);
}

/*
 * Debug level 2 (FM_TEST_DEBUG_LEVEL: the build's debug_level): the payload
 * of a freed block is poisoned, past the words the allocator uses, and a
 * thread cache checks the poison when it hands the block out again, so a
 * write after free reaches the handler.  Levels 0 and 1 do neither.
 */
enum { POISON = 0xdb, BIG = 4000 }; /* BIG: past the caches, under the punch size */

/* One write after free reached the handler at level 2; none below. */
static void expect_reported_at_level2(struct errors *e)
{
    if (FM_TEST_DEBUG_LEVEL >= 2) {
        expect_eq(atomic_load(&e->count), 1);
        expect_eq(e->last, FM_ECORRUPT);
        expect_true(strstr(e->msg, "write after free") != NULL);
        printf("  handler: %s\n", e->msg);
    } else {
        expect_eq(atomic_load(&e->count), 0);
    }
}

static void uaf_payload_reported(void)
{
    struct errors e = {0};
    struct fm_info *fi = fresh();
    fm_set_error_handler(fi, record_error, &e);
    unsigned char *p = fm_malloc(fi, UAF_SIZE);
    require_true(p);
    memset(p, 0x11, UAF_SIZE);
    fm_free(fi, p);
    /* payload words 0 and 1 hold the cache's link and marker */
    expect_eq(p[16], FM_TEST_DEBUG_LEVEL >= 2 ? POISON : 0x11);
    p[30] = 0x55;
    unsigned char *r = fm_malloc(fi, UAF_SIZE);
    expect_true(r == p); /* the cache is LIFO */
    expect_reported_at_level2(&e);
    expect_eq(fm_check(fi), 0); /* the heap itself is sound */
    fm_free(fi, r);
    r = fm_malloc(fi, UAF_SIZE); /* poisoned again by that free: no report */
    expect_eq(atomic_load(&e.count), FM_TEST_DEBUG_LEVEL >= 2 ? 1 : 0);
    expect_eq(fm_close(fi), 0);
}

/* A block the heap takes back (too big for a cache) is poisoned once its
 * free commits, all but the free chunk's links (payload bytes 0..47). */
static void freed_payload_poisoned(void)
{
    struct fm_info *fi = fresh();
    unsigned char *p = fm_malloc(fi, BIG), *guard = fm_malloc(fi, BIG);
    require_true(p && guard);
    memset(p, 0x11, BIG);
    fm_free(fi, p);
    int want = FM_TEST_DEBUG_LEVEL >= 2 ? POISON : 0x11;
    size_t off = 48;
    while (off < BIG && p[off] == want)
        off++;
    expect_eq(off, BIG);
    expect_eq(fm_check(fi), 0);
    expect_eq(fm_close(fi), 0);
}

/* The same for a block the heap hands out again (too big for a cache):
 * the chunk it freed is handed out whole by the next request of its size,
 * and its poison is checked past the free chunk's links. */
static void uaf_heap_reported(void)
{
    struct errors e = {0};
    struct fm_info *fi = fresh();
    fm_set_error_handler(fi, record_error, &e);
    unsigned char *p = fm_malloc(fi, BIG), *guard = fm_malloc(fi, BIG);
    require_true(p && guard);
    memset(p, 0x11, BIG);
    fm_free(fi, p);
    p[BIG / 2] = 0x55;
    unsigned char *r = fm_malloc(fi, BIG);
    expect_true(r == p); /* its exact fit */
    expect_reported_at_level2(&e);
    expect_eq(fm_check(fi), 0);
    fm_free(fi, r);
    r = fm_malloc(fi, BIG); /* poisoned again by that free: no report */
    expect_true(r == p);
    expect_eq(atomic_load(&e.count), FM_TEST_DEBUG_LEVEL >= 2 ? 1 : 0);
    expect_eq(fm_close(fi), 0);
}

int main(void)
{
    seed = harness_seed();
    path = tpath("misuse.fm");
    isolated("write after free: link into the superblock", uaf_link_in_superblock, 0);
    isolated("write after free: wild link", uaf_link_wild, 0);
    isolated("write after free: zero link", uaf_link_zero, 0);
    isolated("write after free: marker", uaf_marker, 0);
    printf("debug_level %d\n", FM_TEST_DEBUG_LEVEL);
    isolated("write after free into the payload (reported at debug level 2)",
             uaf_payload_reported, 0);
    isolated("a freed payload is poisoned (debug level 2)", freed_payload_poisoned, 0);
    isolated("write after free into a block the heap hands out (reported at debug level 2)",
             uaf_heap_reported, 0);
    isolated("write after free: default handler aborts", uaf_default_aborts, SIGABRT);
    isolated("write after free, then a crash", uaf_then_crash, 0);
    isolated("... recovery sweeps the dropped blocks", uaf_recovered, 0);
    isolated("threads racing fm_free_from on one slot", race_free_from, 0);
    isolated("threads racing fm_free_from and fm_realloc_to", race_free_and_realloc_to, 0);
    isolated("fork: the child closes", fork_child_closes, 0);
    isolated("fork: the child tries every call", fork_child_refused, 0);
    /* Memcheck serialises threads and does not carry them or flocks through
     * fork() as the kernel does: these three run natively and under the
     * sanitizers only. */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        printf("under valgrind: the three fork cases with threads or a live child skipped\n");
    } else {
        isolated("fork: a parent thread holds the lock", fork_while_locked, 0);
        isolated("fork: a live child keeps the parent's flock", fork_child_keeps_lock, 0);
        isolated("fork: from a thread with a cache, whose exit follows", fork_from_a_cached_thread,
                 0);
    }
    return api_done();
}
