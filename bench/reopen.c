/*
 * reopen.c -- workload 6, fmalloc only: how long fm_open takes on a big
 * arena, cleanly closed (should not depend on its size) and after the
 * process that had it open was killed (recovery walks the heap).
 *
 * Phases, each run in its own process by the driver:
 *   build    create the arena at arena_bytes and fill it with `objects`
 *            blocks of 16-64 B, then fm_close (default sync)
 *   reopen   time fm_open of the clean arena, then fm_close
 *   crash    fork a child that opens the arena read-write, allocates one
 *            block and waits; kill -9 it: the arena is left dirty
 *   recover  time fm_open of the dirty arena (the recovery), check that
 *            fm_stats says it recovered, fm_close
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "fmalloc.h"
#include "params.h"

#define REOPEN_MAX_SIZE_BYTES (64ull << 30)

static int reopen_fail(const char *what, int err)
{
    fprintf(stderr, "bench_worker: reopen: %s: %s\n", what, fm_strerror(err));
    return 1;
}

static int reopen_build(const char *path, uint64_t arena_bytes, uint64_t objects, uint64_t seed)
{
    struct fm_options o = {
        .initial_size = arena_bytes,
        .max_size = REOPEN_MAX_SIZE_BYTES,
        .flags = FM_CREATE | FM_EXCL,
    };
    struct fm_info *fi;
    unlink(path);
    int err = fm_open(path, &o, &fi);
    if (err)
        return reopen_fail("fm_open (create)", err);
    uint64_t s = seed;
    double t0 = bench_now();
    for (uint64_t i = 0; i < objects; i++) {
        void *p = fm_malloc(fi, bench_range(&s, REOPEN_MIN_SIZE, REOPEN_MAX_SIZE));
        if (!p)
            return reopen_fail("fm_malloc", fm_last_error());
        memcpy(p, &i, sizeof i);
    }
    double t1 = bench_now();
    if ((err = fm_close(fi)))
        return reopen_fail("fm_close", err);
    double t2 = bench_now();
    struct stat st;
    if (stat(path, &st))
        return reopen_fail("stat", 0);
    bench_result("objects", (double)objects);
    bench_result("build_s", t1 - t0);
    bench_result("close_s", t2 - t1);
    bench_result("file_bytes", (double)st.st_size);
    bench_result_end();
    return 0;
}

static int reopen_time(const char *path, bool dirty)
{
    struct fm_options o = {.max_size = REOPEN_MAX_SIZE_BYTES};
    struct fm_info *fi;
    double t0 = bench_now();
    int err = fm_open(path, &o, &fi);
    double t1 = bench_now();
    if (err)
        return reopen_fail("fm_open", err);
    struct fm_stats st = {0};
    if (dirty && (err = fm_stats(fi, &st)))
        return reopen_fail("fm_stats", err);
    double t2 = bench_now();
    if ((err = fm_close(fi)))
        return reopen_fail("fm_close", err);
    double t3 = bench_now();
    if (dirty && !st.recovered) {
        fprintf(stderr, "bench_worker: reopen: the arena was not dirty\n");
        return 1;
    }
    bench_result(dirty ? "recover_s" : "reopen_s", t1 - t0);
    bench_result("close_s", t3 - t2);
    if (dirty) /* the build's objects plus one per crash so far */
        bench_result("objects_after", (double)st.allocated_count);
    bench_result_end();
    return 0;
}

static int reopen_crash(const char *path)
{
    int fds[2];
    if (pipe(fds))
        return reopen_fail("pipe", 0);
    pid_t pid = fork();
    if (pid < 0)
        return reopen_fail("fork", 0);
    if (pid == 0) {
        close(fds[0]);
        struct fm_options o = {.max_size = REOPEN_MAX_SIZE_BYTES};
        struct fm_info *fi;
        char ok = fm_open(path, &o, &fi) == 0 && fm_malloc(fi, 64) != NULL;
        if (write(fds[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char ok = 0;
    ssize_t n = read(fds[0], &ok, 1);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    if (n != 1 || !ok || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fprintf(stderr, "bench_worker: reopen: the child did not open, allocate and die\n");
        return 1;
    }
    bench_result("killed", 1);
    bench_result_end();
    return 0;
}

int bench_reopen_phase(const char *phase, const char *path, uint64_t arena_bytes, uint64_t objects,
                       uint64_t seed)
{
    if (strcmp(phase, "build") == 0)
        return reopen_build(path, arena_bytes, objects, seed);
    if (strcmp(phase, "reopen") == 0)
        return reopen_time(path, false);
    if (strcmp(phase, "crash") == 0)
        return reopen_crash(path);
    if (strcmp(phase, "recover") == 0)
        return reopen_time(path, true);
    fprintf(stderr, "bench_worker: reopen: --phase build|reopen|crash|recover\n");
    return 1;
}
