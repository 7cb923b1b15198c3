/*
 * test_misuse.c -- what a careless program does to an arena, and what it
 * must get back instead of a crash or a damaged heap (issue 13):
 *
 *   - threads racing fm_free_from / fm_realloc_to on the same slots.
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
    struct fm_options o = {.flags = flags | FM_NOSYNC};
    struct fm_info *fi;
    require_eq(fm_open(path, &o, &fi), 0);
    return fi;
}

static struct fm_info *fresh(void)
{
    unlink(path);
    return open_arena(FM_CREATE);
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

int main(void)
{
    seed = harness_seed();
    path = tpath("misuse.fm");
    isolated("threads racing fm_free_from on one slot", race_free_from, 0);
    isolated("threads racing fm_free_from and fm_realloc_to", race_free_and_realloc_to, 0);
    return api_done();
}
