/*
 * shapes.c -- issue 17's allocation shapes that are not a churn:
 *
 *   prodcons  one thread allocates PRODCONS_SIZE-byte blocks, stamps them
 *             and passes them through a ring to a second thread, which
 *             checks and frees them (every free is of another thread's
 *             block: the remote-free pattern of servers and pipelines);
 *   bigreuse  one thread allocates a block of 5-25 MB, writes one byte in
 *             each 4 KiB page of it, and frees it, again and again (the
 *             cost of giving pages back and faulting them in again).
 *
 * Layer: bench (worker side; the allocator only through struct
 * bench_alloc).  The ring lives in harness memory, not in the heap.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "params.h"

/* ---- producer / consumer ------------------------------------------------------ */

/* Single producer, single consumer; head and tail on their own lines. */
struct ring {
    _Alignas(64) atomic_uint_fast64_t head; /* next slot the producer fills */
    _Alignas(64) atomic_uint_fast64_t tail; /* next slot the consumer empties */
    _Alignas(64) void *slot[PRODCONS_RING];
};

struct prodcons {
    const struct bench_alloc *A;
    struct ring *ring;
    uint32_t blocks;
    pthread_barrier_t start;
    double t_start[2], t_end[2], cpu_s[2];
    uint64_t bad;
    bool failed;
};

static uint64_t block_stamp(uint64_t i)
{
    return i * 0x9e3779b97f4a7c15ull ^ 0x5ca1ab1e;
}

static void produce(struct prodcons *pc)
{
    struct ring *r = pc->ring;
    for (uint64_t i = 0; i < pc->blocks; i++) {
        uint64_t *p = pc->A->malloc(PRODCONS_SIZE);
        if (!p) {
            pc->failed = true;
            p = NULL; /* the consumer stops at the NULL */
        } else {
            p[0] = block_stamp(i);
        }
        uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&r->tail, memory_order_acquire) == PRODCONS_RING)
            sched_yield();
        r->slot[h % PRODCONS_RING] = p;
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
        if (!p)
            return;
    }
}

static void consume(struct prodcons *pc)
{
    struct ring *r = pc->ring;
    uint64_t bad = 0;
    for (uint64_t i = 0; i < pc->blocks; i++) {
        uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        while (atomic_load_explicit(&r->head, memory_order_acquire) == t)
            sched_yield();
        uint64_t *p = r->slot[t % PRODCONS_RING];
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
        if (!p)
            break;
        bad += p[0] != block_stamp(i);
        pc->A->free(p);
    }
    pc->bad = bad;
}

struct side {
    struct prodcons *pc;
    int k; /* 0 producer, 1 consumer */
};

static void *side_main(void *arg)
{
    struct side *s = arg;
    struct prodcons *pc = s->pc;
    pthread_barrier_wait(&pc->start);
    double c0 = bench_thread_cpu();
    pc->t_start[s->k] = bench_now();
    if (s->k == 0)
        produce(pc);
    else
        consume(pc);
    pc->t_end[s->k] = bench_now();
    pc->cpu_s[s->k] = bench_thread_cpu() - c0;
    return NULL;
}

int bench_run_prodcons(const struct bench_alloc *A, const struct params *P, const char *path,
                       uint64_t seed)
{
    (void)seed; /* the sequence is fixed: nothing is random */
    if (A->open(path, (uint64_t)PRODCONS_RING * PRODCONS_SIZE * 64 + (32ull << 20), true))
        return 1;
    struct prodcons pc = {.A = A, .blocks = P->prodcons_blocks};
    pc.ring = bench_harness_alloc(sizeof *pc.ring);
    atomic_init(&pc.ring->head, 0);
    atomic_init(&pc.ring->tail, 0);
    pthread_barrier_init(&pc.start, NULL, 3);
    pthread_t tid[2];
    struct side side[2] = {{&pc, 0}, {&pc, 1}};
    for (int k = 0; k < 2; k++)
        if (pthread_create(&tid[k], NULL, side_main, &side[k]))
            bench_die("pthread_create failed");
    pthread_barrier_wait(&pc.start);
    for (int k = 0; k < 2; k++)
        pthread_join(tid[k], NULL);
    if (pc.failed)
        bench_die("allocation failed during prodcons");
    if (pc.bad) {
        fprintf(stderr, "bench_worker: %s: %llu blocks lost their content\n", A->name,
                (unsigned long long)pc.bad);
        return 1;
    }
    double t0 = pc.t_start[0] < pc.t_start[1] ? pc.t_start[0] : pc.t_start[1];
    double t1 = pc.t_end[0] > pc.t_end[1] ? pc.t_end[0] : pc.t_end[1];
    double ops = 2.0 * pc.blocks; /* a malloc and a free each */
    bench_result("ops", ops);
    bench_result("secs", t1 - t0);
    bench_result("ops_per_s", ops / (t1 - t0));
    bench_result("cpu_share", (pc.cpu_s[0] + pc.cpu_s[1]) / (2 * (t1 - t0)));
    bench_result_end();
    bench_harness_free(pc.ring, sizeof *pc.ring);
    pthread_barrier_destroy(&pc.start);
    return A->close();
}

/* ---- large-block reuse -------------------------------------------------------- */

int bench_run_bigreuse(const struct bench_alloc *A, const struct params *P, const char *path,
                       uint64_t seed)
{
    if (A->open(path, 3ull * BIGREUSE_MAX_SIZE + (32ull << 20), true))
        return 1;
    uint64_t s = seed, bytes = 0, bad = 0;
    double t0 = bench_now();
    for (uint32_t r = 0; r < P->bigreuse_rounds; r++) {
        uint32_t size = bench_range(&s, BIGREUSE_MIN_SIZE, BIGREUSE_MAX_SIZE);
        unsigned char *p = A->malloc(size);
        if (!p)
            bench_die("allocation failed during bigreuse");
        for (uint32_t off = 0; off < size; off += 4096)
            p[off] = (unsigned char)(r + off / 4096);
        uint32_t last = (size - 1) / 4096;
        bad += p[(size_t)last * 4096] != (unsigned char)(r + last);
        bytes += size;
        A->free(p);
    }
    double secs = bench_now() - t0;
    if (bad) {
        fprintf(stderr, "bench_worker: %s: %llu blocks lost their content\n", A->name,
                (unsigned long long)bad);
        return 1;
    }
    bench_result("ops", P->bigreuse_rounds);
    bench_result("secs", secs);
    bench_result("ops_per_s", P->bigreuse_rounds / secs);
    bench_result("mib_per_s", (double)bytes / (1 << 20) / secs);
    bench_result_end();
    return A->close();
}
