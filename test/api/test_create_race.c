/*
 * test_create_race.c -- many processes fm_open(FM_CREATE) one missing path.
 *
 * The one that creates the file (O_EXCL) may lose the lock to one that
 * opened it a moment later.  Whoever wins and closes must find its arena
 * still at the path: a loser never unlinks a file it does not hold, and a
 * winner never lays out an arena in a file a loser just unlinked.
 */
#include <fmalloc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_util.h"
#include "harness.h"

enum { ROUNDS = 300, RACERS = 4 };

/* A racer: wait for the start, create-or-open, link one block, close.
 * Exit 0 if it wrote its block, 1 if the arena was locked, 2 otherwise. */
static int racer(const char *path, int start_fd, int id)
{
    char go;
    if (read(start_fd, &go, 1) < 0)
        return 2;
    struct fm_info *fi;
    int err = fm_open(path, &(struct fm_options){.flags = FM_CREATE | FM_NOSYNC}, &fi);
    if (err)
        return err == FM_ELOCKED ? 1 : 2;
    fm_off_t *slot = (fm_off_t *)fm_root(fi) + id;
    int *p = fm_malloc_to(fi, slot, sizeof *p);
    if (p)
        *p = 1000 + id;
    return fm_close(fi) == 0 && p ? 0 : 2;
}

int main(void)
{
    const char *path = tpath("race.fm");
    int lost = 0, odd = 0, won_total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        unlink(path);
        int start[2];
        require_eq(pipe(start), 0);
        pid_t pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = fork();
            require_true(pids[i] >= 0);
            if (pids[i] == 0) {
                close(start[1]);
                _exit(racer(path, start[0], i));
            }
        }
        close(start[0]);
        close(start[1]); /* everybody's read returns at once */
        int won[RACERS] = {0};
        for (int i = 0; i < RACERS; i++) {
            int st;
            require_true(waitpid(pids[i], &st, 0) == pids[i]);
            int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            won[i] = code == 0;
            odd += code != 0 && code != 1;
        }
        /* Every racer that closed its arena must find its block there. */
        struct fm_info *fi;
        int err = fm_open(path, &(struct fm_options){.flags = FM_RDONLY}, &fi);
        for (int i = 0; i < RACERS; i++) {
            if (!won[i])
                continue;
            won_total++;
            const int *p = err ? NULL : fm_pointer(fi, ((fm_off_t *)fm_root(fi))[i]);
            if (!p || *p != 1000 + i) {
                if (!lost)
                    fprintf(stderr, "round %d: racer %d closed its arena, then %s\n", round, i,
                            err ? "the file was gone or unreadable" : "its block was not there");
                lost++;
            }
        }
        if (!err)
            fm_close(fi);
    }
    printf("%d rounds of %d racers: %d arenas closed, %d lost, %d odd exits\n", ROUNDS, RACERS,
           won_total, lost, odd);
    expect_eq(lost, 0);
    expect_eq(odd, 0);
    return harness_done();
}
